//! Staff actions on a live call through the fakes: `say` (the agent speaks the sentence
//! next), `instruct` (a private item in the model's context), `mute_agent` (the agent's
//! answers cancelled as they start, nothing reaching the caller), `unmute`, `hangup`; each
//! acknowledged with a result, audited, and on the call's timeline; refused for an ended
//! call, another organization's call, and bad input. On PostgreSQL an action sent to another
//! instance reaches the call through the database's notification.

mod voice_env;

use voice_env::*;

async fn act(env: &Env<'_>, base: &str, key: &str, call: &str, body: Value) -> (u16, Value) {
    let res = env
        .http
        .post(format!("{base}/api/v1/calls/{call}/actions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("action");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

backend_test!(staff_act_on_a_live_call, |db| {
    let behavior = Behavior {
        steps: vec![
            said(AGENT_SHORT, "Your order shipped today."),
            said(AGENT_REPLY, "An answer nobody should hear."),
            said(AGENT_SHORT, "Back with you."),
        ],
        transcripts: vec!["Hello? Anyone there?".into()],
        // Audio already in flight when a response is cancelled still arrives, as on OpenAI.
        deltas_after_interrupt: 2,
        ..Behavior::default()
    };
    let mut env = env(db, behavior).await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    let other = env.org("Beta", "+15550002002", &[], None).await;
    let key = env.key(&org).await;
    let other_key = env.key(&other).await;
    let sid = "CA00000000000000000000000000000401";
    let media = env.answer(&org, sid, "+15557770401", 20.0).await;
    env.wait_model_event("session.update", 1).await;
    let call = eventually("the call to be live", WAIT, || async {
        let c = env.call_of(&org, sid).await;
        (c.status.as_str() == "in-progress").then_some(c)
    })
    .await;
    let id = call.id.to_string();
    let base = env.base.clone();

    // Bad input, another organization, an unknown action.
    let (status, err) = act(
        &env,
        &base,
        &key,
        &id,
        json!({"action": "say", "text": " "}),
    )
    .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("text"))
    );
    let (status, _) = act(&env, &base, &key, &id, json!({"action": "explode"})).await;
    assert_eq!(status, 422);
    let (status, _) = act(&env, &base, &other_key, &id, json!({"action": "hangup"})).await;
    assert_eq!(status, 404);

    // Say: the agent speaks the sentence, without tools.
    let (status, done) = act(
        &env,
        &base,
        &key,
        &id,
        json!({"action": "say", "text": "Your order shipped today."}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "done");
    assert_eq!(done["result"]["ok"], true);
    assert!(done["actor"]
        .as_str()
        .is_some_and(|a| a.starts_with("api_key:")));
    let create = env.wait_model_event("response.create", 1).await.remove(0);
    assert!(create["response"]["instructions"]
        .as_str()
        .is_some_and(|i| i.contains("Your order shipped today.")));
    assert_eq!(create["response"]["tool_choice"], "none");
    media
        .wait_for("the sentence", WAIT, |r| r.audio.len() >= AGENT_SHORT.len())
        .await;

    // Instruct: a private item the caller does not hear.
    let (status, done) = act(
        &env,
        &base,
        &key,
        &id,
        json!({"action": "instruct", "text": "Offer a 10% discount."}),
    )
    .await;
    assert_eq!((status, done["status"].as_str()), (200, Some("done")));
    let items = env.wait_model_event("conversation.item.create", 1).await;
    let system = items
        .iter()
        .find(|i| i["item"]["role"] == "system")
        .expect("a system item");
    assert!(system["item"]["content"][0]["text"]
        .as_str()
        .is_some_and(|t| t.contains("Offer a 10% discount.")));

    // Mute: the caller speaks, the model's answer is cancelled as it starts, nothing plays.
    media
        .wait_for("the sentence to play", WAIT, |r| r.echoed == r.marks.len())
        .await;
    let (status, done) = act(&env, &base, &key, &id, json!({"action": "mute_agent"})).await;
    assert_eq!(
        (status, done["result"]["muted"].as_bool()),
        (200, Some(true))
    );
    let heard = media.snapshot().audio.len();
    media.play_at(CALLER_BOOKING, Duration::from_millis(5));
    env.wait_model_event("response.cancel", 1).await;
    // Saying while muted is refused with the reason.
    let (status, refused) = act(
        &env,
        &base,
        &key,
        &id,
        json!({"action": "say", "text": "Hello?"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(refused["status"], "failed");
    assert_eq!(refused["result"]["error"]["code"], "agent_muted");
    let (status, _) = act(&env, &base, &key, &id, json!({"action": "unmute"})).await;
    assert_eq!(status, 200);
    let (status, _) = act(
        &env,
        &base,
        &key,
        &id,
        json!({"action": "say", "text": "Back with you."}),
    )
    .await;
    assert_eq!(status, 200);
    media
        .wait_for("the sentence after unmuting", WAIT, |r| {
            r.audio.len() >= heard + AGENT_SHORT.len()
        })
        .await;
    // Agent audio reaches Twilio in whole 20 ms frames (the last one padded).
    assert_eq!(
        media.snapshot().audio.len(),
        heard + AGENT_SHORT.len().div_ceil(160) * 160,
        "nothing of the muted answer reached the caller"
    );

    // Hang up: the call ends; later actions are refused.
    let (status, done) = act(&env, &base, &key, &id, json!({"action": "hangup"})).await;
    assert_eq!((status, done["status"].as_str()), (200, Some("done")));
    let ended = env.wait_ended(&org, sid).await;
    assert_eq!(ended.end_reason.as_deref(), Some("hung_up_by_api"));
    let (status, err) = act(
        &env,
        &base,
        &key,
        &id,
        json!({"action": "say", "text": "Hi"}),
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("call_not_live"))
    );

    // The audit trail and the timeline.
    let listed: Value = env
        .http
        .get(format!("{base}/api/v1/calls/{id}/actions"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let kinds: Vec<(&str, &str)> = listed["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|a| {
            (
                a["request"]["action"].as_str().unwrap_or_default(),
                a["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("say", "done"),
            ("instruct", "done"),
            ("mute_agent", "done"),
            ("say", "failed"),
            ("unmute", "done"),
            ("say", "done"),
            ("hangup", "done"),
        ]
    );
    let items = env.transcript(&org, sid).await;
    let timeline: Vec<&str> = items
        .iter()
        .filter(|m| m.role.as_str() == "human")
        .filter_map(|m| m.content["text"].as_str())
        .collect();
    assert_eq!(timeline.len(), 7, "{timeline:?}");
    assert_eq!(
        timeline[0],
        "Staff asked the agent to say: Your order shipped today."
    );
    assert!(!items
        .iter()
        .any(|m| m.content["text"] == "An answer nobody should hear."));
    drop(media);
    env.shutdown();
});

backend_test!(an_action_reaches_a_call_on_another_instance, |db| {
    if db.store.backend() != switchboard_store::Backend::Postgres {
        return; // Several instances share one database on PostgreSQL only.
    }
    let behavior = Behavior {
        steps: vec![said(AGENT_SHORT, "Your order shipped today.")],
        ..Behavior::default()
    };
    let mut env = env(db, behavior).await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    let key = env.key(&org).await;
    let second = SecondInstance::start(db, WebConfig::default()).await;
    let second_base = second.base.clone();
    let sid = "CA00000000000000000000000000000402";
    let media = env.answer(&org, sid, "+15557770402", 20.0).await;
    env.wait_model_event("session.update", 1).await;
    let call = eventually("the call to be live", WAIT, || async {
        let c = env.call_of(&org, sid).await;
        (c.status.as_str() == "in-progress").then_some(c)
    })
    .await;
    // Asked on the second instance; carried out by the first, which holds the call.
    let (status, action) = act(
        &env,
        &second_base,
        &key,
        call.id.as_str(),
        json!({"action": "say", "text": "Your order shipped today."}),
    )
    .await;
    assert_eq!(
        (status, action["status"].as_str()),
        (200, Some("done")),
        "{action}"
    );
    media
        .wait_for("the sentence", WAIT, |r| r.audio.len() >= AGENT_SHORT.len())
        .await;
    let (status, action) = act(
        &env,
        &second_base,
        &key,
        call.id.as_str(),
        json!({"action": "hangup"}),
    )
    .await;
    assert_eq!((status, action["status"].as_str()), (200, Some("done")));
    env.wait_ended(&org, sid).await;
    second.stop().await;
    env.shutdown();
});

backend_test!(staff_transfer_a_live_call, |db| {
    let mut env = env(db, Behavior::default()).await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    let key = env.key(&org).await;
    env.patch_agent(
        &org,
        json!({"transfer_number": "sip:desk@pbx.example.com", "transfer_caller_id": "caller",
            "transfer_message": "Connecting you now."}),
    )
    .await;
    // Twilio's `<Dial action>` callback reaches the server and says the target answered.
    env.rest
        .connect_server(PUBLIC, &env.base, &env.ws, &org.token);
    let sid = "CA00000000000000000000000000000403";
    let media = env.answer(&org, sid, "+15557770403", 20.0).await;
    env.rest.attach(&media);
    env.wait_model_event("session.update", 1).await;
    let call = eventually("the call to be live", WAIT, || async {
        let c = env.call_of(&org, sid).await;
        (c.status.as_str() == "in-progress").then_some(c)
    })
    .await;
    let (base, id) = (env.base.clone(), call.id.to_string());
    // An unknown mode, an empty summary, a bad target: 422.
    for (body, field) in [
        (json!({"action": "transfer", "mode": "lukewarm"}), "mode"),
        (
            json!({"action": "transfer", "mode": "warm", "summary": " "}),
            "summary",
        ),
    ] {
        let (status, err) = act(&env, &base, &key, &id, body).await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(field)),
            "{err}"
        );
    }
    let (status, _) = act(
        &env,
        &base,
        &key,
        &id,
        json!({"action": "transfer", "to": "5550009999"}),
    )
    .await;
    assert_eq!(status, 422);
    // With no allow-list, only the agent's own destination; with one, what it allows.
    let (status, refused) = act(
        &env,
        &base,
        &key,
        &id,
        json!({"action": "transfer", "to": "+15550009999"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        refused["result"]["error"]["code"],
        "destination_not_allowed"
    );
    let (status, err) = env
        .call_api(
            reqwest::Method::PUT,
            &key,
            "/api/v1/settings",
            Some(json!({"transfer_destinations": ["+1555000*", "sip:nope"]})),
        )
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("transfer_destinations[1]"))
    );
    let (status, _) = env
        .call_api(
            reqwest::Method::PUT,
            &key,
            "/api/v1/settings",
            Some(json!({"transfer_destinations": ["+1555000*"]})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, refused) = act(
        &env,
        &base,
        &key,
        &id,
        json!({"action": "transfer", "to": "+15559990000"}),
    )
    .await;
    assert_eq!(
        (status, refused["result"]["error"]["code"].as_str()),
        (200, Some("destination_not_allowed"))
    );
    let (status, done) = act(
        &env,
        &base,
        &key,
        &id,
        json!({"action": "transfer", "to": "+15550009999"}),
    )
    .await;
    assert_eq!(
        (status, done["status"].as_str()),
        (200, Some("done")),
        "{done}"
    );
    let ended = env.wait_ended(&org, sid).await;
    assert_eq!(ended.end_reason.as_deref(), Some("transferred"));
    let transfer = ended.transfer.expect("transfer");
    assert_eq!(
        (transfer.requested_by.as_str(), transfer.target.as_str()),
        ("staff", "+15550009999")
    );
    let update = eventually("the call updated with TwiML", WAIT, || async {
        env.rest
            .requests()
            .into_iter()
            .find_map(|r| switchboard_testkit::twilio::form_value(&r, "Twiml").map(str::to_owned))
    })
    .await;
    assert!(
        update.contains("<Say>Connecting you now.</Say>")
            && update
                .contains("<Dial callerId=\"+15557770403\" action=\"https://voice.example.test/twilio/voice/dial?call_id=")
            && update.contains("<Number>+15550009999</Number></Dial>"),
        "{update}"
    );
    drop(media);
    env.shutdown();
});
