"""warden's private memory (RssAnon) around each kind of burst issue 14 names: a backup of
SIZE_MB, downloading a 100,000-entry folder as an archive, importing 604,800 samples
(7 days at 1 s), and 50 dashboards (WebSocket clients following every sample) connected
and gone. Prints idle, peak during, and +5/+30/+60 s after each, in one warden.

Usage: python3 bench/bursts.py [SIZE_MB] [WORD...]   (default 2048; WARDEN_BIN picks the
binary; WORDs keep only the bursts whose names contain one of them, e.g. `import`)
"""

import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _warden  # noqa: E402
from live_views import Ws  # noqa: E402
from memory import make_world, rss_anon_mb  # noqa: E402


class Peak:
    """Samples RssAnon every 50 ms in a thread while a burst runs."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_anon_mb(self.pid))
            time.sleep(0.05)

    def done(self):
        self.stop.set()
        self.t.join()
        return self.peak


def after(pid):
    t0, out = time.time(), {}
    for mark in (5, 30, 60):
        time.sleep(max(0, t0 + mark - time.time()))
        out[mark] = rss_anon_mb(pid)
    return out


def backup(w, _work):
    b = w.call("POST", "/api/programs/mem/backups")
    while w.call("GET", f"/api/backups/{b['id']}")["status"] == "running":
        time.sleep(0.1)


def folder_download(w, work):
    many = os.path.join(work, "world", "many")
    if not os.path.exists(many):
        for i in range(100):
            d = os.path.join(many, f"d{i:03}")
            os.makedirs(d)
            for j in range(1000):
                with open(os.path.join(d, f"f{j:04}.txt"), "w") as f:
                    f.write(f"entry {i} {j}\n")
    req = urllib.request.Request(
        w.url + "/api/programs/mem/files/download?path=many&format=tar.zst")
    req.add_header("Authorization", "Bearer " + w.token)
    with urllib.request.urlopen(req, timeout=600) as r:
        while r.read(1 << 20):
            pass


def sample_import(w, work):
    path = os.path.join(work, "week.jsonl")
    now = int(time.time() * 1000)
    rnd = random.Random(1)
    with open(path, "w") as f:
        for i in range(604_800):
            f.write('{"ts":%d,"cpu_percent":%.2f,"memory_bytes":%d}\n'
                    % (now - (604_800 - i) * 1000, rnd.uniform(0, 150), 2_000_000_000 + rnd.randrange(10**8)))
    subprocess.run([_warden.BIN, "metrics", "--url", w.url, "--token", w.token, "import", "hist", path],
                   check=True, capture_output=True)


def dashboards(w, _work):
    async def run():
        clients = [await Ws.connect(w.port, w.token) for _ in range(50)]
        tasks = [asyncio.create_task(c.follow(["samples", "programs", "events"])) for c in clients]
        await asyncio.sleep(20)
        for c in clients:
            c.w.close()
        await asyncio.gather(*tasks, return_exceptions=True)
    asyncio.run(run())


BURSTS = [
    ("backup of {mb} MB", backup),
    ("100,000-entry folder downloaded as tar.zst", folder_download),
    ("import of 604,800 samples", sample_import),
    ("50 dashboards for 20 s, then gone", dashboards),
]


def main():
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 2048
    words = sys.argv[2:]
    bursts = [b for b in BURSTS if not words or any(w in b[0] for w in words)]
    work = tempfile.mkdtemp(prefix="warden-bursts-")
    try:
        make_world(os.path.join(work, "world"), size_mb)
        w = _warden.Warden()
        try:
            pid = w.proc.pid
            w.call("POST", "/api/programs", {"name": "mem", "command": "sleep", "args": ["600"],
                                             "cwd": os.path.join(work, "world")})
            w.call("POST", "/api/programs", {"name": "hist", "command": "sleep", "args": ["600"]})
            for n in range(20):
                w.call("POST", "/api/programs", {"name": f"s{n}", "command": "sleep", "args": ["600"]})
                w.call("POST", f"/api/programs/s{n}/start")
            time.sleep(5)
            idle = min(rss_anon_mb(pid) for _ in range(5) if time.sleep(0.2) is None)
            print(f"RssAnon in MB; idle {idle:.1f} (load {os.getloadavg()[0]:.1f})")
            print("| burst | peak during | +5 s | +30 s | +60 s | took |")
            print("|---|---|---|---|---|---|")
            for name, burst in bursts:
                p, t0 = Peak(pid), time.time()
                burst(w, work)
                took, peak = time.time() - t0, p.done()
                a = after(pid)
                print(f"| {name.format(mb=size_mb)} | {peak:.1f} | {a[5]:.1f} | {a[30]:.1f} | {a[60]:.1f} | {took:.0f} s |",
                      flush=True)
        finally:
            w.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
