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
        let media = env.answer_attached(&org, sid, "+15557770501").await;
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
        let media = env.answer_attached(&org, sid, "+15557770502").await;
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
    let sid = "CA00000000000000000000000000000503";
    let _media = env.answer(&org, sid, "+15557770503", 20.0).await;
    let call = env.call_of(&org, sid).await;
    let completed = [("CallSid", sid), ("DialCallStatus", "completed")];
    let signed = |path: String| {
        let http = http.clone();
        let (base, token) = (env.base.clone(), org.token.clone());
        async move {
            post_signed(&http, &base, PUBLIC, &path, &token, &completed)
                .await
                .status()
        }
    };
    // No signature: 403 once the call is known; an unknown call: 404; no call id: 400.
    let res = http
        .post(format!(
            "{}/twilio/voice/dial?call_id={}",
            env.base, call.id
        ))
        .form(&completed)
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 403);
    let unknown = "/twilio/voice/dial?call_id=call_00000000000000000000000000";
    assert_eq!(signed(unknown.into()).await, 404);
    assert_eq!(signed("/twilio/voice/dial".into()).await, 400);
    // A signed callback for a call with no transfer in flight changes nothing.
    let ours = format!("/twilio/voice/dial?call_id={}", call.id);
    assert_eq!(signed(ours).await, 200);
    let after = env.call_of(&org, sid).await;
    assert!(after.ended_at.is_none() && after.transfer.is_none());
});

