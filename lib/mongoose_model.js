'use strict';

// Model mode: `new AssetRepository({ model: Asset })`. The app's Mongoose
// model is the source of truth for the document, and each upload goes through
// the model's own save(): casting, defaults (the _id's included), `strict`,
// validation, the timestamps plugin, `__v`, every save middleware in save()'s
// order, save()'s own bookkeeping after the insert and its error handlers.
// Only the write is replaced: the insertOne that save() sends to the model's
// collection goes to the addon instead, which gives the document its version.
// Mongoose is never required here; everything comes from the model the app
// hands us. Mongoose 8 and 9 are supported; every private field read is
// listed in docs/drop-in.md with the test that pins it.
const { BSON } = require('bson');
const { validationError } = require('./errors');
const { isForeign } = require('./bson_values');
const { checkIsUpload } = require('./asset_input');

// Built-in pre('save') and pre('validate') middleware of Mongoose 8 and 9,
// which read none of the fields the insert assigns.
const BUILT_IN = new Set(['validateBeforeSave', 'saveSubdocsPreSave', 'saveSubdocsPreDeleteOne', 'timestampsPreSave', 'shardingPluginPreSave', 'trackTransactionPreSave']);
const SUPPORTED_MAJORS = ['8', '9'];
// Private: the symbol under which a model's prototype holds the collection
// save() inserts through (`this[modelCollectionSymbol].insertOne(obj,
// saveOptions)` in Mongoose 8's $__handleSave and 9's $__save). Found by its
// description; a document given an own property under it has its insert
// served by us. Pinned by test/model-mode.test.js under both majors.
const COLLECTION_SYMBOL = 'mongoose#Model#collection';

const refuse = (field, message) => validationError('ERR_ASSET_OPTION', field, `option "model": ${message}`);

function collectionSymbol(model) {
  for (let proto = model.prototype; proto; proto = Object.getPrototypeOf(proto)) {
    const found = Object.getOwnPropertySymbols(proto).find((s) => s.description === COLLECTION_SYMBOL);
    if (found) return found;
  }
  return undefined;
}

function isModel(model) {
  return (
    typeof model === 'function' &&
    Boolean(model.schema) &&
    typeof model.schema.path === 'function' &&
    Boolean(model.prototype) &&
    typeof model.prototype.save === 'function' &&
    Boolean(model.db) &&
    Boolean(model.collection)
  );
}

