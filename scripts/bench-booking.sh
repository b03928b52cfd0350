#!/usr/bin/env bash
# Booking benchmarks (docs/PERFORMANCE.md, "Booking"): holds on distinct seats of one
# 50,000-seat schedule and the same spread over 50 schedules of 1,000; the seat map of a
# 50,000-seat schedule read while holds run on it; 10,000 fans contending
# for 100 seats (outcomes, PostgreSQL statements per loser); payments/s; the whole flow
# join → hold → pay → confirmed with the payment worker. Same-run reference: pgbench TPC-B on
# the same PostgreSQL.
# Private PostgreSQL (default durability, pg_stat_statements loaded) and Redis (./redis.conf);
# the API in release with every joiner admitted at once (queue capacity and rate lifted);
# IMTICKET_MAX_SEATS_PER_USER default. Fans are rows inserted with SQL and tokens minted with
# the API's JWT_SECRET; each joins the line over HTTP before the timed run.
#   scripts/bench-booking.sh
#   HOLDS=20000 CONNECTIONS=32 FLOW=5000 MAP_HOLDS=10000 READERS=8 scripts/bench-booking.sh
#   BENCH_BIN=DIR scripts/bench-booking.sh     binaries from DIR instead of a fresh release build
#   ONLY=holds scripts/bench-booking.sh         tests 1, 1b and 2 with pgbench before and after, then stop
#   PROFILE=docs/perf scripts/bench-booking.sh  perf call graphs of the API and PostgreSQL during
#       tests 1 and 4, as flame graphs in DIR (scripts/lib/profile.sh; slows those tests)
#   PG_SOCKET=1 scripts/bench-booking.sh       PostgreSQL over its Unix socket (API, bench, pgbench)
#   NOTIFY=healthy|dead scripts/bench-booking.sh a notifications worker runs throughout, with one
#       webhook endpoint for every notice and mail to every fan: to a receiver answering 204 and
#       an SMTP sink (healthy), or to peers that accept connections and never answer (dead);
#       docs/PERFORMANCE.md "Notifications off the booking path"
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
source scripts/lib/profile.sh
ensure_system_packages
ensure_rust

holds=${HOLDS:-50000}
spread=${SPREAD:-50}
contenders=${CONTENDERS:-10000}
contended_seats=${CONTENDED_SEATS:-100}
flow=${FLOW:-10000}
map_holds=${MAP_HOLDS:-20000}
readers=${READERS:-8}
connections=${CONNECTIONS:-64}
pgbench=$(pg_bindir)/pgbench
[ -x "$pgbench" ] || pgbench=$(command -v pgbench) || die "pgbench not found"
bench_binaries
# PG_EXTRA_OPTS adds server options (e.g. `-c plan_cache_mode=force_custom_plan` to compare plans).
export PG_EXTRA_OPTS="-c shared_preload_libraries=pg_stat_statements ${PG_EXTRA_OPTS:-}"
bench_services_start
# PG_SOCKET=1: the API, the bench and pgbench reach PostgreSQL over its Unix socket instead of
# TCP on 127.0.0.1 (the reference changes with it: both sides use the same transport).
pghost=127.0.0.1
if [ "${PG_SOCKET:-0}" = 1 ]; then
  pghost=$bench_pg
  export DATABASE_URL="postgres://postgres@localhost/bench?host=$bench_pg&port=$BENCH_PG_PORT"
fi
api_port=$(free_port)
addr="127.0.0.1:$api_port"
base="http://$addr"
# Every joiner active at once; holds and slots outlive the whole run (payments come minutes
# after the holds). The API and the bench share JWT_SECRET.
export IMTICKET_ENV=development RUST_LOG=warn IMTICKET_HTTP_ADDR="$addr" IMTICKET_RATE_LIMITS=off \
  JWT_SECRET="bench-booking-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  IMTICKET_QUEUE_ACTIVE_CAPACITY=1000000 IMTICKET_QUEUE_PROMOTE_PER_SECOND=1000000 \
  IMTICKET_QUEUE_ACTIVE_TTL_SECONDS=7200 IMTICKET_HOLD_TTL_SECONDS=7200 \
  IMTICKET_BOOTSTRAP_ADMIN_EMAIL=bench@imticket.test IMTICKET_BOOTSTRAP_ADMIN_PASSWORD=bench-password
