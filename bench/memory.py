"""warden's private memory (RssAnon) idle, during and after a backup, per allocator.

Candidates: the system allocator (glibc) tuned and trimmed as warden does (the choice),
the same untouched (WARDEN_BENCH_NO_TRIM=1), and jemalloc and mimalloc preloaded
(LD_PRELOAD of Debian's libjemalloc2 / libmimalloc2.0: they replace malloc for Rust and
zstd's C code alike, so no rebuild is needed to compare them).

Usage: python3 bench/memory.py [SIZE_MB]   (default 2048; WARDEN_BIN picks the binary)
"""

import os
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _warden  # noqa: E402

CANDIDATES = [
    ("system, tuned + trim (chosen)", {}),
    ("system, untuned, no trim", {"WARDEN_BENCH_NO_TRIM": "1"}),
    ("jemalloc (preloaded)", {"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}),
    ("mimalloc (preloaded)", {"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2"}),
]


def rss_anon_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return 0.0


def make_world(root, size_mb):
    rnd = random.Random(7)
    os.makedirs(root, exist_ok=True)
    text = b"[12:00:00] [Server thread/INFO]: a player joined the game\n" * (1 << 14)
    written, i = 0, 0
    while written < size_mb << 20:
        # Half incompressible, half text, 8 MiB per file.
        data = os.urandom(4 << 20) + text[: 4 << 20]
        with open(os.path.join(root, f"r.{i}.mca"), "wb") as f:
            f.write(data)
        written += len(data)
        i += 1
    _ = rnd


def measure(name, env, world):
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        w = _warden.Warden()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        pid = w.proc.pid
        w.call("POST", "/api/programs", {"name": "mem", "command": "sleep", "args": ["600"], "cwd": world})
        time.sleep(3)
        idle = min(rss_anon_mb(pid) for _ in range(5) if time.sleep(0.2) is None)
        b = w.call("POST", "/api/programs/mem/backups")
        peak, t0 = 0.0, time.time()
        while True:
            peak = max(peak, rss_anon_mb(pid))
            v = w.call("GET", f"/api/backups/{b['id']}")
            if v["status"] != "running":
                break
            time.sleep(0.1)
        took = time.time() - t0
        after = {}
        t1 = time.time()
        for mark in (5, 30, 60):
            time.sleep(max(0, t1 + mark - time.time()))
            after[mark] = rss_anon_mb(pid)
        print(f"| {name} | {idle:.1f} | {peak:.1f} | {after[5]:.1f} | {after[30]:.1f} | {after[60]:.1f} | {took:.0f} s |", flush=True)
    finally:
        w.close()


def main():
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 2048
    work = tempfile.mkdtemp(prefix="warden-mem-")
    try:
        world = os.path.join(work, "world")
        make_world(world, size_mb)
        print(f"backup of {size_mb} MB; RssAnon in MB")
        print("| allocator | idle | peak during | +5 s | +30 s | +60 s | backup took |")
        print("|---|---|---|---|---|---|---|")
        only = os.environ.get("CANDIDATES")
        for name, env in CANDIDATES:
            if only and not any(name.startswith(o) for o in only.split(",")):
                continue
            if "LD_PRELOAD" in env and not os.path.exists(env["LD_PRELOAD"]):
                print(f"| {name} | (missing {env['LD_PRELOAD']}: apt-get install libjemalloc2 libmimalloc2.0) |")
                continue
            measure(name, env, world)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
