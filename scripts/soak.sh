#!/usr/bin/env bash
# Soak and chaos runs against devwire-sim and the bare devwire TCP server,
# on 127.0.0.1 only. Exits non-zero on any error.
#
# Usage: scripts/soak.sh [--quick] [--chaos | --all] [--minutes M] [--round-trips N]
#                        [--clients N] [--build-dir DIR] [--no-build]
#   (default)      soak: --clients (256) clients at once against devwire-sim and
#                  against the bare TCP server (dw-soak serve), --round-trips
#                  (1,000,000) in total, half each, every reply checked for
#                  content and order; the server's RSS at start, middle and end
#                  (growth once warm must stay within a fixed allowance), and
#                  the memory per idle connection; then the memory check of
#                  oversized frames: devwire-sim's RSS before, during two waves
#                  of 8 concurrent senders of 20 MB each (more than its 16 MiB
#                  frame limit), and 5 s after they are gone, which must be
#                  within 2x of before (dw-flood; about 15 s, --quick too).
#   --chaos        chaos only (scripts/chaos.sh): well-behaved clients next to
#                  misbehaving ones, against both servers.
#   --all          soak, then chaos.
#   --quick        the short CI version (100,000 round trips, 8 s per chaos
#                  condition).
#   --minutes M    time bound of the soak (default 10; 2 with --quick), split
#                  between the two servers; the run stops at the count or the
#                  time bound, whichever comes first.
#   --build-dir D  where to build (default build/soak); --no-build uses it as is.
# DW_CHAOS_RATIO_LIMIT (default 2): the bound on p99 under chaos / p99 calm.
set -uo pipefail
cd "$(dirname "$0")/.."

mode=soak quick=0 minutes="" round_trips="" clients=256 build=build/soak do_build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --chaos) mode=chaos ;;
    --all) mode=all ;;
    --minutes) minutes=$2; shift ;;
    --round-trips) round_trips=$2; shift ;;
    --clients) clients=$2; shift ;;
    --build-dir) build=$2; shift ;;
    --no-build) do_build=0 ;;
    -h|--help) awk 'NR > 1 && /^#/ {print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    *) echo "soak: unknown option '$1' (--help)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$quick" = 1 ]; then
  : "${minutes:=2}" "${round_trips:=100000}"
  chaos_seconds=8
else
  : "${minutes:=10}" "${round_trips:=1000000}"
  chaos_seconds=30
fi
rss_allowance_kib=2048   # growth allowed between the warm sample and the end
idle_connections=500

