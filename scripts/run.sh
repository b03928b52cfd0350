#!/usr/bin/env bash
# Runs the whole ImTicket system on this machine: a project-local PostgreSQL and a Redis using
# ./redis.conf (data under .data/ by default), migrations, `imticket-api` and
# `imticket-worker all`. Ctrl-C stops everything cleanly (API and workers drain first).
#
# Installs redis-server and postgresql from Debian's packages when missing. Settings: any
# variable of .env.example, from the environment or else from ./.env (DATABASE_URL and
# REDIS_URL are always this script's own servers), plus
#   IMTICKET_DOTENV     (.env)    the file of settings read under the environment
#   IMTICKET_DATA_DIR   (.data)   where PostgreSQL and Redis keep their files
#   IMTICKET_PG_PORT    (55432)   the local PostgreSQL's port
#   IMTICKET_REDIS_PORT (56379)   the local Redis's port
#   IMTICKET_RUN_REDIS  (single)  `cluster`: a local Redis Cluster instead (scripts/redis-cluster.sh:
#                                 3 masters + 3 replicas on free ports, files in <data dir>/cluster),
#                                 IMTICKET_REDIS_CLUSTER=true and IMTICKET_STREAM_PARTITIONS=3
#   IMTICKET_PROFILE    (release) cargo profile to build: release or dev
#   IMTICKET_HTTP_ADDR (127.0.0.1:8080), IMTICKET_WORKER_METRICS_ADDR (127.0.0.1:9470-9489),
#   IMTICKET_API_METRICS_ADDR (127.0.0.1:9490-9509): each process takes a free port of its range
#
# Every process names its metrics address in <data dir>/targets/<service>-<pid>.json (Prometheus
# file discovery, as scripts/observe.sh uses it), so more API or worker processes started by
# hand with <data dir>/run.env sourced are found too.
#
# One run per data directory: a second run.sh on the same IMTICKET_DATA_DIR refuses to start
# and touches nothing. While it runs, <data dir>/run.env holds what another process of the run
# needs (DATABASE_URL, REDIS_URL, IMTICKET_REDIS_KEY_PREFIX, IMTICKET_ENV, the addresses);
# `imticket-admin` reads ./.data/run.env by itself. If the API, the
# workers or Redis stop on their own, everything is stopped and the script exits 1 naming it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

dotenv=${IMTICKET_DOTENV:-.env}
if [ -f "$dotenv" ]; then
  # What is already in the environment wins over the file.
  environment=$(export -p)
  given_db=${DATABASE_URL:-} given_redis=${REDIS_URL:-}
  set -a; source "$dotenv"; set +a
  eval "$environment"
  # The addresses of this script's own servers replace these; say so when .env meant others.
  if [ -z "$given_db" ] && [ -n "${DATABASE_URL:-}" ]; then
    log "note: DATABASE_URL from $dotenv is not used: scripts/run.sh serves its own PostgreSQL"
  fi
  if [ -z "$given_redis" ] && [ -n "${REDIS_URL:-}" ] && [ "$REDIS_URL" != redis://127.0.0.1:6379 ]; then
    log "note: REDIS_URL from $dotenv is not used: scripts/run.sh serves its own Redis"
  fi
fi
data_dir=$(mkdir -p "${IMTICKET_DATA_DIR:-.data}" && cd "${IMTICKET_DATA_DIR:-.data}" && pwd)
pg_port=${IMTICKET_PG_PORT:-55432}
redis_port=${IMTICKET_REDIS_PORT:-56379}
http_addr=${IMTICKET_HTTP_ADDR:-127.0.0.1:8080}
metrics_addr=${IMTICKET_WORKER_METRICS_ADDR:-127.0.0.1:9470-9489}
key_prefix=${IMTICKET_REDIS_KEY_PREFIX:-imticket:}
redis_shape=${IMTICKET_RUN_REDIS:-single}
case $redis_shape in single | cluster) ;; *) die "IMTICKET_RUN_REDIS is single or cluster, not $redis_shape" ;; esac
profile=${IMTICKET_PROFILE:-release}
target_dir=$([ "$profile" = dev ] && echo debug || echo "$profile")

