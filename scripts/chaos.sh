#!/usr/bin/env bash
# The chaos matrix (docs/RELIABILITY.md): the whole flow under load — fans joining, charging,
# holding, paying, some abandoning their hold, some paying twice with one key — against two API
# processes (one port, SO_REUSEPORT) and two processes of every worker role, while one fault is
# injected per cell:
#   baseline          nothing
#   api               kill -9 one API, restart it
#   <role>            kill -9 one process of the worker role, restart it (each of the six roles)
#   redis             kill -9 redis-server, restart it on its AOF
#   postgres          pg_ctl stop -m immediate, start again (crash recovery)
#   zombie            SIGSTOP one payment worker past the claim-idle time, then SIGCONT
#   slow-redis        Redis answering slowly: DEBUG SLEEP 0.3 every 0.5 s for 6 s
# On a Redis Cluster (CHAOS_REDIS=cluster: scripts/redis-cluster.sh, 3 masters + 3 replicas,
# IMTICKET_STREAM_PARTITIONS=3) instead of the one Redis, with these cells:
#   failover          kill -9 the master serving the sale's waiting room (and a partition of
#                     every stream) mid-sale; its replica takes over; the killed node is started
#                     again on its files once the load ends (it rejoins as a replica)
# After each cell: the system must settle (every paid reservation confirmed, every abandoned
# hold expired, no pending entry, outbox published) and `imticket-admin audit` be clean; no dead
# letter (no poison is injected). The report prints per cell: requests by status, the 5xx and
# connection errors clients saw and over how long, how long the system took to settle, events
# processed, duplicate deliveries absorbed (counted from the workers' logs).
#   scripts/chaos.sh                    every cell, 30 s of load each
#   scripts/chaos.sh --quick            the bounded version in scripts/test.sh: four cells, 12 s
#   CELLS="api redis" SECONDS_PER_CELL=20 scripts/chaos.sh
#   CHAOS_REDIS=cluster scripts/chaos.sh   on a Redis Cluster: baseline, failover, api, payment, postgres
# Private PostgreSQL and Redis (./redis.conf, AOF) in a temporary directory, free ports; the
# dev build (BENCH_PROFILE=release for a release build). Per-user rate limits stay on.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_system_packages
ensure_rust

all_cells="baseline api seat-creation payment expiry expiry-scheduler queue-promoter outbox-relay redis postgres zombie slow-redis"
redis_shape=${CHAOS_REDIS:-single}
case $redis_shape in
  single) ;;
  cluster) all_cells="baseline failover api payment postgres" ;;
  *) die "CHAOS_REDIS is single or cluster, not $redis_shape" ;;
esac
seconds=${SECONDS_PER_CELL:-30}
cells=${CELLS:-$all_cells}
if [ "${1:-}" = "--quick" ]; then
  cells=${CELLS:-"api payment redis postgres"}
  seconds=${SECONDS_PER_CELL:-12}
fi
connections=${CONNECTIONS:-16}
export BENCH_PROFILE=${BENCH_PROFILE:-dev}
bench_binaries

work=$(mktemp -d /tmp/imticket-chaos.XXXXXX)
logs=$work/logs
mkdir -p "$logs"
pg_data=$(pg_usable_dir "$work/pg")
pg_port=$(free_port)
redis_port=$(free_port)
api_port=$(free_port)
declare -A pid=()
redis_pid=""

