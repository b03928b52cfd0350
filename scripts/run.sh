#!/usr/bin/env bash
# Runs the whole ImTicket system on this machine: a project-local PostgreSQL and a Redis using
# ./redis.conf (data under .data/ by default), migrations, `imticket-api` and
# `imticket-worker all`. Ctrl-C stops everything cleanly (API and workers drain first).
#
# Installs redis-server and postgresql from Debian's packages when missing. Settings: any
# variable of .env.example (read from ./.env when present), plus
#   IMTICKET_DATA_DIR   (.data)   where PostgreSQL and Redis keep their files
#   IMTICKET_PG_PORT    (55432)   the local PostgreSQL's port
#   IMTICKET_REDIS_PORT (56379)   the local Redis's port
#   IMTICKET_PROFILE    (release) cargo profile to build: release or dev
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

if [ -f .env ]; then set -a; source .env; set +a; fi
data_dir=$(mkdir -p "${IMTICKET_DATA_DIR:-.data}" && cd "${IMTICKET_DATA_DIR:-.data}" && pwd)
pg_port=${IMTICKET_PG_PORT:-55432}
redis_port=${IMTICKET_REDIS_PORT:-56379}
profile=${IMTICKET_PROFILE:-release}
target_dir=$([ "$profile" = dev ] && echo debug || echo "$profile")

ensure_system_packages
ensure_rust

log "building ($profile profile; the first build takes a few minutes)"
cargo build --quiet --profile "$profile" --bins
bin=target/$target_dir

pids=()
redis_pid=""
pg_data=""
# The API and workers first (they drain: in-flight requests and handlers finish, and acks and
# cache invalidations still reach Redis), then Redis (it writes its AOF), then PostgreSQL.
# Redis and PostgreSQL run in sessions of their own, so a Ctrl-C reaches only the API and
# workers and the script.
cleanup() {
  trap - INT TERM EXIT
  log "stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$redis_pid" ]; then
    kill -TERM "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  [ -n "$pg_data" ] && pg_stop "$pg_data"
  log "stopped"
}
trap cleanup INT TERM EXIT

pg_data=$(pg_usable_dir "$data_dir/pg")
pg_start "$pg_data" "$pg_port"
pg_createdb "$pg_port" imticket

redis_start "$data_dir/redis" "$redis_port"
redis_pid=$REDIS_PID

export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/imticket"
export REDIS_URL="redis://127.0.0.1:$redis_port"
export IMTICKET_ENV=${IMTICKET_ENV:-development}
export IMTICKET_HTTP_ADDR=${IMTICKET_HTTP_ADDR:-127.0.0.1:8080}
export IMTICKET_BOOTSTRAP_ADMIN_EMAIL=${IMTICKET_BOOTSTRAP_ADMIN_EMAIL:-admin@imticket.local}
export IMTICKET_BOOTSTRAP_ADMIN_PASSWORD=${IMTICKET_BOOTSTRAP_ADMIN_PASSWORD:-admin-password}

"$bin/imticket-admin" migrate
"$bin/imticket-api" &
pids+=($!)
"$bin/imticket-worker" all &
pids+=($!)

url="http://$IMTICKET_HTTP_ADDR"
wait_until 60 "the API at $url" curl -fsS "$url/health/ready"
log "ImTicket is running at $url  (OpenAPI: $url/openapi.json, metrics: $url/metrics)"
log "admin account: $IMTICKET_BOOTSTRAP_ADMIN_EMAIL / $IMTICKET_BOOTSTRAP_ADMIN_PASSWORD (development only)"
log "press Ctrl-C to stop"
# Stop everything as soon as any process ends on its own.
wait -n "${pids[@]}" "$redis_pid" || true
