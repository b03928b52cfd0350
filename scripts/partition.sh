#!/usr/bin/env bash
# A network partition of the Redis Cluster in the middle of a sale (docs/RELIABILITY.md,
# "A network partition"), on hosts simulated with network namespaces on this one machine:
#
#   imt-r1 … imt-r6   10.77.0.11-16   the cluster's nodes (3 masters + 3 replicas, port 6379)
#   imt-app1          10.77.0.21      imticket-api :8080 + imticket-worker all   (the minority's client)
#   imt-app2          10.77.0.22      imticket-api :8080 + imticket-worker all
#   this host         10.77.0.1       PostgreSQL (reached over its Unix socket), the load
# all on one bridge (imtbr0). The master serving concert A's line is cut off (blackhole routes
# both ways) from every other node and from imt-app2, but not from imt-app1, for CUT seconds,
# then healed. Throughout: fans join concert A every 50 ms through each API (who got in, who
# was refused, whose place survived the heal), and `imticket-bench chaos-load` runs the whole
# flow (join, charge, hold, pay) on concert B through imt-app2. After the heal: where every
# accepted join stands now (seen through imt-app2), the chaos check (every payment confirmed
# once, every abandoned hold expired, nothing pending) and `imticket-admin audit`.
#   scripts/partition.sh                 (root: it creates namespaces, veths and a bridge)
#   CUT=12 LOAD_SECONDS=45 scripts/partition.sh
# The dev build (BENCH_PROFILE=release for a release build). Everything it made is removed on
# exit: processes by PID, the namespaces, the bridge.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_system_packages
ensure_rust
[ "$(id -u)" -eq 0 ] || die "scripts/partition.sh makes network namespaces: run it as root"
command -v ip >/dev/null || die "ip (iproute2) is missing: apt-get install -y iproute2"

cut_seconds=${CUT:-10}
load_seconds=${LOAD_SECONDS:-40}
export BENCH_PROFILE=${BENCH_PROFILE:-dev}
bench_binaries

work=$(mktemp -d /tmp/imticket-partition.XXXXXX)
logs=$work/logs
mkdir -p "$logs"
pg_data=$(pg_usable_dir "$work/pg")
pg_port=$(free_port)
hosts="r1 r2 r3 r4 r5 r6 app1 app2"
declare -A ip=([r1]=10.77.0.11 [r2]=10.77.0.12 [r3]=10.77.0.13 [r4]=10.77.0.14 [r5]=10.77.0.15
  [r6]=10.77.0.16 [app1]=10.77.0.21 [app2]=10.77.0.22)
pids=()

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  bash scripts/redis-cluster.sh stop "$work/cluster" 2>/dev/null || true
  pg_stop "$pg_data"
  for h in $hosts; do ip netns del "imt-$h" 2>/dev/null || true; done
  ip link del imtbr0 2>/dev/null || true
  if [ "$status" -eq 0 ]; then rm -rf "$work" "$pg_data"; else log "kept $work for a look (logs in $logs)"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip link show imtbr0 >/dev/null 2>&1 && die "bridge imtbr0 exists: another scripts/partition.sh runs (or one was killed: ip link del imtbr0)"
ip link add imtbr0 type bridge
ip addr add 10.77.0.1/24 dev imtbr0
ip link set imtbr0 up
for h in $hosts; do
  ip netns add "imt-$h"
  ip link add "imt-$h" type veth peer name eth0 netns "imt-$h"
  ip link set "imt-$h" master imtbr0 up
  ip netns exec "imt-$h" ip addr add "${ip[$h]}/24" dev eth0
  ip netns exec "imt-$h" ip link set eth0 up
  ip netns exec "imt-$h" ip link set lo up
done
log "hosts: $(for h in $hosts; do printf '%s=%s ' "imt-$h" "${ip[$h]}"; done)"

pg_start "$pg_data" "$pg_port"
pg_createdb "$pg_port" partition
# Over the Unix socket: reachable from every namespace (they share the file system).
export DATABASE_URL="postgres://postgres@localhost/partition?host=$pg_data&port=$pg_port"
cluster() { bash scripts/redis-cluster.sh "$1" "$work/cluster" "${@:2}"; }
REDIS_URL=$(IMTICKET_CLUSTER_HOSTS="imt-r1/${ip[r1]} imt-r2/${ip[r2]} imt-r3/${ip[r3]} imt-r4/${ip[r4]} imt-r5/${ip[r5]} imt-r6/${ip[r6]}" \
  cluster start)
