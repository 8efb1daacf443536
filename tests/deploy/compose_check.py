#!/usr/bin/python3
"""Checks docker-compose.yml as far as a machine without a Docker engine can.

1. `docker-compose config` must accept the file (syntax, anchors, secrets, depends_on).
2. Every service that runs the fleetcore image must name a binary this build produces,
   and that binary must accept the service's command line and environment: it is run
   with --check-config (secret files replaced by temporary ones), which validates every
   flag and FLEETCORE_* variable without connecting anywhere.
3. Prometheus (deploy/prometheus/prometheus.yml) scrapes every fleetcore service at its
   --metrics-listen port, and every file the compose file mounts exists.
4. Every metric the Grafana dashboard and the alert rules query is one the code registers
   (a renamed metric would leave an empty panel or an alert that never fires).

usage: compose_check.py SOURCE_DIR BUILD_DIR
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

import build_tree

source_dir, build_dir = sys.argv[1], sys.argv[2]
compose_file = os.path.join(source_dir, "docker-compose.yml")
failures = []

rendered = subprocess.run(["docker-compose", "-f", compose_file, "config"],
                          capture_output=True, text=True)
if rendered.returncode != 0:
    sys.exit(f"docker-compose config rejected {compose_file}:\n{rendered.stderr}")
config = yaml.safe_load(rendered.stdout)

binaries = build_tree.binaries(build_dir, names=("fleetctl",))

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

# 3. Scrape targets and mounted files.
prometheus = yaml.safe_load(open(os.path.join(source_dir, "deploy/prometheus/prometheus.yml")))
targets = {t for job in prometheus["scrape_configs"] for sc in job["static_configs"]
           for t in sc["targets"]}
for name, service in config["services"].items():
    command = service.get("command") or []
    if not str(service.get("image", "")).startswith("fleetcore") or name == "migrate":
        continue
    if "--metrics-listen" in command:
        port = command[command.index("--metrics-listen") + 1].rsplit(":", 1)[1]
        if f"{name}:{port}" not in targets:
            failures.append(f"prometheus.yml does not scrape {name}:{port}")
for name, service in config["services"].items():
    for volume in service.get("volumes", []) or []:
        source = volume.get("source") if isinstance(volume, dict) else volume.split(":")[0]
        bind = source.startswith(("/", "."))  # else a named volume
        if bind and not os.path.exists(source):
            failures.append(f"{name}: mounts {source}, which does not exist")

# 4. Metric names in the dashboard and the alerts.
registered = set()
for root in ("services", "common"):
    for dirpath, _, files in os.walk(os.path.join(source_dir, root)):
        for f in files:
            if f.endswith(".cc"):
                text = open(os.path.join(dirpath, f), errors="replace").read()
                registered.update(re.findall(r'(?:\.Name\(|\.metric_name = )"(fleetcore_[a-z0-9_]+)"', text))
known = set(registered)
for m in registered:
    known.update({m + "_bucket", m + "_count", m + "_sum"})
queries = []
dashboard = json.load(open(os.path.join(source_dir, "deploy/grafana/dashboards/fleetcore.json")))
for panel in dashboard["panels"]:
    queries += [("dashboard: " + panel["title"], t["expr"]) for t in panel["targets"]]
alerts = yaml.safe_load(open(os.path.join(source_dir, "deploy/prometheus/alerts.yml")))
for group in alerts["groups"]:
    queries += [("alert " + r["alert"], r["expr"]) for r in group["rules"]]
for where, expr in queries:
    for metric in re.findall(r"\b(fleetcore_[a-z0-9_]+)", expr):
        if metric not in known:
            failures.append(f"{where}: queries {metric}, which no code registers")

if failures:
    sys.exit("docker-compose.yml problems:\n  " + "\n  ".join(failures))
print(f"docker-compose.yml: valid; {checked} fleetcore services accept their configuration; "
      f"{len(queries)} dashboard and alert queries use registered metrics")
