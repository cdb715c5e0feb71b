'use strict';

// Errors are made in one place: lib/native.js hands lib/errors.js's classes
// to the addon at load (setErrorClasses), and the addon builds every error it
// throws, rejects with or returns as `new Class(message, props)`
// (src/napi/errors.c). Each case checks the class with instanceof, the code,
// and what the database holds.
const path = require('path');
const { spawnSync } = require('child_process');
const { BSON } = require('bson');
const {
  AssetRepository,
  AssetError,
  ValidationError,
  VersionConflictError,
  DuplicateKeyError,
  ServerError,
  ConnectionError,
  RepositoryClosedError,
  OutcomeUnknownError,
} = require('..');
const native = require('../lib/native');
const { testDatabase, uri } = require('./support/db');
const { startFailProxy } = require('./support/fail-proxy');

let t;
let proxy;
beforeAll(async () => {
  t = await testDatabase(__filename);
  proxy = await startFailProxy({ upstreamPort: Number(new URL(uri()).port || 27017) });
});
afterAll(async () => {
  await proxy.close();
  await t.done();
});
afterEach(() => proxy.configureFailPoint({ mode: 'off' }));

const proxied = (collection, options = {}) =>
  t.repository({ uri: `mongodb://127.0.0.1:${proxy.port}/?serverSelectionTimeoutMS=1000&connectTimeoutMS=1000`, collection, ...options });
const data = (orderId, i = 1) => ({ orderId, fileName: `f-${i}.pdf` });
const caught = (promise) =>
  promise.then(
    () => {
      throw new Error('expected a rejection, it resolved');
    },
    (e) => e,
  );

function expectClass(err, Class, code) {
  expect(err).toBeInstanceOf(Class);
  expect(err).toBeInstanceOf(AssetError);
  expect(err.name).toBe(Class.name);
  if (code !== undefined) expect(err.code).toBe(code);
}

