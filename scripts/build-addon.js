'use strict';

// Builds the native addon with node-gyp (run by `npm install`).
// Checks the C libraries first and says what to install when they are
// missing. Where this Node ships its own headers (include/node beside the
// binary, as Debian's and the official tarballs do), node-gyp is pointed at
// them, so no header download is needed; elsewhere node-gyp fetches as usual.
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

function havePkg(name) {
  try {
    execFileSync('pkg-config', ['--exists', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

if (!havePkg('libmongoc-1.0') || !havePkg('libbson-1.0')) {
  console.error(
    'atomic-asset-version: the MongoDB C driver was not found by pkg-config.\n' +
      '  Debian/Ubuntu: apt-get install -y libmongoc-dev libbson-dev pkg-config\n' +
      '  Fedora:        dnf install -y mongo-c-driver-devel pkgconf\n' +
      '  macOS:         brew install mongo-c-driver pkg-config',
  );
  process.exit(1);
}

const args = ['rebuild'];
const prefix = path.resolve(path.dirname(process.execPath), '..');
const headers = path.join(prefix, 'include', 'node');
if (fs.existsSync(path.join(headers, 'node_api.h')) && fs.existsSync(path.join(headers, 'common.gypi'))) {
  args.push(`--nodedir=${prefix}`);
}
const gyp = require.resolve('node-gyp/bin/node-gyp.js');
const result = spawnSync(process.execPath, [gyp, ...args], {
  cwd: path.join(__dirname, '..'),
  stdio: 'inherit',
});
process.exit(result.status === null ? 1 : result.status);
