'use strict';

// Reading a native batch's results, without a server: the layout comes from
// the addon (native.batchLayout). That a flat upload's rebuilt document is the
// stored one, field for field, is proved against the addon and the server in
// test/returned-document.test.js; here the stored documents are any BSON.
const { BSON, ObjectId } = require('bson');
const native = require('../../lib/native');
const { BatchResults } = require('../../lib/batch_results');
const { prepareUpload } = require('../../lib/asset_input');
const { ConnectionError } = require('../../lib/errors');

const L = native.batchLayout;

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

test('a built flat upload is completed in place: its _id from the stored bytes, then the four fields the addon owns', () => {
  const { view } = prepareUpload({ orderId: 'o1', fileName: 'a.pdf', n: 3, when: new Date(5) });
  const id = new ObjectId();
  const bytes = BSON.serialize({ _id: id, orderId: 'o1' });
  const r = results([{ bytes, version: 7, built: true, createdMs: 1700000000000, retries: 2 }]);
  const doc = r.document(0, view);
  expect(doc).toBe(view); // no second object
  expect(Object.keys(doc)).toEqual(['_id', 'orderId', 'fileName', 'n', 'when', 'version', 'versionLabel', 'createdAt', 'updatedAt']);
  expect(doc._id.equals(id)).toBe(true);
  expect(doc).toMatchObject({ version: 7, versionLabel: 'v7', createdAt: new Date(1700000000000), updatedAt: new Date(1700000000000) });
  expect(r.retries(0)).toBe(2);
  expect(r.error(0)).toBeUndefined();
});

test('a document read back from the server, or an upload without a view, is decoded', () => {
  const { view } = prepareUpload({ orderId: 'o1', fileName: 'mine.pdf' });
  const theirs = BSON.serialize({ _id: 'same-id', orderId: 'o1', fileName: 'stored-earlier.pdf', version: 3 });
  const r = results([
    { bytes: theirs, version: 3, built: false },
    { bytes: theirs, version: 3, built: true, createdMs: 1 },
  ]);
  expect(r.document(0, view).fileName).toBe('stored-earlier.pdf');
  expect(r.document(1, null).fileName).toBe('stored-earlier.pdf');
});

test('uploads that failed carry their own error; stored ones around them still read', () => {
  const { view } = prepareUpload({ orderId: 'o2', fileName: 'b.pdf' });
  const bytes = BSON.serialize({ _id: new ObjectId(), orderId: 'o2' });
  const r = results([{ bytes, version: 1, built: true, createdMs: 10 }, { error: new ConnectionError('down') }, { bytes, version: 1, built: true, createdMs: 10 }]);
  expect(r.error(1)).toBeInstanceOf(ConnectionError);
  expect(r.findError((e) => e.name === 'ConnectionError')).toMatchObject({ message: 'down' });
  expect(r.document(2, view).version).toBe(1);
});

test('failed(): every upload ends with its own error, none stored', () => {
  const r = BatchResults.failed(3, (i) => new ConnectionError(`n${i}`));
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
