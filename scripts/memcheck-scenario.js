'use strict';

// A focused scenario for valgrind: every path of the native layer once —
// coalesced bursts, real conflicts with backoff timers (two repositories, no
// coalescing), a duplicate on another unique index, validation failures,
// an unreachable server, close with work in flight.
const { AssetRepository } = require('..');

async function main() {
  const uri = process.env.MONGODB_URI;
  const dbName = `aav_memcheck_${process.pid}`;
  const a = new AssetRepository({ uri, dbName, collection: 'm' });
  const b = new AssetRepository({ uri, dbName, collection: 'm', coalesce: false, versionMemory: 0 });
  const c = new AssetRepository({ uri, dbName, collection: 'm', coalesce: false, versionMemory: 0 });
  const up = (repo, i) => repo.createWithAtomicVersion({ orderId: 'mc', fileName: `f${i}`, checksum: `s${i}` });
  await Promise.all(Array.from({ length: 100 }, (_, i) => up(a, i)));
  await Promise.allSettled(Array.from({ length: 40 }, (_, i) => up(i % 2 ? b : c, 100 + i)));
  await up(a, 5).catch(() => {});
  await a.createManyWithAtomicVersion('mc2', [{ fileName: 'x' }, { fileName: 'y' }]);
  await a.createWithAtomicVersion({ orderId: { $ne: null }, fileName: 'x' }).catch(() => {});
  await a.getNextVersion('mc');
  const down = new AssetRepository({ uri: 'mongodb://127.0.0.1:1/x?serverSelectionTimeoutMS=200', collection: 'm' });
  await down.createWithAtomicVersion({ orderId: 'o', fileName: 'f' }).catch(() => {});
  const inFlight = Promise.allSettled(Array.from({ length: 50 }, (_, i) => up(a, 200 + i)));
  await Promise.all([a.close(), b.close(), c.close(), down.close()]);
  await inFlight;
  console.log('memcheck scenario done');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
