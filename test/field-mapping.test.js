'use strict';

// Option `fields`: the app's own names for orderId, fileName, version and
// versionLabel, in plain and model mode: the index, the reads, the stored and
// returned documents, the errors. Model mode runs under Mongoose 9 and, with
// AAV_MONGOOSE=8, Mongoose 8.
const mongoose = require('./support/mongoose');
const { AssetRepository } = require('..');
const { testDatabase, uri, range } = require('./support/db');

let t;
beforeAll(async () => {
  t = await testDatabase(__filename);
});
afterAll(() => t.done());

const BUG_FIELDS = { orderId: 'bugId', fileName: 'originalName' };
const sorted = (xs) => [...xs].sort((a, b) => a - b);

describe('plain mode', () => {
  test("concurrent uploads to several orders under the app's names: exact versions, stored and returned under those names, the index on them", async () => {
    const repo = t.repository({ collection: 'bugs', fields: BUG_FIELDS });
    // Rows the app stored before the swap, under its own names, continue.
    await t.db.collection('bugs').insertOne({ bugId: 'bug-1', originalName: 'old.png', version: 3, versionLabel: 'v3' });
    const got = await Promise.all(range(30).map((i) => repo.createWithAtomicVersion({ bugId: `bug-${(i % 3) + 1}`, originalName: `${i}.png`, uploadedBy: 'u' })));
    for (const asset of got) {
      expect(Object.keys(asset)).toEqual(['_id', 'bugId', 'originalName', 'uploadedBy', 'version', 'versionLabel', 'createdAt', 'updatedAt']);
      expect(asset.versionLabel).toBe(`v${asset.version}`);
    }
    for (const bug of ['bug-1', 'bug-2', 'bug-3']) {
      const stored = await t.db.collection('bugs').find({ bugId: bug }).toArray();
      const expected = bug === 'bug-1' ? range(11, 3) : range(10);
      expect(sorted(stored.map((d) => d.version))).toEqual(expected);
      for (const d of stored) expect(d).not.toHaveProperty('orderId');
      expect(sorted(got.filter((a) => a.bugId === bug).map((a) => a.version))).toEqual(bug === 'bug-1' ? range(10, 4) : range(10));
    }
    const indexes = await t.db.collection('bugs').indexes();
    expect(indexes.find((i) => i.unique)).toMatchObject({ key: { bugId: 1, version: 1 }, name: 'bugId_1_version_1' });
    expect(await repo.getNextVersion('bug-2')).toBe(11);
    expect(repo.options.fields).toEqual({ orderId: 'bugId', fileName: 'originalName', version: 'version', versionLabel: 'versionLabel' });
  });

  test('version and label mapped; versionLabel: null stores no label', async () => {
    const revs = t.repository({ collection: 'revs', fields: { version: 'rev', versionLabel: 'revLabel' } });
    const a = await revs.createWithAtomicVersion({ orderId: 'o', fileName: 'a', version: 'caller', rev: 99 });
    expect(a).toMatchObject({ rev: 1, revLabel: 'v1', version: 'caller' }); // a field that is not the version's stays the caller's
    expect(await t.db.collection('revs').findOne({}, { projection: { _id: 0, createdAt: 0, updatedAt: 0 } })).toEqual({
      orderId: 'o',
      fileName: 'a',
      version: 'caller',
      rev: 1,
      revLabel: 'v1',
    });

    const bare = t.repository({ collection: 'unlabelled', fields: { versionLabel: null } });
    const [one, two] = await Promise.all([bare.createWithAtomicVersion({ orderId: 'o', fileName: 'a' }), bare.createWithAtomicVersion({ orderId: 'o', fileName: 'b' })]);
    expect(one).not.toHaveProperty('versionLabel');
    expect(sorted([one.version, two.version])).toEqual([1, 2]);
    const stored = await t.db.collection('unlabelled').find().toArray();
    for (const d of stored) expect(d).not.toHaveProperty('versionLabel');
    const many = await bare.createManyWithAtomicVersion('o', [{ fileName: 'c' }, { fileName: 'd' }]);
    expect(many.map((d) => d.version)).toEqual([3, 4]);
  });

  test('the fileName and orderId rules apply to the mapped fields, naming them; nothing is written', async () => {
    const repo = t.repository({ collection: 'bugs_refused', fields: BUG_FIELDS });
    await expect(repo.createWithAtomicVersion({ bugId: 'b', fileName: 'x.png' })).rejects.toMatchObject({ code: 'ERR_ASSET_FILE_NAME', field: 'originalName' });
    await expect(repo.createWithAtomicVersion({ bugId: 'b', originalName: '  ' })).rejects.toMatchObject({ code: 'ERR_ASSET_FILE_NAME', field: 'originalName' });
    await expect(repo.createWithAtomicVersion({ orderId: 'b', originalName: 'x' })).rejects.toMatchObject({ code: 'ERR_ASSET_ORDER_ID', field: 'bugId' });
    await expect(repo.createWithAtomicVersion({ bugId: { $ne: null }, originalName: 'x' })).rejects.toMatchObject({ code: 'ERR_ASSET_ORDER_ID', field: 'bugId' });
    expect(await t.db.collection('bugs_refused').countDocuments()).toBe(0);
  });

  test("retries exhausted: the duplicate-key error's keyPattern and keyValue use the app's names", async () => {
    const a = t.repository({ collection: 'bugs_race', fields: BUG_FIELDS, maxRetries: 0 });
    const b = t.repository({ collection: 'bugs_race', fields: BUG_FIELDS, maxRetries: 0, coalesce: false });
    await a.ensureIndex();
    const results = await Promise.allSettled(
      range(20).flatMap((i) => [a.createWithAtomicVersion({ bugId: 'bug-9', originalName: `a${i}` }), b.createWithAtomicVersion({ bugId: 'bug-9', originalName: `b${i}` })]),
    );
    const lost = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
    expect(lost.length).toBeGreaterThan(0);
    for (const err of lost) {
      expect(err).toMatchObject({ name: 'VersionConflictError', code: 11000, keyPattern: { bugId: 1, version: 1 }, keyValue: { bugId: 'bug-9' } });
      expect(err.keyPattern).not.toHaveProperty('orderId');
    }
    const stored = await t.db.collection('bugs_race').find().toArray();
    expect(sorted(stored.map((d) => d.version))).toEqual(range(stored.length));
  });

  test('every problem of option "fields" at once', () => {
    let err;
    try {
      t.repository({ fields: { orderId: 'ref', fileName: 'ref', version: '$v', colour: 'x' } });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ name: 'ValidationError', code: 'ERR_ASSET_OPTION' });
    expect(err.problems.map((p) => p.field).sort()).toEqual(['fields.colour', 'fields.fileName', 'fields.version']);
  });
});

