'use strict';

// Model mode: `new AssetRepository({ model: Asset })`. The app's Mongoose
// model is the source of truth for the document, and each upload goes through
// the model's own `save()`: casting, defaults, `strict`, validation, the
// timestamps plugin, `__v`, and every save middleware in save()'s order. Only
// the write is replaced: where save() would call insertOne, the document goes
// to the addon, which gives it its version. Mongoose is never required here;
// everything comes from the model the app hands us.
const { validationError } = require('./errors');

// What the addon assigns at the insert. Until then a pre hook sees them
// unset; reading version or versionLabel there throws (see trapVersion).
const VERSION_PATHS = ['version', 'versionLabel'];
// Mongoose's own pre('save') and pre('validate') middleware, which read none
// of the fields above.
const BUILT_IN = new Set(['validateBeforeSave', 'saveSubdocsPreSave', 'timestampsPreSave', 'shardingPluginPreSave', 'trackTransactionPreSave']);
// A hook's source naming one of the fields the insert assigns.
const READS_ASSIGNED = /(?<![\w$])(version|versionLabel|_id)(?![\w$])/;
// The options Model.prototype.$__handleSave passes to toObject() (Mongoose 8's
// saveToObjectOptions): the document exactly as save() would send it.
const SAVE_TO_OBJECT = {
  transform: false, virtuals: false, getters: false, _skipDepopulateTopLevel: true, depopulate: true,
  flattenDecimals: false, useProjection: false, versionKey: true, flattenObjectIds: false, flattenUUIDs: false, bson: true,
};

const refuse = (field, message) => validationError('ERR_ASSET_OPTION', field, `option "model": ${message}`);

function isModel(model) {
  return typeof model === 'function' && model.schema && typeof model.schema.path === 'function' && model.prototype && typeof model.prototype.$__handleSave === 'function';
}

function hookName(fn) {
  const source = String(fn).replace(/\s+/g, ' ');
  return fn.name ? `${fn.name}()` : `the anonymous hook "${source.length > 60 ? `${source.slice(0, 60)}…` : source}"`;
}

/**
 * Throws, naming it, for anything of the schema that the addon cannot serve
 * as save() would: a missing or mistyped field the addon owns, a validator
 * on version or versionLabel (they are unknown until the insert), and a pre
 * hook that reads version, versionLabel or _id (the same).
 */
function checkSchema(schema) {
  const typed = (path, ...types) => {
    const type = schema.path(path);
    if (!type || !types.includes(type.instance)) {
      throw refuse(path, `the schema must declare "${path}" as ${types.join(' or ')} (as the reference design's does), got ${type ? type.instance : 'nothing'}`);
    }
    return type;
  };
  typed('orderId', 'String', 'ObjectId');
  typed('fileName', 'String');
  for (const path of VERSION_PATHS) {
    const type = typed(path, path === 'version' ? 'Number' : 'String');
    for (const v of type.validators) {
      // required holds (the addon always sets it) and so does min <= 1.
      if (v.type === 'required' || (v.type === 'min' && path === 'version' && type.options.min <= 1)) continue;
      throw refuse(path, `the "${v.type}" validator on "${path}" cannot run: the version is assigned by the insert, after validation`);
    }
    if (type.setters.length > 0 || type.getters.length > 0) {
      throw refuse(path, `a getter or setter on "${path}" cannot run: the addon writes "${path}" itself`);
    }
  }
  for (const name of ['validate', 'save']) {
    for (const hook of schema.s.hooks._pres.get(name) || []) {
      if (BUILT_IN.has(hook.fn.name)) continue;
      const match = READS_ASSIGNED.exec(String(hook.fn));
      if (match) {
        throw refuse(`pre('${name}')`, `the pre('${name}') hook ${hookName(hook.fn)} reads "${match[1]}", which the insert assigns: a pre hook runs before it is known. Read it in a post('save') hook, which gets the stored document`);
      }
    }
  }
}

/** The connection string of the model's connection, where Mongoose exposes it. */
function connectionString(model) {
  const client = typeof model.db.getClient === 'function' ? model.db.getClient() : undefined;
  const url = client && client.s && client.s.url;
  return typeof url === 'string' && url !== '' ? url : undefined;
}

