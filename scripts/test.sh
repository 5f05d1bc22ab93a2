#!/usr/bin/env bash
# Configure, build and run the whole devwire test suite twice: a normal
# build (warnings are errors) and an ASan+UBSan build. Exits non-zero on any
# failure, and when a process the tests started from this checkout's build
# (a simulator) is still running at the end.
# Usage: scripts/test.sh [--quick]   (--quick: normal build only)
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
quick=0
[ "${1:-}" = "--quick" ] && quick=1

status=0
summary=()
run_suite() { # name builddir cmake-args...
  local name=$1 dir=$2
  shift 2
  echo "== $name: configure and build ($dir)"
  if ! cmake -S . -B "$dir" -DDW_WERROR=ON "$@" >"$dir.configure.log" 2>&1; then
    cat "$dir.configure.log"; summary+=("$name: configure FAILED"); status=1; return
  fi
  if ! cmake --build "$dir" -j "$jobs" >"$dir.build.log" 2>&1; then
    grep -E -B2 -A6 'error|warning' "$dir.build.log" | head -n 150
    summary+=("$name: build FAILED"); status=1; return
  fi
  echo "== $name: test"
  local out="$dir.ctest.log"
  (cd "$dir" && ctest -j "$jobs" --output-on-failure) 2>&1 | tee "$out"
  local rc=${PIPESTATUS[0]}
  summary+=("$name: $(grep -E 'tests passed' "$out" | tail -n 1)")
  [ "$rc" -eq 0 ] || status=1
  check_sanitizer_reports "$name"
}

# Criterion reports a test as passed even when LeakSanitizer finds a leak in
# its process at exit, so sanitizer reports go to files (log_path) and any
# report fails the run, whichever process (test, simulator, replay) wrote it.
san_dir=""
check_sanitizer_reports() {
  [ -n "$san_dir" ] || return 0
  local reports
  reports=$(find "$san_dir" -type f 2>/dev/null | sort)
  if [ -n "$reports" ]; then
    echo "== $1: sanitizer reports"
    for f in $reports; do echo "--- $f"; head -n 60 "$f"; done
    summary+=("$1: $(echo "$reports" | wc -l) sanitizer report(s) (leaks or undefined behaviour): FAILED")
    status=1
  fi
}

# Processes running a program under this checkout's build directory (other
# checkouts' simulators are not ours to judge).
build_procs() {
  find /proc -mindepth 2 -maxdepth 2 -name exe -lname "$PWD/build/*" 2>/dev/null |
    cut -d/ -f3 | sort
}

# Those started since `before` that still run after a grace period: a test
# left them behind. They are named, killed, and fail the run.
check_leftovers() { # before-list
  local left="" pid
  for _ in $(seq 1 25); do
    left=$(comm -13 <(echo "$1") <(build_procs))
    [ -z "$left" ] && return 0
    sleep 0.2
  done
  echo "== processes left running by the tests"
  for pid in $left; do
    echo "  pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
  done
  kill -KILL $left 2>/dev/null
  summary+=("$(echo "$left" | wc -w) process(es) left running by the tests (killed): FAILED")
  status=1
}

mkdir -p build
procs_before=$(build_procs)
run_suite "normal" build/normal -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "$quick" = 0 ]; then
  san_dir="$PWD/build/sanitize-reports"
  rm -rf "$san_dir" && mkdir -p "$san_dir"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:log_path=$san_dir/asan
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$san_dir/ubsan
  run_suite "sanitizers" build/sanitize -DCMAKE_BUILD_TYPE=Debug -DDW_SANITIZE=ON \
    -DDW_BUILD_BENCH=OFF
fi

check_leftovers "$procs_before"

echo "== summary"
for line in "${summary[@]}"; do echo "$line"; done
exit $status
