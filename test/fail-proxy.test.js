'use strict';

// The fail proxy (test/support/fail-proxy.js) must produce what MongoDB's
// failCommand fail point produces, or its tests prove nothing. Here the
// official driver talks to the real server through it, and each case checks
// both what the driver reports and what the database holds.
const { MongoClient, MongoWriteConcernError, MongoServerError, MongoNetworkError, Long } = require('mongodb');
const { testDatabase, uri } = require('./support/db');
const { startFailProxy, WRITE_CONCERN_TIMEOUT } = require('./support/fail-proxy');

let t;
let proxy;
const clients = [];
beforeAll(async () => {
  t = await testDatabase(__filename);
  proxy = await startFailProxy({ upstreamPort: Number(new URL(uri()).port || 27017) });
});
afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await proxy.close();
  await t.done();
});
afterEach(() => proxy.configureFailPoint({ mode: 'off' }));

// retryWrites off: a driver retry would be a second command and use up a
// second `times`; each case wants to see the one reply the proxy made.
async function viaProxy(options = {}, Client = MongoClient) {
  const client = await Client.connect(`mongodb://127.0.0.1:${proxy.port}/`, {
    directConnection: true,
    retryWrites: false,
    serverSelectionTimeoutMS: 3000,
    ...options,
  });
  clients.push(client);
  return client.db(t.dbName);
}

const stored = (collection, filter = {}) => t.db.collection(collection).find(filter).toArray();
const failOn = (mode, data) => proxy.configureFailPoint({ mode, data: { failCommands: ['insert'], ...data } });

