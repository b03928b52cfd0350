#!/usr/bin/env bash
# Fuzzes the running API with schemathesis against its own OpenAPI document (GET /openapi.json),
# with every check, twice: as the admin, and as a fan holding an active waiting-room entry
# (X-Queue-Token), each run with every phase (examples, coverage, fuzzing, stateful: the
# document's links chain create → read → delete). Exits non-zero on any failure, server error
# or schemathesis error, and when `imticket-admin audit` finds a broken invariant afterwards.
#
#   scripts/fuzz.sh                 a bounded run: 2 minutes of fuzzing in all (scripts/test.sh)
#   scripts/fuzz.sh --minutes 10    a long run (the time is split between the two identities)
#   scripts/fuzz.sh --seed 42       replay a run (schemathesis's --seed)
#
# It starts the whole system itself (scripts/run.sh: PostgreSQL, Redis, the API, every worker)
# on free ports with its own data directory (.data/fuzz-system, wiped first), with every rate
# limit off (the fuzzer sends far more than a person from one address) and a waiting room that
# admits everyone at once. The development build is used (IMTICKET_PROFILE=release for the
# release one). Schemathesis comes from PyPI, pinned, into a virtualenv under .data/ when
# missing. Every setting and check exclusion is in scripts/schemathesis.toml, each with its
# reason. Results: .data/fuzz/<UTC time>/ (run.log, a JSON report and JUnit per identity).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

SCHEMATHESIS_VERSION=4.32.5
minutes=2
seed=()
while [ $# -gt 0 ]; do
  case $1 in
    --minutes) minutes=${2:?--minutes needs a number}; shift 2 ;;
    --seed) seed=(--seed "${2:?--seed needs a number}"); shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see scripts/fuzz.sh --help)" ;;
  esac
done
# Whole seconds per identity, at least 10.
per_run=$(awk -v m="$minutes" 'BEGIN { s = int(m * 60 / 2); if (s < 10) s = 10; print s }')

ensure_system_packages
ensure_rust

# Schemathesis, pinned, in a virtualenv of its own (Debian's Python refuses pip installs into
# the system; python3-venv provides `python3 -m venv` there).
venv=$PWD/.data/schemathesis-$SCHEMATHESIS_VERSION
st=$venv/bin/st
if ! [ -x "$st" ] || [ "$("$st" --version 2>/dev/null | awk '{print $NF}')" != "$SCHEMATHESIS_VERSION" ]; then
  command -v python3 >/dev/null 2>&1 || die "python3 not found (apt-get install python3 python3-venv)"
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    log "installing Debian's python3-venv"
    sudo=(); [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  log "installing schemathesis==$SCHEMATHESIS_VERSION (pip, into $venv)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

out=$PWD/.data/fuzz/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
system_dir=$PWD/.data/fuzz-system
rm -rf "$system_dir"

# A free port below the kernel's ephemeral range (free_port draws from 20000-60000), so no
# outgoing connection of another process can take it between the pick and the bind.
quiet_port() {
  local low port
  low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  [ "$low" -gt 21000 ] || { free_port; return; }
  for _ in $(seq 1 100); do
    port=$((20000 + RANDOM % (low - 20000)))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return 0; }
  done
  die "no free TCP port found"
}

# The system under test, on ports nobody else uses, so it runs beside a scripts/run.sh.
export IMTICKET_DATA_DIR=$system_dir IMTICKET_DOTENV=/dev/null IMTICKET_ENV=development RUST_LOG=${RUST_LOG:-warn}
export IMTICKET_PROFILE=${IMTICKET_PROFILE:-dev}
export IMTICKET_PG_PORT=$(quiet_port) IMTICKET_REDIS_PORT=$(quiet_port)
export IMTICKET_HTTP_ADDR=127.0.0.1:$(quiet_port) IMTICKET_WORKER_METRICS_ADDR=127.0.0.1:$(quiet_port)
export IMTICKET_API_METRICS_ADDR=off
export JWT_SECRET="fuzz-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export IMTICKET_JWT_TTL_SECONDS=86400
export IMTICKET_RATE_LIMITS=off
# Queue streams (GET /queue/events) end after 2 s: the fuzzer reads each response to its end.
export IMTICKET_SSE_MAX_SECONDS=2
# Everyone who joins is admitted at once and stays active for the whole run.
export IMTICKET_QUEUE_ACTIVE_CAPACITY=10000000 IMTICKET_QUEUE_PROMOTE_PER_SECOND=1000000
export IMTICKET_QUEUE_ACTIVE_TTL_SECONDS=86400
url=http://$IMTICKET_HTTP_ADDR
bin=target/$([ "$IMTICKET_PROFILE" = dev ] && echo debug || echo "$IMTICKET_PROFILE")

