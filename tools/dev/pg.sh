# Private PostgreSQL 15 clusters for fleetcore: sourced by ./fleetcore (the local stack) and
# tests/harness/pg_fixture.sh (the throwaway cluster of a test run).
#
# A cluster listens on 127.0.0.1 only, has no Unix socket, and one superuser "fleetcore"
# with a generated password (scram-sha-256). Postgres refuses to run as root, so when
# these functions run as root the cluster belongs to the "postgres" system user that
# Debian's postgresql package creates.

PG_BIN=${FLEETCORE_PG_BIN:-/usr/lib/postgresql/15/bin}

pg_die() {
  echo "fleetcore: $*" >&2
  exit 1
}

# Runs a command as the cluster's owner.
pg_as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# True when something accepts TCP connections on 127.0.0.1:$1.
pg_port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Prints a TCP port that is free on loopback right now.
pg_free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The data folder to use for a cluster that should live at $1. As root, a folder the
# postgres user cannot reach (a checkout under /root, say) is replaced by one under
# /var/lib/fleetcore named after it, so the cluster still belongs to this checkout.
pg_data_dir_for() {
  local wanted=$1
  if [[ $(id -u) -ne 0 ]]; then
    echo "$wanted"
    return
  fi
  mkdir -p "$(dirname "$wanted")"
  if runuser -u postgres -- test -x "$(dirname "$wanted")" 2>/dev/null; then
    echo "$wanted"
  else
    local key
    key=$(printf '%s' "$wanted" | sha256sum | cut -c1-16)
    echo "/var/lib/fleetcore/$key/pgdata"
  fi
}

# pg_init DATA_DIR PASSWORD_FILE: creates the cluster once (initdb), reuses it afterwards.
# The password file is created (0600) on first use and read afterwards.
pg_init() {
  local dir=$1 pwfile=$2
  [[ -x "$PG_BIN/initdb" ]] || pg_die "PostgreSQL 15 is not installed ($PG_BIN/initdb missing); run ./fleetcore deps"
  if [[ ! -s "$pwfile" ]]; then
    # A cluster without its password file (the state folder was deleted, but as root the
    # data lives under /var/lib/fleetcore): a new password would not open it.
    [[ ! -f "$dir/PG_VERSION" ]] ||
      pg_die "the Postgres cluster in $dir has no password file ($pwfile) any more; remove $(dirname "$dir") to start afresh"
    mkdir -p "$(dirname "$pwfile")"
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$pwfile")
  fi
  if [[ -f "$dir/PG_VERSION" ]]; then
    return 0
  fi
  mkdir -p "$dir"
  chmod 700 "$dir"
  # initdb wants an empty data folder, so its one-time password copy sits beside it.
  local initpw="$dir.initdb-password"
  cp "$pwfile" "$initpw"
  if [[ $(id -u) -eq 0 ]]; then
    chown -R postgres: "$dir" "$initpw"
    # The folders above a private data folder under /var/lib/fleetcore must be reachable.
    case "$dir" in /var/lib/fleetcore/*) chmod 755 /var/lib/fleetcore "$(dirname "$dir")" ;; esac
  fi
  chmod 600 "$initpw"
  if ! pg_as_owner "$PG_BIN/initdb" -D "$dir" -U fleetcore --pwfile="$initpw" \
      --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$dir.initdb.log" 2>&1; then
    rm -f "$initpw"
    cat "$dir.initdb.log" >&2
    pg_die "initdb failed for $dir (log above)"
  fi
  rm -f "$initpw" "$dir.initdb.log"
  pg_as_owner tee -a "$dir/postgresql.conf" >/dev/null <<EOF

# fleetcore: a private cluster on loopback only.
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 200
shared_buffers = 256MB
log_min_duration_statement = 1000
EOF
}

# pg_start DATA_DIR PORT LOG_FILE [postgres -c options...]: starts the cluster and waits
# until it accepts connections; a taken port or a failed start is a clear error.
pg_start() {
  local dir=$1 port=$2 log=$3
  shift 3
  if pg_as_owner "$PG_BIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    local as=""
    [[ $(id -u) -eq 0 ]] && as="runuser -u postgres -- "
    pg_die "a Postgres is already running on $dir; stop the earlier ./fleetcore up (Ctrl-C), or run: $as$PG_BIN/pg_ctl -D $dir stop"
  fi
  if pg_port_in_use "$port"; then
    pg_die "cannot start Postgres: port $port on 127.0.0.1 is already in use; free it or set FLEETCORE_PG_PORT"
  fi
  local opts="-p $port"
  for o in "$@"; do opts="$opts -c $o"; done
  mkdir -p "$(dirname "$log")"
  touch "$log"
  [[ $(id -u) -eq 0 ]] && chown postgres: "$log"
  if ! pg_as_owner "$PG_BIN/pg_ctl" -D "$dir" -l "$log" -o "$opts" -w -t 60 start >/dev/null; then
    tail -n 20 "$log" >&2
    pg_die "Postgres did not start on port $port (last lines of $log above)"
  fi
}

pg_stop() {
  local dir=$1
  if [[ -f "$dir/postmaster.pid" ]]; then
    pg_as_owner "$PG_BIN/pg_ctl" -D "$dir" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  fi
}

# pg_create_database PORT PASSWORD_FILE NAME: creates the database unless it exists.
pg_create_database() {
  local port=$1 pwfile=$2 name=$3
  local exists
  exists=$(PGPASSWORD=$(cat "$pwfile") "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U fleetcore -d postgres \
    -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'")
  if [[ "$exists" != "1" ]]; then
    PGPASSWORD=$(cat "$pwfile") "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U fleetcore -d postgres \
      -qc "CREATE DATABASE $name" >/dev/null
  fi
}
