#!/usr/bin/env bash
# Fuzzes one libFuzzer target: builds it with clang, AddressSanitizer and UBSan in its own
# build tree, seeds it from the fuzz_corpus folder next to its source (NAME_fuzz_corpus for
# a folder's second fuzzer NAME_fuzzer), and runs it.
#
#   tools/dev/fuzz.sh policy_document_fuzzer [SECONDS]     (./fleetcore fuzz ... does the same)
#   tools/dev/fuzz.sh --build-only TARGET...                builds, does not fuzz
#
# New interesting inputs go to BUILD/corpus/TARGET; a crash is saved as
# BUILD/crashes/TARGET/crash-* and the script fails. Commit a reproducer into fuzz_corpus/
# once fixed, so the regression test replays it forever.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${FLEETCORE_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}

# OSS-Fuzz's flags: -O1 with line tables only (symbolized reports for a third less compile
# time than -O2 -g), and assertions on, so the libraries' own checks (nlohmann's, Abseil's)
# catch misuse as a crash. FLEETCORE_FUZZ_OPT=-O0 (the test suite's short runs, in their own
# tree) compiles in less than half the time and runs each input slower.
configure() {
  CXX=clang++ cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=${FLEETCORE_FUZZ_OPT:--O1} -gline-tables-only" \
    -DFLEETCORE_FUZZ=ON >/dev/null
}

if [[ "${1:-}" == --build-only ]]; then
  shift
  configure
  cmake --build "$BUILD" --target "$@" >/dev/null
  exit 0
fi

target=${1:?usage: fuzz.sh TARGET [SECONDS] | fuzz.sh --build-only TARGET...}
seconds=${2:-60}

source_file=$(find "$ROOT/common" "$ROOT/services" "$ROOT/tools" -name "$target.cc" | head -n 1)
[[ -n "$source_file" ]] || { echo "fuzz.sh: no source $target.cc" >&2; exit 2; }
# A folder's second fuzzer has its own seeds: NAME_fuzz_corpus for NAME_fuzzer.
seeds="$(dirname "$source_file")/${target%_fuzzer}_fuzz_corpus"
[[ -d "$seeds" ]] || seeds="$(dirname "$source_file")/fuzz_corpus"

# The suite builds the tree once beforehand (FLEETCORE_FUZZ_PREBUILT), so parallel fuzzers
# never configure the same folder at the same time.
if [[ -z "${FLEETCORE_FUZZ_PREBUILT:-}" ]]; then
  configure
  cmake --build "$BUILD" --target "$target" >/dev/null
fi
binary=$(find "$BUILD" -type f -name "$target" -perm -u+x | head -n 1)
mkdir -p "$BUILD/corpus/$target" "$BUILD/crashes/$target"
echo "fuzzing $target for ${seconds}s (seeds: $seeds)" >&2
"$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$BUILD/crashes/$target/" "$BUILD/corpus/$target" "$seeds"
