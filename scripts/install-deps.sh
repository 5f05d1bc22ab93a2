#!/usr/bin/env bash
# Install every build and test dependency of devwire from Debian's packages.
# Idempotent: packages already present are left alone; apt-get update runs
# only when something is missing. Usage: scripts/install-deps.sh [--docker]
#   --docker  also install the container tools used by scripts/docker-smoke.sh
#             (podman, runc; catatonit, CNI plugins and iptables for its pods)
set -euo pipefail

pkgs=(build-essential cmake pkg-config clang libclang-rt-dev llvm
      libcjson-dev libtelnet-dev libuv1-dev libcriterion-dev libpcre2-dev libmicrohttpd-dev
      liblua5.4-dev valgrind socat inetutils-telnetd inetutils-telnet gnuplot-nox python3-jsonschema python3-pytest
      python3-venv python3-pip python3-setuptools python3-wheel universal-ctags redis-server
      zip chromium libtirpc-dev python3-pyvisa-py lxi-tools haproxy rpcbind)
runtime_only=0
for arg in "$@"; do
  case "$arg" in
    --docker) pkgs+=(podman runc debootstrap catatonit containernetworking-plugins iptables) ;;
    --build-only) runtime_only=1 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "install-deps: unknown option '$arg'" >&2; exit 2 ;;
  esac
done
if [ "$runtime_only" = 1 ]; then
  # The container build stage needs only what builds and tests the code.
  pkgs=(build-essential cmake pkg-config libcjson-dev libtelnet-dev libuv1-dev libcriterion-dev
        libpcre2-dev libmicrohttpd-dev liblua5.4-dev libtirpc-dev)
fi

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps: this script needs a Debian-based system with apt-get;" >&2
  echo "install-deps: install these by hand: ${pkgs[*]}" >&2
  exit 1
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages already installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: run as root (or install sudo)" >&2; exit 1; }
  sudo=sudo
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
