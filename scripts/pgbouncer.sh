#!/usr/bin/env bash
# A private PgBouncer (Debian's package) in front of a PostgreSQL, in transaction pooling mode,
# for the processes to reach through IMTICKET_DB_POOLER=transaction (docs/architecture.md,
# "PostgreSQL through PgBouncer"). Everything lives in DIR: its configuration, log and pid
# file; the system's own pgbouncer service is never touched.
#
#   scripts/pgbouncer.sh start DIR DATABASE_URL [PORT]   prints DATABASE_URL through PgBouncer
#   scripts/pgbouncer.sh stop DIR                        stops the one started in DIR
#   scripts/pgbouncer.sh show DIR pools|stats|…          SHOW … on its admin console
#
#   DATABASE_URL=$(scripts/pgbouncer.sh start .data/pgbouncer "$DATABASE_URL")
#   IMTICKET_DB_POOLER=transaction target/release/imticket-api
#
# It listens on 127.0.0.1 only (PORT, else a free port) and trusts its clients there
# (auth_type = trust); it logs into PostgreSQL as the URL's user, with the URL's password.
# Every database of that PostgreSQL is served (a wildcard entry), each with
# PGBOUNCER_POOL_SIZE server sessions (20) for up to PGBOUNCER_MAX_CLIENTS clients (10000);
# PGBOUNCER_POOL_MODE=session for a session-mode one. As root it runs as `postgres`
# (PgBouncer refuses root), and when `postgres` cannot write DIR its files go to a directory
# under /var/tmp named after DIR (as scripts/lib/common.sh does for PostgreSQL's data).
# Installs the package when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh

usage() { die "usage: scripts/pgbouncer.sh start DIR DATABASE_URL [PORT] | stop DIR | show DIR WHAT"; }

as_runner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  local dir url=$2 port=${3:-}
  dir=$(pg_usable_dir "$1")
  ensure_pgbouncer
  # postgres://user[:password]@host[:port]/database[?options]
  local re='^postgres(ql)?://([^:@/]+)(:([^@/]*))?@([^:/?]+)(:([0-9]+))?/([^?]+)(\?.*)?$'
  [[ $url =~ $re ]] || die "not a postgres://user[:password]@host[:port]/database URL: $(printf '%s' "$url" | sed 's/:[^:@]*@/:***@/')"
  local user=${BASH_REMATCH[2]} password=${BASH_REMATCH[4]} host=${BASH_REMATCH[5]}
  local pg_port=${BASH_REMATCH[7]:-5432} database=${BASH_REMATCH[8]} query=${BASH_REMATCH[9]}
  [ -n "$port" ] || port=$(free_port)
  if [ -f "$dir/pgbouncer.pid" ] && kill -0 "$(cat "$dir/pgbouncer.pid")" 2>/dev/null; then
    die "a PgBouncer already runs from $dir (pid $(cat "$dir/pgbouncer.pid")); scripts/pgbouncer.sh stop $dir"
  fi
  printf '"%s" "%s"\n' "$user" "$password" >"$dir/userlist.txt"
  chmod 600 "$dir/userlist.txt"
  cat >"$dir/pgbouncer.ini" <<EOF
; Written by scripts/pgbouncer.sh.
[databases]
* = host=$host port=$pg_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
admin_users = $user
pool_mode = ${PGBOUNCER_POOL_MODE:-transaction}
default_pool_size = ${PGBOUNCER_POOL_SIZE:-20}
max_client_conn = ${PGBOUNCER_MAX_CLIENTS:-10000}
; sqlx sends it unless IMTICKET_DB_POOLER=transaction; floats are read in binary anyway.
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
  [ "$(id -u)" -eq 0 ] && chown -R postgres: "$dir"
  rm -f "$dir/pgbouncer.pid"
  # max_client_conn needs descriptors: the soft limit goes up to the hard one.
  as_runner sh -c "ulimit -n \$(ulimit -Hn); exec '$(pgbouncer_bin)' -d '$dir/pgbouncer.ini'" \
    || die "PgBouncer did not start; see $dir/pgbouncer.log"
  wait_until 20 "PgBouncer on port $port" test -s "$dir/pgbouncer.pid"
  wait_until 20 "PgBouncer on port $port" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
  log "PgBouncer (${PGBOUNCER_POOL_MODE:-transaction} pooling, ${PGBOUNCER_POOL_SIZE:-20} server sessions per database) on 127.0.0.1:$port, pid $(cat "$dir/pgbouncer.pid"), in $dir"
  local auth=$user
  [ -n "$password" ] && auth="$user:$password"
  echo "postgres://$auth@127.0.0.1:$port/$database$query"
}

stop() {
  local dir pid
  dir=$(pg_usable_dir "$1")
  [ -f "$dir/pgbouncer.pid" ] || return 0
  pid=$(cat "$dir/pgbouncer.pid")
  # SIGINT: a safe shutdown, waiting for the clients' transactions to end.
  kill -INT "$pid" 2>/dev/null || return 0
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { kill -9 "$pid" 2>/dev/null || true; break; }
    sleep 0.1
  done
  rm -f "$dir/pgbouncer.pid"
}

show() {
  local dir what=$2 port user
  dir=$(pg_usable_dir "$1")
  port=$(sed -n 's/^listen_port = //p' "$dir/pgbouncer.ini")
  user=$(sed -n 's/^admin_users = //p' "$dir/pgbouncer.ini")
  psql -h 127.0.0.1 -p "$port" -U "$user" -c "SHOW $what" pgbouncer
}

case "${1:-}" in
  start) [ $# -ge 3 ] || usage; start "$2" "$3" "${4:-}" ;;
  stop) [ $# -eq 2 ] || usage; stop "$2" ;;
  show) [ $# -eq 3 ] || usage; show "$2" "$3" ;;
  *) usage ;;
esac