stop() {
  trap - EXIT INT TERM
  stop_system
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
log "starting scripts/run.sh ($IMTICKET_PROFILE build; output in $out/run.log)"
start_system "$out/run.log"

# api METHOD PATH [BODY] [HEADER…]: the JSON answer; dies naming the request on a non-2xx.
api() {
  local method=$1 path=$2 body=${3:-} answer status
  shift 3 || shift $#
  local args=(-sS -X "$method" "$url$path" -H 'content-type: application/json' -w '\n%{http_code}')
  [ -n "$body" ] && args+=(-d "$body")
  for h in "$@"; do args+=(-H "$h"); done
  answer=$(curl "${args[@]}") || die "$method $path: no answer"
  status=${answer##*$'\n'}
  answer=${answer%$'\n'*}
  [[ $status == 2* ]] || die "$method $path answered $status: $answer"
  printf '%s' "$answer"
}
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

log "setting up: the admin, a fan with points, a concert on sale with a schedule and seats, the fan admitted"
admin=$(api POST /api/v1/auth/login '{"email":"admin@imticket.local","password":"admin-password"}' | field access_token)
api POST /api/v1/auth/signup '{"email":"fuzz-fan@example.com","password":"fuzz-password","name":"Fuzz Fan"}' >/dev/null
fan=$(api POST /api/v1/auth/login '{"email":"fuzz-fan@example.com","password":"fuzz-password"}' | field access_token)
api POST /api/v1/users/me/points/charge '{"amount":10000000}' "authorization: Bearer $fan" "idempotency-key: fuzz-setup" >/dev/null
concert=$(api POST /api/v1/concerts '{"title":"Fuzz Live","description":"the fuzzer'"'"'s concert"}' "authorization: Bearer $admin" | field id)
starts_at=$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)
schedule=$(api POST "/api/v1/concerts/$concert/schedules" "{\"starts_at\":\"$starts_at\"}" "authorization: Bearer $admin" | field id)
job=$(api POST "/api/v1/schedules/$schedule/seats?mode=inline" \
  '{"sections":[{"name":"A","rows":10,"seats_per_row":20,"price":100},{"name":"B","rows":5,"seats_per_row":10,"price":250}]}' \
  "authorization: Bearer $admin" | field job_id)
wait_until 60 "seat creation job $job" sh -c "curl -fsS '$url/api/v1/jobs/$job' | grep -q '\"status\":\"done\"'"
# admitted TOKEN: joins the fixture's waiting room; prints the queue token once it is active.
admitted() {
  local token
  token=$(api POST "/api/v1/concerts/$concert/queue" '' "authorization: Bearer $1" | field queue_token)
  wait_until 30 "an admission" sh -c "curl -fsS '$url/api/v1/queue/status' -H 'x-queue-token: $token' | grep -q '\"status\":\"active\"'"
  printf '%s' "$token"
}
fan_queue=$(admitted "$fan")
admin_queue=$(admitted "$admin")
# Leaving the line ends the entry, and with it the booking gate for the rest of the run: the
# fuzzer leaves with a third user's entry instead.
api POST /api/v1/auth/signup '{"email":"fuzz-decoy@example.com","password":"fuzz-password","name":"Decoy"}' >/dev/null
decoy=$(api POST /api/v1/auth/login '{"email":"fuzz-decoy@example.com","password":"fuzz-password"}' | field access_token)
decoy_queue=$(admitted "$decoy")
seats=$(curl -fsS "$url/api/v1/schedules/$schedule/seats" | python3 -c 'import json,sys; print(",".join(json.dumps(s["id"]) for s in json.load(sys.stdin)["seats"]))')

# The settings, and the fixture as dictionaries: generated ids are drawn from them some of the
# time, so holds, payments and cancellations are reached, not only their 404s.
settings=$out/schemathesis.toml
{
  cat scripts/schemathesis.toml
  cat <<TOML

# Written by scripts/fuzz.sh. Schemathesis's cache beside the rest, not in the work tree.
[cache]
directory = "$PWD/.data/fuzz/cache"

# This run's fixture.
[dictionaries.ids]
values = ["$concert", "$schedule"]
[dictionaries.schedule]
values = ["$schedule"]
[dictionaries.seats]
values = [$seats]

TOML
} >"$settings"

# fuzz NAME ACCESS_TOKEN QUEUE_TOKEN: one schemathesis run as one identity.
status=0
fuzz() {
  local name=$1 headers=(-H "Authorization: Bearer $2")
  local config=$out/$name.toml
  {
    cat "$settings"
    cat <<TOML

[[operations]]
include-name = "DELETE /api/v1/queue"
parameters = { "header.X-Queue-Token" = "$decoy_queue" }

[parameters]
"path.id" = { dictionary = "ids", probability = 0.3 }
"body.schedule_id" = { dictionary = "schedule", probability = 0.8 }
"body.seat_ids[*]" = { dictionary = "seats", probability = 0.8 }
# Every request carries this identity's active entry (the operation above excepted).
"header.X-Queue-Token" = "$3"
TOML
  } >"$config"
  log "schemathesis $SCHEMATHESIS_VERSION as the $name: every check, every phase, ${per_run}s (report in $out/$name.*)"
  local code=0
  "$st" --config-file "$config" --no-color run "$url/openapi.json" \
    --checks all --max-time "$per_run" "${seed[@]}" "${headers[@]}" \
    --generation-database "$PWD/.data/fuzz/examples" \
    --report junit,json --report-junit-path "$out/$name.junit.xml" --report-json-path "$out/$name.json" \
    2>&1 | tee "$out/$name.txt" || code=$?
  [ "$code" = 0 ] || { log "schemathesis as the $name failed (exit $code)"; status=1; }
}
# Both hold an active entry of the fixture's concert, so both pass the booking gate.
fuzz admin "$admin" "$admin_queue"
fuzz fan "$fan" "$fan_queue"

# One line per identity, from the JSON reports (the numbers docs/RELIABILITY.md quotes).
for name in admin fan; do
  [ -f "$out/$name.json" ] || continue
  python3 - "$out/$name.json" "$name" <<'PY' || true
import json, sys
r = json.load(open(sys.argv[1]))
t = r["test_cases"]
print(f"[imticket] {sys.argv[2]}: schemathesis {r['schemathesis_version']}, {r['operations']['tested']} operations, "
      f"{t['generated']} test cases, {t['unique_failures']} failures, {len(r['errors'])} errors, "
      f"{r['running_time']:.0f} s, seed {r['seed']}", file=sys.stderr)
PY
done

# What the fuzzing reached: the rows it left, by kind.
psql -h 127.0.0.1 -p "$IMTICKET_PG_PORT" -U postgres -tA -F ' ' imticket -c "
  SELECT 'users', count(*) FROM users UNION ALL SELECT 'concerts', count(*) FROM concerts
  UNION ALL SELECT 'schedules', count(*) FROM schedules UNION ALL SELECT 'seats', count(*) FROM seats
  UNION ALL SELECT 'reservations ' || status, count(*) FROM reservations GROUP BY status
  UNION ALL SELECT 'payments', count(*) FROM payments" >"$out/reached.txt" 2>&1 || true
log "left in the database: $(tr '\n' ',' <"$out/reached.txt" | sed 's/,$//; s/,/, /g')"

log "imticket-admin audit (invariants after the fuzzing)"
if ! "$bin/imticket-admin" --env-file "$system_dir/run.env" audit >"$out/audit.txt" 2>&1; then
  cat "$out/audit.txt"
  log "audit found violations"
  status=1
fi
if grep -q 'panicked' "$system_dir/logs/"*.log 2>/dev/null; then
  grep -h 'panicked' "$system_dir/logs/"*.log | head -5
  log "a process panicked (logs in $system_dir/logs)"
  status=1
fi
[ "$status" = 0 ] && log "fuzzing: no failures, no server errors ($out)" || log "fuzzing FAILED ($out)"
exit "$status"
