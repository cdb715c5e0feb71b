'use strict';

// The doctor: finds what a collection holds that the unique (order, version)
// index cannot be built over, or that the versions' promises do not allow,
// and with `fix` repairs it, deleting nothing (docs/drop-in.md, "The
// doctor"). It works with the official driver's collection, handed in by
// bin/atomic-asset-version.js; everything here is plain reads and
// single-document conditional updates, so it runs as well on FerretDB.
//
// Safe to run twice and to rerun after a crash: every change is one update
// of one document, conditioned on the values the plan was made from (version
// and label together), and each pass plans from what the collection holds
// then. A change whose document moved meanwhile matches nothing and is left
// to the next pass. Once the unique index exists, a change that would take a
// number a concurrent upload just took fails on the index (E11000) and is
// planned again above the new top.

const { UNIQUE_REFUSAL } = require('./duplicate_key');

// Passes in a row that change nothing before the doctor gives up. Passes that
// change something are not counted: an app uploading meanwhile can take the
// number a pass planned, many times over, and each pass still repairs more.
const MAX_IDLE_PASSES = 10;
// Numbers tried one above the other for one change before its order is
// planned again from a fresh read.
const MAX_TAKEN_IN_A_ROW = 100;

const isVersion = (v) => Number.isSafeInteger(v) && v >= 1;

/** A key that groups documents of one order: the value's type and its text. */
function orderKey(value) {
  if (value && typeof value === 'object' && value._bsontype === 'ObjectId') return `oid:${value.toHexString()}`;
  if (typeof value === 'string') return `str:${value}`;
  return `other:${JSON.stringify(value)}`;
}

/** When a document was created, for "earliest first": createdAt, else its ObjectId's time, else last. */
function createdMs(doc) {
  if (doc.createdAt instanceof Date && !Number.isNaN(doc.createdAt.getTime())) return doc.createdAt.getTime();
  if (doc._id && doc._id._bsontype === 'ObjectId') return doc._id.getTimestamp().getTime();
  return Number.POSITIVE_INFINITY;
}

function idText(id) {
  if (id && id._bsontype === 'ObjectId') return id.toHexString();
  return typeof id === 'string' ? id : JSON.stringify(id);
}

const earliestFirst = (a, b) => createdMs(a) - createdMs(b) || (idText(a._id) < idText(b._id) ? -1 : idText(a._id) > idText(b._id) ? 1 : 0);

/** Every document's _id, order, version, label and createdAt, grouped by order. */
async function scan(coll, fields) {
  const projection = { _id: 1, [fields.orderId]: 1, [fields.version]: 1, createdAt: 1 };
  if (fields.versionLabel !== null) projection[fields.versionLabel] = 1;
  const orders = new Map();
  const noOrder = [];
  let documents = 0;
  for await (const doc of coll.find({}, { projection })) {
    documents++;
    const order = doc[fields.orderId];
    if (order === undefined || order === null) {
      noOrder.push(doc);
      continue;
    }
    const key = orderKey(order);
    if (!orders.has(key)) orders.set(key, { order, docs: [] });
    orders.get(key).docs.push(doc);
  }
  return { orders, noOrder, documents };
}

/**
 * What is wrong, and the changes that repair it: per order, the earliest
 * created document keeps a duplicated number; the later ones, then the
 * documents without a numeric version (earliest first), get the numbers
 * after the order's top; every label that does not say its version is
 * rewritten.
 */
function diagnose({ orders, noOrder }, fields) {
  const duplicates = [];
  const unversioned = [];
  const labels = [];
  const changes = [];
  const labelOf = (doc) => (fields.versionLabel === null ? undefined : doc[fields.versionLabel]);
  for (const { order, docs } of orders.values()) {
    const byVersion = new Map();
    const legacy = [];
    let top = 0;
    for (const doc of docs) {
      const v = doc[fields.version];
      if (!isVersion(v)) {
        legacy.push(doc);
        continue;
      }
      top = Math.max(top, v);
      if (!byVersion.has(v)) byVersion.set(v, []);
      byVersion.get(v).push(doc);
    }
    const moved = [];
    for (const [version, holders] of [...byVersion].sort((a, b) => a[0] - b[0])) {
      if (holders.length < 2) continue;
      holders.sort(earliestFirst);
      duplicates.push({ order, version, ids: holders.map((d) => d._id), kept: holders[0]._id });
      moved.push(...holders.slice(1));
    }
    legacy.sort(earliestFirst);
    for (const doc of legacy) unversioned.push({ order, _id: doc._id, version: doc[fields.version] });
    const renumbered = new Set();
    for (const doc of [...moved, ...legacy]) {
      top++;
      renumbered.add(doc);
      changes.push(change(doc, order, top, fields, labelOf(doc)));
    }
    if (fields.versionLabel === null) continue;
    for (const doc of docs) {
      const v = doc[fields.version];
      if (!isVersion(v) || labelOf(doc) === `v${v}`) continue;
      labels.push({ order, _id: doc._id, version: v, label: labelOf(doc) });
      if (!renumbered.has(doc)) changes.push(change(doc, order, v, fields, labelOf(doc)));
    }
  }
  return { duplicates, unversioned, labels, noOrder: noOrder.map((d) => d._id), changes };
}

