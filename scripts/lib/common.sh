# Shared helpers for ImTicket's scripts: Debian packages, and a project-local PostgreSQL and
# Redis that never touch the system's own servers (separate data directories and ports).
# Sourced, not run.

log() { printf '\033[1m[imticket]\033[0m %s\n' "$*" >&2; }
die() { printf '[imticket] error: %s\n' "$*" >&2; exit 1; }

# Directory holding initdb/pg_ctl/postgres: PATH first, else Debian's versioned directory.
pg_bindir() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
    return 0
  fi
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  return 1
}

# Installs what is missing from Debian's packages: the PostgreSQL server, redis-server, and
# the psql client, plus each COMMAND named (its package of the same name: `haproxy` for the
# scaled-out shape and its tests). Needs root (or sudo) only when something is missing.
ensure_system_packages() {
  local missing=() extra
  pg_bindir >/dev/null || missing+=(postgresql)
  command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  for extra in "$@"; do
    command -v "$extra" >/dev/null 2>&1 || missing+=("$extra")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's packages start their own cluster and servers (haproxy: with a configuration that
  # listens nowhere); ImTicket runs private ones instead, so theirs are left as they are.
}

# PgBouncer (Debian's package, 1.18) for the tests and scripts/pgbouncer.sh. Debian's package
# enables its own service on port 6432; ImTicket runs private ones and leaves it as it is.
pgbouncer_bin() {
  command -v pgbouncer 2>/dev/null || { [ -x /usr/sbin/pgbouncer ] && echo /usr/sbin/pgbouncer; }
}
ensure_pgbouncer() {
  pgbouncer_bin >/dev/null && return 0
  log "installing Debian package: pgbouncer"
  local sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null
}

ensure_rust() {
  command -v cargo >/dev/null 2>&1 && return 0
  [ -x "$HOME/.cargo/bin/cargo" ] && { export PATH="$HOME/.cargo/bin:$PATH"; return 0; }
  die "cargo not found: install the Rust toolchain (https://rustup.rs), then run this again"
}

# Runs a PostgreSQL binary as the owner of the data directory: initdb refuses root, so as
# root everything runs as the `postgres` user.
pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A directory the PostgreSQL owner can write: $1 when reachable, else one under /var/tmp.
pg_usable_dir() {
  local wanted=$1
  mkdir -p "$wanted"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$wanted"
    if ! runuser -u postgres -- test -w "$wanted"; then
      wanted=/var/tmp/imticket-pg-$(printf '%s' "$1" | md5sum | cut -c1-12)
      mkdir -p "$wanted" && chown postgres: "$wanted"
    fi
  fi
  echo "$wanted"
}

# pg_start DATADIR PORT: initialises the cluster on first use and starts it (socket in DATADIR).
# PG_EXTRA_OPTS adds server options (e.g. `-c shared_preload_libraries=pg_stat_statements`).
pg_start() {
  local data=$1 port=$2 bin
  bin=$(pg_bindir) || die "PostgreSQL server binaries not found (apt-get install -y postgresql)"
  if [ ! -f "$data/PG_VERSION" ]; then
    log "initialising PostgreSQL cluster in $data"
    pg_as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-instructions >/dev/null
  fi
  if pg_as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "PostgreSQL already running in $data"
    return 0
  fi
  pg_as_owner "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c max_connections=300 ${PG_EXTRA_OPTS:-}" start >/dev/null \
    || die "PostgreSQL did not start; see $data/server.log"
}

pg_stop() {
  local data=$1 bin
  bin=$(pg_bindir) || return 0
  pg_as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}

# A TCP port nothing listens on (bash only: a fresh machine may have no python), in 10000-19999:
# below the kernel's ephemeral ports (a port there may be bound by an outgoing connection
# while nothing listens on it) and below scripts/redis-cluster.sh's nodes.
free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$((10000 + RANDOM % 10000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return 0; }
  done
  die "no free TCP port found"
}

# lock_run DATA_DIR WHO: one run (scripts/run.sh or scripts/scale-out.sh) per data directory.
# The lock lives as long as the calling script (fd 9) and its pid is in DATA_DIR/run.pid.
# Nothing the script starts may inherit fd 9 (start each with `9>&-`), so a run killed with -9
# leaves the lock free. A second run refuses to start and touches nothing.
lock_run() {
  local dir=$1 who=$2
  exec 9>>"$dir/run.lock"
  if ! flock -n 9; then
    die "another $(cat "$dir/run.who" 2>/dev/null || echo scripts/run.sh) (pid $(cat "$dir/run.pid" 2>/dev/null || echo '?')) is already running with $dir; nothing was started or stopped"
  fi
  echo $$ >"$dir/run.pid"
  echo "$who" >"$dir/run.who"
}

