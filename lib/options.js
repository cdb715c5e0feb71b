'use strict';

// The repository's options: defaults, checks, and the limits they are checked
// against. A bad option is a ValidationError naming it, before anything runs.
const { validationError } = require('./errors');
const { limits } = require('./native'); // the bounds, defined once in C (src/core/limits.h)

const DEFAULTS = {
  uri: undefined, // process.env.MONGODB_URI when absent
  dbName: undefined, // the URI's database, else "test"
  collection: 'assets',
  maxRetries: 5, // as the reference design
  coalesce: true, // one insertMany per burst of uploads
  maxBatchSize: 1000, // uploads per insertMany
  writeConcern: undefined, // { w, j, wtimeoutMS }, passed to the driver
  recoveryTimeMS: 60000, // how long a lost reply may take to settle before OutcomeUnknownError
  fields: undefined, // { orderId, fileName, version, versionLabel }: the app's names for the four (see parseFields)
};

// The four fields the addon reads or writes, by role; option "fields" maps
// them to the app's names.
const FIELD_ROLES = ['orderId', 'fileName', 'version', 'versionLabel'];
// Names the addon writes itself, or that MongoDB gives a meaning.
const RESERVED = new Set(['_id', 'createdAt', 'updatedAt']);

/**
 * The app's name for each of the four fields, from option "fields" (a
 * partial map; versionLabel may be null: no label stored). Every problem is
 * reported at once, in one error.
 */
function parseFields(given) {
  const names = { orderId: 'orderId', fileName: 'fileName', version: 'version', versionLabel: 'versionLabel' };
  if (given === undefined) return names;
  if (given === null || typeof given !== 'object' || Array.isArray(given)) {
    throw validationError('ERR_ASSET_OPTION', 'fields', 'option "fields" must be an object such as { orderId: "bugId", fileName: "originalName" }');
  }
  const problems = [];
  for (const key of Object.keys(given)) {
    if (!FIELD_ROLES.includes(key)) problems.push([`fields.${key}`, `option "fields.${key}" is unknown; known: ${FIELD_ROLES.join(', ')}`]);
  }
  for (const role of FIELD_ROLES) {
    const name = given[role];
    if (name === undefined) continue;
    if (name === null && role === 'versionLabel') {
      names[role] = null;
      continue;
    }
    if (
      typeof name !== 'string' ||
      name === '' ||
      name.startsWith('$') ||
      name.includes('.') ||
      name.includes('\0') ||
      !name.isWellFormed() ||
      Buffer.byteLength(name) > limits.maxFieldName
    ) {
      problems.push([
        `fields.${role}`,
        `option "fields.${role}" must be a top-level field name (a string of 1 to ${limits.maxFieldName} bytes without "." or a leading "$")${role === 'versionLabel' ? ', or null for no label' : ''}, got ${JSON.stringify(name) ?? String(name)}`,
      ]);
    } else if (RESERVED.has(name)) {
      problems.push([`fields.${role}`, `option "fields.${role}" cannot be "${name}": the addon writes it itself`]);
    } else {
      names[role] = name;
    }
  }
  const taken = new Map();
  for (const role of FIELD_ROLES) {
    const name = names[role];
    if (name === null) continue;
    if (taken.has(name)) problems.push([`fields.${role}`, `option "fields.${role}" is "${name}", already the name of ${taken.get(name)}`]);
    else taken.set(name, role);
  }
  if (problems.length > 0) {
    const err = validationError(
      'ERR_ASSET_OPTION',
      problems[0][0],
      problems.length === 1 ? problems[0][1] : `option "fields" has ${problems.length} problems: ${problems.map(([, m]) => m).join('; ')}`,
    );
    err.problems = problems.map(([field, message]) => ({ field, message }));
    throw err;
  }
  return names;
}

function checkInteger(options, name, min, max) {
  const v = options[name];
  if (!Number.isInteger(v) || v < min || v > max) {
    throw validationError('ERR_ASSET_OPTION', name, `option "${name}" must be an integer from ${min} to ${max}, got ${String(v)}`);
  }
}

/**
 * The options in force, from the caller's; throws a ValidationError naming a
 * bad one. In model mode (`modelMode`), `uri` may be missing: it is read
 * from the model's connection when that opens.
 */
function parseOptions(input, { modelMode = false } = {}) {
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
  if (options.uri === undefined && !modelMode) options.uri = process.env.MONGODB_URI;
  if (!(modelMode && options.uri === undefined) && (typeof options.uri !== 'string' || options.uri === '')) {
    throw validationError(
      'ERR_ASSET_OPTION',
      'uri',
      options.uri === undefined
        ? 'option "uri" is required: pass the MongoDB connection string as { uri }, or set MONGODB_URI, before constructing the repository. ' +
            "An app whose Mongoose connection opens later passes { model } instead: model mode reads the model's connection string when it opens"
        : `option "uri" must be a non-empty connection string, got ${typeof options.uri === 'string' ? 'an empty string' : typeof options.uri}`,
    );
  }
  options.fields = parseFields(options.fields);
  if (options.dbName !== undefined && (typeof options.dbName !== 'string' || options.dbName === '')) {
    throw validationError('ERR_ASSET_OPTION', 'dbName', 'option "dbName" must be a non-empty string');
  }
  if (typeof options.collection !== 'string' || options.collection === '') {
    throw validationError('ERR_ASSET_OPTION', 'collection', 'option "collection" must be a non-empty string');
  }
  // C strings end at a NUL: "assets\0x" would silently be "assets".
  for (const name of ['dbName', 'collection']) {
    if (typeof options[name] === 'string' && options[name].includes('\0')) {
      throw validationError('ERR_ASSET_OPTION', name, `option "${name}" must not contain a NUL character`);
    }
  }
  checkInteger(options, 'maxRetries', 0, limits.maxRetries);
  checkInteger(options, 'maxBatchSize', 1, limits.maxBatch);
  checkInteger(options, 'recoveryTimeMS', 0, limits.maxRecoveryMs);
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

module.exports = { parseOptions, parseFields, DEFAULTS, FIELD_ROLES };
