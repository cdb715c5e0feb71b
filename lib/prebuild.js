'use strict';

// Which compiled addon this machine can use: the prebuilt one the package
// ships (prebuilds/<platform>-<arch>/, built by scripts/build-prebuild.sh,
// with libmongoc and OpenSSL inside it) or the source build
// (build/Release/, by scripts/build-addon.js against the system's
// libmongoc). Shared by lib/native.js, which loads one, and by
// scripts/install.js, which compiles only when no prebuild fits.
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const NAME = 'atomic_asset_version';
const sourceBuild = path.join(root, 'build', 'Release', `${NAME}.node`);

function forcedSource() {
  const v = process.env.ATOMIC_ASSET_VERSION_BUILD_FROM_SOURCE;
  return v !== undefined && v !== '' && v !== '0' && v !== 'false';
}

// glibc's version at run time, or null on another C library (musl has none to
// report). process.report is the one place Node exposes it; leaving the
// network out keeps the report from looking up host names.
function glibcVersion() {
  if (process.platform !== 'linux' || !process.report) return null;
  const exclude = process.report.excludeNetwork;
  try {
    process.report.excludeNetwork = true;
    return process.report.getReport().header.glibcVersionRuntime || null;
  } catch {
    return null;
  } finally {
    process.report.excludeNetwork = exclude;
  }
}

function atLeast(version, floor) {
  const a = version.split('.').map(Number);
  const b = floor.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if ((a[i] || 0) !== (b[i] || 0)) return (a[i] || 0) > (b[i] || 0);
  }
  return true;
}

// { file, info } when a prebuild is there for this platform and its C library
// is new enough; otherwise { file: null, reason } saying why not. Whether it
// then loads is the caller's test.
function findPrebuild() {
  if (forcedSource()) return { file: null, reason: 'ATOMIC_ASSET_VERSION_BUILD_FROM_SOURCE is set' };
  const platform = `${process.platform}-${process.arch}`;
  if (process.platform !== 'linux') return { file: null, reason: `no prebuilt binary for ${platform}` };
  const dir = path.join(root, 'prebuilds', platform);
  const glibc = glibcVersion();
  const libc = glibc ? 'glibc' : 'musl';
  const file = path.join(dir, `${NAME}.${libc}.node`);
  if (!fs.existsSync(file)) return { file: null, reason: `no prebuilt binary for ${platform} (${libc})` };
  let info = {};
  try {
    info = JSON.parse(fs.readFileSync(path.join(dir, `${NAME}.${libc}.json`), 'utf8'));
  } catch {
    // No description: loading it is the only test left.
  }
  if (glibc && info.glibcFloor && !atLeast(glibc, info.glibcFloor)) {
    return { file: null, reason: `the prebuilt binary needs glibc ${info.glibcFloor}; this system has ${glibc}` };
  }
  return { file, info };
}

module.exports = { findPrebuild, sourceBuild };
