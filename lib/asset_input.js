'use strict';

// Turns what a caller hands us into BSON bytes the addon accepts, or a
// ValidationError naming the field. The one place an upload is validated:
// the asset fields, key rules, values, depth and size. Serialization uses the
// `bson` package, the one the official driver and Mongoose use, so types map
// exactly as they do there; the addon only checks that the bytes it gets are
// sound BSON, which is all it needs to be memory-safe. The limits come from
// the addon (native.limits), defined once.
const { BSON, ObjectId } = require('bson');
const native = require('./native');
const { validationError } = require('./errors');
const { isForeign, ownValues } = require('./bson_values');

function isPlainObject(value) {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `a ${value.constructor ? value.constructor.name : 'null-prototype'} instance`;
  return `a ${typeof value}`;
}

// MongoDB's nesting and size limits; the depth also keeps the serializer off deep recursion.
const { maxDepth: MAX_DEPTH, maxBsonSize: MAX_BSON_SIZE, storedOverhead: STORED_OVERHEAD } = native.limits;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
// Boxed primitives too: the serializer would store new Number(5) as {}.
const UNSUPPORTED = [Set, WeakSet, WeakMap, Promise, ArrayBuffer, DataView, SharedArrayBuffer, Number, String, Boolean];

const dateTime = Function.prototype.call.bind(Date.prototype.getTime);
/**
 * The app's field names (option "fields", lib/options.js) as the checks use
 * them: the four roles' names, the fields the stored document owns (four
 * names, or three with no label: an array search beats a Set's hash), and
 * the bytes longer names add to the stored document.
 */
function fieldPlan(names) {
  const owned = [names.version, ...(names.versionLabel === null ? [] : [names.versionLabel]), 'createdAt', 'updatedAt'];
  const longer = (name, byDefault) => Math.max(0, Buffer.byteLength(name) - byDefault.length);
  const extra = longer(names.version, 'version') + (names.versionLabel === null ? 0 : longer(names.versionLabel, 'versionLabel'));
  return { ...names, owned, overhead: STORED_OVERHEAD + extra };
}
const DEFAULT_FIELDS = fieldPlan({ orderId: 'orderId', fileName: 'fileName', version: 'version', versionLabel: 'versionLabel' });
if (DEFAULT_FIELDS.owned.join() !== native.ownedFields.join()) throw new Error("asset_input: owned fields differ from the addon's");
/** object's own `key`: a name polluted onto Object.prototype is not the upload's. */
const own = (object, key) => (Object.hasOwn(object, key) ? object[key] : undefined);
const join = (path, key) => (path ? `${path}.${key}` : String(key));
const bad = (code, field, why) => validationError(code, field, `field "${field}" ${why}`);

/**
 * Looks at every value the serializer would store and refuses what it would
 * store wrongly or silently change: cycles, nesting past 100 levels, numbers
 * that are not finite, BigInts past int64, strings that are not valid
 * Unicode, invalid Dates, and objects with no faithful BSON form. Getters and
 * Proxy traps that throw become ValidationErrors naming the field.
 */
