'use strict';

// Faults with real processes and a real server: a connection that drops after
// the insert, the server killed mid-burst, a client killed mid-burst, and
// shutdown with work in flight. Each asserts on what the database holds.
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { MongoClient } = require('mongodb');
const { AssetRepository } = require('..');
const { testDatabase, expectGapless, range, uri } = require('./support/db');
const { startLyingProxy } = require('./support/lying-proxy');
const { startFerretDB } = require('../scripts/ferretdb');
const { ownFrontEnd } = require('./support/backend');

let t;
beforeAll(async () => {
  t = await testDatabase(__filename);
});
afterAll(() => t.done());

const portOf = (u) => Number(new URL(u).port || 27017);
const upload = (repo, orderId, i) => repo.createWithAtomicVersion({ orderId, fileName: `f-${i}.pdf`, fileSize: i });

describe('one upload, one version, even when the network lies', () => {
  test.each([
    ['coalesced batches', {}, 2],
    ['one insert per upload', { coalesce: false }, 6],
  ])('inserts whose reply is lost are stored exactly once (%s)', async (_label, options, drops) => {
    const proxy = await startLyingProxy(portOf(uri()), drops);
    const collection = `lies_${drops}`;
    await t.db.collection(collection).createIndex({ orderId: 1, version: 1 }, { unique: true, name: 'orderId_1_version_1' });
    const repo = new AssetRepository({ uri: `mongodb://127.0.0.1:${proxy.port}/?serverSelectionTimeoutMS=5000`, dbName: t.dbName, collection, ...options });
    try {
      const results = await Promise.allSettled(range(30).map((i) => upload(repo, 'liar', i)));
      expect(results.filter((r) => r.status === 'rejected').map((r) => r.reason.message)).toEqual([]);
      // How many replies were lost depends on how the uploads were batched.
      expect(proxy.stats.dropped).toBeGreaterThan(0);
      expect(proxy.stats.dropped).toBeLessThanOrEqual(drops);

      const docs = await expectGapless(t.db, collection, 'liar', 30);
      const byName = new Map(docs.map((d) => [d.fileName, d]));
      expect(byName.size).toBe(30); // no upload stored twice under two versions
      for (const r of results) {
        const stored = byName.get(r.value.fileName);
        expect(stored.version).toBe(r.value.version);
        expect(stored._id.equals(r.value._id)).toBe(true);
      }
    } finally {
      await repo.close();
      await proxy.close();
    }
  });
});

describe('the server killed mid-burst', () => {
  test('every promise settles in bounded time; failures are certainly not stored, unknowns settle by _id; after a restart the same repository continues', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferret-kill-'));
    const own = ownFrontEnd('killed');
    let server = await startFerretDB({ ...own, dataDir });
    // Every timeout the documented bound depends on is set (docs/faults.md).
    const serverUri = `mongodb://127.0.0.1:${server.port}/?serverSelectionTimeoutMS=2000&connectTimeoutMS=2000&socketTimeoutMS=2000`;
    const repo = new AssetRepository({ uri: serverUri, dbName: 'killed', collection: 'assets', coalesce: false, recoveryTimeMS: 1500 });
    try {
      await repo.ensureIndex();
      let resolved = 0;
      const data = range(300).map((i) => ({ orderId: 'victim', fileName: `f-${i}.pdf`, fileSize: i }));
      const settledAt = [];
      const burst = data.map((d, i) =>
        repo
          .createWithAtomicVersion(d)
          .then((a) => {
            resolved++;
            return a;
          })
          .finally(() => (settledAt[i] = Date.now())),
      );
      while (resolved < 30) await new Promise((r) => setTimeout(r, 2));
      await server.stop('SIGKILL');
      const killedAt = Date.now();
      const results = await Promise.allSettled(burst);
      const settleMs = Date.now() - killedAt;
      // The documented bound: a server-selection (or socket) timeout, 2 s here,
      // for the backlog, plus the recovery budget (1.5 s) for uploads in doubt.
      // (Usually about 2 s; once, in a loaded CI run, 25.7 s: a red run shows
      // how the calls ended and the slowest of them.)
      const outcome = (r) => (r.status === 'fulfilled' ? 'stored' : `${r.reason.name} ${r.reason.reason || r.reason.code}`);
      const outcomes = {};
      for (const r of results) outcomes[outcome(r)] = (outcomes[outcome(r)] || 0) + 1;
      const slowest = results
        .map((r, i) => [settledAt[i] - killedAt, outcome(r)])
        .sort((a, b) => b[0] - a[0])
        .slice(0, 5);
      expect(`${settleMs < 9000 ? 'within' : 'past'} the bound: ${JSON.stringify({ settleMs, outcomes, slowest })}`).toMatch(/^within /);
      const rejected = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
      expect(rejected.length).toBeGreaterThan(0);
      for (const err of rejected) {
        if (err.name === 'OutcomeUnknownError') {
          expect(err).toMatchObject({ code: 'ERR_ASSET_OUTCOME_UNKNOWN', retriable: false });
          expect(err._id).toBeDefined();
        } else {
          expect(err).toMatchObject({ name: 'ConnectionError', code: 'ERR_ASSET_CONNECTION', retriable: true });
        }
      }

      server = await startFerretDB({ ...own, dataDir, port: server.port });
      const client = await MongoClient.connect(serverUri);
      const coll = client.db('killed').collection('assets');
      const stored = new Map((await coll.find({ orderId: 'victim' }).toArray()).map((d) => [d.fileName, d]));
      // No false success, no false failure.
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') expect(stored.get(data[i].fileName).version).toBe(r.value.version);
        else if (r.reason.name === 'ConnectionError') expect(stored.has(data[i].fileName)).toBe(false);
      });
      // Unknown outcomes settle by an idempotent retry with their _id.
      const unknown = results.map((r, i) => [r, i]).filter(([r]) => r.status === 'rejected' && r.reason.name === 'OutcomeUnknownError');
      for (const [r, i] of unknown) {
        const settled = await repo.createWithAtomicVersion({ ...data[i], _id: r.reason._id });
        expect(settled._id.equals(r.reason._id)).toBe(true);
      }
      const docs = await coll.find({ orderId: 'victim' }).sort({ version: 1 }).toArray();
      const k = docs.length;
      expect(docs.map((d) => d.version)).toEqual(range(k));
      expect(new Set(docs.map((d) => d.fileName)).size).toBe(k);
      expect(k).toBe(results.filter((r) => r.status === 'fulfilled').length + unknown.length);
      await client.close();

      const next = await repo.createWithAtomicVersion({ orderId: 'victim', fileName: 'after.pdf' });
      expect(next.version).toBe(k + 1);
    } finally {
      await repo.close();
      await server.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60000);
});

