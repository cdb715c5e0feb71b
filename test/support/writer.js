'use strict';

// A second process that writes uploads to one order, to provoke real
// conflicts. argv[2] is JSON: { uri, dbName, collection, orderId, count,
// options }, or `uploads: [orderId, …]` (one upload each) instead of orderId
// and count; with `objectIdOrder`, orderId is an ObjectId's hex. Prints one
// JSON line: { ok, failed, versions, errors, stats,
// assets: [[fileName, version], …] }.
const { ObjectId } = require('bson');
const { AssetRepository } = require('../..');

async function main() {
  const job = JSON.parse(process.argv[2]);
  const repo = new AssetRepository({ uri: job.uri, dbName: job.dbName, collection: job.collection, ...job.options });
  await repo.ensureIndex();
  if (process.send) {
    process.send('ready');
    await new Promise((resolve) => process.once('message', resolve)); // "go"
  }
  const orderId = job.objectIdOrder ? new ObjectId(job.orderId) : job.orderId;
  const orders = job.uploads || Array.from({ length: job.count }, () => orderId);
  const results = await Promise.allSettled(orders.map((orderId, i) => repo.createWithAtomicVersion({ orderId, fileName: `p${process.pid}-${i}.pdf`, fileSize: i })));
  const fulfilled = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
  const versions = fulfilled.map((a) => a.version);
  const errors = results.filter((r) => r.status === 'rejected').map((r) => `${r.reason.name} (attempts ${r.reason.attempts}, retries ${r.reason.retries}): ${r.reason.message}`);
  const stats = repo.stats();
  await repo.close();
  process.stdout.write(
    `${JSON.stringify({ ok: versions.length, failed: errors.length, versions, errors: errors.slice(0, 3), stats, assets: fulfilled.map((a) => [a.fileName, a.version]) })}\n`,
  );
}

main().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
