#!/usr/bin/env python3
"""Idle work of warden counted by callgrind: instructions and simulated cache misses per
second while it supervises 50 idle programs, split by the part of warden that did them.

CPU time on a shared VM moves two- to tenfold with the neighbours' load (see README), so
two builds measured an hour apart cannot be compared by it. Counted instructions and
misses of a simulated cache do not move with the neighbours: this is how a change to the
idle path is judged. Valgrind runs warden's threads one at a time and much slower, which
the idle path (a tick per second, a batch per 10 s) easily keeps up with.

    python3 bench/idle_work.py [--window 120] [--programs 50] [--list] [--history] BIN [BIN...]

Each binary in turn: start it under callgrind, create and start the programs, wait for
the first batches, zero the counters, wait the window, dump, and read the totals. The
window should hold whole minutes: a batch is written every 10 s and rollups once a minute,
so a short window's figure depends on how many of them fell into it.

With --list, the program list (GET /api/programs, a new connection each time, as
peers.py asks it) is also asked once a second through the window, and the work each
request added is printed: the rest (everything but the store writer, the sampler and the
metrics service, which serve no request) less the rest of a run without the list.

With --history, the store starts as a warden that has run for a year would have it: every
tier of every program and of the host filled to its default retention (48 hours of 1 s
samples, 30 days of minutes and 10 minutes, 365 days of hours; about 0.6 GB), so the
window also sees the work that grows with the history (pruning, rollups into full
tables). Seeding takes a minute or two.
"""

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
import urllib.request

# Functions whose inclusive cost is a part of warden (a thread's body, or the task that
# does the part's work); what is left is the async runtime itself and the rest.
PARTS = [
    ("store writer", r"warden::store::commit_guarded$"),
    ("sampler", r"warden::metrics::supervise_sampler$"),
    ("metrics service", r"warden::metrics::Service::run::\{\{closure\}\}$"),
]


# Default retention of each tier (config.rs) and its step, in seconds.
TIERS = [("raw", 48 * 3600, 1), ("1m", 30 * 86400, 60), ("10m", 30 * 86400, 600),
         ("1h", 365 * 86400, 3600)]


def seed(db, programs):
    """Fills every metric tier of `programs` series and the host to its retention."""
    c = sqlite3.connect(db)
    c.execute("PRAGMA synchronous = OFF")
    now = int(time.time())
    c.executemany("INSERT INTO metric_series(id, name) VALUES (?, ?)",
                  [(i + 1, f"idle-{i}") for i in range(programs)])
    for fam, ncols, series in [("metric", 8, range(1, programs + 1)), ("host", 12, [0])]:
        for tier, keep, step in TIERS:
            table = f"{fam}_{tier}"
            width = ncols if tier == "raw" else 1 + 3 * ncols
            marks = ", ".join(["?"] * (2 + width))
            end = now - now % 60 - 60 if tier == "raw" else now - now % step - step
            start = now - keep + 120
            start += -start % step
            for sid in series:
                c.executemany(
                    f"INSERT INTO {table} VALUES ({marks})",
                    ((sid, ts * 1000, *[ts % 997] * width)
                     for ts in range(start, end, step)))
            if tier != "raw":
                c.execute("INSERT OR REPLACE INTO metric_rollup_state VALUES (?, ?)",
                          (table, (end if tier == "1m" else now - now % step) * 1000))
        c.commit()
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()


def run(binary, window, programs, listing=False, history=False):
    d = tempfile.mkdtemp(prefix="warden-idle-work-")
    try:
        cfg = os.path.join(d, "bench.toml")
        with open(cfg, "w") as f:
            # Sampling is never stretched for a busy host here: the figures are per
            # second of wall time, and a stretched interval would halve them.
            f.write('log_level = "warn"\nallow_root_programs = true\n'
                    '[metrics]\nsaturation_cpu_percent = 100\n')
        token = subprocess.run(
            [binary, "token", "create", "bench", "--role", "admin", "--data-dir", d],
            check=True, capture_output=True, text=True).stdout.strip()
        if history:
            seed(os.path.join(d, "warden.db"), programs)
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
        asked = 0
        if listing:
            # One request a second on the clock, however long each took under valgrind.
            while time.time() < t0 + window:
                call("GET", "/api/programs")
                asked += 1
                time.sleep(max(0.0, t0 + asked - time.time()))
        else:
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
        return elapsed, text, asked
    finally:
        shutil.rmtree(d, ignore_errors=True)


def numbers(line):
    """The event counts at the start of an annotate line."""
    return [int(n.replace(",", "")) for n in re.findall(r"([\d,]+) \(\s*[\d.]+%\)", line)]


def summarize(name, elapsed, text, asked=0, idle_rest=None):
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
    if asked and idle_rest is not None:
        per_request = (per_s(rest) - idle_rest) * elapsed / asked
        print(f"{'':28} {asked} lists asked: {per_request / 1e3:.0f}k instructions per "
              "request above idle", flush=True)
    return per_s(rest)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--window", type=float, default=120)
    ap.add_argument("--programs", type=int, default=50)
    ap.add_argument("--list", action="store_true",
                    help="also measure the program list asked once a second")
    ap.add_argument("--history", action="store_true",
                    help="start from a store filled to the default retention")
    ap.add_argument("binaries", nargs="+")
    a = ap.parse_args()
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is needed (apt install valgrind)")
    print(f"{a.programs} x `sleep 100000`, {a.window:.0f} s window, under callgrind "
          "(instructions per second of wall time)")
    for b in a.binaries:
        elapsed, text, _ = run(b, a.window, a.programs, history=a.history)
        idle_rest = summarize(os.path.basename(b), elapsed, text)
        if a.list:
            elapsed, text, asked = run(b, a.window, a.programs, listing=True,
                                       history=a.history)
            summarize(os.path.basename(b) + " + list", elapsed, text, asked, idle_rest)


if __name__ == "__main__":
    main()
