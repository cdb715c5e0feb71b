'use strict';

// The addon's threadpool budget is one for the whole process (src/
// threadpool_budget.c): the main thread, worker_threads and Jest's module
// reloads share it, so however many environments upload while the network
// stalls, threads are left for fs; a freed slot goes to the environment that
// waited longest, so none starves. Scenarios with their own threadpool size
// run in a child process (test/support/threadpool-scenario.js).
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { testDatabase, expectGapless, uri } = require('./support/db');
const { startStallServer } = require('./support/stall-server');

let t;
beforeAll(async () => {
  t = await testDatabase(__filename);
});
afterAll(() => t.done());

function scenario(options, env = {}) {
  const run = spawnSync(process.execPath, [path.join(__dirname, 'support', 'threadpool-scenario.js'), JSON.stringify({ uri: uri(), dbName: t.dbName, ...options })], {
    encoding: 'utf8',
    timeout: 60000,
    env: { ...process.env, ...env },
  });
  expect(run.signal).toBeNull();
  expect(run.stderr).not.toMatch(/Abort|Segmentation|FATAL|core dumped/i);
  if (run.status !== 0) console.error(run.stderr);
  expect(run.status).toBe(0);
  return { out: JSON.parse(run.stdout.trim().split('\n').pop()), stderr: run.stderr };
}

/**
 * Each read is timed while the network is stalled, and the network stays
 * stalled until every read has ended. A read that had to wait for a thread
 * (the pool held by stalled jobs) would end only at the 3 s cap, recorded as
 * 3000; one that finds a free thread takes about a millisecond. How fast is
 * not asserted: on a shared 2-core machine a read can be descheduled for
 * hundreds of milliseconds (a 50 ms median failed there). That each read ended
 * on its own, before the network came back, is what shows a thread was free.
 */
function expectReadsFast(readMs) {
  for (const ms of readMs) expect(ms).toBeLessThan(3000);
}

const orders = (envs) => envs.flatMap((env) => [0, 1, 2, 3].map((k) => `${env}-o${k}`));

/** Every upload resolved and each order holds exactly 1..5 in the database. */
async function expectAllStored(results, collection) {
  for (const r of results) {
    expect(r.errors).toEqual([]);
    expect(r.stored).toHaveLength(20);
  }
  for (const orderId of orders(results.map((r) => r.env))) await expectGapless(t.db, collection, orderId, 5);
}

test('main thread + 2 workers with the network stalled: fs.readFile finds a free thread (each read ends while the network is still held), uploads complete once it is back', async () => {
  const { out } = scenario({ mode: 'stall', workers: 2, collection: 'stall4' }, { UV_THREADPOOL_SIZE: '4' });
  // Three environments, 12 orders wanting a thread each: 2 slots held in all.
  expect(out.during).toMatchObject({ size: 4, slots: 2, running: 2, environments: 3 });
  expect(out.during.waiting).toBeGreaterThanOrEqual(1);
  expect(out.heldChunks).toBeGreaterThan(0); // the jobs really were blocked on the network
  expect(out.readMs).toHaveLength(10);
  expectReadsFast(out.readMs);
  await expectAllStored(out.results, 'stall4');
  expect(out.after).toMatchObject({ running: 0, peak: 2, environments: 1, waiting: 0 });
});

test('a worker terminated while the network stalls gives its slots and its place in the queue back', async () => {
  const { out } = scenario({ mode: 'stall', workers: 2, terminate: true, collection: 'terminate' }, { UV_THREADPOOL_SIZE: '4' });
  expect(out.during).toMatchObject({ running: 2, environments: 3 });
  const [main, w0, w1] = out.results;
  expect(w0).toEqual({ env: 'w0', exited: 1 });
  await expectAllStored([main, w1], 'terminate');
  // Whatever the terminated worker got stored is stored once, without a gap.
  for (const orderId of orders(['w0'])) {
    const n = await t.db.collection('terminate').countDocuments({ orderId });
    expect(n).toBeLessThanOrEqual(5);
    await expectGapless(t.db, 'terminate', orderId, n);
  }
  expect(out.after).toMatchObject({ running: 0, environments: 1, waiting: 0 });
});

test('UV_THREADPOOL_SIZE=2: the addon holds one thread, whatever the number of environments, and one is left free', async () => {
  const { out } = scenario({ mode: 'stall', workers: 2, collection: 'stall2' }, { UV_THREADPOOL_SIZE: '2' });
  expect(out.during).toMatchObject({ size: 2, slots: 1, running: 1, environments: 3 });
  expect(out.readMs).toHaveLength(10);
  expectReadsFast(out.readMs);
  await expectAllStored(out.results, 'stall2');
  expect(out.after).toMatchObject({ running: 0, peak: 1, environments: 1 });
});

test('the pool size is read once, at the first load: a later setenv and more workers change nothing', () => {
  const { out, stderr } = scenario({ mode: 'load', workers: 2 }, { UV_THREADPOOL_SIZE: '4' });
  const budget = { size: 4, slots: 2, running: 0 };
  expect(out.main).toMatchObject({ ...budget, environments: 1 });
  expect(out.workers).toEqual([expect.objectContaining({ ...budget, environments: 2 }), expect.objectContaining({ ...budget, environments: 3 })]);
  expect(out.together).toMatchObject({ ...budget, environments: 3 });
  expect(out.after).toMatchObject({ ...budget, environments: 1 }); // ended workers left the budget
  expect(stderr).not.toMatch(/ATOMIC_ASSET_VERSION_THREADPOOL/);
});

