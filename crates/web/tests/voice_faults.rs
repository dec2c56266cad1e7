//! Voice calls against the real services' awkward behaviour, reproduced by the fakes: late
//! transcription, audio after a barge-in, failed responses, a model that stops reading, a
//! hang-up in the middle of an answer, tools still running at hang-up, a status callback
//! before the stream's `stop`, and calls stranded by a dead instance. Both backends.

mod voice_env;

use switchboard_domain::values::MessageRole;
use switchboard_testkit::eventually;
use voice_env::*;

fn texts(items: &[switchboard_domain::entities::Message]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|m| {
            (
                m.role.as_str().to_owned(),
                m.content["text"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Caller audio long and loud enough to keep the fake's VAD in one turn.
fn long_speech() -> Vec<u8> {
    CALLER_BOOKING
        .iter()
        .copied()
        .filter(|b| *b != 0xFF)
        .cycle()
        .take(400_000)
        .collect()
}

backend_test!(late_transcription_is_stored_in_spoken_order, |db| {
    let behavior = Behavior {
        steps: vec![
            said(AGENT_SHORT, AGENT_SHORT_TEXT),
            said(AGENT_REPLY, AGENT_REPLY_TEXT),
        ],
        transcripts: vec!["I would like to book an appointment.".into()],
        late_transcripts: true,
        ..Behavior::default()
    };
    let mut env = env(db, behavior).await;
    let org = env
        .org("Alpha", "+15550001001", &[], Some("Hello from Alpha!"))
        .await;
    let sid = "CA00000000000000000000000000000f01";
    let media = env.answer(&org, sid, "+15557770001", 8.0).await;
    media
        .wait_for("the greeting to play", WAIT, |r| {
            r.audio.len() >= AGENT_SHORT.len() && r.echoed == r.marks.len()
        })
        .await;
    media.play(CALLER_BOOKING);
    // The transcription of the caller's turn arrives only after the answer's response.done.
    eventually("the whole transcript", WAIT, || async {
        (env.transcript(&org, sid).await.len() >= 3).then_some(())
    })
    .await;
    media.stop();
    env.wait_ended(&org, sid).await;
    let items = env.transcript(&org, sid).await;
    assert_eq!(
        texts(&items),
        [
            ("assistant".into(), AGENT_SHORT_TEXT.into()),
            ("user".into(), "I would like to book an appointment.".into()),
            ("assistant".into(), AGENT_REPLY_TEXT.into()),
        ],
        "spoken order, not arrival order"
    );
    // The API serves the same order.
    let (_, key) = env
        .db
        .store
        .create_api_key(&org.id, "t")
        .await
        .expect("key");
    let call = env.call_of(&org, sid).await;
    let page: Value = env
        .http
        .get(format!(
            "{}/api/v1/conversations/{}/messages",
            env.base, call.conversation_id
        ))
        .bearer_auth(key.expose())
        .send()
        .await
        .expect("messages")
        .json()
        .await
        .expect("json");
    let roles: Vec<&str> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| m["role"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(roles, ["assistant", "user", "assistant"]);
    env.shutdown();
});

backend_test!(late_audio_after_a_barge_in_is_not_played, |db| {
    let behavior = Behavior {
        steps: vec![
            said(AGENT_REPLY, AGENT_REPLY_TEXT),
            said(AGENT_SHORT, AGENT_SHORT_TEXT),
        ],
        transcripts: vec!["Hello.".into(), "Wait.".into()],
        // Slightly faster than real time, so the answer is still streaming at the barge-in.
        delta_interval: Duration::from_millis(100),
        deltas_after_interrupt: 3,
        ..Behavior::default()
    };
    let mut env = env(db, behavior).await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    let sid = "CA00000000000000000000000000000f02";
    let media = env.answer(&org, sid, "+15557770002", 1.0).await;
    env.wait_model_event("session.update", 1).await;
    media.play(CALLER_BOOKING);
    media
        .wait_for("part of the answer", WAIT, |r| r.audio.len() >= 4000)
        .await;
    media.play(CALLER_INTERRUPT);
    media
        .wait_for("a clear", WAIT, |r| !r.clears.is_empty())
        .await;
    let padded = AGENT_SHORT.len().div_ceil(160) * 160;
    media
        .wait_for("the next answer", WAIT, |r| {
            r.audio.len() >= r.clears[0] + padded
        })
        .await;
    // Let the next answer play out, then hang up: nothing else may have been played.
    media
        .wait_for("the next answer to play", WAIT, |r| {
            r.echoed == r.marks.len()
        })
        .await;
    media.stop();
    env.wait_ended(&org, sid).await;
    let got = media.snapshot();
    assert_eq!(
        got.audio.len() - got.clears[0],
        padded,
        "only the new answer after the clear, none of the interrupted item's late audio"
    );
    let late = env.metric("switchboard_voice_late_deltas_total").await;
    assert!(late >= 1, "{late}");
    env.shutdown();
});

backend_test!(
    a_failed_response_is_retried_once_then_apologised_for,
    |db| {
        // A transient failure (rate limit): one retry, and the caller hears the answer.
        let behavior = Behavior {
            steps: vec![said(AGENT_SHORT, AGENT_SHORT_TEXT)],
            transcripts: vec!["Hello?".into()],
            fail_responses: vec!["rate_limit_exceeded".into()],
            ..Behavior::default()
        };
        let mut env = env(db, behavior).await;
        let org = env.org("Alpha", "+15550001001", &[], None).await;
        let sid = "CA00000000000000000000000000000f03";
        let media = env.answer(&org, sid, "+15557770003", 8.0).await;
        env.wait_model_event("session.update", 1).await;
        media.play(CALLER_BOOKING);
        media
            .wait_for("the answer after the retry", WAIT, |r| {
                r.audio.len() >= AGENT_SHORT.len()
            })
            .await;
        assert_eq!(env.model.events("response.create").len(), 1, "one retry");
        media.stop();
        let call = env.wait_ended(&org, sid).await;
        assert_eq!(call.end_reason.as_deref(), Some("caller_hung_up"));
        // A failure that a retry does not fix (quota): no retry, the apology, `failed` with the
        // model's code.
        env.model.set_behavior(Behavior {
            steps: vec![said(AGENT_SHORT, AGENT_SHORT_TEXT)],
            transcripts: vec!["Hello?".into()],
            fail_responses: vec!["insufficient_quota".into()],
            ..Behavior::default()
        });
        let sid = "CA00000000000000000000000000000f04";
        let media = env.answer(&org, sid, "+15557770004", 8.0).await;
        env.wait_model_event("session.update", 2).await;
        media.play(CALLER_BOOKING);
        let call = env.wait_ended(&org, sid).await;
        assert_eq!(call.status.as_str(), "failed");
        assert_eq!(call.end_reason.as_deref(), Some("model_error"));
        assert!(
            call.error
                .as_deref()
                .unwrap_or_default()
                .contains("insufficient_quota"),
            "{:?}",
            call.error
        );
        assert_apology(&env.wait_rest(1).await[0]);
        assert_eq!(env.model.events("response.create").len(), 1, "no new retry");
        // A transient failure twice in a row: one retry, then the apology.
        env.model.set_behavior(Behavior {
            steps: vec![said(AGENT_SHORT, AGENT_SHORT_TEXT)],
            transcripts: vec!["Hello?".into()],
            fail_responses: vec!["server_error".into(), "server_error".into()],
            ..Behavior::default()
        });
        let sid = "CA00000000000000000000000000000f05";
        let media2 = env.answer(&org, sid, "+15557770005", 8.0).await;
        env.wait_model_event("session.update", 3).await;
        media2.play(CALLER_BOOKING);
        let call = env.wait_ended(&org, sid).await;
        assert_eq!(call.end_reason.as_deref(), Some("model_error"));
        assert!(call
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("server_error"));
        assert_eq!(env.model.events("response.create").len(), 2);
        media.stop();
        media2.stop();
        env.shutdown();
    }
);

backend_test!(a_model_that_stops_reading_is_cut_off, |db| {
    let behavior = Behavior {
        stop_reading_after_appends: Some(20),
        ..Behavior::default()
    };
    let mut env = env_with(db, behavior, |c| {
        c.voice.send_timeout = Duration::from_secs(1);
    })
    .await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    let sid = "CA00000000000000000000000000000f06";
    let media = env.answer(&org, sid, "+15557770006", 1.0).await;
    env.wait_model_event("session.update", 1).await;
    // The caller keeps talking, fast: the model's buffers fill and a send blocks.
    media.play_at(&long_speech(), Duration::from_millis(1));
    let call = env.wait_ended(&org, sid).await;
    assert_eq!(call.status.as_str(), "failed");
    assert_eq!(call.end_reason.as_deref(), Some("peer_stuck"));
    assert!(
        call.error
            .as_deref()
            .unwrap_or_default()
            .contains("the model stopped reading"),
        "{:?}",
        call.error
    );
    assert_apology(&env.wait_rest(1).await[0]);
    media.stop();
    env.shutdown();
});

backend_test!(
    a_hang_up_mid_answer_keeps_the_played_part_and_finalizes_after_it,
    |db| {
        let behavior = Behavior {
            steps: vec![said(AGENT_REPLY, AGENT_REPLY_TEXT)],
            transcripts: vec!["What are your hours?".into()],
            // Real time, so the answer is still streaming when the caller hangs up.
            delta_interval: Duration::from_millis(125),
            ..Behavior::default()
        };
        let mut env = env(db, behavior).await;
        let org = env.org("Alpha", "+15550001001", &[], None).await;
        let sid = "CA00000000000000000000000000000f07";
        let media = env.answer(&org, sid, "+15557770007", 1.0).await;
        env.rest.attach(&media);
        env.wait_model_event("session.update", 1).await;
        media.play(CALLER_BOOKING);
        media
            .wait_for("a second of the answer to play", WAIT, |r| {
                played_ms(r) >= 1000
            })
            .await;
        // Twilio reports the call over before the stream's `stop` arrives: the call task
        // still owns the call, so nothing is finalized yet.
        assert_eq!(
            env.status(&org, sid, "completed", "3", &[("CallDuration", "7")])
                .await,
            204
        );
        let call = env.call_of(&org, sid).await;
        assert!(
            call.ended_at.is_none(),
            "not finalized before the transcript"
        );
        media.stop();
        let call = env.wait_ended(&org, sid).await;
        assert_eq!(call.status.as_str(), "completed");
        assert_eq!(call.end_reason.as_deref(), Some("caller_hung_up"));
        assert_eq!(call.duration_seconds, Some(7));
        // The moment the call is final, its transcript is complete, with the played part of
        // the unfinished answer.
        let items = env.transcript(&org, sid).await;
        let agent = items
            .iter()
            .find(|m| m.role == MessageRole::Assistant)
            .expect("the cut-off answer is stored");
        assert_eq!(agent.content["cut_off"], true);
        assert_eq!(agent.content["interrupted"], true);
        let heard = agent.content["text"].as_str().expect("text");
        let generated = agent.content["generated_text"].as_str().expect("generated");
        assert!(AGENT_REPLY_TEXT.starts_with(generated), "{generated}");
        assert!(
            !heard.is_empty() && heard.len() < generated.len() && generated.starts_with(heard),
            "heard {heard:?} of {generated:?}"
        );
        assert!(agent.content["audio_end_ms"].as_u64().expect("ms") >= 1000);
        // call.ended is in the event log once, after the transcript was written.
        let (_, key) = env
            .db
            .store
            .create_api_key(&org.id, "t")
            .await
            .expect("key");
        let events: Value = env
            .http
            .get(format!("{}/api/v1/events", env.base))
            .bearer_auth(key.expose())
            .send()
            .await
            .expect("events")
            .json()
            .await
            .expect("json");
        let ended = events["data"]
            .as_array()
            .expect("data")
            .iter()
            .filter(|e| e["type"] == "call.ended")
            .count();
        assert_eq!(ended, 1);
        env.shutdown();
    }
);

backend_test!(tools_running_at_hang_up_finish_and_are_recorded, |db| {
    let behavior = Behavior {
        steps: vec![Step::Call(
            "send_sms".into(),
            json!({"to": "+15557770008", "text": "Your booking code is 42."}),
        )],
        transcripts: vec!["Text me the code.".into()],
        ..Behavior::default()
    };
    let mut env = env(db, behavior).await;
    let org = env.org("Alpha", "+15550001001", &["send_sms"], None).await;
    env.db
        .store
        .create_contact(
            &org.id,
            serde_json::from_value(json!({"number": "+15557770008", "name": "Ada"})).expect("c"),
        )
        .await
        .expect("contact");
    env.db
        .store
        .create_number(
            &org.id,
            NewPhoneNumber {
                number: PhoneNumber::parse("+15550001002").expect("e164"),
                channel: NumberChannel::Sms,
                agent_id: Some(org.agent.clone()),
                active: None,
            },
        )
        .await
        .expect("sms number");
    // The carrier takes a while: the caller hangs up while the text is being sent.
    env.rest.delay_messages(Duration::from_secs(2));
    let sid = "CA00000000000000000000000000000f08";
    let media = env.answer(&org, sid, "+15557770008", 20.0).await;
    env.wait_model_event("session.update", 1).await;
    media.play_at(CALLER_BOOKING, Duration::from_millis(5));
    eventually("the text to be sent", WAIT, || async {
        (!env.rest.messages().is_empty()).then_some(())
    })
    .await;
    media.stop();
    let call = env.wait_ended(&org, sid).await;
    assert_eq!(call.end_reason.as_deref(), Some("caller_hung_up"));
    // The tool finished and its outcome is recorded, though nobody heard it.
    let audit = env
        .db
        .store
        .list_tool_invocations(&org.id, &call.conversation_id)
        .await
        .expect("audit");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].status.as_str(), "ok", "{:?}", audit[0]);
    let items = env.transcript(&org, sid).await;
    let output = items
        .iter()
        .find(|m| m.role == MessageRole::Tool)
        .expect("the tool's output is in the transcript");
    assert_eq!(output.content["after_call"], true);
    assert!(
        env.model.events("conversation.item.create").is_empty(),
        "the result was not sent to the model after the call"
    );
    env.shutdown();
});

backend_test!(a_call_stranded_by_a_dead_instance_is_recovered_once, |db| {
    let mut env = env(db, Behavior::default()).await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    let sid = "CA00000000000000000000000000000f09";
    let media = env.answer(&org, sid, "+15557770009", 1.0).await;
    env.wait_model_event("session.update", 1).await;
    // The live call's own instance is alive: the sweep leaves it alone.
    assert_eq!(env.recovery.run_once().await.expect("sweep"), 0);
    assert!(env.call_of(&org, sid).await.ended_at.is_none());
    // Another instance, whose heartbeat stopped long ago, left a call in progress.
    let store = &env.db.store;
    let long_ago = Timestamp::from_millis(Timestamp::now().millis() - 3_600_000);
    store
        .register_instance("ins_dead", long_ago)
        .await
        .expect("instance");
    let twiml = env
        .incoming(&org, "CA00000000000000000000000000000f10", "+15557770010")
        .await;
    let (_, params) = stream_of(&twiml).expect("stream");
    let call_id = params
        .iter()
        .find(|(k, _)| k == "call_id")
        .map(|(_, v)| v.clone())
        .expect("call id");
    store
        .claim_call_stream(
            &org.id,
            &switchboard_domain::ids::CallId::parse(&call_id).expect("id"),
            "",
            "MZdead",
            "ins_dead",
            long_ago,
        )
        .await
        .expect("claim")
        .expect("claimed");
    assert_eq!(env.recovery.run_once().await.expect("sweep"), 1);
    let call = env
        .wait_ended(&org, "CA00000000000000000000000000000f10")
        .await;
    assert_eq!(call.status.as_str(), "failed");
    assert_eq!(call.end_reason.as_deref(), Some("instance_lost"));
    // Twilio is told to apologise and hang up, once.
    let reqs = env.wait_rest(1).await;
    assert_eq!(reqs[0].call_sid, "CA00000000000000000000000000000f10");
    assert_apology(&reqs[0]);
    assert_eq!(env.recovery.run_once().await.expect("sweep"), 0);
    assert_eq!(env.rest.requests().len(), 1);
    // The live call on this instance was never touched.
    assert!(env.call_of(&org, sid).await.ended_at.is_none());
    media.stop();
    env.wait_ended(&org, sid).await;
    env.shutdown();
});

backend_test!(protocol_details_match_the_real_services, |db| {
    let mut env = env(db, Behavior::default()).await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    // A custom voice goes to the model as {"id": ...}.
    env.patch_agent(&org, json!({"voice": "voice_custom123"}))
        .await;
    // A stream whose `start` names another CallSid than its token's call is closed before
    // any model session, and does not use up the call's stream.
    let sid = "CA00000000000000000000000000000f11";
    let twiml = env.incoming(&org, sid, "+15557770011").await;
    let (_, params) = stream_of(&twiml).expect("stream");
    let wrong = env
        .media("CA00000000000000000000000000000f99", &params)
        .await;
    assert!(wrong.finished(WAIT).await.closed);
    assert!(env.model.sessions().is_empty());
    let media = env.media(sid, &params).await;
    let update = env.wait_model_event("session.update", 1).await.remove(0);
    assert_eq!(
        update["session"]["audio"]["output"]["voice"],
        json!({"id": "voice_custom123"})
    );
    media.stop();
    env.wait_ended(&org, sid).await;
    env.shutdown();
    // The beta shape against OpenAI's GA endpoint: refused the way OpenAI refuses it, and the
    // call ends with the apology and the reason.
    let mut env = env_with(db, Behavior::default(), |c| {
        c.voice.shape = switchboard_realtime::Shape::Beta;
    })
    .await;
    let org = env.org("Beta", "+15550002002", &[], None).await;
    let sid = "CA00000000000000000000000000000f12";
    let media = env.answer(&org, sid, "+15557770012", 1.0).await;
    let call = env.wait_ended(&org, sid).await;
    assert_eq!(call.status.as_str(), "failed");
    assert!(
        call.error
            .as_deref()
            .unwrap_or_default()
            .contains("beta_api_shape_disabled"),
        "{:?}",
        call.error
    );
    assert_apology(&env.wait_rest(1).await[0]);
    media.stop();
    env.shutdown();
});

/// The `conversation.item.create` items a model session received, in order.
fn replayed(session: &switchboard_testkit::realtime::Session) -> Vec<Value> {
    session
        .events
        .iter()
        .filter(|e| e["type"] == "conversation.item.create")
        .map(|e| e["item"].clone())
        .collect()
}

backend_test!(
    a_model_drop_mid_call_reconnects_and_replays_the_conversation,
    |db| {
        let behavior = Behavior {
            steps: vec![
                said(AGENT_SHORT, AGENT_SHORT_TEXT),
                said(AGENT_REPLY, AGENT_REPLY_TEXT),
            ],
            transcripts: vec!["I would like to book an appointment.".into()],
            drop_after_responses: Some(1),
            drops: 1,
            ..Behavior::default()
        };
        let mut env = env(db, behavior).await;
        let org = env.org("Alpha", "+15550001001", &[], None).await;
        let sid = "CA00000000000000000000000000000f21";
        let media = env.answer(&org, sid, "+15557770021", 8.0).await;
        env.wait_model_event("session.update", 1).await;
        media.play(CALLER_BOOKING);
        // The first answer, then the connection drops; a second session is opened.
        env.wait_model_event("session.update", 2).await;
        env.wait_model_event("response.create", 1).await;
        let sessions = env.model.sessions();
        assert_eq!(sessions.len(), 2);
        // The new session got the conversation so far, then was asked to apologise.
        let items = replayed(&sessions[1]);
        assert_eq!(items.len(), 2, "{items:?}");
        assert_eq!(items[0]["role"], "user");
        assert_eq!(
            items[0]["content"][0]["text"],
            "I would like to book an appointment."
        );
        assert_eq!(items[1]["role"], "assistant");
        assert_eq!(items[1]["content"][0]["type"], "output_text");
        assert_eq!(items[1]["content"][0]["text"], AGENT_SHORT_TEXT);
        let create = &env.model.events("response.create")[0];
        assert!(create["response"]["instructions"]
            .as_str()
            .expect("instructions")
            .contains("apologise"));
        // The caller hears the agent again, and the call goes on.
        media
            .wait_for("the agent after the reconnect", WAIT, |r| {
                r.audio.len() >= 2 * AGENT_SHORT.len()
            })
            .await;
        let call = env.call_of(&org, sid).await;
        assert!(call.ended_at.is_none());
        media.stop();
        let call = env.wait_ended(&org, sid).await;
        assert_eq!(call.status.as_str(), "completed");
        assert_eq!(call.end_reason.as_deref(), Some("caller_hung_up"));
        assert_eq!(
            env.metric("switchboard_voice_model_reconnects_total").await,
            1
        );
        env.shutdown();
    }
);

backend_test!(a_long_call_moves_to_a_new_session_before_the_limit, |db| {
    let behavior = Behavior {
        steps: vec![said(AGENT_SHORT, AGENT_SHORT_TEXT)],
        transcripts: vec!["What are your hours?".into()],
        // The provider would end the session here; the call must have moved on before.
        session_limit: Some(Duration::from_secs(8)),
        ..Behavior::default()
    };
    let mut env = env_with(db, behavior, |c| {
        c.voice.session_limit = Duration::from_secs(2);
    })
    .await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    let sid = "CA00000000000000000000000000000f22";
    let media = env.answer(&org, sid, "+15557770022", 8.0).await;
    env.wait_model_event("session.update", 1).await;
    media.play(CALLER_BOOKING);
    media
        .wait_for("the first answer", WAIT, |r| {
            r.audio.len() >= AGENT_SHORT.len() && r.echoed == r.marks.len()
        })
        .await;
    // At the next quiet moment after 2 s, a new session takes over with the conversation.
    eventually("a rollover", WAIT, || async {
        (replayed_sessions(&env) > 0).then_some(())
    })
    .await;
    let sessions = env.model.sessions();
    let next = sessions
        .iter()
        .find(|s| replayed(s).len() >= 2)
        .expect("a session with the replay");
    let items = replayed(next);
    assert_eq!(items[0]["content"][0]["text"], "What are your hours?");
    assert_eq!(items[1]["content"][0]["text"], AGENT_SHORT_TEXT);
    // A planned move says nothing to the caller: no response is asked for.
    assert!(next.events.iter().all(|e| e["type"] != "response.create"));
    // The caller talks on, and the new session answers.
    let before = media.snapshot().audio.len();
    media.play(CALLER_BOOKING);
    media
        .wait_for("an answer from the new session", WAIT, |r| {
            r.audio.len() >= before + AGENT_SHORT.len()
        })
        .await;
    media.stop();
    let call = env.wait_ended(&org, sid).await;
    assert_eq!(call.status.as_str(), "completed");
    assert_eq!(call.end_reason.as_deref(), Some("caller_hung_up"));
    env.shutdown();
});

fn replayed_sessions(env: &Env<'_>) -> usize {
    env.model
        .sessions()
        .iter()
        .filter(|s| replayed(s).len() >= 2)
        .count()
}

backend_test!(a_twilio_stream_that_stops_reading_is_cut_off, |db| {
    // A very long answer, streamed as fast as the model can: far more than socket buffers hold.
    let long: Vec<u8> = AGENT_REPLY
        .iter()
        .copied()
        .cycle()
        .take(8_000_000)
        .collect();
    let behavior = Behavior {
        steps: vec![Step::Say(long, AGENT_REPLY_TEXT.into())],
        transcripts: vec!["Tell me everything.".into()],
        delta_bytes: 32_000,
        delta_interval: Duration::from_millis(1),
        ..Behavior::default()
    };
    let mut env = env_with(db, behavior, |c| {
        c.voice.send_timeout = Duration::from_secs(1);
    })
    .await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    let sid = "CA00000000000000000000000000000f31";
    let media = env.answer(&org, sid, "+15557770031", 1.0).await;
    env.wait_model_event("session.update", 1).await;
    media.play_at(CALLER_BOOKING, Duration::from_millis(5));
    media
        .wait_for("the answer to start", WAIT, |r| !r.audio.is_empty())
        .await;
    // Twilio's side hangs: it neither reads nor sends.
    media.hang();
    let call = env.wait_ended(&org, sid).await;
    assert_eq!(call.status.as_str(), "failed");
    assert_eq!(call.end_reason.as_deref(), Some("peer_stuck"));
    assert!(
        call.error
            .as_deref()
            .unwrap_or_default()
            .contains("Twilio stopped reading"),
        "{:?}",
        call.error
    );
    // The apology goes through the REST API, which does not depend on the stuck stream.
    assert_apology(&env.wait_rest(1).await[0]);
    env.shutdown();
});
