#!/usr/bin/env bash
# Runs ImTicket scaled out on this machine: PostgreSQL and Redis (./redis.conf) as
# scripts/run.sh starts them, migrations, N `imticket-api` processes each on its own port, two
# processes of every worker role, and HAProxy in front of the APIs on one port
# (scripts/haproxy/; docs/architecture.md, "A load balancer in front, and draining").
#
#   scripts/scale-out.sh                      # 2 APIs behind http://127.0.0.1:8080
#   IMTICKET_API_PROCESSES=4 scripts/scale-out.sh
#   kill -USR1 "$(cat .data/run.pid)"         # a rolling restart of the APIs, one at a time
#
# Ctrl-C, SIGTERM or SIGHUP stops everything by pid (HAProxy and the APIs finish what is in
# flight, workers their batch; then Redis, then PostgreSQL). SIGUSR1 restarts each API in turn: SIGTERM
# (it drains: /health/ready answers 503 until HAProxy has taken it out), wait for its exit,
# start it again, wait until HAProxy has it back in rotation; each step is a line of
# <data dir>/rolling-restarts.log, and <data dir>/rolling-restarts.done counts the finished
# rounds (scripts/rolling-restart.sh drives load through one).
#
# Installs haproxy, redis-server and postgresql from Debian's packages when missing. Settings,
# from the environment (./.env is not read; any variable of .env.example reaches every process):
#   IMTICKET_API_PROCESSES    (2)               imticket-api processes
#   IMTICKET_API_FIRST_PORT   (8081)            API n listens on 127.0.0.1:<first port + n - 1>
#   IMTICKET_WORKERS_PER_ROLE (2)               imticket-worker processes of each role
#   IMTICKET_LB_ADDR          (127.0.0.1:8080)  HAProxy, where clients connect
#   IMTICKET_LB_STATS_ADDR    (127.0.0.1:8404)  HAProxy's /stats page (and /stats;csv)
#   DATABASE_URL, REDIS_URL   (unset)           use these servers; none of that kind is started
#   IMTICKET_RUN_PGBOUNCER    (off)             `on`: the processes reach PostgreSQL through a
#                                               transaction-mode PgBouncer (scripts/pgbouncer.sh)
#   IMTICKET_RUN_REDIS        (single)          `cluster`: a local Redis Cluster instead of one Redis
#                                               (scripts/redis-cluster.sh, 3 masters + 3 replicas;
#                                               IMTICKET_STREAM_PARTITIONS=3)
#   IMTICKET_DATA_DIR (.data), IMTICKET_PG_PORT (55432), IMTICKET_REDIS_PORT (56379),
#   IMTICKET_PROFILE (release): as for scripts/run.sh, with which it shares the data directory
#   (and its lock: one of the two at a time) and <data dir>/run.env, which imticket-admin reads.
# The APIs trust 127.0.0.1 for X-Forwarded-For (IMTICKET_TRUSTED_PROXIES, unless set), so the
# per-IP rate limits count each fan's own address, not HAProxy's.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

data_dir=$(mkdir -p "${IMTICKET_DATA_DIR:-.data}" && cd "${IMTICKET_DATA_DIR:-.data}" && pwd)
pg_port=${IMTICKET_PG_PORT:-55432}
redis_port=${IMTICKET_REDIS_PORT:-56379}
apis=${IMTICKET_API_PROCESSES:-2}
api_first_port=${IMTICKET_API_FIRST_PORT:-8081}
per_role=${IMTICKET_WORKERS_PER_ROLE:-2}
lb_addr=${IMTICKET_LB_ADDR:-127.0.0.1:8080}
lb_stats=${IMTICKET_LB_STATS_ADDR:-127.0.0.1:8404}
profile=${IMTICKET_PROFILE:-release}
target_dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
roles="seat-creation payment expiry expiry-scheduler queue-promoter outbox-relay statistics notifications"
# (Each process takes a port of its metrics range: 20 for the APIs, 20 for the workers.)
[[ $apis =~ ^[0-9]+$ ]] && [ "$apis" -ge 1 ] && [ "$apis" -le 20 ] \
  || die "IMTICKET_API_PROCESSES: expected 1 to 20, got '$apis'"
# Every role's processes share the workers' 20 metrics ports (8 roles: at most 2 each).
[[ $per_role =~ ^[1-2]$ ]] || die "IMTICKET_WORKERS_PER_ROLE: expected 1 or 2, got '$per_role'"
[[ $api_first_port =~ ^[0-9]+$ ]] && [ "$api_first_port" -ge 1024 ] && [ $((api_first_port + apis - 1)) -le 65535 ] \
  || die "IMTICKET_API_FIRST_PORT: expected a port from 1024 with room for $apis APIs, got '$api_first_port'"

