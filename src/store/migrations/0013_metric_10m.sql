-- A 10-minute rollup tier between the 1-minute and the 1-hour ones: a week's chart at
-- 1000 points reads 1,008 rows of it instead of 10,080 minute rows. Filled from the
-- minute rows already stored (weighted by their sample counts, as every rollup is); the
-- background rollup continues from where the minutes had got, and hours are rolled up
-- from it from now on.

CREATE TABLE metric_10m (
    series INTEGER NOT NULL, ts INTEGER NOT NULL, n INTEGER NOT NULL,
    cpu_min INTEGER, cpu_avg INTEGER, cpu_max INTEGER,
    mem_min INTEGER, mem_avg INTEGER, mem_max INTEGER,
    virt_min INTEGER, virt_avg INTEGER, virt_max INTEGER,
    threads_min INTEGER, threads_avg INTEGER, threads_max INTEGER,
    files_min INTEGER, files_avg INTEGER, files_max INTEGER,
    rd_min INTEGER, rd_avg INTEGER, rd_max INTEGER,
    wr_min INTEGER, wr_avg INTEGER, wr_max INTEGER,
    players_min INTEGER, players_avg INTEGER, players_max INTEGER,
    PRIMARY KEY (series, ts)
) STRICT, WITHOUT ROWID;

CREATE TABLE host_10m (
    series INTEGER NOT NULL, ts INTEGER NOT NULL, n INTEGER NOT NULL,
    cpu_min INTEGER, cpu_avg INTEGER, cpu_max INTEGER,
    mem_used_min INTEGER, mem_used_avg INTEGER, mem_used_max INTEGER,
    mem_total_min INTEGER, mem_total_avg INTEGER, mem_total_max INTEGER,
    swap_used_min INTEGER, swap_used_avg INTEGER, swap_used_max INTEGER,
    swap_total_min INTEGER, swap_total_avg INTEGER, swap_total_max INTEGER,
    load1_min INTEGER, load1_avg INTEGER, load1_max INTEGER,
    load5_min INTEGER, load5_avg INTEGER, load5_max INTEGER,
    load15_min INTEGER, load15_avg INTEGER, load15_max INTEGER,
    disk_used_min INTEGER, disk_used_avg INTEGER, disk_used_max INTEGER,
    disk_total_min INTEGER, disk_total_avg INTEGER, disk_total_max INTEGER,
    net_rx_min INTEGER, net_rx_avg INTEGER, net_rx_max INTEGER,
    net_tx_min INTEGER, net_tx_avg INTEGER, net_tx_max INTEGER,
    PRIMARY KEY (series, ts)
) STRICT, WITHOUT ROWID;

INSERT INTO metric_10m (series, ts, n, cpu_min, cpu_avg, cpu_max, mem_min, mem_avg, mem_max, virt_min, virt_avg, virt_max, threads_min, threads_avg, threads_max, files_min, files_avg, files_max, rd_min, rd_avg, rd_max, wr_min, wr_avg, wr_max, players_min, players_avg, players_max)
SELECT series,
       ts - (ts % 600000),
       sum(n),
       min(cpu_min),
       CAST(round(sum(cpu_avg * n) * 1.0 / sum(CASE WHEN cpu_avg IS NOT NULL THEN n END)) AS INTEGER),
       max(cpu_max),
       min(mem_min),
       CAST(round(sum(mem_avg * n) * 1.0 / sum(CASE WHEN mem_avg IS NOT NULL THEN n END)) AS INTEGER),
       max(mem_max),
       min(virt_min),
       CAST(round(sum(virt_avg * n) * 1.0 / sum(CASE WHEN virt_avg IS NOT NULL THEN n END)) AS INTEGER),
       max(virt_max),
       min(threads_min),
       CAST(round(sum(threads_avg * n) * 1.0 / sum(CASE WHEN threads_avg IS NOT NULL THEN n END)) AS INTEGER),
       max(threads_max),
       min(files_min),
       CAST(round(sum(files_avg * n) * 1.0 / sum(CASE WHEN files_avg IS NOT NULL THEN n END)) AS INTEGER),
       max(files_max),
       min(rd_min),
       CAST(round(sum(rd_avg * n) * 1.0 / sum(CASE WHEN rd_avg IS NOT NULL THEN n END)) AS INTEGER),
       max(rd_max),
       min(wr_min),
       CAST(round(sum(wr_avg * n) * 1.0 / sum(CASE WHEN wr_avg IS NOT NULL THEN n END)) AS INTEGER),
       max(wr_max),
       min(players_min),
       CAST(round(sum(players_avg * n) * 1.0 / sum(CASE WHEN players_avg IS NOT NULL THEN n END)) AS INTEGER),
       max(players_max)
