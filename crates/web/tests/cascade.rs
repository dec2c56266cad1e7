//! The cascaded voice pipeline end to end, against fakes that speak Deepgram's, ElevenLabs'
//! and OpenAI's wire protocols and a streaming chat model: greeting, a caller turn from the
//! speech fixtures, a tool, an answer heard before the model finished writing it, barge-in
//! keeping only the words played, the transcript and the per-turn latency breakdown; then
//! provider faults (fallbacks, the apology) and a call in a Piper voice in this process.

mod voice_env;

use switchboard_testkit::chat::{ChatStep, FakeChatModel};
use switchboard_testkit::speech::FakeSpeech;
use voice_env::cascade::*;
use voice_env::*;

const GREETING: &str = "Thanks for calling Acme. How can I help?";
const ANSWER: &str = "Yes. Monday at ten is free, and I can put you down for it right now if you would like me to, and I will send you a text message with the details afterwards.";

backend_test!(a_cascaded_call_runs_end_to_end, |db| {
    let speech = FakeSpeech::start().await;
    let chat = FakeChatModel::start().await;
    let env = cascade_env(db, &speech, &chat).await;
    let org = env
        .org(
            "Acme",
            "+15550001001",
            &["check_availability"],
            Some(GREETING),
        )
        .await;
    env.patch_agent(
        &org,
        cascaded(json!({"provider": "elevenlabs", "voice": VOICE})),
    )
    .await;
    let monday = next_monday_10();
    let date = &monday[..10];
    chat.script([
        ChatStep::Text(GREETING.into()),
        ChatStep::Tools(vec![("check_availability".into(), json!({"date": date}))]),
        ChatStep::Stalled(ANSWER.into()),
        ChatStep::Text("Of course, go ahead.".into()),
    ]);
    speech.hear(&[
        "Hello, I would like to book an appointment for Monday at ten in the morning, please.",
        "Wait, sorry, can I ask something else?",
    ]);
    let sid = "CA00000000000000000000000000000c01";
    let media = env.answer(&org, sid, "+15557770001", 4.0).await;
    let greeting_bytes = GREETING.chars().count() * switchboard_testkit::speech::MS_PER_CHAR * 8;
    media
        .wait_for("the greeting to play", WAIT, |r| {
            r.audio.len() >= greeting_bytes && r.echoed == r.marks.len()
        })
        .await;
    media.play(CALLER_BOOKING);
    // The answer's first sentence is heard while the model is still writing the rest.
    eventually(
        "the first sentence while the model writes",
        WAIT,
        || async {
            let heard = media.snapshot().audio.len();
            (chat.stalled() == 1 && heard > greeting_bytes).then_some(())
        },
    )
    .await;
    let marks_before = media.snapshot().marks.len();
    chat.unstall();
    // The caller speaks over the answer once 1.5 s of it has played (Twilio's marks say).
    media
        .wait_for("the answer to be playing", WAIT, |r| {
            r.echoed > marks_before && played_ms(r) >= 1_500 && r.echoed + 2 < r.marks.len()
        })
        .await;
    media.play(CALLER_INTERRUPT);
    media
        .wait_for("the answer to be cut", WAIT, |r| !r.clears.is_empty())
        .await;
    // The model's next request holds only the words the caller heard of the answer.
    let request = eventually("the request after the interruption", WAIT, || async {
        chat.requests().into_iter().nth(3)
    })
    .await;
    let messages = request["messages"].as_array().expect("messages").clone();
    let cut = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "assistant" && m["content"].is_string())
        .and_then(|m| m["content"].as_str())
        .expect("the cut answer")
        .to_owned();
    assert!(
        cut.len() < ANSWER.len() - 10,
        "only the heard part is kept: {cut:?}"
    );
    assert!(
        ANSWER.starts_with(&cut),
        "whole words from the start: {cut:?}"
    );
    assert!(
        cut.starts_with("Yes. Monday"),
        "what played is kept: {cut:?}"
    );
    let last = messages.last().expect("a last message");
    assert_eq!(last["role"], "user");
    assert_eq!(last["content"], "Wait, sorry, can I ask something else?");
    wait_said(&env, &org, sid, "Of course, go ahead.").await;
    media.stop();
    env.wait_ended(&org, sid).await;

    let items = env.transcript(&org, sid).await;
    let got = texts_of(&items);
    let expect_prefix = [
        ("assistant:message".to_owned(), GREETING.to_owned()),
        (
            "user:message".to_owned(),
            "Hello, I would like to book an appointment for Monday at ten in the morning, please."
                .to_owned(),
        ),
        (
            "assistant:function_call".to_owned(),
            "check_availability".to_owned(),
        ),
        (
            "tool:function_output".to_owned(),
            "check_availability".to_owned(),
        ),
    ];
    assert_eq!(&got[..4], &expect_prefix, "{got:#?}");
    assert_eq!(
        got[5],
        (
            "user:message".to_owned(),
            "Wait, sorry, can I ask something else?".to_owned()
        ),
        "{got:#?}"
    );
    // The tool ran for real and found the slot free.
    let output = &items[3].content["output"];
    assert!(output.to_string().contains("10:00"), "{output}");
    // Each answer to a caller's turn carries where its time went.
    let answer = items
        .iter()
        .find(|m| m.content["text"] == "Of course, go ahead.")
        .expect("the last answer");
    let b = &answer.content["latency_breakdown"];
    for leg in [
        "transcript_ms",
        "first_token_ms",
        "first_audio_ms",
        "sent_ms",
        "total_ms",
    ] {
        assert!(b[leg].is_u64(), "{leg} in {b}");
    }
    // The providers were spoken to as their protocols ask.
    let listen = &speech.listens()[0];
    assert_eq!(listen.get("encoding").map(String::as_str), Some("mulaw"));
    assert_eq!(listen.get("sample_rate").map(String::as_str), Some("8000"));
    assert_eq!(
        listen.get("interim_results").map(String::as_str),
        Some("true")
    );
    assert_eq!(listen.get("endpointing").map(String::as_str), Some("500"));
    let tts = speech.tts_queries();
    assert!(tts
        .iter()
        .all(|q| q.get("output_format").map(String::as_str) == Some("ulaw_8000")));
    let answer_texts = speech
        .tts_texts()
        .into_iter()
        .find(|t| t.first().is_some_and(|s| s.starts_with("Yes.")))
        .expect("the answer's voice session");
    assert_eq!(answer_texts[0], "Yes. ", "the first sentence went alone");

    // The call page shows the breakdown.
    let admin = env.dashboard_admin(&org, "owner@acme.test").await;
    let call = env.call_of(&org, sid).await;
    let page = admin.get(&format!("/calls/{}", call.id)).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("latency-breakdown"),
        "the breakdown is on the page"
    );
    assert!(page.body.contains("first audio"));
    assert_eq!(env.metric("switchboard_cascade_sessions_total").await, 1);
    assert_eq!(env.metric("switchboard_cascade_turns_total").await, 2);
    assert_eq!(env.metric("switchboard_cascade_interrupted_total").await, 1);
    // The greeting, the tool call, the answer, the last answer.
    assert_eq!(env.metric("switchboard_cascade_answers_total").await, 4);
});

