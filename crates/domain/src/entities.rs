//! Entities as stored and returned by the API, and the inputs that create or change them.

use crate::agent::double_option;
use crate::ids::*;
use crate::values::*;
use crate::{Timestamp, ValidationError};
use serde::{Deserialize, Serialize};

/// An organization (tenant).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Organization {
    /// Id.
    pub id: OrgId,
    /// Display name.
    pub name: String,
    /// `active` or `disabled`.
    pub status: OrgStatus,
    /// Created.
    pub created_at: Timestamp,
}

/// Validates an organization name.
pub fn validate_org_name(name: &str) -> Result<(), ValidationError> {
    require_text("name", name, 200)
}

/// An API key as listed (never includes the secret).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    /// Id.
    pub id: ApiKeyId,
    /// Label given at creation.
    pub name: String,
    /// The visible start of the key, e.g. `sk_1a2b3c4d`.
    pub prefix: String,
    /// Created.
    pub created_at: Timestamp,
    /// Last used to authenticate (updated at most once a minute).
    pub last_used_at: Option<Timestamp>,
    /// When revoked; a revoked key no longer authenticates.
    pub revoked_at: Option<Timestamp>,
}

/// What an authenticated organization API key resolves to.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyPrincipal {
    /// The key's organization.
    pub org_id: OrgId,
    /// The key.
    pub key_id: ApiKeyId,
    /// Whether the organization is active.
    pub org_status: OrgStatus,
    /// When the key was last used.
    pub last_used_at: Option<Timestamp>,
}

/// A dashboard login.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Home organization.
    pub org_id: OrgId,
    /// Login e-mail (unique platform-wide).
    pub email: String,
    /// Role.
    pub role: Role,
    /// Created.
    pub created_at: Timestamp,
}

/// A phone number owned by an organization.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OwnedNumber {
    /// Id.
    pub id: PhoneNumberId,
    /// E.164 number.
    pub number: PhoneNumber,
    /// Channel it serves.
    pub channel: NumberChannel,
    /// Agent answering it; none means it is not routed.
    pub agent_id: Option<AgentId>,
    /// Inactive numbers are politely refused.
    pub active: bool,
    /// Created.
    pub created_at: Timestamp,
    /// `verified` once Twilio confirmed the number is in the organization's account;
    /// `pending_verification` until then (it does not route in production).
    pub verification: NumberVerification,
    /// Why it is pending, as a stable code: `not_checked`, `no_credentials`,
    /// `not_in_account`, `missing_capability`, `credentials_rejected`, `twilio_unreachable`,
    /// `verified_elsewhere`; `null` once verified.
    pub verification_reason: Option<String>,
    /// The reason, or how it was verified, in words.
    pub verification_message: Option<String>,
    /// When it was last checked.
    pub verification_checked_at: Option<Timestamp>,
}

/// Reason codes of a number's `pending_verification` state (`verification_reason`).
pub mod verification_reason {
    /// Registered before verification existed, or not checked yet.
    pub const NOT_CHECKED: &str = "not_checked";
    /// The organization has no Twilio credentials to check with.
    pub const NO_CREDENTIALS: &str = "no_credentials";
    /// The Twilio account has no such number.
    pub const NOT_IN_ACCOUNT: &str = "not_in_account";
    /// The number is in the account but cannot serve this channel (e.g. no voice).
    pub const MISSING_CAPABILITY: &str = "missing_capability";
    /// Twilio refused the organization's credentials.
    pub const CREDENTIALS_REJECTED: &str = "credentials_rejected";
    /// Twilio could not be asked (network, timeout, 5xx); check again later.
    pub const TWILIO_UNREACHABLE: &str = "twilio_unreachable";
    /// Another organization on this platform holds the verified claim.
    pub const VERIFIED_ELSEWHERE: &str = "verified_elsewhere";
}

/// The body of `POST /api/v1/phone-numbers`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPhoneNumber {
    /// E.164 number.
    pub number: PhoneNumber,
    /// `voice`, `sms` or `whatsapp`.
    pub channel: NumberChannel,
    /// The agent that answers it.
    #[serde(default)]
    pub agent_id: Option<AgentId>,
    /// Default true.
    #[serde(default)]
    pub active: Option<bool>,
}

