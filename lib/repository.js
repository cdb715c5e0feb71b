'use strict';

const { BSON } = require('bson');
const native = require('./native');
const { toBson, orderKey, checkOrderId, isPlainObject } = require('./asset_input');
const { Stats } = require('./stats');
const { BatchError, RepositoryClosedError, validationError, errorFromData, errorForUpload } = require('./errors');

const DEFAULTS = {
  uri: undefined, // process.env.MONGODB_URI when absent
  dbName: undefined, // the URI's database, else "test"
  collection: 'assets',
  maxRetries: 5, // as the reference design
  coalesce: true, // one insertMany per burst of uploads to an order
  versionMemory: undefined, // accepted for old callers; no effect: every batch reads the top
  maxBatchSize: 1000, // uploads per insertMany
  writeConcern: undefined, // { w, j, wtimeoutMS }, passed to the driver
  recoveryTimeMS: 60000, // how long a lost reply may take to settle before OutcomeUnknownError
};

let warnedGetNextVersion = false;

function checkInteger(options, name, min, max) {
  const v = options[name];
  if (!Number.isInteger(v) || v < min || v > max) {
    throw validationError('ERR_ASSET_OPTION', name, `option "${name}" must be an integer from ${min} to ${max}, got ${String(v)}`);
  }
}

function parseOptions(input) {
  if (input !== undefined && (input === null || typeof input !== 'object')) {
    throw validationError('ERR_ASSET_OPTION', '', 'options must be an object');
  }
  const given = input || {};
  for (const key of Object.keys(given)) {
    if (!(key in DEFAULTS)) {
      throw validationError('ERR_ASSET_OPTION', key, `unknown option "${key}"; known: ${Object.keys(DEFAULTS).join(', ')}`);
    }
  }
  const options = { ...DEFAULTS };
  for (const [k, v] of Object.entries(given)) if (v !== undefined) options[k] = v;
  if (options.uri === undefined) options.uri = process.env.MONGODB_URI;
  if (typeof options.uri !== 'string' || options.uri === '') {
    throw validationError('ERR_ASSET_OPTION', 'uri', 'option "uri" is required (or set MONGODB_URI)');
  }
  if (options.dbName !== undefined && (typeof options.dbName !== 'string' || options.dbName === '')) {
    throw validationError('ERR_ASSET_OPTION', 'dbName', 'option "dbName" must be a non-empty string');
  }
  if (typeof options.collection !== 'string' || options.collection === '') {
    throw validationError('ERR_ASSET_OPTION', 'collection', 'option "collection" must be a non-empty string');
  }
  checkInteger(options, 'maxRetries', 0, 1000);
  checkInteger(options, 'maxBatchSize', 1, 100000);
  if (options.versionMemory !== undefined && typeof options.versionMemory !== 'boolean') {
    checkInteger(options, 'versionMemory', 0, 1e7);
  }
  checkInteger(options, 'recoveryTimeMS', 0, 86400000);
  if (typeof options.coalesce !== 'boolean') {
    throw validationError('ERR_ASSET_OPTION', 'coalesce', 'option "coalesce" must be a boolean');
  }
  if (options.writeConcern !== undefined && (options.writeConcern === null || typeof options.writeConcern !== 'object')) {
    throw validationError('ERR_ASSET_OPTION', 'writeConcern', 'option "writeConcern" must be an object such as { w: "majority" }');
  }
  return options;
}

/**
 * Gives every asset of an order a sequential, gapless version: v1, v2, v3…
 * A drop-in for the reference design's repository (createWithAtomicVersion).
 */
class AssetRepository {
  constructor(options) {
    this.options = parseOptions(options);
    const writeOptions = this.options.writeConcern
      ? BSON.serialize({ writeConcern: this.options.writeConcern })
      : undefined;
    this.native = new native.NativeRepository(this.options.uri, this.options.dbName, this.options.collection, writeOptions);
    this.counters = new Stats();
    this.queues = new Map(); // orderKey -> { waiting: [], busy: bool }
    this.inFlight = new Set(); // every accepted upload and native call not yet settled
    this.observers = new Set(); // upload listeners, for metrics
    this.ready = null; // the index, ensured once before the first write
    // Uploads queued before the server was found unreachable fail with that
    // error at once, instead of each waiting out a server-selection timeout.
    this.connectionFailures = 0;
    this.connectionError = null;
    this.closing = null;
  }

