#!/usr/bin/env bash
# The CA benchmark, all in one run on one private Postgres 15 (durable defaults):
#   - anchors: `openssl speed ecdsap256` signatures per second on one core, and pgbench
#     simple-update (-N) with the same number of clients (what Postgres allows for writes);
#   - CreateKeysAndCertificate and CreateCertificateFromCsr with 8 concurrent callers
#     (fleetcore-bench), at maximum rate and at a fixed rate;
#   - ResolvePeer of a known ACTIVE certificate with the CA's answer cache, and without it.
# For each: operations per second, latency p50/p99, and the CPU per operation of the CA
# service and of Postgres (from /proc). Prints a Markdown table for docs/benchmarks.md.
#
#   ./fleetcore bench ca            (or tools/bench/ca.sh BUILD_DIR)
#   BENCH_DURATION=30s ./fleetcore bench ca
set -euo pipefail
BUILD=${1:?usage: ca.sh BUILD_DIR}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../dev/pg.sh
source "$ROOT/tools/dev/pg.sh"
DURATION=${BENCH_DURATION:-10s}
CLIENTS=${BENCH_CLIENTS:-8}
ISSUE_RATE=${BENCH_ISSUE_RATE:-500}
RESOLVE_RATE=${BENCH_RESOLVE_RATE:-1000}
seconds=${DURATION%s}

pids=()
ca_pid=""
bench_stop_services() {
  for p in "${pids[@]}" $ca_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
# shellcheck source=lib.sh
source "$ROOT/tools/bench/lib.sh"
bench_postgres_start ca

echo "openssl speed ecdsap256 (one core)..." >&2
sign_per_s=$(taskset -c 1 openssl speed -seconds 3 ecdsap256 2>/dev/null |
  awk '/256 bits ecdsa \(nistp256\)/ { print $(NF-1) }')
[[ -n "$sign_per_s" ]] || { echo "could not read openssl speed's figure" >&2; exit 1; }

echo "pgbench: initialising scale 10..." >&2
"${pgbench[@]}" -i -s 10 -q pgbench >/dev/null 2>&1
pgbench_run "pgbench simple-update (-N)" -N 0
pgbench_run "pgbench simple-update (-N)" -N "$ISSUE_RATE"

registry_port=$(pg_free_port)
FLEETCORE_DB_URL=$(service_db_url registry) "$BUILD/services/registry/fleetcore-registry" \
  --listen "127.0.0.1:$registry_port" --metrics-listen= --log-level warn 2>>"$dir/registry.log" &
pids+=($!)
wait_port "$registry_port" registry
policy_port=$(pg_free_port)
FLEETCORE_DB_URL=$(service_db_url policy) "$BUILD/services/policy/fleetcore-policy" \
  --listen "127.0.0.1:$policy_port" --metrics-listen= --log-level warn \
  --registry-endpoint "127.0.0.1:$registry_port" 2>>"$dir/policy.log" &
pids+=($!)
wait_port "$policy_port" policy
ca_port=$(pg_free_port)
ca_metrics=$(pg_free_port)
start_ca() {
  FLEETCORE_DB_URL=$(service_db_url ca) "$BUILD/services/ca/fleetcore-ca" \
    --listen "127.0.0.1:$ca_port" \
    --metrics-listen "127.0.0.1:$ca_metrics" --crl-listen= --log-level warn --ca-dir "$dir/ca" \
    --db-pool-size "$CLIENTS" --registry-endpoint "127.0.0.1:$registry_port" \
    --policy-endpoint "127.0.0.1:$policy_port" "$@" 2>>"$dir/ca.log" &
  ca_pid=$!
  wait_port "$ca_port" ca
}
stop_ca() {
  kill "$ca_pid" 2>/dev/null || true
  wait "$ca_pid" 2>/dev/null || true
  ca_pid=""
}
bench=("$BUILD/tools/bench/fleetcore-bench")

# measure NAME SCENARIO RATE: one fleetcore-bench run with the CPU it cost and the rows per
# commit of the certificates it stored.
measure() {
  echo "ca: $1 at ${3/#0/max}/s..." >&2
  batch_writer="$ca_metrics ca_certificates" service_measure "$1" "$3" "$ca_pid" "$2" \
    --endpoint "127.0.0.1:$ca_port" --concurrency "$CLIENTS"
}

start_ca
measure "CreateKeysAndCertificate" ca-keys 0
measure "CreateKeysAndCertificate" ca-keys "$ISSUE_RATE"
measure "CreateCertificateFromCsr" ca-csr 0
measure "CreateCertificateFromCsr" ca-csr "$ISSUE_RATE"
measure "ResolvePeer, answer cache on" ca-resolve 0
measure "ResolvePeer, answer cache on" ca-resolve "$RESOLVE_RATE"
stop_ca
start_ca --resolve-cache-size 0
measure "ResolvePeer, answer cache off" ca-resolve 0
measure "ResolvePeer, answer cache off" ca-resolve "$RESOLVE_RATE"
stop_ca

/usr/bin/python3 - "$results" "$CLIENTS" "$DURATION" "$sign_per_s" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
clients, duration, sign = sys.argv[2], sys.argv[3], float(sys.argv[4])
cores = open('/proc/cpuinfo').read().count('processor')
pg = {r["rate"]: r for r in rows if r["name"].startswith("pgbench")}
print(f"\n{clients} concurrent callers, {duration} per run, one private Postgres 15, "
      f"{cores} cores shared by client, services and Postgres.")
print(f"openssl speed ecdsap256 on one core: {sign:,.0f} signatures/s "
      f"(half of it: {sign / 2:,.0f}/s).\n")
print("| workload | offered rate | achieved /s | p50 | p99 | ratio to ½ ECDSA sign/s | "
      "ratio to pgbench -N | CA CPU/op | Postgres CPU/op | rows per commit |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
ms = lambda us: "" if us is None else f"{us/1000:.2f} ms"
us = lambda v: "" if v is None else f"{v:.0f} µs"
for r in rows:
    issuing = r["name"].startswith("Create")
    half = f"{r['calls_per_second'] / (sign / 2):.2f}" if issuing and r["rate"] == 0 else ""
    base = pg.get(r["rate"]) if issuing or r["name"].startswith("pgbench") else None
    ratio = f"{r['calls_per_second'] / base['calls_per_second']:.2f}" if base else ""
    print(f"| {r['name']} | {r['rate'] or 'max'} | {r['calls_per_second']:,.0f} | "
          f"{ms(r.get('p50_us'))} | {ms(r.get('p99_us'))} | {half} | {ratio} | "
          f"{us(r['service_us'])} | {us(r['postgres_us'])} | "
          f"{'' if r.get('rows_per_commit') is None else format(r['rows_per_commit'], '.1f')} |")
errors = sum(r.get("errors", 0) or 0 for r in rows)
if errors:
    print(f"\nWARNING: {errors} calls failed")
print("\npgbench reports the average latency, shown under p50; it has no p99.")
EOF
