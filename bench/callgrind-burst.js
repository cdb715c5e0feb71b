'use strict';

// A fixed workload to count the main thread's instructions under callgrind:
// a 200-upload warm-up, then 10 000 uploads (100 orders x 100) in one
// Promise.all burst through createWithAtomicVersion. A script, not a test
// (issue #19). Needs MONGODB_URI.
//
//   valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=cg.out \
//     node bench/callgrind-burst.js
//   callgrind_annotate --inclusive=yes cg.out-01    (thread 1 is the main thread)
//
// Compare two builds by their main-thread totals and by the Node-API calls the
// results cost (batch_results is inlined into batch_complete); the totals move
// by some tens of millions between runs with the garbage collector's timing.
const { MongoClient } = require('mongodb');
const { AssetRepository } = require('..');

const N = Number(process.env.CG_N) || 10000;

async function main() {
  const uri = process.env.MONGODB_URI;
  if (!uri) throw new Error('set MONGODB_URI');
  const dbName = `aav_cg_${Date.now().toString(36)}`;
  const repo = new AssetRepository({ uri, dbName, collection: 'c' });
  await repo.ensureIndex();
  await Promise.all(
    Array.from({ length: 200 }, (_, i) => repo.createWithAtomicVersion({ orderId: `w-${i % 10}`, fileName: `w-${i}.pdf`, mimeType: 'application/pdf', fileSize: i })),
  );
  const docs = Array.from({ length: N }, (_, i) => ({ orderId: `cg-${i % 100}`, fileName: `f-${i}.pdf`, mimeType: 'application/pdf', fileSize: 1024 + i }));
  const stored = await Promise.all(docs.map((d) => repo.createWithAtomicVersion(d)));
  const { batches, retries } = repo.stats();
  console.log(JSON.stringify({ stored: stored.length, lastVersion: stored[N - 1].version, batches, retries }));
  await repo.close();
  const client = await MongoClient.connect(uri);
  await client.db(dbName).dropDatabase();
  await client.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
