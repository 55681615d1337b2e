//! Console capture: reading a child's output line by line (splitting, never truncating,
//! over-long lines), the in-memory ring for the live view, and size-rotated log files.
//!
//! One writer task per program owns the log file; readers feed it through a bounded
//! channel. When the channel is full the readers wait, which back-pressures the child's
//! pipe: warden prefers slowing a chatty program for a moment to losing its output.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

use crate::bus::{Bus, ConsoleLine, Event, Stream};
use crate::store::now_ms;

/// Longest line kept whole; longer lines are split into pieces marked `split`.
pub const MAX_LINE: usize = 16 * 1024;
/// Lines queued between readers and the writer task.
const QUEUE: usize = 1024;
/// Read buffer of each output stream. Small on purpose: a program has two streams for as
/// long as it runs, mostly silent, and a zeroed 64 KiB buffer each cost 6.4 MB of heap for
/// 50 programs. A chatty program only needs more reads (8 KiB is about 80 lines each).
const READ_BUFFER: usize = 8 * 1024;

/// The in-memory tail of a program's console. A std mutex: held only to push or copy,
/// never across `.await`.
pub struct Ring {
    lines: Mutex<VecDeque<ConsoleLine>>,
    cap: usize,
}

impl Ring {
    fn new(cap: usize) -> Ring {
        Ring {
            // Grows with the output: most programs never fill it, and a silent one holds
            // nothing.
            lines: Mutex::new(VecDeque::new()),
            cap,
        }
    }

    fn push(&self, line: ConsoleLine) {
        {
            let mut l = crate::sync::lock(&self.lines);
            if l.len() == self.cap {
                l.pop_front();
            }
            l.push_back(line);
        }
    }

    /// The last `n` lines, oldest first.
    pub fn tail(&self, n: usize) -> Vec<ConsoleLine> {
        let l = crate::sync::lock(&self.lines);
        l.iter().skip(l.len().saturating_sub(n)).cloned().collect()
    }
}

/// Settings for a program's console log files.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Directory of this program's logs.
    pub dir: PathBuf,
    /// Rotate when the current file exceeds this size.
    pub max_bytes: u64,
    /// Rotated files kept.
    pub keep: usize,
}

/// A program's console: the ring plus the sender into its writer task.
#[derive(Clone)]
pub struct Console {
    /// Shared tail for readers of the live view.
    pub ring: Arc<Ring>,
    tx: mpsc::Sender<ConsoleLine>,
    program: Arc<str>,
}

impl Console {
    /// Creates the ring and starts the writer task (it ends when every `Console` clone and
    /// reader is dropped, after flushing).
    pub fn start(program: &str, ring_lines: usize, logs: LogSettings, bus: Bus) -> Console {
        let ring = Arc::new(Ring::new(ring_lines));
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer_task(
            rx,
            ring.clone(),
            logs,
            bus,
            program.to_string(),
        ));
        Console {
            ring,
            tx,
            program: Arc::from(program),
        }
    }

    /// Records a line (a stdin echo, or a note from warden).
    pub async fn record(&self, stream: Stream, text: String) {
        let _ = self
            .tx
            .send(ConsoleLine {
                program: self.program.to_string(),
                ts: now_ms(),
                stream,
                text,
                split: false,
            })
            .await;
    }

    /// Starts a task that reads `src` line by line into this console; it ends at EOF.
    pub fn attach<R>(&self, stream: Stream, src: R) -> tokio::task::JoinHandle<()>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        let tx = self.tx.clone();
        let program = self.program.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::with_capacity(READ_BUFFER, src);
            let mut buf: Vec<u8> = Vec::new();
            loop {
                let piece = match read_piece(&mut reader, &mut buf).await {
                    Ok(Some(p)) => p,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(program = %program, error = %e, "console read ended");
                        break;
                    }
                };
                let line = ConsoleLine {
                    program: program.to_string(),
                    ts: now_ms(),
                    stream,
                    text: piece.0,
                    split: piece.1,
                };
                if tx.send(line).await.is_err() {
                    break;
                }
            }
        })
    }
}

/// Reads the next line, or the next `MAX_LINE` bytes of an over-long one. Returns the
/// text (lossily decoded as UTF-8, `\r\n` trimmed) and whether the line continues.
async fn read_piece<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    buf: &mut Vec<u8>,
) -> io::Result<Option<(String, bool)>> {
    buf.clear();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            if buf.is_empty() {
                return Ok(None);
            }
            return Ok(Some((decode(buf), false)));
        }
        let room = MAX_LINE - buf.len();
        let window = &available[..available.len().min(room)];
        if let Some(pos) = window.iter().position(|b| *b == b'\n') {
            buf.extend_from_slice(&window[..pos]);
            reader.consume(pos + 1);
            return Ok(Some((decode(buf), false)));
        }
        let n = window.len();
        buf.extend_from_slice(window);
        reader.consume(n);
        if buf.len() >= MAX_LINE {
            return Ok(Some((decode(buf), true)));
        }
    }
}

fn decode(buf: &[u8]) -> String {
    let b = buf.strip_suffix(b"\r").unwrap_or(buf);
    String::from_utf8_lossy(b).into_owned()
}

