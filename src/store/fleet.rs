//! Fleet nodes: the other wardens this one knows, with their tokens.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::fleet::Node;

fn node_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Node> {
    Ok(Node {
        name: r.get(0)?,
        url: r.get(1)?,
        token: r.get(2)?,
        fingerprint: r.get(3)?,
        allow_insecure: r.get::<_, i64>(4)? != 0,
        created_at: r.get(5)?,
    })
}

const COLS: &str = "name, url, token, fingerprint, allow_insecure, created_at";

impl Store {
    /// Every node, by name.
    pub async fn fleet_nodes(&self) -> Result<Vec<Node>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare(&format!("SELECT {COLS} FROM fleet_nodes ORDER BY name"))?;
            let rows = st.query_map([], node_from)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// One node by name.
    pub async fn fleet_node(&self, name: &str) -> Result<Option<Node>, StoreError> {
        let name = name.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                &format!("SELECT {COLS} FROM fleet_nodes WHERE name = ?1"),
                params![name],
                node_from,
            )
            .optional()?)
        })
        .await
    }

    /// Adds a node (validated by `fleet::validate`); a second node of that name is a
    /// conflict.
    pub async fn add_fleet_node(&self, node: Node) -> Result<(), StoreError> {
        self.write(move |t| {
            let n = t.execute(
                "INSERT INTO fleet_nodes (name, url, token, fingerprint, allow_insecure, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(name) DO NOTHING",
                params![
                    node.name,
                    node.url,
                    node.token,
                    node.fingerprint,
                    i64::from(node.allow_insecure),
                    node.created_at
                ],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "a node named '{}' already exists; remove it first with `warden fleet remove {}`",
                    node.name, node.name
                )));
            }
            Ok(())
        })
        .await
    }

    /// Removes a node by name.
    pub async fn remove_fleet_node(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_string();
        self.write(move |t| {
            let n = t.execute("DELETE FROM fleet_nodes WHERE name = ?1", params![name])?;
            if n == 0 {
                return Err(StoreError::NotFound(format!(
                    "no fleet node named '{name}'; see `warden fleet list`"
                )));
            }
            Ok(())
        })
        .await
    }
}