describe('as MongoDB sends them', () => {
  test('writeConcernError: the insert is executed and the driver throws MongoWriteConcernError 64 with errInfo.wtimeout', async () => {
    const db = await viaProxy();
    failOn({ times: 1 }, { writeConcernError: WRITE_CONCERN_TIMEOUT });
    const err = await db
      .collection('wce')
      .insertOne({ tag: 'wce-1' })
      .catch((e) => e);
    expect(err).toBeInstanceOf(MongoWriteConcernError);
    expect(err.code).toBe(64);
    expect(err.errInfo).toEqual({ wtimeout: true });
    expect(await stored('wce', { tag: 'wce-1' })).toHaveLength(1);
    expect(proxy.stats.injected.writeConcernError).toBe(1);
  });

  test('errorCode 112 with the TransientTransactionError label: the driver sees code, codeName and label; nothing is stored', async () => {
    const db = await viaProxy();
    failOn({ times: 1 }, { errorCode: 112, errorLabels: ['TransientTransactionError'] });
    const err = await db
      .collection('conflict')
      .insertOne({ tag: 'wc-1' })
      .catch((e) => e);
    expect(err).toBeInstanceOf(MongoServerError);
    expect(err).toMatchObject({ code: 112, codeName: 'WriteConflict' });
    expect(err.hasErrorLabel('TransientTransactionError')).toBe(true);
    expect(err.hasErrorLabel('RetryableWriteError')).toBe(false);
    expect(await stored('conflict')).toHaveLength(0);
  });

  test('errorCode without errorLabels: a retryable write gets RetryableWriteError for a retriable code, as MongoDB labels it', async () => {
    const db = await viaProxy();
    failOn('alwaysOn', { errorCode: 91 });
    // A retryable write carries txnNumber (drivers add it only on replica
    // sets, so it is set by hand here); the proxy answers before the server
    // sees it.
    const retryable = await db.command({ insert: 'labels', documents: [{ tag: 'l-1' }], txnNumber: Long.fromNumber(1) }).catch((e) => e);
    expect(retryable).toMatchObject({ code: 91, codeName: 'ShutdownInProgress' });
    expect(retryable.hasErrorLabel('RetryableWriteError')).toBe(true);
    // A plain insert (a standalone's) gets no server label, as on MongoDB
    // (the driver adds its own client-side ResetPool for a shutdown code).
    const plain = await db
      .collection('labels')
      .insertOne({ tag: 'l-2' })
      .catch((e) => e);
    expect(plain).toMatchObject({ code: 91 });
    expect(plain.hasErrorLabel('RetryableWriteError')).toBe(false);
    expect(plain.hasErrorLabel('TransientTransactionError')).toBe(false);
    expect(await stored('labels')).toHaveLength(0);
  });

  test('closeConnection: a network error, and nothing is stored', async () => {
    const db = await viaProxy();
    failOn({ times: 1 }, { closeConnection: true });
    const err = await db
      .collection('closed')
      .insertOne({ tag: 'c-1' })
      .catch((e) => e);
    expect(err).toBeInstanceOf(MongoNetworkError);
    expect(await stored('closed')).toHaveLength(0);
    await db.collection('closed').insertOne({ tag: 'c-2' }); // the next one goes through
    expect((await stored('closed')).map((d) => d.tag)).toEqual(['c-2']);
  });

  test('blockConnection: the command waits blockTimeMS, then runs', async () => {
    const db = await viaProxy();
    failOn({ times: 1 }, { blockConnection: true, blockTimeMS: 400 });
    const started = Date.now();
    await db.collection('blocked').insertOne({ tag: 'b-1' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    expect(await stored('blocked')).toHaveLength(1);
  });
});

describe('the fail point counts as MongoDB does', () => {
  test('{ times: 2 } fails two inserts, then turns itself off', async () => {
    const db = await viaProxy();
    failOn({ times: 2 }, { errorCode: 2 });
    const outcomes = [];
    for (let i = 0; i < 4; i++) {
      outcomes.push(
        await db
          .collection('times')
          .insertOne({ i })
          .then(
            () => 'ok',
            (e) => e.code,
          ),
      );
    }
    expect(outcomes).toEqual([2, 2, 'ok', 'ok']);
    expect(proxy.failPoint.mode).toBe('off');
    expect((await stored('times')).map((d) => d.i).sort()).toEqual([2, 3]);
  });

  test('{ skip: 2 } lets two inserts through, then fails every one', async () => {
    const db = await viaProxy();
    failOn({ skip: 2 }, { errorCode: 2 });
    const outcomes = [];
    for (let i = 0; i < 4; i++) {
      outcomes.push(
        await db
          .collection('skip')
          .insertOne({ i })
          .then(
            () => 'ok',
            (e) => e.code,
          ),
      );
    }
    expect(outcomes).toEqual(['ok', 'ok', 2, 2]);
    expect((await stored('skip')).map((d) => d.i).sort()).toEqual([0, 1]);
  });

  test('failCommands filters by command name: a fail point on find leaves inserts alone', async () => {
    const db = await viaProxy();
    proxy.configureFailPoint({ mode: 'alwaysOn', data: { failCommands: ['find'], errorCode: 2 } });
    await db.collection('filter').insertOne({ tag: 'f-1' });
    await expect(db.collection('filter').findOne({})).rejects.toMatchObject({ code: 2, codeName: 'BadValue' });
    expect(await stored('filter')).toHaveLength(1);
  });

  test('appName limits it to the clients that named that application in their handshake', async () => {
    // The driver 7, loaded by Jest, sends an empty handshake `client`
    // document (no application name; run plainly it sends one): the
    // driver 6 (Mongoose 8's) names the application here.
    const { MongoClient: Driver6 } = require(require.resolve('mongodb', { paths: [require('path').dirname(require.resolve('mongoose8'))] }));
    const other = await viaProxy({ appName: 'bystander' }, Driver6);
    const target = await viaProxy({ appName: 'target' }, Driver6);
    failOn('alwaysOn', { errorCode: 2, appName: 'target' });
    await other.collection('app').insertOne({ tag: 'bystander' });
    await expect(target.collection('app').insertOne({ tag: 'target' })).rejects.toMatchObject({ code: 2 });
    expect((await stored('app')).map((d) => d.tag)).toEqual(['bystander']);
  });

  test('configureFailPoint sent over the wire is answered by the proxy, with the count entered so far', async () => {
    const db = await viaProxy();
    const admin = db.client.db('admin');
    const on = await admin.command({ configureFailPoint: 'failCommand', mode: { times: 1 }, data: { failCommands: ['insert'], errorCode: 2 } });
    expect(on.ok).toBe(1);
    await expect(db.collection('wire').insertOne({})).rejects.toMatchObject({ code: 2 });
    const off = await admin.command({ configureFailPoint: 'failCommand', mode: 'off' });
    expect(off.count).toBeGreaterThanOrEqual(1);
    await expect(admin.command({ configureFailPoint: 'failCommand', mode: 'sometimes' })).rejects.toMatchObject({ code: 2 });
    expect(await stored('wire')).toHaveLength(0);
  });
});

describe('faults the fail point cannot express', () => {
  test('dropReplyAfterExecute: a network error, yet the document is stored (a lost reply)', async () => {
    const db = await viaProxy();
    failOn({ times: 1 }, { dropReplyAfterExecute: true });
    const err = await db
      .collection('lost')
      .insertOne({ tag: 'lost-1' })
      .catch((e) => e);
    expect(err).toBeInstanceOf(MongoNetworkError);
    expect(await stored('lost', { tag: 'lost-1' })).toHaveLength(1);
  });

  test('stallReply: the insert runs, its reply never comes, the client times out; releaseStalled closes the connection', async () => {
    const db = await viaProxy({ socketTimeoutMS: 500 });
    failOn({ times: 1 }, { stallReply: true });
    const err = await db
      .collection('stall')
      .insertOne({ tag: 's-1' })
      .catch((e) => e);
    expect(err).toBeInstanceOf(MongoNetworkError);
    expect(err.message).toMatch(/timed out/);
    expect(proxy.stats.injected.stallReply).toBe(1);
    proxy.releaseStalled();
    expect(proxy.stalledConnections).toBe(0);
    expect(await stored('stall', { tag: 's-1' })).toHaveLength(1);
  });

  test('writeErrors: an insert reply with a write error at index 0 while nothing is executed', async () => {
    const db = await viaProxy();
    failOn({ times: 1 }, { writeErrors: [{ index: 0, code: 112, errmsg: 'WriteConflict' }] });
    const err = await db
      .collection('we')
      .insertOne({ tag: 'we-1' })
      .catch((e) => e);
    // insertOne surfaces the first write error as a server error with its index.
    expect(err).toBeInstanceOf(MongoServerError);
    expect(err).toMatchObject({ code: 112, index: 0, errmsg: 'WriteConflict' });
    expect(proxy.stats.injected.writeErrors).toBe(1);
    expect(await stored('we')).toHaveLength(0);
  });

  test.each([
    ['accepted and closed', false],
    ['refused', true],
  ])('an outage (%s) outlasts serverSelectionTimeoutMS; after it, the same client goes on', async (_label, refuse) => {
    // Longer than the driver's 500 ms minimum heartbeat, so it can find the
    // server again once the outage ends.
    const db = await viaProxy({ serverSelectionTimeoutMS: 1500 });
    await db.collection('outage').insertOne({ tag: 'before' });
    await proxy.startOutage({ refuse });
    const err = await db
      .collection('outage')
      .insertOne({ tag: 'during' })
      .catch((e) => e);
    expect(err.name).toMatch(/MongoServerSelectionError|MongoNetworkError/);
    await proxy.endOutage();
    await db.collection('outage').insertOne({ tag: `after-${refuse}` });
    const tags = (await stored('outage')).map((d) => d.tag);
    expect(tags).toContain('before');
    expect(tags).toContain(`after-${refuse}`);
    expect(tags).not.toContain('during');
    await t.db.collection('outage').deleteMany({});
  });
});