FROM metric_1m GROUP BY 1, 2;

INSERT INTO host_10m (series, ts, n, cpu_min, cpu_avg, cpu_max, mem_used_min, mem_used_avg, mem_used_max, mem_total_min, mem_total_avg, mem_total_max, swap_used_min, swap_used_avg, swap_used_max, swap_total_min, swap_total_avg, swap_total_max, load1_min, load1_avg, load1_max, load5_min, load5_avg, load5_max, load15_min, load15_avg, load15_max, disk_used_min, disk_used_avg, disk_used_max, disk_total_min, disk_total_avg, disk_total_max, net_rx_min, net_rx_avg, net_rx_max, net_tx_min, net_tx_avg, net_tx_max)
SELECT series,
       ts - (ts % 600000),
       sum(n),
       min(cpu_min),
       CAST(round(sum(cpu_avg * n) * 1.0 / sum(CASE WHEN cpu_avg IS NOT NULL THEN n END)) AS INTEGER),
       max(cpu_max),
       min(mem_used_min),
       CAST(round(sum(mem_used_avg * n) * 1.0 / sum(CASE WHEN mem_used_avg IS NOT NULL THEN n END)) AS INTEGER),
       max(mem_used_max),
       min(mem_total_min),
       CAST(round(sum(mem_total_avg * n) * 1.0 / sum(CASE WHEN mem_total_avg IS NOT NULL THEN n END)) AS INTEGER),
       max(mem_total_max),
       min(swap_used_min),
       CAST(round(sum(swap_used_avg * n) * 1.0 / sum(CASE WHEN swap_used_avg IS NOT NULL THEN n END)) AS INTEGER),
       max(swap_used_max),
       min(swap_total_min),
       CAST(round(sum(swap_total_avg * n) * 1.0 / sum(CASE WHEN swap_total_avg IS NOT NULL THEN n END)) AS INTEGER),
       max(swap_total_max),
       min(load1_min),
       CAST(round(sum(load1_avg * n) * 1.0 / sum(CASE WHEN load1_avg IS NOT NULL THEN n END)) AS INTEGER),
       max(load1_max),
       min(load5_min),
       CAST(round(sum(load5_avg * n) * 1.0 / sum(CASE WHEN load5_avg IS NOT NULL THEN n END)) AS INTEGER),
       max(load5_max),
       min(load15_min),
       CAST(round(sum(load15_avg * n) * 1.0 / sum(CASE WHEN load15_avg IS NOT NULL THEN n END)) AS INTEGER),
       max(load15_max),
       min(disk_used_min),
       CAST(round(sum(disk_used_avg * n) * 1.0 / sum(CASE WHEN disk_used_avg IS NOT NULL THEN n END)) AS INTEGER),
       max(disk_used_max),
       min(disk_total_min),
       CAST(round(sum(disk_total_avg * n) * 1.0 / sum(CASE WHEN disk_total_avg IS NOT NULL THEN n END)) AS INTEGER),
       max(disk_total_max),
       min(net_rx_min),
       CAST(round(sum(net_rx_avg * n) * 1.0 / sum(CASE WHEN net_rx_avg IS NOT NULL THEN n END)) AS INTEGER),
       max(net_rx_max),
       min(net_tx_min),
       CAST(round(sum(net_tx_avg * n) * 1.0 / sum(CASE WHEN net_tx_avg IS NOT NULL THEN n END)) AS INTEGER),
       max(net_tx_max)
FROM host_1m GROUP BY 1, 2;

INSERT INTO metric_rollup_state (target, upto)
SELECT replace(target, '_1m', '_10m'), upto - (upto % 600000)
FROM metric_rollup_state WHERE target IN ('metric_1m', 'host_1m');