export REDIS_URL IMTICKET_REDIS_CLUSTER=true IMTICKET_STREAM_PARTITIONS=3
export IMTICKET_ENV=development RUST_LOG=info IMTICKET_LOG_FORMAT=json IMTICKET_RATE_LIMITS=off
export JWT_SECRET="partition-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export IMTICKET_API_METRICS_ADDR=off IMTICKET_WORKER_METRICS_ADDR="127.0.0.1:0"
export IMTICKET_QUEUE_ACTIVE_CAPACITY=1000000 IMTICKET_QUEUE_PROMOTE_PER_SECOND=1000000
export IMTICKET_HOLD_TTL_SECONDS=15 IMTICKET_STREAM_CLAIM_IDLE_MS=2000
export IMTICKET_BOOTSTRAP_ADMIN_EMAIL=partition@imticket.test IMTICKET_BOOTSTRAP_ADMIN_PASSWORD=partition-password
"$bin"/imticket-admin migrate >/dev/null

# on HOST NAME COMMAND…: a process in a host's namespace, output to $logs/NAME.log.
on() {
  local h=$1 name=$2; shift 2
  ip netns exec "imt-$h" "$@" >>"$logs/$name.log" 2>&1 &
  pids+=($!)
}
for h in app1 app2; do
  IMTICKET_HTTP_ADDR="${ip[$h]}:8080" on "$h" "api-$h" "$bin"/imticket-api
  on "$h" "worker-$h" "$bin"/imticket-worker all
done
app1="http://${ip[app1]}:8080" app2="http://${ip[app2]}:8080"
wait_until 60 "both APIs" sh -c "curl -fsS $app1/health/ready && curl -fsS $app2/health/ready"

