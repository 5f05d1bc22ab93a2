#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build: every fuzz/fuzz_<target>.c becomes
# $OUT/fuzz_<target>, with its seed corpus (fuzz_<target>_seed_corpus.zip)
# and dictionary (fuzz_<target>.dict). Uses the environment's CC, CFLAGS and
# LIB_FUZZING_ENGINE unchanged; the same targets run under scripts/fuzz.sh.
src=${SRC:?}/devwire
deps=${WORK:-/tmp}/devwire-deps
mkdir -p "$deps/lib/pkgconfig" "$deps/include/cjson"

# cJSON and libtelnet from source ($SRC/cJSON, $SRC/libtelnet), built with the
# fuzzing flags, unless the system already has them (a local trial run).
if [ -d "$SRC/cJSON" ]; then
  $CC $CFLAGS -c "$SRC/cJSON/cJSON.c" -o "$deps/cJSON.o"
  ar rcs "$deps/lib/libcjson.a" "$deps/cJSON.o"
  cp "$SRC/cJSON/cJSON.h" "$deps/include/cjson/"
  printf 'prefix=%s\nName: libcjson\nDescription: cJSON\nVersion: 1.7.15\nLibs: -L${prefix}/lib -lcjson\nCflags: -I${prefix}/include\n' \
    "$deps" >"$deps/lib/pkgconfig/libcjson.pc"
fi
if [ -d "$SRC/libtelnet" ]; then
  $CC $CFLAGS -c "$SRC/libtelnet/libtelnet.c" -I"$SRC/libtelnet" -o "$deps/libtelnet.o"
  ar rcs "$deps/lib/libtelnet.a" "$deps/libtelnet.o"
  cp "$SRC/libtelnet/libtelnet.h" "$deps/include/"
  printf 'prefix=%s\nName: libtelnet\nDescription: libtelnet\nVersion: 0.23\nLibs: -L${prefix}/lib -ltelnet\nCflags: -I${prefix}/include\n' \
    "$deps" >"$deps/lib/pkgconfig/libtelnet.pc"
fi
export PKG_CONFIG_PATH="$deps/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

build=${WORK:-/tmp}/devwire-build
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DDW_FUZZ=ON \
  -DDW_FUZZ_ENGINE="$LIB_FUZZING_ENGINE" -DDW_BUILD_TESTS=OFF -DDW_BUILD_BENCH=OFF
targets=()
for f in "$src"/fuzz/fuzz_*.c; do
  t=$(basename "$f" .c)
  targets+=(--target "$t")
done
cmake --build "$build" -j"$(nproc)" "${targets[@]}"

for f in "$src"/fuzz/fuzz_*.c; do
  t=$(basename "$f" .c)
  short=${t#fuzz_}
  [ -x "$build/fuzz/$t" ] || continue
  cp "$build/fuzz/$t" "$OUT/"
  if [ -d "$src/fuzz/corpus/$short" ]; then
    (cd "$src/fuzz/corpus/$short" && zip -q -r "$OUT/${t}_seed_corpus.zip" .)
  fi
  [ -f "$src/fuzz/dict/$short.dict" ] && cp "$src/fuzz/dict/$short.dict" "$OUT/$t.dict"
  printf '[libfuzzer]\nmax_len = 4096\n' >"$OUT/$t.options"
done
