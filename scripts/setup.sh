#!/usr/bin/env bash
# Makes a fresh checkout runnable: system libraries, npm packages, the native
# addon and the FerretDB test server. Each step is skipped when already done,
# so `npm test` and `npm start` call it every time.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
pkg-config --version >/dev/null 2>&1 || need_apt+=(pkg-config)
pkg-config --exists libmongoc-1.0 2>/dev/null || need_apt+=(libmongoc-dev libbson-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${need_apt[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: missing ${need_apt[*]}; install them (Debian: sudo apt-get install -y libmongoc-dev libbson-dev pkg-config)" >&2
    exit 1
  fi
fi

# npm ci when the lock file changed since the last install (or never ran).
stamp=node_modules/.setup-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
addon=build/Release/atomic_asset_version.node
if [ ! -f "$addon" ] || [ -n "$(find src binding.gyp -newer "$addon" -print -quit)" ]; then
  node scripts/build-addon.js
fi

# FerretDB only when no server was given.
if [ -z "${MONGODB_URI:-}" ]; then
  bash scripts/build-ferretdb.sh >/dev/null
fi
