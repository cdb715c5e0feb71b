'use strict';

// Values made by another major of the `bson` package than ours. Its
// serializer refuses them ("Unsupported BSON version, bson types must be from
// bson 7.x.x"), yet an app on Mongoose 8 hands us bson 6 values and one on
// Mongoose 9 or the driver 7 hands us bson 7's. Each is rebuilt here as our
// own type from the public properties both majors share, so it is stored as
// the same BSON type with the same bytes.
const bson = require('bson');

const VERSION = Symbol.for('@@mdb.bson.version');
const OURS = new bson.ObjectId()[VERSION];

/** True for a BSON value our serializer would refuse for its major. */
const isForeign = (value) => value[VERSION] !== OURS;

const copy = (bytes) => Buffer.from(bytes.buffer ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes);

// By _bsontype: our value from the foreign one. `nested` converts a value
// inside (a Code's scope, a DBRef's oid and fields).
const REBUILD = {
  ObjectId: (v) => new bson.ObjectId(copy(v.id)),
  Decimal128: (v) => new bson.Decimal128(copy(v.bytes)),
  Binary: (v) => new bson.Binary(copy(v.buffer.subarray(0, v.position)), v.sub_type),
  Long: (v) => new bson.Long(v.low, v.high, v.unsigned),
  Timestamp: (v) => new bson.Timestamp({ t: v.high >>> 0, i: v.low >>> 0 }),
  Int32: (v) => new bson.Int32(v.value),
  Double: (v) => new bson.Double(v.value),
  BSONRegExp: (v) => new bson.BSONRegExp(v.pattern, v.options),
  BSONSymbol: (v) => new bson.BSONSymbol(v.value),
  MinKey: () => new bson.MinKey(),
  MaxKey: () => new bson.MaxKey(),
  Code: (v, nested) => new bson.Code(v.code, v.scope == null ? v.scope : nested(v.scope)),
  DBRef: (v, nested) => new bson.DBRef(v.collection, nested(v.oid), v.db, v.fields && nested(v.fields)),
};

/**
 * Our own form of a foreign BSON value; throws a plain Error saying why when
 * it has none (the caller names the field).
 */
function rebuild(value, nested) {
  const make = Object.hasOwn(REBUILD, value._bsontype) ? REBUILD[value._bsontype] : undefined;
  if (!make) throw new Error(`is a ${String(value._bsontype)} from bson ${String(value[VERSION] || 'before 5')}, which cannot be converted to bson ${OURS}`);
  try {
    return make(value, nested);
  } catch (err) {
    throw new Error(`is a ${value._bsontype} from bson ${String(value[VERSION] || 'before 5')} that could not be read: ${err.message}`, { cause: err });
  }
}

/**
 * `value` with every foreign BSON value inside it rebuilt as ours: plain
 * objects, arrays and Maps are copied where something inside them changed.
 * `fail(path, err)` turns a refusal into the caller's error.
 */
function ownValues(value, path, fail) {
  if (value === null || typeof value !== 'object') return value;
  if (value._bsontype !== undefined) {
    if (!isForeign(value)) return value;
    try {
      return rebuild(value, (inner) => ownValues(inner, path, fail));
    } catch (err) {
      throw fail(path, err);
    }
  }
  const at = (key) => (path ? `${path}.${key}` : String(key));
  if (Array.isArray(value)) {
    let out = null;
    value.forEach((item, i) => {
      const mine = ownValues(item, at(i), fail);
      if (mine !== item && out === null) out = value.slice();
      if (out !== null) out[i] = mine;
    });
    return out || value;
  }
  if (value instanceof Map) {
    let changed = false;
    const out = new Map();
    for (const [k, item] of value) {
      const mine = ownValues(item, at(k), fail);
      changed = changed || mine !== item;
      out.set(k, mine);
    }
    return changed ? out : value;
  }
  if (value instanceof Date || value instanceof RegExp || ArrayBuffer.isView(value)) return value;
  let out = null;
  for (const key of Object.keys(value)) {
    const item = value[key];
    const mine = ownValues(item, at(key), fail);
    if (mine !== item && out === null) {
      out = Object.getPrototypeOf(value) === null ? Object.create(null) : {};
      for (const k of Object.keys(value)) Object.defineProperty(out, k, { value: value[k], enumerable: true, writable: true, configurable: true });
    }
    if (out !== null) Object.defineProperty(out, key, { value: mine, enumerable: true, writable: true, configurable: true });
  }
  return out || value;
}

module.exports = { isForeign, ownValues, BSON_MAJOR: OURS };
