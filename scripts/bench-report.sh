#!/usr/bin/env bash
# Merge the machine-readable lines of the benchmark programs into one table,
# and optionally plot round trips and p99 latency against connection count.
#
# Usage: scripts/bench-report.sh [--plot DIR] FILE...
#   FILE      benchmark output; its lines "BENCH name value unit baseline ratio"
#             are collected (other lines are ignored). ratio = value / baseline,
#             both measured in the same run.
#   --plot D  also write D/roundtrips.png and D/p99.png (gnuplot).
# scripts/bench.sh calls it with the output of every benchmark it ran.
set -euo pipefail

plot=""
files=()
while [ $# -gt 0 ]; do
  case "$1" in
    --plot) plot=$2; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) files+=("$1") ;;
  esac
  shift
done
[ ${#files[@]} -gt 0 ] || { echo "bench-report: no input files (--help)" >&2; exit 2; }

lines=$(cat "${files[@]}" | awk '$1 == "BENCH" && NF == 6')
if [ -z "$lines" ]; then
  echo "bench-report: no BENCH lines in ${files[*]}" >&2
  exit 1
fi

# What each figure's baseline is, by name pattern.
echo "$lines" | awk '
function what(n) {
  if (n ~ /^framing_/)          return "memchr+memcpy, same stream (64 KiB chunks)"
  if (n ~ /^server_rt_/)        return "blocking C line server + raw client"
  if (n ~ /^server_p99_/)       return "blocking C line server + raw client"
  if (n ~ /^sim_rt_/)           return "bare devwire TCP server (echo)"
  if (n ~ /^sim_vxi11_/)        return "the same SCPI device over a raw socket"
  if (n ~ /^simvs_epoll_/)      return "one-thread epoll line server (own process)"
  if (n ~ /^simvs_blocking_/)   return "thread-per-connection line server (own process)"
  if (n ~ /^loadgen_.*_rt_/)    return "same generator, a thread per connection"
  if (n ~ /^loadgen_.*_cpu_/)   return "epoll server CPU per round trip"
  if (n ~ /_idle_[0-9]+conn_memory$/) return "target for the event-loop core"
  if (n ~ /_idle_[0-9]+conn_p50$/)    return "same client, no idle connections"
  if (n ~ /^sim_inproc_rt_/)    return "bare server, both in one process"
  if (n ~ /^sim_rules_/)        return "same simulator with 10 rules"
  if (n ~ /^engine_rules_/)     return "engine with 10 rules"
  if (n ~ /^props_rt_/)         return "one exact rule, same request and answer (sim process)"
  if (n ~ /^props_engine_/)     return "engine: one exact rule, same request and answer"
  if (n ~ /^telnet_/)           return "TCP client, same server"
  if (n ~ /^proxy_vs_haproxy_/) return "HAProxy, TCP mode, nbthread 1, same device and load"
  if (n ~ /^proxy_/)            return "devwire-sim directly, same script and load"
  if (n ~ /^hostile_vs_big_/)   return "ping next to 100 KB requests the regex rejects at once"
  if (n ~ /^hostile_ping_/)     return "ping alone (no hostile client)"
  if (n ~ /^hostile_engine_/)   return "^a+!$ matching the same 100 KB request"
  if (n ~ /^fleet.*_start_/)    return "start of one device x N (a process per device)"
  if (n ~ /^fleet.*per_device$/) return "RSS of a one-device process"
  if (n ~ /^loops._vs_loops1_/) return "the same 200 devices on --loops 1"
  if (n ~ /^loops._vs_epoll_/)  return "one-thread epoll line server (own process)"
  if (n ~ /^isolation_.*_p99$/) return "ping alone (no hostile Lua next door)"
  if (n ~ /^isolation_.*_ms$/)  return "one ping alone (p50)"
  if (n == "idle_conn_memory")  return "blocking C line server (in-process)"
  if (n ~ /idle_conn_memory$/)  return "target (server process alone)"
  if (n ~ /_p99$/)              return "same load without chaos"
  return ""
}
# framing names come from the table labels: "sentinel \\n" -> sentinel__n
function pretty(n) {
  gsub(/__r_n/, "_crlf", n); gsub(/__n/, "_lf", n); gsub(/__+/, "_", n)
  return n
}
function group(n) {
  if (n ~ /memory|_idle_/) return 6
  if (n ~ /^framing_/) return 1
  if (n ~ /^server_/) return 2
  if (n ~ /^loadgen_|^sim_rt_|^sim_inproc_rt_|^simvs_/) return 3
  if (n ~ /^telnet_/) return 4
  if (n ~ /^sim_rules_|^engine_rules_/) return 5
  if (n ~ /memory/) return 6
  return 7
}
BEGIN {
  printf "%-34s %12s %-12s %12s %7s  %s\n", "figure", "value", "unit", "baseline", "ratio", "baseline is"
  printf "%-34s %12s %-12s %12s %7s  %s\n", "------", "-----", "----", "--------", "-----", "-----------"
}
{ n++; name[n] = pretty($2); val[n] = $3; unit[n] = $4; base[n] = $5; ratio[n] = $6; g[n] = group($2) }
END {
  for (k = 1; k <= 7; k++)
    for (i = 1; i <= n; i++)
      if (g[i] == k)
        printf "%-34s %12s %-12s %12s %6sx  %s\n", name[i], val[i], unit[i], base[i], ratio[i], what(name[i])
}'

[ -n "$plot" ] || exit 0
command -v gnuplot >/dev/null || { echo "bench-report: gnuplot is not installed" >&2; exit 1; }
mkdir -p "$plot"
# One data file per chart: conns, then one column per series ("-" = none).
echo "$lines" | awk -v plotdir="$plot" '
$2 ~ /^(server|sim|telnet)_(rt|p99)_[0-9]+conn$/ {
  split($2, p, "_"); kind = p[1]; fig = p[2]; c = p[3]; sub(/conn$/, "", c)
  conns[c] = 1
  v[fig, kind, c] = $3
  if (kind == "server") v[fig, "baseline", c] = $5
  if (kind == "telnet") v[fig, "tcp", c] = $5
}
# bench_sim_baselines: devwire-sim and both line servers, one epoll generator
$2 ~ /^simvs_(epoll|blocking)_(rt|p99)_[0-9]+conn$/ {
  split($2, p, "_"); base = p[2]; fig = p[3]; c = p[4]; sub(/conn$/, "", c)
  conns[c] = 1
  v[fig, "simvs", c] = $3
  v[fig, base, c] = $5
}
END {
  nc = 0; for (c in conns) cs[++nc] = c + 0
  for (i = 1; i <= nc; i++) for (j = i + 1; j <= nc; j++) if (cs[j] < cs[i]) { t = cs[i]; cs[i] = cs[j]; cs[j] = t }
  split("rt p99", figs, " ")
  for (f = 1; f <= 2; f++) {
    out = plotdir "/" figs[f] ".dat"
    print "# conns devwire-server baseline-server devwire-sim telnet-client tcp-client sim-vs epoll blocking" > out
    for (i = 1; i <= nc; i++) {
      c = cs[i]; line = c
      split("server baseline sim telnet tcp simvs epoll blocking", ks, " ")
      for (k = 1; k <= 8; k++) line = line " " (((figs[f], ks[k], c) in v) ? v[figs[f], ks[k], c] : "-")
      print line > out
    }
    close(out)
  }
}'

names=("" "" "devwire server" "baseline line server" "devwire-sim" "Telnet client"
       "TCP client (Telnet's baseline)" "devwire-sim (epoll generator)"
       "epoll line server (epoll generator)" "blocking line server (epoll generator)")
styles=("" "" "lw 2 pt 7 lc rgb '#1f60c0'" "lw 2 pt 5 dt 2 lc rgb '#202020'"
        "lw 2 pt 9 lc rgb '#d04010'" "lw 2 pt 11 lc rgb '#20a040'" "lw 2 pt 13 dt 3 lc rgb '#808080'"
        "lw 2 pt 6 lc rgb '#d04010'" "lw 2 pt 4 dt 4 lc rgb '#8020a0'" "lw 2 pt 12 dt 5 lc rgb '#a07000'")
for fig in rt p99; do
  if [ "$fig" = rt ]; then
    title="Round trips per second against connection count"; ylabel="round trips / s"
    png=roundtrips.png; yscale="set yrange [0:*]"
  else
    title="p99 latency against connection count"; ylabel="p99 latency (us, log scale)"
    png=p99.png; yscale="set logscale y"
  fi
  # Plot only the series that have figures.
  series=()
  for col in 2 3 4 5 6 7 8 9; do
    if awk -v c="$col" '!/^#/ && $c != "-" {found = 1} END {exit !found}' "$plot/$fig.dat"; then
      series+=("\"$plot/$fig.dat\" using 1:$col with linespoints ${styles[$col]} title \"${names[$col]}\"")
    fi
  done
  [ ${#series[@]} -gt 0 ] || continue
  plotcmd=$(IFS=,; echo "${series[*]}")
  gnuplot <<EOF
set terminal pngcairo size 900,600 font "sans,11"
set output "$plot/$png"
set title "$title"
set xlabel "concurrent connections (log scale)"
set ylabel "$ylabel"
set logscale x 2
set xrange [0.7:800]
set xtics (1, 4, 16, 64, 256, 512)
$yscale
set key below
set grid
set datafile missing "-"
plot $plotcmd
EOF
  echo "bench-report: wrote $plot/$png"
done