token=$(curl -fsS -XPOST "$app2/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"partition@imticket.test","password":"partition-password"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
post() { curl -fsS -XPOST "$app2/api/v1/$1" -H "authorization: Bearer $token" -H 'content-type: application/json' -d "$2"; }
id_of() { sed 's/.*"\(id\|job_id\)":"\([^"]*\)".*/\2/'; }
line=$(post concerts '{"title":"Partition: the line"}' | id_of)
sale=$(post concerts '{"title":"Partition: the sale"}' | id_of)
schedule=$(post "concerts/$sale/schedules" "{\"starts_at\":\"$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)\"}" | id_of)
job=$(post "schedules/$schedule/seats?mode=inline" '{"sections":[{"name":"A","rows":100,"seats_per_row":100,"price":100}]}' | id_of)
wait_until 60 "the seats" sh -c "curl -fsS '$app2/api/v1/jobs/$job' | grep -q '\"status\":\"done\"'"
fans=$(( (load_seconds * 20) + 100 ))
log "signing up $((2 * fans)) fans for the line"
python3 scripts/lib/partition_probe.py fans "$app2" "$fans" "$work/fans1" &
python3 scripts/lib/partition_probe.py fans "$app2" "$fans" "$work/fans2"
wait $!

minority=$(cluster master-of "imticket:queue:{c$line}:waiting")
minority_ip=${minority%:*}
log "the master serving concert A's line: $minority; the partition cuts it off from every other node and from imt-app2 for $cut_seconds s"

since=$(date +%s.%N)
"$bin"/imticket-bench chaos-load --addr "${ip[app2]}:8080" --concert "$sale" --schedule "$schedule" \
  --seconds "$load_seconds" --connections 16 --report "$work/sale.json" >"$work/sale.load" 2>&1 &
load=$!
python3 scripts/lib/partition_probe.py join "$app1" "$line" "$work/fans1" "$load_seconds" "$work/joins-app1" &
probe1=$!
python3 scripts/lib/partition_probe.py join "$app2" "$line" "$work/fans2" "$load_seconds" "$work/joins-app2" &
probe2=$!

sleep $((load_seconds / 4))
# The cut: blackhole routes both ways between the minority master and every node and imt-app2.
minority_host=""
for h in r1 r2 r3 r4 r5 r6; do [ "${ip[$h]}" = "$minority_ip" ] && minority_host=$h; done
cut_from=""
for h in r1 r2 r3 r4 r5 r6 app2; do
  [ "$h" = "$minority_host" ] && continue
  ip netns exec "imt-$minority_host" ip route add blackhole "${ip[$h]}/32"
  ip netns exec "imt-$h" ip route add blackhole "$minority_ip/32"
  cut_from+="imt-$h "
done
cut_at=$(date +%s.%N)
log "cut imt-$minority_host off from: $cut_from"
# Until a majority node (the first that is not the minority master) marks it failed.
majority_node=""
for h in r1 r2 r3 r4 r5 r6; do [ "$h" != "$minority_host" ] && { majority_node=${ip[$h]}; break; }; done
marked_failed() {
  redis-cli -h "$majority_node" -p 6379 CLUSTER NODES | awk -v m="$minority" '$2 ~ "^"m"@" {print $3}' |
    grep -q 'fail$\|fail,\|,fail'
}
wait_until 60 "the majority to mark $minority failed" marked_failed
failed_at=$(date +%s.%N)
promoted() {
  local now
  now=$(IMTICKET_CLUSTER_ASK="$majority_node:6379" cluster master-of "imticket:queue:{c$line}:waiting")
  [ -n "$now" ] && [ "$now" != "$minority" ]
}
wait_until 60 "a replica to take over from $minority" promoted
promoted_at=$(date +%s.%N)
log "the majority marked $minority failed after $(python3 -c "print('%.1f' % ($failed_at - $cut_at))") s"
sleep "$cut_seconds"
for h in r1 r2 r3 r4 r5 r6 app2; do
  [ "$h" = "$minority_host" ] && continue
  ip netns exec "imt-$minority_host" ip route del blackhole "${ip[$h]}/32"
  ip netns exec "imt-$h" ip route del blackhole "$minority_ip/32"
done
healed_at=$(date +%s.%N)
log "healed; waiting for the cluster to agree"
all_ok() {
  local n
  for n in r1 r2 r3 r4 r5 r6; do
    redis-cli -h "${ip[$n]}" -p 6379 CLUSTER INFO | grep -q '^cluster_state:ok' || return 1
  done
  redis-cli -h "$minority_ip" -p 6379 ROLE | head -1 | grep -q slave
}
wait_until 60 "the cluster to agree after the heal" all_ok
agreed_at=$(date +%s.%N)
wait "$probe1" "$probe2" || true
load_status=0
wait "$load" || load_status=$?
check_status=0
"$bin"/imticket-bench chaos-check --report "$work/sale.json" --schedule "$schedule" --since "$since" \
  --deadline-seconds 120 >"$work/sale.check" 2>&1 || check_status=$?
audit_status=0
"$bin"/imticket-admin audit >"$work/audit" 2>&1 || audit_status=$?

echo
echo "== partition: $(date -u +%Y-%m-%dT%H:%MZ); cluster-node-timeout 2000 ms; the minority master $minority (imt-$minority_host) with imt-app1"
python3 - "$since" "$cut_at" "$failed_at" "$promoted_at" "$healed_at" "$agreed_at" <<'EOF'
import sys
since, cut, failed, promoted, healed, agreed = map(float, sys.argv[1:])
print("timeline (s from the start of the load): cut %.1f; the majority marked the master failed %.1f (cut +%.1f); its replica "
      "serves the slots %.1f (cut +%.1f); healed %.1f; every node agrees, the old master a replica, %.1f (heal +%.1f)"
      % (cut - since, failed - since, failed - cut, promoted - since, promoted - cut, healed - since, agreed - since,
         agreed - healed))
EOF
python3 scripts/lib/partition_probe.py verify "$app2" "$work/joins-app1" "$work/joins-app2" | python3 -c '
import json, sys
cut, failed, healed = map(float, sys.argv[1:4])
for line in sys.stdin:
    r = json.loads(line)
    side = "imt-app1 (sees the minority master)" if r["file"].endswith("app1") else "imt-app2 (majority side)"
    lost = "" if r["lost_from"] is None else "; the lost ones were accepted from cut %+.1f s to cut %+.1f s" % (
        r["lost_from"] - cut, r["lost_until"] - cut)
    print("%s: %d joins sent, %d accepted, refused %s; the accepted ones now: %s%s" % (
        side, r["joins_sent"], r["accepted"], r["refused"] or "none", r["accepted_now"], lost))
' "$cut_at" "$failed_at" "$healed_at"
python3 - "$work/joins-app1" "$cut_at" "$healed_at" "$app2" <<'EOF'
import json, sys, subprocess
path, cut, healed, base = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
during = [json.loads(l) for l in open(path) if l.strip()]
during = [a for a in during if cut <= a["t"] <= healed and a["status"] == 200]
print("imt-app1, accepted while the partition lasted: %d; last accepted %.1f s after the cut" % (
    len(during), max([a["t"] - cut for a in during], default=0.0)))
EOF
echo "sale through imt-app2 (chaos-load, then chaos-check): load exit $load_status, check exit $check_status, audit exit $audit_status"
grep -h '^{' "$work/sale.check" | tail -1
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
cut = float(sys.argv[2]) - float(sys.argv[3])
first = r.get("errors_first_s"); last = r.get("errors_last_s")
when = "" if last is None else " (from cut %+.1f s to cut %+.1f s)" % ((first if first is not None else last - r.get("errors_window_s", 0)) - cut, last - cut)
print("requests by status: %s | 5xx and connection errors seen by clients: %s%s | flows failed: %s (first: %s)" % (
    r.get("by_status"), r.get("errors_seen_by_clients"), when, r.get("flows_failed"), r.get("first_failure")))
' "$work/sale.json" "$cut_at" "$since" || true
cat "$work/audit"
republished=$(cat "$logs"/worker-*.log | grep -c 'publishing again every event not processed yet' || true)
echo "outbox relays that saw a new Redis and published again: $republished"
[ "$load_status" = 0 ] && [ "$check_status" = 0 ] && [ "$audit_status" = 0 ]
