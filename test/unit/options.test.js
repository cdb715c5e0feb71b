'use strict';

// Option parsing, without a server.
const { parseOptions, DEFAULTS } = require('../../lib/options');

const uri = 'mongodb://127.0.0.1:1/';

test('defaults fill what the caller leaves out; MONGODB_URI stands in for uri', () => {
  const fields = { orderId: 'orderId', fileName: 'fileName', version: 'version', versionLabel: 'versionLabel' };
  expect(parseOptions({ uri })).toEqual({ ...DEFAULTS, uri, fields });
  const saved = process.env.MONGODB_URI;
  process.env.MONGODB_URI = uri;
  try {
    expect(parseOptions().uri).toBe(uri);
  } finally {
    if (saved === undefined) delete process.env.MONGODB_URI;
    else process.env.MONGODB_URI = saved;
  }
});

test.each([
  [{ uri, nope: 1 }, 'nope', /unknown option "nope"/],
  [{ uri: '' }, 'uri', /must be a non-empty connection string/],
  [{ uri, fields: { orderId: 'a.b' } }, 'fields.orderId', /top-level field name/],
  [{ uri, fields: { orderId: 'x'.repeat(61) } }, 'fields.orderId', /1 to 60 bytes/],
  [{ uri, fields: { version: '_id' } }, 'fields.version', /writes it itself/],
  [{ uri, fields: { fileName: null } }, 'fields.fileName', /top-level field name/],
  [{ uri, fields: { orderId: 'ref', fileName: 'ref' } }, 'fields.fileName', /already the name of orderId/],
  [{ uri, fields: [] }, 'fields', /must be an object/],
  [{ uri, dbName: '' }, 'dbName', /non-empty/],
  [{ uri, collection: 3 }, 'collection', /non-empty/],
  [{ uri, maxRetries: -1 }, 'maxRetries', /from 0 to 1000/],
  [{ uri, maxRetries: 1.5 }, 'maxRetries', /integer/],
  [{ uri, maxBatchSize: 0 }, 'maxBatchSize', /from 1 to 100000/],
  [{ uri, recoveryTimeMS: -5 }, 'recoveryTimeMS', /from 0/],
  [{ uri, coalesce: 'yes' }, 'coalesce', /boolean/],
  [{ uri, writeConcern: 'majority' }, 'writeConcern', /object/],
  [{ uri, writeConcern: { w: 0 } }, 'writeConcern.w', /must not be 0/],
  [{ uri, versionMemory: 0 }, 'versionMemory', /unknown option/],
])('%j is refused, naming %s', (input, field, message) => {
  let error;
  try {
    parseOptions(input);
  } catch (err) {
    error = err;
  }
  expect(error).toMatchObject({ name: 'ValidationError', code: 'ERR_ASSET_OPTION', field });
  expect(error.message).toMatch(message);
});

test('options must be an object', () => {
  expect(() => parseOptions(null)).toThrow(expect.objectContaining({ code: 'ERR_ASSET_OPTION' }));
  expect(() => parseOptions('mongodb://x')).toThrow(/must be an object/);
});
