#!/usr/bin/env bash
# Run .clusterfuzzlite/build.sh the way OSS-Fuzz and ClusterFuzzLite run it
# (their `compile` step) and replay every target it builds over its seed
# corpus, so a change that breaks the ClusterFuzzLite build, or an input of
# the corpus that crashes a target built that way, fails here first.
#
# In a temporary directory: $SRC/devwire (this checkout), $OUT, $WORK; the
# environment of the address sanitizer build with libFuzzer:
#   CC=clang CXX=clang++ SANITIZER=address FUZZING_ENGINE=libfuzzer
#   CFLAGS="-O1 -fno-omit-frame-pointer -gline-tables-only
#           -fsanitize=address -fsanitize-address-use-after-scope
#           -fsanitize=fuzzer-no-link"
#   LIB_FUZZING_ENGINE=-fsanitize=fuzzer
# cJSON and libtelnet come from the system's packages here (the Dockerfile
# of .clusterfuzzlite clones them into $SRC for the real build).
# Then for each $OUT/fuzz_<t>: its seed corpus (fuzz_<t>_seed_corpus.zip)
# unpacked, and `$OUT/fuzz_<t> -runs=0 -dict=... CORPUS` (every input once);
# a target without AddressSanitizer (the CFLAGS not used) fails too.
#
# Usage: scripts/cflite-check.sh [--keep]   (--keep: leave the directory)
# Exit status: 0 passed; 77 skipped (no clang with libFuzzer); else failed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
keep=0
[ "${1:-}" = --keep ] && keep=1

say() { echo "cflite-check: $*"; }
command -v clang >/dev/null 2>&1 || { say "SKIPPED: clang is not installed"; exit 77; }
command -v zip >/dev/null 2>&1 ||
  { say "SKIPPED: zip is not installed (build.sh packs the seed corpora; scripts/install-deps.sh installs it)"; exit 77; }
command -v unzip >/dev/null 2>&1 || command -v python3 >/dev/null 2>&1 ||
  { say "SKIPPED: neither unzip nor python3 to unpack the seed corpora"; exit 77; }
if ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
  clang -x c -fsanitize=fuzzer,address -o /dev/null - >/dev/null 2>&1; then
  say "SKIPPED: clang cannot link libFuzzer here (libclang-rt-dev missing?)"
  exit 77
fi

tmp=$(mktemp -d)
cleanup() { if [ "$keep" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi; }
trap cleanup EXIT
mkdir -p "$tmp/src" "$tmp/out" "$tmp/work"
ln -s "$root" "$tmp/src/devwire"

export SRC="$tmp/src" OUT="$tmp/out" WORK="$tmp/work"
export CC=clang CXX=clang++ SANITIZER=address FUZZING_ENGINE=libfuzzer ARCHITECTURE=x86_64
export CFLAGS="-O1 -fno-omit-frame-pointer -gline-tables-only -fsanitize=address -fsanitize-address-use-after-scope -fsanitize=fuzzer-no-link"
export CXXFLAGS="$CFLAGS"
export LIB_FUZZING_ENGINE="-fsanitize=fuzzer"
start=$SECONDS
say "building with .clusterfuzzlite/build.sh (CC=$CC, LIB_FUZZING_ENGINE=$LIB_FUZZING_ENGINE)"
if ! bash -eu "$root/.clusterfuzzlite/build.sh" >"$tmp/build.log" 2>&1; then
  tail -n 40 "$tmp/build.log" >&2
  say "FAILED: .clusterfuzzlite/build.sh (last lines above)"
  exit 1
fi
say "built in $((SECONDS - start)) s"

unpack() { # zip dir
  if command -v unzip >/dev/null 2>&1; then
    unzip -q -o "$1" -d "$2"
  else
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2"
  fi
}

status=0
ran=0
for src in "$root"/fuzz/fuzz_*.c; do
  t=$(basename "$src" .c)
  bin="$OUT/$t"
  if [ ! -x "$bin" ]; then
    say "FAILED: build.sh made no $t (fuzz/$t.c)"
    status=1
    continue
  fi
  if command -v nm >/dev/null 2>&1 && ! nm "$bin" 2>/dev/null | grep ' __asan_init$' >/dev/null; then
    say "FAILED: $t was built without AddressSanitizer (CFLAGS not used?)"
    status=1
    continue
  fi
  corpus="$tmp/corpus/$t"
  mkdir -p "$corpus"
  [ -f "$OUT/${t}_seed_corpus.zip" ] && unpack "$OUT/${t}_seed_corpus.zip" "$corpus"
  n=$(find "$corpus" -type f | wc -l)
  args=(-runs=0)
  [ -f "$OUT/$t.dict" ] && args+=("-dict=$OUT/$t.dict")
  if "$bin" "${args[@]}" "$corpus" >"$tmp/$t.log" 2>&1; then
    say "$t: $n seed input(s) replayed"
    ran=$((ran + 1))
  else
    tail -n 30 "$tmp/$t.log" >&2
    say "FAILED: $t on its seed corpus (last lines above)"
    status=1
  fi
done
[ "$status" = 0 ] && say "PASSED: $ran targets built by .clusterfuzzlite/build.sh, each over its seed corpus ($((SECONDS - start)) s)"
exit $status
