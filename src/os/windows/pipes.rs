//! A program's stdout and stderr on Windows: overlapped named pipes read through the
//! runtime's I/O completion port.
//!
//! Why not `Stdio::piped()`: tokio reads an anonymous pipe on Windows by a blocking call
//! on its blocking pool, one call in flight per stream for as long as the program runs.
//! Two streams per program held a pool thread each, so eight silent programs filled the
//! 16 threads and every store read (all of the API) waited behind them. A named pipe whose
//! server end warden opens overlapped is read like a socket: no thread while it is silent.
//! The child gets the client end as an ordinary synchronous handle, as an anonymous pipe
//! would be.

use std::io;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::windows::named_pipe::{NamedPipeServer, ServerOptions};

use super::super::OutputReader;

/// Pipe buffer size, as an anonymous pipe's.
const BUFFER: u32 = 64 * 1024;

/// Numbers the pipes of this warden, so every name is new.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// A program's stdout and stderr, captured for its console.
pub struct Output {
    out: NamedPipeServer,
    err: NamedPipeServer,
}

impl Output {
    /// Sends `cmd`'s stdout and stderr into two new named pipes that warden reads.
    pub async fn capture(cmd: &mut tokio::process::Command) -> io::Result<Output> {
        let (out, out_client) = pipe().await?;
        let (err, err_client) = pipe().await?;
        // The command keeps the client ends until it is dropped after the spawn; from
        // then on only the child (and what it starts) holds them, so its exit is the
        // pipes' end of file.
        cmd.stdout(out_client).stderr(err_client);
        Ok(Output { out, err })
    }

    /// The readers of the spawned child's stdout and stderr.
    pub fn readers(self, _child: &mut tokio::process::Child) -> [Option<OutputReader>; 2] {
        [
            Some(Box::new(self.out) as OutputReader),
            Some(Box::new(self.err) as OutputReader),
        ]
    }
}

/// One inbound pipe: the server end (warden's, overlapped) connected to the client end
/// (the child's, synchronous).
async fn pipe() -> io::Result<(NamedPipeServer, Stdio)> {
    let name = format!(
        r"\\.\pipe\warden-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    // First instance and one instance only: nobody else can create or join this pipe
    // once it exists, and the local client below takes its only connection.
    let server = ServerOptions::new()
        .first_pipe_instance(true)
        .max_instances(1)
        .access_inbound(true)
        .access_outbound(false)
        .reject_remote_clients(true)
        .in_buffer_size(BUFFER)
        .out_buffer_size(0)
        .create(&name)?;
    let client = std::fs::OpenOptions::new().write(true).open(&name)?;
    // Already connected by the open above: this returns at once.
    server.connect().await?;
    Ok((server, Stdio::from(client)))
}
