//! Small networking helpers shared by the clients: deadline-bounded TCP connect, address
//! parsing and bounded HTTP body reading.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::error::{ProtoError, Result};

/// Connects to `addr` ("host:port"), resolving the name inside the same deadline so that a
/// slow DNS server cannot stretch the caller's timeout.
pub(crate) async fn connect_tcp(
    addr: &str,
    deadline: Instant,
    after: Duration,
) -> Result<TcpStream> {
    match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            // Requests are small and latency matters more than throughput, so Nagle's
            // algorithm would only add delay. Failure to set it is harmless.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(source)) => Err(ProtoError::Connect {
            addr: addr.to_owned(),
            source,
        }),
        Err(_) => Err(ProtoError::Timeout {
            addr: addr.to_owned(),
            what: "connecting",
            after,
        }),
    }
}

/// Splits "host:port" (or "[v6]:port") into its parts. The port is required because every
/// protocol here has a different default and guessing wrong is a confusing failure.
pub(crate) fn split_host_port(addr: &str) -> Result<(String, u16)> {
    let invalid = |detail: &str| ProtoError::InvalidAddress {
        addr: addr.to_owned(),
        detail: detail.to_owned(),
    };
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| invalid("expected host:port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| invalid("the port must be a number from 1 to 65535"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Err(invalid("expected host:port"));
    }
    Ok((host.to_owned(), port))
}

/// Reads at most `limit` bytes of an HTTP body. Returns the bytes and whether the body was
/// longer than the limit (in which case the rest is left unread).
pub(crate) async fn read_body_limited(
    resp: &mut reqwest::Response,
    limit: usize,
) -> std::result::Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = limit.saturating_sub(body.len());
        if chunk.len() > room {
            body.extend_from_slice(chunk.get(..room).unwrap_or_default());
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// Describes an error together with its chain of causes, because reqwest's top-level message
/// ("error sending request") hides the useful part ("Connection refused").
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_host_and_port() {
        assert_eq!(
            split_host_port("127.0.0.1:25565").unwrap(),
            ("127.0.0.1".to_owned(), 25565)
        );
        assert_eq!(split_host_port("[::1]:1").unwrap(), ("::1".to_owned(), 1));
        assert!(split_host_port("localhost").is_err());
        assert!(split_host_port(":80").is_err());
        assert!(split_host_port("host:0").is_err());
        assert!(split_host_port("host:99999").is_err());
    }
}
