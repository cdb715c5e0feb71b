'use strict';

// Run as a child process by test/threadpool.test.js, so that each run has a
// threadpool of its own size (UV_THREADPOOL_SIZE) and a fresh budget.
// argv[2]: JSON { uri, dbName, collection, mode, workers, terminate }.
// Prints one JSON line.
//
// mode "stall": the main thread and `workers` worker_threads each upload
// through one stall server (test/support/stall-server.js) to orders of their
// own. Once the uploads are under way the network stalls; with the budget
// full, the main thread times fs.readFile; then the network is released and
// every upload must settle. With `terminate`, worker w0 is terminated while
// the network is still stalled (its jobs on the pool or queued for a slot).
//
// mode "load": the main thread loads the addon, then sets
// UV_THREADPOOL_SIZE=64 (setenv, as JavaScript can), then `workers` workers
// load it one after the other; each reports native.threadpool(), and so
// does the main thread with all of them alive and once they have ended.
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..', '..');
const ORDERS = 4; // per environment: each order's batch is one job
const UPLOADS = 5; // per order

async function uploadAll(repo, env) {
  // All of an order's uploads are queued at once, so they go as one batch.
  const calls = [];
  for (let k = 0; k < ORDERS; k++) {
    for (let i = 0; i < UPLOADS; i++) {
      const orderId = `${env}-o${k}`;
      calls.push(repo.createWithAtomicVersion({ orderId, fileName: `${orderId}-${i}` }).then((a) => [orderId, a.version]));
    }
  }
  const settled = await Promise.allSettled(calls);
  return {
    env,
    stored: settled.filter((r) => r.status === 'fulfilled').map((r) => r.value),
    errors: settled.filter((r) => r.status === 'rejected').map((r) => `${r.reason.code}: ${r.reason.message}`),
  };
}

if (!isMainThread) {
  const native = require(path.join(root, 'lib', 'native'));
  if (workerData.mode === 'load') {
    parentPort.postMessage({ report: native.threadpool() });
    parentPort.once('message', () => parentPort.close()); // stays loaded until told
  } else {
    const { AssetRepository } = require(root);
    const { uri, dbName, collection, env } = workerData;
    const repo = new AssetRepository({ uri, dbName, collection });
    (async () => {
      await repo.ensureIndex();
      parentPort.postMessage({ ready: env });
      await new Promise((resolve) => parentPort.once('message', resolve));
      const done = uploadAll(repo, env);
      parentPort.postMessage({ started: env });
      const result = await done;
      await repo.close();
      parentPort.postMessage({ result });
    })();
  }
} else {
  const { uri, dbName, collection, mode, workers: n, terminate } = JSON.parse(process.argv[2]);
  const spawn = (data) => new Worker(__filename, { workerData: { mode, ...data } });
  const next = (w, key) =>
    new Promise((resolve, reject) => {
      w.on('message', (m) => m[key] !== undefined && resolve(m[key]));
      w.on('error', reject);
    });
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const exited = (w) => new Promise((resolve) => w.once('exit', resolve));

  async function load() {
    const native = require(path.join(root, 'lib', 'native'));
    const main = native.threadpool();
    process.env.UV_THREADPOOL_SIZE = '64';
    const workers = [];
    const reports = [];
    for (let i = 0; i < n; i++) {
      workers.push(spawn({}));
      reports.push(await next(workers[i], 'report'));
    }
    const together = native.threadpool();
    const gone = workers.map(exited);
    workers.forEach((w) => w.postMessage('bye'));
    await Promise.all(gone);
    return { main, workers: reports, together, after: native.threadpool() };
  }

  // Each read is capped at 3 s: with the pool held by stalled jobs it would
  // otherwise wait for the network, which is released only after the reads.
  async function timeReads(count) {
    const times = [];
    for (let i = 0; i < count; i++) {
      let cap;
      const t0 = process.hrtime.bigint();
      const read = fs.promises.readFile(__filename).then(() => Number(process.hrtime.bigint() - t0) / 1e6);
      const ms = await Promise.race([read, new Promise((resolve) => (cap = setTimeout(resolve, 3000, null)))]);
      clearTimeout(cap);
      if (ms === null) {
        times.push(3000);
        break;
      }
      times.push(ms);
      await sleep(20);
    }
    return times;
  }

  async function stall() {
    const { startStallServer } = require('./stall-server');
    const { AssetRepository } = require(root);
    const native = require(path.join(root, 'lib', 'native'));
    const upstreamPort = Number(new URL(uri).port || 27017);
    const proxy = await startStallServer(upstreamPort);
    // Long enough that every stalled job holds its thread until the release.
    const proxied = `mongodb://127.0.0.1:${proxy.port}/?directConnection=true` + '&serverSelectionTimeoutMS=60000&socketTimeoutMS=60000&connectTimeoutMS=60000';
    const repo = new AssetRepository({ uri: proxied, dbName, collection });
    const workers = Array.from({ length: n }, (_, i) => spawn({ uri: proxied, dbName, collection, env: `w${i}` }));
    const gone = workers.map(exited);
    const results = workers.map(
      (w, i) =>
        new Promise((resolve) => {
          w.on('message', (m) => m.result && resolve(m.result));
          w.once('exit', (code) => resolve({ env: `w${i}`, exited: code }));
        }),
    );
    await Promise.all([repo.ensureIndex(), ...workers.map((w) => next(w, 'ready'))]);

    proxy.stall();
    const started = workers.map((w) => next(w, 'started'));
    workers.forEach((w) => w.postMessage('go'));
    const mine = uploadAll(repo, 'main');
    await Promise.all(started);
    // The budget fills as the stalled jobs take their slots.
    const deadline = Date.now() + 10000;
    let during = native.threadpool();
    while (during.running < during.slots && Date.now() < deadline) {
      await sleep(10);
      during = native.threadpool();
    }
    await sleep(300); // the jobs are now blocked in a read on the stalled network
    const readMs = await timeReads(10);
    during = native.threadpool();
    // Terminating a worker waits for its jobs on the pool, so it ends only
    // once the network is back.
    const terminated = terminate ? workers[0].terminate() : null;
    await sleep(terminate ? 200 : 0);

    proxy.release();
    await terminated;
    const all = await Promise.all([mine, ...results]);
    await repo.close();
    await Promise.all(gone);
    await proxy.close();
    return { during, readMs, heldChunks: proxy.stats.heldChunks, results: all, after: native.threadpool() };
  }

  (mode === 'load' ? load() : stall()).then(
    (out) => {
      // No process.exit: the process must end on its own, nothing of the
      // addon left keeping its loop alive.
      process.stdout.write(`${JSON.stringify(out)}\n`);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
