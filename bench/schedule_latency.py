#!/usr/bin/env python3
"""Schedule timing: how late a 1-s cron schedule's job step actually runs after its due
second, and how long `POST /api/jobs/NAME/run` takes until the step's process runs.

Both figures include spawning `sh` for the step, so they are upper bounds of warden's own
part. Usage: schedule_latency.py [SECONDS_OF_FIRING] [MANUAL_RUNS]"""

import os
import statistics
import sys
import time

from _warden import Warden

SECONDS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 50


def pct(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, int(p * len(s)))]


def main():
    w = Warden()
    try:
        stamps = os.path.join(w.dir, "stamps")
        w.call("POST", "/api/jobs", {"name": "stamp", "steps": [
            {"name": "s", "command": "sh", "args": ["-c", f"date +%s%N >> {stamps}"]}]})
        w.call("POST", "/api/schedules", {"name": "tick", "trigger": "* * * * * *",
                                          "tasks": [{"action": {"kind": "job", "job": "stamp", "wait": False}}]})
        time.sleep(SECONDS + 0.5)
        w.call("DELETE", "/api/schedules/tick")
        with open(stamps) as f:
            late = [(int(l) % 1_000_000_000) / 1e6 for l in f if l.strip()]
        print(f"cron fire -> step running, {len(late)} fires: "
              f"p50 {statistics.median(late):.1f} ms, p99 {pct(late, 0.99):.1f} ms, max {max(late):.1f} ms")

        fifo = os.path.join(w.dir, "ran.fifo")
        os.mkfifo(fifo)
        fd = os.open(fifo, os.O_RDWR)  # RDWR: never sees EOF between writers
        reader = os.fdopen(fd, "r")
        w.call("POST", "/api/jobs", {"name": "ping", "steps": [
            {"name": "s", "command": "sh", "args": ["-c", f"echo x > {fifo}"]}]})
        samples = []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            run = w.call("POST", "/api/jobs/ping/run")
            reader.readline()
            samples.append((time.perf_counter() - t0) * 1000)
            while w.call("GET", f"/api/jobs/ping/runs/{run['run_id']}")["run"]["state"] == "running":
                time.sleep(0.005)
        print(f"run now -> step running, {RUNS} runs: "
              f"p50 {statistics.median(samples):.1f} ms, p99 {pct(samples, 0.99):.1f} ms")
    finally:
        w.close()


if __name__ == "__main__":
    main()
