#!/usr/bin/env bash
# 50 idle programs, sampled every second: CPU (% of one core) and RSS of warden over
# DURATION seconds (default 60), side by side with PM2 and supervisord supervising the
# same 50 programs and asked for their process list once a second. warden is asked too
# (GET /api/programs once a second), on top of its own 1 s sampling of every program
# and the host.
#
# Needs: a release build (cargo build --release), python3 (for supervisord), npm (PM2).
# PM2 and supervisor are installed into a scratch cache ($BENCH_CACHE, default
# /tmp/warden-bench-cache) on first use. Set SKIP_OTHERS=1 to measure warden alone.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/target/release/warden
N=${N:-50}
DURATION=${DURATION:-60}
CACHE=${BENCH_CACHE:-/tmp/warden-bench-cache}
WORK=$(mktemp -d /tmp/warden-idle.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${PM2_HOME:-}" ] && [ -x "$CACHE/pm2/node_modules/.bin/pm2" ] && "$CACHE/pm2/node_modules/.bin/pm2" kill >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }

# measure PID SECONDS ASK_CMD... : runs ASK_CMD once a second for SECONDS and prints
# "cpu% rss_avg_MB rss_max_MB anon_MB" of PID over that window (anon: RssAnon at the end,
# the process's private memory; the rest of RSS is clean pages of its executable and
# libraries, which the kernel may map in whole large folios: see bench/README.md).
measure() {
  local pid=$1 secs=$2; shift 2
  local ticks; ticks=$(getconf CLK_TCK)
  local c0 c1 t0 t1 rss_sum=0 rss_max=0 n=0 rss
  c0=$(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')
  t0=$(date +%s.%N)
  for _ in $(seq "$secs"); do
    "$@" >/dev/null 2>&1 || true
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    rss_sum=$((rss_sum + rss)); n=$((n + 1))
    [ "$rss" -gt "$rss_max" ] && rss_max=$rss
    sleep 1
  done
  c1=$(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')
  local anon; anon=$(awk '/RssAnon/ {print $2}' "/proc/$pid/status")
  t1=$(date +%s.%N)
  awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v hz="$ticks" -v rs="$rss_sum" -v n="$n" -v rm="$rss_max" -v an="$anon" \
    'BEGIN { printf "%.3f %.1f %.1f %.1f\n", (c1 - c0) / hz / (t1 - t0) * 100, rs / n / 1024, rm / 1024, an / 1024 }'
}

# ---- warden ----------------------------------------------------------------------
mkdir -p "$WORK/warden"
{
  for i in $(seq "$N"); do
    printf '[[program]]\nname = "idle-%d"\ncommand = "sleep"\nargs = ["1000000"]\nautostart = true\n\n' "$i"
  done
} > "$WORK/programs.toml"
TOKEN=$("$BIN" token create bench --role admin --data-dir "$WORK/warden" 2>/dev/null)
# Full 1 s sampling even on a busy machine (no stretching when the host is saturated).
printf 'allow_root_programs = true\n[metrics]\nsample_interval_ms = 1000\nsaturation_cpu_percent = 100\n' > "$WORK/warden.toml"
"$BIN" serve --listen 127.0.0.1:0 --config "$WORK/warden.toml" --data-dir "$WORK/warden" > "$WORK/warden.out" 2> "$WORK/warden.err" &
WPID=$!; PIDS+=("$WPID")
for _ in $(seq 100); do grep -q listening "$WORK/warden.out" 2>/dev/null && break; sleep 0.1; done
URL=$(head -1 "$WORK/warden.out" | sed 's/warden listening on //')
"$BIN" apply "$WORK/programs.toml" --url "$URL" --token "$TOKEN" > /dev/null
for _ in $(seq 100); do
  running=$(curl -s -H "Authorization: Bearer $TOKEN" "$URL/api/programs" | { grep -o '"state":"running"' || true; } | wc -l)
  [ "$running" -ge "$N" ] && break; sleep 0.2
done
sleep 5
read -r W_CPU W_RSS W_MAX W_ANON < <(measure "$WPID" "$DURATION" curl -s -H "Authorization: Bearer $TOKEN" "$URL/api/programs")
STRETCHED=$(curl -s -H "Authorization: Bearer $TOKEN" "$URL/metrics" | awk '/^warden_sample_interval_stretched / {print $2}')
TICK=$(curl -s -H "Authorization: Bearer $TOKEN" "$URL/metrics" | awk '/^warden_sample_tick_duration_seconds / {printf "%.2f", $2 * 1000}')
kill "$WPID"; wait "$WPID" 2>/dev/null || true

P_CPU=- P_RSS=- P_MAX=- P_ANON=- S_CPU=- S_RSS=- S_MAX=- S_ANON=-
if [ -z "${SKIP_OTHERS:-}" ]; then
  # ---- PM2 -------------------------------------------------------------------------
  if [ ! -x "$CACHE/pm2/node_modules/.bin/pm2" ]; then
    mkdir -p "$CACHE/pm2"; (cd "$CACHE/pm2" && npm install --silent --no-audit --no-fund pm2 >/dev/null 2>&1)
  fi
  export PM2_HOME=$WORK/pm2home
  PM2=$CACHE/pm2/node_modules/.bin/pm2
  {
    echo "module.exports = { apps: ["
    for i in $(seq "$N"); do echo "  { name: 'idle-$i', script: 'sleep', args: '1000000', interpreter: 'none', autorestart: false },"; done
    echo "] };"
  } > "$WORK/ecosystem.config.js"
  "$PM2" start "$WORK/ecosystem.config.js" >/dev/null
  sleep 5
  read -r P_CPU P_RSS P_MAX P_ANON < <(measure "$(cat "$PM2_HOME/pm2.pid")" "$DURATION" "$PM2" jlist)
  "$PM2" kill >/dev/null 2>&1 || true

  # ---- supervisord -----------------------------------------------------------------
  if [ ! -x "$CACHE/venv/bin/supervisord" ]; then
    python3 -m venv "$CACHE/venv" && "$CACHE/venv/bin/pip" install -q supervisor >/dev/null
  fi
  {
    printf '[unix_http_server]\nfile=%s/supervisor.sock\n[supervisord]\nlogfile=%s/supervisord.log\npidfile=%s/supervisord.pid\nnodaemon=true\n' "$WORK" "$WORK" "$WORK"
    printf '[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n'
    printf '[supervisorctl]\nserverurl=unix://%s/supervisor.sock\n' "$WORK"
    for i in $(seq "$N"); do printf '[program:idle-%d]\ncommand=sleep 1000000\nautorestart=false\nstdout_logfile=NONE\nstderr_logfile=NONE\n' "$i"; done
  } > "$WORK/supervisord.conf"
  "$CACHE/venv/bin/supervisord" -c "$WORK/supervisord.conf" > "$WORK/supervisord.out" 2>&1 &
  SPID=$!; PIDS+=("$SPID")
  sleep 5
  read -r S_CPU S_RSS S_MAX S_ANON < <(measure "$SPID" "$DURATION" "$CACHE/venv/bin/supervisorctl" -c "$WORK/supervisord.conf" status)
  kill "$SPID"; wait "$SPID" 2>/dev/null || true
fi

echo "$N idle programs, ${DURATION} s, process list asked once a second"
printf '%-12s %14s %14s %14s %14s\n' "" "CPU % of core" "RSS avg MB" "RSS max MB" "private MB"
printf '%-12s %14s %14s %14s %14s\n' warden "$W_CPU" "$W_RSS" "$W_MAX" "$W_ANON"
printf '%-12s %14s %14s %14s %14s\n' PM2 "$P_CPU" "$P_RSS" "$P_MAX" "$P_ANON"
printf '%-12s %14s %14s %14s %14s\n' supervisord "$S_CPU" "$S_RSS" "$S_MAX" "$S_ANON"
echo "warden: last sampling tick ${TICK} ms; interval stretched (host saturated): ${STRETCHED:-?}; load now: $(cut -d' ' -f1-3 /proc/loadavg)"
