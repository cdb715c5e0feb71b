'use strict';

// The document an upload resolves with is the document stored, field for
// field, type for type, in stored order. For flat uploads it is rebuilt from
// the caller's values rather than decoded (lib/batch_results.js); these are
// the edges of that shortcut: values that change after the call, getters,
// fields the addon owns, the caller's _id, and a retry that finds its upload
// already stored.
const { BSON, ObjectId } = require('bson');
const { testDatabase } = require('./support/db');

let t;
let repo;
beforeAll(async () => {
  t = await testDatabase(__filename);
  repo = t.repository({ collection: 'returned' });
  await repo.ensureIndex();
});
afterAll(() => t.done());

/** The stored document, as the bytes the server holds decode. */
async function storedOf(asset) {
  const raw = await t.db.collection('returned').findOne({ _id: asset._id }, { raw: true });
  return BSON.deserialize(raw);
}

async function expectReturnedIsStored(asset) {
  const stored = await storedOf(asset);
  expect(asset).toStrictEqual(stored);
  expect(Object.keys(asset)).toEqual(Object.keys(stored));
  expect(Buffer.compare(BSON.serialize(asset), BSON.serialize(stored))).toBe(0);
  return stored;
}

test('flat values of every kind come back as stored, in stored order', async () => {
  const asset = await repo.createWithAtomicVersion({
    fileName: 'all.pdf',
    orderId: 'ret-kinds',
    s: 'Ünïcødé 日本 😀',
    i: -5,
    big: 2 ** 40,
    top: 2 ** 53,
    f: 1.5,
    tiny: 5e-324,
    yes: true,
    nothing: null,
    gone: undefined,
    when: new Date('2026-11-30T12:00:00.123Z'),
    ref: new ObjectId(),
  });
  const stored = await expectReturnedIsStored(asset);
  expect('gone' in stored).toBe(false);
  expect(Object.keys(asset)).toEqual([
    '_id',
    'fileName',
    'orderId',
    's',
    'i',
    'big',
    'top',
    'f',
    'tiny',
    'yes',
    'nothing',
    'when',
    'ref',
    'version',
    'versionLabel',
    'createdAt',
    'updatedAt',
  ]);
});

test('a Date or ObjectId the caller changes after the call does not change what is returned', async () => {
  const when = new Date('2026-01-01T00:00:00Z');
  const ref = new ObjectId('656565656565656565656565');
  const pending = repo.createWithAtomicVersion({ orderId: new ObjectId(), fileName: 'later.pdf', when, ref });
  when.setTime(0);
  ref.id.fill(0);
  const asset = await pending;
  await expectReturnedIsStored(asset);
  expect(asset.when.toISOString()).toBe('2026-01-01T00:00:00.000Z');
  expect(asset.ref.toHexString()).toBe('656565656565656565656565');
  expect(asset.when).not.toBe(when);
});

test('a getter is read once: what is returned is what was checked and stored', async () => {
  let reads = 0;
  const data = { orderId: 'ret-getter', fileName: 'g.pdf' };
  Object.defineProperty(data, 'note', { enumerable: true, get: () => `read ${++reads}` });
  const asset = await repo.createWithAtomicVersion(data);
  expect(reads).toBe(1);
  expect(asset.note).toBe('read 1');
  await expectReturnedIsStored(asset);
});

test('a getter cannot pass the check with one value and be stored with another', async () => {
  let reads = 0;
  const data = { orderId: 'ret-getter-2', fileName: 'g.pdf' };
  Object.defineProperty(data, 'size', { enumerable: true, get: () => (++reads === 1 ? 1 : NaN) });
  const asset = await repo.createWithAtomicVersion(data);
  expect(asset.size).toBe(1);
  await expectReturnedIsStored(asset);
});

test('the fields the addon owns replace the caller’s, at the end', async () => {
  const asset = await repo.createWithAtomicVersion({ version: 99, orderId: 'ret-owned', createdAt: 'yesterday', fileName: 'o.pdf', versionLabel: 'v99', updatedAt: null });
  await expectReturnedIsStored(asset);
  expect(asset).toMatchObject({ version: 1, versionLabel: 'v1' });
  expect(asset.createdAt).toBeInstanceOf(Date);
});

test('the caller’s _id, and a retry that finds the upload stored, return the stored document', async () => {
  const data = { _id: 'upload-ret-1', orderId: 'ret-id', fileName: 'id.pdf', when: new Date() };
  const first = await repo.createWithAtomicVersion(data);
  await expectReturnedIsStored(first);
  // The retry is read back from the server (not rebuilt): it is the first
  // call's document, even though this call's data differ.
  const again = await repo.createWithAtomicVersion({ ...data, note: 'second try' });
  expect(again).toStrictEqual(first);
  expect(again.note).toBeUndefined();
  expect(await t.db.collection('returned').countDocuments({ orderId: 'ret-id' })).toBe(1);
});

test('nested values, BigInts and a __proto__ key are decoded from the stored bytes', async () => {
  const data = JSON.parse('{"orderId":"ret-nested","fileName":"n.pdf","__proto__":{"x":1},"meta":{"a":[1,{"b":2}]}}');
  data.count = 7n;
  const asset = await repo.createWithAtomicVersion(data);
  await expectReturnedIsStored(asset);
  expect(Object.prototype.hasOwnProperty.call(asset, '__proto__')).toBe(true);
  expect(asset.count).toBe(7);
});

test('createManyWithAtomicVersion returns each stored document too', async () => {
  const assets = await repo.createManyWithAtomicVersion('ret-many', [
    { fileName: 'a.pdf', when: new Date() },
    { fileName: 'b.pdf', tags: ['x'] },
  ]);
  for (const asset of assets) await expectReturnedIsStored(asset);
  expect(assets.map((a) => a.version)).toEqual([1, 2]);
});

test('a name polluted onto Object.prototype is not the upload’s: the returned _id is the stored one', async () => {
  Object.prototype._id = 'polluted';
  try {
    const asset = await repo.createWithAtomicVersion({ orderId: 'ret-polluted', fileName: 'p.pdf' });
    expect(asset._id).toBeInstanceOf(ObjectId);
    await expectReturnedIsStored(asset);
  } finally {
    delete Object.prototype._id;
  }
});

test('a Date subclass is read once by Date’s own method: checked, stored and returned alike', async () => {
  class Shifty extends Date {
    getTime() {
      this.reads = (this.reads || 0) + 1;
      return this.reads === 1 ? super.getTime() : NaN;
    }
  }
  const asset = await repo.createWithAtomicVersion({ orderId: 'ret-date', fileName: 'd.pdf', when: new Shifty('2026-11-30T00:00:00Z') });
  await expectReturnedIsStored(asset);
  expect(asset.when.toISOString()).toBe('2026-11-30T00:00:00.000Z');
});
