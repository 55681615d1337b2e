#!/usr/bin/env python3
"""Median time from `kill -9` of a supervised child to its replacement running.

The supervised program writes its pid into a FIFO as the first thing it does, so the
figure is an upper bound that includes the new shell's own start-up (~1 ms)."""

import os
import signal
import statistics
import sys
import time

from _warden import Warden

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 200


def main():
    w = Warden()
    try:
        fifo = os.path.join(w.dir, "started.fifo")
        os.mkfifo(fifo)
        w.call("POST", "/api/programs", {
            "name": "victim", "command": "sh",
            "args": ["-c", f"echo $$ > {fifo}; exec sleep 100000"],
            "start_seconds": 0,
            "restart": {"policy": "always", "backoff_initial_ms": 0, "backoff_max_ms": 0,
                        "max_failed_starts": 100000, "window_seconds": 1},
        })
        fd = os.open(fifo, os.O_RDWR)  # RDWR: never sees EOF between writers
        reader = os.fdopen(fd, "r")
        w.call("POST", "/api/programs/victim/start")
        pid = int(reader.readline())
        samples = []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            new = int(reader.readline())
            samples.append((time.perf_counter() - t0) * 1000)
            assert new != pid
            pid = new
            time.sleep(0.01)
        samples.sort()
        print(f"kill -9 -> replacement running, {RUNS} runs: "
              f"median {statistics.median(samples):.2f} ms, "
              f"p90 {samples[int(len(samples) * 0.9)]:.2f} ms, max {samples[-1]:.2f} ms")
    finally:
        w.close()


if __name__ == "__main__":
    main()
