//! The custom-LLM WebSocket (protocols.md 6.1). Retell dials `{llm_websocket_url}/{call_id}`
//! when a call starts and sends JSON text frames discriminated by `interaction_type`; we
//! answer with frames discriminated by `response_type`. Only the latest `response_id`
//! matters to Retell: content for an older one, or after `content_complete`, is ignored.

use serde::Deserialize;
use serde_json::{json, Value};

/// Who spoke an utterance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UtteranceRole {
    /// The agent (what Retell's TTS actually spoke: an interrupted answer is cut where the
    /// caller broke in).
    Agent,
    /// The caller.
    User,
    /// A system line (Retell's demo types allow it; never spoken).
    System,
}

/// One utterance of Retell's transcript.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Utterance {
    /// Speaker.
    pub role: UtteranceRole,
    /// Words (`(unintelligible audio)` when Retell could not transcribe them).
    #[serde(default)]
    pub content: String,
}

/// A frame from Retell.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "interaction_type", rename_all = "snake_case")]
pub enum Interaction {
    /// The call object, sent once when `config.call_details` asked for it.
    CallDetails {
        /// The call (`call_id`, `agent_id`, `from_number`, `to_number`, `direction`, ...).
        call: Value,
    },
    /// Keepalive (with `config.auto_reconnect`): echo the timestamp.
    PingPong {
        /// Milliseconds, echoed as is.
        timestamp: Value,
    },
    /// The transcript moved on; no answer is wanted.
    UpdateOnly {
        /// Everything said so far.
        #[serde(default)]
        transcript: Vec<Utterance>,
    },
    /// The caller finished a turn: answer `response_id`.
    ResponseRequired {
        /// The id to answer.
        response_id: i64,
        /// Everything said so far.
        #[serde(default)]
        transcript: Vec<Utterance>,
    },
    /// The caller has been quiet: nudge them, answering `response_id`.
    ReminderRequired {
        /// The id to answer.
        response_id: i64,
        /// Everything said so far.
        #[serde(default)]
        transcript: Vec<Utterance>,
    },
    /// A kind this version does not know (Retell adds them); ignored.
    #[serde(other)]
    Other,
}

impl Interaction {
    /// Parses one text frame.
    pub fn parse(text: &str) -> Result<Interaction, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// `config`: sent first. `auto_reconnect` makes Retell ping and reconnect on the same call
/// id; `call_details` makes it send the call object.
pub fn config(auto_reconnect: bool, call_details: bool) -> String {
    json!({"response_type": "config",
        "config": {"auto_reconnect": auto_reconnect, "call_details": call_details}})
    .to_string()
}

/// The echo of a `ping_pong`.
pub fn ping_pong(timestamp: &Value) -> String {
    json!({"response_type": "ping_pong", "timestamp": timestamp}).to_string()
}

/// What happens after an answer has been spoken (mutually exclusive; Retell runs `end_call`
/// over `transfer_number`, and drops either if the caller interrupts first).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum After {
    /// The conversation goes on.
    #[default]
    Nothing,
    /// Hang up.
    EndCall,
    /// Cold-transfer the caller to this E.164 number.
    Transfer(String),
    /// Press these keys on the line.
    Digits(String),
}

/// A piece of the answer to `response_id`; `complete` marks the last one, which carries
/// what happens after.
pub fn response(response_id: i64, content: &str, complete: bool, after: &After) -> String {
    let mut m = json!({"response_type": "response", "response_id": response_id,
        "content": content, "content_complete": complete});
    if complete {
        match after {
            After::Nothing => {}
            After::EndCall => m["end_call"] = json!(true),
            After::Transfer(n) => m["transfer_number"] = json!(n),
            After::Digits(d) => m["digit_to_press"] = json!(d),
        }
    }
    m.to_string()
}

/// A tool call, for Retell's transcript (`arguments` is the JSON text the model wrote).
pub fn tool_call_invocation(tool_call_id: &str, name: &str, arguments: &str) -> String {
    json!({"response_type": "tool_call_invocation", "tool_call_id": tool_call_id,
        "name": name, "arguments": arguments})
    .to_string()
}

/// A tool's result, for Retell's transcript.
pub fn tool_call_result(tool_call_id: &str, content: &str, successful: bool) -> String {
    json!({"response_type": "tool_call_result", "tool_call_id": tool_call_id,
        "content": content, "successful": successful})
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_interaction() {
        let r = Interaction::parse(
            r#"{"interaction_type":"response_required","response_id":3,"transcript":[{"role":"agent","content":"Hi..."},{"role":"user","content":"I need to move my appointment","words":[]}]}"#,
        )
        .expect("response_required");
        assert_eq!(
            r,
            Interaction::ResponseRequired {
                response_id: 3,
                transcript: vec![
                    Utterance {
                        role: UtteranceRole::Agent,
                        content: "Hi...".into()
                    },
                    Utterance {
                        role: UtteranceRole::User,
                        content: "I need to move my appointment".into()
                    }
                ]
            }
        );
        assert!(matches!(
            Interaction::parse(r#"{"interaction_type":"ping_pong","timestamp":1700000000000}"#),
            Ok(Interaction::PingPong { .. })
        ));
        assert!(matches!(
            Interaction::parse(
                r#"{"interaction_type":"update_only","transcript":[],"turntaking":"user_turn"}"#
            ),
            Ok(Interaction::UpdateOnly { .. })
        ));
        assert!(matches!(
            Interaction::parse(
                r#"{"interaction_type":"call_details","call":{"call_id":"c1","agent_id":"a1"}}"#
            ),
            Ok(Interaction::CallDetails { .. })
        ));
        assert_eq!(
            Interaction::parse(r#"{"interaction_type":"something_new","x":1}"#).ok(),
            Some(Interaction::Other)
        );
        assert!(Interaction::parse(r#"{"response_id":1}"#).is_err());
        assert!(Interaction::parse(r#"{"interaction_type":"response_required"}"#).is_err());
    }

    #[test]
    fn builds_responses() {
        let v: Value = serde_json::from_str(&response(
            7,
            "Let me get you to the front desk.",
            true,
            &After::Transfer("+14155550123".into()),
        ))
        .expect("json");
        assert_eq!(v["response_type"], "response");
        assert_eq!(v["response_id"], 7);
        assert_eq!(v["content_complete"], true);
        assert_eq!(v["transfer_number"], "+14155550123");
        assert!(v.get("end_call").is_none());
        let partial: Value =
            serde_json::from_str(&response(3, "Sure, ", false, &After::EndCall)).expect("json");
        assert!(
            partial.get("end_call").is_none(),
            "only the last piece carries the action"
        );
        let ping: Value =
            serde_json::from_str(&ping_pong(&json!(1700000000000_i64))).expect("json");
        assert_eq!(
            ping,
            json!({"response_type": "ping_pong", "timestamp": 1700000000000_i64})
        );
        let inv: Value = serde_json::from_str(&tool_call_invocation(
            "call_9x",
            "book_appointment",
            "{\"date\":\"2026-08-04\"}",
        ))
        .expect("json");
        assert_eq!(inv["arguments"], "{\"date\":\"2026-08-04\"}");
        let res: Value =
            serde_json::from_str(&tool_call_result("call_9x", "{}", false)).expect("json");
        assert_eq!(res["successful"], false);
        let cfg: Value = serde_json::from_str(&config(true, true)).expect("json");
        assert_eq!(cfg["config"]["call_details"], true);
    }
}
