//! Event shapes: `session.update` and the other client events, and server events normalised
//! across the GA and beta names (protocols.md section 5).

use serde::Deserialize;
use serde_json::{json, Value};
use std::borrow::Cow;
use switchboard_domain::agent::TurnDetection;

/// Which generation of the Realtime API the endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `gpt-realtime` models: `session.type`, nested `audio`, `response.output_audio.*`.
    Ga,
    /// `gpt-4o-realtime-preview-*` with `OpenAI-Beta: realtime=v1`: flat session fields.
    Beta,
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Name.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: Value,
}

/// What the session is configured with.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Model name (also sent in the URL).
    pub model: String,
    /// Instructions with the conversation's variables already substituted.
    pub instructions: String,
    /// Voice.
    pub voice: String,
    /// Transcription language, when known.
    pub language: Option<String>,
    /// Turn detection.
    pub turn_detection: TurnDetection,
    /// Input transcription model.
    pub transcription_model: String,
    /// Tools.
    pub tools: Vec<ToolSpec>,
    /// Sampling temperature (beta only; GA has none).
    pub temperature: Option<f64>,
}

/// Every turn-detection field explicitly: unspecified fields take server defaults that
/// differ between models, and we rely on the server creating and interrupting responses.
fn turn_detection(td: &TurnDetection) -> Value {
    match td {
        TurnDetection::ServerVad {
            threshold,
            prefix_padding_ms,
            silence_duration_ms,
        } => json!({
            "type": "server_vad",
            "threshold": threshold.unwrap_or(0.5),
            "prefix_padding_ms": prefix_padding_ms.unwrap_or(300),
            "silence_duration_ms": silence_duration_ms.unwrap_or(500),
            "create_response": true,
            "interrupt_response": true,
        }),
        TurnDetection::SemanticVad { eagerness } => json!({
            "type": "semantic_vad",
            "eagerness": eagerness.as_deref().unwrap_or("auto"),
            "create_response": true,
            "interrupt_response": true,
        }),
    }
}

fn tools(specs: &[ToolSpec]) -> Value {
    Value::Array(
        specs
            .iter()
            .map(|t| {
                json!({"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters})
            })
            .collect(),
    )
}

/// A GA voice: built-in names are strings, custom voices (`voice_...` ids) are `{"id": ...}`.
fn voice(v: &str) -> Value {
    if v.starts_with("voice_") {
        json!({"id": v})
    } else {
        json!(v)
    }
}

/// `session.update` for a Twilio bridge: mu-law in and out, no transcoding.
pub fn session_update(shape: Shape, c: &SessionConfig) -> String {
    let mut transcription = json!({"model": c.transcription_model});
    if let Some(lang) = &c.language {
        // The transcription models take ISO-639-1 (`en`), not a region (`en-US`).
        let primary = lang.split('-').next().unwrap_or(lang);
        transcription["language"] = json!(primary.to_ascii_lowercase());
    }
    let session = match shape {
        Shape::Ga => json!({
            "type": "realtime",
            "model": c.model,
            "instructions": c.instructions,
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "turn_detection": turn_detection(&c.turn_detection),
                    "transcription": transcription,
                },
                "output": {"format": {"type": "audio/pcmu"}, "voice": voice(&c.voice)},
            },
            "tools": tools(&c.tools),
            "tool_choice": "auto",
        }),
        Shape::Beta => {
            let mut s = json!({
                "modalities": ["text", "audio"],
                "instructions": c.instructions,
                "voice": c.voice,
                "input_audio_format": "g711_ulaw",
                "output_audio_format": "g711_ulaw",
                "input_audio_transcription": transcription,
                "turn_detection": turn_detection(&c.turn_detection),
                "tools": tools(&c.tools),
                "tool_choice": "auto",
            });
            if let Some(t) = c.temperature {
                // The beta API accepts 0.6-1.2 only.
                s["temperature"] = json!(t.clamp(0.6, 1.2));
            }
            s
        }
    };
    json!({"type": "session.update", "session": session}).to_string()
}

