#!/usr/bin/env python3
"""Throughput and latency of `GET /api/programs` with 50 running programs, measured
with wrk (Debian package `wrk`) from a second process on loopback."""

import re
import shutil
import subprocess
import sys

from _warden import Warden

DURATION = sys.argv[1] if len(sys.argv) > 1 else "15s"


def main():
    if not shutil.which("wrk"):
        raise SystemExit("wrk missing: apt-get install -y wrk")
    w = Warden()
    try:
        for i in range(50):
            w.call("POST", "/api/programs", {
                "name": f"p{i:02}", "command": "sleep", "args": ["100000"],
                "start_seconds": 0, "autostart": True})
        for i in range(50):
            w.wait_state(f"p{i:02}", "running")
        out = subprocess.run(
            ["wrk", "-t2", "-c32", f"-d{DURATION}", "--latency",
             "-H", f"Authorization: Bearer {w.token}", w.url + "/api/programs"],
            check=True, capture_output=True, text=True).stdout
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
        p50 = re.search(r"50%\s+(\S+)", out).group(1)
        p99 = re.search(r"99%\s+(\S+)", out).group(1)
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        print(out)
        print(f"GET /api/programs (50 programs): {float(rps):.0f} req/s, p50 {p50}, p99 {p99}, "
              f"non-2xx {errors.group(1) if errors else 0}")
    finally:
        w.close()


if __name__ == "__main__":
    main()
