//! The parts of an agent's configuration with rules of their own: turn detection, analysis
//! fields, voicemail behaviour.

use crate::values::require_text;
use crate::ValidationError;
use serde::{Deserialize, Serialize};

/// How the model decides that the caller finished a turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TurnDetection {
    /// Voice activity detection on silence.
    ServerVad {
        /// Activation threshold, 0 to 1 (model default 0.5).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        threshold: Option<f64>,
        /// Audio kept before detected speech, in ms (model default 300).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix_padding_ms: Option<i64>,
        /// Silence that ends a turn, in ms (model default 500).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        silence_duration_ms: Option<i64>,
    },
    /// Detection on the meaning of what was said.
    SemanticVad {
        /// `low`, `medium`, `high` or `auto`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        eagerness: Option<String>,
    },
}

impl Default for TurnDetection {
    fn default() -> Self {
        TurnDetection::ServerVad {
            threshold: None,
            prefix_padding_ms: None,
            silence_duration_ms: None,
        }
    }
}

impl TurnDetection {
    pub(crate) fn validate(&self) -> Result<(), ValidationError> {
        match self {
            TurnDetection::ServerVad {
                threshold,
                prefix_padding_ms,
                silence_duration_ms,
            } => {
                if let Some(t) = threshold {
                    if !(0.0..=1.0).contains(t) {
                        return Err(ValidationError::new("threshold", "must be between 0 and 1"));
                    }
                }
                for (field, v) in [
                    ("prefix_padding_ms", prefix_padding_ms),
                    ("silence_duration_ms", silence_duration_ms),
                ] {
                    if let Some(v) = v {
                        if !(0..=10_000).contains(v) {
                            return Err(ValidationError::new(field, "must be between 0 and 10000"));
                        }
                    }
                }
                Ok(())
            }
            TurnDetection::SemanticVad { eagerness } => match eagerness.as_deref() {
                None | Some("low" | "medium" | "high" | "auto") => Ok(()),
                Some(_) => Err(ValidationError::new(
                    "eagerness",
                    "must be one of low, medium, high, auto",
                )),
            },
        }
    }
}

/// The type of an extracted analysis field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisFieldType {
    /// Free text.
    String,
    /// A number.
    Number,
    /// True or false.
    Boolean,
    /// One of `options`.
    Enum,
}

/// A field the post-call analysis extracts, declared per agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisField {
    /// Identifier: lowercase letters, digits and `_`, starting with a letter.
    pub name: String,
    /// Value type.
    #[serde(rename = "type")]
    pub field_type: AnalysisFieldType,
    /// What the model should extract.
    pub description: String,
    /// Allowed values, required for `enum` and only allowed there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl AnalysisField {
    pub(crate) fn validate(&self) -> Result<(), ValidationError> {
        let name_ok = self.name.len() <= 64
            && self.name.starts_with(|c: char| c.is_ascii_lowercase())
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !name_ok {
            return Err(ValidationError::new(
                "name",
                "must be 1-64 lowercase letters, digits or `_`, starting with a letter",
            ));
        }
        require_text("description", &self.description, 1000)?;
        match (self.field_type, self.options.is_empty()) {
            (AnalysisFieldType::Enum, true) => Err(ValidationError::new(
                "options",
                "an enum field needs at least one option",
            )),
            (AnalysisFieldType::Enum, false) => Ok(()),
            (_, false) => Err(ValidationError::new(
                "options",
                "only enum fields take options",
            )),
            (_, true) => Ok(()),
        }
    }
}

/// Whose contact data an agent's tools may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactScope {
    /// Only the person on the line (the number of this call or conversation): their contact
    /// record, their appointments, texts and calls to them. The default: an anonymous caller
    /// cannot learn anything about anyone else by asking.
    #[default]
    Caller,
    /// Every contact of the organization, for internal, staff-facing agents only: anyone who
    /// can reach the agent can ask about any contact and have them texted or called.
    Organization,
}

impl ContactScope {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ContactScope::Caller => "caller",
            ContactScope::Organization => "organization",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<ContactScope> {
        match s {
            "caller" => Some(ContactScope::Caller),
            "organization" => Some(ContactScope::Organization),
            _ => None,
        }
    }
}

/// What an outbound call does when an answering machine picks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VoicemailMode {
    /// Hang up without a word.
    #[default]
    Hangup,
    /// Speak `voicemail_message` after the beep, then hang up.
    LeaveMessage,
}

impl VoicemailMode {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            VoicemailMode::Hangup => "hangup",
            VoicemailMode::LeaveMessage => "leave_message",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<VoicemailMode> {
        match s {
            "hangup" => Some(VoicemailMode::Hangup),
            "leave_message" => Some(VoicemailMode::LeaveMessage),
            _ => None,
        }
    }
}
