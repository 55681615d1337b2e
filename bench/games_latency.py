#!/usr/bin/env python3
"""Latency of the game integrations through warden's API, against the demo game server:
RCON round trips (a one-packet `list` and a three-packet `dump 10000`), a players query
(Server List Ping), and start -> running with a log-line readiness check.

Usage: bench/games_latency.py [RUNS]   (WARDEN_BIN selects the binary; release by default)"""

import os
import socket
import statistics
import sys
import time

from _warden import BIN, Warden

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 200
PASSWORD = "bench-password"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(fn, runs):
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main():
    w = Warden()
    try:
        world = os.path.join(w.dir, "world")
        os.makedirs(world)
        with open(os.path.join(world, "pw"), "w") as f:
            f.write(PASSWORD)
        rcon, slp = free_port(), free_port()
        script = (f'exec "$0" demo-game --startup-ms 0 --save-dir "$1" --rcon-port {rcon} '
                  f'--rcon-password "$(cat "$1/pw")" --slp-port {slp}')
        w.call("POST", "/api/programs", {
            "name": "mc", "command": "sh", "args": ["-c", script, BIN, world],
            "start_seconds": 60,
            "game": {"profile": "minecraft", "rcon": {"port": rcon, "password": PASSWORD},
                     "query": {"kind": "slp", "port": slp}},
        })
        starts = []
        for _ in range(10):
            t0 = time.perf_counter()
            w.call("POST", "/api/programs/mc/start")
            w.wait_state("mc", "running")
            starts.append((time.perf_counter() - t0) * 1000)
            w.call("POST", "/api/programs/mc/stop")
            w.wait_state("mc", "stopped")
        w.call("POST", "/api/programs/mc/start")
        w.wait_state("mc", "running")
        rcon_list = timed(lambda: w.call("POST", "/api/programs/mc/rcon", {"command": "list"}), RUNS)
        rcon_dump = timed(lambda: w.call("POST", "/api/programs/mc/rcon", {"command": "dump 10000"}), RUNS)
        players = timed(lambda: w.call("GET", "/api/programs/mc/players"), RUNS)
        print(f"binary: {BIN}")
        print(f"start -> running (Done line, demo --startup-ms 0), median of 10: {statistics.median(starts):.1f} ms")
        print(f"RCON list via API ({RUNS} runs): median {rcon_list[0]:.2f} ms, p99 {rcon_list[1]:.2f} ms")
        print(f"RCON dump 10000 via API ({RUNS} runs): median {rcon_dump[0]:.2f} ms, p99 {rcon_dump[1]:.2f} ms")
        print(f"players (SLP) via API ({RUNS} runs): median {players[0]:.2f} ms, p99 {players[1]:.2f} ms")
    finally:
        w.close()


if __name__ == "__main__":
    main()
