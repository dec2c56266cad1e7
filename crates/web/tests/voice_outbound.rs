//! Outbound calls placed through the API, end to end: the durable dial job, Twilio's Calls API
//! (the fake plays Twilio's side: signed callbacks, the TwiML fetch, the media stream), the
//! agent talking with the call's variables, dispositions, cancel, idempotency and a restart
//! between accepting and dialling. Both backends.

mod voice_env;

use switchboard_testkit::twilio::{form_value, CallScript};
use voice_env::outbound::*;
use voice_env::*;

backend_test!(
    an_api_placed_call_reaches_the_agent_with_its_variables,
    |db| {
        let behavior = Behavior {
            steps: vec![said(AGENT_SHORT, AGENT_SHORT_TEXT)],
            ..Behavior::default()
        };
        let mut env = env(db, behavior).await;
        let org = env
            .org(
                "Alpha",
                "+15550001001",
                &[],
                Some("Hello {{name}}, this is Alpha about your appointment."),
            )
            .await;
        let api = env.outbound(&org).await;
        let (status, call, _) = env
            .post_call(
                &api,
                json!({"to": CALLEE, "variables": {"name": "Ada"}, "metadata": {"crm_id": 7}}),
                None,
            )
            .await;
        assert_eq!(status, 201, "{call}");
        assert_eq!(call["status"], "queued");
        assert_eq!(call["direction"], "outbound");
        assert_eq!(call["call_sid"], "");
        assert_eq!(call["metadata"], json!({"crm_id": 7}));
        let id = call["id"].as_str().expect("id").to_owned();
        // The dial: Twilio's Calls API with our TwiML URL, every status event, a ring timeout.
        let created = env.wait_created(1).await;
        let (sid, req) = &created[0];
        assert_eq!(req.account_sid, ACCOUNT);
        assert!(req
            .authorization
            .as_deref()
            .unwrap_or_default()
            .starts_with("Basic "));
        assert_eq!(values(req, "To"), [CALLEE]);
        assert_eq!(values(req, "From"), ["+15550001001"]);
        assert_eq!(
            values(req, "Url"),
            [format!("{PUBLIC}/twilio/voice/outbound?call_id={id}").as_str()]
        );
        assert_eq!(values(req, "Method"), ["POST"]);
        assert_eq!(
            values(req, "StatusCallback"),
            [format!("{PUBLIC}/twilio/voice/status?call_id={id}").as_str()]
        );
        assert_eq!(
            values(req, "StatusCallbackEvent"),
            ["initiated", "ringing", "answered", "completed"]
        );
        assert_eq!(values(req, "Timeout"), ["30"]);
        // Asynchronous answering-machine detection that waits for a greeting's end.
        assert_eq!(values(req, "MachineDetection"), ["DetectMessageEnd"]);
        assert_eq!(values(req, "AsyncAmd"), ["true"]);
        assert_eq!(
            values(req, "AsyncAmdStatusCallback"),
            [format!("{PUBLIC}/twilio/voice/amd?call_id={id}").as_str()]
        );
        // Answered: the agent greets with the call's variables.
        let (answered_sid, media) = env.rest.answered(0, WAIT).await;
        assert_eq!(&answered_sid, sid);
        let greeting = env.wait_model_event("response.create", 1).await.remove(0);
        assert!(
            greeting["response"]["instructions"]
                .as_str()
                .expect("instructions")
                .contains("Hello Ada, this is Alpha about your appointment."),
            "{greeting}"
        );
        media
            .wait_for("the greeting", WAIT, |r| r.audio.len() >= AGENT_SHORT.len())
            .await;
        let live = env.get_call(&api, &id).await;
        assert_eq!(live["status"], "in-progress");
        assert_eq!(live["call_sid"], sid.as_str());
        // The callee hangs up.
        media.stop();
        env.rest.complete(sid, 9).await;
        let call = env.wait_call_ended(&api, &id).await;
        assert_eq!(call["status"], "completed");
        assert_eq!(call["disposition"], "completed");
        assert_eq!(call["end_reason"], "caller_hung_up");
        let conv = env
            .db
            .store
            .get_conversation(
                &org.id,
                &switchboard_domain::ids::ConversationId::parse(
                    call["conversation_id"].as_str().expect("conv"),
                )
                .expect("id"),
            )
            .await
            .expect("conversation");
        assert_eq!(conv.direction.as_str(), "outbound");
        assert_eq!(conv.variables["name"], "Ada");
        let items = env.transcript(&org, sid).await;
        assert_eq!(items[0].content["text"], AGENT_SHORT_TEXT);
        env.shutdown();
    }
);

