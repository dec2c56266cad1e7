//! Webhook payloads (protocols.md 6.2): `{"event": "...", "call": {...}}`, the call object as
//! `get-call` returns it. Every field is optional here: Retell omits what is not set, and a
//! payload we cannot fully read must still be stored as far as it goes.

use crate::socket::Utterance;
use serde::Deserialize;
use serde_json::Value;

/// One webhook delivery.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookEvent {
    /// `call_started`, `call_ended`, `call_analyzed` (others, e.g. `transcript_updated` or
    /// chat events, are acknowledged and ignored).
    pub event: String,
    /// The call.
    pub call: RetellCall,
}

/// A Retell call object (the fields Switchboard uses).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RetellCall {
    /// Retell's call id.
    pub call_id: String,
    /// The Retell agent that took it.
    pub agent_id: String,
    /// `phone_call` or `web_call`.
    pub call_type: Option<String>,
    /// `inbound` or `outbound` (phone calls).
    pub direction: Option<String>,
    /// Caller.
    pub from_number: Option<String>,
    /// Called number.
    pub to_number: Option<String>,
    /// `registered`, `ongoing`, `ended`, `error`.
    pub call_status: Option<String>,
    /// Start, ms since the epoch.
    pub start_timestamp: Option<i64>,
    /// End, ms since the epoch.
    pub end_timestamp: Option<i64>,
    /// `user_hangup`, `agent_hangup`, `call_transfer`, `dial_no_answer`, ...
    pub disconnection_reason: Option<String>,
    /// The utterances.
    pub transcript_object: Vec<Utterance>,
    /// Retell's recording (a temporary link).
    pub recording_url: Option<String>,
    /// Retell's own analysis (`call_analyzed` only).
    pub call_analysis: Option<Value>,
    /// Metadata given when the call was made.
    pub metadata: Option<Value>,
}

impl RetellCall {
    /// Reads the call object of a `call_details` frame or a `get-call` answer.
    pub fn from_value(v: &Value) -> Option<RetellCall> {
        serde_json::from_value(v.clone()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_call_ended_payload() {
        let body = r#"{"event":"call_ended","call":{"call_type":"phone_call","from_number":"+12137771234",
            "to_number":"+12137771235","direction":"inbound","call_id":"Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6",
            "agent_id":"oBeDLoLOeuAbiuaMFXRtDOLriTJ5tSxD","call_status":"ended",
            "metadata":{},"retell_llm_dynamic_variables":{"customer_name":"John Doe"},
            "start_timestamp":1714608475945,"end_timestamp":1714608491736,
            "disconnection_reason":"user_hangup","transcript":"Agent: hi\nUser: hello",
            "transcript_object":[{"role":"agent","content":"hi","words":[]},{"role":"user","content":"hello","words":[]}],
            "transcript_with_tool_calls":[],"opt_out_sensitive_data_storage":false,
            "recording_url":"https://retellai.s3.amazonaws.com/Jabr9/recording.wav"}}"#;
        let ev: WebhookEvent = serde_json::from_str(body).expect("payload");
        assert_eq!(ev.event, "call_ended");
        assert_eq!(ev.call.transcript_object.len(), 2);
        assert_eq!(ev.call.disconnection_reason.as_deref(), Some("user_hangup"));
        assert!(ev.call.call_analysis.is_none());
        // A sparse payload still reads.
        let sparse: WebhookEvent = serde_json::from_str(
            r#"{"event":"call_started","call":{"call_id":"c","agent_id":"a"}}"#,
        )
        .expect("sparse");
        assert!(sparse.call.transcript_object.is_empty());
    }
}
