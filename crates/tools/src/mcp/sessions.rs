//! MCP sessions kept in the database, so any instance can restore a session another opened
//! (the SDK's session store hook).

use rmcp::transport::streamable_http_server::session::store::{
    SessionState, SessionStore, SessionStoreError,
};
use switchboard_domain::Timestamp;
use switchboard_store::Store;

/// The session store over our database.
pub(crate) struct DbSessions {
    pub(crate) store: Store,
}

#[async_trait::async_trait]
impl SessionStore for DbSessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let Some(raw) = self
            .store
            .load_mcp_session_state(session_id, Timestamp::now())
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(serde_json::from_str(&raw)?))
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let raw = serde_json::to_string(state)?;
        self.store
            .save_mcp_session_state(session_id, &raw, Timestamp::now())
            .await?;
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        self.store.delete_mcp_session(session_id).await?;
        Ok(())
    }
}
