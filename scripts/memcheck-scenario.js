'use strict';

// A focused scenario for valgrind: every path of the native layer once —
// coalesced bursts, real conflicts with backoff timers (two repositories, no
// coalescing), a duplicate on another unique index, validation failures,
// an unreachable server, close with work in flight, and through the fail
// proxy the replies that prove nothing (a batch split until the refused
// upload stands alone, an ok: 0 after a partial commit) and a type FerretDB
// cannot store. Then the native layer on its own: errors built from the
// classes lib/native.js handed over, and a native close() while a batch runs
// (the pool is destroyed after the batch's last job).
const { BSON, Decimal128 } = require('bson');
const { AssetRepository } = require('..');
const native = require('../lib/native');
const { startFailProxy } = require('../test/support/fail-proxy');

async function main() {
  const uri = process.env.MONGODB_URI;
  const dbName = `aav_memcheck_${process.pid}`;
  const a = new AssetRepository({ uri, dbName, collection: 'm' });
  const b = new AssetRepository({ uri, dbName, collection: 'm', coalesce: false });
  const c = new AssetRepository({ uri, dbName, collection: 'm', coalesce: false });
  const up = (repo, i) => repo.createWithAtomicVersion({ orderId: 'mc', fileName: `f${i}`, checksum: `s${i}` });
  await Promise.all(Array.from({ length: 100 }, (_, i) => up(a, i)));
  await Promise.allSettled(Array.from({ length: 40 }, (_, i) => up(i % 2 ? b : c, 100 + i)));
  await up(a, 5).catch(() => {});
  await a.createManyWithAtomicVersion('mc2', [{ fileName: 'x' }, { fileName: 'y' }]);
  await a.createWithAtomicVersion({ orderId: { $ne: null }, fileName: 'x' }).catch(() => {});
  await a.getNextVersion('mc');
  const down = new AssetRepository({ uri: 'mongodb://127.0.0.1:1/x?serverSelectionTimeoutMS=200', collection: 'm' });
  await down.createWithAtomicVersion({ orderId: 'o', fileName: 'f' }).catch(() => {});
  await unprovenReplies(uri, dbName);
  const inFlight = Promise.allSettled(Array.from({ length: 50 }, (_, i) => up(a, 200 + i)));
  await Promise.all([a.close(), b.close(), c.close(), down.close()]);
  await inFlight;
  await nativeClose(uri, dbName);
  console.log('memcheck scenario done');
}

async function unprovenReplies(uri, dbName) {
  const proxy = await startFailProxy({ upstreamPort: Number(new URL(uri).port || 27017) });
  const p = new AssetRepository({ uri: `mongodb://127.0.0.1:${proxy.port}/`, dbName, collection: 'p' });
  const burst = (tag, poisoned) =>
    Promise.allSettled(Array.from({ length: 8 }, (_, i) => p.createWithAtomicVersion({ orderId: `p${i % 2}`, fileName: `${tag}${i}`, note: i === poisoned ? 'poison' : '' })));
  await p.ensureIndex();
  proxy.configureFailPoint({ mode: 'alwaysOn', data: { failCommands: ['insert'], errorCode: 2, onlyIfContains: 'poison' } });
  await burst('s', 5);
  proxy.configureFailPoint({ mode: { times: 1 }, data: { failCommands: ['insert'], partialCommit: true } });
  await burst('h', -1);
  await p.createWithAtomicVersion({ orderId: 'p0', fileName: 'd', price: Decimal128.fromString('1.5') }).catch(() => {});
  await p.close();
  await proxy.close();
}

async function nativeClose(uri, dbName) {
  const r = new native.NativeRepository(uri, dbName, 'n', null);
  const docs = [0, 1, 2].map((i) => Buffer.from(BSON.serialize({ orderId: 'nc', fileName: `n${i}` })));
  docs[2].writeInt32LE(1000, docs[2].indexOf('n2') - 4); // framed, corrupt inside: its own ValidationError
  const bytes = Buffer.concat(docs);
  const ends = new Float64Array(docs.map((_, i) => docs[0].length * (i + 1)));
  const batch = r.insertBatch(bytes, ends, 5, 1000);
  await Promise.all([r.close(), r.close(), batch]);
  await r.readHighest(BSON.serialize({ orderId: 'nc' })).catch(() => {}); // RepositoryClosedError
  try {
    r.insertBatch(Buffer.alloc(0), new Float64Array(0), 5, 0);
  } catch {
    // a ValidationError, thrown
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
