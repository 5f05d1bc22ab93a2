#!/usr/bin/env bash
# Run test suites under valgrind memcheck: no memory error and no leak
# (definite or indirect) allowed. Exits non-zero on any.
#
# Usage: scripts/memcheck.sh [--all] [--build-dir DIR] [SUITE...]
#   (default)  the pure-library suites (no sockets, no subprocesses), where
#              valgrind is practical: Criterion runs every test in its own
#              forked process and valgrind follows each (--trace-children=yes).
#   --all      every suite in the build, socket and simulator suites included
#              (slow: tens of minutes on two cores).
#   SUITE...   these suites only (test_buf, test_marshaller, ...).
#
# Leaks in every suite are also checked by the sanitizer run of
# scripts/test.sh: ASan with LeakSanitizer (ASAN_OPTIONS=detect_leaks=1)
# fails a test that leaks. valgrind adds uninitialised reads, which ASan
# does not see, and a second leak checker that needs no rebuild.
set -uo pipefail
cd "$(dirname "$0")/.."

build=build/memcheck all=0 suites=()
while [ $# -gt 0 ]; do
  case "$1" in
    --all) all=1 ;;
    --build-dir) build=$2; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "memcheck: unknown option '$1' (--help)" >&2; exit 2 ;;
    *) suites+=("$1") ;;
  esac
  shift
done
command -v valgrind >/dev/null || { echo "memcheck: valgrind is not installed (scripts/install-deps.sh)"; exit 1; }

echo "== build ($build, Debug, no sanitizers)"
mkdir -p "$(dirname "$build")"
if ! { cmake -S . -B "$build" -DDW_WERROR=ON -DCMAKE_BUILD_TYPE=Debug -DDW_SANITIZE=OFF \
         -DDW_BUILD_BENCH=OFF >"$build.configure.log" 2>&1 &&
       cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" >"$build.build.log" 2>&1; }; then
  tail -n 40 "$build.configure.log" "$build.build.log" 2>/dev/null
  echo "memcheck: build FAILED"; exit 1
fi

if [ ${#suites[@]} -eq 0 ]; then
  if [ "$all" = 1 ]; then
    for t in "$build"/tests/test_*; do [ -x "$t" ] && suites+=("$(basename "$t")"); done
  else
    for t in test_buf test_error test_iter test_marshaller test_sim_script test_sim_engine; do
      [ -x "$build/tests/$t" ] && suites+=("$t")
    done
  fi
fi

logs=$build/valgrind
rm -rf "$logs"; mkdir -p "$logs"
logs=$(cd "$logs" && pwd)
status=0
summary=()
for t in "${suites[@]}"; do
  exe=$build/tests/$t
  [ -x "$exe" ] || { summary+=("$t: not built"); status=1; continue; }
  echo "== $t under valgrind"
  start=$(date +%s)
  # One test process at a time (--jobs 1): valgrind is slow enough.
  # Programs the tests start (devwire-sim) are checked too; system tools
  # (a shell, tr) are not ours.
  (cd "$build/tests" && valgrind --tool=memcheck --trace-children=yes --error-exitcode=99 \
      --trace-children-skip='/usr/*,/bin/*,/sbin/*,*/.pyenv/*' \
      --leak-check=full --errors-for-leak-kinds=definite,indirect \
      --show-leak-kinds=definite,indirect --track-origins=yes --num-callers=30 \
      --log-file="$logs/$t.%p.log" "./$t" --jobs 1) >"$logs/$t.out" 2>&1
  rc=$?
  tail -n 1 "$logs/$t.out"
  # Every process (the runner and each forked test) has its own log.
  errs=$(grep -h 'ERROR SUMMARY' "$logs/$t".*.log 2>/dev/null |
         awk '{s += $4} END {print s + 0}')
  procs=$(ls "$logs/$t".*.log 2>/dev/null | wc -l)
  line="$t: exit $rc, $errs memcheck error(s) in $procs process(es), $(( $(date +%s) - start )) s"
  summary+=("$line")
  if [ "$rc" -ne 0 ] || [ "$errs" -ne 0 ] || [ "$procs" -eq 0 ]; then
    status=1
    for f in "$logs/$t".*.log; do
      grep -q 'ERROR SUMMARY: 0 errors' "$f" || { echo "--- $f"; sed -n '1,80p' "$f"; }
    done
  fi
done

echo "== summary (logs in $logs)"
for line in "${summary[@]}"; do echo "$line"; done
[ "$status" -eq 0 ] && echo "memcheck: ok" || echo "memcheck: FAILED"
exit $status
