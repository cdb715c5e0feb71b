'use strict';

// Loads the compiled addon once per JavaScript environment. Native state is
// per environment too (src/addon_state.c), so Jest's module resets and
// worker_threads each get their own.
const path = require('path');
const { makeError } = require('./errors');

const bindingPath = path.join(__dirname, '..', 'build', 'Release', 'atomic_asset_version.node');

function load() {
  try {
    return require(bindingPath);
  } catch (err) {
    if (err.code === 'MODULE_NOT_FOUND') {
      err.message =
        `the native addon is not built (${bindingPath}). Run \`npm install\` ` +
        '(needs libmongoc-dev, libbson-dev and pkg-config: see README.md)';
    }
    throw err;
  }
}

const binding = load();
binding.setErrorFactory(makeError);

module.exports = binding;
