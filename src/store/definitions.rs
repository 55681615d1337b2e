//! Named JSON definitions (programs, schedules, jobs, alert channels and rules): one
//! table per kind with `name`, `spec` (JSON, secret fields sealed), `created_at` and
//! `updated_at`, and one list/insert/update/delete over a [`Kind`].

use rusqlite::{Transaction, params};
use serde::Serialize;

use super::{Store, StoreError, now_ms, sealed};

/// A kind of definition: where it lives and how messages name it.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// Its table.
    pub table: &'static str,
    /// What one is called, with its article ("a job", "an alert rule").
    pub a_noun: &'static str,
    /// Another column read with each row (a schedule's `last_fire_at`).
    pub extra: Option<&'static str>,
}

impl Kind {
    /// What one is called ("job").
    fn noun(self) -> &'static str {
        self.a_noun
            .split_once(' ')
            .map_or(self.a_noun, |(_, noun)| noun)
    }
}

/// Programs (`programs`).
pub const PROGRAMS: Kind = Kind {
    table: "programs",
    a_noun: "a program",
    extra: None,
};
/// Schedules (`schedules`), with the fire time of their last run.
pub const SCHEDULES: Kind = Kind {
    table: "schedules",
    a_noun: "a schedule",
    extra: Some("last_fire_at"),
};
/// Jobs (`jobs`).
pub const JOBS: Kind = Kind {
    table: "jobs",
    a_noun: "a job",
    extra: None,
};
/// Alert channels (`alert_channels`).
pub const ALERT_CHANNELS: Kind = Kind {
    table: "alert_channels",
    a_noun: "an alert channel",
    extra: None,
};
/// Alert rules (`alert_rules`).
pub const ALERT_RULES: Kind = Kind {
    table: "alert_rules",
    a_noun: "an alert rule",
    extra: None,
};

/// Whether [`Store::named_save_all`] inserts a definition or replaces a stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Save {
    /// Inserted; the name must be free.
    New,
    /// Replaced; the name must be stored.
    Existing,
}

/// Inserts `json` (sealed) as `name`; `Conflict` if the name is taken. Returns its id.
fn insert_in(t: &Transaction<'_>, kind: Kind, name: &str, json: &str) -> Result<i64, StoreError> {
    let n = t.execute(
        &format!(
            "INSERT INTO {}(name, spec, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT(name) DO NOTHING",
            kind.table
        ),
        params![name, json, now_ms()],
    )?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "{} named '{name}' already exists",
            kind.a_noun
        )));
    }
    Ok(t.last_insert_rowid())
}

/// Replaces the stored `name` with `json` (sealed); `NotFound` if there is none.
fn update_in(t: &Transaction<'_>, kind: Kind, name: &str, json: &str) -> Result<(), StoreError> {
    let n = t.execute(
        &format!(
            "UPDATE {} SET spec = ?2, updated_at = ?3 WHERE name = ?1",
            kind.table
        ),
        params![name, json, now_ms()],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!(
            "no {} named '{name}'",
            kind.noun()
        )));
    }
    Ok(())
}

/// One stored definition, its secret fields opened.
#[derive(Debug, Clone)]
pub struct Named {
    /// Row id (`rowid`, which the alert tables name `id`: outbox rows refer to it).
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// The definition.
    pub spec: serde_json::Value,
    /// Unix ms of the last change.
    pub updated_at: i64,
    /// The kind's extra column, if it has one.
    pub extra: Option<i64>,
}

impl Store {
    /// `spec` as JSON with its secret fields sealed, as the store keeps it.
    pub(crate) fn sealed_json<T: Serialize + ?Sized>(
        &self,
        spec: &T,
    ) -> Result<String, StoreError> {
        let mut v = serde_json::to_value(spec)?;
        sealed::seal(&mut v, self.secrets())?;
        Ok(v.to_string())
    }

