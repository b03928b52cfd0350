#!/usr/bin/env bash
# The on-sale on the scaled-out shape beside the single node (docs/PERFORMANCE.md, "The on-sale
# scaled out"), same run, alternating rounds:
#   single   one imticket-api (clients connect to it), one `imticket-worker all`, one Redis,
#            PostgreSQL directly
#   scaled   scripts/scale-out.sh: HAProxy in front of 2 imticket-api, 2 processes of every
#            worker role, a Redis Cluster of 3 masters + 3 replicas (IMTICKET_STREAM_PARTITIONS=3),
#            PostgreSQL through a transaction-mode PgBouncer (scripts/pgbouncer.sh,
#            IMTICKET_DB_POOLER=transaction)
# Per round and shape: holds/s (HOLDS fans, a distinct seat each of one schedule) and the whole
# flow join → hold → pay → confirmed for FLOW fans (tickets/s end to end, p50/p99 of the three
# requests), all through the shape's front door; PostgreSQL's sessions during the flow. Same-run
# reference: pgbench TPC-B on the same PostgreSQL (16 clients, 20 s) before each round.
#   scripts/bench-scaled.sh
#   ROUNDS=3 HOLDS=10000 FLOW=5000 CONNECTIONS=64 scripts/bench-scaled.sh
#   BENCH_BIN=DIR scripts/bench-scaled.sh    binaries from DIR (scale-out.sh still runs its
#                                            cargo build: keep target/release current)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_system_packages haproxy
ensure_rust

rounds=${ROUNDS:-2}
holds=${HOLDS:-5000}
flow=${FLOW:-3000}
connections=${CONNECTIONS:-64}
pgbench=$(pg_bindir)/pgbench
[ -x "$pgbench" ] || pgbench=$(command -v pgbench) || die "pgbench not found"
bench_binaries
bench_services_start
direct_url=$DATABASE_URL single_redis=$REDIS_URL
pgb_url=$(bash scripts/pgbouncer.sh start "$bench_work/pgbouncer" "$direct_url")
cluster_url=$(bash scripts/redis-cluster.sh start "$bench_work/cluster")
scaled_pid=""
stop_everything() {
  [ -n "$scaled_pid" ] && { kill -TERM "$scaled_pid" 2>/dev/null || true; wait "$scaled_pid" 2>/dev/null || true; }
  bash scripts/redis-cluster.sh stop "$bench_work/cluster" || true
  bash scripts/pgbouncer.sh stop "$bench_work/pgbouncer" || true
  bench_services_stop
}
trap stop_everything EXIT

export IMTICKET_ENV=development RUST_LOG=warn IMTICKET_RATE_LIMITS=off \
  JWT_SECRET="bench-scaled-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  IMTICKET_QUEUE_ACTIVE_CAPACITY=1000000 IMTICKET_QUEUE_PROMOTE_PER_SECOND=1000000 \
  IMTICKET_QUEUE_ACTIVE_TTL_SECONDS=7200 IMTICKET_HOLD_TTL_SECONDS=7200 \
  IMTICKET_API_METRICS_ADDR=off IMTICKET_WORKER_METRICS_ADDR=127.0.0.1:0 \
  IMTICKET_BOOTSTRAP_ADMIN_EMAIL=bench@imticket.test IMTICKET_BOOTSTRAP_ADMIN_PASSWORD=bench-password
"$bin"/imticket-admin migrate >/dev/null
pg_createdb "$BENCH_PG_PORT" pgbench
"$pgbench" -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -i -s 10 -q pgbench 2>&1 | tail -1
bench() { "$bin"/imticket-bench "$@"; }
db_sessions() {
  psql -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -tAc "SELECT count(*) FROM pg_stat_activity WHERE datname = 'bench'" postgres
}

