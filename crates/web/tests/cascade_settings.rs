//! A cascaded agent's settings: what is checked when it is saved (voice names where ids
//! belong, unknown voices, keys the providers refuse, what the pipeline needs) and the
//! dashboard's pipeline fields, which keep what only the API sets.

mod voice_env;

use switchboard_testkit::chat::FakeChatModel;
use switchboard_testkit::speech::FakeSpeech;
use voice_env::cascade::*;
use voice_env::*;

/// Saving `body` is refused on `field`, with a message that says `says`.
async fn refused(env: &Env<'_>, org: &Org, body: Value, field: &str, says: &str) {
    let (status, answer) = try_patch(env, org, body).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["field"], field, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{answer}");
}

backend_test!(saving_an_agent_checks_voice_ids_and_provider_keys, |db| {
    let speech = FakeSpeech::start().await;
    let chat = FakeChatModel::start().await;
    let env = cascade_env(db, &speech, &chat).await;
    let org = env.org("Acme", "+15550001001", &[], None).await;
    // A voice's name where its id belongs.
    refused(
        &env,
        &org,
        cascaded(json!({"provider": "elevenlabs", "voice": "Rachel"})),
        "tts.voice",
        "not the voice's name",
    )
    .await;
    // An id ElevenLabs does not know.
    refused(
        &env,
        &org,
        cascaded(json!({"provider": "elevenlabs", "voice": "AAAAAAAAAAAAAAAAAAAA"})),
        "tts.voice",
        "has no voice",
    )
    .await;
    // The cascaded pipeline needs speech-to-text.
    refused(
        &env,
        &org,
        json!({"voice_pipeline": "cascaded", "tts": {"provider": "openai", "voice": "alloy"}}),
        "stt",
        "is required when `voice_pipeline` is `cascaded`",
    )
    .await;
    // A known voice saves, and reads back.
    let (status, body) = try_patch(
        &env,
        &org,
        cascaded(json!({"provider": "elevenlabs", "voice": VOICE})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["voice_pipeline"], "cascaded");
    assert_eq!(body["tts"]["voice"], VOICE);
    assert_eq!(body["stt"]["provider"], "deepgram");

    // A server whose keys the providers refuse says so at save.
    let other = FakeSpeech::start().await;
    other.add_elevenlabs_key("another-key", &[VOICE]);
    let other_env = server_of(db, &other, &chat).await;
    let org2 = other_env.org("Beta", "+15550001002", &[], None).await;
    refused(
        &other_env,
        &org2,
        cascaded(json!({"provider": "elevenlabs", "voice": VOICE})),
        "tts.provider",
        "SWITCHBOARD_ELEVENLABS_API_KEY",
    )
    .await;
    refused(
        &other_env,
        &org2,
        cascaded(json!({"provider": "openai", "voice": "alloy"})),
        "stt.provider",
        "SWITCHBOARD_DEEPGRAM_API_KEY",
    )
    .await;
});

backend_test!(
    the_dashboard_sets_the_pipeline_and_keeps_what_it_does_not_show,
    |db| {
        let speech = FakeSpeech::start().await;
        let chat = FakeChatModel::start().await;
        let env = cascade_env(db, &speech, &chat).await;
        let org = env.org("Acme", "+15550001001", &[], None).await;
        // Fallbacks and the apology are set through the API.
        env.patch_agent(
        &org,
        json!({"tts": {"provider": "openai", "voice": "alloy", "fallback": {"provider": "openai", "voice": "sage"}},
               "llm": {"apology": "One moment, please."}}),
    )
    .await;
        let admin = env.dashboard_admin(&org, "owner@acme.test").await;
        let page = format!("/agents/{}", org.agent);
        let shown = admin.get(&page).await;
        assert!(
            shown.body.contains("voice-pipeline"),
            "the pipeline fieldset is shown"
        );
        let form = |pipeline: &'static str, voice: &'static str| {
            vec![
                ("name", "Reception"),
                ("instructions", "Answer the phone."),
                ("voice", "marin"),
                ("model", "gpt-realtime"),
                ("vad", "server_vad"),
                ("silence_duration_ms", "600"),
                ("max_call_duration_seconds", "1800"),
                ("analysis_fields", "[]"),
                ("voicemail", "hangup"),
                ("contact_scope", "caller"),
                ("voice_pipeline", pipeline),
                ("stt_provider", "openai"),
                ("stt_model", ""),
                ("llm_model", "fake-chat-2"),
                ("tts_provider", "elevenlabs"),
                ("tts_voice", voice),
                ("tts_model", ""),
            ]
        };
        // A voice's name is refused beside the voice field, and nothing is saved.
        let refused = admin
            .submit(&page, &page, &form("cascaded", "Rachel"))
            .await;
        assert_eq!(refused.status, 422);
        assert!(
            refused.body.contains("not the voice&#39;s name")
                || refused.body.contains("not the voice's name"),
            "{}",
            refused.body
        );
        let saved = admin.submit(&page, &page, &form("cascaded", VOICE)).await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        let key = env.key(&org).await;
        let agent: Value = env
            .http
            .get(format!("{}/api/v1/agents/{}", env.base, org.agent))
            .bearer_auth(&key)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        assert_eq!(agent["voice_pipeline"], "cascaded");
        assert_eq!(agent["stt"]["provider"], "openai");
        assert_eq!(agent["tts"]["provider"], "elevenlabs");
        assert_eq!(agent["tts"]["voice"], VOICE);
        assert_eq!(
            agent["tts"]["fallback"]["voice"], "sage",
            "the fallback is kept"
        );
        assert_eq!(agent["llm"]["model"], "fake-chat-2");
        assert_eq!(
            agent["llm"]["apology"], "One moment, please.",
            "the apology is kept"
        );
        assert_eq!(agent["turn_detection"]["silence_duration_ms"], 600);
    }
);
