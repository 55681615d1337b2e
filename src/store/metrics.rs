//! Resource history tables: batched sample inserts, incremental rollups into 1-minute,
//! 10-minute and 1-hour tiers, bounded pruning, bucketed range queries, export pages, and all-or-nothing
//! imports staged in a temporary table of the writer connection.
//!
//! The store knows columns of integers only; what they mean (and their scale) is the
//! `metrics` service's business. Two families share one shape: programs (one series per
//! program name, from `metric_series`) and the host (the single series 0).

use rusqlite::{Connection, OptionalExtension, Transaction, params, params_from_iter};

use super::{Store, StoreError};

/// A set of tables holding one kind of series, and their value columns.
#[derive(Debug)]
pub struct Family {
    /// Raw samples.
    pub raw: &'static str,
    /// 1-minute rollups.
    pub minute: &'static str,
    /// 10-minute rollups (from the minutes).
    pub ten: &'static str,
    /// 1-hour rollups (from the 10 minutes).
    pub hour: &'static str,
    /// Value columns, in the order of [`Row::values`].
    pub columns: &'static [&'static str],
    /// True when series are named (programs); false for the single host series 0.
    pub named: bool,
}

/// Program samples.
pub static PROGRAMS: Family = Family {
    raw: "metric_raw",
    minute: "metric_1m",
    ten: "metric_10m",
    hour: "metric_1h",
    columns: &[
        "cpu", "mem", "virt", "threads", "files", "rd", "wr", "players",
    ],
    named: true,
};

/// Host samples.
pub static HOST: Family = Family {
    raw: "host_raw",
    minute: "host_1m",
    ten: "host_10m",
    hour: "host_1h",
    columns: &[
        "cpu",
        "mem_used",
        "mem_total",
        "swap_used",
        "swap_total",
        "load1",
        "load5",
        "load15",
        "disk_used",
        "disk_total",
        "net_rx",
        "net_tx",
    ],
    named: false,
};

/// A storage tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Samples as taken.
    Raw,
    /// 1-minute min/avg/max.
    Minute,
    /// 10-minute min/avg/max.
    TenMinutes,
    /// 1-hour min/avg/max.
    Hour,
}

/// One minute, ten minutes and one hour in ms: the rollup buckets.
pub const MINUTE_MS: i64 = 60_000;
/// Ten minutes in ms.
pub const TEN_MINUTES_MS: i64 = 600_000;
/// One hour in ms.
pub const HOUR_MS: i64 = 3_600_000;

impl Tier {
    /// Name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Raw => "raw",
            Tier::Minute => "1m",
            Tier::TenMinutes => "10m",
            Tier::Hour => "1h",
        }
    }

    fn table(self, fam: &Family) -> &'static str {
        match self {
            Tier::Raw => fam.raw,
            Tier::Minute => fam.minute,
            Tier::TenMinutes => fam.ten,
            Tier::Hour => fam.hour,
        }
    }
}

/// How values within a query bucket are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    /// Mean (rollups are weighted by their sample counts).
    Avg,
    /// Smallest.
    Min,
    /// Largest.
    Max,
}

/// A bucketed range query of one tier.
#[derive(Debug, Clone, Copy)]
pub struct BucketQuery {
    /// Tier to read.
    pub tier: Tier,
    /// How values within a bucket are combined.
    pub agg: Agg,
    /// Start, unix ms (inclusive).
    pub from: i64,
    /// End, unix ms (exclusive).
    pub to: i64,
    /// Bucket width in ms.
    pub step: i64,
}

/// One stored sample: a time and one optional integer per family column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Unix ms.
    pub ts: i64,
    /// Values in the order of [`Family::columns`].
    pub values: Vec<Option<i64>>,
}

/// What an import stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportSummary {
    /// Samples written (a repeated timestamp replaces the earlier one).
    pub samples: u64,
    /// Earliest timestamp, unix ms.
    pub from: Option<i64>,
    /// Latest timestamp, unix ms.
    pub to: Option<i64>,
}

/// Start of the bucket of `size` ms holding `ts`.
pub fn bucket_start(ts: i64, size: i64) -> i64 {
    ts - ts.rem_euclid(size)
}

