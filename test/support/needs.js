'use strict';

// Tests that need an optional tool: chromium, openssl, valgrind, clang, or
// root (mounts, namespaces). Where the tool is missing, such a test is
// skipped locally with the reason in its name, so the summary says what did
// not run and why; in CI (CI=true) it fails instead, since scripts/setup.sh
// installs every one of them there and a skip would hide a broken set-up.
//
//   const { needs } = require('./support/needs');
//   needs('valgrind').test('name', fn);        // or .describe
//   needs('root', mountError || true).test(…); // a probe of the test's own:
//                                               // true, or why not
const { spawnSync } = require('child_process');
const fs = require('fs');

const runs = (command, args) => spawnSync(command, args, { stdio: 'ignore' }).status === 0;
const chromium = () => process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** Each returns true, or why the tool is not there. */
const probes = {
  valgrind: () => runs('valgrind', ['--version']) || 'valgrind is not installed (apt-get install valgrind)',
  clang: () => runs('clang', ['--version']) || 'clang is not installed (apt-get install clang)',
  openssl: () => runs('openssl', ['version']) || 'the openssl command is not installed (apt-get install openssl)',
  chromium: () => fs.existsSync(chromium()) || `no Chromium at ${chromium()} (apt-get install chromium, or set CHROMIUM_PATH)`,
  root: () => process.getuid?.() === 0 || 'not running as root',
};

const inCI = () => ['true', '1'].includes(String(process.env.CI).toLowerCase());

function needs(tool, probe) {
  const found = probe !== undefined ? probe : probes[tool]();
  if (found === true) return { test, describe };
  const why = `needs ${tool}: ${found}`;
  if (!inCI()) {
    return {
      test: (name, ...rest) => test.skip(`${name} [${why}]`, ...rest),
      describe: (name, ...rest) => describe.skip(`${name} [${why}]`, ...rest),
    };
  }
  const fail = (name) =>
    test(name, () => {
      throw new Error(`${why}; CI runs every test (scripts/setup.sh installs the tools)`);
    });
  return { test: (name) => fail(name), describe: (name) => describe(name, () => fail(why)) };
}

module.exports = { needs };
