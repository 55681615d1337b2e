#!/usr/bin/env bash
# Import and chart-query speed: imports 7 days of 1 s samples (604,800 lines) through
# `warden metrics import`, times 1000-point chart queries over those 7 days, then imports
# 23 earlier days (30 days in all) and times 1000-point queries over 30 days.
# Medians of RUNS (default 30) HTTP requests, measured by curl.
# Needs: a release build (cargo build --release), python3, curl.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release/warden
RUNS=${RUNS:-30}
WORK=$(mktemp -d /tmp/warden-query.XXXXXX)
WPID=
cleanup() { [ -n "$WPID" ] && kill "$WPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }

TOKEN=$("$BIN" token create bench --role admin --data-dir "$WORK/data" 2>/dev/null)
"$BIN" serve --listen 127.0.0.1:0 --data-dir "$WORK/data" > "$WORK/out" 2> "$WORK/err" &
WPID=$!
for _ in $(seq 100); do grep -q listening "$WORK/out" 2>/dev/null && break; sleep 0.1; done
URL=$(head -1 "$WORK/out" | sed 's/warden listening on //')
curl -sf -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d '{"name":"hist","command":"sleep","args":["1000000"]}' "$URL/api/programs" > /dev/null

NOW=$(( $(date +%s) * 1000 ))
gen() { # gen FROM_MS COUNT FILE: one sample per second
  python3 - "$1" "$2" "$3" <<'PY'
import sys, random
start, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    for i in range(n):
        ts = start + i * 1000
        f.write('{"ts":%d,"cpu_percent":%.2f,"memory_bytes":%d,"virtual_bytes":%d,"threads":%d,"open_files":%d,"disk_read_bps":%d,"disk_write_bps":%d}\n'
                % (ts, random.uniform(0, 150), 2_000_000_000 + random.randrange(100_000_000), 9_000_000_000, 48, 170, random.randrange(50_000), random.randrange(200_000)))
PY
}
WEEK=604800
gen $((NOW - WEEK * 1000)) $WEEK "$WORK/week.jsonl"
t0=$(date +%s.%N)
"$BIN" metrics --url "$URL" --token "$TOKEN" import hist "$WORK/week.jsonl"
t1=$(date +%s.%N)
IMPORT=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}')

median_ms() { # median_ms URL
  for _ in $(seq "$RUNS"); do
    curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $TOKEN" "$1"
  done | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)] * 1000}'
}
Q7="$URL/api/programs/hist/metrics?from=$((NOW - WEEK * 1000))&to=$NOW&points=1000"
TIER7=$(curl -s -H "Authorization: Bearer $TOKEN" "$Q7" | python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["tier"], len(v["timestamps"]))')
M7=$(median_ms "$Q7")

REST=$((23 * 86400))
gen $((NOW - (WEEK + REST) * 1000)) $REST "$WORK/rest.jsonl"
"$BIN" metrics --url "$URL" --token "$TOKEN" import hist "$WORK/rest.jsonl" > /dev/null
Q30="$URL/api/programs/hist/metrics?from=$((NOW - 30 * 86400 * 1000))&to=$NOW&points=1000"
TIER30=$(curl -s -H "Authorization: Bearer $TOKEN" "$Q30" | python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["tier"], len(v["timestamps"]))')
M30=$(median_ms "$Q30")

echo "import of $WEEK samples (7 days at 1 s, CLI → HTTP → store): ${IMPORT} s (target < 10 s)"
echo "1000-point chart over 7 days:  median ${M7} ms of $RUNS (target < 20 ms); tier/points: $TIER7"
echo "1000-point chart over 30 days: median ${M30} ms of $RUNS (target < 50 ms); tier/points: $TIER30"
