//! Agents: configuration validated when saved, so a bad voice or tool name is a 422 on the
//! API rather than a broken live call.

use crate::ids::{AgentId, KnowledgeSourceId};
use crate::schedule::BusinessHours;
use crate::transfer::{CallerIdPolicy, TransferTarget};
use crate::values::{check_len, require_text};
use crate::{Timestamp, ValidationError};
use serde::{Deserialize, Serialize};

mod build;
mod call_control;
mod pipeline;
mod settings;

pub use call_control::{handoff_tool_name, DigitCollection, Handoff, MAX_HANDOFFS};
pub use pipeline::{
    is_piper_voice_name, looks_like_elevenlabs_voice_id, LlmSettings, SttChoice, SttProvider,
    SttSettings, TtsChoice, TtsProvider, TtsSettings, VoicePipeline, DEFAULT_APOLOGY,
    DEFAULT_FIRST_TOKEN_MS, OPENAI_TTS_VOICES,
};
pub use settings::{AnalysisField, AnalysisFieldType, ContactScope, TurnDetection, VoicemailMode};

/// Voices the OpenAI Realtime API accepts (GA); custom voices are `voice_...` ids.
pub const VOICES: &[&str] = &[
    "alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar",
];

/// Tools an agent may enable. Unknown names are rejected when the agent is saved.
pub const BUILTIN_TOOLS: &[&str] = &[
    "end_call",
    "transfer_call",
    "check_availability",
    "book_appointment",
    "cancel_appointment",
    "lookup_contact",
    "send_sms",
    "call_contact",
    "schedule_sms",
    "collect_digits",
    "send_digits",
];

/// Default realtime model for new agents.
pub const DEFAULT_MODEL: &str = "gpt-realtime";
/// Default voice for new agents.
pub const DEFAULT_VOICE: &str = "marin";
/// Default maximum call duration (30 minutes).
pub const DEFAULT_MAX_CALL_SECONDS: i64 = 1800;

