#!/usr/bin/env python3
"""warden, PM2 and supervisord against the same 50 programs, one after the other, in one run.

For each supervisor in turn: start it with N (default 50) `sleep 100000` programs, wait
until all run, let it settle, then measure over WINDOW seconds (default 45) each:
  - its own CPU with nothing asked (warden samples every program and the host each
    second; PM2 and supervisord sample nothing),
  - its own CPU while its status list is asked once a second (warden: GET /api/programs;
    PM2: `pm2 jlist`; supervisord: `supervisorctl status`); the asking client's CPU is
    not counted,
  - resident memory at the end: RSS, private (RssAnon) and file-backed (RssFile),
  - restart latency: one more program that writes its pid into a FIFO and then execs
    `sleep`, killed with SIGKILL RUNS times (default 30); the time until the replacement
    wrote its pid (an upper bound: it includes the new shell's start-up).

CPU is the sum of the daemon's threads' scheduler run time (/proc/PID/task/*/schedstat,
nanoseconds, polled every second so threads that exit are counted up to their last poll),
next to the coarser utime+stime of /proc/PID/stat (clock ticks, every thread included).
The load average is printed with each window: other work on the machine does not
inflate a daemon's own CPU time much, but it does stretch latencies.

PM2 (npm) and supervisor (PyPI, in a venv) are installed into $BENCH_CACHE (default
/tmp/warden-bench-cache) when missing. warden is target/release/warden ($WARDEN_BIN).

Usage: python3 bench/peers.py [--window S] [--runs N] [--programs N] [--only warden,pm2,supervisord]
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from _warden import BIN, Warden

CACHE = os.environ.get("BENCH_CACHE", "/tmp/warden-bench-cache")
TICK = os.sysconf("SC_CLK_TCK")


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def thread_ns(pid):
    """Run time in ns of each live thread of pid."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                out[tid] = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return out


def stat_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def memory(pid):
    vals = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                vals[k] = int(v.split()[0]) / 1024
    return vals


def measure(pid, seconds, ask=None):
    """Own CPU of pid over `seconds` (% of one core, precise and coarse), running `ask`
    once a second."""
    first = thread_ns(pid)
    last = dict(first)
    t0_ticks = stat_ticks(pid)
    load0 = loadavg()
    t0 = time.monotonic()
    deadline = t0 + seconds
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        if ask:
            ask()
        time.sleep(max(0.0, min(1.0 - (time.monotonic() - now), deadline - time.monotonic())))
        last.update(thread_ns(pid))
    elapsed = time.monotonic() - t0
    last.update(thread_ns(pid))
    ns = sum(v - first.get(tid, 0) for tid, v in last.items())
    ticks = stat_ticks(pid) - t0_ticks
    return {
        "cpu": ns / 1e9 / elapsed * 100,
        "cpu_ticks": ticks / TICK / elapsed * 100,
        "load": f"{load0}-{loadavg()}",
    }


def restart_latency(fifo_reader, runs):
    pid = int(fifo_reader.readline())
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        new = int(fifo_reader.readline())
        samples.append((time.perf_counter() - t0) * 1000)
        pid = new
        time.sleep(0.05)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def open_fifo(path):
    os.mkfifo(path)
    # Read-write: never sees end-of-file between writers.
    return os.fdopen(os.open(path, os.O_RDWR), "r")


def victim_cmd(fifo):
    return f"echo $$ > {fifo}; exec sleep 100000"


# ---- warden ---------------------------------------------------------------------------

def run_warden(args):
    w = Warden('[metrics]\nsample_interval_ms = 1000\nsaturation_cpu_percent = 100\n')
    try:
        for i in range(args.programs):
            w.call("POST", "/api/programs", {"name": f"idle-{i}", "command": "sleep",
                                             "args": ["100000"]})
            w.call("POST", f"/api/programs/idle-{i}/start")
        for i in range(args.programs):
            w.wait_state(f"idle-{i}", "running")
        pid = w.proc.pid
        time.sleep(args.settle)
        r = {"idle": measure(pid, args.window)}
        r["asked"] = measure(pid, args.window, lambda: w.call("GET", "/api/programs"))
        r["mem"] = memory(pid)
        fifo = os.path.join(w.dir, "started.fifo")
        reader = open_fifo(fifo)
        w.call("POST", "/api/programs", {
            "name": "victim", "command": "sh", "args": ["-c", victim_cmd(fifo)],
            "start_seconds": 0,
            "restart": {"policy": "always", "backoff_initial_ms": 0, "backoff_max_ms": 0,
                        "max_failed_starts": 100000, "window_seconds": 1},
        })
        w.call("POST", "/api/programs/victim/start")
        r["restart"] = restart_latency(reader, args.runs)
        r["version"] = "warden (release)"
        return r
    finally:
        w.close()


# ---- PM2 ------------------------------------------------------------------------------

