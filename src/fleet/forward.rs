//! Actions on a node's program, taken from the hub: the hub has already checked the
//! caller's own permissions; this sends the request to the node under the node's token,
//! says on whose behalf (`X-Warden-For`, recorded in the node's audit log), and brings
//! back what the node answered. The node stays the authority: it checks the hub's token
//! like any other caller's.

use std::time::Duration;

use serde_json::Value;

use super::Fleet;
use crate::seal::{self, Sealer};
use crate::store::StoreError;

/// The header naming the person a hub acts for.
pub const ON_BEHALF_HEADER: &str = "x-warden-for";

/// How long a forwarded action may take on the node (a stop waits for the program).
const ACTION_TIMEOUT: Duration = Duration::from_secs(120);

/// What the node answered: its status (2xx or 4xx) and JSON body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status of the node's answer.
    pub status: u16,
    /// Its body (`null` when empty).
    pub body: Value,
}

/// Why a request could not be forwarded.
#[derive(Debug)]
pub enum ForwardError {
    /// No node of that name.
    UnknownNode(String),
    /// The node did not answer usefully: unreachable, refused the hub, or failed.
    Node(String),
    /// The hub's own store failed.
    Store(StoreError),
}

/// `url` with `query` added, each value encoded.
fn with_query(url: &str, query: &[(&str, String)]) -> Result<reqwest::Url, ForwardError> {
    let mut u = reqwest::Url::parse(url)
        .map_err(|e| ForwardError::Node(format!("the node's URL {url} is not a URL: {e}")))?;
    if !query.is_empty() {
        u.query_pairs_mut()
            .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
    }
    Ok(u)
}

impl Fleet {
    /// Sends `method path?query` (relative to the node's API base, e.g.
    /// `api/programs/mc/restart`) with `body` to node `node`, for `on_behalf`.
    pub async fn forward(
        &self,
        node: &str,
        (method, path, query): (reqwest::Method, &str, &[(&str, String)]),
        body: Option<&Value>,
        on_behalf: &str,
    ) -> Result<Answer, ForwardError> {
        let n = self
            .store
            .fleet_node(node)
            .await
            .map_err(ForwardError::Store)?
            .ok_or_else(|| ForwardError::UnknownNode(node.to_string()))?;
        let token = Sealer::load(&self.data_dir, seal::FLEET)
            .and_then(|s| s.unseal(&n.token))
            .map_err(ForwardError::Node)?;
        let client = self.client(&n).map_err(ForwardError::Node)?;
        let mut req = client
            .request(method, with_query(&format!("{}{path}", n.url), query)?)
            .bearer_auth(&token)
            .header(ON_BEHALF_HEADER, on_behalf)
            .timeout(ACTION_TIMEOUT);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ForwardError::Node(super::overview::describe(&e, ACTION_TIMEOUT)))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ForwardError::Node(format!("the node's answer broke off: {e}")))?;
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|_| {
                ForwardError::Node(format!(
                    "the node answered HTTP {} with something that is not JSON",
                    status.as_u16()
                ))
            })?
        };
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(ForwardError::Node(
                "the node refused the hub's token (HTTP 401); make a new token on the node and add the node again"
                    .to_string(),
            ));
        }
        if status == reqwest::StatusCode::FORBIDDEN {
            let why = body["error"]["message"].as_str().unwrap_or("");
            return Err(ForwardError::Node(format!(
                "the node refused the hub's token for this action (HTTP 403: {why}); actions need a token with the operator role on the node (`warden token create hub --role operator` there, then `warden fleet add` again here)"
            )));
        }
        if !(status.is_success() || status.is_client_error()) {
            return Err(ForwardError::Node(format!(
                "the node answered HTTP {}",
                status.as_u16()
            )));
        }
        Ok(Answer {
            status: status.as_u16(),
            body,
        })
    }
}
