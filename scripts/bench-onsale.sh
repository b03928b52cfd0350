#!/usr/bin/env bash
# A whole on-sale through the lean load generator (docs/PERFORMANCE.md, "The 20,000-fan
# on-sale"): FANS fans (20,000) join the pre-queue of a concert whose sale opens OPEN_IN s
# after the start, are shuffled into the line at the opening and admitted at RATE/s with at
# most CAPACITY active; each active fan holds 1–2 of the schedule's SEATS seats (10,000;
# another after a 409), pays, and is done; a fan who finds it sold out leaves
# (`imticket-bench onsale`, bench/src/onsale.rs). One API, one `imticket-worker all`, private
# PostgreSQL (default durability) and Redis (./redis.conf), release build.
# Reports: every kind of request's outcomes and p50/p95/p99, the per-second plot (PNG), the
# payment → confirmed latency, the API's and the worker's peak RSS, the CPU split between the
# load generator, the API, the worker, PostgreSQL and Redis from the opening to the last fan,
# the statements PostgreSQL spent most time on, `imticket-admin audit`, and the
# same run's references: pgbench TPC-B and redis-benchmark.
#   scripts/bench-onsale.sh
#   FANS=5000 SEATS=2000 RATE=200 CAPACITY=500 scripts/bench-onsale.sh
#   BENCH_BIN=DIR scripts/bench-onsale.sh      binaries from DIR instead of a fresh release build
#   PLOT=docs/perf/onsale-20000-fans.png scripts/bench-onsale.sh   where the plot goes
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_system_packages
ensure_rust

fans=${FANS:-20000}
seats=${SEATS:-10000}
rate=${RATE:-500}
capacity=${CAPACITY:-2000}
open_in=${OPEN_IN:-45}
connections=${CONNECTIONS:-256}
plot=${PLOT:-}
pgbench=$(pg_bindir)/pgbench
[ -x "$pgbench" ] || pgbench=$(command -v pgbench) || die "pgbench not found"
if ! python3 -c 'import matplotlib' 2>/dev/null; then
  log "installing matplotlib (pip install matplotlib==3.9.2)"
  python3 -m pip install -q --disable-pip-version-check matplotlib==3.9.2
fi
bench_binaries
# pg_stat_statements: the statements that cost most during the sale, printed at the end.
export PG_EXTRA_OPTS="-c shared_preload_libraries=pg_stat_statements ${PG_EXTRA_OPTS:-}"
bench_services_start
api_port=$(free_port)
addr="127.0.0.1:$api_port"
base="http://$addr"
# Every fan sends from this one address: the per-address limits would see one client.
export IMTICKET_ENV=development RUST_LOG=warn IMTICKET_HTTP_ADDR="$addr" IMTICKET_RATE_LIMITS=off \
  JWT_SECRET="bench-onsale-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  IMTICKET_QUEUE_ACTIVE_CAPACITY="$capacity" IMTICKET_QUEUE_PROMOTE_PER_SECOND="$rate" \
  IMTICKET_WORKER_METRICS_ADDR=127.0.0.1:0 \
  IMTICKET_BOOTSTRAP_ADMIN_EMAIL=bench@imticket.test IMTICKET_BOOTSTRAP_ADMIN_PASSWORD=bench-password
"$bin"/imticket-admin migrate >/dev/null
psql -q -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' bench
"$bin"/imticket-api & bench_pids+=($!)
api_pid=$!
wait_until 60 "the API" curl -fsS "$base/health/ready"
"$bin"/imticket-worker all >"$bench_work/worker.log" 2>&1 & bench_pids+=($!)
worker_pid=$!
db() { psql -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -tAc "$1" bench; }

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(redis-server --version | cut -d' ' -f3); $(psql --version)"
echo "== references, same run: pgbench TPC-B (scale 10, 16 clients, 2 threads, 20 s); redis-benchmark SET/GET (50 clients)"
pg_createdb "$BENCH_PG_PORT" pgbench
"$pgbench" -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -i -s 10 -q pgbench 2>&1 | tail -1
"$pgbench" -h 127.0.0.1 -p "$BENCH_PG_PORT" -U postgres -c 16 -j 2 -T 20 pgbench 2>&1 | grep -E '^tps'
redis-benchmark -p "$BENCH_REDIS_PORT" -q -n 200000 -c 50 -t set,get 2>&1 | tr '\r' '\n' | grep 'requests per second' | tail -2

