'use strict';

// Run as a child process by test/workers.test.js. argv[2]: JSON { uri,
// dbName, mode }. mode "four": 4 workers x 250 uploads to one order.
// mode "terminate": 3 workers, one terminated mid-burst. Prints one JSON line.
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
const path = require('path');

if (!isMainThread) {
  const { AssetRepository } = require(path.join(__dirname, '..', '..'));
  const { uri, dbName, collection, orderId, count, id } = workerData;
  const repo = new AssetRepository({ uri, dbName, collection });
  (async () => {
    await repo.ensureIndex();
    parentPort.postMessage({ ready: id });
    await new Promise((resolve) => parentPort.once('message', resolve));
    let done = 0;
    const results = await Promise.allSettled(
      Array.from({ length: count }, (_, i) =>
        repo.createWithAtomicVersion({ orderId, fileName: `w${id}-${i}` }).then((a) => {
          if (++done === 20) parentPort.postMessage({ progress: id });
          return a.version;
        }),
      ),
    );
    await repo.close();
    parentPort.postMessage({
      id,
      versions: results.filter((r) => r.status === 'fulfilled').map((r) => r.value),
      errors: results.filter((r) => r.status === 'rejected').map((r) => r.reason.message),
    });
  })();
} else {
  const { uri, dbName, mode } = JSON.parse(process.argv[2]);
  const n = mode === 'four' ? 4 : 3;
  const collection = `workers_${mode}`;
  const workers = Array.from({ length: n }, (_, id) => new Worker(__filename, { workerData: { uri, dbName, collection, orderId: mode, count: mode === 'four' ? 250 : 2000, id } }));
  const ready = workers.map((w) => new Promise((resolve) => w.on('message', (m) => m.ready !== undefined && resolve())));
  const finished = workers.map(
    (w) =>
      new Promise((resolve) => {
        w.on('message', (m) => m.versions && resolve(m));
        w.on('exit', (code) => resolve({ exited: code }));
      }),
  );
  (async () => {
    await Promise.all(ready);
    workers.forEach((w) => w.postMessage('go'));
    if (mode === 'terminate') {
      await new Promise((resolve) => workers[0].on('message', (m) => m.progress !== undefined && resolve()));
      await workers[0].terminate();
    }
    const results = await Promise.all(finished);
    process.stdout.write(`${JSON.stringify(results)}\n`);
  })();
}
