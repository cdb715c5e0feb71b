'use strict';

// The package's `install` script, in the spirit of node-gyp-build: nothing to
// do when the prebuilt addon fits this machine and loads (the usual case on
// linux-x64 with glibc), so installing needs no compiler; otherwise (another
// platform, musl, an older glibc, a prebuild that does not load, or
// ATOMIC_ASSET_VERSION_BUILD_FROM_SOURCE=1) the source build of
// scripts/build-addon.js, as before prebuilds existed.
//
// lib/native.js does not depend on this script having run: with
// --ignore-scripts, or where npm's allowScripts policy or pnpm skips it, the
// prebuild still loads (docs/prebuilt.md).
const { spawnSync } = require('child_process');
const os = require('os');
const path = require('path');
const { findPrebuild } = require('../lib/prebuild');

function prebuildLoads(file) {
  try {
    process.dlopen({ exports: {} }, file, os.constants.dlopen.RTLD_NOW);
    return null;
  } catch (err) {
    return err.message;
  }
}

const prebuild = findPrebuild();
const failure = prebuild.file ? prebuildLoads(prebuild.file) : prebuild.reason;
if (!failure) process.exit(0);

console.error(`atomic-asset-version: building from source: ${prebuild.file ? `the prebuilt binary did not load: ${failure}` : failure}`);
const result = spawnSync(process.execPath, [path.join(__dirname, 'build-addon.js')], { stdio: 'inherit' });
process.exit(result.status === null ? 1 : result.status);
