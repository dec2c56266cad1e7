//! The Realtime server events the engine sends the call actor, in the GA shape (the actor
//! reads both shapes).

use serde_json::{json, Value};

pub(super) fn session_updated(instructions: &str) -> String {
    json!({"type": "session.updated", "session": {
        "type": "realtime",
        "instructions": instructions,
        "audio": {"input": {"format": {"type": "audio/pcmu"}}, "output": {"format": {"type": "audio/pcmu"}}},
    }})
    .to_string()
}

pub(super) fn speech_started(item: &str, audio_start_ms: u64) -> String {
    json!({"type": "input_audio_buffer.speech_started", "item_id": item, "audio_start_ms": audio_start_ms}).to_string()
}

pub(super) fn speech_stopped(item: &str, audio_end_ms: u64) -> String {
    json!({"type": "input_audio_buffer.speech_stopped", "item_id": item, "audio_end_ms": audio_end_ms}).to_string()
}

pub(super) fn transcript_completed(item: &str, transcript: &str) -> String {
    json!({"type": "conversation.item.input_audio_transcription.completed", "item_id": item, "content_index": 0, "transcript": transcript}).to_string()
}

pub(super) fn transcript_failed(item: &str, message: &str) -> String {
    json!({"type": "conversation.item.input_audio_transcription.failed", "item_id": item, "content_index": 0,
        "error": {"type": "transcription_error", "message": message}})
    .to_string()
}

pub(super) fn response_created(id: &str) -> String {
    json!({"type": "response.created", "response": {"id": id, "object": "realtime.response", "status": "in_progress", "output": []}}).to_string()
}

pub(super) fn audio_delta(response: &str, item: &str, b64: &str) -> String {
    json!({"type": "response.output_audio.delta", "response_id": response, "item_id": item, "output_index": 0, "content_index": 0, "delta": b64}).to_string()
}

pub(super) fn transcript_delta(response: &str, item: &str, delta: &str) -> String {
    json!({"type": "response.output_audio_transcript.delta", "response_id": response, "item_id": item, "output_index": 0, "content_index": 0, "delta": delta}).to_string()
}

pub(super) fn audio_done(response: &str, item: &str) -> String {
    json!({"type": "response.output_audio.done", "response_id": response, "item_id": item, "output_index": 0, "content_index": 0}).to_string()
}

pub(super) fn message_item(item: &str, text: &str, status: &str) -> Value {
    json!({"id": item, "object": "realtime.item", "type": "message", "role": "assistant", "status": status,
        "content": [{"type": "output_audio", "transcript": text}]})
}

pub(super) fn function_call_item(item: &str, call: &switchboard_llm::ToolCall) -> Value {
    json!({"id": item, "object": "realtime.item", "type": "function_call", "status": "completed",
        "call_id": call.id, "name": call.name, "arguments": call.arguments})
}

/// `response.done`; `extra` carries the engine's own fields (the latency breakdown).
pub(super) fn response_done(id: &str, status: &str, output: Vec<Value>, extra: Value) -> String {
    let mut response =
        json!({"id": id, "object": "realtime.response", "status": status, "output": output});
    if let (Some(r), Value::Object(extra)) = (response.as_object_mut(), extra) {
        r.extend(extra);
    }
    json!({"type": "response.done", "response": response}).to_string()
}

pub(super) fn error(code: &str, message: &str) -> String {
    json!({"type": "error", "error": {"type": "invalid_request_error", "code": code, "message": message}}).to_string()
}