lock_run "$data_dir" scripts/scale-out.sh
rm -f "$data_dir/run.env" "$data_dir/rolling-restarts.log" "$data_dir/rolling-restarts.done"
trap 'rm -f "$data_dir/run.pid"' EXIT

ensure_system_packages haproxy
ensure_rust
pg_data=$(pg_usable_dir "$data_dir/pg")
stop_leftovers "$data_dir" "$pg_data"

api_addr() { echo "127.0.0.1:$((api_first_port + $1 - 1))"; }
checks=("$lb_addr HAProxy (IMTICKET_LB_ADDR)" "$lb_stats HAProxy's stats (IMTICKET_LB_STATS_ADDR)")
[ -z "${DATABASE_URL:-}" ] && checks+=("127.0.0.1:$pg_port PostgreSQL (IMTICKET_PG_PORT)")
[ -z "${REDIS_URL:-}" ] && checks+=("127.0.0.1:$redis_port Redis (IMTICKET_REDIS_PORT)")
for n in $(seq "$apis"); do checks+=("$(api_addr "$n") API $n (IMTICKET_API_FIRST_PORT)"); done
for check in "${checks[@]}"; do
  addr=${check%% *}
  addr_in_use "$addr" && die "port ${addr##*:} for ${check#* } is already in use by another process; free it or choose another port"
done

log "building ($profile profile; the first build takes a few minutes)"
cargo build --quiet --profile "$profile" --bins
bin=target/$target_dir
logs=$data_dir/logs
mkdir -p "$logs"

declare -A names=() outputs=() api_pid=()
pids=()
lb_pid="" redis_pid="" pg_started="" ready_pid="" cluster_started="" pgbouncer_started=""

# Everything this run started, by pid, for the next run should this one be killed with -9.
remember_pids() { printf '%s\n' "${pids[@]}" >"$data_dir/run.pids"; }

# start NAME COMMAND…: in the background, its output in $logs/NAME.log.
start() {
  local name=$1
  shift
  "$@" 9>&- >>"$logs/$name.log" 2>&1 &
  pids+=($!)
  names[$!]=$name
  outputs[$!]=$logs/$name.log
  remember_pids
}
forget() {
  local pid=$1 kept=() p
  for p in "${pids[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
  pids=("${kept[@]}")
  unset "names[$pid]" "outputs[$pid]"
  remember_pids
}

# HAProxy goes first (SIGUSR1: it finishes what is in flight and exits), then the APIs (SIGINT:
# no drain, nobody routes to them any more) and the workers (SIGTERM: they finish their batch),
# then Redis (it writes its AOF), then PostgreSQL.
cleanup() {
  local status=$? pid
  # Every step runs whatever the one before it said: a process already gone must not stop the
  # clean-up half way (set -e would, leaving the rest running).
  set +e
  trap - INT TERM HUP USR1 EXIT
  log "stopping"
  [ -n "$ready_pid" ] && kill "$ready_pid" 2>/dev/null
  if [ -n "$lb_pid" ]; then
    kill -USR1 "$lb_pid" 2>/dev/null || true
    wait "$lb_pid" 2>/dev/null || true
  fi
  for pid in "${pids[@]}"; do
    [ "$pid" = "$lb_pid" ] || [ "$pid" = "$redis_pid" ] && continue
    if [[ ${names[$pid]:-} == api-* ]]; then kill -INT "$pid" 2>/dev/null || true; else kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for pid in "${pids[@]}"; do [ "$pid" = "$redis_pid" ] || wait "$pid" 2>/dev/null || true; done
  if [ -n "$redis_pid" ]; then
    kill -TERM "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  [ -n "$cluster_started" ] && bash scripts/redis-cluster.sh stop "$data_dir/cluster"
  [ -n "$pgbouncer_started" ] && bash scripts/pgbouncer.sh stop "$data_dir/pgbouncer"
  [ -n "$pg_started" ] && pg_stop "$pg_data"
  rm -f "$data_dir/run.env" "$data_dir/run.pid" "$data_dir/redis.pid" "$data_dir/run.pids"
  log "stopped"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 0' INT TERM HUP
# A rolling restart asked for: done by the main loop once everything runs.
restart_asked=""
trap 'restart_asked=yes' USR1

# start_postgres / start_redis: this run's own server, unless DATABASE_URL / REDIS_URL name one.
start_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    log "PostgreSQL: DATABASE_URL from the environment (none started here)"
    return
  fi
  pg_started=yes
  pg_start "$pg_data" "$pg_port" 9>&-
  pg_createdb "$pg_port" imticket
  export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/imticket"
}
# start_pgbouncer: with IMTICKET_RUN_PGBOUNCER=on, a transaction-mode PgBouncer in front of the
# PostgreSQL (scripts/pgbouncer.sh; its files in <data dir>/pgbouncer), which every process then
# reaches through it with IMTICKET_DB_POOLER=transaction.
start_pgbouncer() {
  [ "${IMTICKET_RUN_PGBOUNCER:-off}" = on ] || return 0
  DATABASE_URL=$(bash scripts/pgbouncer.sh start "$data_dir/pgbouncer" "$DATABASE_URL" 9>&-)
  pgbouncer_started=yes
  export DATABASE_URL IMTICKET_DB_POOLER=transaction
  log "PostgreSQL through PgBouncer (transaction pooling) at ${DATABASE_URL##*@}"
}
start_redis() {
  if [ -n "${REDIS_URL:-}" ]; then
    log "Redis: REDIS_URL from the environment (none started here)"
    return
  fi
  if [ "${IMTICKET_RUN_REDIS:-single}" = cluster ]; then
    log "starting a local Redis Cluster (3 masters + 3 replicas) in $data_dir/cluster"
    REDIS_URL=$(bash scripts/redis-cluster.sh start "$data_dir/cluster" 9>&-)
    cluster_started=yes
    export REDIS_URL IMTICKET_REDIS_CLUSTER=true IMTICKET_STREAM_PARTITIONS=${IMTICKET_STREAM_PARTITIONS:-3}
    return
  fi
  redis_start "$data_dir/redis" "$redis_port" 9>&-
  redis_pid=$REDIS_PID
  pids+=("$redis_pid")
  names[$redis_pid]=redis-server
  outputs[$redis_pid]=$data_dir/redis/redis.log
  remember_pids
  redis-cli -p "$redis_port" INFO server | sed -n 's/^process_id:\([0-9]*\).*/\1/p' >"$data_dir/redis.pid"
  export REDIS_URL="redis://127.0.0.1:$redis_port"
}

