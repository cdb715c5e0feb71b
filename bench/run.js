'use strict';

// The benchmark: the reference design, this addon, and two raw-insert
// ceilings (one insertOne per upload; unordered insertMany in bulk), side by
// side against the same server in one run. A script, not a test: machines
// are noisy, so read the ratios, not the absolute numbers.
//
//   npm run bench             full run (10 to 14 minutes on 2 cores)
//   npm run bench -- --quick  smaller counts, a smoke run
//   npm run bench -- --backend sqlite       FerretDB over SQLite (default: PostgreSQL)
//   npm run bench -- --size                 the size axis (bench/size.js, docs/scale.md)
//
// Writes bench/results/<date>T<time>.json (raw figures) and bench/results/throughput.svg
// (<date>T<time>-postgresql.json and throughput-postgresql.svg on PostgreSQL);
// `node bench/report.js <run.json> [<other run.json>]` prints a saved run's
// tables again, and the second run against the first.
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { MongoClient } = require('mongodb');
const { AssetRepository } = require('..');
const { ReferenceRepository } = require('./reference');
const { throughputChart } = require('./chart');
const { IMPLS, MANY_ORDERS, report, ratios, targets } = require('./report');
const { startFerretDB } = require('../scripts/ferretdb');
const { binDir } = require('../scripts/postgres');

const QUICK = process.argv.includes('--quick');
// The FerretDB backend when no MONGODB_URI is given: --backend NAME, else AAV_BACKEND, else postgresql.
const backendArg = process.argv.findIndex((a) => a === '--backend' || a.startsWith('--backend='));
const BACKEND = backendArg < 0 ? process.env.AAV_BACKEND || 'postgresql' : process.argv[backendArg].split('=')[1] || process.argv[backendArg + 1];
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
  // Every upload a new order: no order ever has two uploads to coalesce.
  { name: '10000 orders x 1', orders: 10000, concurrency: 1000, total: 10000 },
];
// The bulk ceiling's command size: the addon's maxBatchSize default.
const BULK_MAX = 1000;
// On the prefilled collection on FerretDB/SQLite the reference needs seconds
// per upload (a collection scan per attempt) and is cut off at every
// concurrency; above this one it stores nothing and leaves minutes of scans
// behind, so there it runs only up to here.
const REFERENCE_PREFILLED_MAX_C = 10;
const QUIESCE_MAX_MS = 60000;

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
      return {
        upload: (d) => repo.createWithAtomicVersion(d),
        retries: () => repo.stats().retries,
        // How many uploads a round trip carried: the point of batching.
        batches: () => repo.stats().batches,
        abort: () => {},
        close: () => repo.close(),
      };
    },
    // What the server takes one upload at a time: versions known in advance,
    // no read, no conflict, one insertOne per upload.
    async insertOne(collection) {
      const { client, col } = await driver(collection);
      const versioned = versioner();
      return {
        upload: (d) => col.insertOne(versioned(d)),
        retries: () => 0,
        abort: () => client.close(true),
        close: () => client.close(true),
      };
    },
    // What the server takes in bulk: the same documents, versions known in
    // advance, in unordered insertMany commands of up to BULK_MAX, one
    // command in flight. Uploads that arrive meanwhile wait for the next
    // command; a lone upload goes at once. No read, no conflict, no order to
    // keep: the most the addon's batches could approach.
    async bulk(collection) {
      const { client, col } = await driver(collection);
      const versioned = versioner();
      const waiting = [];
      let inFlight = false;
      const send = () => {
        if (inFlight || waiting.length === 0) return;
        inFlight = true;
        const batch = waiting.splice(0, BULK_MAX);
        col
          .insertMany(
            batch.map((b) => b.doc),
            { ordered: false },
          )
          .then(
            () => batch.forEach((b) => b.resolve()),
            (err) => {
              // Unordered: only the items named in writeErrors failed.
              const failed = new Map([].concat(err.writeErrors || []).map((e) => [e.index, e]));
              batch.forEach((b, i) => (!err.writeErrors ? b.reject(err) : failed.has(i) ? b.reject(new Error(failed.get(i).errmsg)) : b.resolve()));
            },
          )
          .finally(() => {
            inFlight = false;
            send();
          });
      };
      return {
        upload: (d) =>
          new Promise((resolve, reject) => {
            waiting.push({ doc: versioned(d), resolve, reject });
            send();
          }),
        retries: () => 0,
        abort: () => client.close(true),
        close: () => client.close(true),
      };
    },
  };
}

