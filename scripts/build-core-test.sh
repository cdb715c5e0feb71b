#!/usr/bin/env bash
# Builds the C core's own tests (test/c/core_test.c) into build/c/core_test:
# plain C on libmongoc, no Node. Run by test/core-c.test.js and, under
# valgrind, by scripts/memcheck.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/c
cc -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -g -O1 -Isrc \
  test/c/core_test.c src/core/*.c $(pkg-config --cflags --libs libmongoc-1.0) -lpthread -lm \
  -o build/c/core_test
