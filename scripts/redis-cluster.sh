#!/usr/bin/env bash
# A local Redis Cluster as an operator would run one: MASTERS masters with REPLICAS replicas
# each (3 + 3 by default), every node a redis-server with this repository's ./redis.conf (AOF
# on) plus cluster mode and a short node timeout, in a directory of its own, on free ports.
#
#   scripts/redis-cluster.sh start DIR   starts the nodes, creates the cluster, waits until
#                                        every node says cluster_state:ok and every replica is
#                                        in sync; prints the REDIS_URL (seed nodes, commas)
#   scripts/redis-cluster.sh stop DIR    stops every node it started (SIGTERM by PID: each
#                                        writes its AOF), waits for them
#   scripts/redis-cluster.sh status DIR  each node's port, PID, role and whether it runs
#   scripts/redis-cluster.sh kill DIR PORT     kill -9 one node (a crash: no AOF flush)
#   scripts/redis-cluster.sh restart DIR PORT  start a stopped node again on its files (it
#                                              rejoins; a failed-over master as a replica)
#   scripts/redis-cluster.sh master-of DIR KEY the port of the master serving KEY
#
# DIR/nodes lists "port pid" per node, DIR/url the REDIS_URL, DIR/<port>/ a node's files
# (nodes.conf, AOF, redis.log). Use with IMTICKET_REDIS_CLUSTER=true REDIS_URL=$(cat DIR/url).
#
# Settings (environment):
#   IMTICKET_CLUSTER_MASTERS       (3)     masters (each owns a third of the 16384 slots)
#   IMTICKET_CLUSTER_REPLICAS      (1)     replicas per master
#   IMTICKET_CLUSTER_NODE_TIMEOUT  (2000)  cluster-node-timeout, ms: how long a master may be
#                                          unreachable before its replica takes over
#   IMTICKET_CLUSTER_PORTS         ()      the nodes' ports, space separated (default: free ones)
#   IMTICKET_CLUSTER_BIND          (127.0.0.1) the address every node listens on
#
# `cluster-require-full-coverage no`: while one master is down and before its replica takes
# over, only that master's slots refuse commands; the other shards keep serving.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

