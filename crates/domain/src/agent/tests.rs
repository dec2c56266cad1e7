//! Agents built from requests and patches: defaults, the field a bad value names, null
//! against absent.

use super::*;

fn new_agent() -> NewAgent {
    serde_json::from_value(serde_json::json!({"name": "Reception", "instructions": "Be kind."}))
        .expect("valid")
}

#[test]
fn defaults_are_filled_in() {
    let a = Agent::create(new_agent(), Timestamp::now()).expect("valid");
    assert_eq!(a.voice, DEFAULT_VOICE);
    assert_eq!(a.model, DEFAULT_MODEL);
    assert_eq!(a.max_call_duration_seconds, DEFAULT_MAX_CALL_SECONDS);
    assert_eq!(a.turn_detection, TurnDetection::default());
}

#[test]
fn bad_fields_are_named() {
    let cases = [
        (serde_json::json!({"voice": "robot"}), "voice"),
        (
            serde_json::json!({"tools": ["end_call", "no such tool!"]}),
            "tools[1]",
        ),
        (serde_json::json!({"temperature": 3.0}), "temperature"),
        (
            serde_json::json!({"voicemail": "leave_message"}),
            "voicemail_message",
        ),
        (
            serde_json::json!({"tools": ["transfer_call"]}),
            "transfer_number",
        ),
        (
            serde_json::json!({"turn_detection": {"type": "server_vad", "threshold": 2}}),
            "turn_detection.threshold",
        ),
        (
            serde_json::json!({"analysis_fields": [{"name": "x", "type": "enum", "description": "d"}]}),
            "analysis_fields[0].options",
        ),
        (serde_json::json!({"name": "  "}), "name"),
        (
            serde_json::json!({"max_call_duration_seconds": 5}),
            "max_call_duration_seconds",
        ),
        (serde_json::json!({"voice_pipeline": "cascaded"}), "stt"),
        (
            serde_json::json!({"voice_pipeline": "cascaded", "stt": {"provider": "deepgram"}}),
            "tts",
        ),
        (
            serde_json::json!({"tts": {"provider": "elevenlabs", "voice": "Rachel"}}),
            "tts.voice",
        ),
        (
            serde_json::json!({"tts": {"provider": "openai", "voice": "alloy",
                "fallback": {"provider": "elevenlabs", "voice": "Friendly Bob"}}}),
            "tts.fallback.voice",
        ),
        (
            serde_json::json!({"llm": {"first_token_timeout_ms": 10}}),
            "llm.first_token_timeout_ms",
        ),
        (
            serde_json::json!({"voice_pipeline": "cascaded", "stt": {"provider": "deepgram"},
                "tts": {"provider": "openai", "voice": "alloy"},
                "turn_detection": {"type": "semantic_vad"}}),
            "turn_detection",
        ),
    ];
    for (patch, field) in cases {
        let base = Agent::create(new_agent(), Timestamp::now()).expect("valid");
        let patch: AgentPatch = serde_json::from_value(patch).expect("patch parses");
        let err = base.apply(patch, Timestamp::now()).expect_err("must fail");
        assert_eq!(err.field, field);
    }
}

#[test]
fn null_clears_and_absent_keeps() {
    let mut input = new_agent();
    input.greeting = Some("Hi!".into());
    input.language = Some("en-US".into());
    let a = Agent::create(input, Timestamp::now()).expect("valid");
    let p: AgentPatch =
        serde_json::from_value(serde_json::json!({"greeting": null})).expect("parses");
    let a = a.apply(p, Timestamp::now()).expect("valid");
    assert_eq!(a.greeting, None);
    assert_eq!(a.language.as_deref(), Some("en-US"));
}