/// The body of `PATCH /api/v1/phone-numbers/{id}`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneNumberPatch {
    /// New agent; `null` unroutes the number.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub agent_id: Option<Option<AgentId>>,
    /// Activate or deactivate.
    pub active: Option<bool>,
}

/// Where an inbound number routes to; resolved before any tenant is known.
#[derive(Debug, Clone, PartialEq)]
pub struct NumberRoute {
    /// Owning organization.
    pub org_id: OrgId,
    /// The number's record.
    pub number_id: PhoneNumberId,
    /// Agent, if assigned.
    pub agent_id: Option<AgentId>,
    /// Whether the number is active and its organization is active.
    pub active: bool,
    /// Whether this claim is verified (an unverified one routes only in development).
    pub verified: bool,
}

/// A contact of an organization.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Contact {
    /// Id.
    pub id: ContactId,
    /// E.164 number (unique within the organization).
    pub number: PhoneNumber,
    /// Name.
    pub name: Option<String>,
    /// Free-form JSON object.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// The contact asked not to be messaged.
    pub opted_out: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// The body of `POST /api/v1/contacts`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    /// E.164 number.
    pub number: PhoneNumber,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// JSON object.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// Default false.
    #[serde(default)]
    pub opted_out: Option<bool>,
}

/// The body of `PATCH /api/v1/contacts/{id}`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    /// E.164 number.
    pub number: Option<PhoneNumber>,
    /// Name; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// Replaces the metadata object.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// Opt out or back in.
    pub opted_out: Option<bool>,
}

/// Checks a contact's name and metadata.
pub fn validate_contact_fields(
    name: Option<&str>,
    metadata: &serde_json::Value,
) -> Result<(), ValidationError> {
    if let Some(n) = name {
        require_text("name", n, 200)?;
    }
    if !metadata.is_object() {
        return Err(ValidationError::new("metadata", "must be a JSON object"));
    }
    if metadata.to_string().len() > 16 * 1024 {
        return Err(ValidationError::new("metadata", "must be at most 16 KiB"));
    }
    Ok(())
}

/// A text message to be sent later (`POST /api/v1/scheduled-messages`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ScheduledMessage {
    /// Id (`sch_...`).
    pub id: String,
    /// `sms` or `whatsapp`.
    pub channel: Channel,
    /// The recipient.
    pub contact_number: String,
    /// When it is to be sent.
    pub send_at: Timestamp,
    /// `scheduled`, `sending`, `sent`, `failed` or `canceled`.
    pub status: String,
    /// The conversation it was sent in, once sent.
    pub conversation_id: Option<ConversationId>,
    /// The message as sent, once sent.
    pub message_id: Option<MessageId>,
    /// Why it was not sent, for `failed`.
    pub error: Option<String>,
    /// The conversation request it will make (the body of `POST /api/v1/conversations`).
    #[schema(value_type = Object)]
    pub request: serde_json::Value,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// A conversation: a call, an SMS or WhatsApp thread, or a web chat.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Conversation {
    /// Id.
    pub id: ConversationId,
    /// Channel.
    pub channel: Channel,
    /// Who started it.
    pub direction: Direction,
    /// The other party's number (or a session id on `web`).
    pub contact_number: String,
    /// Our number.
    pub our_number: Option<String>,
    /// The agent handling it.
    pub agent_id: Option<AgentId>,
    /// Status.
    pub status: ConversationStatus,
    /// Started.
    pub started_at: Timestamp,
    /// Last message.
    pub last_message_at: Timestamp,
    /// Ended.
    pub ended_at: Option<Timestamp>,
    /// Variables substituted into the agent's instructions.
    #[schema(value_type = Object)]
    pub variables: serde_json::Value,
    /// The last failure while answering (e.g. the chat model unavailable); cleared when the
    /// agent answers again.
    pub error: Option<String>,
    /// Analysis of a closed text conversation (calls keep theirs on the call).
    #[schema(value_type = Option<Object>)]
    pub analysis: Option<serde_json::Value>,
}

