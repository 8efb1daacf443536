#!/usr/bin/python3
"""Checks docker-compose.yml as far as a machine without a Docker engine can.

1. `docker-compose config` must accept the file (syntax, anchors, secrets, depends_on).
2. Every service that runs the fleetcore image must name a binary this build produces,
   and that binary must accept the service's command line and environment: it is run
   with --check-config (secret files replaced by temporary ones), which validates every
   flag and FLEETCORE_* variable without connecting anywhere.

usage: compose_check.py SOURCE_DIR BUILD_DIR
"""
import os
import subprocess
import sys
import tempfile

import yaml

source_dir, build_dir = sys.argv[1], sys.argv[2]
compose_file = os.path.join(source_dir, "docker-compose.yml")
failures = []

rendered = subprocess.run(["docker-compose", "-f", compose_file, "config"],
                          capture_output=True, text=True)
if rendered.returncode != 0:
    sys.exit(f"docker-compose config rejected {compose_file}:\n{rendered.stderr}")
config = yaml.safe_load(rendered.stdout)

binaries = {}
for dirpath, _, files in os.walk(build_dir):
    for f in files:
        if f.startswith("fleetcore-") or f == "fleetctl":
            path = os.path.join(dirpath, f)
            if os.access(path, os.X_OK) and "CMakeFiles" not in path:
                binaries[f] = path

with tempfile.TemporaryDirectory() as tmp:
    secret_files = {}
    for name in config.get("secrets", {}):
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write("placeholder-secret\n")
        secret_files[f"/run/secrets/{name}"] = path

    checked = 0
    for name, service in config["services"].items():
        if not str(service.get("image", "")).startswith("fleetcore"):
            continue
        command = service.get("command") or []
        if not command:
            failures.append(f"{name}: no command")
            continue
        binary = command[0]
        if binary not in binaries:
            failures.append(f"{name}: runs {binary!r}, which this build does not produce")
            continue
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETCORE_")}
        for key, value in (service.get("environment") or {}).items():
            env[key] = secret_files.get(str(value), str(value))
        for secret in service.get("secrets", []):
            source = secret["source"] if isinstance(secret, dict) else secret
            if f"/run/secrets/{source}" not in secret_files:
                failures.append(f"{name}: uses undeclared secret {source!r}")
        run = subprocess.run([binaries[binary], *command[1:], "--check-config"],
                             capture_output=True, text=True, env=env)
        if run.returncode != 0:
            failures.append(f"{name}: {binary} --check-config failed: {run.stderr.strip()}")
        healthcheck = (service.get("healthcheck") or {}).get("test", [])
        if healthcheck and healthcheck[0] == "CMD" and healthcheck[1] not in binaries:
            failures.append(f"{name}: health check runs {healthcheck[1]!r}, not built here")
        checked += 1

if failures:
    sys.exit("docker-compose.yml problems:\n  " + "\n  ".join(failures))
print(f"docker-compose.yml: valid; {checked} fleetcore services accept their configuration")