# start_api N: API n on its own port (no SO_REUSEPORT: a second process on it fails to bind
# rather than sharing its connections behind HAProxy's back).
start_api() {
  start "api-$1" env IMTICKET_HTTP_ADDR="$(api_addr "$1")" IMTICKET_HTTP_REUSE_PORT=off "$bin/imticket-api"
  api_pid[$1]=$!
}
start_worker() { start "$1-$2" "$bin/imticket-worker" "$1"; }
start_haproxy() {
  local servers=() n
  for n in $(seq "$apis"); do servers+=("$(api_addr "$n")"); done
  bash scripts/haproxy/servers.sh "${servers[@]}" >"$data_dir/haproxy-servers.cfg"
  start haproxy env LB_BIND="$lb_addr" LB_STATS_BIND="$lb_stats" \
    haproxy -db -f scripts/haproxy/haproxy.cfg -f "$data_dir/haproxy-servers.cfg"
  lb_pid=$!
}

# lb_state SERVER: its state as HAProxy's health checks see it (UP, DOWN, "UP 1/2", …).
lb_state() {
  curl -fsS "http://$lb_stats/stats;csv" 2>/dev/null |
    awk -F, -v s="$1" '$1 == "api" && $2 == s { print $18 }'
}
# wait_lb SERVER STATE SECONDS: until HAProxy sees SERVER in STATE; 1 if it never does.
wait_lb() {
  local deadline=$((SECONDS + $3))
  until [ "$(lb_state "$1")" = "$2" ]; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}

start_postgres
start_pgbouncer
start_redis
export IMTICKET_REDIS_KEY_PREFIX=${IMTICKET_REDIS_KEY_PREFIX:-imticket:}
export IMTICKET_ENV=${IMTICKET_ENV:-development}
export IMTICKET_TRUSTED_PROXIES=${IMTICKET_TRUSTED_PROXIES:-127.0.0.1/32}
export IMTICKET_HTTP_ADDR=$lb_addr
export IMTICKET_METRICS_TARGETS_DIR=$data_dir/targets
rm -rf "$IMTICKET_METRICS_TARGETS_DIR"
export IMTICKET_BOOTSTRAP_ADMIN_EMAIL=${IMTICKET_BOOTSTRAP_ADMIN_EMAIL:-admin@imticket.local}
export IMTICKET_BOOTSTRAP_ADMIN_PASSWORD=${IMTICKET_BOOTSTRAP_ADMIN_PASSWORD:-admin-password}
# Every API must verify every other's tokens: in development they share the built-in key,
# in production JWT_SECRET must be set (each API refuses to start without it).
# IMTICKET_HTTP_ADDR here is the balancer's: what clients of the run (imticket-admin, a script)
# should use; each API's own is in its log.
write_run_env "$data_dir/run.env" scripts/scale-out.sh DATABASE_URL REDIS_URL IMTICKET_REDIS_KEY_PREFIX \
  IMTICKET_ENV IMTICKET_HTTP_ADDR IMTICKET_METRICS_TARGETS_DIR JWT_SECRET IMTICKET_REDIS_CLUSTER IMTICKET_STREAM_PARTITIONS \
  IMTICKET_DB_POOLER

