//! Staff actions on a live call (`POST /api/v1/calls/{id}/actions`, the live call page): the
//! call's own task carries them out, acknowledges them, and puts them on the call's timeline.

use crate::ids::{CallActionId, CallId};
use crate::transfer::TransferTarget;
use crate::values::require_text;
use crate::{Timestamp, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What staff ask of a live call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum NewCallAction {
    /// End the call now.
    Hangup {},
    /// The agent says this sentence next (after what it is saying now).
    Say {
        /// The sentence, at most 1,000 characters.
        text: String,
    },
    /// A private instruction added to the agent's context ("offer a 10% discount"); the
    /// caller does not hear it.
    Instruct {
        /// The instruction, at most 2,000 characters.
        text: String,
    },
    /// The agent stops speaking: what it is saying is cut, and it stays silent until
    /// `unmute` (it keeps listening).
    MuteAgent {},
    /// The agent speaks again.
    Unmute {},
    /// Transfer the caller now. `to` defaults to the agent's `transfer_number`; another
    /// destination must be one the organization's `transfer_destinations` allows (none
    /// configured: only the agent's own `transfer_number`).
    Transfer {
        /// An E.164 number or a SIP URI.
        #[serde(default)]
        to: Option<TransferTarget>,
        /// `cold` (default: the caller is put through at once) or `warm` (the caller holds
        /// while the person hears `summary` and accepts).
        #[serde(default)]
        mode: Option<String>,
        /// What the person hears first on a warm transfer (default: who is calling and what
        /// they said last).
        #[serde(default)]
        summary: Option<String>,
    },
}

impl NewCallAction {
    /// The action's name.
    pub fn name(&self) -> &'static str {
        match self {
            NewCallAction::Hangup {} => "hangup",
            NewCallAction::Say { .. } => "say",
            NewCallAction::Instruct { .. } => "instruct",
            NewCallAction::MuteAgent {} => "mute_agent",
            NewCallAction::Unmute {} => "unmute",
            NewCallAction::Transfer { .. } => "transfer",
        }
    }

    /// Checks the fields.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match self {
            NewCallAction::Say { text } => require_text("text", text, 1_000),
            NewCallAction::Instruct { text } => require_text("text", text, 2_000),
            NewCallAction::Transfer { mode, summary, .. } => {
                if let Some(s) = summary {
                    require_text("summary", s, 1_000)?;
                }
                match mode.as_deref() {
                    None | Some("cold") | Some("warm") => Ok(()),
                    Some(_) => Err(ValidationError::new("mode", "must be `cold` or `warm`")),
                }
            }
            NewCallAction::Hangup {} | NewCallAction::MuteAgent {} | NewCallAction::Unmute {} => {
                Ok(())
            }
        }
    }
}

/// A staff action as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CallAction {
    /// Id.
    pub id: CallActionId,
    /// The call.
    pub call_id: CallId,
    /// What was asked, as sent (`{"action": "say", "text": ...}`).
    #[schema(value_type = Object)]
    pub request: Value,
    /// Who asked: `api_key:key_...` or `user:usr_...`.
    pub actor: String,
    /// `pending` (not carried out yet), `done`, or `failed` (see `result.error`).
    pub status: String,
    /// What the call did: `{"ok": true, ...}` or `{"ok": false, "error": {code, message}}`.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// When it was asked.
    pub created_at: Timestamp,
    /// When the call carried it out (or refused it).
    pub acknowledged_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_parse_and_validate() {
        let say: NewCallAction =
            serde_json::from_value(json!({"action": "say", "text": "One moment."})).expect("say");
        assert_eq!(say.name(), "say");
        assert!(say.validate().is_ok());
        let empty: NewCallAction =
            serde_json::from_value(json!({"action": "instruct", "text": " "})).expect("parse");
        assert_eq!(empty.validate().expect_err("empty").field, "text");
        assert!(serde_json::from_value::<NewCallAction>(json!({"action": "explode"})).is_err());
        assert!(
            serde_json::from_value::<NewCallAction>(json!({"action": "hangup", "x": 1})).is_err()
        );
        let back = serde_json::to_value(&say).expect("json");
        assert_eq!(back, json!({"action": "say", "text": "One moment."}));
    }
}
