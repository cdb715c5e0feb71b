'use strict';

// Bad input: a ValidationError naming the field, a stable code, and nothing
// written. Every case checks the collection afterwards.
const path = require('path');
const { spawnSync } = require('child_process');
const { BSON, ObjectId } = require('bson');
const { ValidationError, AssetRepository } = require('..');
const { testDatabase } = require('./support/db');

let t;
let repo;
beforeAll(async () => {
  t = await testDatabase(__filename);
  repo = t.repository({ collection: 'bad' });
  await repo.ensureIndex();
});
afterAll(() => t.done());

const ok = { orderId: 'ord-v', fileName: 'proof.pdf' };
const deep = (levels) => {
  let node = { leaf: 1 };
  for (let i = 0; i < levels; i++) node = { n: node };
  return node;
};

const cases = [
  ['data is null', null, 'ERR_ASSET_NOT_OBJECT', ''],
  ['data is a string', 'proof.pdf', 'ERR_ASSET_NOT_OBJECT', ''],
  ['data is an array', [ok], 'ERR_ASSET_NOT_OBJECT', ''],
  ['data is a Map', new Map(Object.entries(ok)), 'ERR_ASSET_NOT_OBJECT', ''],
  [
    'data is a class instance',
    new (class Upload {
      constructor() {
        Object.assign(this, ok);
      }
    })(),
    'ERR_ASSET_NOT_OBJECT',
    '',
  ],
  ['orderId missing', { fileName: 'a.pdf' }, 'ERR_ASSET_ORDER_ID', 'orderId'],
  ['orderId null', { orderId: null, fileName: 'a.pdf' }, 'ERR_ASSET_ORDER_ID', 'orderId'],
  ['orderId empty', { orderId: '', fileName: 'a.pdf' }, 'ERR_ASSET_ORDER_ID', 'orderId'],
  ['orderId blank', { orderId: '   ', fileName: 'a.pdf' }, 'ERR_ASSET_ORDER_ID', 'orderId'],
  ['orderId a number', { orderId: 42, fileName: 'a.pdf' }, 'ERR_ASSET_ORDER_ID', 'orderId'],
  ['orderId { $ne: null } (NoSQL injection)', { orderId: { $ne: null }, fileName: 'a.pdf' }, 'ERR_ASSET_ORDER_ID', 'orderId'],
  ['orderId { $gt: "" }', { orderId: { $gt: '' }, fileName: 'a.pdf' }, 'ERR_ASSET_ORDER_ID', 'orderId'],
  ['orderId an array', { orderId: ['a'], fileName: 'a.pdf' }, 'ERR_ASSET_ORDER_ID', 'orderId'],
  ['fileName missing', { orderId: 'o' }, 'ERR_ASSET_FILE_NAME', 'fileName'],
  ['fileName empty', { orderId: 'o', fileName: '' }, 'ERR_ASSET_FILE_NAME', 'fileName'],
  ['fileName a number', { orderId: 'o', fileName: 7 }, 'ERR_ASSET_FILE_NAME', 'fileName'],
  ['fileSize negative', { ...ok, fileSize: -1 }, 'ERR_ASSET_FILE_SIZE', 'fileSize'],
  ['fileSize fractional', { ...ok, fileSize: 1.5 }, 'ERR_ASSET_FILE_SIZE', 'fileSize'],
  ['fileSize a string', { ...ok, fileSize: '12' }, 'ERR_ASSET_FILE_SIZE', 'fileSize'],
  ['fileSize NaN', { ...ok, fileSize: NaN }, 'ERR_ASSET_VALUE', 'fileSize'],
  ['fileSize Infinity', { ...ok, fileSize: Infinity }, 'ERR_ASSET_VALUE', 'fileSize'],
  ['a top-level $ key', { ...ok, $where: 'sleep(1000)' }, 'ERR_ASSET_KEY', '$where'],
  ['a nested $ key', { ...ok, meta: { tags: [{ $set: 1 }] } }, 'ERR_ASSET_KEY', 'meta.tags.0.$set'],
  ['a dotted key', { ...ok, 'meta.size': 1 }, 'ERR_ASSET_KEY', 'meta.size'],
  ['a nested dotted key', { ...ok, meta: { 'a.b': 1 } }, 'ERR_ASSET_KEY', 'meta.a.b'],
  ['a key with a NUL byte', { ...ok, 'a\u0000b': 1 }, 'ERR_ASSET_UNSERIALIZABLE', ''],
  ['nesting past 100 levels', { ...ok, deep: deep(120) }, 'ERR_ASSET_TOO_DEEP', null],
  ['a document over 16 MiB', { ...ok, blob: Buffer.alloc(16 * 1024 * 1024) }, 'ERR_ASSET_TOO_LARGE', ''],
  [
    'a cyclic object',
    (() => {
      const o = { ...ok };
      o.self = o;
      return o;
    })(),
    'ERR_ASSET_CYCLE',
    'self',
  ],
];