describe('every error class the addon reaches is an AssetError of its documented class', () => {
  test('ValidationError: a document the addon refuses, one error object per upload', async () => {
    const r = new native.NativeRepository(uri(), t.dbName, 'refused', null);
    const good = BSON.serialize({ orderId: 'v', fileName: 'good.pdf' });
    const bad = Buffer.from(BSON.serialize({ orderId: 'v', fileName: 'bad.pdf' }));
    bad.writeInt32LE(1000, bad.indexOf('bad.pdf') - 4);
    const bytes = Buffer.concat([bad, bad, good]);
    const { errors } = await r.insertBatch(bytes, new Float64Array([bad.length, 2 * bad.length, bytes.length]), 5, 0);
    expectClass(errors[0], ValidationError, 'ERR_ASSET_CORRUPT');
    expectClass(errors[1], ValidationError, 'ERR_ASSET_CORRUPT');
    expect(errors[0]).not.toBe(errors[1]);
    expect(errors[2]).toBeUndefined();
    await r.close();
    expect(await t.db.collection('refused').countDocuments()).toBe(1);
  });

  test('DuplicateKeyError: another unique index refuses the upload', async () => {
    await t.db.collection('dup').createIndex({ checksum: 1 }, { unique: true, sparse: true });
    const repo = t.repository({ collection: 'dup' });
    await repo.createWithAtomicVersion({ ...data('d'), checksum: 'same' });
    const err = await caught(repo.createWithAtomicVersion({ ...data('d', 2), checksum: 'same' }));
    expectClass(err, DuplicateKeyError, 11000);
    expect(err.orderId).toBe('d');
    expect(await t.db.collection('dup').countDocuments()).toBe(1);
  });

  test('VersionConflictError: every attempt collided on the version index (code 11000)', async () => {
    const repo = proxied('conflict', { maxRetries: 0 });
    await repo.ensureIndex();
    proxy.configureFailPoint({
      mode: 'alwaysOn',
      data: { failCommands: ['insert'], writeErrors: [{ index: 0, code: 11000, errmsg: 'E11000 duplicate key error collection: x index: orderId_1_version_1 dup key' }] },
    });
    const err = await caught(repo.createWithAtomicVersion(data('c')));
    proxy.configureFailPoint({ mode: 'off' });
    expectClass(err, VersionConflictError, 11000);
    expect(err).toMatchObject({ reason: 'RETRIES_EXHAUSTED', retriable: true, orderId: 'c' });
    expect(await t.db.collection('conflict').countDocuments()).toBe(0);
  });

  test('ServerError: a transient refusal until retries run out', async () => {
    const repo = proxied('transient', { maxRetries: 0 });
    await repo.ensureIndex();
    proxy.configureFailPoint({ mode: 'alwaysOn', data: { failCommands: ['insert'], errorCode: 112, errorLabels: ['TransientTransactionError'] } });
    const err = await caught(repo.createWithAtomicVersion(data('s')));
    proxy.configureFailPoint({ mode: 'off' });
    expectClass(err, ServerError, 112);
    expect(err.errorLabels).toContain('TransientTransactionError');
    expect(await t.db.collection('transient').countDocuments()).toBe(0);
  });

  test('OutcomeUnknownError: a lost reply not settled in time carries its _id, and its cause is an AssetError too', async () => {
    const repo = proxied('unknown', { recoveryTimeMS: 300 });
    await repo.ensureIndex();
    proxy.configureFailPoint({ mode: { times: 1 }, data: { failCommands: ['insert'], stallReply: true } });
    const call = repo.createWithAtomicVersion(data('u'));
    const deadline = Date.now() + 10000;
    while (proxy.stalledConnections === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await proxy.startOutage({ refuse: true });
    const err = await caught(call);
    await proxy.endOutage();
    expectClass(err, OutcomeUnknownError, 'ERR_ASSET_OUTCOME_UNKNOWN');
    expect(err.cause).toBeInstanceOf(AssetError);
    expect(err.idBytes).toBeUndefined();
    expect(await t.db.collection('unknown').countDocuments({ _id: err._id })).toBe(1);
  });

  test('ConnectionError: the server cannot be reached', async () => {
    const repo = new AssetRepository({ uri: 'mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200', dbName: t.dbName });
    try {
      expectClass(await caught(repo.ensureIndex()), ConnectionError, 'ERR_ASSET_CONNECTION');
      expectClass(await caught(repo.createWithAtomicVersion(data('n'))), ConnectionError, 'ERR_ASSET_CONNECTION');
    } finally {
      await repo.close();
    }
  });

  test('RepositoryClosedError: the native repository after close()', async () => {
    const r = new native.NativeRepository(uri(), t.dbName, 'closed', null);
    await r.close();
    const filter = BSON.serialize({ orderId: 'x' });
    expectClass(await caught(r.readHighest(filter)), RepositoryClosedError, 'ERR_ASSET_CLOSED');
    expectClass(await caught(r.ensureIndex()), RepositoryClosedError, 'ERR_ASSET_CLOSED');
  });
});

describe('ERR_ASSET_OPTION is a ValidationError with `field` from every path', () => {
  test.each([
    ['options checked in lib/', { uri: 'mongodb://127.0.0.1/', maxRetries: -1 }, 'maxRetries'],
    ['a URI libmongoc refuses to parse', { uri: 'mongodb://127.0.0.1/?authMechanism=GSSAPI' }, 'uri'],
    ['a URI libmongoc parses but cannot make a pool of', { uri: 'mongodb+srv://cluster0.nonexistent.invalid/' }, 'uri'],
    ['a collection name C would cut at its NUL', { uri: 'mongodb://127.0.0.1/', collection: 'assets\0shadow' }, 'collection'],
    ['a database name C would cut at its NUL', { uri: 'mongodb://127.0.0.1/', dbName: 'app\0shadow' }, 'dbName'],
  ])('%s', (_, options, field) => {
    let err;
    try {
      new AssetRepository(options);
    } catch (e) {
      err = e;
    }
    expectClass(err, ValidationError, 'ERR_ASSET_OPTION');
    expect(err.field).toBe(field);
  });
});

describe('garbage to the native API: an AssetError, never a crash', () => {
  test('NativeRepository without new is refused (a pool wrapped on globalThis could never be closed)', () => {
    let err;
    try {
      native.NativeRepository('mongodb://127.0.0.1/', undefined, 'assets');
    } catch (e) {
      err = e;
    }
    expectClass(err, ValidationError, 'ERR_INVALID_THIS');
  });

  const run = (mode, env = {}) =>
    spawnSync(process.execPath, [path.join(__dirname, 'support', 'native-garbage.js'), mode], {
      encoding: 'utf8',
      timeout: 60000,
      env: { ...process.env, ...env },
    });

  test('every function, every argument: refused with an AssetError (or resolved), the process exits cleanly', () => {
    const child = run('garbage', { MONGODB_URI: 'mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=50' });
    expect(child.signal).toBeNull();
    expect(child.status).toBe(0);
    const results = JSON.parse(child.stdout);
    expect(results.length).toBeGreaterThan(300);
    for (const r of results) {
      if (r.ok) continue;
      // setErrorClasses with garbage is refused as a TypeError: there is no
      // class to build when the classes are what is wrong.
      if (r.what === 'setErrorClasses') expect(r).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
      else expect(r).toMatchObject({ assetError: true, code: expect.any(String) });
    }
    expect(results.find((r) => r.what === 'close again')).toMatchObject({ ok: true });
    expect(results.find((r) => r.what === 'readHighest after close')).toMatchObject({ name: 'RepositoryClosedError', code: 'ERR_ASSET_CLOSED' });
  }, 70000);

  test('before setErrorClasses every function refuses cleanly (ERR_ASSET_NOT_READY); wrong classes are refused at once', () => {
    const child = run('early');
    expect(child.signal).toBeNull();
    expect(child.status).toBe(0);
    const seen = JSON.parse(child.stdout);
    expect(seen.construct).toMatchObject({ code: 'ERR_ASSET_NOT_READY' });
    expect(seen.threadpool).toMatchObject({ code: 'ERR_ASSET_NOT_READY' });
    for (const k of ['setErrorClassesEmpty', 'setErrorClassesGarbage', 'setErrorClassesWrong']) {
      expect(seen[k]).toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    }
    expect(seen.threadpoolAfter).toMatchObject({ code: 'ERR_ASSET_NOT_READY' });
  });
});

describe('an error that cannot be built as its class touches only its own upload', () => {
  const hostile = async (mode) => {
    const collection = `hostile_${mode}`;
    await t.db.collection(collection).createIndex({ checksum: 1 }, { unique: true, sparse: true });
    // Two threadpool threads: one batch slot, so the three uploads share a batch.
    const child = spawnSync(process.execPath, [path.join(__dirname, 'support', 'hostile-error-env.js'), uri(), t.dbName, collection], {
      encoding: 'utf8',
      timeout: 60000,
      env: { ...process.env, MODE: mode, UV_THREADPOOL_SIZE: '2' },
    });
    expect(child.signal).toBeNull();
    expect(child.status).toBe(0);
    const seen = JSON.parse(child.stdout);
    const stored = await t.db.collection(collection).find().sort({ orderId: 1, version: 1 }).toArray();
    expect(stored.map((d) => `${d.orderId}:${d.fileName}:v${d.version}`)).toEqual(['A:a:v1', 'B:first:v1', 'Z:z:v1']);
    expect(seen.closed).toBe('closed');
    expect(seen.uncaught).toBeNull();
    return seen.answers;
  };

  test('an accessor an app put on Error.prototype: the stored uploads resolve, the refused one is still a DuplicateKeyError', async () => {
    const [z, a, b] = await hostile('prototype');
    expect([z, a]).toEqual([{ stored: 1 }, { stored: 1 }]);
    expect(b).toMatchObject({ name: 'DuplicateKeyError', code: 11000, isAssetError: true });
  });

  test('a class whose constructor throws: the stored uploads resolve, the refused one is a plain Error named for its class, the throw as its cause', async () => {
    const [z, a, b] = await hostile('classes');
    expect([z, a]).toEqual([{ stored: 1 }, { stored: 1 }]);
    expect(b).toMatchObject({ name: 'DuplicateKeyError', code: 11000, isAssetError: false, cause: 'constructor threw' });
  });
});