/// The caller's system transcript items, in order.
async fn system_items(env: &Env<'_>, org: &Org, sid: &str) -> Vec<String> {
    env.transcript(org, sid)
        .await
        .iter()
        .filter(|m| m.role.as_str() == "system")
        .map(|m| m.content["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

backend_test!(
    a_warm_transfer_declined_brings_the_caller_back_and_accepted_joins_them,
    |db| {
        use switchboard_testkit::twilio::CallScript;
        let transfer = Step::Call(
            "transfer_call".into(),
            json!({"reason": "a refund", "summary": "Dana wants a refund for order 42."}),
        );
        let (env, org, key) = transfer_env(db, vec![transfer.clone()]).await;
        env.patch_agent(&org, json!({"transfer_mode": "warm"}))
            .await;
        // The first person says no to the agent; the second presses 1.
        env.rest.script_number(
            TARGET,
            [CallScript::Person("No, sorry."), CallScript::Person("1")],
        );
        let sid = "CA00000000000000000000000000000511";
        let media = env.answer_attached(&org, sid, "+15557770511").await;
        // The model sessions after the caller's: the agent briefing the first person, the caller
        // back with the agent, the agent briefing the second person.
        env.model.queue_behaviors([
            Behavior {
                steps: vec![
                    said(
                        AGENT_SHORT,
                        "Dana wants a refund for order 42. Can you take it?",
                    ),
                    Step::Call("decline_call".into(), json!({})),
                ],
                transcripts: vec!["No, sorry.".into()],
                ..Behavior::default()
            },
            Behavior {
                steps: vec![said(AGENT_SHORT, "They can't take it right now."), transfer],
                transcripts: vec!["Try again please.".into()],
                ..Behavior::default()
            },
            Behavior {
                steps: vec![said(AGENT_SHORT, "Dana again, about her refund.")],
                ..Behavior::default()
            },
        ]);
        media.play_at(CALLER_BOOKING, Duration::from_millis(5));

        // The caller holds in the call's conference while the person is called and briefed by
        // the agent, in its voice, on a stream of their own.
        let call = env.call_of(&org, sid).await;
        let room = format!("sb-{}", call.id);
        let back = env.rest.resumed(sid, 0, WAIT).await;
        let (person, create) = env.rest.created_calls().remove(0);
        let form =
            |name: &str| switchboard_testkit::twilio::form_value(&create, name).map(str::to_owned);
        assert_eq!(form("To").as_deref(), Some(TARGET));
        assert_eq!(form("From").as_deref(), Some("+15550001001"));
        assert_eq!(
            form("Url"),
            Some(format!("{PUBLIC}/twilio/voice/warm?call_id={}", call.id))
        );
        assert_eq!(
            env.rest.heard(sid),
            ["Connecting you now."],
            "the caller heard the hold line"
        );
        let briefing = env.model.sessions()[1].events[0].clone();
        assert_eq!(briefing["type"], "session.update");
        let instructions = briefing["session"]["instructions"]
            .as_str()
            .expect("instructions");
        assert!(
            instructions.contains("Dana wants a refund for order 42."),
            "{instructions}"
        );
        assert_eq!(briefing["session"]["audio"]["output"]["voice"], "marin");
        let tools: Vec<&str> = briefing["session"]["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert_eq!(tools, ["accept_call", "decline_call"]);
        let heard = eventually("the person's goodbye", WAIT, || async {
            let heard = env.rest.heard(&person);
            (!heard.is_empty()).then_some(heard)
        })
        .await;
        assert_eq!(heard, [switchboard_voice::DECLINED]);
        let briefed = eventually("the briefing to end", WAIT, || async {
            env.rest.briefings(&person).first().copied()
        })
        .await;
        assert!(briefed > 0, "the person heard the agent");
        // Declined: the caller is back with the agent, who knows why and speaks first.
        back.wait_for("the agent to speak first", WAIT, |r| {
            r.audio.len() >= AGENT_SHORT.len()
        })
        .await;
        assert!(
            env.rest.conference(&room).is_empty(),
            "the caller left the hold"
        );
        let replayed = env.model.sessions()[2].events.clone();
        assert!(
            replayed
                .iter()
                .any(|e| e["type"] == "conversation.item.create"
                    && e["item"]["role"] == "system"
                    && e["item"]["content"][0]["text"]
                        .as_str()
                        .is_some_and(|t| t.contains("declined"))),
            "{replayed:?}"
        );
        let c = env.call_of(&org, sid).await;
        let t = c.transfer.expect("transfer");
        assert_eq!(
            (t.mode.as_str(), t.status.as_str(), t.outcome.as_deref()),
            ("warm", "failed", Some("declined"))
        );
        assert!(c.ended_at.is_none());

        // Again: this time the person presses 1 and joins the caller; the agent is gone.
        back.wait_for("the answer to play", WAIT, |r| r.echoed == r.marks.len())
            .await;
        back.play_at(CALLER_BOOKING, Duration::from_millis(5));
        let ended = env.wait_ended(&org, sid).await;
        assert_eq!(ended.end_reason.as_deref(), Some("transferred"));
        let (second, _) = env.rest.created_calls().remove(1);
        let joined = eventually("the person to join the caller", WAIT, || async {
            let members = env.rest.conference(&room);
            (members.len() == 2).then_some(members)
        })
        .await;
        assert_eq!(joined, [sid.to_owned(), second.clone()]);
        assert_eq!(env.rest.heard(&second), [switchboard_voice::CONNECTING]);
        let t = ended.transfer.expect("transfer");
        assert_eq!(
            (
                t.status.as_str(),
                t.outcome.as_deref(),
                t.leg_call_sid.as_deref()
            ),
            ("completed", Some("accepted"), Some(second.as_str()))
        );
        assert_eq!(
            call_events(&env, &key).await,
            [
                "call.started",
                "call.transfer_started",
                "call.transfer_answered",
                "call.transfer_failed",
                "call.transfer_started",
                "call.transfer_answered",
                "call.transfer_completed",
                "call.ended"
            ]
        );
        let system = system_items(&env, &org, sid).await;
        assert_eq!(system.len(), 6, "{system:?}");
        assert!(system[0].starts_with("Transferring the call to +15550009999 (warm)"));
        assert!(system[1].contains("answered and is hearing"));
        assert!(system[2].contains("declined"));
        assert!(system[3].starts_with("Transferring the call to +15550009999 (warm)"));
        assert!(system[4].contains("answered and is hearing"));
        assert_eq!(system[5], "+15550009999 accepted the call");
    }
);

backend_test!(
    without_the_model_the_person_hears_the_summary_read_out,
    |db| {
        use switchboard_testkit::twilio::CallScript;
        let transfer = Step::Call(
            "transfer_call".into(),
            json!({"reason": "a refund", "summary": "Dana wants a refund for order 42."}),
        );
        let (env, org, _key) = transfer_env(db, vec![transfer]).await;
        env.patch_agent(&org, json!({"transfer_mode": "warm"}))
            .await;
        env.rest
            .script_number(TARGET, [CallScript::Person("Yes, put her through.")]);
        let sid = "CA00000000000000000000000000000513";
        let media = env.answer_attached(&org, sid, "+15557770513").await;
        // The briefing session cannot be opened: Twilio goes on to the `<Say>` summary.
        env.model.queue_behaviors([Behavior {
            refuse: true,
            ..Behavior::default()
        }]);
        media.play_at(CALLER_BOOKING, Duration::from_millis(5));
        let ended = env.wait_ended(&org, sid).await;
        assert_eq!(ended.end_reason.as_deref(), Some("transferred"));
        let (person, _) = env.rest.created_calls().remove(0);
        let heard = eventually("the person to join", WAIT, || async {
            let heard = env.rest.heard(&person);
            (heard.len() >= 3).then_some(heard)
        })
        .await;
        assert_eq!(heard[0], "Dana wants a refund for order 42.", "{heard:?}");
        assert!(heard[1].starts_with("Press 1 or say yes"), "{heard:?}");
        assert_eq!(heard[2], switchboard_voice::CONNECTING);
        assert_eq!(
            env.rest.briefings(&person),
            [0],
            "the briefing stream closed unheard"
        );
        let room = format!("sb-{}", ended.id);
        assert_eq!(env.rest.conference(&room), [sid.to_owned(), person]);
    }
);

backend_test!(
    a_staff_warm_transfer_to_a_busy_line_brings_the_caller_back,
    |db| {
        use switchboard_testkit::twilio::CallScript;
        let (env, org, key) =
            transfer_env(db, vec![said(AGENT_SHORT, "Hello, how can I help?")]).await;
        env.rest.script_number(TARGET, [CallScript::Busy]);
        let sid = "CA00000000000000000000000000000512";
        let media = env.answer_attached(&org, sid, "+15557770512").await;
        env.model.set_behavior(Behavior {
            steps: vec![said(AGENT_SHORT, "Sorry, the line was busy.")],
            ..Behavior::default()
        });
        media.play_at(CALLER_BOOKING, Duration::from_millis(5));
        media
            .wait_for("the agent's answer", WAIT, |r| {
                r.audio.len() >= AGENT_SHORT.len()
            })
            .await;
        let call = env.call_of(&org, sid).await;
        let (status, done) = env
            .call_api(
                reqwest::Method::POST,
                &key,
                &format!("/api/v1/calls/{}/actions", call.id),
                Some(json!({"action": "transfer", "mode": "warm"})),
            )
            .await;
        assert_eq!(
            (status, done["status"].as_str()),
            (200, Some("done")),
            "{done}"
        );
        let back = env.rest.resumed(sid, 0, WAIT).await;
        back.wait_for("the agent to speak first", WAIT, |r| {
            r.audio.len() >= AGENT_SHORT.len()
        })
        .await;
        let c = env.call_of(&org, sid).await;
        let t = c.transfer.expect("transfer");
        assert_eq!(
            (
                t.requested_by.as_str(),
                t.status.as_str(),
                t.outcome.as_deref()
            ),
            ("staff", "failed", Some("busy"))
        );
        // Staff gave no summary: the person would have heard who transfers and the caller's
        // last words.
        let summary = t.summary.expect("summary");
        assert_eq!(
            summary,
            "A colleague is transferring a caller from +15557770512 to you. \
         The caller's last words were: Put me through to billing."
        );
        back.stop();
        env.wait_ended(&org, sid).await;
    }
);

backend_test!(
    a_caller_who_cannot_be_reconnected_after_a_failed_transfer_is_recorded_so,
    |db| {
        let (env, org, _key) =
            transfer_env(db, vec![Step::Call("transfer_call".into(), json!({}))]).await;
        env.rest.script_dial(TARGET, [DialScript::NoAnswer]);
        // Twilio reaches the server's callbacks, but the new stream cannot connect.
        env.rest.move_server(&env.base, "ws://127.0.0.1:9");
        let sid = "CA00000000000000000000000000000504";
        let media = env.answer_attached(&org, sid, "+15557770504").await;
        media.play_at(CALLER_BOOKING, Duration::from_millis(5));
        eventually("the transfer to fail", WAIT, || async {
            let c = env.call_of(&org, sid).await;
            c.transfer
                .filter(|t| t.status.as_str() == "failed")
                .map(|_| ())
        })
        .await;
        // `<Connect>` failed, nothing followed, and Twilio ended the call.
        assert_eq!(
            env.status(&org, sid, "completed", "5", &[("CallDuration", "30")])
                .await,
            204
        );
        let ended = env.wait_ended(&org, sid).await;
        assert_eq!(ended.end_reason.as_deref(), Some("stream_closed"));
        assert_eq!(
        ended.error.as_deref(),
        Some("the caller was not reconnected to the agent after the transfer to +15550009999 (no-answer)")
    );
    }
);

backend_test!(
    a_caller_who_hangs_up_on_hold_cancels_the_call_to_the_person,
    |db| {
        use switchboard_testkit::twilio::CallScript;
        let (env, org, key) =
            transfer_env(db, vec![Step::Call("transfer_call".into(), json!({}))]).await;
        env.patch_agent(&org, json!({"transfer_mode": "warm"}))
            .await;
        env.rest
            .script_number(TARGET, [CallScript::RingUntilCanceled]);
        let sid = "CA00000000000000000000000000000514";
        let media = env.answer_attached(&org, sid, "+15557770514").await;
        media.play_at(CALLER_BOOKING, Duration::from_millis(5));
        let person = eventually("the person's phone to ring", WAIT, || async {
            let c = env.call_of(&org, sid).await;
            c.transfer.and_then(|t| t.leg_call_sid)
        })
        .await;
        // The caller gives up on hold.
        assert_eq!(
            env.status(&org, sid, "completed", "7", &[("CallDuration", "40")])
                .await,
            204
        );
        let ended = env.wait_ended(&org, sid).await;
        assert_eq!(ended.end_reason.as_deref(), Some("caller_hung_up"));
        let t = ended.transfer.expect("transfer");
        assert_eq!(
            (t.status.as_str(), t.outcome.as_deref()),
            ("failed", Some("caller-hung-up"))
        );
        let cancel = eventually("the person's call cancelled", WAIT, || async {
            env.rest.requests().into_iter().find(|r| {
                r.call_sid == person
                    && switchboard_testkit::twilio::form_value(r, "Status") == Some("canceled")
            })
        })
        .await;
        assert_eq!(cancel.resource, "Calls");
        assert_eq!(
            call_events(&env, &key).await,
            [
                "call.started",
                "call.transfer_started",
                "call.transfer_failed",
                "call.ended"
            ]
        );
    }
);
