'use strict';

// The reference design's seven scenarios, each checked against what the
// database holds, not only against what the promises returned.
const { testDatabase, expectGapless, storedVersions, range, uri } = require('./support/db');
const { runWriters } = require('./support/processes');

let t;
beforeAll(async () => {
  t = await testDatabase(__filename);
});
afterAll(() => t.done());

const upload = (repo, orderId, i = 0) => repo.createWithAtomicVersion({ orderId, fileName: `file-${i}.pdf`, mimeType: 'application/pdf', fileSize: 1000 + i });

test('1. three concurrent uploads to one order get versions 1, 2, 3 and no duplicates', async () => {
  const repo = t.repository({ collection: 's1' });
  const assets = await Promise.all(range(3).map((i) => upload(repo, 'order-1', i)));
  expect(assets.map((a) => a.version).sort()).toEqual([1, 2, 3]);
  await expectGapless(t.db, 's1', 'order-1', 3);
});

test('2. sequential uploads after a concurrent burst continue the sequence', async () => {
  const repo = t.repository({ collection: 's2' });
  await Promise.all(range(3).map((i) => upload(repo, 'order-2', i)));
  const fourth = await upload(repo, 'order-2', 4);
  const fifth = await upload(repo, 'order-2', 5);
  expect([fourth.version, fifth.version]).toEqual([4, 5]);
  const docs = await expectGapless(t.db, 's2', 'order-2', 5);
  expect(docs[3].fileName).toBe('file-4.pdf');
  expect(docs[4].fileName).toBe('file-5.pdf');
});

test('3. ten concurrent uploads get exactly 1..10', async () => {
  const repo = t.repository({ collection: 's3' });
  await Promise.all(range(10).map((i) => upload(repo, 'order-3', i)));
  await expectGapless(t.db, 's3', 'order-3', 10);
});

test('4. concurrent uploads to different orders keep independent sequences', async () => {
  const repo = t.repository({ collection: 's4' });
  const orders = ['order-a', 'order-b', 'order-c'];
  await Promise.all(orders.flatMap((o) => range(4).map((i) => upload(repo, o, i))));
  for (const o of orders) await expectGapless(t.db, 's4', o, 4);
});

describe('5. retry on duplicate key', () => {
  test('a version written by another client in between is retried, and counted', async () => {
    // Two clients (two repositories, each with its own connection pool), one
    // upload per batch: their read-then-insert attempts overlap for real.
    const a = t.repository({ collection: 's5a', coalesce: false });
    const b = t.repository({ collection: 's5a', coalesce: false });
    const results = await Promise.all(range(15).flatMap((i) => [upload(a, 'order-5', i), upload(b, 'order-5', 100 + i)]));
    expect(results.map((r) => r.version).sort((x, y) => x - y)).toEqual(range(30));
    const stats = [a.stats(), b.stats()];
    expect(stats[0].retries + stats[1].retries).toBeGreaterThan(0);
    expect(stats[0].failed + stats[1].failed).toBe(0);
    await expectGapless(t.db, 's5a', 'order-5', 30);
  });

  test('two processes writing one order at once collide for real and all uploads succeed', async () => {
    const job = { uri: uri(), dbName: t.dbName, collection: 's5b', orderId: 'order-5b', count: 20, options: { coalesce: false } };
    const [a, b] = await runWriters([job, job]);
    expect(a.failed + b.failed).toBe(0);
    expect(a.stats.retries + b.stats.retries).toBeGreaterThan(0);
    expect([...a.versions, ...b.versions].sort((x, y) => x - y)).toEqual(range(40));
    await expectGapless(t.db, 's5b', 'order-5b', 40);
  });
});

test('6. a validation error leaves no partial data', async () => {
  const repo = t.repository({ collection: 's6' });
  await upload(repo, 'order-6', 1);
  const bad = [
    repo.createWithAtomicVersion({ orderId: 'order-6', fileSize: 10 }),
    repo.createWithAtomicVersion({ orderId: 'order-6', fileName: 'x.pdf', fileSize: -1 }),
    repo.createWithAtomicVersion({ orderId: 'order-6', fileName: 'x.pdf', meta: { $set: 1 } }),
  ];
  const good = upload(repo, 'order-6', 2);
  for (const p of bad) await expect(p).rejects.toMatchObject({ name: 'ValidationError' });
  await good;
  const docs = await expectGapless(t.db, 's6', 'order-6', 2);
  expect(docs.map((d) => d.fileName)).toEqual(['file-1.pdf', 'file-2.pdf']);
  expect(await t.db.collection('s6').countDocuments()).toBe(2);
});

test('7. version labels match version numbers for concurrent uploads', async () => {
  const repo = t.repository({ collection: 's7' });
  const assets = await Promise.all(range(8).map((i) => upload(repo, 'order-7', i)));
  for (const a of assets) expect(a.versionLabel).toBe(`v${a.version}`);
  const docs = await storedVersions(t.db, 's7', 'order-7');
  expect(docs.map((d) => d.versionLabel)).toEqual(range(8).map((v) => `v${v}`));
});
