'use strict';

const { BSON } = require('bson');

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

function makeError(kind, message, props) {
  const ErrorClass = classes[kind] || AssetError;
  return new ErrorClass(message, props);
}

function validationError(code, field, message) {
  return new ValidationError(message, { code, field });
}

/**
 * The error for one upload, from what the addon reports ({ kind, message,
 * code, … , cause?, id? }: data, so every upload gets an object of its own),
 * or from an error that several uploads share (then a copy, with the shared
 * one as `cause`).
 */
function errorForUpload(error, orderId) {
  if (error instanceof Error) {
    const own = new (error.constructor)(error.message, { ...error, cause: error });
    if (orderId !== undefined) own.orderId = orderId;
    return own;
  }
  return errorFromData(error, orderId);
}

function errorFromData(data, orderId) {
  const { kind, message, cause, id, ...props } = data;
  if (cause) props.cause = errorFromData(cause);
  if (id) props._id = BSON.deserialize(id)._id;
  if (orderId !== undefined) props.orderId = orderId;
  return makeError(kind, message, props);
}

/** What the addon throws or rejects with is data (src/errors.c); this makes it an error. */
function asError(value) {
  if (value && typeof value === 'object' && !(value instanceof Error) && typeof value.kind === 'string') {
    return errorFromData(value);
  }
  return value;
}

module.exports = { ...classes, makeError, validationError, errorForUpload, errorFromData, asError };
