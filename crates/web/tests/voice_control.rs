//! In-call control through the fakes, over HTTP and WebSocket: a receptionist handing the
//! call to a billing agent and back in the same model session (new instructions and tools by
//! `session.update`, the voice kept, each turn attributed, the call's path recorded, a loop
//! stopped), and the keypad (keys pressed outside a collection reaching the model as one
//! `[keypad]` turn, `collect_digits` answering the digits typed).

mod voice_env;

use voice_env::*;

backend_test!(
    a_call_is_handed_between_agents_and_a_loop_is_stopped,
    |db| {
        let turn = |n: usize| format!("Caller turn {n}.");
        let behavior = Behavior {
            steps: vec![
                Step::Call("handoff_to_billing".into(), json!({"reason": "a refund"})),
                said(AGENT_SHORT, "Billing here, about your refund."),
                Step::Call("handoff_to_reception".into(), json!({})),
                said(AGENT_SHORT, "Reception again."),
                Step::Call("handoff_to_billing".into(), json!({})),
                said(AGENT_SHORT, "Billing again."),
                Step::Call("handoff_to_reception".into(), json!({})),
                said(AGENT_SHORT, "Let me help you myself."),
            ],
            transcripts: (1..=4).map(turn).collect(),
            ..Behavior::default()
        };
        let mut env = env(db, behavior).await;
        let org = env.org("Alpha", "+15550001001", &["end_call"], None).await;
        let billing: NewAgent = serde_json::from_value(json!({
            "name": "Billing", "instructions": "You handle billing for Alpha.", "voice": "cedar",
            "tools": ["lookup_contact"],
            "handoffs": [{"agent_id": org.agent, "description": "Anything that is not billing."}],
        }))
        .expect("agent");
        let billing = db
            .store
            .create_agent(&org.id, billing)
            .await
            .expect("billing");
        env.patch_agent(
        &org,
        json!({"handoffs": [{"agent_id": billing.id, "description": "Refunds, invoices and payments."}]}),
    )
    .await;

        let sid = "CA00000000000000000000000000000301";
        let media = env.answer(&org, sid, "+15557770301", 20.0).await;
        let first = env.wait_model_event("session.update", 1).await.remove(0);
        let names = |u: &Value| -> Vec<String> {
            u["session"]["tools"]
                .as_array()
                .expect("tools")
                .iter()
                .map(|t| t["name"].as_str().expect("name").to_owned())
                .collect()
        };
        assert_eq!(names(&first), ["end_call", "handoff_to_billing"]);
        let description = first["session"]["tools"][1]["description"]
            .as_str()
            .expect("description");
        assert!(description.contains("Refunds, invoices and payments."));

        // Turn 1: the receptionist hands over; Billing's instructions and tools take effect in
        // the same session, the voice stays, and Billing answers.
        media.play_at(CALLER_BOOKING, Duration::from_millis(5));
        let updates = env.wait_model_event("session.update", 2).await;
        let second = &updates[1]["session"];
        assert_eq!(second["instructions"], "You handle billing for Alpha.");
        assert_eq!(
            names(&updates[1]),
            ["lookup_contact", "handoff_to_reception"]
        );
        assert_eq!(second["audio"]["output"]["voice"], "marin");
        assert_eq!(env.model.sessions().len(), 1, "no new model session");
        media
            .wait_for("Billing's answer", WAIT, |r| {
                r.audio.len() >= AGENT_SHORT.len()
            })
            .await;
        assert_eq!(env.outputs()[0]["handed_off_to"], "Billing");

        // Turns 2 and 3: back to reception, then to billing again.
        for n in 2..=3 {
            media
                .wait_for("the answer to play", WAIT, |r| r.echoed == r.marks.len())
                .await;
            media.play_at(CALLER_BOOKING, Duration::from_millis(5));
            env.wait_model_event("session.update", n + 1).await;
            media
                .wait_for("the next answer", WAIT, |r| {
                    r.audio.len() >= AGENT_SHORT.len() * n
                })
                .await;
        }
        // Turn 4: a third arrival at the receptionist is refused; Billing carries on.
        media
            .wait_for("the answer to play", WAIT, |r| r.echoed == r.marks.len())
            .await;
        media.play_at(CALLER_BOOKING, Duration::from_millis(5));
        media
            .wait_for("the last answer", WAIT, |r| {
                r.audio.len() >= AGENT_SHORT.len() * 4
            })
            .await;
        let out = env.outputs();
        assert_eq!(out.len(), 4, "{out:?}");
        assert_eq!(out[3]["error"]["code"], "handoff_loop", "{out:?}");
        assert_eq!(
            env.model.events("session.update").len(),
            4,
            "no switch for the refused handoff"
        );

        // The transcript says who spoke each turn and when the call changed hands.
        let items = eventually("the last agent turn stored", WAIT, || async {
            let items = env.transcript(&org, sid).await;
            items
                .iter()
                .any(|m| m.content["text"] == "Let me help you myself.")
                .then_some(items)
        })
        .await;
        let spoken: Vec<(String, String)> = items
            .iter()
            .filter(|m| m.role.as_str() == "assistant" && m.kind.as_str() == "message")
            .map(|m| {
                (
                    m.content["agent_name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    m.content["text"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            spoken,
            [
                ("Billing".into(), "Billing here, about your refund.".into()),
                ("Reception".into(), "Reception again.".into()),
                ("Billing".into(), "Billing again.".into()),
                ("Billing".into(), "Let me help you myself.".into()),
            ]
        );
        let handovers: Vec<&str> = items
            .iter()
            .filter(|m| m.role.as_str() == "system")
            .filter_map(|m| m.content["text"].as_str())
            .collect();
        assert_eq!(
            handovers,
            [
                "Reception handed the call to Billing",
                "Billing handed the call to Reception",
                "Reception handed the call to Billing",
            ]
        );
        let call = env.call_of(&org, sid).await;
        assert_eq!(
            call.agents,
            [
                org.agent.clone(),
                billing.id.clone(),
                org.agent.clone(),
                billing.id.clone()
            ]
        );
        assert_eq!(call.handoffs[0].reason.as_deref(), Some("a refund"));
        media.stop();
        env.wait_ended(&org, sid).await;
        env.shutdown();
    }
);

backend_test!(keypad_presses_reach_the_model_and_collect_digits, |db| {
    let behavior = Behavior {
        steps: vec![
            said(AGENT_SHORT, "You pressed one and two."),
            Step::Call("collect_digits".into(), json!({})),
            said(AGENT_SHORT, "Thanks, I have your account number."),
        ],
        transcripts: vec!["I'd like to give my account number.".into()],
        ..Behavior::default()
    };
    let mut env = env(db, behavior).await;
    let org = env
        .org("Alpha", "+15550001001", &["collect_digits"], None)
        .await;
    env.patch_agent(
        &org,
        json!({"digits": {"max_digits": 6, "terminator": "#", "timeout_seconds": 5}}),
    )
    .await;
    let sid = "CA00000000000000000000000000000302";
    let media = env.answer(&org, sid, "+15557770302", 20.0).await;
    let update = env.wait_model_event("session.update", 1).await.remove(0);
    assert_eq!(update["session"]["tools"][0]["name"], "collect_digits");

    // Keys pressed outside a collection: one caller turn once the caller pauses.
    media.press("12");
    let items = env.wait_model_event("conversation.item.create", 1).await;
    assert_eq!(items[0]["item"]["role"], "user");
    assert_eq!(items[0]["item"]["content"][0]["text"], "[keypad] 12");
    media
        .wait_for("the answer", WAIT, |r| r.audio.len() >= AGENT_SHORT.len())
        .await;

    // The agent asks for the account number and collects it from the keypad.
    media
        .wait_for("the answer to play", WAIT, |r| r.echoed == r.marks.len())
        .await;
    media.play_at(CALLER_BOOKING, Duration::from_millis(5));
    let key = {
        let (_, k) = db.store.create_api_key(&org.id, "test").await.expect("key");
        k.expose().to_owned()
    };
    eventually("collect_digits running", WAIT, || async {
        let rows: Value = env
            .http
            .get(format!(
                "{}/api/v1/tool-invocations?tool=collect_digits",
                env.base
            ))
            .bearer_auth(&key)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (rows["data"][0]["status"] == "running").then_some(())
    })
    .await;
    media.press("4815#");
    let output = eventually("the digits", WAIT, || async {
        env.outputs().into_iter().next()
    })
    .await;
    assert_eq!(
        output,
        json!({"ok": true, "digits": "4815", "ended_by": "terminator"})
    );
    media
        .wait_for("the last answer", WAIT, |r| {
            r.audio.len() >= AGENT_SHORT.len() * 2
        })
        .await;
    let items = eventually("the keypad turn stored", WAIT, || async {
        let items = env.transcript(&org, sid).await;
        items
            .iter()
            .any(|m| m.content["keypad"] == "12")
            .then_some(items)
    })
    .await;
    let keypad = items
        .iter()
        .find(|m| m.content["keypad"] == "12")
        .expect("keypad turn");
    assert_eq!(
        (keypad.role.as_str(), keypad.content["text"].as_str()),
        ("user", Some("[keypad] 12"))
    );
    media.stop();
    env.wait_ended(&org, sid).await;
    env.shutdown();
});

backend_test!(send_digits_presses_keys_and_keeps_the_model_session, |db| {
    let behavior = Behavior {
        steps: vec![
            Step::Call("send_digits".into(), json!({"digits": "one"})),
            Step::Call("send_digits".into(), json!({"digits": "1w2#"})),
            said(AGENT_SHORT, "Hello, I'd like to book a table."),
        ],
        transcripts: vec![
            "For bookings press 1, then 2 and hash.".into(),
            "Bookings, how can I help?".into(),
        ],
        ..Behavior::default()
    };
    let mut env = env(db, behavior).await;
    let org = env
        .org("Alpha", "+15550001001", &["send_digits"], None)
        .await;
    env.rest
        .connect_server(PUBLIC, &env.base, &env.ws, &org.token);
    let sid = "CA00000000000000000000000000000303";
    let media = env.answer(&org, sid, "+15557770303", 20.0).await;
    env.rest.attach(&media);
    let update = env.wait_model_event("session.update", 1).await.remove(0);
    assert_eq!(update["session"]["tools"][0]["name"], "send_digits");

    // The menu speaks; the agent's first try is refused, its second presses the keys.
    media.play_at(CALLER_BOOKING, Duration::from_millis(5));
    let back = env.rest.resumed(sid, 0, WAIT).await;
    assert_eq!(
        env.rest.sent_digits(),
        [(sid.to_owned(), "1w2#".to_owned())]
    );
    let out = env.outputs();
    assert_eq!(out[0]["error"]["code"], "invalid_digits", "{out:?}");
    assert_eq!(out[1]["pressed"], "1w2#", "{out:?}");
    let twiml = env
        .rest
        .requests()
        .into_iter()
        .find_map(|r| switchboard_testkit::twilio::form_value(&r, "Twiml").map(str::to_owned))
        .expect("the keys' TwiML");
    assert!(
        twiml.contains("<Response><Play digits=\"1w2#\"/><Connect><Stream")
            && twiml.contains("<Parameter name=\"resume\" value=\"digits\"/>"),
        "{twiml}"
    );
    assert!(media.snapshot().stopped, "the old stream was stopped");

    // The line answers on the new stream; the same model session hears it and answers there.
    back.play_at(CALLER_BOOKING, Duration::from_millis(5));
    back.wait_for("the agent's answer on the new stream", WAIT, |r| {
        r.audio.len() >= AGENT_SHORT.len()
    })
    .await;
    assert_eq!(env.model.sessions().len(), 1, "the same model session");
    let call = env.call_of(&org, sid).await;
    assert!(call.ended_at.is_none());
    let items = env.transcript(&org, sid).await;
    assert!(
        items.iter().any(|m| m.role.as_str() == "system"
            && m.content["text"] == "The agent pressed 1w2# on the keypad"),
        "{items:?}"
    );
    back.stop();
    let ended = env.wait_ended(&org, sid).await;
    assert_eq!(ended.end_reason.as_deref(), Some("caller_hung_up"));
    env.shutdown();
});

backend_test!(
    keys_whose_stream_reaches_another_instance_resume_there,
    |db| {
        let behavior = Behavior {
            steps: vec![Step::Call("send_digits".into(), json!({"digits": "3"}))],
            transcripts: vec!["For opening hours press 3.".into()],
            ..Behavior::default()
        };
        let mut env = env(db, behavior).await;
        let org = env
            .org("Alpha", "+15550001001", &["send_digits"], None)
            .await;
        let second = SecondInstance::start(db, env.config.clone()).await;
        let second_ws = second.base.replacen("http", "ws", 1);
        env.rest
            .connect_server(PUBLIC, &env.base, &env.ws, &org.token);
        let sid = "CA00000000000000000000000000000304";
        let media = env.answer(&org, sid, "+15557770304", 20.0).await;
        env.rest.attach(&media);
        env.wait_model_event("session.update", 1).await;
        // The load balancer sends the next stream to the other instance; its new session hears
        // the line first (it does not speak first), then answers.
        env.rest.move_server(&second.base, &second_ws);
        env.model.set_behavior(Behavior {
            steps: vec![said(AGENT_SHORT, "I'd like the opening hours, please.")],
            transcripts: vec!["Our hours are nine to five.".into()],
            ..Behavior::default()
        });
        media.play_at(CALLER_BOOKING, Duration::from_millis(5));
        let back = env.rest.resumed(sid, 0, WAIT).await;
        let replayed = eventually("the second session's conversation", WAIT, || async {
            let sessions = env.model.sessions();
            let items: Vec<Value> = sessions
                .get(1)?
                .events
                .iter()
                .filter(|e| e["type"] == "conversation.item.create")
                .map(|e| e["item"].clone())
                .collect();
            (items.len() >= 4).then_some(items)
        })
        .await;
        assert_eq!(
            replayed[0]["content"][0]["text"],
            "For opening hours press 3."
        );
        assert_eq!(replayed[1]["name"], "send_digits");
        assert_eq!(replayed[2]["type"], "function_call_output");
        assert_eq!(
            replayed[3]["content"][0]["text"],
            "The agent pressed 3 on the keypad"
        );
        assert!(
            env.model.sessions()[1]
                .events
                .iter()
                .all(|e| e["type"] != "response.create"),
            "the agent did not speak first"
        );
        back.play_at(CALLER_BOOKING, Duration::from_millis(5));
        back.wait_for("the answer on the other instance", WAIT, |r| {
            r.audio.len() >= AGENT_SHORT.len()
        })
        .await;
        // The first instance's task let the call go without ending it.
        eventually("the first task to end", WAIT, || async {
            (env.metric("switchboard_voice_active_calls").await == 0).then_some(())
        })
        .await;
        assert!(env.call_of(&org, sid).await.ended_at.is_none());
        back.stop();
        let ended = env.wait_ended(&org, sid).await;
        assert_eq!(ended.end_reason.as_deref(), Some("caller_hung_up"));
        assert!(
            !env.rest.requests().iter().any(|r| {
                switchboard_testkit::twilio::form_value(r, "Twiml")
                    .is_some_and(|t| t.contains("technical difficulties"))
            }),
            "nobody apologised"
        );
        second.stop().await;
        env.shutdown();
    }
);
