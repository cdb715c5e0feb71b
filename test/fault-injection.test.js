'use strict';

// Integrity when the server's answer is lost, late, or not what FerretDB
// would send: a proxy plays MongoDB's failCommand fail point (and adds lost
// replies, stalls and outages) between the addon and the real server. Every
// test asserts on what the database holds.
const { testDatabase, expectGapless, range, uri } = require('./support/db');
const { startFailProxy } = require('./support/fail-proxy');

let t;
let proxy;
beforeAll(async () => {
  t = await testDatabase(__filename);
  proxy = await startFailProxy({ upstreamPort: Number(new URL(uri()).port || 27017) });
});
afterEach(async () => {
  proxy.configureFailPoint({ mode: 'off' });
  proxy.releaseStalled();
  await proxy.endOutage();
});
afterAll(async () => {
  await proxy.close();
  await t.done();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(condition, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setImmediate(r));
  }
}

/** A repository whose connections go through the proxy. */
function repository(collection, options = {}) {
  const proxied = `mongodb://127.0.0.1:${proxy.port}/?serverSelectionTimeoutMS=1000&connectTimeoutMS=1000`;
  return t.repository({ uri: proxied, collection, ...options });
}
const data = (orderId, i) => ({ orderId, fileName: `f-${i}.pdf`, fileSize: i });
const insertsOnce = (extra) => proxy.configureFailPoint({ mode: { times: 1 }, data: { failCommands: ['insert'], ...extra } });

async function storedOnce(collection, orderId, n) {
  const docs = await expectGapless(t.db, collection, orderId, n);
  expect(new Set(docs.map((d) => d.fileName)).size).toBe(n);
  return docs;
}