describe("model mode: the issue's attachment schema under its own names", () => {
  let conn;
  beforeAll(async () => {
    conn = await mongoose.createConnection(uri(), { dbName: t.dbName, autoIndex: false }).asPromise();
  });
  afterAll(() => conn.close());

  const attachmentSchema = () =>
    new mongoose.Schema(
      {
        bugId: { type: String, required: true },
        uploadedBy: { type: String, required: true },
        fileUrl: { type: String, required: true },
        originalName: { type: String, required: true },
        version: { type: Number, required: true },
        versionLabel: { type: String, required: true },
      },
      { timestamps: true },
    );

  test("50 concurrent uploads to one bug are stored as exactly 1..50 under the app's names; the returned document is the stored one", async () => {
    const Attachment = conn.model('Attachment', attachmentSchema(), 'attachments');
    const repo = new AssetRepository({ model: Attachment, fields: BUG_FIELDS });
    try {
      const got = await Promise.all(range(50).map((i) => repo.createWithAtomicVersion({ bugId: 'bug-1', uploadedBy: 'u', fileUrl: `/f/${i}`, originalName: `${i}.png` })));
      expect(sorted(got.map((a) => a.version))).toEqual(range(50));
      const stored = await Attachment.find({ bugId: 'bug-1' }).sort({ version: 1 }).lean();
      expect(stored.map((d) => [d.version, d.versionLabel])).toEqual(range(50).map((v) => [v, `v${v}`]));
      const one = got.find((a) => a.version === 7);
      expect((await Attachment.findById(one._id)).toObject()).toEqual(one);
      expect((await conn.db.collection('attachments').indexes()).find((i) => i.unique).key).toEqual({ bugId: 1, version: 1 });
    } finally {
      await repo.close();
    }
  });

  test("a schema without the mapped fields is refused, every problem named under the app's names", () => {
    const schema = new mongoose.Schema({ bugId: Number, title: String });
    const Model = conn.model('Broken', schema, 'broken');
    let err;
    try {
      new AssetRepository({ model: Model, fields: { ...BUG_FIELDS, version: 'rev' } });
    } catch (e) {
      err = e;
    }
    expect(err.problems.map((p) => p.field)).toEqual(['bugId', 'originalName', 'rev', 'versionLabel']);
    expect(err.message).toMatch(/"originalName" \(the fileName field, mapped by option "fields"\)/);
  });

  test('versionLabel: null: a schema without a label field serves, and nothing stores one', async () => {
    const schema = attachmentSchema();
    schema.remove('versionLabel');
    const Attachment = conn.model('Unlabelled', schema, 'unlabelled_attachments');
    const repo = new AssetRepository({ model: Attachment, fields: { ...BUG_FIELDS, versionLabel: null } });
    try {
      const got = await repo.createWithAtomicVersion({ bugId: 'bug-1', uploadedBy: 'u', fileUrl: '/f', originalName: 'a.png' });
      expect(got.version).toBe(1);
      expect(got).not.toHaveProperty('versionLabel');
      expect(await conn.db.collection('unlabelled_attachments').findOne()).not.toHaveProperty('versionLabel');
    } finally {
      await repo.close();
    }
  });
});
