'use strict';

// What the event loop pays per upload: a coalesced burst of 10 000 uploads
// (100 orders x 100) measured by the main thread's CPU time (Linux's
// per-thread schedstat; the loop's busy time, performance.eventLoopUtilization,
// beside it: that one also counts time the thread waited for a core, which on
// a small machine shared with the server is noise), with fs.readFile's p99
// during it, beside the official driver's insertMany of the same documents as
// the control. A script, not a test: run it on a quiet machine, read the ratio.
//
//   node bench/main-thread.js            (MONGODB_URI, else its own FerretDB)
//   MAIN_THREAD_ROUNDS=3 node bench/main-thread.js --json   (fewer rounds; the raw rows on a last line)
const fs = require('fs');
const os = require('os');
const { performance } = require('perf_hooks');
const { MongoClient } = require('mongodb');
const { AssetRepository } = require('..');
const { startFerretDB } = require('../scripts/ferretdb');

const N = 10000;
const ROUNDS = Number(process.env.MAIN_THREAD_ROUNDS) || 7;

const docs = (round) => Array.from({ length: N }, (_, i) => ({ orderId: `mt-${round}-${i % 100}`, fileName: `f-${i}.pdf`, mimeType: 'application/pdf', fileSize: 1024 + i }));

/** CPU time of this process's main thread so far, in ms (Linux), else NaN. */
function mainThreadCpuMs() {
  try {
    return Number(fs.readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return NaN;
  }
}

/** Main-thread CPU and busy time of run(); with `reads`, fs.readFile's p99
 * during it instead (the reads cost the loop too, so they are measured apart). */
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
  const cpu0 = mainThreadCpuMs();
  const t0 = process.hrtime.bigint();
  await run();
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpuMs = mainThreadCpuMs() - cpu0;
  const elu = performance.eventLoopUtilization(before);
  running = false;
  await reader;
  samples.sort((a, b) => a - b);
  return { cpuMs, busyMs: elu.active, wallMs, readP99ms: samples[Math.floor(samples.length * 0.99)] };
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
        const versioned = docs(round).map((d, i) => ({
          ...d,
          version: Math.floor(i / 100) + 1,
          versionLabel: `v${Math.floor(i / 100) + 1}`,
          createdAt: new Date(),
          updatedAt: new Date(),
        }));
        return () => col.insertMany(versioned, { ordered: false });
      }),
    );
  }
  await client.db(dbName).dropDatabase();
  await client.close();
  if (server) await server.stop();
  const median = (rows, key) => [...rows].map((r) => r[key]).sort((x, y) => x - y)[rows.length >> 1];
  const min = (rows, key) => Math.min(...rows.map((r) => r[key]));
  const line = (rows) => {
    const cpu = median(rows, 'cpuMs');
    return `${Math.round(N / (cpu / 1000)).toLocaleString('en-US')} uploads per main-thread CPU second (median ${cpu.toFixed(0)} ms CPU, best ${min(rows, 'cpuMs').toFixed(0)}; loop busy median ${median(rows, 'busyMs').toFixed(0)} ms of ${median(rows, 'wallMs').toFixed(0)} ms), fs.readFile p99 ${median(rows, 'readP99ms').toFixed(2)} ms`;
  };
  const ratio = (key, pick) => (pick(addon, key) / pick(driver, key)).toFixed(2);
  console.log(`${new Date().toISOString()} · ${os.cpus().length} CPUs · ${N} uploads, ${ROUNDS} rounds each, alternating`);
  console.log(`  addon:               ${line(addon)}`);
  console.log(`  driver insertMany:   ${line(driver)}`);
  console.log(`  addon / driver:      main-thread CPU ${ratio('cpuMs', median)}x (median), ${ratio('cpuMs', min)}x (best); loop busy ${ratio('busyMs', median)}x (median)`);
  if (process.argv.includes('--json')) console.log(JSON.stringify({ addon, driver }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
