'use strict';

// Loads the compiled addon once per JavaScript environment. Native state is
// per environment too (src/addon_state.c), so Jest's module resets and
// worker_threads each get their own; only the driver set-up and the threadpool
// budget are process-wide (src/driver.c, src/threadpool_budget.c).
const os = require('os');
const path = require('path');

const bindingPath = path.join(__dirname, '..', 'build', 'Release', 'atomic_asset_version.node');

// Node carries its own OpenSSL and exports its symbols; libmongoc links the
// system's. Loaded plainly, libmongoc's OpenSSL calls bind to Node's copy,
// which works only while both are the same release. RTLD_DEEPBIND makes the
// addon and its libraries resolve their own dependencies first, so libmongoc
// uses the system OpenSSL it was built against (test/tls.test.js checks the
// binding). Where the flag does not exist (not glibc), plain require.
function open(file) {
  const { RTLD_NOW, RTLD_DEEPBIND } = os.constants.dlopen;
  if (RTLD_DEEPBIND === undefined || process.env.ATOMIC_ASSET_VERSION_NO_DEEPBIND) return require(file);
  const module = { exports: {} };
  process.dlopen(module, file, RTLD_NOW | RTLD_DEEPBIND);
  return module.exports;
}

// libmongoc initialises itself when it is loaded (a library constructor, before
// any of our code runs) and by default keeps its statistics counters in a
// shared-memory file, /dev/shm/mongoc-<pid>, that only mongoc_cleanup() removes,
// which a Node process never calls. So every process left one file behind, and
// a later process that happened to get the same pid printed "Falling back to
// malloc for counters" on stderr. Nothing here reads those counters (they are
// for the mongoc-stat tool), so they stay in process memory unless the user
// chose otherwise. A worker thread's process.env is its own copy: this reaches
// the real environment only on the main thread, where the addon is nearly
// always first loaded.
if (process.env.MONGOC_DISABLE_SHM === undefined) process.env.MONGOC_DISABLE_SHM = '1';

function load() {
  try {
    return open(bindingPath);
  } catch (err) {
    if (err.code === 'MODULE_NOT_FOUND' || err.code === 'ERR_DLOPEN_FAILED') {
      err.message =
        `the native addon is not built (${bindingPath}). Run \`npm install\` ` +
        '(needs libmongoc-dev, libbson-dev and pkg-config: see README.md)';
    }
    throw err;
  }
}

const binding = load();

module.exports = binding;
