#!/usr/bin/env bash
# Installs Debian's PostgreSQL server when missing; scripts/postgres.js runs
# clusters of it under FerretDB. Called by setup.sh unless AAV_BACKEND=sqlite,
# and by the benchmark.
# Does nothing when a server is already there (or PG_BIN names one).
set -euo pipefail

if [ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/postgres" ]; then exit 0; fi
if compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then exit 0; fi

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "setup: installing postgresql" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
else
  echo "setup: PostgreSQL server not found; install it (Debian: sudo apt-get install -y postgresql) or set PG_BIN to its bin directory" >&2
  exit 1
fi
