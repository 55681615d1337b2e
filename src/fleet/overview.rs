//! The hub's overview of the fleet: every node's programs read concurrently, each under
//! its own timeout, so a node that does not answer is shown as unreachable (with when it
//! last answered) while the others are listed as usual.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::Node;
use super::pin::Pinned;
use crate::seal::{self, Sealer};
use crate::store::{Store, StoreError};

/// How one node answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NodeStatus {
    /// Node name (this warden's own is its `[fleet] name`).
    pub node: String,
    /// True when the node did not answer in time or refused the hub.
    pub unreachable: bool,
    /// Unix ms of the node's last good answer since this warden started (absent: never).
    pub last_seen_ms: Option<i64>,
    /// Why it is unreachable, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Programs it listed.
    pub programs: usize,
}

/// The fleet's programs, each with a `node` field, and how every node answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FleetPrograms {
    /// This warden first, then the nodes by name.
    pub nodes: Vec<NodeStatus>,
    /// Every program as its own warden shows it (`GET /api/programs`), plus `node`.
    #[schema(value_type = Vec<Object>)]
    pub programs: Vec<Value>,
}

/// Reads the nodes; keeps one HTTP client per node and when each last answered.
pub struct Fleet {
    pub(super) store: Store,
    /// Holds the key the nodes' tokens are sealed with.
    pub(super) data_dir: PathBuf,
    pub(super) timeout: Duration,
    /// Per node: (URL and pin it was built for, client).
    clients: Mutex<HashMap<String, (String, reqwest::Client)>>,
    seen: Mutex<HashMap<String, i64>>,
}

impl Fleet {
    /// A fleet reader waiting at most `timeout` for each node.
    pub fn new(store: Store, data_dir: PathBuf, timeout: Duration) -> Fleet {
        Fleet {
            store,
            data_dir,
            timeout,
            clients: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn client(&self, node: &Node) -> Result<reqwest::Client, String> {
        let key = format!("{} {:?}", node.url, node.fingerprint);
        let mut clients = crate::sync::lock(&self.clients);
        if let Some((k, c)) = clients.get(&node.name)
            && *k == key
        {
            return Ok(c.clone());
        }
        let mut b = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout);
        if let Some(pin) = &node.fingerprint {
            let tls = Pinned::new(pin)
                .client_config()
                .map_err(|e| format!("cannot set up TLS for the pinned certificate: {e}"))?;
            b = b.tls_backend_preconfigured(tls);
        }
        let c = b
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        clients.insert(node.name.clone(), (key, c.clone()));
        Ok(c)
    }

    /// The programs of one node (each with `node` added), or why not.
    async fn programs_of(
        &self,
        node: &Node,
        sealer: &Result<Sealer, String>,
    ) -> Result<Vec<Value>, String> {
        let token = sealer.as_ref().map_err(Clone::clone)?.unseal(&node.token)?;
        let client = self.client(node)?;
        let url = format!("{}api/programs", node.url);
        let resp = client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .map_err(|e| describe(&e, self.timeout))?;
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(format!(
                "the node refused the hub's token (HTTP {}); make a new token on the node and add the node again",
                status.as_u16()
            ));
        }
        if !status.is_success() {
            return Err(format!("the node answered HTTP {}", status.as_u16()));
        }
        let body: Value = resp
            .json()
            .await
            .map_err(|e| format!("the node's answer is not a program list: {e}"))?;
        let Some(list) = body["programs"].as_array() else {
            return Err("the node's answer has no program list".to_string());
        };
        Ok(list
            .iter()
            .map(|p| with_node(p.clone(), &node.name))
            .collect())
    }

    /// Every node's programs, read at once; `local` are this warden's own (named
    /// `local_name`). Never waits longer than the timeout for any node.
    pub async fn programs(
        &self,
        local_name: &str,
        local: Vec<Value>,
        now_ms: i64,
    ) -> Result<FleetPrograms, StoreError> {
        let nodes = self.store.fleet_nodes().await?;
        let sealer = if nodes.is_empty() {
            Err(String::new())
        } else {
            Sealer::load(&self.data_dir, seal::FLEET)
        };
        let answers =
            futures_util::future::join_all(nodes.iter().map(|n| self.programs_of(n, &sealer)))
                .await;
        let mut out = FleetPrograms {
            nodes: vec![NodeStatus {
                node: local_name.to_string(),
                unreachable: false,
                last_seen_ms: Some(now_ms),
                error: None,
                programs: local.len(),
            }],
            programs: local
                .into_iter()
                .map(|p| with_node(p, local_name))
                .collect(),
        };
        let mut seen = crate::sync::lock(&self.seen);
        for (node, answer) in nodes.iter().zip(answers) {
            match answer {
                Ok(programs) => {
                    seen.insert(node.name.clone(), now_ms);
                    out.nodes.push(NodeStatus {
                        node: node.name.clone(),
                        unreachable: false,
                        last_seen_ms: Some(now_ms),
                        error: None,
                        programs: programs.len(),
                    });
                    out.programs.extend(programs);
                }
                Err(error) => out.nodes.push(NodeStatus {
                    node: node.name.clone(),
                    unreachable: true,
                    last_seen_ms: seen.get(&node.name).copied(),
                    error: Some(error),
                    programs: 0,
                }),
            }
        }
        Ok(out)
    }
}

fn with_node(mut program: Value, node: &str) -> Value {
    if let Some(o) = program.as_object_mut() {
        o.insert("node".to_string(), Value::String(node.to_string()));
    }
    program
}

/// A failed request in words (never the URL's token: tokens are headers, not URLs).
pub(super) fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("no answer within {} ms", timeout.as_millis())
    } else if e.is_connect() {
        let mut cause: Option<&dyn std::error::Error> = Some(e);
        let mut last = e.to_string();
        while let Some(c) = cause {
            last = c.to_string();
            cause = c.source();
        }
        format!("cannot connect: {last}")
    } else {
        format!("request failed: {e}")
    }
}
