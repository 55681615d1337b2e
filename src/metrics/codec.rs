//! Conversions between samples and stored rows: the public field names and scales of
//! every stored column, import line parsing (JSON Lines) and export line formatting
//! (CSV and JSON Lines, one format readable back by import).

use std::fmt::Write as _;

use serde::Deserialize;

use crate::bus::{HostSample, ProgramSample};
use crate::store::metrics::Row;

/// A stored column: its public name and the factor applied before rounding to an integer.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Name in the API, exports and imports.
    pub name: &'static str,
    /// Stored value = round(value × scale).
    pub scale: f64,
}

const fn f(name: &'static str, scale: f64) -> Field {
    Field { name, scale }
}

/// Program fields, in the order of `store::metrics::PROGRAMS.columns`.
pub const PROGRAM_FIELDS: [Field; 8] = [
    f("cpu_percent", 100.0),
    f("memory_bytes", 1.0),
    f("virtual_bytes", 1.0),
    f("threads", 1.0),
    f("open_files", 1.0),
    f("disk_read_bps", 1.0),
    f("disk_write_bps", 1.0),
    f("players", 1.0),
];

/// Host fields, in the order of `store::metrics::HOST.columns`.
pub const HOST_FIELDS: [Field; 12] = [
    f("cpu_percent", 100.0),
    f("memory_used_bytes", 1.0),
    f("memory_total_bytes", 1.0),
    f("swap_used_bytes", 1.0),
    f("swap_total_bytes", 1.0),
    f("load1", 100.0),
    f("load5", 100.0),
    f("load15", 100.0),
    f("disk_used_bytes", 1.0),
    f("disk_total_bytes", 1.0),
    f("net_rx_bps", 1.0),
    f("net_tx_bps", 1.0),
];

fn enc(v: f64, scale: f64) -> Option<i64> {
    let x = (v * scale).round();
    // Out-of-range values (never produced by the sampler) are stored as unknown.
    (x.is_finite() && x.abs() < 9.0e18).then_some(x as i64)
}

fn enc_u(v: u64) -> Option<i64> {
    i64::try_from(v).ok()
}

/// A program sample as a stored row.
pub fn program_row(s: &ProgramSample) -> Row {
    Row {
        ts: s.ts,
        values: vec![
            enc(s.cpu_percent, 100.0),
            enc_u(s.memory_bytes),
            enc_u(s.virtual_bytes),
            enc_u(s.threads),
            enc_u(s.open_files),
            enc(s.disk_read_bps, 1.0),
            enc(s.disk_write_bps, 1.0),
            s.players.map(i64::from),
        ],
    }
}

/// A host sample as a stored row (disks summed over mounts).
pub fn host_row(h: &HostSample) -> Row {
    let disk_used: u64 = h.disks.iter().map(|d| d.used_bytes).sum();
    let disk_total: u64 = h.disks.iter().map(|d| d.total_bytes).sum();
    Row {
        ts: h.ts,
        values: vec![
            enc(h.cpu_percent, 100.0),
            enc_u(h.memory_used_bytes),
            enc_u(h.memory_total_bytes),
            enc_u(h.swap_used_bytes),
            enc_u(h.swap_total_bytes),
            enc(h.load[0], 100.0),
            enc(h.load[1], 100.0),
            enc(h.load[2], 100.0),
            enc_u(disk_used),
            enc_u(disk_total),
            enc(h.net_rx_bps, 1.0),
            enc(h.net_tx_bps, 1.0),
        ],
    }
}

/// A stored value back in its public unit.
pub fn decode(v: f64, field: &Field) -> f64 {
    v / field.scale
}

/// One import line. Unknown keys are refused so a typo is reported, not ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportLine {
    ts: serde_json::Value,
    /// Accepted (exports of the live stream carry it) and ignored: the URL names the program.
    #[serde(default, rename = "program")]
    _program: Option<serde::de::IgnoredAny>,
    cpu_percent: Option<f64>,
    memory_bytes: Option<f64>,
    virtual_bytes: Option<f64>,
    threads: Option<f64>,
    open_files: Option<f64>,
    disk_read_bps: Option<f64>,
    disk_write_bps: Option<f64>,
    players: Option<f64>,
}

/// Latest timestamp accepted (the last ms of year 9999).
const MAX_TS: i64 = 253_402_300_799_999;

