//! `POST /retell/webhook`: Retell's `call_started`, `call_ended` and `call_analyzed`, each
//! routed to its organization, verified with that organization's Retell key over the raw
//! body, and recorded: the call, the rest of its transcript, its recording link, its end
//! (which sends `call.ended`, runs the analysis and the e-mail like any call) and Retell's
//! own analysis. Retell retries a delivery that is not answered 2xx (up to 3 times), and
//! every step here can be repeated without writing anything twice.

use super::{end_reason, RetellFront, RouteError};
use switchboard_domain::call::EndReason;
use switchboard_domain::Timestamp;
use switchboard_retell::{SignatureError, WebhookEvent};
use switchboard_store::{CallEnd, StoreError};

/// What a delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// Recorded (the event name).
    Recorded(String),
    /// An event Switchboard does not keep (e.g. `transcript_updated`, chat events).
    Ignored(String),
}

/// Why a delivery was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The body is not a Retell webhook.
    #[error("the body is not a Retell webhook: {0}")]
    Malformed(String),
    /// No agent is connected to the call's Retell agent id, and no proven number matches.
    #[error("no agent is connected to Retell agent {0}")]
    UnknownAgent(String),
    /// The organization has no Retell key to verify the signature with.
    #[error("the organization has no Retell API key set")]
    NotConfigured,
    /// The signature is missing, stale or wrong.
    #[error("{0}")]
    Signature(#[from] SignatureError),
    /// The organization is disabled.
    #[error("the organization is disabled")]
    Disabled,
    /// The call id is recorded in another organization.
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error("database error: {0}")]
    Store(String),
}

impl From<StoreError> for WebhookError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => WebhookError::Conflict(m),
            other => WebhookError::Store(other.to_string()),
        }
    }
}

impl RetellFront {
    /// Handles one delivery: `body` as received, `signature` the `x-retell-signature`.
    pub async fn webhook(
        &self,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<WebhookOutcome, WebhookError> {
        // Read before it is verified: the key that verifies it depends on where it goes.
        let ev: WebhookEvent =
            serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
        if !switchboard_retell::valid_id(&ev.call.call_id) {
            return Err(WebhookError::Malformed(
                "call.call_id is missing or invalid".into(),
            ));
        }
        let routed = match self.route(&ev.call).await {
            Ok(r) => r,
            Err(RouteError::Unknown) => {
                return Err(WebhookError::UnknownAgent(
                    ev.call.agent_id.chars().take(128).collect(),
                ))
            }
            Err(RouteError::Store(m)) => return Err(WebhookError::Store(m)),
        };
        let key = routed.key.as_ref().ok_or(WebhookError::NotConfigured)?;
        switchboard_retell::verify(
            key.expose(),
            body,
            signature.unwrap_or_default(),
            self.svc.clock.now().millis(),
        )?;
        if !routed.org_active {
            return Err(WebhookError::Disabled);
        }
        let org = &routed.org;
        let kind = ev.event.as_str();
        if !matches!(kind, "call_started" | "call_ended" | "call_analyzed") {
            return Ok(WebhookOutcome::Ignored(ev.event.clone()));
        }
        let call = self.ensure_call(&routed, &ev.call).await?;
        tracing::info!(org_id = %org, call_id = %call.id, event = kind, "Retell webhook");
        if kind == "call_started" {
            return Ok(WebhookOutcome::Recorded(ev.event.clone()));
        }
        self.record_utterances(org, &call, &ev.call.transcript_object)
            .await?;
        let analysis = ev.call.call_analysis.as_ref().filter(|a| !a.is_null());
        self.svc
            .store
            .set_provider_outcome(org, &call.id, analysis, ev.call.recording_url.as_deref())
            .await?;
        // `call_analyzed` carries the whole call: it ends a call whose `call_ended` was lost.
        if call.ended_at.is_none() {
            let (reason, error) = end_reason(ev.call.disconnection_reason.as_deref());
            let at = ev
                .call
                .end_timestamp
                .map(Timestamp::from_millis)
                .unwrap_or_else(|| self.svc.clock.now());
            let end = CallEnd { reason, error, at };
            if self.svc.store.finalize_call(org, &call.id, &end).await? {
                tracing::info!(org_id = %org, call_id = %call.id, reason = reason.as_str(), "Retell call ended");
                if reason == EndReason::ProviderFailed {
                    tracing::warn!(org_id = %org, call_id = %call.id, detail = ?end.error, "Retell reported a failed call");
                }
            }
        }
        Ok(WebhookOutcome::Recorded(ev.event.clone()))
    }
}
