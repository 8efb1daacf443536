#!/usr/bin/env bash
# The gateway benchmark, beside Mosquitto in the same run (docs/benchmarks.md):
#   - both brokers pinned to core 0 (the gateway with one I/O thread; Mosquitto is single
#     threaded), fleetcore-bench pinned to core 1;
#   - point-to-point at a fixed 10,000 msg/s (QoS 0, QoS 1, QoS 1 over TLS), fan-in and
#     fan-out at a fixed rate: the broker's CPU per delivered message (from /proc) and the
#     latency p50/p99;
#   - point-to-point at the maximum rate (QoS 0 and 1);
#   - connects per second: plain and TLS (full handshakes, ECDSA P-256), mutual TLS for
#     Mosquitto (the gateway's goes through the CA and policy services);
#   - idle TLS connections: the broker's resident memory per connection.
# Anchors: Mosquitto for everything, `openssl speed` for the handshake's signature and key
# exchange. Prints a Markdown table.
#
#   ./fleetcore bench gateway          (or tools/bench/gateway.sh BUILD_DIR)
#   BENCH_DURATION=20s BENCH_IDLE=15000 ./fleetcore bench gateway
set -euo pipefail
BUILD=${1:?usage: gateway.sh BUILD_DIR}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../dev/pg.sh
source "$ROOT/tools/dev/pg.sh"
DURATION=${BENCH_DURATION:-10s}
RATE=${BENCH_RATE:-10000}
IDLE=${BENCH_IDLE:-15000}
CLIENTS=10
seconds=${DURATION%s}

