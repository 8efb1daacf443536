#!/usr/bin/env bash
# The policy engine benchmark (common/policy/policy_benchmark, Google Benchmark) pinned to
# one core, beside `openssl speed sha256` on 64-byte blocks on the same core as the anchor:
# decisions per second, and decisions per SHA-256 of a 64-byte block, which carries over to
# other machines better than the raw rate. Prints a Markdown table for docs/benchmarks.md.
#
#   ./fleetcore bench policy            (or tools/bench/policy.sh BUILD_DIR)
set -euo pipefail
BUILD=${1:?usage: policy.sh BUILD_DIR}
CORE=${BENCH_CORE:-1}
[[ $(nproc) -gt "$CORE" ]] || CORE=0

# The anchor: 64-byte SHA-256 blocks per second (openssl prints kB/s for 64-byte blocks).
anchor_kbs=$(taskset -c "$CORE" openssl speed -seconds 3 -bytes 64 sha256 2>/dev/null |
  awk '$1 == "sha256" { sub(/k$/, "", $2); print $2 }')
anchor=$(/usr/bin/python3 -c "print(float('$anchor_kbs') * 1000 / 64)")

json=$(taskset -c "$CORE" "$BUILD/common/policy/policy_benchmark" --benchmark_format=json \
  --benchmark_min_time=1 2>/dev/null)
/usr/bin/python3 - "$anchor" <<PY
import json, sys
anchor = float(sys.argv[1])
data = json.loads('''$json''')
print(f"openssl speed sha256, 64-byte blocks on core $CORE: {anchor / 1e6:.2f} M/s\n")
print("| benchmark | decisions/s (one core) | ns/decision | decisions per SHA-256 |")
print("|---|---:|---:|---:|")
for b in data["benchmarks"]:
    rate = b["items_per_second"]
    print(f"| {b['name'].removeprefix('BM_')} | {rate / 1e6:.1f} M | {1e9 / rate:.0f} | {rate / anchor:.1f} |")
PY
