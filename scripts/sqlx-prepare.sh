#!/usr/bin/env bash
# Regenerates `.sqlx/` (the query metadata that lets `sqlx::query!` compile without a
# database) against a throwaway PostgreSQL with every migration applied.
#   scripts/sqlx-prepare.sh          rewrite .sqlx/
#   scripts/sqlx-prepare.sh --check  fail if .sqlx/ is out of date (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

check=false
[ "${1:-}" = "--check" ] && check=true

ensure_system_packages
ensure_rust
work=$(mktemp -d /tmp/imticket-sqlx.XXXXXX)
data=$(pg_usable_dir "$work/pg")
port=$(free_port)
trap 'pg_stop "$data"; rm -rf "$work" "$data"' EXIT
pg_start "$data" "$port"
pg_createdb "$port" prepare
for f in migrations/*.sql; do
  psql -h 127.0.0.1 -p "$port" -U postgres -d prepare -v ON_ERROR_STOP=1 -q -f "$f" >/dev/null
done

out="$work/sqlx"
mkdir -p "$out"
# The macros write one file per query when SQLX_OFFLINE_DIR is set and they run online.
# Touching the crate root makes cargo re-expand every macro of the library.
touch src/lib.rs
SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$out" DATABASE_URL="postgres://postgres@127.0.0.1:$port/prepare" \
  cargo check --lib --quiet
touch src/lib.rs

if $check; then
  if ! diff -r "$out" .sqlx >/dev/null 2>&1; then
    diff -r "$out" .sqlx || true
    die ".sqlx/ is out of date: run scripts/sqlx-prepare.sh and commit the result"
  fi
  log ".sqlx/ is up to date"
else
  rm -rf .sqlx && mkdir -p .sqlx && cp "$out"/*.json .sqlx/ 2>/dev/null || true
  log "wrote $(ls .sqlx | wc -l) query files to .sqlx/"
fi