gateway_pid=""
mosquitto_pid=""
bench_stop_services() {
  for p in $gateway_pid $mosquitto_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
# shellcheck source=lib.sh
source "$ROOT/tools/bench/lib.sh"
bench_postgres_start gateway

echo "openssl speed ecdsap256 ecdhp256 (one core)..." >&2
speed=$(taskset -c 1 openssl speed -seconds 3 ecdsap256 ecdhp256 2>/dev/null)
sign_per_s=$(awk '/256 bits ecdsa \(nistp256\)/ { print $(NF-1) }' <<<"$speed")
ecdh_per_s=$(awk '/256 bits ecdh \(nistp256\)/ { print $NF }' <<<"$speed")

# TLS material: the endpoint certificate both brokers present, and a client CA with one
# device certificate for mutual TLS.
tls="$dir/tls"
"$ROOT/tools/dev/endpoint-cert.sh" "$tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=bench device CA" -addext basicConstraints=critical,CA:TRUE \
  -keyout "$tls/device-ca.key" -out "$tls/device-ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=bench-device" \
  -keyout "$tls/device.key" -out "$tls/device.csr" 2>/dev/null
openssl x509 -req -in "$tls/device.csr" -CA "$tls/device-ca.pem" -CAkey "$tls/device-ca.key" \
  -CAcreateserial -days 2 -out "$tls/device.pem" 2>/dev/null
chmod 644 "$tls"/*.key && chmod 755 "$tls"

# Mosquitto: plain, TLS, and mutual TLS on ports of its own; the same flow-control limits
# as the gateway's defaults (100 in flight, 1000 queued), nothing written to disk.
m_plain=$(pg_free_port)
m_tls=$(pg_free_port)
m_mtls=$(pg_free_port)
{
  mosquitto_settings
  cat <<EOF
listener $m_plain 127.0.0.1
listener $m_tls 127.0.0.1
certfile $tls/endpoint.pem
keyfile $tls/endpoint.key
listener $m_mtls 127.0.0.1
certfile $tls/endpoint.pem
keyfile $tls/endpoint.key
cafile $tls/device-ca.pem
require_certificate true
EOF
} >"$dir/mosquitto.conf"
[[ $(id -u) -eq 0 ]] && chown -R mosquitto: "$dir/mosquitto.conf" 2>/dev/null || true
taskset -c 0 mosquitto -c "$dir/mosquitto.conf" 2>>"$dir/mosquitto.log" &
mosquitto_pid=$!

# The MQTT path is measured with an allow-all policy for clients without a certificate, so
# every publish, subscription and delivery is still decided by the policy engine.
printf '%s\n' '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}' \
  >"$dir/anonymous-policy.json"
g_plain=$(pg_free_port)
g_tls=$(pg_free_port)
FLEETCORE_DB_URL=$(service_db_url gateway) \
  taskset -c 0 "$BUILD/services/gateway/fleetcore-gateway" \
  --listen "127.0.0.1:$(pg_free_port)" --metrics-listen= --log-level warn --io-threads 1 \
  --mqtt-listen "127.0.0.1:$g_plain" --mqtts-listen "127.0.0.1:$g_tls" \
  --endpoint-cert-file "$tls/endpoint.pem" --endpoint-key-file "$tls/endpoint.key" \
  --anonymous-policy-file "$dir/anonymous-policy.json" 2>>"$dir/gateway.log" &
gateway_pid=$!
for port in "$m_plain" "$m_tls" "$m_mtls" "$g_plain" "$g_tls"; do
  for _ in $(seq 1 100); do pg_port_in_use "$port" && break; sleep 0.1; done
  pg_port_in_use "$port" || { echo "a broker did not start:" >&2; cat "$dir"/*.log >&2; exit 1; }
done

bench=(taskset -c 1 "$BUILD/tools/bench/fleetcore-bench")
tls_args=(--tls --cafile "$tls/ca.pem")
mtls_args=(--tls --cafile "$tls/ca.pem" --cert "$tls/device.pem" --key "$tls/device.key")


# idle BROKER PID PORT ARGS...: resident memory per idle connection.
idle() {
  local broker=$1 pid=$2 port=$3 before after
  shift 3
  echo "$broker: $IDLE idle TLS connections..." >&2
  before=$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status")
  "${bench[@]}" mqtt-idle --port "$port" --clients "$IDLE" --sources 4 "$@" \
    --duration 5s --warmup 1s >"$dir/out" 2>"$dir/idle.err" &
  local bp=$!
  for _ in $(seq 1 1200); do grep -q established "$dir/idle.err" && break; sleep 0.1; done
  sleep 2
  after=$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status")
  wait "$bp" || true
  /usr/bin/python3 - "$broker" "$before" "$after" "$(cat "$dir/out")" >>"$results" <<'EOF'
import json, sys
broker, before, after, raw = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
r = json.loads(raw) if raw.strip() else {"established": 0}
n = max(r.get("established", 0), 1)
print(json.dumps({"name": f"{broker}|idle", "established": r.get("established", 0),
                  "still_open": r.get("still_open", 0), "errors": r.get("errors", 0),
                  "kb_per_connection": (after - before) / n, "rss_kb": after}))
EOF
}

for broker in mosquitto gateway; do
  if [[ $broker == mosquitto ]]; then
    pid=$mosquitto_pid plain=$m_plain secure=$m_tls mutual=$m_mtls
  else
    pid=$gateway_pid plain=$g_plain secure=$g_tls mutual=$g_tls
  fi
  p2p=(mqtt-p2p --clients "$CLIENTS" --payload-size 64)
  broker_measure $broker "p2p QoS 0" "$pid" "$RATE" "${p2p[@]}" --port "$plain" --qos 0
  broker_measure $broker "p2p QoS 1" "$pid" "$RATE" "${p2p[@]}" --port "$plain" --qos 1
  broker_measure $broker "p2p QoS 1, TLS" "$pid" "$RATE" "${p2p[@]}" --port "$secure" --qos 1 "${tls_args[@]}"
  broker_measure $broker "p2p QoS 2" "$pid" "$RATE" "${p2p[@]}" --port "$plain" --qos 2
  broker_measure $broker "fan-in 100 to 1, QoS 1" "$pid" "$RATE" mqtt-fanin --clients 100 \
    --port "$plain" --qos 1
  broker_measure $broker "fan-out 1 to 100, QoS 0" "$pid" $((RATE / 100)) mqtt-fanout --clients 100 \
    --port "$plain" --qos 0
  broker_measure $broker "p2p QoS 0" "$pid" 0 "${p2p[@]}" --port "$plain" --qos 0 --window 100
  broker_measure $broker "p2p QoS 1" "$pid" 0 "${p2p[@]}" --port "$plain" --qos 1 --window 100
  broker_measure $broker "connect, plain" "$pid" 0 mqtt-connect --clients 8 --port "$plain"
  broker_measure $broker "connect, TLS" "$pid" 0 mqtt-connect --clients 8 --port "$secure" "${tls_args[@]}"
  # A client certificate makes the gateway ask the CA service whose it is, and the policy
  # service for its policies; that path is measured with those services running by the
  # security benchmark, not here.
  if [[ $broker == mosquitto ]]; then
    broker_measure $broker "connect, mutual TLS" "$pid" 0 mqtt-connect --clients 8 --port "$mutual" \
      "${mtls_args[@]}"
  fi
  idle $broker "$pid" "$secure" "${tls_args[@]}"
done

/usr/bin/python3 - "$results" "$DURATION" "$sign_per_s" "$ecdh_per_s" "$IDLE" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
duration, sign, ecdh, idle = sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
by = {}
for r in rows:
    broker, name = r["name"].split("|")
    by[(broker, name, r.get("rate"))] = r
print(f"\nBoth brokers on core 0 (the gateway with --io-threads 1), fleetcore-bench on core 1, "
      f"{duration} per run, payload 64 bytes.")
print(f"openssl speed on one core: ECDSA P-256 {sign:,.0f} signs/s, ECDH P-256 {ecdh:,.0f} ops/s "
      f"(a full handshake costs the server about one of each: "
      f"{1 / (1 / sign + 1 / ecdh):,.0f} handshakes/s at most).\n")
print("| workload | offered /s | broker | delivered /s | p50 | p99 | broker CPU/msg | "
      "gateway ÷ Mosquitto CPU/msg | lost |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
us = lambda v: "" if v is None else (f"{v/1000:.2f} ms" if v >= 1000 else f"{v:.0f} µs")
seen = []
for r in rows:
    if r["name"].endswith("|idle"):
        continue
    broker, name = r["name"].split("|")
    key = (name, r["rate"])
    if key in seen:
        continue
    seen.append(key)
    m, g = by.get(("mosquitto", name, r["rate"])), by.get(("gateway", name, r["rate"]))
    for b, x in (("Mosquitto", m), ("gateway", g)):
        if x is None:
            continue
        ratio = ""
        if b == "gateway" and m and m["service_us"] and g["service_us"] is not None:
            ratio = f"{g['service_us'] / m['service_us']:.2f}"
        if b == "gateway" and r["rate"] == 0 and m:
            ratio = f"rate × {g['calls_per_second'] / max(m['calls_per_second'], 1):.2f}"
        cpu = "" if x["service_us"] is None else f"{x['service_us']:.1f} µs"
        print(f"| {name} | {x['rate'] or 'max'} | {b} | {x['calls_per_second']:,.0f} | "
              f"{us(x.get('p50_us'))} | {us(x.get('p99_us'))} | {cpu} | {ratio} | "
              f"{x.get('lost', '')} |")
print("\nConnect rows count CONNECT-to-CONNACK round trips (new TCP connection, handshake, "
      "DISCONNECT) per second, 8 in parallel; CPU/msg there is CPU per connect.\n")
print(f"| idle TLS connections | broker | established | resident memory per connection |")
print("|---|---|---:|---:|")
for r in rows:
    if r["name"].endswith("|idle"):
        broker = r["name"].split("|")[0]
        print(f"| {idle} requested | {'Mosquitto' if broker == 'mosquitto' else 'gateway'} | "
              f"{r['established']} | {r['kb_per_connection']:.1f} KB |")
errors = sum(r.get("errors", 0) or 0 for r in rows)
if errors:
    print(f"\nWARNING: {errors} client errors (see the JSON in the results)")
EOF
