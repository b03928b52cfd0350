#!/usr/bin/env bash
# Seat plan benchmarks (docs/PERFORMANCE.md, "Seat plans"): importing a 100,000-place plan
# (CSV and JSON, POST /halls/{id}/plans: time and the API's peak memory) beside PostgreSQL's own
# COPY of the same CSV into a plain table (the same-run reference); a 50,000-seat plan's
# picture (GET …/plans/1.svg and GET /schedules/{id}/seats.svg: time and size) beside the JSON
# seat map of the same schedule; and the schedule's 50,000 seats through the seat-creation
# stream.
# Private PostgreSQL and Redis; release build; the API and a seat-creation worker as processes.
#   scripts/bench-plans.sh
#   BENCH_BIN=DIR scripts/bench-plans.sh   binaries from DIR instead of a fresh release build
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_system_packages
ensure_rust

bench_binaries
bench_services_start
api_port=$(free_port)
export IMTICKET_ENV=development RUST_LOG=warn IMTICKET_HTTP_ADDR="127.0.0.1:$api_port" IMTICKET_RATE_LIMITS=off \
  IMTICKET_WORKER_METRICS_ADDR="127.0.0.1:$(free_port)" \
  IMTICKET_BOOTSTRAP_ADMIN_EMAIL=bench@imticket.test IMTICKET_BOOTSTRAP_ADMIN_PASSWORD=bench-password
base="http://127.0.0.1:$api_port"
"$bin"/imticket-admin migrate >/dev/null
"$bin"/imticket-api & api_pid=$!
bench_pids+=("$api_pid")
"$bin"/imticket-worker seat-creation & bench_pids+=($!)
wait_until 60 "the API" curl -fsS "$base/health/ready"
token=$(curl -fsS -XPOST "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench@imticket.test","password":"bench-password"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
post() { curl -fsS -XPOST "$base$1" -H "authorization: Bearer $token" -H 'content-type: application/json' -d "$2"; }
json_field() { sed "s/.*\"$1\":\"\([^\"]*\)\".*/\1/"; }
psql_bench() { psql -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -d bench -v ON_ERROR_STOP=1 "$@"; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$api_pid/status"; }
hwm_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$api_pid/status"; }
# timed LABEL CURL-ARGS…: the request's total time and size, as curl measures them.
timed() {
  local label=$1; shift
  curl -fsS -o "$bench_work/body" -w "$label: %{http_code} in %{time_total} s, %{size_download} bytes\n" "$@"
}

"$bin"/imticket-admin plans demo --sections 40 --rows 60 --first-row 25 --limit 100000 --csv >"$bench_work/100k.csv"
"$bin"/imticket-admin plans demo --sections 40 --rows 60 --first-row 25 --limit 100000 >"$bench_work/100k.json"
"$bin"/imticket-admin plans demo --sections 32 --rows 50 --first-row 20 --limit 50000 >"$bench_work/50k.json"
echo "== machine: $(nproc) cores; load now: $(cut -d' ' -f1-3 /proc/loadavg); $(psql --version)"
echo "== files: 100,000 places as CSV $(stat -c %s "$bench_work/100k.csv") bytes, as JSON $(stat -c %s "$bench_work/100k.json") bytes"
venue=$(post /api/v1/venues '{"name":"Bench Arena","time_zone":"Europe/Berlin"}' | json_field id)
hall=$(post "/api/v1/venues/$venue/halls" '{"name":"Main"}' | json_field id)
psql_bench -qc "CREATE TABLE copy_reference (section text, row_label text, number int, label text, x float8, y float8,
  category text, accessible bool, companion bool, for_sale bool)"
echo "== API RSS before the imports: $(rss_kib) KiB"
for run in 1 2 3; do
  echo "-- run $run"
  timed "import 100,000 places, CSV " -XPOST "$base/api/v1/halls/$hall/plans" -H "authorization: Bearer $token" \
    -H 'content-type: text/csv' --data-binary @"$bench_work/100k.csv"
  timed "import 100,000 places, JSON" -XPOST "$base/api/v1/halls/$hall/plans" -H "authorization: Bearer $token" \
    -H 'content-type: application/json' --data-binary @"$bench_work/100k.json"
  started=$(date +%s%N)
  psql_bench -qc "TRUNCATE copy_reference" -c "\\copy copy_reference FROM '$bench_work/100k.csv' WITH (FORMAT csv, HEADER true)"
  echo "reference: psql \\copy of the same CSV into a plain table: $(( ($(date +%s%N) - started) / 1000000 )) ms"
  echo "API RSS after: $(rss_kib) KiB, peak (VmHWM) $(hwm_kib) KiB"
done

echo "== a 50,000-place plan: import, picture, a schedule made from it"
plan_version=$(curl -fsS -XPOST "$base/api/v1/halls/$hall/plans" -H "authorization: Bearer $token" \
  -H 'content-type: application/json' --data-binary @"$bench_work/50k.json" | sed 's/.*"version":\([0-9]*\).*/\1/')
for run in 1 2 3; do
  timed "GET plans/$plan_version.svg (50,000 places), run $run" "$base/api/v1/halls/$hall/plans/$plan_version.svg"
done
cp "$bench_work/body" "$bench_work/plan.svg"
concert=$(post /api/v1/concerts '{"title":"Bench plan"}' | json_field id)
started=$(date +%s%3N)
made=$(post "/api/v1/concerts/$concert/schedules" \
  "{\"starts_at\":\"$(date -u -d '+30 days' +%FT%TZ)\",\"hall_plan_id\":\"$hall\",\"version\":$plan_version,\"prices\":{\"A\":300,\"B\":200,\"C\":100}}")
schedule=$(echo "$made" | sed 's/^{"id":"\([^"]*\)".*/\1/')
job=$(echo "$made" | json_field job_id)
until curl -fsS "$base/api/v1/jobs/$job" | grep -q '"status":"done"'; do sleep 0.05; done
echo "schedule from the plan: $(curl -fsS "$base/api/v1/jobs/$job" | sed 's/.*"total":\([0-9]*\).*/\1/') seats through the stream in $(( $(date +%s%3N) - started )) ms"
for run in 1 2 3; do
  timed "GET /schedules/{id}/seats.svg, run $run" "$base/api/v1/schedules/$schedule/seats.svg"
  timed "reference: GET /schedules/{id}/seats (JSON seat map), run $run" "$base/api/v1/schedules/$schedule/seats"
done
echo "== API RSS at the end: $(rss_kib) KiB, peak (VmHWM) $(hwm_kib) KiB"
