#!/usr/bin/env bash
# Smoke test of the devwire-sim container image, for real:
#   1. makes sure the base image debian:bookworm-slim exists
#      (scripts/make-base-image.sh: pulls it, or builds it with debootstrap),
#   2. checks that a container can start at all,
#   3. builds the image from the Dockerfile,
#   4. starts a simulator container serving the SCPI signal generator example
#      on 127.0.0.1 (a free port), asks it *IDN? with devwire-sim's own client
#      and checks the reply,
#   5. checks the container's health status, stops it (a clean exit on
#      SIGTERM is required) and removes it,
#   6. serves the VXI-11 example on a network of the container's own, its
#      portmapper on port 111 as uid 10001, and asks the portmapper through
#      the published port (skipped with a message where ports cannot be
#      published),
#   7. with podman: plays deploy/kubernetes.yaml (podman kube play, the
#      image under a tag of its own, each instrument's port published on
#      127.0.0.1 through a free hostPort), asks every instrument, checks the
#      probe and the security context, and plays it down (skipped with a
#      message where podman cannot run a pod).
# Uses `docker` when a Docker engine answers `docker info`, else `podman`.
#
# Usage: scripts/docker-smoke.sh
# Environment:
#   DW_IMAGE=devwire-sim:latest  name of the image to build
#   DW_RUN_TESTS=1               run the test suites inside the image build
#   DW_CLIENT=local|container    where the client runs: `local` builds
#       devwire-sim in build/docker-smoke and talks across the container
#       boundary; `container` runs the client inside the simulator's
#       container. Default: local when cmake and the -dev packages are
#       present, else container.
# Exit status: 0 passed; 77 skipped (no container tool can start a
# container here); anything else failed (build, start, reply or health).
set -euo pipefail
cd "$(dirname "$0")/.."

SKIP=77
image="${DW_IMAGE:-devwire-sim:latest}"
base=debian:bookworm-slim
example=sg.json
request='*IDN?'
max_added_mb=30

say() { echo "docker-smoke: $*"; }
fail() { echo "docker-smoke: FAILED: $*" >&2; exit 1; }
skip() { echo "docker-smoke: SKIPPED: $*" >&2; exit "$SKIP"; }

# ---- container tool ---------------------------------------------------------
tool=""
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  tool=docker
elif command -v podman >/dev/null 2>&1; then
  tool=podman
else
  skip "no container tool: no Docker engine answers and podman is not installed (scripts/install-deps.sh --docker installs podman)"
fi

tmp="$(mktemp -d)"
containers=()
kube_yaml="" kube_tag=""
cleanup() {
  local c
  for c in "${containers[@]}"; do ctr rm -f "$c" >/dev/null 2>&1 || true; done
  [ -z "$kube_yaml" ] || ctr kube down "$kube_yaml" >/dev/null 2>&1 || true
  [ -z "$kube_tag" ] || ctr untag "$image" "$kube_tag" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# ctr runs the container tool with the options this machine needs (chosen below).
global_opts=()
ctr() { "$tool" "${global_opts[@]}" "$@"; }

say "container tool: $tool ($("$tool" --version 2>/dev/null | head -n 1))"

# ---- base image -------------------------------------------------------------
if ! "$tool" image inspect "$base" >/dev/null 2>&1; then
  say "base image $base missing: making it (scripts/make-base-image.sh)"
  scripts/make-base-image.sh --tool "$tool" || fail "could not make the base image $base"
fi

# ---- can a container start here at all? -------------------------------------
# podman in a container or VM without systemd often needs runc, cgroupfs and
# no default ulimits; try the plain configuration first, then that one.
try_start() { ctr run --rm --network=host "$base" true >"$tmp/start.log" 2>&1; }
if ! try_start; then
  started=0
  if [ "$tool" = podman ]; then
    printf '[containers]\ndefault_ulimits = []\n' >"$tmp/containers.conf"
    export CONTAINERS_CONF="$tmp/containers.conf"
    global_opts=(--cgroup-manager cgroupfs)
    command -v runc >/dev/null 2>&1 && global_opts=(--runtime runc "${global_opts[@]}")
    if try_start; then
      started=1
      say "podman runs containers with: ${global_opts[*]} and CONTAINERS_CONF default_ulimits = []"
    fi
  fi
  if [ "$started" = 0 ]; then
    sed 's/^/    /' "$tmp/start.log" >&2
    skip "$tool cannot start a container on this machine (error above)"
  fi
fi

# ---- build ------------------------------------------------------------------
build_opts=(--build-arg "RUN_TESTS=${DW_RUN_TESTS:-0}" --build-arg JOBS=2 -t "$image")
# HEALTHCHECK is part of the Docker image format only; chroot isolation
# builds without needing a container runtime inside the build.
[ "$tool" = podman ] && build_opts+=(--format docker --isolation=chroot)
say "building $image"
if ! ctr build "${build_opts[@]}" . >"$tmp/build.log" 2>&1; then
  tail -n 60 "$tmp/build.log" >&2
  fail "image build failed (last lines above)"
fi

size_of() { ctr image inspect --format '{{.Size}}' "$1"; }
base_bytes="$(size_of "$base")"
image_bytes="$(size_of "$image")"
added_bytes=$((image_bytes - base_bytes))
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }
say "sizes: $base $(mb "$base_bytes"); $image $(mb "$image_bytes"); added by devwire $(mb "$added_bytes")"
[ "$added_bytes" -lt $((max_added_mb * 1000000)) ] ||
  fail "devwire adds $(mb "$added_bytes") to the base image; the target is under $max_added_mb MB"

