'use strict';

// Builds the native addon with node-gyp. It runs as this package's `install`
// script, in this repository and in every project that depends on it.
//
// Which node-gyp: the one npm hands every install script as
// npm_config_node_gyp (npm bundles it to build any package with a
// binding.gyp), so a consumer needs nothing beyond npm; pnpm and yarn put a
// `node-gyp` on PATH for the same reason. Running this file by hand (as
// scripts/setup.sh does) uses the devDependency. Depending on node-gyp
// instead would add about a hundred packages to every consumer's install for
// a tool their npm already carries.
//
// Which headers: an explicit nodedir (npm_config_nodedir) wins; otherwise,
// where this Node ships its headers beside the binary (Debian's /usr, the
// official tarballs, nvm), node-gyp is pointed at them and downloads nothing;
// elsewhere it fetches them as usual.
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');

function havePkg(name) {
  try {
    execFileSync('pkg-config', ['--exists', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function onPath(command) {
  return spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0;
}

// [command, args before ours]
function findNodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && fs.existsSync(fromNpm)) return [process.execPath, [fromNpm]];
  try {
    return [process.execPath, [require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] })]];
  } catch {
    // not installed next to us: try PATH
  }
  if (onPath('node-gyp')) return ['node-gyp', []];
  return null;
}

if (!havePkg('libmongoc-1.0') || !havePkg('libbson-1.0')) {
  console.error(
    'atomic-asset-version: libmongoc-1.0 not found by pkg-config; install it, then reinstall: ' +
      'Debian/Ubuntu `apt-get install libmongoc-dev pkg-config`, ' +
      'Alpine `apk add mongo-c-driver-dev pkgconf`, ' +
      'Fedora `dnf install mongo-c-driver-devel pkgconf`, ' +
      'Homebrew `brew install mongo-c-driver@1 pkgconf` ' +
      '(keg-only: PKG_CONFIG_PATH=$(brew --prefix mongo-c-driver@1)/lib/pkgconfig)',
  );
  process.exit(1);
}

const gyp = findNodeGyp();
if (!gyp) {
  console.error('atomic-asset-version: node-gyp not found; install with npm (which bundles it) or `npm install -g node-gyp`');
  process.exit(1);
}

const args = ['rebuild'];
if (!process.env.npm_config_nodedir) {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  const headers = path.join(prefix, 'include', 'node');
  if (fs.existsSync(path.join(headers, 'node_api.h')) && fs.existsSync(path.join(headers, 'common.gypi'))) {
    args.push(`--nodedir=${prefix}`);
  }
}
const [command, prefixArgs] = gyp;
const result = spawnSync(command, [...prefixArgs, ...args], { cwd: root, stdio: 'inherit' });
process.exit(result.status === null ? 1 : result.status);