/** The ceilings' documents: the next version of each order, counted here. */
function versioner() {
  const next = new Map();
  return (d) => {
    const version = (next.get(d.orderId) || 0) + 1;
    next.set(d.orderId, version);
    const now = new Date();
    return { ...d, version, versionLabel: `v${version}`, createdAt: now, updatedAt: now };
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
    batches: impl.batches ? impl.batches() : undefined,
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

/** CPU seconds a process has used so far (utime + stime, clock ticks of 10 ms). */
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * A run cut off at its cap leaves the server busy: FerretDB finishes every
 * query it was sent, client gone or not, and a reference run cut off on the
 * prefilled collection leaves up to 100 collection scans. Waits (at most
 * QUIESCE_MAX_MS) until the server uses under 10 % of a core, so that the
 * next run does not pay for this one; returns the seconds waited. Only for
 * a server started here, whose process we can watch.
 */
async function quiesce(pid) {
  const started = Date.now();
  if (!pid || !fs.existsSync(`/proc/${pid}/stat`)) return 0;
  let last = cpuSeconds(pid);
  while (Date.now() - started < QUIESCE_MAX_MS) {
    await new Promise((r) => setTimeout(r, 500));
    const now = cpuSeconds(pid);
    if (now - last < 0.05) break;
    last = now;
  }
  return (Date.now() - started) / 1000;
}

/**
 * What the addon's read of its orders' top versions costs on this server,
 * on this collection, apart from any load: the read of one order (a batch
 * of one order) and of 1000 orders (a full cross-order batch), as the addon
 * sends them (src/core/attempt.c), median of 3. On MongoDB these are index
 * probes; on FerretDB/SQLite each is a collection scan.
 */
async function readProbe(col) {
  const orders = Array.from({ length: 1000 }, (_, i) => `old-${i}`);
  const median = async (read) => {
    const ms = [];
    for (let i = 0; i < 3; i++) {
      const t0 = process.hrtime.bigint();
      await read();
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return ms.sort((a, b) => a - b)[1];
  };
  return {
    docs: await col.estimatedDocumentCount(),
    oneOrderMs: await median(() => col.find({ orderId: 'old-1', version: { $gte: 1 } }, { sort: { version: -1 }, projection: { version: 1 }, limit: 1 }).toArray()),
    thousandOrdersMs: await median(() => col.find({ orderId: { $in: orders }, version: { $gte: 1 } }, { projection: { _id: 0, orderId: 1, version: 1 } }).toArray()),
  };
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

async function memoryProbe(uri, db, total) {
  const started = Date.now();
  const repo = new AssetRepository({ uri, dbName: db.databaseName, collection: 'memprobe' });
  await repo.ensureIndex();
  const rss = [];
  for (let done = 0; done < total; done += 1000) {
    await Promise.all(Array.from({ length: 1000 }, (_, i) => repo.createWithAtomicVersion({ orderId: `mem-${(done / 1000) % 100}`, fileName: `f${done + i}`, fileSize: i })));
    if ((done + 1000) % 10000 === 0) {
      if (global.gc) global.gc();
      rss.push({ uploads: done + 1000, rssMiB: process.memoryUsage().rss / 2 ** 20 });
      // Every batch reads its orders' top versions, a collection scan on
      // FerretDB/SQLite: emptied every 10 000 uploads, the collection keeps
      // this probe about memory, not about the scan (the workloads show it).
      await db.collection('memprobe').deleteMany({});
    }
    progressDone = Math.round(progressTotal - 1 + (done + 1000) / total);
    progress(`memory: ${done + 1000} uploads`);
  }
  const failed = repo.stats().failed;
  await repo.close();
  return { uploads: total, seconds: (Date.now() - started) / 1000, failed, rss, growthMiB: rss[rss.length - 1].rssMiB - rss[0].rssMiB };
}

/** The backend of a FerretDB we started, with PostgreSQL's version; '?' for one given by MONGODB_URI. */
function ferretBackend(server) {
  if (!server) return process.env.AAV_BACKEND || '?';
  if (server.backend !== 'postgresql') return 'SQLite';
  const version = execFileSync(path.join(binDir(), 'postgres'), ['--version'], { encoding: 'utf8' }).match(/\d+(\.\d+)*/);
  return `PostgreSQL ${version ? version[0] : ''}`.trim();
}

async function main() {
  const runStarted = Date.now();
  // The machine is shared: the load average beside the figures says how much.
  const loadAtStart = os.loadavg();
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
  const collections = [
    { label: 'fresh', capMs: 20000 },
    { label: `${PREFILL / 1000}k assets`, capMs: 20000 },
  ];
  progressTotal = collections.length * WORKLOADS.length * IMPLS.length + 3;
  const results = [];
  const reads = [];

  for (const c of collections) {
    let shared = null;
    if (c.label === 'fresh') {
      // The same reads on an empty collection: what a read costs before any scan.
      const empty = db.collection('readprobe_empty');
      await empty.createIndex({ orderId: 1, version: 1 }, { unique: true, name: 'orderId_1_version_1' });
      reads.push({ collection: 'empty', ...(await readProbe(empty)) });
    } else {
      progress(`prefilling ${PREFILL} assets`);
      shared = db.collection('prefilled');
      await prefill(shared, PREFILL);
      await quiesce(server && server.pid);
      progress('the read of top versions, alone');
      reads.push({ collection: c.label, ...(await readProbe(shared)) });
    }
    for (const [wi, w] of WORKLOADS.entries()) {
      for (const name of IMPLS) {
        progressDone++;
        if (shared && name === 'reference' && server && server.backend === 'sqlite' && w.concurrency > REFERENCE_PREFILLED_MAX_C) continue;
        progress(`${c.label}: ${w.name}: ${name}`);
        const collection = shared ? 'prefilled' : `fresh_${wi}_${name}`;
        if (!shared) await db.collection(collection).createIndex({ orderId: 1, version: 1 }, { unique: true, name: 'orderId_1_version_1' });
        const docsBefore = await db.collection(collection).estimatedDocumentCount();
        const impl = await impls[name](collection);
        const r = await runWorkload(impl, w, `${name}-${wi}-${c.label.replace(/\W/g, '')}`, c.capMs);
        await impl.close();
        const settleSeconds = r.timedOut ? await quiesce(server && server.pid) : 0;
        results.push({ collection: c.label, docsBefore, workload: w.name, impl: name, total: w.total, ...r, settleSeconds });
      }
    }
  }

  progress('fs.readFile during bursts');
  const threadpool = await threadpoolProbe(uri, dbName);
  progressDone++;
  const memory = await memoryProbe(uri, db, QUICK ? 20000 : 100000);
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
    runSeconds: (Date.now() - runStarted) / 1000,
    loadAverage: { start: loadAtStart, end: os.loadavg() },
  };
  const run = { machine, results, ratios: ratios(results), targets: targets(results), reads, threadpool, memory };
  fs.mkdirSync(RESULTS, { recursive: true });
  // Date and time in the name: two runs of a day are the run-to-run noise.
  const stamp = `${machine.date.slice(0, 16).replace(/:/g, '')}${SUFFIX}`;
  fs.writeFileSync(path.join(RESULTS, `${stamp}.json`), `${JSON.stringify(run, null, 2)}\n`);
  fs.writeFileSync(path.join(RESULTS, `throughput${SUFFIX}.svg`), chart(results, collections, machine));

  console.log(`\n${report(run)}`);
  console.log(`\nraw figures: bench/results/${stamp}.json`);
}

function chart(results, collections, machine) {
  const lines = collections.map((c) => ({
    title: `one order, ${c.label} collection`,
    series: Object.fromEntries(
      IMPLS.map((n) => [
        n,
        results
          .filter((r) => r.collection === c.label && r.impl === n && r.workload.startsWith('same order'))
          .map((r) => ({ c: Number(r.workload.split('=')[1]), value: r.uploadsPerSec })),
      ]),
    ),
  }));
  const groups = collections.flatMap((c) =>
    MANY_ORDERS.map((w) => ({
      label: [w.replace(' x ', ' × '), c.label],
      values: Object.fromEntries(IMPLS.map((n) => [n, (results.find((r) => r.collection === c.label && r.workload === w && r.impl === n) || {}).uploadsPerSec || 0])),
    })),
  );
  return throughputChart(
    lines,
    { title: 'many orders, c=1000', groups },
    `${machine.date.slice(0, 10)} · ${machine.cpu} · ${machine.cores} cores · ${machine.server} · Node ${machine.node}`,
  );
}

// --size: the size axis instead (bench/size.js).
(process.argv.includes('--size') ? require('./size').main() : main()).catch((err) => {
  console.error(err);
  process.exit(1);
});
