//! The tools Switchboard's MCP server offers: each is one (or two) requests to the REST API
//! made as the caller (its organization and principal), so an MCP client gets exactly the
//! API's checks, organization scoping, events and error messages. How a call becomes that
//! request is in `execute.rs`.

use serde_json::{json, Value};

/// One tool.
pub(crate) struct Spec {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub schema: fn() -> Value,
    pub read_only: bool,
    pub destructive: bool,
    /// Reaches outside Switchboard (a text or a call to a person).
    pub open_world: bool,
    pub(super) route: Route,
}

/// How a tool maps onto the API. Path templates name arguments in braces (`{agent_id}`);
/// those arguments go into the path, the rest into the query (GET) or the JSON body.
pub(super) enum Route {
    Get(&'static str),
    Post(&'static str),
    Patch(&'static str),
    Delete(&'static str),
    /// A call with its transcript.
    CallWithTranscript,
    /// A conversation with its messages.
    ConversationWithMessages,
    /// A text message now: a business-started SMS conversation.
    SendSms,
    /// A text message later: a scheduled business-started SMS conversation.
    ScheduleSms,
}

/// A failure the MCP client is shown as a tool error result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    pub code: String,
    pub message: String,
}

impl Failure {
    pub(super) fn new(code: &str, message: impl Into<String>) -> Failure {
        Failure {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

fn page() -> Value {
    json!({
        "limit": {"type": "integer", "minimum": 1, "maximum": 200, "description": "Page size (default 50)"},
        "cursor": {"type": "string", "description": "`next_cursor` of the previous page"}
    })
}

fn object(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required})
}

fn with_page(mut props: Value) -> Value {
    if let (Some(p), Some(extra)) = (props.as_object_mut(), page().as_object()) {
        p.extend(extra.clone());
    }
    props
}

fn agent_fields() -> Value {
    json!({
        "name": {"type": "string", "description": "Name (1 to 200 characters)"},
        "instructions": {"type": "string", "description": "The system instructions: who the agent is and what it does; {{variables}} are filled per conversation"},
        "greeting": {"type": "string", "description": "What the agent says first on a call"},
        "voice": {"type": "string", "description": "Realtime voice: alloy, ash, ballad, coral, echo, sage, shimmer, verse, marin, cedar, or a custom voice_... id"},
        "model": {"type": "string", "description": "Realtime model for calls (default gpt-realtime)"},
        "chat_model": {"type": "string", "description": "Chat model for text conversations"},
        "language": {"type": "string", "description": "BCP 47 language tag, e.g. en or en-US"},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "tools": {"type": "array", "items": {"type": "string"}, "description": "Tools the agent may use: built-ins (end_call, transfer_call, check_availability, book_appointment, cancel_appointment, lookup_contact, send_sms, call_contact, schedule_sms, collect_digits), the organization's custom tools, or mcp:<server> for one of its MCP servers"},
        "handoffs": {"type": "array", "items": {"type": "object", "properties": {"agent_id": {"type": "string"}, "description": {"type": "string"}}, "required": ["agent_id", "description"]}, "description": "Other agents of the organization this one may hand a call to (a handoff_to_<name> tool each), with when to do it"},
        "knowledge": {"type": "array", "items": {"type": "string"}, "description": "Ids (kns_...) of the organization's knowledge sources the agent answers from with its search_knowledge tool"},
        "digits": {"type": "object", "description": "How collect_digits reads the keypad: {max_digits (1-32), terminator (#, * or null), timeout_seconds (1-60)}"},
        "transfer_number": {"type": "string", "description": "E.164 number transfer_call connects to"},
        "max_call_duration_seconds": {"type": "integer", "minimum": 30, "maximum": 14400},
        "voicemail": {"type": "string", "enum": ["hangup", "leave_message"]},
        "voicemail_message": {"type": "string"},
        "record": {"type": "boolean", "description": "Record calls"},
        "business_hours": {"type": "object", "description": "{timezone, days, open, close, slot_minutes} for the appointment tools"},
        "analysis_fields": {"type": "array", "items": {"type": "object"}, "description": "Fields extracted after each conversation: [{name, type, description}]"}
    })
}

fn id_prop(what: &str) -> Value {
    json!({"type": "string", "description": format!("The {what}'s id")})
}

const SPECS: &[Spec] = &[
    Spec {
        name: "list_agents",
        title: "List agents",
        description: "List the organization's agents (voice and text), newest first.",
        schema: || object(with_page(json!({})), &[]),
        read_only: true,
        destructive: false,
        open_world: false,
        route: Route::Get("/agents"),
    },
    Spec {
        name: "get_agent",
        title: "Get an agent",
        description: "One agent with all its settings, including its instructions and tools.",
        schema: || object(json!({"agent_id": id_prop("agent")}), &["agent_id"]),
        read_only: true,
        destructive: false,
        open_world: false,
        route: Route::Get("/agents/{agent_id}"),
    },
    Spec {
        name: "create_agent",
        title: "Create an agent",
        description: "Create an agent. Only name and instructions are required; the rest has defaults.",
        schema: || object(agent_fields(), &["name", "instructions"]),
        read_only: false,
        destructive: false,
        open_world: false,
        route: Route::Post("/agents"),
    },
    Spec {
        name: "update_agent",
        title: "Update an agent",
        description: "Change an agent's settings; only the fields given change (instructions are replaced as a whole). Takes effect from the next call or text.",
        schema: || {
            let mut f = agent_fields();
            if let Some(m) = f.as_object_mut() {
                m.insert("agent_id".into(), id_prop("agent"));
            }
            object(f, &["agent_id"])
        },
        read_only: false,
        destructive: true,
        open_world: false,
        route: Route::Patch("/agents/{agent_id}"),
    },
    Spec {
        name: "list_numbers",
        title: "List phone numbers",
        description: "The organization's phone numbers, their channel (voice, sms, whatsapp) and the agent each routes to.",
        schema: || object(with_page(json!({})), &[]),
        read_only: true,
        destructive: false,
        open_world: false,
        route: Route::Get("/phone-numbers"),
    },
    Spec {
        name: "search_contacts",
        title: "Search contacts",
        description: "Find contacts by number prefix or name; without `q`, the newest contacts.",
        schema: || object(with_page(json!({"q": {"type": "string", "description": "Number prefix (+1555...) or part of a name"}})), &[]),
        read_only: true,
        destructive: false,
        open_world: false,
        route: Route::Get("/contacts"),
    },
    Spec {
        name: "add_contact",
        title: "Add a contact",
        description: "Add a contact by E.164 number, with an optional name and metadata.",
        schema: || object(json!({
            "number": {"type": "string", "description": "E.164 number, e.g. +15551234567"},
            "name": {"type": "string"},
            "metadata": {"type": "object", "description": "Free-form facts about the contact"}
        }), &["number"]),
        read_only: false,
        destructive: false,
        open_world: false,
        route: Route::Post("/contacts"),
    },
    Spec {
        name: "update_contact",
        title: "Update a contact",
        description: "Change a contact's name, metadata (replaced as a whole) or opt-out.",
        schema: || object(json!({
            "contact_id": id_prop("contact"),
            "name": {"type": "string"},
            "metadata": {"type": "object"},
            "opted_out": {"type": "boolean", "description": "The contact asked not to be texted"}
        }), &["contact_id"]),
        read_only: false,
        destructive: true,
        open_world: false,
        route: Route::Patch("/contacts/{contact_id}"),
    },
    Spec {
        name: "list_conversations",
        title: "List conversations",
        description: "Conversations (calls, SMS, WhatsApp, web chats), newest first, with filters.",
        schema: || object(with_page(json!({
            "channel": {"type": "string", "enum": ["voice", "sms", "whatsapp", "web"]},
            "status": {"type": "string", "enum": ["active", "closed"]},
            "agent_id": id_prop("agent"),
            "contact": {"type": "string", "description": "The contact's E.164 number"},
            "from": {"type": "string", "description": "Started at or after (RFC 3339)"},
            "to": {"type": "string", "description": "Started before (RFC 3339)"}
        })), &[]),
        read_only: true,
        destructive: false,
        open_world: false,
        route: Route::Get("/conversations"),
    },
    Spec {
        name: "get_conversation",
        title: "Get a conversation",
        description: "One conversation with its messages (oldest first) and its analysis.",
        schema: || object(json!({"conversation_id": id_prop("conversation")}), &["conversation_id"]),
        read_only: true,
        destructive: false,
        open_world: false,
        route: Route::ConversationWithMessages,
    },
    Spec {
        name: "list_calls",
        title: "List calls",
        description: "Calls, newest first: direction, status, duration, disposition, outcome.",
        schema: || object(with_page(json!({
            "status": {"type": "string", "description": "e.g. in-progress, completed, no-answer"},
            "direction": {"type": "string", "enum": ["inbound", "outbound"]},
            "agent_id": id_prop("agent"),
            "number": {"type": "string", "description": "Either party's E.164 number"},
            "from": {"type": "string", "description": "Started at or after (RFC 3339)"},
            "to": {"type": "string", "description": "Started before (RFC 3339)"}
        })), &[]),
        read_only: true,
        destructive: false,
        open_world: false,
        route: Route::Get("/calls"),
    },
    Spec {
        name: "get_call",
        title: "Get a call",
        description: "One call with its analysis (summary, outcome, extracted fields) and its transcript.",
        schema: || object(json!({"call_id": id_prop("call")}), &["call_id"]),
        read_only: true,
        destructive: false,
        open_world: false,
        route: Route::CallWithTranscript,
    },
    Spec {
        name: "send_sms",
        title: "Send a text message",
        description: "Text a contact now by SMS from one of the organization's numbers; the agent answers their replies. Opted-out contacts are refused.",
        schema: || object(json!({
            "to": {"type": "string", "description": "The contact's E.164 number"},
            "text": {"type": "string", "description": "The message (1 to 1,600 characters)"},
            "from_number": {"type": "string", "description": "One of the organization's SMS numbers (default: the agent's or the first)"},
            "agent_id": id_prop("agent that answers replies"),
            "variables": {"type": "object", "description": "Variables for the agent's instructions"}
        }), &["to", "text"]),
        read_only: false,
        destructive: false,
        open_world: true,
        route: Route::SendSms,
    },
    Spec {
        name: "place_call",
        title: "Place a phone call",
        description: "Have an agent call a contact now, or at `send_at`. Give `to` or `contact_id`.",
        schema: || object(json!({
            "to": {"type": "string", "description": "E.164 number to call"},
            "contact_id": id_prop("contact to call"),
            "agent_id": id_prop("agent that talks"),
            "from_number": {"type": "string", "description": "One of the organization's voice numbers"},
            "variables": {"type": "object", "description": "Variables for the agent's instructions and greeting"},
            "send_at": {"type": "string", "description": "When to call (RFC 3339); now when left out"},
            "record": {"type": "boolean"},
            "metadata": {"type": "object"}
        }), &[]),
        read_only: false,
        destructive: false,
        open_world: true,
        route: Route::Post("/calls"),
    },
    Spec {
        name: "schedule_sms",
        title: "Schedule a text message",
        description: "Text a contact by SMS at a later time (checked now, sent then).",
        schema: || object(json!({
            "to": {"type": "string", "description": "The contact's E.164 number"},
            "text": {"type": "string", "description": "The message (1 to 1,600 characters)"},
            "send_at": {"type": "string", "description": "When to send it (RFC 3339)"},
            "from_number": {"type": "string"},
            "agent_id": id_prop("agent that answers replies")
        }), &["to", "text", "send_at"]),
        read_only: false,
        destructive: false,
        open_world: true,
        route: Route::ScheduleSms,
    },
    Spec {
        name: "list_appointments",
        title: "List appointments",
        description: "Appointments on the organization's calendar, earliest first. Days are read in the organization's time zone.",
        schema: || object(with_page(json!({
            "from": {"type": "string", "description": "A day (2026-12-07) or an RFC 3339 time: appointments ending after it"},
            "to": {"type": "string", "description": "A day (included) or an RFC 3339 time: appointments starting before it"},
            "contact_id": id_prop("contact"),
            "agent_id": id_prop("agent"),
            "status": {"type": "string", "enum": ["booked", "canceled"]}
        })), &[]),
        read_only: true,
        destructive: false,
        open_world: false,
        route: Route::Get("/appointments"),
    },
    Spec {
        name: "book_appointment",
        title: "Book an appointment",
        description: "Book on an agent's calendar, within its business hours and not overlapping another appointment. Give `contact_id` or `contact_number` (or neither for a block of time).",
        schema: || object(json!({
            "agent_id": id_prop("agent whose calendar and hours apply"),
            "contact_id": id_prop("contact"),
            "contact_number": {"type": "string", "description": "E.164 number; its contact is created when missing"},
            "start": {"type": "string", "description": "RFC 3339, or a local time in the agent's time zone (2026-12-07T10:00)"},
            "duration_minutes": {"type": "integer", "minimum": 5, "maximum": 480, "description": "Default: the agent's slot length"},
            "title": {"type": "string"},
            "notes": {"type": "string"}
        }), &["agent_id", "start"]),
        read_only: false,
        destructive: false,
        open_world: false,
        route: Route::Post("/appointments"),
    },
    Spec {
        name: "move_appointment",
        title: "Move or edit an appointment",
        description: "Change a booked appointment's start, length, title or notes (a move is checked like a booking).",
        schema: || object(json!({
            "appointment_id": id_prop("appointment"),
            "start": {"type": "string", "description": "RFC 3339, or a local time in the agent's time zone"},
            "duration_minutes": {"type": "integer", "minimum": 5, "maximum": 480},
            "title": {"type": "string"},
            "notes": {"type": "string"}
        }), &["appointment_id"]),
        read_only: false,
        destructive: true,
        open_world: false,
        route: Route::Patch("/appointments/{appointment_id}"),
    },
    Spec {
        name: "cancel_appointment",
        title: "Cancel an appointment",
        description: "Cancel a booked appointment (it stays listed as canceled).",
        schema: || object(json!({"appointment_id": id_prop("appointment")}), &["appointment_id"]),
        read_only: false,
        destructive: true,
        open_world: false,
        route: Route::Delete("/appointments/{appointment_id}"),
    },
];

/// Every tool, in the order offered.
pub(crate) fn all() -> &'static [Spec] {
    SPECS
}

/// A tool by name.
pub(crate) fn find(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_an_object_schema_and_a_title() {
        for s in all() {
            let schema = (s.schema)();
            assert_eq!(schema["type"], "object", "{}", s.name);
            for r in schema["required"].as_array().expect("required") {
                let r = r.as_str().expect("name");
                assert!(schema["properties"].get(r).is_some(), "{}: {r}", s.name);
            }
            assert!(!s.title.is_empty());
            assert!(!(s.read_only && s.destructive), "{}", s.name);
        }
    }
}
