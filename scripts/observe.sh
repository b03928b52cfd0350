#!/usr/bin/env bash
# The local system watched by a real Prometheus: starts scripts/run.sh (PostgreSQL, Redis, the
# API, all workers) and Debian's Prometheus with this repository's alert rules and a scrape
# configuration for the local addresses; shows every target up, the rules loaded, the expected
# series present and the alerts firing (none, on a healthy system); then keeps both running
# until Ctrl-C (or SIGTERM) and stops them cleanly.
#   scripts/observe.sh            watch until Ctrl-C
#   scripts/observe.sh --check    stop after the checks (exit 1 if one failed)
# Settings: IMTICKET_PROMETHEUS_PORT (59090), and run.sh's own (IMTICKET_HTTP_ADDR,
# IMTICKET_WORKER_METRICS_ADDR, IMTICKET_DATA_DIR, …).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

check_only=false
[ "${1:-}" = "--check" ] && check_only=true
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  log "installing Debian's prometheus"
  sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

http_addr=${IMTICKET_HTTP_ADDR:-127.0.0.1:8080}
targets_dir=$(mkdir -p "${IMTICKET_DATA_DIR:-.data}" && cd "${IMTICKET_DATA_DIR:-.data}" && pwd)/targets
prom_port=${IMTICKET_PROMETHEUS_PORT:-59090}
prom="http://127.0.0.1:$prom_port"
(exec 3<>"/dev/tcp/127.0.0.1/$prom_port") 2>/dev/null && die "port $prom_port is taken (IMTICKET_PROMETHEUS_PORT)"

work=$(mktemp -d /tmp/imticket-observe.XXXXXX)
prom_pid=""
stop() {
  trap - EXIT INT TERM
  if [ -n "$prom_pid" ] && kill -0 "$prom_pid" 2>/dev/null; then
    kill "$prom_pid" 2>/dev/null || true
    wait "$prom_pid" 2>/dev/null || true
    log "prometheus stopped"
  fi
  stop_system
  rm -rf "$work"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# 1. The system, as scripts/run.sh runs it (its output goes to a log; its logs to .data/logs).
log "starting scripts/run.sh (output in $work/run.log)"
start_system "$work/run.log"
log "the API ($http_addr) and the workers are up; their metrics: $(targets_summary "$targets_dir")"

# 2. Prometheus with the repository's rules and the local targets.
cp scripts/observability/alerts.yml "$work/alerts.yml"
cat >"$work/prometheus.yml" <<EOF
# Written by scripts/observe.sh: scripts/observability/prometheus.yml with local targets.
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files:
  - alerts.yml
# Every API and worker process of the run names its own metrics address in $targets_dir
# (file discovery): one process or ten, whichever ports they took.
scrape_configs:
  - job_name: imticket-api
    file_sd_configs:
      - files: ['$targets_dir/imticket-api-*.json']
        refresh_interval: 5s
  - job_name: imticket-worker
    file_sd_configs:
      - files: ['$targets_dir/imticket-worker-*.json']
        refresh_interval: 5s
EOF
promtool check config "$work/prometheus.yml" >/dev/null
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$work/prometheus.log" 2>&1 &
prom_pid=$!
wait_until 60 "Prometheus" curl -fsS "$prom/-/ready"
log "prometheus at $prom (log $work/prometheus.log)"

# 3. The checks, through Prometheus's HTTP API.
query() { curl -fsS --get "$prom/api/v1/query" --data-urlencode "query=$1"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }
targets_up() {
  curl -fsS "$prom/api/v1/targets" | json '
t = d["data"]["activeTargets"]
sys.exit(0 if len(t) == 2 and all(x["health"] == "up" for x in t) else 1)'
}
wait_until 60 "both targets up" targets_up
echo "targets:"
curl -fsS "$prom/api/v1/targets" | json '
for t in d["data"]["activeTargets"]:
    print("  %-16s %-22s %-4s last scrape %s" % (t["labels"]["job"], t["labels"]["instance"], t["health"], t["lastScrape"][:19]))'
rules=$(curl -fsS "$prom/api/v1/rules" | json 'print(sum(len(g["rules"]) for g in d["data"]["groups"]))')
expected_rules=$(grep -c '^      - alert:' scripts/observability/alerts.yml)
echo "alert rules loaded: $rules of $expected_rules"

# Series every idle system has: each worker role, both pools, Redis memory, the streams' gauges
# (the first maintenance round), the outbox, HTTP traffic (these probes), the waiting room.
series=(
  'up' 'worker_role_up' 'db_pool_connections' 'db_pool_max_connections' 'redis_memory_used_bytes'
  'redis_memory_max_bytes' 'http_requests_total' 'http_request_duration_seconds_bucket'
  'stream_length' 'stream_group_lag' 'stream_group_pending' 'stream_group_oldest_pending_age_seconds'
  'stream_dead_letter_length' 'outbox_unpublished' 'outbox_oldest_unpublished_age_seconds'
  'queue_open_lines'
)
present() {
  local name
  for name in "${series[@]}"; do
    [ "$(query "count($name)" | json 'print(len(d["data"]["result"]))')" = 1 ] || return 1
  done
}
missing=0
if ! wait_until_quiet=$(wait_until 90 "the expected series" present 2>&1); then missing=1; fi
echo "series (count by job):"
for name in "${series[@]}"; do
  printf '  %-42s %s\n' "$name" "$(query "count by (job) ($name)" | json '
r = d["data"]["result"]
print(", ".join("%s %s" % (x["metric"].get("job", "?"), x["value"][1]) for x in r) or "MISSING")')"
done
roles=$(query 'worker_role_up == 1' | json 'print(" ".join(sorted(x["metric"]["role"] for x in d["data"]["result"])))')
echo "worker roles up: $roles"
firing=$(curl -fsS "$prom/api/v1/alerts" | json '
a = [x for x in d["data"]["alerts"] if x["state"] == "firing"]
print(", ".join(x["labels"]["alertname"] + ("/" + x["labels"]["role"] if "role" in x["labels"] else "") for x in a) or "none")')
echo "alerts firing: $firing"

failed=0
[ "$rules" = "$expected_rules" ] || { echo "FAILED: $rules alert rules loaded, $expected_rules in alerts.yml" >&2; failed=1; }
[ "$missing" = 0 ] || { echo "FAILED: a series is missing ($wait_until_quiet)" >&2; failed=1; }
[ "$firing" = none ] || { echo "FAILED: alerts fire on an idle system: $firing" >&2; failed=1; }
[ "$(wc -w <<<"$roles")" = 6 ] || { echo "FAILED: worker roles up: $roles" >&2; failed=1; }
if $check_only; then
  [ "$failed" = 0 ] && log "observe: every check passed; stopping" || log "observe: a check failed; stopping"
  exit "$failed"
fi
[ "$failed" = 0 ] || log "a check failed (above); the system keeps running for a look"
log "Prometheus: $prom (alerts: $prom/alerts) — Ctrl-C stops Prometheus and the system"
wait "$SYSTEM_PID"
