'use strict';

// `npx atomic-asset-version doctor`: run as the bin it is, against a
// collection the racy reference design damaged (duplicate versions, rows
// without a version, labels that lie). Read-only by default; --fix repairs
// with nothing deleted, is idempotent, survives a crash halfway, and leaves
// the unique index built while an app uploads. Both backends.
const { spawn, spawnSync } = require('child_process');
const path = require('path');
const { ObjectId } = require('mongodb');
const { testDatabase, uri, range } = require('./support/db');

const BIN = path.join(__dirname, '..', 'bin', 'atomic-asset-version.js');
let t;
beforeAll(async () => {
  t = await testDatabase(__filename);
});
afterAll(() => t.done());

function doctorSync(collection, extra = [], env = {}) {
  const run = spawnSync(process.execPath, [BIN, 'doctor', '--uri', uri(), '--db', t.dbName, '--collection', collection, ...extra], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  return run;
}

const T0 = Date.UTC(2026, 0, 1);
/**
 * What the racy design leaves behind, per order: [version, label] in
 * creation order; version undefined for a row stored before versions.
 */
async function damage(collection, orders, orderField = 'orderId') {
  const docs = [];
  let n = 0;
  for (const [order, rows] of Object.entries(orders)) {
    for (const [version, label] of rows) {
      n++;
      const doc = { _id: new ObjectId(), [orderField]: order, fileName: `f${n}`, note: `row ${n}`, createdAt: new Date(T0 + n * 1000) };
      if (version !== undefined) doc.version = version;
      if (label !== undefined) doc.versionLabel = label;
      docs.push(doc);
    }
  }
  await t.db.collection(collection).insertMany(docs);
  return docs;
}

/** The racy design's damage: duplicates, legacy rows without a version, a wrong label, an order of legacy rows only. */
const DAMAGED = {
  'ord-a': [
    [1, 'v1'],
    [2, 'v2'],
    [2, 'v2'],
    [3, 'v3'],
    [undefined, undefined],
    [3, 'v3'],
  ],
  'ord-b': [
    [1, 'v1'],
    [2, 'v9'],
    [2, 'v2'],
  ],
  'ord-c': [
    [undefined, undefined],
    ['v7', undefined],
    [null, 'v1'],
  ],
  'ord-d': [
    [1, 'v1'],
    [2, 'v2'],
  ],
};

/** The promises hold: per order, versions 1..n exactly, each label its version, nothing deleted or otherwise changed. */
async function expectRepaired(collection, before, orderField = 'orderId') {
  const after = await t.db.collection(collection).find().toArray();
  expect(after).toHaveLength(before.length);
  const byId = new Map(after.map((d) => [d._id.toHexString(), d]));
  for (const old of before) {
    const now = byId.get(old._id.toHexString());
    expect(now).toBeDefined();
    const { version, versionLabel, ...rest } = now;
    const { version: v0, versionLabel: l0, ...restBefore } = old;
    expect(rest).toEqual(restBefore);
  }
  const orders = new Set(after.map((d) => d[orderField]));
  for (const order of orders) {
    const mine = after.filter((d) => d[orderField] === order);
    expect(mine.map((d) => d.version).sort((a, b) => a - b)).toEqual(range(mine.length));
    for (const d of mine) expect(d.versionLabel).toBe(`v${d.version}`);
  }
  const indexes = await t.db.collection(collection).indexes();
  expect(indexes.find((i) => i.unique && i.key[orderField] === 1 && i.key.version === 1)).toBeDefined();
  return byId;
}

test('read-only by default: reports every kind of damage, exits 1, changes nothing', async () => {
  const before = await damage('readonly', DAMAGED);
  const run = doctorSync('readonly');
  expect(run.stderr).toBe('');
  expect(run.status).toBe(1);
  expect(run.stdout).toMatch(/duplicate \(orderId, version\) pairs: 3/);
  expect(run.stdout).toMatch(/documents without a numeric version: 4/);
  expect(run.stdout).toMatch(/labels that do not match their version: 1/);
  expect(run.stdout).toMatch(/index: unique index on \{ orderId: 1, version: 1 \}: absent/);
  expect(await t.db.collection('readonly').find().toArray()).toEqual(before);
  expect(await t.db.collection('readonly').indexes()).toHaveLength(1); // _id only

  const json = JSON.parse(doctorSync('readonly', ['--json']).stdout);
  expect(json).toMatchObject({ clean: false, fix: false, changes: [] });
  expect(json.found.duplicates.map((d) => [d.order, d.version, d.ids.length])).toEqual([
    ['ord-a', 2, 2],
    ['ord-a', 3, 2],
    ['ord-b', 2, 2],
  ]);
  expect(json.found.duplicates[0].kept).toEqual({ $oid: before[1]._id.toHexString() }); // the earliest created keeps v2
});

test('a clean collection exits 0; an error (no server) exits 2', async () => {
  await damage('clean', {
    o: [
      [1, 'v1'],
      [2, 'v2'],
    ],
  });
  expect(doctorSync('clean').status).toBe(0);
  const run = spawnSync(process.execPath, [BIN, 'doctor', '--uri', 'mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200', '--collection', 'x'], { encoding: 'utf8' });
  expect(run.status).toBe(2);
  expect(run.stderr).toMatch(/^atomic-asset-version doctor: /);
  expect(spawnSync(process.execPath, [BIN, 'doctor', '--uri', uri()], { encoding: 'utf8' }).status).toBe(2); // no --collection
});

test('--fix: the earliest keeps a duplicated number, the rest and the legacy rows go after the top, labels rewritten, every change printed, nothing deleted, the index built; a second run changes nothing', async () => {
  const before = await damage('fix', DAMAGED);
  const run = doctorSync('fix', ['--fix']);
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  const byId = await expectRepaired('fix', before);
  const versionOf = (i) => byId.get(before[i]._id.toHexString()).version;
  // ord-a: rows 0..5 = v1, v2, v2 (later), v3, legacy, v3 (later): the later v2, the later v3, then the legacy row.
  expect(range(6, 0).map(versionOf)).toEqual([1, 2, 4, 3, 6, 5]);
  // ord-b: v1, v2 labelled v9 (the earliest: keeps v2, label fixed), v2 (later): v3.
  expect([6, 7, 8].map(versionOf)).toEqual([1, 2, 3]);
  // ord-c holds legacy rows only: v1, v2, v3 in creation order.
  expect([9, 10, 11].map(versionOf)).toEqual([1, 2, 3]);
  const changed = run.stdout.split('\n').filter((l) => l.startsWith('changed _id '));
  expect(changed).toHaveLength(8); // ord-a: 2 duplicates and a legacy row; ord-b: a duplicate and a label; ord-c: 3 legacy rows
  expect(changed.join('\n')).toContain(`changed _id {"$oid":"${before[2]._id.toHexString()}"} (orderId "ord-a"): version: 2 → 4, versionLabel: "v2" → "v4"`);
  expect(changed.join('\n')).toContain(`changed _id {"$oid":"${before[7]._id.toHexString()}"} (orderId "ord-b"): version: 2 → 2, versionLabel: "v9" → "v2"`);
  expect(run.stdout).toMatch(/unique index built/);

  const again = doctorSync('fix', ['--fix', '--json']);
  expect(again.status).toBe(0);
  expect(JSON.parse(again.stdout)).toMatchObject({ clean: true, changes: [], indexBuilt: false });
  expect(doctorSync('fix').status).toBe(0);
});

test('a crash halfway through --fix: the rerun finishes the repair', async () => {
  const before = await damage('crash', DAMAGED);
  const crashed = doctorSync('crash', ['--fix'], { AAV_DOCTOR_KILL_AFTER_CHANGES: '3' });
  expect(crashed.signal).toBe('SIGKILL');
  expect(crashed.stdout.split('\n').filter((l) => l.startsWith('changed _id '))).toHaveLength(3);
  expect(doctorSync('crash').status).toBe(1); // still damaged, and says so
  const rerun = doctorSync('crash', ['--fix']);
  expect(rerun.status).toBe(0);
  // The first three changes (ord-a's) are kept; the rerun plans the rest from what is stored.
  expect(rerun.stdout.split('\n').filter((l) => l.startsWith('changed _id '))).toHaveLength(5);
  await expectRepaired('crash', before);
});

test("--fields: the app's own names", async () => {
  const before = await damage(
    'bugs',
    {
      'bug-1': [
        [1, 'v1'],
        [1, 'v1'],
        [undefined, undefined],
      ],
    },
    'bugId',
  );
  const run = doctorSync('bugs', ['--fix', '--fields', '{"orderId":"bugId","fileName":"originalName"}']);
  expect(run.status).toBe(0);
  expect(run.stdout).toContain('(bugId "bug-1")');
  await expectRepaired('bugs', before, 'bugId');
  expect((await t.db.collection('bugs').indexes()).find((i) => i.unique).name).toBe('bugId_1_version_1');
});

/**
 * `doctor --fix` on `collection` while an app uploads to three of its orders
 * through the repository, until the doctor is done and ten uploads after.
 * Uploads refused while the index cannot be built (a ServerError, E11000 on
 * MongoDB) are kept in `refused`: certainly not stored (checked by
 * expectUploadsKept).
 */
async function doctorBesideApp(collection) {
  const repo = t.repository({ collection });
  let doctorDone = false;
  const stored = [];
  const refused = [];
  const app = (async () => {
    let n = 0;
    for (let after = 0; after < 10; after += doctorDone ? 1 : 0) {
      n++;
      try {
        stored.push(await repo.createWithAtomicVersion({ orderId: `ord-${(n % 3) + 1}`, fileName: `new-${n}` }));
      } catch (err) {
        if (err.name !== 'ServerError' && err.name !== 'IndexError') throw err;
        refused.push(err);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  })();
  const child = spawn(process.execPath, [BIN, 'doctor', '--uri', uri(), '--db', t.dbName, '--collection', collection, '--fix'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const code = await new Promise((resolve) => child.on('exit', resolve));
  doctorDone = true;
  await app;
  return { code, stdout, stderr, stored, refused };
}

/** Every upload the app stored is held under the version it was given, and with the damaged rows every order ends 1..n. */
async function expectUploadsKept(collection, before, stored) {
  const all = await t.db.collection(collection).find().toArray();
  expect(all.length).toBe(before.length + stored.length);
  for (const a of stored) expect(all.find((d) => d._id.toHexString() === a._id.toHexString()).version).toBe(a.version);
  const uploaded = new Set(stored.map((a) => a._id.toHexString()));
  await expectRepaired(collection, [...before, ...all.filter((d) => uploaded.has(d._id.toHexString()))]);
}

test('while an app uploads through the repository: its uploads fail, not stored, until the index can be built, then succeed; the result holds every promise', async () => {
  // A larger damaged collection, so that the repair takes a while.
  const orders = {};
  for (const o of range(20)) orders[`ord-${o}`] = range(12).map((i) => (i % 4 === 0 ? [undefined, undefined] : [Math.ceil(i / 2), `v${Math.ceil(i / 2)}`]));
  const before = await damage('busy', orders);
  const { code, stdout, stored, refused } = await doctorBesideApp('busy');
  expect(code).toBe(0);
  expect(refused.length).toBeGreaterThan(0); // the app was held off while duplicates remained
  expect(refused[0].message).toMatch(/run `npx atomic-asset-version doctor`/);
  expect(stored.length).toBeGreaterThanOrEqual(10);
  await expectUploadsKept('busy', before, stored);
  expect(stdout).toMatch(/unique index built|index: unique index/);
}, 120000);

test('while an app uploads and the index already exists (rows without a version only): renumbering and uploads interleave, and every order ends 1..n', async () => {
  // On FerretDB a missing version does not collide in the unique index, so
  // the app builds it and uploads at once; the doctor's renumbering then
  // races the app's inserts, and a number the app took is tried one higher.
  // (On MongoDB the index waits for the doctor, as in the test above.)
  const orders = {};
  for (const o of range(3)) orders[`ord-${o}`] = range(40).map((i) => (i % 4 === 0 ? [i / 4, `v${i / 4}`] : [undefined, undefined]));
  const before = await damage('racing', orders);
  const { code, stdout, stderr, stored } = await doctorBesideApp('racing');
  // The doctor's own account goes with its exit code, so a red run says what remained.
  expect({ code, stderr, last: stdout.trim().split('\n').slice(-6) }).toEqual({ code: 0, stderr: '', last: expect.arrayContaining(['clean']) });
  await expectUploadsKept('racing', before, stored);
}, 120000);