stop_all() {
  local status=$?
  trap - EXIT INT TERM
  for name in "${!pid[@]}"; do kill -CONT "${pid[$name]}" 2>/dev/null || true; kill -TERM "${pid[$name]}" 2>/dev/null || true; done
  for name in "${!pid[@]}"; do wait "${pid[$name]}" 2>/dev/null || true; done
  [ -n "$redis_pid" ] && { kill -TERM "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; }
  [ "$redis_shape" = cluster ] && bash scripts/redis-cluster.sh stop "$work/cluster"
  pg_stop "$pg_data"
  if [ "$status" -eq 0 ]; then rm -rf "$work" "$pg_data"; else log "kept $work for a look (logs in $logs)"; fi
  exit "$status"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Durable commits (the default): a crash must lose nothing that was answered.
pg_start "$pg_data" "$pg_port"
pg_createdb "$pg_port" chaos
start_redis() {
  mkdir -p "$work/redis"
  setsid redis-server ./redis.conf --port "$redis_port" --dir "$work/redis" --logfile redis.log \
    --enable-debug-command local &
  redis_pid=$!
  wait_until 30 "Redis on port $redis_port" redis-cli -p "$redis_port" ping
}
export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/chaos"
if [ "$redis_shape" = cluster ]; then
  REDIS_URL=$(bash scripts/redis-cluster.sh start "$work/cluster")
  export REDIS_URL IMTICKET_REDIS_CLUSTER=true IMTICKET_STREAM_PARTITIONS=3
else
  start_redis
  export REDIS_URL="redis://127.0.0.1:$redis_port"
fi
cluster() { bash scripts/redis-cluster.sh "$1" "$work/cluster" "${@:2}"; }
export IMTICKET_ENV=development RUST_LOG=info IMTICKET_LOG_FORMAT=json
export JWT_SECRET="chaos-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export IMTICKET_HTTP_ADDR="127.0.0.1:$api_port" IMTICKET_HTTP_REUSE_PORT=on
export IMTICKET_API_METRICS_ADDR="127.0.0.1:0" IMTICKET_WORKER_METRICS_ADDR="127.0.0.1:0"
export IMTICKET_QUEUE_ACTIVE_CAPACITY=1000000 IMTICKET_QUEUE_PROMOTE_PER_SECOND=1000000
# Abandoned holds expire within a cell (a hold outlives every outage a cell injects); a stuck
# consumer's entries are reclaimed within seconds.
export IMTICKET_HOLD_TTL_SECONDS=15 IMTICKET_STREAM_CLAIM_IDLE_MS=2000
# One address sends for every fan: the per-IP limit is off, the per-user ones stay on.
export IMTICKET_RATE_LIMIT_IP_ALL=off IMTICKET_RATE_LIMIT_SIGNUP_IP=off IMTICKET_RATE_LIMIT_LOGIN_IP=off
export IMTICKET_BOOTSTRAP_ADMIN_EMAIL=chaos@imticket.test IMTICKET_BOOTSTRAP_ADMIN_PASSWORD=chaos-password
"$bin"/imticket-admin migrate >/dev/null

roles="seat-creation payment expiry expiry-scheduler queue-promoter outbox-relay"
# start NAME COMMAND…: in the background, output appended to $logs/NAME.log.
start() {
  local name=$1; shift
  "$@" >>"$logs/$name.log" 2>&1 &
  pid[$name]=$!
}
start_api() { start "api-$1" "$bin"/imticket-api; }
start_worker() { start "$1-$2" "$bin"/imticket-worker "$1"; }
start_api 1
start_api 2
for role in $roles; do start_worker "$role" 1; start_worker "$role" 2; done
base="http://127.0.0.1:$api_port"
wait_until 60 "the APIs" curl -fsS "$base/health/ready"

token=$(curl -fsS -XPOST "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"chaos@imticket.test","password":"chaos-password"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
post() { curl -fsS -XPOST "$base/api/v1/$1" -H "authorization: Bearer $token" -H 'content-type: application/json' -d "$2"; }
id_of() { sed 's/.*"\(id\|job_id\)":"\([^"]*\)".*/\2/'; }

# kill9 NAME; restart NAME: a process of ours, by name.
kill9() { kill -KILL "${pid[$1]}" 2>/dev/null || true; wait "${pid[$1]}" 2>/dev/null || true; }
restart() {
  case $1 in
    api-*) start_api "${1#api-}" ;;
    *) start_worker "${1%-*}" "${1##*-}" ;;
  esac
}

# inject CELL: the fault, in the background of the load; returns when it has been undone.
inject() {
  case $1 in
    baseline) sleep 6 ;;
    api) kill9 api-1; sleep 3; restart api-1 ;;
    redis)
      kill -KILL "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true
      sleep 3; start_redis ;;
    postgres)
      pg_as_owner "$(pg_bindir)/pg_ctl" -D "$pg_data" -m immediate -w stop >/dev/null
      sleep 4; pg_start "$pg_data" "$pg_port" ;;
    zombie)
      # Stopped while it has entries pending (its consumer name carries its pid), so the other
      # payment worker reclaims them and this one, woken, finishes them late: duplicates.
      local until=$((SECONDS + 10))
      while [ $SECONDS -lt $until ] && ! redis-cli -p "$redis_port" XPENDING imticket:stream:payments payment \
          | grep -A1 -- "-${pid[payment-1]}-" | tail -1 | grep -qv '^0$'; do sleep 0.05; done
      kill -STOP "${pid[payment-1]}"; sleep 6; kill -CONT "${pid[payment-1]}" ;;
    slow-redis)
      for _ in $(seq 12); do redis-cli -p "$redis_port" DEBUG SLEEP 0.3 >/dev/null; sleep 0.2; done ;;
    failover)
      # The master of the sale's line: every join and every hold's queue check goes there.
      killed=$(cluster master-of "imticket:queue:{c$concert}:waiting")
      cluster kill "$killed"
      local killed_at=$SECONDS
      until [ "$(cluster master-of "imticket:queue:{c$concert}:waiting")" != "" ] &&
        [ "$(cluster master-of "imticket:queue:{c$concert}:waiting")" != "$killed" ]; do
        [ $((SECONDS - killed_at)) -lt 30 ] || { log "no replica took over from $killed"; break; }
        sleep 0.1
      done
      log "failover: master $killed killed; $(cluster master-of "imticket:queue:{c$concert}:waiting") serves the line after $((SECONDS - killed_at)) s" ;;
    *) kill9 "$1-1"; sleep 3; restart "$1-1" ;;
  esac
}