# run_load SHAPE ADDR: the set-up through ADDR, then the holds and the flow.
run_load() {
  local shape=$1 addr=$2 base="http://$2" token
  wait_until 120 "the $shape shape at $base" curl -fsS "$base/health/ready"
  token=$(curl -fsS -XPOST "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"bench@imticket.test","password":"bench-password"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  post() { curl -fsS -XPOST "$base/api/v1/$1" -H "authorization: Bearer $token" -H 'content-type: application/json' -d "$2"; }
  id_of() { sed 's/.*"\(id\|job_id\)":"\([^"]*\)".*/\2/'; }
  new_schedule() {
    local schedule job
    schedule=$(post "concerts/$1/schedules" "{\"starts_at\":\"$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)\"}" | id_of)
    job=$(post "schedules/$schedule/seats?mode=inline" \
      "{\"sections\":[{\"name\":\"A\",\"rows\":100,\"seats_per_row\":$2,\"price\":100}]}" | id_of)
    until curl -fsS "$base/api/v1/jobs/$job" | grep -q '"status":"done"'; do sleep 0.05; done
    echo "$schedule"
  }
  local sale sale_schedule whole whole_schedule
  sale=$(post concerts "{\"title\":\"Scaled holds $shape\"}" | id_of)
  sale_schedule=$(new_schedule "$sale" $((holds / 100)))
  whole=$(post concerts "{\"title\":\"Scaled flow $shape\"}" | id_of)
  whole_schedule=$(new_schedule "$whole" $((flow / 100)))
  echo "-- $shape: holds"
  bench booking-fans --addr "$addr" --concert "$sale" --users "$holds" --connections "$connections" \
    --out "$bench_work/$shape.fans" >/dev/null
  bench booking-holds --addr "$addr" --fans "$bench_work/$shape.fans" --schedule "$sale_schedule" \
    --connections "$connections" | grep -E 'requests/s|holds made'
  echo "-- $shape: flow"
  (sleep 5; echo "PostgreSQL sessions of the bench database during the flow: $(db_sessions)") &
  local sessions=$!
  bench booking-flow --addr "$addr" --concert "$whole" --schedule "$whole_schedule" --users "$flow" \
    --connections "$connections" | grep -E 'requests/s|tickets/s'
  wait "$sessions"
}

echo "== machine: $(nproc) cores; $(redis-server --version | cut -d' ' -f3); $(psql --version); $(haproxy -v | head -1 | cut -d' ' -f1-3); $(pgbouncer --version 2>/dev/null | head -1)"
echo "== load: $connections connections; $holds holds, a flow of $flow fans per shape and round"
for round in $(seq 1 "$rounds"); do
  echo "== round $round: reference pgbench TPC-B (16 clients, 2 threads, 20 s)"
  "$pgbench" -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -c 16 -j 2 -T 20 pgbench 2>&1 | grep -E '^tps'
  # single
  addr="127.0.0.1:$(free_port)"
  env DATABASE_URL="$direct_url" REDIS_URL="$single_redis" IMTICKET_REDIS_KEY_PREFIX="s$round:" \
    IMTICKET_HTTP_ADDR="$addr" "$bin"/imticket-api & api=$!
  env DATABASE_URL="$direct_url" REDIS_URL="$single_redis" IMTICKET_REDIS_KEY_PREFIX="s$round:" \
    "$bin"/imticket-worker all & worker=$!
  DATABASE_URL=$direct_url REDIS_URL=$single_redis IMTICKET_REDIS_KEY_PREFIX="s$round:" run_load single "$addr"
  kill -TERM "$api" "$worker" 2>/dev/null || true
  wait "$api" "$worker" 2>/dev/null || true
  # scaled
  lb="127.0.0.1:$(free_port)"
  env DATABASE_URL="$pgb_url" IMTICKET_DB_POOLER=transaction REDIS_URL="$cluster_url" IMTICKET_REDIS_CLUSTER=true \
    IMTICKET_STREAM_PARTITIONS=3 IMTICKET_REDIS_KEY_PREFIX="c$round:" IMTICKET_DATA_DIR="$bench_work/scaled" \
    IMTICKET_API_PROCESSES=2 IMTICKET_API_FIRST_PORT="$(free_port)" IMTICKET_WORKERS_PER_ROLE=2 \
    IMTICKET_LB_ADDR="$lb" IMTICKET_LB_STATS_ADDR="127.0.0.1:$(free_port)" IMTICKET_PROFILE=release \
    IMTICKET_HTTP_DRAIN_SECONDS=0 bash scripts/scale-out.sh >"$bench_work/scaled-$round.log" 2>&1 &
  scaled_pid=$!
  DATABASE_URL=$direct_url REDIS_URL=$cluster_url IMTICKET_REDIS_CLUSTER=true IMTICKET_STREAM_PARTITIONS=3 \
    IMTICKET_REDIS_KEY_PREFIX="c$round:" run_load scaled "$lb"
  echo "PgBouncer after the flow: $(bash scripts/pgbouncer.sh show "$bench_work/pgbouncer" pools 2>/dev/null | grep -E '^ *bench' | head -1 || true)"
  kill -TERM "$scaled_pid" 2>/dev/null || true
  wait "$scaled_pid" 2>/dev/null || true
  scaled_pid=""
done
