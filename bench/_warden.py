"""Helpers shared by the bench scripts: start a release warden in a temp dir, call its API."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("WARDEN_BIN", os.path.join(ROOT, "target", "release", "warden"))


class Warden:
    def __init__(self, config=""):
        if not os.path.exists(BIN):
            raise SystemExit(f"{BIN} missing: run `cargo build --release -p warden` first")
        self.dir = tempfile.mkdtemp(prefix="warden-bench-")
        cfg = os.path.join(self.dir, "bench.toml")
        with open(cfg, "w") as f:
            f.write('log_level = "warn"\nallow_root_programs = true\n' + config)
        self.token = subprocess.run(
            [BIN, "token", "create", "bench", "--role", "admin", "--data-dir", self.dir],
            check=True, capture_output=True, text=True).stdout.strip()
        self.proc = subprocess.Popen(
            [BIN, "serve", "--listen", "127.0.0.1:0", "--config", cfg, "--data-dir", self.dir],
            stdout=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline().strip()
        self.url = first.removeprefix("warden listening on ")
        self.port = int(self.url.rsplit(":", 1)[1])

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def wait_state(self, name, state, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = self.call("GET", f"/api/programs/{name}")
            if v["state"] == state:
                return v
            time.sleep(0.02)
        raise TimeoutError(f"{name} not {state}")

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)
