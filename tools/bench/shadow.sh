#!/usr/bin/env bash
# The shadow benchmark, in one run on one private Postgres 15 (durable defaults):
#   - anchor: pgbench with a custom script that upserts a 1 KB JSONB row by key (INSERT ...
#     ON CONFLICT DO UPDATE), 16 clients, at maximum rate and at a fixed rate;
#   - UpdateThingShadow over gRPC with 16 concurrent writers on distinct shadows (about 1 KB
#     of reported state each), fleetcore-bench, at maximum rate and at the same fixed rate,
#     with the gateway running to take the accepted/documents messages.
# For each: updates per second, latency p50/p99, CPU per update of the shadow service and of
# Postgres (from /proc). Prints a Markdown table for docs/benchmarks.md.
#
#   ./fleetcore bench shadow            (or tools/bench/shadow.sh BUILD_DIR)
set -euo pipefail
BUILD=${1:?usage: shadow.sh BUILD_DIR}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../dev/pg.sh
source "$ROOT/tools/dev/pg.sh"
DURATION=${BENCH_DURATION:-10s}
CLIENTS=${BENCH_CLIENTS:-16}
SHADOWS=${BENCH_SHADOWS:-1000}
RATE=${BENCH_RATE:-1000}
seconds=${DURATION%s}

shadow_pid=""
gateway_pid=""
bench_stop_services() {
  for p in $shadow_pid $gateway_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
# shellcheck source=lib.sh
source "$ROOT/tools/bench/lib.sh"
bench_postgres_start shadow

# The anchor: what Postgres does for the same write, a 1 KB JSONB upsert by key.
"$PG_BIN/psql" -q -h 127.0.0.1 -p "$port" -U fleetcore -d pgbench -c \
  "CREATE TABLE shadow_upsert (id int PRIMARY KEY, version bigint NOT NULL, doc jsonb NOT NULL)"
blob=$(head -c 900 /dev/zero | tr '\0' x)
cat >"$dir/upsert.sql" <<SQL
\set id random(1, $SHADOWS)
INSERT INTO shadow_upsert (id, version, doc)
  VALUES (:id, 1, '{"state":{"reported":{"temp":20.5,"blob":"$blob"}}}')
  ON CONFLICT (id) DO UPDATE SET version = shadow_upsert.version + 1, doc = EXCLUDED.doc;
SQL
pgbench_run "pgbench 1 KB JSONB upsert" "--file=$dir/upsert.sql" 0
pgbench_run "pgbench 1 KB JSONB upsert" "--file=$dir/upsert.sql" "$RATE"

gateway_port=$(pg_free_port)
shadow_port=$(pg_free_port)
shadow_metrics=$(pg_free_port)
FLEETCORE_DB_URL=$(service_db_url gateway) "$BUILD/services/gateway/fleetcore-gateway" \
  --listen "127.0.0.1:$gateway_port" --metrics-listen= --log-level warn --io-threads 1 \
  --mqtt-listen "127.0.0.1:$(pg_free_port)" --mqtts-listen= \
  --shadow-endpoint "127.0.0.1:$shadow_port" 2>>"$dir/gateway.log" &
gateway_pid=$!
wait_port "$gateway_port" gateway
FLEETCORE_DB_URL=$(service_db_url shadow) "$BUILD/services/shadow/fleetcore-shadow" \
  --listen "127.0.0.1:$shadow_port" --metrics-listen "127.0.0.1:$shadow_metrics" --log-level warn \
  --db-pool-size "$CLIENTS" --gateway-endpoint "127.0.0.1:$gateway_port" \
  2>>"$dir/shadow.log" &
shadow_pid=$!
wait_port "$shadow_port" shadow

bench=("$BUILD/tools/bench/fleetcore-bench")

# measure NAME RATE: UpdateThingShadow with the CPU it cost and the rows per commit.
measure() {
  echo "shadow: $1 at ${2/#0/max}/s..." >&2
  batch_writer="$shadow_metrics shadow" service_measure "$1" "$2" "$shadow_pid" shadow-update \
    --endpoint "127.0.0.1:$shadow_port" --things "$SHADOWS" --concurrency "$CLIENTS"
}
measure "UpdateThingShadow, 1 KB" 0
measure "UpdateThingShadow, 1 KB" "$RATE"

/usr/bin/python3 - "$results" "$CLIENTS" "$DURATION" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
clients, duration = sys.argv[2], sys.argv[3]
cores = open('/proc/cpuinfo').read().count('processor')
anchor = {r["rate"]: r for r in rows if r["name"].startswith("pgbench")}
print(f"\n{clients} concurrent writers, {duration} per run, one private Postgres 15, "
      f"{cores} cores shared by client, services and Postgres.\n")
print("| workload | offered rate | achieved /s | p50 | p99 | ratio to pgbench upsert | "
      "shadow CPU/op | Postgres CPU/op | rows per commit |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
ms = lambda us: "" if us is None else f"{us/1000:.2f} ms"
us = lambda v: "" if v is None else f"{v:.0f} µs"
for r in rows:
    base = anchor.get(r["rate"])
    ratio = f"{r['calls_per_second'] / base['calls_per_second']:.2f}" if base else ""
    print(f"| {r['name']} | {r['rate'] or 'max'} | {r['calls_per_second']:,.0f} | "
          f"{ms(r.get('p50_us'))} | {ms(r.get('p99_us'))} | {ratio} | "
          f"{us(r['service_us'])} | {us(r['postgres_us'])} | "
          f"{'' if r.get('rows_per_commit') is None else format(r['rows_per_commit'], '.1f')} |")
errors = sum(r.get("errors", 0) or 0 for r in rows)
if errors:
    print(f"\nWARNING: {errors} calls failed")
print("\npgbench reports the average latency, shown under p50; it has no p99.")
PY
