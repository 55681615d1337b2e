//! The fleet: other wardens this one knows as nodes (name, URL, API token, pinned TLS
//! certificate), the rules a node's address must keep, and the Prometheus HTTP
//! service-discovery document that lists every warden's `/metrics` target.
//!
//! This file is pure data and validation: the nodes are stored by `store/fleet.rs`,
//! managed by `warden fleet …` (cli) and served by `api/fleet.rs`. `overview.rs` reads
//! the nodes' programs for the hub; `forward.rs` takes actions on a node's program for
//! the hub; `moving.rs` moves a program to a node (and takes one in); `live.rs` relays a node's live feed to the hub's WebSocket clients; `pin.rs`
//! is TLS to a node with a pinned certificate; `crate::seal` keeps the nodes' tokens
//! encrypted at rest.

pub mod forward;
pub mod live;
pub mod moving;
mod overview;
pub mod pin;

pub use overview::{Fleet, FleetPrograms, NodeStatus};

use std::net::IpAddr;

use reqwest::Url;
use serde::Serialize;
use utoipa::ToSchema;

/// A node as the store keeps it. The token never leaves warden except in requests to
/// that node: `Debug` masks it and [`Node::view`] leaves it out.
#[derive(Clone, PartialEq)]
pub struct Node {
    /// Short name, used as the `node` label (rules of program names).
    pub name: String,
    /// Base URL of the node's API, e.g. `https://box2.example:9180/`.
    pub url: String,
    /// An API token of the node: as given by `validate`, sealed (`crate::seal`) in the store.
    pub token: String,
    /// SHA-256 of the node's TLS certificate (64 lowercase hex digits), when pinned.
    pub fingerprint: Option<String>,
    /// Plain HTTP to a host that is not loopback was explicitly allowed.
    pub allow_insecure: bool,
    /// Unix ms when it was added.
    pub created_at: i64,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("token", &"***")
            .field("fingerprint", &self.fingerprint)
            .field("allow_insecure", &self.allow_insecure)
            .finish()
    }
}

/// A node as it may be shown to people and browsers: everything but the token.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NodeView {
    /// Node name.
    pub name: String,
    /// Base URL of its API.
    pub url: String,
    /// Pinned certificate SHA-256, if any.
    pub fingerprint: Option<String>,
    /// Plain HTTP to a non-loopback host allowed.
    pub allow_insecure: bool,
}

impl Node {
    /// The node without its token.
    pub fn view(&self) -> NodeView {
        NodeView {
            name: self.name.clone(),
            url: self.url.clone(),
            fingerprint: self.fingerprint.clone(),
            allow_insecure: self.allow_insecure,
        }
    }
}

/// What `warden fleet add` was given, before validation.
#[derive(Debug, Clone, Default)]
pub struct NewNode {
    /// Node name.
    pub name: String,
    /// Base URL.
    pub url: String,
    /// API token of the node.
    pub token: String,
    /// Certificate SHA-256, hex with or without colons.
    pub fingerprint: Option<String>,
    /// Allow plain HTTP to a host that is not loopback.
    pub allow_insecure: bool,
}

/// Checks a new node and normalises it (URL ending in `/`, fingerprint in lowercase hex
/// without colons). Every problem is reported at once, each saying how to fix it.
pub fn validate(n: NewNode, now_ms: i64) -> Result<Node, Vec<String>> {
    let mut problems = Vec::new();
    if !crate::program::valid_name(&n.name) {
        problems.push(format!(
            "node name {:?} is not valid: use 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit",
            n.name
        ));
    }
    let url = match parse_url(&n.url, n.allow_insecure) {
        Ok(u) => Some(u),
        Err(e) => {
            problems.push(e);
            None
        }
    };
    let token = n.token.trim().to_string();
    if token.is_empty() {
        problems.push(
            "the node's API token is empty: create one on the node with `warden token create NAME --role viewer` and pass it on standard input"
                .to_string(),
        );
    } else if token.chars().any(|c| c.is_control() || c == ' ') {
        problems.push("the node's API token contains spaces or control characters; paste it exactly as `warden token create` printed it".to_string());
    }
    let fingerprint = match n.fingerprint.as_deref().map(parse_fingerprint) {
        None => None,
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => {
            problems.push(e);
            None
        }
    };
    if fingerprint.is_some() && url.as_ref().is_some_and(|u| u.scheme() != "https") {
        problems.push(format!(
            "a pinned certificate fingerprint needs an https:// URL, but {} is plain HTTP",
            n.url
        ));
    }
    match url {
        Some(url) if problems.is_empty() => Ok(Node {
            name: n.name,
            url: url.to_string(),
            token,
            fingerprint,
            allow_insecure: n.allow_insecure,
            created_at: now_ms,
        }),
        _ => Err(problems),
    }
}