# ---- client -----------------------------------------------------------------
client="${DW_CLIENT:-}"
if [ -z "$client" ]; then
  client=container
  if command -v cmake >/dev/null 2>&1 && command -v pkg-config >/dev/null 2>&1 &&
     pkg-config --exists libcjson libtelnet 2>/dev/null; then
    client=local
  fi
fi
if [ "$client" = local ]; then
  say "building the client: devwire-sim in build/docker-smoke"
  if ! { cmake -S . -B build/docker-smoke -DDW_BUILD_TESTS=OFF -DDW_BUILD_BENCH=OFF &&
         cmake --build build/docker-smoke -j2 --target devwire-sim; } >"$tmp/client.log" 2>&1; then
    tail -n 40 "$tmp/client.log" >&2
    fail "could not build devwire-sim locally (set DW_CLIENT=container to use the image's)"
  fi
  sim_local="$(find build/docker-smoke -type f -name devwire-sim -perm -u+x | head -n 1)"
  [ -n "$sim_local" ] || fail "devwire-sim not found under build/docker-smoke"
fi

# ---- start the simulator ----------------------------------------------------
# A port nobody listens on, below the kernel's ephemeral range (where
# outgoing connections take their local ports, so a bind can still fail).
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
  local p lo=10000 hi=32768
  if [ -r /proc/sys/net/ipv4/ip_local_port_range ]; then
    read -r eph _ </proc/sys/net/ipv4/ip_local_port_range
    [ "$eph" -gt $((lo + 1000)) ] && hi=$eph
  fi
  for _ in $(seq 1 50); do
    p=$((lo + RANDOM % (hi - lo)))
    if port_free "$p"; then echo "$p"; return 0; fi
  done
  return 1
}

start_sim() { # port -> container id on stdout
  local port=$1
  local opts=(-d --network=host -e "DEVWIRE_PROBE=127.0.0.1:$port")
  # Docker runs the health check on its own schedule; make it quick.
  [ "$tool" = docker ] && opts+=(--health-interval=2s --health-start-period=2s)
  # podman without systemd complains on stderr that it cannot set up its
  # health check timer; the check itself works (it is run by hand below).
  ctr run "${opts[@]}" "$image" \
    --script "/usr/share/devwire/examples/$example" --listen "127.0.0.1:$port" 2>"$tmp/run.log"
}

