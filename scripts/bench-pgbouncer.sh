#!/usr/bin/env bash
# PostgreSQL through PgBouncer (docs/PERFORMANCE.md, "PostgreSQL through PgBouncer"): holds/s
# of APIS API processes (sharing one port) beside WORKERS worker processes (`all` roles), each
# with a pool of POOL connections, in the configurations of CONFIGS (all four by default),
# alternating round by round:
#   direct          DATABASE_URL PostgreSQL, IMTICKET_DB_POOLER=none (sqlx's statement cache on)
#   direct-nocache  the same with sqlx's statement cache off (`?statement-cache-capacity=0`;
#                   not a supported setting: sqlx 0.8 then leaks a named statement per
#                   statement run): what the cache alone is worth
#   direct-tx       DATABASE_URL PostgreSQL, IMTICKET_DB_POOLER=transaction: the setting's own
#                   cost (statement cache off, every unit of work an explicit transaction)
#   pgbouncer       DATABASE_URL a PgBouncer in transaction mode (scripts/pgbouncer.sh) keeping
#                   PGBOUNCER_POOL_SIZE server sessions, IMTICKET_DB_POOLER=transaction
# Each run: fresh processes, HOLDS fans (rows inserted with SQL, tokens minted, each joins the
# line over HTTP first) each holding a distinct seat of a fresh HOLDS-seat schedule over
# CONNECTIONS connections; during the holds, PostgreSQL's sessions are counted every 0.25 s
# (pg_stat_activity; peak shown), and after them PgBouncer's SHOW POOLS and the CPU time
# PgBouncer used for them (/proc/PID/stat); then PgBouncer closes its server sessions (KILL,
# RESUME), so the next run counts only its own. Same-run references:
# pgbench TPC-B (scale 10, 16 clients, 2 threads, 15 s) on PostgreSQL directly and through the
# PgBouncer, before the first round and after each.
# Private PostgreSQL (default durability, pg_stat_statements) and Redis (./redis.conf).
#   scripts/bench-pgbouncer.sh                       defaults: ROUNDS=3 APIS=8 WORKERS=4 POOL=20 PGBOUNCER_POOL_SIZE=20 HOLDS=20000 CONNECTIONS=64
#   CONFIGS="direct pgbouncer" scripts/bench-pgbouncer.sh   some configurations only
#   APIS=1 WORKERS=0 scripts/bench-pgbouncer.sh      one API, as scripts/bench-booking.sh's test 1
#   BENCH_BIN=DIR scripts/bench-pgbouncer.sh         binaries from DIR instead of a fresh release build
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_system_packages
ensure_pgbouncer
ensure_rust

rounds=${ROUNDS:-3}
apis=${APIS:-8}
workers=${WORKERS:-4}
pool=${POOL:-20}
holds=${HOLDS:-20000}
connections=${CONNECTIONS:-64}
export PGBOUNCER_POOL_SIZE=${PGBOUNCER_POOL_SIZE:-20}
pgbench=$(pg_bindir)/pgbench
[ -x "$pgbench" ] || pgbench=$(command -v pgbench) || die "pgbench not found"
bench_binaries
export PG_EXTRA_OPTS="-c shared_preload_libraries=pg_stat_statements ${PG_EXTRA_OPTS:-}"
bench_services_start
direct_url=$DATABASE_URL
bouncer_dir=$bench_work/pgbouncer
stop_bouncer() {
  scripts/pgbouncer.sh stop "$bouncer_dir"
  rm -rf "$(pg_usable_dir "$bouncer_dir")"
  bench_services_stop
}
trap stop_bouncer EXIT
bouncer_url=$(scripts/pgbouncer.sh start "$bouncer_dir" "$direct_url")
bouncer_port=$(sed 's|.*:\([0-9]*\)/.*|\1|' <<<"$bouncer_url")
bouncer_pid=$(cat "$(pg_usable_dir "$bouncer_dir")/pgbouncer.pid")
# CPU seconds a process has used (user + system), from /proc.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"; }
console() { psql -h 127.0.0.1 -p "$bouncer_port" -U postgres -tA -F ' ' -c "$1" pgbouncer; }
api_port=$(free_port)
addr="127.0.0.1:$api_port"
base="http://$addr"
# Every joiner active at once, holds outliving the run; the API and the bench share JWT_SECRET.
# The bench's own statements (set-up, counters) go to PostgreSQL directly.
export IMTICKET_ENV=development RUST_LOG=warn IMTICKET_HTTP_ADDR="$addr" IMTICKET_RATE_LIMITS=off \
  IMTICKET_API_METRICS_ADDR=off IMTICKET_WORKER_METRICS_ADDR=127.0.0.1:0 \
  JWT_SECRET="bench-pgbouncer-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  IMTICKET_QUEUE_ACTIVE_CAPACITY=1000000 IMTICKET_QUEUE_PROMOTE_PER_SECOND=1000000 \
  IMTICKET_QUEUE_ACTIVE_TTL_SECONDS=7200 IMTICKET_HOLD_TTL_SECONDS=7200 \
  IMTICKET_BOOTSTRAP_ADMIN_EMAIL=bench@imticket.test IMTICKET_BOOTSTRAP_ADMIN_PASSWORD=bench-password