/// An agent as stored and returned by the API.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Agent {
    /// Id.
    pub id: AgentId,
    /// Display name.
    pub name: String,
    /// System instructions; `{{variable}}` placeholders are filled per conversation.
    pub instructions: String,
    /// First words the agent speaks on a call, if any.
    pub greeting: Option<String>,
    /// Realtime voice.
    pub voice: String,
    /// Model name.
    pub model: String,
    /// BCP 47 language tag for transcription, e.g. `en` or `en-US`.
    pub language: Option<String>,
    /// Sampling temperature, where the model supports one.
    pub temperature: Option<f64>,
    /// Turn detection.
    pub turn_detection: TurnDetection,
    /// Enabled tool names.
    pub tools: Vec<String>,
    /// Where `transfer_call` sends the caller: an E.164 number or a SIP URI.
    pub transfer_number: Option<TransferTarget>,
    /// Whose number the person the call is transferred to sees (default `our_number`).
    pub transfer_caller_id: CallerIdPolicy,
    /// What the caller hears (Twilio's voice) just before the transfer dials, if anything.
    pub transfer_message: Option<String>,
    /// `cold` (default: put through at once) or `warm` (the person is told what the call
    /// is about and accepts first, while the caller holds).
    pub transfer_mode: crate::transfer::TransferMode,
    /// Hard limit on a call's length, in seconds.
    pub max_call_duration_seconds: i64,
    /// Fields the post-call analysis extracts.
    pub analysis_fields: Vec<AnalysisField>,
    /// Opening hours and slot length for the appointment tools.
    pub business_hours: BusinessHours,
    /// Chat model for text channels (SMS, WhatsApp, web chat); `None` uses the server's
    /// `SWITCHBOARD_LLM_MODEL`.
    pub chat_model: Option<String>,
    /// On an outbound call answered by a machine: `hangup` or `leave_message`.
    pub voicemail: VoicemailMode,
    /// What `leave_message` says (`{{variables}}` filled per call).
    pub voicemail_message: Option<String>,
    /// Whether its calls are recorded (both directions, two channels: caller and agent).
    pub record: bool,
    /// Whose contact data its tools may use: `caller` (default: only the person on the line)
    /// or `organization` (every contact; staff-facing agents only).
    pub contact_scope: ContactScope,
    /// Agents of the organization it may hand a call to (a `handoff_to_<name>` tool each).
    pub handoffs: Vec<Handoff>,
    /// How `collect_digits` gathers keypad presses.
    pub digits: DigitCollection,
    /// Knowledge sources it answers from, with the built-in `search_knowledge` tool (offered
    /// on every channel whenever this is not empty).
    #[schema(value_type = Vec<String>)]
    pub knowledge: Vec<KnowledgeSourceId>,
    /// The Retell agent this agent answers for (Retell's custom-LLM socket and webhooks
    /// name it); unique across the platform.
    pub retell_agent_id: Option<String>,
    /// `realtime` (default: one speech-to-speech model) or `cascaded` (`stt`, `llm`, `tts`).
    pub voice_pipeline: VoicePipeline,
    /// Speech-to-text of the cascaded pipeline.
    pub stt: Option<SttSettings>,
    /// Chat model of the cascaded pipeline.
    pub llm: Option<LlmSettings>,
    /// Text-to-speech of the cascaded pipeline.
    pub tts: Option<TtsSettings>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// The body of `POST /api/v1/agents`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    /// Display name (required).
    pub name: String,
    /// System instructions (required).
    pub instructions: String,
    /// First words on a call.
    #[serde(default)]
    pub greeting: Option<String>,
    /// Voice (default `marin`).
    #[serde(default)]
    pub voice: Option<String>,
    /// Model (default `gpt-realtime`).
    #[serde(default)]
    pub model: Option<String>,
    /// Language tag.
    #[serde(default)]
    pub language: Option<String>,
    /// Temperature, 0 to 2.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Turn detection (default server VAD).
    #[serde(default)]
    pub turn_detection: Option<TurnDetection>,
    /// Tool names.
    #[serde(default)]
    pub tools: Option<Vec<String>>,
    /// Transfer target: E.164 or a SIP URI.
    #[serde(default)]
    pub transfer_number: Option<TransferTarget>,
    /// `our_number` (default) or `caller`.
    #[serde(default)]
    pub transfer_caller_id: Option<CallerIdPolicy>,
    /// A line spoken just before the transfer dials.
    #[serde(default)]
    pub transfer_message: Option<String>,
    /// `cold` (default) or `warm`.
    #[serde(default)]
    pub transfer_mode: Option<crate::transfer::TransferMode>,
    /// Seconds, 30 to 14400 (default 1800).
    #[serde(default)]
    pub max_call_duration_seconds: Option<i64>,
    /// Analysis fields.
    #[serde(default)]
    pub analysis_fields: Option<Vec<AnalysisField>>,
    /// Business hours for appointments (default Monday-Friday 09:00-17:00 UTC, 30 min).
    #[serde(default)]
    pub business_hours: Option<BusinessHours>,
    /// Chat model for text channels; absent uses the server's `SWITCHBOARD_LLM_MODEL`.
    #[serde(default)]
    pub chat_model: Option<String>,
    /// Outbound calls answered by a machine: `hangup` (default) or `leave_message`.
    #[serde(default)]
    pub voicemail: Option<VoicemailMode>,
    /// The message `leave_message` speaks (required with it).
    #[serde(default)]
    pub voicemail_message: Option<String>,
    /// Record its calls (default `false`).
    #[serde(default)]
    pub record: Option<bool>,
    /// `caller` (default) or `organization`.
    #[serde(default)]
    pub contact_scope: Option<ContactScope>,
    /// Agents it may hand a call to (default none).
    #[serde(default)]
    pub handoffs: Option<Vec<Handoff>>,
    /// Keypad collection for `collect_digits` (default 16 digits, `#`, 5 s).
    #[serde(default)]
    pub digits: Option<DigitCollection>,
    /// Knowledge source ids (`kns_...`) it answers from (default none).
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub knowledge: Option<Vec<KnowledgeSourceId>>,
    /// The Retell agent id this agent answers for (default none).
    #[serde(default)]
    pub retell_agent_id: Option<String>,
    /// `realtime` (default) or `cascaded`.
    #[serde(default)]
    pub voice_pipeline: Option<VoicePipeline>,
    /// Speech-to-text (required with `cascaded`).
    #[serde(default)]
    pub stt: Option<SttSettings>,
    /// Chat model of the cascaded pipeline (default: the server's chat model).
    #[serde(default)]
    pub llm: Option<LlmSettings>,
    /// Text-to-speech (required with `cascaded`).
    #[serde(default)]
    pub tts: Option<TtsSettings>,
}

