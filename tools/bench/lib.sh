# What the benchmark scripts share: a private Postgres, CPU accounting from /proc, result
# lines, and pgbench as the Postgres anchor. bench_postgres_start sets $dir (scratch
# folder), $port, $url (the owner's; services use `service_db_url`), $results (JSON
# lines), $postmaster (Postgres's pid) and the pgbench command in ${pgbench[@]}; the others
# expect $CLIENTS and $seconds too.

# bench_postgres_start NAME: a private Postgres 15 with durable defaults in a new scratch
# folder, databases fleetcore (migrated) and pgbench; stopped and removed on exit, after
# `bench_stop_services` (a function the script may define).
bench_postgres_start() {
  dir=$(mktemp -d "/tmp/fleetcore-bench-$1.XXXXXX")
  chmod 755 "$dir"
  [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
  trap bench_cleanup EXIT
  port=$(pg_free_port)
  pg_init "$dir/data" "$dir/password"
  pg_start "$dir/data" "$port" "$dir/postgres.log"
  export PGPASSWORD
  PGPASSWORD=$(cat "$dir/password")
  pg_create_database "$port" "$dir/password" fleetcore
  pg_create_database "$port" "$dir/password" pgbench
  postmaster=$(head -1 "$dir/data/postmaster.pid")
  pgbench=("$PG_BIN/pgbench" -h 127.0.0.1 -p "$port" -U fleetcore)
  results="$dir/results.jsonl"
  url="postgresql://fleetcore:$PGPASSWORD@127.0.0.1:$port/fleetcore"
  # As deployed: the owner migrates, each service logs in as its own role (migration 0011).
  install -d -m 0700 "$dir/logins"
  local svc
  for svc in registry policy ca gateway shadow rules; do
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$dir/logins/pg_password_$svc")
  done
  FLEETCORE_DB_URL=$url "$BUILD/tools/migrate/fleetcore-migrate" \
    --migrations-dir "$ROOT/migrations" --service-passwords-dir "$dir/logins" \
    --log-format json 2>/dev/null
}

# service_db_url SERVICE: the URL SERVICE connects with, as its own role.
service_db_url() {
  echo "postgresql://fleetcore_$1:$(cat "$dir/logins/pg_password_$1")@127.0.0.1:$port/fleetcore"
}

bench_cleanup() {
  if declare -F bench_stop_services >/dev/null; then bench_stop_services; fi
  pg_stop "$dir/data"
  rm -rf "$dir"
}

# CPU ticks (user + system) of a process and its children, from /proc/PID/stat.
cpu_ticks() {
  local total=0
  for pid in "$1" $(pgrep -P "$1" || true); do
    [[ -r /proc/$pid/stat ]] || continue
    total=$((total + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
  done
  echo "$total"
}

# record NAME RATE JSON SERVICE_TICKS POSTGRES_TICKS SECONDS: one result line (SERVICE_TICKS
# -1: no service was measured).
record() {
  /usr/bin/python3 - "$@" "$(getconf CLK_TCK)" >>"$results" <<'EOF'
import json, sys
name, rate, raw, svc, pg, secs, hz = sys.argv[1:8]
r = json.loads(raw)
ops = r["calls_per_second"] * float(secs)  # operations in the CPU-measured interval
r.update(name=name, rate=int(rate),
         service_us=1e6 * int(svc) / int(hz) / ops if int(svc) >= 0 else None,
         postgres_us=1e6 * int(pg) / int(hz) / ops)
print(json.dumps(r))
EOF
}

# wait_port PORT NAME: waits (10 s at most) for a service the script started to listen on
# PORT; otherwise exits with its log, $dir/NAME.log.
wait_port() {
  for _ in $(seq 1 100); do pg_port_in_use "$1" && return; sleep 0.1; done
  echo "$2 did not start:" >&2
  cat "$dir/$2.log" >&2
  exit 1
}

# service_measure NAME RATE PID ARGS...: one fleetcore-bench run (${bench[@]} ARGS at RATE/s,
# 0: as fast as it goes, with a 2 s warm-up) recorded with the CPU the service PID and
# Postgres spent over its measured window. With batch_writer="PORT WRITER", also the mean
# rows per group-commit statement of that writer (batch_totals).
service_measure() {
  local name=$1 rate=$2 pid=$3 c0 p0 c1 p1 b0 b1
  shift 3
  "${bench[@]}" "$@" --duration "$DURATION" --warmup 2s --rate "$rate" >"$dir/out" &
  local bp=$!
  sleep 2
  c0=$(cpu_ticks "$pid")
  p0=$(cpu_ticks "$postmaster")
  if [[ -n ${batch_writer:-} ]]; then b0=$(batch_totals $batch_writer); fi
  sleep "$seconds"
  c1=$(cpu_ticks "$pid")
  p1=$(cpu_ticks "$postmaster")
  if [[ -n ${batch_writer:-} ]]; then b1=$(batch_totals $batch_writer); fi
  wait "$bp"
  record "$name" "$rate" "$(cat "$dir/out")" $((c1 - c0)) $((p1 - p0)) "$seconds"
  if [[ -n ${batch_writer:-} ]]; then add_rows_per_commit "$b0" "$b1"; fi
}

# batch_totals PORT WRITER: a service's group-commit totals so far, "rows statements", from
# its fleetcore_db_batch_rows{writer=WRITER} on metrics port PORT.
batch_totals() {
  /usr/bin/python3 - "$1" "$2" <<'EOF'
import re, sys, urllib.request
port, writer = sys.argv[1], sys.argv[2]
text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
def value(metric):
    m = re.search(metric + r'\{writer="' + re.escape(writer) + r'"\} (\S+)', text)
    return float(m.group(1)) if m else 0.0
print(value("fleetcore_db_batch_rows_sum"), value("fleetcore_db_batch_rows_count"))
EOF
}

# add_rows_per_commit BEFORE AFTER: adds the mean rows per group-commit statement between
# two batch_totals to the result line written last (none when no statement ran).
add_rows_per_commit() {
  /usr/bin/python3 - "$results" "$1" "$2" <<'EOF'
import json, sys
path, (s0, n0), (s1, n1) = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
lines = open(path).read().splitlines()
r = json.loads(lines[-1])
statements = float(n1) - float(n0)
r["rows_per_commit"] = (float(s1) - float(s0)) / statements if statements > 0 else None
lines[-1] = json.dumps(r)
open(path, "w").write("\n".join(lines) + "\n")
EOF
}

# pgbench_run NAME MODE RATE: pgbench at maximum rate (RATE 0) or at RATE tx/s. Its
# backends exit with it, so Postgres's CPU is sampled while it runs: over the same window
# as the service runs (after 2 s).
pgbench_run() {
  local name=$1 mode=$2 rate=$3 rate_args=() p0 p1
  [[ "$rate" -gt 0 ]] && rate_args=(-R "$rate")
  echo "pgbench: $name at ${rate/#0/max}/s..." >&2
  "${pgbench[@]}" "$mode" -M prepared -c "$CLIENTS" -j 2 -T $((seconds + 3)) "${rate_args[@]}" \
    -P 1 pgbench >"$dir/pgbench.out" 2>"$dir/pgbench.progress" &
  local bp=$!
  sleep 2
  p0=$(cpu_ticks "$postmaster")
  sleep "$seconds"
  p1=$(cpu_ticks "$postmaster")
  wait "$bp"
  # Throughput and latency of the same window, from pgbench's per-second progress lines:
  # "progress: 3.0 s, 71234.5 tps, lat 0.224 ms stddev 0.1, 0 failed".
  local summary
  summary=$(awk -v from=3 -v to=$((seconds + 2)) '
    /^progress:/ { t = $2 + 0; if (t >= from && t <= to) { n++; tps += $4; lat += $7 } }
    END { printf "{\"calls_per_second\": %f, \"p50_us\": %f, \"p99_us\": null}", tps / n, 1000 * lat / n }
  ' "$dir/pgbench.progress")
  record "$name" "$rate" "$summary" -1 $((p1 - p0)) "$seconds"
}


# mosquitto_settings: the Mosquitto configuration both gateway benchmarks start from: the
# gateway's flow-control defaults (100 in flight, 1000 queued), Nagle off, nothing on disk.
# Their listeners follow it.
mosquitto_settings() {
  printf '%s\n' "per_listener_settings false" "allow_anonymous true" "set_tcp_nodelay true" \
    "max_inflight_messages 100" "max_queued_messages 1000" "persistence false" \
    "log_dest stderr" "log_type error"
}

# The MQTT benchmarks (gateway.sh, security.sh): each broker logs to $dir/BROKER.log, and
# ${bench[@]} runs fleetcore-bench on the load's core.

# broker_alive BROKER PID: exits with the broker's log when it is no longer running.
broker_alive() {
  kill -0 "$2" 2>/dev/null && return
  echo "$1 is no longer running; its log:" >&2
  tail -n 30 "$dir/$1.log" >&2
  exit 1
}

# broker_measure BROKER NAME PID RATE ARGS...: one fleetcore-bench run (ARGS) and the
# broker's CPU over its measured window, recorded as "BROKER|NAME".
broker_measure() {
  local broker=$1 name=$2 pid=$3 rate=$4 c0 c1
  shift 4
  echo "$broker: $name at ${rate/#0/max}/s..." >&2
  "${bench[@]}" "$@" --rate "$rate" --duration "$DURATION" --warmup 2s >"$dir/out" &
  local bp=$!
  sleep 2.2
  c0=$(cpu_ticks "$pid")
  sleep "$seconds"
  c1=$(cpu_ticks "$pid")
  wait "$bp" || { echo "fleetcore-bench failed; logs in $dir" >&2; tail -n 30 "$dir/$broker.log" >&2; exit 1; }
  broker_alive "$broker" "$pid"
  record "$broker|$name" "$rate" "$(cat "$dir/out")" $((c1 - c0)) 0 "$seconds"
}