"$bin"/imticket-admin migrate >/dev/null
psql -q -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' bench
db() { psql -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -tAc "$1" bench; }

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(psql --version); $(pgbouncer_bin -V | head -1)"
echo "== processes: $apis API (one port) + $workers workers (all roles), pool $pool each = up to $(((apis + workers) * pool)) connections; PgBouncer: $PGBOUNCER_POOL_SIZE server sessions; load: $connections connections"
pg_createdb "$BENCH_PG_PORT" pgbench
"$pgbench" -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -i -s 10 -q pgbench 2>&1 | tail -1
references() {
  local tps_direct tps_bouncer
  tps_direct=$("$pgbench" -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -c 16 -j 2 -T 15 pgbench 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  tps_bouncer=$("$pgbench" -h 127.0.0.1 -p "$bouncer_port" -U postgres -c 16 -j 2 -T 15 pgbench 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  echo "== reference $1: pgbench TPC-B direct $tps_direct tps, through PgBouncer $tps_bouncer tps"
}

token=
post() { curl -fsS -XPOST "$base/api/v1/$1" -H "authorization: Bearer $token" -H 'content-type: application/json' -d "$2"; }
id_of() { sed 's/.*"\(id\|job_id\)":"\([^"]*\)".*/\2/'; }

# run CONFIG ROUND: one measured run of CONFIG with fresh processes.
run() {
  local config=$1 round=$2 url pooler pids=() i kept=("${bench_pids[@]}")
  case $config in
    direct) url=$direct_url pooler=none ;;
    direct-nocache) url="$direct_url?statement-cache-capacity=0" pooler=none ;;
    direct-tx) url=$direct_url pooler=transaction ;;
    pgbouncer) url=$bouncer_url pooler=transaction ;;
  esac
  for ((i = 0; i < apis; i++)); do
    DATABASE_URL=$url IMTICKET_DB_POOLER=$pooler IMTICKET_DB_MAX_CONNECTIONS=$pool "$bin"/imticket-api & pids+=($!)
  done
  for ((i = 0; i < workers; i++)); do
    DATABASE_URL=$url IMTICKET_DB_POOLER=$pooler IMTICKET_DB_MAX_CONNECTIONS=$pool "$bin"/imticket-worker all & pids+=($!)
  done
  # Stopped on exit too if the run fails half-way.
  bench_pids+=("${pids[@]}")
  wait_until 60 "the API" curl -fsS "$base/health/ready"
  token=$(curl -fsS -XPOST "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"bench@imticket.test","password":"bench-password"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  local concert schedule job
  concert=$(post concerts "{\"title\":\"Bench $config $round\"}" | id_of)
  schedule=$(post "concerts/$concert/schedules" "{\"starts_at\":\"$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)\"}" | id_of)
  job=$(post "schedules/$schedule/seats?mode=inline" \
    "{\"sections\":[{\"name\":\"A\",\"rows\":100,\"seats_per_row\":$((holds / 100)),\"price\":100}]}" | id_of)
  until curl -fsS "$base/api/v1/jobs/$job" | grep -q '"status":"done"'; do sleep 0.05; done
  "$bin"/imticket-bench booking-fans --addr "$addr" --concert "$concert" --users "$holds" \
    --connections "$connections" --out "$bench_work/$config.fans" >/dev/null
  # PostgreSQL's sessions of the bench database while the holds run (this sampler's excepted).
  local samples=$bench_work/sessions-$config-$round cpu_before
  cpu_before=$(cpu_seconds "$bouncer_pid")
  (while :; do db "SELECT count(*) FROM pg_stat_activity WHERE datname = 'bench' AND pid <> pg_backend_pid()"; sleep 0.25; done) >"$samples" 2>/dev/null &
  local sampler=$!
  local out
  out=$("$bin"/imticket-bench booking-holds --addr "$addr" --fans "$bench_work/$config.fans" --schedule "$schedule" \
    --connections "$connections")
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  local pools=""
  if [ "$config" = pgbouncer ]; then
    # SHOW POOLS (1.18): database user cl_active cl_waiting cl_active_cancel_req
    # cl_waiting_cancel_req sv_active sv_active_cancel sv_being_canceled sv_idle sv_used
    # sv_tested sv_login maxwait maxwait_us pool_mode
    pools=$(console 'SHOW POOLS' |
      awk '$1 == "bench" {print "; PgBouncer: " $3 " clients, " $4 " waiting, " $7 + $10 + $11 + $12 + $13 " server sessions"}')
    pools="$pools, $(awk -v a="$cpu_before" -v b="$(cpu_seconds "$bouncer_pid")" -v n="$holds" \
      'BEGIN {printf "%.1f s of CPU for the holds (%.3f ms a hold)", b - a, (b - a) * 1000 / n}')"
  fi
  echo "== round $round, $config: $(grep -o '[0-9]* holds/s' <<<"$out")" \
    "($(grep -o 'p50 [0-9]* us, p99 [0-9]* us' <<<"$out" | head -1));" \
    "PostgreSQL sessions during the holds: peak $(sort -n "$samples" | tail -1)$pools"
  grep -E '^(outcomes|postgres)' <<<"$out" | sed 's/^/   /'
  for i in "${pids[@]}"; do kill "$i" 2>/dev/null || true; done
  for i in "${pids[@]}"; do wait "$i" 2>/dev/null || true; done
  bench_pids=("${kept[@]}")
  if [ "$config" = pgbouncer ]; then console 'KILL bench' >/dev/null && console 'RESUME bench' >/dev/null; fi
}

read -ra configs <<<"${CONFIGS:-direct direct-nocache direct-tx pgbouncer}"
for config in "${configs[@]}"; do
  case $config in direct | direct-nocache | direct-tx | pgbouncer) ;; *) die "unknown configuration $config" ;; esac
done
references "before round 1"
for ((r = 1; r <= rounds; r++)); do
  # The order rotates each round, so no configuration always runs first or last.
  for ((k = 0; k < ${#configs[@]}; k++)); do
    run "${configs[$(((k + r - 1) % ${#configs[@]}))]}" "$r"
  done
  references "after round $r"
done
