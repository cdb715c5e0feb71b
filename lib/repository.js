'use strict';

const { BSON } = require('bson');
const native = require('./native');
const { toBson, orderKey, checkOrderId, isPlainObject } = require('./asset_input');
const { parseOptions } = require('./options');
const { Stats } = require('./stats');
const { OrderQueue } = require('./order_queue');
const { BatchError, OutcomeUnknownError, RepositoryClosedError, validationError, errorForUpload, asError } = require('./errors');
const { MongooseModel } = require('./mongoose_model');
const { withKeyDetails } = require('./duplicate_key');

const rethrow = (err) => {
  throw asError(err);
};

let warnedGetNextVersion = false;

/**
 * Gives every asset of an order a sequential, gapless version: v1, v2, v3…
 * A drop-in for the reference design's repository (createWithAtomicVersion).
 */
class AssetRepository {
  #options;
  #native;
  #counters = new Stats();
  #queue;
  #accepted = new Set(); // every accepted call and native job not yet settled
  #observers = new Set(); // upload listeners, for metrics
  #ready = null; // the index, ensured once before the first write
  // Uploads queued before the server was found unreachable fail with that
  // error at once, instead of each waiting out a server-selection timeout.
  #connectionFailures = 0;
  #connectionError = null;
  #closing = null;
  #model = null; // model mode: the app's Mongoose model builds each upload (lib/mongoose_model.js)

  constructor(options) {
    if (options && typeof options === 'object' && options.model !== undefined) {
      this.#model = new MongooseModel(options.model);
      options = this.#model.repositoryOptions(options);
    }
    this.#options = parseOptions(options);
    const writeOptions = this.#options.writeConcern
      ? BSON.serialize({ writeConcern: this.#options.writeConcern })
      : undefined;
    try {
      this.#native = new native.NativeRepository(this.#options.uri, this.#options.dbName, this.#options.collection, writeOptions);
    } catch (err) {
      throw asError(err);
    }
    this.#queue = new OrderQueue({
      maxBatchSize: this.#options.maxBatchSize,
      // As many batches in flight as the addon may run at once: more would
      // only wait in its queue, uploads that could have joined a batch.
      maxBatches: () => Math.max(1, native.threadpool().slots),
      coalesce: this.#options.coalesce,
      run: (jobs) => this.#runBatch(jobs),
      refuse: (job) => job.failuresSeen !== this.#connectionFailures,
      reject: (job) => {
        // Never sent: certainly not stored by this call, so failing it is
        // honest; unless the caller gave the _id (a retry), which an earlier
        // call may have stored.
        const entries = job.docs.map((_, i) => ({ error: beforeLookup(this.#connectionError, job.callerIds[i]), attempts: 0 }));
        for (const entry of entries) this.#counters.record(entry);
        job.resolve(entries);
      },
    });
  }

  /** The options in force (a copy). */
  get options() {
    return { ...this.#options };
  }

  /**
   * Stores one asset with the next version of its order. `retryCount`, the
   * reference design's recursion counter, is accepted and ignored.
   */
  createWithAtomicVersion(data, retryCount) { // eslint-disable-line no-unused-vars
    if (this.#model) return this.#saveWithModel([data]).then(([result]) => unwrap(result));
    try {
      this.#assertOpen();
      const bytes = toBson(data);
      const started = process.hrtime.bigint();
      return this.#track(
        this.#enqueue(orderKey(data.orderId), [bytes], [callerId(data)]).then(([entry]) => {
          this.#notify(entry, started);
          return settle(entry, data.orderId);
        }),
      );
    } catch (err) {
      this.#countRefusal(err);
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
      this.#assertOpen();
      checkOrderId(orderId);
      if (!Array.isArray(items) || items.length === 0) {
        throw validationError('ERR_ASSET_ITEMS', 'items', 'items must be a non-empty array');
      }
      if (this.#model) {
        return this.#saveWithModel(items.map((item) => (isPlainObject(item) && item.orderId === undefined ? { ...item, orderId } : item)))
          .then((results) => batchOutcome(results, orderId));
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
      return this.#track(
        this.#enqueue(key, batch, items.map(callerId)).then((entries) => {
          const results = entries.map((entry) => {
            this.#notify(entry, started);
            try {
              return { status: 'fulfilled', value: settle(entry, orderId) };
            } catch (err) {
              return { status: 'rejected', reason: err };
            }
          });
          return batchOutcome(results, orderId);
        }),
      );
    } catch (err) {
      this.#countRefusal(err);
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
    this.#assertOpen();
    checkOrderId(orderId);
    const highest = await this.#track(this.#native.readHighest(BSON.serialize({ orderId })).catch(rethrow));
    return highest + 1;
  }

  /** Ensures the unique (orderId, version) index; resolves with its name. */
  ensureIndex() {
    if (!this.#ready) {
      this.#ready = this.#track(this.#native.ensureIndex().catch(rethrow));
      this.#ready.catch(() => {
        this.#ready = null; // a later call tries again
      });
    }
    return this.#ready;
  }

  /**
   * Calls fn({ seconds, ok, outcome, retries }) as each upload settles, for
   * metrics (see lib/metrics.js); outcome is 'stored', 'failed' or 'unknown'.
   * Returns a function that stops it.
   */
  observe(fn) {
    this.#observers.add(fn);
    return () => this.#observers.delete(fn);
  }

  stats() {
    return this.#counters.snapshot({ queued: this.#queue.queued, threadpool: native.threadpool() });
  }

