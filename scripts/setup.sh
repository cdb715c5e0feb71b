#!/usr/bin/env bash
# Makes a fresh checkout runnable: system libraries, npm packages, the native
# addon and the FerretDB test server (with PostgreSQL under it, unless
# AAV_BACKEND=sqlite). Each step is skipped when already done,
# so `npm test` and `npm start` call it every time.
set -euo pipefail
cd "$(dirname "$0")/.."

can_apt() { command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; }
apt_install() {
  echo "setup: installing $*" >&2
  [ -n "${apt_updated:-}" ] || { apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

need=()
pkg-config --version >/dev/null 2>&1 || need+=(pkg-config)
pkg-config --exists libmongoc-1.0 2>/dev/null || need+=(libmongoc-dev libbson-dev)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
if [ ${#need[@]} -gt 0 ]; then
  if can_apt; then
    apt_install "${need[@]}"
  else
    echo "setup: missing ${need[*]}; install them (Debian: sudo apt-get install -y libmongoc-dev libbson-dev pkg-config build-essential)" >&2
    exit 1
  fi
fi
# Optional: without them the memcheck, fuzz, page and tls tests are skipped
# and say so (test/support/needs.js), except in CI (CI=true), where they fail;
# libuv1-dev is for the threadpool budget's ThreadSanitizer test.
if ! command -v openssl >/dev/null 2>&1; then
  if can_apt; then apt_install openssl; else echo "setup: openssl not found; the tls tests will be skipped" >&2; fi
fi
if ! pkg-config --exists libuv 2>/dev/null; then
  if can_apt; then apt_install libuv1-dev; else echo "setup: libuv1-dev not found; npm run test:sanitizers cannot build its tsan test" >&2; fi
fi
if ! command -v valgrind >/dev/null 2>&1; then
  if can_apt; then apt_install valgrind; else echo "setup: valgrind not found; the memcheck test will be skipped" >&2; fi
fi
if ! command -v clang >/dev/null 2>&1; then
  if can_apt; then apt_install clang; else echo "setup: clang not found; the fuzz test will be skipped" >&2; fi
fi
# clang-format checks the C's layout in `npm run lint`: skipped without it, except in CI.
if ! command -v clang-format >/dev/null 2>&1; then
  if can_apt; then apt_install clang-format; else echo "setup: clang-format not found; lint will skip the C format check" >&2; fi
fi
if [ ! -x /usr/bin/chromium ] && [ -z "${CHROMIUM_PATH:-}" ]; then
  if can_apt; then apt_install chromium; else echo "setup: chromium not found; the page test will be skipped (or set CHROMIUM_PATH)" >&2; fi
fi

# npm ci when the lock file changed since the last install (or never ran).
stamp=node_modules/.setup-stamp
if [ -L node_modules ]; then
  # A node_modules shared by symlink (another checkout's): npm ci would empty
  # it through the link, under whoever else uses it.
  cmp -s package-lock.json "$stamp" 2>/dev/null || echo "setup: node_modules is a symlink; not reinstalling it (its lock differs)" >&2
elif [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
addon=build/Release/atomic_asset_version.node
if [ ! -f "$addon" ] || [ -n "$(find src binding.gyp -newer "$addon" -print -quit)" ]; then
  node scripts/build-addon.js
fi

# FerretDB only when no server was given; PostgreSQL under it unless SQLite is asked for.
if [ -z "${MONGODB_URI:-}" ]; then
  bash scripts/build-ferretdb.sh >/dev/null
  if [ "${AAV_BACKEND:-postgresql}" = postgresql ]; then bash scripts/setup-postgres.sh; fi
fi
