#!/usr/bin/env python3
"""Time from `warden new --template …` to a ready server, with the test doubles.

Two templates, installed RUNS times each into one warden:
- a SteamCMD server: the fake SteamCMD of the tests (tests/it/fixtures/fake-steamcmd,
  its progress lines without pauses) installs a 1 MB "game" and a server.sh that says
  "server ready";
- a Minecraft (vanilla) server: a local double of Mojang's version manifest serves a
  64 KB "jar" with its SHA-1 (the jar is a shell script run with `sh`: no Java server).

Each run: `warden new --template T NAME` (the CLI posts the install and follows it to
its end; it polls every 500 ms) → `POST /api/programs/NAME/start` → the program is
`running` (its readiness line seen). The same again through `POST /api/install` polled
every 5 ms, which leaves out the CLI's start-up and poll interval. Prints the median and
worst of install, start-to-ready and the total.

    python3 bench/install.py [RUNS]     # WARDEN_BIN=target/debug/warden for a debug build
"""

import hashlib
import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from _warden import BIN, ROOT, Warden

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
FAKE = os.path.join(ROOT, "tests", "it", "fixtures", "fake-steamcmd")

JAR = (b"echo 'fake minecraft jar'\necho 'Done (0.1s)! For help, type help'\n"
       b"trap 'exit 0' INT TERM\nwhile :; do sleep 1; done\n#" + b"x" * 65536 + b"\n")

STEAM_TEMPLATE = """name = "bench-steam"
version = 1
title = "Bench SteamCMD server"
start_seconds = 60
[source]
kind = "steamcmd"
app = 4000
[command.linux]
command = "./server.sh"
[game]
profile = "generic"
readiness_line = "server ready"
"""

MC_TEMPLATE = """name = "bench-mc"
version = 1
title = "Bench Minecraft server"
start_seconds = 60
[source]
kind = "minecraft"
flavor = "vanilla"
version = "latest"
[command.linux]
command = "sh"
args = ["server.jar"]
[game]
profile = "generic"
readiness_line = "For help"
"""


def mojang_double():
    """Serves the version manifest, one version's metadata and its jar; answers its base."""
    sha1 = hashlib.sha1(JAR).hexdigest()
    state = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            base = state["base"]
            if self.path == "/mc/game/version_manifest_v2.json":
                body = json.dumps({"latest": {"release": "1.0.0"}, "versions": [
                    {"id": "1.0.0", "type": "release", "url": f"{base}/v1/packages/1.0.0.json"}]})
            elif self.path == "/v1/packages/1.0.0.json":
                body = json.dumps({"downloads": {"server": {
                    "sha1": sha1, "size": len(JAR), "url": f"{base}/v1/objects/server.jar"}}})
            elif self.path == "/v1/objects/server.jar":
                self.send_response(200)
                self.send_header("Content-Length", str(len(JAR)))
                self.end_headers()
                self.wfile.write(JAR)
                return
            else:
                self.send_error(404)
                return
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["base"] = f"http://127.0.0.1:{srv.server_address[1]}"
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return state["base"]


def one(w, template, name):
    t0 = time.perf_counter()
    r = subprocess.run([BIN, "new", "--template", template, name,
                        "--url", w.url, "--token", w.token],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"warden new failed: {r.stdout}{r.stderr}")
    t1 = time.perf_counter()
    w.call("POST", f"/api/programs/{name}/start")
    try:
        w.wait_state(name, "running", timeout=60)
    except TimeoutError:
        v = w.call("GET", f"/api/programs/{name}")
        c = w.call("GET", f"/api/programs/{name}/console?lines=20")
        raise SystemExit(f"{name} did not become ready: {v.get('state')} "
                         f"{v.get('last_error') or ''} console: {c}")
    t2 = time.perf_counter()
    w.call("POST", f"/api/programs/{name}/stop")
    return (t1 - t0) * 1000, (t2 - t1) * 1000, (t2 - t0) * 1000


def one_api(w, template, name):
    """The same through the API, polled every 5 ms (no CLI start-up, no 500 ms poll)."""
    t0 = time.perf_counter()
    st = w.call("POST", "/api/install", {"template": template, "name": name})
    while st["state"] not in ("installed", "failed"):
        time.sleep(0.005)
        st = w.call("GET", f"/api/install/{st['id']}")
    if st["state"] != "installed":
        raise SystemExit(f"install failed: {st}")
    t1 = time.perf_counter()
    w.call("POST", f"/api/programs/{name}/start")
    w.wait_state(name, "running", timeout=60)
    t2 = time.perf_counter()
    w.call("POST", f"/api/programs/{name}/stop")
    return (t1 - t0) * 1000, (t2 - t1) * 1000, (t2 - t0) * 1000


def report(label, rows):
    inst, ready, total = (sorted(col) for col in zip(*rows))
    print(f"{label}: {len(rows)} runs: install median {statistics.median(inst):.0f} ms "
          f"(max {inst[-1]:.0f}), start→ready median {statistics.median(ready):.0f} ms "
          f"(max {ready[-1]:.0f}), total median {statistics.median(total):.0f} ms "
          f"(max {total[-1]:.0f})")


def main():
    base = mojang_double()
    w = None
    try:
        # The fake SteamCMD without pauses between its progress lines.
        wrapper_dir = tempfile.mkdtemp(prefix="warden-bench-steamcmd-")
        tmp_wrapper = os.path.join(wrapper_dir, "steamcmd")
        with open(tmp_wrapper, "w") as f:
            f.write(f"#!/bin/sh\nexport FAKE_STEAMCMD_STEP=0\nexec '{FAKE}' \"$@\"\n")
        os.chmod(tmp_wrapper, 0o755)
        w = Warden(f'[install]\nsteamcmd = "{tmp_wrapper}"\nmojang_url = "{base}"\n')
        os.makedirs(os.path.join(w.dir, "templates"), exist_ok=True)
        for name, text in (("bench-steam", STEAM_TEMPLATE), ("bench-mc", MC_TEMPLATE)):
            with open(os.path.join(w.dir, "templates", f"{name}.toml"), "w") as f:
                f.write(text)
        for template, label in (("bench-steam", "SteamCMD (fake)"),
                                ("bench-mc", "Minecraft vanilla (double)")):
            report(f"{label}, `warden new`",
                   [one(w, template, f"{template}-{i}") for i in range(RUNS)])
            report(f"{label}, POST /api/install",
                   [one_api(w, template, f"{template}-api-{i}") for i in range(RUNS)])
        shutil.rmtree(wrapper_dir, ignore_errors=True)
    finally:
        if w is not None:
            w.close()


if __name__ == "__main__":
    main()
