#!/bin/bash -eu
# Builds every cargo-fuzz target with the engine's toolchain and sanitizer (nightly,
# address sanitizer: cargo-fuzz's default) and copies each binary to $OUT with its
# dictionary and a zip of its seed corpus, the names ClusterFuzzLite looks for.
# Run locally (with RUSTC_BOOTSTRAP=1 on a stable toolchain) as:
#   SRC=$PWD/.. OUT=/tmp/cflite-out .clusterfuzzlite/build.sh
cd "$SRC/netconform/fuzz"
../ci/fuzz-locked
# ci/fuzz-build: with the Netstack3 stack targets (their crates need --ignore-rust-version).
../ci/fuzz-build -O --debug-assertions
release="target/x86_64-unknown-linux-gnu/release"
for src in fuzz_targets/*.rs; do
  t="$(basename "$src" .rs)"
  cp "$release/$t" "$OUT/$t"
  [ -f "../corpora/$t.dict" ] && cp "../corpora/$t.dict" "$OUT/$t.dict"
  if [ -d "../corpora/$t" ]; then
    (cd "../corpora/$t" && zip -q -j "$OUT/${t}_seed_corpus.zip" $(ls | grep -v '\.md$'))
  fi
  printf '[libfuzzer]\nmax_len = 2048\n' >"$OUT/$t.options"
done
