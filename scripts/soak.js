'use strict';

// The fault soak: several writer processes (and worker threads) upload
// through the fail proxy to a few hot orders and many cold ones while a
// seeded schedule kills and restarts the server, loses and stalls replies,
// makes outages longer than serverSelectionTimeoutMS, injects write-concern
// errors and labelled WriteConflicts, and deletes assets directly. At the
// end the checker (scripts/soak-check.js) holds the history of every call
// against what the database holds.
//
//   npm run soak                       60 seconds, a random seed
//   npm run soak -- --minutes 10
//   npm run soak -- --seconds 30 --seed 42
//
// It starts its own FerretDB (and may kill it) unless MONGODB_URI is set; a
// server it did not start is never killed. All traffic stays on 127.0.0.1.
// Exit: 0 no violation, 1 violations, 2 the soak itself failed.
const { fork } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { MongoClient } = require('mongodb');
const { startFerretDB, defaultBackend } = require('./ferretdb');
const { startPostgres } = require('./postgres');
const { startFailProxy } = require('../test/support/fail-proxy');
const { faults } = require('./soak-faults');
const { check, history } = require('./soak-check');
const { rng } = require('./soak-random');

const SELECTION_TIMEOUT_MS = 1500;
// Long enough that a loaded machine's slow read is not taken for a fault
// (FerretDB/SQLite serializes writers; at 2.5 s, a 2-core box shared with
// other work turned ordinary reads into unknown outcomes); stalls last longer.
const SOCKET_TIMEOUT_MS = 5000;
const SETTLE_MS = 90000; // after the faults stop, for retries and settling
// Every call must end within its bound, whatever the replies: the writers'
// recoveryTimeMS (the default), plus each of its attempts (maxRetries
// conflicts, the default 5, and one more) waiting out the driver's timeouts
// and the longest backoff; a fault that takes the server away lasts at most
// a few seconds, well inside it.
const RECOVERY_TIME_MS = 60000;
const CALL_BOUND_MS = RECOVERY_TIME_MS + (5 + 1) * (SELECTION_TIMEOUT_MS + SOCKET_TIMEOUT_MS + 1000);
const HOT = ['hot-0', 'hot-1', 'hot-2', 'hot-3'];
const COLD = 80;
// Orders that never see a deletion: their histories must be exactly 1..n.
const NO_DELETE = new Set(['hot-0', 'hot-1', ...Array.from({ length: COLD / 2 }, (_, i) => `cold-${2 * i}`)]);

function parseArgs(argv) {
  const args = { seconds: 60, seed: Math.floor(Math.random() * 2 ** 31), keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v < 0) throw new Error(`${a} needs a number`);
      return v;
    };
    if (a === '--minutes') args.seconds = value() * 60;
    else if (a === '--seconds') args.seconds = value();
    else if (a === '--seed') args.seed = Math.floor(value());
    else if (a === '--keep') args.keep = true;
    else throw new Error(`unknown argument ${a} (use --minutes N, --seconds N, --seed N, --keep)`);
  }
  return args;
}

const log = (line) => process.stdout.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The server: our own FerretDB (killable), or MONGODB_URI's (never killed). */
async function openServer(dir) {
  if (process.env.MONGODB_URI) {
    const u = new URL(process.env.MONGODB_URI);
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) throw new Error('the soak talks to 127.0.0.1 only; MONGODB_URI names another host');
    return { uri: process.env.MONGODB_URI, port: Number(u.port || 27017), canKill: false, stop: async () => {}, processes: () => [] };
  }
  const dataDir = path.join(dir, 'data');
  // Over PostgreSQL a kill is FerretDB's; the cluster under it stays up.
  const postgres = defaultBackend() === 'postgresql' ? await startPostgres({ dataDir: path.join(dir, 'postgresql') }) : null;
  const own = postgres ? { postgresqlUrl: postgres.url } : { dataDir };
  let server;
  try {
    server = await startFerretDB(own);
  } catch (err) {
    if (postgres) await postgres.stop();
    throw err;
  }
  const port = server.port;
  return {
    uri: server.uri,
    port,
    canKill: true,
    processes: () => [server.process],
    async kill(downMs) {
      await server.stop('SIGKILL');
      await sleep(downMs);
      let lastError;
      for (let i = 0; i < 5; i++) {
        try {
          server = await startFerretDB({ ...own, port });
          return;
        } catch (err) {
          lastError = err;
          await sleep(500);
        }
      }
      const err = new Error(`FerretDB did not restart on port ${port}: ${lastError.message}`);
      err.fatal = true;
      throw err;
    },
    async stop() {
      await server.stop();
      if (postgres) await postgres.stop();
    },
  };
}

