#!/usr/bin/env bash
# Runs every test, then the bounded fuzz run and chaos matrix. The integration tests start their own
# PostgreSQL and redis-server from the system binaries (temporary directories, free ports), so
# nothing needs to be running; this installs the Debian packages when they are missing.
# `scripts/test.sh --test api <name>` passes its arguments to cargo test and skips the matrix.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
# haproxy: the load-balancer tests (tests/api/balancer.rs) start their own.
ensure_system_packages haproxy
ensure_rust
# The delivery files (compose, Prometheus rules and their unit tests, dashboard, Dockerfile).
bash scripts/check-delivery.sh
# Every test binary runs even when one fails, so one red test never hides the others; the fuzz
# run and the bounded chaos matrix run too, whatever the tests said. Any failing fails the whole.
status=0
cargo test --all-targets --no-fail-fast "$@" || status=$?
if [ $# -eq 0 ]; then
  # The running system against its OpenAPI document: schemathesis, bounded to 2 minutes of
  # fuzzing (scripts/fuzz.sh --minutes 10 for a long run; docs/RELIABILITY.md).
  bash scripts/fuzz.sh || status=1
  # Four cells of the chaos matrix (scripts/chaos.sh; docs/RELIABILITY.md), about three minutes.
  bash scripts/chaos.sh --quick || status=1
fi
exit "$status"