describe('a lost reply', () => {
  test('followed by an outage longer than serverSelectionTimeoutMS: recovery outlasts it, the upload resolves, stored once', async () => {
    const repo = repository('outage_long', { recoveryTimeMS: 15000 });
    await repo.ensureIndex();
    insertsOnce({ stallReply: true });
    const call = repo.createWithAtomicVersion(data('o', 1));
    await until(() => proxy.stalledConnections > 0);
    await proxy.startOutage({ refuse: true });
    await sleep(2500);
    await proxy.endOutage();
    const stored = await call;
    expect(stored.version).toBe(1);
    await storedOnce('outage_long', 'o', 1);
  });

  test('followed by an outage longer than the recovery budget: OutcomeUnknownError with the _id; retrying with it gives exactly one copy', async () => {
    const repo = repository('outage_unknown', { recoveryTimeMS: 500 });
    await repo.ensureIndex();
    insertsOnce({ stallReply: true });
    const call = repo.createWithAtomicVersion(data('u', 1));
    await until(() => proxy.stalledConnections > 0);
    await proxy.startOutage({ refuse: true });
    const err = await call.catch((e) => e);
    await proxy.endOutage();
    expect(err).toMatchObject({ name: 'OutcomeUnknownError', code: 'ERR_ASSET_OUTCOME_UNKNOWN', retriable: false, orderId: 'u' });
    expect(err.message).toMatch(/_id/);
    expect(repo.stats()).toMatchObject({ outcomeUnknown: 1, failed: 0 });
    // The insert did commit before its reply was withheld.
    expect(await t.db.collection('outage_unknown').countDocuments({ _id: err._id })).toBe(1);
    const settled = await repo.createWithAtomicVersion({ ...data('u', 1), _id: err._id });
    const again = await repo.createWithAtomicVersion({ ...data('u', 1), _id: err._id });
    expect(settled.version).toBe(1);
    expect(again).toEqual(settled);
    await storedOnce('outage_unknown', 'u', 1);
  });

  test('with maxRetries: 0 the recovery still runs: resolves, stored once', async () => {
    const repo = repository('no_retries', { maxRetries: 0 });
    await repo.ensureIndex();
    insertsOnce({ dropReplyAfterExecute: true });
    const stored = await Promise.all(range(5).map((i) => repo.createWithAtomicVersion(data('z', i))));
    expect(proxy.stats.injected.dropReplyAfterExecute).toBeGreaterThan(0);
    expect(stored.map((a) => a.version)).toEqual(range(5));
    await storedOnce('no_retries', 'z', 5);
  });

  test('after the conflict budget was spent: recovery has its own budget; resolves, stored once', async () => {
    const repo = repository('spent', { maxRetries: 1 });
    await repo.ensureIndex();
    // First attempt: a duplicate on the version index (not executed), as
    // MongoDB reports a lost race; this spends the only retry.
    insertsOnce({ writeErrors: [{ index: 0, code: 11000, errmsg: 'E11000 duplicate key error collection: x index: orderId_1_version_1 dup key' }] });
    const injectedBefore = proxy.stats.injected.dropReplyAfterExecute;
    const call = repo.createWithAtomicVersion(data('s', 1));
    await until(() => proxy.failPoint.mode === 'off');
    insertsOnce({ dropReplyAfterExecute: true }); // the retry's reply is lost
    const stored = await call;
    expect(proxy.stats.injected.dropReplyAfterExecute).toBe(injectedBefore + 1);
    expect(stored.version).toBe(1);
    await storedOnce('spent', 's', 1);
  });

  test('a recovery read cut half-way: what it found resolves as stored; the rest end unknown and settle by _id', async () => {
    const repo = repository('cut', { recoveryTimeMS: 0 });
    await repo.ensureIndex();
    insertsOnce({ dropReplyAfterExecute: true });
    const items = range(100).map((i) => ({ fileName: `f-${i}.pdf`, fileSize: i }));
    const batch = repo.createManyWithAtomicVersion('c', items); // one batch, one insert of 100
    await until(() => proxy.failPoint.mode === 'off');
    // The recovery's find returns its first 50 documents, then its getMore is cut.
    const cutsBefore = proxy.stats.injected.closeConnection;
    proxy.configureFailPoint({ mode: { times: 1 }, data: { failCommands: ['getMore'], closeConnection: true } });
    const err = await batch.catch((e) => e);
    expect(proxy.stats.injected.closeConnection).toBe(cutsBefore + 1); // the cut happened
    expect(err).toMatchObject({ name: 'BatchError', code: 'ERR_ASSET_BATCH_PARTIAL' });
    const stored = err.results.filter((r) => r.status === 'fulfilled');
    const unknown = err.results.map((r, i) => [r, i]).filter(([r]) => r.status === 'rejected');
    expect(stored.length).toBeGreaterThan(0); // found before the cut: never reported failed
    expect(unknown.length).toBeGreaterThan(0);
    for (const [r] of unknown) expect(r.reason.name).toBe('OutcomeUnknownError');
    for (const [r, i] of unknown) await repo.createWithAtomicVersion({ ...items[i], orderId: 'c', _id: r.reason._id });
    const docs = await storedOnce('cut', 'c', 100);
    for (const r of stored) expect(docs[r.value.version - 1]._id.equals(r.value._id)).toBe(true);
  });
});