/// SQL computing the rollup row of `dst` for series `?1` and the bucket `[?2, ?3)` from
/// `src`: from raw samples (`from_raw`) or from finer rollups, weighting averages by
/// sample counts. An empty bucket writes nothing. One bucket per execution (see
/// [`roll_buckets`]): grouped by the bucket's start instead, SQLite sorted each series'
/// rows in a temporary b-tree of its own every time, though they come in time order.
fn rollup_sql(fam: &Family, src: &str, dst: &str, from_raw: bool) -> String {
    let mut cols = String::from("series, ts, n");
    let mut sel = String::from("?1, ?2, ");
    sel.push_str(if from_raw { "count(*)" } else { "sum(n)" });
    for c in fam.columns {
        cols.push_str(&format!(", {c}_min, {c}_avg, {c}_max"));
        if from_raw {
            sel.push_str(&format!(
                ", min({c}), CAST(round(avg({c})) AS INTEGER), max({c})"
            ));
        } else {
            sel.push_str(&format!(
                ", min({c}_min), CAST(round(sum({c}_avg * n) * 1.0 / sum(CASE WHEN {c}_avg IS NOT NULL THEN n END)) AS INTEGER), max({c}_max)"
            ));
        }
    }
    format!(
        "INSERT OR REPLACE INTO {dst} ({cols}) SELECT {sel} FROM {src} \
         WHERE series = ?1 AND ts >= ?2 AND ts < ?3 HAVING count(*) > 0"
    )
}

/// Rolls series `id` up into each bucket of `bucket` ms that starts in `[from, to)`, with
/// a prepared [`rollup_sql`].
fn roll_buckets(
    st: &mut rusqlite::CachedStatement<'_>,
    id: i64,
    from: i64,
    to: i64,
    bucket: i64,
) -> Result<(), StoreError> {
    let mut b = bucket_start(from, bucket);
    while b < to {
        st.execute(params![id, b, b + bucket])?;
        b += bucket;
    }
    Ok(())
}

/// SQL reading the rows of one series in `[?2, ?3)` in key order (no sort): the time,
/// the sample count (1 for raw rows), then the column each aggregate needs.
fn scan_sql(fam: &Family, tier: Tier, agg: Agg) -> String {
    let mut sel = String::from("ts, ");
    sel.push_str(if tier == Tier::Raw { "1" } else { "n" });
    for c in fam.columns {
        let suffix = match (tier, agg) {
            (Tier::Raw, _) => "",
            (_, Agg::Avg) => "_avg",
            (_, Agg::Min) => "_min",
            (_, Agg::Max) => "_max",
        };
        sel.push_str(&format!(", {c}{suffix}"));
    }
    format!(
        "SELECT {sel} FROM {} WHERE series = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts",
        tier.table(fam)
    )
}

/// Folds rows (in time order) into buckets of `step` ms from `from`. Done here rather
/// than with SQL `GROUP BY` over an expression, which would sort every row first.
struct Buckets {
    agg: Agg,
    from: i64,
    step: i64,
    current: Option<i64>,
    /// Per column: (weighted sum or extreme, weight).
    acc: Vec<(f64, f64)>,
    out: Vec<(i64, Vec<Option<f64>>)>,
}

impl Buckets {
    fn new(agg: Agg, from: i64, step: i64, columns: usize) -> Buckets {
        Buckets {
            agg,
            from,
            step: step.max(1),
            current: None,
            acc: vec![(0.0, 0.0); columns],
            out: Vec::new(),
        }
    }

    fn emit(&mut self) {
        let Some(b) = self.current else {
            return;
        };
        let values = self
            .acc
            .iter()
            .map(|(v, w)| match self.agg {
                _ if *w == 0.0 => None,
                Agg::Avg => Some(v / w),
                Agg::Min | Agg::Max => Some(*v),
            })
            .collect();
        self.out.push((self.from + b * self.step, values));
        self.acc.iter_mut().for_each(|a| *a = (0.0, 0.0));
    }