function hookName(fn) {
  const source = String(fn).replace(/\s+/g, ' ');
  return fn.name ? `${fn.name}()` : `the anonymous hook "${source.length > 60 ? `${source.slice(0, 60)}…` : source}"`;
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Every problem of the schema that the addon cannot serve as save() would,
 * as [field, message] pairs: a missing or mistyped field the addon owns
 * (under the app's names), a validator, getter or setter on the version
 * fields (they are unknown until the insert), and a pre hook that reads
 * them or the _id (the same).
 */
function schemaProblems(schema, names, idAtInsert) {
  const problems = [];
  const typed = (role, ...types) => {
    const path = names[role];
    const type = schema.path(path);
    if (!type || !types.includes(type.instance)) {
      const as = path === role ? '' : ` (the ${role} field, mapped by option "fields")`;
      problems.push([path, `the schema must declare "${path}"${as} as ${types.join(' or ')}, got ${type ? type.instance : 'nothing'}`]);
      return undefined;
    }
    return type;
  };
  typed('orderId', 'String', 'ObjectId');
  typed('fileName', 'String');
  const assigned = ['version', 'versionLabel'].filter((role) => names[role] !== null);
  for (const role of assigned) {
    const path = names[role];
    const type = typed(role, role === 'version' ? 'Number' : 'String');
    if (!type) continue;
    for (const v of type.validators) {
      // required holds (the addon always sets it) and so does min <= 1.
      if (v.type === 'required' || (v.type === 'min' && role === 'version' && type.options.min <= 1)) continue;
      problems.push([path, `the "${v.type}" validator on "${path}" cannot run: the version is assigned by the insert, after validation`]);
    }
    if (type.setters.length > 0 || type.getters.length > 0) {
      problems.push([path, `a getter or setter on "${path}" cannot run: the addon writes "${path}" itself`]);
    }
  }
  // The _id too when the insert makes it (Mongoose's auto ObjectId).
  const watched = [...new Set([...assigned.map((role) => names[role]), ...(idAtInsert ? ['_id'] : [])])];
  const readsAssigned = new RegExp(`(?<![\\w$])(${watched.map(escape).join('|')})(?![\\w$])`);
  for (const name of ['validate', 'save']) {
    // Private: the schema's hooks (kareem's _pres); Mongoose has no public list.
    for (const hook of schema.s.hooks._pres.get(name) || []) {
      if (BUILT_IN.has(hook.fn.name)) continue;
      const match = readsAssigned.exec(String(hook.fn));
      if (match) {
        problems.push([
          `pre('${name}')`,
          `the pre('${name}') hook ${hookName(hook.fn)} reads "${match[1]}", which the insert assigns: a pre hook runs before it is known. Read it in a post('save') hook, which gets the stored document`,
        ]);
      }
    }
  }
  return problems;
}

/** One error for all of a schema's problems: `field` the first, `problems` every one. */
function schemaError(problems) {
  const err = refuse(
    problems[0][0],
    problems.length === 1 ? problems[0][1] : `the schema has ${problems.length} problems: ${problems.map(([, m], i) => `(${i + 1}) ${m}`).join('; ')}`,
  );
  err.problems = problems.map(([field, message]) => ({ field, message }));
  return err;
}

/** Private: the connection string of the model's open connection (the driver's client.s.url). */
function connectionString(model) {
  const client = typeof model.db.getClient === 'function' ? model.db.getClient() : undefined;
  const url = client && client.s && client.s.url;
  return typeof url === 'string' && url !== '' ? url : undefined;
}

const CONNECTED = 1; // Connection#readyState

class MongooseModel {
  #model;
  #names;
  #collection; // the symbol save() inserts through
  #objectIdDefault; // the schema's _id is Mongoose's own auto ObjectId

  constructor(model, names) {
    if (!isModel(model)) throw refuse('model', 'must be a Mongoose model (mongoose.model(…) or connection.model(…))');
    const version = model.base && model.base.version;
    if (typeof version !== 'string' || !SUPPORTED_MAJORS.includes(version.split('.')[0])) {
      throw refuse('model', `needs Mongoose 8 or 9 (their save() is the one model mode follows), got ${version || 'an unknown version'}`);
    }
    this.#collection = collectionSymbol(model);
    if (!this.#collection) throw refuse('model', `Mongoose ${version}'s model has no collection under "${COLLECTION_SYMBOL}", which model mode serves save()'s insert through`);
    const id = model.schema.path('_id');
    this.#objectIdDefault = Boolean(id && id.instance === 'ObjectId' && id.options && id.options.auto === true);
    const problems = schemaProblems(model.schema, names, this.#objectIdDefault);
    if (problems.length > 0) throw schemaError(problems);
    this.#model = model;
    this.#names = names;
  }

  /**
   * The repository's options with the collection of the model, and its
   * database and connection string when the connection is open (else they
   * are read when it opens: see connected()). A dbName or collection that
   * contradicts the model is refused rather than one of them ignored.
   */
  repositoryOptions(options) {
    const { model, ...rest } = options;
    const collection = this.#model.collection.collectionName;
    const dbName = this.#dbName();
    for (const [key, value] of [
      ['collection', collection],
      ['dbName', dbName],
    ]) {
      if (rest[key] !== undefined && value !== undefined && rest[key] !== value) {
        throw refuse(key, `"${key}" is "${rest[key]}" but the model's is "${value}"; leave it out`);
      }
    }
    const open = this.#model.db.readyState === CONNECTED;
    return { ...rest, uri: rest.uri || (open ? connectionString(this.#model) : undefined), dbName: rest.dbName || dbName, collection };
  }

  #dbName() {
    return this.#model.db.name || undefined;
  }

  /**
   * Resolves with { uri, dbName } of the model's connection once it is open,
   * as a buffered Mongoose operation waits: rejects, as Mongoose's would,
   * after the model's bufferTimeoutMS, or at once when it buffers nothing.
   */
  connected() {
    const model = this.#model;
    const conn = model.db;
    const opened = () => ({ uri: connectionString(model), dbName: this.#dbName() });
    if (conn.readyState === CONNECTED) return Promise.resolve(opened());
    const setting = (name) => [model.schema.options[name], conn.config && conn.config[name], model.base.get(name)].find((v) => v !== undefined && v !== null);
    const name = `${model.collection.collectionName}.insertOne()`;
    if (setting('bufferCommands') === false) {
      return Promise.reject(
        new model.base.Error(
          `Operation \`${name}\` cannot run: the model's connection is not open and bufferCommands is false (atomic-asset-version waits for the connection only as Mongoose's buffering would)`,
        ),
      );
    }
    const timeoutMS = setting('bufferTimeoutMS') ?? 10000;
    return new Promise((resolve, reject) => {
      const onOpen = () => {
        clearTimeout(timer);
        resolve(opened());
      };
      const timer = setTimeout(() => {
        conn.removeListener('open', onOpen);
        reject(
          new model.base.Error(
            `Operation \`${name}\` buffering timed out after ${timeoutMS}ms: the model's connection did not open (call mongoose.connect() or connection.openUri(); nothing was stored)`,
          ),
        );
      }, timeoutMS);
      conn.once('open', onOpen);
    });
  }

  /**
   * Saves each of `items` with the model's save(), all of them handed to
   * `store` as one batch: store(orderKey, orderId, bsonDocs, callerIds) resolves with,
   * per document, { status: 'fulfilled', value: the stored document } or
   * { status: 'rejected', reason }. Resolves with one
   * settled result per item: the saved document's toObject(), or save()'s
   * rejection. `refused(err)` hears of an item refused before the write;
   * `many`: the items are createManyWithAtomicVersion's, named items[i].
   */
  async saveAll(items, { orderKey, toBson, store, refused, many = false }) {
    const docs = [];
    const outcomes = [];
    for (const [i, data] of items.entries()) {
      try {
        docs.push(this.#build(data, many ? `items[${i}]` : ''));
      } catch (err) {
        docs.push(null);
        refused(err);
        outcomes.push(Promise.reject(err));
        continue;
      }
      outcomes.push(null);
    }
    // Each document runs save() up to its insert; those that reach it wait
    // there until all have, so the batch keeps the items' order.
    const arrivals = docs.map((doc) => (doc ? deferred() : null));
    const saves = docs.map((doc, i) => {
      if (!doc) return outcomes[i];
      let reached = false;
      const real = doc[this.#collection];
      const insertOne = (obj) =>
        new Promise((resolve, reject) => {
          reached = true;
          arrivals[i].resolve({ doc, obj, resolve, reject });
        });
      Object.defineProperty(doc, this.#collection, { value: Object.create(real, { insertOne: { value: insertOne } }), configurable: true, writable: true });
      return doc.save().then(
        (saved) => {
          delete saved[this.#collection];
          return saved.toObject();
        },
        (err) => {
          delete doc[this.#collection];
          untrap(doc, this.#names);
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
    const { orderId: orderPath } = this.#names;
    for (let i = 0; i < docs.length; i++) {
      if (!arrivals[i]) continue;
      const arrival = await arrivals[i].promise;
      if (!arrival) continue; // refused by its middleware
      try {
        untrap(arrival.doc, this.#names);
        const given = items[i]._id !== undefined && items[i]._id !== null;
        const obj = arrival.obj;
        // Mongoose's own auto ObjectId is left to the insert, which makes
        // one (no lookup needed for it); any other _id is the schema's, kept.
        if (!given && this.#objectIdDefault) delete obj._id;
        const key = orderKey(obj[orderPath]);
        if (writes.length > 0 && key !== writes[0].key) {
          throw validationError('ERR_ASSET_ORDER_ID', `items[${i}].${orderPath}`, `items[${i}].${orderPath} differs from orderId once cast by the model`);
        }
        // The caller's _id as the model cast it; undefined when the insert makes it.
        writes.push({ ...arrival, key, orderId: obj[orderPath], bytes: toBson(obj, many ? `items[${i}]` : ''), callerId: given ? obj._id : undefined });
      } catch (err) {
        refused(err);
        arrival.reject(err);
      }
    }
    if (writes.length > 0) {
      let results;
      try {
        results = await store(
          writes[0].key,
          writes[0].orderId,
          writes.map((w) => w.bytes),
          writes.map((w) => w.callerId),
        );
      } catch (err) {
        results = writes.map(() => ({ status: 'rejected', reason: err }));
      }
      writes.forEach((w, i) => this.#finish(w, results[i]));
    }
    return Promise.allSettled(saves);
  }

  /**
   * The stored document with the model's own bson values: Mongoose 8 brings
   * bson 6, and a bson 7 ObjectId in its document would be refused by its
   * driver at the next save. Rebuilt through the model's driver's BSON
   * (public: mongoose.mongo.BSON) when its major is not ours.
   */
  #inModelBson(stored) {
    const theirs = this.#model.base.mongo && this.#model.base.mongo.BSON;
    if (!theirs || !isForeign(new theirs.ObjectId())) return stored;
    return theirs.deserialize(BSON.serialize(stored));
  }

  #build(data, where) {
    checkIsUpload(data, where, true);
    const doc = new this.#model(data);
    trap(doc, this.#names);
    return doc;
  }

  /**
   * Answers save()'s insertOne: the document takes what the insert assigned
   * (the _id, version, label, and the timestamps where the schema's have the
   * addon's names), unmodified; save() then goes on to its post middleware
   * as after the driver's insertOne, or to its error handlers.
   */
  #finish(write, result) {
    if (result.status === 'rejected') {
      write.reject(result.reason);
      return;
    }
    const { doc } = write;
    const stored = this.#inModelBson(result.value);
    if (write.callerId !== undefined) {
      // A retry may find the upload stored by an earlier call, with that
      // call's data: the document becomes the stored one, loaded as a query
      // loads it (init), so the caller gets what is stored.
      for (const key of Object.keys(doc.toObject({ virtuals: false, getters: false, transform: false }))) {
        if (!(key in stored)) {
          doc.set(key, undefined);
          doc.unmarkModified(key);
        }
      }
      doc.init(stored);
    }
    const assigned = ['_id', ...['version', 'versionLabel'].map((role) => this.#names[role]).filter((p) => p !== null)];
    // The addon stamps createdAt and updatedAt with its own clock; where the
    // schema's timestamps have those names, the document takes the stored ones.
    const timestamps = timestampNames(doc.schema.options.timestamps);
    for (const name of ['createdAt', 'updatedAt']) if (timestamps.includes(name)) assigned.push(name);
    for (const path of assigned) {
      if (stored[path] === undefined) continue;
      // createdAt is immutable under timestamps: set()'s overwriteImmutable
      // (public, Mongoose 8.x late and 9) lets the stored one in. Where a
      // Mongoose 8 ignores that option, the private $__setValue does it.
      doc.set(path, stored[path], { overwriteImmutable: true });
      if (!sameValue(doc.get(path), stored[path]) && typeof doc.$__setValue === 'function') {
        const type = doc.schema.path(path);
        doc.$__setValue(path, type ? type.cast(stored[path], doc, true) : stored[path]);
      }
      doc.unmarkModified(path);
    }
    write.resolve({ acknowledged: true, insertedId: doc._id });
  }
}

/** The paths the schema's `timestamps` option stamps (its public form: true or { createdAt, updatedAt }). */
function timestampNames(option) {
  if (!option) return [];
  if (option === true) return ['createdAt', 'updatedAt'];
  const name = (role) => (option[role] === undefined || option[role] === true ? role : typeof option[role] === 'string' ? option[role] : null);
  return [name('createdAt'), name('updatedAt')].filter(Boolean);
}

/**
 * Until the insert assigns them, reading version or versionLabel throws
 * instead of answering undefined: a hook that needs them fails loudly even
 * where schemaProblems could not see it read them. Validation skips them
 * too (required holds, and schemaProblems refused any other validator).
 */
function trap(doc, names) {
  const paths = ['version', 'versionLabel'].map((role) => names[role]).filter((p) => p !== null);
  const notYet = (path) => {
    throw validationError('ERR_ASSET_VERSION_UNKNOWN', path, `"${path}" is read before the insert assigns it (a pre('validate') or pre('save') hook?): read it in post('save')`);
  };
  for (const path of paths) {
    Object.defineProperty(doc, path, {
      configurable: true,
      get: () => notYet(path),
      set: () => {
        notYet(path);
      },
    });
  }
  const get = doc.get;
  doc.get = function trappedGet(path, ...rest) {
    if (paths.includes(path)) notYet(path);
    return get.call(this, path, ...rest);
  };
  const validate = doc.$validate;
  doc.$validate = function validateAllButVersion(pathsToValidate, options, ...rest) {
    const skip = (o) => ({ ...o, pathsToSkip: [...paths, ...((o && o.pathsToSkip) || [])] });
    if (pathsToValidate && typeof pathsToValidate === 'object' && !Array.isArray(pathsToValidate)) {
      return validate.call(this, skip(pathsToValidate), options, ...rest);
    }
    return validate.call(this, pathsToValidate, skip(options), ...rest);
  };
}

function untrap(doc, names) {
  for (const role of ['version', 'versionLabel']) if (names[role] !== null) delete doc[names[role]];
  delete doc.get;
  delete doc.$validate;
}

function sameValue(a, b) {
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (a && typeof a.equals === 'function') return a.equals(b);
  return a === b;
}

function deferred() {
  let resolve;
  const promise = new Promise((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

module.exports = { MongooseModel };
