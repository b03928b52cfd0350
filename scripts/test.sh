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
# Every test binary runs even when one fails, so one red test never hides the others.
exec cargo test --all-targets --no-fail-fast "$@"
