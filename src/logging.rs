//! warden's own log output, built so that it can never hurt warden: a line is handed to a
//! bounded queue without waiting, one thread writes the queue to the real output
//! (stderr, a file), and a line that cannot be queued or written is dropped and counted.
//!
//! Why not `tracing_subscriber::fmt().with_writer(std::io::stderr)`: on a write error the
//! fmt layer reports it with `eprintln!`, which panics when stderr itself is broken (a
//! closed pipe, a full disk). That panic took down whichever thread happened to log — the
//! store writer, the sampler, the main thread in the middle of stopping programs. A slow
//! reader (a paused terminal, a stuck `tee`) would block every thread that logs. Here no
//! thread but the log writer ever touches the output, and it never panics.
//!
//! Once output works again after a loss, one notice line says how many lines were lost;
//! the total is `warden_log_lines_dropped_total` on `/metrics`.

use std::io::{self, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Lines queued between the threads that log and the writer thread. A few seconds of a
/// very chatty warden; beyond that, lines are dropped rather than anyone waiting.
const QUEUE_LINES: usize = 4096;

/// Lines dropped since start (queue full, writer gone, or the output refused them).
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// The queue into the writer thread, once logging is set up.
static SENDER: OnceLock<SyncSender<Msg>> = OnceLock::new();

/// Log lines dropped since warden started.
pub fn lines_dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

enum Msg {
    Line(Vec<u8>),
    /// Answered once every line queued before it was handed to the output.
    Flush(SyncSender<()>),
}

/// The `MakeWriter` given to tracing: each formatted event is one `write` call, queued
/// whole or dropped whole.
#[derive(Clone)]
pub struct QueueWriter {
    tx: Option<SyncSender<Msg>>,
}

impl Write for QueueWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let queued = match &self.tx {
            Some(tx) => tx.try_send(Msg::Line(buf.to_vec())).is_ok(),
            None => false,
        };
        if !queued {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        // Always "written": an error here would only make tracing report it, which is
        // exactly what must not happen.
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for QueueWriter {
    type Writer = QueueWriter;

    fn make_writer(&'a self) -> QueueWriter {
        self.clone()
    }
}

/// Starts the writer thread over `out` and returns the writer to give tracing. If the
/// thread cannot be started, every line is dropped (and counted): warden runs anyway.
pub fn start<W: Write + Send + 'static>(out: W) -> QueueWriter {
    if let Some(tx) = SENDER.get() {
        // Set up already (tests call this more than once in one process).
        return QueueWriter {
            tx: Some(tx.clone()),
        };
    }
    let (tx, rx) = sync_channel(QUEUE_LINES);
    let spawned = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || write_loop(rx, out));
    match spawned {
        Ok(_) => {
            let tx = SENDER.get_or_init(|| tx).clone();
            QueueWriter { tx: Some(tx) }
        }
        Err(_) => QueueWriter { tx: None },
    }
}

/// Waits up to `timeout` for queued lines to reach the output (at exit). Never longer:
/// an output that does not drain must not keep warden from exiting.
pub fn flush(timeout: Duration) {
    let Some(tx) = SENDER.get() else { return };
    let (done_tx, done_rx) = sync_channel(1);
    if tx.try_send(Msg::Flush(done_tx)).is_ok() {
        let _ = done_rx.recv_timeout(timeout);
    }
}

fn write_loop<W: Write>(rx: Receiver<Msg>, mut out: W) {
    // Drops already announced in a notice line.
    let mut announced = 0u64;
    // Sleeps until a line comes: drops are announced with the next line, so an idle
    // warden never wakes this thread.
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Line(line) => {
                let dropped = DROPPED.load(Ordering::Relaxed);
                if dropped > announced {
                    let notice = format!(
                        "warden: {} log line(s) were dropped because the log output failed or could not keep up (total {dropped})\n",
                        dropped - announced
                    );
                    if out.write_all(notice.as_bytes()).is_ok() {
                        announced = dropped;
                    }
                }
                if out.write_all(&line).is_err() {
                    DROPPED.fetch_add(1, Ordering::Relaxed);
                }
                let _ = out.flush();
            }
            Msg::Flush(done) => {
                let _ = out.flush();
                let _ = done.try_send(());
            }
        }
    }
}

/// Writes `text` to standard output with the error handled: the address line that
/// scripts and tests read to learn the port. A closed or full stdout is logged, not a
/// panic.
pub fn stdout_line(text: &str) {
    let mut out = io::stdout().lock();
    let written = out
        .write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if let Err(e) = written {
        tracing::warn!(error = %e, line = text, "cannot write to standard output");
    }
}

/// Writes `text` to standard error with the error ignored (the last words of a failing
/// command: if stderr is gone there is no one to tell).
pub fn stderr_line(text: &str) {
    let mut err = io::stderr().lock();
    let _ = err
        .write_all(text.as_bytes())
        .and_then(|()| err.write_all(b"\n"))
        .and_then(|()| err.flush());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// An output that fails while `failing` holds, then records lines.
    struct Flaky {
        failing: std::sync::Arc<std::sync::atomic::AtomicBool>,
        got: std::sync::Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Flaky {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.failing.load(Ordering::SeqCst) {
                return Err(io::Error::from(io::ErrorKind::BrokenPipe));
            }
            crate::sync::lock(&self.got).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn failed_lines_are_counted_and_announced_once_output_works() {
        let failing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let got = std::sync::Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = sync_channel(16);
        let out = Flaky {
            failing: failing.clone(),
            got: got.clone(),
        };
        let t = std::thread::spawn(move || write_loop(rx, out));
        let mut w = QueueWriter {
            tx: Some(tx.clone()),
        };
        let before = lines_dropped();
        for _ in 0..3 {
            w.write_all(b"lost\n").expect("never fails");
        }
        let (d, r) = sync_channel(1);
        tx.send(Msg::Flush(d)).expect("flush");
        r.recv().expect("flushed");
        assert!(lines_dropped() >= before + 3);
        failing.store(false, Ordering::SeqCst);
        w.write_all(b"kept\n").expect("never fails");
        let (d, r) = sync_channel(1);
        tx.send(Msg::Flush(d)).expect("flush");
        r.recv().expect("flushed");
        drop((w, tx));
        t.join().expect("writer thread");
        let text = String::from_utf8(got.lock().expect("lock").clone()).expect("utf8");
        assert!(text.contains("were dropped"), "{text}");
        assert!(text.ends_with("kept\n"), "{text}");
        assert_eq!(text.matches("were dropped").count(), 1, "{text}");
    }
}
