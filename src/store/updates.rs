//! Installed servers' update records (`program_updates`): one JSON document per program,
//! written whole. The `install::update` service owns its shape.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};

impl Store {
    /// Every update record as (program, JSON text).
    pub async fn update_records(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|c| {
            let mut st =
                c.prepare("SELECT program, record FROM program_updates ORDER BY program")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// The update record of `program` as JSON text, if it has one.
    pub async fn update_record(&self, program: &str) -> Result<Option<String>, StoreError> {
        let program = program.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                "SELECT record FROM program_updates WHERE program = ?1",
                params![program],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    /// Replaces the update record of `program`; answers after the commit, so a step
    /// recorded here survives a crash that follows.
    pub async fn put_update_record(
        &self,
        program: &str,
        record: String,
        now: i64,
    ) -> Result<(), StoreError> {
        let program = program.to_string();
        self.write(move |t| {
            t.execute(
                "INSERT INTO program_updates (program, record, updated_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT(program) DO UPDATE SET record = excluded.record, updated_ms = excluded.updated_ms",
                params![program, record, now],
            )?;
            Ok(())
        })
        .await
    }

    /// The stored password of Steam account `user` (opened), if one is stored.
    pub async fn steam_password(&self, user: &str) -> Result<Option<String>, StoreError> {
        let user = user.to_string();
        let spec: Option<String> = self
            .read(move |c| {
                Ok(c.query_row(
                    "SELECT spec FROM steam_accounts WHERE name = ?1",
                    params![user],
                    |r| r.get(0),
                )
                .optional()?)
            })
            .await?;
        let Some(spec) = spec else {
            return Ok(None);
        };
        let plain = super::sealed::unseal_text(&spec, self.secrets())?;
        let v: serde_json::Value = serde_json::from_str(&plain)?;
        Ok(v["password"].as_str().map(str::to_string))
    }

    /// Stores the password of Steam account `user`, sealed.
    pub async fn put_steam_password(&self, user: &str, password: &str) -> Result<(), StoreError> {
        let spec = serde_json::json!({"name": user, "password": password}).to_string();
        let spec = super::sealed::seal_text(&spec, self.secrets())?;
        self.upsert("steam_accounts", ("name", user.to_string()), ("spec", spec))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::definitions::PROGRAMS;
    use super::*;

    #[tokio::test]
    async fn an_update_record_goes_with_its_program() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("u.db")).expect("open");
        let spec = serde_json::json!({"name": "srv"});
        store.named_insert(PROGRAMS, "srv", &spec).await.unwrap();
        store
            .put_update_record("srv", "{\"template\":\"valheim\"}".into(), 1)
            .await
            .unwrap();
        assert!(store.update_record("srv").await.unwrap().is_some());
        // Deleted by any path, the program takes its record along: a new `srv` is not
        // taken for an install of `valheim`.
        store.delete_program("srv").await.unwrap();
        assert_eq!(store.update_record("srv").await.unwrap(), None);
        store.named_insert(PROGRAMS, "srv", &spec).await.unwrap();
        assert_eq!(store.update_record("srv").await.unwrap(), None);
        // A record needs its program.
        assert!(
            store
                .put_update_record("ghost", "{}".into(), 1)
                .await
                .is_err()
        );
    }
}
