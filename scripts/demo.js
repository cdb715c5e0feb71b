'use strict';

// The main job: fires a burst of concurrent uploads at one order and prints
// the versions the database holds. Uses MONGODB_URI when set; otherwise
// starts a local FerretDB (data under .cache/demo-data) and stops it after.
const path = require('path');
const { MongoClient } = require('mongodb');
const { AssetRepository } = require('..');
const { startFerretDB } = require('./ferretdb');

const UPLOADS = Number(process.env.DEMO_UPLOADS || 50);

async function main() {
  let server = null;
  let uri = process.env.MONGODB_URI;
  if (!uri) {
    server = await startFerretDB({ dataDir: path.join(__dirname, '..', '.cache', 'demo-data') });
    uri = server.uri;
    console.log(`started FerretDB v1.24.2 at ${uri} (set MONGODB_URI to use your own server)`);
  }
  const dbName = 'atomic_asset_version_demo';
  const orderId = `order-${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}`;
  const repo = new AssetRepository({ uri, dbName });
  try {
    const started = process.hrtime.bigint();
    const assets = await Promise.all(
      Array.from({ length: UPLOADS }, (_, i) => repo.createWithAtomicVersion({ orderId, fileName: `proof-${i + 1}.pdf`, mimeType: 'application/pdf', fileSize: 1000 + i })),
    );
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    console.log(`${UPLOADS} concurrent uploads to ${orderId} in ${ms.toFixed(0)} ms`);
    console.log(`first caller got ${assets[0].versionLabel}, last caller got ${assets[assets.length - 1].versionLabel}`);

    const client = await MongoClient.connect(uri);
    const stored = await client.db(dbName).collection('assets').find({ orderId }).sort({ version: 1 }).toArray();
    await client.close();
    const versions = stored.map((d) => d.version);
    const gapless = versions.every((v, i) => v === i + 1);
    console.log(`the database holds ${stored.length} assets: ${stored.map((d) => d.versionLabel).join(' ')}`);
    console.log(gapless && stored.length === UPLOADS ? 'gapless, no duplicates' : 'NOT gapless: this is a bug');
    console.log('stats:', JSON.stringify(repo.stats()));
    if (!gapless) process.exitCode = 1;
  } finally {
    await repo.close();
    if (server) await server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
