-- Resource history: raw samples and 1-minute / 1-hour rollups of programs and of the host.
--
-- Values are stored as integers to keep rows small (50 programs sampled every second for
-- 30 days must stay under 1 GB): CPU in hundredths of a percent, loads in hundredths,
-- rates in whole bytes per second. Tables are WITHOUT ROWID with (series, ts) as key, so
-- a program's range is one contiguous b-tree walk and no separate index is needed.

-- One series per program name ever sampled. It outlives the program, so its history
-- stays queryable until retention removes it. The host is series 0 of the host tables.
CREATE TABLE metric_series (
    id    INTEGER PRIMARY KEY,
    name  TEXT NOT NULL UNIQUE
) STRICT;

CREATE TABLE metric_raw (
    series   INTEGER NOT NULL,
    ts       INTEGER NOT NULL,            -- unix ms
    cpu      INTEGER,                     -- % of one core x 100
    mem      INTEGER,                     -- resident bytes
    virt     INTEGER,                     -- virtual bytes
    threads  INTEGER,
    files    INTEGER,                     -- open files/handles
    rd       INTEGER,                     -- disk bytes read per second
    wr       INTEGER,                     -- disk bytes written per second
    players  INTEGER,
    PRIMARY KEY (series, ts)
) STRICT, WITHOUT ROWID;

-- Rollups: n samples in the bucket, then min/avg/max of every column. ts is the start of
-- the bucket (UTC minute or hour).
CREATE TABLE metric_1m (
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

CREATE TABLE metric_1h (
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

CREATE TABLE host_raw (
    series     INTEGER NOT NULL,          -- always 0
    ts         INTEGER NOT NULL,
    cpu        INTEGER,                   -- % of all cores x 100
    mem_used   INTEGER,
    mem_total  INTEGER,
    swap_used  INTEGER,
    swap_total INTEGER,
    load1      INTEGER,                   -- x 100
    load5      INTEGER,
    load15     INTEGER,
    disk_used  INTEGER,                   -- summed over local mounts
    disk_total INTEGER,
    net_rx     INTEGER,                   -- bytes per second
    net_tx     INTEGER,
    PRIMARY KEY (series, ts)
) STRICT, WITHOUT ROWID;

CREATE TABLE host_1m (
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

CREATE TABLE host_1h (
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

-- How far the background rollup has got, per table it fills (e.g. 'metric_1m'): every
-- bucket that starts before `upto` has been computed.
CREATE TABLE metric_rollup_state (
    target  TEXT PRIMARY KEY,
    upto    INTEGER NOT NULL
) STRICT;
