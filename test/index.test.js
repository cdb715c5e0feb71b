'use strict';

// The unique (orderId, version) index: ensured once, reused when an app (or
// Mongoose) made it already, and never run without.
const { spawnSync } = require('child_process');
const mongoose = require('mongoose');
const { testDatabase, expectGapless } = require('./support/db');

let t;
beforeAll(async () => {
  t = await testDatabase(__filename);
});
afterAll(() => t.done());

const upload = (repo, orderId = 'ord-i') => repo.createWithAtomicVersion({ orderId, fileName: 'a.pdf' });
const versionIndexes = async (collection) => (await t.db.collection(collection).listIndexes().toArray()).filter((i) => i.key.orderId && i.key.version);

test('the index is created before the first write, unique, under the name Mongoose gives it', async () => {
  const repo = t.repository({ collection: 'fresh' });
  await upload(repo);
  const indexes = await versionIndexes('fresh');
  expect(indexes).toHaveLength(1);
  expect(indexes[0]).toMatchObject({ name: 'orderId_1_version_1', unique: true, key: { orderId: 1, version: 1 } });
});

test("Mongoose's own index is reused: no second index, no error", async () => {
  const conn = await mongoose.createConnection(process.env.MONGODB_URI, { dbName: t.dbName }).asPromise();
  const schema = new mongoose.Schema(
    { orderId: { type: String, required: true }, fileName: { type: String, required: true }, version: Number, versionLabel: String },
    { timestamps: true },
  );
  schema.index({ orderId: 1, version: 1 }, { unique: true });
  const Asset = conn.model('Asset', schema, 'from_mongoose');
  await Asset.init();
  await Asset.create({ orderId: 'ord-m', fileName: 'old.pdf', version: 1, versionLabel: 'v1' });
  await conn.close();

  const repo = t.repository({ collection: 'from_mongoose' });
  expect(await repo.ensureIndex()).toBe('orderId_1_version_1');
  expect((await upload(repo, 'ord-m')).version).toBe(2);
  expect(await versionIndexes('from_mongoose')).toHaveLength(1);
  await expectGapless(t.db, 'from_mongoose', 'ord-m', 2);
});

test('a unique index on the same keys under another name is reused', async () => {
  await t.db.collection('renamed').createIndex({ orderId: 1, version: 1 }, { unique: true, name: 'asset_version_unique' });
  const repo = t.repository({ collection: 'renamed' });
  expect(await repo.ensureIndex()).toBe('asset_version_unique');
  await Promise.all([upload(repo), upload(repo)]);
  expect(await versionIndexes('renamed')).toHaveLength(1);
  await expectGapless(t.db, 'renamed', 'ord-i', 2);
});

test('a non-unique index on those keys fails loudly and nothing is written', async () => {
  await t.db.collection('unsafe').createIndex({ orderId: 1, version: 1 }, { name: 'orderId_1_version_1' });
  const repo = t.repository({ collection: 'unsafe' });
  await expect(upload(repo)).rejects.toMatchObject({ name: 'IndexError', code: 'ERR_ASSET_INDEX', message: expect.stringMatching(/not unique/) });
  expect(await t.db.collection('unsafe').countDocuments()).toBe(0);
});

test('getNextVersion still answers the highest version + 1', async () => {
  const repo = t.repository({ collection: 'deprecated' });
  expect(await repo.getNextVersion('ord-d')).toBe(1);
  await upload(repo, 'ord-d');
  await upload(repo, 'ord-d');
  expect(await repo.getNextVersion('ord-d')).toBe(3);
  expect(await repo.getNextVersion('ord-other')).toBe(1);
  await expect(repo.getNextVersion({ $ne: null })).rejects.toMatchObject({ name: 'ValidationError', field: 'orderId' });
});

// In a plain Node process: Jest's sandbox does not show process warnings.
test('getNextVersion emits a DeprecationWarning once per process', () => {
  const script = `
    const { AssetRepository } = require(${JSON.stringify(require.resolve('..'))});
    const repo = new AssetRepository({ uri: process.env.MONGODB_URI, dbName: ${JSON.stringify(t.dbName)}, collection: 'deprecated' });
    (async () => {
      for (let i = 0; i < 3; i++) await repo.getNextVersion('ord-d');
      await repo.close();
    })();`;
  const { stderr, status } = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  expect(status).toBe(0);
  expect(stderr.match(/\[ATOMIC_ASSET_VERSION_GET_NEXT\] DeprecationWarning/g)).toHaveLength(1);
});
