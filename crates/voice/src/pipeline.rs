//! Opening a call's model session: OpenAI Realtime for a `realtime` agent, the cascaded
//! pipeline (speech-to-text, chat model, text-to-speech in this process) for a `cascaded`
//! one. Either way the call actor gets a [`ModelLink`] speaking the Realtime events.

use crate::VoiceServices;
use serde_json::{json, Value};
use switchboard_cascade::Pipeline;
use switchboard_domain::agent::{Agent, TurnDetection, VoicePipeline};
use switchboard_realtime::ModelLink;
use tokio::time::timeout;

/// The detector threshold and endpointing silence when the agent sets none.
const DEFAULT_THRESHOLD: f64 = 0.5;
const DEFAULT_SILENCE_MS: i64 = 500;

/// The cascaded pipeline an agent describes.
pub(crate) fn cascaded(agent: &Agent) -> Result<Pipeline, String> {
    let stt = agent
        .stt
        .clone()
        .ok_or("the agent runs the cascaded pipeline but has no `stt`")?;
    let tts = agent
        .tts
        .clone()
        .ok_or("the agent runs the cascaded pipeline but has no `tts`")?;
    let llm = agent.llm.clone().unwrap_or_default();
    let chat_model = llm
        .model
        .clone()
        .or_else(|| agent.chat_model.clone())
        .unwrap_or_default();
    let (threshold, silence) = match &agent.turn_detection {
        TurnDetection::ServerVad {
            threshold,
            silence_duration_ms,
            ..
        } => (
            threshold.unwrap_or(DEFAULT_THRESHOLD),
            silence_duration_ms.unwrap_or(DEFAULT_SILENCE_MS),
        ),
        TurnDetection::SemanticVad { .. } => (DEFAULT_THRESHOLD, DEFAULT_SILENCE_MS),
    };
    Ok(Pipeline {
        stt,
        llm,
        tts,
        chat_model,
        language: agent.language.clone(),
        threshold,
        silence_ms: silence.clamp(100, 10_000) as u32,
    })
}

/// Opens the model session `agent` asks for, within the setup timeout.
pub(crate) async fn open_model(svc: &VoiceServices, agent: &Agent) -> Result<ModelLink, String> {
    let cfg = &svc.config;
    match agent.voice_pipeline {
        VoicePipeline::Realtime => {
            let key = cfg
                .api_key
                .as_ref()
                .ok_or("SWITCHBOARD_OPENAI_API_KEY is not set")?;
            match timeout(
                cfg.setup_timeout,
                switchboard_realtime::connect(
                    &cfg.realtime_url,
                    &agent.model,
                    key.expose(),
                    cfg.shape,
                ),
            )
            .await
            {
                Ok(Ok(s)) => Ok(ModelLink::from(s)),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("the model did not answer in time".into()),
            }
        }
        VoicePipeline::Cascaded => {
            let pipeline = cascaded(agent)?;
            match timeout(
                cfg.setup_timeout,
                switchboard_cascade::open(pipeline, svc.cascade.clone()),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err("speech-to-text did not answer in time".into()),
            }
        }
    }
}

/// A turn's latency breakdown from the cascaded pipeline, with `sent_ms` (first audio out
/// of the voice to first audio sent to the caller) and `total_ms` (end of speech to first
/// audio sent) from the actor's own measure of the turn.
pub(crate) fn with_last_leg(breakdown: &Value, total_ms: Option<i64>) -> Value {
    let mut b = breakdown.clone();
    if let Some(total) = total_ms {
        b["total_ms"] = json!(total);
        if let Some(to_audio) = breakdown["to_first_audio_ms"].as_i64() {
            b["sent_ms"] = json!((total - to_audio).max(0));
        }
    }
    b
}
