'use strict';

// Many orders at once: uploads waiting for different orders share one round
// trip (one read of every order's top, one ordered insert), and a failure in
// one order costs no other order its version or its place. Each test asserts
// on what the database holds; the proxy counts the commands that reach it.
const { testDatabase, expectGapless, storedVersions, range, uri } = require('./support/db');
const { startFailProxy } = require('./support/fail-proxy');
const { runWriters } = require('./support/processes');
const { backend } = require('./support/backend');

let t;
let proxy;
beforeAll(async () => {
  t = await testDatabase(__filename);
  proxy = await startFailProxy({ upstreamPort: Number(new URL(uri()).port || 27017) });
});
afterEach(() => proxy.configureFailPoint({ mode: 'off' }));
afterAll(async () => {
  await proxy.close();
  await t.done();
});

const proxied = () => `mongodb://127.0.0.1:${proxy.port}/?serverSelectionTimeoutMS=2000`;
const upload = (repo, orderId, i = 0) => repo.createWithAtomicVersion({ orderId, fileName: `${orderId}-${i}.pdf`, fileSize: i });
const seen = () => ({ ...proxy.stats.seen });
const delta = (before, name) => (proxy.stats.seen[name] || 0) - (before[name] || 0);

test('1000 new orders x 1 upload: every order holds v1, in a handful of batches with one read each (one per order where only that is pushed down)', async () => {
  const repo = t.repository({ uri: proxied(), collection: 'wide' });
  await repo.ensureIndex();
  const before = seen();
  const stored = await Promise.all(range(1000).map((i) => upload(repo, `wide-${i}`)));
  expect(stored.every((a) => a.version === 1)).toBe(true);
  const { batches } = repo.stats();
  expect(batches).toBeLessThan(20);
  const reads = delta(before, 'find') + delta(before, 'aggregate');
  if (backend === 'postgresql') {
    // FerretDB over PostgreSQL pushes one order's read down to its index but
    // never many orders': one read per order (src/core/read_tops.c), after
    // the refused grouped read and the explain that chose it, once each.
    expect(delta(before, 'aggregate')).toBe(1);
    expect(delta(before, 'explain')).toBe(1);
    expect(delta(before, 'find')).toBe(1000);
  } else {
    // One read of the tops per batch, however many orders it holds (plus, once
    // per repository, the grouped read a server without $first refuses).
    expect(reads).toBeGreaterThanOrEqual(batches);
    expect(reads).toBeLessThanOrEqual(batches + 1);
  }
  expect(await t.db.collection('wide').countDocuments()).toBe(1000);
  expect(await t.db.collection('wide').countDocuments({ version: 1 })).toBe(1000);
});

test('200 orders x 5, interleaved: each order 1..5 in call order, one round trip carrying many orders', async () => {
  const repo = t.repository({ collection: 'interleaved' });
  const calls = [];
  for (let round = 0; round < 5; round++) for (let o = 0; o < 200; o++) calls.push(upload(repo, `o-${o}`, round));
  await Promise.all(calls);
  expect(repo.stats().batches).toBeLessThan(50);
  for (const o of [0, 57, 199]) {
    const docs = await expectGapless(t.db, 'interleaved', `o-${o}`, 5);
    expect(docs.map((d) => d.fileName)).toEqual(range(5, 0).map((r) => `o-${o}-${r}.pdf`));
  }
  expect(await t.db.collection('interleaved').countDocuments()).toBe(1000);
});

test("a duplicate on another unique index in one order: that upload fails, its order keeps no gap, and the other orders' uploads after it are stored in place", async () => {
  const coll = t.db.collection('mixed_dup');
  await coll.createIndex({ orderId: 1, version: 1 }, { unique: true, name: 'orderId_1_version_1' });
  await coll.createIndex({ checksum: 1 }, { unique: true, sparse: true, name: 'checksum_1' });
  await coll.insertOne({ orderId: 'elsewhere', version: 1, checksum: 'taken' });
  const repo = t.repository({ collection: 'mixed_dup' });
  await upload(repo, 'warm'); // the next uploads queue behind this one and go as one batch
  const calls = [
    upload(repo, 'a', 1),
    repo.createWithAtomicVersion({ orderId: 'b', fileName: 'dup.pdf', checksum: 'taken' }),
    upload(repo, 'b', 2),
    upload(repo, 'c', 1),
    upload(repo, 'c', 2),
  ];
  const results = await Promise.allSettled(calls);
  expect(results[1]).toMatchObject({ status: 'rejected', reason: { name: 'DuplicateKeyError', code: 11000 } });
  expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
  await expectGapless(t.db, 'mixed_dup', 'a', 1);
  const b = await expectGapless(t.db, 'mixed_dup', 'b', 1);
  expect(b[0].fileName).toBe('b-2.pdf');
  const c = await expectGapless(t.db, 'mixed_dup', 'c', 2);
  expect(c.map((d) => d.fileName)).toEqual(['c-1.pdf', 'c-2.pdf']);
});

test('a hot order contended by another process costs the cold orders of the same batches nothing: all stored, each in call order', async () => {
  const repo = t.repository({ collection: 'hotcold' });
  await repo.ensureIndex();
  const job = { uri: uri(), dbName: t.dbName, collection: 'hotcold', orderId: 'hot', count: 300, options: {} };
  const [[other], mine] = await runWriters([job], () => Promise.allSettled(range(300).map((i) => (i % 3 === 0 ? upload(repo, 'hot', i) : upload(repo, `cold-${i % 30}`, i)))));
  expect(other.failed).toBe(0);
  expect(mine.filter((r) => r.status === 'rejected').map((r) => r.reason.message)).toEqual([]);
  await expectGapless(t.db, 'hotcold', 'hot', 400);
  for (let c = 1; c < 30; c++) {
    if (c % 3 === 0) continue;
    const docs = await storedVersions(t.db, 'hotcold', `cold-${c}`);
    const expected = range(300)
      .filter((i) => i % 3 !== 0 && i % 30 === c)
      .map((i) => `cold-${c}-${i}.pdf`);
    expect(docs.map((d) => d.version)).toEqual(range(expected.length));
    expect(docs.map((d) => d.fileName)).toEqual(expected);
  }
});

test('a lost reply for a batch of many orders: every upload stored once, every order gapless', async () => {
  const repo = t.repository({ uri: proxied(), collection: 'lost_many' });
  await upload(repo, 'first');
  proxy.configureFailPoint({ mode: { times: 1 }, data: { failCommands: ['insert'], dropReplyAfterExecute: true } });
  const stored = await Promise.all(range(60).map((i) => upload(repo, `lm-${i % 12}`, i)));
  expect(proxy.stats.injected.dropReplyAfterExecute).toBeGreaterThan(0);
  for (let o = 0; o < 12; o++) {
    const docs = await expectGapless(t.db, 'lost_many', `lm-${o}`, 5);
    expect(new Set(docs.map((d) => d.fileName)).size).toBe(5);
  }
  const ids = new Set(stored.map((a) => a._id.toHexString()));
  expect(ids.size).toBe(60);
});

test('a lone upload is not held back: it goes at once, in a batch of its own', async () => {
  const repo = t.repository({ uri: proxied(), collection: 'lone' });
  await repo.ensureIndex();
  const before = seen();
  const a = await upload(repo, 'alone');
  expect(a.version).toBe(1);
  expect(repo.stats().batches).toBe(1);
  expect(delta(before, 'insert')).toBe(1);
});
