#!/usr/bin/env bash
# One on-sale spread over the shards (docs/PERFORMANCE.md, "One on-sale on a Redis Cluster"):
# the same load on three Redis shapes, in one run, alternating rounds:
#   single    one redis-server (./redis.conf)
#   naive     a 3-master cluster (scripts/redis-cluster.sh), the streams unsplit
#   spread    the same cluster, IMTICKET_STREAM_PARTITIONS=3 (payments, expiry, due holds split)
# Per shape and round: joins/s (POST /concerts/{id}/queue), status/s (GET /queue/status),
# holds/s (POST /reservations, one schedule), and the whole flow join → hold → pay → confirmed
# with 2 payment workers and the outbox relay (tickets/s: events through the payments stream),
# and for each the share of Redis commands the busiest master ran (1.00 = one shard did all).
# Same-run references per round: redis-benchmark (64 clients, SET and a one-key EVALSHA) against
# the one Redis and against the cluster (--cluster), so the ratios say what the cluster itself
# adds on this machine.
# Private PostgreSQL; one API process (release), capacity lifted so every joiner is active.
#   scripts/bench-shards.sh
#   ROUNDS=3 JOINS=20000 HOLDS=10000 FLOW=5000 CONNECTIONS=64 scripts/bench-shards.sh
#   BENCH_BIN=DIR scripts/bench-shards.sh     binaries from DIR instead of a fresh release build
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_system_packages
ensure_rust

rounds=${ROUNDS:-2}
joins=${JOINS:-20000}
statuses=${STATUSES:-50000}
holds=${HOLDS:-10000}
flow=${FLOW:-5000}
connections=${CONNECTIONS:-64}
shapes=${SHAPES:-"single naive spread"}
bench_binaries
bench_services_start
cluster_dir=$bench_work/cluster
cluster_url=$(bash scripts/redis-cluster.sh start "$cluster_dir")
trap 'bench_services_stop; bash scripts/redis-cluster.sh stop "$cluster_dir" || true' EXIT
single_url=$REDIS_URL
node_cli() { redis-cli -h "${1%:*}" -p "${1##*:}" "${@:2}"; }
masters=$(for n in $(awk '{print $1}' "$cluster_dir/nodes"); do
  if node_cli "$n" ROLE | head -1 | grep -q master; then echo "$n"; fi; done)

export IMTICKET_ENV=development RUST_LOG=warn IMTICKET_RATE_LIMITS=off \
  JWT_SECRET="bench-shards-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  IMTICKET_QUEUE_ACTIVE_CAPACITY=1000000 IMTICKET_QUEUE_PROMOTE_PER_SECOND=1000000 \
  IMTICKET_QUEUE_ACTIVE_TTL_SECONDS=7200 IMTICKET_HOLD_TTL_SECONDS=7200 \
  IMTICKET_API_METRICS_ADDR=off IMTICKET_WORKER_METRICS_ADDR=127.0.0.1:0 \
  IMTICKET_BOOTSTRAP_ADMIN_EMAIL=bench@imticket.test IMTICKET_BOOTSTRAP_ADMIN_PASSWORD=bench-password
"$bin"/imticket-admin migrate >/dev/null
bench() { "$bin"/imticket-bench "$@"; }

# commands_by_master: "port=total_commands_processed …" of the cluster's masters.
commands() {
  local p
  for p in $masters; do
    printf '%s=%s ' "$p" "$(node_cli "$p" INFO stats | sed -n 's/^total_commands_processed:\([0-9]*\).*/\1/p')"
  done
}
# busiest BEFORE AFTER: the busiest master's share of the commands between two `commands`.
busiest() {
  python3 - "$1" "$2" <<'EOF'
import sys
before = dict(kv.split("=") for kv in sys.argv[1].split())
after = dict(kv.split("=") for kv in sys.argv[2].split())
diff = {p: int(after[p]) - int(before[p]) for p in after}
total = sum(diff.values())
print("busiest master ran %.2f of %d commands (%s)" % (max(diff.values()) / total if total else 0, total,
      ", ".join("%s: %d" % kv for kv in sorted(diff.items()))))
EOF
}
# step SHAPE WHAT COMMAND…: runs a benchmark, printing its lines and, on the cluster, the share.
step() {
  local shape=$1 what=$2 before after
  shift 2
  echo "-- $shape: $what"
  before=$(commands)
  "$@" 2>&1 | grep -Ev '^(minted|answers|line now|[0-9]+ fans, all active)' || true
  after=$(commands)
  [ "$shape" = single ] || busiest "$before" "$after"
}