backend_test!(
    failing_providers_fall_back_or_apologise_and_the_call_goes_on,
    |db| {
        let speech = FakeSpeech::start().await;
        let chat = FakeChatModel::start().await;
        let env = cascade_env(db, &speech, &chat).await;
        let org = env.org("Acme", "+15550001001", &[], Some(GREETING)).await;
        env.patch_agent(
        &org,
        json!({
            "voice_pipeline": "cascaded",
            "stt": {"provider": "deepgram", "fallback": {"provider": "openai"}},
            "tts": {"provider": "elevenlabs", "voice": VOICE, "fallback": {"provider": "openai", "voice": "alloy"}},
            "llm": {"apology": "Sorry, one moment please. Could you repeat that?"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
        }),
    )
    .await;
        // Deepgram and ElevenLabs are down: OpenAI transcribes and speaks instead.
        speech.deepgram_down(true);
        speech.elevenlabs_down(true);
        chat.script([
            ChatStep::Text(GREETING.into()),
            ChatStep::Fail(500),
            ChatStep::Text("Sure, Monday at ten works.".into()),
        ]);
        speech.hear(&["I would like an appointment.", "Monday at ten, please."]);
        let sid = "CA00000000000000000000000000000c02";
        let media = env.answer(&org, sid, "+15557770002", 8.0).await;
        let greeting_bytes =
            GREETING.chars().count() * switchboard_testkit::speech::MS_PER_CHAR * 8;
        media
            .wait_for("the greeting in the fallback voice", WAIT, |r| {
                r.audio.len() >= greeting_bytes * 9 / 10 && r.echoed == r.marks.len()
            })
            .await;
        let before_apology = media.snapshot().audio.len();
        media.play(CALLER_BOOKING);
        // The chat model fails: the caller hears the agent's apology, and the call goes on.
        wait_said(
            &env,
            &org,
            sid,
            "Sorry, one moment please. Could you repeat that?",
        )
        .await;
        media
            .wait_for("the apology to play", WAIT, |r| {
                r.audio.len() > before_apology && r.echoed == r.marks.len()
            })
            .await;
        media.play(CALLER_BOOKING);
        wait_said(&env, &org, sid, "Sure, Monday at ten works.").await;
        media.stop();
        let call = env.wait_ended(&org, sid).await;
        assert_eq!(call.status.as_str(), "completed", "{:?}", call.error);
        let items = env.transcript(&org, sid).await;
        let users: Vec<&str> = items
            .iter()
            .filter(|m| m.role.as_str() == "user")
            .filter_map(|m| m.content["text"].as_str())
            .collect();
        assert_eq!(
            users,
            ["I would like an appointment.", "Monday at ten, please."]
        );
        assert_eq!(speech.transcriptions(), 2, "OpenAI transcribed both turns");
        assert!(speech.listens().is_empty(), "Deepgram was never reached");
        let spoken: Vec<String> = speech
            .speech_requests()
            .iter()
            .filter_map(|r| r["input"].as_str().map(str::to_owned))
            .collect();
        assert!(
            spoken
                .iter()
                .any(|t| t.contains("could repeat") || t.contains("Could you repeat")),
            "{spoken:?}"
        );
        assert_eq!(
            env.metric("switchboard_cascade_stt_fallbacks_total").await,
            1
        );
        assert!(env.metric("switchboard_cascade_tts_fallbacks_total").await >= 3);
        assert_eq!(env.metric("switchboard_cascade_apologies_total").await, 1);
        assert!(speech
            .speech_requests()
            .iter()
            .all(|r| r["voice"] == "alloy" && r["response_format"] == "pcm"));
    }
);

backend_test!(
    a_voice_that_cannot_speak_ends_the_call_with_the_apology,
    |db| {
        let speech = FakeSpeech::start().await;
        let chat = FakeChatModel::start().await;
        let env = cascade_env(db, &speech, &chat).await;
        let org = env.org("Acme", "+15550001001", &[], Some(GREETING)).await;
        env.patch_agent(
            &org,
            cascaded(json!({"provider": "elevenlabs", "voice": VOICE})),
        )
        .await;
        speech.elevenlabs_down(true);
        chat.script([
            ChatStep::Text(GREETING.into()),
            ChatStep::Text(GREETING.into()),
        ]);
        let sid = "CA00000000000000000000000000000c03";
        let media = env.answer(&org, sid, "+15557770003", 8.0).await;
        env.rest.attach(&media);
        let call = env.wait_ended(&org, sid).await;
        assert_eq!(call.status.as_str(), "failed");
        assert_eq!(call.end_reason.as_deref(), Some("model_error"));
        assert!(
            call.error
                .as_deref()
                .unwrap_or_default()
                .contains("tts_unavailable"),
            "{:?}",
            call.error
        );
        // No dead air: Twilio is told to say the apology and hang up.
        assert_apology(&env.wait_rest(1).await[0]);
    }
);

backend_test!(a_call_in_a_piper_voice_through_onnx_runtime, |db| {
    // The voice runs in this process: ONNX Runtime and a voice from .ci/install-offline.
    let (Some(lib), Some(voices)) = (
        std::env::var_os("SWITCHBOARD_TEST_ONNXRUNTIME"),
        std::env::var_os("SWITCHBOARD_TEST_PIPER_VOICES"),
    ) else {
        eprintln!("SWITCHBOARD_TEST_ONNXRUNTIME and SWITCHBOARD_TEST_PIPER_VOICES are not set (.ci/install-offline prints them): the Piper call is not checked");
        return;
    };
    let speech = FakeSpeech::start().await;
    let chat = FakeChatModel::start().await;
    speech.add_deepgram_key(DEEPGRAM_KEY);
    let (speech_url, chat_url) = (speech.url.clone(), chat.url.clone());
    let env = env_with(db, Behavior::default(), move |c| {
        c.llm.base_url = chat_url;
        c.llm.api_key = Some(Secret::new("sk-test-chat-key"));
        c.voice.speech.deepgram_api_url = speech_url;
        c.voice.speech.deepgram_api_key = Some(Secret::new(DEEPGRAM_KEY));
        c.voice.speech.offline = switchboard_cascade::offline::OfflineConfig {
            onnxruntime: Some(lib.into()),
            piper_voices: Some(voices.into()),
            threads: 1,
            ..Default::default()
        };
    })
    .await;
    let org = env.org("Acme", "+15550001001", &[], Some(GREETING)).await;
    // An unknown voice is refused at save; the stand-in is taken.
    let (status, body) = try_patch(
        &env,
        &org,
        cascaded(json!({"provider": "piper", "voice": "en_US-nobody-medium"})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["field"], "tts.voice", "{body}");
    env.patch_agent(
        &org,
        cascaded(json!({"provider": "piper", "voice": "standin"})),
    )
    .await;
    chat.script([
        ChatStep::Text(GREETING.into()),
        ChatStep::Text("Monday at ten is free.".into()),
    ]);
    speech.hear(&["Is Monday at ten free?"]);
    let sid = "CA00000000000000000000000000000c09";
    let media = env.answer(&org, sid, "+15557770009", 8.0).await;
    media
        .wait_for("the greeting in the Piper voice", WAIT, |r| {
            r.audio.len() > 8_000 && r.echoed == r.marks.len()
        })
        .await;
    let greeting = media.snapshot().audio.len();
    media.play(CALLER_BOOKING);
    wait_said(&env, &org, sid, "Monday at ten is free.").await;
    media
        .wait_for("the answer to play", WAIT, |r| {
            r.audio.len() > greeting + 4_000 && r.echoed == r.marks.len()
        })
        .await;
    media.stop();
    env.wait_ended(&org, sid).await;
    // What the caller heard is the voice's tone (400 Hz), resampled to the phone.
    let audio = media.snapshot().audio;
    let pcm: Vec<i16> = audio[..greeting]
        .iter()
        .map(|u| switchboard_cascade::audio::ulaw_to_pcm(*u))
        .collect();
    let crossings = pcm.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    let per_second = crossings * 8_000 / pcm.len().max(1);
    assert!(
        (700..=860).contains(&per_second),
        "{per_second} crossings a second"
    );
});

backend_test!(
    a_chat_model_too_slow_for_its_first_word_is_replaced_by_the_apology,
    |db| {
        let speech = FakeSpeech::start().await;
        let chat = FakeChatModel::start().await;
        let env = cascade_env(db, &speech, &chat).await;
        let org = env.org("Acme", "+15550001001", &[], Some(GREETING)).await;
        env.patch_agent(
            &org,
            json!({
                "voice_pipeline": "cascaded",
                "stt": {"provider": "deepgram"},
                "tts": {"provider": "elevenlabs", "voice": VOICE},
                "llm": {"first_token_timeout_ms": 500, "apology": "Sorry, one moment."},
            }),
        )
        .await;
        // The model takes five seconds to say anything: the caller hears the apology instead.
        chat.set_delay(Duration::from_secs(5));
        let sid = "CA00000000000000000000000000000c05";
        let media = env.answer(&org, sid, "+15557770005", 8.0).await;
        wait_said(&env, &org, sid, "Sorry, one moment.").await;
        media
            .wait_for("the apology to play", WAIT, |r| !r.audio.is_empty())
            .await;
        assert_eq!(env.metric("switchboard_cascade_apologies_total").await, 1);
        media.stop();
        let call = env.wait_ended(&org, sid).await;
        assert_eq!(
            call.status.as_str(),
            "completed",
            "the call went on: {:?}",
            call.error
        );
    }
);
