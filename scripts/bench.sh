#!/usr/bin/env bash
# Build a Release tree in build/bench and run every benchmark program
# (tests/bench/bench_<name>.c -> bench_<name>); each prints its own table.
# Usage: scripts/bench.sh [--quick] [--only NAME]...
#   --quick      shorter runs (sets DW_BENCH_QUICK=1 for the programs)
#   --only NAME  run only bench_NAME (NAME or bench_NAME; may be repeated)
# Benchmarks are not tests: they never fail on a figure, only on a crash.
set -euo pipefail
cd "$(dirname "$0")/.."

only=()
while [ $# -gt 0 ]; do
  case "$1" in
  --quick) export DW_BENCH_QUICK=1 ;;
  --only)
    [ $# -ge 2 ] || { echo "bench.sh: --only needs a name" >&2; exit 2; }
    only+=("${2#bench_}")
    shift
    ;;
  -h | --help)
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *) echo "bench.sh: unknown option: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

dir=build/bench
jobs=$(nproc 2>/dev/null || echo 2)
mkdir -p build
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
  if ! "$dir/tests/bench/$name"; then
    echo "bench.sh: $name failed" >&2
    status=1
  fi
done
exit $status
