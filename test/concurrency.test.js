'use strict';

// Concurrency at scale: nothing lost, nothing duplicated, no gap, with the
// default options, in one process and across processes.
const fs = require('fs');
const { testDatabase, expectGapless, range, uri } = require('./support/db');
const { runWriters } = require('./support/processes');

let t;
beforeAll(async () => {
  t = await testDatabase(__filename);
});
afterAll(() => t.done());

const upload = (repo, orderId, i = 0) => repo.createWithAtomicVersion({ orderId, fileName: `f-${i}.pdf`, fileSize: i });

test('1000 concurrent uploads to one order from one process all resolve as 1..1000', async () => {
  const repo = t.repository({ collection: 'burst' });
  const results = await Promise.allSettled(range(1000).map((i) => upload(repo, 'big', i)));
  expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
  await expectGapless(t.db, 'burst', 'big', 1000);
  expect(repo.stats()).toMatchObject({ uploads: 1000, succeeded: 1000, failed: 0, failedAfterMaxRetries: 0 });
  // Coalesced: a handful of insertMany batches, not a thousand round trips.
  expect(repo.stats().batches).toBeLessThan(10);
});

test('4 processes x 250 concurrent uploads to one order: 1..1000, every upload resolved', async () => {
  const job = { uri: uri(), dbName: t.dbName, collection: 'procs', orderId: 'shared', count: 250, options: {} };
  const summaries = await runWriters([job, job, job, job]);
  const errors = summaries.flatMap((s) => s.errors);
  expect(errors).toEqual([]);
  expect(summaries.map((s) => s.ok)).toEqual([250, 250, 250, 250]);
  const all = summaries.flatMap((s) => s.versions).sort((a, b) => a - b);
  expect(all).toEqual(range(1000));
  await expectGapless(t.db, 'procs', 'shared', 1000);
});

