#!/usr/bin/env bash
# Build a Release tree in build/bench, run every benchmark program
# (tests/bench/bench_<name>.c -> bench_<name>; each prints its own table),
# measure the memory per idle connection of the server processes, then print
# ONE table of every figure next to its same-run baseline and the ratio.
# Usage: scripts/bench.sh [--quick] [--only NAME]... [--plot]
#   --quick      shorter runs (sets DW_BENCH_QUICK=1 for the programs)
#   --only NAME  run only bench_NAME (NAME or bench_NAME; may be repeated)
#   --plot       also write bench-out/roundtrips.png and bench-out/p99.png
#                (round trips and p99 latency against connection count)
# Every program's output is kept in bench-out/<name>.txt. Benchmarks are not
# tests: they never fail on a figure, only on a crash.
set -euo pipefail
cd "$(dirname "$0")/.."

only=()
plot=0
while [ $# -gt 0 ]; do
  case "$1" in
  --quick) export DW_BENCH_QUICK=1 ;;
  --only)
    [ $# -ge 2 ] || { echo "bench.sh: --only needs a name" >&2; exit 2; }
    only+=("${2#bench_}")
    shift
    ;;
  --plot) plot=1 ;;
  -h | --help)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *) echo "bench.sh: unknown option: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

dir=build/bench
out=bench-out
jobs=$(nproc 2>/dev/null || echo 2)
mkdir -p build "$out"
rm -f "$out"/*.txt
echo "== configure and build $dir (Release)"
if ! cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DDW_BUILD_BENCH=ON -DDW_SANITIZE=OFF \
  >"$dir.configure.log" 2>&1; then
  cat "$dir.configure.log"
  exit 1
fi

names=()
for src in tests/bench/bench_*.c; do
  [ -e "$src" ] || continue
  name=$(basename "$src" .c)
  if [ ${#only[@]} -gt 0 ]; then
    keep=0
    for o in "${only[@]}"; do [ "bench_$o" = "$name" ] && keep=1; done
    [ $keep = 1 ] || continue
  fi
  names+=("$name")
done
if [ ${#names[@]} -eq 0 ]; then
  echo "bench.sh: no benchmark matches${only[*]:+ --only ${only[*]}}" >&2
  exit 2
fi

# Build each program on its own, so one that does not build does not keep
# the others from running.
status=0
built=()
for name in "${names[@]}"; do
  if cmake --build "$dir" -j "$jobs" --target "$name" >"$dir.build.log" 2>&1; then
    built+=("$name")
  else
    echo "bench.sh: $name did not build:" >&2
    grep -E -B2 -A6 'error' "$dir.build.log" | head -n 60 >&2
    status=1
  fi
done

for name in "${built[@]}"; do
  echo
  echo "== $name${DW_BENCH_QUICK:+ (quick)}"
  if ! "$dir/tests/bench/$name" | tee "$out/$name.txt"; then
    echo "bench.sh: $name failed" >&2
    status=1
  fi
done

# Memory per idle connection of the server as its own process (dw-soak serve
# and devwire-sim, 500 connections), against the 64 KiB target. Skipped with
# --only. (bench_sim_baselines measures 10,000, against 16 KiB.) The server
# is stopped however this script ends (an error, Ctrl-C).
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap stop_server EXIT
idle_memory() { # LABEL SERVER-CMD...
  local label=$1
  shift
  "$@" >"$out/$label.listen" 2>/dev/null &
  server_pid=$!
  local pid=$server_pid addr=""
  for _ in $(seq 1 100); do
    addr=$(sed -n 's/^listening on //p' "$out/$label.listen")
    [ -n "$addr" ] && break
    sleep 0.1
  done
  if [ -n "$addr" ]; then
    "$dir/tests/soak/dw-soak" idle --connect "$addr" --pid "$pid" --connections 500 \
      --label "$label" | tee -a "$out/idle_memory.txt" || status=1
  else
    echo "bench.sh: $label did not start" >&2
    status=1
  fi
  stop_server
  rm -f "$out/$label.listen"
}
if [ ${#only[@]} -eq 0 ]; then
  echo
  echo "== memory per idle connection, server process alone"
  if cmake --build "$dir" -j "$jobs" --target dw-soak devwire-sim >"$dir.build.log" 2>&1; then
    idle_memory server "$dir/tests/soak/dw-soak" serve --max-connections 2048
    idle_memory sim "$dir/sim/devwire-sim" --script tests/soak/soak-sim.json \
      --listen 127.0.0.1:0
  else
    echo "bench.sh: dw-soak or devwire-sim did not build" >&2
    status=1
  fi
fi

echo
echo "== report: each figure next to its same-run baseline (ratio = value / baseline)"
report_args=()
[ "$plot" = 1 ] && report_args+=(--plot "$out")
if ls "$out"/*.txt >/dev/null 2>&1; then
  scripts/bench-report.sh "${report_args[@]}" "$out"/*.txt || status=1
fi
exit $status
