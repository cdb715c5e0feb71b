'use strict';

// The integrity promises at the edges that need no fault injection: holes and
// deletions, legacy data, lifecycle, one error object per upload, listeners,
// and figures that keep the reference design's meaning. Each asserts on what
// the database holds.
const { spawnSync } = require('child_process');
const path = require('path');
const { testDatabase, expectGapless, storedVersions, range, uri } = require('./support/db');

let t;
beforeAll(async () => {
  t = await testDatabase(__filename);
});
afterAll(() => t.done());

const upload = (repo, orderId, i = 0) => repo.createWithAtomicVersion({ orderId, fileName: `f-${i}.pdf`, fileSize: i });
const versionsOf = async (collection, orderId) => (await storedVersions(t.db, collection, orderId)).map((d) => d.version);
const index = (collection) => t.db.collection(collection).createIndex({ orderId: 1, version: 1 }, { unique: true, name: 'orderId_1_version_1' });

/** One upload from a brand-new process: what a restarted service does. */
function uploadFromNewProcess(collection, orderId) {
  const script = `
    const { AssetRepository } = require(${JSON.stringify(path.join(__dirname, '..'))});
    const repo = new AssetRepository({ uri: process.env.MONGODB_URI, dbName: ${JSON.stringify(t.dbName)}, collection: ${JSON.stringify(collection)} });
    repo.createWithAtomicVersion({ orderId: ${JSON.stringify(orderId)}, fileName: 'fresh.pdf' })
      .then((a) => { console.log(a.version); return repo.close(); })
      .catch((e) => { console.error(e); process.exit(1); });`;
  const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, MONGODB_URI: uri() }, timeout: 30000 });
  expect(run.stderr).toBe('');
  return Number(run.stdout.trim());
}

describe('versions only go up', () => {
  test('a hole at v1 (deleted, or lost long ago) is never filled: a new repository gets v6, not v1', async () => {
    await index('hole');
    await t.db.collection('hole').insertMany(range(4, 2).map((v) => ({ orderId: 'h', version: v, versionLabel: `v${v}` })));
    const repo = t.repository({ collection: 'hole' });
    expect((await upload(repo, 'h')).version).toBe(6);
    expect(await versionsOf('hole', 'h')).toEqual([2, 3, 4, 5, 6]);
  });

  test('a long-running repository, other writers and a deletion below the top: never below the top', async () => {
    const mine = t.repository({ collection: 'stale' });
    const other = t.repository({ collection: 'stale' });
    await upload(mine, 's', 1);
    await upload(mine, 's', 2);
    for (let i = 0; i < 4; i++) await upload(other, 's', 10 + i); // v3..v6
    await t.db.collection('stale').deleteOne({ orderId: 's', version: 3 });
    expect((await upload(mine, 's', 3)).version).toBe(7);
    expect(await versionsOf('stale', 's')).toEqual([1, 2, 4, 5, 6, 7]);
  });

  test('a deleted top is reused, as in the reference design, alike in a long-running and in a new process', async () => {
    const repo = t.repository({ collection: 'top' });
    for (let i = 0; i < 6; i++) await upload(repo, 'long', i);
    await t.db.collection('top').deleteOne({ orderId: 'long', version: 6 });
    expect((await upload(repo, 'long', 6)).version).toBe(6);

    for (let i = 0; i < 6; i++) await upload(repo, 'fresh', i);
    await t.db.collection('top').deleteOne({ orderId: 'fresh', version: 6 });
    expect(uploadFromNewProcess('top', 'fresh')).toBe(6);
    await expectGapless(t.db, 'top', 'long', 6);
    await expectGapless(t.db, 'top', 'fresh', 6);
  });

  test('a legacy non-numeric version ("v3") is ignored when finding the top, and does not block the order', async () => {
    await index('legacy');
    await t.db.collection('legacy').insertMany([
      { orderId: 'l', version: 1, versionLabel: 'v1' },
      { orderId: 'l', version: 2, versionLabel: 'v2' },
      { orderId: 'l', version: 'v3', versionLabel: 'v3' },
    ]);
    const repo = t.repository({ collection: 'legacy' });
    const stored = await Promise.all([upload(repo, 'l', 1), upload(repo, 'l', 2)]);
    expect(stored.map((a) => a.version)).toEqual([3, 4]);
    const numeric = (await versionsOf('legacy', 'l')).filter((v) => typeof v === 'number');
    expect(numeric).toEqual([1, 2, 3, 4]);
  });
});

