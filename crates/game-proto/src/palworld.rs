//! Palworld dedicated-server REST API client ([`PalworldClient`]): info, players, metrics,
//! announce, save and shutdown under `/v1/api/`, with HTTP basic auth as user `admin`.
//!
//! Only plain HTTP is supported (the API is meant for the local machine or LAN, and the crate
//! is built without TLS). Replies are parsed leniently: missing fields become empty or zero,
//! and numbers are accepted whether the server writes them as integers or floats, because
//! the field set has changed between game versions.

use std::fmt;
use std::time::Duration;

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{ProtoError, Result};
use crate::net;

/// Largest reply body we read.
pub const MAX_BODY: usize = 1024 * 1024;
const PROTO: &str = "Palworld REST API";
const PASSWORD_HINT: &str = "the admin password in the program's game settings; it must match AdminPassword in PalWorldSettings.ini";
const USER: &str = "admin";

/// Reply of `GET /v1/api/info`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PalworldInfo {
    pub version: String,
    #[serde(rename = "servername")]
    pub server_name: String,
    pub description: String,
    #[serde(rename = "worldguid")]
    pub world_guid: String,
}

/// One entry of `GET /v1/api/players`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PalworldPlayer {
    pub name: String,
    #[serde(rename = "accountName")]
    pub account_name: String,
    #[serde(rename = "playerId")]
    pub player_id: String,
    #[serde(rename = "userId")]
    pub user_id: String,
    pub ip: String,
    #[serde(deserialize_with = "lenient_f64")]
    pub ping: f64,
    #[serde(deserialize_with = "lenient_f64")]
    pub location_x: f64,
    #[serde(deserialize_with = "lenient_f64")]
    pub location_y: f64,
    #[serde(deserialize_with = "lenient_u32")]
    pub level: u32,
    #[serde(deserialize_with = "lenient_u32")]
    pub building_count: u32,
}

/// Reply of `GET /v1/api/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PalworldMetrics {
    #[serde(rename = "serverfps", deserialize_with = "lenient_f64")]
    pub server_fps: f64,
    #[serde(rename = "currentplayernum", deserialize_with = "lenient_u32")]
    pub current_players: u32,
    #[serde(rename = "serverframetime", deserialize_with = "lenient_f64")]
    pub server_frame_time_ms: f64,
    #[serde(rename = "maxplayernum", deserialize_with = "lenient_u32")]
    pub max_players: u32,
    #[serde(rename = "uptime", deserialize_with = "lenient_u64")]
    pub uptime_secs: u64,
    #[serde(rename = "basecampnum", deserialize_with = "lenient_u32")]
    pub base_camps: u32,
    #[serde(deserialize_with = "lenient_u32")]
    pub days: u32,
}

#[derive(Deserialize)]
struct PlayerList {
    #[serde(default)]
    players: Vec<PalworldPlayer>,
}

fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(match &v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => s.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    })
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let f = lenient_f64(d)?;
    // `as` saturates and maps NaN to 0, which is what a lenient reading wants.
    Ok(f.max(0.0) as u64)
}

fn lenient_u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    Ok(u32::try_from(lenient_u64(d)?).unwrap_or(u32::MAX))
}

/// Replaces any `user:password@` part of a URL with `***@`, so it is safe to show.
fn redact_userinfo(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}***@{host}{path}"),
        None => url.to_owned(),
    }
}

/// Client for one Palworld server's REST API. Cheap to clone (the HTTP connection pool is
/// shared).
#[derive(Clone)]
pub struct PalworldClient {
    base: String,
    addr: String,
    password: String,
    timeout: Duration,
    http: reqwest::Client,
}

