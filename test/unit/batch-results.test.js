'use strict';

// Reading a native batch's results, without a server: the layout comes from
// the addon (native.batchLayout), the stored documents are made here the way
// the addon stores them (_id first, the caller's fields, the four it owns).
const { BSON, ObjectId } = require('bson');
const native = require('../../lib/native');
const { BatchResults } = require('../../lib/batch_results');
const { prepareUpload } = require('../../lib/asset_input');

const L = native.batchLayout;

function storedBytes(_id, values, version, createdMs) {
  const doc = { _id };
  for (const [k, v] of Object.entries(values)) if (k !== '_id' && !native.ownedFields.includes(k)) doc[k] = v;
  Object.assign(doc, { version, versionLabel: `v${version}`, createdAt: new Date(createdMs), updatedAt: new Date(createdMs) });
  return BSON.serialize(doc);
}

/** Results for uploads given as { bytes, version, built, createdMs, retries } or { error }. */
function results(uploads) {
  const items = new Float64Array(uploads.length * L.fields);
  const parts = [];
  let end = 0;
  const errors = uploads.some((u) => u.error) ? new Array(uploads.length) : undefined;
  uploads.forEach((u, i) => {
    const at = i * L.fields;
    if (u.error) {
      errors[i] = u.error;
    } else {
      parts.push(u.bytes);
      end += u.bytes.length;
      items[at + L.version] = u.version;
      items[at + L.built] = u.built ? 1 : 0;
      items[at + L.createdMs] = u.built ? u.createdMs : 0;
    }
    items[at + L.retries] = u.retries || 0;
    items[at + L.docEnd] = end;
  });
  return new BatchResults({ items, docs: Buffer.concat(parts), errors });
}

test('a built flat upload is rebuilt from its values, equal to decoding its stored bytes', () => {
  const { view } = prepareUpload({ orderId: 'o1', fileName: 'a.pdf', n: 3, when: new Date(5) });
  const id = new ObjectId();
  const bytes = storedBytes(id, view, 7, 1700000000000);
  const r = results([{ bytes, version: 7, built: true, createdMs: 1700000000000, retries: 2 }]);
  const doc = r.document(0, view);
  expect(doc).toBe(view); // completed in place: no second object
  expect(doc).toStrictEqual(BSON.deserialize(bytes));
  expect(Object.keys(doc)).toEqual(['_id', 'orderId', 'fileName', 'n', 'when', 'version', 'versionLabel', 'createdAt', 'updatedAt']);
  expect(doc._id.equals(id)).toBe(true);
  expect(r.retries(0)).toBe(2);
  expect(r.error(0)).toBeUndefined();
});

test('a document read back from the server, or an upload without a view, is decoded', () => {
  const { view } = prepareUpload({ orderId: 'o1', fileName: 'mine.pdf' });
  const theirs = storedBytes('same-id', { orderId: 'o1', fileName: 'stored-earlier.pdf' }, 3, 1);
  const r = results([{ bytes: theirs, version: 3, built: false }, { bytes: theirs, version: 3, built: true, createdMs: 1 }]);
  expect(r.document(0, view).fileName).toBe('stored-earlier.pdf');
  expect(r.document(1, null).fileName).toBe('stored-earlier.pdf');
});

test('uploads that failed carry their own error; stored ones around them still read', () => {
  const { view } = prepareUpload({ orderId: 'o2', fileName: 'b.pdf' });
  const bytes = storedBytes(new ObjectId(), view, 1, 10);
  const r = results([{ bytes, version: 1, built: true, createdMs: 10 }, { error: { kind: 'ConnectionError', message: 'down' } }, { bytes, version: 1, built: true, createdMs: 10 }]);
  expect(r.error(1)).toMatchObject({ kind: 'ConnectionError' });
  expect(r.findError((e) => e.kind === 'ConnectionError')).toMatchObject({ message: 'down' });
  expect(r.document(2, view).version).toBe(1);
});

test('failed(): every upload ends with its own error, none stored', () => {
  const r = BatchResults.failed(3, (i) => ({ kind: 'ConnectionError', message: `n${i}` }));
  expect([0, 1, 2].map((i) => r.error(i).message)).toEqual(['n0', 'n1', 'n2']);
  expect(r.retries(2)).toBe(0);
});

test('only flat values give a view: nested values, BigInts, __proto__ keys and the fields the addon owns are decoded', () => {
  expect(prepareUpload({ orderId: 'o', fileName: 'f', s: 'x', n: 1, b: true, z: null, d: new Date(), id: new ObjectId() }).view).not.toBeNull();
  expect(prepareUpload({ orderId: 'o', fileName: 'f', meta: { a: 1 } }).view).toBeNull();
  expect(prepareUpload({ orderId: 'o', fileName: 'f', list: [1] }).view).toBeNull();
  expect(prepareUpload({ orderId: 'o', fileName: 'f', n: 1n }).view).toBeNull();
  expect(prepareUpload(JSON.parse('{"orderId":"o","fileName":"f","__proto__":1}')).view).toBeNull();
  for (const owned of native.ownedFields) expect(prepareUpload({ orderId: 'o', fileName: 'f', [owned]: 1 }).view).toBeNull();
});