describe('write concern', () => {
  test('a writeConcernError (wtimeout) is not success: OutcomeUnknownError, counted; a retry by _id confirms and resolves', async () => {
    const repo = repository('wc', { writeConcern: { w: 'majority', wtimeoutMS: 100 } });
    await repo.ensureIndex();
    insertsOnce({ writeConcernError: { code: 64, codeName: 'WriteConcernFailed', errmsg: 'waiting for replication timed out', errInfo: { wtimeout: true } } });
    const err = await repo.createWithAtomicVersion(data('w', 1)).catch((e) => e);
    expect(err).toMatchObject({ name: 'OutcomeUnknownError', reason: 'WRITE_CONCERN', retriable: false });
    expect(err.cause).toMatchObject({ code: 64 });
    expect(repo.stats()).toMatchObject({ succeeded: 0, outcomeUnknown: 1 });
    const settled = await repo.createWithAtomicVersion({ ...data('w', 1), _id: err._id });
    expect(settled.version).toBe(1);
    expect(proxy.stats.seen.update).toBeGreaterThan(0); // the no-op that waits for the write concern
    await storedOnce('wc', 'w', 1);
  });

  test('a retry by _id whose write concern still fails stays unknown, and stores nothing more', async () => {
    const repo = repository('wc2', { writeConcern: { w: 'majority', wtimeoutMS: 100 } });
    await repo.ensureIndex();
    const writeConcernError = { code: 64, codeName: 'WriteConcernFailed', errmsg: 'timed out', errInfo: { wtimeout: true } };
    insertsOnce({ writeConcernError });
    const err = await repo.createWithAtomicVersion(data('w', 1)).catch((e) => e);
    proxy.configureFailPoint({ mode: { times: 1 }, data: { failCommands: ['update'], writeConcernError } });
    const again = await repo.createWithAtomicVersion({ ...data('w', 1), _id: err._id }).catch((e) => e);
    expect(again).toMatchObject({ name: 'OutcomeUnknownError', reason: 'WRITE_CONCERN' });
    expect(again._id).toEqual(err._id);
    await storedOnce('wc2', 'w', 1);
  });
});

describe('labels and transient errors', () => {
  test('RetryableWriteError (a step-down mid-write): settled by _id first, not charged as a conflict, then stored once', async () => {
    const repo = repository('retryable', { maxRetries: 1 });
    await repo.ensureIndex();
    proxy.configureFailPoint({ mode: { times: 3 }, data: { failCommands: ['insert'], errorCode: 189, errorLabels: ['RetryableWriteError'] } });
    const stored = await repo.createWithAtomicVersion(data('r', 1));
    expect(stored.version).toBe(1);
    expect(proxy.stats.seen.find).toBeGreaterThan(1); // recovery reads, not blind retries
    await storedOnce('retryable', 'r', 1);
  });

  test('WriteConflict (112) with TransientTransactionError is retried; when retries run out it is reported as itself, not as a duplicate key', async () => {
    const repo = repository('transient', { maxRetries: 2 });
    await repo.ensureIndex();
    proxy.configureFailPoint({ mode: { times: 2 }, data: { failCommands: ['insert'], errorCode: 112, errorLabels: ['TransientTransactionError'] } });
    expect((await repo.createWithAtomicVersion(data('x', 1))).version).toBe(1);

    proxy.configureFailPoint({ mode: 'alwaysOn', data: { failCommands: ['insert'], errorCode: 112, errorLabels: ['TransientTransactionError'] } });
    const err = await repo.createWithAtomicVersion(data('x', 2)).catch((e) => e);
    proxy.configureFailPoint({ mode: 'off' });
    expect(err).toMatchObject({ name: 'ServerError', code: 112, reason: 'RETRIES_EXHAUSTED', retriable: true, attempts: 3 });
    expect(err.errorLabels).toContain('TransientTransactionError');
    expect(repo.stats()).toMatchObject({ failed: 1, failedAfterMaxRetries: 1, outcomeUnknown: 0 });
    await storedOnce('transient', 'x', 1);
  });

  test('a WriteConflict write error inside an insert reply is retried', async () => {
    const repo = repository('conflict112');
    await repo.ensureIndex();
    proxy.configureFailPoint({ mode: { times: 2 }, data: { failCommands: ['insert'], writeErrors: [{ index: 0, code: 112, errmsg: 'WriteConflict' }] } });
    const stored = await Promise.all(range(3).map((i) => repo.createWithAtomicVersion(data('y', i))));
    expect(stored.map((a) => a.version)).toEqual(range(3));
    await storedOnce('conflict112', 'y', 3);
  });
});
