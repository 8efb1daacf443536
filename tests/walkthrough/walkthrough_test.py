#!/usr/bin/python3
"""Runs docs/walkthrough.md verbatim against a fresh local stack, so the tutorials keep
working as written.

The stack is `./fleetcore up` itself (fixed local-stack ports, hence a serial ctest), with
its state in a temporary folder that doubles as the tutorials' working folder: there,
`./fleetcore` runs the repository's script, `tools` is the repository's, and `.fleetcore` is
the stack's state, as in a checkout. Each "## N." section runs as one bash script (its
```sh blocks in order, `fleetctl` the doc's alias), failing at the first failing command.
HTML comments before a block steer the run without showing in the rendered page:

    <!-- test: skip -->                 the block is not run (./fleetcore up itself)
    <!-- test: background NAME -->      the block runs in the background (a subscriber
                                        "in another terminal"); its output is NAME.out
    <!-- test: expect REGEX -->         the block's output (a line of it) matches REGEX
                                        within 15 s
    <!-- test: fails -->                the block must exit non-zero (a refusal shown)
    <!-- test: retry -->                the block runs again until its expects match (15 s):
                                        for results that arrive asynchronously
    <!-- test: expect-in NAME REGEX --> (anywhere) NAME.out matches REGEX within 15 s

usage: walkthrough_test.py SOURCE_DIR [SECTION_NUMBER...]
"""
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

source_dir = os.path.abspath(sys.argv[1])
only = set(sys.argv[2:])
doc = open(os.path.join(source_dir, "docs", "walkthrough.md")).read()

PRELUDE = r"""
set -euo pipefail
shopt -s expand_aliases
alias fleetctl='./fleetcore ctl'
__expect() {  # FILE REGEX: wait up to 15 s for FILE to match
  for _ in $(seq 1 150); do
    if grep -Eq -- "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "walkthrough: $1 never matched /$2/; it holds:" >&2
  cat "$1" >&2 || true
  return 1
}
# A block runs as the script's own commands, so `set -e` stops it at its first failing
# command (a block on the left of || would not: bash ignores -e there); on the way out, the
# output of the block that failed is shown, on the stderr saved here (the exit happens
# inside the block's redirection).
exec 3>&2
__out=""
trap '__rc=$?; if [ $__rc -ne 0 ] && [ -n "$__out" ]; then cat "$__out" >&3; fi
kill $(jobs -p) 2>/dev/null || true' EXIT
"""


def sections(text):
    """[(number, title, body)] of the "## N. Title" sections."""
    parts = re.split(r"^## (\d+)\. (.*)$", text, flags=re.M)
    return [(parts[i], parts[i + 1], parts[i + 2]) for i in range(1, len(parts), 3)]


def script_of(number, body):
    """The bash script of one section, its blocks steered by their annotations."""
    lines = [PRELUDE]
    pending = []  # annotations waiting for the next block
    block_no = 0
    it = iter(body.splitlines())
    for line in it:
        m = re.match(r"\s*<!-- test: (.*?) -->\s*$", line)
        if m:
            words = m.group(1).split(None, 2)
            if words[0] == "expect-in":
                name, regex = words[1], words[2]
                lines.append(f"__expect {shlex.quote(name + '.out')} {shlex.quote(regex)}")
            else:
                pending.append(m.group(1))
            continue
        if line.strip() != "```sh":
            continue
        block = []
        for inner in it:
            if inner.strip() == "```":
                break
            block.append(inner)
        block_no += 1
        code = "\n".join(block)
        out = f"section{number}-block{block_no}.out"
        if any(a == "skip" for a in pending):
            pending = []
            continue
        background = [a.split()[1] for a in pending if a.startswith("background ")]
        if background:
            lines.append(f"( {code}\n) > {shlex.quote(background[0] + '.out')} 2>&1 &")
            lines.append("sleep 1.5  # the subscriber is in")
        else:
            expects = [a[len("expect "):] for a in pending if a.startswith("expect ")]
            checks = " && ".join(f"grep -Eq -- {shlex.quote(r)} {out}" for r in expects)
            lines.append(f"echo '--- section {number}, block {block_no}' >&2")
            if "fails" in pending:
                lines.append(f"if {{\n{code}\n}} > {out} 2>&1; then cat {out} >&2; "
                             f"echo 'walkthrough: the block succeeded; it must fail' >&2; "
                             f"exit 1; fi")
            elif "retry" in pending:
                lines.append(f"for __try in $(seq 1 30); do\n{{\n{code}\n}} > {out} 2>&1 "
                             f"&& {checks or 'true'} && break\nsleep 0.5\ndone")
            else:
                lines.append(f"__out={out}\n{{\n{code}\n}} > {out} 2>&1\n__out=")
            lines.append(f"cat {out} >&2")
            for regex in expects:
                lines.append(f"__expect {shlex.quote(out)} {shlex.quote(regex)}")
        pending = []
    return "\n".join(lines) + "\n"