backend_test!(
    busy_no_answer_refused_and_canceled_calls_end_with_their_disposition,
    |db| {
        let mut env = env(db, Behavior::default()).await;
        let org = env.org("Alpha", "+15550001001", &[], None).await;
        let api = env.outbound(&org).await;
        env.rest.script_calls([
            CallScript::Busy,
            CallScript::NoAnswer,
            CallScript::Refuse(
                400,
                21215,
                "Account not authorized to call +15557770100.".into(),
            ),
            CallScript::RingUntilCanceled,
        ]);
        let mut place = Vec::new();
        for _ in 0..3 {
            let (status, call, _) = env.post_call(&api, json!({"to": CALLEE}), None).await;
            assert_eq!(status, 201);
            let id = call["id"].as_str().expect("id").to_owned();
            place.push(env.wait_call_ended(&api, &id).await);
        }
        assert_eq!(
            (
                place[0]["status"].as_str(),
                place[0]["disposition"].as_str()
            ),
            (Some("busy"), Some("busy"))
        );
        assert_eq!(place[0]["sip_response_code"], 486);
        assert_eq!(
            (
                place[1]["status"].as_str(),
                place[1]["disposition"].as_str()
            ),
            (Some("no-answer"), Some("no_answer"))
        );
        assert_eq!(
            (
                place[2]["status"].as_str(),
                place[2]["disposition"].as_str()
            ),
            (Some("failed"), Some("failed"))
        );
        assert_eq!(place[2]["twilio_error_code"], 21215);
        assert!(place[2]["error"]
            .as_str()
            .expect("error")
            .contains("Account not authorized"));
        // Cancelled while ringing.
        let (_, call, _) = env.post_call(&api, json!({"to": CALLEE}), None).await;
        let id = call["id"].as_str().expect("id").to_owned();
        env.wait_status(&api, &id, "ringing").await;
        let res = env
            .http
            .post(format!("{}/api/v1/calls/{id}/cancel", env.base))
            .bearer_auth(&api.key)
            .send()
            .await
            .expect("cancel");
        assert_eq!(res.status(), 200);
        let call = env.wait_call_ended(&api, &id).await;
        assert_eq!(call["disposition"], "canceled");
        let sid = call["call_sid"].as_str().expect("sid");
        assert!(env
            .rest
            .requests()
            .iter()
            .any(|r| r.call_sid == sid && form_value(r, "Status") == Some("canceled")));
        // Cancelling again: the call is over.
        let res = env
            .http
            .post(format!("{}/api/v1/calls/{id}/cancel", env.base))
            .bearer_auth(&api.key)
            .send()
            .await
            .expect("cancel");
        assert_eq!(res.status(), 409);
        // None of them reached the agent.
        assert!(env.model.sessions().is_empty());
        env.shutdown();
    }
);

backend_test!(bad_outbound_requests_dial_nothing, |db| {
    let mut env = env(db, Behavior::default()).await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    let api = env.outbound(&org).await;
    let contact = env
        .db
        .store
        .create_contact(
            &org.id,
            serde_json::from_value(
                json!({"number": "+15557770111", "name": "Bo", "opted_out": true}),
            )
            .expect("c"),
        )
        .await
        .expect("contact");
    for (body, status, code) in [
        (json!({}), 422, "invalid_field"),
        (
            json!({"to": CALLEE, "contact_id": contact.id}),
            422,
            "invalid_field",
        ),
        (json!({"to": "5557770100"}), 422, "invalid_field"),
        (json!({"contact_id": "ct_unknown"}), 422, "invalid_field"),
        (json!({"contact_id": contact.id}), 409, "contact_opted_out"),
        (
            json!({"to": CALLEE, "from_number": "+15550009999"}),
            422,
            "invalid_field",
        ),
        (
            json!({"to": CALLEE, "variables": [1]}),
            422,
            "invalid_field",
        ),
    ] {
        let (s, b, _) = env.post_call(&api, body.clone(), None).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {b}"
        );
    }
    // An organization without Twilio credentials cannot dial.
    let other = env.db.store.create_org("Beta").await.expect("org");
    let (_, key) = env
        .db
        .store
        .create_api_key(&other.id, "t")
        .await
        .expect("key");
    let (s, b, _) = env
        .post_call(
            &Api {
                key: key.expose().to_owned(),
            },
            json!({"to": CALLEE}),
            None,
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("no_voice_number"))
    );
    assert!(env.rest.created_calls().is_empty(), "nothing dialled");
    assert_eq!(env.dialer.run_once().await.expect("dialer"), 0);
    env.shutdown();
});