function change(doc, order, version, fields, label) {
  return {
    _id: doc._id,
    order,
    from: { version: doc[fields.version], label },
    to: { version, label: fields.versionLabel === null ? undefined : `v${version}` },
  };
}

/** The change moved `by` numbers higher (a renumbering only; a label fix keeps its number). */
function shifted(c, by, fields) {
  if (by === 0 || c.to.version === c.from.version) return c;
  const version = c.to.version + by;
  return { ...c, to: { version, label: fields.versionLabel === null ? undefined : `v${version}` } };
}

// A unique index's refusal: E11000 from MongoDB; FerretDB v1 answers with
// its backend's words (lib/duplicate_key.js).
const isDuplicate = (err) => Boolean(err) && (err.code === 11000 || UNIQUE_REFUSAL.test(String(err.message)));

const hasDataProblems = (d) => d.duplicates.length + d.unversioned.length + d.labels.length > 0;

/**
 * One change as one conditional update: applied only if the document still
 * holds what the plan saw. Resolves 'applied', 'moved' (it changed meanwhile)
 * or 'taken' (the unique index refused the number: a concurrent upload).
 */
async function apply(coll, c, fields) {
  const was = (value) => (value === undefined ? { $exists: false } : value);
  const filter = { _id: c._id, [fields.version]: was(c.from.version) };
  const set = { [fields.version]: c.to.version };
  if (fields.versionLabel !== null) {
    filter[fields.versionLabel] = was(c.from.label);
    set[fields.versionLabel] = c.to.label;
  }
  try {
    const result = await coll.updateOne(filter, { $set: set });
    return result.matchedCount === 1 ? 'applied' : 'moved';
  } catch (err) {
    if (isDuplicate(err)) return 'taken';
    throw err;
  }
}

/** The state of the unique (order, version) index: 'unique', 'absent', 'not-unique' or 'partial'. */
async function indexState(coll, fields) {
  let specs;
  try {
    specs = await coll.listIndexes().toArray();
  } catch (err) {
    if (err && err.code === 26) return { state: 'absent' }; // no collection yet
    throw err;
  }
  let found = { state: 'absent' };
  for (const spec of specs) {
    const keys = Object.keys(spec.key || {});
    if (keys.length !== 2 || !keys.includes(fields.orderId) || !keys.includes(fields.version)) continue;
    if (spec.unique && !spec.partialFilterExpression) return { state: 'unique', name: spec.name };
    found = { state: spec.partialFilterExpression ? 'partial' : 'not-unique', name: spec.name };
  }
  return found;
}

/**
 * Examines the collection; with `fix`, repairs it and builds the index.
 * `onChange(change)` hears of each change as it is applied (the caller
 * prints it, so it can be kept); `afterChange` is for tests that kill the
 * process halfway. Resolves with the report.
 */
async function doctor(coll, fields, { fix = false, onChange = () => {}, afterChange = () => {} } = {}) {
  const applied = [];
  let passes = 0;
  let idlePasses = 0;
  let indexBuilt = false;
  let diagnosis;
  let first;
  let index;
  for (;;) {
    passes++;
    const scanned = await scan(coll, fields);
    diagnosis = diagnose(scanned, fields);
    index = await indexState(coll, fields);
    if (!first) first = { ...diagnosis, documents: scanned.documents, index };
    if (!fix || idlePasses >= MAX_IDLE_PASSES) break;
    if (hasDataProblems(diagnosis)) {
      const appliedBefore = applied.length;
      // A number a concurrent upload took (the unique index refused it) is
      // tried again one higher at once: a fresh scan is slower than the app's
      // next upload, so a pass planned again from it would lose every time.
      // Every number below the one applied is then held, so no gap opens.
      const shift = new Map();
      const stale = new Set();
      for (const planned of diagnosis.changes) {
        const key = orderKey(planned.order);
        if (stale.has(key)) continue;
        let c = shifted(planned, shift.get(key) || 0, fields);
        let outcome = await apply(coll, c, fields);
        for (let tries = 1; outcome === 'taken' && tries < MAX_TAKEN_IN_A_ROW; tries++) {
          shift.set(key, (shift.get(key) || 0) + 1);
          c = shifted(planned, shift.get(key), fields);
          outcome = await apply(coll, c, fields);
        }
        if (outcome === 'applied') {
          applied.push(c);
          onChange(c);
          await afterChange(applied.length);
        } else if (outcome === 'taken') {
          stale.add(key); // planned again from a fresh read
        }
      }
      idlePasses = applied.length > appliedBefore ? 0 : idlePasses + 1;
      continue;
    }
    if (index.state === 'absent' && diagnosis.noOrder.length === 0) {
      try {
        await coll.createIndex({ [fields.orderId]: 1, [fields.version]: 1 }, { unique: true, name: `${fields.orderId}_1_${fields.version}_1` });
        indexBuilt = true;
      } catch (err) {
        idlePasses++;
        // Documents stored meanwhile by a writer without the index (an old
        // deployment of the racy design) made new duplicates: repair again.
        if (!isDuplicate(err)) throw err;
      }
      continue;
    }
    break;
  }
  const problems = hasDataProblems(diagnosis) || diagnosis.noOrder.length > 0 || index.state === 'not-unique' || index.state === 'partial';
  return { found: first, remaining: diagnosis, index, changes: applied, indexBuilt, passes, clean: !problems };
}

module.exports = { doctor, scan, diagnose, indexState };
