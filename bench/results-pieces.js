'use strict';

// The batch results protocol, piece by piece: what each costs the main thread
// per upload. A script, not a test (issue #19).
//
//   node bench/results-pieces.js            (MONGODB_URI, else its own FerretDB)
//   REPS=31 REVERSE=1 node bench/results-pieces.js   (repetitions; the pieces in reverse order)
//
// Real insertBatch results (10 000 flat uploads, 100 orders x 100, in batches
// of 1000 as the order queue makes them) are captured once; then, alternating,
// REPS times each:
//   view    BatchResults.document(i, view): the stored document rebuilt from
//           the caller's values (the "flat view"), _id read from the bytes;
//   decode  BatchResults.document(i, null): BSON.deserialize of the stored bytes;
//   items   reading each upload's numbers from the Float64Array, beside making
//           one JS object per upload from them (a lower bound on what an
//           object per upload from C would cost: napi_set_named_property is
//           dearer than a JS literal; that cost itself is measured with
//           bench/ab-main-thread.js and bench/callgrind-burst.js, see
//           docs/benchmarks.md).
// The views are made by prepareUpload, as the repository makes them: a view
// copied with {...spread} is several times slower to complete (that artefact
// once made the view look dearer than decoding). The documents made are kept
// until the repetition ends, as the callers hold them. Each figure is the main thread's CPU per upload (Linux schedstat),
// median and spread (min..max) over the repetitions.
const fs = require('fs');
const os = require('os');
const { BSON } = require('bson');
const native = require('../lib/native');
const { prepareUpload } = require('../lib/asset_input');
const { BatchResults } = require('../lib/batch_results');
const { startFerretDB } = require('../scripts/ferretdb');

const N = 10000;
const BATCH = 1000;
const REPS = Number(process.env.REPS || 21);
const L = native.batchLayout;

function cpuMs() {
  try {
    return Number(fs.readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return Number(process.hrtime.bigint()) / 1e6;
  }
}

function timed(fn) {
  const t0 = cpuMs();
  fn();
  return cpuMs() - t0;
}

async function capture(uri) {
  const dbName = `aav_pieces_${Date.now().toString(36)}`;
  const fieldNames = BSON.serialize({ orderId: 'orderId', version: 'version', versionLabel: 'versionLabel' });
  const repo = new native.NativeRepository(uri, dbName, 'pieces', undefined, fieldNames, false);
  await repo.ensureIndex();
  const uploads = Array.from({ length: N }, (_, i) => ({ orderId: `p-${i % 100}`, fileName: `f-${i}.pdf`, mimeType: 'application/pdf', fileSize: 1024 + i }));
  // Each order's uploads together, as the order queue hands them over.
  uploads.sort((a, b) => (a.orderId < b.orderId ? -1 : a.orderId > b.orderId ? 1 : 0));
  const batches = [];
  for (let at = 0; at < N; at += BATCH) {
    const prepared = uploads.slice(at, at + BATCH).map((u) => prepareUpload(u));
    const ends = new Float64Array(prepared.length);
    let end = 0;
    prepared.forEach((p, i) => (ends[i] = end += p.bytes.length));
    const raw = await repo.insertBatch(Buffer.concat(prepared.map((p) => p.bytes)), ends, 5, 60000);
    if (raw.errors) throw new Error(`capture: ${raw.errors.find(Boolean).message}`);
    batches.push({ raw, uploads: uploads.slice(at, at + BATCH), views: prepared.map((p) => p.view) });
  }
  await repo.close();
  if (batches.some((b) => b.views.some((v) => v === null))) throw new Error('capture: an upload has no view');
  return batches;
}

const pieces = {
  view(batches) {
    // Fresh views each time, made by prepareUpload outside the timed part
    // (the repository's view is the object it serialized: it exists anyway).
    const fresh = batches.map((b) => b.uploads.map((u) => prepareUpload(u).view));
    const kept = [];
    return timed(() => {
      batches.forEach((b, k) => {
        const r = new BatchResults(b.raw);
        for (let i = 0; i < fresh[k].length; i++) kept.push(r.document(i, fresh[k][i]));
      });
    });
  },
  decode(batches) {
    // The views exist here too (the caller's serialized values), and die.
    const fresh = batches.map((b) => b.uploads.map((u) => prepareUpload(u).view));
    const kept = [];
    return timed(() => {
      for (const b of batches) {
        const r = new BatchResults(b.raw);
        for (let i = 0; i < b.views.length; i++) kept.push(r.document(i, null));
      }
      fresh.length = 0;
    });
  },
  items(batches) {
    let sink = 0;
    const ms = timed(() => {
      for (const b of batches) {
        const it = b.raw.items;
        for (let i = 0; i < b.views.length; i++) sink += it[i * L.fields + L.version] + it[i * L.fields + L.retries] + it[i * L.fields + L.docEnd];
      }
    });
    return ms + sink * 0;
  },
  objects(batches) {
    let sink = 0;
    const ms = timed(() => {
      for (const b of batches) {
        const it = b.raw.items;
        const objs = new Array(b.views.length);
        for (let i = 0; i < objs.length; i++) {
          const at = i * L.fields;
          objs[i] = { version: it[at + L.version], built: it[at + L.built] === 1, createdMs: it[at + L.createdMs], retries: it[at + L.retries], docEnd: it[at + L.docEnd] };
        }
        for (const o of objs) sink += o.version + o.retries + o.docEnd;
      }
    });
    return ms + sink * 0;
  },
};

async function main() {
  let server = null;
  let uri = process.env.MONGODB_URI;
  if (!uri) {
    server = await startFerretDB();
    uri = server.uri;
  }
  const batches = await capture(uri);
  if (server) await server.stop();
  const names = process.env.REVERSE ? Object.keys(pieces).reverse() : Object.keys(pieces);
  for (const name of names) pieces[name](batches); // warm up
  const runs = Object.fromEntries(names.map((n) => [n, []]));
  for (let rep = 0; rep < REPS; rep++) for (const name of names) runs[name].push((pieces[name](batches) * 1000) / N);
  const stat = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return { median: s[s.length >> 1], min: s[0], max: s[s.length - 1] };
  };
  console.log(`${new Date().toISOString()} · ${os.cpus().length} CPUs · ${N} uploads, ${REPS} repetitions each, alternating; main-thread CPU per upload`);
  for (const name of names) {
    const { median, min, max } = stat(runs[name]);
    console.log(`  ${name.padEnd(8)} ${median.toFixed(3)} µs (min ${min.toFixed(3)}, max ${max.toFixed(3)})`);
  }
  const diff = stat(runs.decode.map((d, i) => d - runs.view[i]));
  console.log(`  decode - view, per repetition: ${diff.median.toFixed(3)} µs (min ${diff.min.toFixed(3)}, max ${diff.max.toFixed(3)})`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
