#!/usr/bin/env bash
# Backup throughput: builds the release binary, generates a ~2 GB directory of mixed
# files (incompressible region-like files, compressible text/JSON, many small files, one
# large file), runs a real `warden serve`, takes a backup at the default settings (zstd
# level 3, verified after writing) and prints MB/s, the compression ratio and warden's
# peak memory. Then verifies and restores the backup and prints those speeds too.
#
# Usage: bench/backup.sh [SIZE_MB]   (default 2048; data in $BENCH_DIR or a temp dir;
#        WARDEN_BIN=path skips the release build and uses that binary;
#        PRIORITY=normal runs the backup threads at normal priority instead of the
#        default nice 19, to measure the pipeline on a machine busy with other work)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${1:-2048}
if [ -z "${WARDEN_BIN:-}" ]; then
    cargo build --release -q
fi
BIN=${WARDEN_BIN:-$PWD/target/release/warden}
WORK=${BENCH_DIR:-$(mktemp -d)}
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; [ -z "${BENCH_DIR:-}" ] && rm -rf "$WORK"' EXIT
SRC=$WORK/world
DATA=$WORK/data
mkdir -p "$SRC" "$DATA"

python3 - "$SRC" "$SIZE_MB" <<'PY'
import os, random, sys
root, total = sys.argv[1], int(sys.argv[2]) << 20
rnd = random.Random(42)
written = 0
def put(rel, data):
    global written
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    written += len(data)
# 45 %: incompressible region files of 1-8 MiB.
i = 0
while written < total * 0.45:
    put(f"world/region/r.{i}.mca", os.urandom(rnd.randint(1, 8) << 20)); i += 1
# 30 %: compressible text and JSON (logs, player data).
words = [bytes(rnd.choice("abcdefghijklmnopqrstuvwxyz") * rnd.randint(2, 9), "ascii") for _ in range(500)]
i = 0
while written < total * 0.75:
    lines = b"\n".join(b"[12:%02d:%02d] [Server thread/INFO]: " % (rnd.randint(0, 59), rnd.randint(0, 59)) + b" ".join(rnd.choices(words, k=12)) for _ in range(20000))
    put(f"logs/{i // 50}/log-{i}.txt", lines); i += 1
# 10 %: many small files (1-64 KiB, half random, half text).
i = 0
while written < total * 0.85:
    n = rnd.randint(1, 64) << 10
    put(f"playerdata/{i % 97}/{i}.dat", os.urandom(n) if i % 2 else (b"x" * 64 + os.urandom(64)) * (n // 128)); i += 1
# 15 %: one large file, half compressible.
left = max(total - written, 1 << 20)
put("world/big.bin", os.urandom(left // 2) + bytes(left - left // 2))
print(f"generated {written / 1e6:.0f} MB in {root}", file=sys.stderr)
PY

TOKEN=$("$BIN" token create bench --role admin --data-dir "$DATA" 2>/dev/null)
if [ "${PRIORITY:-low}" = normal ]; then
    printf '[backup]\nlow_priority = false\n' > "$WORK/warden.toml"
else
    : > "$WORK/warden.toml"
fi
"$BIN" serve --listen 127.0.0.1:0 --config "$WORK/warden.toml" --data-dir "$DATA" > "$WORK/serve.out" 2> "$WORK/serve.err" &
PID=$!
for _ in $(seq 100); do grep -q "listening on" "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^warden listening on //p' "$WORK/serve.out" | head -1)
export WARDEN_URL=$URL WARDEN_TOKEN=$TOKEN
cat > "$WORK/p.toml" <<T
[[program]]
name = "bench"
command = "sleep"
args = ["100000"]
cwd = "$SRC"
T
"$BIN" apply "$WORK/p.toml" > /dev/null
sync
echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || echo "(could not drop the page cache: numbers include cached reads)" >&2

cpu() { awk '{print $14 + $15}' /proc/$PID/stat; }
LOAD=$(cut -d' ' -f1 /proc/loadavg)
C0=$(cpu)
"$BIN" ctl --json backup create bench > "$WORK/backup.json" 2> /dev/null
C1=$(cpu)
ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/backup.json")
T0=$(date +%s.%N); "$BIN" ctl backup verify "$ID" > /dev/null 2>&1; T1=$(date +%s.%N)
T2=$(date +%s.%N); "$BIN" ctl backup restore "$ID" > /dev/null 2>&1; T3=$(date +%s.%N)
HWM=$(grep VmHWM /proc/$PID/status | awk '{print $2}')

python3 - "$WORK/backup.json" "$T0" "$T1" "$T2" "$T3" "$HWM" "$C0" "$C1" "$(getconf CLK_TCK)" "$LOAD" "$(nproc)" "${PRIORITY:-low}" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
t0, t1, t2, t3 = map(float, sys.argv[2:6])
cpu = (int(sys.argv[8]) - int(sys.argv[7])) / int(sys.argv[9])
secs = (b["finished_at"] - b["started_at"]) / 1000
mb = b["data_bytes"] / 1e6
print(f"data:        {mb:.0f} MB in {b['files']} files")
print(f"machine:     {sys.argv[11]} cores, load average {sys.argv[10]} at the start, backup priority {sys.argv[12]}")
print(f"backup:      {secs:.1f} s  = {mb / secs:.0f} MB/s  (write + fsync + verify, zstd level 3)")
print(f"backup CPU:  {cpu:.1f} s of CPU (all threads) = {mb / cpu:.0f} MB per CPU-second")
print(f"archive:     {b['archive_bytes'] / 1e6:.0f} MB  (ratio {b['data_bytes'] / b['archive_bytes']:.2f})")
print(f"verify:      {t1 - t0:.1f} s  = {mb / (t1 - t0):.0f} MB/s")
print(f"restore:     {t3 - t2:.1f} s  = {mb / (t3 - t2):.0f} MB/s  (extract + verify + swap)")
print(f"warden peak RSS: {int(sys.argv[6]) / 1024:.0f} MiB")
PY
