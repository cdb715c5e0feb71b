'use strict';

// One orderId rule at every entry point: the same bad ids are refused by
// createWithAtomicVersion, createManyWithAtomicVersion and getNextVersion, in
// plain mode and in model mode, with a ValidationError (ERR_ASSET_ORDER_ID)
// naming the field, and nothing is written.
const { ObjectId } = require('bson');
const mongoose = require('./support/mongoose');
const { testDatabase, uri, uniqueName } = require('./support/db');
const { AssetRepository } = require('..');

// Blank-looking strings: white space of every kind String.prototype.trim
// removes, and invisible format characters.
const BLANK = ['', '   ', '\t\n\r', '\u00a0', '\u2003', '\u3000', '\u2028', '\ufeff', '\u200b', '\u00a0\u200b '];
const BAD = [...BLANK, 'a\0b', '\ud800', { _bsontype: 'ObjectId' }, 42, true, { $ne: null }, { $gt: '' }, ['a'], null, undefined];
const label = (id) => JSON.stringify(id) ?? String(id);

let t;
let repo;
let mapped;
const dbName = uniqueName('aav_order_id');
const connection = mongoose.createConnection(uri(), { dbName, autoIndex: false });
let model;
let Asset;
beforeAll(async () => {
  t = await testDatabase(__filename);
  repo = t.repository({ collection: 'plain' });
  mapped = t.repository({ collection: 'mapped', fields: { orderId: 'bugId' } });
  await connection.asPromise();
  // orderId as a String the schema does not trim: what the model casts reaches the rule as given.
  Asset = connection.model('OrderIdAsset', new mongoose.Schema({ orderId: String, fileName: String, version: Number, versionLabel: String }, { timestamps: true }), 'model');
  model = new AssetRepository({ model: Asset });
});
afterAll(async () => {
  await model.close();
  await connection.dropDatabase();
  await connection.close();
  await t.done();
});

async function refusal(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('resolved; expected a ValidationError');
}

function expectRefused(err, field) {
  expect(err).toMatchObject({ name: 'ValidationError', code: 'ERR_ASSET_ORDER_ID', field });
  expect(err.message).toContain(`"${field}"`);
}

describe.each(BAD.map((id) => [label(id), id]))('orderId %s is refused everywhere', (_, id) => {
  test('createWithAtomicVersion', async () => {
    expectRefused(await refusal(repo.createWithAtomicVersion({ orderId: id, fileName: 'a.pdf' })), 'orderId');
    expectRefused(await refusal(mapped.createWithAtomicVersion({ bugId: id, fileName: 'a.pdf' })), 'bugId');
  });

  test("createManyWithAtomicVersion: the orderId, and an item's own", async () => {
    expectRefused(await refusal(repo.createManyWithAtomicVersion(id, [{ fileName: 'a.pdf' }])), 'orderId');
    expectRefused(await refusal(mapped.createManyWithAtomicVersion(id, [{ fileName: 'a.pdf' }])), 'bugId');
  });

  test('getNextVersion', async () => {
    expectRefused(await refusal(repo.getNextVersion(id)), 'orderId');
    expectRefused(await refusal(mapped.getNextVersion(id)), 'bugId');
  });

  test('model mode: createManyWithAtomicVersion', async () => {
    expectRefused(await refusal(model.createManyWithAtomicVersion(id, [{ fileName: 'a.pdf' }])), 'orderId');
  });
});

// In model mode the model casts an upload's orderId first (42 becomes '42', a
// query object a CastError): the rule sees what the model would store.
test.each(
  BLANK.filter((id) => id !== '')
    .concat(['a\0b'])
    .map((id) => [label(id), id]),
)('model mode: createWithAtomicVersion refuses orderId %s as cast', async (_, id) => {
  expectRefused(await refusal(model.createWithAtomicVersion({ orderId: id, fileName: 'a.pdf' })), 'orderId');
  // An item's own orderId is that item's refusal, in the BatchError.
  const err = await refusal(model.createManyWithAtomicVersion('o', [{ fileName: 'a.pdf' }, { orderId: id, fileName: 'b.pdf' }]));
  expect(err.results[1].reason).toMatchObject({ name: 'ValidationError', code: 'ERR_ASSET_ORDER_ID' });
});

test('the same non-objects are refused in plain and model mode, naming the item', async () => {
  for (const r of [repo, model]) {
    for (const data of [null, 'a.pdf', ['x'], 7]) {
      await expect(r.createWithAtomicVersion(data)).rejects.toMatchObject({ name: 'ValidationError', code: 'ERR_ASSET_NOT_OBJECT', field: '' });
    }
  }
  await expect(repo.createManyWithAtomicVersion('o', [{ fileName: 'a.pdf' }, 'b.pdf'])).rejects.toMatchObject({ code: 'ERR_ASSET_NOT_OBJECT', field: 'items[1]' });
  const err = await refusal(model.createManyWithAtomicVersion('o', [{ fileName: 'a.pdf' }, 'b.pdf']));
  expect(err.results[1].reason).toMatchObject({ code: 'ERR_ASSET_NOT_OBJECT', field: 'items[1]' });
});

test('good ids pass: a string with spaces inside, an ObjectId; nothing refused above was written', async () => {
  await repo.createWithAtomicVersion({ orderId: ' a b ', fileName: 'a.pdf' });
  await repo.createWithAtomicVersion({ orderId: new ObjectId(), fileName: 'a.pdf' });
  expect(await t.db.collection('plain').countDocuments()).toBe(2);
  expect(await t.db.collection('mapped').countDocuments()).toBe(0);
  // The model-mode createMany above stored its one good item per call: nothing else.
  const stored = await connection.collection('model').find().toArray();
  expect(stored.every((d) => d.orderId === 'o')).toBe(true);
});
