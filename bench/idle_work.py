#!/usr/bin/env python3
"""Idle work of warden counted by callgrind: instructions and simulated cache misses per
second while it supervises 50 idle programs, split by the part of warden that did them.

CPU time on a shared VM moves two- to tenfold with the neighbours' load (see README), so
two builds measured an hour apart cannot be compared by it. Counted instructions and
misses of a simulated cache do not move with the neighbours: this is how a change to the
idle path is judged. Valgrind runs warden's threads one at a time and much slower, which
the idle path (a tick per second, a batch per 10 s) easily keeps up with.

    python3 bench/idle_work.py [--window 120] [--programs 50] BIN [BIN...]

Each binary in turn: start it under callgrind, create and start the programs, wait for
the first batches, zero the counters, wait the window, dump, and read the totals. The
window should hold whole minutes: a batch is written every 10 s and rollups once a minute,
so a short window's figure depends on how many of them fell into it.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

# Functions whose inclusive cost is a part of warden (a thread's body, or the task that
# does the part's work); what is left is the async runtime itself and the rest.
PARTS = [
    ("store writer", r"warden::store::commit_guarded$"),
    ("sampler", r"warden::metrics::supervise_sampler$"),
    ("metrics service", r"warden::metrics::Service::run::\{\{closure\}\}$"),
]


def run(binary, window, programs):
    d = tempfile.mkdtemp(prefix="warden-idle-work-")
    try:
        cfg = os.path.join(d, "bench.toml")
        with open(cfg, "w") as f:
            f.write('log_level = "warn"\nallow_root_programs = true\n')
        token = subprocess.run(
            [binary, "token", "create", "bench", "--role", "admin", "--data-dir", d],
            check=True, capture_output=True, text=True).stdout.strip()
        out = os.path.join(d, "callgrind.out")
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--cache-sim=yes",
             f"--callgrind-out-file={out}",
             binary, "serve", "--listen", "127.0.0.1:0", "--config", cfg, "--data-dir", d],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        url = proc.stdout.readline().strip().removeprefix("warden listening on ")

        def call(method, path, body=None):
            data = None if body is None else json.dumps(body).encode()
            req = urllib.request.Request(url + path, data=data, method=method)
            req.add_header("Authorization", "Bearer " + token)
            if data is not None:
                req.add_header("Content-Type", "application/json")
            with urllib.request.urlopen(req, timeout=120) as r:
                r.read()

        for i in range(programs):
            call("POST", "/api/programs",
                 {"name": f"idle-{i}", "command": "sleep", "args": ["100000"]})
            call("POST", f"/api/programs/idle-{i}/start")
        # Past the first batch and the first rollup, so the window sees steady state.
        time.sleep(25)
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True,
                       capture_output=True)
        t0 = time.time()
        time.sleep(window)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True,
                       capture_output=True)
        elapsed = time.time() - t0
        proc.terminate()
        proc.wait(timeout=120)
        # The dump asked for is the file ending in .1 (the final one comes at exit).
        text = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", "--threshold=100", out + ".1"],
            check=True, capture_output=True, text=True).stdout
        return elapsed, text
    finally:
        shutil.rmtree(d, ignore_errors=True)


def numbers(line):
    """The event counts at the start of an annotate line."""
    return [int(n.replace(",", "")) for n in re.findall(r"([\d,]+) \(\s*[\d.]+%\)", line)]


def summarize(name, elapsed, text):
    events = None
    totals = None
    parts = {p: 0 for p, _ in PARTS}
    for line in text.splitlines():
        if line.startswith("Events shown:"):
            events = line.split(":", 1)[1].split()
        elif "PROGRAM TOTALS" in line:
            totals = numbers(line)
        else:
            # `counts  file:function [object]`; the file names no colon.
            fn = line.rsplit("%)", 1)[-1].strip().split(":", 1)[-1].split(" [")[0]
            for p, pattern in PARTS:
                if re.search(pattern, fn) and parts[p] == 0:
                    n = numbers(line)
                    parts[p] = n[0] if n else 0
    if not events or not totals:
        raise SystemExit(f"{name}: no totals in callgrind's output")
    t = dict(zip(events, totals))
    per_s = lambda n: n / elapsed
    ir = per_s(t["Ir"])
    d1 = per_s(t.get("D1mr", 0) + t.get("D1mw", 0))
    ll = per_s(t.get("DLmr", 0) + t.get("DLmw", 0))
    rest = t["Ir"] - sum(parts.values())
    split = "  ".join(f"{p} {per_s(v) / 1e3:.0f}k" for p, v in parts.items())
    print(f"{name:28} {ir / 1e6:8.2f} M instr/s {d1 / 1e3:8.1f} k D1 misses/s "
          f"{ll:8.0f} LL misses/s   {split}  other {per_s(rest) / 1e3:.0f}k", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--window", type=float, default=120)
    ap.add_argument("--programs", type=int, default=50)
    ap.add_argument("binaries", nargs="+")
    a = ap.parse_args()
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is needed (apt install valgrind)")
    print(f"{a.programs} x `sleep 100000`, {a.window:.0f} s window, under callgrind "
          "(instructions per second of wall time)")
    for b in a.binaries:
        elapsed, text = run(b, a.window, a.programs)
        summarize(os.path.basename(b), elapsed, text)


if __name__ == "__main__":
    main()