/// Input to create a conversation (used by the channels, not a public body yet).
#[derive(Debug, Clone)]
pub struct NewConversation {
    /// Channel.
    pub channel: Channel,
    /// Direction.
    pub direction: Direction,
    /// The other party.
    pub contact_number: String,
    /// Our number.
    pub our_number: Option<String>,
    /// Agent.
    pub agent_id: Option<AgentId>,
    /// Variables.
    pub variables: serde_json::Value,
    /// When it started.
    pub started_at: Timestamp,
}

/// Filters for listing conversations.
#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    /// Only this channel.
    pub channel: Option<Channel>,
    /// Only this status.
    pub status: Option<ConversationStatus>,
    /// Only this agent.
    pub agent_id: Option<AgentId>,
    /// Only this contact number.
    pub contact: Option<String>,
    /// Started at or after.
    pub from: Option<Timestamp>,
    /// Started before.
    pub to: Option<Timestamp>,
}

/// A transcript item or message.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Message {
    /// Id.
    pub id: MessageId,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Author.
    pub role: MessageRole,
    /// What it holds.
    pub kind: MessageKind,
    /// Structured content (text parts, function name and arguments, output...).
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
    /// Provider id, e.g. a Twilio MessageSid or a model item id.
    pub external_id: Option<String>,
    /// Delivery status for outbound messages.
    pub delivery_status: Option<String>,
    /// Why delivery failed (Twilio's error code or our reason).
    pub delivery_error: Option<String>,
    /// Created.
    pub created_at: Timestamp,
}

/// Input to append a transcript item.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Author.
    pub role: MessageRole,
    /// Kind.
    pub kind: MessageKind,
    /// Structured content.
    pub content: serde_json::Value,
    /// Provider id.
    pub external_id: Option<String>,
    /// Delivery status.
    pub delivery_status: Option<String>,
    /// When.
    pub created_at: Timestamp,
}

/// A phone call.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Call {
    /// Id.
    pub id: CallId,
    /// The conversation holding its transcript.
    pub conversation_id: ConversationId,
    /// Twilio CallSid.
    pub call_sid: String,
    /// Direction.
    pub direction: Direction,
    /// Caller / callee.
    pub from_number: String,
    /// Called number.
    pub to_number: String,
    /// Agent.
    pub agent_id: Option<AgentId>,
    /// Status.
    pub status: CallStatus,
    /// Created.
    pub started_at: Timestamp,
    /// Answered.
    pub answered_at: Option<Timestamp>,
    /// Ended.
    pub ended_at: Option<Timestamp>,
    /// Duration in seconds.
    pub duration_seconds: Option<i64>,
    /// Why it ended.
    pub end_reason: Option<String>,
    /// Outcome: completed, no-answer, busy, failed, voicemail...
    pub disposition: Option<String>,
    /// Where the recording's audio is served, once Twilio finished it:
    /// `/api/v1/calls/{id}/recording` (streamed through Switchboard; Twilio's own URL and the
    /// organization's credentials never reach a client). For a call Retell ran, Retell's own
    /// recording link (temporary, served by Retell).
    pub recording_url: Option<String>,
    /// The recording, when the call was recorded.
    pub recording: Option<CallRecording>,
    /// Post-call analysis.
    #[schema(value_type = Option<Object>)]
    pub analysis: Option<serde_json::Value>,
    /// The analysis the call's front end made, for a call Retell ran (its `call_analysis`:
    /// `call_summary`, `user_sentiment`, `call_successful`, ...).
    #[schema(value_type = Option<Object>)]
    pub provider_analysis: Option<serde_json::Value>,
    /// Per-turn latency: caller stopped speaking to first agent audio sent, in ms.
    pub turn_latencies_ms: Vec<i64>,
    /// What went wrong, for failed calls.
    pub error: Option<String>,
    /// Opaque JSON given when the call was placed through the API (echoed in its events).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// When an outbound call is (or was) to be dialled.
    pub scheduled_at: Option<Timestamp>,
    /// Twilio's `SipResponseCode` for the attempt, when it reported one.
    pub sip_response_code: Option<i64>,
    /// Twilio's `ErrorCode` (e.g. 21215), when the attempt failed with one.
    pub twilio_error_code: Option<i64>,
    /// Who answered an outbound call, by Twilio's answering-machine detection: `human`,
    /// `machine_end_beep`, `machine_end_silence`, `machine_end_other`, `fax`, `unknown`.
    pub answered_by: Option<String>,
    /// The campaign that placed this call, if one did.
    pub campaign_id: Option<String>,
    /// The agents the call passed through: the one that answered, then each one it was
    /// handed to.
    #[schema(value_type = Vec<String>)]
    pub agents: Vec<AgentId>,
    /// Each handoff between agents, in order.
    pub handoffs: Vec<CallHandoff>,
    /// The call's latest transfer, if it was transferred (or tried to be).
    pub transfer: Option<crate::transfer::CallTransfer>,
}

