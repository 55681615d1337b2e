//! Integration tests for game-proto: each protocol client against a small spec-based
//! responder on a real loopback socket, plus property tests of the pure decoders.
//!
//! The responders are written from the protocol descriptions, independently of the crate's
//! own codecs, so a shared misunderstanding cannot make both sides agree by accident.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod a2s;
mod check;
mod palworld;
mod props;
mod rcon;
mod slp;

use std::time::{Duration, Instant};

use game_proto::ProtoError;

/// Asserts that `fut` fails within `limit` and returns the error.
pub async fn fails_within<T: std::fmt::Debug>(
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, ProtoError>>,
) -> ProtoError {
    let started = Instant::now();
    let result = tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| panic!("no answer within {limit:?} (the client hung)"));
    let elapsed = started.elapsed();
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(e) => {
            assert!(elapsed <= limit, "took {elapsed:?}");
            e
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift), so garbage tests are reproducible.
pub fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A TCP listener that, for every connection, writes `bytes` and then either closes or keeps
/// the connection open without another word.
pub async fn tcp_garbage_server(bytes: Vec<u8>, then_hang: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let bytes = bytes.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                // Wait for the client's first request so that an HTTP client sees a reply
                // to its request rather than an unsolicited message.
                let mut first = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut first)).await;
                let _ = stream.write_all(&bytes).await;
                if !then_hang {
                    // Half-close, then drain: closing with unread request bytes would send a
                    // reset that can destroy the reply before the client reads it.
                    let _ = stream.shutdown().await;
                }
                // Keep reading (so the client's writes succeed) but never answer.
                let mut sink = [0u8; 1024];
                let drain =
                    async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
                let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
            });
        }
    });
    addr
}