usage() { die "usage: scripts/redis-cluster.sh start|stop|status DIR, kill|restart DIR PORT, master-of DIR KEY"; }
[ $# -ge 2 ] || usage
action=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
masters=${IMTICKET_CLUSTER_MASTERS:-3}
replicas=${IMTICKET_CLUSTER_REPLICAS:-1}
node_timeout=${IMTICKET_CLUSTER_NODE_TIMEOUT:-2000}
bind=${IMTICKET_CLUSTER_BIND:-127.0.0.1}

running() { [ -n "$1" ] && grep -qs redis-server "/proc/$1/cmdline"; }

stop() {
  [ -f "$dir/nodes" ] || return 0
  local port pid
  while read -r port pid; do
    running "$pid" && kill -TERM "$pid" 2>/dev/null || true
  done <"$dir/nodes"
  while read -r port pid; do
    wait_until 30 "the Redis node on port $port (pid $pid) to stop" sh -c "! grep -qs redis-server /proc/$pid/cmdline"
  done <"$dir/nodes"
  rm -f "$dir/nodes" "$dir/url"
}

status() {
  [ -f "$dir/nodes" ] || die "no cluster started in $dir"
  local port pid role
  while read -r port pid; do
    if running "$pid"; then
      role=$(redis-cli -h "$bind" -p "$port" ROLE 2>/dev/null | head -1 || echo '?')
      echo "$port pid $pid $role"
    else
      echo "$port pid $pid not running"
    fi
  done <"$dir/nodes"
}

cluster_ok() {
  local port
  for port in "$@"; do
    redis-cli -h "$bind" -p "$port" CLUSTER INFO | grep -q '^cluster_state:ok' || return 1
  done
}

replicas_in_sync() {
  local port
  for port in "$@"; do
    if redis-cli -h "$bind" -p "$port" ROLE | head -1 | grep -q slave; then
      redis-cli -h "$bind" -p "$port" INFO replication | grep -q '^master_link_status:up' || return 1
    fi
  done
}

# start_node PORT: one node in the background (its pid in the nodes file).
start_node() {
  local port=$1
  # A session of its own: a Ctrl-C at the terminal does not reach the nodes; their users
  # stop first, then `stop` stops them.
  setsid redis-server ./redis.conf --port "$port" --bind "$bind" --dir "$dir/$port" --logfile redis.log \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout "$node_timeout" \
    --cluster-require-full-coverage no --daemonize no </dev/null >/dev/null 2>&1 &
  echo "$port $!" >>"$dir/nodes"
}

pid_of() { awk -v port="$1" '$1 == port {pid = $2} END {print pid}' "$dir/nodes"; }

kill_node() {
  local pid
  pid=$(pid_of "$1")
  [ -n "$pid" ] || die "no node on port $1 in $dir"
  kill -KILL "$pid" 2>/dev/null || true
  wait_until 10 "the node on port $1 to die" sh -c "! grep -qs redis-server /proc/$pid/cmdline"
}

restart_node() {
  local pid
  pid=$(pid_of "$1")
  [ -n "$pid" ] || die "no node on port $1 in $dir"
  running "$pid" && die "the node on port $1 still runs (pid $pid)"
  grep -v "^$1 " "$dir/nodes" >"$dir/nodes.new" || true
  mv "$dir/nodes.new" "$dir/nodes"
  start_node "$1"
  wait_until 30 "the Redis node on port $1" redis-cli -h "$bind" -p "$1" ping
}

master_of() {
  local any slot
  any=$(awk 'NR == 1 {print $1}' "$dir/nodes")
  slot=$(redis-cli -h "$bind" -p "$any" CLUSTER KEYSLOT "$1")
  redis-cli -h "$bind" -p "$any" CLUSTER NODES | awk -v slot="$slot" '
    $3 ~ /master/ && $3 !~ /fail/ {
      for (i = 9; i <= NF; i++) { n = split($i, r, "-"); lo = r[1]; hi = (n == 2 ? r[2] : r[1])
        if (slot >= lo + 0 && slot <= hi + 0) { split($2, a, "@"); sub(/.*:/, "", a[1]); print a[1] } } }'
}

start() {
  command -v redis-server >/dev/null || die "redis-server is missing: apt-get install -y redis-server"
  if [ -f "$dir/nodes" ]; then
    local port pid
    while read -r port pid; do
      running "$pid" && die "a cluster started in $dir still runs (node $port, pid $pid): scripts/redis-cluster.sh stop $dir"
    done <"$dir/nodes"
  fi
  local count=$((masters * (1 + replicas))) ports=() port pid
  if [ -n "${IMTICKET_CLUSTER_PORTS:-}" ]; then
    read -r -a ports <<<"$IMTICKET_CLUSTER_PORTS"
    [ "${#ports[@]}" -eq "$count" ] || die "IMTICKET_CLUSTER_PORTS names ${#ports[@]} ports; $masters masters with $replicas replicas each need $count"
  else
    # A node also listens on port + 10000 (the cluster bus): both must be free, and both below
    # the kernel's ephemeral range, where a port nobody listens on may still be bound by an
    # outgoing connection (the node would fail to bind it).
    local ephemeral span
    ephemeral=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    span=$((ephemeral - 10000 - 20000))
    [ "$span" -ge "$count" ] || die "no room below the ephemeral ports ($ephemeral) for $count nodes: set IMTICKET_CLUSTER_PORTS"
    while [ "${#ports[@]}" -lt "$count" ]; do
      port=$((20000 + RANDOM % span))
      (exec 3<>"/dev/tcp/$bind/$port") 2>/dev/null && continue
      (exec 3<>"/dev/tcp/$bind/$((port + 10000))") 2>/dev/null && continue
      [[ " ${ports[*]} " == *" $port "* ]] || ports+=("$port")
    done
  fi
  : >"$dir/nodes"
  for port in "${ports[@]}"; do
    rm -rf "${dir:?}/$port"
    mkdir -p "$dir/$port"
    start_node "$port"
  done
  for port in "${ports[@]}"; do
    pid=$(pid_of "$port")
    wait_until 30 "the Redis node on port $port" sh -c "redis-cli -h $bind -p $port ping || ! grep -qs redis-server /proc/$pid/cmdline"
    running "$pid" || die "the Redis node on port $port exited at start; see $dir/$port/redis.log: $(tail -2 "$dir/$port/redis.log" 2>/dev/null)"
  done
  local addresses=()
  for port in "${ports[@]}"; do addresses+=("$bind:$port"); done
  redis-cli --cluster create "${addresses[@]}" --cluster-replicas "$replicas" --cluster-yes >"$dir/create.log" 2>&1 ||
    die "redis-cli --cluster create failed; see $dir/create.log"
  wait_until 60 "every node to see the cluster up" cluster_ok "${ports[@]}"
  wait_until 60 "every replica to be in sync" replicas_in_sync "${ports[@]}"
  local url=""
  for port in "${ports[@]}"; do url+="${url:+,}redis://$bind:$port"; done
  echo "$url" >"$dir/url"
  echo "$url"
}

case $action in
  start) start ;;
  stop) stop ;;
  status) status ;;
  kill) [ $# -eq 3 ] || usage; kill_node "$3" ;;
  restart) [ $# -eq 3 ] || usage; restart_node "$3" ;;
  master-of) [ $# -eq 3 ] || usage; master_of "$3" ;;
  *) usage ;;
esac