# stop_leftovers DATA_DIR PG_DATA: what a run killed with -9 left behind on DATA_DIR (its
# PostgreSQL in PG_DATA, its Redis, the processes named in DATA_DIR/run.pids), stopped by pid.
# Only with the run's lock held (lock_run): then nobody else uses them.
stop_leftovers() {
  local dir=$1 pg_data=$2 old
  if pg_as_owner "$(pg_bindir)/pg_ctl" -D "$pg_data" status >/dev/null 2>&1; then
    log "stopping the PostgreSQL a previous run left running in $pg_data"
    pg_stop "$pg_data"
  fi
  for old in $(cat "$dir/run.pids" 2>/dev/null) $(cat "$dir/redis.pid" 2>/dev/null); do
    # Only ours: a pid reused since by another program is left alone.
    grep -qsE 'imticket-|haproxy|redis-server' "/proc/$old/cmdline" || continue
    log "stopping $(tr '\0' ' ' <"/proc/$old/cmdline" | cut -c1-60)(pid $old), left running by a previous run"
    kill -TERM "$old" 2>/dev/null || true
    wait_until 30 "the old process (pid $old) to stop" sh -c "! kill -0 $old"
  done
  rm -f "$dir/redis.pid" "$dir/run.pids"
  if [ -f "$dir/cluster/nodes" ]; then
    log "stopping the Redis Cluster a previous run left running in $dir/cluster"
    bash scripts/redis-cluster.sh stop "$dir/cluster"
  fi
}

