#!/usr/bin/env bash
# Bursts (docs/PERFORMANCE.md, "Overload: bursts of 5,000"): 5,000 queue-status polls sent at
# once over 5,000 connections, and 5,000 holds at once, against one API process with the
# default overload settings (IMTICKET_HTTP_MAX_IN_FLIGHT 256, IMTICKET_HTTP_QUEUE_TIMEOUT_MS 2000):
# answers by status — 503 `overloaded` is shed on purpose, 503 `dependency_unavailable` would be
# a dependency timeout — and p50/p99 of what was served. ROUNDS rounds of each, alternating.
# Same-run references: redis-benchmark with 5,000 clients (EVALSHA of a one-key read, the size
# of a status poll) and pgbench TPC-B with 100 clients on the same servers.
#   scripts/bench-burst.sh
#   BURST=5000 ROUNDS=3 BENCH_BIN=target/release scripts/bench-burst.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_system_packages
ensure_rust

burst=${BURST:-5000}
rounds=${ROUNDS:-3}
# Both ends hold a socket per connection.
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((burst + 1000)) ] || die "ulimit -n $(ulimit -n) is too low for $burst connections"
pgbench=$(pg_bindir)/pgbench
[ -x "$pgbench" ] || pgbench=$(command -v pgbench) || die "pgbench not found"
bench_binaries
bench_services_start
api_port=$(free_port)
addr="127.0.0.1:$api_port"
base="http://$addr"
# One address sends for every fan: rate limits off. Every joiner active at once.
export IMTICKET_ENV=development RUST_LOG=warn IMTICKET_HTTP_ADDR="$addr" IMTICKET_RATE_LIMITS=off \
  JWT_SECRET="bench-burst-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  IMTICKET_QUEUE_ACTIVE_CAPACITY=1000000 IMTICKET_QUEUE_PROMOTE_PER_SECOND=1000000 \
  IMTICKET_QUEUE_ACTIVE_TTL_SECONDS=7200 IMTICKET_HOLD_TTL_SECONDS=7200 IMTICKET_API_METRICS_ADDR=off \
  IMTICKET_BOOTSTRAP_ADMIN_EMAIL=bench@imticket.test IMTICKET_BOOTSTRAP_ADMIN_PASSWORD=bench-password
"$bin"/imticket-admin migrate >/dev/null
"$bin"/imticket-api & bench_pids+=($!)
wait_until 60 "the API" curl -fsS "$base/health/ready"
token=$(curl -fsS -XPOST "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench@imticket.test","password":"bench-password"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
post() { curl -fsS -XPOST "$base/api/v1/$1" -H "authorization: Bearer $token" -H 'content-type: application/json' -d "$2"; }
id_of() { sed 's/.*"\(id\|job_id\)":"\([^"]*\)".*/\2/'; }
new_schedule() {
  local schedule job
  schedule=$(post "concerts/$1/schedules" "{\"starts_at\":\"$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)\"}" | id_of)
  job=$(post "schedules/$schedule/seats?mode=inline" \
    "{\"sections\":[{\"name\":\"A\",\"rows\":50,\"seats_per_row\":$(((burst + 49) / 50)),\"price\":100}]}" | id_of)
  until curl -fsS "$base/api/v1/jobs/$job" | grep -q '"status":"done"'; do sleep 0.05; done
  echo "$schedule"
}
bench() { "$bin"/imticket-bench "$@"; }

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(redis-server --version | cut -d' ' -f3); $(psql --version)"
echo "== API: one process, $(nproc) HTTP workers, max in flight 256, wait for a turn 2 s; ulimit -n $(ulimit -n); somaxconn $(cat /proc/sys/net/core/somaxconn)"
pg_createdb "$BENCH_PG_PORT" pgbench
"$pgbench" -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -i -s 10 -q pgbench 2>&1 | tail -1
status_script=$(redis-cli -p "$BENCH_REDIS_PORT" SCRIPT LOAD "return redis.call('HGET', KEYS[1], 'f')")
redis-cli -p "$BENCH_REDIS_PORT" HSET burst:ref f v >/dev/null

log "set-up: $burst fans in a line, and $rounds schedules of $burst seats"
concert=$(post concerts '{"title":"Burst"}' | id_of)
schedules=()
for _ in $(seq 1 "$rounds"); do schedules+=("$(new_schedule "$concert")"); done
bench queue-join --addr "$addr" --concert "$concert" --requests "$burst" --connections 64 \
  --tokens-out "$bench_work/line.tokens" | grep -E '^join|answers' || true
bench booking-fans --addr "$addr" --concert "$concert" --users "$burst" --connections 64 --out "$bench_work/fans" | tail -1

for round in $(seq 1 "$rounds"); do
  echo "== round $round: reference redis-benchmark, $burst clients, EVALSHA of one HGET"
  redis-benchmark -p "$BENCH_REDIS_PORT" -c "$burst" -n $((burst * 10)) -q EVALSHA "$status_script" 1 burst:ref 2>&1 | tr '\r' '\n' | grep -E 'requests per second' | tail -1
  echo "== round $round: $burst GET /queue/status at once, over $burst connections"
  bench queue-status --addr "$addr" --tokens-file "$bench_work/line.tokens" --connections "$burst" | grep -E '^GET /queue/status|answers'
  echo "== round $round: reference pgbench TPC-B, 100 clients, 10 s"
  "$pgbench" -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -c 100 -j 2 -T 10 pgbench 2>&1 | grep -E 'latency average|^tps'
  echo "== round $round: $burst holds at once (a distinct seat each), over $burst connections"
  bench booking-holds --addr "$addr" --fans "$bench_work/fans" --schedule "${schedules[$((round - 1))]}" \
    --connections "$burst" | grep -vE '^\s*$'
done
