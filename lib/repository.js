'use strict';

const { BSON } = require('bson');
const native = require('./native');
const { prepareUpload, toBson, orderKey, checkOrderId, isPlainObject, own, fieldPlan } = require('./asset_input');
const { parseOptions, parseFields } = require('./options');
const { UploadQueue, beforeLookup } = require('./upload_queue');
const { BatchError, validationError } = require('./errors');
const { MongooseModel } = require('./mongoose_model');
const { UNIQUE_REFUSAL } = require('./duplicate_key');

let warnedGetNextVersion = false;

/**
 * Gives every asset of an order a sequential, gapless version: v1, v2, v3…
 * A drop-in for the reference design's repository (createWithAtomicVersion).
 *
 * A facade: it reads the options, validates each call, sends model mode
 * through the app's model, and hands the uploads to its UploadQueue
 * (lib/upload_queue.js), which batches, runs and finishes them, fails fast,
 * and owns close.
 */
class AssetRepository {
  #options;
  #native = null; // the addon's repository (made at once in plain mode, see #connect)
  #queue;
  #ready = null; // the index, ensured once before the first write
  #model = null; // model mode: the app's Mongoose model builds each upload (lib/mongoose_model.js)
  // Model mode before the model's connection opens: #native is made when it
  // does (#connect), and this is that wait.
  #connecting = null;
  #fields; // the app's field names, as the checks use them (asset_input.js fieldPlan)

  constructor(options) {
    const modelMode = options !== null && typeof options === 'object' && options.model !== undefined;
    if (modelMode) {
      this.#model = new MongooseModel(options.model, parseFields(options.fields));
      options = this.#model.repositoryOptions(options);
    }
    this.#options = parseOptions(options, { modelMode });
    this.#fields = fieldPlan(this.#options.fields);
    if (this.#options.uri !== undefined) this.#native = this.#makeNative();
    this.#queue = new UploadQueue({
      options: this.#options,
      fields: this.#fields,
      nativeRepository: () => this.#native,
      ready: () => this.ensureIndex(),
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
  createWithAtomicVersion(data, _retryCount) {
    if (this.#model) return this.#saveWithModel([data], false).then(([result]) => unwrap(result));
    let upload;
    try {
      this.#queue.assertOpen();
      upload = prepareUpload(data, '', this.#fields);
    } catch (err) {
      this.#queue.refused(err);
      return Promise.reject(err);
    }
    const orderId = own(upload.values, this.#fields.orderId);
    return this.#queue.add(orderKey(orderId), orderId, upload, callerId(upload.values));
  }

  /**
   * Stores several assets of one order as one batch, in order. Resolves with
   * every asset when all are stored; otherwise rejects with a BatchError whose
   * `results` say, per item, what was stored and what failed.
   */
  createManyWithAtomicVersion(orderId, items) {
    try {
      this.#queue.assertOpen();
      const ORDER = this.#fields.orderId;
      const order = checkOrderId(orderId, ORDER);
      if (!Array.isArray(items) || items.length === 0) {
        throw validationError('ERR_ASSET_ITEMS', 'items', 'items must be a non-empty array');
      }
      if (items.length > native.limits.maxBatch) {
        throw validationError('ERR_ASSET_ITEMS', 'items', `items may hold at most ${native.limits.maxBatch} assets per call`);
      }
      if (this.#model) {
        return this.#saveWithModel(
          items.map((item) => (isPlainObject(item) && item[ORDER] === undefined ? { ...item, [ORDER]: order } : item)),
          true,
        ).then((results) => batchOutcome(results, order));
      }
      const key = orderKey(order);
      const batch = items.map((item, i) => {
        if (item && typeof item === 'object' && ORDER in item && orderKey(checkOrderId(item[ORDER], `items[${i}].${ORDER}`)) !== key) {
          throw validationError('ERR_ASSET_ORDER_ID', `items[${i}].${ORDER}`, `items[${i}].${ORDER} differs from orderId`);
        }
        // Only a plain item gets the order added; anything else is refused by prepareUpload as it is.
        return prepareUpload(isPlainObject(item) ? { ...item, [ORDER]: order } : item, `items[${i}]`, this.#fields);
      });
      if (batch.reduce((sum, u) => sum + u.bytes.length, 0) > MAX_GROUP_BYTES) {
        throw validationError('ERR_ASSET_ITEMS', 'items', 'items hold more than 1 GiB together: store them in several calls');
      }
      const docs = batch.map((u) => u.bytes);
      const callerIds = batch.map((u) => callerId(u.values));
      return this.#queue
        .addGroup(
          key,
          order,
          docs,
          callerIds,
          batch.map((u) => u.view),
        )
        .then((results) => batchOutcome(results, order));
    } catch (err) {
      this.#queue.refused(err);
      return Promise.reject(err);
    }
  }

  /** @deprecated Races with concurrent uploads; use createWithAtomicVersion. */
  async getNextVersion(orderId) {
    if (!warnedGetNextVersion) {
      warnedGetNextVersion = true;
      process.emitWarning('getNextVersion() races with concurrent uploads: two callers can get the same number. Use createWithAtomicVersion().', {
        type: 'DeprecationWarning',
        code: 'ATOMIC_ASSET_VERSION_GET_NEXT',
      });
    }
    this.#queue.assertOpen();
    const order = checkOrderId(orderId, this.#fields.orderId);
    const filter = BSON.serialize({ [this.#fields.orderId]: order });
    const highest = await this.#queue.track(this.#connect().then((n) => n.readHighest(filter)));
    return highest + 1;
  }

  /** Ensures the unique (orderId, version) index; resolves with its name. */
  ensureIndex() {
    if (!this.#ready) {
      this.#ready = this.#queue.track(
        this.#connect()
          .then((n) => n.ensureIndex())
          .catch((err) => {
            throw withDoctorHint(err);
          }),
      );
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
    return this.#queue.observe(fn);
  }

  stats() {
    return this.#queue.stats();
  }

  /** Lets accepted uploads finish, then releases the connections. Idempotent. */
  close() {
    return this.#queue.close();
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
   * one group of the queue (lib/mongoose_model.js). Settled results, in order.
   */
  #saveWithModel(items, many) {
    try {
      this.#queue.assertOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#queue.track(
      this.#model.saveAll(items, {
        orderKey,
        many,
        toBson: (obj, where) => toBson(obj, where, this.#fields),
        refused: (err) => this.#queue.refused(err),
        store: async (key, orderId, docs, callerIds) => {
          try {
            await this.#connect();
          } catch (err) {
            // Never sent: failed, unless the caller's _id may be stored by an earlier call.
            return docs.map((_, i) => ({ status: 'rejected', reason: beforeLookup(err, callerIds[i]) }));
          }
          return this.#queue.addGroup(key, orderId, docs, callerIds);
        },
      }),
    );
  }
}

// A createMany group is never split: bounded so that its Buffer can be made.
const MAX_GROUP_BYTES = 1024 * 1024 * 1024;

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
    e.message +=
      '. The collection holds documents the unique (order, version) index cannot be built over: run `npx atomic-asset-version doctor` to see them, and with --fix to repair them (nothing is deleted)';
  }
  return e;
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
