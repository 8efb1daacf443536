#!/usr/bin/python3
"""Keeps docs/operations.md true: the options block under "### <binary>" must be exactly
what `<binary> --help` prints for its options (from the first "  --" line on).

usage: docs_check.py SOURCE_DIR BUILD_DIR
"""
import os
import re
import subprocess
import sys

import build_tree

source_dir, build_dir = sys.argv[1], sys.argv[2]
doc = open(os.path.join(source_dir, "docs", "operations.md")).read()

binaries = build_tree.binaries(build_dir)

failures = []
checked = 0
for name in sorted(binaries):
    if name == "fleetcore-bench":
        continue  # a tool, documented in docs/benchmarks.md
    section = re.search(r"^### " + re.escape(name) + r"\n\n```\n(.*?)```", doc, re.S | re.M)
    if section is None:
        failures.append(f"docs/operations.md has no options block for {name}")
        continue
    out = subprocess.run([binaries[name], "--help"], capture_output=True, text=True).stdout
    start = out.find("\n  --")
    expected = out[start + 1:] if start >= 0 else ""
    if section.group(1) != expected:
        failures.append(f"docs/operations.md: the options of {name} differ from its --help; "
                        f"paste the options part of `{name} --help`")
    checked += 1

if failures:
    sys.exit("\n".join(failures))
print(f"docs/operations.md matches --help of {checked} binaries")
