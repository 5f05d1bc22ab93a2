#!/bin/sh
# Install a devwire build into a temporary prefix, then build tests/consumer/
# main.c outside the tree against it: with CMake (find_package(devwire),
# shared and static) and with pkg-config and the C compiler (shared and
# static), run each program and check what it prints.
# Usage: run.sh BUILD_DIR CONSUMER_SRC_DIR CC PKG_CONFIG SANITIZE(0|1) CMAKE
set -eu
build=$1 src=$2 cc=$3 pkgconf=$4 sanitize=$5 cmake=$6

work=$(mktemp -d "${TMPDIR:-/tmp}/devwire-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

step() { echo "== $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
quiet() { # run a command, show its output only if it fails
  "$@" >"$work/log" 2>&1 || { cat "$work/log" >&2; fail "$*"; }
}

# A sanitizer build's objects need the sanitizer runtimes in the program too.
flags=""
[ "$sanitize" = 1 ] && flags="-fsanitize=address,undefined -fno-sanitize-recover=all"

expected='devwire VERSION
frame: *IDN?
frame: FREQ 1e6
end: DW_EOF
json: {"ok":true}
telnet: DW_OK'
check() { # name program [args...]
  name=$1
  shift
  out=$("$@") || fail "$name exited with status $?"
  got=$(printf '%s\n' "$out" | sed 's/^devwire [0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*$/devwire VERSION/')
  [ "$got" = "$expected" ] || fail "$name printed:
$out"
  echo "$name: ok"
}

step "install $build into $work/prefix"
quiet "$cmake" --install "$build" --prefix "$work/prefix"
for f in include/devwire/devwire.h include/devwire/marshaller.h; do
  [ -f "$work/prefix/$f" ] || fail "$f not installed"
done
pc=$(find "$work/prefix" -name devwire.pc | head -n 1)
[ -n "$pc" ] || fail "devwire.pc not installed"
libdir=$(dirname "$(dirname "$pc")")
for f in libdevwire.a libdevwire.so; do
  [ -e "$libdir/$f" ] || fail "$f not installed in $libdir"
done
[ -f "$libdir/cmake/devwire/devwireConfig.cmake" ] || fail "CMake package config not installed"

step "CMake consumer: find_package(devwire)"
quiet "$cmake" -S "$src/project" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$flags" -DCMAKE_BUILD_TYPE=Debug
quiet "$cmake" --build "$work/cmake"
check "cmake devwire::devwire (shared)" "$work/cmake/consumer_shared"
check "cmake devwire::devwire_static" "$work/cmake/consumer_static"
ldd "$work/cmake/consumer_shared" | grep -q "$libdir/libdevwire.so" ||
  fail "consumer_shared does not load the installed libdevwire.so"

step "pkg-config consumer: $pkgconf --cflags --libs devwire"
PKG_CONFIG_PATH="$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_PATH
cflags=$("$pkgconf" --cflags devwire) || fail "pkg-config --cflags devwire"
libs=$("$pkgconf" --libs devwire) || fail "pkg-config --libs devwire"
echo "cflags: $cflags"
echo "libs: $libs"
# shellcheck disable=SC2086 # flags are word lists
quiet "$cc" $flags "$src/main.c" -o "$work/pc_shared" $cflags $libs
check "pkg-config (shared)" env LD_LIBRARY_PATH="$libdir" "$work/pc_shared"
static_libs=$("$pkgconf" --static --libs devwire | sed 's/-ldevwire/-l:libdevwire.a/')
echo "static libs: $static_libs"
# shellcheck disable=SC2086
quiet "$cc" $flags "$src/main.c" -o "$work/pc_static" $cflags $static_libs
check "pkg-config --static" "$work/pc_static"
echo "all consumers built and ran"
