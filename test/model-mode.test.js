'use strict';

// Model mode: `new AssetRepository({ model: Asset })` builds each upload as
// the model's save() would, and resolves with what the reference design's
// `saved.toObject()` gives. Each test compares with the reference design run
// on the same model, or with what the database holds.
const mongoose = require('./support/mongoose');
const { AssetRepository } = require('..');
const { testDatabase, uri, range, uniqueName } = require('./support/db');

const { Schema } = mongoose;
// The app's connection, as a service opens it at start-up; models are made
// on it while the suite is defined.
const dbName = uniqueName('aav_model_mode');
// autoIndex off: the repository makes the (orderId, version) index itself, and
// on FerretDB two createIndexes racing for one index can fail (a UNIQUE
// constraint failure in its catalogue), which Mongoose's background index
// build on every fresh model would provoke.
const connection = mongoose.createConnection(uri(), { dbName, autoIndex: false });
let t;
const db = () => t.client.db(dbName);
beforeAll(async () => {
  t = await testDatabase(__filename);
  await connection.asPromise();
});
afterAll(async () => {
  await db().dropDatabase();
  await connection.close();
  await t.done();
});

let models = 0;
/** A realistic upload schema: ObjectId refs, a default, an enum, timestamps, a derived field. */
function assetModel({ collection = `m${++models}`, extend, options = { timestamps: true } } = {}) {
  const schema = new Schema(
    {
      orderId: { type: Schema.Types.ObjectId, ref: 'Order', required: true },
      uploadedBy: { type: Schema.Types.ObjectId, ref: 'User', required: true },
      fileName: { type: String, required: true },
      fileUrl: { type: String, required: true },
      fileSize: { type: Number, min: 0 },
      status: { type: String, enum: ['active', 'archived'], default: 'active' },
      extension: String,
      version: { type: Number, required: true, min: 1 },
      versionLabel: { type: String, required: true },
    },
    options,
  );
  schema.index({ orderId: 1, version: 1 }, { unique: true });
  schema.pre('save', function deriveExtension() {
    this.extension = this.fileName.split('.').pop().toLowerCase();
  });
  if (extend) extend(schema);
  return connection.model(`Asset_${collection}`, schema, collection);
}

/** The reference design's createWithAtomicVersion, as the seed writes it. */
async function reference(Asset, data, retryCount = 0) {
  try {
    const last = await Asset.findOne({ orderId: data.orderId }).sort({ version: -1 }).lean();
    const next = last ? last.version + 1 : 1;
    const saved = await new Asset({ ...data, version: next, versionLabel: `v${next}` }).save();
    return saved.toObject();
  } catch (err) {
    if (err.code === 11000 && retryCount < 5) {
      await new Promise((r) => setTimeout(r, Math.random() * 10 + 5));
      return reference(Asset, data, retryCount + 1);
    }
    throw err;
  }
}

const ORDER = '65f1a2b3c4d5e6f708192a3b';
const USER = '65f1a2b3c4d5e6f708192a3c';
const upload = (i, extra = {}) => ({ orderId: ORDER, uploadedBy: USER, fileName: `Scan-${i}.PDF`, fileUrl: `/files/${i}`, fileSize: String(100 + i), ...extra });
const withoutIdAndTimes = ({ _id, createdAt, updatedAt, ...rest }) => rest;

const repos = [];
afterAll(() => Promise.all(repos.map((r) => r.close())));
function repository(model, options = {}) {
  const repo = new AssetRepository({ model, ...options });
  repos.push(repo);
  return repo;
}

