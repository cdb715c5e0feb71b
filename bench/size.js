'use strict';

// The benchmark's size axis: does an upload's cost grow with the collection?
// The addon's c=1 uploads to one order and 1000 orders x 10 at c=1000, with
// the insertOne ceiling beside the latter, on a fresh collection and on
// collections already holding other orders' assets (10 each), all in one run
// against one server, as ratios to the fresh collection's figures. Also what
// the two reads of a batch of many orders' tops cost alone (read_tops.h): one
// find of all of them, and one find per order.
//
//   npm run bench -- --size                       default backend, 0 / 100 000 / 1 000 000
//   npm run bench -- --size --backend sqlite --sizes 0,20000 --each-orders 20
//   npm run bench -- --size --sizes 0,100000,1000000,0 --one-find-max 100000   fresh again at the end: the drift
//
// Writes bench/results/<date>T<time>-size-<backend>.json.
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { MongoClient } = require('mongodb');
const { AssetRepository } = require('..');
const { startFerretDB, defaultBackend } = require('../scripts/ferretdb');

const arg = (name, fallback) => {
  const i = process.argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return fallback;
  return process.argv[i].includes('=') ? process.argv[i].split('=')[1] : process.argv[i + 1];
};
const BACKEND = arg('backend', process.env.AAV_BACKEND || defaultBackend());
const SIZES = arg('sizes', '0,100000,1000000').split(',').map(Number);
const CAP_MS = Number(arg('cap-seconds', 120)) * 1000;
// The one find of 1000 orders decodes the whole collection: 3.5 minutes at
// 1 000 000 on FerretDB/PostgreSQL. Above this size it is not measured.
const ONE_FIND_MAX = Number(arg('one-find-max', Infinity));
// Orders in the probe of one find each, scaled to 1000: where each find is a
// scan (SQLite), 1000 of them take tens of minutes.
const EACH_ORDERS = Number(arg('each-orders', 1000));
const RESULTS = path.join(__dirname, 'results');

const fmt = (v, digits = 0) =>
  v === null || v === undefined || Number.isNaN(v) ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : null;
}

