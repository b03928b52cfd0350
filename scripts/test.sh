#!/usr/bin/env bash
# Runs every test, then the bounded fuzz run and chaos matrix. The integration tests start their own
# PostgreSQL, PgBouncer and redis-server from the system binaries (temporary directories, free
# ports), so nothing needs to be running; this installs the Debian packages when they are missing.
# The integration tests reach their databases through a PgBouncer in transaction mode (the
# stricter way: IMTICKET_TEST_PGBOUNCER=1, docs/layout.md "Tests"); the fuzz run and the chaos
# matrix run the system on PostgreSQL directly. IMTICKET_TEST_PGBOUNCER=0 runs the tests direct.
# `scripts/test.sh --test api <name>` passes its arguments to cargo test and skips the matrix.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_system_packages
ensure_pgbouncer
ensure_rust
# The delivery files (compose, Prometheus rules and their unit tests, dashboard, Dockerfile).
bash scripts/check-delivery.sh
# Every test binary runs even when one fails, so one red test never hides the others; the fuzz
# run and the bounded chaos matrix run too, whatever the tests said. Any failing fails the whole.
status=0
IMTICKET_TEST_PGBOUNCER=${IMTICKET_TEST_PGBOUNCER:-1} cargo test --all-targets --no-fail-fast "$@" || status=$?
if [ $# -eq 0 ]; then
  # The running system against its OpenAPI document: schemathesis, bounded to 2 minutes of
  # fuzzing (scripts/fuzz.sh --minutes 10 for a long run; docs/RELIABILITY.md).
  bash scripts/fuzz.sh || status=1
  # Four cells of the chaos matrix (scripts/chaos.sh; docs/RELIABILITY.md), about three minutes.
  bash scripts/chaos.sh --quick || status=1
fi
exit "$status"