if [ "$do_build" = 1 ]; then
  echo "== build ($build)"
  mkdir -p "$(dirname "$build")"
  if ! { cmake -S . -B "$build" -DDW_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
           -DDW_BUILD_BENCH=OFF >"$build.configure.log" 2>&1 &&
         cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" \
           --target dw-soak dw-chaos dw-flood devwire-sim >"$build.build.log" 2>&1; }; then
    tail -n 40 "$build.configure.log" "$build.build.log" 2>/dev/null
    echo "soak: build FAILED"; exit 1
  fi
fi
# Under AddressSanitizer memory figures mean nothing (shadow memory,
# quarantine, larger stacks): they are printed, not held to their bounds; the
# sanitizers check for leaks and memory errors instead (a server that finds
# one exits non-zero, which fails the run).
memory_checks=1
if grep -q '^DW_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  memory_checks=0
  rss_allowance_kib=100000000
  echo "soak: sanitizer build: memory figures are not checked"
fi
soak_bin=$build/tests/soak/dw-soak
chaos_bin=$build/tests/soak/dw-chaos
flood_bin=$build/tests/soak/dw-flood
sim_bin=$build/sim/devwire-sim
script=tests/soak/soak-sim.json
for b in "$soak_bin" "$chaos_bin" "$flood_bin" "$sim_bin"; do
  [ -x "$b" ] || { echo "soak: $b is missing (build it, or drop --no-build)"; exit 1; }
done

out=$(mktemp -d "${TMPDIR:-/tmp}/devwire-soak.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
  rm -rf "$out"
}
trap cleanup EXIT
# The connection-limit flood against devwire-sim (limit 1024) needs more
# descriptors than a default soft limit of 1024.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 8192 2>/dev/null || true

status=0
summary=()
fail() { summary+=("FAIL: $*"); status=1; }

# start_server NAME CMD... : run it with stdout/stderr in $out/NAME.{out,log};
# sets server_pid and server_addr once it prints "listening on HOST:PORT".
start_server() {
  local name=$1; shift
  "$@" >"$out/$name.out" 2>"$out/$name.log" &
  server_pid=$!
  server_addr=""
  for _ in $(seq 1 100); do
    server_addr=$(sed -n 's/^listening on //p' "$out/$name.out")
    [ -n "$server_addr" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "soak: $name did not start:"; cat "$out/$name.log"
  server_pid=""
  return 1
}

# stop_server NAME: SIGTERM, wait; non-zero if it did not exit 0.
stop_server() {
  local name=$1 rc
  kill -TERM "$server_pid" 2>/dev/null
  wait "$server_pid"; rc=$?
  server_pid=""
  if [ "$rc" -ne 0 ]; then fail "$name exited with status $rc"; fi
  return "$rc"
}

run_soak() { # NAME ROUND_TRIPS SECONDS SERVER-CMD...
  local name=$1 n=$2 secs=$3; shift 3
  echo "== soak: $name ($clients clients, $n round trips, at most $secs s)"
  start_server "$name" "$@" || { fail "$name: cannot start"; return; }
  local pid=$server_pid
  "$soak_bin" load --connect "$server_addr" --clients "$clients" --round-trips "$n" \
    --seconds "$secs" --pid "$pid" --rss-allowance "$rss_allowance_kib" --label "$name" \
    | tee "$out/$name.load"
  [ "${PIPESTATUS[0]}" -eq 0 ] || fail "$name: soak load failed"
  local conns=$idle_connections
  "$soak_bin" idle --connect "$server_addr" --pid "$pid" --connections "$conns" --label "$name" \
    | tee -a "$out/$name.load"
  [ "${PIPESTATUS[0]}" -eq 0 ] || [ "$memory_checks" = 0 ] ||
    fail "$name: memory per idle connection above 64 KiB"
  stop_server "$name"
  # At the default level a clean soak logs no warning and no error.
  if grep -E ': (warn|error): ' "$out/$name.log" >/dev/null; then
    grep -E ': (warn|error): ' "$out/$name.log" | head -n 5
    fail "$name: the server logged warnings or errors during the soak"
  fi
  local rt errs
  rt=$(awk -v l="$name" '$1=="SOAK" && $2==l && $3=="round_trips" {print $4}' "$out/$name.load")
  errs=$(awk -v l="$name" '$1=="SOAK" && $2==l && $3=="round_trips" {print $6}' "$out/$name.load")
  total_rt=$((total_rt + ${rt:-0}))
  total_err=$((total_err + ${errs:-1}))
}

# The simulator's memory after oversized frames: RSS before, during and 5 s
# after waves of 8 concurrent 20 MB senders; after must be within 2x of
# before (printed, not held, under the sanitizers).
run_flood() {
  local name=flood-sim ratio=2
  [ "$memory_checks" = 1 ] || ratio=0
  echo "== memory: $name (2 waves of 8 senders of 20 MB, RSS 5 s after)"
  start_server "$name" "$sim_bin" --script tests/soak/flood-sim.json --listen 127.0.0.1:0 ||
    { fail "$name: cannot start"; return; }
  "$flood_bin" --connect "$server_addr" --pid "$server_pid" --senders 8 --bytes 20000000 \
    --rounds 2 --settle 5 --ratio-limit "$ratio" --label "$name" | tee "$out/$name.flood"
  [ "${PIPESTATUS[0]}" -eq 0 ] || fail "$name: memory kept after oversized frames"
  stop_server "$name"
  summary+=("$(sed -n 's/^\([^ ]*: server RSS KiB: .*\);.*/\1/p' "$out/$name.flood")")
}

run_chaos() { # NAME CHAOS-ARGS -- SERVER-CMD...
  local name=$1; shift
  local args=()
  while [ "$1" != "--" ]; do args+=("$1"); shift; done
  shift
  echo "== chaos: $name (64 clients, $chaos_seconds s calm + $chaos_seconds s chaos)"
  start_server "$name" "$@" || { fail "$name: cannot start"; return; }
  # DW_CHAOS_RATIO_LIMIT loosens the p99 bound (default 2) on a machine too
  # noisy for it; the ratio is printed either way.
  "$chaos_bin" --connect "$server_addr" --clients 64 --seconds "$chaos_seconds" \
    --ratio-limit "${DW_CHAOS_RATIO_LIMIT:-2}" \
    --server-log "$out/$name.log" --pid "$server_pid" --label "$name" "${args[@]}" \
    | grep -v '^CHAOS '
  [ "${PIPESTATUS[0]}" -eq 0 ] || fail "$name: chaos run failed"
  stop_server "$name"
}

total_rt=0 total_err=0
if [ "$mode" != chaos ]; then
  half=$((round_trips / 2))
  secs=$((minutes * 60 / 2))
  run_soak soak-sim "$half" "$secs" "$sim_bin" --script "$script" --listen 127.0.0.1:0
  run_soak soak-server "$((round_trips - half))" "$secs" "$soak_bin" serve --max-connections 2048
  summary+=("soak: $total_rt round trips, $total_err errors")
  [ "$total_err" -eq 0 ] || fail "soak: $total_err errors"
  run_flood
fi
if [ "$mode" != soak ]; then
  run_chaos chaos-server --idle-timeout 1000 --max-frame 4096 -- \
    "$soak_bin" serve --log-level info --idle-timeout 1000 --max-frame 4096 \
    --max-connections 96
  # devwire-sim's connection limit is fixed at 1024: reaching it takes a
  # flood of ~1000 connections, a thread each, which costs the other clients
  # far more than any single misbehaviour. It runs on its own, its latency
  # ratio reported but not held to the 2x bound.
  run_chaos chaos-sim --sim --max-frame 65536 --skip limit -- \
    "$sim_bin" --script "$script" --listen 127.0.0.1:0 --log-level info
  nofile=$(ulimit -n)
  if [ "$nofile" != unlimited ] && [ "$nofile" -lt 2560 ]; then
    summary+=("chaos-sim-limit: skipped (open file limit $nofile, 2560 needed)")
  else
    run_chaos chaos-sim-limit --sim --max-frame 65536 --ratio-limit 0 \
      --skip silent,half,slow,oversized,garbage,reset -- \
      "$sim_bin" --script "$script" --listen 127.0.0.1:0 --log-level info
  fi
fi

echo "== summary"
for line in "${summary[@]}"; do echo "$line"; done
[ "$status" -eq 0 ] && echo "$mode: ok" || echo "$mode: FAILED"
exit $status
