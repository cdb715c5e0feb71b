'use strict';

// Retries exhausted on the version index rejects with code 11000, as the
// reference design's last E11000 did; code written for the driver's
// duplicate-key error also reads `index`, `keyPattern` and `keyValue`, so the
// error carries them as the driver's would for an insertOne.
const KEY_PATTERN = Object.freeze({ orderId: 1, version: 1 });

/** Adds the driver's duplicate-key fields to a VersionConflictError; returns it. */
function withKeyDetails(err, orderId) {
  if (!err || err.code !== 11000 || err.reason !== 'RETRIES_EXHAUSTED') return err;
  const keyValue = { orderId };
  // The last collision's version, where the server's message names it
  // (MongoDB: "dup key: { orderId: …, version: 3 }"); FerretDB's does not.
  const version = /version: (\d+)/.exec(err.message);
  if (version) keyValue.version = Number(version[1]);
  err.index = 0;
  err.keyPattern = { ...KEY_PATTERN };
  err.keyValue = keyValue;
  return err;
}

module.exports = { withKeyDetails, KEY_PATTERN };
