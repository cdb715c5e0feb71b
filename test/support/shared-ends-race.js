'use strict';

// Child process for test/validation.test.js: insertBatch's `ends` in a
// SharedArrayBuffer that a worker flips between honest ends and ends that
// point into the middle of a document whose bytes there claim 1 GiB. The
// addon must read each end once and check what it read: refused at once or on
// the threadpool, never a read past the copied bytes (that was a SIGSEGV).
// Prints a JSON summary; exit code 0 means no crash.
const { once } = require('events');
const { Worker } = require('worker_threads');
const { BSON, Binary } = require('bson');
const native = require('../../lib/native');

const big = BSON.serialize({ orderId: 'race', fileName: 'a', blob: new Binary(Buffer.alloc(8 << 20, 1)) });
const small = BSON.serialize({ orderId: 'race', fileName: 'b' });
// Both framed as BSON but corrupt inside (a string's length runs past its
// document), so the threadpool refuses whatever gets past the framing check
// and no batch ever needs the network: many rounds in a few seconds.
for (const doc of [big, small]) doc.writeInt32LE(1000, doc.indexOf('race') - 4);
const bytes = Buffer.concat([big, small]);
const lie = bytes.indexOf(Buffer.alloc(64, 1)) + 16;
bytes.writeInt32LE(1 << 30, lie);

const ends = new Float64Array(new SharedArrayBuffer(16));
const stop = new Int32Array(new SharedArrayBuffer(4));
const flipper = new Worker(
  `const { workerData: { ends, stop, honest, lying } } = require('worker_threads');
   const spin = () => { for (let i = 0, n = 2000 + Math.random() * 20000; i < n; i++); };
   while (Atomics.load(stop, 0) === 0) {
     ends.set(honest); spin();
     ends.set(lying); spin();
   }`,
  { eval: true, workerData: { ends, stop, honest: [big.length, bytes.length], lying: [lie, lie + (1 << 30)] } },
);

const repo = new native.NativeRepository('mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=100&connectTimeoutMS=100', 'race', 'c', undefined);
(async () => {
  await once(flipper, 'online');
  const seen = { refusedAtOnce: 0, answered: 0 };
  for (let round = 0; round < Number(process.argv[2] || 100); round++) {
    const batches = [];
    for (let i = 0; i < 10; i++) {
      try {
        batches.push(repo.insertBatch(bytes, ends, 0, 0));
      } catch {
        seen.refusedAtOnce++;
      }
    }
    seen.answered += (await Promise.allSettled(batches)).length;
  }
  Atomics.store(stop, 0, 1);
  await flipper.terminate();
  await repo.close();
  console.log(JSON.stringify(seen));
})();
