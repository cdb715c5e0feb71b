'use strict';

// One writer of the fault soak (scripts/soak.js): a child process, or a
// worker thread inside one. It uploads through the fail proxy with
// AssetRepository until `runUntil`, records every call (start, end, what it
// was told, the upload's _id), settles every OutcomeUnknownError by calling
// again with the same data and its _id, and writes its history to
// `<dir>/records-<id>.json`. Every loop ends by `settleUntil`; the process
// exits by itself even if the soak that started it has died.
const fs = require('fs');
const path = require('path');
const { Worker, isMainThread, workerData } = require('worker_threads');
const { ObjectId } = require('bson');
const { AssetRepository } = require('..');
const { rng } = require('./soak-random');

const isUnknown = (err) => err && (err.code === 'ERR_ASSET_OUTCOME_UNKNOWN' || err.name === 'OutcomeUnknownError');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const HUNG = Symbol('hung');
const { MARKED } = require('./soak-faults');

/** The promise's value, or HUNG if it has not settled within ms (the timer does not outlive it). */
function within(promise, ms) {
  let timer;
  const late = new Promise((r) => {
    timer = setTimeout(() => r(HUNG), Math.max(0, ms));
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
const hex = (id) => (id === undefined || id === null ? undefined : String(id));

/** One upload: its first call, then retries and settling calls until it is decided. */
async function upload(repo, job, random, record, data) {
  let attempt = data;
  let retries = 0;
  for (;;) {
    const start = Date.now();
    try {
      const doc = await within(repo.createWithAtomicVersion(attempt), job.settleUntil + 10000 - start);
      if (doc === HUNG) {
        record.attempts.push({ start, end: Date.now(), outcome: 'unknown', name: 'NeverSettled' });
        record.final = 'unsettled';
        record.why = 'the call neither resolved nor rejected';
        return;
      }
      record.attempts.push({ start, end: Date.now(), outcome: 'resolved', sent: hex(attempt._id), _id: hex(doc._id), version: doc.version });
      record.final = 'resolved';
      return;
    } catch (err) {
      const a = {
        start,
        end: Date.now(),
        outcome: isUnknown(err) ? 'unknown' : 'failed',
        sent: hex(attempt._id),
        name: err && err.name,
        code: err && err.code,
        _id: hex(err && err._id),
      };
      if (err && err.message) a.message = String(err.message).slice(0, 160);
      record.attempts.push(a);
      const knownId = (err && err._id) || attempt._id;
      if (a.outcome === 'unknown') {
        // Settle it: the same data with its _id, until it resolves or fails for sure.
        if (!err._id) {
          record.final = 'unsettled';
          record.why = 'OutcomeUnknownError without _id';
          return;
        }
        attempt = { ...data, _id: err._id };
      } else if (err && err.retriable && retries < 3 && Date.now() < job.runUntil) {
        // A caller retrying as invited; with the _id when it has one.
        retries += 1;
        attempt = knownId ? { ...data, _id: knownId } : data;
      } else {
        record.final = 'failed';
        return;
      }
      if (Date.now() > job.settleUntil) {
        record.final = a.outcome === 'unknown' ? 'unsettled' : 'failed';
        return;
      }
      await sleep(50 + Math.floor(random() * 250));
    }
  }
}

async function lane(repo, job, random, records, counter) {
  while (Date.now() < job.runUntil) {
    const hot = random() < job.hotShare;
    const orderId = hot ? job.hot[Math.floor(random() * job.hot.length)] : `cold-${Math.floor(random() * job.coldCount)}`;
    const tag = `${job.id}-${counter.next++}`;
    const data = { orderId, fileName: `${tag}.bin`, mimeType: 'application/octet-stream', fileSize: counter.next, tag };
    // Half the callers choose their own _id, as docs/errors.md allows.
    if (random() < 0.5) data._id = new ObjectId();
    // A few carry the value the dropOnValue fault closes the connection on.
    if (random() < 0.05) data.note = MARKED;
    const record = { tag, orderId, ownId: data._id !== undefined, attempts: [], final: null };
    records.push(record);
    await upload(repo, job, random, record, data);
    await sleep(Math.floor(random() * job.pauseMs));
  }
}

async function runWriter(job) {
  const random = rng(job.seed);
  const repo = new AssetRepository({ uri: job.uri, dbName: job.dbName, collection: job.collection, ...job.options });
  const records = [];
  const counter = { next: 0 };
  const threads = (job.threads || []).map(
    (sub) =>
      new Promise((resolve) => {
        const worker = new Worker(__filename, { workerData: sub });
        worker.on('error', (err) => {
          process.stderr.write(`soak worker ${sub.id}: ${err.stack}\n`);
          resolve();
        });
        worker.on('exit', resolve);
      }),
  );
  await Promise.all(Array.from({ length: job.lanes }, () => lane(repo, job, random, records, counter)));
  await within(repo.close(), 15000);
  const unfinished = records.filter((r) => r.final === null);
  for (const r of unfinished) r.final = 'unsettled';
  fs.writeFileSync(path.join(job.dir, `records-${job.id}.json`), JSON.stringify({ id: job.id, options: job.options, stats: repo.stats(), records }));
  await Promise.all(threads);
}

if (!isMainThread) {
  runWriter(workerData).catch((err) => {
    process.stderr.write(`soak worker ${workerData.id}: ${err.stack}\n`);
    process.exitCode = 1;
  });
} else if (require.main === module) {
  const job = JSON.parse(process.argv[2]);
  // Never outlive the soak: gone when it is gone, and by the hard deadline.
  process.on('disconnect', () => process.exit(3));
  setTimeout(() => process.exit(4), Math.max(0, job.settleUntil - Date.now()) + 30000).unref();
  runWriter(job).then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`soak writer ${job.id}: ${err.stack}\n`);
      process.exit(1);
    },
  );
}
