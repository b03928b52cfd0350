#!/usr/bin/env bash
# A rolling restart of every API behind HAProxy under an on-sale load, with the evidence that no
# request failed (docs/RELIABILITY.md, "Rolling restart behind a load balancer").
#
# Starts the scaled-out shape (scripts/scale-out.sh: IMTICKET_API_PROCESSES APIs, two processes
# of every worker role, HAProxy in front) on free ports in a temporary directory, creates a
# concert with 10,000 seats, and drives `imticket-bench chaos-load` through HAProxy: fresh fans
# join the line, poll their status, charge points, hold a seat and pay (15 % abandon their
# hold, 20 % pay twice with one key). Meanwhile it asks scale-out.sh for ROUNDS rolling restarts
# (SIGUSR1): each API in turn gets SIGTERM, drains (503 on /health/ready until HAProxy has taken
# it out), exits, is started again and waits to be back in rotation. Then `chaos-check` (every
# paid reservation confirmed once, every abandoned hold expired, nothing pending, no dead
# letter) and `imticket-admin audit`.
#
# Passes when clients saw no 5xx and no connection error, no flow failed, every drained API
# exited 0 and was out of rotation before it stopped, the checks and the audit are clean.
#   scripts/rolling-restart.sh
#   ROUNDS=3 LOAD_SECONDS=120 CONNECTIONS=64 IMTICKET_API_PROCESSES=3 scripts/rolling-restart.sh
# The dev build by default (BENCH_PROFILE=release for a release build). The per-IP rate limits
# are off (every fan is this machine's address), the per-user ones on.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_system_packages haproxy
ensure_rust

rounds=${ROUNDS:-2}
load_seconds=${LOAD_SECONDS:-60}
connections=${CONNECTIONS:-32}
apis=${IMTICKET_API_PROCESSES:-2}
export BENCH_PROFILE=${BENCH_PROFILE:-dev}
unset BENCH_BIN # scale-out.sh runs the binaries of this profile
bench_binaries

# Under /var/tmp, reachable by the `postgres` user when run as root, so PostgreSQL's files are
# in it too and go with it.
work=$(mktemp -d /var/tmp/imticket-rolling.XXXXXX)
chmod 755 "$work"
system_pid=""
stop_system_now() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$system_pid" ]; then
    kill -TERM "$system_pid" 2>/dev/null || true
    wait "$system_pid" 2>/dev/null || true
  fi
  if [ "$status" -eq 0 ]; then rm -rf "$work"; else log "kept $work for a look (logs in $work/data/logs)"; fi
  exit "$status"
}
trap stop_system_now EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# N consecutive free ports for the APIs.
first_port=""
for _ in $(seq 20); do
  candidate=$(free_port)
  free=yes
  for n in $(seq 0 $((apis - 1))); do addr_in_use "127.0.0.1:$((candidate + n))" && free=""; done
  [ -n "$free" ] && { first_port=$candidate; break; }
done
[ -n "$first_port" ] || die "no $apis consecutive free ports found"

export IMTICKET_DATA_DIR=$work/data IMTICKET_PROFILE=$BENCH_PROFILE
export IMTICKET_PG_PORT=$(free_port) IMTICKET_REDIS_PORT=$(free_port)
export IMTICKET_API_PROCESSES=$apis IMTICKET_API_FIRST_PORT=$first_port
export IMTICKET_LB_ADDR="127.0.0.1:$(free_port)" IMTICKET_LB_STATS_ADDR="127.0.0.1:$(free_port)"
export IMTICKET_API_METRICS_ADDR=127.0.0.1:0 IMTICKET_WORKER_METRICS_ADDR=127.0.0.1:0
export IMTICKET_ENV=development RUST_LOG=info IMTICKET_LOG_FORMAT=json
export JWT_SECRET="rolling-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export IMTICKET_QUEUE_ACTIVE_CAPACITY=1000000 IMTICKET_QUEUE_PROMOTE_PER_SECOND=1000000
# Abandoned holds expire within the run.
export IMTICKET_HOLD_TTL_SECONDS=15
# One address sends for every fan: the per-IP limits are off, the per-user ones stay on.
export IMTICKET_RATE_LIMIT_IP_ALL=off IMTICKET_RATE_LIMIT_SIGNUP_IP=off IMTICKET_RATE_LIMIT_LOGIN_IP=off
export IMTICKET_BOOTSTRAP_ADMIN_EMAIL=rolling@imticket.test IMTICKET_BOOTSTRAP_ADMIN_PASSWORD=rolling-password
lb=$IMTICKET_LB_ADDR
base="http://$lb"

