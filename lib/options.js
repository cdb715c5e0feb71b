'use strict';

// The repository's options: defaults, checks, and the limits they are checked
// against. A bad option is a ValidationError naming it, before anything runs.
const { validationError } = require('./errors');

const DEFAULTS = {
  uri: undefined, // process.env.MONGODB_URI when absent
  dbName: undefined, // the URI's database, else "test"
  collection: 'assets',
  maxRetries: 5, // as the reference design
  coalesce: true, // one insertMany per burst of uploads
  versionMemory: undefined, // accepted for old callers; no effect: every batch reads the top
  maxBatchSize: 1000, // uploads per insertMany
  writeConcern: undefined, // { w, j, wtimeoutMS }, passed to the driver
  recoveryTimeMS: 60000, // how long a lost reply may take to settle before OutcomeUnknownError
};

function checkInteger(options, name, min, max) {
  const v = options[name];
  if (!Number.isInteger(v) || v < min || v > max) {
    throw validationError('ERR_ASSET_OPTION', name, `option "${name}" must be an integer from ${min} to ${max}, got ${String(v)}`);
  }
}

/** The options in force, from the caller's; throws a ValidationError naming a bad one. */
function parseOptions(input) {
  if (input !== undefined && (input === null || typeof input !== 'object')) {
    throw validationError('ERR_ASSET_OPTION', '', 'options must be an object');
  }
  const given = input || {};
  for (const key of Object.keys(given)) {
    if (!(key in DEFAULTS)) {
      throw validationError('ERR_ASSET_OPTION', key, `unknown option "${key}"; known: ${Object.keys(DEFAULTS).join(', ')}`);
    }
  }
  const options = { ...DEFAULTS };
  for (const [k, v] of Object.entries(given)) if (v !== undefined) options[k] = v;
  if (options.uri === undefined) options.uri = process.env.MONGODB_URI;
  if (typeof options.uri !== 'string' || options.uri === '') {
    throw validationError('ERR_ASSET_OPTION', 'uri', 'option "uri" is required (or set MONGODB_URI)');
  }
  if (options.dbName !== undefined && (typeof options.dbName !== 'string' || options.dbName === '')) {
    throw validationError('ERR_ASSET_OPTION', 'dbName', 'option "dbName" must be a non-empty string');
  }
  if (typeof options.collection !== 'string' || options.collection === '') {
    throw validationError('ERR_ASSET_OPTION', 'collection', 'option "collection" must be a non-empty string');
  }
  checkInteger(options, 'maxRetries', 0, 1000);
  checkInteger(options, 'maxBatchSize', 1, 100000);
  if (options.versionMemory !== undefined && typeof options.versionMemory !== 'boolean') {
    checkInteger(options, 'versionMemory', 0, 1e7);
  }
  checkInteger(options, 'recoveryTimeMS', 0, 86400000);
  if (typeof options.coalesce !== 'boolean') {
    throw validationError('ERR_ASSET_OPTION', 'coalesce', 'option "coalesce" must be a boolean');
  }
  if (options.writeConcern !== undefined && (options.writeConcern === null || typeof options.writeConcern !== 'object')) {
    throw validationError('ERR_ASSET_OPTION', 'writeConcern', 'option "writeConcern" must be an object such as { w: "majority" }');
  }
  if (options.writeConcern && options.writeConcern.w === 0) {
    // Unacknowledged: nothing could ever say whether an upload was stored.
    throw validationError('ERR_ASSET_OPTION', 'writeConcern.w', 'option "writeConcern.w" must not be 0: an upload needs an answer');
  }
  return options;
}


module.exports = { parseOptions, DEFAULTS };
