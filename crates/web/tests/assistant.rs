//! The operator assistant over the API with a scripted chat model, on both backends: a change
//! is only a preview until the person it was proposed to confirms it, once, while what it
//! changes is as previewed; a text to everyone with an appointment tomorrow previews the
//! right recipients and sends once; a question about missed calls is answered from the read
//! tools; a failing tool or model never becomes a 500; everything is in the audit trail.

mod voice_env;

use switchboard_store::seed::{seed_calls, SeedCall};
use switchboard_testkit::chat::{ChatStep, FakeChatModel};
use voice_env::*;

async fn ask(env: &Env<'_>, key: &str, session: &str, message: &str) -> (u16, Value) {
    env.call_api(
        reqwest::Method::POST,
        key,
        "/api/v1/assistant",
        Some(json!({"session_id": session, "message": message})),
    )
    .await
}

async fn decide(env: &Env<'_>, key: &str, id: &str, what: &str) -> (u16, Value) {
    env.call_api(
        reqwest::Method::POST,
        key,
        &format!("/api/v1/assistant/actions/{id}/{what}"),
        None,
    )
    .await
}

backend_test!(changes_happen_once_on_confirmation_by_their_person, |db| {
    let chat = FakeChatModel::start().await;
    let mut env = voice_env::tools::env_with_chat(db, Behavior::default(), &chat).await;
    let alpha = env.org("Alpha", "+15550001001", &[], None).await;
    let beta = env.org("Beta", "+15550002002", &[], None).await;
    let (ka, ka2, kb) = (
        env.key(&alpha).await,
        env.key(&alpha).await,
        env.key(&beta).await,
    );
    let before = env.agent_of(&ka, &alpha).await;
    let new_instructions = "You answer the phone for Alpha.\nWe are closed on Friday 25 December.";
    chat.script([
        ChatStep::Tools(vec![(
            "update_agent".into(),
            json!({"agent_id": alpha.agent, "instructions": new_instructions}),
        )]),
        ChatStep::Text("Here is the change. Shall I apply it?".into()),
    ]);
    let (s, turn) = ask(&env, &ka, "s1", "Add Friday's holiday to the receptionist").await;
    assert_eq!(s, 200, "{turn}");
    assert_eq!(turn["reply"], "Here is the change. Shall I apply it?");
    assert_eq!(turn["tool_calls"][0]["status"], "pending", "{turn}");
    let action = &turn["pending_actions"][0];
    let id = action["id"].as_str().expect("id").to_owned();
    assert_eq!(action["status"], "pending");
    assert!(action["summary"]
        .as_str()
        .expect("summary")
        .contains("instructions"));
    let diff = action["preview"]["instructions_diff"]
        .as_str()
        .expect("diff");
    assert!(
        diff.contains("+We are closed on Friday 25 December."),
        "{diff}"
    );
    assert!(diff.contains("-You answer the phone for Alpha."), "{diff}");
    // The model was told nothing happened yet; nothing did.
    let told = chat.requests()[1]["messages"].to_string();
    assert!(told.contains("Nothing has happened yet"), "{told}");
    assert_eq!(
        env.agent_of(&ka, &alpha).await["instructions"],
        before["instructions"]
    );

    // Another person of the organization, and another organization, cannot decide it.
    let (s, err) = decide(&env, &ka2, &id, "confirm").await;
    assert_eq!(
        (s, err["error"]["code"].clone()),
        (403, json!("not_your_action")),
        "{err}"
    );
    let (s, _) = decide(&env, &kb, &id, "confirm").await;
    assert_eq!(s, 404);
    let (s, _) = decide(&env, &ka, "act_nosuchaction", "confirm").await;
    assert_eq!(s, 404);
    // Its person confirms: done, once.
    let (s, done) = decide(&env, &ka, &id, "confirm").await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["action"]["status"], "done");
    assert_eq!(
        env.agent_of(&ka, &alpha).await["instructions"],
        new_instructions
    );
    let (s, again) = decide(&env, &ka, &id, "confirm").await;
    assert_eq!(
        (s, again["error"]["code"].clone()),
        (409, json!("action_used")),
        "{again}"
    );
    let (s, _) = decide(&env, &ka, &id, "cancel").await;
    assert_eq!(s, 409);
    let (_, audit) = env
        .call_api(
            reqwest::Method::GET,
            &ka,
            "/api/v1/tool-invocations?source=assistant&tool=update_agent",
            None,
        )
        .await;
    assert_eq!(
        audit["data"].as_array().map(Vec::len),
        Some(1),
        "carried out once: {audit}"
    );

    // A change made elsewhere after the preview: the confirmation is refused with a new
    // preview, which can be confirmed.
    chat.script([
        ChatStep::Tools(vec![(
            "update_agent".into(),
            json!({"agent_id": alpha.agent, "greeting": "Hello from Alpha!"}),
        )]),
        ChatStep::Text("Confirm?".into()),
    ]);
    let (_, turn) = ask(&env, &ka, "s1", "Change the greeting").await;
    let stale_id = turn["pending_actions"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    env.patch_agent(&alpha, json!({"instructions": "Changed by someone else."}))
        .await;
    let (s, stale) = decide(&env, &ka, &stale_id, "confirm").await;
    assert_eq!(
        (s, stale["error"]["code"].clone()),
        (409, json!("action_stale")),
        "{stale}"
    );
    let fresh = stale["action"]["id"]
        .as_str()
        .expect("a new preview")
        .to_owned();
    assert_ne!(fresh, stale_id);
    assert_eq!(stale["action"]["status"], "pending");
    assert_ne!(
        env.agent_of(&ka, &alpha).await["greeting"],
        "Hello from Alpha!"
    );
    let (s, _) = decide(&env, &ka, &stale_id, "confirm").await;
    assert_eq!(s, 409, "the stale one stays refused");
    let (s, done) = decide(&env, &ka, &fresh, "confirm").await;
    assert_eq!(
        (s, done["action"]["status"].clone()),
        (200, json!("done")),
        "{done}"
    );
    let agent = env.agent_of(&ka, &alpha).await;
    assert_eq!(agent["greeting"], "Hello from Alpha!");
    assert_eq!(agent["instructions"], "Changed by someone else.");

    // Confirming in the chat: the model calls confirm_action in a later message.
    chat.script([
        ChatStep::Tools(vec![(
            "update_agent".into(),
            json!({"agent_id": alpha.agent, "greeting": "Good day!"}),
        )]),
        ChatStep::Text("Confirm?".into()),
    ]);
    let (_, turn) = ask(&env, &ka, "s2", "Greeting: Good day!").await;
    let chat_id = turn["pending_actions"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    chat.script([
        ChatStep::Tools(vec![(
            "confirm_action".into(),
            json!({"action_id": chat_id}),
        )]),
        ChatStep::Text("Done.".into()),
    ]);
    let (s, turn) = ask(&env, &ka, "s2", "Yes, do it").await;
    assert_eq!(s, 200, "{turn}");
    assert_eq!(turn["tool_calls"][0]["status"], "ok", "{turn}");
    assert_eq!(env.agent_of(&ka, &alpha).await["greeting"], "Good day!");
    // Cancelling discards; an unknown tool, a bad id and a failing read are errors in the chat.
    chat.script([
        ChatStep::Tools(vec![
            (
                "update_agent".into(),
                json!({"agent_id": alpha.agent, "greeting": "Never"}),
            ),
            ("get_agent".into(), json!({"agent_id": "agt_doesnotexist"})),
            ("drop_database".into(), json!({})),
        ]),
        ChatStep::Text("Something went wrong.".into()),
    ]);
    let (s, turn) = ask(&env, &ka, "s3", "Try things").await;
    assert_eq!(s, 200, "{turn}");
    let statuses: Vec<&str> = turn["tool_calls"]
        .as_array()
        .expect("calls")
        .iter()
        .map(|c| c["status"].as_str().expect("status"))
        .collect();
    assert_eq!(statuses, ["pending", "error", "error"], "{turn}");
    assert_eq!(
        turn["tool_calls"][1]["output"]["error"]["code"],
        "not_found"
    );
    assert_eq!(
        turn["tool_calls"][2]["output"]["error"]["code"],
        "unknown_tool"
    );
    let cancel_id = turn["pending_actions"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (s, c) = decide(&env, &ka, &cancel_id, "cancel").await;
    assert_eq!((s, c["action"]["status"].clone()), (200, json!("canceled")));
    let (s, c) = decide(&env, &ka, &cancel_id, "confirm").await;
    assert_eq!(
        (s, c["error"]["code"].clone()),
        (409, json!("action_canceled"))
    );
    assert_eq!(env.agent_of(&ka, &alpha).await["greeting"], "Good day!");

    // The model failing is a 503 and stores nothing of the message.
    chat.script([ChatStep::Fail(500)]);
    let (s, err) = ask(&env, &ka, "s4", "Hello?").await;
    assert_eq!(
        (s, err["error"]["code"].clone()),
        (503, json!("assistant_unavailable")),
        "{err}"
    );
    let (s, _) = env
        .call_api(
            reqwest::Method::GET,
            &ka,
            "/api/v1/assistant/sessions/s4",
            None,
        )
        .await;
    assert_eq!(
        s, 404,
        "nothing stored: the session only exists once a message went through"
    );
    let (s, view) = env
        .call_api(
            reqwest::Method::GET,
            &ka,
            "/api/v1/assistant/sessions/s1",
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(view["actions"].as_array().map(Vec::len), Some(3), "{view}");
    let (s, _) = env
        .call_api(
            reqwest::Method::GET,
            &ka2,
            "/api/v1/assistant/sessions/s1",
            None,
        )
        .await;
    assert_eq!(s, 404, "sessions are their person's");

    // The audit trail has every preview, confirmation, cancellation and execution.
    let trail = db.store.audit_log(&alpha.id, 100).await.expect("audit");
    let count = |what: &str| trail.iter().filter(|e| e.action == what).count();
    assert_eq!(count("assistant.preview"), 5, "{trail:#?}");
    assert_eq!(count("assistant.confirm"), 3);
    assert_eq!(count("assistant.execute"), 3);
    assert_eq!(count("assistant.cancel"), 1);
    assert_eq!(count("assistant.stale"), 1);
    assert!(trail
        .iter()
        .filter(|e| e.action.starts_with("assistant."))
        .all(|e| e.actor.starts_with("api_key:")));
    env.shutdown();
});

backend_test!(
    a_text_to_tomorrows_appointments_goes_to_the_right_people_once,
    |db| {
        let chat = FakeChatModel::start().await;
        let mut env = voice_env::tools::env_with_chat(db, Behavior::default(), &chat).await;
        let alpha = env.org("Alpha", "+15550001001", &[], None).await;
        let ka = env.key(&alpha).await;
        db.store
            .create_number(
                &alpha.id,
                NewPhoneNumber {
                    number: PhoneNumber::parse("+15550001009").expect("e164"),
                    channel: NumberChannel::Sms,
                    agent_id: Some(alpha.agent.clone()),
                    active: None,
                },
            )
            .await
            .expect("sms number");
        let post = reqwest::Method::POST;
        let today = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        let tomorrow = today.tomorrow().expect("tomorrow").to_string();
        let after = today
            .checked_add(jiff::Span::new().days(2))
            .expect("day")
            .to_string();
        let people = [
            ("+15557770001", "Dana", false, tomorrow.as_str(), "10:00"),
            ("+15557770002", "Eli", true, tomorrow.as_str(), "11:00"),
            ("+15557770003", "Fay", false, tomorrow.as_str(), "12:00"),
            ("+15557770004", "Gus", false, after.as_str(), "10:00"),
        ];
        for (number, name, opted_out, day, time) in people {
            let (s, c) = env
                .call_api(
                    post.clone(),
                    &ka,
                    "/api/v1/contacts",
                    Some(json!({"number": number, "name": name, "opted_out": opted_out})),
                )
                .await;
            assert_eq!(s, 201, "{c}");
            let (s, a) = env
            .call_api(post.clone(), &ka, "/api/v1/appointments", Some(json!({"agent_id": alpha.agent, "contact_number": number, "start": format!("{day}T{time}")})))
            .await;
            assert_eq!(s, 201, "{a}");
        }
        chat.script([
        ChatStep::Tools(vec![(
            "text_contacts".into(),
            json!({"appointments_on": tomorrow, "text": "Reminder: your appointment is tomorrow. Reply to move it."}),
        )]),
        ChatStep::Text("This would text 2 people; confirm?".into()),
    ]);
        let (s, turn) = ask(
            &env,
            &ka,
            "bulk",
            "Text everyone with an appointment tomorrow a reminder",
        )
        .await;
        assert_eq!(s, 200, "{turn}");
        let action = &turn["pending_actions"][0];
        assert_eq!(action["preview"]["count"], 2, "{action}");
        let first: Vec<&str> = action["preview"]["first_recipients"]
            .as_array()
            .expect("recipients")
            .iter()
            .map(|r| r["number"].as_str().expect("number"))
            .collect();
        assert_eq!(first, ["+15557770001", "+15557770003"]);
        assert_eq!(action["preview"]["excluded"][0]["number"], "+15557770002");
        assert!(action["summary"]
            .as_str()
            .expect("summary")
            .contains("Dana"));
        assert!(
            env.rest.messages().is_empty(),
            "nothing sent before confirmation"
        );
        let id = action["id"].as_str().expect("id").to_owned();
        let (s, done) = decide(&env, &ka, &id, "confirm").await;
        assert_eq!(s, 200, "{done}");
        assert_eq!(done["action"]["result"]["result"]["sent"], 2, "{done}");
        let sent = env.rest.messages();
        let mut to: Vec<String> = sent
            .iter()
            .filter_map(|m| {
                m.form
                    .iter()
                    .find(|(k, _)| k == "To")
                    .map(|(_, v)| v.clone())
            })
            .collect();
        to.sort();
        assert_eq!(to, ["+15557770001", "+15557770003"]);
        let (s, _) = decide(&env, &ka, &id, "confirm").await;
        assert_eq!(s, 409);
        assert_eq!(env.rest.messages().len(), 2, "sent once");
        env.shutdown();
    }
);

backend_test!(
    questions_about_activity_are_answered_from_the_read_tools,
    |db| {
        let chat = FakeChatModel::start().await;
        let mut env = voice_env::tools::env_with_chat(db, Behavior::default(), &chat).await;
        let alpha = env.org("Alpha", "+15550001001", &[], None).await;
        let ka = env.key(&alpha).await;
        // Last week (Monday to Sunday, UTC): 3 missed inbound calls, 2 answered, an unanswered
        // outbound call; this week: one more missed call that must not count.
        let today = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        let monday = today
            .checked_sub(jiff::Span::new().days(i64::from(today.weekday().to_monday_zero_offset())))
            .expect("monday");
        let last_monday = monday.checked_sub(jiff::Span::new().days(7)).expect("day");
        let at = |d: jiff::civil::Date, hour: i8| {
            let ts = d
                .at(hour, 0, 0, 0)
                .to_zoned(jiff::tz::TimeZone::UTC)
                .expect("zoned")
                .timestamp();
            Timestamp::from_millis(ts.as_millisecond())
        };
        let call = |started_at, direction: &'static str, disposition: &'static str| SeedCall {
            started_at,
            direction,
            our_number: "+15550001001".into(),
            contact: "+15557770009".into(),
            agent_id: Some(alpha.agent.clone()),
            disposition: Some(disposition),
            duration_seconds: Some(60),
            analysis: None,
            turn_latencies_ms: vec![],
        };
        let calls = vec![
            call(at(last_monday, 9), "inbound", "no_answer"),
            call(
                at(
                    last_monday
                        .checked_add(jiff::Span::new().days(2))
                        .expect("d"),
                    10,
                ),
                "inbound",
                "busy",
            ),
            call(
                at(
                    last_monday
                        .checked_add(jiff::Span::new().days(6))
                        .expect("d"),
                    23,
                ),
                "inbound",
                "canceled",
            ),
            call(at(last_monday, 11), "inbound", "completed"),
            call(at(last_monday, 12), "inbound", "completed"),
            call(at(last_monday, 13), "outbound", "no_answer"),
            call(at(monday, 0), "inbound", "no_answer"),
        ];
        seed_calls(&db.store, &alpha.id, &calls)
            .await
            .expect("seed");
        chat.script([
            ChatStep::Tools(vec![(
                "activity_summary".into(),
                json!({"period": "last_week"}),
            )]),
            ChatStep::Text("You missed 3 calls last week.".into()),
        ]);
        let (s, turn) = ask(&env, &ka, "q", "How many calls did we miss last week?").await;
        assert_eq!(s, 200, "{turn}");
        let out = &turn["tool_calls"][0]["output"];
        assert_eq!(out["calls"]["inbound"]["missed"], 3, "{out}");
        assert_eq!(out["calls"]["inbound"]["total"], 5);
        assert_eq!(out["calls"]["outbound"]["unreached"], 1);
        assert_eq!(out["period"]["from"], last_monday.to_string());
        // The model got exactly that.
        let given = chat.requests()[1]["messages"].to_string();
        assert!(given.contains("\\\"missed\\\":3"), "{given}");
        // Read tools are offered and run at once, in the tool audit as the assistant's.
        let (_, audit) = env
            .call_api(
                reqwest::Method::GET,
                &ka,
                "/api/v1/tool-invocations?source=assistant",
                None,
            )
            .await;
        assert_eq!(audit["data"][0]["tool"], "activity_summary", "{audit}");
        env.shutdown();
    }
);

backend_test!(the_assistant_adds_a_knowledge_source_once_confirmed, |db| {
    let chat = FakeChatModel::start().await;
    let mut env = voice_env::tools::env_with_chat(db, Behavior::default(), &chat).await;
    let alpha = env.org("Alpha", "+15550001001", &[], None).await;
    let ka = env.key(&alpha).await;
    let price_list = "## Colour\nA full colour costs 95 euros.\n\n## Cuts\nA cut costs 40 euros.";
    chat.script([
        ChatStep::Tools(vec![(
            "add_knowledge_source".into(),
            json!({"name": "Price list", "format": "markdown", "content": price_list}),
        )]),
        ChatStep::Text("Shall I add it?".into()),
    ]);
    let (s, turn) = ask(&env, &ka, "k", "Add this price list: ...").await;
    assert_eq!(s, 200, "{turn}");
    let action = &turn["pending_actions"][0];
    assert_eq!(action["preview"]["characters"], price_list.chars().count());
    let (_, list) = env
        .call_api(reqwest::Method::GET, &ka, "/api/v1/knowledge/sources", None)
        .await;
    assert_eq!(list["data"], json!([]), "nothing added before confirmation");
    let id = action["id"].as_str().expect("id").to_owned();
    let (s, done) = decide(&env, &ka, &id, "confirm").await;
    assert_eq!(s, 200, "{done}");
    let source = done["action"]["result"]["result"]["id"]
        .as_str()
        .expect("the new source")
        .to_owned();
    let path = format!("/api/v1/knowledge/sources/{source}");
    let got = eventually("the source is indexed", WAIT, || async {
        let (_, s) = env.call_api(reqwest::Method::GET, &ka, &path, None).await;
        (s["status"] == "ready").then_some(s)
    })
    .await;
    assert_eq!(got["chunks"], 2);
    assert!(got["created_by"]
        .as_str()
        .expect("by")
        .starts_with("api_key:"));
    // The assistant finds it.
    chat.script([
        ChatStep::Tools(vec![(
            "search_knowledge".into(),
            json!({"query": "colour price"}),
        )]),
        ChatStep::Text("95 euros.".into()),
    ]);
    let (_, turn) = ask(&env, &ka, "k", "What does a colour cost?").await;
    let hit = &turn["tool_calls"][0]["output"]["results"][0];
    assert!(
        hit["text"].as_str().expect("text").contains("95 euros"),
        "{turn}"
    );
    env.shutdown();
});