    fn add(&mut self, ts: i64, n: f64, values: &[Option<i64>]) {
        let b = (ts - self.from) / self.step;
        if self.current != Some(b) {
            self.emit();
            self.current = Some(b);
        }
        for (acc, v) in self.acc.iter_mut().zip(values) {
            let Some(v) = v else {
                continue;
            };
            let v = *v as f64;
            match self.agg {
                Agg::Avg => *acc = (acc.0 + v * n, acc.1 + n),
                Agg::Min if acc.1 == 0.0 || v < acc.0 => *acc = (v, 1.0),
                Agg::Max if acc.1 == 0.0 || v > acc.0 => *acc = (v, 1.0),
                Agg::Min | Agg::Max => {}
            }
        }
    }

    fn finish(mut self) -> Vec<(i64, Vec<Option<f64>>)> {
        self.emit();
        self.out
    }
}

/// Rows written by one insert statement. A batch holds about ten samples of each program
/// (one a second, written every 10 s); one statement for them costs a tenth of the
/// statement's own work (binding, running, resetting) that one per row did.
const ROWS_PER_INSERT: usize = 10;

/// SQL inserting `rows` raw rows of `(series, ts, columns…)` of `fam`.
fn insert_sql(fam: &Family, rows: usize) -> String {
    let cols = fam.columns.join(", ");
    let row = format!("({})", vec!["?"; fam.columns.len() + 2].join(", "));
    let values = vec![row; rows].join(", ");
    format!(
        "INSERT OR REPLACE INTO {} (series, ts, {cols}) VALUES {values}",
        fam.raw
    )
}

/// The id of a named series, creating it when `create`.
fn series_id(c: &Connection, name: &str, create: bool) -> Result<Option<i64>, StoreError> {
    let find = |c: &Connection| -> Result<Option<i64>, StoreError> {
        Ok(
            c.prepare_cached("SELECT id FROM metric_series WHERE name = ?1")?
                .query_row(params![name], |r| r.get(0))
                .optional()?,
        )
    };
    // Looked up first: the series of a sampled program exists after its first batch.
    if let Some(id) = find(c)? {
        return Ok(Some(id));
    }
    if create {
        c.prepare_cached(
            "INSERT INTO metric_series(name) VALUES (?1) ON CONFLICT(name) DO NOTHING",
        )?
        .execute(params![name])?;
        return find(c);
    }
    Ok(None)
}

fn all_series(c: &Connection, fam: &Family) -> Result<Vec<i64>, StoreError> {
    if !fam.named {
        return Ok(vec![0]);
    }
    let mut st = c.prepare_cached("SELECT id FROM metric_series ORDER BY id")?;
    let ids = st.query_map([], |r| r.get(0))?;
    Ok(ids.collect::<Result<Vec<i64>, _>>()?)
}

fn state(t: &Transaction<'_>, target: &str) -> Result<Option<i64>, StoreError> {
    Ok(
        t.prepare_cached("SELECT upto FROM metric_rollup_state WHERE target = ?1")?
            .query_row(params![target], |r| r.get(0))
            .optional()?,
    )
}

fn set_state(t: &Transaction<'_>, target: &str, upto: i64) -> Result<(), StoreError> {
    t.prepare_cached(
        "INSERT INTO metric_rollup_state(target, upto) VALUES (?1, ?2)
         ON CONFLICT(target) DO UPDATE SET upto = ?2",
    )?
    .execute(params![target, upto])?;
    Ok(())
}

/// Writes raw rows of series `id` of `fam`, [`ROWS_PER_INSERT`] at a time
/// with `full` (the prepared [`insert_sql`] of that many rows, kept by the caller across
/// series), the rest with one statement of their number.
fn insert_rows(
    t: &Transaction<'_>,
    full: &mut rusqlite::CachedStatement<'_>,
    fam: &Family,
    id: i64,
    rows: &[Row],
) -> Result<(), StoreError> {
    let values = |chunk: &[Row]| {
        let mut v: Vec<Option<i64>> = Vec::with_capacity(chunk.len() * (fam.columns.len() + 2));
        for row in chunk {
            v.extend([Some(id), Some(row.ts)]);
            v.extend_from_slice(&row.values);
        }
        v
    };
    let mut chunks = rows.chunks_exact(ROWS_PER_INSERT);
    for chunk in &mut chunks {
        full.execute(params_from_iter(values(chunk)))?;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        t.prepare_cached(&insert_sql(fam, rest.len()))?
            .execute(params_from_iter(values(rest)))?;
    }
    Ok(())
}