async fn writer_task(
    mut rx: mpsc::Receiver<ConsoleLine>,
    ring: Arc<Ring>,
    logs: LogSettings,
    bus: Bus,
    program: String,
) {
    let mut log = Log::new(logs, program);
    loop {
        // A quiet console (a stopped or silent program) closes its file, so deleting the
        // file frees its space and nothing holds it open; the next line reopens it. With
        // the file closed there is nothing left to time: the task sleeps until a line
        // comes, so 50 silent programs cost no wake-ups.
        let next = match log.idle_close() {
            Some(after) => tokio::time::timeout(after, rx.recv()).await,
            None => Ok(rx.recv().await),
        };
        let line = match next {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(_) => {
                log.close();
                continue;
            }
        };
        // Writes go to a buffer and reach the OS in one syscall per burst (flushed when
        // the queue is empty): cheap enough to do on this task.
        ring.push(line.clone());
        log.write(&line);
        bus.publish(Event::Console(line));
        if rx.is_empty() {
            log.flush();
        }
    }
    log.close();
}

/// A console without lines for this long closes its log file.
const IDLE_CLOSE: Duration = Duration::from_secs(10);
/// After a failed open or write, the file is tried again after this long; lines meanwhile
/// are counted and stay in the in-memory ring only.
const RETRY_OPEN: Duration = Duration::from_secs(2);
/// How often the log checks that its file is still the one at its path.
const CHECK_PATH: Duration = Duration::from_secs(5);
/// Failures to write a console log are reported at most this often per program.
const REPORT_EVERY: Duration = Duration::from_secs(60);

/// The console log of one program as the writer task sees it: the open file (if any),
/// when to try again after a failure, and the counts behind the once-a-minute report. A
/// full disk must neither flood warden's own log nor stop the console: lines that cannot
/// be written are counted and stay in the ring.
struct Log {
    settings: LogSettings,
    program: String,
    file: Option<LogFile>,
    retry_at: Option<Instant>,
    checked_at: Instant,
    /// Lines not written since the last report, and the first error among them.
    lost: u64,
    error: Option<String>,
    /// When the last failure report was logged; kept across recoveries, so a flapping
    /// disk is still reported at most once a minute.
    reported_at: Option<Instant>,
    /// True between a failure and the next successful write.
    failing: bool,
    /// A failure report was logged since the last recovery (which is then logged too).
    told: bool,
}

impl Log {
    fn new(settings: LogSettings, program: String) -> Log {
        Log {
            settings,
            program,
            file: None,
            retry_at: None,
            checked_at: Instant::now(),
            lost: 0,
            error: None,
            reported_at: None,
            failing: false,
            told: false,
        }
    }

    fn write(&mut self, line: &ConsoleLine) {
        let now = Instant::now();
        if self.file.is_some() && now.duration_since(self.checked_at) >= CHECK_PATH {
            self.checked_at = now;
            if self.file.as_mut().is_some_and(|f| !f.still_at_path()) {
                // Deleted or rotated by someone else: write to a new file at the path.
                tracing::info!(program = %self.program, "console log file was moved or deleted; reopening it");
                self.file = None;
            }
        }
        if self.file.is_none() && self.retry_at.is_none_or(|t| now >= t) {
            match LogFile::open(self.settings.clone()) {
                Ok(f) => self.file = Some(f),
                Err(e) => self.failed(&e, now),
            }
        }
        let Some(f) = self.file.as_mut() else {
            self.lost += 1;
            self.report(now);
            return;
        };
        match f.write(line) {
            Ok(()) => {
                if self.failing {
                    self.failing = false;
                    // Quiet about recoveries on a disk that is nearly full and flaps
                    // between room and none: said only when the failure was reported.
                    if std::mem::take(&mut self.told) {
                        tracing::info!(program = %self.program, lines_not_written = self.lost, "console log can be written again");
                    }
                    self.lost = 0;
                    self.error = None;
                }
            }
            Err(e) => {
                self.lost += 1;
                self.failed(&e, now);
            }
        }
    }

    fn flush(&mut self) {
        if let Some(f) = self.file.as_mut()
            && let Err(e) = f.flush()
        {
            self.failed(&e, Instant::now());
        }
    }

    fn close(&mut self) {
        self.flush();
        self.file = None;
    }

    /// How long a quiet console keeps its file open: `IDLE_CLOSE` while one is open,
    /// `None` (no timer) once it is closed.
    fn idle_close(&self) -> Option<Duration> {
        self.file.as_ref().map(|_| IDLE_CLOSE)
    }

    /// A failed open, write or flush: the file is dropped (what its buffer still held
    /// is lost) and tried again later.
    fn failed(&mut self, e: &io::Error, now: Instant) {
        self.file = None;
        self.failing = true;
        self.retry_at = Some(now + RETRY_OPEN);
        if self.error.is_none() {
            self.error = Some(e.to_string());
        }
        self.report(now);
    }

