#!/usr/bin/env bash
# Fuzzing campaigns and corpus coverage for devwire's fuzz targets.
#
# Usage: scripts/fuzz.sh [--time SECONDS] [--jobs N] [--coverage] [TARGET...]
#   TARGET      sentinel, fixed, ... (fuzz/fuzz_<target>.c); default: all
#   --time S    fuzz each target for S seconds (default 60)
#   --jobs N    fuzz N targets at once, one process each (default 1)
#   --coverage  no fuzzing: build with clang source-based coverage, replay the
#               corpora and report line coverage of lib/ and of the framing code
#
# A campaign builds with clang and libFuzzer+ASan+UBSan in build/fuzz, fuzzes
# each target with its corpus (fuzz/corpus/<target>/) and dictionary
# (fuzz/dict/<target>.dict), shows progress, merges the new inputs that add
# coverage back into the corpus (keeping hand-named files, minimizing the
# fuzzer-named ones), keeps crashes in fuzz/artifacts/ with a .repro file
# holding the command that reproduces each, and ends with a table per target.
# Exits non-zero when a target crashed (or the build failed).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

time_s=60
jobs=1
max_corpus=300 # files per target before the merge keeps edge coverage only
coverage=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time) time_s=${2:?--time needs SECONDS}; shift 2 ;;
    --time=*) time_s=${1#*=}; shift ;;
    --jobs) jobs=${2:?--jobs needs N}; shift 2 ;;
    --jobs=*) jobs=${1#*=}; shift ;;
    --coverage) coverage=1; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option '$1'" >&2; exit 2 ;;
    *) targets+=("${1#fuzz_}"); shift ;;
  esac
done
case "$time_s$jobs" in *[!0-9]*) echo "fuzz.sh: --time and --jobs take numbers" >&2; exit 2 ;; esac
[ "$jobs" -ge 1 ] || jobs=1

