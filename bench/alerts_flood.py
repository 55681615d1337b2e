#!/usr/bin/env python3
"""Alert delivery under a dead endpoint: queue N notifications for a channel whose
endpoint accepts connections and never answers, and show that warden's threads, tasks and
memory stay flat while a second channel keeps delivering.

Usage: bench/alerts_flood.py [--bin target/release/warden] [--count 1000]
Prints one figure per line. Standard library only.
"""

import argparse
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def hanging_server():
    """Accepts connections and never answers; returns its port."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    held = []

    def loop():
        while True:
            conn, _ = s.accept()
            held.append(conn)

    threading.Thread(target=loop, daemon=True).start()
    return s.getsockname()[1]


class Ok(http.server.BaseHTTPRequestHandler):
    hits = []

    def do_POST(self):
        n = int(self.headers.get("content-length", "0"))
        Ok.hits.append((time.time(), json.loads(self.rfile.read(n) or b"null")))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def ok_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1]


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/warden")
    ap.add_argument("--count", type=int, default=1000)
    args = ap.parse_args()
    if not os.path.exists(args.bin):
        sys.exit(f"{args.bin} not found; build it first (cargo build --release)")
    data = tempfile.mkdtemp(prefix="warden-bench-")
    cfg = os.path.join(data, "bench.toml")
    with open(cfg, "w") as f:
        f.write('log_level = "error"\n[alerts]\nrequest_timeout_seconds = 2\n')
    token = subprocess.check_output(
        [args.bin, "token", "create", "bench", "--role", "admin", "--data-dir", data],
        stderr=subprocess.DEVNULL, text=True).strip()
    srv = subprocess.Popen(
        [args.bin, "serve", "--listen", "127.0.0.1:0", "--config", cfg, "--data-dir", data],
        stdout=subprocess.PIPE, text=True)
    base = srv.stdout.readline().strip().removeprefix("warden listening on ")

    def call(method, path, body=None):
        req = urllib.request.Request(
            base + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    try:
        dead, live = hanging_server(), ok_server()
        call("POST", "/api/alerts/channels", {
            "name": "dead", "target": {"kind": "webhook", "url": f"http://127.0.0.1:{dead}/x"}})
        call("POST", "/api/alerts/channels", {
            "name": "alive", "target": {"kind": "webhook", "url": f"http://127.0.0.1:{live}/x"},
            "events": ["test"]})

        def queue(n):
            with ThreadPoolExecutor(16) as ex:
                list(ex.map(lambda _: call("POST", "/api/alerts/channels/dead/test?wait=0"), range(n)))

        queue(50)
        time.sleep(1)
        before = (proc_status(srv.pid, "Threads:"), proc_status(srv.pid, "VmRSS:"),
                  call("GET", "/api/alerts/status")["runtime_tasks"])
        t0 = time.time()
        queue(args.count)
        took = time.time() - t0
        print(f"queued {args.count} notifications in {took:.2f} s ({args.count / took:.0f}/s, each committed before the API answered)")
        t1 = time.time()
        res = call("POST", "/api/alerts/channels/alive/test?wait=10")
        print(f"other channel, test message while {args.count} wait on the dead one: {res['status']} in {(time.time() - t1) * 1000:.0f} ms")
        time.sleep(10)
        st = call("GET", "/api/alerts/status")
        after = (proc_status(srv.pid, "Threads:"), proc_status(srv.pid, "VmRSS:"), st["runtime_tasks"])
        print(f"threads: {before[0]} -> {after[0]}")
        print(f"VmRSS kB: {before[1]} -> {after[1]}")
        print(f"runtime tasks: {before[2]} -> {after[2]}")
        print(f"pending {st['pending']}, in flight {st['in_flight']}/{st['senders']}")
        dead_ch = call("GET", "/api/alerts/channels/dead")
        print(f"dead channel breaker: {dead_ch['breaker']['state']}")
    finally:
        srv.terminate()
        srv.wait(timeout=30)


if __name__ == "__main__":
    main()