# addr_in_use HOST:PORT: whether something accepts connections there.
addr_in_use() {
  local host=${1%:*} port=${1##*:}
  host=${host#[}; host=${host%]}
  [ "$host" = 0.0.0.0 ] && host=127.0.0.1
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# write_run_env FILE WHO NAME…: what another process of a run needs (imticket-admin reads it by
# itself; `set -a; source FILE; set +a` before starting one more API or worker by hand), as
# NAME=value lines of the variables set, readable by the owner only (it may hold JWT_SECRET).
write_run_env() {
  local file=$1 who=$2 name
  shift 2
  (
    umask 077
    {
      echo "# Written by $who (pid $$) while it runs; read by imticket-admin."
      for name in "$@"; do
        if [ -n "${!name:-}" ]; then echo "$name=${!name}"; fi
      done
    } >"$file"
  )
}

# died PID STATUS WHEN: names the process that ended, how, and shows the end of its output;
# the caller's associative arrays `names` and `outputs` (by PID) say what it was and where its
# output went.
died() {
  local pid=$1 status=$2 when=$3 how
  if [ "$status" -gt 128 ] && how=$(kill -l "$((status - 128))" 2>/dev/null); then
    how="was killed by signal $how (exit status $status)"
  else
    how="exited with status $status"
  fi
  printf '[imticket] error: %s (pid %s) %s %s; the end of its output (all of it in %s):\n' \
    "${names[$pid]:-process}" "$pid" "$how" "$when" "${outputs[$pid]:-the terminal}" >&2
  tail -n 8 "${outputs[$pid]:-/dev/null}" 2>/dev/null | sed 's/^/    /' >&2 || true
}

# wait_until SECONDS DESCRIPTION COMMAND…: polls COMMAND until it succeeds or time runs out.
wait_until() {
  local seconds=$1 what=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timed out after ${seconds}s waiting for $what"
    sleep 0.2
  done
}

# redis_start DIR PORT: a redis-server with ./redis.conf in the background (pid in REDIS_PID),
# waited for until it answers.
# In a session of its own, so a Ctrl-C at the terminal does not reach it: the processes that
# use it stop first, then the caller stops it.
redis_start() {
  mkdir -p "$1"
  setsid redis-server ./redis.conf --port "$2" --dir "$1" --logfile redis.log &
  REDIS_PID=$!
  wait_until 30 "Redis on port $2" redis-cli -p "$2" ping
}

# pg_createdb PORT NAME: creates the database unless it exists.
pg_createdb() {
  local port=$1 name=$2
  if ! psql -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'" postgres | grep -q 1; then
    psql -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE \"$name\"" postgres >/dev/null
  fi
}

# bench_binaries: where the benchmarks take ImTicket's binaries from, the same way in every
# bench script; sets `bin` to that directory.
#   BENCH_BIN=DIR       the binaries already in DIR (nothing is built; to compare two builds
#                       in one session, e.g. BENCH_BIN=/elsewhere/target/release)
#   otherwise           a release build of the product's binaries and imticket-bench, now
#   BENCH_PROFILE=dev   a dev build instead (target/debug)
bench_binaries() {
  if [ -n "${BENCH_BIN:-}" ]; then
    bin=$BENCH_BIN
  else
    local profile=${BENCH_PROFILE:-release}
    log "building the binaries and imticket-bench ($profile)"
    cargo build --quiet --profile "$profile" --package imticket --package imticket-bench \
      --bin imticket-api --bin imticket-worker --bin imticket-admin --bin imticket-bench
    bin=target/$([ "$profile" = dev ] && echo debug || echo "$profile")
  fi
  local b
  for b in imticket-api imticket-worker imticket-admin imticket-bench; do
    [ -x "$bin/$b" ] || die "$bin/$b not found (BENCH_BIN=$bin)"
  done
}

# bench_services_start: a private PostgreSQL (default durability) and Redis (./redis.conf) for
# benchmarks, stopped on exit. Exports DATABASE_URL, REDIS_URL, BENCH_PG_PORT, BENCH_REDIS_PORT.
bench_pids=()
bench_services_stop() {
  # Newest first: the API and workers stop before the Redis they use.
  local i
  for ((i = ${#bench_pids[@]} - 1; i >= 0; i--)); do
    kill "${bench_pids[i]}" 2>/dev/null || true
    wait "${bench_pids[i]}" 2>/dev/null || true
  done
  [ -n "${bench_pg:-}" ] && pg_stop "$bench_pg"
  rm -rf "${bench_work:-/nonexistent}" "${bench_pg:-/nonexistent}"
}
bench_services_start() {
  bench_work=$(mktemp -d /tmp/imticket-bench.XXXXXX)
  bench_pg=$(pg_usable_dir "$bench_work/pg")
  BENCH_PG_PORT=$(free_port)
  BENCH_REDIS_PORT=$(free_port)
  trap bench_services_stop EXIT
  pg_start "$bench_pg" "$BENCH_PG_PORT"
  pg_createdb "$BENCH_PG_PORT" bench
  redis_start "$bench_work/redis" "$BENCH_REDIS_PORT"
  bench_pids+=("$REDIS_PID")
  export DATABASE_URL="postgres://postgres@127.0.0.1:$BENCH_PG_PORT/bench" REDIS_URL="redis://127.0.0.1:$BENCH_REDIS_PORT"
  export BENCH_PG_PORT BENCH_REDIS_PORT
}

# targets_summary DIR: the metrics addresses the processes wrote into DIR (Prometheus file
# discovery), as "imticket-api 127.0.0.1:9490, imticket-worker 127.0.0.1:9470".
targets_summary() {
  local dir=$1 file list=()
  for file in "$dir"/*.json; do
    [ -e "$file" ] || continue
    list+=("$(python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))[0]; print(t["labels"]["service"], t["targets"][0])' "$file")")
  done
  if [ ${#list[@]} -eq 0 ]; then
    echo "none yet (in $dir)"
    return
  fi
  local joined
  joined=$(printf '%s, ' "${list[@]}")
  echo "${joined%, } (in $dir)"
}

# worker_metrics_addr DIR: the metrics address of a worker of the run whose targets are in DIR.
worker_metrics_addr() {
  local file
  for file in "$1"/imticket-worker-*.json; do
    [ -e "$file" ] || continue
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["targets"][0])' "$file"
    return 0
  done
  return 1
}

# start_system LOG: scripts/run.sh in the background (pid in SYSTEM_PID, output in LOG), waited
# for until the API is ready and the workers live; dies showing run.sh's output if it stops
# first. The first run builds the release binaries, hence the long deadline.
start_system() {
  local log=$1
  local http_addr=${IMTICKET_HTTP_ADDR:-127.0.0.1:8080} metrics_addr
  local targets=${IMTICKET_DATA_DIR:-.data}/targets
  scripts/run.sh >"$log" 2>&1 &
  SYSTEM_PID=$!
  local deadline=$((SECONDS + 900))
  until curl -fsS "http://$http_addr/health/ready" >/dev/null 2>&1 &&
    metrics_addr=$(worker_metrics_addr "$targets") &&
    curl -fsS "http://$metrics_addr/health/live" >/dev/null 2>&1; do
    kill -0 "$SYSTEM_PID" 2>/dev/null || { tail -20 "$log" >&2; die "scripts/run.sh stopped before the system was ready"; }
    [ $SECONDS -lt $deadline ] || die "the system was not ready after 900 s (see $log)"
    sleep 1
  done
}

# stop_system: stops what start_system started (SIGTERM: run.sh stops everything cleanly).
stop_system() {
  if [ -n "${SYSTEM_PID:-}" ] && kill -0 "$SYSTEM_PID" 2>/dev/null; then
    kill -TERM "$SYSTEM_PID" 2>/dev/null || true
    wait "$SYSTEM_PID" 2>/dev/null || true
  fi
}
