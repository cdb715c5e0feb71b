'use strict';

// The benchmark: the reference design, this addon, and the raw-insert ceiling,
// side by side against the same server in one run. A script, not a test:
// machines are noisy, so read the ratios, not the absolute numbers.
//
//   npm run bench             full run (about 10 minutes on 2 cores)
//   npm run bench -- --quick  smaller counts, a smoke run
//   npm run bench -- --backend postgresql   FerretDB over PostgreSQL (default: sqlite)
//
// Writes bench/results/<date>.json (raw figures) and bench/results/throughput.svg
// (<date>-postgresql.json and throughput-postgresql.svg on PostgreSQL).
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { MongoClient } = require('mongodb');
const { AssetRepository } = require('..');
const { ReferenceRepository } = require('./reference');
const { throughputChart } = require('./chart');
const { startFerretDB } = require('../scripts/ferretdb');
const { binDir } = require('../scripts/postgres');

const QUICK = process.argv.includes('--quick');
// The FerretDB backend when no MONGODB_URI is given: --backend NAME, else AAV_BACKEND, else sqlite.
const backendArg = process.argv.findIndex((a) => a === '--backend' || a.startsWith('--backend='));
const BACKEND = backendArg < 0 ? process.env.AAV_BACKEND || 'sqlite' : process.argv[backendArg].split('=')[1] || process.argv[backendArg + 1];
const SUFFIX = `${QUICK ? '-quick' : ''}${BACKEND === 'sqlite' ? '' : `-${BACKEND}`}`;
const PREFILL = QUICK ? 10000 : 100000;
const RESULTS = path.join(__dirname, 'results');

const WORKLOADS = [
  { name: 'same order, c=1', orders: 1, concurrency: 1, total: QUICK ? 50 : 200 },
  { name: 'same order, c=10', orders: 1, concurrency: 10, total: QUICK ? 100 : 500 },
  { name: 'same order, c=100', orders: 1, concurrency: 100, total: QUICK ? 200 : 1000 },
  { name: 'same order, c=1000', orders: 1, concurrency: 1000, total: QUICK ? 1000 : 2000 },
  // One caller per order at a time: 1000 in flight, each order gets 10 uploads.
  { name: '1000 orders x 10', orders: 1000, concurrency: 1000, total: 10000 },
];

// ---- progress ------------------------------------------------------------

