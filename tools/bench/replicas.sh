#!/usr/bin/env bash
# What gateway replicas cost (docs/benchmarks.md, "Gateway replicas"): point-to-point QoS 1
# through one gateway alone, and through two replicas sharing a NATS (Debian's
# nats-server), with publisher and subscriber on the same replica and on different ones.
# Every broker process (gateways with one I/O thread, nats-server) is pinned to core 0 and
# fleetcore-bench to core 1; the CPU of each process is read from /proc over each run's
# measured window, per delivered message. The anchor is the gateway alone in the same run.
# Prints a Markdown table.
#
#   ./fleetcore bench replicas          (or tools/bench/replicas.sh BUILD_DIR)
#   BENCH_DURATION=20s BENCH_RATE=5000 ./fleetcore bench replicas
set -euo pipefail
BUILD=${1:?usage: replicas.sh BUILD_DIR}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../dev/pg.sh
source "$ROOT/tools/dev/pg.sh"
DURATION=${BENCH_DURATION:-10s}
RATE=${BENCH_RATE:-5000}
CLIENTS=10
seconds=${DURATION%s}

pids=()
bench_stop_services() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
# shellcheck source=lib.sh
source "$ROOT/tools/bench/lib.sh"
bench_postgres_start replicas

nats_port=$(pg_free_port)
# Debian installs it in /usr/sbin, which a user's PATH may lack.
nats_server=$(command -v nats-server || echo /usr/sbin/nats-server)
taskset -c 0 "$nats_server" -a 127.0.0.1 -p "$nats_port" 2>>"$dir/nats.log" &
nats_pid=$!
pids+=("$nats_pid")
wait_port "$nats_port" nats

printf '%s\n' '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}' \
  >"$dir/anonymous-policy.json"
# start_gateway NAME [FLAGS...]: a gateway on core 0 with one I/O thread; sets mqtt_port
# and gateway_pid.
start_gateway() {
  local name=$1
  shift
  mqtt_port=$(pg_free_port)
  FLEETCORE_DB_URL=$(service_db_url gateway) \
    taskset -c 0 "$BUILD/services/gateway/fleetcore-gateway" \
    --listen "127.0.0.1:$(pg_free_port)" --metrics-listen= --log-level warn --io-threads 1 \
    --mqtt-listen "127.0.0.1:$mqtt_port" --mqtts-listen= --shadow-endpoint= --rules-endpoint= \
    --anonymous-policy-file "$dir/anonymous-policy.json" "$@" 2>>"$dir/$name.log" &
  gateway_pid=$!
  pids+=("$gateway_pid")
  wait_port "$mqtt_port" "$name"
}
start_gateway alone
alone_port=$mqtt_port alone_pid=$gateway_pid
start_gateway gw-a --cluster-url "nats://127.0.0.1:$nats_port" --cluster-node-id gw-a
a_port=$mqtt_port a_pid=$gateway_pid
start_gateway gw-b --cluster-url "nats://127.0.0.1:$nats_port" --cluster-node-id gw-b
b_port=$mqtt_port b_pid=$gateway_pid

bench=(taskset -c 1 "$BUILD/tools/bench/fleetcore-bench")

# measure NAME RATE "PID..." ARGS...: one fleetcore-bench run and the CPU each PID spent
# over its measured window, per delivered message.
measure() {
  local name=$1 rate=$2 measured=$3 before=() after=() p
  shift 3
  echo "$name at ${rate/#0/max}/s..." >&2
  "${bench[@]}" mqtt-p2p --clients "$CLIENTS" --payload-size 64 --qos 1 "$@" --rate "$rate" \
    --duration "$DURATION" --warmup 2s >"$dir/out" &
  local bp=$!
  sleep 2.2
  for p in $measured; do before+=("$(cpu_ticks "$p")"); done
  sleep "$seconds"
  for p in $measured; do after+=("$(cpu_ticks "$p")"); done
  wait "$bp" || { echo "fleetcore-bench failed; logs in $dir" >&2; exit 1; }
  local ticks=() i=0
  for p in $measured; do ticks+=("$((after[i] - before[i]))"); i=$((i + 1)); done
  /usr/bin/python3 - "$name" "$rate" "$(cat "$dir/out")" "$seconds" "$(getconf CLK_TCK)" \
    "${ticks[@]}" >>"$results" <<'EOF'
import json, sys
name, rate, raw, secs, hz = sys.argv[1:6]
ticks = [int(t) for t in sys.argv[6:]]
r = json.loads(raw)
msgs = r["calls_per_second"] * float(secs)
r.update(name=name, rate=int(rate), cpu_us=[1e6 * t / int(hz) / msgs for t in ticks])
print(json.dumps(r))
EOF
}

measure "one gateway" "$RATE" "$alone_pid" --port "$alone_port"
measure "replicas, same replica" "$RATE" "$a_pid $b_pid $nats_pid" --port "$a_port"
measure "replicas, across" "$RATE" "$a_pid $b_pid $nats_pid" --port "$a_port" \
  --subscriber-port "$b_port"
measure "one gateway" 0 "$alone_pid" --port "$alone_port" --window 100
measure "replicas, across" 0 "$a_pid $b_pid $nats_pid" --port "$a_port" \
  --subscriber-port "$b_port" --window 100

/usr/bin/python3 - "$results" "$DURATION" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"\nEvery broker process on core 0 (gateways with --io-threads 1), fleetcore-bench on "
      f"core 1, {sys.argv[2]} per run, 10 publisher/subscriber pairs, QoS 1, 64-byte payloads, "
      "MQTT 3.1.1.\n")
print("| workload | offered /s | delivered /s | p50 | p99 | CPU/msg: gateway A | gateway B | "
      "nats-server | total | total ÷ one gateway |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
us = lambda v: "" if v is None else (f"{v/1000:.2f} ms" if v >= 1000 else f"{v:.0f} µs")
alone = {r["rate"]: sum(r["cpu_us"]) for r in rows if r["name"] == "one gateway"}
alone_rate = {r["rate"]: r["calls_per_second"] for r in rows if r["name"] == "one gateway"}
for r in rows:
    cpu = r["cpu_us"] + [None] * (3 - len(r["cpu_us"]))
    total = sum(r["cpu_us"])
    ratio = f"{total / alone[r['rate']]:.2f}" if r["name"] != "one gateway" and r["rate"] else ""
    if r["rate"] == 0 and r["name"] != "one gateway":
        ratio = f"rate × {r['calls_per_second'] / max(alone_rate[0], 1):.2f}"
    cells = " | ".join("" if c is None else f"{c:.1f} µs" for c in cpu)
    print(f"| {r['name']} | {r['rate'] or 'max'} | {r['calls_per_second']:,.0f} | "
          f"{us(r.get('p50_us'))} | {us(r.get('p99_us'))} | {cells} | {total:.1f} µs | {ratio} |")
lost = sum(r.get("lost", 0) or 0 for r in rows)
if lost:
    print(f"\nWARNING: {lost} messages lost (see the JSON in the results)")
EOF
