#!/usr/bin/env bash
# processed_events pruning (docs/PERFORMANCE.md): a private PostgreSQL (default durability)
# and Redis, then `imticket-bench prune-processed` (OLD rows older than the retention, FRESH
# newer ones; the worker's prune pass timed per statement and in total).
#   scripts/bench-prune.sh                         release build, 1,000,000 old + 100,000 fresh
#   BENCH_PROFILE=dev OLD=200000 scripts/bench-prune.sh  dev build (the time is PostgreSQL's anyway)
#   BENCH_BIN=DIR scripts/bench-prune.sh           binaries from DIR instead of a fresh build
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_system_packages
ensure_rust

bench_binaries
bench_services_start
export IMTICKET_ENV=development RUST_LOG=warn
"$bin"/imticket-admin migrate >/dev/null
echo "== machine: $(nproc) cores; $(psql --version); imticket-bench from $bin"
"$bin"/imticket-bench prune-processed --old "${OLD:-1000000}" --fresh "${FRESH:-100000}"
