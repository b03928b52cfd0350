#!/usr/bin/env bash
# Runs every test, then the bounded chaos matrix. The integration tests start their own
# PostgreSQL and redis-server from the system binaries (temporary directories, free ports), so
# nothing needs to be running; this installs the Debian packages when they are missing.
# `scripts/test.sh --test api <name>` passes its arguments to cargo test and skips the matrix.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_system_packages
ensure_rust
# The delivery files (compose, Prometheus rules and their unit tests, dashboard, Dockerfile).
bash scripts/check-delivery.sh
# Every test binary runs even when one fails, so one red test never hides the others; the
# bounded chaos matrix runs even when a test failed, and the exit status says if anything did.
status=0
cargo test --all-targets --no-fail-fast "$@" || status=$?
if [ $# -eq 0 ]; then
  # Four cells of the chaos matrix (scripts/chaos.sh; docs/RELIABILITY.md), about three minutes.
  bash scripts/chaos.sh --quick || status=1
fi
exit "$status"
