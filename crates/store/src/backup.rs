//! A consistent copy of the embedded database while the server keeps serving.

use crate::{Backend, Store, StoreError};
use std::path::Path;

impl Store {
    /// Writes a snapshot of the SQLite database to `to` with `VACUUM INTO` (one read
    /// transaction: whatever commits meanwhile is wholly in the copy or wholly out of it). The
    /// copy is written beside `to` and renamed into place, so `to` is either complete or
    /// absent; an existing `to` is refused. Answers the copy's size in bytes. PostgreSQL is
    /// refused with the tool to use instead.
    pub async fn backup_to(&self, to: &Path) -> Result<u64, StoreError> {
        if self.backend() == Backend::Postgres {
            return Err(StoreError::Config(
                "this is a PostgreSQL database: back it up with `pg_dump --format=custom \
                 \"$SWITCHBOARD_DATABASE_URL\" > switchboard.dump` (restore with pg_restore)"
                    .into(),
            ));
        }
        if to.exists() {
            return Err(StoreError::Config(format!(
                "{} exists already: choose a new file (a backup never overwrites one)",
                to.display()
            )));
        }
        let partial = to.with_extension("partial");
        let _ = std::fs::remove_file(&partial);
        let text = partial.to_str().ok_or_else(|| {
            StoreError::Config(format!("{} is not a UTF-8 path", partial.display()))
        })?;
        let done = sqlx::query("VACUUM INTO $1")
            .bind(text.to_owned())
            .execute(&self.inner.read)
            .await;
        if let Err(e) = done {
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
        }
        std::fs::rename(&partial, to).map_err(|e| {
            let _ = std::fs::remove_file(&partial);
            StoreError::Config(format!("cannot move the copy to {}: {e}", to.display()))
        })?;
        Ok(std::fs::metadata(to).map(|m| m.len()).unwrap_or(0))
    }
}
