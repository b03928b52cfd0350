# Profiling of a benchmark's busy window (sourced by scripts/bench-booking.sh):
#   cpu_split_begin / cpu_split_end NAME
#       the CPU seconds each part used between the two calls, from /proc (utime + stime of
#       every process alive at the end; a process that started in between counts from zero):
#       the API, the workers, PostgreSQL (the postmaster and its children), Redis, and the load
#       generator (imticket-bench, a child of the calling shell, by `times`); one line.
#   flame_in_background NAME DELAY SECONDS
#       with PROFILE=DIR: after DELAY s, `perf record` (cpu-clock, 499 Hz, DWARF call graphs) of
#       the API for SECONDS s, then of PostgreSQL's backends for SECONDS s; flame_render, after
#       the timed tests, folds them with inferno into DIR/NAME-api.svg, DIR/NAME-postgres.svg.
#       Needs linux-perf and inferno (`cargo install inferno`). perf slows what it records: a
#       PROFILE run's rates are not for the ratios.
# Needs: $api_pid, $bench_pg (its postmaster.pid), $REDIS_PID.

_ticks_of() { # PID...: utime+stime ticks of each, "pid ticks" per line
  local p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    awk -v p="$p" '{ sub(/^.*\) /, ""); print p, $12 + $13 }' "/proc/$p/stat" 2>/dev/null
  done
}

_split_pids() { # prints "group pid" lines for every process of the run
  local pm p
  pm=$(head -1 "$bench_pg/postmaster.pid" 2>/dev/null)
  echo "api $api_pid"
  echo "redis $REDIS_PID"
  [ -n "$pm" ] && echo "postgres $pm"
  [ -n "$pm" ] && for p in $(pgrep -P "$pm"); do echo "postgres $p"; done
  for p in $(pgrep -f 'imticket-worker'); do echo "workers $p"; done
}

# CPU seconds (user + system) of this shell's waited-for children: the load generator runs as
# one, and ends before cpu_split_end looks at /proc.
# Sets _children to them. `times` must run in this shell itself: in a pipe or $(…) it would
# ask a fresh subshell.
_children_cpu() {
  times >"$bench_work/times"
  _children=$(tail -1 "$bench_work/times" | awk '{ split($1, u, /[ms]/); split($2, s, /[ms]/); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }')
}

cpu_split_begin() {
  _split_t0=$(date +%s.%N)
  _children_cpu
  _split_c0=$_children
  _split_pids >"$bench_work/split.pids"
  # shellcheck disable=SC2046
  _ticks_of $(awk '{print $2}' "$bench_work/split.pids") >"$bench_work/split.t0"
}

cpu_split_end() {
  local name=$1 t1
  t1=$(date +%s.%N)
  local loadgen
  _children_cpu
  loadgen=$(awk -v a="$_split_c0" -v b="$_children" 'BEGIN { print b - a }')
  _split_pids >>"$bench_work/split.pids"
  sort -u "$bench_work/split.pids" -o "$bench_work/split.pids"
  # shellcheck disable=SC2046
  _ticks_of $(awk '{print $2}' "$bench_work/split.pids") >"$bench_work/split.t1"
  python3 - "$name" "$_split_t0" "$t1" "$(getconf CLK_TCK)" "$bench_work" "$loadgen" <<'EOF'
import sys
name, t0, t1, hz, d = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
loadgen = float(sys.argv[6])
group = {}
for line in open(f"{d}/split.pids"):
    g, p = line.split()
    group[p] = g
def ticks(f):
    return {p: int(t) for p, t in (l.split() for l in open(f))}
a, b = ticks(f"{d}/split.t0"), ticks(f"{d}/split.t1")
used = {}
for p, t in b.items():
    used[group[p]] = used.get(group[p], 0) + (t - a.get(p, 0)) / hz
used["loadgen"] = loadgen
wall = t1 - t0
parts = ", ".join(f"{g} {s:.1f} s ({s / wall:.2f} cores)" for g, s in sorted(used.items(), key=lambda x: -x[1]))
print(f"cpu split, {name}, {wall:.1f} s of wall time: {parts}; total {sum(used.values()) / wall:.2f} of {__import__('os').cpu_count()} cores")
EOF
}

flame_in_background() {
  [ -n "${PROFILE:-}" ] || return 0
  local name=$1 delay=$2 secs=$3
  mkdir -p "$PROFILE"
  (
    sleep "$delay"
    perf record -q -F 499 --call-graph dwarf,32768 -p "$api_pid" -o "$bench_work/$name-api.data" -- sleep "$secs" 2>/dev/null
    local pm
    pm=$(head -1 "$bench_pg/postmaster.pid")
    perf record -q -F 499 --call-graph dwarf,32768 -p "$(pgrep -d, -P "$pm")" -o "$bench_work/$name-postgres.data" \
      -- sleep "$secs" 2>/dev/null
  ) &
  _flame_pids+=($!)
  _flame_names+=("$name:$secs")
}

# flame_render: after the timed tests, folds what flame_in_background recorded into
# $PROFILE/<name>-{api,postgres}.svg and the top of each flat profile into .top.txt.
flame_render() {
  [ -n "${PROFILE:-}" ] || return 0
  local p entry name secs part title
  for p in "${_flame_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for entry in "${_flame_names[@]}"; do
    name=${entry%%:*} secs=${entry##*:}
    for part in api postgres; do
      [ -s "$bench_work/$name-$part.data" ] || continue
      perf script --no-inline -i "$bench_work/$name-$part.data" 2>/dev/null |
        inferno-collapse-perf >"$bench_work/$name-$part.folded" || true
      title="$name: $([ $part = api ] && echo imticket-api || echo 'PostgreSQL backends'), $secs s at 499 Hz (cpu-clock)"
      inferno-flamegraph --title "$title" --width 1400 <"$bench_work/$name-$part.folded" >"$PROFILE/$name-$part.svg" || true
      # The flat profile's top (self time by function), for the text.
      { perf report --no-inline -i "$bench_work/$name-$part.data" --no-children -g none --sort dso,symbol --stdio 2>/dev/null || true; } |
        grep -v '^#' | grep -v '^$' | head -30 | sed 's/[ -]*$//' | cut -c1-160 >"$PROFILE/$name-$part.top.txt" || true
      mkdir -p /tmp/imticket-profile && cp "$bench_work/$name-$part.folded" /tmp/imticket-profile/
      echo "profile: $PROFILE/$name-$part.svg"
    done
  done
}
_flame_pids=()
_flame_names=()