describe.each(cases)('refuses %s', (label, data, code, field) => {
  test('with a ValidationError naming the field, and writes nothing', async () => {
    const before = await t.db.collection('bad').countDocuments();
    const err = await repo.createWithAtomicVersion(data).then(
      () => null,
      (e) => e,
    );
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.name).toBe('ValidationError');
    expect(err.code).toBe(code);
    if (field !== null) expect(err.field).toBe(field);
    if (field) expect(err.message).toContain(field);
    expect(await t.db.collection('bad').countDocuments()).toBe(before);
  });
});

test('a valid upload right after the refusals is v1: nothing before it was written', async () => {
  const asset = await repo.createWithAtomicVersion({ ...ok, orderId: new ObjectId() });
  expect(asset.version).toBe(1);
  expect(await t.db.collection('bad').countDocuments()).toBe(1);
  expect(repo.stats().validationErrors).toBe(cases.length);
});

test('a caller-supplied version and versionLabel are replaced, as in the reference design', async () => {
  const asset = await repo.createWithAtomicVersion({ ...ok, orderId: 'ord-replace', version: 99, versionLabel: 'v99' });
  expect(asset).toMatchObject({ version: 1, versionLabel: 'v1' });
  const stored = await t.db.collection('bad').findOne({ orderId: 'ord-replace' });
  expect(stored).toMatchObject({ version: 1, versionLabel: 'v1' });
});

describe('options', () => {
  test('an unknown option is an error, not ignored', () => {
    expect(() => new AssetRepository({ uri: process.env.MONGODB_URI, maxRetry: 3 })).toThrow(
      expect.objectContaining({ name: 'ValidationError', code: 'ERR_ASSET_OPTION', field: 'maxRetry' }),
    );
  });

  test.each([
    [{ maxRetries: -1 }, 'maxRetries'],
    [{ maxRetries: 1.5 }, 'maxRetries'],
    [{ collection: '' }, 'collection'],
    [{ uri: 'http://not-mongo' }, 'uri'],
    [{ coalesce: 'yes' }, 'coalesce'],
  ])('%j is refused naming %s', (opts, field) => {
    expect(() => new AssetRepository({ uri: process.env.MONGODB_URI, ...opts })).toThrow(expect.objectContaining({ name: 'ValidationError', field }));
  });

  test('uri defaults to MONGODB_URI and dbName to the database in the URI', async () => {
    const saved = process.env.MONGODB_URI;
    const base = saved.replace(/\/[^/?]*(\?.*)?$/, '');
    process.env.MONGODB_URI = `${base}/${t.dbName}`;
    try {
      const r = new AssetRepository({ collection: 'from_uri' });
      await r.createWithAtomicVersion({ ...ok, orderId: 'ord-uri' });
      await r.close();
    } finally {
      process.env.MONGODB_URI = saved;
    }
    expect(await t.db.collection('from_uri').countDocuments({ orderId: 'ord-uri' })).toBe(1);
  });
});

