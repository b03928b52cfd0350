#!/usr/bin/env bash
# Runs every test. The integration tests start their own PostgreSQL and redis-server from the
# system binaries (temporary directories, free ports), so nothing needs to be running; this
# installs the Debian packages when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_system_packages
ensure_rust
# The delivery files (compose, Prometheus rules and their unit tests, dashboard, Dockerfile).
bash scripts/check-delivery.sh
# Every test binary runs even when one fails, so one red test never hides the others; the
# fuzz run too, whatever the tests said. Either failing fails the whole.
status=0
cargo test --all-targets --no-fail-fast "$@" || status=$?
# The running system against its OpenAPI document: schemathesis, bounded to 2 minutes of
# fuzzing (scripts/fuzz.sh --minutes 10 for a long run; docs/RELIABILITY.md).
bash scripts/fuzz.sh || status=1
exit "$status"
