'use strict';

// Dropping the repository into an existing Mongoose app (docs/drop-in.md):
// built at module load before the app connects, values of either bson major,
// a schema whose _id is not an ObjectId, every schema problem at once. Runs
// under Mongoose 9 and, with AAV_MONGOOSE=8, Mongoose 8 (CI runs both).
const { randomUUID } = require('crypto');
const path = require('path');
const mongoose = require('./support/mongoose');
const bson7 = require('bson');
const { AssetRepository } = require('..');
const { testDatabase, uri, range } = require('./support/db');

// bson 6, as Mongoose 8 and the driver 6 make values.
const bson6 = require(require.resolve('bson', { paths: [path.dirname(require.resolve('mongoose8'))] }));

const { Schema } = mongoose;
let t;
beforeAll(async () => {
  t = await testDatabase(__filename);
  expect(bson6.ObjectId).not.toBe(bson7.ObjectId);
  expect(new bson6.ObjectId()[Symbol.for('@@mdb.bson.version')]).toBe(6);
});
afterAll(() => t.done());

const closers = [];
afterEach(async () => {
  await Promise.allSettled(closers.splice(0).map((close) => close()));
});

/** The attachment schema, with the two fields the swap adds. */
function attachmentSchema(options) {
  return new Schema(
    {
      orderId: { type: String, required: true },
      fileName: { type: String, required: true },
      uploadedBy: String,
      version: { type: Number, required: true },
      versionLabel: { type: String, required: true },
    },
    { timestamps: true, ...options },
  );
}

/** MONGODB_URI unset while fn runs: what an app's test suite sees at module load. */
function withoutEnvUri(fn) {
  const saved = process.env.MONGODB_URI;
  delete process.env.MONGODB_URI;
  try {
    return fn();
  } finally {
    process.env.MONGODB_URI = saved;
  }
}