/// The body of `PATCH /api/v1/agents/{id}`: every field optional; `null` clears an optional
/// field (`greeting`, `language`, `temperature`, `transfer_number`).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentPatch {
    /// Display name.
    pub name: Option<String>,
    /// Instructions.
    pub instructions: Option<String>,
    /// Greeting; `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub greeting: Option<Option<String>>,
    /// Voice.
    pub voice: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Language; `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub language: Option<Option<String>>,
    /// Temperature; `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<f64>)]
    pub temperature: Option<Option<f64>>,
    /// Turn detection.
    pub turn_detection: Option<TurnDetection>,
    /// Tool names.
    pub tools: Option<Vec<String>>,
    /// Transfer target; `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub transfer_number: Option<Option<TransferTarget>>,
    /// Whose number the person the call is transferred to sees.
    pub transfer_caller_id: Option<CallerIdPolicy>,
    /// `cold` or `warm`.
    pub transfer_mode: Option<crate::transfer::TransferMode>,
    /// The line spoken before a transfer dials; `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub transfer_message: Option<Option<String>>,
    /// Maximum call duration.
    pub max_call_duration_seconds: Option<i64>,
    /// Analysis fields.
    pub analysis_fields: Option<Vec<AnalysisField>>,
    /// Business hours for appointments.
    pub business_hours: Option<BusinessHours>,
    /// Chat model for text channels; `null` goes back to the server's default.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub chat_model: Option<Option<String>>,
    /// Voicemail behaviour of outbound calls.
    pub voicemail: Option<VoicemailMode>,
    /// Voicemail message; `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub voicemail_message: Option<Option<String>>,
    /// Record its calls.
    pub record: Option<bool>,
    /// `caller` or `organization`.
    pub contact_scope: Option<ContactScope>,
    /// Agents it may hand a call to (replaces the list).
    pub handoffs: Option<Vec<Handoff>>,
    /// Keypad collection for `collect_digits`.
    pub digits: Option<DigitCollection>,
    /// Knowledge source ids it answers from (replaces the list).
    #[schema(value_type = Option<Vec<String>>)]
    pub knowledge: Option<Vec<KnowledgeSourceId>>,
    /// The Retell agent id; `null` disconnects it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub retell_agent_id: Option<Option<String>>,
    /// `realtime` or `cascaded`.
    pub voice_pipeline: Option<VoicePipeline>,
    /// Speech-to-text; `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<SttSettings>)]
    pub stt: Option<Option<SttSettings>>,
    /// Chat model of the cascaded pipeline; `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<LlmSettings>)]
    pub llm: Option<Option<LlmSettings>>,
    /// Text-to-speech; `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<TtsSettings>)]
    pub tts: Option<Option<TtsSettings>>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