/// SQL deleting the rows of series `?1` older than `?2`, at most `?3` of them. The bound
/// is the time of the `?3`-th row past the oldest, looked for only among the rows older
/// than `?2`: once a minute, every tier of every series is pruned, and a walk over
/// `?3` rows of a full table each time (whether or not they were old) cost more than
/// everything else warden does while idle.
fn prune_sql(table: &str) -> String {
    format!(
        "DELETE FROM {table} WHERE series = ?1 AND ts < min(?2, coalesce(
           (SELECT ts FROM {table} WHERE series = ?1 AND ts < ?2 ORDER BY ts LIMIT 1 OFFSET ?3),
           ?2))"
    )
}

/// The rollup tiers of `fam` in order, each computed from the one before it: (source
/// table, rollup table, whether the source holds raw samples, bucket width in ms).
fn rollup_chain(fam: &Family) -> [(&'static str, &'static str, bool, i64); 3] {
    [
        (fam.raw, fam.minute, true, MINUTE_MS),
        (fam.minute, fam.ten, false, TEN_MINUTES_MS),
        (fam.ten, fam.hour, false, HOUR_MS),
    ]
}

/// Recomputes the 1-minute rollups of minutes touching `[from, to]` from raw rows, then
/// the 10-minute and 1-hour rollups of the periods touching that range from the finer
/// tier below each.
fn rollup_range(
    t: &Transaction<'_>,
    fam: &Family,
    id: i64,
    from: i64,
    to: i64,
) -> Result<(), StoreError> {
    for (src, dst, from_raw, bucket) in rollup_chain(fam) {
        let mut st = t.prepare_cached(&rollup_sql(fam, src, dst, from_raw))?;
        roll_buckets(&mut st, id, from, to + 1, bucket)?;
    }
    Ok(())
}

impl Store {
    /// Writes a batch of program samples (by program name) and host samples in one job,
    /// returning once committed. Rewriting a (series, ts) replaces it.
    pub async fn insert_samples(
        &self,
        programs: Vec<(String, Vec<Row>)>,
        host: Vec<Row>,
    ) -> Result<(), StoreError> {
        self.write(move |t| {
            let mut full = t.prepare_cached(&insert_sql(&PROGRAMS, ROWS_PER_INSERT))?;
            for (name, rows) in &programs {
                let Some(id) = series_id(t, name, true)? else {
                    continue;
                };
                insert_rows(t, &mut full, &PROGRAMS, id, rows)?;
            }
            let mut full = t.prepare_cached(&insert_sql(&HOST, ROWS_PER_INSERT))?;
            insert_rows(t, &mut full, &HOST, 0, &host)?;
            Ok(())
        })
        .await
    }

    /// One bounded step of the background rollup of `fam`: computes the 1-minute rows of
    /// at most `max_span` ms of complete minutes before `upto`, then the 10-minute rows of
    /// the periods completed by them, then the 1-hour rows of the hours completed by
    /// those. Returns true when more complete minutes are waiting.
    pub async fn rollup_step(
        &self,
        fam: &'static Family,
        upto: i64,
        max_span: i64,
    ) -> Result<bool, StoreError> {
        self.write(move |t| {
            let ids = all_series(t, fam)?;
            let [(raw, minute, from_raw, minute_ms), coarser @ ..] = rollup_chain(fam);
            let target = bucket_start(upto, minute_ms);
            // A first run starts one span back: older raw rows can only come from imports,
            // which roll up what they bring themselves.
            let from = state(t, minute)?.unwrap_or(target - max_span);
            let to = target.min(from + max_span);
            if to > from {
                let mut st = t.prepare_cached(&rollup_sql(fam, raw, minute, from_raw))?;
                for id in &ids {
                    roll_buckets(&mut st, *id, from, to, minute_ms)?;
                }
                set_state(t, minute, to)?;
            }
            // Each coarser tier covers the periods the tier below has completed.
            let mut done = to.max(from);
            for (src, dst, from_raw, bucket) in coarser {
                let target = bucket_start(done, bucket);
                let start = state(t, dst)?.unwrap_or(bucket_start(from, bucket));
                if target > start {
                    let mut st = t.prepare_cached(&rollup_sql(fam, src, dst, from_raw))?;
                    for id in &ids {
                        roll_buckets(&mut st, *id, start, target, bucket)?;
                    }
                    set_state(t, dst, target)?;
                }
                done = target.max(start);
            }
            Ok(to < target)
        })
        .await
    }

