'use strict';

const { performance } = require('perf_hooks');
const { BSON } = require('bson');
const native = require('./native');
const { prepareUpload, toBson, orderKey, checkOrderId, isPlainObject, own, fieldPlan } = require('./asset_input');
const { BatchResults } = require('./batch_results');
const { parseOptions, parseFields } = require('./options');
const { Stats } = require('./stats');
const { OrderQueue } = require('./order_queue');
const { BatchError, OutcomeUnknownError, RepositoryClosedError, validationError, errorForUpload } = require('./errors');
const { MongooseModel } = require('./mongoose_model');
const { withKeyDetails, UNIQUE_REFUSAL } = require('./duplicate_key');

const rethrow = (err) => {
  throw err;
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
  #slots = 0; // batches the addon runs at once, process-wide; read once
  // Accepted calls not yet settled (uploads, index and version reads);
  // close() waits for them.
  #pending = 0;
  #drained = null; // resolves close()'s wait when #pending reaches 0
  #observers = new Set(); // upload listeners, for metrics
  #ready = null; // the index, ensured once before the first write
  // Uploads queued before the server was found unreachable fail with that
  // error at once, instead of each waiting out a server-selection timeout.
  #connectionFailures = 0;
  #connectionError = null;
  #closing = null;
  #model = null; // model mode: the app's Mongoose model builds each upload (lib/mongoose_model.js)
  // Model mode before the model's connection opens: #native is made when it
  // does (#connect), and this is that wait.
  #connecting = null;
  #fields; // the app's field names, as the checks use them (asset_input.js fieldPlan)
  #finishOne; // answers a single upload's caller (one function per repository, not per upload)

  constructor(options) {
    const modelMode = options !== null && typeof options === 'object' && options.model !== undefined;
    if (modelMode) {
      this.#model = new MongooseModel(options.model, parseFields(options.fields));
      options = this.#model.repositoryOptions(options);
    }
    this.#options = parseOptions(options, { modelMode });
    const fields = fieldPlan(this.#options.fields);
    this.#fields = fields;
    this.#finishOne = (job, results, i) => {
      const error = results.error(i);
      try {
        if (error === undefined) job.resolve(results.document(i, job.view, fields));
        else job.reject(uploadError(error, job.orderId, fields));
      } catch (err) {
        job.reject(err);
      }
    };
    if (this.#options.uri !== undefined) this.#native = this.#makeNative();
    this.#queue = new OrderQueue({
      maxBatchSize: this.#options.maxBatchSize,
      maxBatchBytes: MAX_BATCH_BYTES,
      // As many batches in flight as the addon may run at once: more would
      // only wait in its queue, uploads that could have joined a batch.
      maxBatches: () => this.#slots || (this.#slots = Math.max(1, native.threadpool().slots)),
      coalesce: this.#options.coalesce,
      run: (jobs) => this.#runBatch(jobs),
      refuse: (job) => job.failuresSeen !== this.#connectionFailures,
      reject: (job) => {
        // Never sent: certainly not stored by this call, so failing it is
        // honest; unless the caller gave the _id (a retry), which an earlier
        // call may have stored.
        this.#finish([job], BatchResults.failed(job.count, (i) => beforeLookup(this.#connectionError, job.callerIdAt(i))));
      },
    });
  }

  /** The options in force (a copy). */
  get options() {
    return { ...this.#options, fields: { ...this.#options.fields } };
  }

  /**
   * Stores one asset with the next version of its order. `retryCount`, the
   * reference design's recursion counter, is accepted and ignored.
   */
  createWithAtomicVersion(data, retryCount) { // eslint-disable-line no-unused-vars
    if (this.#model) return this.#saveWithModel([data]).then(([result]) => unwrap(result));
    let upload;
    try {
      this.#assertOpen();
      upload = prepareUpload(data, '', this.#fields);
    } catch (err) {
      this.#countRefusal(err);
      return Promise.reject(err);
    }
    const orderId = own(upload.values, this.#fields.orderId);
    const job = new Job(orderKey(orderId), 1, upload.bytes.length, this.#finishOne, this.#connectionFailures);
    job.bytes = upload.bytes;
    job.callerId = callerId(upload.values);
    job.view = upload.view;
    job.orderId = orderId;
    return new Promise((resolve, reject) => {
      job.resolve = resolve;
      job.reject = reject;
      this.#enqueue(job);
    });
  }

  /**
   * Stores several assets of one order as one batch, in order. Resolves with
   * every asset when all are stored; otherwise rejects with a BatchError whose
   * `results` say, per item, what was stored and what failed.
   */
  createManyWithAtomicVersion(orderId, items) {
    try {
      this.#assertOpen();
      const ORDER = this.#fields.orderId;
      checkOrderId(orderId, ORDER);
      if (!Array.isArray(items) || items.length === 0) {
        throw validationError('ERR_ASSET_ITEMS', 'items', 'items must be a non-empty array');
      }
      if (items.length > native.limits.maxBatch) {
        throw validationError('ERR_ASSET_ITEMS', 'items', `items may hold at most ${native.limits.maxBatch} assets per call`);
      }
      if (this.#model) {
        return this.#saveWithModel(items.map((item) => (isPlainObject(item) && item[ORDER] === undefined ? { ...item, [ORDER]: orderId } : item)))
          .then((results) => batchOutcome(results, orderId));
      }
      const key = orderKey(orderId);
      const batch = items.map((item, i) => {
        if (item && typeof item === 'object' && ORDER in item && orderKey(item[ORDER]) !== key) {
          throw validationError('ERR_ASSET_ORDER_ID', `items[${i}].${ORDER}`, `items[${i}].${ORDER} differs from orderId`);
        }
        // Only a plain item gets the order added; anything else is refused by prepareUpload as it is.
        return prepareUpload(isPlainObject(item) ? { ...item, [ORDER]: orderId } : item, `items[${i}]`, this.#fields);
      });
      if (batch.reduce((sum, u) => sum + u.bytes.length, 0) > MAX_GROUP_BYTES) {
        throw validationError('ERR_ASSET_ITEMS', 'items', 'items hold more than 1 GiB together: store them in several calls');
      }
      return new Promise((resolve, reject) => {
        const finish = (job, results, first) => {
          try {
            const settled = batch.map((upload, i) => {
              const error = results.error(first + i);
              return error === undefined
                ? { status: 'fulfilled', value: results.document(first + i, upload.view, this.#fields) }
                : { status: 'rejected', reason: uploadError(error, orderId, this.#fields) };
            });
            resolve(batchOutcome(settled, orderId));
          } catch (err) {
            reject(err);
          }
        };
        this.#enqueue(Job.group(key, batch.map((u) => u.bytes), batch.map((u) => callerId(u.values)), finish, this.#connectionFailures));
      });
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
    const filter = BSON.serialize({ [this.#fields.orderId]: orderId });
    const highest = await this.#track(this.#connect().then((n) => n.readHighest(filter)).catch(rethrow));
    return highest + 1;
  }

  /** Ensures the unique (orderId, version) index; resolves with its name. */
  ensureIndex() {
    if (!this.#ready) {
      this.#ready = this.#track(this.#connect().then((n) => n.ensureIndex()).catch((err) => rethrow(withDoctorHint(err))));
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
        while (this.#pending > 0) await new Promise((resolve) => (this.#drained = resolve));
        if (this.#native) await this.#native.close();
      })();
    }
    return this.#closing;
  }

  // ---- internals ----------------------------------------------------------

  #makeNative() {
    const { uri, dbName, collection, writeConcern, fields } = this.#options;
    const writeOptions = writeConcern ? BSON.serialize({ writeConcern }) : undefined;
    const fieldNames = BSON.serialize({ orderId: fields.orderId, version: fields.version, versionLabel: fields.versionLabel ?? '' });
    // Whether OpenSSL has a CA location from the environment; else the
    // prebuilt addon tries the usual system bundles (src/runtime/ca_bundle.c).
    const envNamesCa = Boolean(process.env.SSL_CERT_FILE || process.env.SSL_CERT_DIR);
    return new native.NativeRepository(uri, dbName, collection, writeOptions, fieldNames, envNamesCa);
  }

  /**
   * The native repository: at once in plain mode; in model mode once the
   * model's connection is open, its string and database read then, as a
   * buffered Mongoose operation waits (and fails after bufferTimeoutMS).
   */
  #connect() {
    if (this.#native) return Promise.resolve(this.#native);
    if (!this.#connecting) {
      this.#connecting = this.#model.connected().then(({ uri, dbName }) => {
        if (this.#native) return this.#native;
        if (uri === undefined) {
          throw validationError('ERR_ASSET_OPTION', 'uri', "the model's connection is open but its connection string cannot be read: pass { model, uri }");
        }
        if (this.#options.dbName !== undefined && dbName !== undefined && this.#options.dbName !== dbName) {
          throw validationError('ERR_ASSET_OPTION', 'dbName', `option "model": "dbName" is "${this.#options.dbName}" but the model's is "${dbName}"; leave it out`);
        }
        this.#options.uri = uri;
        this.#options.dbName = this.#options.dbName || dbName;
        this.#native = this.#makeNative();
        return this.#native;
      });
      // A failed wait is each waiting upload's failure; a later one waits anew.
      this.#connecting.catch(() => {
        this.#connecting = null;
      });
    }
    return this.#connecting;
  }

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
    return this.#track(this.#model.saveAll(items, {
      orderKey,
      toBson: (obj) => toBson(obj, '', this.#fields),
      refused: (err) => this.#countRefusal(err),
      store: async (key, orderId, docs, callerIds) => {
        try {
          await this.#connect();
        } catch (err) {
          // Never sent: failed, unless the caller's _id may be stored by an earlier call.
          return docs.map((_, i) => ({ error: beforeLookup(err, callerIds[i]) }));
        }
        return this.#storeGroup(key, orderId, docs, callerIds);
      },
    }));
  }

  #storeGroup(key, orderId, docs, callerIds) {
    return new Promise((resolve) => {
        const finish = (job, results, first) => {
          resolve(docs.map((_, i) => {
            const error = results.error(first + i);
            try {
              return error === undefined ? { doc: results.document(first + i, null) } : { error: uploadError(error, orderId, this.#fields) };
            } catch (err) {
              return { error: err };
            }
          }));
        };
        this.#enqueue(Job.group(key, docs, callerIds, finish, this.#connectionFailures));
    });
  }

  #notify(error, retries, started) {
    const kind = error && (error.kind || error.name);
    const outcome = !error ? 'stored' : kind === 'OutcomeUnknownError' ? 'unknown' : 'failed';
    const event = { seconds: (performance.now() - started) / 1000, ok: !error, outcome, retries };
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
    this.#pending++;
    const done = () => this.#settled();
    promise.then(done, done);
    return promise;
  }

  #settled() {
    if (--this.#pending === 0 && this.#drained) {
      this.#drained();
      this.#drained = null;
    }
  }

  #enqueue(job) {
    this.#pending++;
    this.#queue.push(job);
  }

  async #runBatch(jobs) {
    let results;
    try {
      const { bytes, ends } = endToEnd(jobs);
      await this.ensureIndex();
      this.#counters.batches++;
      results = new BatchResults(await this.#native.insertBatch(bytes, ends, this.#options.maxRetries, this.#options.recoveryTimeMS));
    } catch (err) {
      // Refused before anything was sent (out of memory for the batch, the
      // index, a closed repository), or, if the addon says so, results that
      // could not be handed over.
      const error = err;
      const callerIds = jobs.flatMap((job) => Array.from({ length: job.count }, (_, i) => job.callerIdAt(i)));
      results = BatchResults.failed(callerIds.length, (i) => (error.name === 'OutcomeUnknownError' ? error : beforeLookup(error, callerIds[i])));
    }
    const unreachable = results.findError((e) => (e.kind || e.name) === 'ConnectionError');
    if (unreachable) {
      this.#connectionFailures++;
      this.#connectionError = unreachable;
    }
    this.#finish(jobs, results);
  }

  /** Counts and hands each job its results; jobs hold the results' uploads in order. */
  #finish(jobs, results) {
    let at = 0;
    for (const job of jobs) {
      for (let i = at; i < at + job.count; i++) {
        const error = results.error(i);
        const retries = results.retries(i);
        this.#counters.record(error, retries);
        if (this.#observers.size > 0) this.#notify(error, retries, job.started);
      }
      job.finish(job, results, at);
      at += job.count;
      this.#settled();
    }
  }
}

// A batch's documents travel as one Buffer (endToEnd), so batches of big
// uploads are cut by bytes too. Past this, one round trip saves nothing.
const MAX_BATCH_BYTES = 64 * 1024 * 1024;
// A createMany group is never split: bounded so that its Buffer can be made.
const MAX_GROUP_BYTES = 1024 * 1024 * 1024;

/** The batch's documents end to end, and where each ends, as insertBatch takes them. */
function endToEnd(jobs) {
  let count = 0;
  let size = 0;
  for (const job of jobs) {
    count += job.count;
    for (let i = 0; i < job.count; i++) size += job.bytesAt(i).length;
  }
  const bytes = Buffer.allocUnsafe(size);
  const ends = new Float64Array(count);
  let at = 0;
  let i = 0;
  for (const job of jobs) {
    for (let j = 0; j < job.count; j++) {
      const doc = job.bytesAt(j);
      bytes.set(doc, at);
      at += doc.length;
      ends[i++] = at;
    }
  }
  return { bytes, ends };
}

/**
 * Uploads of one order waiting for a batch, and how to answer their callers:
 * once the batch is answered, finish(job, results, first) is called with its
 * BatchResults and the index of the first of them. A single upload's job
 * also holds its promise's functions, so it waits as one object with no
 * closure of its own: a burst keeps thousands waiting, and the garbage
 * collector pays for each object that survives.
 */
class Job {
  constructor(key, count, size, finish, failuresSeen) {
    this.key = key;
    this.count = count; // uploads
    this.size = size; // their bytes
    this.finish = finish;
    this.started = performance.now();
    this.failuresSeen = failuresSeen; // connection failures seen when queued
    // A single upload: its BSON bytes, its caller's _id, its view
    // (lib/batch_results.js), and its caller's promise.
    this.bytes = null;
    this.callerId = undefined;
    this.view = null;
    this.orderId = undefined;
    this.resolve = null;
    this.reject = null;
    // A group (createMany, model mode): the same per upload, as arrays.
    this.docs = null;
    this.callerIds = null;
  }

  static group(key, docs, callerIds, finish, failuresSeen) {
    const job = new Job(key, docs.length, docs.reduce((sum, doc) => sum + doc.length, 0), finish, failuresSeen);
    job.docs = docs;
    job.callerIds = callerIds;
    return job;
  }

  bytesAt(i) {
    return this.docs === null ? this.bytes : this.docs[i];
  }

  callerIdAt(i) {
    return this.callerIds === null ? this.callerId : this.callerIds[i];
  }
}

/** The caller's _id of an upload, or undefined when the addon makes it. */
function callerId(data) {
  const _id = data !== null && typeof data === 'object' ? own(data, '_id') : undefined;
  return _id === null ? undefined : _id;
}

/**
 * The index build refused over what the collection holds (duplicate
 * versions; on MongoDB several documents of an order without one): the
 * error says what repairs it.
 */
function withDoctorHint(err) {
  const e = err;
  if (e && typeof e.message === 'string' && UNIQUE_REFUSAL.test(e.message)) {
    e.message += '. The collection holds documents the unique (order, version) index cannot be built over: run `npx atomic-asset-version doctor` to see them, and with --fix to repair them (nothing is deleted)';
  }
  return e;
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

/** An error of this upload's own, from what its batch reported. */
function uploadError(error, orderId, fields) {
  return withKeyDetails(errorForUpload(error, orderId), orderId, fields);
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
