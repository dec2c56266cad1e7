//! Talking to the assistant, on both backends, with a client that speaks Media Streams as the
//! page's call.js does and the fake Realtime model: the session is configured with the
//! assistant's instructions and tools; a change asked for aloud is only proposed (the page is
//! shown the card); "Sure." does not confirm it (the tool checks the words); "Yes, do it." in
//! a later utterance does, once; the person talking over the assistant clears the page's
//! audio and cuts the model's item where it was heard; the conversation is kept in the
//! assistant session. The socket needs the session's CSRF token; a member gets read tools
//! only. (The page in a browser: `browser_assistant.rs`.)

mod voice_env;

use switchboard_domain::values::Role;
use voice_env::tools::{csrf_of, DashUser};
use voice_env::*;

/// `POST /assistant/voice` from the page.
async fn start(user: &DashUser, session: &str, csrf: Option<&str>) -> (u16, Value) {
    let mut req = user
        .http
        .post(format!("{}/assistant/voice", user.base))
        .header(reqwest::header::COOKIE, &user.cookie)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(json!({ "session_id": session }).to_string());
    if let Some(c) = csrf {
        req = req.header("x-csrf-token", c);
    }
    let res = req.send().await.expect("post");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Opens the socket `start` answered, as the page does.
async fn open(env: &Env<'_>, user: &DashUser, started: &Value) -> Result<MediaCall, String> {
    let path = started["media_path"].as_str().expect("path");
    MediaCall::connect_with(
        &format!("{}{path}", env.ws),
        &[("cookie", user.cookie.as_str())],
        started["call_sid"].as_str().expect("sid"),
        &[],
        Duration::from_millis(20),
        1.0,
    )
    .await
}

/// The assistant frames the page was sent.
fn shown(media: &MediaCall) -> Vec<Value> {
    media
        .snapshot()
        .frames
        .into_iter()
        .filter(|f| f["event"] == "assistant")
        .map(|f| f["data"].clone())
        .collect()
}

async fn greeting_of(env: &Env<'_>, key: &str, org: &Org) -> Value {
    env.agent_of(key, org).await["greeting"].clone()
}

/// Plays one utterance once the assistant's audio so far has been heard, and waits for
/// `outputs` function results in all.
async fn utter(env: &Env<'_>, media: &MediaCall, outputs: usize) {
    media
        .wait_for("the assistant heard out", WAIT, |r| {
            r.echoed >= r.marks.len()
        })
        .await;
    media.play_at(CALLER_BOOKING, Duration::from_millis(5));
    eventually("the function result", WAIT, || async {
        (env.outputs().len() >= outputs).then_some(())
    })
    .await;
}

backend_test!(a_change_asked_aloud_waits_for_an_explicit_yes, |db| {
    let env = env(db, Behavior::default()).await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    env.model.set_behavior(Behavior {
        steps: vec![
            // The greeting: long, so the person's first words come while it plays.
            said(AGENT_REPLY, "Hello, what can I do for you?"),
            Step::Call(
                "update_agent".into(),
                json!({"agent_id": org.agent.as_str(), "greeting": "Good day!"}),
            ),
            said(AGENT_SHORT, "I will change the greeting. Say yes, do it."),
            Step::Call(
                "confirm_action".into(),
                json!({"action_id": "$output/pending_action/id"}),
            ),
            said(AGENT_SHORT, "Please say yes, do it, to confirm."),
            Step::Call(
                "confirm_action".into(),
                json!({"action_id": "$output/pending_action/id"}),
            ),
            said(AGENT_SHORT, "Done."),
        ],
        transcripts: vec![
            "Change the greeting to Good day.".into(),
            "Sure.".into(),
            "Yes, do it.".into(),
        ],
        ..Behavior::default()
    });
    let key = env.key(&org).await;
    let before = greeting_of(&env, &key, &org).await;
    let admin = env.dashboard_admin(&org, "admin@alpha.test").await;
    let page = admin.get("/assistant?session=voice-1").await;
    assert!(
        page.body.contains("id=\"assistant-voice\""),
        "the Talk panel"
    );
    let csrf = csrf_of(&page.body);

    // Refusals: no CSRF header; the socket without the session's token, or with another.
    assert_eq!(start(&admin, "voice-1", None).await.0, 400);
    let (status, started) = start(&admin, "voice-1", Some(&csrf)).await;
    assert_eq!(status, 200, "{started}");
    let path = started["media_path"].as_str().expect("path").to_owned();
    assert!(path.starts_with("/assistant/voice/stream?session=voice-1&csrf="));
    let forged = json!({"call_sid": "WBx", "media_path": "/assistant/voice/stream?session=voice-1&csrf=guess"});
    assert!(open(&env, &admin, &forged).await.is_err(), "a wrong token");
    let foreign = json!({"call_sid": "WBx", "media_path": path.clone()});
    let stranger = env.dashboard_admin(&org, "other@alpha.test").await;
    assert!(
        open(&env, &stranger, &foreign).await.is_err(),
        "another person's token"
    );
    assert!(
        env.model.sessions().is_empty(),
        "no model session for a refused socket"
    );

    let media = open(&env, &admin, &started).await.expect("socket");
    let update = env.wait_model_event("session.update", 1).await;
    let session = &update[0]["session"];
    let instructions = session["instructions"].as_str().expect("instructions");
    assert!(instructions.contains("operator assistant of Alpha"));
    assert!(instructions.contains("yes, do it"));
    let tools: Vec<&str> = session["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for t in ["update_agent", "confirm_action", "activity_summary"] {
        assert!(tools.contains(&t), "{t} in {tools:?}");
    }
    // The greeting plays; the person talks over it: the page's queue is cleared and the
    // model's item cut where it was heard.
    media
        .wait_for("the greeting's first audio", WAIT, |r| !r.audio.is_empty())
        .await;
    media.play_at(CALLER_BOOKING, Duration::from_millis(5));
    let truncated = env.wait_model_event("conversation.item.truncate", 1).await;
    let heard_ms = truncated[0]["audio_end_ms"].as_u64().expect("ms");
    assert!(
        heard_ms < (AGENT_REPLY.len() / 8) as u64,
        "cut at {heard_ms} ms of {}",
        AGENT_REPLY.len() / 8
    );
    assert!(!media.snapshot().clears.is_empty(), "the page was cleared");
    eventually("the proposal", WAIT, || async {
        (!env.outputs().is_empty()).then_some(())
    })
    .await;
    let proposal = &env.outputs()[0];
    assert_eq!(proposal["ok"], true, "{proposal}");
    let action_id = proposal["pending_action"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    eventually("the card on the page", WAIT, || async {
        shown(&media)
            .iter()
            .any(|e| e["type"] == "action" && e["id"] == action_id.as_str())
            .then_some(())
    })
    .await;
    assert_eq!(greeting_of(&env, &key, &org).await, before, "nothing yet");

    // "Sure." is not a confirmation.
    utter(&env, &media, 2).await;
    let refused = &env.outputs()[1];
    assert_eq!(
        refused["error"]["code"], "confirmation_not_spoken",
        "{refused}"
    );
    assert_eq!(greeting_of(&env, &key, &org).await, before);

    // "Yes, do it." is, once.
    utter(&env, &media, 3).await;
    let done = &env.outputs()[2];
    assert_eq!(done["ok"], true, "{done}");
    assert_eq!(done["action"]["status"], "done");
    assert_eq!(greeting_of(&env, &key, &org).await, json!("Good day!"));
    let (status, again) = env
        .call_api(
            reqwest::Method::POST,
            &key,
            &format!("/api/v1/assistant/actions/{action_id}/confirm"),
            None,
        )
        .await;
    assert_eq!(status, 403, "an API key is not the person: {again}");
    media
        .wait_for("the last answer", WAIT, |r| r.echoed >= r.marks.len())
        .await;
    let page_events = shown(&media);
    assert!(page_events
        .iter()
        .any(|e| e["type"] == "heard" && e["text"] == "Yes, do it."));
    assert!(page_events
        .iter()
        .any(|e| e["type"] == "tool_finished" && e["name"] == "confirm_action"));
    media.stop();

    // The conversation is in the session, for the page and the text chat.
    let kept = eventually("the session kept", WAIT, || async {
        let page = admin.get("/assistant?session=voice-1").await.body;
        page.contains("Done.").then_some(page)
    })
    .await;
    for words in ["Change the greeting to Good day.", "Sure.", "Yes, do it."] {
        assert!(kept.contains(words), "{words}");
    }
    assert!(kept.contains("data-status=\"done\""), "the card is done");
});

backend_test!(members_talk_read_only, |db| {
    let env = env(db, Behavior::default()).await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    let member = env
        .dashboard_user(&org, "max@alpha.test", Role::Member)
        .await;
    let page = member.get("/assistant").await;
    let csrf = csrf_of(&page.body);
    let (status, started) = start(&member, "m-1", Some(&csrf)).await;
    assert_eq!(status, 200, "{started}");
    let media = open(&env, &member, &started).await.expect("socket");
    let update = env.wait_model_event("session.update", 1).await;
    let tools: Vec<&str> = update[0]["session"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(tools.contains(&"activity_summary"), "{tools:?}");
    for t in ["update_agent", "confirm_action", "text_contacts"] {
        assert!(!tools.contains(&t), "{t} offered to a member");
    }
    media.stop();
});

backend_test!(
    without_a_speech_model_talking_is_refused_with_the_reason,
    |db| {
        let env = env_with(db, Behavior::default(), |c| c.voice.api_key = None).await;
        let org = env.org("Alpha", "+15550001001", &[], None).await;
        let admin = env.dashboard_admin(&org, "admin@alpha.test").await;
        let page = admin.get("/assistant").await;
        assert!(page.body.contains("no speech model is configured"));
        let (status, body) = start(&admin, "s", Some(&csrf_of(&page.body))).await;
        assert_eq!(status, 503);
        assert_eq!(body["code"], "assistant_unavailable");
    }
);
