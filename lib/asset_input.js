'use strict';

// Turns what a caller hands us into BSON bytes the addon accepts, or a
// ValidationError naming the field. Serialization uses the `bson` package,
// the one the official driver and Mongoose use, so types map exactly as they
// do there; the addon then checks keys, depth, size and the asset fields.
const { BSON, ObjectId } = require('bson');
const native = require('./native');
const { validationError } = require('./errors');

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

/** Serializes and validates one upload; `where` prefixes field names. */
function toBson(data, where = '') {
  if (!isPlainObject(data)) {
    throw validationError('ERR_ASSET_NOT_OBJECT', where, `${where || 'data'} must be a plain object, got ${describe(data)}`);
  }
  let bytes;
  try {
    bytes = BSON.serialize(data, { checkKeys: false, ignoreUndefined: true });
  } catch (err) {
    const e = validationError('ERR_ASSET_UNSERIALIZABLE', where, `${where || 'data'} cannot be stored: ${err.message}`);
    e.cause = err;
    throw e;
  }
  const problem = native.validateAsset(bytes);
  if (problem) {
    const field = where ? `${where}.${problem.field}`.replace(/\.$/, '') : problem.field;
    throw validationError(problem.code, field, where ? `${where}: ${problem.message}` : problem.message);
  }
  return bytes;
}

/** A key that groups uploads of the same order (string or ObjectId). */
function orderKey(orderId) {
  return orderId instanceof ObjectId || (orderId && orderId._bsontype === 'ObjectId')
    ? `o:${orderId.toHexString()}`
    : `s:${orderId}`;
}

function checkOrderId(orderId, field = 'orderId') {
  const ok =
    (typeof orderId === 'string' && orderId.trim() !== '' && !orderId.includes('\0')) ||
    orderId instanceof ObjectId ||
    (orderId && orderId._bsontype === 'ObjectId');
  if (!ok) {
    throw validationError(
      'ERR_ASSET_ORDER_ID',
      field,
      `field "${field}" must be a non-empty string or an ObjectId, got ${describe(orderId)}`,
    );
  }
}

module.exports = { toBson, orderKey, checkOrderId, isPlainObject };
