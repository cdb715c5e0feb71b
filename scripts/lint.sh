#!/usr/bin/env bash
# The style checks `npm test` starts with (`npm run lint` alone): ESLint and
# Prettier over the JavaScript and TypeScript, clang-format (.clang-format)
# over the C. Each check runs even when one before it failed, and the run
# fails if any did. `npm run lint:fix` (this script with --fix) first
# rewrites what the tools can fix themselves, then checks:
#   npx eslint --fix .
#   npx prettier --write '**/*.{js,ts}'
#   find src test/c test/fuzz -name '*.[ch]' | xargs clang-format -i
# clang-format is Debian's (14; scripts/setup.sh installs it where it can).
# Without it the C check is skipped and says so, except in CI (CI=true),
# where a missing clang-format fails the run.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=node_modules/.bin
status=0
mapfile -t c_files < <(find src test/c test/fuzz -name '*.[ch]' | sort)
clang_format=${CLANG_FORMAT:-clang-format}

if [ "${1:-}" = --fix ]; then
  echo 'lint: eslint --fix, prettier --write, clang-format -i' >&2
  "$bin/eslint" --fix . >/dev/null 2>&1 || true # what it cannot fix, the check below reports
  # Twice: on a few long member chains Prettier's first pass is not its last.
  "$bin/prettier" --write --log-level warn '**/*.{js,ts}' && "$bin/prettier" --write --log-level warn '**/*.{js,ts}' || status=1
  if command -v "$clang_format" >/dev/null 2>&1; then "$clang_format" -i "${c_files[@]}" || status=1; fi
fi

# ESLint and Prettier side by side (two cores): each one's output is shown
# whole, after it ends.
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$bin/eslint" --cache --cache-location node_modules/.cache/eslint/ . >"$out/eslint" 2>&1 &
eslint_pid=$!
"$bin/prettier" --check --cache --log-level warn '**/*.{js,ts}' >"$out/prettier" 2>&1 &
prettier_pid=$!
wait "$eslint_pid" || status=1
echo 'lint: eslint' >&2
cat "$out/eslint"
wait "$prettier_pid" || status=1
echo "lint: prettier --check ('**/*.{js,ts}')" >&2
cat "$out/prettier"

if command -v "$clang_format" >/dev/null 2>&1; then
  echo "lint: clang-format --dry-run --Werror ($("$clang_format" --version | grep -o 'version [0-9.]*'))" >&2
  "$clang_format" --dry-run --Werror "${c_files[@]}" || status=1
elif [ "${CI:-}" = true ]; then
  echo "lint: clang-format not found; CI needs it (Debian: apt-get install -y clang-format)" >&2
  status=1
else
  echo "lint: clang-format not found; the C format check was SKIPPED (Debian: sudo apt-get install -y clang-format)" >&2
fi

[ "$status" = 0 ] && echo 'lint: clean' >&2 || echo 'lint: FAILED (see above; `npm run lint:fix` fixes the layout, and what ESLint can)' >&2
exit "$status"