absorbed() { cat "$logs"/*.log 2>/dev/null | grep -c 'duplicate delivery absorbed' || true; }
# Events the outbox relays published again because Redis was not the one they last saw.
republished() {
  cat "$logs"/*.log 2>/dev/null | { grep 'publishing again every event' || true; } |
    sed -n 's/.*"events":\([0-9]*\).*/\1/p' | awk '{n += $1} END {print n + 0}'
}

printf '\n== chaos matrix: %s s of load per cell, %s clients, 2 APIs on one port, 2 processes of each worker role, Redis: %s; %s\n' \
  "$seconds" "$connections" "$([ "$redis_shape" = cluster ] && echo 'a cluster of 3 masters + 3 replicas, 3 stream partitions' || echo 'one server')" \
  "$(date -u +%Y-%m-%dT%H:%MZ)"
failed=0
summary=()
for cell in $cells; do
  concert=$(post concerts "{\"title\":\"Chaos $cell\"}" | id_of)
  schedule=$(post "concerts/$concert/schedules" "{\"starts_at\":\"$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)\"}" | id_of)
  job=$(post "schedules/$schedule/seats?mode=inline" \
    '{"sections":[{"name":"A","rows":100,"seats_per_row":100,"price":100}]}' | id_of)
  wait_until 60 "the seats" sh -c "curl -fsS '$base/api/v1/jobs/$job' | grep -q '\"status\":\"done\"'"
  since=$(date +%s.%N)
  before=$(absorbed)
  republished_before=$(republished)
  "$bin"/imticket-bench chaos-load --addr "127.0.0.1:$api_port" --concert "$concert" --schedule "$schedule" \
    --seconds "$seconds" --connections "$connections" --report "$work/$cell.json" >"$work/$cell.load" 2>&1 &
  load_pid=$!
  sleep $((seconds / 3))
  fault_at=$(date +%s.%N)
  inject "$cell"
  undone_at=$(date +%s.%N)
  load_status=0
  wait "$load_pid" || load_status=$?
  # The killed master comes back on its files, as an operator would start it: a replica now.
  if [ "$cell" = failover ] && [ -n "${killed:-}" ]; then cluster restart "$killed"; killed=""; fi
  check_status=0
  "$bin"/imticket-bench chaos-check --report "$work/$cell.json" --schedule "$schedule" --since "$since" \
    --deadline-seconds 120 >"$work/$cell.check" 2>&1 || check_status=$?
  audit_status=0
  "$bin"/imticket-admin audit >"$work/$cell.audit" 2>&1 || audit_status=$?
  dupes=$(( $(absorbed) - before ))
  again=$(( $(republished) - republished_before ))
  row=$(python3 - "$work/$cell.json" "$work/$cell.check" "$cell" "$since" "$fault_at" "$undone_at" "$dupes" "$load_status" "$audit_status" "$again" <<'EOF'
import json, sys
report_file, check_file, cell, since, fault_at, undone_at, dupes, load_status, audit_status, again = sys.argv[1:]
r = json.load(open(report_file)) if load_status == "0" else {}
lines = [l for l in open(check_file) if l.startswith("{")]
c = json.loads(lines[-1]) if lines else {}
fault = float(fault_at) - float(since)
undone = float(undone_at) - float(since)
last = r.get("errors_last_s")
recovered = "—" if last is None else "%.1f s" % max(0.0, last - undone)
statuses = ", ".join("%s %d" % kv for kv in sorted(r.get("by_status", {}).items()))
ok = c.get("ok") and audit_status == "0" and load_status == "0" and r.get("flows_failed", 1) == 0
print(json.dumps({
  "cell": cell, "ok": bool(ok), "requests": r.get("requests"), "by_status": statuses,
  "client_errors": r.get("errors_seen_by_clients"),
  "client_errors_window_s": None if r.get("errors_window_s") is None else round(r["errors_window_s"], 1),
  "fault_at_s": round(fault, 1), "undone_at_s": round(undone, 1),
  "clients_ok_after_undone": recovered, "settled_after_load_s": c.get("settled_after_s"),
  "paid": c.get("paid"), "confirmed": c.get("confirmed"), "abandoned": c.get("abandoned"), "expired": c.get("expired"),
  "duplicate_payments": r.get("duplicates_sent"), "answered_alike": r.get("duplicates_answered_alike"),
  "events_processed": c.get("events_processed"), "duplicates_absorbed": int(dupes), "republished": int(again),
  "dead_letters": c.get("dead_letters"), "pending": c.get("pending_entries"), "outbox_unpublished": c.get("outbox_unpublished"),
  "audit": "clean" if audit_status == "0" else "VIOLATIONS", "flows_failed": r.get("flows_failed"),
  "first_failure": r.get("first_failure"),
}))
EOF
)
  echo "$row"
  summary+=("$row")
  if ! grep -q '"ok": true' <<<"$row"; then
    failed=1
    log "cell $cell FAILED; its load output, check and audit:"
    cat "$work/$cell.load" "$work/$cell.check" "$work/$cell.audit" >&2 || true
  fi
done

printf '\n| cell | requests by status | 5xx / connection errors seen by clients (window) | clients fine after the fault was undone | settled after the load | paid = confirmed | abandoned = expired | duplicate payments (alike) | events processed | published again (new Redis) | duplicate deliveries absorbed | dead letters | audit |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n'
for row in "${summary[@]}"; do
  python3 -c '
import json, sys
r = json.loads(sys.argv[1])
w = "" if r["client_errors_window_s"] is None else " (%.1f s)" % r["client_errors_window_s"]
print("| %s | %s | %s%s | %s | %s s | %s = %s | %s = %s | %s (%s) | %s | %s | %s | %s | %s |" % (
  r["cell"], r["by_status"], r["client_errors"], w, r["clients_ok_after_undone"],
  None if r["settled_after_load_s"] is None else round(r["settled_after_load_s"], 1),
  r["paid"], r["confirmed"], r["abandoned"], r["expired"], r["duplicate_payments"], r["answered_alike"],
  r["events_processed"], r["republished"], r["duplicates_absorbed"], r["dead_letters"], r["audit"]))' "$row"
done
[ "$failed" = 0 ] && log "chaos matrix: every cell passed" || log "chaos matrix: a cell FAILED"
exit "$failed"