token=$(curl -fsS -XPOST "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench@imticket.test","password":"bench-password"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
post() { curl -fsS -XPOST "$base/api/v1/$1" -H "authorization: Bearer $token" -H 'content-type: application/json' -d "$2"; }
id_of() { sed 's/.*"\(id\|job_id\)":"\([^"]*\)".*/\2/'; }
opens_at=$(date -u -d "+$open_in seconds" +%Y-%m-%dT%H:%M:%SZ)
concert=$(post concerts "{\"title\":\"On-sale of $fans fans\",\"sale_opens_at\":\"$opens_at\"}" | id_of)
schedule=$(post "concerts/$concert/schedules" "{\"starts_at\":\"$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)\"}" | id_of)
per_row=100
job=$(post "schedules/$schedule/seats?mode=inline" \
  "{\"sections\":[{\"name\":\"A\",\"rows\":$(((seats + per_row - 1) / per_row)),\"seats_per_row\":$per_row,\"price\":100}]}" | id_of)
until curl -fsS "$base/api/v1/jobs/$job" | grep -q '"status":"done"'; do sleep 0.1; done
echo "== on-sale: $fans fans, $(db "SELECT count(*) FROM seats WHERE schedule_id = '$schedule'") seats, opens at $opens_at; admission $rate/s, at most $capacity active; $connections connections"

db "SELECT pg_stat_statements_reset()" >/dev/null
"$bin"/imticket-bench onsale --addr "$addr" --concert "$concert" --schedule "$schedule" --opens-at "$opens_at" \
  --fans "$fans" --connections "$connections" --csv "$bench_work/onsale.csv" \
  --watch "api=$api_pid" --watch "worker=$worker_pid" --watch "postgres=$(head -1 "$bench_pg/postmaster.pid")" \
  --watch "redis=$REDIS_PID"
echo "postgres, the statements of most total time (set-up and sale):"
db "SELECT format('  %s ms in %s calls (%s ms each): %s', round(total_exec_time), calls, round((total_exec_time / calls)::numeric, 3),
          left(regexp_replace(query, '\s+', ' ', 'g'), 110))
    FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'bench')
    ORDER BY total_exec_time DESC LIMIT 8"
echo "peak RSS (VmHWM): API $(awk '/VmHWM/{printf "%.1f MiB", $2 / 1024}' "/proc/$api_pid/status"), worker $(awk '/VmHWM/{printf "%.1f MiB", $2 / 1024}' "/proc/$worker_pid/status")"

none_paid() { [ "$(db "SELECT count(*) FROM reservations WHERE status = 'paid'")" = 0 ]; }
wait_until 120 "every payment confirmed" none_paid
echo "payment → confirmed (payments.created_at → the reservation's confirming transaction): $(db "
  SELECT format('%s confirmed; p50 %s ms, p95 %s ms, p99 %s ms, max %s ms', count(*),
                round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)), round(percentile_cont(0.95) WITHIN GROUP (ORDER BY ms)),
                round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)), round(max(ms)))
  FROM (SELECT extract(epoch FROM r.updated_at - p.created_at) * 1000 AS ms
        FROM reservations r JOIN payments p ON p.reservation_id = r.id WHERE r.status = 'confirmed') t")"
echo "  of which payment → on the stream (outbox occurred_at → published_at), then → confirmed: $(db "
  SELECT format('p50 %s / %s ms, p95 %s / %s ms, p99 %s / %s ms',
                round(percentile_cont(0.5) WITHIN GROUP (ORDER BY a)), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY b)),
                round(percentile_cont(0.95) WITHIN GROUP (ORDER BY a)), round(percentile_cont(0.95) WITHIN GROUP (ORDER BY b)),
                round(percentile_cont(0.99) WITHIN GROUP (ORDER BY a)), round(percentile_cont(0.99) WITHIN GROUP (ORDER BY b)))
  FROM (SELECT extract(epoch FROM o.published_at - o.occurred_at) * 1000 AS a,
               extract(epoch FROM r.updated_at - o.published_at) * 1000 AS b
        FROM outbox o JOIN reservations r ON r.id = (o.payload->>'reservation_id')::uuid
        WHERE o.event_type = 'payment.completed' AND r.status = 'confirmed') t")"
echo "reservations by status: $(db "SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) n FROM reservations GROUP BY 1 ORDER BY 1) s")"
echo "seats by status: $(db "SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) n FROM seats WHERE schedule_id = '$schedule' GROUP BY 1 ORDER BY 1) s")"
echo "== imticket-admin audit"
"$bin"/imticket-admin audit
if [ -n "$plot" ]; then
  mkdir -p "$(dirname "$plot")"
  python3 scripts/plot-onsale.py "$bench_work/onsale.csv" "$plot" \
    "On-sale: $fans fans, $seats seats, admission $rate/s (at most $capacity active), $(date -u +%Y-%m-%d)"
  echo "plot: $plot"
fi
