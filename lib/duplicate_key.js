'use strict';

// Retries exhausted on the version index rejects with code 11000, as the
// reference design's last E11000 did; code written for the driver's
// duplicate-key error also reads `index`, `keyPattern` and `keyValue`, so the
// error carries them as the driver's would for an insertOne.
// Under the app's field names (option "fields"): { [order]: 1, [version]: 1 }.
const KEY_PATTERN = Object.freeze({ orderId: 1, version: 1 });
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Adds the driver's duplicate-key fields to a VersionConflictError; returns it. */
function withKeyDetails(err, orderId, fields = { orderId: 'orderId', version: 'version' }) {
  if (!err || err.code !== 11000 || err.reason !== 'RETRIES_EXHAUSTED') return err;
  const keyValue = { [fields.orderId]: orderId };
  // The last collision's version, where the server's message names it
  // (MongoDB: "dup key: { orderId: …, version: 3 }"); FerretDB's does not.
  const version = new RegExp(`(?<![\\w$])${escape(fields.version)}: (\\d+)`).exec(err.message);
  if (version) keyValue[fields.version] = Number(version[1]);
  err.index = 0;
  err.keyPattern = { [fields.orderId]: 1, [fields.version]: 1 };
  err.keyValue = keyValue;
  return err;
}

// A unique index's refusal, in the words of each server: MongoDB's E11000,
// FerretDB v1 over SQLite ("UNIQUE constraint failed") and over PostgreSQL
// ("duplicate key value…", or SQLSTATE 23505 when an index build meets
// duplicates).
const UNIQUE_REFUSAL = /E11000|duplicate key|UNIQUE constraint|could not create unique index|SQLSTATE 23505/i;

module.exports = { withKeyDetails, KEY_PATTERN, UNIQUE_REFUSAL };