function inspect(value, path, depth, ancestors, keyRule) {
  switch (typeof value) {
    case 'number':
      if (!Number.isFinite(value)) throw bad('ERR_ASSET_VALUE', path, `is ${value}: only finite numbers are stored`);
      return;
    case 'bigint':
      if (value < INT64_MIN || value > INT64_MAX) throw bad('ERR_ASSET_VALUE', path, 'is a BigInt outside the 64-bit integer range');
      return;
    case 'string':
      if (!value.isWellFormed()) throw bad('ERR_ASSET_VALUE', path, 'is a string with a lone surrogate (not valid Unicode)');
      return;
    case 'function':
    case 'symbol':
      throw bad('ERR_ASSET_VALUE', path, `is a ${typeof value}, which has no stored form`);
    case 'object':
      break;
    default:
      return; // boolean, undefined
  }
  if (value === null || value instanceof RegExp || value instanceof Uint8Array) return;
  if (value._bsontype !== undefined) {
    // Another bson major's value: rebuilt as ours before serializing (lib/bson_values.js).
    if (isForeign(value)) keyRule.foreign = true;
    return;
  }
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw bad('ERR_ASSET_VALUE', path, 'is an invalid Date');
    return;
  }
  if (!isPlainObject(value) && (ArrayBuffer.isView(value) || UNSUPPORTED.some((C) => value instanceof C))) {
    throw bad('ERR_ASSET_VALUE', path, `is ${describe(value)}, which has no faithful stored form`);
  }
  if (depth >= MAX_DEPTH) throw bad('ERR_ASSET_TOO_DEEP', path, `nests deeper than MongoDB's limit of ${MAX_DEPTH} levels`);
  if (ancestors.has(value)) throw bad('ERR_ASSET_CYCLE', path, 'refers back to an object that contains it (a cycle)');
  ancestors.add(value);
  if (value instanceof Map) {
    for (const [key, child] of value) {
      const field = join(path, key);
      checkKey(key, field, keyRule);
      inspect(child, field, depth + 1, ancestors, keyRule);
    }
  } else {
    for (const key of Object.keys(value)) {
      const field = join(path, key);
      checkKey(key, field, keyRule);
      inspect(read(value, key, field), field, depth + 1, ancestors, keyRule);
    }
  }
  ancestors.delete(value);
}

function checkKey(key, field, keyRule) {
  if (typeof key !== 'string' || !key.isWellFormed()) throw bad('ERR_ASSET_KEY', field, 'has a name that is not a valid Unicode string');
  // Key rules are reported after the asset fields (see toBson): the first is kept.
  if (keyRule.error) return;
  // The driver refuses these before sending, and would refuse the whole batch.
  if (key === '') keyRule.error = bad('ERR_ASSET_KEY', field, 'has an empty name, which the MongoDB driver refuses to send');
  else if (key.startsWith('$')) keyRule.error = bad('ERR_ASSET_KEY', field, "starts with '$': operator keys are never stored");
  else if (key.includes('.')) keyRule.error = bad('ERR_ASSET_KEY', field, "contains '.': dotted keys are never stored");
}

/** object[key]; a getter or Proxy trap that throws becomes a ValidationError. */
function read(object, key, field) {
  try {
    return object[key];
  } catch (err) {
    const e = bad('ERR_ASSET_UNSERIALIZABLE', field, `could not be read: ${err.message}`);
    e.cause = err;
    throw e;
  }
}

/**
 * The upload's top-level values, each read once and checked: what is
 * serialized, so a getter cannot hand the check one value and the serializer
 * another. Dates and ObjectIds are copied, so a caller changing theirs later
 * cannot change the document we return. `flat` says whether every value is
 * one that BSON gives back unchanged (string, number, boolean, null, Date,
 * ObjectId) and none is a field the addon owns: then the view, completed with
 * _id and those fields, is the stored document, returned without decoding it
 * (lib/batch_results.js).
 */