  /** Lets accepted uploads finish, then releases the connections. Idempotent. */
  close() {
    if (!this.#closing) {
      this.#closing = (async () => {
        while (this.#accepted.size > 0) await Promise.allSettled([...this.#accepted]);
        await this.#native.close();
      })();
    }
    return this.#closing;
  }

  // ---- internals ----------------------------------------------------------

  /**
   * Model mode: each item goes through the model's save(), whose write is
   * this repository's batch (lib/mongoose_model.js). Settled results, in order.
   */
  #saveWithModel(items) {
    try {
      this.#assertOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    const started = process.hrtime.bigint();
    return this.#track(this.#model.saveAll(items, {
      orderKey,
      toBson,
      refused: (err) => this.#countRefusal(err),
      store: (key, orderId, docs, callerIds) => this.#enqueue(key, docs, callerIds).then((entries) => entries.map((entry) => {
        this.#notify(entry, started);
        try {
          return { doc: settle(entry, orderId) };
        } catch (error) {
          return { error };
        }
      })),
    }));
  }

  #notify(entry, started) {
    if (this.#observers.size === 0) return;
    const kind = entry.error && (entry.error.kind || entry.error.name);
    const outcome = !entry.error ? 'stored' : kind === 'OutcomeUnknownError' ? 'unknown' : 'failed';
    const event = { seconds: Number(process.hrtime.bigint() - started) / 1e9, ok: !entry.error, outcome, retries: entry.retries || 0 };
    for (const fn of this.#observers) {
      try {
        fn(event);
      } catch (err) {
        // A listener's bug must not turn a stored upload into a rejection.
        process.emitWarning(`an observe() listener threw: ${err && err.message}`, { code: 'ATOMIC_ASSET_VERSION_OBSERVER' });
      }
    }
  }

  #assertOpen() {
    if (this.#closing) {
      throw new RepositoryClosedError('the repository is closed', { code: 'ERR_ASSET_CLOSED' });
    }
  }

  #countRefusal(err) {
    if (err && err.name === 'ValidationError') this.#counters.validationErrors++;
  }

  #track(promise) {
    this.#accepted.add(promise);
    const done = () => this.#accepted.delete(promise);
    promise.then(done, done);
    return promise;
  }

  /** Queues uploads (BSON bytes) of one order; resolves with their native entries, in order. */
  #enqueue(key, docs, callerIds) {
    return new Promise((resolve) => {
      this.#queue.push({ key, docs, callerIds, resolve, failuresSeen: this.#connectionFailures });
    });
  }

  async #runBatch(jobs) {
    const docs = jobs.flatMap((job) => job.docs);
    let entries;
    try {
      await this.ensureIndex();
      this.#counters.batches++;
      entries = await this.#track(this.#native.insertBatch(docs, this.#options.maxRetries, this.#options.recoveryTimeMS));
    } catch (err) {
      // Refused before anything was sent (the index, a closed repository).
      const callerIds = jobs.flatMap((job) => job.callerIds);
      entries = docs.map((_, i) => ({ error: beforeLookup(err, callerIds[i]), attempts: 0 }));
    }
    const unreachable = entries.find((e) => e.error && (e.error.kind || e.error.name) === 'ConnectionError');
    if (unreachable) {
      this.#connectionFailures++;
      this.#connectionError = unreachable.error;
    }
    for (const entry of entries) this.#counters.record(entry);
    let at = 0;
    for (const job of jobs) {
      job.resolve(entries.slice(at, at + job.docs.length));
      at += job.docs.length;
    }
  }
}

/** The caller's _id of an upload, or undefined when the addon makes it. */
function callerId(data) {
  return data !== null && typeof data === 'object' && data._id !== null ? data._id : undefined;
}

/**
 * A failure before the upload reached the server. An upload with the
 * caller's _id may be stored by an earlier call, which this one never got to
 * look up: its outcome is unknown, not failed.
 */
function beforeLookup(error, _id) {
  if (_id === undefined) return error;
  return new OutcomeUnknownError(`the upload could not be looked up by its _id (${error.message}); call again with the same _id to settle it`, {
    code: 'ERR_ASSET_OUTCOME_UNKNOWN',
    reason: 'NOT_LOOKED_UP',
    retriable: false,
    _id,
    cause: error,
  });
}

/** The stored document, or a rejection with an error of this upload's own. */
function settle(entry, orderId) {
  if (entry.error) throw withKeyDetails(errorForUpload(entry.error, orderId), orderId);
  return BSON.deserialize(entry.doc);
}

function unwrap(result) {
  if (result.status === 'rejected') throw result.reason;
  return result.value;
}

/** Every stored asset of a multi-file upload, or a BatchError saying which were not. */
function batchOutcome(results, orderId) {
  const rejected = results.filter((r) => r.status === 'rejected');
  if (rejected.length === 0) return results.map((r) => r.value);
  const unknown = rejected.filter((r) => r.reason.name === 'OutcomeUnknownError').length;
  const failed = rejected.length - unknown;
  const what = [failed && `${failed} were not stored`, unknown && `${unknown} may or may not be (OutcomeUnknownError)`].filter(Boolean).join(' and ');
  throw new BatchError(`of ${results.length} assets of order ${String(orderId)}, ${what}: ${rejected[0].reason.message}`, {
    code: 'ERR_ASSET_BATCH_PARTIAL',
    results,
    stored: results.length - rejected.length,
    failed,
    unknown,
  });
}

module.exports = { AssetRepository };
