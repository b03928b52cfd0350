#!/usr/bin/env bash
# Writes the servers of scripts/haproxy/haproxy.cfg for imticket-api processes on this host,
# one per HOST:PORT, to stdout (the checked backend `api` and its unchecked twin `api-all`):
#   scripts/haproxy/servers.sh 127.0.0.1:8081 127.0.0.1:8082 >servers.cfg
#   haproxy -f scripts/haproxy/haproxy.cfg -f servers.cfg
# The servers are named api1, api2, … in that order (as HAProxy's stats page shows them).
# LB_SOURCE=ADDR: connect to them from ADDR, the address the APIs must then trust
# (IMTICKET_TRUSTED_PROXIES). docker-compose.yml uses scripts/haproxy/docker.cfg instead.
set -euo pipefail
if [ $# -eq 0 ]; then
  echo "usage: $0 HOST:PORT..." >&2
  exit 2
fi
for addr in "$@"; do
  if ! [[ $addr =~ ^[A-Za-z0-9.:_-]+:[0-9]+$ ]]; then
    echo "$0: not a HOST:PORT: $addr" >&2
    exit 2
  fi
done
echo "# Written by scripts/haproxy/servers.sh: one server per local imticket-api process."
# servers CHECK: the server lines, health-checked or not.
servers() {
  local n=0 addr
  for addr in "$@"; do
    n=$((n + 1))
    echo "    server api$n $addr$check${LB_SOURCE:+ source $LB_SOURCE}"
  done
}
echo "backend api"
check=" check" servers "$@"
echo "# The same servers unchecked: used only while none of \`api\` passes its check (haproxy.cfg)."
echo "backend api-all"
check="" servers "$@"