all_targets=()
for f in fuzz/fuzz_*.c; do
  t=${f#fuzz/fuzz_}
  all_targets+=("${t%.c}")
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [ -f "fuzz/fuzz_$t.c" ] || { echo "fuzz.sh: no target '$t' (have: ${all_targets[*]})" >&2; exit 2; }
done

command -v clang >/dev/null 2>&1 || {
  echo "fuzz.sh: clang is needed (scripts/install-deps.sh installs it)" >&2
  exit 2
}
clang_major=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
tool() { # name: the llvm tool matching clang's version, else the plain one
  local c
  for c in "$1-$clang_major" "$1"; do
    command -v "$c" >/dev/null 2>&1 && { echo "$c"; return 0; }
  done
  echo "fuzz.sh: $1 not found (the llvm package has it)" >&2
  return 1
}
build_jobs=$(nproc 2>/dev/null || echo 2)
[ "$build_jobs" -le 2 ] || build_jobs=2

build() { # dir cmake-args...
  local dir=$1
  shift
  mkdir -p "$dir"
  echo "== build ($dir)"
  if ! CC=clang cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDW_BUILD_TESTS=OFF \
      -DDW_BUILD_BENCH=OFF "$@" >"$dir/configure.log" 2>&1; then
    cat "$dir/configure.log"; exit 1
  fi
  local tlist=()
  for t in "${targets[@]}"; do tlist+=(--target "fuzz_$t"); done
  if ! cmake --build "$dir" -j "$build_jobs" "${tlist[@]}" >"$dir/build.log" 2>&1; then
    grep -E -B2 -A6 'error' "$dir/build.log" | head -n 80
    echo "fuzz.sh: build failed (full log: $dir/build.log)" >&2
    exit 1
  fi
  for t in "${targets[@]}"; do
    [ -x "$dir/fuzz/fuzz_$t" ] || { echo "fuzz.sh: fuzz_$t was not built (its library missing?)" >&2; exit 1; }
  done
}

# ---------------------------------------------------------------- coverage
if [ "$coverage" = 1 ]; then
  profdata=$(tool llvm-profdata) || exit 2
  llvmcov=$(tool llvm-cov) || exit 2
  dir=build/fuzz-coverage
  build "$dir" -DDW_COVERAGE=ON -DDW_FUZZ=OFF
  rm -rf "$dir/profiles"
  mkdir -p "$dir/profiles"
  objects=()
  for t in "${targets[@]}"; do
    echo "== replay $t ($(ls "fuzz/corpus/$t" | wc -l) inputs)"
    LLVM_PROFILE_FILE="$dir/profiles/$t.profraw" "$dir/fuzz/fuzz_$t" "fuzz/corpus/$t" >/dev/null ||
      { echo "fuzz.sh: replaying fuzz/corpus/$t failed" >&2; exit 1; }
    [ ${#objects[@]} -eq 0 ] && objects+=("$dir/fuzz/fuzz_$t") || objects+=(-object "$dir/fuzz/fuzz_$t")
  done
  "$profdata" merge -sparse "$dir"/profiles/*.profraw -o "$dir/corpus.profdata" || exit 1
  framing=()
  for f in sentinel fixed length_prefixed scpi json_lines marshaller decoder iter; do
    framing+=("$root/lib/src/$f.c")
  done
  echo "== line coverage of lib/ by the corpora of: ${targets[*]}"
  "$llvmcov" report "${objects[@]}" -instr-profile="$dir/corpus.profdata" "$root/lib/src" \
    >"$dir/lib.txt" || exit 1
  "$llvmcov" report "${objects[@]}" -instr-profile="$dir/corpus.profdata" "${framing[@]}" \
    >"$dir/framing.txt" || exit 1
  "$llvmcov" show "${objects[@]}" -instr-profile="$dir/corpus.profdata" -format=html \
    -output-dir="$dir/html" "$root/lib/src" >/dev/null 2>&1
  awk 'NR > 2 && $1 != "TOTAL" && $1 !~ /^-/ { sub(".*/", "", $1); printf "  %-22s %6s lines  %8s covered\n", $1, $8, $10 }' \
    "$dir/framing.txt"
  pct() { awk '$1 == "TOTAL" { printf "%s (%d of %d lines)", $10, $8 - $9, $8 }' "$1"; }
  echo "lib/ line coverage:          $(pct "$dir/lib.txt")"
  echo "framing code line coverage:  $(pct "$dir/framing.txt")"
  echo "(per-line report: $dir/html/index.html)"
  exit 0
fi

# ---------------------------------------------------------------- campaign
build build/fuzz -DDW_FUZZ=ON -DDW_COVERAGE=OFF
run=build/fuzz/run
mkdir -p "$run" fuzz/artifacts
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

start_target() { # target: runs libFuzzer in the background, logs to $run/<t>.log
  local t=$1 bin=build/fuzz/fuzz/fuzz_$1 dict=()
  rm -rf "$run/$t.new"
  mkdir -p "$run/$t.new" "fuzz/corpus/$t"
  [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
  touch "$run/$t.stamp"
  "$bin" -max_total_time="$time_s" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "${dict[@]}" -artifact_prefix="fuzz/artifacts/$t-" \
    "$run/$t.new" "fuzz/corpus/$t" >"$run/$t.log" 2>&1 &
  echo $! >"$run/$t.pid"
  echo "== fuzzing $t for ${time_s}s (log: $run/$t.log)"
}

status_line() { # target: the last libFuzzer status line, shortened
  grep -E '^#[0-9]+' "$run/$1.log" 2>/dev/null | tail -n 1 |
    sed -E 's/ +lim: [0-9]+//; s/ +rss: .*//'
}

finish_target() { # target: merge the new inputs, record crashes
  local t=$1 bin=build/fuzz/fuzz/fuzz_$1
  local rc=0
  wait "$(cat "$run/$t.pid")" || rc=$?
  echo "$rc" >"$run/$t.rc"
  # Crashes: every artifact newer than the start, with its repro command.
  local n=0 a
  for a in fuzz/artifacts/"$t"-*; do
    [ -f "$a" ] || continue
    case "$a" in *.repro) continue ;; esac
    [ "$a" -nt "$run/$t.stamp" ] || continue
    n=$((n + 1))
    echo "cmake -S . -B build/fuzz -DDW_FUZZ=ON -DDW_BUILD_TESTS=OFF -DDW_BUILD_BENCH=OFF && cmake --build build/fuzz --target fuzz_$t && $bin $a" >"$a.repro"
    echo "!! $t: $(grep -m1 -E 'ERROR|fuzz oracle|runtime error|Assertion|==[0-9]+==' "$run/$t.log" | cut -c1-160)"
    echo "!! reproduce: $(cat "$a.repro")"
  done
  if [ "$rc" -ne 0 ] && [ "$n" -eq 0 ]; then
    n=1
    echo "!! $t: libFuzzer exited with $rc and left no artifact; see $run/$t.log"
  fi
  echo "$n" >"$run/$t.crashes"
  # Merge: hand-named files stay; the fuzzer-named ones (sha1 names) and the
  # new inputs are reduced to a set that keeps every coverage feature.
  local keep=$run/$t.keep hashed=$run/$t.hashed f
  rm -rf "$keep" "$hashed"
  mkdir -p "$keep" "$hashed"
  for f in "fuzz/corpus/$t"/*; do
    [ -f "$f" ] || continue
    if [[ $(basename "$f") =~ ^[0-9a-f]{40}$ ]]; then cp "$f" "$hashed/"; else cp "$f" "$keep/"; fi
  done
  local before merged=0
  before=$(ls "fuzz/corpus/$t" | wc -l)
  cp -r "$keep" "$keep.0"
  if "$bin" -merge=1 -max_len=4096 -timeout=10 "$keep" "$hashed" "$run/$t.new" \
      >"$run/$t.merge.log" 2>&1; then
    merged=1
    # Too many files: keep only what covers new edges (not hit counts).
    if [ "$(ls "$keep" | wc -l)" -gt "$max_corpus" ]; then
      rm -rf "$keep"
      mv "$keep.0" "$keep"
      "$bin" -merge=1 -use_counters=0 -max_len=4096 -timeout=10 "$keep" "$hashed" \
        "$run/$t.new" >"$run/$t.merge.log" 2>&1 || merged=0
    fi
  fi
  rm -rf "$keep.0"
  if [ "$merged" = 1 ]; then
    for f in "fuzz/corpus/$t"/*; do
      [[ $(basename "$f") =~ ^[0-9a-f]{40}$ ]] && rm -f "$f"
    done
    for f in "$keep"/*; do
      [[ $(basename "$f") =~ ^[0-9a-f]{40}$ ]] && cp "$f" "fuzz/corpus/$t/"
    done
  else
    echo "!! $t: merge failed (see $run/$t.merge.log); corpus left as it was"
  fi
  echo "== $t done: corpus $before -> $(ls "fuzz/corpus/$t" | wc -l) files"
}

running=()
# Fuzzers still running when this script ends early (Ctrl-C, an error) are
# stopped with it.
stop_fuzzers() {
  local t
  for t in "${running[@]}"; do kill "$(cat "$run/$t.pid")" 2>/dev/null; done
}
trap stop_fuzzers EXIT
pending=("${targets[@]}")
last_progress=0
while [ ${#pending[@]} -gt 0 ] || [ ${#running[@]} -gt 0 ]; do
  while [ ${#pending[@]} -gt 0 ] && [ ${#running[@]} -lt "$jobs" ]; do
    start_target "${pending[0]}"
    running+=("${pending[0]}")
    pending=("${pending[@]:1}")
  done
  sleep 2
  still=()
  for t in "${running[@]}"; do
    if kill -0 "$(cat "$run/$t.pid")" 2>/dev/null; then
      still+=("$t")
    else
      finish_target "$t"
    fi
  done
  running=("${still[@]}")
  now=$(date +%s)
  if [ $((now - last_progress)) -ge 10 ] && [ ${#running[@]} -gt 0 ]; then
    last_progress=$now
    for t in "${running[@]}"; do
      printf '   %-16s %s\n' "$t" "$(status_line "$t")"
    done
  fi
done

echo
printf '%-16s %10s %8s %8s %8s %8s\n' target "execs/s" cov ft corpus crashes
status=0
for t in "${targets[@]}"; do
  log=$run/$t.log
  eps=$(grep -m1 -E 'stat::average_exec_per_sec' "$log" | awk '{print $2}')
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  crashes=$(cat "$run/$t.crashes")
  printf '%-16s %10s %8s %8s %8s %8s\n' "$t" "${eps:--}" "${cov:--}" "${ft:--}" \
    "$(ls "fuzz/corpus/$t" | wc -l)" "$crashes"
  [ "$crashes" -eq 0 ] || status=1
done
[ "$status" -eq 0 ] || echo "fuzz.sh: crashes found; artifacts and .repro files are in fuzz/artifacts/"
exit $status