  /** Stores one asset with the next version of its order. */
  createWithAtomicVersion(data) {
    try {
      this.assertOpen();
      const bytes = toBson(data);
      const started = process.hrtime.bigint();
      return this.track(
        this.enqueue(orderKey(data.orderId), [bytes]).then(([entry]) => {
          this.notify(entry, started);
          return settle(entry, data.orderId);
        }),
      );
    } catch (err) {
      this.countRefusal(err);
      return Promise.reject(err);
    }
  }

  /**
   * Stores several assets of one order as one batch, in order. Resolves with
   * every asset when all are stored; otherwise rejects with a BatchError whose
   * `results` say, per item, what was stored and what failed.
   */
  createManyWithAtomicVersion(orderId, items) {
    try {
      this.assertOpen();
      checkOrderId(orderId);
      if (!Array.isArray(items) || items.length === 0) {
        throw validationError('ERR_ASSET_ITEMS', 'items', 'items must be a non-empty array');
      }
      const key = orderKey(orderId);
      const batch = items.map((item, i) => {
        if (item && typeof item === 'object' && 'orderId' in item && orderKey(item.orderId) !== key) {
          throw validationError('ERR_ASSET_ORDER_ID', `items[${i}].orderId`, `items[${i}].orderId differs from orderId`);
        }
        // Only a plain item gets the order added; anything else is refused by toBson as it is.
        return toBson(isPlainObject(item) ? { ...item, orderId } : item, `items[${i}]`);
      });
      const started = process.hrtime.bigint();
      return this.track(this.enqueue(key, batch).then((entries) => {
        const results = entries.map((entry) => {
          this.notify(entry, started);
          try {
            return { status: 'fulfilled', value: settle(entry, orderId) };
          } catch (err) {
            return { status: 'rejected', reason: err };
          }
        });
        const failed = results.filter((r) => r.status === 'rejected').length;
        if (failed === 0) return results.map((r) => r.value);
        throw new BatchError(`${failed} of ${results.length} assets of order ${String(orderId)} were not stored: ${results.find((r) => r.reason).reason.message}`, {
          code: 'ERR_ASSET_BATCH_PARTIAL',
          results,
          stored: results.length - failed,
          failed,
        });
      }));
    } catch (err) {
      this.countRefusal(err);
      return Promise.reject(err);
    }
  }

  /** @deprecated Races with concurrent uploads; use createWithAtomicVersion. */
  async getNextVersion(orderId) {
    if (!warnedGetNextVersion) {
      warnedGetNextVersion = true;
      process.emitWarning(
        'getNextVersion() races with concurrent uploads: two callers can get the same number. Use createWithAtomicVersion().',
        { type: 'DeprecationWarning', code: 'ATOMIC_ASSET_VERSION_GET_NEXT' },
      );
    }
    this.assertOpen();
    checkOrderId(orderId);
    const highest = await this.track(this.native.readHighest(BSON.serialize({ orderId })));
    return highest + 1;
  }

  /** Ensures the unique (orderId, version) index; resolves with its name. */
  ensureIndex() {
    if (!this.ready) {
      this.ready = this.track(this.native.ensureIndex());
      this.ready.catch(() => {
        this.ready = null; // a later call tries again
      });
    }
    return this.ready;
  }

  /**
   * Calls fn({ seconds, ok, retries }) as each upload settles, for metrics
   * (see lib/metrics.js). Returns a function that stops it.
   */
  observe(fn) {
    this.observers.add(fn);
    return () => this.observers.delete(fn);
  }

  notify(entry, started) {
    if (this.observers.size === 0) return;
    const outcome = !entry.error ? 'stored' : entry.error.kind === 'OutcomeUnknownError' ? 'unknown' : 'failed';
    const event = { seconds: Number(process.hrtime.bigint() - started) / 1e9, ok: !entry.error, outcome, retries: entry.retries || 0 };
    for (const fn of this.observers) {
      try {
        fn(event);
      } catch (err) {
        // A listener's bug must not turn a stored upload into a rejection.
        process.emitWarning(`an observe() listener threw: ${err && err.message}`, { code: 'ATOMIC_ASSET_VERSION_OBSERVER' });
      }
    }
  }