let progressTotal = 0;
let progressDone = 0;
function progress(label) {
  const width = 30;
  const filled = Math.round((width * progressDone) / Math.max(progressTotal, 1));
  process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${progressDone}/${progressTotal} ${label.padEnd(48).slice(0, 48)}`);
}

// ---- implementations -----------------------------------------------------

// Each run gets its own client, so that at the time cap the reference and the
// ceiling can be cut off (close(true) fails what is still queued) instead of
// loading the server during the next run.
function implementations(uri, dbName) {
  const driver = async (collection) => {
    const client = await MongoClient.connect(uri, { maxPoolSize: 100 });
    return { client, col: client.db(dbName).collection(collection) };
  };
  return {
    async reference(collection) {
      const { client, col } = await driver(collection);
      const repo = new ReferenceRepository(col);
      return {
        upload: (d) => repo.createWithAtomicVersion(d),
        retries: () => repo.retries,
        abort: () => client.close(true),
        close: () => client.close(true),
      };
    },
    async addon(collection) {
      const repo = new AssetRepository({ uri, dbName, collection });
      await repo.ensureIndex();
      return { upload: (d) => repo.createWithAtomicVersion(d), retries: () => repo.stats().retries, abort: () => {}, close: () => repo.close() };
    },
    // What the server can take: versions known in advance, no read, no conflict.
    async ceiling(collection) {
      const { client, col } = await driver(collection);
      const next = new Map();
      return {
        upload(d) {
          const version = (next.get(d.orderId) || 0) + 1;
          next.set(d.orderId, version);
          const now = new Date();
          return col.insertOne({ ...d, version, versionLabel: `v${version}`, createdAt: now, updatedAt: now });
        },
        retries: () => 0,
        abort: () => client.close(true),
        close: () => client.close(true),
      };
    },
  };
}

// ---- measuring -----------------------------------------------------------

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * Closed loop: `concurrency` callers, each uploading until `total` is issued.
 * At the time cap no new upload starts and what is still in flight is cut
 * off where the implementation allows it; those count as unfinished, not as
 * failures.
 */
async function runWorkload(impl, w, orderPrefix, capMs) {
  const latencies = [];
  let failures = 0;
  let unfinished = 0;
  let issued = 0;
  let capped = false;
  let firstError;
  const started = process.hrtime.bigint();
  const timer = setTimeout(() => {
    capped = true;
    impl.abort();
  }, capMs);
  const caller = async () => {
    while (issued < w.total && !capped) {
      const i = issued++;
      const t0 = process.hrtime.bigint();
      try {
        await impl.upload({ orderId: `${orderPrefix}-${i % w.orders}`, fileName: `file-${i}.pdf`, mimeType: 'application/pdf', fileSize: 1024 + i });
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      } catch (err) {
        if (capped) {
          unfinished++;
        } else {
          failures++;
          firstError = firstError || err.message;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(w.concurrency, w.total) }, caller));
  clearTimeout(timer);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  latencies.sort((a, b) => a - b);
  return {
    uploads: issued,
    succeeded: latencies.length,
    failures,
    unfinished,
    seconds,
    uploadsPerSec: latencies.length / seconds,
    p50ms: percentile(latencies, 50),
    p99ms: percentile(latencies, 99),
    retriesPerUpload: issued ? impl.retries() / issued : 0,
    timedOut: capped,
    firstError,
  };
}

async function prefill(col, n) {
  await col.createIndex({ orderId: 1, version: 1 }, { unique: true, name: 'orderId_1_version_1' });
  const now = new Date();
  for (let start = 0; start < n; start += 1000) {
    const docs = [];
    for (let i = start; i < Math.min(n, start + 1000); i++) {
      const version = Math.floor(i / 10000) + 1;
      docs.push({ orderId: `old-${i % 10000}`, fileName: `old-${i}.pdf`, fileSize: i, version, versionLabel: `v${version}`, createdAt: now, updatedAt: now });
    }
    await col.insertMany(docs, { ordered: false });
  }
}

/** p50/p99 of reading a small file while `load` runs (or idle). */
async function readFileLatency(ms, load) {
  const file = __filename;
  const samples = [];
  let running = true;
  const loadDone = load ? load().finally(() => (running = false)) : null;
  const end = Date.now() + ms;
  while ((load ? running : true) && Date.now() < end) {
    const t0 = process.hrtime.bigint();
    await fs.promises.readFile(file);
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  if (loadDone) await loadDone;
  samples.sort((a, b) => a - b);
  return { samples: samples.length, p50ms: percentile(samples, 50), p99ms: percentile(samples, 99) };
}

async function threadpoolProbe(uri, dbName) {
  const idle = await readFileLatency(2000);
  const repo = new AssetRepository({ uri, dbName, collection: 'fsprobe' });
  await repo.ensureIndex();
  let round = 0;
  const burst = async () => {
    const until = Date.now() + 3000;
    while (Date.now() < until) {
      await Promise.all(Array.from({ length: 1000 }, (_, i) => repo.createWithAtomicVersion({ orderId: `fs-${round}`, fileName: `f${i}` })));
      round++;
    }
  };
  const loaded = await readFileLatency(10000, burst);
  await repo.close();
  // Control: the same 3 s of load through the official driver (no threadpool
  // at all), to tell event-loop and CPU contention from threadpool use.
  const client = await MongoClient.connect(uri, { maxPoolSize: 100 });
  const col = client.db(dbName).collection('fsprobe_driver');
  let driverRound = 0;
  const driverBurst = async () => {
    const until = Date.now() + 3000;
    while (Date.now() < until) {
      await Promise.all(Array.from({ length: 1000 }, (_, i) => col.insertOne({ orderId: `fs-${driverRound}`, fileName: `f${i}`, version: i + 1 })));
      driverRound++;
    }
  };
  const control = await readFileLatency(10000, driverBurst);
  await client.close();
  return { idle, duringBursts: loaded, bursts: round, ratioP99: loaded.p99ms / idle.p99ms, duringDriverInserts: control, controlRatioP99: control.p99ms / idle.p99ms };
}

async function memoryProbe(uri, dbName, total) {
  const repo = new AssetRepository({ uri, dbName, collection: 'memprobe' });
  await repo.ensureIndex();
  const rss = [];
  for (let done = 0; done < total; done += 1000) {
    await Promise.all(Array.from({ length: 1000 }, (_, i) => repo.createWithAtomicVersion({ orderId: `mem-${(done / 1000) % 100}`, fileName: `f${done + i}`, fileSize: i })));
    if ((done + 1000) % 10000 === 0) {
      if (global.gc) global.gc();
      rss.push({ uploads: done + 1000, rssMiB: process.memoryUsage().rss / 2 ** 20 });
    }
    progressDone = Math.round(progressTotal - 1 + (done + 1000) / total);
    progress(`memory: ${done + 1000} uploads`);
  }
  const failed = repo.stats().failed;
  await repo.close();
  return { uploads: total, failed, rss, growthMiB: rss[rss.length - 1].rssMiB - rss[0].rssMiB };
}

// ---- report ----------------------------------------------------------------

function fmt(v, digits = 0) {
  return v === null || v === undefined || Number.isNaN(v) ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function table(results) {
  const lines = [
    '| collection | workload | impl | uploads/s | p50 ms | p99 ms | retries/upload | failed | done |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    lines.push(
      `| ${r.collection} | ${r.workload} | ${r.impl} | ${fmt(r.uploadsPerSec)} | ${fmt(r.p50ms, 1)} | ${fmt(r.p99ms, 1)} | ${fmt(r.retriesPerUpload, 2)} | ${r.failures} | ${r.succeeded + r.failures}/${r.total}${r.timedOut ? ` (cap: ${r.unfinished} cut off)` : ''} |`,
    );
  }
  return lines.join('\n');
}

function ratios(results) {
  const get = (collection, workload, impl) => results.find((r) => r.collection === collection && r.workload === workload && r.impl === impl);
  const out = [];
  for (const collection of [...new Set(results.map((r) => r.collection))]) {
    const a100 = get(collection, 'same order, c=100', 'addon');
    const r100 = get(collection, 'same order, c=100', 'reference');
    const aMany = get(collection, '1000 orders x 10', 'addon');
    const cMany = get(collection, '1000 orders x 10', 'ceiling');
    const a1 = get(collection, 'same order, c=1', 'addon');
    const r1 = get(collection, 'same order, c=1', 'reference');
    out.push({
      collection,
      addonFailures: results.filter((r) => r.collection === collection && r.impl === 'addon').reduce((n, r) => n + r.failures, 0),
      addonVsReferenceAt100: a100 && r100 ? a100.uploadsPerSec / r100.uploadsPerSec : null,
      addonVsCeilingAt1000x10: aMany && cMany ? aMany.uploadsPerSec / cMany.uploadsPerSec : null,
      p50AtC1: { addon: a1 && a1.p50ms, reference: r1 && r1.p50ms },
    });
  }
  return out;
}

/** The backend of a FerretDB we started, with PostgreSQL's version; '?' for one given by MONGODB_URI. */
function ferretBackend(server) {
  if (!server) return process.env.AAV_BACKEND || '?';
  if (server.backend !== 'postgresql') return 'SQLite';
  const version = execFileSync(path.join(binDir(), 'postgres'), ['--version'], { encoding: 'utf8' }).match(/\d+(\.\d+)*/);
  return `PostgreSQL ${version ? version[0] : ''}`.trim();
}

async function main() {
  let server = null;
  let uri = process.env.MONGODB_URI;
  if (!uri) {
    if (BACKEND === 'postgresql') execFileSync('bash', [path.join(__dirname, '..', 'scripts', 'setup-postgres.sh')], { stdio: 'inherit' });
    server = await startFerretDB({ backend: BACKEND });
    uri = server.uri;
  }
  const dbName = `aav_bench_${Date.now().toString(36)}`;
  const client = await MongoClient.connect(uri, { maxPoolSize: 100 });
  const db = client.db(dbName);
  const buildInfo = await db.admin().command({ buildInfo: 1 });
  const impls = implementations(uri, dbName);
  const names = ['reference', 'addon', 'ceiling'];
  const collections = [
    { label: 'fresh', capMs: 20000 },
    { label: `${PREFILL / 1000}k assets`, capMs: 20000 },
  ];
  progressTotal = collections.length * WORKLOADS.length * names.length + 3;
  const results = [];

  for (const c of collections) {
    let shared = null;
    if (c.label !== 'fresh') {
      progress(`prefilling ${PREFILL} assets`);
      shared = db.collection('prefilled');
      await prefill(shared, PREFILL);
    }
    for (const [wi, w] of WORKLOADS.entries()) {
      for (const name of names) {
        progress(`${c.label}: ${w.name}: ${name}`);
        const collection = shared ? 'prefilled' : `fresh_${wi}_${name}`;
        if (!shared) await db.collection(collection).createIndex({ orderId: 1, version: 1 }, { unique: true, name: 'orderId_1_version_1' });
        const docsBefore = await db.collection(collection).estimatedDocumentCount();
        const impl = await impls[name](collection);
        const r = await runWorkload(impl, w, `${name}-${wi}-${c.label.replace(/\W/g, '')}`, c.capMs);
        await impl.close();
        results.push({ collection: c.label, docsBefore, workload: w.name, impl: name, total: w.total, ...r });
        progressDone++;
      }
    }
  }

  progress('fs.readFile during bursts');
  const threadpool = await threadpoolProbe(uri, dbName);
  progressDone++;
  const memory = await memoryProbe(uri, dbName, QUICK ? 20000 : 100000);
  progressDone = progressTotal;
  progress('done');
  process.stderr.write('\n');

  await db.dropDatabase();
  await client.close();
  if (server) await server.stop();

  const libmongoc = execFileSync('pkg-config', ['--modversion', 'libmongoc-1.0'], { encoding: 'utf8' }).trim();
  const machine = {
    date: new Date().toISOString(),
    cpu: os.cpus()[0].model,
    cores: os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    libmongoc,
    server: buildInfo.ferretdbVersion ? `FerretDB ${buildInfo.ferretdbVersion} (${ferretBackend(server)})` : `MongoDB ${buildInfo.version}`,
    uvThreadpoolSize: Number(process.env.UV_THREADPOOL_SIZE) || 4,
    quick: QUICK,
  };
  const summary = ratios(results);
  fs.mkdirSync(RESULTS, { recursive: true });
  const stamp = machine.date.slice(0, 10);
  fs.writeFileSync(path.join(RESULTS, `${stamp}${SUFFIX}.json`), `${JSON.stringify({ machine, results, summary, threadpool, memory }, null, 2)}\n`);
  const panels = collections.map((c) => ({
    title: `${c.label} collection`,
    series: Object.fromEntries(
      names.map((n) => [n, results.filter((r) => r.collection === c.label && r.impl === n && r.workload.startsWith('same order')).map((r) => ({ c: Number(r.workload.split('=')[1]), value: r.uploadsPerSec }))]),
    ),
  }));
  fs.writeFileSync(path.join(RESULTS, `throughput${SUFFIX}.svg`), throughputChart(panels, `${machine.date.slice(0, 10)} · ${machine.cpu} · ${machine.cores} cores · ${machine.server} · Node ${machine.node}`));

  console.log(`\n${machine.date} · ${machine.cpu} (${machine.cores} cores, ${machine.memGiB} GiB) · ${machine.server} · Node ${machine.node} · libmongoc ${libmongoc}\n`);
  console.log(table(results));
  console.log('\nratios:');
  for (const s of summary) {
    console.log(
      `  ${s.collection}: addon failures ${s.addonFailures}; c=100 addon/reference ${fmt(s.addonVsReferenceAt100, 1)}x; ` +
        `1000x10 addon/ceiling ${fmt(s.addonVsCeilingAt1000x10, 2)}x; c=1 p50 addon ${fmt(s.p50AtC1.addon, 2)} ms vs reference ${fmt(s.p50AtC1.reference, 2)} ms`,
    );
  }
  console.log(
    `\nfs.readFile p99: idle ${fmt(threadpool.idle.p99ms, 2)} ms, during ${threadpool.bursts} bursts of 1000 uploads ${fmt(threadpool.duringBursts.p99ms, 2)} ms (${fmt(threadpool.ratioP99, 2)}x); ` +
      `control, the same load as plain driver inserts: ${fmt(threadpool.duringDriverInserts.p99ms, 2)} ms (${fmt(threadpool.controlRatioP99, 2)}x)`,
  );
  console.log(`memory: ${memory.uploads} uploads, ${memory.failed} failed; RSS ${memory.rss.map((r) => fmt(r.rssMiB)).join(' → ')} MiB per 10k (growth ${fmt(memory.growthMiB, 1)} MiB)`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
