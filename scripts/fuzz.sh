#!/usr/bin/env bash
# Builds and runs vswitch's coverage-guided fuzz targets (fuzz/, libFuzzer
# through the libfuzzer-sys crate, on stable Rust). docs/dev/fuzzing.md
# says what each target checks.
#
#   scripts/fuzz.sh [--time S | --runs N] [--merge] [--jobs-nice N] [target...]
#
#   --time S    run each target S seconds (default 20)
#   --runs N    run each target N inputs instead
#   --merge     afterwards, fold the new inputs into the corpus kept in
#               the repository (fuzz/corpus/TARGET), minimised (set cover)
#   target...   default: every target in fuzz/fuzz_targets/
#
# Each target reads fuzz/corpus/TARGET and writes what it finds to
# fuzz/target/corpus/TARGET (not committed; kept between runs). A crash
# (a panic or a broken invariant) stops the run: the input is saved under
# fuzz/artifacts/TARGET/ and the script exits non-zero; replay it with
#   fuzz/target/x86_64-unknown-linux-gnu/release/TARGET fuzz/artifacts/TARGET/crash-...
# Targets run one at a time, under `nice -n 19`.
#
# Needs cargo and a C++ compiler (libFuzzer is C++; scripts/install-deps.sh
# installs g++).
set -euo pipefail
cd "$(dirname "$0")/.."

time_s=20
runs=
merge=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time) time_s=$2; runs=; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --merge) merge=1; shift ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz: unknown option $1 (see $0 --help)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
all=()
for f in fuzz/fuzz_targets/*.rs; do all+=("$(basename "$f" .rs)"); done
if [ ${#targets[@]} -eq 0 ]; then targets=("${all[@]}"); fi
for t in "${targets[@]}"; do
  if [ ! -f "fuzz/fuzz_targets/$t.rs" ]; then
    echo "fuzz: no target $t (targets: ${all[*]})" >&2
    exit 2
  fi
done
command -v c++ >/dev/null || command -v g++ >/dev/null || {
  echo "fuzz: no C++ compiler (libFuzzer is C++): install g++ (scripts/install-deps.sh)" >&2
  exit 1
}

triple=x86_64-unknown-linux-gnu
# Coverage instrumentation as cargo-fuzz sets it, without nightly-only
# flags; `--cfg fuzzing` is what libfuzzer-sys and `cfg(fuzzing)` code test.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
echo "== fuzz: build (${targets[*]})"
# --target keeps RUSTFLAGS off build scripts and proc macros.
nice -n 19 cargo build --locked --release --manifest-path fuzz/Cargo.toml \
  --target "$triple" $(printf -- '--bin %s ' "${targets[@]}")
bindir=fuzz/target/$triple/release
# The port table is rebuilt whole on each change (two 128 KiB arrays);
# glibc would mmap and unmap each one, and the page faults took 3/4 of
# frame_decide's time. Keep such blocks on the heap instead.
export MALLOC_MMAP_THRESHOLD_=16777216 MALLOC_TRIM_THRESHOLD_=268435456

for t in "${targets[@]}"; do
  found=fuzz/target/corpus/$t
  mkdir -p "$found" "fuzz/corpus/$t" "fuzz/artifacts/$t"
  limit=(-max_total_time="$time_s")
  [ -n "$runs" ] && limit=(-runs="$runs")
  echo "== fuzz: $t (${limit[*]})"
  # Options a target needs (e.g. -max_len) are in fuzz/options/TARGET.
  opts=()
  [ -f "fuzz/options/$t" ] && read -ra opts < "fuzz/options/$t"
  nice -n 19 "$bindir/$t" "${limit[@]}" "${opts[@]}" -print_final_stats=1 \
    -artifact_prefix="fuzz/artifacts/$t/" "$found" "fuzz/corpus/$t"
  if [ "$merge" = 1 ]; then
    echo "== fuzz: $t: merge into fuzz/corpus/$t"
    tmp=$(mktemp -d)
    nice -n 19 "$bindir/$t" "${opts[@]}" -set_cover_merge=1 "$tmp" "fuzz/corpus/$t" "$found" 2>&1 | tail -2
    rm -rf "fuzz/corpus/$t"
    chmod 755 "$tmp"
    mv "$tmp" "fuzz/corpus/$t"
  fi
done
echo "== fuzz: no crash in ${targets[*]}"