describe('built at module load, before the app connects', () => {
  test('construction needs neither an open connection nor uri; an upload made before the connection opens waits for it', async () => {
    const conn = mongoose.createConnection(); // as mongoose.connect() later: nothing open yet
    closers.push(() => conn.close());
    const Attachment = conn.model('Attachment', attachmentSchema(), 'early');
    const repo = withoutEnvUri(() => new AssetRepository({ model: Attachment }));
    closers.push(() => repo.close());
    expect(repo.options.uri).toBeUndefined();
    let settled = false;
    const early = repo.createWithAtomicVersion({ orderId: 'bug-1', fileName: 'a.png' }).finally(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(settled).toBe(false); // waiting for the connection, as Mongoose's buffering does
    await conn.openUri(uri(), { dbName: t.dbName, autoIndex: false });
    const got = await early;
    expect(got).toMatchObject({ orderId: 'bug-1', version: 1, versionLabel: 'v1' });
    expect(repo.options).toMatchObject({ uri: uri(), dbName: t.dbName, collection: 'early' });
    expect(
      await t.db
        .collection('early')
        .find({}, { projection: { _id: 0, version: 1 } })
        .toArray(),
    ).toEqual([{ version: 1 }]);
  });

  test("an upload fails as Mongoose's own create() does after bufferTimeoutMS, with a clear error, and stores nothing", async () => {
    const conn = mongoose.createConnection();
    closers.push(() => conn.close());
    const Attachment = conn.model('Attachment', attachmentSchema({ bufferTimeoutMS: 300 }), 'never_open');
    const repo = new AssetRepository({ model: Attachment });
    closers.push(() => repo.close());
    const started = Date.now();
    const ours = await repo.createWithAtomicVersion({ orderId: 'bug-1', fileName: 'a.png' }).catch((e) => e);
    const waited = Date.now() - started;
    const theirs = await Attachment.create({ orderId: 'bug-1', fileName: 'a.png', version: 1, versionLabel: 'v1' }).catch((e) => e);
    expect(ours).toBeInstanceOf(mongoose.Error);
    expect(theirs).toBeInstanceOf(mongoose.Error);
    expect(theirs.message).toMatch(/buffering timed out after 300ms/);
    expect(ours.message).toMatch(/^Operation `never_open.insertOne\(\)` buffering timed out after 300ms: the model's connection did not open/);
    expect(waited).toBeGreaterThanOrEqual(290);
    // A validation error is not buffered: it comes at once, as under save().
    await expect(repo.createWithAtomicVersion({ orderId: 'bug-1' })).rejects.toBeInstanceOf(mongoose.Error.ValidationError);
    await conn.openUri(uri(), { dbName: t.dbName, autoIndex: false });
    expect(await t.db.collection('never_open').countDocuments()).toBe(0);
    // Once open, the same repository serves uploads.
    expect((await repo.createWithAtomicVersion({ orderId: 'bug-1', fileName: 'b.png' })).version).toBe(1);
  });

  test('bufferCommands: false fails at once, as Mongoose does, naming why', async () => {
    const conn = mongoose.createConnection();
    closers.push(() => conn.close());
    const Attachment = conn.model('Attachment', attachmentSchema({ bufferCommands: false }), 'unbuffered');
    const repo = new AssetRepository({ model: Attachment });
    closers.push(() => repo.close());
    await expect(repo.createWithAtomicVersion({ orderId: 'bug-1', fileName: 'a.png' })).rejects.toThrow(/not open and bufferCommands is false/);
  });

  test('plain mode still needs uri, and says how to do without it', () => {
    const err = withoutEnvUri(() => {
      try {
        return new AssetRepository({ collection: 'x' });
      } catch (e) {
        return e;
      }
    });
    expect(err).toMatchObject({ name: 'ValidationError', code: 'ERR_ASSET_OPTION', field: 'uri' });
    expect(err.message).toMatch(/option "uri" is required: pass the MongoDB connection string as \{ uri \}, or set MONGODB_URI/);
    expect(err.message).toMatch(/passes \{ model \} instead/);
  });
});

describe('a schema the addon cannot serve is refused whole', () => {
  test('every problem at once, in one error', () => {
    const schema = new Schema({ orderId: Number, title: String, version: { type: Number, max: 10 } });
    const Model = mongoose.model(`Broken${Date.now()}`, schema);
    let err;
    try {
      new AssetRepository({ model: Model });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ name: 'ValidationError', code: 'ERR_ASSET_OPTION', field: 'orderId' });
    expect(err.problems.map((p) => p.field)).toEqual(['orderId', 'fileName', 'version', 'versionLabel']);
    expect(err.message).toMatch(/4 problems/);
    expect(err.message).toMatch(/"max" validator on "version"/);
  });
});

describe('a schema whose _id is not an ObjectId (issue 16, item 4)', () => {
  const schema = () => {
    const s = attachmentSchema();
    s.add({ _id: { type: String, default: () => randomUUID() } });
    return s;
  };

  test("the schema's _id type and default are honoured: the resolved _id is the stored one", async () => {
    const conn = await mongoose.createConnection(uri(), { dbName: t.dbName, autoIndex: false }).asPromise();
    closers.push(() => conn.close());
    const Attachment = conn.model('Attachment', schema(), 'uuid_ids');
    const repo = new AssetRepository({ model: Attachment });
    closers.push(() => repo.close());
    const got = await Promise.all(range(5).map((i) => repo.createWithAtomicVersion({ orderId: 'bug-1', fileName: `${i}.png` })));
    for (const asset of got) {
      expect(asset._id).toMatch(/^[0-9a-f-]{36}$/);
      expect((await Attachment.findById(asset._id)).version).toBe(asset.version);
    }
    const raw = await t.db.collection('uuid_ids').find().toArray();
    expect(raw.map((d) => typeof d._id)).toEqual(range(5).map(() => 'string'));
    expect(raw.map((d) => d.version).sort()).toEqual(range(5));
  });

  test('a retry with that _id settles the upload: the stored document, never a second copy', async () => {
    const conn = await mongoose.createConnection(uri(), { dbName: t.dbName, autoIndex: false }).asPromise();
    closers.push(() => conn.close());
    const Attachment = conn.model('Attachment', schema(), 'uuid_retry');
    const repo = new AssetRepository({ model: Attachment });
    closers.push(() => repo.close());
    const first = await repo.createWithAtomicVersion({ orderId: 'bug-1', fileName: 'a.png' });
    const again = await repo.createWithAtomicVersion({ _id: first._id, orderId: 'bug-1', fileName: 'a.png' });
    expect(again).toEqual(first);
    expect(await t.db.collection('uuid_retry').countDocuments()).toBe(1);
  });
});

describe("a String _id and a lost reply (issue 16's repro)", () => {
  const { startFailProxy } = require('./support/fail-proxy');
  let proxy;
  beforeAll(async () => {
    proxy = await startFailProxy({ upstreamPort: Number(new URL(uri()).port || 27017) });
  });
  afterAll(() => proxy.close());

  test("an OutcomeUnknownError's _id is the schema's String _id, and passing it back settles the upload: one copy, the stored document", async () => {
    // The model's connection goes straight to the server; the addon's
    // through the proxy (option uri), where its insert's reply is lost and
    // so is the recovery read that would have settled it.
    const conn = await mongoose.createConnection(uri(), { dbName: t.dbName, autoIndex: false }).asPromise();
    closers.push(() => conn.close());
    const s = attachmentSchema();
    s.add({ _id: { type: String, default: () => randomUUID() } });
    const Attachment = conn.model('Attachment', s, 'uuid_lost');
    const proxied = `mongodb://127.0.0.1:${proxy.port}/${t.dbName}?serverSelectionTimeoutMS=1000&connectTimeoutMS=1000`;
    const repo = new AssetRepository({ model: Attachment, uri: proxied, recoveryTimeMS: 0 });
    closers.push(() => repo.close());
    await repo.ensureIndex();
    // The top is read (find) and passes; the insert executes and its reply
    // is lost; every lookup by _id that would settle it loses its reply too.
    proxy.configureFailPoint({ mode: { skip: 1, times: 1000 }, data: { failCommands: ['insert', 'find'], dropReplyAfterExecute: true } });
    const seenBefore = { ...proxy.stats.seen };
    const err = await repo.createWithAtomicVersion({ orderId: 'bug-1', fileName: 'a.png' }).catch((e) => e);
    expect(proxy.stats.injected.dropReplyAfterExecute).toBeGreaterThanOrEqual(2);
    expect(proxy.stats.seen.insert - (seenBefore.insert || 0)).toBe(1);
    proxy.configureFailPoint({ mode: 'off' });
    expect(err).toMatchObject({ name: 'OutcomeUnknownError' });
    expect(typeof err._id).toBe('string');
    const raw = await t.db.collection('uuid_lost').find().toArray();
    expect(raw.map((d) => d._id)).toEqual([err._id]); // stored, under the schema's _id
    const settled = await repo.createWithAtomicVersion({ _id: err._id, orderId: 'bug-1', fileName: 'a.png' });
    expect(settled).toMatchObject({ _id: err._id, version: 1, versionLabel: 'v1' });
    expect((await Attachment.findById(err._id)).version).toBe(1);
    expect(await t.db.collection('uuid_lost').countDocuments()).toBe(1);
  });
});

describe('values made by bson 6 and bson 7, in plain mode', () => {
  test.each([
    ['bson 6', bson6],
    ['bson 7', bson7],
  ])('%s: stored as their BSON types', async (_, b) => {
    const repo = t.repository({ collection: `values_${b === bson6 ? 6 : 7}` });
    const order = new b.ObjectId();
    const uuid = new b.UUID();
    const got = await repo.createWithAtomicVersion({
      orderId: order,
      fileName: 'a.bin',
      uploadedBy: new b.ObjectId(),
      fileSize: b.Long.fromNumber(1234),
      blob: new b.Binary(Buffer.from('bytes'), 0x80),
      uuid,
      at: new b.Timestamp({ t: 1700000000, i: 3 }),
      big: b.Long.fromString('9007199254740993'),
      small: new b.Int32(7),
      nested: { ids: [new b.ObjectId(), new b.ObjectId()] },
    });
    expect(got.version).toBe(1);
    const raw = await t.db.collection(`values_${b === bson6 ? 6 : 7}`).findOne({}, { promoteValues: false, promoteLongs: false });
    expect(raw.orderId.toHexString()).toBe(order.toHexString());
    const types = Object.fromEntries(['orderId', 'uploadedBy', 'fileSize', 'blob', 'uuid', 'at', 'big', 'small'].map((k) => [k, raw[k]._bsontype]));
    expect(types).toEqual({ orderId: 'ObjectId', uploadedBy: 'ObjectId', fileSize: 'Long', blob: 'Binary', uuid: 'Binary', at: 'Timestamp', big: 'Long', small: 'Int32' });
    expect(raw.uuid.sub_type).toBe(4);
    expect(Buffer.from(raw.uuid.buffer).toString('hex')).toBe(Buffer.from(uuid.buffer).toString('hex'));
    expect(raw.blob.sub_type).toBe(0x80);
    expect(raw.big.toString()).toBe('9007199254740993');
    expect([raw.at.t, raw.at.i]).toEqual([1700000000, 3]);
    expect(raw.nested.ids.map((id) => id._bsontype)).toEqual(['ObjectId', 'ObjectId']);
    // One order whichever major made its id.
    const other = b === bson6 ? bson7 : bson6;
    expect((await repo.createWithAtomicVersion({ orderId: new other.ObjectId(order.toHexString()), fileName: 'b.bin' })).version).toBe(2);
    // And every entry point takes it: getNextVersion and createMany too.
    expect(await repo.getNextVersion(order)).toBe(3);
    expect((await repo.createManyWithAtomicVersion(order, [{ fileName: 'c.bin' }])).map((a) => a.version)).toEqual([3]);
  });

  test('Decimal128 of either major is serialized as a Decimal128 (FerretDB v1 cannot store one)', () => {
    const { prepareUpload } = require('../lib/asset_input');
    for (const b of [bson6, bson7]) {
      const { bytes } = prepareUpload({ orderId: 'o', fileName: 'f', price: new b.Decimal128('12.50'), deep: [{ d: new b.Decimal128('1') }] });
      const back = bson7.deserialize(bytes, { promoteValues: false });
      expect([back.price._bsontype, back.price.toString(), back.deep[0].d._bsontype]).toEqual(['Decimal128', '12.50', 'Decimal128']);
    }
  });

  test('a BSON value no major can be converted from is refused naming its field', async () => {
    const repo = t.repository({ collection: 'values_refused' });
    const alien = { _bsontype: 'Mystery', [Symbol.for('@@mdb.bson.version')]: 6 };
    await expect(repo.createWithAtomicVersion({ orderId: 'o', fileName: 'f', meta: { list: [1, alien] } })).rejects.toMatchObject({
      name: 'ValidationError',
      code: 'ERR_ASSET_VALUE',
      field: 'meta.list.1',
    });
    expect(await t.db.collection('values_refused').countDocuments()).toBe(0);
  });
});