function startWriters(jobs) {
  return jobs.map((job) => {
    const child = fork(path.join(__dirname, 'soak-writer.js'), [JSON.stringify(job)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ id: job.id, code, signal })));
    return { child, exited, ids: [job.id, ...(job.threads || []).map((t) => t.id)] };
  });
}

function readRecords(dir, ids) {
  const uploads = [];
  const writerStats = {};
  const missing = [];
  for (const id of ids) {
    const file = path.join(dir, `records-${id}.json`);
    if (!fs.existsSync(file)) {
      missing.push(id);
      continue;
    }
    const data = JSON.parse(fs.readFileSync(file, 'utf8'));
    writerStats[id] = data.stats;
    for (const r of data.records) uploads.push({ ...r, writer: id });
  }
  return { uploads, writerStats, missing };
}

function summarize(uploads) {
  const attempts = uploads.flatMap((u) => u.attempts);
  const withUnknown = uploads.filter((u) => u.attempts.some((a) => a.outcome === 'unknown'));
  const errors = {};
  for (const a of attempts) if (a.outcome !== 'resolved') errors[`${a.name} ${a.code}`] = (errors[`${a.name} ${a.code}`] || 0) + 1;
  return {
    uploads: uploads.length,
    resolved: uploads.filter((u) => u.final === 'resolved').length,
    failed: uploads.filter((u) => u.final === 'failed').length,
    unsettled: uploads.filter((u) => u.final === 'unsettled').length,
    calls: attempts.length,
    unknownOutcomes: attempts.filter((a) => a.outcome === 'unknown').length,
    unknownSettled: withUnknown.filter((u) => u.final !== 'unsettled').length,
    retriedAfterFailure: uploads.filter((u) => u.attempts.some((a, i) => a.outcome === 'failed' && i < u.attempts.length - 1)).length,
    longestCallMs: attempts.reduce((m, a) => Math.max(m, a.end - a.start), 0),
    callBoundMs: CALL_BOUND_MS,
    callsPastBound: attempts.filter((a) => a.end - a.start > CALL_BOUND_MS).length,
    errors,
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aav-soak-'));
  fs.chmodSync(dir, 0o755); // PostgreSQL's server user (as root: postgres) enters it
  log(`seed ${args.seed}, ${args.seconds} s of faults, records in ${dir}`);
  const random = rng(args.seed);
  const seedOf = () => Math.floor(random() * 2 ** 31);
  const children = [];
  let server = null;
  let proxy = null;
  let direct = null;
  // No orphans: whatever happens, the writers and our server die with us.
  const killAll = () => {
    for (const w of children) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    for (const p of server ? server.processes() : []) if (p.exitCode === null) p.kill('SIGKILL');
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      killAll();
      process.exit(2);
    });
  }

  try {
    server = await openServer(dir);
    direct = await MongoClient.connect(server.uri, { serverSelectionTimeoutMS: 10000 });
    const dbName = `aav_soak_${args.seed}_${Date.now().toString(36)}`;
    const collection = 'assets';
    const db = direct.db(dbName);
    await db.collection(collection).createIndex({ orderId: 1, version: 1 }, { unique: true, name: 'orderId_1_version_1' });
    proxy = await startFailProxy({ upstreamPort: server.port });
    const uri = `mongodb://127.0.0.1:${proxy.port}/?serverSelectionTimeoutMS=${SELECTION_TIMEOUT_MS}&connectTimeoutMS=1000&socketTimeoutMS=${SOCKET_TIMEOUT_MS}`;

    const runUntil = Date.now() + 3000 + args.seconds * 1000;
    const settleUntil = runUntil + SETTLE_MS;
    const base = { uri, dbName, collection, dir, hot: HOT, coldCount: COLD, hotShare: 0.5, runUntil, settleUntil, pauseMs: 20 };
    const jobs = [
      {
        ...base,
        id: 'p0',
        seed: seedOf(),
        lanes: 4,
        options: {},
        threads: [
          { ...base, id: 'p0-t0', seed: seedOf(), lanes: 2, options: { coalesce: false } },
          { ...base, id: 'p0-t1', seed: seedOf(), lanes: 2, options: {} },
        ],
      },
      { ...base, id: 'p1', seed: seedOf(), lanes: 4, options: { coalesce: false } },
      { ...base, id: 'p2', seed: seedOf(), lanes: 4, options: { writeConcern: { w: 1, wtimeoutMS: 2000 } } },
    ];
    children.push(...startWriters(jobs));

    const deletions = [];
    const counts = {};
    const deletable = [...HOT, ...Array.from({ length: COLD }, (_, i) => `cold-${i}`)].filter((o) => !NO_DELETE.has(o));
    const schedule = faults({
      random,
      proxy,
      server,
      direct: db,
      collection,
      deletable,
      deletions,
      counts,
      selectionTimeoutMS: SELECTION_TIMEOUT_MS,
      socketTimeoutMS: SOCKET_TIMEOUT_MS,
      log,
    });
    await sleep(2000); // the writers connect before the first fault
    let writersDone = false;
    const watch = Promise.all(children.map((w) => w.exited)).then(() => {
      writersDone = true;
    });
    log('faults start');
    await schedule(runUntil);
    proxy.configureFailPoint({ mode: 'off' });
    await proxy.endOutage();
    proxy.releaseStalled();
    log(`faults stop; writers settle what is open (at most ${SETTLE_MS / 1000} s)`);
    while (!writersDone && Date.now() < settleUntil + 40000) await sleep(200);
    if (!writersDone) killAll();
    await watch;
    const exits = await Promise.all(children.map((w) => w.exited));

    const ids = children.flatMap((w) => w.ids);
    const { uploads, writerStats, missing } = readRecords(dir, ids);
    const docs = (
      await db
        .collection(collection)
        .find({}, { projection: { _id: 1, orderId: 1, version: 1, tag: 1 } })
        .toArray()
    ).map((d) => ({ ...d, _id: String(d._id) }));
    // A deletion whose reply was lost counts only if the document is gone.
    const present = new Set(docs.map((d) => d._id));
    const confirmedDeletions = deletions.filter((x) => x.end !== Infinity || !present.has(x._id));

    const history_ = { uploads, deletions: confirmedDeletions, docs };
    const violations = check(history_);
    for (const id of missing) violations.push({ kind: 'writer-crashed', orderId: null, detail: { writer: id, exits } });
    for (const u of uploads) {
      for (const a of u.attempts) {
        if (a.end - a.start > CALL_BOUND_MS) violations.push({ kind: 'call-past-bound', orderId: u.orderId, detail: { tag: u.tag, ms: a.end - a.start, boundMs: CALL_BOUND_MS } });
      }
    }

    const summary = summarize(uploads);
    // Not a violation, but worth seeing: a document the soak deleted that a
    // later call (a retry or a settle with the same _id) stored again.
    const deletedIds = new Set(confirmedDeletions.map((x) => x._id));
    summary.storedAgainAfterDelete = docs.filter((d) => deletedIds.has(d._id)).length;
    const report = {
      seed: args.seed,
      seconds: args.seconds,
      server: server.canKill ? 'FerretDB (own, killable)' : 'MONGODB_URI',
      ...summary,
      stored: docs.length,
      deletions: confirmedDeletions.length,
      scheduled: counts,
      injectedByProxy: proxy.stats.injected,
      commandsSeenByProxy: proxy.stats.seen,
      writerStats,
      violations: violations.length,
    };
    fs.writeFileSync(path.join(dir, 'report.json'), JSON.stringify({ ...report, violationList: violations }, null, 2));
    fs.writeFileSync(path.join(dir, 'final.json'), JSON.stringify({ deletions: confirmedDeletions, docs }));
    printReport(report, violations, history_);
    if (violations.length === 0 && !args.keep) {
      await db.dropDatabase().catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
    } else {
      log(`history and report kept in ${dir}`);
    }
    return violations.length === 0 ? 0 : 1;
  } finally {
    killAll();
    if (proxy) await proxy.close();
    if (direct) await direct.close().catch(() => {});
    if (server) await server.stop().catch(() => {});
  }
}

function printReport(report, violations, hist) {
  const { writerStats, commandsSeenByProxy, ...shown } = report;
  log(`seed ${report.seed}`);
  for (const [k, v] of Object.entries(shown)) log(`${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`);
  const byKind = {};
  for (const v of violations) byKind[v.kind] = (byKind[v.kind] || 0) + 1;
  log(`violations: ${violations.length} ${JSON.stringify(byKind)}`);
  const shownOrders = new Set();
  for (const v of violations.slice(0, 40)) {
    log(`VIOLATION ${v.kind} order ${v.orderId}: ${JSON.stringify(v.detail)}`);
    if (v.orderId && !shownOrders.has(v.orderId) && shownOrders.size < 8) {
      shownOrders.add(v.orderId);
      const lines = history(v.orderId, hist);
      const cut = lines.length > 60 ? [...lines.slice(0, 20), `… ${lines.length - 40} more …`, ...lines.slice(-20)] : lines;
      for (const line of cut) process.stdout.write(`    ${line}\n`);
    }
  }
  if (violations.length > 40 || shownOrders.size === 8) log('(the rest is in report.json)');
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`soak failed: ${err.stack}\n`);
    process.exit(2);
  },
);
