#!/usr/bin/env python3
"""Where warden's idle time goes, thread by thread.

Starts target/release/warden ($WARDEN_BIN) with N (default 50) `sleep 100000` programs
sampled every second, lets it settle 10 s, then prints each thread's CPU (ms per second,
from /proc/PID/task/*/schedstat) and voluntary wake-ups per second over WINDOW seconds
(default 30), the total in % of a core, the load average, and the resident memory.

Usage: python3 bench/idle_threads.py [N] [WINDOW]
"""

import os
import sys
import time

from _warden import Warden

def snap(pid):
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
            ns = int(open(f"/proc/{pid}/task/{tid}/schedstat").read().split()[0])
            st = open(f"/proc/{pid}/task/{tid}/status").read()
            v = int(st.split("voluntary_ctxt_switches:")[1].split()[0])
            out[tid] = (name, ns, v)
        except OSError:
            pass
    return out

n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
win = float(sys.argv[2]) if len(sys.argv) > 2 else 30
w = Warden('[metrics]\nsample_interval_ms = 1000\nsaturation_cpu_percent = 100\n')
try:
    for i in range(n):
        w.call("POST", "/api/programs", {"name": f"idle-{i}", "command": "sleep", "args": ["100000"]})
        w.call("POST", f"/api/programs/idle-{i}/start")
    for i in range(n):
        w.wait_state(f"idle-{i}", "running")
    pid = w.proc.pid
    time.sleep(10)
    a = snap(pid); t0 = time.time(); time.sleep(win); b = snap(pid); dt = time.time() - t0
    tot = 0
    rows = []
    for tid, (name, ns, v) in b.items():
        ns0, v0 = (a[tid][1], a[tid][2]) if tid in a else (0, 0)
        tot += ns - ns0
        rows.append((ns - ns0, name, tid, (v - v0) / dt))
    rows.sort(reverse=True)
    for ns, name, tid, wps in rows[:12]:
        print(f"{name:20} {tid:>8} {ns/1e6/dt:8.3f} ms/s  {wps:7.1f} wakeups/s")
    print(f"TOTAL {tot/1e9/dt*100:.3f} % of a core, load {open('/proc/loadavg').read().split()[0]}")
    st = open(f"/proc/{pid}/status").read()
    for k in ("VmRSS", "RssAnon", "RssFile"):
        print(k, st.split(k + ":")[1].split()[0], "kB")
finally:
    w.close()
