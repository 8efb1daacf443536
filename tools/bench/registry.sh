#!/usr/bin/env bash
# The registry benchmark, all in one run on one private Postgres 15 (durable defaults):
#   - pgbench select-only (-S) and simple-update (-N), 16 clients, prepared statements:
#     what Postgres itself gives on this machine, at maximum rate and at a fixed rate;
#   - the registry's DescribeThing (with its thing cache, and without) and CreateThing over
#     gRPC with 16 concurrent callers (fleetcore-bench), at maximum rate and at a fixed rate;
#   - SearchIndex over BENCH_SEARCH_THINGS things (100,000) with 4 callers at maximum rate:
#     queries that fill a page at once, and queries that match few things or none, which
#     read every thing (the anchor is pgbench -S: a read by key).
# For each: operations per second, latency p50/p99, and the CPU seconds per operation the
# registry and Postgres spent (from /proc), since on 2 cores the load generator's own CPU
# caps the maximum rate. Prints a Markdown table for docs/benchmarks.md.
#
#   ./fleetcore bench registry            (or tools/bench/registry.sh BUILD_DIR)
#   BENCH_DURATION=30s BENCH_RATE=5000 ./fleetcore bench registry
set -euo pipefail
BUILD=${1:?usage: registry.sh BUILD_DIR}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../dev/pg.sh
source "$ROOT/tools/dev/pg.sh"
DURATION=${BENCH_DURATION:-10s}
CLIENTS=${BENCH_CLIENTS:-16}
THINGS=${BENCH_THINGS:-10000}
RATE=${BENCH_RATE:-5000}
WRITE_RATE=${BENCH_WRITE_RATE:-1000}
SEARCH_THINGS=${BENCH_SEARCH_THINGS:-100000}
SEARCH_CLIENTS=${BENCH_SEARCH_CLIENTS:-4}
seconds=${DURATION%s}

registry_pid=""
stop_registry() {
  if [[ -n "$registry_pid" ]]; then
    kill "$registry_pid" 2>/dev/null || true
    wait "$registry_pid" 2>/dev/null || true
    registry_pid=""
  fi
}
bench_stop_services() { stop_registry; }
# shellcheck source=lib.sh
source "$ROOT/tools/bench/lib.sh"
bench_postgres_start registry

echo "pgbench: initialising scale 10..." >&2
"${pgbench[@]}" -i -s 10 -q pgbench >/dev/null 2>&1
pgbench_run "pgbench select-only (-S)" -S 0
pgbench_run "pgbench select-only (-S)" -S "$RATE"
pgbench_run "pgbench simple-update (-N)" -N 0
pgbench_run "pgbench simple-update (-N)" -N "$WRITE_RATE"

grpc_port=$(pg_free_port)
start_registry() {
  FLEETCORE_DB_URL=$(service_db_url registry) "$BUILD/services/registry/fleetcore-registry" \
    --listen "127.0.0.1:$grpc_port" --metrics-listen= --db-pool-size "$CLIENTS" \
    --log-level warn "$@" 2>>"$dir/registry.log" &
  registry_pid=$!
  wait_port "$grpc_port" registry
}
bench=("$BUILD/tools/bench/fleetcore-bench")

# measure NAME SCENARIO RATE: one fleetcore-bench run with the CPU it cost.
measure() {
  echo "registry: $1 at ${3:-max}/s..." >&2
  service_measure "$1" "${3:-0}" "$registry_pid" "$2" --endpoint "127.0.0.1:$grpc_port" \
    --concurrency "$CLIENTS" --things "$THINGS"
}

start_registry
echo "registry: seeding $THINGS things..." >&2
"${bench[@]}" registry-seed --endpoint "127.0.0.1:$grpc_port" --things "$THINGS" >/dev/null
measure "DescribeThing, thing cache on" registry-describe ""
measure "DescribeThing, thing cache on" registry-describe "$RATE"
measure "CreateThing" registry-create ""
measure "CreateThing" registry-create "$WRITE_RATE"
stop_registry
start_registry --thing-cache-size 0
measure "DescribeThing, thing cache off" registry-describe ""
measure "DescribeThing, thing cache off" registry-describe "$RATE"
stop_registry

# search NAME QUERY: SearchIndex of QUERY at maximum rate.
search() {
  echo "registry: $1..." >&2
  service_measure "$1" 0 "$registry_pid" registry-search --endpoint "127.0.0.1:$grpc_port" \
    --concurrency "$SEARCH_CLIENTS" --query "$2"
}
start_registry
echo "registry: seeding $SEARCH_THINGS things..." >&2
"${bench[@]}" registry-seed --endpoint "127.0.0.1:$grpc_port" --things "$SEARCH_THINGS" >/dev/null
search "SearchIndex thingName:bench-1*, a page at once" "thingName:bench-1*"
search "SearchIndex attributes.seq:[1000 TO 1999]" "attributes.seq:[1000 TO 1999]"
search "SearchIndex attributes.seq:$((SEARCH_THINGS - 1)), one of $SEARCH_THINGS" \
  "attributes.seq:$((SEARCH_THINGS - 1))"
search "SearchIndex nosuchvalue (any field), none of $SEARCH_THINGS" "nosuchvalue"
stop_registry

/usr/bin/python3 - "$results" "$CLIENTS" "$DURATION" "$SEARCH_CLIENTS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
clients, duration, search_clients = sys.argv[2], sys.argv[3], sys.argv[4]
cores = open('/proc/cpuinfo').read().count('processor')
def anchor(row):
    reads = "Describe" in row["name"] or "Search" in row["name"]
    base = "pgbench select-only (-S)" if reads else "pgbench simple-update (-N)"
    return next(r for r in rows if r["name"] == base and r["rate"] == row["rate"])
print(f"\n{clients} concurrent clients (SearchIndex: {search_clients}), {duration} per run, one private Postgres 15, "
      f"{cores} cores shared by client, service and Postgres.\n")
print("| workload | offered rate | achieved /s | p50 | p99 | ratio to pgbench | "
      "registry CPU/op | Postgres CPU/op |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
ms = lambda us: "" if us is None else f"{us/1000:.2f} ms"
us = lambda v: "" if v is None else f"{v:.0f} µs"
for r in rows:
    ratio = "1.00" if r["name"].startswith("pgbench") else \
        f"{r['calls_per_second'] / anchor(r)['calls_per_second']:.2f}"
    print(f"| {r['name']} | {r['rate'] or 'max'} | {r['calls_per_second']:,.0f} | "
          f"{ms(r.get('p50_us'))} | {ms(r.get('p99_us'))} | {ratio} | "
          f"{us(r['service_us'])} | {us(r['postgres_us'])} |")
errors = sum(r.get("errors", 0) or 0 for r in rows)
if errors:
    print(f"\nWARNING: {errors} calls failed")
print("\npgbench reports the average latency, shown under p50; it has no p99.")
EOF
