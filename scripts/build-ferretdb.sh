#!/usr/bin/env bash
# Builds FerretDB v1.24.2, the MongoDB wire-protocol server the tests and the
# demo run against, into .cache/ferretdb/. Idempotent: a built binary is kept.
#
# `go install …@v1.24.2` alone gives a binary that panics at start: FerretDB
# embeds build/version/version.txt, which its release tooling writes and the
# module does not ship. So: fetch the module, add that file, build.
set -euo pipefail
VERSION=v1.24.2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/.cache/ferretdb/ferretdb-$VERSION"
[ -x "$OUT" ] && { echo "$OUT"; exit 0; }

# Go's own installer puts it here, outside the default PATH.
command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null 2>&1; then
  echo "build-ferretdb: Go is needed to build FerretDB $VERSION (go 1.22 or newer, from go.dev or your distribution); or set MONGODB_URI to a running MongoDB" >&2
  exit 1
fi
echo "build-ferretdb: building FerretDB $VERSION (about a minute, once)" >&2
src=$(GOFLAGS=-mod=mod go mod download -json "github.com/FerretDB/FerretDB@$VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { echo "build-ferretdb: could not download the FerretDB module" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -R "$src/." "$work/"
chmod -R u+w "$work"
echo "$VERSION" > "$work/build/version/version.txt"
mkdir -p "$(dirname "$OUT")"
(cd "$work" && go build -trimpath -o "$OUT.tmp" ./cmd/ferretdb)
mv "$OUT.tmp" "$OUT"
echo "$OUT"