describe('an upload is built as save() builds it', () => {
  const Reference = assetModel();
  const Model = assetModel();
  const repo = repository(Model);

  test('resolves with what the reference design resolves with, apart from _id and timestamps', async () => {
    const data = upload(1, { junk: 'dropped by strict' });
    const expected = await reference(Reference, data);
    const got = await repo.createWithAtomicVersion(data);
    expect(withoutIdAndTimes(got)).toEqual(withoutIdAndTimes(expected));
    // Cast, defaulted, derived, versioned, __v, timestamps, unknown field dropped.
    expect(got.orderId).toBeInstanceOf(mongoose.Types.ObjectId);
    expect(got.uploadedBy).toBeInstanceOf(mongoose.Types.ObjectId);
    expect(got).toMatchObject({ fileSize: 101, status: 'active', extension: 'pdf', version: 1, versionLabel: 'v1', __v: 0 });
    expect(got).not.toHaveProperty('junk');
    expect(got.createdAt).toBeInstanceOf(Date);
    expect(got.updatedAt).toEqual(got.createdAt);
  });

  test('the database holds what save() stores, and the resolved value is the stored document', async () => {
    const got = await repo.createWithAtomicVersion(upload(2));
    // Read through the model's own driver, so its values are the model's bson major.
    const raw = await Model.collection.findOne({ _id: got._id });
    const expectedRaw = await db().collection(Reference.collection.collectionName).findOne({ version: 1 });
    expect(Object.keys(raw).sort()).toEqual(Object.keys(expectedRaw).sort());
    expect(raw.orderId.toHexString()).toBe(ORDER);
    expect(raw).toMatchObject({ version: 2, versionLabel: 'v2', status: 'active', extension: 'pdf', __v: 0 });
    expect(Model.hydrate(raw).toObject()).toEqual(got);
  });

  test("'65f…' and ObjectId('65f…') are one order, one sequence", async () => {
    const Fresh = assetModel();
    const fresh = repository(Fresh);
    const assets = await Promise.all(range(6).map((i) => fresh.createWithAtomicVersion(upload(i, { orderId: i % 2 ? ORDER : new mongoose.Types.ObjectId(ORDER) }))));
    expect(assets.map((a) => a.version).sort()).toEqual(range(6));
    const stored = await db().collection(Fresh.collection.collectionName).find().sort({ version: 1 }).toArray();
    expect(stored.map((d) => d.version)).toEqual(range(6));
    expect(new Set(stored.map((d) => d.orderId.toHexString()))).toEqual(new Set([ORDER]));
  });

  test("a schema violation rejects with Mongoose's own ValidationError, and nothing is written", async () => {
    const Fresh = assetModel();
    const fresh = repository(Fresh);
    const bad = [
      fresh.createWithAtomicVersion(upload(1, { fileUrl: undefined })), // required
      fresh.createWithAtomicVersion(upload(2, { status: 'lost' })), // enum
      fresh.createWithAtomicVersion(upload(3, { fileSize: -1 })), // min
      fresh.createWithAtomicVersion(upload(4, { uploadedBy: 'not-an-id' })), // cast
    ].map((p) => p.catch((e) => e));
    for (const p of bad) {
      const err = await p;
      expect(err).toBeInstanceOf(mongoose.Error.ValidationError);
      expect(Object.keys(err.errors)).toHaveLength(1);
    }
    expect(await db().collection(Fresh.collection.collectionName).countDocuments()).toBe(0);
    expect(fresh.stats().validationErrors).toBe(4);
    expect((await fresh.createWithAtomicVersion(upload(5))).version).toBe(1);
  });

  test('strict: "throw" refuses an unknown field as save() does', async () => {
    const Strict = assetModel({ extend: (s) => s.set('strict', 'throw') });
    const strict = repository(Strict);
    await expect(strict.createWithAtomicVersion(upload(1, { junk: 1 }))).rejects.toBeInstanceOf(mongoose.Error.StrictModeError);
    expect(await db().collection(Strict.collection.collectionName).countDocuments()).toBe(0);
  });

  test('timestamps with other names, and no versionKey, as the schema says', async () => {
    const options = { timestamps: { createdAt: 'created_at', updatedAt: false }, versionKey: false };
    const Reference = assetModel({ options });
    const Named = assetModel({ options });
    const named = repository(Named);
    const expected = await reference(Reference, upload(1));
    const got = await named.createWithAtomicVersion(upload(1));
    expect(Object.keys(got).sort()).toEqual(Object.keys(expected).sort());
    expect(got.created_at).toBeInstanceOf(Date);
    expect(got).not.toHaveProperty('__v');
    expect(got).not.toHaveProperty('updatedAt');
  });
});

