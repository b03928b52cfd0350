#!/usr/bin/env bash
# Checks scripts/run.sh the way a new user meets it: a verbatim copy of
# .env.example works; a second run on the same data directory, or with a port already taken,
# refuses with one line and leaves the first run alone; a process that dies before or after
# readiness is named at once and the run exits non-zero after stopping everything.
#
# Uses throwaway data directories and free ports only (never .data/ nor the default ports).
# Not part of CI: it starts the whole system several times. Builds with IMTICKET_PROFILE=dev
# unless told otherwise. Exit 0 when every check passed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
set -m # each run.sh in a process group of its own, so a Ctrl-C can be sent to it as a terminal would

export IMTICKET_PROFILE=${IMTICKET_PROFILE:-dev}
unset IMTICKET_ENV JWT_SECRET DATABASE_URL REDIS_URL IMTICKET_REDIS_KEY_PREFIX
work=$(mktemp -d /var/tmp/imticket-check-run.XXXXXX)
chmod 755 "$work"
failures=0
runs=()
squatters=()

finish() {
  local pid
  for pid in "${runs[@]}" "${squatters[@]}"; do
    kill -0 "$pid" 2>/dev/null || continue
    kill -INT -- "-$pid" 2>/dev/null || true
  done
  for pid in "${runs[@]}" "${squatters[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap finish EXIT

pass() { printf '\033[32mPASS\033[0m %s\n' "$*"; }
fail() { printf '\033[31mFAIL\033[0m %s\n' "$*"; failures=$((failures + 1)); }

# settings NAME: a data directory and four free ports for one run, as exported variables.
settings() {
  export IMTICKET_DATA_DIR=$work/$1
  export IMTICKET_PG_PORT=$(free_port) IMTICKET_REDIS_PORT=$(free_port)
  export IMTICKET_HTTP_ADDR=127.0.0.1:$(free_port) IMTICKET_WORKER_METRICS_ADDR=127.0.0.1:$(free_port)
}

# launch NAME: scripts/run.sh in the background with the current settings (pid in RUN_PID),
# its output in $work/NAME.out.
launch() {
  scripts/run.sh >"$work/$1.out" 2>&1 &
  RUN_PID=$!
  runs+=("$RUN_PID")
}

# await SECONDS PID FILE TEXT: until FILE contains TEXT (0), or PID ended / time ran out (1).
await() {
  local deadline=$((SECONDS + $1))
  until grep -qF -- "$4" "$3"; do
    kill -0 "$2" 2>/dev/null || { grep -qF -- "$4" "$3"; return; }
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

# ended SECONDS PID: waits for PID to exit; its status in ENDED_STATUS (124 if it did not).
ended() {
  local deadline=$((SECONDS + $1))
  while kill -0 "$2" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { ENDED_STATUS=124; return; }
    sleep 0.2
  done
  ENDED_STATUS=0
  wait "$2" || ENDED_STATUS=$?
}

healthy() { curl -fsS "http://$1/health/ready" >/dev/null 2>&1; }

log "building once ($IMTICKET_PROFILE profile)"
cargo build --quiet --profile "$IMTICKET_PROFILE" --bins
bin=target/$([ "$IMTICKET_PROFILE" = dev ] && echo debug || echo "$IMTICKET_PROFILE")

# 1. A verbatim copy of .env.example is a working development setup.
settings first
cp .env.example "$work/dotenv"
export IMTICKET_DOTENV=$work/dotenv
launch first
first=$RUN_PID
first_dir=$IMTICKET_DATA_DIR first_http=$IMTICKET_HTTP_ADDR first_pg=$IMTICKET_PG_PORT
first_redis=$IMTICKET_REDIS_PORT first_metrics=$IMTICKET_WORKER_METRICS_ADDR
if await 300 "$first" "$work/first.out" "press Ctrl-C to stop" && healthy "$first_http"; then
  pass ".env.example copied verbatim: run.sh starts and the API is ready"
else
  fail ".env.example copied verbatim: run.sh did not start (see below)"
  tail -n 30 "$work/first.out"
  exit 1
fi
unset IMTICKET_DOTENV

# 1b. The operator tools reach this run's Redis through run.env, as run.sh printed them.
if grep -qF "REDIS_URL=redis://127.0.0.1:$first_redis" "$first_dir/run.env" \
  && grep -qF "$bin/imticket-admin --env-file $first_dir/run.env streams" "$work/first.out" \
  && grep -qF "redis-cli -p $first_redis " "$work/first.out" \
  && out=$(env -u REDIS_URL "$bin/imticket-admin" --env-file "$first_dir/run.env" streams 2>&1) \
  && grep "stream:seat-creation" <<<"$out" | grep -qv "does not exist yet" && grep -q "group seat-creation" <<<"$out"; then
  pass "run.env names this run's servers; imticket-admin --env-file … streams sees the worker's groups"
else
  fail "run.env / imticket-admin streams: $(cat "$first_dir/run.env" 2>&1) ${out:-}"
fi

# 2. A second run on the same data directory refuses, and the first one keeps working.
export IMTICKET_DATA_DIR=$first_dir
launch second
ended 60 "$RUN_PID"
if [ "$ENDED_STATUS" -ne 0 ] && [ "$ENDED_STATUS" -ne 124 ] && grep -q "already running with $first_dir" "$work/second.out" \
  && ! grep -q "stopping" "$work/second.out" && healthy "$first_http" && kill -0 "$first"; then
  pass "second run.sh on the same data dir: exit $ENDED_STATUS, '$(grep -o 'another scripts/run.sh.*' "$work/second.out")'; the first still ready"
else
  fail "second run.sh on the same data dir (exit $ENDED_STATUS):"; cat "$work/second.out"
fi

# 3. Each port already in use is named, and nothing of the first run is touched.
for taken in "IMTICKET_PG_PORT=$first_pg" "IMTICKET_REDIS_PORT=$first_redis" \
  "IMTICKET_HTTP_ADDR=$first_http" "IMTICKET_WORKER_METRICS_ADDR=$first_metrics"; do
  settings "port-${taken%%=*}"
  export "${taken?}"
  launch port
  ended 60 "$RUN_PID"
  value=${taken#*=}
  if [ "$ENDED_STATUS" -ne 0 ] && [ "$ENDED_STATUS" -ne 124 ] && grep -q "port ${value##*:} .*(${taken%%=*}) is already in use" "$work/port.out" \
    && healthy "$first_http" && [ ! -e "$IMTICKET_DATA_DIR/run.pid" ] && [ ! -e "$IMTICKET_DATA_DIR/run.env" ]; then
    pass "${taken%%=*} taken: $(grep -o 'port .* in use' "$work/port.out"); nothing left in its data directory"
  else
    fail "${taken%%=*} taken (exit $ENDED_STATUS):"; cat "$work/port.out"
  fi
done

# 4. kill -9 of the running API: named with its signal, everything stopped, exit non-zero.
api=$(pgrep -P "$first" -x imticket-api || true)
kill -9 "$api"
ended 60 "$first"
if [ "$ENDED_STATUS" -eq 1 ] && grep -q "imticket-api (pid $api) was killed by signal KILL" "$work/first.out" \
  && grep -q "stopped" "$work/first.out" && [ ! -e "$first_dir/run.env" ] \
  && ! (exec 3<>"/dev/tcp/127.0.0.1/$first_pg") 2>/dev/null && ! (exec 3<>"/dev/tcp/127.0.0.1/$first_redis") 2>/dev/null; then
  pass "kill -9 of the API: exit 1, '$(grep -o 'imticket-api (pid.*' "$work/first.out" | head -1)', PostgreSQL and Redis stopped"
else
  fail "kill -9 of the API (exit $ENDED_STATUS):"; tail -n 20 "$work/first.out"
fi

# 5. The API dies before it is ready (its port taken after the port check): named at once,
#    not after the 60 s readiness wait.
settings died
launch died
died=$RUN_PID
await 120 "$died" "$work/died.out" "building" || true
setsid redis-server --port "${IMTICKET_HTTP_ADDR##*:}" --save '' --appendonly no --dir "$work" >/dev/null 2>&1 &
squatters+=($!)
started=$SECONDS
ended 120 "$died"
took=$((SECONDS - started))
if [ "$ENDED_STATUS" -eq 1 ] && [ $took -lt 45 ] && grep -q "imticket-api (pid [0-9]*) exited with status [0-9]* before ImTicket was ready" "$work/died.out" \
  && ! grep -q "ImTicket is running" "$work/died.out"; then
  pass "API dies before ready: noticed in ${took}s, '$(grep -o 'imticket-api (pid.*' "$work/died.out" | head -1)'"
else
  fail "API dies before ready (exit $ENDED_STATUS after ${took}s):"; tail -n 20 "$work/died.out"
fi

# 6. Ctrl-C (SIGINT to the run's process group, as a terminal sends it) stops cleanly, exit 0.
settings ctrl-c
launch ctrl-c
if await 300 "$RUN_PID" "$work/ctrl-c.out" "ImTicket is running"; then
  kill -INT -- "-$RUN_PID"
  ended 60 "$RUN_PID"
  if [ "$ENDED_STATUS" -eq 0 ] && grep -q "stopped" "$work/ctrl-c.out" && ! grep -q "error:" "$work/ctrl-c.out"; then
    pass "Ctrl-C: stopped cleanly, exit 0"
  else
    fail "Ctrl-C (exit $ENDED_STATUS):"; tail -n 20 "$work/ctrl-c.out"
  fi
else
  fail "Ctrl-C run did not start:"; tail -n 20 "$work/ctrl-c.out"
fi

[ "$failures" -eq 0 ] && log "every check passed" || log "$failures check(s) failed"
[ "$failures" -eq 0 ]
