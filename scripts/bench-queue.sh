#!/usr/bin/env bash
# Waiting-room benchmarks (docs/PERFORMANCE.md, "Waiting room"): joins/s as a line grows past
# 100,000, status calls/s against that line, Redis commands per join and per status, and the
# opening of a 100,000-strong pre-queue; beside each, same-run references (redis-benchmark of
# the same scripts and of ZRANK/ZADD/ZCARD with as many clients; GET /health/live with the
# same load generator).
# Private PostgreSQL and Redis (./redis.conf); the API in release, one active slot per
# concert so joiners wait; no promoter runs, so the line only grows.
#   scripts/bench-queue.sh
#   JOINS=200000 CONNECTIONS=32 scripts/bench-queue.sh
#   BENCH_BIN=DIR scripts/bench-queue.sh     binaries from DIR instead of a fresh release build
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_system_packages
ensure_rust
command -v redis-benchmark >/dev/null 2>&1 || die "redis-benchmark not found (apt-get install -y redis-tools)"

joins=${JOINS:-110000}
pre_queue=${PRE_QUEUE:-100000}
connections=${CONNECTIONS:-64}
bench_binaries
bench_services_start
redis_port=$BENCH_REDIS_PORT
api_port=$(free_port)
addr="127.0.0.1:$api_port"
base="http://$addr"
# The API and the bench share JWT_SECRET: the bench mints the fans' access tokens itself.
export IMTICKET_ENV=development RUST_LOG=warn IMTICKET_HTTP_ADDR="$addr" IMTICKET_RATE_LIMITS=off \
  JWT_SECRET="bench-queue-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  IMTICKET_QUEUE_ACTIVE_CAPACITY=1 \
  IMTICKET_BOOTSTRAP_ADMIN_EMAIL=bench@imticket.test IMTICKET_BOOTSTRAP_ADMIN_PASSWORD=bench-password
"$bin"/imticket-admin migrate >/dev/null
"$bin"/imticket-api & bench_pids+=($!)
wait_until 60 "the API" curl -fsS "$base/health/ready"
token=$(curl -fsS -XPOST "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench@imticket.test","password":"bench-password"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
# new_concert TITLE [SALE_OPENS_AT]
new_concert() {
  local opens=null
  [ -n "${2:-}" ] && opens="\"$2\""
  curl -fsS -XPOST "$base/api/v1/concerts" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d "{\"title\":\"$1\",\"sale_opens_at\":$opens}" | sed 's/.*"id":"\([^"]*\)".*/\1/'
}
bench() { "$bin"/imticket-bench "$@"; }
# The rate and p50 of one custom command (its echo, keys and all, cut off).
rb() {
  redis-benchmark -p "$redis_port" -c "$connections" -q "$@" | tr '\r' '\n' | grep -v '^$' | tail -1 |
    sed 's/.*: \([0-9.]* requests per second\)/\1/'
}
now_ms() { date +%s%3N; }

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(redis-server --version | cut -d' ' -f3); $(psql --version)"
echo "== load: $connections connections, each sending back to back; API: actix-web, $(nproc) workers"
echo "== HTTP floor: GET /health/live, the same load generator"
bench http-load --addr "$addr" --path /health/live --requests 200000 --connections "$connections"

concert=$(new_concert "Bench line")
echo "== joins: $joins fans join one line (fresh user each), IMTICKET_QUEUE_ACTIVE_CAPACITY=1"
bench queue-join --addr "$addr" --concert "$concert" --requests "$joins" --connections "$connections" \
  --tokens-out "$bench_work/line.tokens"
echo "== status: every one of them asks where they stand, once"
bench queue-status --addr "$addr" --tokens-file "$bench_work/line.tokens" --connections "$connections"
echo "== HTTP floor again"
bench http-load --addr "$addr" --path /health/live --requests 200000 --connections "$connections"
echo "redis used_memory with the line: $(redis-cli -p "$redis_port" info memory | grep '^used_memory_human' | cut -d: -f2 | tr -d '\r')"

echo "== redis-benchmark references ($connections clients, no pipelining)"
read -ra status_args <<<"$(bench queue-evalsha-args --script status --concert "$concert" --tokens-file "$bench_work/line.tokens")"
scratch=$(cat /proc/sys/kernel/random/uuid)
read -ra join_args <<<"$(bench queue-evalsha-args --script join --concert "$scratch")"
echo "status script (EVALSHA), an entry in the middle of the line: $(rb -n 200000 "${status_args[@]}")"
echo "join script (EVALSHA), fresh users into a scratch line: $(rb -n 200000 -r 100000000 "${join_args[@]}")"
echo "ZRANK in the line: $(rb -n 200000 ZRANK "${status_args[3]}" "${status_args[-1]}")"
echo "ZCARD of the line: $(rb -n 200000 ZCARD "${status_args[3]}")"
echo "ZADD to a scratch set: $(rb -n 200000 -r 100000000 ZADD bench:zadd __rand_int__ m__rand_int__)"
echo "PING: $(rb -n 200000 PING)"
redis-cli -p "$redis_port" del bench:zadd >/dev/null

echo "== pre-queue: $pre_queue fans join before the sale opens, then the opening"
# The sale opens well after the joins can end (they run at more than 10,000/s): the opening is
# the concert's own sale_opens_at; queue-open refuses to measure if any joiner is not in the
# pre-queue when it begins.
opens_at=$(( $(now_ms) + 1000 * (pre_queue / 10000 + 15) ))
later=$(new_concert "Bench opening" "$(date -u -d "@$(( opens_at / 1000 ))" +%Y-%m-%dT%H:%M:%SZ)")
opens_at=$(( opens_at / 1000 * 1000 ))
bench queue-join --addr "$addr" --concert "$later" --requests "$pre_queue" --connections "$connections" \
  --tokens-out "$bench_work/pre.tokens"
bench queue-open --addr "$addr" --concert "$later" --tokens-file "$bench_work/pre.tokens" \
  --opens-at-ms "$opens_at" --connections "$connections"

echo "== imticket-admin queue list"
"$bin"/imticket-admin queue list
