#!/usr/bin/env bash
# Runs the C core's own tests and a focused Node scenario of the addon under
# valgrind; fails on any invalid access and on any definite leak that is not
# OpenSSL's per-thread state (test/valgrind.supp). In the Node scenario a
# definite leak or an uninitialised-value branch counts only when its stack
# reaches the addon, libmongoc or libbson (scripts/memcheck-report.js): what
# Node and V8 do on their own differs by release and is not ours to fix.
# Needs MONGODB_URI.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${MONGODB_URI:?set MONGODB_URI (npm run test:memcheck starts FerretDB for you)}"
command -v valgrind >/dev/null || { echo "memcheck: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }

bash scripts/build-core-test.sh

vg=(valgrind -q --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite
  --suppressions=test/valgrind.supp --error-exitcode=99 --num-callers=40)
echo "memcheck: C core tests"
"${vg[@]}" build/c/core_test "$MONGODB_URI"
echo "memcheck: addon scenario in Node $(node --version)"
report=build/c/memcheck-node.xml
rm -f "$report"
# With --xml, valgrind's exit status still counts Node's own leaks: the report decides.
# On the source build even where a prebuild sits in prebuilds/: the prebuild is
# stripped, so valgrind could name neither its frames nor, for the
# suppressions, OpenSSL's functions inside it (docs/prebuilt.md).
ATOMIC_ASSET_VERSION_BUILD_FROM_SOURCE=1 "${vg[@]}" --error-exitcode=0 --xml=yes --xml-file="$report" node scripts/memcheck-scenario.js
node scripts/memcheck-report.js "$report"
echo "memcheck: clean"
