'use strict';

// Child process of test/errors.test.js: hands every native function garbage
// and prints, as JSON, what each call threw or rejected with. A crash of the
// addon ends this process with a signal, which the test sees.
//
//   node native-garbage.js early   calls before setErrorClasses (the addon
//                                  loaded directly, not through lib/native.js)
//   node native-garbage.js garbage every function through lib/native.js
const os = require('os');
const { sourceBuild } = require('../../lib/prebuild');

const describe = (e) =>
  e instanceof Error || (e && typeof e === 'object')
    ? { name: e.name, code: e.code, field: e.field, ...(errors && { assetError: e instanceof errors.AssetError }) }
    : { value: String(e) };
let errors = null;

async function outcome(fn) {
  try {
    const value = fn();
    if (value && typeof value.then === 'function') {
      await value;
      return { ok: true };
    }
    return { ok: true };
  } catch (e) {
    return describe(e);
  }
}

const GARBAGE = [
  undefined,
  null,
  0,
  -1,
  NaN,
  Infinity,
  2 ** 60,
  '',
  'x',
  true,
  {},
  [],
  [1, 2],
  () => 1,
  Symbol('s'),
  10n,
  Buffer.alloc(0),
  Buffer.from([5, 0, 0, 0, 0]),
  new Float64Array([1]),
  new Float64Array([NaN]),
  new Uint8Array(3),
  new SharedArrayBuffer(8),
  new Proxy({}, {}),
  Object.create(null),
];

async function early() {
  const binding = { exports: {} };
  // The binary lib/native.js would pick when told (the sanitizers' build), opened as it would open it.
  const file = process.env.ATOMIC_ASSET_VERSION_ADDON || sourceBuild;
  const deepBind = process.env.ATOMIC_ASSET_VERSION_NO_DEEPBIND ? 0 : os.constants.dlopen.RTLD_DEEPBIND || 0;
  process.dlopen(binding, file, os.constants.dlopen.RTLD_NOW | deepBind);
  const b = binding.exports;
  const seen = {
    construct: await outcome(() => new b.NativeRepository(process.env.MONGODB_URI || 'mongodb://127.0.0.1:1', 'd', 'c')),
    threadpool: await outcome(() => b.threadpool()),
    setErrorClassesEmpty: await outcome(() => b.setErrorClasses({})),
    setErrorClassesGarbage: await outcome(() => b.setErrorClasses(42)),
    setErrorClassesWrong: await outcome(() => b.setErrorClasses({ ...require('../../lib/errors'), ServerError: class extends Error {} })),
    // Still refused: the wrong classes above were not taken.
    threadpoolAfter: await outcome(() => b.threadpool()),
  };
  process.stdout.write(JSON.stringify(seen));
}

async function garbage() {
  const native = require('../../lib/native');
  errors = require('../../lib/errors');
  const uri = process.env.MONGODB_URI;
  const results = [];
  const record = async (what, fn) => results.push({ what, ...(await outcome(fn)) });
  for (const g of GARBAGE) {
    for (let i = 0; i < 6; i++) {
      const args = [uri, 'aav_garbage', 'garbage', undefined, undefined, false];
      args[i] = g;
      await record(`NativeRepository arg ${i}`, () => {
        const r = new native.NativeRepository(...args);
        return r.close();
      });
    }
  }
  const r = new native.NativeRepository(uri, 'aav_garbage', 'garbage');
  for (const g of GARBAGE) {
    await record('readHighest', () => r.readHighest(g));
    for (let i = 0; i < 4; i++) {
      const args = [Buffer.from([5, 0, 0, 0, 0]), new Float64Array([5]), 0, 0];
      args[i] = g;
      await record(`insertBatch arg ${i}`, () => r.insertBatch(...args));
    }
    await record('ensureIndex', () => r.ensureIndex(g));
    await record('setErrorClasses', () => native.setErrorClasses(g));
  }
  await record('close', () => r.close(1, 2, 3));
  await record('close again', () => r.close());
  await record('readHighest after close', () => r.readHighest(require('bson').BSON.serialize({ orderId: 'o' })));
  process.stdout.write(JSON.stringify(results));
}

(process.argv[2] === 'early' ? early() : garbage()).catch((e) => {
  console.error(e);
  process.exit(2);
});