    /// Deletes rows of one tier of `fam` older than `cutoff`, at most `max_rows` in this
    /// call (a large backlog is pruned in small steps). Returns how many were deleted.
    pub async fn prune_metrics(
        &self,
        fam: &'static Family,
        tier: Tier,
        cutoff: i64,
        max_rows: u32,
    ) -> Result<usize, StoreError> {
        self.write(move |t| {
            let mut st = t.prepare_cached(&prune_sql(tier.table(fam)))?;
            let mut left = max_rows as usize;
            for id in all_series(t, fam)? {
                if left == 0 {
                    break;
                }
                left -= st.execute(params![id, cutoff, left as i64])?.min(left);
            }
            Ok(max_rows as usize - left)
        })
        .await
    }

    /// Bucketed values of one series of `fam` (`name` for programs; ignored for the host)
    /// in `[from, to)`: `(bucket start, one value per column)` for non-empty buckets.
    pub async fn metric_buckets(
        &self,
        fam: &'static Family,
        name: Option<String>,
        q: BucketQuery,
    ) -> Result<Vec<(i64, Vec<Option<f64>>)>, StoreError> {
        let BucketQuery {
            tier,
            agg,
            from,
            to,
            step,
        } = q;
        self.read(move |c| {
            let id = match (fam.named, name) {
                (false, _) => 0,
                (true, Some(n)) => match series_id(c, &n, false)? {
                    Some(id) => id,
                    None => return Ok(Vec::new()),
                },
                (true, None) => return Ok(Vec::new()),
            };
            let mut st = c.prepare_cached(&scan_sql(fam, tier, agg))?;
            let n = fam.columns.len();
            let mut buckets = Buckets::new(agg, from, step, n);
            let mut values = vec![None; n];
            let mut rows = st.query(params![id, from, to])?;
            while let Some(r) = rows.next()? {
                for (i, v) in values.iter_mut().enumerate() {
                    *v = r.get::<_, Option<i64>>(i + 2)?;
                }
                let weight: i64 = r.get(1)?;
                buckets.add(r.get(0)?, weight as f64, &values);
            }
            Ok(buckets.finish())
        })
        .await
    }

