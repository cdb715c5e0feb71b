'use strict';

// Loads the compiled addon once per JavaScript environment. Native state is
// per environment too (src/runtime/addon_state.c), so Jest's module resets and
// worker_threads each get their own; only the driver set-up and the threadpool
// budget are process-wide (src/runtime/driver.c, src/runtime/threadpool_budget.c).
//
// Which binary (lib/prebuild.js): the prebuilt one in prebuilds/ when it fits
// this machine and loads, otherwise the source build in build/Release/.
// ATOMIC_ASSET_VERSION_BUILD_FROM_SOURCE=1 skips the prebuild;
// ATOMIC_ASSET_VERSION_ADDON=<file> loads that source build instead of either
// (scripts/test-sanitizers.sh: the AddressSanitizer build).
// `binding.kind` ('prebuilt' or 'source') and `binding.file` say which one
// was loaded, and why a prebuild was passed over; ATOMIC_ASSET_VERSION_DEBUG
// prints the same on stderr.
const os = require('os');
const { findPrebuild, sourceBuild } = require('./prebuild');
const errors = require('./errors');

// Both go through process.dlopen, never require: require caches a .node by
// file name, so Jest's module resets would share one environment's exports.
//
// The source build's libmongoc links the system's OpenSSL, while Node carries
// its own and exports its symbols. Loaded plainly, libmongoc's OpenSSL calls
// bind to Node's copy, which works only while both are the same release.
// RTLD_DEEPBIND makes the addon and its libraries resolve their own
// dependencies first, so libmongoc uses the system OpenSSL it was built against
// (test/tls.test.js checks the binding). Where the flag does not exist (not
// glibc), plain dlopen. The prebuild needs none of this: its OpenSSL is inside
// it and it exports only the Node-API entry points.
function open(file, deep) {
  const { RTLD_NOW, RTLD_DEEPBIND } = os.constants.dlopen;
  const module = { exports: {} };
  const useDeep = deep && RTLD_DEEPBIND !== undefined && !process.env.ATOMIC_ASSET_VERSION_NO_DEEPBIND;
  process.dlopen(module, file, useDeep ? RTLD_NOW | RTLD_DEEPBIND : RTLD_NOW);
  return module.exports;
}

// Debian's libmongoc initialises itself when it is loaded (a library constructor, before
// any of our code runs) and by default keeps its statistics counters in a
// shared-memory file, /dev/shm/mongoc-<pid>, that only mongoc_cleanup() removes,
// which a Node process never calls. So every process left one file behind, and
// a later process that happened to get the same pid printed "Falling back to
// malloc for counters" on stderr. Nothing here reads those counters (they are
// for the mongoc-stat tool), so they stay in process memory unless the user
// chose otherwise. A worker thread's process.env is its own copy: this reaches
// the real environment only on the main thread, where the addon is nearly
// always first loaded. (The prebuild has neither the constructor nor the counters.)
if (process.env.MONGOC_DISABLE_SHM === undefined) process.env.MONGOC_DISABLE_SHM = '1';

function load() {
  const forced = process.env.ATOMIC_ASSET_VERSION_ADDON;
  if (forced) return { exports: open(forced, true), binding: { kind: 'source', file: forced } };
  const prebuild = findPrebuild();
  let passedOver = prebuild.reason;
  if (prebuild.file) {
    try {
      return { exports: open(prebuild.file, false), binding: { kind: 'prebuilt', file: prebuild.file, ...prebuild.info } };
    } catch (err) {
      passedOver = `the prebuilt binary did not load: ${err.message}`;
    }
  }
  try {
    return { exports: open(sourceBuild, true), binding: { kind: 'source', file: sourceBuild, prebuildPassedOver: passedOver } };
  } catch (err) {
    if (err.code === 'MODULE_NOT_FOUND' || err.code === 'ERR_DLOPEN_FAILED') {
      err.message =
        `no usable native addon: ${passedOver}, and the source build (${sourceBuild}) ` +
        `did not load (${err.message}). Build it with \`npm rebuild atomic-asset-version\` ` +
        '(needs a C compiler, libmongoc-dev, libbson-dev and pkg-config: see docs/prebuilt.md)';
    }
    throw err;
  }
}

const { exports: binding, binding: which } = load();
binding.binding = which;
// The addon builds every error it throws, rejects with or returns from these
// classes (src/napi/errors.c); until this call every other function refuses.
binding.setErrorClasses(errors.classes);
if (process.env.ATOMIC_ASSET_VERSION_DEBUG) {
  const why = which.prebuildPassedOver ? ` (prebuild passed over: ${which.prebuildPassedOver})` : '';
  console.error(`atomic-asset-version: loaded the ${which.kind} addon ${which.file}${why}`);
}

module.exports = binding;