/// `input_audio_buffer.append` with base64 mu-law.
pub fn append_audio(audio_b64: &str) -> String {
    // Base64 needs no JSON escaping; this runs 50 times a second per call.
    format!("{{\"type\":\"input_audio_buffer.append\",\"audio\":\"{audio_b64}\"}}")
}

/// `conversation.item.truncate`: the caller heard only `audio_end_ms` of the item.
pub fn truncate(item_id: &str, audio_end_ms: u64) -> String {
    json!({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": audio_end_ms}).to_string()
}

/// A function result (`output` is a string: JSON-encoded once).
pub fn function_output(call_id: &str, output: &Value) -> String {
    json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": call_id, "output": output.to_string()}}).to_string()
}

/// `response.create`, optionally with instructions for this response only.
pub fn response_create(instructions: Option<&str>) -> String {
    match instructions {
        Some(i) => json!({"type": "response.create", "response": {"instructions": i}}).to_string(),
        None => json!({"type": "response.create"}).to_string(),
    }
}

/// A spoken line that must not call tools (`tool_choice: "none"`), e.g. "one moment" while
/// a slow tool runs: the model answers the pending call only once its output is in.
pub fn response_say(instructions: &str) -> String {
    json!({"type": "response.create", "response": {"instructions": instructions, "tool_choice": "none"}})
        .to_string()
}

/// The words of an output `message` item: its parts' transcripts (audio) or texts, joined.
pub fn item_text(item: &Value) -> String {
    let parts: Vec<&str> = item["content"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .filter_map(|p| p["transcript"].as_str().or(p["text"].as_str()))
                .collect()
        })
        .unwrap_or_default();
    parts.join(" ")
}

/// A server event, with GA and beta names folded together.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent<'a> {
    /// The session exists.
    SessionCreated,
    /// Our `session.update` was applied; `formats_ok` says whether both directions are mu-law.
    SessionUpdated {
        /// Both formats are mu-law.
        formats_ok: bool,
        /// The echoed formats, for logs.
        formats: String,
    },
    /// Agent audio (base64 mu-law).
    AudioDelta {
        /// Assistant item.
        item_id: String,
        /// Audio.
        delta: Cow<'a, str>,
    },
    /// The item's audio is complete.
    AudioDone {
        /// Assistant item.
        item_id: String,
    },
    /// The caller started speaking.
    SpeechStarted {
        /// User item.
        item_id: String,
    },
    /// The caller stopped speaking.
    SpeechStopped {
        /// User item.
        item_id: String,
    },
    /// Part of the transcript of agent audio (it streams alongside the audio).
    TranscriptDelta {
        /// Assistant item.
        item_id: String,
        /// Text.
        delta: Cow<'a, str>,
    },
    /// Input transcription of a caller turn failed (no transcript will come for it).
    InputTranscriptFailed {
        /// User item.
        item_id: String,
    },
    /// The caller's words, from input transcription.
    InputTranscript {
        /// User item.
        item_id: String,
        /// Text.
        transcript: String,
    },
    /// A response began.
    ResponseCreated,
    /// A response finished (completed, cancelled, failed or incomplete).
    ResponseDone {
        /// The `response` object.
        response: Value,
    },
    /// An error event.
    Error {
        /// `error.code` (or type).
        code: String,
        /// `error.message`.
        message: String,
    },
    /// Anything else (logged at debug level).
    Other(String),
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    delta: Option<Cow<'a, str>>,
    #[serde(default)]
    item_id: Option<String>,
    #[serde(default)]
    transcript: Option<String>,
    #[serde(default)]
    response: Option<Value>,
    #[serde(default)]
    session: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

/// Parses one server event.
pub fn parse(text: &str) -> Result<ServerEvent<'_>, serde_json::Error> {
    let raw: Raw<'_> = serde_json::from_str(text)?;
    let item = |r: &Raw<'_>| r.item_id.clone().unwrap_or_default();
    Ok(match raw.kind.as_ref() {
        "session.created" => ServerEvent::SessionCreated,
        "session.updated" => {
            let s = raw.session.unwrap_or(Value::Null);
            // GA: audio.input.format.type; beta: input_audio_format.
            let ga_in = s
                .pointer("/audio/input/format/type")
                .and_then(Value::as_str);
            let ga_out = s
                .pointer("/audio/output/format/type")
                .and_then(Value::as_str);
            let beta_in = s.get("input_audio_format").and_then(Value::as_str);
            let beta_out = s.get("output_audio_format").and_then(Value::as_str);
            let formats_ok = (ga_in == Some("audio/pcmu") && ga_out == Some("audio/pcmu"))
                || (beta_in == Some("g711_ulaw") && beta_out == Some("g711_ulaw"));
            ServerEvent::SessionUpdated {
                formats_ok,
                formats: format!(
                    "in={} out={}",
                    ga_in.or(beta_in).unwrap_or("?"),
                    ga_out.or(beta_out).unwrap_or("?")
                ),
            }
        }
        "response.output_audio.delta" | "response.audio.delta" => ServerEvent::AudioDelta {
            item_id: item(&raw),
            delta: raw.delta.unwrap_or(Cow::Borrowed("")),
        },
        "response.output_audio.done" | "response.audio.done" => ServerEvent::AudioDone {
            item_id: item(&raw),
        },
        "input_audio_buffer.speech_started" => ServerEvent::SpeechStarted {
            item_id: item(&raw),
        },
        "input_audio_buffer.speech_stopped" => ServerEvent::SpeechStopped {
            item_id: item(&raw),
        },
        "response.output_audio_transcript.delta" | "response.audio_transcript.delta" => {
            ServerEvent::TranscriptDelta {
                item_id: item(&raw),
                delta: raw.delta.unwrap_or(Cow::Borrowed("")),
            }
        }
        "conversation.item.input_audio_transcription.failed" => {
            ServerEvent::InputTranscriptFailed {
                item_id: item(&raw),
            }
        }
        "conversation.item.input_audio_transcription.completed" => ServerEvent::InputTranscript {
            item_id: item(&raw),
            transcript: raw.transcript.unwrap_or_default(),
        },
        "response.created" => ServerEvent::ResponseCreated,
        "response.done" => ServerEvent::ResponseDone {
            response: raw.response.unwrap_or(Value::Null),
        },
        "error" => {
            let e = raw.error.unwrap_or(Value::Null);
            let field = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_owned);
            ServerEvent::Error {
                code: field("code").or_else(|| field("type")).unwrap_or_default(),
                message: field("message").unwrap_or_default(),
            }
        }
        other => ServerEvent::Other(other.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SessionConfig {
        SessionConfig {
            model: "gpt-realtime".into(),
            instructions: "Be brief.".into(),
            voice: "marin".into(),
            language: Some("en-US".into()),
            turn_detection: TurnDetection::default(),
            transcription_model: "gpt-4o-mini-transcribe".into(),
            tools: vec![ToolSpec {
                name: "end_call".into(),
                description: "End".into(),
                parameters: json!({"type": "object", "properties": {}}),
            }],
            temperature: Some(0.3),
        }
    }

    #[test]
    fn ga_session_update() {
        let v: Value = serde_json::from_str(&session_update(Shape::Ga, &config())).expect("json");
        let s = &v["session"];
        assert_eq!(s["type"], "realtime");
        assert_eq!(s["audio"]["input"]["format"]["type"], "audio/pcmu");
        assert_eq!(s["audio"]["output"]["format"]["type"], "audio/pcmu");
        assert_eq!(s["audio"]["output"]["voice"], "marin");
        assert_eq!(s["audio"]["input"]["transcription"]["language"], "en");
        assert_eq!(
            s["audio"]["input"]["turn_detection"]["silence_duration_ms"],
            500
        );
        assert_eq!(s["tools"][0]["type"], "function");
        // GA has no temperature and no beta keys.
        assert!(s.get("temperature").is_none() && s.get("input_audio_format").is_none());
        // Custom voices go as an object; built-in names stay strings.
        let custom = SessionConfig {
            voice: "voice_abc123".into(),
            ..config()
        };
        let v: Value = serde_json::from_str(&session_update(Shape::Ga, &custom)).expect("json");
        assert_eq!(
            v["session"]["audio"]["output"]["voice"],
            json!({"id": "voice_abc123"})
        );
    }

    #[test]
    fn beta_session_update() {
        let v: Value = serde_json::from_str(&session_update(Shape::Beta, &config())).expect("json");
        let s = &v["session"];
        assert!(s.get("type").is_none());
        assert_eq!(s["input_audio_format"], "g711_ulaw");
        assert_eq!(s["output_audio_format"], "g711_ulaw");
        assert_eq!(s["temperature"], 0.6);
    }

    #[test]
    fn events_fold_ga_and_beta_names() {
        for name in ["response.output_audio.delta", "response.audio.delta"] {
            let text = format!(r#"{{"type":"{name}","item_id":"i1","delta":"AAA="}}"#);
            assert_eq!(
                parse(&text).expect("parses"),
                ServerEvent::AudioDelta {
                    item_id: "i1".into(),
                    delta: Cow::Borrowed("AAA=")
                }
            );
        }
        let ga = r#"{"type":"session.updated","session":{"audio":{"input":{"format":{"type":"audio/pcmu"}},"output":{"format":{"type":"audio/pcmu"}}}}}"#;
        assert!(matches!(
            parse(ga),
            Ok(ServerEvent::SessionUpdated {
                formats_ok: true,
                ..
            })
        ));
        let wrong = r#"{"type":"session.updated","session":{"input_audio_format":"pcm16","output_audio_format":"g711_ulaw"}}"#;
        assert!(matches!(
            parse(wrong),
            Ok(ServerEvent::SessionUpdated {
                formats_ok: false,
                ..
            })
        ));
        for name in [
            "response.output_audio_transcript.delta",
            "response.audio_transcript.delta",
        ] {
            let text = format!(r#"{{"type":"{name}","item_id":"i1","delta":"Sure, "}}"#);
            assert_eq!(
                parse(&text).expect("parses"),
                ServerEvent::TranscriptDelta {
                    item_id: "i1".into(),
                    delta: Cow::Borrowed("Sure, ")
                }
            );
        }
        let failed = r#"{"type":"conversation.item.input_audio_transcription.failed","item_id":"u1","content_index":0,"error":{"type":"server_error"}}"#;
        assert_eq!(
            parse(failed).expect("parses"),
            ServerEvent::InputTranscriptFailed {
                item_id: "u1".into()
            }
        );
        let err = r#"{"type":"error","error":{"type":"invalid_request_error","code":"unknown_parameter","message":"bad"}}"#;
        assert_eq!(
            parse(err).expect("error"),
            ServerEvent::Error {
                code: "unknown_parameter".into(),
                message: "bad".into()
            }
        );
        assert!(parse("{").is_err());
    }

    #[test]
    fn client_events() {
        let v: Value = serde_json::from_str(&append_audio("AAA=")).expect("json");
        assert_eq!(v["type"], "input_audio_buffer.append");
        let v: Value = serde_json::from_str(&truncate("i1", 1840)).expect("json");
        assert_eq!(v["audio_end_ms"], 1840);
        assert_eq!(v["content_index"], 0);
        let v: Value =
            serde_json::from_str(&function_output("c1", &json!({"ok": true}))).expect("json");
        // The output is a JSON string, encoded exactly once.
        assert_eq!(v["item"]["output"], "{\"ok\":true}");
    }
}