def run_pm2(args):
    pm2 = os.path.join(CACHE, "pm2", "node_modules", ".bin", "pm2")
    if not os.path.exists(pm2):
        if not shutil.which("npm"):
            raise RuntimeError("npm is missing (apt-get install -y npm)")
        os.makedirs(os.path.join(CACHE, "pm2"), exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "pm2"],
                       cwd=os.path.join(CACHE, "pm2"), check=True, capture_output=True)
    work = tempfile.mkdtemp(prefix="peers-pm2-")
    env = dict(os.environ, PM2_HOME=os.path.join(work, "home"))

    def pm(*a, check=True):
        return subprocess.run([pm2, *a], env=env, check=check, capture_output=True, text=True)

    try:
        eco = os.path.join(work, "ecosystem.config.js")
        with open(eco, "w") as f:
            f.write("module.exports = { apps: [\n")
            for i in range(args.programs):
                f.write(f"  {{ name: 'idle-{i}', script: 'sleep', args: '100000', "
                        "interpreter: 'none', autorestart: false },\n")
            f.write("] };\n")
        pm("start", eco)
        with open(os.path.join(env["PM2_HOME"], "pm2.pid")) as f:
            pid = int(f.read())
        time.sleep(args.settle)
        r = {"idle": measure(pid, args.window)}
        r["asked"] = measure(pid, args.window, lambda: pm("jlist"))
        r["mem"] = memory(pid)
        fifo = os.path.join(work, "started.fifo")
        reader = open_fifo(fifo)
        vic = os.path.join(work, "victim.config.js")
        with open(vic, "w") as f:
            f.write("module.exports = { apps: [{ name: 'victim', script: 'sh', "
                    f"args: ['-c', '{victim_cmd(fifo)}'], interpreter: 'none', "
                    "autorestart: true, restart_delay: 0, min_uptime: 100, "
                    "max_restarts: 100000 }] };\n")
        pm("start", vic)
        r["restart"] = restart_latency(reader, args.runs)
        r["version"] = "PM2 " + pm("--version").stdout.strip().splitlines()[-1]
        return r
    finally:
        pm("kill", check=False)
        shutil.rmtree(work, ignore_errors=True)


# ---- supervisord ----------------------------------------------------------------------

def run_supervisord(args):
    venv = os.path.join(CACHE, "venv")
    if not os.path.exists(os.path.join(venv, "bin", "supervisord")):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "supervisor"],
                       check=True, capture_output=True)
    work = tempfile.mkdtemp(prefix="peers-supervisord-")
    conf = os.path.join(work, "supervisord.conf")
    fifo = os.path.join(work, "started.fifo")
    with open(conf, "w") as f:
        f.write(f"[unix_http_server]\nfile={work}/supervisor.sock\n"
                f"[supervisord]\nlogfile={work}/supervisord.log\npidfile={work}/supervisord.pid\n"
                "nodaemon=true\n"
                "[rpcinterface:supervisor]\n"
                "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
                f"[supervisorctl]\nserverurl=unix://{work}/supervisor.sock\n")
        for i in range(args.programs):
            f.write(f"[program:idle-{i}]\ncommand=sleep 100000\nautorestart=false\n"
                    "stdout_logfile=NONE\nstderr_logfile=NONE\n")
        f.write(f"[program:victim]\ncommand=sh -c '{victim_cmd(fifo)}'\nautostart=false\n"
                "autorestart=true\nstartsecs=0\nstartretries=100000\n"
                "stdout_logfile=NONE\nstderr_logfile=NONE\n")
    ctl = [os.path.join(venv, "bin", "supervisorctl"), "-c", conf]
    proc = subprocess.Popen([os.path.join(venv, "bin", "supervisord"), "-c", conf],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            out = subprocess.run(ctl + ["status"], capture_output=True, text=True).stdout
            if out.count("RUNNING") >= args.programs:
                break
            time.sleep(0.5)
        time.sleep(args.settle)
        r = {"idle": measure(proc.pid, args.window)}
        r["asked"] = measure(proc.pid, args.window,
                             lambda: subprocess.run(ctl + ["status"], capture_output=True))
        r["mem"] = memory(proc.pid)
        reader = open_fifo(fifo)
        subprocess.run(ctl + ["start", "victim"], capture_output=True)
        r["restart"] = restart_latency(reader, args.runs)
        ver = subprocess.run([os.path.join(venv, "bin", "supervisord"), "--version"],
                             capture_output=True, text=True).stdout.strip()
        r["version"] = "supervisord " + ver
        return r
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--window", type=float, default=45)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--programs", type=int, default=50)
    ap.add_argument("--settle", type=float, default=5)
    ap.add_argument("--only", default="warden,pm2,supervisord")
    args = ap.parse_args()
    runners = {"warden": run_warden, "pm2": run_pm2, "supervisord": run_supervisord}
    results = {}
    for name in args.only.split(","):
        try:
            results[name] = runners[name](args)
        except Exception as e:  # one missing peer must not lose the others' figures
            print(f"{name}: not measured: {e}", file=sys.stderr)
    print(f"{args.programs} x `sleep 100000`, {args.window:.0f} s windows, {args.runs} restarts; "
          f"{os.cpu_count()} CPUs; warden binary {BIN} "
          f"({os.path.getsize(BIN) / 1e6:.1f} MB)")
    head = ("", "CPU idle %", "(ticks)", "load", "CPU 1 Hz list %", "(ticks)", "load",
            "RSS MB", "private MB", "file MB", "restart median ms", "p99 ms")
    fmt = "{:<22} {:>10} {:>8} {:>11} {:>15} {:>8} {:>11} {:>7} {:>10} {:>8} {:>17} {:>8}"
    print(fmt.format(*head))
    for name, r in results.items():
        i, a, m = r["idle"], r["asked"], r["mem"]
        print(fmt.format(
            r["version"][:22], f"{i['cpu']:.3f}", f"{i['cpu_ticks']:.3f}", i["load"],
            f"{a['cpu']:.3f}", f"{a['cpu_ticks']:.3f}", a["load"],
            f"{m.get('VmRSS', 0):.1f}", f"{m.get('RssAnon', 0):.1f}",
            f"{m.get('RssFile', 0):.1f}", f"{r['restart'][0]:.2f}", f"{r['restart'][1]:.2f}"))


if __name__ == "__main__":
    main()