impl fmt::Debug for PalworldClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PalworldClient")
            .field("base", &self.base)
            .field("password", &"***")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl PalworldClient {
    /// `base_url` is like `http://127.0.0.1:8212` (a trailing `/` is fine). `timeout` bounds
    /// each request including reading the reply.
    pub fn new(base_url: &str, password: &str, timeout: Duration) -> Result<Self> {
        let invalid = |detail: &str| ProtoError::InvalidAddress {
            addr: redact_userinfo(base_url),
            detail: detail.to_owned(),
        };
        let url = reqwest::Url::parse(base_url).map_err(|e| invalid(&e.to_string()))?;
        if url.scheme() != "http" {
            return Err(invalid(
                "only http:// is supported (the REST API is meant for the local network)",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Credentials in the URL would end up in error messages and logs.
            return Err(invalid(
                "do not put credentials in the URL; pass the password separately",
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| invalid("the URL has no host"))?;
        let addr = match url.port_or_known_default() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let http = crate::http_client_builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // Game servers live on this machine or the LAN; a proxy from the environment
            // would only get in the way.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ProtoError::Http {
                url: redact_userinfo(base_url),
                detail: net::error_chain(&e),
            })?;
        Ok(PalworldClient {
            base: base_url.trim_end_matches('/').to_owned(),
            addr,
            password: password.to_owned(),
            timeout,
            http,
        })
    }

    /// `GET /v1/api/info`.
    pub async fn info(&self) -> Result<PalworldInfo> {
        self.get_json("info").await
    }

    /// `GET /v1/api/players`.
    pub async fn players(&self) -> Result<Vec<PalworldPlayer>> {
        Ok(self.get_json::<PlayerList>("players").await?.players)
    }

    /// `GET /v1/api/metrics`.
    pub async fn metrics(&self) -> Result<PalworldMetrics> {
        self.get_json("metrics").await
    }

    /// `POST /v1/api/announce`: shows `message` to everyone in game.
    pub async fn announce(&self, message: &str) -> Result<()> {
        self.call(
            reqwest::Method::POST,
            "announce",
            Some(json!({ "message": message })),
        )
        .await
        .map(drop)
    }

    /// `POST /v1/api/save`: saves the world now.
    pub async fn save(&self) -> Result<()> {
        self.call(reqwest::Method::POST, "save", None)
            .await
            .map(drop)
    }

    /// `POST /v1/api/shutdown`: announces `message` and shuts down after `wait_secs`.
    pub async fn shutdown(&self, wait_secs: u32, message: &str) -> Result<()> {
        let body = json!({ "waittime": wait_secs, "message": message });
        self.call(reqwest::Method::POST, "shutdown", Some(body))
            .await
            .map(drop)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, endpoint: &str) -> Result<T> {
        let body = self.call(reqwest::Method::GET, endpoint, None).await?;
        serde_json::from_slice(&body).map_err(|e| ProtoError::Protocol {
            proto: PROTO,
            addr: self.addr.clone(),
            detail: format!("/v1/api/{endpoint} did not return the expected JSON: {e}"),
        })
    }

    /// Performs one request and returns the body of a 2xx reply.
    async fn call(
        &self,
        method: reqwest::Method,
        endpoint: &str,
        body: Option<Value>,
    ) -> Result<Vec<u8>> {
        let url = format!("{}/v1/api/{endpoint}", self.base);
        let mut request = self
            .http
            .request(method, &url)
            .basic_auth(USER, Some(&self.password));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let exchange = async {
            let mut resp = request.send().await?;
            let status = resp.status();
            let (body, truncated) = net::read_body_limited(&mut resp, MAX_BODY).await?;
            Ok::<_, reqwest::Error>((status, body, truncated))
        };
        // reqwest enforces the same timeout; the outer one is a second line of defence.
        let (status, body, truncated) = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) if e.is_timeout() => return Err(self.timed_out()),
            Ok(Err(e)) => {
                let hint = if e.is_connect() {
                    " (is the server running with RESTAPIEnabled=True, and is RESTAPIPort right?)"
                } else {
                    ""
                };
                return Err(ProtoError::Http {
                    url,
                    detail: format!("{}{hint}", net::error_chain(&e.without_url())),
                });
            }
            Err(_) => return Err(self.timed_out()),
        };
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(ProtoError::AuthFailed {
                proto: PROTO,
                addr: self.addr.clone(),
                hint: PASSWORD_HINT,
            });
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.trim().chars().take(200).collect();
            return Err(ProtoError::Http {
                url,
                detail: format!("server answered {status}: {text}"),
            });
        }
        if truncated {
            return Err(ProtoError::TooLarge {
                addr: self.addr.clone(),
                what: "Palworld REST reply",
                limit: MAX_BODY,
            });
        }
        Ok(body)
    }

    fn timed_out(&self) -> ProtoError {
        ProtoError::Timeout {
            addr: self.addr.clone(),
            what: "waiting for the Palworld REST API",
            after: self.timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_credentials_and_https() {
        let t = Duration::from_secs(1);
        let err = PalworldClient::new("http://admin:secret@127.0.0.1:8212", "x", t).unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        let err = PalworldClient::new("admin:secret@127.0.0.1:8212", "x", t).unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(PalworldClient::new("https://127.0.0.1:8212", "x", t).is_err());
        let client = PalworldClient::new("http://127.0.0.1:8212/", "hunter2", t).unwrap();
        assert!(!format!("{client:?}").contains("hunter2"));
    }

    #[test]
    fn parses_metrics_leniently() {
        let m: PalworldMetrics = serde_json::from_str(
            r#"{"serverfps":59,"currentplayernum":"3","serverframetime":16.7,"maxplayernum":32.0,"uptime":-5,"extra":1}"#,
        )
        .unwrap();
        assert_eq!(m.current_players, 3);
        assert_eq!(m.max_players, 32);
        assert_eq!(m.uptime_secs, 0);
        assert_eq!(m.server_fps, 59.0);
    }
}
