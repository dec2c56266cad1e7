//! Calls that come through Retell (Retell runs the telephony and speech; Switchboard writes
//! the agent's words): routing by Retell agent id before the organization is known, the
//! organization's sealed Retell key, the call record, transcript items written once however
//! often the socket and the webhooks report them, and Retell's own analysis.

use crate::conversations::{insert_call, insert_conversation, insert_message};
use crate::rows::{col, parsed, to_json};
use crate::secrets::{Owner, RETELL_KEY};
use crate::{Access, Scope, Store, StoreError};
use serde_json::Value;
use switchboard_domain::entities::{Call, Message, NewCall, NewConversation, NewMessage};
use switchboard_domain::ids::{AgentId, CallId, MessageId, OrgId};
use switchboard_domain::values::OrgStatus;
use switchboard_domain::Secret;

/// Where a Retell agent id leads.
#[derive(Debug, Clone)]
pub struct RetellRoute {
    /// The organization.
    pub org_id: OrgId,
    /// The agent answering for that Retell agent.
    pub agent_id: AgentId,
    /// Whether the organization is active.
    pub org_active: bool,
    /// Its Retell API key, when one is set.
    pub api_key: Option<Secret>,
}

impl Store {
    /// The agent that answers for `retell_agent_id`, across organizations (the webhook and
    /// the socket name only Retell's ids). Runs in the narrow look-up scope.
    pub async fn route_retell_agent(
        &self,
        retell_agent_id: &str,
    ) -> Result<Option<RetellRoute>, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let row = sqlx::query(self.lookup(
            "SELECT * FROM sb_route_retell_agent($1)",
            "SELECT a.org_id, a.id AS agent_id, o.status, c.api_key FROM agents a \
             JOIN organizations o ON o.id = a.org_id \
             LEFT JOIN retell_credentials c ON c.org_id = a.org_id \
             WHERE a.retell_agent_id = $1",
        ))
        .bind(retell_agent_id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        let org_id = OrgId::from_db(col(&row, "org_id")?);
        let api_key = self.unseal_opt(Owner::Org(&org_id), RETELL_KEY, col(&row, "api_key")?)?;
        Ok(Some(RetellRoute {
            agent_id: AgentId::from_db(col(&row, "agent_id")?),
            org_active: parsed(&row, "status", OrgStatus::parse)? == OrgStatus::Active,
            api_key,
            org_id,
        }))
    }

    /// The organization's Retell API key, when one is set.
    pub async fn retell_api_key(&self, org: &OrgId) -> Result<Option<Secret>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let key: Option<String> =
            sqlx::query_scalar("SELECT api_key FROM retell_credentials WHERE org_id = $1")
                .bind(org.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        self.unseal_opt(Owner::Org(org), RETELL_KEY, key)
    }

    /// Records a call Retell is running: its conversation and call (answered and in
    /// progress, `call.started` emitted) in one transaction. The call is marked as streaming
    /// (`stream`), so the sweeps that close calls whose Twilio media never connected leave it
    /// alone. A call already recorded (the socket and `call_started` race) is `Conflict`.
    pub async fn start_provider_call(
        &self,
        org: &OrgId,
        conversation: NewConversation,
        mut call: NewCall,
        stream: &str,
    ) -> Result<Call, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let conv = insert_conversation(&mut tx, org, conversation).await?;
        call.conversation_id = conv.id;
        let answered = call.started_at;
        let mut call = insert_call(&mut tx, org, call).await.map_err(|e| match e {
            StoreError::Conflict(_) => StoreError::Conflict("the call is recorded".into()),
            other => other,
        })?;
        sqlx::query(
            "UPDATE calls SET answered_at = $1, stream_sid = $2 WHERE org_id = $3 AND id = $4",
        )
        .bind(answered.millis())
        .bind(stream)
        .bind(org.as_str())
        .bind(call.id.as_str())
        .execute(&mut *tx)
        .await?;
        call.answered_at = Some(answered);
        let ev = crate::outbox::call_event("call.started", &call);
        crate::outbox::emit(&mut tx, org, &[ev], call.started_at).await?;
        self.commit_events(tx).await?;
        Ok(call)
    }

    /// Appends transcript items to a call's conversation, each at most once: `items` pairs
    /// every item with a key unique within the call (an utterance's position, a tool call's
    /// id). Items already written are skipped, in one transaction that holds the call's row,
    /// so the socket and a webhook reporting the same words write them once. Answers how
    /// many were written.
    pub async fn record_call_items(
        &self,
        org: &OrgId,
        call: &CallId,
        items: Vec<(String, NewMessage)>,
    ) -> Result<usize, StoreError> {
        if items.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let current = crate::calls::fetch_call(&mut tx, org, call, self.for_update())
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut written = 0;
        for (key, item) in items {
            let dedupe = format!("{}:{key}", call.as_str());
            let seen: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM messages WHERE org_id = $1 AND dedupe_key = $2",
            )
            .bind(org.as_str())
            .bind(&dedupe)
            .fetch_one(&mut *tx)
            .await?;
            if seen > 0 {
                continue;
            }
            let msg = Message {
                id: MessageId::generate(),
                conversation_id: current.conversation_id.clone(),
                role: item.role,
                kind: item.kind,
                content: item.content,
                external_id: item.external_id,
                delivery_status: None,
                delivery_error: None,
                created_at: item.created_at,
            };
            insert_message(&mut tx, org, &msg, Some(&dedupe)).await?;
            // Flushed now: the next key's check must see this one.
            tx.flush().await?;
            written += 1;
        }
        tx.commit().await?;
        Ok(written)
    }

    /// Stores what the call's front end (Retell) made of it, and its recording link.
    pub async fn set_provider_outcome(
        &self,
        org: &OrgId,
        call: &CallId,
        analysis: Option<&Value>,
        recording_url: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        sqlx::query(
            "UPDATE calls SET provider_analysis = COALESCE($1, provider_analysis), \
             recording_url = COALESCE($2, recording_url) WHERE org_id = $3 AND id = $4",
        )
        .bind(analysis.map(to_json).transpose()?)
        .bind(recording_url.map(str::to_owned))
        .bind(org.as_str())
        .bind(call.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
