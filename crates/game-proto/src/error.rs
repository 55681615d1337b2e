//! The crate's single error type, [`ProtoError`], and the pure-decoder error [`DecodeError`].
//!
//! Every message says what failed, against which address, and gives a hint for the person
//! reading warden's logs. No variant ever carries a password or other secret, so deriving
//! `Debug` here is safe.

use std::time::Duration;

/// Shorthand for results of this crate.
pub type Result<T, E = ProtoError> = std::result::Result<T, E>;

/// Everything that can go wrong while talking to a game server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// The address could not be parsed or resolved.
    #[error("invalid address {addr:?}: {detail}")]
    InvalidAddress { addr: String, detail: String },

    /// The caller asked for something the protocol cannot carry (too long, contains NUL, ...).
    #[error("invalid request for {addr}: {detail}")]
    InvalidInput { addr: String, detail: String },

    /// The TCP connection could not be established.
    #[error(
        "could not connect to {addr}: {source} (is the game server running and listening on that port?)"
    )]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },

    /// A read or write on an established connection failed.
    #[error("I/O error talking to {addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },

    /// The server did not answer in time.
    #[error(
        "timed out after {} ms {what} at {addr} (is the server overloaded, still starting, or is this the wrong port?)",
        after.as_millis()
    )]
    Timeout {
        addr: String,
        what: &'static str,
        after: Duration,
    },

    /// The server closed the connection before the exchange was complete.
    #[error("{addr} closed the connection {during}")]
    Closed { addr: String, during: &'static str },

    /// The server rejected our password.
    #[error("{proto} authentication to {addr} failed: wrong password (check {hint})")]
    AuthFailed {
        proto: &'static str,
        addr: String,
        hint: &'static str,
    },

    /// A recent authentication failure makes us refuse to try again for a while, so that a
    /// wrong password never turns into a storm of login attempts (which some servers punish
    /// with an IP ban).
    #[error(
        "{proto} to {addr} is paused for {retry_in_secs} s after a failed login: wrong password (check {hint})"
    )]
    AuthCoolDown {
        proto: &'static str,
        addr: String,
        hint: &'static str,
        retry_in_secs: u64,
    },

    /// The server sent something that does not follow the protocol.
    #[error(
        "unexpected {proto} reply from {addr}: {detail} (is this the right port and protocol for this server?)"
    )]
    Protocol {
        proto: &'static str,
        addr: String,
        detail: String,
    },

    /// The server sent more data than we are willing to hold in memory.
    #[error("{what} from {addr} exceeds the limit of {limit} bytes")]
    TooLarge {
        addr: String,
        what: &'static str,
        limit: usize,
    },

    /// An HTTP request failed or returned an unexpected status.
    #[error("HTTP request to {url} failed: {detail}")]
    Http { url: String, detail: String },

    /// A health check reached the server but the answer did not meet the expectation.
    #[error("health check of {target} failed: {detail}")]
    CheckFailed { target: String, detail: String },
}

impl ProtoError {
    /// True for a rejected password and for the cool-down that follows one; callers should
    /// surface these to the user rather than retry.
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, Self::AuthFailed { .. } | Self::AuthCoolDown { .. })
    }

    /// True when the error means the connection itself broke (so reconnecting may help).
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            Self::Io { .. } | Self::Closed { .. } | Self::Connect { .. }
        )
    }
}

/// Error of the pure decoders: the input bytes are malformed. The I/O layer turns it into a
/// [`ProtoError::Protocol`] with the server's address attached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

impl DecodeError {
    pub(crate) fn new(detail: impl Into<String>) -> Self {
        Self(detail.into())
    }

    /// Attaches the protocol name and server address.
    pub(crate) fn at(self, proto: &'static str, addr: &str) -> ProtoError {
        ProtoError::Protocol {
            proto,
            addr: addr.to_owned(),
            detail: self.0,
        }
    }
}
