#!/usr/bin/env python3
"""The hub's cost: one hub warden and two node wardens on loopback, N programs each.

1. Overview latency: R sequential `GET /api/fleet/programs` on the hub (it reads both
   nodes at once, each under its timeout) — p50, p90 and max in ms.
2. Dashboards: D WebSocket clients on the hub, each as the Machines page is: subscribed to
   `programs`, `node:a:programs` and `node:b:programs`, reading the overview every 30 s;
   one program per node restarts every 2 s so state changes flow. Over WINDOW seconds:
   the hub's CPU (% of one core) and resident memory, and the relayed state changes each
   dashboard received.
3. The same dashboards also following `node:a:samples` and `node:b:samples` (every node
   program's 1 Hz samples, relayed): the hub's CPU and memory again.

Usage: WARDEN_BIN=target/debug/warden python3 bench/fleet.py [--programs N]
       [--dashboards D] [--requests R] [--window S]
"""

import argparse
import asyncio
import statistics
import subprocess
import time

from _warden import BIN, Warden
from live_views import Ws, watch_cpu


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def make_node(name, programs):
    w = Warden(f'[fleet]\nname = "{name}"\n')
    for i in range(programs):
        w.call("POST", "/api/programs", {"name": f"p{i}", "command": "sleep", "args": ["100000"]})
        w.call("POST", f"/api/programs/p{i}/start")
    w.call("POST", "/api/programs", {
        "name": "flappy", "command": "sh", "args": ["-c", "sleep 2; exit 1"],
        "start_seconds": 0, "restart": {"backoff_initial_ms": 10, "backoff_max_ms": 100,
                    "max_failed_starts": 100000, "window_seconds": 1}})
    w.call("POST", "/api/programs/flappy/start")
    return w


def add_node(hub, name, node):
    subprocess.run([BIN, "fleet", "add", name, node.url + "/", "--data-dir", hub.dir],
                   input=node.token, text=True, check=True, capture_output=True)


async def dashboards(hub, count, topics, window):
    dash = [await Ws.connect(hub.port, hub.token) for _ in range(count)]
    tasks = [asyncio.create_task(d.follow(topics)) for d in dash]

    async def poll():
        while True:
            await asyncio.sleep(30)
            for _ in dash:
                await asyncio.to_thread(hub.call, "GET", "/api/fleet/programs")

    poller = asyncio.create_task(poll())
    await asyncio.sleep(3)
    for d in dash:
        d.counts.clear()
    rss0 = rss_mb(hub.proc.pid)
    cpu, load = await watch_cpu(hub.proc.pid, window)
    rss1 = rss_mb(hub.proc.pid)
    poller.cancel()
    for t in tasks:
        t.cancel()
    for d in dash:
        d.w.close()
    states = [d.counts.get("state", 0) for d in dash]
    samples = [d.counts.get("sample", 0) for d in dash]
    bad = sum(d.counts.get("lagged", 0) + d.counts.get("disconnected", 0) for d in dash)
    print(f"  hub CPU {cpu:.2f} % of a core (load {load}); RSS {rss0:.1f} -> {rss1:.1f} MB; "
          f"per dashboard: states {min(states)}-{max(states)}, samples {min(samples)}-{max(samples)}; "
          f"lagged or cut off: {bad}")


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--programs", type=int, default=50)
    ap.add_argument("--dashboards", type=int, default=10)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--window", type=float, default=60)
    args = ap.parse_args()
    nodes = {n: make_node(n, args.programs) for n in ("a", "b")}
    hub = Warden('[fleet]\nname = "hub"\n')
    try:
        for n, w in nodes.items():
            add_node(hub, n, w)
        hub.call("GET", "/api/fleet/programs")
        took = []
        for _ in range(args.requests):
            t0 = time.perf_counter()
            v = hub.call("GET", "/api/fleet/programs")
            took.append((time.perf_counter() - t0) * 1000)
        listed = len(v["programs"])
        took.sort()
        print(f"overview of 2 nodes x {args.programs + 1} programs ({listed} listed), "
              f"{args.requests} requests: p50 {statistics.median(took):.1f} ms, "
              f"p90 {took[int(len(took) * 0.9)]:.1f} ms, max {took[-1]:.1f} ms")
        print(f"hub idle RSS {rss_mb(hub.proc.pid):.1f} MB")
        print(f"{args.dashboards} Machines pages for {args.window:.0f} s (state changes relayed):")
        await dashboards(hub, args.dashboards,
                         ["programs", "node:a:programs", "node:b:programs"], args.window)
        print(f"{args.dashboards} dashboards also following both nodes' samples:")
        await dashboards(hub, args.dashboards,
                         ["programs", "node:a:programs", "node:b:programs",
                          "node:a:samples", "node:b:samples"], args.window)
    finally:
        hub.close()
        for w in nodes.values():
            w.close()


if __name__ == "__main__":
    asyncio.run(main())
