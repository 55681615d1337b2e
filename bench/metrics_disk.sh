#!/usr/bin/env bash
# Disk budget of the metrics tables: 50 programs sampled every second for 30 days, at the
# default retention (raw 48 h, 1-minute rollups 30 d, 1-hour rollups 1 y), plus the host.
# Fills a database built from warden's own migrations with realistic values, in the order
# warden writes them (every series appends each tick), and prints its size.
# Needs: sqlite3 (Debian package `sqlite3`).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROGRAMS=${PROGRAMS:-50}
WORK=$(mktemp -d /tmp/warden-disk.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
DB=$WORK/warden.db
sqlite3 "$DB" "PRAGMA journal_mode=WAL;" >/dev/null
for f in "$ROOT"/src/store/migrations/*.sql; do sqlite3 "$DB" < "$f"; done

RAW_TICKS=$((48 * 3600))
MINUTES=$((30 * 1440))
HOURS=$((30 * 24))
START=$(( ($(date +%s) - 30 * 86400) * 1000 ))
RAW_START=$(( ($(date +%s) - 48 * 3600) * 1000 ))

t0=$(date +%s)
sqlite3 "$DB" <<SQL >/dev/null
PRAGMA synchronous=OFF;
INSERT INTO metric_series(name) WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < $PROGRAMS) SELECT 'program-' || i FROM s;
-- Raw: one row per program per second for 48 h, written tick by tick as warden does.
WITH RECURSIVE t(k) AS (SELECT 0 UNION ALL SELECT k+1 FROM t WHERE k < $RAW_TICKS - 1)
INSERT INTO metric_raw(series, ts, cpu, mem, virt, threads, files, rd, wr, players)
SELECT s.id, $RAW_START + t.k * 1000,
       abs(random()) % 20000,                         -- 0-200 % of a core
       2000000000 + abs(random()) % 100000000,        -- ~2 GB resident
       9000000000 + abs(random()) % 10000000,         -- ~9 GB virtual
       40 + abs(random()) % 20,
       150 + abs(random()) % 50,
       abs(random()) % 50000,
       abs(random()) % 200000,
       abs(random()) % 20
FROM t CROSS JOIN metric_series s ORDER BY t.k, s.id;
-- 1-minute rollups for 30 days.
WITH RECURSIVE t(k) AS (SELECT 0 UNION ALL SELECT k+1 FROM t WHERE k < $MINUTES - 1)
INSERT INTO metric_1m
SELECT s.id, $START + t.k * 60000, 60,
  1000 + abs(random()) % 1000, 5000 + abs(random()) % 5000, 15000 + abs(random()) % 5000,
  1900000000 + abs(random()) % 10000000, 2000000000 + abs(random()) % 10000000, 2100000000 + abs(random()) % 10000000,
  9000000000 + abs(random()) % 1000000, 9000000000 + abs(random()) % 1000000, 9000000000 + abs(random()) % 1000000,
  40, 45 + abs(random()) % 5, 55,
  150, 170 + abs(random()) % 10, 199,
  0, abs(random()) % 20000, abs(random()) % 50000,
  0, abs(random()) % 100000, abs(random()) % 200000,
  0, abs(random()) % 10, abs(random()) % 20
FROM t CROSS JOIN metric_series s ORDER BY t.k, s.id;
-- 1-hour rollups for 30 days.
INSERT INTO metric_1h
SELECT series, ts - ts % 3600000, sum(n), min(cpu_min), CAST(avg(cpu_avg) AS INTEGER), max(cpu_max), min(mem_min), CAST(avg(mem_avg) AS INTEGER), max(mem_max),
  min(virt_min), CAST(avg(virt_avg) AS INTEGER), max(virt_max), min(threads_min), CAST(avg(threads_avg) AS INTEGER), max(threads_max), min(files_min), CAST(avg(files_avg) AS INTEGER), max(files_max),
  min(rd_min), CAST(avg(rd_avg) AS INTEGER), max(rd_max), min(wr_min), CAST(avg(wr_avg) AS INTEGER), max(wr_max), min(players_min), CAST(avg(players_avg) AS INTEGER), max(players_max)
FROM metric_1m GROUP BY 1, 2;
-- The host: raw 48 h, minutes 30 d, hours 30 d.
WITH RECURSIVE t(k) AS (SELECT 0 UNION ALL SELECT k+1 FROM t WHERE k < $RAW_TICKS - 1)
INSERT INTO host_raw SELECT 0, $RAW_START + k * 1000, abs(random()) % 10000, 20000000000 + abs(random()) % 1000000000, 25000000000,
  abs(random()) % 1000000, 4000000000, abs(random()) % 400, abs(random()) % 400, abs(random()) % 400,
  300000000000 + abs(random()) % 1000000, 500000000000, abs(random()) % 10000000, abs(random()) % 10000000 FROM t;
WITH RECURSIVE t(k) AS (SELECT 0 UNION ALL SELECT k+1 FROM t WHERE k < $MINUTES - 1)
INSERT INTO host_1m SELECT 0, $START + k * 60000, 60,
  abs(random()) % 10000, abs(random()) % 10000, abs(random()) % 10000,
  20000000000 + abs(random()) % 1000000000, 20000000000 + abs(random()) % 1000000000, 20000000000 + abs(random()) % 1000000000,
  25000000000, 25000000000, 25000000000, 0, abs(random()) % 1000000, abs(random()) % 1000000, 4000000000, 4000000000, 4000000000,
  abs(random()) % 400, abs(random()) % 400, abs(random()) % 400, abs(random()) % 400, abs(random()) % 400, abs(random()) % 400,
  abs(random()) % 400, abs(random()) % 400, abs(random()) % 400,
  300000000000, 300000000000 + abs(random()) % 1000000, 300000000000 + abs(random()) % 1000000, 500000000000, 500000000000, 500000000000,
  0, abs(random()) % 10000000, abs(random()) % 10000000, 0, abs(random()) % 10000000, abs(random()) % 10000000 FROM t;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
t1=$(date +%s)
size=$(stat -c %s "$DB")
echo "programs: $PROGRAMS, 30 days at 1 s (raw 48 h + 1-minute 30 d + 1-hour 30 d, host included)"
echo "rows: raw $((PROGRAMS * RAW_TICKS)), 1m $((PROGRAMS * MINUTES)), 1h $((PROGRAMS * HOURS))"
if sqlite3 "$DB" "SELECT 1 FROM dbstat LIMIT 1" >/dev/null 2>&1; then
  sqlite3 "$DB" "SELECT name, printf('%.1f MB', sum(pgsize)/1e6) FROM dbstat WHERE name LIKE 'metric_%' OR name LIKE 'host_%' OR name LIKE 'sqlite_autoindex_metric%' GROUP BY name ORDER BY sum(pgsize) DESC;" | sed 's/|/: /;s/^/  /'
fi
echo "database size: $(awk "BEGIN{printf \"%.1f\", $size/1e6}") MB (budget 1000 MB); filled in $((t1 - t0)) s"
