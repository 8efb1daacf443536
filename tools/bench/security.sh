#!/usr/bin/env bash
# The cost of security in the gateway, beside Mosquitto in the same run (docs/benchmarks.md):
# every client presents a certificate fleetcore's CA issued; the gateway resolves it with
# the CA service and enforces its IoT policy (allow bench/* topics, client ids bench-*) on
# every CONNECT, PUBLISH, SUBSCRIBE and delivery; Mosquitto verifies the same certificate
# against the same CA and authorizes nothing.
#   - point-to-point QoS 1 over mutual TLS at a fixed 10,000 msg/s: broker CPU per message,
#     p50/p99; and at the maximum rate;
#   - mutual-TLS connects per second, 8 in parallel: first connects (a new client id each,
#     full handshakes), reconnects of 1000 devices (full handshakes), and reconnects that
#     resume the device's TLS session; with the anchor of a bare OpenSSL handshake loop
#     (openssl s_server / s_time, full handshakes) on the same cores for the full ones.
# The gateway runs with --io-threads 1 on core 0 with the CA, policy and registry services
# (they answer at CONNECT); Mosquitto on core 0; the load on core 1.
#
#   ./fleetcore bench security          (or tools/bench/security.sh BUILD_DIR)
set -euo pipefail
BUILD=${1:?usage: security.sh BUILD_DIR}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../dev/pg.sh
source "$ROOT/tools/dev/pg.sh"
DURATION=${BENCH_DURATION:-10s}
RATE=${BENCH_RATE:-10000}
CLIENTS=10
seconds=${DURATION%s}

pids=()
gateway_pid=""
mosquitto_pid=""
bench_stop_services() {
  for p in $gateway_pid $mosquitto_pid "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
# shellcheck source=lib.sh
source "$ROOT/tools/bench/lib.sh"
bench_postgres_start security
token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
export FLEETCORE_ADMIN_TOKEN=$token

start() {  # NAME PORT ARGS...
  # Not `port`: service_db_url reads that global (Postgres's).
  local name=$1 listen_port=$2
  shift 2
  FLEETCORE_DB_URL=$(service_db_url "$name") taskset -c 0 "$BUILD/services/$name/fleetcore-$name" \
    --listen "127.0.0.1:$listen_port" --metrics-listen= --log-level warn "$@" \
    2>>"$dir/$name.log" &
  pids+=($!)
  wait_port "$listen_port" "$name"
}
registry_port=$(pg_free_port)
policy_port=$(pg_free_port)
ca_port=$(pg_free_port)
crl_port=$(pg_free_port)
start registry "$registry_port"
start policy "$policy_port" --registry-endpoint "127.0.0.1:$registry_port"
start ca "$ca_port" --ca-dir "$dir/ca" --crl-listen "127.0.0.1:$crl_port" \
  --registry-endpoint "127.0.0.1:$registry_port" --policy-endpoint "127.0.0.1:$policy_port"
wait_port "$crl_port" ca

tls="$dir/tls"
"$ROOT/tools/dev/endpoint-cert.sh" "$tls"
curl -s "http://127.0.0.1:$crl_port/ca.pem" >"$tls/device-ca.pem"
ctl=("$BUILD/tools/fleetctl/fleetctl" --endpoint "127.0.0.1:$ca_port")
"${ctl[@]}" create-keys-and-certificate --set-as-active --certificate-pem-outfile \
  "$tls/device.pem" --private-key-outfile "$tls/device.key" >"$dir/cert.json"
arn=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["certificateArn"])' "$dir/cert.json")
cat >"$dir/policy.json" <<'EOF'
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": "iot:Connect",
   "Resource": "arn:aws:iot:us-east-1:000000000000:client/bench-*"},
  {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
   "Resource": "arn:aws:iot:us-east-1:000000000000:topic/bench/*"},
  {"Effect": "Allow", "Action": "iot:Subscribe",
   "Resource": "arn:aws:iot:us-east-1:000000000000:topicfilter/bench/*"},
  {"Effect": "Deny", "Action": "iot:Publish",
   "Resource": "arn:aws:iot:us-east-1:000000000000:topic/bench/forbidden"}]}
EOF
"$BUILD/tools/fleetctl/fleetctl" --endpoint "127.0.0.1:$policy_port" create-policy \
  --policy-name bench --policy-document "file://$dir/policy.json" >/dev/null
"$BUILD/tools/fleetctl/fleetctl" --endpoint "127.0.0.1:$policy_port" attach-policy \
  --policy-name bench --target "$arn" >/dev/null
