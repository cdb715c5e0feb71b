'use strict';

const { BSON } = require('bson');

// Every error this package raises is an AssetError with a stable `code`.
// Server errors keep the server's numeric code (11000 stays 11000, so callers
// written for the reference design keep working); our own codes are strings
// starting with ERR_ASSET_. The addon builds its errors itself from these
// classes (lib/native.js hands them over: src/napi/errors.c).

const own = (target, key, value) => Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });

class AssetError extends Error {
  /**
   * props are copied onto the error; props.idBytes (BSON { _id }, from the
   * addon) becomes `_id`. Defined, not assigned: an accessor an app put on
   * Error.prototype cannot make building an error throw.
   */
  constructor(message, props) {
    super(message);
    own(this, 'name', new.target.name);
    if (props) {
      const { idBytes, ...rest } = props;
      for (const key of Object.keys(rest)) own(this, key, rest[key]);
      if (idBytes !== undefined) own(this, '_id', BSON.deserialize(idBytes)._id);
    }
  }
}

/** Bad input or bad options; nothing was written. `field` names the culprit. */
class ValidationError extends AssetError {}
/** Every attempt collided with a concurrent writer (code 11000). */
class VersionConflictError extends AssetError {}
/** A unique index other than (orderId, version) refused the upload. */
class DuplicateKeyError extends AssetError {}
/** The server refused the operation. */
class ServerError extends AssetError {}
/** The server could not be reached, or the connection broke. */
class ConnectionError extends AssetError {}
/** The (orderId, version) index is missing and cannot be made, or is unsafe. */
class IndexError extends AssetError {}
/** The repository is closed, or its environment is shutting down. */
class RepositoryClosedError extends AssetError {}
/** createManyWithAtomicVersion stored some items but not all; see `results`. */
class BatchError extends AssetError {}
/**
 * The upload may or may not be stored (a reply lost and not recovered in
 * time, a write concern not confirmed). Not retriable as a new upload:
 * settle it by calling createWithAtomicVersion again with the same data and
 * this error's `_id`.
 */
class OutcomeUnknownError extends AssetError {}

const classes = {
  AssetError,
  ValidationError,
  VersionConflictError,
  DuplicateKeyError,
  ServerError,
  ConnectionError,
  IndexError,
  RepositoryClosedError,
  BatchError,
  OutcomeUnknownError,
};

function validationError(code, field, message) {
  return new ValidationError(message, { code, field });
}

/**
 * The error for one upload: the addon's (one object per upload already), or a
 * copy of an error that several uploads share, with the shared one as `cause`
 * (see sharedError).
 */
function errorForUpload(error, orderId) {
  const own = shared.has(error) ? new error.constructor(error.message, { ...error, cause: error }) : error;
  if (orderId !== undefined && own !== null && typeof own === 'object') own.orderId = orderId;
  return own;
}

// Errors that stand for several uploads (a batch refused before anything was
// sent): errorForUpload copies them per upload.
const shared = new WeakSet();

/** Marks `error` as shared by several uploads; returns it. */
function sharedError(error) {
  if (error !== null && typeof error === 'object') shared.add(error);
  return error;
}

module.exports = { ...classes, classes, validationError, errorForUpload, sharedError };