test('a client process killed with SIGKILL mid-burst: the other writers finish and the order holds 1..n', async () => {
  const writer = path.join(__dirname, 'support', 'writer.js');
  const job = (count) => JSON.stringify({ uri: uri(), dbName: t.dbName, collection: 'sigkill', orderId: 'contested', count, options: {} });
  await t.db.collection('sigkill').createIndex({ orderId: 1, version: 1 }, { unique: true, name: 'orderId_1_version_1' });
  const children = [job(100000), job(150), job(150)].map((j) => spawn(process.execPath, [writer, j], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const outputs = children.map((c) => {
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    return new Promise((resolve) => c.on('exit', (code, signal) => resolve({ code, signal, out })));
  });
  // Kill the first once it has written something.
  while ((await t.db.collection('sigkill').countDocuments({ orderId: 'contested' })) < 20) await new Promise((r) => setTimeout(r, 20));
  children[0].kill('SIGKILL');
  const [killed, a, b] = await Promise.all(outputs);
  expect(killed.signal).toBe('SIGKILL');
  for (const w of [a, b]) {
    expect(w.code).toBe(0);
    const summary = JSON.parse(w.out);
    expect(summary).toMatchObject({ ok: 150, failed: 0 });
  }
  const n = await t.db.collection('sigkill').countDocuments({ orderId: 'contested' });
  expect(n).toBeGreaterThanOrEqual(300);
  await expectGapless(t.db, 'sigkill', 'contested', n);
}, 60000);

describe('lifecycle', () => {
  test('close() with uploads in flight lets them finish; nothing hangs', async () => {
    const repo = new AssetRepository({ uri: uri(), dbName: t.dbName, collection: 'closing' });
    const burst = Promise.allSettled(range(200).map((i) => upload(repo, `close-${i % 3}`, i)));
    await repo.close();
    const results = await burst;
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    for (const o of range(3, 0)) await expectGapless(t.db, 'closing', `close-${o}`, results.filter((r) => r.value.orderId === `close-${o}`).length);
    await expect(upload(repo, 'close-0', 1)).rejects.toMatchObject({ name: 'RepositoryClosedError' });
  });

  test.each([
    ['process.exit() with uploads in flight', 'setTimeout(() => process.exit(0), 5);'],
    ['the main script ending without close()', ''],
    ['an uncaught exception with uploads in flight', "setTimeout(() => { throw new Error('boom'); }, 5);"],
  ])('%s: no crash, no abort, no segfault', (_label, ending) => {
    const script = `
      const { AssetRepository } = require(${JSON.stringify(path.join(__dirname, '..'))});
      const repo = new AssetRepository({ uri: process.env.MONGODB_URI, dbName: ${JSON.stringify(t.dbName)}, collection: 'exiting', coalesce: false });
      for (let i = 0; i < 300; i++) repo.createWithAtomicVersion({ orderId: 'exit-' + (i % 7), fileName: 'f' + i }).catch(() => {});
      ${ending}`;
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 });
    expect(run.signal).toBeNull();
    expect(run.stderr).not.toMatch(/Abort|Segmentation|FATAL|core dumped|napi/i);
    expect(run.status).toBe(ending.includes('boom') ? 1 : 0);
  });
});
