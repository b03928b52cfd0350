#!/usr/bin/env bash
# Queue position pushed over SSE vs. polled (docs/PERFORMANCE.md, "Queue position pushed over
# SSE"): FANS waiting fans held on one API process for WINDOW seconds, first as open
# GET /queue/events streams, then as clients polling GET /queue/status at the
# poll_after_seconds the server asks for. Reported for each: the API's RSS and CPU, and Redis
# commands per second (INFO stats), over the window; the per-user rate limits on, as deployed
# (the per-address one off: every fan here shares 127.0.0.1, which no real line does).
# Private PostgreSQL and Redis; the API with one active slot per concert, so every fan waits;
# no promoter, so positions hold still (the steady cost of a waiting line).
#   scripts/bench-sse.sh
#   FANS=20000 WINDOW=120 scripts/bench-sse.sh
#   BENCH_BIN=DIR scripts/bench-sse.sh     binaries from DIR instead of a fresh release build
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_system_packages
ensure_rust

fans=${FANS:-10000}
window=${WINDOW:-60}
# One socket per fan on each side, plus the API's own.
ulimit -n "$(( fans * 2 + 4096 ))" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
bench_binaries
bench_services_start
api_port=$(free_port)
addr="127.0.0.1:$api_port"
export IMTICKET_ENV=development RUST_LOG=warn IMTICKET_HTTP_ADDR="$addr" \
  JWT_SECRET="bench-sse-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  IMTICKET_QUEUE_ACTIVE_CAPACITY=1 IMTICKET_SSE_MAX_STREAMS=$((fans + 10)) \
  IMTICKET_BOOTSTRAP_ADMIN_EMAIL=bench@imticket.test IMTICKET_BOOTSTRAP_ADMIN_PASSWORD=bench-password
"$bin"/imticket-admin migrate >/dev/null
start_api() {
  "$bin"/imticket-api & api_pid=$!
  bench_pids+=("$api_pid")
  wait_until 60 "the API" curl -fsS "http://$addr/health/ready"
}
# The joins send far more than one person would from this address.
IMTICKET_RATE_LIMITS=off start_api
token=$(curl -fsS -XPOST "http://$addr/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench@imticket.test","password":"bench-password"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
concert=$(curl -fsS -XPOST "http://$addr/api/v1/concerts" -H "authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{"title":"Bench SSE line"}' | sed 's/.*"id":"\([^"]*\)".*/\1/')
"$bin"/imticket-bench queue-join --addr "$addr" --concert "$concert" --requests "$fans" --connections 32 \
  --tokens-out "$bench_work/line.tokens" >/dev/null
kill "$api_pid"; wait "$api_pid" 2>/dev/null || true

echo "== machine: $(nproc) cores; load now: $(cut -d' ' -f1-3 /proc/loadavg); $fans waiting fans, ${window}s window, per-user rate limits on"
for mode in push poll; do
  # A fresh API process for each mode, so its RSS is its own.
  IMTICKET_RATE_LIMIT_IP_ALL=off start_api
  echo "== $mode"
  python3 scripts/lib/sse_load.py "$mode" "$bench_work/line.tokens" 127.0.0.1 "$api_port" "$api_pid" \
    "$BENCH_REDIS_PORT" --fans "$fans" --window "$window"
  kill "$api_pid"; wait "$api_pid" 2>/dev/null || true
done
echo "== reference: redis-benchmark PING, 50 clients: $(redis-benchmark -p "$BENCH_REDIS_PORT" -c 50 -n 100000 -q PING | tr '\r' '\n' | grep -v '^$' | tail -1)"
