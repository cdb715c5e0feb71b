'use strict';

// What the event loop pays per upload: a coalesced burst of 10 000 uploads
// (100 orders x 100) measured by the main thread's busy time
// (performance.eventLoopUtilization), with fs.readFile's p99 during it, beside
// the official driver's insertMany of the same documents as the control.
// A script, not a test: run it on a quiet machine, read the ratio.
//
//   node bench/main-thread.js            (MONGODB_URI, else its own FerretDB)
const fs = require('fs');
const { performance } = require('perf_hooks');
const { MongoClient } = require('mongodb');
const { AssetRepository } = require('..');
const { startFerretDB } = require('../scripts/ferretdb');

const N = 10000;
const ROUNDS = 7;

const docs = (round) =>
  Array.from({ length: N }, (_, i) => ({ orderId: `mt-${round}-${i % 100}`, fileName: `f-${i}.pdf`, mimeType: 'application/pdf', fileSize: 1024 + i }));

/** Main-thread busy time of run(); with `reads`, fs.readFile's p99 during it
 * instead (the reads keep the loop busy too, so they are measured apart). */
async function measure(run, reads) {
  const samples = [];
  let running = reads;
  const reader = (async () => {
    while (running) {
      const t0 = process.hrtime.bigint();
      await fs.promises.readFile(__filename);
      samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  })();
  const before = performance.eventLoopUtilization();
  const t0 = process.hrtime.bigint();
  await run();
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const elu = performance.eventLoopUtilization(before);
  running = false;
  await reader;
  samples.sort((a, b) => a - b);
  return { busyMs: elu.active, wallMs, uploadsPerBusySecond: N / (elu.active / 1000), readP99ms: samples[Math.floor(samples.length * 0.99)] };
}

async function both(make) {
  const busy = await measure(await make(), false);
  const read = await measure(await make(), true);
  return { ...busy, readP99ms: read.readP99ms };
}

async function main() {
  let server = null;
  let uri = process.env.MONGODB_URI;
  if (!uri) {
    server = await startFerretDB();
    uri = server.uri;
  }
  const dbName = `aav_mt_${Date.now().toString(36)}`;
  const client = await MongoClient.connect(uri);
  const addon = [];
  const driver = [];
  let serial = 0;
  for (let round = 0; round < ROUNDS; round++) {
    addon.push(
      await both(async () => {
        const repo = new AssetRepository({ uri, dbName, collection: `addon_${serial++}` });
        await repo.ensureIndex();
        const input = docs(round);
        return () => Promise.all(input.map((d) => repo.createWithAtomicVersion(d))).finally(() => repo.close());
      }),
    );
    driver.push(
      await both(async () => {
        const col = client.db(dbName).collection(`driver_${serial++}`);
        const versioned = docs(round).map((d, i) => ({ ...d, version: Math.floor(i / 100) + 1, versionLabel: `v${Math.floor(i / 100) + 1}`, createdAt: new Date(), updatedAt: new Date() }));
        return () => col.insertMany(versioned, { ordered: false });
      }),
    );
  }
  await client.db(dbName).dropDatabase();
  await client.close();
  if (server) await server.stop();
  const best = (rows) => rows.reduce((a, b) => (b.busyMs < a.busyMs ? b : a));
  const median = (rows) => [...rows].sort((a, b) => a.busyMs - b.busyMs)[rows.length >> 1];
  const a = best(addon);
  const d = best(driver);
  const fmt = (r) => `${Math.round(r.uploadsPerBusySecond).toLocaleString('en-US')} uploads per main-thread second (${r.busyMs.toFixed(0)} ms busy of ${r.wallMs.toFixed(0)} ms), fs.readFile p99 ${r.readP99ms.toFixed(2)} ms`;
  console.log(`${new Date().toISOString()} · ${N} uploads, best and median of ${ROUNDS} rounds each, alternating`);
  console.log(`  addon:                 ${fmt(a)}`);
  console.log(`  driver insertMany:     ${fmt(d)}`);
  console.log(`  addon / driver busy:   ${(a.busyMs / d.busyMs).toFixed(2)}x (best of each), ${(median(addon).busyMs / median(driver).busyMs).toFixed(2)}x (median of each: ${median(addon).busyMs.toFixed(0)} / ${median(driver).busyMs.toFixed(0)} ms)`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