    fn report(&mut self, now: Instant) {
        if !self.failing
            || self
                .reported_at
                .is_some_and(|t| now.duration_since(t) < REPORT_EVERY)
        {
            return;
        }
        self.reported_at = Some(now);
        self.told = true;
        tracing::warn!(
            program = %self.program,
            dir = %self.settings.dir.display(),
            error = self.error.as_deref().unwrap_or("unknown"),
            lines_not_written = self.lost,
            "console log cannot be written; lines stay in the live view only (reported at most once a minute)"
        );
    }
}

/// The current log file of a program, rotated by size: `console.log`, `console.log.1`, …
struct LogFile {
    settings: LogSettings,
    out: BufWriter<File>,
    size: u64,
}

impl LogFile {
    fn path(dir: &Path, n: usize) -> PathBuf {
        if n == 0 {
            dir.join("console.log")
        } else {
            dir.join(format!("console.log.{n}"))
        }
    }

    fn open(settings: LogSettings) -> io::Result<LogFile> {
        std::fs::create_dir_all(&settings.dir)?;
        let path = Self::path(&settings.dir, 0);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(LogFile {
            settings,
            out: BufWriter::with_capacity(64 * 1024, file),
            size,
        })
    }

    fn write(&mut self, line: &ConsoleLine) -> io::Result<()> {
        let ts = chrono::DateTime::from_timestamp_millis(line.ts)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default();
        let marker = if line.split { " [line continues]" } else { "" };
        let text = format!("{ts} {} {}{marker}\n", line.stream.tag(), line.text);
        self.out.write_all(text.as_bytes())?;
        self.size += text.len() as u64;
        if self.size >= self.settings.max_bytes {
            self.rotate()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Whether the file at `console.log` is still this one. Without comparing inodes
    /// (per OS): only warden appends to it, so after a flush its length and the path's
    /// agree unless the path now names another file or none.
    fn still_at_path(&mut self) -> bool {
        if self.out.flush().is_err() {
            return true;
        }
        let ours = self.out.get_ref().metadata().map(|m| m.len());
        let at_path = std::fs::metadata(Self::path(&self.settings.dir, 0)).map(|m| m.len());
        matches!((ours, at_path), (Ok(a), Ok(b)) if a == b)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        let dir = self.settings.dir.clone();
        let keep = self.settings.keep;
        if keep == 0 {
            std::fs::remove_file(Self::path(&dir, 0))?;
        } else {
            for n in (1..keep).rev() {
                let from = Self::path(&dir, n);
                if from.exists() {
                    std::fs::rename(&from, Self::path(&dir, n + 1))?;
                }
            }
            std::fs::rename(Self::path(&dir, 0), Self::path(&dir, 1))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(Self::path(&dir, 0))?;
        self.out = BufWriter::with_capacity(64 * 1024, file);
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pieces(input: &[u8]) -> Vec<(String, bool)> {
        let mut r = BufReader::with_capacity(1024, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(p) = read_piece(&mut r, &mut buf).await.expect("read") {
            out.push(p);
        }
        out
    }

    #[tokio::test]
    async fn lines_are_split_not_truncated() {
        let long = "x".repeat(MAX_LINE * 2 + 5);
        let input = format!("a\r\nb\n{long}\nlast");
        let got = pieces(input.as_bytes()).await;
        assert_eq!(got[0], ("a".into(), false));
        assert_eq!(got[1], ("b".into(), false));
        assert_eq!(got[2], ("x".repeat(MAX_LINE), true));
        assert_eq!(got[3], ("x".repeat(MAX_LINE), true));
        assert_eq!(got[4], ("xxxxx".into(), false));
        assert_eq!(got[5], ("last".into(), false));
        let total: usize = got.iter().map(|p| p.0.len()).sum();
        assert_eq!(total, 1 + 1 + long.len() + 4);
    }

    #[test]
    fn a_closed_log_needs_no_timer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Log::new(
            LogSettings {
                dir: dir.path().to_path_buf(),
                max_bytes: 1 << 20,
                keep: 1,
            },
            "p".into(),
        );
        assert_eq!(log.idle_close(), None, "nothing open, nothing to close");
        log.write(&ConsoleLine {
            program: "p".into(),
            ts: 0,
            stream: Stream::Stdout,
            text: "hello".into(),
            split: false,
        });
        assert_eq!(
            log.idle_close(),
            Some(IDLE_CLOSE),
            "an open file is closed when quiet"
        );
        log.close();
        assert_eq!(
            log.idle_close(),
            None,
            "closed: the writer sleeps until a line comes"
        );
        let text = std::fs::read_to_string(dir.path().join("console.log")).expect("log");
        assert!(text.contains("hello"), "written before closing: {text:?}");
    }

    #[test]
    fn rotation_keeps_n_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = LogFile::open(LogSettings {
            dir: dir.path().to_path_buf(),
            max_bytes: 100,
            keep: 2,
        })
        .expect("open");
        for i in 0..50 {
            log.write(&ConsoleLine {
                program: "p".into(),
                ts: 0,
                stream: Stream::Stdout,
                text: format!("line {i}"),
                split: false,
            })
            .expect("write");
        }
        log.flush().expect("flush");
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, vec!["console.log", "console.log.1", "console.log.2"]);
    }
}
