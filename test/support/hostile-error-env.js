'use strict';

// Run by test/errors.test.js in a process of its own: an error that cannot be
// built as its class must not take its batch down. MODE=prototype puts a
// getter-only accessor on Error.prototype (an app's doing), named like a
// property the addon sets; MODE=classes hands the addon classes whose
// constructor throws. One batch holds two uploads that are stored (orders Z,
// A) and one a second unique index refuses (order B). Prints what each call
// answered and what the collection holds.
// argv: uri dbName collection
const [uri, dbName, collection] = process.argv.slice(2);
const native = require('../../lib/native');
const errors = require('../../lib/errors');
const { AssetRepository } = require('../..');

let uncaught = null;
process.on('uncaughtException', (e) => {
  uncaught = String(e && e.message);
});
const settle = (p) =>
  p.then(
    (value) => ({ stored: value.version }),
    (e) => ({ name: e.name, code: e.code, isAssetError: e instanceof errors.AssetError, cause: e.cause ? String(e.cause.message) : undefined }),
  );
const within = (p, ms) => Promise.race([p, new Promise((r) => setTimeout(() => r('pending'), ms))]);

(async () => {
  const repo = new AssetRepository({ uri, dbName, collection });
  await repo.createWithAtomicVersion({ orderId: 'B', fileName: 'first', checksum: 'same' });
  if (process.env.MODE === 'prototype') {
    for (const prop of ['retriable', 'driverDomain']) Object.defineProperty(Error.prototype, prop, { get: () => undefined, configurable: true });
  } else {
    const Throwing = class extends errors.AssetError {
      constructor() {
        super('x');
        throw new Error('constructor threw');
      }
    };
    native.setErrorClasses({ ...errors, DuplicateKeyError: Throwing });
  }
  const calls = [
    { orderId: 'Z', fileName: 'z' },
    { orderId: 'A', fileName: 'a' },
    { orderId: 'B', fileName: 'dup', checksum: 'same' },
  ].map((d) => settle(repo.createWithAtomicVersion(d)));
  const answers = await within(Promise.all(calls), 10000);
  const closed = await within(
    repo.close().then(() => 'closed'),
    5000,
  );
  console.log(JSON.stringify({ answers, closed, uncaught }));
  process.exit(0);
})().catch((e) => {
  console.error(e);
  process.exit(2);
});
