//! Cold transfers end to end through the fakes: Twilio dials the target with `<Dial action>`,
//! and its callback settles the transfer. Busy brings the caller back to the agent on a new
//! stream whose new model session carries the conversation and knows why; answered ends the
//! call `transferred`; the caller hanging up while it rings ends it `caller_hung_up`. Every
//! step is a transcript item and a `call.transfer_*` event, in order.

mod voice_env;

use switchboard_testkit::twilio::DialScript;
use voice_env::*;

const TARGET: &str = "+15550009999";

/// The organization's `call.*` event types so far, in sequence order.
async fn call_events(env: &Env<'_>, key: &str) -> Vec<String> {
    let (status, page) = env
        .call_api(reqwest::Method::GET, key, "/api/v1/events?limit=1000", None)
        .await;
    assert_eq!(status, 200, "{page}");
    page["data"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().expect("type").to_owned())
        .filter(|t| t.starts_with("call.") && t != "call.analyzed")
        .collect()
}

async fn transfer_env<'a>(db: &'a TestDb, steps: Vec<Step>) -> (Env<'a>, Org, String) {
    let env = env(
        db,
        Behavior {
            steps,
            transcripts: vec!["Put me through to billing.".into()],
            ..Behavior::default()
        },
    )
    .await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    env.patch_agent(
        &org,
        json!({"tools": ["transfer_call"], "transfer_number": TARGET,
            "transfer_message": "Connecting you now."}),
    )
    .await;
    env.rest
        .connect_server(PUBLIC, &env.base, &env.ws, &org.token);
    let key = env.key(&org).await;
    (env, org, key)
}