/// One handoff of a call from one agent to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallHandoff {
    /// The agent that handed the call over.
    #[schema(value_type = String)]
    pub from_agent_id: AgentId,
    /// The agent that took it.
    #[schema(value_type = String)]
    pub to_agent_id: AgentId,
    /// Why, as the handing agent put it.
    pub reason: Option<String>,
    /// When.
    pub at: Timestamp,
}

/// A call's recording as Twilio's recording callback described it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CallRecording {
    /// `requested` (asked of Twilio, no callback yet), `in-progress`, `completed`, `absent`
    /// (nothing was recorded), `failed`, or `deleted`.
    pub status: String,
    /// Length in seconds.
    pub duration_seconds: Option<i64>,
    /// `2` for dual-channel recordings (the callee and the agent apart), else `1`.
    pub channels: Option<i64>,
    /// When it was deleted (through the API, the dashboard or the retention setting).
    pub deleted_at: Option<Timestamp>,
}

/// An appointment booked by an agent, by staff on the dashboard, or through the API.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Appointment {
    /// Id (`apt_...`).
    pub id: String,
    /// The agent whose calendar and business hours it belongs to (the one that booked it,
    /// for bookings made in a call or a text).
    pub agent_id: Option<AgentId>,
    /// Contact it is for.
    pub contact_id: Option<ContactId>,
    /// Start.
    pub starts_at: Timestamp,
    /// End.
    pub ends_at: Timestamp,
    /// `booked` or `canceled`.
    pub status: String,
    /// Title.
    pub title: String,
    /// Notes.
    pub notes: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed (moved, edited or canceled).
    pub updated_at: Timestamp,
    /// How many times it changed since it was booked (the iCalendar `SEQUENCE`).
    pub revision: i64,
}

/// The statuses an appointment can have.
pub const APPOINTMENT_STATUSES: &[&str] = &["booked", "canceled"];

/// Which appointments to list.
#[derive(Debug, Clone, Default)]
pub struct AppointmentFilter {
    /// Only those ending after this time.
    pub from: Option<Timestamp>,
    /// Only those starting before this time.
    pub to: Option<Timestamp>,
    /// One contact's.
    pub contact_id: Option<ContactId>,
    /// One agent's.
    pub agent_id: Option<AgentId>,
    /// `booked` or `canceled`; `None` lists both.
    pub status: Option<String>,
    /// Page size (default 50, at most [`MAX_PAGE_SIZE`]).
    pub limit: Option<u32>,
    /// Where the previous page ended (earliest start first).
    pub cursor: Option<Cursor>,
}

/// A change to an appointment made by staff: absent fields keep their value.
#[derive(Debug, Clone, Default)]
pub struct AppointmentChange {
    /// New start and end (a move), checked against bookings other than this one.
    pub times: Option<(Timestamp, Timestamp)>,
    /// New title.
    pub title: Option<String>,
    /// New notes (`Some(None)` clears them).
    pub notes: Option<Option<String>>,
    /// New contact.
    pub contact_id: Option<ContactId>,
}

/// Input to book an appointment.
#[derive(Debug, Clone)]
pub struct NewAppointment {
    /// Agent.
    pub agent_id: Option<AgentId>,
    /// Contact.
    pub contact_id: Option<ContactId>,
    /// Start.
    pub starts_at: Timestamp,
    /// End.
    pub ends_at: Timestamp,
    /// Title.
    pub title: String,
    /// Notes.
    pub notes: Option<String>,
    /// Who booked it, as events report it: `agent:agt_...`, `user:usr_...` or
    /// `api_key:key_...`.
    pub by: String,
}