test('UV_THREADPOOL_SIZE=1: the addon takes the only thread and warns once per process', () => {
  const { out, stderr } = scenario({ mode: 'load', workers: 2 }, { UV_THREADPOOL_SIZE: '1' });
  expect(out.together).toMatchObject({ size: 1, slots: 1, environments: 3 });
  expect(stderr.match(/\[ATOMIC_ASSET_VERSION_THREADPOOL\] Warning: UV_THREADPOOL_SIZE=1/g)).toHaveLength(1);
});

test("Jest module reloads share this process's budget instead of adding slots", async () => {
  const proxy = await startStallServer(Number(new URL(uri()).port || 27017));
  const proxied = `mongodb://127.0.0.1:${proxy.port}/?directConnection=true` + '&serverSelectionTimeoutMS=60000&socketTimeoutMS=60000&connectTimeoutMS=60000';
  const before = require('../lib/native').threadpool();
  const loads = [];
  for (let i = 0; i < 3; i++) {
    jest.isolateModules(() => {
      // Each reload dlopens the binary again: a new Node-API environment.
      const { AssetRepository } = require('..');
      loads.push({ native: require('../lib/native'), repo: new AssetRepository({ uri: proxied, dbName: t.dbName, collection: 'reloads' }) });
    });
  }
  try {
    const now = loads[2].native.threadpool();
    expect(now).toMatchObject({ size: before.size, slots: before.slots, environments: before.environments + 3 });
    await Promise.all(loads.map((l) => l.repo.ensureIndex()));

    proxy.stall();
    const uploads = loads.map((l, i) =>
      Promise.allSettled(orders([`r${i}`]).flatMap((orderId) => [1, 2, 3, 4, 5].map((n) => l.repo.createWithAtomicVersion({ orderId, fileName: `${orderId}-${n}` })))),
    );
    const deadline = Date.now() + 10000;
    let during = loads[0].native.threadpool();
    while (during.running < during.slots && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      during = loads[0].native.threadpool();
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Each capped at 3 s: with the pool held it would wait for the release below.
    const readMs = [];
    while (readMs.length < 5 && !readMs.includes(3000)) {
      let cap;
      const t0 = process.hrtime.bigint();
      const read = fs.promises.readFile(__filename).then(() => Number(process.hrtime.bigint() - t0) / 1e6);
      readMs.push(await Promise.race([read, new Promise((resolve) => (cap = setTimeout(resolve, 3000, 3000)))]));
      clearTimeout(cap);
    }
    during = loads[1].native.threadpool();
    proxy.release();
    const settled = await Promise.all(uploads);

    expect(during).toMatchObject({ running: before.slots, slots: before.slots });
    expect(during.peak).toBeLessThanOrEqual(before.slots);
    expect(readMs).toHaveLength(5);
    expectReadsFast(readMs);
    for (const s of settled) expect(s.filter((r) => r.status === 'rejected').map((r) => r.reason.message)).toEqual([]);
    for (const orderId of orders(['r0', 'r1', 'r2'])) await expectGapless(t.db, 'reloads', orderId, 5);
  } finally {
    proxy.release();
    await Promise.all(loads.map((l) => l.repo.close()));
    await proxy.close();
  }
}, 30000);

test('a flood of jobs in one environment does not starve another on the same thread (Jest reloads)', async () => {
  const loads = [];
  for (let i = 0; i < 2; i++) {
    jest.isolateModules(() => {
      const { AssetRepository } = require('..');
      loads.push({ native: require('../lib/native'), repo: new AssetRepository({ uri: uri(), dbName: t.dbName, collection: 'fair' }) });
    });
  }
  const [a, b] = loads;
  try {
    await Promise.all(loads.map((l) => l.repo.ensureIndex()));
    const FLOOD = 200; // orders, one job each
    let done = 0;
    const flood = Promise.all(Array.from({ length: FLOOD }, (_, k) => a.repo.createWithAtomicVersion({ orderId: `flood-${k}`, fileName: 'a' }).then(() => done++)));
    while (a.native.threadpool().waiting === 0 && done < FLOOD) await new Promise(setImmediate);
    // Queued behind the flood: the next slot released must come to it, though
    // the flood's own completions run first on this thread.
    const queuedAt = done;
    const mine = await b.repo.createWithAtomicVersion({ orderId: 'fair-b', fileName: 'b' });
    const floodDoneThen = done;
    await flood;
    expect(mine.version).toBe(1);
    expect(floodDoneThen - queuedAt).toBeLessThan(FLOOD / 4);
    expect(await t.db.collection('fair').countDocuments({ orderId: 'fair-b' })).toBe(1);
    expect(await t.db.collection('fair').countDocuments({ orderId: /^flood-/ })).toBe(FLOOD);
  } finally {
    await Promise.all(loads.map((l) => l.repo.close()));
  }
}, 60000);