GRPC_PORTS = range(6051, 6057)


def stop(stack):
    try:
        os.killpg(stack.pid, signal.SIGTERM)
        stack.wait(timeout=60)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(stack.pid, signal.SIGKILL)


def remove_pg_data(work):
    """As root, the stack's Postgres data lives in /var/lib/fleetcore/<key>/ (tools/dev/pg.sh),
    outside the working folder: it goes too."""
    m = re.search(r"\(data: (/var/lib/fleetcore/[0-9a-f]+)/pgdata",
                  open(os.path.join(work, "stack.log")).read())
    if m:
        shutil.rmtree(m.group(1), ignore_errors=True)


def start_stack(work, env):
    """`./fleetcore up` in `work`, once every service listens; None (and it stopped) when a
    service could not start."""
    # A fresh log for each start: what an earlier one printed says nothing of this one.
    log_path = os.path.join(work, "stack.log")
    log = open(log_path, "w")
    stack = subprocess.Popen(["./fleetcore", "up"], cwd=work, env=env, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 300
    while "fleetcore is running" not in open(log_path).read():
        if stack.poll() is not None or time.time() > deadline:
            stop(stack)
            return None
        time.sleep(0.5)
    time.sleep(1)
    healthy = stack.poll() is None and "cannot start" not in open(log_path).read()
    for port in GRPC_PORTS:
        with socket.socket() as s:
            s.settimeout(2)
            healthy = healthy and s.connect_ex(("127.0.0.1", port)) == 0
    if not healthy:
        stop(stack)
        return None
    return stack


def main():
    work = tempfile.mkdtemp(prefix="fleetcore-walkthrough-")
    os.chmod(work, 0o755)  # Postgres's own user starts in it
    env = dict(os.environ)
    env["FLEETCORE_STATE_DIR"] = os.path.join(work, ".fleetcore")
    # The page never names Postgres's port: any free one spares a developer's own stack.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        env["FLEETCORE_PG_PORT"] = str(s.getsockname()[1])
    # A checkout, as the tutorials assume: ./fleetcore, tools/, .fleetcore/.
    with open(os.path.join(work, "fleetcore"), "w") as f:
        f.write(f"#!/usr/bin/env bash\nexec {shlex.quote(source_dir)}/fleetcore \"$@\"\n")
    os.chmod(os.path.join(work, "fleetcore"), 0o755)
    os.symlink(os.path.join(source_dir, "tools"), os.path.join(work, "tools"))
    stack = None
    for attempt in range(3):
        stack = start_stack(work, env)
        if stack is not None:
            break
        # The stack's ports are fixed: another program may hold one for a moment (a
        # developer's own stack must be stopped first). Another start is the cure.
        why = [l for l in open(os.path.join(work, "stack.log")) if "cannot start" in l]
        print(f"the local stack did not start (attempt {attempt + 1}); again",
              "".join(why), flush=True)
    if stack is None:
        log = open(os.path.join(work, "stack.log")).read()
        remove_pg_data(work)
        sys.exit("the local stack did not start:\n" + log[-4000:])
    failures = []
    try:
        for number, title, body in sections(doc):
            if only and number not in only:
                continue
            script = script_of(number, body)
            path = os.path.join(work, f"section{number}.sh")
            open(path, "w").write(script)
            started = time.time()
            # Output to a file: background programs of the section may outlive it.
            out_path = os.path.join(work, f"section{number}.log")
            with open(out_path, "w") as out:
                section = subprocess.Popen(["bash", path], cwd=work, env=env, stdout=out,
                                           stderr=subprocess.STDOUT, start_new_session=True)
                try:
                    code = section.wait(timeout=240)
                except subprocess.TimeoutExpired:
                    code = "timeout"
                # Whatever the section left running (servers, subscribers) goes with it.
                try:
                    os.killpg(section.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            took = time.time() - started
            if code != 0:
                failures.append(f"section {number} ({title}) failed ({code}) after {took:.0f} s:"
                                f"\n{open(out_path).read()[-8000:]}")
                print(f"FAIL section {number}: {title}", flush=True)
            else:
                print(f"ok   section {number}: {title} ({took:.1f} s)", flush=True)
    finally:
        stop(stack)
    remove_pg_data(work)
    if failures:
        print("\n\n".join(failures))
        print(f"(working folder kept: {work}; the stack's log: {work}/stack.log)")
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)


main()