/// Parses a node's base URL: `http` or `https`, a host, no credentials, query or
/// fragment; plain `http` only to a loopback host unless `allow_insecure`.
pub fn parse_url(text: &str, allow_insecure: bool) -> Result<Url, String> {
    let mut url = Url::parse(text.trim()).map_err(|e| {
        format!("node URL {text:?} is not a URL ({e}); write e.g. https://box2.example:9180/")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "node URL {text:?} uses {}://; use https:// (or http:// to a loopback address)",
            url.scheme()
        ));
    }
    let Some(host) = url.host_str().map(str::to_string) else {
        return Err(format!("node URL {text:?} has no host"));
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "node URL {text:?} carries credentials; remove them, the node's token is given separately"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "node URL {text:?} has a query or fragment; give only the base address of the node's API"
        ));
    }
    if url.scheme() == "http" && !allow_insecure && !is_loopback(&host) {
        return Err(format!(
            "node URL {text:?} is plain HTTP to {host}, which is not a loopback address: the node's token and everything it answers would cross the network unencrypted. \
             Use https:// (warden behind a TLS proxy, optionally with --fingerprint), or pass --allow-insecure if the network between the machines is trusted"
        ));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// True for `localhost` and loopback IP addresses.
pub fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") || bare.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Normalises a SHA-256 fingerprint: 64 hex digits, colons allowed, any case.
pub fn parse_fingerprint(text: &str) -> Result<String, String> {
    let hex: String = text
        .trim()
        .trim_start_matches("sha256:")
        .trim_start_matches("SHA256:")
        .chars()
        .filter(|c| *c != ':')
        .collect();
    if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(hex.to_ascii_lowercase())
    } else {
        Err(format!(
            "certificate fingerprint {text:?} is not a SHA-256 in hex (64 digits, colons allowed); get it with \
             `openssl x509 -in cert.pem -noout -fingerprint -sha256`"
        ))
    }
}

/// One target group of Prometheus HTTP service discovery.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TargetGroup {
    /// `host:port` of one warden.
    pub targets: Vec<String>,
    /// `node`, `__scheme__`, `__metrics_path__`.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// The target group of a warden reached at `url` (its API base), labelled `node`.
pub fn target_group(node: &str, url: &Url) -> Option<TargetGroup> {
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    // An IPv6 literal keeps its brackets in `host_str`, as `host:port` needs.
    let target = format!("{host}:{port}");
    let base = url.path().trim_end_matches('/');
    let labels = [
        ("node", node.to_string()),
        ("__scheme__", url.scheme().to_string()),
        ("__metrics_path__", format!("{base}/metrics")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Some(TargetGroup {
        targets: vec![target],
        labels,
    })
}

/// The service-discovery document: this warden (`self_name` at `self_url`) first, then
/// each node. A stored node whose URL no longer parses is left out and logged.
pub fn sd_document(self_name: &str, self_url: &Url, nodes: &[Node]) -> Vec<TargetGroup> {
    let mut out: Vec<TargetGroup> = target_group(self_name, self_url).into_iter().collect();
    for n in nodes {
        match Url::parse(&n.url)
            .ok()
            .and_then(|u| target_group(&n.name, &u))
        {
            Some(g) => out.push(g),
            None => {
                tracing::warn!(node = %n.name, url = %n.url, "fleet node has an unusable URL; left out of service discovery")
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(name: &str, url: &str) -> NewNode {
        NewNode {
            name: name.into(),
            url: url.into(),
            token: "wdn_abc_def".into(),
            ..NewNode::default()
        }
    }

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        assert!(validate(new("a", "http://127.0.0.1:9180"), 0).is_ok());
        assert!(validate(new("a", "http://localhost:9180"), 0).is_ok());
        assert!(validate(new("a", "http://[::1]:9180"), 0).is_ok());
        let e = validate(new("a", "http://10.0.0.2:9180"), 0).expect_err("refused");
        assert!(e[0].contains("not a loopback address"), "{e:?}");
        assert!(e[0].contains("--allow-insecure"), "{e:?}");
        let mut n = new("a", "http://10.0.0.2:9180");
        n.allow_insecure = true;
        assert_eq!(
            validate(n, 0).expect("allowed").url,
            "http://10.0.0.2:9180/"
        );
        assert!(validate(new("a", "https://box.example"), 0).is_ok());
        assert!(validate(new("a", "ftp://box.example"), 0).is_err());
        assert!(validate(new("a", "https://u:p@box.example"), 0).is_err());
    }

    #[test]
    fn every_problem_is_reported() {
        let mut n = new("Bad Name", "nonsense");
        n.token = String::new();
        n.fingerprint = Some("zz".into());
        let e = validate(n, 0).expect_err("invalid");
        assert_eq!(e.len(), 4, "{e:?}");
    }

    #[test]
    fn fingerprints_are_normalised_and_need_https() {
        let colons = ["AB"; 32].join(":");
        assert_eq!(parse_fingerprint(&colons).expect("ok"), "ab".repeat(32));
        let mut n = new("a", "http://127.0.0.1:9180");
        n.fingerprint = Some(colons.clone());
        assert!(validate(n, 0).is_err());
        let mut n = new("a", "https://box.example:9443/warden");
        n.fingerprint = Some(colons);
        let node = validate(n, 0).expect("ok");
        assert_eq!(node.fingerprint.as_deref(), Some("ab".repeat(32).as_str()));
        assert!(!format!("{node:?}").contains("wdn_abc_def"));
    }

    #[test]
    fn targets_carry_scheme_path_and_node() {
        let url = Url::parse("https://box.example/warden/").expect("url");
        let g = target_group("box", &url).expect("group");
        assert_eq!(g.targets, ["box.example:443"]);
        assert_eq!(g.labels["node"], "box");
        assert_eq!(g.labels["__scheme__"], "https");
        assert_eq!(g.labels["__metrics_path__"], "/warden/metrics");
        let url = Url::parse("http://[::1]:9180/").expect("url");
        let g = target_group("v6", &url).expect("group");
        assert_eq!(g.targets, ["[::1]:9180"]);
        assert_eq!(g.labels["__metrics_path__"], "/metrics");
    }
}