describe("save middleware runs in save()'s order", () => {
  function recording() {
    const calls = [];
    const extend = (schema) => {
      schema.pre('validate', function preValidate() {
        calls.push(['pre validate', this.isNew]);
      });
      schema.post('validate', () => {
        calls.push(['post validate']);
      });
      schema.pre('save', function preSave() {
        calls.push(['pre save', this.extension]);
      });
      schema.post('save', (doc) => {
        calls.push(['post save', doc.version, doc.versionLabel, doc.isNew]);
      });
    };
    return { calls, extend };
  }

  test("the same calls, in the same order, with what the reference design's hooks see", async () => {
    const a = recording();
    const b = recording();
    const Reference = assetModel({ extend: a.extend });
    const Model = assetModel({ extend: b.extend });
    const repo = repository(Model);
    await reference(Reference, upload(1));
    await repo.createWithAtomicVersion(upload(1));
    expect(b.calls).toEqual(a.calls);
    expect(b.calls).toEqual([['pre validate', true], ['post validate'], ['pre save', 'pdf'], ['post save', 1, 'v1', false]]);
  });

  test("a pre('save') hook that fails rejects with its error and nothing is written", async () => {
    const Model = assetModel({
      extend: (s) =>
        s.pre('save', function audit() {
          if (this.fileName.startsWith('virus')) throw new Error('refused by audit');
        }),
    });
    const repo = repository(Model);
    await expect(repo.createWithAtomicVersion(upload(1, { fileName: 'virus.exe' }))).rejects.toThrow('refused by audit');
    expect(await db().collection(Model.collection.collectionName).countDocuments()).toBe(0);
  });

  test("a post('save') error handler sees a failure of the write, as under save()", async () => {
    const seen = [];
    const Model = assetModel({
      extend: (s) =>
        s.post('save', (err, doc, next) => {
          seen.push(err.name);
          next(err);
        }),
    });
    const repo = repository(Model, { maxRetries: 0 });
    const other = repository(Model, { maxRetries: 0, coalesce: false });
    // Two writers on one order with no retries: some uploads lose the race.
    const results = await Promise.allSettled(range(20).flatMap((i) => [repo.createWithAtomicVersion(upload(i)), other.createWithAtomicVersion(upload(100 + i))]));
    const lost = results.filter((r) => r.status === 'rejected');
    expect(lost.length).toBeGreaterThan(0);
    expect(seen).toHaveLength(lost.length);
    for (const r of lost) {
      // The driver's duplicate-key shape: code, index, keyPattern, keyValue.
      expect(r.reason).toMatchObject({ name: 'VersionConflictError', code: 11000, index: 0, keyPattern: { orderId: 1, version: 1 } });
      expect(r.reason.keyValue.orderId.toHexString()).toBe(ORDER);
    }
  });
});

describe('what the insert assigns is not known to a pre hook', () => {
  test.each([
    [
      'pre save reading this.version',
      (s) =>
        s.pre('save', function label() {
          this.title = `${this.fileName} ${this.version}`;
        }),
      /pre\('save'\) hook label\(\) reads "version"/,
    ],
    [
      'pre validate reading versionLabel',
      (s) =>
        s.pre('validate', function () {
          this.title = this.get('versionLabel');
        }),
      /pre\('validate'\) hook the anonymous hook .* reads "versionLabel"/,
    ],
    [
      'pre save reading _id',
      (s) =>
        s.pre('save', function key() {
          this.fileUrl = `/files/${this._id}`;
        }),
      /key\(\) reads "_id"/,
    ],
    ['a validator on version', (s) => s.path('version').max(1000), /"max" validator on "version"/],
    ['no versionLabel', (s) => s.remove('versionLabel'), /must declare "versionLabel" as String/],
  ])('refused at construction: %s', (_, extend, message) => {
    const Model = assetModel({ extend });
    expect(() => new AssetRepository({ model: Model })).toThrow(message);
  });

  test('a hook that reads the version where the check cannot see it fails loudly, nothing written', async () => {
    const Model = assetModel({
      extend: (s) =>
        s.pre('save', function sneaky() {
          this.title = this['ver' + 'sion'];
        }),
    });
    const repo = repository(Model);
    await expect(repo.createWithAtomicVersion(upload(1))).rejects.toMatchObject({ code: 'ERR_ASSET_VERSION_UNKNOWN', field: 'version' });
    expect(await db().collection(Model.collection.collectionName).countDocuments()).toBe(0);
  });

  test("a post('save') hook gets the stored document", async () => {
    let seen;
    const Model = assetModel({
      extend: (s) =>
        s.post('save', (doc) => {
          seen = doc.toObject();
        }),
    });
    const repo = repository(Model);
    const got = await repo.createWithAtomicVersion(upload(1));
    expect(seen).toEqual(got);
    const raw = await db().collection(Model.collection.collectionName).findOne();
    expect(seen._id.toHexString()).toBe(raw._id.toHexString());
    expect(seen.createdAt).toEqual(raw.createdAt);
  });
});

