#!/usr/bin/python3
"""Checks charts/fleetcore as far as a machine without helm can (docs: charts/fleetcore/
README.md gives the `helm lint` and `helm template` commands for a machine with helm).

1. yamllint accepts every static YAML file (Chart.yaml, values.yaml, deploy/).
2. Every .Values path a template reads exists in values.yaml, and every per-service field
   ($svc.x) exists for every service; values.yaml has exactly the services this build makes.
3. Every flag a template passes, and every FLEETCORE_* variable it sets, is one the binary
   that receives it accepts (its --help), taking the template's per-service blocks
   ({{- if eq $name "ca" }}, {{- if has $name (list ...) }}) into account.
4. The gRPC and metrics ports in _helpers.tpl are the binaries' defaults, and each
   container port a template names matches the flag that opens it.
5. The image runs what the chart expects: the binaries it names exist in this build, the
   Dockerfile installs them to the PATH, and the migration Job's folder is the image's.

usage: chart_check.py SOURCE_DIR BUILD_DIR
"""
import os
import re
import subprocess
import sys

import yaml

import build_tree

source_dir, build_dir = sys.argv[1], sys.argv[2]
chart = os.path.join(source_dir, "charts", "fleetcore")
templates = os.path.join(chart, "templates")
failures = []

# 1. yamllint on the static files.
static = [os.path.join(chart, "Chart.yaml"), os.path.join(chart, "values.yaml")]
for dirpath, _, files in os.walk(os.path.join(source_dir, "deploy")):
    if "secrets" in dirpath:
        continue
    static += [os.path.join(dirpath, f) for f in files if f.endswith((".yml", ".yaml"))]
lint = subprocess.run(
    ["yamllint", "-d", "{extends: default, rules: {line-length: {max: 120}, "
     "document-start: disable, comments: {min-spaces-from-content: 1}, "
     "braces: {max-spaces-inside: 1}, brackets: {max-spaces-inside: 1}, "
     "truthy: {check-keys: false}}}", *static],
    capture_output=True, text=True)
if lint.returncode != 0:
    failures.append("yamllint:\n" + lint.stdout.strip())

values = yaml.safe_load(open(os.path.join(chart, "values.yaml")))
texts = {f: open(os.path.join(templates, f)).read() for f in sorted(os.listdir(templates))}

# 2. Values paths.
def has_path(root, path):
    node = root
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True

for name, text in texts.items():
    for path in re.findall(r"\.Values\.([A-Za-z0-9_.]+)", text):
        if not has_path(values, path.split(".")):
            failures.append(f"{name}: .Values.{path} is not in values.yaml")
    for field in re.findall(r"\$svc\.([A-Za-z0-9_]+)", text):
        for service, settings in values["services"].items():
            if field not in settings and field not in ("nodeSelector", "tolerations", "affinity"):
                failures.append(f"{name}: $svc.{field} is missing for service {service}")

binaries = build_tree.binaries(build_dir)
services = sorted(n[len("fleetcore-"):] for n in binaries
                  if n not in ("fleetcore-migrate", "fleetcore-bench"))
if sorted(values["services"]) != services:
    failures.append(f"values.yaml services {sorted(values['services'])} != built {services}")

helps = {}
for b, path in binaries.items():
    helps[b] = subprocess.run([path, "--help"], capture_output=True, text=True).stdout

def accepts(service, flag):
    return re.search(r"^  " + re.escape(flag) + r"\b", helps[f"fleetcore-{service}"], re.M)

