#!/usr/bin/env bash
# The operator console's pages with 100,000 dead letters and 100,000 waiting fans
# (docs/PERFORMANCE.md, "Operator console"): each page's answer time as curl measures it,
# beside the same-run references: the raw read of the whole dead-letter stream by redis-cli
# (what the first view's index build has to read) and the API's cheapest answer
# (GET /health/live). Three rounds; the first view of the dead letters after a restart of the
# API (its index is per process) is measured in each.
# Private PostgreSQL and Redis; release build; the API as a process.
#   scripts/bench-console.sh
#   BENCH_BIN=DIR scripts/bench-console.sh   binaries from DIR instead of a fresh release build
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_system_packages
ensure_rust

bench_binaries
bench_services_start
api_port=$(free_port)
export IMTICKET_ENV=development RUST_LOG=warn IMTICKET_HTTP_ADDR="127.0.0.1:$api_port" IMTICKET_RATE_LIMITS=off \
  IMTICKET_BOOTSTRAP_ADMIN_EMAIL=bench@imticket.test IMTICKET_BOOTSTRAP_ADMIN_PASSWORD=bench-password \
  IMTICKET_QUEUE_ACTIVE_CAPACITY=10
base="http://127.0.0.1:$api_port"
"$bin"/imticket-admin migrate >/dev/null
start_api() {
  "$bin"/imticket-api & api_pid=$!
  bench_pids+=("$api_pid")
  wait_until 60 "the API" curl -fsS "$base/health/ready"
}
start_api
token=$(curl -fsS -XPOST "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench@imticket.test","password":"bench-password"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
concert=$(curl -fsS -XPOST "$base/api/v1/concerts" -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"title":"Bench console"}' | sed 's/.*"id":"\([^"]*\)".*/\1/')
"$bin"/imticket-bench console-fill --dead-letters 100000 --fans 100000 --concert "$concert"
jar="$bench_work/cookies"
log_in() {
  rm -f "$jar"
  curl -fsS -c "$jar" -o /dev/null -XPOST "$base/console/login" -d 'email=bench@imticket.test&password=bench-password'
}
# timed LABEL PATH: the answer's status, total time and size.
timed() {
  curl -fsS -b "$jar" -o "$bench_work/body" -w "$1: %{http_code} in %{time_total} s, %{size_download} bytes\n" "$base$2"
}
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$api_pid/status"; }
echo "== machine: $(nproc) cores; load now: $(cut -d' ' -f1-3 /proc/loadavg); $(redis-server --version | cut -d' ' -f3)"
for run in 1 2 3; do
  echo "-- run $run (a fresh API process: no index yet)"
  kill "$api_pid"; wait "$api_pid" 2>/dev/null || true
  start_api
  log_in
  timed "dead letters, first view (index built)" /console/dead-letters
  grep -q '>100000</strong> dead letter' "$bench_work/body" || die "the page does not count 100,000"
  timed "dead letters, again                  " /console/dead-letters
  cp "$bench_work/body" "$bench_work/all"
  group=$(grep -o 'data-group="[0-9a-f]*"' "$bench_work/all" | head -1 | cut -d'"' -f2)
  timed "dead letters, a group's last page    " "/console/dead-letters?group=$group&after=9999999999999-0"
  timed "dead letters, page 2 of all          " "/console/dead-letters?after=$(grep -o 'after=[0-9-]*' "$bench_work/all" | head -1 | cut -d= -f2)"
  timed "one dead letter with its rows        " "/console/dead-letters/$(grep -o 'data-id="[0-9-]*"' "$bench_work/all" | head -1 | cut -d'"' -f2)"
  timed "dry run of the first 1,000           " "/console/dead-letters/replay?group=$group"
  timed "waiting rooms (100,000 in line)      " /console/rooms
  grep -q '>99990<' "$bench_work/body" || die "the page does not show 99,990 waiting"
  timed "streams                              " /console/streams
  started=$(date +%s%N)
  redis-cli -p "$BENCH_REDIS_PORT" --raw XRANGE imticket:stream:dead-letter - + >/dev/null
  echo "reference: redis-cli XRANGE of all 100,000 dead letters: $(( ($(date +%s%N) - started) / 1000000 )) ms"
  curl -fsS -o /dev/null -w "reference: GET /health/live: %{time_total} s\n" "$base/health/live"
  echo "API RSS: $(rss_kib) KiB"
done