echo "== machine: $(nproc) cores; $(redis-server --version | cut -d' ' -f3); cluster: 3 masters + 3 replicas on this machine"
echo "== load: $connections connections; one imticket-api (release, $(nproc) HTTP workers); 2 payment workers + outbox relay for the flow"
command -v redis-benchmark >/dev/null 2>&1 || die "redis-benchmark not found (apt-get install -y redis-tools)"
single_port=${single_url##*:}
seed=${cluster_url%%,*}; seed=${seed#redis://}
reference() {
  echo "-- reference: redis-benchmark, 64 clients, 200000 requests each (SET; EVALSHA of a one-key GET)"
  local sha
  sha=$(redis-cli -p "$single_port" SCRIPT LOAD "return redis.call('GET', KEYS[1])")
  printf 'one Redis: %s\n' "$(redis-benchmark -p "$single_port" -c 64 -n 200000 -q -t set | tr -d '\r' | grep -o 'SET: [0-9.]* requests per second' | head -1)"
  printf 'one Redis: EVALSHA %s\n' "$(redis-benchmark -p "$single_port" -c 64 -n 200000 -q evalsha "$sha" 1 'k:{1}__rand_int__' | tr -d '\r' | grep -o '[0-9.]* requests per second' | tail -1)"
  printf 'cluster: %s\n' "$(redis-benchmark -h "${seed%:*}" -p "${seed##*:}" --cluster -c 64 -n 200000 -q -t set | tr -d '\r' | grep -o 'SET: [0-9.]* requests per second' | tail -1)"
}
for round in $(seq 1 "$rounds"); do
  reference
  for shape in $shapes; do
    echo "== round $round, $shape"
    prefix="b${round}${shape}:"
    case $shape in
      single) export REDIS_URL=$single_url IMTICKET_REDIS_CLUSTER=false IMTICKET_STREAM_PARTITIONS=1 ;;
      naive) export REDIS_URL=$cluster_url IMTICKET_REDIS_CLUSTER=true IMTICKET_STREAM_PARTITIONS=1 ;;
      spread) export REDIS_URL=$cluster_url IMTICKET_REDIS_CLUSTER=true IMTICKET_STREAM_PARTITIONS=3 ;;
      *) die "unknown shape $shape" ;;
    esac
    export IMTICKET_REDIS_KEY_PREFIX=$prefix
    addr="127.0.0.1:$(free_port)"
    base="http://$addr"
    IMTICKET_HTTP_ADDR=$addr "$bin"/imticket-api & api=$!
    "$bin"/imticket-worker payment & w1=$!
    "$bin"/imticket-worker payment & w2=$!
    "$bin"/imticket-worker outbox-relay & relay=$!
    wait_until 60 "the API" curl -fsS "$base/health/ready"
    token=$(curl -fsS -XPOST "$base/api/v1/auth/login" -H 'content-type: application/json' \
      -d '{"email":"bench@imticket.test","password":"bench-password"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
    post() { curl -fsS -XPOST "$base/api/v1/$1" -H "authorization: Bearer $token" -H 'content-type: application/json' -d "$2"; }
    id_of() { sed 's/.*"\(id\|job_id\)":"\([^"]*\)".*/\2/'; }
    new_schedule() {
      local schedule job
      schedule=$(post "concerts/$1/schedules" "{\"starts_at\":\"$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)\"}" | id_of)
      job=$(post "schedules/$schedule/seats?mode=inline" \
        "{\"sections\":[{\"name\":\"A\",\"rows\":$2,\"seats_per_row\":$3,\"price\":100}]}" | id_of)
      until curl -fsS "$base/api/v1/jobs/$job" | grep -q '"status":"done"'; do sleep 0.05; done
      echo "$schedule"
    }
    line=$(post concerts '{"title":"Shards line"}' | id_of)
    sale=$(post concerts '{"title":"Shards holds"}' | id_of)
    sale_schedule=$(new_schedule "$sale" 100 $((holds / 100)))
    whole=$(post concerts '{"title":"Shards flow"}' | id_of)
    whole_schedule=$(new_schedule "$whole" 100 $((flow / 100)))
    step "$shape" "joins" bench queue-join --addr "$addr" --concert "$line" --requests "$joins" \
      --connections "$connections" --tokens-out "$bench_work/$prefix.tokens"
    step "$shape" "status" bench queue-status --addr "$addr" --tokens-file "$bench_work/$prefix.tokens" \
      --requests "$statuses" --connections "$connections"
    bench booking-fans --addr "$addr" --concert "$sale" --users "$holds" --connections "$connections" \
      --out "$bench_work/$prefix.fans" >/dev/null
    step "$shape" "holds" bench booking-holds --addr "$addr" --fans "$bench_work/$prefix.fans" \
      --schedule "$sale_schedule" --connections "$connections"
    step "$shape" "flow" bench booking-flow --addr "$addr" --concert "$whole" --schedule "$whole_schedule" \
      --users "$flow" --connections "$connections"
    for p in $api $w1 $w2 $relay; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $api $w1 $w2 $relay; do wait "$p" 2>/dev/null || true; done
  done
done
