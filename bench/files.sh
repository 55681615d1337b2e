#!/usr/bin/env bash
# Files benchmark: upload and download of a large file (throughput and the server's peak
# memory growth), listing pages of a 100,000-entry folder, and a folder archive.
#
#   bench/files.sh [path/to/warden] [size_mib]
#
# Defaults: target/release/warden if built, else target/debug/warden; 1024 MiB.
# Needs curl and python3. Prints one line per figure. Linux only (reads /proc).
set -euo pipefail

bin=${1:-}
if [[ -z $bin ]]; then
    if [[ -x target/release/warden ]]; then bin=target/release/warden; else bin=target/debug/warden; fi
fi
bin=$(realpath "$bin")
size_mib=${2:-1024}
work=$(mktemp -d)
server=
cleanup() {
    [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/data" "$work/mc/big"
token=$("$bin" token create bench --role admin --data-dir "$work/data" 2>/dev/null)
"$bin" serve --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/out.log" 2>"$work/err.log" &
server=$!
for _ in $(seq 100); do
    url=$(head -1 "$work/out.log" 2>/dev/null | sed -n 's/^warden listening on //p')
    [[ -n $url ]] && break
    sleep 0.1
done
[[ -n $url ]] || { echo "warden did not start" >&2; exit 1; }
auth=(-H "Authorization: Bearer $token")
curl -sf "${auth[@]}" -H 'content-type: application/json' \
    -d "{\"name\":\"mc\",\"command\":\"true\",\"cwd\":\"$work/mc\"}" "$url/api/programs" >/dev/null

hwm() { awk '/VmHWM/ {print $2}' "/proc/$server/status"; }
secs() { python3 -c 'import sys,time; print(f"{time.time()-float(sys.argv[1]):.2f}")' "$1"; }
now() { python3 -c 'import time; print(time.time())'; }

echo "binary: $bin"
# A sparse source file: reading it costs no disk, so the figures are warden's.
truncate -s "${size_mib}M" "$work/src.bin"
curl -sf "${auth[@]}" "$url/api/programs/mc/files" >/dev/null
base=$(hwm)
t=$(now)
curl -sf "${auth[@]}" -F "files=@$work/src.bin;filename=big.bin" "$url/api/programs/mc/files/upload" >/dev/null
up=$(secs "$t")
t=$(now)
curl -sf "${auth[@]}" -o /dev/null "$url/api/programs/mc/files/download?path=big.bin"
down=$(secs "$t")
grown=$(( ($(hwm) - base) / 1024 ))
echo "upload ${size_mib} MiB: ${up} s ($(python3 -c "print(round($size_mib/$up))") MiB/s)"
echo "download ${size_mib} MiB: ${down} s ($(python3 -c "print(round($size_mib/$down))") MiB/s)"
echo "server peak RSS growth over both: ${grown} MiB (baseline $((base / 1024)) MiB)"
rm -f "$work/mc/big.bin" "$work/src.bin"

python3 -c "
import os, sys
d = sys.argv[1]
for i in range(100000):
    open(os.path.join(d, f'e{i:06}'), 'w').close()
" "$work/mc/big"
for q in "limit=1000" "limit=1000&after=f/e050000" "limit=1000&after=f/e099000"; do
    t=$(now)
    curl -sf "${auth[@]}" -o /dev/null "$url/api/programs/mc/files?path=big&$q"
    echo "list 1000 of 100,000 entries ($q): $(secs "$t") s"
done
t=$(now)
curl -sf "${auth[@]}" -o /dev/null "$url/api/programs/mc/files/download?path=big&format=tar.zst"
echo "tar.zst of the 100,000-entry folder: $(secs "$t") s"
t=$(now)
curl -sf "${auth[@]}" -o /dev/null "$url/api/programs/mc/files/download?path=big&format=zip"
echo "zip of the 100,000-entry folder: $(secs "$t") s"
echo "server peak RSS after all: $(( $(hwm) / 1024 )) MiB"