backend_test!(
    a_busy_transfer_brings_the_caller_back_and_an_answered_one_ends_the_call,
    |db| {
        let (env, org, key) =
            transfer_env(db, vec![Step::Call("transfer_call".into(), json!({}))]).await;
        env.rest
            .script_dial(TARGET, [DialScript::Busy, DialScript::Complete(42)]);
        let sid = "CA00000000000000000000000000000501";
        let media = env.answer(&org, sid, "+15557770501", 20.0).await;
        env.rest.attach(&media);
        env.wait_model_event("session.update", 1).await;
        // The session the caller comes back to speaks first, then transfers again when asked.
        env.model.set_behavior(Behavior {
            steps: vec![
                said(AGENT_SHORT, "Sorry, billing is busy. Can I help?"),
                Step::Call("transfer_call".into(), json!({})),
            ],
            transcripts: vec!["Please try them again.".into()],
            ..Behavior::default()
        });
        media.play_at(CALLER_BOOKING, Duration::from_millis(5));

        // Twilio dials with an action; the target is busy; the caller is reconnected.
        let back = env.rest.resumed(sid, 0, WAIT).await;
        let dials = env.rest.dials();
        assert_eq!(dials[0].target, TARGET);
        assert_eq!(dials[0].caller_id.as_deref(), Some("+15550001001"));
        let action = dials[0].action.clone().expect("an action URL");
        let call = env.call_of(&org, sid).await;
        assert_eq!(
            action,
            format!("{PUBLIC}/twilio/voice/dial?call_id={}", call.id)
        );
        back.wait_for("the agent to speak first", WAIT, |r| {
            r.audio.len() >= AGENT_SHORT.len()
        })
        .await;
        assert_eq!(env.model.sessions().len(), 2, "a new model session");
        let call = env.call_of(&org, sid).await;
        assert!(call.ended_at.is_none());
        let transfer = call.transfer.expect("transfer");
        assert_eq!(
            (transfer.status.as_str(), transfer.outcome.as_deref()),
            ("failed", Some("busy"))
        );
        // The new session was given the conversation, and why the caller is back, before its
        // first answer.
        let replayed: Vec<Value> = env.model.sessions()[1]
            .events
            .iter()
            .filter(|e| e["type"] == "conversation.item.create")
            .map(|e| e["item"].clone())
            .collect();
        let texts: Vec<String> = replayed
            .iter()
            .map(|i| {
                i["content"][0]["text"]
                    .as_str()
                    .unwrap_or(i["type"].as_str().unwrap_or_default())
                    .to_owned()
            })
            .collect();
        assert_eq!(replayed[0]["role"], "user", "{replayed:?}");
        assert_eq!(texts[0], "Put me through to billing.");
        assert_eq!(texts[1], "function_call");
        assert_eq!(texts[2], "function_call_output");
        assert!(texts[3].contains("Transferring the call to"), "{texts:?}");
        assert_eq!(replayed[4]["role"], "system");
        assert!(texts[4].contains("the line was busy"), "{texts:?}");

        // The caller asks again; this time the target answers, talks, and the call is over.
        back.wait_for("the answer to play", WAIT, |r| r.echoed == r.marks.len())
            .await;
        back.play_at(CALLER_BOOKING, Duration::from_millis(5));
        let ended = env.wait_ended(&org, sid).await;
        assert_eq!(ended.end_reason.as_deref(), Some("transferred"));
        let transfer = ended.transfer.expect("transfer");
        assert_eq!(
            (transfer.status.as_str(), transfer.outcome.as_deref()),
            ("completed", Some("completed"))
        );
        assert_eq!(env.rest.dials().len(), 2);
        let events = call_events(&env, &key).await;
        assert_eq!(
            events,
            [
                "call.started",
                "call.transfer_started",
                "call.transfer_failed",
                "call.transfer_started",
                "call.transfer_completed",
                "call.ended"
            ]
        );
        // The transcript tells the story in order.
        let items: Vec<(String, String)> = env
            .transcript(&org, sid)
            .await
            .iter()
            .map(|m| {
                (
                    m.role.as_str().to_owned(),
                    m.content["text"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .filter(|(role, _)| role != "tool")
            .collect();
        let system: Vec<&str> = items
            .iter()
            .filter(|(r, _)| r == "system")
            .map(|(_, t)| t.as_str())
            .collect();
        assert_eq!(system.len(), 3, "{items:?}");
        assert!(system[0].starts_with("Transferring the call to +15550009999"));
        assert!(system[1].contains("the line was busy"));
        assert!(system[2].starts_with("Transferring the call to +15550009999"));
        assert!(
            items
                .iter()
                .any(|(r, t)| r == "assistant" && t == "Sorry, billing is busy. Can I help?"),
            "{items:?}"
        );
    }
);

backend_test!(
    a_caller_who_hangs_up_while_the_transfer_rings_ends_the_call,
    |db| {
        let (env, org, key) =
            transfer_env(db, vec![Step::Call("transfer_call".into(), json!({}))]).await;
        env.rest.script_dial(TARGET, [DialScript::CallerHangsUp]);
        let sid = "CA00000000000000000000000000000502";
        let media = env.answer(&org, sid, "+15557770502", 20.0).await;
        env.rest.attach(&media);
        env.wait_model_event("session.update", 1).await;
        media.play_at(CALLER_BOOKING, Duration::from_millis(5));
        let ended = env.wait_ended(&org, sid).await;
        assert_eq!(ended.end_reason.as_deref(), Some("caller_hung_up"));
        let transfer = ended.transfer.expect("transfer");
        assert_eq!(
            (transfer.status.as_str(), transfer.outcome.as_deref()),
            ("failed", Some("canceled"))
        );
        // Twilio's own status callback afterwards changes nothing.
        assert_eq!(
            env.status(&org, sid, "completed", "9", &[("CallDuration", "20")])
                .await,
            204
        );
        assert_eq!(
            env.call_of(&org, sid).await.end_reason.as_deref(),
            Some("caller_hung_up")
        );
        let events = call_events(&env, &key).await;
        assert_eq!(
            events,
            [
                "call.started",
                "call.transfer_started",
                "call.transfer_failed",
                "call.ended"
            ]
        );
    }
);

backend_test!(a_forged_or_unknown_dial_callback_is_refused, |db| {
    let (env, org, _key) = transfer_env(db, vec![]).await;
    let http = reqwest::Client::new();
    // No signature: 403 once the call is known; an unknown call: 404; no call id: 400.
    let sid = "CA00000000000000000000000000000503";
    let _media = env.answer(&org, sid, "+15557770503", 20.0).await;
    let call = env.call_of(&org, sid).await;
    let res = http
        .post(format!(
            "{}/twilio/voice/dial?call_id={}",
            env.base, call.id
        ))
        .form(&[("CallSid", sid), ("DialCallStatus", "completed")])
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 403);
    let res = post_signed(
        &http,
        &env.base,
        PUBLIC,
        "/twilio/voice/dial?call_id=call_00000000000000000000000000",
        &org.token,
        &[("CallSid", sid), ("DialCallStatus", "completed")],
    )
    .await;
    assert_eq!(res.status(), 404);
    let res = post_signed(
        &http,
        &env.base,
        PUBLIC,
        "/twilio/voice/dial",
        &org.token,
        &[("CallSid", sid), ("DialCallStatus", "completed")],
    )
    .await;
    assert_eq!(res.status(), 400);
    // A signed callback for a call with no transfer in flight changes nothing.
    let res = post_signed(
        &http,
        &env.base,
        PUBLIC,
        &format!("/twilio/voice/dial?call_id={}", call.id),
        &org.token,
        &[("CallSid", sid), ("DialCallStatus", "completed")],
    )
    .await;
    assert_eq!(res.status(), 200);
    let after = env.call_of(&org, sid).await;
    assert!(after.ended_at.is_none() && after.transfer.is_none());
});