describe('one upload, one version', () => {
  test('calling again with the _id of a stored upload resolves with it and stores nothing more', async () => {
    const repo = t.repository({ collection: 'again' });
    const first = await upload(repo, 'a', 1);
    const again = await repo.createWithAtomicVersion({ orderId: 'a', fileName: 'f-1.pdf', fileSize: 1, _id: first._id });
    expect(again).toEqual(first);
    const burst = await Promise.all(range(5).map(() => repo.createWithAtomicVersion({ orderId: 'a', fileName: 'f-1.pdf', _id: first._id })));
    for (const a of burst) expect(a._id.equals(first._id)).toBe(true);
    await expectGapless(t.db, 'again', 'a', 1);
  });

  test('a caller-supplied _id stores once and then settles to the stored document; the next upload takes the next version', async () => {
    const { ObjectId } = require('bson');
    const repo = t.repository({ collection: 'callerid' });
    const _id = new ObjectId();
    const [a, b, c] = await Promise.all([
      repo.createWithAtomicVersion({ orderId: 'c', fileName: 'x.pdf', _id }),
      repo.createWithAtomicVersion({ orderId: 'c', fileName: 'x.pdf', _id }),
      upload(repo, 'c', 2),
    ]);
    expect(a.version).toBe(1);
    expect(b).toEqual(a);
    expect(c.version).toBe(2);
    await expectGapless(t.db, 'callerid', 'c', 2);
  });

  test('an _id already used by another order is refused as a duplicate, and nothing is written', async () => {
    const repo = t.repository({ collection: 'foreignid' });
    const first = await upload(repo, 'x', 1);
    await expect(repo.createWithAtomicVersion({ orderId: 'y', fileName: 'y.pdf', _id: first._id })).rejects.toMatchObject({
      name: 'DuplicateKeyError',
      code: 11000,
      orderId: 'y',
    });
    expect(await t.db.collection('foreignid').countDocuments({ orderId: 'y' })).toBe(0);
  });
});

describe('lifecycle and errors', () => {
  test('coalesce: false, close() right after the calls: every accepted upload is stored, none rejected', async () => {
    const repo = t.repository({ collection: 'nocoalesce', coalesce: false });
    await repo.ensureIndex(); // the calls then find the index promise already resolved
    const calls = range(20).map((i) => upload(repo, 'n', i));
    const closed = repo.close();
    const results = await Promise.allSettled(calls);
    await closed;
    expect(results.filter((r) => r.status === 'rejected').map((r) => r.reason.message)).toEqual([]);
    await expectGapless(t.db, 'nocoalesce', 'n', 20);
  });

  test('an index failure with several orders waiting: each upload gets an error of its own, naming its order', async () => {
    // A non-unique index on the keys: the repository refuses to run unprotected.
    await t.db.collection('unsafe').createIndex({ orderId: 1, version: 1 }, { name: 'orderId_1_version_1' });
    const repo = t.repository({ collection: 'unsafe' });
    const results = await Promise.allSettled(['A', 'B', 'C', 'A'].map((o, i) => upload(repo, o, i)));
    const errors = results.map((r) => r.reason);
    for (const e of errors) expect(e).toMatchObject({ name: 'IndexError', code: 'ERR_ASSET_INDEX' });
    expect(errors.map((e) => e.orderId)).toEqual(['A', 'B', 'C', 'A']);
    expect(new Set(errors).size).toBe(4);
    expect(errors[0].cause).toBeInstanceOf(Error);
    expect(await t.db.collection('unsafe').countDocuments()).toBe(0);
  });

  test('a throwing observe() listener does not turn a stored upload into a rejection; batches reach listeners too', async () => {
    const repo = t.repository({ collection: 'observers' });
    const seen = [];
    repo.observe((e) => seen.push(e.outcome));
    repo.observe(() => {
      throw new Error('listener bug');
    });
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const one = await upload(repo, 'o', 1);
    expect(one.version).toBe(1);
    expect(warn.mock.calls[0][0]).toMatch(/listener bug/);
    warn.mockRestore();
    const many = await repo.createManyWithAtomicVersion('o', [{ fileName: 'a' }, { fileName: 'b' }]);
    expect(many.map((a) => a.version)).toEqual([2, 3]);
    expect(seen).toEqual(['stored', 'stored', 'stored']);
    await expectGapless(t.db, 'observers', 'o', 3);
  });

  test('two instances taking turns on one order, one upload at a time: no retries counted (the reference design counts none either)', async () => {
    const a = t.repository({ collection: 'turns' });
    const b = t.repository({ collection: 'turns' });
    for (let i = 0; i < 10; i++) await upload(i % 2 ? b : a, 'turn', i);
    await expectGapless(t.db, 'turns', 'turn', 10);
    for (const s of [a.stats(), b.stats()]) expect(s).toMatchObject({ uploads: 5, succeeded: 5, retries: 0, retryRate: 0, outcomeUnknown: 0 });
  });
});
