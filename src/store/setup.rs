//! First-run queries for the dashboard's login page.

use super::{Store, StoreError};

impl Store {
    /// True once any user exists.
    pub async fn has_users(&self) -> Result<bool, StoreError> {
        self.read(|c| Ok(c.query_row("SELECT EXISTS(SELECT 1 FROM users)", [], |r| r.get(0))?))
            .await
    }
}