chmod 644 "$tls"/*.key && chmod 755 "$tls"

g_tls=$(pg_free_port)
gateway_grpc=$(pg_free_port)
FLEETCORE_DB_URL=$(service_db_url gateway) \
  taskset -c 0 "$BUILD/services/gateway/fleetcore-gateway" \
  --listen "127.0.0.1:$gateway_grpc" --metrics-listen= --log-level warn --io-threads 1 \
  --mqtts-listen "127.0.0.1:$g_tls" --shadow-endpoint= \
  --endpoint-cert-file "$tls/endpoint.pem" --endpoint-key-file "$tls/endpoint.key" \
  --ca-endpoint "127.0.0.1:$ca_port" --policy-endpoint "127.0.0.1:$policy_port" \
  2>>"$dir/gateway.log" &
gateway_pid=$!
m_tls=$(pg_free_port)
{
  mosquitto_settings
  cat <<EOF
listener $m_tls 127.0.0.1
certfile $tls/endpoint.pem
keyfile $tls/endpoint.key
cafile $tls/device-ca.pem
require_certificate true
EOF
} >"$dir/mosquitto.conf"
taskset -c 0 mosquitto -c "$dir/mosquitto.conf" 2>>"$dir/mosquitto.log" &
mosquitto_pid=$!
ossl_port=$(pg_free_port)
for port in "$g_tls" "$m_tls"; do wait_port "$port" broker; done

bench=(taskset -c 1 "$BUILD/tools/bench/fleetcore-bench")
mtls=(--tls --cafile "$tls/ca.pem" --cert "$tls/device.pem" --key "$tls/device.key")


# The anchor: a bare OpenSSL server doing the same mutual-TLS handshakes, on core 0.
echo "openssl s_server / s_time: mutual-TLS handshakes..." >&2
taskset -c 0 openssl s_server -quiet -accept "$ossl_port" -cert "$tls/endpoint.pem" \
  -key "$tls/endpoint.key" -Verify 1 -CAfile "$tls/device-ca.pem" -naccept 1000000 \
  >/dev/null 2>&1 &
ossl_pid=$!
wait_port "$ossl_port" openssl
# (s_time -reuse is no anchor for resumption: under TLS 1.3 it closes before reading the
# ticket, so its "reused" connections are full handshakes.)
handshakes=$(taskset -c 1 openssl s_time -connect "127.0.0.1:$ossl_port" -new -time "$seconds" \
  -cert "$tls/device.pem" -key "$tls/device.key" -CAfile "$tls/ca.pem" 2>/dev/null |
  awk '/connections in .* real seconds/ { print $1 / $4 }' | head -1)
kill "$ossl_pid" 2>/dev/null || true

p2p=(mqtt-p2p --clients "$CLIENTS" --payload-size 64 --qos 1 --prefix bench)
for broker in mosquitto gateway; do
  if [[ $broker == mosquitto ]]; then pid=$mosquitto_pid port=$m_tls; else pid=$gateway_pid port=$g_tls; fi
  broker_measure $broker "p2p QoS 1, mutual TLS" "$pid" "$RATE" "${p2p[@]}" --port "$port" "${mtls[@]}"
  broker_measure $broker "p2p QoS 1, mutual TLS" "$pid" 0 "${p2p[@]}" --port "$port" "${mtls[@]}" \
    --window 100
  connect=(mqtt-connect --clients 8 --port "$port" --prefix bench "${mtls[@]}")
  broker_measure $broker "connect, mutual TLS" "$pid" 0 "${connect[@]}"
  broker_measure $broker "reconnect of 1000 devices, mutual TLS" "$pid" 0 "${connect[@]}" \
    --devices 1000
  broker_measure $broker "reconnect of 1000 devices, mutual TLS, session resumed" "$pid" 0 \
    "${connect[@]}" --devices 1000 --resume
done

/usr/bin/python3 - "$results" "$DURATION" "${handshakes:-0}" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
duration, handshakes = sys.argv[2], float(sys.argv[3])
by = {}
for r in rows:
    b, n = r["name"].split("|")
    by[(b, n, r["rate"])] = r
print(f"\nMutual TLS everywhere; the gateway resolves the certificate (CA service) and enforces "
      f"its IoT policy on every action; Mosquitto verifies the chain only. {duration} per run.")
print(f"Bare OpenSSL handshake loop (s_server on core 0, s_time on core 1): "
      f"{handshakes:,.0f} mutual-TLS handshakes/s.\n")
print("| workload | offered /s | broker | achieved /s | p50 | p99 | broker CPU/op | "
      "gateway ÷ Mosquitto | ÷ bare OpenSSL handshakes | TLS resumed | errors |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
us = lambda v: "" if v is None else (f"{v/1000:.2f} ms" if v >= 1000 else f"{v:.0f} µs")
seen = []
for r in rows:
    b, n = r["name"].split("|")
    if (n, r["rate"]) in seen:
        continue
    seen.append((n, r["rate"]))
    m, g = by.get(("mosquitto", n, r["rate"])), by.get(("gateway", n, r["rate"]))
    for label, x in (("Mosquitto", m), ("gateway", g)):
        if x is None:
            continue
        ratio = ""
        if label == "gateway" and m:
            if r["rate"] == 0:
                ratio = f"rate × {g['calls_per_second'] / max(m['calls_per_second'], 1):.2f}"
            elif m["service_us"]:
                ratio = f"CPU × {g['service_us'] / m['service_us']:.2f}"
        vs_ossl, resumed = "", ""
        if "connect" in n and "resumed" not in n and handshakes > 0:
            vs_ossl = f"{x['calls_per_second'] / handshakes:.2f}"
        if "connect" in n:
            resumed = f"{100 * x.get('resumed', 0) / max(x.get('connects', 1), 1):.0f}%"
        cpu = "" if x["service_us"] is None else f"{x['service_us']:.1f} µs"
        print(f"| {n} | {x['rate'] or 'max'} | {label} | {x['calls_per_second']:,.0f} | "
              f"{us(x.get('p50_us'))} | {us(x.get('p99_us'))} | {cpu} | "
              f"{ratio} | {vs_ossl} | {resumed} | {x.get('errors', 0)} |")
print("\nThe gateway's CPU does not include the CA and policy services' (they answer at "
      "CONNECT only; the connect rows' rate includes their work).")
EOF