class MongooseModel {
  #model;

  constructor(model) {
    if (!isModel(model)) throw refuse('model', 'must be a Mongoose model (mongoose.model(…) or connection.model(…))');
    // save()'s internals used here ($__handleSave and what it does after the
    // insert) are Mongoose 8's; another major may differ without a sign.
    const version = model.base && model.base.version;
    if (typeof version !== 'string' || version.split('.')[0] !== '8') {
      throw refuse('model', `needs Mongoose 8 (its save() is the one model mode follows), got ${version || 'an unknown version'}`);
    }
    checkSchema(model.schema);
    this.#model = model;
  }

  /**
   * The repository's options with the database and collection of the model,
   * and its connection's string unless `uri` is given. A dbName or collection
   * that contradicts the model is refused rather than one of them ignored.
   */
  repositoryOptions(options) {
    const { model, ...rest } = options;
    const collection = this.#model.collection.collectionName;
    const dbName = this.#model.db.name || this.#model.db.$dbName || undefined;
    for (const [key, value] of [['collection', collection], ['dbName', dbName]]) {
      if (rest[key] !== undefined && value !== undefined && rest[key] !== value) {
        throw refuse(key, `"${key}" is "${rest[key]}" but the model's is "${value}"; leave it out`);
      }
    }
    return { ...rest, uri: rest.uri || connectionString(this.#model) || undefined, dbName: rest.dbName || dbName, collection };
  }

  /**
   * Saves each of `items` with the model's save(), all of them handed to
   * `store` as one batch: store(orderKey, orderId, bsonDocs, callerIds) resolves with,
   * per document, { doc } (as stored) or { error }. Resolves with one
   * settled result per item: the saved document's toObject(), or save()'s
   * rejection. `refused(err)` hears of an item refused before the write.
   */
  async saveAll(items, { orderKey, toBson, store, refused }) {
    const docs = [];
    const outcomes = [];
    for (const data of items) {
      try {
        docs.push(this.#build(data));
      } catch (err) {
        docs.push(null);
        refused(err);
        outcomes.push(Promise.reject(err));
        continue;
      }
      outcomes.push(null);
    }
    // Each document runs its pre middleware; those that reach the write wait
    // there until all have, so the batch keeps the items' order.
    const arrivals = docs.map((doc) => (doc ? deferred() : null));
    const saves = docs.map((doc, i) => {
      if (!doc) return outcomes[i];
      let reached = false;
      doc.$__handleSave = (options, callback) => {
        reached = true;
        arrivals[i].resolve({ doc, callback });
      };
      return doc.save().then(
        (saved) => saved.toObject(),
        (err) => {
          if (!reached) {
            refused(err);
            arrivals[i].resolve(null);
          }
          throw err;
        },
      );
    });
    for (const p of saves) p.catch(() => {}); // observed below; never unhandled
    const writes = [];
    for (let i = 0; i < docs.length; i++) {
      if (!arrivals[i]) continue;
      const arrival = await arrivals[i].promise;
      if (!arrival) continue; // refused by its middleware
      try {
        const obj = sendable(arrival.doc, items[i]);
        const key = orderKey(obj.orderId);
        if (writes.length > 0 && key !== writes[0].key) {
          throw validationError('ERR_ASSET_ORDER_ID', `items[${i}].orderId`, `items[${i}].orderId differs from orderId once cast by the model`);
        }
        // The caller's _id as the model cast it; undefined when the insert makes it.
        writes.push({ ...arrival, key, orderId: obj.orderId, bytes: toBson(obj), callerId: obj._id });
      } catch (err) {
        refused(err);
        arrival.callback(err);
      }
    }
    if (writes.length > 0) {
      let results;
      try {
        results = await store(writes[0].key, writes[0].orderId, writes.map((w) => w.bytes), writes.map((w) => w.callerId));
      } catch (err) {
        results = writes.map(() => ({ error: err }));
      }
      writes.forEach((w, i) => finish(w.doc, w.callback, results[i], w.callerId !== undefined));
    }
    return Promise.allSettled(saves);
  }

  #build(data) {
    if (data === null || typeof data !== 'object' || Array.isArray(data)) {
      throw validationError('ERR_ASSET_NOT_OBJECT', '', 'data must be an object');
    }
    const doc = new this.#model(data);
    // The _id is the insert's unless the caller gives one (a retry).
    if (data._id === undefined || data._id === null) doc.$__setValue('_id', undefined);
    trapVersion(doc);
    return doc;
  }
}

/**
 * Until the insert assigns them, reading version or versionLabel throws
 * instead of answering undefined: a hook that needs them fails loudly even
 * where checkSchema could not see it read them. Validation skips them too
 * (required holds, and checkSchema refused any other validator).
 */
function trapVersion(doc) {
  const notYet = (path) => {
    throw validationError('ERR_ASSET_VERSION_UNKNOWN', path, `"${path}" is read before the insert assigns it (a pre('validate') or pre('save') hook?): read it in post('save')`);
  };
  for (const path of VERSION_PATHS) {
    Object.defineProperty(doc, path, { configurable: true, get: () => notYet(path), set: () => notYet(path) });
  }
  const get = doc.get;
  doc.get = function trappedGet(path, ...rest) {
    if (VERSION_PATHS.includes(path)) notYet(path);
    return get.call(this, path, ...rest);
  };
  const validate = doc.$validate;
  doc.$validate = function validateAllButVersion(pathsToValidate, options, ...rest) {
    const skip = (o) => ({ ...o, pathsToSkip: [...VERSION_PATHS, ...((o && o.pathsToSkip) || [])] });
    if (pathsToValidate && typeof pathsToValidate === 'object' && !Array.isArray(pathsToValidate)) {
      return validate.call(this, skip(pathsToValidate), options, ...rest);
    }
    return validate.call(this, pathsToValidate, skip(options), ...rest);
  };
}

function untrap(doc) {
  for (const path of VERSION_PATHS) delete doc[path];
  delete doc.get;
  delete doc.$validate;
}

/** The document as save() would insert it, less the _id the addon makes. */
function sendable(doc, data) {
  untrap(doc);
  const obj = doc.toObject(SAVE_TO_OBJECT);
  doc.$__version(true, obj); // __v: 0, as save() sets it
  if (data._id === undefined || data._id === null) delete obj._id;
  return obj;
}

/**
 * Ends a save() whose write the addon did: the document takes what the
 * insert assigned and is no longer new, as after save()'s insertOne; then
 * save() goes on to its post middleware (or its error handlers).
 */
function finish(doc, callback, result, retry) {
  if (result.error) {
    callback(result.error);
    return;
  }
  const stored = result.doc;
  if (retry) {
    // A retry may find the upload stored by an earlier call, with that
    // call's data: the document becomes the stored one, loaded as a query
    // loads it (init, no setters), so the caller gets what is stored.
    for (const key of Object.keys(doc._doc)) if (!(key in stored)) doc.$__setValue(key, undefined);
    doc.init(stored);
  }
  const assigned = ['_id', ...VERSION_PATHS];
  const timestamps = doc.$__schema.$timestamps;
  // The addon stamps createdAt and updatedAt with its own clock; where the
  // schema's timestamps have those names, the document takes the stored ones.
  for (const name of ['createdAt', 'updatedAt']) if (timestamps && Object.values(timestamps).includes(name)) assigned.push(name);
  for (const path of assigned) doc.$__setValue(path, doc.$__schema.path(path) ? doc.$__schema.path(path).cast(stored[path], doc, true) : stored[path]);
  doc.$__reset();
  doc.$isNew = false;
  doc.$emit('isNew', false);
  doc.constructor.emit('isNew', false);
  for (const subdoc of doc.$getAllSubdocs()) {
    subdoc.$isNew = false;
    subdoc.$emit('isNew', false);
  }
  doc.$__.inserting = true;
  callback(null, { acknowledged: true, insertedId: stored._id });
}

function deferred() {
  let resolve;
  const promise = new Promise((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

module.exports = { MongooseModel };