/// One tool execution, as written to the audit table.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ToolInvocation {
    /// Id.
    pub id: String,
    /// Conversation.
    pub conversation_id: Option<ConversationId>,
    /// Call.
    pub call_id: Option<CallId>,
    /// The model's call id.
    pub external_id: Option<String>,
    /// Tool name.
    pub tool: String,
    /// Arguments as the model sent them.
    #[schema(value_type = Object)]
    pub arguments: serde_json::Value,
    /// Result returned to the model.
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// `running`, `ok`, `error` or `timeout`.
    pub status: String,
    /// Who ran it (the principal), e.g. `agent:agt_...`.
    pub actor: String,
    /// Where it came from: `call` or `text` (a built-in tool run by an agent in a
    /// conversation), `custom` (a custom HTTP tool, from a conversation or a test run),
    /// `mcp_server` (a client of Switchboard's MCP server), `mcp_client` (an agent using an
    /// external MCP server's tool), `assistant` (the operator assistant, for a person).
    pub source: String,
    /// Started.
    pub started_at: Timestamp,
    /// Finished.
    pub finished_at: Option<Timestamp>,
    /// How long it ran, once finished.
    pub duration_ms: Option<i64>,
}

/// The values of [`ToolInvocation::source`].
pub const TOOL_SOURCES: &[&str] = &[
    "call",
    "text",
    "custom",
    "mcp_server",
    "mcp_client",
    "assistant",
];

/// Filters of `GET /api/v1/tool-invocations`.
#[derive(Debug, Clone, Default)]
pub struct ToolInvocationFilter {
    /// One conversation's.
    pub conversation_id: Option<ConversationId>,
    /// One call's.
    pub call_id: Option<CallId>,
    /// One tool's.
    pub tool: Option<String>,
    /// `running`, `ok`, `error` or `timeout`.
    pub status: Option<String>,
    /// One of [`TOOL_SOURCES`].
    pub source: Option<String>,
    /// Started at or after.
    pub from: Option<Timestamp>,
    /// Started before.
    pub to: Option<Timestamp>,
}

/// Input to create a call record.
#[derive(Debug, Clone)]
pub struct NewCall {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Twilio CallSid.
    pub call_sid: String,
    /// Direction.
    pub direction: Direction,
    /// From.
    pub from_number: String,
    /// To.
    pub to_number: String,
    /// Agent.
    pub agent_id: Option<AgentId>,
    /// Initial status.
    pub status: CallStatus,
    /// Created.
    pub started_at: Timestamp,
}

/// Filters for listing calls.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    /// Only this status.
    pub status: Option<CallStatus>,
    /// Only this agent.
    pub agent_id: Option<AgentId>,
    /// Only this direction.
    pub direction: Option<Direction>,
    /// Only calls from or to this number.
    pub number: Option<String>,
    /// Started at or after.
    pub from: Option<Timestamp>,
    /// Started before.
    pub to: Option<Timestamp>,
    /// Only calls not ended yet (what "active now" counts).
    pub open: bool,
}

/// A keyset position in a newest-first (or oldest-first) list: the sort timestamp and the id
/// that breaks ties. Rendered as an opaque string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Sort key of the last item returned.
    pub at: i64,
    /// Tie-breaker of the last item returned.
    pub id: String,
}

impl Cursor {
    /// The opaque text form.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.at, self.id)
    }

    /// Parses the opaque text form.
    pub fn decode(s: &str) -> Option<Cursor> {
        let (at, id) = s.split_once('.')?;
        let at = at.parse().ok()?;
        let ok = !id.is_empty()
            && id.len() <= 80
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        ok.then(|| Cursor {
            at,
            id: id.to_owned(),
        })
    }
}

/// One page of a list plus where the next page starts.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The items.
    pub data: Vec<T>,
    /// Pass as `cursor` to fetch the next page; `null` at the end.
    pub next_cursor: Option<String>,
}

/// Page size bounds shared by every list.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// The largest page a client may ask for.
pub const MAX_PAGE_SIZE: u32 = 200;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_rejects_junk() {
        let c = Cursor {
            at: 1_700_000_000_000,
            id: "cnv_abc".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for junk in ["", "abc", "1.", "x.cnv_a", "1.cnv'--", "1.a b"] {
            assert!(Cursor::decode(junk).is_none(), "{junk}");
        }
    }
}