  stats() {
    let queued = 0;
    for (const q of this.queues.values()) queued += q.waiting.length;
    return this.counters.snapshot({ queued, threadpool: native.threadpool() });
  }

  /** Lets accepted uploads finish, then releases the connections. Idempotent. */
  close() {
    if (!this.closing) {
      this.closing = (async () => {
        while (this.inFlight.size > 0 || this.queues.size > 0) {
          await Promise.allSettled([...this.inFlight]);
          if (this.inFlight.size === 0 && this.queues.size > 0) await new Promise(setImmediate);
        }
        await this.native.close();
      })();
    }
    return this.closing;
  }

  // ---- internals ----------------------------------------------------------

  assertOpen() {
    if (this.closing) {
      throw new RepositoryClosedError('the repository is closed', { code: 'ERR_ASSET_CLOSED' });
    }
  }

  countRefusal(err) {
    if (err && err.name === 'ValidationError') this.counters.validationErrors++;
  }

  track(promise) {
    this.inFlight.add(promise);
    const done = () => this.inFlight.delete(promise);
    promise.then(done, done);
    return promise;
  }

  /**
   * Queues uploads (BSON bytes) of one order; resolves with their native
   * entries, in order. With coalescing on, while a batch of this order is in
   * flight, later uploads wait and then go together in the next one; an
   * item group (createMany) is never split.
   */
  enqueue(key, docs) {
    return new Promise((resolve) => {
      const job = { docs, resolve, failuresSeen: this.connectionFailures };
      if (!this.options.coalesce) {
        this.runBatch(key, [job]);
        return;
      }
      let queue = this.queues.get(key);
      if (!queue) {
        queue = { waiting: [], busy: false };
        this.queues.set(key, queue);
      }
      queue.waiting.push(job);
      if (!queue.busy) this.drain(key, queue);
    });
  }

  async drain(key, queue) {
    queue.busy = true;
    while (queue.waiting.length > 0) {
      if (queue.waiting[0].failuresSeen !== this.connectionFailures) {
        // Never sent: certainly not stored, so failing it is honest.
        const stale = queue.waiting.shift();
        const entries = stale.docs.map(() => ({ error: this.connectionError, attempts: 0 }));
        for (const entry of entries) this.counters.record(entry);
        stale.resolve(entries);
        continue;
      }
      const jobs = [queue.waiting.shift()];
      let size = jobs[0].docs.length;
      while (queue.waiting.length > 0 && size + queue.waiting[0].docs.length <= this.options.maxBatchSize) {
        size += queue.waiting[0].docs.length;
        jobs.push(queue.waiting.shift());
      }
      await this.runBatch(key, jobs);
    }
    queue.busy = false;
    this.queues.delete(key);
  }

  async runBatch(key, jobs) {
    const docs = jobs.flatMap((job) => job.docs);
    let entries;
    try {
      await this.ensureIndex();
      this.counters.batches++;
      entries = await this.track(this.native.insertBatch(docs, this.options.maxRetries, this.options.recoveryTimeMS));
    } catch (err) {
      // Refused before anything was sent (the index, a closed repository).
      entries = docs.map(() => ({ error: err, attempts: 0 }));
    }
    const unreachable = entries.find((e) => e.error && (e.error.kind || e.error.name) === 'ConnectionError');
    if (unreachable) {
      this.connectionFailures++;
      this.connectionError = unreachable.error;
    }
    for (const entry of entries) this.counters.record(entry);
    let at = 0;
    for (const job of jobs) {
      job.resolve(entries.slice(at, at + job.docs.length));
      at += job.docs.length;
    }
  }
}

/** The stored document, or a rejection with an error of this upload's own. */
function settle(entry, orderId) {
  if (entry.error) throw errorForUpload(entry.error, orderId);
  return BSON.deserialize(entry.doc);
}

module.exports = { AssetRepository };
