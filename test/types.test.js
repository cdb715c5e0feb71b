'use strict';

// What is stored reads back identically through the official driver, with
// the types it went in with.
const { BSON, ObjectId, Long, Decimal128, Binary, Int32, Double } = require('bson');
const { testDatabase, mongoOnly } = require('./support/db');

let t;
let repo;
beforeAll(async () => {
  t = await testDatabase(__filename);
  repo = t.repository({ collection: 'types' });
});
afterAll(() => t.done());

const sample = () => ({
  orderId: new ObjectId(),
  fileName: 'Prüfdruck – ✓ 日本.pdf',
  fileSize: 1234,
  uploadedBy: 'user-7',
  int32: 2147483647,
  negative: -5,
  double: 3.25,
  bigNumber: 2 ** 40, // past int32: a double, as the driver writes it
  long: Long.fromString('9007199254740993'),
  bigint: 2n ** 62n,
  wrappedInt: new Int32(7),
  wrappedDouble: new Double(1),
  flag: true,
  nothing: null,
  when: new Date('2024-02-29T12:34:56.789Z'),
  bytes: Buffer.from([0, 1, 2, 254, 255]),
  nested: { tags: ['a', 'b'], deeper: { list: [1, { x: 2 }], empty: {} } },
  emptyArray: [],
});

test('the resolved asset equals the stored document read through the official driver', async () => {
  const asset = await repo.createWithAtomicVersion(sample());
  const stored = await t.db.collection('types').findOne({ _id: asset._id });
  expect(stored).toEqual(asset);
  // Byte for byte, so field order and every BSON type agree too.
  expect(Buffer.compare(BSON.serialize(stored), BSON.serialize(asset))).toBe(0);
});

test('types are as they went in: ObjectId, Date, int32, int64, double, decimal, binary', async () => {
  const asset = await repo.createWithAtomicVersion(sample());
  expect(asset._id).toBeInstanceOf(ObjectId);
  expect(asset.orderId).toBeInstanceOf(ObjectId);
  expect(asset.when).toBeInstanceOf(Date);
  expect(asset.createdAt).toBeInstanceOf(Date);
  expect(asset.updatedAt.getTime()).toBe(asset.createdAt.getTime());
  expect(asset.bytes).toBeInstanceOf(Binary);
  expect(Buffer.from(asset.bytes.buffer)).toEqual(Buffer.from([0, 1, 2, 254, 255]));
  expect(asset.nested).toEqual({ tags: ['a', 'b'], deeper: { list: [1, { x: 2 }], empty: {} } });

  const raw = await t.db.collection('types').findOne({ _id: asset._id }, { promoteValues: false, promoteLongs: false });
  const typeOf = (v) => v._bsontype;
  expect(typeOf(raw.int32)).toBe('Int32');
  expect(typeOf(raw.fileSize)).toBe('Int32');
  expect(typeOf(raw.version)).toBe('Int32');
  expect(typeOf(raw.double)).toBe('Double');
  expect(typeOf(raw.bigNumber)).toBe('Double');
  expect(typeOf(raw.long)).toBe('Long');
  expect(raw.long.toString()).toBe('9007199254740993');
  expect(typeOf(raw.bigint)).toBe('Long');
  expect(raw.bigint.toString()).toBe((2n ** 62n).toString());
  expect(typeOf(raw.wrappedDouble)).toBe('Double');
});

// FerretDB v1 does not support Decimal128 (it drops the connection), so this
// runs against MongoDB only; the addon passes the bytes through untouched.
mongoOnly('Decimal128 is stored as Decimal128', async () => {
  const asset = await repo.createWithAtomicVersion({ orderId: 'ord-dec', fileName: 'a.pdf', price: Decimal128.fromString('12.345') });
  const raw = await t.db.collection('types').findOne({ _id: asset._id }, { promoteValues: false });
  expect(raw.price._bsontype).toBe('Decimal128');
  expect(raw.price.toString()).toBe('12.345');
});

test('a caller-supplied _id is kept', async () => {
  const _id = new ObjectId();
  const asset = await repo.createWithAtomicVersion({ _id, orderId: 'ord-id', fileName: 'a.pdf' });
  expect(asset._id.equals(_id)).toBe(true);
  expect(await t.db.collection('types').countDocuments({ _id })).toBe(1);
});

// FerretDB v1's SQLite unique index treats ObjectId("…") and the string "…"
// as equal, so there the second upload is refused as a duplicate.
mongoOnly('orders given as ObjectId and as its hex string are different orders', async () => {
  const id = new ObjectId();
  await repo.createWithAtomicVersion({ orderId: id, fileName: 'a.pdf' });
  const asString = await repo.createWithAtomicVersion({ orderId: id.toHexString(), fileName: 'b.pdf' });
  expect(asString.version).toBe(1);
  expect(await t.db.collection('types').countDocuments({ orderId: id })).toBe(1);
});