test('200 orders x 5 concurrent uploads, interleaved: every order holds exactly 1..5', async () => {
  const repo = t.repository({ collection: 'mixed' });
  const calls = [];
  for (let round = 0; round < 5; round++) for (let o = 0; o < 200; o++) calls.push(upload(repo, `mix-${o}`, round));
  await Promise.all(calls);
  const perOrder = new Map();
  for (const d of await t.db.collection('mixed').find().toArray()) {
    perOrder.set(d.orderId, [...(perOrder.get(d.orderId) || []), d.version]);
  }
  expect(perOrder.size).toBe(200);
  for (const versions of perOrder.values()) expect(versions.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
  expect(await t.db.collection('mixed').countDocuments()).toBe(1000);
});

test('order of service: sequential awaits increase, and within a burst callers are served in call order', async () => {
  const repo = t.repository({ collection: 'service' });
  const sequential = [];
  for (let i = 0; i < 5; i++) sequential.push((await upload(repo, 'seq', i)).version);
  expect(sequential).toEqual([1, 2, 3, 4, 5]);

  const burst = await Promise.all(range(50).map((i) => upload(repo, 'seq', i)));
  expect(burst.map((a) => a.version)).toEqual(range(50, 6));
  const docs = await expectGapless(t.db, 'service', 'seq', 55);
  expect(docs.slice(5).map((d) => d.fileName)).toEqual(range(50).map((i) => `f-${i}.pdf`));
});

test('the version memory notices versions another process wrote and re-reads instead of failing', async () => {
  const repo = t.repository({ collection: 'memory' });
  await upload(repo, 'mem'); // remembers 2 as next
  const [other] = await runWriters([{ uri: uri(), dbName: t.dbName, collection: 'memory', orderId: 'mem', count: 30, options: {} }]);
  expect(other.versions.sort((a, b) => a - b)).toEqual(range(30, 2));
  const next = await upload(repo, 'mem');
  expect(next.version).toBe(32);
  expect(repo.stats()).toMatchObject({ failed: 0, failedAfterMaxRetries: 0 });
  await expectGapless(t.db, 'memory', 'mem', 32);
});

test('a duplicate on another unique index fails that upload at once, without retries, and leaves no gap', async () => {
  await t.db.collection('checksum').createIndex({ checksum: 1 }, { unique: true, sparse: true });
  const repo = t.repository({ collection: 'checksum' });
  await repo.createWithAtomicVersion({ orderId: 'sum', fileName: 'a.pdf', checksum: 'aaa' });
  const results = await Promise.allSettled([
    repo.createWithAtomicVersion({ orderId: 'sum', fileName: 'b.pdf', checksum: 'bbb' }),
    repo.createWithAtomicVersion({ orderId: 'sum', fileName: 'again.pdf', checksum: 'aaa' }),
    repo.createWithAtomicVersion({ orderId: 'sum', fileName: 'c.pdf', checksum: 'ccc' }),
  ]);
  expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  expect(results[1].reason).toMatchObject({ name: 'DuplicateKeyError', code: 11000, attempts: 1, orderId: 'sum' });
  const docs = await expectGapless(t.db, 'checksum', 'sum', 3);
  expect(docs.map((d) => d.fileName)).toEqual(['a.pdf', 'b.pdf', 'c.pdf']);
  expect(repo.stats()).toMatchObject({ retries: 0, failed: 1, failedAfterMaxRetries: 0 });
});

test('with coalescing and memory off, retries exhausted reject with code 11000, the order and the attempts', async () => {
  // maxRetries 0: the first lost race is final, as a reference-design caller would see it.
  const job = { uri: uri(), dbName: t.dbName, collection: 'exhaust', orderId: 'hot', count: 40, options: { coalesce: false, maxRetries: 0 } };
  const summaries = await runWriters([job, job]);
  const failed = summaries.reduce((n, s) => n + s.failed, 0);
  expect(failed).toBeGreaterThan(0);
  expect(summaries.flatMap((s) => s.errors)[0]).toMatch(/order "hot" a version after 1 attempts/);
  const ok = summaries.reduce((n, s) => n + s.ok, 0);
  await expectGapless(t.db, 'exhaust', 'hot', ok);
});

describe('createManyWithAtomicVersion', () => {
  test('gives one call consecutive versions, in item order', async () => {
    const repo = t.repository({ collection: 'many' });
    await upload(repo, 'multi');
    const items = range(5).map((i) => ({ fileName: `page-${i}.pdf`, fileSize: i }));
    const assets = await repo.createManyWithAtomicVersion('multi', items);
    expect(assets.map((a) => a.version)).toEqual([2, 3, 4, 5, 6]);
    expect(assets.map((a) => a.orderId)).toEqual(Array(5).fill('multi'));
    await expectGapless(t.db, 'many', 'multi', 6);
  });

  test('concurrent multi-file uploads each stay contiguous', async () => {
    const repo = t.repository({ collection: 'many2' });
    const batches = await Promise.all(
      range(6).map((b) =>
        repo.createManyWithAtomicVersion(
          'multi2',
          range(4).map((i) => ({ fileName: `b${b}-${i}.pdf` })),
        ),
      ),
    );
    for (const assets of batches) {
      const v = assets.map((a) => a.version);
      expect(v).toEqual(range(4, v[0]));
    }
    await expectGapless(t.db, 'many2', 'multi2', 24);
  });

  test('reports per item when some are refused, stores the rest, leaves no gap', async () => {
    await t.db.collection('many3').createIndex({ checksum: 1 }, { unique: true, sparse: true });
    const repo = t.repository({ collection: 'many3' });
    await repo.createWithAtomicVersion({ orderId: 'm3', fileName: 'first.pdf', checksum: 'x' });
    const err = await repo
      .createManyWithAtomicVersion('m3', [
        { fileName: 'a.pdf', checksum: 'a' },
        { fileName: 'dup.pdf', checksum: 'x' },
        { fileName: 'c.pdf', checksum: 'c' },
      ])
      .then(
        () => null,
        (e) => e,
      );
    expect(err).toMatchObject({ name: 'BatchError', code: 'ERR_ASSET_BATCH_PARTIAL', stored: 2, failed: 1 });
    expect(err.results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(err.results[1].reason).toMatchObject({ name: 'DuplicateKeyError', code: 11000 });
    await expectGapless(t.db, 'many3', 'm3', 3);
  });

  test('a bad item refuses the whole call, naming the item, and writes nothing', async () => {
    const repo = t.repository({ collection: 'many4' });
    await expect(repo.createManyWithAtomicVersion('m4', [{ fileName: 'a.pdf' }, { fileName: '' }])).rejects.toMatchObject({
      name: 'ValidationError',
      field: 'items[1].fileName',
    });
    await expect(repo.createManyWithAtomicVersion('m4', [])).rejects.toMatchObject({ name: 'ValidationError', field: 'items' });
    await expect(repo.createManyWithAtomicVersion('m4', [new Map([['fileName', 'a.pdf']])])).rejects.toMatchObject({
      code: 'ERR_ASSET_NOT_OBJECT',
      field: 'items[0]',
    });
    await expect(repo.createManyWithAtomicVersion({ $ne: 1 }, [{ fileName: 'a.pdf' }])).rejects.toMatchObject({ field: 'orderId' });
    expect(await t.db.collection('many4').countDocuments()).toBe(0);
  });
});

test('the addon holds at most half the threadpool, and fs keeps working during a burst', async () => {
  const repo = t.repository({ collection: 'pool' });
  const burst = Promise.all(range(1000).map((i) => upload(repo, `pool-${i % 250}`, i)));
  let settled = false;
  burst.then(() => (settled = true));
  let reads = 0;
  while (!settled && reads < 200) {
    await fs.promises.readFile(__filename);
    reads++;
  }
  await burst;
  const { threadpool } = repo.stats();
  expect(threadpool.slots).toBe(Math.floor(threadpool.size / 2));
  expect(threadpool.peak).toBeLessThanOrEqual(threadpool.slots);
  expect(reads).toBeGreaterThan(0);
});
