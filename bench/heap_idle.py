#!/usr/bin/env python3
"""Where an idle warden's heap goes: the live allocations by call site, under heaptrack.

Starts `warden serve` under heaptrack (Debian package `heaptrack`) with N (default 50)
`sleep 100000` programs, asks for the program list once a second for 30 s, lets it idle
for SETTLE seconds (default 50), then stops it with SIGKILL, so what was allocated and not
freed is exactly what was live at that moment. Prints the largest live totals grouped by
the innermost frame of warden's own code (or `sqlite` for SQLite's allocations).

Allocated is not resident: a block the program never wrote (a reserved buffer, a ring's
spare capacity above glibc's 128 KiB mmap threshold) costs address space, not memory. Read
this next to `RssAnon` from `bench/peers.py`.

Usage: python3 bench/heap_idle.py [--programs N] [--settle S]   ($WARDEN_BIN as elsewhere)
"""

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import _warden


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--programs", type=int, default=50)
    ap.add_argument("--settle", type=int, default=50)
    args = ap.parse_args()
    for tool in ("heaptrack", "heaptrack_print"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} missing: apt-get install heaptrack")
    work = tempfile.mkdtemp(prefix="warden-heap-")
    trace = os.path.join(work, "trace")
    # The Warden helper reads warden's first line; heaptrack's own chatter is filtered out.
    real = _warden.BIN
    wrapper = os.path.join(work, "warden-under-heaptrack")
    with open(wrapper, "w") as f:
        f.write(f"""#!/bin/bash
if [ "$1" = serve ]; then
  heaptrack -o {trace} {real} "$@" 2>/dev/null | grep --line-buffered -v -E "heaptrack|starting application|^$"
else
  exec {real} "$@"
fi
""")
    os.chmod(wrapper, 0o755)
    _warden.BIN = wrapper
    w = _warden.Warden()
    try:
        for i in range(args.programs):
            w.call("POST", "/api/programs", {"name": f"idle-{i}", "command": "sleep", "args": ["100000"]})
            w.call("POST", f"/api/programs/idle-{i}/start")
        for _ in range(30):
            w.call("GET", "/api/programs")
            time.sleep(1)
        time.sleep(args.settle)
    finally:
        subprocess.run(["pkill", "-KILL", "-f", f"{real} serve --listen 127.0.0.1:0 --config {w.dir}"])
        w.proc.wait(timeout=60)
    traces = [os.path.join(work, n) for n in os.listdir(work) if n.startswith("trace")]
    if not traces:
        sys.exit("heaptrack wrote no trace")
    flame = os.path.join(work, "flame.txt")
    subprocess.run(["heaptrack_print", "-f", traces[0], "--print-leaks", "0", "--print-peaks", "0",
                    "--print-allocators", "0", "--print-temporary", "0",
                    "--print-flamegraph", flame, "--flamegraph-cost-type", "leaked"],
                   capture_output=True, check=True)
    by_site = collections.Counter()
    std = ("alloc", "core::", "tokio", "hyper", "axum", "tower", "serde", "futures", "std::")
    with open(flame) as f:
        for line in f:
            stack, _, cost = line.rstrip().rpartition(" ")
            site = "(other)"
            for frame in reversed(stack.split(";")):
                if "sqlite3" in frame:
                    site = "sqlite"
                    break
                if re.search(r"\([a-z_]+\.rs\)", frame) and not any(s in frame for s in std):
                    site = frame[:80]
                    break
            by_site[site] += int(cost)
    total = sum(by_site.values())
    print(f"live heap at the end: {total / 1e6:.1f} MB allocated, by innermost frame of warden's code:")
    for site, n in by_site.most_common(15):
        print(f"{n / 1e3:10.1f} KB  {site}")
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(w.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
