'use strict';

// Every error this package raises is an AssetError with a stable `code`.
// Server errors keep the server's numeric code (11000 stays 11000, so callers
// written for the reference design keep working); our own codes are strings
// starting with ERR_ASSET_.

class AssetError extends Error {
  constructor(message, props) {
    super(message);
    this.name = new.target.name;
    if (props) Object.assign(this, props);
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
};

/** Called by the native addon (src/errors.c) to build its errors. */
function makeError(kind, message, props) {
  const ErrorClass = classes[kind] || AssetError;
  return new ErrorClass(message, props);
}

function validationError(code, field, message) {
  return new ValidationError(message, { code, field });
}

module.exports = { ...classes, makeError, validationError };
