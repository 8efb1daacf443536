#!/usr/bin/env bash
# Builds fleetcore with clang, AddressSanitizer, LeakSanitizer and UBSan in its own build
# tree (build-address/) and runs the suite there: the unit and Postgres tests and the
# end-to-end tests, whose services then run sanitized too, driven by the real clients. The
# fuzzers (their own sanitized tree) and the walkthrough (./fleetcore up builds its own
# Release tree) are left to ./fleetcore test. No ThreadSanitizer: see FLEETCORE_SANITIZE in
# CMakeLists.txt.
#
#   tools/dev/sanitize.sh address [CTEST ARGS...]
#   (./fleetcore sanitize address ... does the same; e.g. ./fleetcore sanitize address -R gateway)
#
# Every report, from a test binary or from a service a test started, is written to
# BUILD/sanitizer-reports/ and fails the run, whatever the tests said (a service killed at a
# test's end still wrote what it found; the first report ends the process that made it).
# Reports about the Debian libraries' own internals, which are not built with the
# sanitizer, are suppressed in tools/dev/sanitizers/ with the reason for each.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
kind=${1:?usage: sanitize.sh address [CTEST ARGS...]}
shift
if [[ "$kind" != address ]]; then
  echo "sanitize.sh: address, not '$kind' (no ThreadSanitizer: Debian's gRPC and Abseil" \
    "are not built with it, so it reports their synchronization as races)" >&2
  exit 2
fi
BUILD=${FLEETCORE_SANITIZE_BUILD_DIR:-$ROOT/build-$kind}
supp="$ROOT/tools/dev/sanitizers"

# -O1 with debug lines: readable reports at about half the compile time of -O2 -g.
CXX=clang++ cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g" -DFLEETCORE_SANITIZE="$kind" >/dev/null
cmake --build "$BUILD"

reports="$BUILD/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"
# The services the e2e tests start inherit these. halt_on_error: a process stops at its
# first report, so nothing runs on in a corrupted state.
common="log_path=$reports/report:halt_on_error=1"
export UBSAN_OPTIONS="$common:print_stacktrace=1"
export ASAN_OPTIONS="$common:detect_leaks=1:detect_stack_use_after_return=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
status=0
(cd "$BUILD" && ctest --output-on-failure -LE fuzz -E '^walkthrough$' "$@") || status=$?
mapfile -t found < <(find "$reports" -type f | sort)
if ((${#found[@]} > 0)); then
  for f in "${found[@]}"; do
    echo "=== $f"
    cat "$f"
  done
  echo "sanitize.sh: ${#found[@]} sanitizer report(s) above" >&2
  exit 1
fi
exit "$status"
