//! Async clients for game-server protocols, used by warden's `games` service: Source RCON
//! ([`rcon`]), Minecraft Server List Ping ([`slp`]), Steam A2S queries ([`a2s`]), the
//! Palworld REST API ([`palworld`]) and generic TCP/HTTP health checks ([`check`]).
//!
//! Every client bounds every wait by a timeout and every length by a limit checked before
//! allocating, and reports problems as a [`ProtoError`] whose message names the server and
//! hints at the fix. The byte-level decoders are plain functions, separate from the I/O, so
//! they can be tested (and fuzzed) directly.

pub mod a2s;
pub mod check;
pub mod error;
mod net;
pub mod palworld;
pub mod rcon;
pub mod slp;

pub use a2s::{A2sInfo, A2sPlayer};
pub use check::{HttpCheckOutcome, http_check, tcp_check};
pub use error::{DecodeError, ProtoError, Result};
pub use palworld::{PalworldClient, PalworldInfo, PalworldMetrics, PalworldPlayer};
pub use rcon::{RconClient, RconSession};
pub use slp::SlpStatus;

/// An HTTP client builder that is safe to `build()` in any build of the workspace: when a
/// crate in the same build enables reqwest's `rustls-no-provider` feature (warden does, for
/// HTTPS webhooks), reqwest panics while building a client unless a rustls crypto provider
/// is installed. Installing ring here is a no-op when one is already installed.
pub(crate) fn http_client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}
