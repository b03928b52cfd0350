#!/usr/bin/env bash
# A local Redis Cluster as an operator would run one: MASTERS masters with REPLICAS replicas
# each (3 + 3 by default), every node a redis-server with this repository's ./redis.conf (AOF
# on) plus cluster mode and a short node timeout, in a directory of its own, on free ports.
#
#   scripts/redis-cluster.sh start DIR        starts the nodes, creates the cluster, waits until
#                                             every node says cluster_state:ok and every replica
#                                             is in sync; prints the REDIS_URL (seeds, commas)
#   scripts/redis-cluster.sh stop DIR         stops every node it started (SIGTERM by PID: each
#                                             writes its AOF), waits for them
#   scripts/redis-cluster.sh status DIR       each node's address, PID, role, or not running
#   scripts/redis-cluster.sh kill DIR NODE    kill -9 one node (a crash: no AOF flush)
#   scripts/redis-cluster.sh restart DIR NODE start a stopped node again on its files (it
#                                             rejoins; a failed-over master as a replica)
#   scripts/redis-cluster.sh master-of DIR KEY  the address of the master serving KEY, as
#                                             the first running node (or IMTICKET_CLUSTER_ASK,
#                                             a HOST:PORT) sees it
# NODE is a node's HOST:PORT or its port. DIR/nodes lists "HOST:PORT PID NETNS" per node,
# DIR/url the REDIS_URL, DIR/<HOST:PORT>/ a node's files (nodes.conf, AOF, redis.log). Use it
# with IMTICKET_REDIS_CLUSTER=true REDIS_URL=$(cat DIR/url).
#
# Settings (environment):
#   IMTICKET_CLUSTER_MASTERS       (3)     masters (each owns an equal part of the 16384 slots)
#   IMTICKET_CLUSTER_REPLICAS      (1)     replicas per master
#   IMTICKET_CLUSTER_NODE_TIMEOUT  (2000)  cluster-node-timeout, ms: how long a master may be
#                                          unreachable before its replica takes over
#   IMTICKET_CLUSTER_BIND          (127.0.0.1) the address every node listens on
#   IMTICKET_CLUSTER_PORTS         ()      the nodes' ports, space separated (default: free ones)
#   IMTICKET_CLUSTER_HOSTS         ()      instead: one host per node, space separated, each
#                                          ADDRESS or NETNS/ADDRESS (the node runs in network
#                                          namespace NETNS and listens on ADDRESS:6379; see
#                                          scripts/partition.sh)
#
# `cluster-require-full-coverage no`: while one master is down and before its replica takes
# over, only that master's slots refuse commands; the other shards keep serving.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

