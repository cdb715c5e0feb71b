#!/usr/bin/env bash
# CI for the prebuilt addon (docs/prebuilt.md): builds it from Debian's
# mongo-c-driver source package (scripts/build-prebuild.sh), then
#  - test/prebuild.test.js: its ldd and exported symbols, its glibc floor
#    (printed), the loader's choice and fallbacks, `npm pack` (tarball size
#    printed, under 3 MB), a consumer project installing the tarball with only
#    node, npm and sh on PATH and uploading with the system libmongoc hidden
#    (install time printed), and TLS finding the system CA bundle with
#    SSL_CERT_* unset;
#  - the core suites on the prebuild under Node 20, 22 and 24
#    (scripts/test-node-versions.sh, which fails if another binary loads).
# The prebuild stays in prebuilds/ afterwards, so `npm pack` ships it and
# lib/native.js prefers it here too: ATOMIC_ASSET_VERSION_BUILD_FROM_SOURCE=1
# tests the source build instead.
set -uo pipefail
cd "$(dirname "$0")/.."

status=0
step() {
  local start=$SECONDS
  "$@" || status=1
  echo "test-prebuild: '$*' took $((SECONDS - start)) s" >&2
}

# The TLS tests make their certificates with the openssl command.
if ! command -v openssl >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
fi

step bash scripts/build-prebuild.sh
[ -f prebuilds/linux-x64/atomic_asset_version.glibc.node ] || { echo "test-prebuild: no prebuild was built" >&2; exit 1; }

unset ATOMIC_ASSET_VERSION_BUILD_FROM_SOURCE
step env AAV_REQUIRE_PREBUILD=1 node_modules/.bin/jest --ci test/prebuild.test.js

# The core contract under each Node on the prebuild: the same binary for all,
# as Node-API promises. (memcheck stays with the source build: the prebuild is
# stripped, so valgrind can tell neither its frames nor OpenSSL's per-thread
# allocations, which test/valgrind.supp names by function, apart.)
suites=(test/types.test.js test/reference-scenarios.test.js test/validation.test.js test/concurrency.test.js
  test/faults.test.js test/integrity.test.js test/index.test.js test/workers.test.js test/threadpool.test.js test/tls.test.js)
step env NODE_VERSIONS="20 22 24" EXPECT_ADDON=prebuilt bash scripts/test-node-versions.sh "${suites[@]}"
exit $status