function topLevelView(data, where, keyRule, fields) {
  // _id first, as stored. Left undefined (so not serialized) unless the
  // caller gives one; when the addon makes it, lib/batch_results.js sets it
  // and the view becomes the returned document.
  const view = { _id: undefined };
  let flat = true;
  let ancestors = null; // made for the first nested object: most uploads have none
  for (const key of Object.keys(data)) {
    const field = join(where, key);
    checkKey(key, field, keyRule);
    let value = read(data, key, field);
    if (value === undefined) continue; // not stored (ignoreUndefined)
    // The order by the one orderId rule, before any value rule can name it otherwise.
    if (key === fields.orderId) value = checkOrderId(value, field);
    if (value instanceof Date) {
      // Its time read once, by Date's own method: a subclass cannot show the
      // check one time and the serializer another.
      value = new Date(dateTime(value));
      if (Number.isNaN(value.getTime())) throw bad('ERR_ASSET_VALUE', field, 'is an invalid Date');
    } else if (typeof value === 'object' && value !== null) {
      if (value._bsontype !== undefined && isForeign(value)) value = ownValues(value, field, foreignRefused);
      if (ancestors === null) ancestors = new Set([data]);
      inspect(value, field, 1, ancestors, keyRule);
      if (value instanceof ObjectId) value = new ObjectId(Buffer.from(value.id));
      else flat = false;
    } else {
      inspect(value, field, 1, ancestors, keyRule);
      if (typeof value === 'bigint') flat = false; // stored as int64, read back as a number
    }
    if (key === '__proto__') {
      Object.defineProperty(view, key, { value, enumerable: true, writable: true, configurable: true });
      flat = false;
      continue;
    }
    if (fields.owned.includes(key)) flat = false; // replaced, and moved to the end, in the stored document
    view[key] = value;
  }
  return { view, flat };
}

/**
 * The one not-an-object rule, for every entry point. Plain mode takes a plain
 * object, what it serializes as given; model mode (`anyObject`) any object
 * the model's constructor takes, as save() does.
 */
function checkIsUpload(data, where = '', anyObject = false) {
  if (anyObject ? data === null || typeof data !== 'object' || Array.isArray(data) : !isPlainObject(data)) {
    throw validationError('ERR_ASSET_NOT_OBJECT', where, `${where || 'data'} must be ${anyObject ? 'an' : 'a plain'} object, got ${describe(data)}`);
  }
}

/**
 * Validates and serializes one upload; `where` prefixes field names. Returns
 * { bytes, values, view }: `values` its top-level values as serialized,
 * `view` the same when the stored document can be rebuilt from them (see
 * topLevelView), else null.
 */
function prepareUpload(data, where = '', fields = DEFAULT_FIELDS) {
  checkIsUpload(data, where);
  // error: the first key rule broken; foreign: a nested value of another bson major seen.
  const keyRule = { error: null, foreign: false };
  let bytes;
  let top;
  try {
    top = topLevelView(data, where, keyRule, fields);
    // The asset fields before the key rules: { orderId: { $ne: null } } is an
    // orderId problem.
    checkAssetFields(top.view, where, fields);
    if (keyRule.error) throw keyRule.error;
    if (keyRule.foreign) top.view = ownValues(top.view, where, foreignRefused);
    bytes = BSON.serialize(top.view, { checkKeys: false, ignoreUndefined: true });
  } catch (err) {
    if (err.name === 'ValidationError') throw err;
    // The serializer's buffer ends a little past 16 MiB; past it, it throws a
    // bare RangeError.
    if (err.name === 'RangeError' && top && BSON.calculateObjectSize(top.view, { ignoreUndefined: true }) > MAX_BSON_SIZE) {
      throw tooLarge(where);
    }
    const e = validationError('ERR_ASSET_UNSERIALIZABLE', where, `${where || 'data'} cannot be stored: ${err.message}`);
    e.cause = err;
    throw e;
  }
  if (bytes.length + fields.overhead > MAX_BSON_SIZE) throw tooLarge(where);
  return { bytes, values: top.view, view: top.flat ? top.view : null };
}

/** Validates and serializes one upload: its BSON bytes. */
const toBson = (data, where, fields) => prepareUpload(data, where, fields).bytes;

function tooLarge(where) {
  return validationError('ERR_ASSET_TOO_LARGE', where, `${where || 'document'} is over MongoDB's 16 MiB limit once versioned`);
}

const foreignRefused = (field, err) => bad('ERR_ASSET_VALUE', field, err.message);

// Blank-looking: nothing but white space (all that String.prototype.trim
// removes, a no-break space too) and invisible format characters (a zero-width
// space, a byte order mark). One rule for orderId and fileName everywhere.
const isBlank = (s) => /^[\s\p{Cf}]*$/u.test(s);