pub fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl Agent {
    /// Checks every field; the error names the first field at fault.
    pub fn validate(&self) -> Result<(), ValidationError> {
        require_text("name", &self.name, 200)?;
        if let Some(id) = &self.retell_agent_id {
            let ok = !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                return Err(ValidationError::new(
                    "retell_agent_id",
                    "must be the agent id from the Retell dashboard (letters, digits, `_` or `-`)",
                ));
            }
        }
        require_text("instructions", &self.instructions, 50_000)?;
        if let Some(g) = &self.greeting {
            require_text("greeting", g, 2_000)?;
        }
        match (&self.voicemail, &self.voicemail_message) {
            (_, Some(m)) => require_text("voicemail_message", m, 2_000)?,
            (VoicemailMode::LeaveMessage, None) => {
                return Err(ValidationError::new(
                    "voicemail_message",
                    "is required when `voicemail` is `leave_message`",
                ))
            }
            (VoicemailMode::Hangup, None) => {}
        }
        let custom_voice = self.voice.starts_with("voice_") && self.voice.len() <= 100;
        if !VOICES.contains(&self.voice.as_str()) && !custom_voice {
            return Err(ValidationError::new(
                "voice",
                format!(
                    "must be one of {} or a custom `voice_...` id",
                    VOICES.join(", ")
                ),
            ));
        }
        require_text("model", &self.model, 200)?;
        if self.model.chars().any(char::is_whitespace) {
            return Err(ValidationError::new("model", "must not contain spaces"));
        }
        if let Some(lang) = &self.language {
            let ok = (2..=35).contains(&lang.len())
                && lang.split('-').all(|p| {
                    !p.is_empty() && p.len() <= 8 && p.chars().all(|c| c.is_ascii_alphanumeric())
                });
            if !ok {
                return Err(ValidationError::new(
                    "language",
                    "must be a BCP 47 language tag such as `en` or `en-US`",
                ));
            }
        }
        if let Some(t) = self.temperature {
            if !(0.0..=2.0).contains(&t) {
                return Err(ValidationError::new(
                    "temperature",
                    "must be between 0 and 2",
                ));
            }
        }
        self.turn_detection
            .validate()
            .map_err(|e| e.under("turn_detection"))?;
        self.validate_pipeline()?;
        for (i, tool) in self.tools.iter().enumerate() {
            // Custom tools and MCP servers are checked against the organization's when saved.
            let server = tool
                .strip_prefix(crate::mcp_server::AGENT_PREFIX)
                .is_some_and(crate::mcp_server::is_server_name);
            if !BUILTIN_TOOLS.contains(&tool.as_str())
                && !crate::custom_tool::is_custom_name(tool)
                && !server
            {
                return Err(ValidationError::new(
                    format!("tools[{i}]"),
                    format!(
                        "unknown tool `{tool}`; built-in tools: {}, the name of one of the organization's custom tools, or `mcp:<server>` for one of its MCP servers",
                        BUILTIN_TOOLS.join(", ")
                    ),
                ));
            }
            if self.tools[..i].contains(tool) {
                return Err(ValidationError::new(format!("tools[{i}]"), "listed twice"));
            }
        }
        if let Some(m) = &self.transfer_message {
            require_text("transfer_message", m, 500)?;
        }
        if self.knowledge.len() > crate::knowledge::MAX_AGENT_SOURCES {
            return Err(ValidationError::new(
                "knowledge",
                format!("at most {} sources", crate::knowledge::MAX_AGENT_SOURCES),
            ));
        }
        for (i, k) in self.knowledge.iter().enumerate() {
            if self.knowledge[..i].contains(k) {
                return Err(ValidationError::new(
                    format!("knowledge[{i}]"),
                    "listed twice",
                ));
            }
        }
        if self.tools.iter().any(|t| t == "transfer_call") && self.transfer_number.is_none() {
            return Err(ValidationError::new(
                "transfer_number",
                "is required when the `transfer_call` tool is enabled",
            ));
        }
        if !(30..=14_400).contains(&self.max_call_duration_seconds) {
            return Err(ValidationError::new(
                "max_call_duration_seconds",
                "must be between 30 and 14400",
            ));
        }
        if self.analysis_fields.len() > 50 {
            return Err(ValidationError::new("analysis_fields", "at most 50 fields"));
        }
        for (i, f) in self.analysis_fields.iter().enumerate() {
            f.validate()
                .map_err(|e| e.under(&format!("analysis_fields[{i}]")))?;
            if self.analysis_fields[..i].iter().any(|o| o.name == f.name) {
                return Err(ValidationError::new(
                    format!("analysis_fields[{i}].name"),
                    "is used by another field",
                ));
            }
        }
        self.business_hours
            .validate()
            .map_err(|e| e.under("business_hours"))?;
        call_control::validate_handoffs(&self.id, &self.handoffs)?;
        self.digits.validate().map_err(|e| e.under("digits"))?;
        if let Some(m) = &self.chat_model {
            require_text("chat_model", m, 200)?;
            if m.chars().any(char::is_whitespace) {
                return Err(ValidationError::new(
                    "chat_model",
                    "must not contain spaces",
                ));
            }
        }
        check_len("name", &self.name, 200)
    }
}

#[cfg(test)]
mod tests;

/// Fills `{{name}}` placeholders from a JSON object of variables. Strings are inserted as
/// they are, other values in their JSON form; unknown names are left in place so a missing
/// variable is visible rather than silently blank.
pub fn substitute(template: &str, vars: &serde_json::Value) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = after[..close].trim();
        match vars.get(name) {
            Some(serde_json::Value::String(s)) => out.push_str(s),
            Some(serde_json::Value::Null) | None => out.push_str(&rest[open..open + close + 4]),
            Some(v) => out.push_str(&v.to_string()),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod substitute_tests {
    use super::substitute;

    #[test]
    fn placeholders_are_filled() {
        let vars = serde_json::json!({"name": "Ada", "amount": 12.5});
        assert_eq!(
            substitute("Hi {{name}}, you owe {{ amount }} ({{due}}). {{", &vars),
            "Hi Ada, you owe 12.5 ({{due}}). {{"
        );
    }
}
