#!/usr/bin/env bash
# Runs every test, the Redis paths again on a local Redis Cluster, then the bounded fuzz run and
# chaos matrix. The integration tests start their own PostgreSQL, PgBouncer and redis-server (or
# Redis Cluster) from the system binaries (temporary directories, free ports), so nothing needs
# to be running; this installs the Debian packages when they are missing.
# The integration tests reach their databases through a PgBouncer in transaction mode (the
# stricter way: IMTICKET_TEST_PGBOUNCER=1, docs/layout.md "Tests"); the fuzz run and the chaos
# matrix run the system on PostgreSQL directly. IMTICKET_TEST_PGBOUNCER=0 runs the tests direct.
# `scripts/test.sh --test api <name>` passes its arguments to cargo test and skips the matrix.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
# haproxy: the load-balancer tests (tests/api/balancer.rs) start their own; chromium: the
# seat plan picture is opened in a real browser (tests/api/venues.rs); chromium-driver: the
# operator console is driven in that browser over WebDriver (tests/api/console.rs).
ensure_system_packages haproxy chromium
command -v chromedriver >/dev/null 2>&1 || ensure_system_packages chromium-driver
ensure_pgbouncer
ensure_rust
# The webhook tests check signatures with the Standard Webhooks reference library.
python3 -c 'import standardwebhooks' 2>/dev/null ||
  python3 -m pip install -q --disable-pip-version-check standardwebhooks==1.1.0
# The email tests send to a local SMTP server (scripts/lib/smtp_sink.py).
python3 -c 'import aiosmtpd' 2>/dev/null ||
  python3 -m pip install -q --disable-pip-version-check aiosmtpd==1.4.6
# The delivery files (compose, Prometheus rules and their unit tests, dashboard, Dockerfile).
bash scripts/check-delivery.sh
# Every test binary runs even when one fails, so one red test never hides the others; the fuzz
# run and the bounded chaos matrix run too, whatever the tests said. Any failing fails the whole.
status=0
IMTICKET_TEST_PGBOUNCER=${IMTICKET_TEST_PGBOUNCER:-1} cargo test --all-targets --no-fail-fast "$@" || status=$?
if [ $# -eq 0 ]; then
  # The suite's Redis paths again, on a local Redis Cluster (scripts/redis-cluster.sh: 3 masters
  # + 3 replicas, shared by the tests under key prefixes of their own): the waiting room, holds
  # and seat gates, seat states, the cache, rate limits, payments, expiry and the event
  # backbone. The tests that stop, kill or read the files of their Redis need one of their own
  # and run in the first pass only (on the cluster they fail saying so).
  IMTICKET_TEST_REDIS_CLUSTER=1 cargo test --no-fail-fast --test api --test backbone -- \
    waiting_room holds seat_map catalog rate_limits payments expiry confirmations availability \
    runtime retention admin_cli queue_cli outbox crashes fanout \
    --skip redis_killed_mid_sale --skip while_redis_is_down --skip redis_down --skip with_redis_down \
    --skip also_without_redis --skip reads_fall_back_to_postgres --skip kill_9_of_redis \
    --skip a_redis_that_lost_its_data --skip concert_details_are_kept_in_the_process --skip seat_crashes || status=1
  # The running system against its OpenAPI document: schemathesis, bounded to 2 minutes of
  # fuzzing (scripts/fuzz.sh --minutes 10 for a long run; docs/RELIABILITY.md).
  bash scripts/fuzz.sh || status=1
  # Four cells of the chaos matrix (scripts/chaos.sh; docs/RELIABILITY.md), about three minutes.
  bash scripts/chaos.sh --quick || status=1
fi
exit "$status"
