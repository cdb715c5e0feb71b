#!/usr/bin/env bash
# The sanitizers CI runs (`npm run test:sanitizers`); any report fails the run.
#
#   asan  The addon built with AddressSanitizer + UndefinedBehaviorSanitizer
#         into .cache/asan (build/Release is left alone), loaded by Node with
#         gcc's libasan preloaded (ATOMIC_ASSET_VERSION_ADDON picks it in
#         lib/native.js), running the core suites (scripts/core-suites.txt).
#         Leak checking is off: Node itself does not free everything at exit,
#         and a preloaded LeakSanitizer cannot tell its allocations from ours.
#         Leaks are valgrind's job (scripts/memcheck.sh, test/memcheck.test.js),
#         which counts only the ones whose stack reaches the addon.
#         RTLD_DEEPBIND is refused by the sanitizer runtime, so the addon is
#         opened plainly; the suites that check the OpenSSL binding (tls) are
#         not core suites. On FerretDB's SQLite backend (see below).
#   tsan  The threadpool budget's C test (test/c/threadpool_budget_test.c:
#         environments on their own threads and loops taking, releasing and
#         handing over slots) built with ThreadSanitizer and run.
#
#   bash scripts/test-sanitizers.sh [asan|tsan|all] [jest args, asan only]
# Needs gcc with libasan/libubsan/libtsan and libuv1-dev (scripts/setup.sh
# installs them); asan starts FerretDB on SQLite as `npm run test:sqlite` does.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-all}
[ $# -gt 0 ] && shift

asan() {
  local dir=.cache/asan
  local addon=$dir/build/Release/atomic_asset_version.node
  # The same binding.gyp and src/, built in a directory of their own.
  mkdir -p "$dir"
  cp binding.gyp "$dir/"
  ln -sfn "$PWD/src" "$dir/src"
  if [ ! -f "$addon" ] || [ -n "$(find -L src binding.gyp scripts/test-sanitizers.sh -newer "$addon" -print -quit)" ]; then
    echo "sanitizers: building the addon with -fsanitize=address,undefined into $dir" >&2
    # After binding.gyp's flags: -O1 for readable stacks, and -Wno-error since
    # gcc warns differently with sanitizers on (the normal build enforces them).
    (cd "$dir" && CC=gcc CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -g -O1 -Wno-error" \
      LDFLAGS="-fsanitize=address,undefined" node "$OLDPWD/node_modules/node-gyp/bin/node-gyp.js" rebuild \
      --nodedir="$(dirname "$(dirname "$(command -v node)")")" >build.log 2>&1) ||
      { tail -40 "$dir/build.log" >&2; return 1; }
  fi
  local reports=$dir/reports
  rm -rf "$reports"
  mkdir -p "$reports"
  local suites=()
  if [ $# -gt 0 ]; then suites=("$@"); else mapfile -t suites < <(grep -v '^#' scripts/core-suites.txt); fi
  # A report aborts the process (halt_on_error), which fails its test. A
  # report in a child process a test expected to die must fail the run too:
  # AddressSanitizer's go to files as well, UBSan's (printed by the process)
  # are looked for in the output.
  local status=0 out=$dir/jest-output.txt
  # On FerretDB's SQLite backend: PostgreSQL's server hangs at start with
  # libasan preloaded, and the preload reaches every process the run starts.
  # The shared-ends race (test/validation.test.js) copies 8 MiB a round, about
  # four times slower under the sanitizer: 60 rounds, not 300, fit its timeout.
  AAV_SHARED_ENDS_ROUNDS=60 AAV_BACKEND=sqlite ATOMIC_ASSET_VERSION_ADDON="$PWD/$addon" ATOMIC_ASSET_VERSION_NO_DEEPBIND=1 \
    LD_PRELOAD="$(gcc -print-file-name=libasan.so)" \
    ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:log_path=$PWD/$reports/asan" \
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
    node_modules/.bin/jest --ci "${suites[@]}" 2>&1 | tee "$out" || status=$?
  if [ -n "$(ls -A "$reports")" ]; then
    for f in "$reports"/*; do echo "sanitizers: report $f:" >&2; cat "$f" >&2; done
    status=1
  fi
  if grep -qE 'runtime error:|ERROR: AddressSanitizer' "$out"; then
    echo "sanitizers: reports in the output:" >&2
    grep -E -A8 'runtime error:|ERROR: AddressSanitizer' "$out" | grep -v '^ *#[1-9][0-9]' >&2
    status=1
  fi
  return $status
}

tsan() {
  # Found wherever src/ keeps them.
  local budget header bin=build/c/threadpool_budget_tsan
  budget=$(find src -name threadpool_budget.c | head -1)
  header=$(find src -name threadpool_budget.h | head -1)
  mkdir -p build/c
  rm -f "$bin"
  gcc -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -g -O1 -fsanitize=thread -Isrc -I"$(dirname "$header")" \
    test/c/threadpool_budget_test.c "$budget" $(pkg-config --cflags --libs libuv) -o "$bin" || return 1
  # halt_on_error: the first race ends the run with TSan's exit code.
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" "$bin"
}

start=$SECONDS
status=0
case "$mode" in
  asan) asan "$@" || status=1 ;;
  tsan) tsan || status=1 ;;
  all) tsan || status=1; asan "$@" || status=1 ;;
  *) echo "usage: test-sanitizers.sh [asan|tsan|all] [suites]" >&2; exit 2 ;;
esac
echo "sanitizers: $mode $([ $status = 0 ] && echo passed || echo FAILED) in $((SECONDS - start)) s" >&2
exit $status