    /// Up to `limit` rows of a program's series in one tier with `after < ts < to`, oldest
    /// first (rollup tiers give their averages). Export pages through this.
    pub async fn metric_page(
        &self,
        name: String,
        tier: Tier,
        after: i64,
        to: i64,
        limit: u32,
    ) -> Result<Vec<Row>, StoreError> {
        self.read(move |c| {
            let fam = &PROGRAMS;
            let Some(id) = series_id(c, &name, false)? else {
                return Ok(Vec::new());
            };
            let cols: Vec<String> = fam
                .columns
                .iter()
                .map(|col| if tier == Tier::Raw { col.to_string() } else { format!("{col}_avg") })
                .collect();
            let sql = format!(
                "SELECT ts, {} FROM {} WHERE series = ?1 AND ts > ?2 AND ts < ?3 ORDER BY ts LIMIT ?4",
                cols.join(", "),
                tier.table(fam)
            );
            let mut st = c.prepare_cached(&sql)?;
            let rows = st.query_map(params![id, after, to, limit], |r| {
                let mut values = Vec::with_capacity(cols.len());
                for i in 0..cols.len() {
                    values.push(r.get::<_, Option<i64>>(i + 1)?);
                }
                Ok(Row { ts: r.get(0)?, values })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Stages a chunk of an import (program columns). Nothing is visible until
    /// [`Store::import_commit`]; [`Store::import_abort`] discards the stage.
    pub async fn import_stage(&self, import: i64, rows: Vec<Row>) -> Result<(), StoreError> {
        self.write(move |t| {
            let cols = PROGRAMS.columns.join(", ");
            t.execute_batch(&format!(
                "CREATE TEMP TABLE IF NOT EXISTS metric_import (import INTEGER NOT NULL, ts INTEGER NOT NULL, {cols})"
            ))?;
            let marks = vec!["?"; PROGRAMS.columns.len() + 2].join(", ");
            let mut st = t.prepare_cached(&format!(
                "INSERT INTO temp.metric_import (import, ts, {cols}) VALUES ({marks})"
            ))?;
            for row in &rows {
                let head = [Some(import), Some(row.ts)];
                st.execute(params_from_iter(head.iter().chain(row.values.iter())))?;
            }
            Ok(())
        })
        .await
    }

    /// Moves a staged import into program `name`'s raw samples and recomputes the rollups
    /// of the period it covers, all in one transaction.
    pub async fn import_commit(
        &self,
        import: i64,
        name: String,
    ) -> Result<ImportSummary, StoreError> {
        self.write(move |t| {
            let fam = &PROGRAMS;
            let staged: bool = t
                .query_row(
                    "SELECT count(*) FROM sqlite_temp_master WHERE name = 'metric_import'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .map(|n| n > 0)?;
            if !staged {
                return Ok(ImportSummary {
                    samples: 0,
                    from: None,
                    to: None,
                });
            }
            let (samples, from, to): (i64, Option<i64>, Option<i64>) = t.query_row(
                "SELECT count(*), min(ts), max(ts) FROM temp.metric_import WHERE import = ?1",
                params![import],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            if let (Some(from), Some(to)) = (from, to) {
                let id = series_id(t, &name, true)?
                    .ok_or_else(|| StoreError::NotFound(format!("no series for '{name}'")))?;
                let cols = fam.columns.join(", ");
                t.execute(
                    &format!(
                        "INSERT OR REPLACE INTO {} (series, ts, {cols}) SELECT ?1, ts, {cols}
                         FROM temp.metric_import WHERE import = ?2 ORDER BY ts",
                        fam.raw
                    ),
                    params![id, import],
                )?;
                rollup_range(t, fam, id, from, to)?;
            }
            t.execute(
                "DELETE FROM temp.metric_import WHERE import = ?1",
                params![import],
            )?;
            Ok(ImportSummary {
                samples: u64::try_from(samples).unwrap_or(0),
                from,
                to,
            })
        })
        .await
    }

    /// Discards a staged import.
    pub async fn import_abort(&self, import: i64) -> Result<(), StoreError> {
        self.write(move |t| {
            let staged: i64 = t.query_row(
                "SELECT count(*) FROM sqlite_temp_master WHERE name = 'metric_import'",
                [],
                |r| r.get(0),
            )?;
            if staged > 0 {
                t.execute(
                    "DELETE FROM temp.metric_import WHERE import = ?1",
                    params![import],
                )?;
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ts: i64, cpu: i64) -> Row {
        let mut values = vec![None; PROGRAMS.columns.len()];
        values[0] = Some(cpu);
        values[1] = Some(cpu * 10);
        Row { ts, values }
    }

    #[tokio::test]
    async fn rollups_weight_averages_and_keep_extremes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("m.db")).expect("open");
        let base = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS;
        // Minute 0: cpu 10, 20, 30 (avg 20); minute 1: cpu 100 (avg 100); minute 10: 50.
        let rows = vec![
            row(base, 10),
            row(base + 1000, 20),
            row(base + 2000, 30),
            row(base + MINUTE_MS, 100),
            row(base + TEN_MINUTES_MS, 50),
        ];
        store
            .insert_samples(vec![("p".into(), rows)], vec![])
            .await
            .expect("insert");
        // First run starts one span back from `upto`.
        let more = store
            .rollup_step(&PROGRAMS, base + HOUR_MS + MINUTE_MS, 2 * HOUR_MS)
            .await
            .expect("rollup");
        assert!(!more);
        let m = store
            .metric_buckets(
                &PROGRAMS,
                Some("p".into()),
                BucketQuery {
                    tier: Tier::Minute,
                    agg: Agg::Avg,
                    from: base,
                    to: base + HOUR_MS,
                    step: MINUTE_MS,
                },
            )
            .await
            .expect("query");
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].1[0], Some(20.0));
        assert_eq!(m[1].1[0], Some(100.0));
        // Ten minutes from the minutes: weighted (10+20+30+100)/4 = 40, not (20+100)/2.
        let ten = store
            .metric_buckets(
                &PROGRAMS,
                Some("p".into()),
                BucketQuery {
                    tier: Tier::TenMinutes,
                    agg: Agg::Avg,
                    from: base,
                    to: base + HOUR_MS,
                    step: TEN_MINUTES_MS,
                },
            )
            .await
            .expect("query");
        let cpu: Vec<_> = ten.iter().map(|(ts, v)| (*ts - base, v[0])).collect();
        assert_eq!(cpu, [(0, Some(40.0)), (TEN_MINUTES_MS, Some(50.0))]);
        // The hour from the ten minutes, still weighted by samples:
        // (10+20+30+100+50)/5 = 42, not (40+50)/2.
        let h = store
            .metric_buckets(
                &PROGRAMS,
                Some("p".into()),
                BucketQuery {
                    tier: Tier::Hour,
                    agg: Agg::Avg,
                    from: base,
                    to: base + HOUR_MS,
                    step: HOUR_MS,
                },
            )
            .await
            .expect("query");
        assert_eq!(
            h,
            vec![(
                base,
                vec![Some(42.0), Some(420.0), None, None, None, None, None, None]
            )]
        );
        let hmax = store
            .metric_buckets(
                &PROGRAMS,
                Some("p".into()),
                BucketQuery {
                    tier: Tier::Hour,
                    agg: Agg::Max,
                    from: base,
                    to: base + HOUR_MS,
                    step: HOUR_MS,
                },
            )
            .await
            .expect("query");
        assert_eq!(hmax[0].1[0], Some(100.0));
        let hmin = store
            .metric_buckets(
                &PROGRAMS,
                Some("p".into()),
                BucketQuery {
                    tier: Tier::Hour,
                    agg: Agg::Min,
                    from: base,
                    to: base + HOUR_MS,
                    step: HOUR_MS,
                },
            )
            .await
            .expect("query");
        assert_eq!(hmin[0].1[0], Some(10.0));
        // Pruning is bounded per call.
        assert_eq!(
            store
                .prune_metrics(&PROGRAMS, Tier::Raw, base + HOUR_MS, 3)
                .await
                .expect("prune"),
            3
        );
        assert_eq!(
            store
                .prune_metrics(&PROGRAMS, Tier::Raw, base + HOUR_MS, 3)
                .await
                .expect("prune"),
            2
        );
        store.close().await;
    }

    /// Every rollup reads one series' rows in key order: no temporary b-tree to sort or
    /// group them (a grouped rollup built one per series per minute).
    #[test]
    fn rollups_read_in_key_order() {
        let c = crate::store::memory_db();
        for fam in [&PROGRAMS, &HOST] {
            for (src, dst, from_raw, _) in rollup_chain(fam) {
                let plan: Vec<String> = c
                    .prepare(&format!(
                        "EXPLAIN QUERY PLAN {}",
                        rollup_sql(fam, src, dst, from_raw)
                    ))
                    .expect("plan")
                    .query_map(params![1, 0, 60_000], |r| r.get::<_, String>(3))
                    .expect("rows")
                    .collect::<Result<_, _>>()
                    .expect("plan rows");
                let plan = plan.join("; ");
                assert!(!plan.contains("TEMP B-TREE"), "{dst}: {plan}");
                assert!(
                    plan.contains("PRIMARY KEY (series=? AND ts>? AND ts<?)"),
                    "{dst}: {plan}"
                );
            }
        }
    }

    /// Pruning a full table walks the rows it deletes, not the `max_rows` bound: the
    /// old statement stepped through 5,000 rows of every tier of every series each minute.
    #[test]
    fn pruning_walks_only_the_rows_it_deletes() {
        let mut c = crate::store::memory_db();
        let base = 1_700_000_000_000_i64;
        {
            let t = c.transaction().expect("tx");
            let mut full = t
                .prepare_cached(&insert_sql(&PROGRAMS, ROWS_PER_INSERT))
                .expect("sql");
            // 20,003: whole statements of ten and a remainder.
            let rows: Vec<Row> = (0..20_003).map(|i| row(base + i * 1000, i)).collect();
            insert_rows(&t, &mut full, &PROGRAMS, 1, &rows).expect("rows");
            drop(full);
            t.commit().expect("commit");
        }
        let mut st = c.prepare(&prune_sql(PROGRAMS.raw)).expect("sql");
        // 10 rows are older than the cutoff; up to 5,000 may go.
        let deleted = st.execute(params![1, base + 10_000, 5000]).expect("prune");
        assert_eq!(deleted, 10);
        let steps = st.get_status(rusqlite::StatementStatus::VmStep);
        assert!(steps < 500, "{steps} steps to delete 10 rows");
        // The bound still holds when more are old.
        let deleted = st
            .execute(params![1, base + 1_000_000, 300])
            .expect("prune");
        assert_eq!(deleted, 300);
        let left: i64 = c
            .query_row("SELECT count(*) FROM metric_raw", [], |r| r.get(0))
            .expect("count");
        assert_eq!(left, 20_003 - 310);
    }

    /// Migration 0013 fills the 10-minute tier from the minute rows an older warden
    /// stored, weighted by their sample counts, and starts its rollup where the minutes'
    /// had got.
    #[test]
    fn the_ten_minute_tier_is_filled_from_existing_minutes() {
        let mut c = Connection::open_in_memory().expect("db");
        let m = crate::store::migrations();
        m.to_version(&mut c, 12).expect("schema 12");
        let base = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS;
        for (ts, n, cpu) in [
            (base, 3, 20),
            (base + MINUTE_MS, 1, 100),
            (base + TEN_MINUTES_MS, 2, 50),
        ] {
            c.execute(
                "INSERT INTO metric_1m (series, ts, n, cpu_min, cpu_avg, cpu_max) VALUES (1, ?1, ?2, ?3, ?3, ?3)",
                params![ts, n, cpu],
            )
            .expect("minute row");
        }
        c.execute(
            "INSERT INTO metric_rollup_state (target, upto) VALUES ('metric_1m', ?1)",
            params![base + TEN_MINUTES_MS + 5 * MINUTE_MS],
        )
        .expect("state");
        m.to_latest(&mut c).expect("migrate");
        let rows: Vec<(i64, i64, i64)> = c
            .prepare("SELECT ts, n, cpu_avg FROM metric_10m ORDER BY ts")
            .expect("select")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(rows, [(base, 4, 40), (base + TEN_MINUTES_MS, 2, 50)]);
        let upto: i64 = c
            .query_row(
                "SELECT upto FROM metric_rollup_state WHERE target = 'metric_10m'",
                [],
                |r| r.get(0),
            )
            .expect("state");
        assert_eq!(upto, base + TEN_MINUTES_MS);
    }

    #[tokio::test]
    async fn import_is_staged_then_committed_or_discarded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("m.db")).expect("open");
        store
            .import_stage(1, vec![row(60_000, 5), row(61_000, 7)])
            .await
            .expect("stage");
        store
            .import_stage(2, vec![row(120_000, 9)])
            .await
            .expect("stage");
        store.import_abort(2).await.expect("abort");
        let s = store.import_commit(1, "p".into()).await.expect("commit");
        assert_eq!(
            s,
            ImportSummary {
                samples: 2,
                from: Some(60_000),
                to: Some(61_000)
            }
        );
        let page = store
            .metric_page("p".into(), Tier::Raw, 0, i64::MAX, 10)
            .await
            .expect("page");
        assert_eq!(page.len(), 2);
        let m = store
            .metric_page("p".into(), Tier::Minute, 0, i64::MAX, 10)
            .await
            .expect("page");
        assert_eq!(m[0].values[0], Some(6));
        assert_eq!(
            store
                .import_commit(2, "p".into())
                .await
                .expect("empty")
                .samples,
            0
        );
        store.close().await;
    }
}
