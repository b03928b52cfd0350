#!/usr/bin/env bash
# Event-backbone benchmarks (docs/PERFORMANCE.md). Starts a private PostgreSQL (default
# durability: fsync on, synchronous_commit on) and a Redis with ./redis.conf (AOF everysec),
# measures the redis-benchmark XADD ceiling, then times imticket-bench (release build).
#   scripts/bench.sh                 all benchmarks
#   EVENTS=1000000 scripts/bench.sh  more events for the no-op run
#   BENCH_BIN=DIR scripts/bench.sh   binaries from DIR instead of a fresh release build
#                                    (to compare two builds in one session; bench_binaries)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_system_packages
ensure_rust
command -v redis-benchmark >/dev/null 2>&1 || die "redis-benchmark not found (apt-get install -y redis-tools)"

events=${EVENTS:-500000}
bench_binaries
bench_services_start
redis_port=$BENCH_REDIS_PORT
export IMTICKET_ENV=development RUST_LOG=warn
"$bin"/imticket-admin migrate >/dev/null

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(redis-server --version | cut -d' ' -f3); $(psql --version)"
echo "== redis-benchmark XADD ceiling (6 fields like an envelope, 4 clients, pipeline 64)"
redis-benchmark -p "$redis_port" -n 1000000 -c 4 -P 64 -q XADD bench:ceiling '*' \
  event_id 0193b1c4-0000-7000-8000-000000000000 type probe.ping version 1 \
  occurred_at 2026-11-21T00:00:00.000Z payload '{"n":1}' trace_id req-1 | tr '\r' '\n' | grep -v '^$' | tail -1
redis-cli -p "$redis_port" del bench:ceiling >/dev/null

echo "== no-op handler, one process, one consumer"
"$bin"/imticket-bench consume-rate --handler noop --events "$events"
echo "== no-op handler, one process, one consumer, without read-ahead (strict turns with Redis)"
"$bin"/imticket-bench consume-rate --handler noop --events "$events" --no-read-ahead
echo "== no-op handler, one process, two consumers"
"$bin"/imticket-bench consume-rate --handler noop --events "$events" --consumers 2
echo "== idempotent PostgreSQL handler (processed_events insert + effect), one process, one consumer"
"$bin"/imticket-bench consume-rate --handler probe --events 100000
echo "== idempotent PostgreSQL handler, one consumer, without read-ahead"
"$bin"/imticket-bench consume-rate --handler probe --events 100000 --no-read-ahead
echo "== idempotent PostgreSQL handler, one process, four consumers"
"$bin"/imticket-bench consume-rate --handler probe --events 100000 --consumers 4
echo "== outbox relay, one relay"
"$bin"/imticket-bench relay-rate --events 100000
echo "== outbox relay, two relays"
"$bin"/imticket-bench relay-rate --events 100000 --relays 2
