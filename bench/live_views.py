#!/usr/bin/env python3
"""Live views at scale: warden's own CPU while many dashboards follow it over /api/ws.

1. Samples: N programs (default 50) `sleep 100000`, sampled every second; D dashboards
   (default 50) connected to /api/ws, each subscribed to `samples` (every program's
   samples and the host's, 1 Hz). Over WINDOW seconds (default 45): warden's CPU (% of one
   core, scheduler run time of its threads), the messages each dashboard received, and
   whether any was told `lagged` or dropped (its queue is bounded: a slow client is cut
   off, never buffered without limit).
2. Console: one program prints RATE lines a second (default 1000) for WINDOW seconds,
   pacing itself against its own clock, while F followers (default 20) subscribe to
   `console:NAME`. The program records how long its writes took in all: if warden fell
   behind reading its output, the pipe would fill and the program would be slowed. Printed:
   the program's achieved rate, lines each follower received, warden's CPU.

The WebSocket client is a minimal one written against the standard library (text frames,
masking, ping → pong), so the script needs nothing installed.

Usage: python3 bench/live_views.py [--window S] [--programs N] [--dashboards D]
                                   [--followers F] [--rate R]
"""

import argparse
import asyncio
import base64
import json
import os
import struct
import sys
import time

from _warden import Warden
from peers import loadavg, thread_ns


class Ws:
    """A WebSocket client: enough of RFC 6455 to follow warden's hub."""

    def __init__(self, reader, writer):
        self.r, self.w = reader, writer
        self.counts = {}

    @classmethod
    async def connect(cls, port, token):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /api/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      f"Authorization: Bearer {token}\r\n\r\n").encode())
        status = await reader.readline()
        if b" 101 " not in status:
            raise RuntimeError(f"upgrade refused: {status!r}")
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        return cls(reader, writer)

    def send(self, payload, opcode=0x1):
        data = payload.encode() if isinstance(payload, str) else payload
        mask = os.urandom(4)
        head = bytes([0x80 | opcode])
        n = len(data)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.w.write(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    async def frames(self):
        while True:
            b0, b1 = await self.r.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", await self.r.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", await self.r.readexactly(8))[0]
            payload = await self.r.readexactly(n)
            op = b0 & 0x0F
            if op == 0x9:
                self.send(payload, 0xA)
            elif op == 0x8:
                return
            elif op == 0x1:
                yield payload

    async def follow(self, topics):
        self.send(json.dumps({"op": "subscribe", "topics": topics}))
        try:
            async for payload in self.frames():
                kind = json.loads(payload).get("type", "?")
                self.counts[kind] = self.counts.get(kind, 0) + 1
        except (asyncio.IncompleteReadError, ConnectionError):
            self.counts["disconnected"] = self.counts.get("disconnected", 0) + 1


def cpu_window(pid):
    first = thread_ns(pid)
    return first, time.monotonic()


def cpu_since(pid, first, t0, last):
    last.update(thread_ns(pid))
    return sum(v - first.get(t, 0) for t, v in last.items()) / 1e9 / (time.monotonic() - t0) * 100


async def watch_cpu(pid, seconds):
    first, t0 = cpu_window(pid)
    last = dict(first)
    load0 = loadavg()
    end = t0 + seconds
    while time.monotonic() < end:
        await asyncio.sleep(min(1.0, end - time.monotonic()))
        last.update(thread_ns(pid))
    return cpu_since(pid, first, t0, last), f"{load0}-{loadavg()}"


async def samples_phase(w, args):
    dash = [await Ws.connect(w.port, w.token) for _ in range(args.dashboards)]
    tasks = [asyncio.create_task(d.follow(["samples"])) for d in dash]
    await asyncio.sleep(3)
    for d in dash:
        d.counts.clear()
    cpu, load = await watch_cpu(w.proc.pid, args.window)
    for t in tasks:
        t.cancel()
    for d in dash:
        d.w.close()
    per = [d.counts.get("sample", 0) for d in dash]
    bad = sum(d.counts.get("lagged", 0) + d.counts.get("disconnected", 0) for d in dash)
    print(f"{args.dashboards} dashboards following samples of {args.programs} programs "
          f"for {args.window:.0f} s: warden CPU {cpu:.3f} % of a core (load {load}); "
          f"program samples per dashboard min {min(per)} max {max(per)} "
          f"(expected ~{args.programs * args.window:.0f}); lagged or cut off: {bad}")


CHATTY = r"""
import sys, time
rate, secs, out = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
n = int(rate * secs)
t0 = time.monotonic()
blocked = 0.0
for i in range(n):
    due = t0 + i / rate
    now = time.monotonic()
    if due > now:
        time.sleep(due - now)
    w0 = time.monotonic()
    sys.stdout.write(f"line {i} {'x' * 60}\n")
    sys.stdout.flush()
    blocked = max(blocked, time.monotonic() - w0)
took = time.monotonic() - t0
open(out, "w").write(f"{n} {took} {blocked}\n")
time.sleep(100000)
"""


async def console_phase(w, args):
    result = os.path.join(w.dir, "chatty.result")
    script = os.path.join(w.dir, "chatty.py")
    with open(script, "w") as f:
        f.write(CHATTY)
    w.call("POST", "/api/programs", {"name": "chatty", "command": sys.executable,
                                     "args": ["-u", script, str(args.rate),
                                              str(args.window), result]})
    fol = [await Ws.connect(w.port, w.token) for _ in range(args.followers)]
    tasks = [asyncio.create_task(f.follow(["console:chatty"])) for f in fol]
    await asyncio.sleep(1)
    w.call("POST", "/api/programs/chatty/start")
    cpu, load = await watch_cpu(w.proc.pid, args.window)
    deadline = time.monotonic() + 30
    while not os.path.exists(result) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    await asyncio.sleep(1)
    for t in tasks:
        t.cancel()
    n, took, blocked = open(result).read().split()
    got = [f.counts.get("console", 0) for f in fol]
    bad = sum(f.counts.get("lagged", 0) + f.counts.get("disconnected", 0) for f in fol)
    print(f"console: {n} lines at {args.rate:.0f}/s to {args.followers} followers: program "
          f"achieved {int(n) / float(took):.0f} lines/s ({float(took):.2f} s for "
          f"{args.window:.0f} s of lines, longest write {float(blocked) * 1000:.2f} ms); "
          f"lines per follower min {min(got)} max {max(got)}; lagged or cut off: {bad}; "
          f"warden CPU {cpu:.2f} % of a core (load {load})")


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--window", type=float, default=45)
    ap.add_argument("--programs", type=int, default=50)
    ap.add_argument("--dashboards", type=int, default=50)
    ap.add_argument("--followers", type=int, default=20)
    ap.add_argument("--rate", type=float, default=1000)
    args = ap.parse_args()
    w = Warden('[metrics]\nsample_interval_ms = 1000\nsaturation_cpu_percent = 100\n')
    try:
        for i in range(args.programs):
            w.call("POST", "/api/programs", {"name": f"idle-{i}", "command": "sleep",
                                             "args": ["100000"]})
            w.call("POST", f"/api/programs/idle-{i}/start")
        for i in range(args.programs):
            w.wait_state(f"idle-{i}", "running")
        await asyncio.sleep(3)
        cpu, load = await watch_cpu(w.proc.pid, args.window)
        print(f"no dashboards: warden CPU {cpu:.3f} % of a core (load {load})")
        await samples_phase(w, args)
        await console_phase(w, args)
    finally:
        w.close()


if __name__ == "__main__":
    asyncio.run(main())