scripts/scale-out.sh >"$work/scale-out.log" 2>&1 &
system_pid=$!
deadline=$((SECONDS + 600))
until grep -q "ImTicket is running behind HAProxy" "$work/scale-out.log" 2>/dev/null; do
  kill -0 "$system_pid" 2>/dev/null || { tail -20 "$work/scale-out.log" >&2; die "scripts/scale-out.sh stopped before the system was ready"; }
  [ $SECONDS -lt $deadline ] || die "the system was not ready after 600 s (see $work/scale-out.log)"
  sleep 0.5
done

# The bench and the checks read the run's servers as imticket-admin does.
set -a
source "$IMTICKET_DATA_DIR/run.env"
set +a
token=$(curl -fsS -XPOST "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"rolling@imticket.test","password":"rolling-password"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
post() { curl -fsS -XPOST "$base/api/v1/$1" -H "authorization: Bearer $token" -H 'content-type: application/json' -d "$2"; }
id_of() { sed 's/.*"\(id\|job_id\)":"\([^"]*\)".*/\2/'; }
concert=$(post concerts '{"title":"Rolling restart"}' | id_of)
schedule=$(post "concerts/$concert/schedules" "{\"starts_at\":\"$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)\"}" | id_of)
job=$(post "schedules/$schedule/seats?mode=inline" \
  '{"sections":[{"name":"A","rows":100,"seats_per_row":100,"price":100}]}' | id_of)
wait_until 60 "the seats" sh -c "curl -fsS '$base/api/v1/jobs/$job' | grep -q '\"status\":\"done\"'"

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || commit="$commit (with uncommitted changes)"
printf '\n== rolling restart: %s round(s) over %s APIs behind HAProxy, %s s of load, %s clients, %s build at %s; %s\n' \
  "$rounds" "$apis" "$load_seconds" "$connections" "$BENCH_PROFILE" "$commit" "$(date -u +%Y-%m-%dT%H:%MZ)"
since=$(date +%s.%N)
"$bin"/imticket-bench chaos-load --addr "$lb" --concert "$concert" --schedule "$schedule" \
  --seconds "$load_seconds" --connections "$connections" --status-polls 2 --report "$work/load.json" \
  >"$work/load.out" 2>&1 &
load_pid=$!
sleep 5
done_file=$IMTICKET_DATA_DIR/rolling-restarts.done
restarts_ok=yes
for round in $(seq "$rounds"); do
  kill -USR1 "$system_pid"
  deadline=$((SECONDS + 120))
  until [ "$(cat "$done_file" 2>/dev/null || echo 0)" -ge "$round" ]; do
    [ $SECONDS -lt $deadline ] || die "rolling restart $round did not finish within 120 s (see $work/scale-out.log)"
    kill -0 "$system_pid" 2>/dev/null || die "scripts/scale-out.sh stopped during rolling restart $round (see $work/scale-out.log)"
    sleep 0.2
  done
done
kill -0 "$load_pid" 2>/dev/null || { log "the load ended before the last restart did: raise LOAD_SECONDS"; restarts_ok=""; }
load_status=0
wait "$load_pid" || load_status=$?
check_status=0
"$bin"/imticket-bench chaos-check --report "$work/load.json" --schedule "$schedule" --since "$since" \
  --deadline-seconds 120 >"$work/check.out" 2>&1 || check_status=$?
audit_status=0
"$bin"/imticket-admin --env-file "$IMTICKET_DATA_DIR/run.env" audit >"$work/audit.out" 2>&1 || audit_status=$?
curl -fsS "http://$IMTICKET_LB_STATS_ADDR/stats;csv" >"$work/haproxy.csv"

python3 - "$work/load.json" "$work/check.out" "$IMTICKET_DATA_DIR/rolling-restarts.log" "$work/haproxy.csv" \
  "$load_status" "$check_status" "$audit_status" "${restarts_ok:-no}" <<'EOF'
import csv, json, sys
load_file, check_file, restarts_file, stats_file, load_status, check_status, audit_status, restarts_ok = sys.argv[1:]
r = json.load(open(load_file)) if load_status == "0" else {}
lines = [l for l in open(check_file) if l.startswith("{")]
c = json.loads(lines[-1]) if lines else {}
restarts = [json.loads(l) for l in open(restarts_file) if l.strip()]
rows = list(csv.reader(l[2:] if l.startswith("# ") else l for l in open(stats_file)))
header, rows = rows[0], rows[1:]
servers = [dict(zip(header, row)) for row in rows if row[0] == "api" and row[1] not in ("BACKEND",)]
backend = next((dict(zip(header, row)) for row in rows if row[0] == "api" and row[1] == "BACKEND"), {})
by_status = r.get("by_status", {})
five = sum(n for label, n in by_status.items() if label.startswith("5"))
transport = sum(n for label, n in by_status.items() if label.endswith("_error"))
print("requests sent: %s (%s)" % (r.get("requests"), ", ".join("%s %d" % kv for kv in sorted(by_status.items()))))
print("5xx seen by clients: %d; connection errors: %d; flows failed: %s (first: %s)" % (
    five, transport, r.get("flows_failed"), r.get("first_failure")))
print("paid = confirmed: %s = %s; abandoned = expired: %s = %s; duplicate payments answered alike: %s of %s; pending %s, dead letters %s, settled after %.1f s" % (
    c.get("paid"), c.get("confirmed"), c.get("abandoned"), c.get("expired"), r.get("duplicates_answered_alike"),
    r.get("duplicates_sent"), c.get("pending_entries"), c.get("dead_letters"), c.get("settled_after_s") or 0))
print("audit: %s" % ("clean" if audit_status == "0" else "VIOLATIONS"))
print("| round | API | out of rotation after SIGTERM | exited (status) | back in rotation |")
print("|---|---|---|---|---|")
for x in restarts:
    print("| %s | %s | %s s | %s s (%s) | %s s |" % (x["round"], x["api"], x["out_of_rotation_s"], x["exited_s"], x["exit_status"], x["back_in_rotation_s"]))
print("HAProxy: %s" % "; ".join("%s sessions %s, 5xx %s, connection errors %s, response errors %s, retries %s, redispatches %s" % (
    s["svname"], s["stot"], s["hrsp_5xx"], s["econ"], s["eresp"], s["wretr"], s["wredis"]) for s in servers))
print("HAProxy backend: 5xx %s, connection errors %s, response errors %s, retries %s, redispatches %s" % (
    backend.get("hrsp_5xx"), backend.get("econ"), backend.get("eresp"), backend.get("wretr"), backend.get("wredis")))
ok = (load_status == "0" and r.get("flows_failed") == 0 and five == 0 and transport == 0
      and c.get("ok") and audit_status == "0" and restarts_ok == "yes" and restarts
      and all(x["ok"] and x["exit_status"] == 0 and x["out_of_rotation_s"] is not None
              and x["out_of_rotation_s"] < x["exited_s"] for x in restarts))
print("rolling restart: %s" % ("PASSED" if ok else "FAILED"))
sys.exit(0 if ok else 1)
EOF