running() { [ "$(ctr inspect --format '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }

cid="" port=""
for _ in 1 2 3; do
  port="$(pick_port)" || fail "no free port found on 127.0.0.1"
  say "starting $image with $example on 127.0.0.1:$port"
  cid="$(start_sim "$port")" || { cat "$tmp/run.log" >&2; fail "could not start the simulator container"; }
  containers+=("$cid")
  # Wait until it says it listens (it prints "listening on HOST:PORT").
  for _ in $(seq 1 100); do
    ctr logs "$cid" 2>&1 | grep -q 'listening on' && break
    running "$cid" || break
    sleep 0.2
  done
  if ctr logs "$cid" 2>&1 | grep -q 'listening on' && running "$cid"; then break; fi
  state="$(ctr inspect --format '{{.State.Status}} (exit code {{.State.ExitCode}})' "$cid" 2>&1 || true)"
  echo "    container $cid: $state; its output:" >&2
  ctr logs "$cid" 2>&1 | sed 's/^/    /' >&2
  # Exit status 3: cannot serve there (address in use): try another port.
  if [ "$(ctr inspect --format '{{.State.ExitCode}}' "$cid" 2>/dev/null)" = 3 ] ||
     ! port_free "$port"; then
    say "port $port is in use; trying another"
    continue
  fi
  fail "the simulator did not start listening (container state and output above)"
done
running "$cid" || fail "the simulator is not running"
say "simulator: $(ctr logs "$cid" 2>&1 | grep -m1 'listening on')"

# ---- talk to it -------------------------------------------------------------
ask() { # request -> reply on stdout
  if [ "$client" = local ]; then
    "$sim_local" --ask "127.0.0.1:$port" --script "sim/examples/$example" "$1"
  else
    ctr exec "$cid" devwire-sim --ask "127.0.0.1:$port" \
      --script "/usr/share/devwire/examples/$example" "$1"
  fi
}
say "asking $request ($client client)"
reply="$(ask "$request")" || fail "the client got no reply to $request"
say "reply: $reply"
# The example's identity (manufacturer,model,serial,firmware): its "idn"
# (the SCPI profile answers *IDN? with it), else the reply of a *IDN? rule.
expected="$(python3 - "sim/examples/$example" <<'PY'
import json, sys
script = json.load(open(sys.argv[1]))
idn = script.get("idn")
if idn is None:
    idn = next((r["reply"] for r in script.get("rules", [])
                if r.get("when") == "*IDN?" and isinstance(r.get("reply"), str)), "")
print(idn)
PY
)"
[ -n "$expected" ] || fail "cannot find the *IDN? reply in sim/examples/$example"
[ "$reply" = "$expected" ] || fail "reply to $request is '$reply', expected '$expected'"

# ---- health -----------------------------------------------------------------
health_status() {
  ctr inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$1" 2>/dev/null
}
if [ "$tool" = podman ]; then
  out="$(ctr healthcheck run "$cid" 2>&1)" || fail "health check failed: $out"
  say "health check: ${out:-healthy}"
else
  for _ in $(seq 1 60); do
    [ "$(health_status "$cid")" = healthy ] && break
    sleep 0.5
  done
fi
status="$(health_status "$cid")"
say "health status: $status"
[ "$status" = healthy ] || fail "health status is '$status', expected healthy"
# The probe must also be able to say no: nothing listens on port 1.
if ctr exec "$cid" devwire-sim --probe 127.0.0.1:1 >/dev/null 2>&1; then
  fail "devwire-sim --probe reports a server on 127.0.0.1:1, where none listens"
fi

# ---- stop -------------------------------------------------------------------
say "stopping the simulator"
ctr stop -t 10 "$cid" >/dev/null 2>"$tmp/stop.log" ||
  { cat "$tmp/stop.log" >&2; fail "could not stop the simulator container"; }
code="$(ctr inspect --format '{{.State.ExitCode}}' "$cid")"
ctr logs "$cid" 2>&1 | tail -n 8 | sed 's/^/    /'
[ "$code" = 0 ] || fail "the simulator exited with status $code on SIGTERM, expected 0"
# ---- a VXI-11 instrument: port 111 as uid 10001, published ------------------
# The image's VXI-11 example on a network of the container's own (the sysctl
# makes 111 unprivileged there), its portmapper published on a free host
# port: a PMAPPROC_GETPORT through it must name the core channel (9009), and
# the core channel must answer through its own published port.
getport() { # host port -> the port the portmapper gives for the VXI-11 core program over TCP
  python3 - "$1" "$2" <<'PY'
import socket, struct, sys
call = struct.pack(">14I", 1, 0, 2, 100000, 2, 3, 0, 0, 0, 0, 0x0607AF, 1, 6, 0)
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as s:
    s.sendall(struct.pack(">I", 0x80000000 | len(call)) + call)
    s.settimeout(5)
    data = b""
    while len(data) < 4 + 28:
        chunk = s.recv(64)
        if not chunk:
            break
        data += chunk
xid, mtype, stat, _, _, accept, port = struct.unpack(">7I", data[4:32])
if (xid, mtype, stat, accept) != (1, 1, 0, 0):
    sys.exit("not an accepted reply: %r" % data)
print(port)
PY
}
vxi11_note=""
vxi11_smoke() {
  local pm core ab vid
  pm="$(pick_port)" && core="$(pick_port)" && ab="$(pick_port)" || fail "no free port found on 127.0.0.1"
  if ! vid="$(ctr run -d --sysctl net.ipv4.ip_unprivileged_port_start=111 \
        -p "127.0.0.1:$pm:111/tcp" -p "127.0.0.1:$pm:111/udp" \
        -p "127.0.0.1:$core:9009" -p "127.0.0.1:$ab:9010" \
        -e DEVWIRE_PROBE=127.0.0.1:9009 "$image" \
        --script /usr/share/devwire/examples/sg-vxi11.json --listen 0.0.0.0:9009 \
        --abort-port 9010 2>"$tmp/vxi11.log")"; then
    sed 's/^/    /' "$tmp/vxi11.log" >&2
    vxi11_note="VXI-11 skipped: $tool cannot publish ports from a network of the container's own here (error above)"
    return 0
  fi
  containers+=("$vid")
  for _ in $(seq 1 100); do
    ctr logs "$vid" 2>&1 | grep -q 'vxi11 on' && break
    running "$vid" || break
    sleep 0.2
  done
  if ! ctr logs "$vid" 2>&1 | grep -q 'portmapper 0.0.0.0:111)'; then
    ctr logs "$vid" 2>&1 | sed 's/^/    /' >&2
    fail "VXI-11: the simulator did not serve the portmapper on 111 as uid 10001 (output above)"
  fi
  local got=""
  for _ in $(seq 1 25); do
    got="$(getport 127.0.0.1 "$pm" 2>"$tmp/getport.log")" && break
    sleep 0.2
  done
  [ "$got" = 9009 ] || { cat "$tmp/getport.log" >&2; fail "VXI-11: GETPORT through 127.0.0.1:$pm gave '$got', expected 9009"; }
  ctr exec "$vid" devwire-sim --probe 127.0.0.1:9009 --timeout 2000 >/dev/null ||
    fail "VXI-11: the health check's probe fails in the container"
  ctr stop -t 10 "$vid" >/dev/null 2>&1 || fail "could not stop the VXI-11 container"
  [ "$(ctr inspect --format '{{.State.ExitCode}}' "$vid")" = 0 ] ||
    fail "VXI-11: the simulator did not exit 0 on SIGTERM"
  vxi11_note="VXI-11 passed: port 111 as uid 10001, GETPORT through the published port named 9009"
}
vxi11_smoke
say "$vxi11_note"

# ---- a fleet on Kubernetes: podman kube play deploy/kubernetes.yaml ---------
# The manifest as it is, but for: the image (this run's, under a tag of its
# own), names of its own (other runs may play it at the same time), and each
# instrument's port published on 127.0.0.1 (hostPort, a free port each).
kube_note=""
kube_smoke() {
  if [ "$tool" != podman ]; then
    kube_note="kube play skipped: it needs podman (the tool here is $tool)"
    return 0
  fi
  local tag="localhost/devwire-sim:smoke-$$" suffix="smoke-$$"
  ctr tag "$image" "$tag" || fail "could not tag $image as $tag"
  kube_tag=$tag
  # Can podman run a pod here at all (catatonit, CNI plugins, iptables)?
  local pp
  pp="$(pick_port)" || fail "no free port found on 127.0.0.1"
  if ! ctr pod create --name "devwire-probe-$suffix" -p "127.0.0.1:$pp:5025" >"$tmp/pod.log" 2>&1 ||
     ! ctr pod start "devwire-probe-$suffix" >>"$tmp/pod.log" 2>&1; then
    ctr pod rm -f "devwire-probe-$suffix" >/dev/null 2>&1 || true
    sed 's/^/    /' "$tmp/pod.log" >&2
    kube_note="kube play skipped: podman cannot run a pod here (error above; scripts/install-deps.sh --docker installs catatonit, containernetworking-plugins and iptables)"
    return 0
  fi
  ctr pod rm -f "devwire-probe-$suffix" >/dev/null 2>&1 || true
  local ports=() p
  for _ in 1 2 3 4 5 6; do
    p="$(pick_port)" || fail "no free port found on 127.0.0.1"
    [[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
  done
  awk -v tag="$tag" -v sfx="$suffix" -v ports="${ports[*]}" '
    BEGIN { np = split(ports, port, " "); k = 0 }
    /^ *image: devwire-sim:latest$/ { sub(/devwire-sim:latest/, tag) }
    /^  name: devwire-fleet(-scripts)?$/ || /^ *name: devwire-fleet-scripts$/ { $0 = $0 "-" sfx }
    { print }
    /^ *containerPort: [0-9]+$/ {
      ind = $0; sub(/[^ ].*/, "", ind)
      print ind "hostIP: 127.0.0.1"; print ind "hostPort: " port[++k]
    }' deploy/kubernetes.yaml >"$tmp/kube.yaml"
  kube_yaml="$tmp/kube.yaml"
  say "kube play: deploy/kubernetes.yaml with $tag, instruments on 127.0.0.1 ports ${ports[*]:0:4}"
  if ! ctr kube play "$kube_yaml" >"$tmp/kube.log" 2>&1; then
    sed 's/^/    /' "$tmp/kube.log" >&2
    fail "podman kube play deploy/kubernetes.yaml failed (output above)"
  fi
  local pod="devwire-fleet-$suffix-pod-0" sim
  sim="$(ctr ps -a --filter "pod=$pod" --format '{{.Names}}' | grep -- '-sim$' | head -n 1)"
  [ -n "$sim" ] || fail "kube play made no simulator container in pod $pod"
  # The instruments: request, and the reply the bundled scripts give.
  local names=(sg psu tempctl pdu) scripts=(sg psu tempctl pdu)
  local requests=('*IDN?' '*IDN?' '*IDN?' '{"cmd": "identify"}')
  local want=('ACME,SG-1000,0001,1.0.3' 'ACME,PS-3005,0042,2.1' 'ACME,TC-10,0007,3.2' '"model":"PD-4"')
  local i reply
  for i in 0 1 2 3; do
    reply=""
    for _ in $(seq 1 100); do
      reply="$(kube_ask "${ports[$i]}" "${scripts[$i]}" "${requests[$i]}" 2>"$tmp/ask.log")" && break
      running "$sim" || break
      sleep 0.2
    done
    if [[ "$reply" != *"${want[$i]}"* ]]; then
      cat "$tmp/ask.log" >&2
      ctr logs "$sim" 2>&1 | tail -n 20 | sed 's/^/    /' >&2
      fail "kube: ${names[$i]} on 127.0.0.1:${ports[$i]} answered '$reply' to ${requests[$i]}, expected '${want[$i]}'"
    fi
    say "kube: ${names[$i]} (127.0.0.1:${ports[$i]}) answered ${requests[$i]} with $reply"
  done
  # The manifest's probe, and its security context as the engine applied it.
  ctr exec "$sim" devwire-sim --probe 127.0.0.1:5028 --timeout 2000 ||
    fail "kube: the manifest's probe (devwire-sim --probe 127.0.0.1:5028) fails in the pod"
  [ "$(ctr exec "$sim" id -u)" = 10001 ] || fail "kube: the simulator does not run as uid 10001"
  if ctr exec "$sim" sh -c ': >/devwire-write-test' 2>/dev/null; then
    fail "kube: the root file system is writable"
  fi
  [ "$(ctr exec "$sim" sh -c 'grep CapEff /proc/self/status' | awk '{print $2}')" = 0000000000000000 ] ||
    fail "kube: the simulator has capabilities"
  ctr kube down "$kube_yaml" >"$tmp/kube.log" 2>&1 || { cat "$tmp/kube.log" >&2; fail "podman kube down failed"; }
  kube_yaml=""
  ! ctr pod exists "$pod" 2>/dev/null || fail "kube down left pod $pod"
  kube_note="kube play passed: 4 instruments answered through hostPort, probe, non-root, read-only, no capabilities"
}
kube_ask() { # port script request -> reply
  if [ "$client" = local ]; then
    "$sim_local" --ask "127.0.0.1:$1" --script "sim/examples/$2.json" "$3"
  else
    ctr run --rm --network=host "$image" --ask "127.0.0.1:$1" \
      --script "/usr/share/devwire/examples/$2.json" "$3"
  fi
}
kube_smoke
say "$kube_note"

say "PASSED ($image: $(mb "$image_bytes"), base $(mb "$base_bytes"), added $(mb "$added_bytes"))"