fn parse_ts(v: &serde_json::Value) -> Result<i64, String> {
    let ts = match v {
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i,
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => f as i64,
            _ => return Err(format!("ts {n} is not a whole number of milliseconds")),
        },
        serde_json::Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map_err(|e| format!("ts {s:?} is not an RFC 3339 time: {e}"))?
            .timestamp_millis(),
        other => {
            return Err(format!(
                "ts must be unix ms or an RFC 3339 string, not {other}"
            ));
        }
    };
    if !(0..=MAX_TS).contains(&ts) {
        return Err(format!("ts {ts} is out of range"));
    }
    Ok(ts)
}

/// Parses one import line into a program row; `Ok(None)` for a blank line.
pub fn parse_import_line(line: &str) -> Result<Option<Row>, String> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    let l: ImportLine = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let ts = parse_ts(&l.ts)?;
    let raw = [
        l.cpu_percent,
        l.memory_bytes,
        l.virtual_bytes,
        l.threads,
        l.open_files,
        l.disk_read_bps,
        l.disk_write_bps,
        l.players,
    ];
    let mut values = Vec::with_capacity(raw.len());
    for (v, field) in raw.iter().zip(PROGRAM_FIELDS.iter()) {
        match v {
            None => values.push(None),
            Some(x) if x.is_finite() && *x >= 0.0 && *x < 1.0e15 => {
                values.push(enc(*x, field.scale))
            }
            Some(x) => {
                return Err(format!(
                    "{} = {x} is invalid: it must be a number from 0 to 1e15",
                    field.name
                ));
            }
        }
    }
    Ok(Some(Row { ts, values }))
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per line (what import reads).
    Jsonl,
}

fn push_value(out: &mut String, v: i64, field: &Field) {
    if field.scale == 1.0 {
        let _ = write!(out, "{v}");
    } else {
        let _ = write!(out, "{}", v as f64 / field.scale);
    }
}

/// The CSV header line.
pub fn csv_header() -> String {
    let mut s = String::from("ts");
    for f in &PROGRAM_FIELDS {
        s.push(',');
        s.push_str(f.name);
    }
    s.push('\n');
    s
}

/// Appends one exported row to `out`.
pub fn push_export_line(out: &mut String, row: &Row, format: Format) {
    match format {
        Format::Csv => {
            let _ = write!(out, "{}", row.ts);
            for (v, field) in row.values.iter().zip(PROGRAM_FIELDS.iter()) {
                out.push(',');
                if let Some(v) = v {
                    push_value(out, *v, field);
                }
            }
        }
        Format::Jsonl => {
            let _ = write!(out, "{{\"ts\":{}", row.ts);
            for (v, field) in row.values.iter().zip(PROGRAM_FIELDS.iter()) {
                if let Some(v) = v {
                    let _ = write!(out, ",\"{}\":", field.name);
                    push_value(out, *v, field);
                }
            }
            out.push('}');
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_lines() {
        let r = parse_import_line(
            r#"{"ts": 1700000000000, "cpu_percent": 12.345, "memory_bytes": 1024}"#,
        )
        .expect("valid")
        .expect("row");
        assert_eq!(r.ts, 1_700_000_000_000);
        assert_eq!(r.values[0], Some(1235));
        assert_eq!(r.values[1], Some(1024));
        assert_eq!(r.values[2], None);
        let r = parse_import_line(r#"{"ts": "2023-11-14T22:13:20Z"}"#)
            .expect("valid")
            .expect("row");
        assert_eq!(r.ts, 1_700_000_000_000);
        assert_eq!(parse_import_line("   ").expect("blank"), None);
        for bad in [
            r#"{"ts": "yesterday"}"#,
            r#"{"cpu_percent": 1}"#,
            r#"{"ts": 1, "cpu": 1}"#,
            r#"{"ts": 1, "cpu_percent": -1}"#,
            r#"{"ts": -5}"#,
            r#"{"ts": 1.5}"#,
            "not json",
        ] {
            assert!(parse_import_line(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn export_lines_read_back() {
        let row = Row {
            ts: 5,
            values: vec![Some(1250), Some(7), None, Some(2), None, None, None, None],
        };
        let mut out = String::new();
        push_export_line(&mut out, &row, Format::Jsonl);
        assert_eq!(
            out,
            "{\"ts\":5,\"cpu_percent\":12.5,\"memory_bytes\":7,\"threads\":2}\n"
        );
        assert_eq!(parse_import_line(&out).expect("valid"), Some(row.clone()));
        let mut csv = String::new();
        push_export_line(&mut csv, &row, Format::Csv);
        assert_eq!(csv, "5,12.5,7,,2,,,,\n");
        assert_eq!(csv_header().split(',').count(), 9);
    }
}