    /// Every definition of `kind`, by name.
    pub async fn named_list(&self, kind: Kind) -> Result<Vec<Named>, StoreError> {
        let store = self.clone();
        self.read(move |c| {
            let mut st = c.prepare(&format!(
                "SELECT rowid, name, spec, updated_at, {} FROM {} ORDER BY name",
                kind.extra.unwrap_or("NULL"),
                kind.table
            ))?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, name, json, updated_at, extra) = row?;
                let mut spec: serde_json::Value = serde_json::from_str(&json)?;
                sealed::unseal(&mut spec, store.secrets())?;
                out.push(Named {
                    id,
                    name,
                    spec,
                    updated_at,
                    extra,
                });
            }
            Ok(out)
        })
        .await
    }

    /// Inserts a definition, sealed; `Conflict` if the name is taken. Returns its id.
    pub async fn named_insert<T: Serialize + ?Sized>(
        &self,
        kind: Kind,
        name: &str,
        spec: &T,
    ) -> Result<i64, StoreError> {
        let json = self.sealed_json(spec)?;
        let name = name.to_string();
        self.write(move |t| insert_in(t, kind, &name, &json)).await
    }

    /// Replaces a definition, sealed; `NotFound` if there is none.
    pub async fn named_update<T: Serialize + ?Sized>(
        &self,
        kind: Kind,
        name: &str,
        spec: &T,
    ) -> Result<(), StoreError> {
        let json = self.sealed_json(spec)?;
        let name = name.to_string();
        self.write(move |t| update_in(t, kind, &name, &json)).await
    }

    /// Inserts (`Save::New`) and replaces (`Save::Existing`) several definitions in one
    /// transaction: all are stored, or (on any conflict, absence or failure) none.
    pub async fn named_save_all<T: Serialize>(
        &self,
        kind: Kind,
        specs: &[(Save, &str, &T)],
    ) -> Result<(), StoreError> {
        let rows = specs
            .iter()
            .map(|(save, name, spec)| Ok((*save, name.to_string(), self.sealed_json(*spec)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write(move |t| {
            for (save, name, json) in &rows {
                match save {
                    Save::New => insert_in(t, kind, name, json).map(drop)?,
                    Save::Existing => update_in(t, kind, name, json)?,
                }
            }
            Ok(())
        })
        .await
    }

    /// Deletes a definition (rows that refer to it go with it). `NotFound` when there is
    /// none and `must_exist`; otherwise deleting nothing is fine.
    pub async fn named_delete(
        &self,
        kind: Kind,
        name: &str,
        must_exist: bool,
    ) -> Result<(), StoreError> {
        let name = name.to_string();
        self.write(move |t| {
            let n = t.execute(
                &format!("DELETE FROM {} WHERE name = ?1", kind.table),
                params![name],
            )?;
            if n == 0 && must_exist {
                return Err(StoreError::NotFound(format!(
                    "no {} named '{name}'",
                    kind.noun()
                )));
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_shape_for_every_kind_with_precise_messages() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("d.db")).expect("open");
        for kind in [PROGRAMS, SCHEDULES, JOBS, ALERT_CHANNELS, ALERT_RULES] {
            let spec = serde_json::json!({"name": "x", "url": "https://example.test/secret"});
            let id = store.named_insert(kind, "x", &spec).await.unwrap();
            let again = store.named_insert(kind, "x", &spec).await.unwrap_err();
            assert_eq!(
                again.to_string(),
                StoreError::Conflict(format!("{} named 'x' already exists", kind.a_noun))
                    .to_string()
            );
            let rows = store.named_list(kind).await.unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!((rows[0].id, rows[0].name.as_str()), (id, "x"));
            assert_eq!(rows[0].spec, spec, "secrets are opened on the way out");
            let missing = store.named_update(kind, "y", &spec).await.unwrap_err();
            assert!(
                missing
                    .to_string()
                    .contains(&format!("no {} named 'y'", kind.noun())),
                "{missing}"
            );
            store.named_delete(kind, "y", false).await.unwrap();
            assert!(store.named_delete(kind, "y", true).await.is_err());
            store.named_delete(kind, "x", true).await.unwrap();
            assert!(store.named_list(kind).await.unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn saving_several_stores_all_or_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("d.db")).expect("open");
        let old = serde_json::json!({"name": "old", "v": 1});
        store.named_insert(PROGRAMS, "old", &old).await.unwrap();
        let new = serde_json::json!({"name": "new"});
        let changed = serde_json::json!({"name": "old", "v": 2});
        // The last row fails (nothing named `gone` is stored): the first two are undone.
        let err = store
            .named_save_all(
                PROGRAMS,
                &[
                    (Save::New, "new", &new),
                    (Save::Existing, "old", &changed),
                    (Save::Existing, "gone", &new),
                ],
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no program named 'gone'"), "{err}");
        let rows = store.named_list(PROGRAMS).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].spec, old, "a failed save changes nothing");
        store
            .named_save_all(
                PROGRAMS,
                &[(Save::New, "new", &new), (Save::Existing, "old", &changed)],
            )
            .await
            .unwrap();
        let rows = store.named_list(PROGRAMS).await.unwrap();
        let specs: Vec<_> = rows.iter().map(|r| r.spec.clone()).collect();
        assert_eq!(specs, [new, changed]);
    }
}
