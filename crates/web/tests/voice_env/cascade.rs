//! What the cascaded pipeline's suites share: a server pointed at fake speech providers and
//! a streaming chat model, and shortcuts for an agent's pipeline.

use super::*;
use switchboard_testkit::chat::FakeChatModel;
use switchboard_testkit::speech::FakeSpeech;

pub const VOICE: &str = "21m00Tcm4TlvDq8ikWAM";
pub const DEEPGRAM_KEY: &str = "dg-test-key";
pub const ELEVENLABS_KEY: &str = "el-test-key";
pub const OPENAI_KEY: &str = "sk-test-model-key";

/// A server whose cascaded agents use `speech` (which knows the keys) and `chat`.
pub async fn cascade_env<'a>(db: &'a TestDb, speech: &FakeSpeech, chat: &FakeChatModel) -> Env<'a> {
    speech.add_deepgram_key(DEEPGRAM_KEY);
    speech.add_elevenlabs_key(ELEVENLABS_KEY, &[VOICE]);
    speech.add_openai_key(OPENAI_KEY);
    server_of(db, speech, chat).await
}

/// A server pointed at `speech` and `chat`, with the test keys configured.
pub async fn server_of<'a>(db: &'a TestDb, speech: &FakeSpeech, chat: &FakeChatModel) -> Env<'a> {
    let (speech_url, chat_url) = (speech.url.clone(), chat.url.clone());
    env_with(db, Behavior::default(), move |c| {
        c.tools_allow_private = true;
        c.llm.base_url = chat_url;
        c.llm.api_key = Some(Secret::new("sk-test-chat-key"));
        c.llm.model = "fake-chat-1".into();
        c.voice.speech = switchboard_voice::SpeechConfig {
            openai_api_url: format!("{speech_url}/v1"),
            deepgram_api_url: speech_url.clone(),
            deepgram_api_key: Some(Secret::new(DEEPGRAM_KEY)),
            elevenlabs_api_url: speech_url,
            elevenlabs_api_key: Some(Secret::new(ELEVENLABS_KEY)),
            offline: Default::default(),
        };
    })
    .await
}

/// `PATCH /api/v1/agents/{org's agent}` with `body`: the status and the answer.
pub async fn try_patch(env: &Env<'_>, org: &Org, body: Value) -> (u16, Value) {
    let key = env.key(org).await;
    let res = env
        .http
        .patch(format!("{}/api/v1/agents/{}", env.base, org.agent))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("patch");
    let status = res.status().as_u16();
    (status, res.json::<Value>().await.expect("json"))
}

pub fn cascaded(tts: Value) -> Value {
    json!({
        "voice_pipeline": "cascaded",
        "stt": {"provider": "deepgram"},
        "tts": tts,
        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
    })
}

pub fn texts_of(items: &[switchboard_domain::entities::Message]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|m| {
            let text = m.content["text"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| m.content["name"].as_str().map(str::to_owned))
                .unwrap_or_default();
            (format!("{}:{}", m.role.as_str(), m.kind.as_str()), text)
        })
        .collect()
}

/// Waits until the call's transcript has an item saying `text`.
pub async fn wait_said(env: &Env<'_>, org: &Org, call_sid: &str, text: &str) {
    eventually(text, WAIT, || async {
        let items = env.transcript(org, call_sid).await;
        items
            .iter()
            .any(|m| m.content["text"] == text)
            .then_some(())
    })
    .await;
}