backend_test!(the_same_idempotency_key_dials_once, |db| {
    let mut env = env(db, Behavior::default()).await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    let api = env.outbound(&org).await;
    env.rest.script_calls([CallScript::Busy]);
    let body = json!({"to": CALLEE, "variables": {"a": 1, "b": 2}});
    let (s1, first, replayed) = env.post_call(&api, body, Some("order-42")).await;
    assert_eq!((s1, replayed), (201, false));
    // The same request again (keys in another order): the same call.
    let (s2, second, replayed) = env
        .post_call(
            &api,
            json!({"variables": {"b": 2, "a": 1}, "to": CALLEE}),
            Some("order-42"),
        )
        .await;
    assert_eq!((s2, replayed), (201, true));
    assert_eq!(first["id"], second["id"]);
    // Another body under the same key is refused.
    let (s3, err, _) = env
        .post_call(&api, json!({"to": "+15557770101"}), Some("order-42"))
        .await;
    assert_eq!(
        (s3, err["error"]["code"].as_str()),
        (409, Some("idempotency_conflict"))
    );
    env.wait_call_ended(&api, first["id"].as_str().expect("id"))
        .await;
    assert_eq!(env.rest.created_calls().len(), 1, "dialled once");
    assert_eq!(
        env.dialer.run_once().await.expect("dialer"),
        0,
        "nothing left to dial"
    );
    env.shutdown();
});

backend_test!(
    a_call_accepted_before_a_restart_is_dialled_once_after_it,
    |db| {
        let mut env = env(db, Behavior::default()).await;
        let org = env.org("Alpha", "+15550001001", &[], None).await;
        let api = env.outbound(&org).await;
        env.rest.script_calls([CallScript::NoAnswer]);
        let send_at = Timestamp::from_millis(env.clock.now().millis() + 3_600_000).to_rfc3339();
        let (status, call, _) = env
            .post_call(&api, json!({"to": CALLEE, "send_at": send_at}), None)
            .await;
        assert_eq!(status, 201);
        assert_eq!(call["scheduled_at"], send_at.as_str());
        let id = call["id"].as_str().expect("id").to_owned();
        // Not yet: the time has not come.
        assert_eq!(env.dialer.run_once().await.expect("dialer"), 0);
        // The server stops and starts again; meanwhile the time comes.
        env.restart().await;
        env.rest
            .connect_server(PUBLIC, &env.base, &env.ws, &org.token);
        env.clock.advance(Duration::from_secs(3601));
        let call = env.wait_call_ended(&api, &id).await;
        assert_eq!(call["disposition"], "no_answer");
        assert_eq!(env.rest.created_calls().len(), 1, "dialled once");
        assert_eq!(env.dialer.run_once().await.expect("dialer"), 0);
        env.shutdown();
    }
);