usage() { die "usage: scripts/redis-cluster.sh start|stop|status DIR, kill|restart DIR NODE, master-of DIR KEY"; }
[ $# -ge 2 ] || usage
action=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
masters=${IMTICKET_CLUSTER_MASTERS:-3}
replicas=${IMTICKET_CLUSTER_REPLICAS:-1}
node_timeout=${IMTICKET_CLUSTER_NODE_TIMEOUT:-2000}
bind=${IMTICKET_CLUSTER_BIND:-127.0.0.1}

running() { [ -n "$1" ] && grep -qs redis-server "/proc/$1/cmdline"; }
# cli HOST:PORT ARGS…: redis-cli on one node (from this host: the namespaces share a bridge).
cli() { redis-cli -h "${1%:*}" -p "${1##*:}" "${@:2}"; }
# The nodes file's fields of NODE (HOST:PORT or a port): "HOST:PORT PID NETNS".
node() {
  awk -v n="$1" '$1 == n || substr($1, length($1) - length(n)) == ":" n {line = $0} END {print line}' "$dir/nodes"
}

stop() {
  [ -f "$dir/nodes" ] || return 0
  local addr pid netns
  while read -r addr pid netns; do
    running "$pid" && kill -TERM "$pid" 2>/dev/null || true
  done <"$dir/nodes"
  while read -r addr pid netns; do
    wait_until 30 "the Redis node $addr (pid $pid) to stop" sh -c "! grep -qs redis-server /proc/$pid/cmdline"
  done <"$dir/nodes"
  rm -f "$dir/nodes" "$dir/url"
}

status() {
  [ -f "$dir/nodes" ] || die "no cluster started in $dir"
  local addr pid netns
  while read -r addr pid netns; do
    if running "$pid"; then
      echo "$addr pid $pid $(cli "$addr" ROLE 2>/dev/null | head -1 || echo '?')"
    else
      echo "$addr pid $pid not running"
    fi
  done <"$dir/nodes"
}

# start_node HOST:PORT NETNS: one node in the background (its pid in the nodes file).
start_node() {
  local addr=$1 netns=$2 run=()
  [ "$netns" = - ] || run=(ip netns exec "$netns")
  mkdir -p "$dir/$addr"
  # A session of its own: a Ctrl-C at the terminal does not reach the nodes; their users stop
  # first, then `stop` stops them. Outside loopback a node needs protected mode off (no
  # password here: these are the project's private test hosts).
  setsid "${run[@]}" redis-server ./redis.conf --port "${addr##*:}" --bind "${addr%:*}" --dir "$dir/$addr" \
    --logfile redis.log --cluster-enabled yes --cluster-config-file nodes.conf \
    --cluster-node-timeout "$node_timeout" --cluster-require-full-coverage no \
    --protected-mode "$([ "$netns" = - ] && echo yes || echo no)" --daemonize no </dev/null >/dev/null 2>&1 &
  echo "$addr $! $netns" >>"$dir/nodes"
}

# wait_node HOST:PORT: until it answers; fails at once if it exited (a port it could not bind).
wait_node() {
  local pid
  pid=$(node "$1" | awk '{print $2}')
  wait_until 30 "the Redis node $1" sh -c "redis-cli -h ${1%:*} -p ${1##*:} ping || ! grep -qs redis-server /proc/$pid/cmdline"
  running "$pid" || die "the Redis node $1 exited at start; see $dir/$1/redis.log: $(tail -2 "$dir/$1/redis.log" 2>/dev/null)"
}

kill_node() {
  local addr pid
  read -r addr pid _ <<<"$(node "$1")"
  [ -n "${pid:-}" ] || die "no node $1 in $dir"
  kill -KILL "$pid" 2>/dev/null || true
  wait_until 10 "the node $addr to die" sh -c "! grep -qs redis-server /proc/$pid/cmdline"
  echo "$addr"
}

restart_node() {
  local addr pid netns
  read -r addr pid netns <<<"$(node "$1")"
  [ -n "${pid:-}" ] || die "no node $1 in $dir"
  running "$pid" && die "the node $addr still runs (pid $pid)"
  grep -v "^$addr " "$dir/nodes" >"$dir/nodes.new" || true
  mv "$dir/nodes.new" "$dir/nodes"
  start_node "$addr" "$netns"
  wait_node "$addr"
}

master_of() {
  local any=${IMTICKET_CLUSTER_ASK:-} addr pid netns slot
  # Asked of the first node that runs (the first may be the one just killed).
  [ -n "$any" ] || while read -r addr pid netns; do running "$pid" && { any=$addr; break; }; done <"$dir/nodes"
  [ -n "$any" ] || die "no node of $dir runs"
  slot=$(cli "$any" CLUSTER KEYSLOT "$1")
  cli "$any" CLUSTER NODES | awk -v slot="$slot" '
    $3 ~ /master/ && $3 !~ /fail/ {
      for (i = 9; i <= NF; i++) { n = split($i, r, "-"); lo = r[1]; hi = (n == 2 ? r[2] : r[1])
        if (slot >= lo + 0 && slot <= hi + 0) { split($2, a, "@"); print a[1] } } }'
}

cluster_ok() {
  local addr
  for addr in "$@"; do cli "$addr" CLUSTER INFO | grep -q '^cluster_state:ok' || return 1; done
}

replicas_in_sync() {
  local addr
  for addr in "$@"; do
    if cli "$addr" ROLE | head -1 | grep -q slave; then
      cli "$addr" INFO replication | grep -q '^master_link_status:up' || return 1
    fi
  done
}

start() {
  command -v redis-server >/dev/null || die "redis-server is missing: apt-get install -y redis-server"
  if [ -f "$dir/nodes" ]; then
    local addr pid netns
    while read -r addr pid netns; do
      running "$pid" && die "a cluster started in $dir still runs (node $addr, pid $pid): scripts/redis-cluster.sh stop $dir"
    done <"$dir/nodes"
  fi
  local count=$((masters * (1 + replicas))) nodes=() netnses=() port host
  if [ -n "${IMTICKET_CLUSTER_HOSTS:-}" ]; then
    for host in $IMTICKET_CLUSTER_HOSTS; do
      if [[ $host == */* ]]; then netnses+=("${host%%/*}"); host=${host#*/}; else netnses+=(-); fi
      nodes+=("$host:6379")
    done
  elif [ -n "${IMTICKET_CLUSTER_PORTS:-}" ]; then
    for port in $IMTICKET_CLUSTER_PORTS; do nodes+=("$bind:$port"); netnses+=(-); done
  else
    # A node also listens on port + 10000 (the cluster bus): both must be free, and both below
    # the kernel's ephemeral range, where a port nobody listens on may still be bound by an
    # outgoing connection (the node would fail to bind it).
    local ephemeral span
    ephemeral=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    span=$((ephemeral - 10000 - 20000))
    [ "$span" -ge "$count" ] || die "no room below the ephemeral ports ($ephemeral) for $count nodes: set IMTICKET_CLUSTER_PORTS"
    while [ "${#nodes[@]}" -lt "$count" ]; do
      port=$((20000 + RANDOM % span))
      (exec 3<>"/dev/tcp/$bind/$port") 2>/dev/null && continue
      (exec 3<>"/dev/tcp/$bind/$((port + 10000))") 2>/dev/null && continue
      [[ " ${nodes[*]} " == *" $bind:$port "* ]] || { nodes+=("$bind:$port"); netnses+=(-); }
    done
  fi
  [ "${#nodes[@]}" -eq "$count" ] ||
    die "${#nodes[@]} nodes named; $masters masters with $replicas replicas each need $count"
  : >"$dir/nodes"
  local i
  for i in "${!nodes[@]}"; do
    rm -rf "${dir:?}/${nodes[i]}"
    start_node "${nodes[i]}" "${netnses[i]}"
  done
  for i in "${!nodes[@]}"; do wait_node "${nodes[i]}"; done
  cli "${nodes[0]}" --cluster create "${nodes[@]}" --cluster-replicas "$replicas" --cluster-yes >"$dir/create.log" 2>&1 ||
    die "redis-cli --cluster create failed; see $dir/create.log"
  wait_until 60 "every node to see the cluster up" cluster_ok "${nodes[@]}"
  wait_until 60 "every replica to be in sync" replicas_in_sync "${nodes[@]}"
  local url=""
  for i in "${!nodes[@]}"; do url+="${url:+,}redis://${nodes[i]}"; done
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