notify=${NOTIFY:-}
case "$notify" in
  "") ;;
  healthy | dead)
    hook_port=$(free_port)
    smtp_port=$(free_port)
    if [ "$notify" = healthy ]; then
      python3 -c 'import aiosmtpd' 2>/dev/null ||
        python3 -m pip install -q --disable-pip-version-check aiosmtpd==1.4.6
      python3 scripts/lib/http_ok.py "$hook_port" & bench_pids+=($!)
      python3 scripts/lib/smtp_sink.py "$smtp_port" "$bench_work/mail" >/dev/null & bench_pids+=($!)
    else
      python3 scripts/lib/blackhole.py "$hook_port" & bench_pids+=($!)
      python3 scripts/lib/blackhole.py "$smtp_port" & bench_pids+=($!)
    fi
    export IMTICKET_WEBHOOK_ALLOW_PRIVATE=true IMTICKET_SMTP_URL="smtp://127.0.0.1:$smtp_port"
    ;;
  *) die "NOTIFY: expected healthy or dead, got $notify" ;;
esac
"$bin"/imticket-admin migrate >/dev/null
psql -q -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' bench
# BENCH_PRE_SQL runs on the bench database after the migrations (e.g. to put an index back and
# compare): BENCH_PRE_SQL='CREATE INDEX seats_schedule_status_idx ON seats (schedule_id, status)'
[ -z "${BENCH_PRE_SQL:-}" ] || psql -q -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -c "$BENCH_PRE_SQL" bench
"$bin"/imticket-api & bench_pids+=($!)
api_pid=$!
wait_until 60 "the API" curl -fsS "$base/health/ready"
token=$(curl -fsS -XPOST "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench@imticket.test","password":"bench-password"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
post() { curl -fsS -XPOST "$base/api/v1/$1" -H "authorization: Bearer $token" -H 'content-type: application/json' -d "$2"; }
id_of() { sed 's/.*"\(id\|job_id\)":"\([^"]*\)".*/\2/'; }
new_concert() { post concerts "{\"title\":\"$1\"}" | id_of; }
# new_schedule CONCERT ROWS SEATS_PER_ROW: a schedule with ROWS × SEATS_PER_ROW seats at 100
# points, created inline; waits for the job.
new_schedule() {
  local schedule job
  schedule=$(post "concerts/$1/schedules" "{\"starts_at\":\"$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)\"}" | id_of)
  job=$(post "schedules/$schedule/seats?mode=inline" \
    "{\"sections\":[{\"name\":\"A\",\"rows\":$2,\"seats_per_row\":$3,\"price\":100}]}" | id_of)
  until curl -fsS "$base/api/v1/jobs/$job" | grep -q '"status":"done"'; do sleep 0.05; done
  echo "$schedule"
}
bench() { "$bin"/imticket-bench "$@"; }
if [ -n "$notify" ]; then
  post admin/webhooks "{\"url\":\"http://127.0.0.1:$hook_port/hook\",\"event_types\":[\"*\"]}" >/dev/null
  "$bin"/imticket-worker notifications & bench_pids+=($!)
  echo "== notifications: a worker with one webhook endpoint (*) and SMTP, both $notify"
fi
db() { psql -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -tAc "$1" bench; }

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(redis-server --version | cut -d' ' -f3); $(psql --version)"
echo "== load: $connections connections, each sending back to back; API: actix-web, $(nproc) workers"
echo "== reference: pgbench TPC-B on the same PostgreSQL (scale 10, 16 clients, 2 threads, 20 s)"
pg_createdb "$BENCH_PG_PORT" pgbench
"$pgbench" -h "$pghost" -p "$BENCH_PG_PORT" -U postgres -i -s 10 -q pgbench 2>&1 | tail -1
"$pgbench" -h "$pghost" -p "$BENCH_PG_PORT" -U postgres -c 16 -j 2 -T 20 pgbench 2>&1 | grep -E 'latency average|^tps'

log "set-up: concerts, schedules and seats"
one=$(new_concert "Bench one schedule")
one_schedule=$(new_schedule "$one" 500 $((holds / 500)))
many=$(new_concert "Bench spread")
many_schedules=()
for _ in $(seq 1 "$spread"); do many_schedules+=(--schedule "$(new_schedule "$many" 10 $((holds / spread / 10)))"); done
read_concert=$(new_concert "Bench seat map")
read_schedule=$(new_schedule "$read_concert" 500 $((holds / 500)))
hot=$(new_concert "Bench contention")
hot_schedule=$(new_schedule "$hot" 1 "$contended_seats")
flow_concert=$(new_concert "Bench flow")
flow_schedule=$(new_schedule "$flow_concert" 100 $((flow / 100)))
echo "seats: $(db "SELECT count(*) FROM seats") in $(db "SELECT count(*) FROM schedules") schedules"

echo "== 1. holds: $holds fans, a distinct seat each, ONE schedule of $holds seats"
bench booking-fans --addr "$addr" --concert "$one" --users "$holds" --connections "$connections" --out "$bench_work/one.fans"
cpu_split_begin
flame_in_background holds 2 4
bench booking-holds --addr "$addr" --fans "$bench_work/one.fans" --schedule "$one_schedule" \
  --connections "$connections" --out "$bench_work/one.holds"
cpu_split_end "1. holds"

echo "== 1b. seat map: $readers connections read the map of a $holds-seat schedule while $map_holds fans hold seats of it"
bench booking-fans --addr "$addr" --concert "$read_concert" --users "$map_holds" --connections "$connections" --out "$bench_work/read.fans"
bench booking-holds --addr "$addr" --fans "$bench_work/read.fans" --schedule "$read_schedule" \
  --connections "$connections" --readers "$readers"

echo "== 2. holds: $holds fans, a distinct seat each, spread over $spread schedules of $((holds / spread)) seats"
bench booking-fans --addr "$addr" --concert "$many" --users "$holds" --connections "$connections" --out "$bench_work/many.fans"
bench booking-holds --addr "$addr" --fans "$bench_work/many.fans" "${many_schedules[@]}" --connections "$connections"

echo "== reference again after tests 1-2 (the machine is shared: the ratios use the mean of both pgbench runs)"
"$pgbench" -h "$pghost" -p "$BENCH_PG_PORT" -U postgres -c 16 -j 2 -T 20 pgbench 2>&1 | grep -E 'latency average|^tps'
[ "${ONLY:-}" != holds ] || { flame_render; exit 0; }

echo "== 3. contention: $contenders fans, a random one of $contended_seats seats each"
bench booking-fans --addr "$addr" --concert "$hot" --users "$contenders" --connections "$connections" --out "$bench_work/hot.fans"
bench booking-holds --addr "$addr" --fans "$bench_work/hot.fans" --schedule "$hot_schedule" --random --connections "$connections"

echo "== 4. payments: the $holds holders of test 1 charge points, then each pays its hold"
bench booking-charge --addr "$addr" --fans "$bench_work/one.holds" --connections "$connections"
cpu_split_begin
flame_in_background payments 1 3
bench booking-pay --addr "$addr" --holds "$bench_work/one.holds" --connections "$connections"
cpu_split_end "4. payments"

echo "== 5. the whole flow with the payment worker: $flow fans join → hold → pay → confirmed"
# The payment worker starts only now: the payments of test 4 are confirmed first (not timed).
"$bin"/imticket-worker payment & bench_pids+=($!)
none_paid() { [ "$(db "SELECT count(*) FROM reservations WHERE status = 'paid'")" = 0 ]; }
wait_until 600 "test 4's payments confirmed" none_paid
db "SELECT pg_stat_statements_reset()" >/dev/null
cpu_split_begin
bench booking-flow --addr "$addr" --concert "$flow_concert" --schedule "$flow_schedule" --users "$flow" --connections "$connections"
cpu_split_end "5. flow"
echo "postgres during the flow, the statements of most total time (the worker's confirmations included):"
db "SELECT format('  %s ms in %s calls (%s ms each): %s', round(total_exec_time), calls, round((total_exec_time / calls)::numeric, 3),
          left(regexp_replace(query, '\s+', ' ', 'g'), 110))
    FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'bench')
    ORDER BY total_exec_time DESC LIMIT 10"
echo "reservations by status: $(db "SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) n FROM reservations GROUP BY 1 ORDER BY 1) s")"
if [ -n "$notify" ]; then
  echo "webhook deliveries by status: $(db "SELECT coalesce(string_agg(status || ' ' || n, ', '), 'none') FROM (SELECT status, count(*) n FROM webhook_deliveries GROUP BY 1 ORDER BY 1) s")"
  echo "mails by status: $(db "SELECT coalesce(string_agg(status || ' ' || n, ', '), 'none') FROM (SELECT status, count(*) n FROM email_deliveries GROUP BY 1 ORDER BY 1) s")"
fi
flame_render