describe('the model gives the connection, database and collection', () => {
  test('no uri, dbName or collection needed', async () => {
    const Model = assetModel({ collection: 'from_model' });
    const repo = repository(Model);
    expect(repo.options).toMatchObject({ uri: uri(), dbName, collection: 'from_model' });
    await repo.createWithAtomicVersion(upload(1));
    expect(await db().collection('from_model').countDocuments()).toBe(1);
  });

  test('a collection that contradicts the model is refused', () => {
    expect(() => new AssetRepository({ model: assetModel({ collection: 'one' }), collection: 'other' })).toThrow(/the model's is "one"/);
  });

  test('plain mode never loads Mongoose', () => {
    const { spawnSync } = require('child_process');
    const script = `const { AssetRepository } = require(${JSON.stringify(require.resolve('..'))});
      const repo = new AssetRepository({ uri: 'mongodb://127.0.0.1:1/x' });
      const loaded = Object.keys(require.cache).filter((f) => f.includes('/node_modules/mongoose'));
      repo.close().then(() => console.log(JSON.stringify(loaded)));`;
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual([]);
  });

  test('a model that is not one is refused', () => {
    expect(() => new AssetRepository({ model: { schema: {} } })).toThrow(/must be a Mongoose model/);
  });
});

describe('concurrency in model mode', () => {
  test('60 concurrent uploads to one order, cast from strings and ObjectIds, hold exactly 1..60, in few batches', async () => {
    const Model = assetModel();
    const repo = repository(Model);
    const assets = await Promise.all(range(60).map((i) => repo.createWithAtomicVersion(upload(i, { orderId: i % 3 ? ORDER : new mongoose.Types.ObjectId(ORDER) }))));
    expect(assets.map((a) => a.version).sort((a, b) => a - b)).toEqual(range(60));
    const stored = await db().collection(Model.collection.collectionName).find().sort({ version: 1 }).toArray();
    expect(stored.map((d) => [d.version, d.versionLabel])).toEqual(range(60).map((v) => [v, `v${v}`]));
    expect(new Set(stored.map((d) => d.orderId.toHexString()))).toEqual(new Set([ORDER]));
    expect(repo.stats()).toMatchObject({ uploads: 60, succeeded: 60, failed: 0 });
    expect(repo.stats().batches).toBeLessThan(60); // they coalesced
  });

  test('model mode and the reference design on one collection continue one sequence', async () => {
    const Model = assetModel();
    const repo = repository(Model);
    await repo.ensureIndex(); // the reference design's correctness rests on it
    const mixed = await Promise.all(range(10).map((i) => (i % 2 ? repo.createWithAtomicVersion(upload(i)) : reference(Model, upload(i)))));
    expect(mixed.map((a) => a.version).sort((a, b) => a - b)).toEqual(range(10));
    const stored = await db().collection(Model.collection.collectionName).find().sort({ version: 1 }).toArray();
    expect(stored.map((d) => d.version)).toEqual(range(10));
  });
});

describe('the rest of the API in model mode', () => {
  test('a retry with the _id resolves with the stored document and stores nothing twice', async () => {
    const Model = assetModel();
    const repo = repository(Model);
    const _id = new mongoose.Types.ObjectId();
    const first = await repo.createWithAtomicVersion(upload(1, { _id }));
    const again = await repo.createWithAtomicVersion(upload(1, { _id }));
    expect(again).toEqual(first);
    expect(first._id).toEqual(_id);
    // A retry carrying other data still resolves with what the first call stored.
    const changed = await repo.createWithAtomicVersion(upload(2, { _id, status: 'archived', fileSize: undefined }));
    expect(changed).toEqual(first);
    expect(await db().collection(Model.collection.collectionName).countDocuments()).toBe(1);
  });

  test('createManyWithAtomicVersion: consecutive versions in item order; a refused item is reported in the BatchError', async () => {
    const Model = assetModel();
    const repo = repository(Model);
    const many = await repo.createManyWithAtomicVersion(
      ORDER,
      [0, 1, 2].map((i) => upload(i, { orderId: undefined })),
    );
    expect(many.map((a) => [a.version, a.fileName])).toEqual([
      [1, 'Scan-0.PDF'],
      [2, 'Scan-1.PDF'],
      [3, 'Scan-2.PDF'],
    ]);
    const err = await repo.createManyWithAtomicVersion(ORDER, [upload(3), upload(4, { status: 'lost' })]).catch((e) => e);
    expect(err).toMatchObject({ name: 'BatchError', stored: 1, failed: 1 });
    expect(err.results[1].reason).toBeInstanceOf(mongoose.Error.ValidationError);
    expect(await db().collection(Model.collection.collectionName).countDocuments()).toBe(4);
  });

  test('the retryCount argument is accepted and ignored', async () => {
    const repo = repository(assetModel());
    expect((await repo.createWithAtomicVersion(upload(1), 3)).version).toBe(1);
  });
});

// The private fields of Mongoose that model mode still reads, one test each,
// run under Mongoose 9 and (AAV_MONGOOSE=8) Mongoose 8: when a release moves
// one, this says which. Listed in docs/drop-in.md.
describe(`private Mongoose fields model mode reads (Mongoose ${mongoose.major})`, () => {
  test('save() inserts through the model prototype\'s "mongoose#Model#collection" symbol, calling insertOne(obj, options)', async () => {
    const Model = assetModel();
    const symbol = Object.getOwnPropertySymbols(Model.prototype).find((s) => s.description === 'mongoose#Model#collection');
    expect(symbol).toBeDefined();
    expect(Model.prototype[symbol]).toBe(Model.collection);
    const doc = new Model({ ...upload(1), version: 1, versionLabel: 'v1' });
    const calls = [];
    doc[symbol] = {
      insertOne: async (obj, options) => {
        calls.push([obj, options]);
        return { acknowledged: true, insertedId: obj._id };
      },
    };
    await doc.save();
    expect(calls).toHaveLength(1);
    expect(calls[0][0]).toMatchObject({ fileName: 'Scan-1.PDF', version: 1, __v: 0 });
    expect(await db().collection(Model.collection.collectionName).countDocuments()).toBe(0); // nothing went to the real collection
  });

  test("the schema's pre hooks are listed in schema.s.hooks._pres", () => {
    const Model = assetModel();
    const names = (Model.schema.s.hooks._pres.get('save') || []).map((h) => h.fn.name);
    expect(names).toContain('deriveExtension');
  });

  test('public, but only in late 8.x and 9: set(path, value, { overwriteImmutable: true }) on a saved document (else model mode falls back to the private $__setValue)', async () => {
    const Model = assetModel();
    const saved = Model.hydrate({ _id: new mongoose.Types.ObjectId(), ...upload(1), version: 1, versionLabel: 'v1', createdAt: new Date(0) });
    const when = new Date(1700000000000);
    saved.set('createdAt', when, { overwriteImmutable: true });
    expect(saved.createdAt).toEqual(when);
  });

  test("the open connection's string is the driver's client.s.url", async () => {
    expect(connection.getClient().s.url).toBe(uri());
  });
});