# 3. Flags and variables, per block.
deployments = texts["deployments.yaml"]
stack = []  # per open block: the services it applies to, or None for any other block
for lineno, line in enumerate(deployments.splitlines(), 1):
    opened = re.search(r"\{\{-?\s*(if|with|range)\b(.*?)-?\}\}", line)
    if opened:
        cond = opened.group(2)
        m_eq = re.fullmatch(r"\s*eq \$name \"(\w+)\"\s*", cond)
        m_has = re.search(r"has \$name \(list ([^)]*)\)", cond)
        m_and = re.search(r"and \(eq \$name \"(\w+)\"\)", cond)
        if m_eq:
            stack.append({m_eq.group(1)})
        elif m_has:
            stack.append(set(re.findall(r"\"(\w+)\"", m_has.group(1))))
        elif m_and:
            stack.append({m_and.group(1)})
        else:
            stack.append(None)
    if re.search(r"\{\{-?\s*end\s*-?\}\}", line) and stack:
        stack.pop()
    applies = set(values["services"])
    for block in stack:
        if block is not None:
            applies &= block
    in_init = False
    for flag in re.findall(r"(?<![\w-])(--[a-z0-9-]+)(?==)", line):
        for service in sorted(applies):
            if not accepts(service, flag):
                failures.append(f"deployments.yaml:{lineno}: fleetcore-{service} has no {flag}")
    for var in re.findall(r"name: (FLEETCORE_[A-Z0-9_]+)", line):
        flag = "--" + var[len("FLEETCORE_"):].lower().replace("_", "-")
        for service in sorted(applies):
            if not accepts(service, flag):
                failures.append(f"deployments.yaml:{lineno}: fleetcore-{service} reads no {var}")
for var in re.findall(r"name: (FLEETCORE_[A-Z0-9_]+)", texts["_helpers.tpl"]):
    flag = "--" + var[len("FLEETCORE_"):].lower().replace("_", "-")
    for service in values["services"]:
        if not accepts(service, flag):
            failures.append(f"_helpers.tpl: fleetcore-{service} reads no {var}")
job = texts["migrate-job.yaml"]
for flag in re.findall(r"(--[a-z0-9-]+)=", job):
    if not re.search(r"^  " + re.escape(flag) + r"\b", helps["fleetcore-migrate"], re.M):
        failures.append(f"migrate-job.yaml: fleetcore-migrate has no {flag}")
for var in re.findall(r"name: (FLEETCORE_[A-Z0-9_]+)", job):
    flag = "--" + var[len("FLEETCORE_"):].lower().replace("_", "-")
    if not re.search(r"^  " + re.escape(flag) + r"\b", helps["fleetcore-migrate"], re.M):
        failures.append(f"migrate-job.yaml: fleetcore-migrate reads no {var}")

# 4. Ports.
ports_block = re.search(r'define "fleetcore.ports" -\}\}\n(.*?)\{\{- end', texts["_helpers.tpl"], re.S)
ports = yaml.safe_load(ports_block.group(1))

def default_port(service, flag):
    m = re.search(r"^  " + re.escape(flag) + r"\b.*?\n(?:      .*\n)*?.*Default: [^:]*:(\d+)\.",
                  helps[f"fleetcore-{service}"], re.M)
    return int(m.group(1)) if m else None

for service, p in ports.items():
    if default_port(service, "--listen") != p["grpc"]:
        failures.append(f"_helpers.tpl: {service} gRPC port {p['grpc']} is not its --listen default")
    if default_port(service, "--metrics-listen") != p["metrics"]:
        failures.append(f"_helpers.tpl: {service} metrics port {p['metrics']} is not its default")
opened_ports = {int(p) for p in re.findall(r"--[a-z-]+-listen=0\.0\.0\.0:(\d+)", deployments)}
for port in re.findall(r"containerPort: (\d+)", deployments):
    if int(port) not in opened_ports:
        failures.append(f"deployments.yaml: containerPort {port} is opened by no --*-listen flag")
for port in re.findall(r"targetPort: (\w+)", texts["services.yaml"]):
    if not re.search(r"name: " + port + r",", deployments):
        failures.append(f"services.yaml: targetPort {port} names no container port")

# 5. The image.
for b in ["fleetcore-migrate"] + [f"fleetcore-{s}" for s in values["services"]]:
    if b not in binaries:
        failures.append(f"the chart runs {b}, which this build does not produce")
dockerfile = open(os.path.join(source_dir, "Dockerfile")).read()
if "/usr/local/bin/" not in dockerfile:
    failures.append("Dockerfile: binaries are not installed to /usr/local/bin (the PATH)")
if "/usr/share/fleetcore/" not in dockerfile or "/usr/share/fleetcore/migrations" not in job:
    failures.append("the migration Job's folder is not where the Dockerfile puts migrations")
if values["image"]["repository"] != "fleetcore":
    failures.append("values.yaml: image.repository is not the image the Dockerfile builds")

if failures:
    sys.exit("charts/fleetcore problems:\n  " + "\n  ".join(failures))
print(f"charts/fleetcore: {len(static)} YAML files lint clean; templates match values.yaml, "
      f"the binaries' flags and ports, and the image")
