#!/usr/bin/env bash
# Writes the servers of scripts/haproxy/haproxy.cfg for imticket-api processes on this host,
# one per HOST:PORT, to stdout:
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
echo "# Written by scripts/haproxy/servers.sh: one server per local imticket-api process."
echo "backend api"
n=0
for addr in "$@"; do
  if ! [[ $addr =~ ^[A-Za-z0-9.:_-]+:[0-9]+$ ]]; then
    echo "$0: not a HOST:PORT: $addr" >&2
    exit 2
  fi
  n=$((n + 1))
  echo "    server api$n $addr check${LB_SOURCE:+ source $LB_SOURCE}"
done