function checkAssetFields(data, where, fields) {
  const { orderId: ORDER, fileName: FILE } = fields;
  const at = (field) => join(where, field);
  const orderId = own(data, ORDER);
  const fileName = own(data, FILE);
  const fileSize = own(data, 'fileSize');
  checkOrderId(orderId, at(ORDER));
  if (fileName === undefined || fileName === null) throw bad('ERR_ASSET_FILE_NAME', at(FILE), 'is required');
  if (typeof fileName !== 'string') throw bad('ERR_ASSET_FILE_NAME', at(FILE), 'must be a string');
  if (isBlank(fileName)) throw bad('ERR_ASSET_FILE_NAME', at(FILE), 'must not be empty');
  if (fileSize !== undefined && fileSize !== null && !isFileSize(fileSize)) {
    throw bad('ERR_ASSET_FILE_SIZE', at('fileSize'), 'must be a non-negative integer');
  }
}

/** A non-negative integer as BSON can hold it: a number up to 2^53, a BigInt or Long in int64, an Int32. */
function isFileSize(v) {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 && v <= 2 ** 53;
  if (typeof v === 'bigint') return v >= 0n && v <= INT64_MAX;
  if (v && typeof v === 'object') {
    if (v._bsontype === 'Int32') return v.value >= 0;
    if (v._bsontype === 'Long') return !v.isNegative();
    if (v._bsontype === 'Double') return isFileSize(v.value);
  }
  return false;
}

// Also an ObjectId from another copy of the bson package.
const isObjectId = (v) => v instanceof ObjectId || Boolean(v && v._bsontype === 'ObjectId');

/**
 * A key that groups uploads of the same order: a string order is its own key
 * (no new string per upload), an ObjectId its hex after a NUL, which no
 * string orderId may hold (checkAssetFields), so the two never meet.
 */
function orderKey(orderId) {
  return isObjectId(orderId) ? `\0${orderId.toHexString()}` : String(orderId);
}

/**
 * The one rule for an orderId, at every entry point (an upload's field, the
 * orderId of createManyWithAtomicVersion and getNextVersion, a model's cast
 * value): a string that is not blank-looking and holds no NUL (orderKey), or
 * an ObjectId. `field` is the name the ValidationError gives.
 */
/**
 * The one orderId rule, for every entry point. Returns the order as it is
 * stored: an ObjectId of another bson major (Mongoose 8 brings bson 6)
 * becomes ours; an object that only claims to be one is refused.
 */
function checkOrderId(orderId, field = 'orderId') {
  if (orderId === undefined || orderId === null) throw bad('ERR_ASSET_ORDER_ID', field, 'is required');
  if (orderId instanceof ObjectId) return orderId;
  if (orderId._bsontype === 'ObjectId') {
    let own;
    try {
      own = isForeign(orderId) ? ownValues(orderId, field, foreignRefused) : undefined;
    } catch (err) {
      throw bad('ERR_ASSET_ORDER_ID', field, `is not a valid ObjectId: ${err.message}`);
    }
    if (own instanceof ObjectId) return own;
    throw bad('ERR_ASSET_ORDER_ID', field, 'is not a valid ObjectId');
  }
  if (typeof orderId !== 'string') {
    throw bad('ERR_ASSET_ORDER_ID', field, `must be a non-empty string or an ObjectId, got ${describe(orderId)} (a query object such as { $ne: null } is refused)`);
  }
  if (isBlank(orderId)) throw bad('ERR_ASSET_ORDER_ID', field, 'must not be empty or blank');
  if (orderId.includes('\0')) throw bad('ERR_ASSET_ORDER_ID', field, 'must not contain a NUL character');
  if (!orderId.isWellFormed()) throw bad('ERR_ASSET_ORDER_ID', field, 'is a string with a lone surrogate (not valid Unicode)');
  return orderId;
}

module.exports = { prepareUpload, toBson, orderKey, checkOrderId, checkIsUpload, isPlainObject, own, fieldPlan, DEFAULT_FIELDS };
