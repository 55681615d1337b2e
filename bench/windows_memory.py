#!/usr/bin/env python3
"""warden.exe's own memory under Wine, idle with 50 programs (issue 21's Windows figure).

Runs the cross-built `warden.exe serve` under Wine with N (default 50) programs that wait
forever (`cmd.exe /c pause`, its stdin a pipe that never ends; started by `apply`), lets it settle for SETTLE
seconds (default 75: past the first memory check), then prints:
  - what Windows' own API tells warden about itself through Wine
    (`warden_process_private_memory_bytes` = PROCESS_MEMORY_COUNTERS_EX.PrivateUsage,
    `warden_process_resident_memory_bytes` = WorkingSetSize, from /metrics);
  - the Linux view of the same process (/proc/PID/status: RssAnon, RssFile), which
    includes Wine's own DLLs and heaps on top of warden's.

Wine 8 reports PrivateUsage as 0 and WorkingSetSize as the Linux process's whole resident
set, which includes warden.exe's image (Wine reads a PE file whose sections are not
page-aligned into anonymous memory; on Windows it is a shared, file-backed image) and
Wine's own memory. So the script also prints an estimate of warden's own private memory:
the process's RssAnon less the image's size and less the RssAnon of an idle Wine process
(one of the `cmd.exe` programs).

Needs `wine` (or $WARDEN_WINE) and warden.exe: $WARDEN_EXE, default
target/x86_64-pc-windows-gnu/release/warden.exe (build it with
`cargo build --release --target x86_64-pc-windows-gnu -p warden`). Wine 8's bcrypt lacks
ProcessPrng: `.ci/windows` builds the test-only target/wine/bcryptprimitives.dll, which is
copied beside the exe when present (from beside $WARDEN_EXE or from target/wine). $WINEPREFIX is used as given (default: a temporary
prefix, created on the first run in about a minute).

Usage: python3 bench/windows_memory.py [--programs N] [--settle S]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXE = os.environ.get(
    "WARDEN_EXE", os.path.join(ROOT, "target", "x86_64-pc-windows-gnu", "release", "warden.exe"))
WINE = os.environ.get("WARDEN_WINE", "wine")


def wine_path(path):
    """The Windows path of a Linux path (Wine maps / to drive Z:)."""
    return "Z:" + path.replace("/", "\\")


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def size_of_image(path):
    """SizeOfImage of a PE32+ file: what Wine reads into memory for it when its sections
    are not page-aligned in the file (mingw's are not), so it counts as anonymous memory."""
    with open(path, "rb") as f:
        head = f.read(4096)
    pe = int.from_bytes(head[0x3C:0x40], "little")
    optional = pe + 24
    return int.from_bytes(head[optional + 56:optional + 60], "little")


def wine_children(marker):
    """Linux pids of the Wine processes whose command line contains `marker`."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if marker in f.read():
                    pids.append(int(name))
        except OSError:
            pass
    return pids


def gauge(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--programs", type=int, default=50)
    ap.add_argument("--settle", type=int, default=75)
    args = ap.parse_args()
    if not os.path.exists(EXE):
        sys.exit(f"{EXE} missing: cargo build --release --target x86_64-pc-windows-gnu -p warden")
    if shutil.which(WINE) is None:
        sys.exit(f"{WINE} missing: apt-get install wine64 (or set WARDEN_WINE)")
    work = tempfile.mkdtemp(prefix="warden-wine-bench-")
    env = dict(os.environ, WINEDEBUG="-all", WINEDLLOVERRIDES="mscoree,mshtml=")
    own_prefix = "WINEPREFIX" not in env
    env.setdefault("WINEPREFIX", os.path.join(work, "prefix"))
    os.makedirs(env["WINEPREFIX"], exist_ok=True)
    exe = os.path.join(work, "warden.exe")
    shutil.copy(EXE, exe)
    for shim in (os.path.join(os.path.dirname(EXE), "bcryptprimitives.dll"),
                 os.path.join(ROOT, "target", "wine", "bcryptprimitives.dll")):
        if os.path.exists(shim):
            shutil.copy(shim, work)
            break
    data = os.path.join(work, "data")
    os.makedirs(data)
    with open(os.path.join(work, "warden.toml"), "w") as f:
        f.write('log_level = "warn"\n')

    def run(*argv):
        return subprocess.run([WINE, exe, *argv], env=env, check=True, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=300).stdout

    token = run("token", "create", "bench", "--role", "admin", "--data-dir", wine_path(data)).strip()
    programs = "".join(
        f'[[program]]\nname = "idle-{i}"\ncommand = "cmd.exe"\nargs = ["/c", "pause"]\n'
        'autostart = true\n\n'
        for i in range(args.programs))
    with open(os.path.join(work, "programs.toml"), "w") as f:
        f.write(programs)
    server = subprocess.Popen(
        [WINE, exe, "serve", "--listen", "127.0.0.1:0", "--config",
         wine_path(os.path.join(work, "warden.toml")), "--data-dir", wine_path(data)],
        env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        url = ""
        while not url.startswith("warden listening on "):
            url = server.stdout.readline().strip()
            if server.poll() is not None:
                sys.exit("warden.exe serve ended before it listened")
        url = url.removeprefix("warden listening on ")
        env_cli = dict(env, WARDEN_URL=url, WARDEN_TOKEN=token)
        subprocess.run([WINE, exe, "apply", wine_path(os.path.join(work, "programs.toml"))],
                       env=env_cli, check=True, capture_output=True, timeout=300,
                       stdin=subprocess.DEVNULL)
        deadline = time.time() + 300
        running = 0
        while time.time() < deadline:
            req = urllib.request.Request(f"{url}/api/programs",
                                         headers={"Authorization": "Bearer " + token})
            listing = json.loads(urllib.request.urlopen(req, timeout=60).read())
            running = sum(p["state"] == "running" for p in listing["programs"])
            if running == args.programs:
                break
            time.sleep(1)
        print(f"{running} of {args.programs} programs running; settling {args.settle} s",
              file=sys.stderr)
        time.sleep(args.settle)
        req = urllib.request.Request(f"{url}/metrics", headers={"Authorization": "Bearer " + token})
        text = urllib.request.urlopen(req, timeout=60).read().decode()
        private = gauge(text, "warden_process_private_memory_bytes")
        working_set = gauge(text, "warden_process_resident_memory_bytes")
        pid = server.pid
        print(f"warden.exe under {subprocess.run([WINE, '--version'], capture_output=True, text=True).stdout.strip()}, "
              f"{args.programs} idle programs, load {open('/proc/loadavg').read().split()[0]}")
        print("| what | MB |")
        print("|---|---|")
        fmt = lambda b: "n/a" if b is None else f"{b / 1e6:.1f}"
        print(f"| private bytes (PrivateUsage, as Windows' API reports it) | {fmt(private)} |")
        print(f"| working set (WorkingSetSize) | {fmt(working_set)} |")
        anon = status_kb(pid, "RssAnon") / 1e3
        image = size_of_image(exe) / 1e6
        floors = sorted(status_kb(p, "RssAnon") / 1e3 for p in wine_children(b"pause"))
        floor = floors[len(floors) // 2] if floors else 0.0
        print(f"| Linux view: RssAnon of warden.exe (warden + Wine) | {anon:.1f} |")
        print(f"| Linux view: RssFile of warden.exe | {status_kb(pid, 'RssFile') / 1e3:.1f} |")
        print(f"| warden.exe's image, read into anonymous memory by Wine (SizeOfImage) | {image:.1f} |")
        print(f"| Wine's own floor: RssAnon of an idle `cmd.exe /c pause` (median of {len(floors)}) | {floor:.1f} |")
        print(f"| **estimate of warden's own private memory** (RssAnon - image - floor) | **{anon - image - floor:.1f}** |")
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        if own_prefix:
            subprocess.run(["wineserver", "-k"], env=env, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
