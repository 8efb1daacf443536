#!/usr/bin/env bash
# Installs the Debian 12 packages fleetcore needs to build, run and test, and nothing else.
# Idempotent: packages already installed are skipped, so a second run costs one dpkg query.
# Runs apt-get as root directly, or through sudo when started by another user.
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build ccache pkg-config git
  # libFuzzer targets (clang with its sanitizer and fuzzer runtimes)
  clang libclang-rt-14-dev
  # libraries
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libssl-dev libpqxx-dev libpq-dev prometheus-cpp-dev libspdlog-dev libfmt-dev
  nlohmann-json3-dev libboost-dev libgtest-dev libgmock-dev libbenchmark-dev libre2-dev
  # NATS: the C client gateway replicas talk through, and the server their tests run
  libnats-dev nats-server
  # the database and its tools (initdb, pg_ctl, psql, pgbench)
  postgresql-15 postgresql-client-15
  # test peers and checks; mosquitto is also the benchmark's reference broker
  python3 python3-yaml docker-compose curl openssl yamllint
  mosquitto mosquitto-clients python3-paho-mqtt nodejs
  # the AWS SDK for Python's iot-data client (SigV4 as botocore signs it, its error types)
  python3-boto3
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

# MQTT.js for the tests comes from npm. Debian's npm package conflicts with a Node.js that
# bundles its own npm (NodeSource's), so it is added only when no npm is on the PATH.
if ! command -v npm >/dev/null; then
  status=$(dpkg-query -W -f='${Status}' npm 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=(npm)
fi

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "fleetcore: installing Debian packages: ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null; then
    echo "fleetcore: these packages are missing and this user cannot install them (no sudo): ${missing[*]}" >&2
    exit 1
  fi
  sudo_cmd=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when they are absent or older than a day; a fresh
# container has none, a developer's machine usually has recent ones.
if [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n 1)" ]]; then
  "${sudo_cmd[@]}" apt-get update -q
fi
# Debian starts a package's daemon on installation; the mosquitto and postgresql daemons
# would take ports 1883 and 5432 that the local stack uses. fleetcore starts its own
# instances, so the system ones are kept from starting (policy-rc.d, Debian's switch for
# this) unless the machine already has a policy of its own.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
  "${sudo_cmd[@]}" chmod 755 "$policy"
  trap '"${sudo_cmd[@]}" rm -f "$policy"' EXIT
fi
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