"$bin/imticket-admin" migrate 9>&-
for n in $(seq "$apis"); do start_api "$n"; done
for role in $roles; do
  for n in $(seq "$per_role"); do start_worker "$role" "$n"; done
done
start_haproxy

# Ready: HAProxy answers and has every API in rotation (or a process ended first).
(
  exec 9>&-
  for n in $(seq "$apis"); do wait_lb "api$n" UP 120 || die "HAProxy did not see API $n ($(api_addr "$n")) up within 120 s"; done
) &
ready_pid=$!
status=0
wait -n -p ended "${pids[@]}" "$ready_pid" || status=$?
if [ "${ended:-}" != "$ready_pid" ]; then
  died "${ended:-?}" "$status" "before ImTicket was ready"
  kill "$ready_pid" 2>/dev/null || true
  exit 1
elif [ "$status" -ne 0 ]; then
  log "see the logs in $logs"
  exit 1
fi

if [ "$data_dir" = "$PWD/.data" ]; then admin="$bin/imticket-admin"; else admin="$bin/imticket-admin --env-file $data_dir/run.env"; fi
log "ImTicket is running behind HAProxy at http://$lb_addr (stats: http://$lb_stats/stats)"
log "$apis APIs on $(api_addr 1)…$(api_addr "$apis"), $per_role processes of each worker role; logs in $logs"
log "a rolling restart of the APIs: kill -USR1 $$   (progress in $data_dir/rolling-restarts.log)"
log "admin account: $IMTICKET_BOOTSTRAP_ADMIN_EMAIL / $IMTICKET_BOOTSTRAP_ADMIN_PASSWORD (development only)"
log "operator tools: $admin streams; $admin audit"
log "press Ctrl-C to stop"

# restart_api ROUND N: SIGTERM, out of rotation, exit, start again, back in rotation; one JSON
# line of timings (seconds since the SIGTERM) in rolling-restarts.log. 1 if a step failed.
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
restart_api() {
  local round=$1 n=$2 old=${api_pid[$2]} t0 out="null" exited back="null" status=0 ok=true
  t0=$(date +%s.%N)
  kill -TERM "$old"
  if wait_lb "api$n" DOWN 60; then out=$(since "$t0"); else ok=false; fi
  wait "$old" || status=$?
  exited=$(since "$t0")
  forget "$old"
  [ "$status" -eq 0 ] || ok=false
  start_api "$n"
  if wait_lb "api$n" UP 120; then back=$(since "$t0"); else ok=false; fi
  printf '{"round": %s, "api": "api%s", "pid": %s, "new_pid": %s, "out_of_rotation_s": %s, "exit_status": %s, "exited_s": %s, "back_in_rotation_s": %s, "ok": %s}\n' \
    "$round" "$n" "$old" "${api_pid[$n]}" "$out" "$status" "$exited" "$back" "$ok" >>"$data_dir/rolling-restarts.log"
  log "rolling restart $round: api-$n (pid $old) out of rotation after ${out} s, exited $status after ${exited} s, back in rotation after ${back} s (pid ${api_pid[$n]})"
  $ok
}
rounds=0
rolling_restart() {
  local n failed=0
  rounds=$((rounds + 1))
  log "rolling restart $rounds of $apis APIs"
  for n in $(seq "$apis"); do restart_api "$rounds" "$n" || failed=1; done
  echo "$rounds" >"$data_dir/rolling-restarts.done"
  [ "$failed" -eq 0 ] || log "rolling restart $rounds: a step failed (see $data_dir/rolling-restarts.log)"
}
while true; do
  if [ -n "$restart_asked" ]; then
    restart_asked=""
    rolling_restart
    continue
  fi
  unset ended
  status=0
  wait -n -p ended "${pids[@]}" || status=$?
  # No pid: a signal (SIGUSR1) interrupted the wait.
  [ -z "${ended:-}" ] && continue
  died "$ended" "$status" "while ImTicket was running"
  exit 1
done