# One run per data directory (fd 9; see lock_run).
lock_run "$data_dir" scripts/run.sh
rm -f "$data_dir/run.env"
# Until the servers start (and `cleanup` takes over), a refusal leaves nothing behind.
trap 'rm -f "$data_dir/run.pid"' EXIT

ensure_system_packages
ensure_rust

pg_data=$(pg_usable_dir "$data_dir/pg")
stop_leftovers "$data_dir" "$pg_data"

# (A range of ports needs no check: a process takes whichever of them is free.)
checks=("127.0.0.1:$pg_port PostgreSQL (IMTICKET_PG_PORT)" "127.0.0.1:$redis_port Redis (IMTICKET_REDIS_PORT)"
  "$http_addr the API (IMTICKET_HTTP_ADDR)")
[[ ${metrics_addr##*:} == *-* ]] || checks+=("$metrics_addr the worker metrics (IMTICKET_WORKER_METRICS_ADDR)")
for check in "${checks[@]}"; do
  addr=${check%% *}
  addr_in_use "$addr" && die "port ${addr##*:} for ${check#* } is already in use by another process; free it or choose another port"
done

log "building ($profile profile; the first build takes a few minutes)"
cargo build --quiet --profile "$profile" --bins
# Where cargo put them (CARGO_TARGET_DIR, when set, moves them).
bin=${CARGO_TARGET_DIR:-target}/$target_dir
logs=$data_dir/logs
mkdir -p "$logs"

pids=()
declare -A names=() outputs=()
redis_pid=""
servers_up=""
# The API and workers first (they drain: in-flight requests and handlers finish, and acks and
# cache invalidations still reach Redis), then Redis (it writes its AOF), then PostgreSQL.
# Redis and PostgreSQL run in sessions of their own, so a Ctrl-C reaches only the API and
# workers and the script.
cleanup() {
  local status=$?
  # Every step runs whatever the one before it said: a process already gone must not stop the
  # clean-up half way (set -e would, leaving the rest running).
  set +e
  trap - INT TERM EXIT
  log "stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  redis_pid=${redis_pid:-${REDIS_PID:-}}
  if [ -n "$redis_pid" ]; then
    kill -TERM "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  [ "$redis_shape" = cluster ] && bash scripts/redis-cluster.sh stop "$data_dir/cluster"
  [ -n "$servers_up" ] && pg_stop "$pg_data"
  rm -f "$data_dir/run.env" "$data_dir/run.pid" "$data_dir/redis.pid"
  log "stopped"
  exit "$status"
}
trap cleanup EXIT
# Ctrl-C or SIGTERM: the normal way to stop (exit 0 after cleaning up).
trap 'exit 0' INT TERM

servers_up=yes
pg_start "$pg_data" "$pg_port" 9>&-
pg_createdb "$pg_port" imticket

if [ "$redis_shape" = cluster ]; then
  log "starting a local Redis Cluster (3 masters + 3 replicas) in $data_dir/cluster"
  REDIS_URL=$(bash scripts/redis-cluster.sh start "$data_dir/cluster" 9>&-)
  export IMTICKET_REDIS_CLUSTER=true IMTICKET_STREAM_PARTITIONS=${IMTICKET_STREAM_PARTITIONS:-3}
  redis_port=$(sed 's/^redis:\/\/[^:]*:\([0-9]*\).*/\1/' "$data_dir/cluster/url")
else
  redis_start "$data_dir/redis" "$redis_port" 9>&-
  redis_pid=$REDIS_PID
  names[$redis_pid]=redis-server
  outputs[$redis_pid]=$data_dir/redis/redis.log
  redis-cli -p "$redis_port" INFO server | sed -n 's/^process_id:\([0-9]*\).*/\1/p' >"$data_dir/redis.pid"
  REDIS_URL="redis://127.0.0.1:$redis_port"
fi

export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/imticket"
export REDIS_URL
export IMTICKET_REDIS_KEY_PREFIX=$key_prefix
export IMTICKET_ENV=${IMTICKET_ENV:-development}
export IMTICKET_HTTP_ADDR=$http_addr
export IMTICKET_WORKER_METRICS_ADDR=$metrics_addr
export IMTICKET_METRICS_TARGETS_DIR=$data_dir/targets
rm -rf "$IMTICKET_METRICS_TARGETS_DIR"
export IMTICKET_BOOTSTRAP_ADMIN_EMAIL=${IMTICKET_BOOTSTRAP_ADMIN_EMAIL:-admin@imticket.local}
export IMTICKET_BOOTSTRAP_ADMIN_PASSWORD=${IMTICKET_BOOTSTRAP_ADMIN_PASSWORD:-admin-password}
# What another process of this run needs: imticket-admin reads it by itself; `set -a; source
# .data/run.env; set +a` before starting one more imticket-api or imticket-worker by hand.
# A second API must verify the first one's tokens: JWT_SECRET too (the file is the owner's only).
write_run_env "$data_dir/run.env" scripts/run.sh DATABASE_URL REDIS_URL IMTICKET_REDIS_KEY_PREFIX IMTICKET_ENV \
  IMTICKET_HTTP_ADDR IMTICKET_WORKER_METRICS_ADDR IMTICKET_METRICS_TARGETS_DIR IMTICKET_API_METRICS_ADDR JWT_SECRET \
  IMTICKET_REDIS_CLUSTER IMTICKET_STREAM_PARTITIONS

"$bin/imticket-admin" migrate 9>&-

# start NAME COMMAND…: in the background, its output on the terminal and in $logs/NAME.log.
# The tee ignores Ctrl-C so the drain's last lines still get written.
start() {
  local name=$1; shift
  : >"$logs/$name.log"
  "$@" 9>&- > >(exec 9>&-; trap '' INT TERM; exec tee -a "$logs/$name.log") 2>&1 &
  pids+=($!)
  names[$!]=$name
  outputs[$!]=$logs/$name.log
}
start imticket-api "$bin/imticket-api"
start imticket-worker "$bin/imticket-worker" all

# Waits for readiness and for any process ending, whichever comes first.
url="http://$IMTICKET_HTTP_ADDR"
(exec 9>&-; wait_until 60 "the API at $url to be ready" curl -fsS "$url/health/ready") &
ready_pid=$!
status=0
wait -n -p ended "${pids[@]}" ${redis_pid:+"$redis_pid"} "$ready_pid" || status=$?
if [ "${ended:-}" != "$ready_pid" ]; then
  died "${ended:-?}" "$status" "before ImTicket was ready"
  exit 1
elif [ "$status" -ne 0 ]; then
  log "see ${outputs[${pids[0]}]} and ${outputs[${pids[1]}]}"
  exit 1
fi

if [ "$data_dir" = "$PWD/.data" ]; then admin="$bin/imticket-admin"; else admin="$bin/imticket-admin --env-file $data_dir/run.env"; fi
log "ImTicket is running at $url  (OpenAPI: $url/openapi.json, metrics: $url/metrics)"
log "each process's own metrics: $(targets_summary "$IMTICKET_METRICS_TARGETS_DIR"); logs in $logs"
log "one more API or worker on this host: set -a; source $data_dir/run.env; set +a; $bin/imticket-worker payment"
log "admin account: $IMTICKET_BOOTSTRAP_ADMIN_EMAIL / $IMTICKET_BOOTSTRAP_ADMIN_PASSWORD (development only)"
log "operator console: $url/console (log in with that account)"
log "operator tools (addresses in $data_dir/run.env):"
log "  $admin streams"
if [ "$redis_shape" = cluster ]; then
  log "  redis-cli -c -p $redis_port XINFO GROUPS ${IMTICKET_REDIS_KEY_PREFIX}stream:seat-creation   (a cluster: -c follows MOVED)"
  log "  scripts/redis-cluster.sh status $data_dir/cluster"
else
  log "  redis-cli -p $redis_port XINFO GROUPS ${IMTICKET_REDIS_KEY_PREFIX}stream:seat-creation"
fi
log "  psql -h 127.0.0.1 -p $pg_port -U postgres imticket"
log "press Ctrl-C to stop"

status=0
wait -n -p ended "${pids[@]}" ${redis_pid:+"$redis_pid"} || status=$?
died "${ended:-?}" "$status" "while ImTicket was running"
exit 1