describe('the native API refuses garbage without crashing', () => {
  const native = require('../lib/native');
  // The addon builds its errors from lib/errors.js's classes (lib/native.js
  // hands them over at load): every refusal is a ValidationError with a code.
  const refusal = (code) => expect.objectContaining({ name: 'ValidationError', code });

  // insertBatch(bytes, ends, maxRetries, recoveryMs): documents end to end,
  // and where each ends.
  const one = (bytes) => [bytes, new Float64Array([bytes.length])];

  test.each([[Buffer.alloc(0)], [Buffer.from([5, 0, 0, 0, 0, 0])], [Buffer.from([255, 255, 255, 127, 0])], [Buffer.from('not bson at all, not at all')]])(
    'insertBatch(%p) is refused as corrupt BSON at once, and nothing is written',
    async (bytes) => {
      const r = new native.NativeRepository(process.env.MONGODB_URI, t.dbName, 'garbage', null);
      expect(() => r.insertBatch(...one(bytes), 5, 0)).toThrow(refusal('ERR_ASSET_CORRUPT'));
      await r.close();
      expect(await t.db.collection('garbage').countDocuments()).toBe(0);
    },
  );

  test('a document framed as BSON but corrupt inside fails alone, before any write; the rest of its batch is stored', async () => {
    const r = new native.NativeRepository(process.env.MONGODB_URI, t.dbName, 'corrupt_inside', null);
    const good = BSON.serialize({ orderId: 'ord-corrupt', fileName: 'good.pdf' });
    const bad = Buffer.from(BSON.serialize({ orderId: 'ord-corrupt', fileName: 'bad.pdf' }));
    bad.writeInt32LE(1000, bad.indexOf('bad.pdf') - 4); // the string's length now runs past the document
    const bytes = Buffer.concat([bad, good]);
    const { items, errors } = await r.insertBatch(bytes, new Float64Array([bad.length, bytes.length]), 5, 0);
    expect(errors[0]).toEqual(refusal('ERR_ASSET_CORRUPT'));
    expect(errors[1]).toBeUndefined();
    expect(items[native.batchLayout.version]).toBe(0);
    expect(items[native.batchLayout.fields + native.batchLayout.version]).toBe(1);
    await r.close();
    const stored = await t.db
      .collection('corrupt_inside')
      .find({}, { projection: { _id: 0, fileName: 1, version: 1 } })
      .toArray();
    expect(stored).toEqual([{ fileName: 'good.pdf', version: 1 }]);
  });

  test('wrong argument types throw ValidationErrors (ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE)', async () => {
    const r = new native.NativeRepository(process.env.MONGODB_URI, t.dbName, 'bad', null);
    const junk = Buffer.from('junk');
    expect(() => r.insertBatch('x', new Float64Array([1]), 5, 0)).toThrow(refusal('ERR_INVALID_ARG_TYPE'));
    expect(() => r.insertBatch([junk], new Float64Array([4]), 5, 0)).toThrow(refusal('ERR_INVALID_ARG_TYPE'));
    expect(() => r.insertBatch(junk, [4], 5, 0)).toThrow(refusal('ERR_INVALID_ARG_TYPE'));
    expect(() => r.insertBatch(junk, new Uint32Array([4]), 5, 0)).toThrow(refusal('ERR_INVALID_ARG_TYPE'));
    expect(() => r.insertBatch(...one(junk), 5, 0)).toThrow(refusal('ERR_ASSET_CORRUPT'));
    expect(() => r.insertBatch(junk, new Float64Array(0), 5, 0)).toThrow(refusal('ERR_OUT_OF_RANGE'));
    const doc = BSON.serialize({ orderId: 'o', fileName: 'junk' });
    for (const ends of [[doc.length + 1], [doc.length - 1], [NaN], [-1], [2.5], [0, doc.length]]) {
      expect(() => r.insertBatch(doc, new Float64Array(ends), 5, 0)).toThrow();
    }
    expect(() => r.insertBatch(Buffer.concat([doc, doc]), new Float64Array([doc.length]), 5, 0)).toThrow(refusal('ERR_OUT_OF_RANGE'));
    expect(() => r.insertBatch(...one(doc), 'five', 0)).toThrow(/maxRetries/);
    // V8 checks the receiver of a class method before the addon runs: its own TypeError.
    expect(() => native.NativeRepository.prototype.close.call({})).toThrow(/Illegal invocation/);
    await r.close();
    expect(await t.db.collection('bad').countDocuments({ fileName: 'junk' })).toBe(0);
  });

  test("insertBatch's ends in shared memory, changed by another thread meanwhile, are read once: no crash", () => {
    const rounds = Number(process.env.AAV_SHARED_ENDS_ROUNDS || 300); // fewer under the sanitizers
    const run = spawnSync(process.execPath, [path.join(__dirname, 'support', 'shared-ends-race.js'), String(rounds)], { encoding: 'utf8', timeout: 60000 });
    expect(run.signal).toBeNull();
    expect(run.status).toBe(0);
    const seen = JSON.parse(run.stdout);
    expect(seen.refusedAtOnce + seen.answered).toBe(rounds * 10);
  }, 70000);

  test('a native close() while a batch is in flight never refuses: the batch ends stored, the pool goes after it, later calls are refused', async () => {
    const r = new native.NativeRepository(process.env.MONGODB_URI, t.dbName, 'busy_close', null);
    const doc = BSON.serialize({ orderId: 'ord-busy', fileName: 'busy.pdf' });
    const batch = r.insertBatch(...one(doc), 5, 0);
    const closed = r.close();
    const again = r.close(); // idempotent
    const { errors } = await batch;
    expect(errors).toBeUndefined();
    await expect(closed).resolves.toBeUndefined();
    await expect(again).resolves.toBeUndefined();
    await expect(r.close()).resolves.toBeUndefined();
    await expect(r.insertBatch(...one(doc), 5, 0)).rejects.toEqual(expect.objectContaining({ name: 'RepositoryClosedError', code: 'ERR_ASSET_CLOSED' }));
    expect(await t.db.collection('busy_close').countDocuments({ orderId: 'ord-busy' })).toBe(1);
  });

  test('the limits both sides check against come from the addon', () => {
    expect(native.limits).toMatchObject({ maxDepth: 100, maxBsonSize: 16 * 1024 * 1024, maxBatch: 100000, maxRetries: 1000, maxRecoveryMs: 86400000, maxFieldName: 60 });
    expect(Object.isFrozen(native.limits)).toBe(true);
  });
});