/** Closed loop: `concurrency` callers upload until `total` are issued or the cap. */
async function run(upload, { orders, concurrency, total }, prefix) {
  const latencies = [];
  let failures = 0;
  let issued = 0;
  let firstError;
  const deadline = Date.now() + CAP_MS;
  const started = process.hrtime.bigint();
  const caller = async () => {
    while (issued < total && Date.now() < deadline) {
      const i = issued++;
      const t0 = process.hrtime.bigint();
      try {
        await upload({ orderId: `${prefix}-${i % orders}`, fileName: `file-${i}.pdf`, mimeType: 'application/pdf', fileSize: 1024 + i });
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      } catch (err) {
        failures++;
        firstError = firstError || err.message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, caller));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  latencies.sort((a, b) => a - b);
  return {
    issued,
    total,
    succeeded: latencies.length,
    failures,
    firstError,
    seconds,
    uploadsPerSec: latencies.length / seconds,
    p50ms: percentile(latencies, 50),
    p99ms: percentile(latencies, 99),
    capped: issued < total,
  };
}

/** n assets of other orders, 10 each, as the addon stores them; unordered insertMany of 1000, 4 in flight. */
async function prefill(col, n) {
  const now = new Date();
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const start = next;
      next += 1000;
      const docs = [];
      for (let i = start; i < Math.min(n, start + 1000); i++) {
        const version = (i % 10) + 1;
        docs.push({
          orderId: `old-${Math.floor(i / 10)}`,
          fileName: `old-${i}.pdf`,
          mimeType: 'application/pdf',
          fileSize: i,
          version,
          versionLabel: `v${version}`,
          createdAt: now,
          updatedAt: now,
        });
      }
      await col.insertMany(docs, { ordered: false });
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}

/** The two reads of a batch of 1000 orders' tops, alone: median of 3 each (one at and above 1M, where the one find takes minutes), and one order's read, median of 21. */
async function readProbe(col, size) {
  const orders = Array.from({ length: 1000 }, (_, i) => `old-${Math.floor((i * Math.max(size / 10, 1)) / 1000)}`);
  const top = (orderId) => col.find({ orderId, version: { $gte: 1 } }, { sort: { version: -1 }, projection: { version: 1 }, limit: 1 }).toArray();
  const median = async (times, read) => {
    const ms = [];
    for (let i = 0; i < times; i++) {
      const t0 = process.hrtime.bigint();
      await read(i);
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return ms.sort((a, b) => a - b)[Math.floor(times / 2)];
  };
  return {
    oneOrderMs: await median(21, (i) => top(orders[i])),
    thousandOrdersOneFindMs:
      size > ONE_FIND_MAX
        ? null
        : await median(size >= 1000000 ? 1 : 3, () => col.find({ orderId: { $in: orders }, version: { $gte: 1 } }, { projection: { _id: 0, orderId: 1, version: 1 } }).toArray()),
    thousandOrdersEachMs:
      (await median(3, async () => {
        for (const o of orders.slice(0, EACH_ORDERS)) await top(o);
      })) *
      (1000 / EACH_ORDERS),
    eachOrdersMeasured: EACH_ORDERS,
  };
}

async function main() {
  const runStarted = Date.now();
  const loadAtStart = os.loadavg();
  let server = null;
  let uri = process.env.MONGODB_URI;
  if (!uri) {
    if (BACKEND === 'postgresql') execFileSync('bash', [path.join(__dirname, '..', 'scripts', 'setup-postgres.sh')], { stdio: 'inherit' });
    server = await startFerretDB({ backend: BACKEND });
    uri = server.uri;
  }
  const dbName = `aav_size_${Date.now().toString(36)}`;
  const client = await MongoClient.connect(uri, { maxPoolSize: 100 });
  const db = client.db(dbName);
  const buildInfo = await db.admin().command({ buildInfo: 1 });
  const rows = [];
  const log = (s) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);
  for (const size of SIZES) {
    const name = `size_${size}`;
    const col = db.collection(name);
    await col.createIndex({ orderId: 1, version: 1 }, { unique: true, name: 'orderId_1_version_1' });
    const t0 = Date.now();
    if (size) {
      log(`prefilling ${size}`);
      await prefill(col, size);
    }
    const prefillSeconds = (Date.now() - t0) / 1000;
    log(`${size}: reads`);
    const reads = size ? await readProbe(col, size) : null;
    const repo = new AssetRepository({ uri, dbName, collection: name });
    await repo.ensureIndex();
    log(`${size}: c=1`);
    const c1 = await run((d) => repo.createWithAtomicVersion(d), { orders: 1, concurrency: 1, total: 200 }, `c1-${size}`);
    log(`${size}: 1000 orders x 10`);
    const many = await run((d) => repo.createWithAtomicVersion(d), { orders: 1000, concurrency: 1000, total: 10000 }, `many-${size}`);
    const batches = repo.stats().batches;
    await repo.close();
    log(`${size}: insertOne ceiling`);
    const next = new Map();
    const ceiling = await run(
      (d) => {
        const version = (next.get(d.orderId) || 0) + 1;
        next.set(d.orderId, version);
        const now = new Date();
        return col.insertOne({ ...d, version, versionLabel: `v${version}`, createdAt: now, updatedAt: now });
      },
      { orders: 1000, concurrency: 1000, total: 10000 },
      `ceil-${size}`,
    );
    rows.push({ size, prefillSeconds, docs: await col.estimatedDocumentCount(), reads, c1, many, batches, ceiling });
    log(`${size}: c=1 p50 ${fmt(c1.p50ms, 1)} ms, many ${fmt(many.uploadsPerSec)}/s (${many.failures} failed), insertOne ${fmt(ceiling.uploadsPerSec)}/s`);
    await col.drop();
  }
  await db.dropDatabase().catch(() => {});
  await client.close();
  if (server) await server.stop();

  const machine = {
    date: new Date().toISOString(),
    cpu: os.cpus()[0].model,
    cores: os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    server: buildInfo.ferretdbVersion ? `FerretDB ${buildInfo.ferretdbVersion} (${server ? server.backend : '?'})` : `MongoDB ${buildInfo.version}`,
    runSeconds: (Date.now() - runStarted) / 1000,
    loadAverage: { start: loadAtStart, end: os.loadavg() },
  };
  fs.mkdirSync(RESULTS, { recursive: true });
  const stamp = `${machine.date.slice(0, 16).replace(/:/g, '')}-size-${server ? server.backend : 'uri'}`;
  fs.writeFileSync(path.join(RESULTS, `${stamp}.json`), `${JSON.stringify({ machine, rows }, null, 2)}\n`);
  console.log(report({ machine, rows }));
  console.log(`\nraw figures: bench/results/${stamp}.json`);
}

/** The size table, ratios to the fresh collection's row (the first). */
function report({ machine, rows }) {
  const fresh = rows[0];
  const lines = [
    `${machine.date.slice(0, 10)} · ${machine.cpu} · ${machine.cores} cores · ${machine.server} · Node ${machine.node} · load ${machine.loadAverage.start.map((l) => l.toFixed(1)).join('/')} → ${machine.loadAverage.end.map((l) => l.toFixed(1)).join('/')} · ${Math.round(machine.runSeconds)} s`,
    '',
    '| assets before | c=1 p50 ms | × fresh | 1000 orders × 10 uploads/s | × fresh | insertOne uploads/s | addon / insertOne | failed | batches | one order read ms | 1000 tops, one find ms | 1000 tops, one find each ms |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const done = (w) => `${fmt(w.uploadsPerSec)}${w.capped ? ` (capped: ${w.succeeded}/${w.total})` : ''}`;
    lines.push(
      `| ${fmt(r.size)} | ${fmt(r.c1.p50ms, 1)} | ${fmt(r.c1.p50ms / fresh.c1.p50ms, 2)}× | ${done(r.many)} | ${fmt(r.many.uploadsPerSec / fresh.many.uploadsPerSec, 2)}× | ${done(r.ceiling)} | ${fmt(r.many.uploadsPerSec / r.ceiling.uploadsPerSec, 2)}× | ${r.c1.failures + r.many.failures} | ${r.batches} | ${r.reads ? fmt(r.reads.oneOrderMs, 1) : '–'} | ${r.reads ? fmt(r.reads.thousandOrdersOneFindMs) : '–'} | ${r.reads ? fmt(r.reads.thousandOrdersEachMs) : '–'} |`,
    );
  }
  return lines.join('\n');
}

module.exports = { main, report };

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