backend_test!(a_machine_gets_the_voicemail_message_or_a_hang_up, |db| {
    let behavior = Behavior {
        steps: vec![said(AGENT_SHORT, AGENT_SHORT_TEXT)],
        ..Behavior::default()
    };
    let mut env = env(db, behavior).await;
    let org = env
        .org("Alpha", "+15550001001", &[], Some("Hello {{name}}!"))
        .await;
    env.patch_agent(
        &org,
        json!({"voicemail": "leave_message", "voicemail_message": "Hi {{name}}, this is Alpha. Please call us back."}),
    )
    .await;
    let api = env.outbound(&org).await;
    env.rest.script_calls([
        CallScript::Machine("machine_end_beep"),
        CallScript::Machine("machine_end_silence"),
        CallScript::Machine("fax"),
    ]);
    // The agent's message after the beep, then a hang-up.
    let (_, call, _) = env
        .post_call(
            &api,
            json!({"to": CALLEE, "variables": {"name": "Ada"}}),
            None,
        )
        .await;
    let id = call["id"].as_str().expect("id").to_owned();
    let call = env.wait_call_ended(&api, &id).await;
    assert_eq!(call["disposition"], "voicemail_left", "{call}");
    assert_eq!(call["end_reason"], "voicemail_left");
    assert_eq!(call["status"], "completed");
    assert_eq!(call["answered_by"], "machine_end_beep");
    let sid = call["call_sid"].as_str().expect("sid").to_owned();
    let twiml = env
        .rest
        .requests()
        .into_iter()
        .find(|r| r.call_sid == sid)
        .and_then(|r| form_value(&r, "Twiml").map(str::to_owned))
        .expect("the message was sent as TwiML");
    assert!(
        twiml.contains("<Say>Hi Ada, this is Alpha. Please call us back.</Say><Hangup/>"),
        "{twiml}"
    );
    // The machine never heard the agent: no greeting, no caller audio forwarded.
    assert!(env.model.events("response.create").is_empty());
    assert_eq!(env.model.sessions()[0].appended, 0);
    // `hangup` for this call: no message.
    let (_, call, _) = env
        .post_call(&api, json!({"to": CALLEE, "voicemail": "hangup"}), None)
        .await;
    let id = call["id"].as_str().expect("id").to_owned();
    let call = env.wait_call_ended(&api, &id).await;
    assert_eq!(call["disposition"], "voicemail_hung_up");
    let sid = call["call_sid"].as_str().expect("sid").to_owned();
    let update = env
        .rest
        .requests()
        .into_iter()
        .find(|r| r.call_sid == sid)
        .expect("hung up through the REST API");
    assert_eq!(form_value(&update, "Status"), Some("completed"));
    // A fax is hung up on.
    let (_, call, _) = env.post_call(&api, json!({"to": CALLEE}), None).await;
    let id = call["id"].as_str().expect("id").to_owned();
    let call = env.wait_call_ended(&api, &id).await;
    assert_eq!(call["disposition"], "voicemail_hung_up");
    assert_eq!(call["answered_by"], "fax");
    assert!(env.model.events("response.create").is_empty());
    env.shutdown();
});

backend_test!(a_person_who_speaks_first_hears_the_agent_at_once, |db| {
    let behavior = Behavior {
        steps: vec![said(AGENT_SHORT, AGENT_SHORT_TEXT)],
        transcripts: vec!["Hello? Who is this?".into()],
        ..Behavior::default()
    };
    let mut env = env(db, behavior).await;
    let org = env
        .org("Alpha", "+15550001001", &[], Some("Hello from Alpha!"))
        .await;
    let api = env.outbound(&org).await;
    // The detection never decides: the callee's voice must not wait for it.
    env.rest.script_calls([CallScript::AnswerWithoutDetection]);
    let (_, call, _) = env.post_call(&api, json!({"to": CALLEE}), None).await;
    let id = call["id"].as_str().expect("id").to_owned();
    let (sid, media) = env.rest.answered(0, WAIT).await;
    env.wait_model_event("session.update", 1).await;
    media.play(CALLER_BOOKING);
    media
        .wait_for("the agent answering the callee", WAIT, |r| {
            r.audio.len() >= AGENT_SHORT.len()
        })
        .await;
    // What the callee said reached the model; the agent answered them instead of greeting.
    assert!(env.model.sessions()[0].appended > 0);
    assert!(env.model.events("response.create").is_empty());
    assert!(env.get_call(&api, &id).await["answered_by"].is_null());
    media.stop();
    env.rest.complete(&sid, 4).await;
    let call = env.wait_call_ended(&api, &id).await;
    assert_eq!(call["disposition"], "completed");
    let items = env.transcript(&org, &sid).await;
    assert_eq!(items[0].content["text"], "Hello? Who is this?");
    env.shutdown();
});

backend_test!(a_live_call_hung_up_through_the_api_says_so, |db| {
    let behavior = Behavior {
        steps: vec![said(AGENT_SHORT, AGENT_SHORT_TEXT)],
        ..Behavior::default()
    };
    let mut env = env(db, behavior).await;
    let org = env
        .org("Alpha", "+15550001001", &[], Some("Hello there!"))
        .await;
    let api = env.outbound(&org).await;
    let (_, call, _) = env.post_call(&api, json!({"to": CALLEE}), None).await;
    let id = call["id"].as_str().expect("id").to_owned();
    let (sid, media) = env.rest.answered(0, WAIT).await;
    media
        .wait_for("the greeting", WAIT, |r| r.audio.len() >= AGENT_SHORT.len())
        .await;
    let res = env
        .http
        .post(format!("{}/api/v1/calls/{id}/cancel", env.base))
        .bearer_auth(&api.key)
        .send()
        .await
        .expect("cancel");
    assert_eq!(res.status(), 200);
    let call = env.wait_call_ended(&api, &id).await;
    assert_eq!(call["end_reason"], "hung_up_by_api");
    assert_eq!(call["disposition"], "completed");
    let update = env
        .rest
        .requests()
        .into_iter()
        .find(|r| r.call_sid == sid && r.resource == "Calls")
        .expect("hung up at Twilio");
    assert_eq!(form_value(&update, "Status"), Some("completed"));
    // The transcript was written before the call was finalized.
    let items = env.transcript(&org, &sid).await;
    assert_eq!(items[0].content["text"], AGENT_SHORT_TEXT);
    env.shutdown();
});

backend_test!(the_outbound_concurrency_cap_holds, |db| {
    let mut env = env(db, Behavior::default()).await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    let api = env.outbound(&org).await;
    let res = env
        .http
        .put(format!("{}/api/v1/settings", env.base))
        .bearer_auth(&api.key)
        .json(&json!({"max_concurrent_outbound_calls": 1}))
        .send()
        .await
        .expect("settings");
    assert_eq!(res.status(), 200);
    env.rest.script_calls([
        CallScript::RingUntilCanceled,
        CallScript::Busy,
        CallScript::Busy,
    ]);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (_, call, _) = env.post_call(&api, json!({"to": CALLEE}), None).await;
        ids.push(call["id"].as_str().expect("id").to_owned());
    }
    env.wait_status(&api, &ids[0], "ringing").await;
    // The others come due and find the only slot taken.
    env.clock.advance(Duration::from_secs(2));
    env.dialer.run_once().await.expect("dialer");
    assert_eq!(env.rest.created_calls().len(), 1, "one call at a time");
    assert_eq!(env.get_call(&api, &ids[1]).await["status"], "queued");
    // The first ends: the next one is dialled, then the last.
    let res = env
        .http
        .post(format!("{}/api/v1/calls/{}/cancel", env.base, ids[0]))
        .bearer_auth(&api.key)
        .send()
        .await
        .expect("cancel");
    assert_eq!(res.status(), 200);
    for (n, id) in ids.iter().enumerate().skip(1) {
        // The waiting calls retry a second later on the test clock.
        eventually("the next call to be dialled", WAIT, || async {
            env.clock.advance(Duration::from_secs(2));
            (env.rest.created_calls().len() > n).then_some(())
        })
        .await;
        // Dialled only once the one before had ended.
        assert!(!env.get_call(&api, &ids[n - 1]).await["ended_at"].is_null());
        env.wait_call_ended(&api, id).await;
    }
    assert_eq!(env.rest.created_calls().len(), 3);
    env.shutdown();
});

backend_test!(
    a_call_whose_callbacks_were_lost_is_settled_from_twilio,
    |db| {
        let mut env = env(db, Behavior::default()).await;
        let org = env.org("Alpha", "+15550001001", &[], None).await;
        let api = env.outbound(&org).await;
        // Nothing Twilio posts reaches the server (it is down behind the public URL, say):
        // Twilio does not retry status callbacks.
        env.rest
            .connect_server(PUBLIC, "http://127.0.0.1:9", "ws://127.0.0.1:9", &org.token);
        env.rest.script_calls([CallScript::NoAnswer]);
        let (status, call, _) = env.post_call(&api, json!({"to": CALLEE}), None).await;
        assert_eq!(status, 201);
        let id = call["id"].as_str().expect("id").to_owned();
        env.wait_created(1).await;
        eventually("the dial's CallSid", WAIT, || async {
            (env.get_call(&api, &id).await["call_sid"] != "").then_some(())
        })
        .await;
        // Settled neither early nor by guesswork: only once any call would have ended, and
        // with what Twilio's Calls API says.
        assert_eq!(env.recovery.run_once().await.expect("sweep"), 0);
        assert!(env.get_call(&api, &id).await["ended_at"].is_null());
        env.clock.advance(Duration::from_secs(181));
        // (Twilio may still be ringing it out: a call not over at Twilio is left alone.)
        eventually("the sweep to settle the call", WAIT, || async {
            (env.recovery.run_once().await.expect("sweep") == 1).then_some(())
        })
        .await;
        let call = env.get_call(&api, &id).await;
        assert_eq!(call["status"], "no-answer");
        assert_eq!(call["disposition"], "no_answer");
        assert_eq!(env.recovery.run_once().await.expect("sweep"), 0);
        env.shutdown();
    }
);
