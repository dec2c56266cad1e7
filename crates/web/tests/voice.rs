//! Voice calls end to end over real HTTP and WebSocket: a signed Twilio webhook, the TwiML
//! answer, a Media Stream played from speech fixtures, a fake OpenAI Realtime server, a fake
//! Twilio REST API, and the database the server wrote. Both backends.

mod voice_env;

use voice_env::*;
backend_test!(complete_inbound_call, |db| {
    let behavior = Behavior {
        steps: vec![
            said(AGENT_SHORT, AGENT_SHORT_TEXT),
            said(AGENT_REPLY, AGENT_REPLY_TEXT),
        ],
        transcripts: vec!["I would like to book an appointment.".into()],
        ..Behavior::default()
    };
    let mut env = env(db, behavior).await;
    let org = env
        .org(
            "Alpha",
            "+15550001001",
            &["end_call"],
            Some("Thanks for calling Alpha!"),
        )
        .await;
    let twiml = env
        .incoming(&org, "CA00000000000000000000000000000001", "+15557770001")
        .await;
    // Call metadata travels as <Parameter>s, never in the URL.
    let (url, params) = stream_of(&twiml).expect("stream");
    assert!(!url.contains('?'));
    let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["org_id", "call_id", "token"]);
    let media = MediaCall::connect(
        &format!("{}/twilio/media", env.ws),
        "CA00000000000000000000000000000001",
        &params,
        Duration::from_millis(20),
        8.0,
    )
    .await
    .expect("media");
    // The model session is configured from the agent, GA shape, mu-law both ways.
    let update = env.wait_model_event("session.update", 1).await.remove(0);
    let s = &update["session"];
    assert_eq!(s["type"], "realtime");
    assert_eq!(s["audio"]["input"]["format"]["type"], "audio/pcmu");
    assert_eq!(s["audio"]["output"]["format"]["type"], "audio/pcmu");
    assert_eq!(s["audio"]["output"]["voice"], "marin");
    assert_eq!(s["audio"]["input"]["turn_detection"]["type"], "server_vad");
    assert!(s["audio"]["input"]["transcription"]["model"].is_string());
    assert_eq!(
        s["instructions"],
        "You answer the phone for Alpha. The caller's number is +15557770001."
    );
    assert_eq!(s["tools"][0]["name"], "end_call");
    let session = &env.model.sessions()[0];
    assert_eq!(
        session.authorization.as_deref(),
        Some("Bearer sk-test-model-key")
    );
    assert!(session.uri.contains("model=gpt-realtime"));
    assert!(session.beta_header.is_none());
    // The greeting is spoken first, and reaches the caller frame-aligned.
    let greeting = env.wait_model_event("response.create", 1).await.remove(0);
    assert!(greeting["response"]["instructions"]
        .as_str()
        .expect("instructions")
        .contains("Thanks for calling Alpha!"));
    media
        .wait_for("the greeting audio", WAIT, |r| {
            r.audio.len() >= AGENT_SHORT.len()
        })
        .await;
    let got = media.snapshot();
    assert!(
        got.media.iter().all(|(_, b)| b.len() % 160 == 0),
        "20 ms-aligned chunks"
    );
    assert_eq!(&got.audio[..AGENT_SHORT.len()], AGENT_SHORT);
    assert!(got.marks.iter().all(|m| m.split(':').count() == 3));
    // The caller waits for the greeting to finish playing, then speaks; the agent answers.
    media
        .wait_for("the greeting to play", WAIT, |r| r.echoed == r.marks.len())
        .await;
    media.play(CALLER_BOOKING);
    media
        .wait_for("the answer audio", WAIT, |r| {
            r.audio.len() >= AGENT_SHORT.len() + AGENT_REPLY.len()
        })
        .await;
    assert!(env.model.sessions()[0].appended >= CALLER_BOOKING.len());
    // Wait for the answer's transcript to be stored before hanging up.
    let deadline = std::time::Instant::now() + WAIT;
    while env
        .transcript(&org, "CA00000000000000000000000000000001")
        .await
        .len()
        < 3
    {
        assert!(
            std::time::Instant::now() < deadline,
            "transcript incomplete"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    media.stop();
    let call = env
        .wait_ended(&org, "CA00000000000000000000000000000001")
        .await;
    assert_eq!(call.status.as_str(), "completed");
    assert_eq!(call.end_reason.as_deref(), Some("caller_hung_up"));
    assert_eq!(call.disposition.as_deref(), Some("completed"));
    assert!(call.answered_at.is_some() && call.duration_seconds.is_some());
    assert_eq!(call.turn_latencies_ms.len(), 1, "one caller turn measured");
    let items = env
        .transcript(&org, "CA00000000000000000000000000000001")
        .await;
    let texts: Vec<(String, String)> = items
        .iter()
        .map(|m| {
            (
                m.role.as_str().to_owned(),
                m.content["text"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(texts[0], ("assistant".into(), AGENT_SHORT_TEXT.into()));
    assert!(texts.contains(&("user".into(), "I would like to book an appointment.".into())));
    assert!(texts.contains(&("assistant".into(), AGENT_REPLY_TEXT.into())));
    // Structured content is kept as JSON, with the model's item.
    let reply = items
        .iter()
        .find(|m| m.content["text"] == AGENT_REPLY_TEXT)
        .expect("reply");
    assert_eq!(reply.content["item"]["type"], "message");
    assert!(reply.content["latency_ms"].is_i64());
    // Status callbacks: late, duplicated and out of order; the call only moves forward.
    let sid = "CA00000000000000000000000000000001";
    assert_eq!(
        env.status(
            &org,
            sid,
            "completed",
            "3",
            &[
                ("CallDuration", "12"),
                ("RecordingUrl", "https://api.twilio.com/rec/RE1")
            ]
        )
        .await,
        204
    );
    assert_eq!(env.status(&org, sid, "in-progress", "1", &[]).await, 204);
    assert_eq!(
        env.status(&org, sid, "completed", "3", &[("CallDuration", "12")])
            .await,
        204
    );
    let call = env.call_of(&org, sid).await;
    assert_eq!(call.status.as_str(), "completed");
    assert_eq!(call.end_reason.as_deref(), Some("caller_hung_up"));
    assert_eq!(call.duration_seconds, Some(12));
    // Twilio's own recording URL is never shown: the audio is served through
    // `/api/v1/calls/{id}/recording` once the recording callback says it is complete.
    assert_eq!(call.recording_url, None);
    let conv = env
        .db
        .store
        .get_conversation(&org.id, &call.conversation_id)
        .await
        .expect("conv");
    assert_eq!(conv.status.as_str(), "closed");
    env.shutdown();
});

backend_test!(barge_in_clears_and_truncates_at_what_was_heard, |db| {
    let behavior = Behavior {
        steps: vec![
            said(AGENT_REPLY, AGENT_REPLY_TEXT),
            said(AGENT_SHORT, AGENT_SHORT_TEXT),
        ],
        transcripts: vec!["Hello.".into(), "Wait, can I ask something else?".into()],
        ..Behavior::default()
    };
    let mut env = env(db, behavior).await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    let sid = "CA00000000000000000000000000000002";
    // Real-time playback, as on a phone.
    let media = env.answer(&org, sid, "+15557770002", 1.0).await;
    env.wait_model_event("session.update", 1).await;
    media.play(CALLER_BOOKING);
    media
        .wait_for("the whole answer to be sent", WAIT, |r| {
            r.audio.len() >= AGENT_REPLY.len()
        })
        .await;
    // The caller listens a little more than a second (Twilio confirmed it played), then
    // talks over the agent.
    media
        .wait_for("a second of the answer to play", WAIT, |r| {
            played_ms(r) >= 1200
        })
        .await;
    media.play(CALLER_INTERRUPT);
    media
        .wait_for("a clear", WAIT, |r| !r.clears.is_empty())
        .await;
    let truncate = env
        .wait_model_event("conversation.item.truncate", 1)
        .await
        .remove(0);
    let end_ms = truncate["audio_end_ms"].as_u64().expect("ms");
    let sent_ms = (AGENT_REPLY.len() / 8) as u64;
    assert!(
        end_ms > 0 && end_ms < sent_ms,
        "heard {end_ms} ms of {sent_ms} ms"
    );
    assert_eq!(truncate["content_index"], 0);
    assert_eq!(truncate["item_id"], "item_agent1");
    // Nothing after the first truncate: one barge-in, one cut.
    media
        .wait_for("the next answer", WAIT, |r| {
            r.audio.len() >= AGENT_REPLY.len() + AGENT_SHORT.len() - 160
        })
        .await;
    assert_eq!(env.model.events("conversation.item.truncate").len(), 1);
    media.stop();
    env.wait_ended(&org, sid).await;
    let items = env.transcript(&org, sid).await;
    let cut = items
        .iter()
        .find(|m| m.content["item_id"] == "item_agent1")
        .expect("interrupted turn stored");
    assert_eq!(cut.content["interrupted"], true);
    assert_eq!(cut.content["audio_end_ms"].as_u64(), Some(end_ms));
    let heard = cut.content["text"].as_str().expect("text");
    assert!(
        heard.len() < AGENT_REPLY_TEXT.len(),
        "kept only what was heard: {heard}"
    );
    assert!(AGENT_REPLY_TEXT.starts_with(heard));
    assert_eq!(cut.content["generated_text"], AGENT_REPLY_TEXT);
    env.shutdown();
});

backend_test!(
    tools_book_in_the_callers_org_and_refuse_double_booking,
    |db| {
        let slot = next_monday_10();
        let behavior = Behavior {
            steps: vec![
                Step::Call(
                    "book_appointment".into(),
                    json!({"start": slot, "name": "Ada"}),
                ),
                said(AGENT_SHORT, AGENT_SHORT_TEXT),
                Step::Call("book_appointment".into(), json!({"start": slot})),
                said(AGENT_SHORT, AGENT_SHORT_TEXT),
                Step::Call("end_call".into(), json!({"reason": "done"})),
            ],
            transcripts: vec![
                "Book Monday at ten.".into(),
                "And again.".into(),
                "Bye.".into(),
            ],
            ..Behavior::default()
        };
        let mut env = env(db, behavior).await;
        let alpha = env
            .org(
                "Alpha",
                "+15550001001",
                &["book_appointment", "end_call"],
                None,
            )
            .await;
        let beta = env
            .org("Beta", "+15550002002", &["book_appointment"], None)
            .await;
        let sid = "CA00000000000000000000000000000003";
        let media = env.answer(&alpha, sid, "+15557770003", 20.0).await;
        env.wait_model_event("session.update", 1).await;
        media.play_at(CALLER_BOOKING, Duration::from_millis(5));
        let outputs = env.wait_model_event("conversation.item.create", 1).await;
        let first: Value = serde_json::from_str(
            outputs[0]["item"]["output"]
                .as_str()
                .expect("string output"),
        )
        .expect("json");
        assert_eq!(first["ok"], true, "{first}");
        assert_eq!(first["status"], "booked");
        // Exactly one response.create follows the tool output.
        env.wait_model_event("response.create", 1).await;
        media
            .wait_for("the first answer", WAIT, |r| {
                r.audio.len() >= AGENT_SHORT.len()
            })
            .await;
        media.play_at(CALLER_BOOKING, Duration::from_millis(5));
        let outputs = env.wait_model_event("conversation.item.create", 2).await;
        let second: Value =
            serde_json::from_str(outputs[1]["item"]["output"].as_str().expect("string"))
                .expect("json");
        assert_eq!(second["ok"], false);
        assert_eq!(second["error"]["code"], "slot_taken");
        assert!(second["error"]["message"]
            .as_str()
            .expect("speakable")
            .contains("already booked"));
        env.wait_model_event("response.create", 2).await;
        media
            .wait_for("the second answer", WAIT, |r| {
                r.audio.len() >= 2 * AGENT_SHORT.len()
            })
            .await;
        // end_call: the server hangs up once the agent has finished speaking.
        media.play_at(CALLER_BOOKING, Duration::from_millis(5));
        let got = media.finished(WAIT).await;
        assert!(got.closed, "the server closed the stream");
        let call = env.wait_ended(&alpha, sid).await;
        assert_eq!(call.end_reason.as_deref(), Some("agent_ended"));
        assert_eq!(call.status.as_str(), "completed");
        assert_eq!(
            env.model.events("response.create").len(),
            2,
            "no response after end_call"
        );
        // The booking exists in Alpha only, for the caller.
        let from = Timestamp::from_millis(0);
        let to = Timestamp::from_millis(i64::MAX / 2);
        let booked = env
            .db
            .store
            .list_appointments(&alpha.id, from, to, None)
            .await
            .expect("list");
        assert_eq!(booked.len(), 1);
        assert_eq!(booked[0].agent_id.as_ref(), Some(&alpha.agent));
        let contact = env
            .db
            .store
            .find_contact_by_number(&alpha.id, &PhoneNumber::parse("+15557770003").expect("n"))
            .await
            .expect("q")
            .expect("contact created");
        assert_eq!(booked[0].contact_id.as_ref(), Some(&contact.id));
        assert!(env
            .db
            .store
            .list_appointments(&beta.id, from, to, None)
            .await
            .expect("list")
            .is_empty());
        // Every execution is audited, in the caller's organization.
        let audit = env
            .db
            .store
            .list_tool_invocations(&alpha.id, &call.conversation_id)
            .await
            .expect("audit");
        let statuses: Vec<(&str, &str)> = audit
            .iter()
            .map(|t| (t.tool.as_str(), t.status.as_str()))
            .collect();
        assert_eq!(
            statuses,
            [
                ("book_appointment", "ok"),
                ("book_appointment", "error"),
                ("end_call", "ok")
            ]
        );
        assert!(env
            .db
            .store
            .list_tool_invocations(&beta.id, &call.conversation_id)
            .await
            .expect("audit")
            .is_empty());
        env.shutdown();
    }
);

backend_test!(bad_requests_are_refused_and_store_nothing, |db| {
    let mut env = env(db, Behavior::default()).await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    let params = [
        ("CallSid", "CA00000000000000000000000000000004"),
        ("From", "+15557770004"),
        ("To", "+15550001001"),
    ];
    // Wrong token, then no signature at all.
    let res = post_signed(
        &env.http,
        &env.base,
        PUBLIC,
        "/twilio/voice",
        "not-the-token",
        &params,
    )
    .await;
    assert_eq!(res.status(), 403);
    let res = env
        .http
        .post(format!("{}/twilio/voice", env.base))
        .form(&params)
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 403);
    // A signature for another URL (e.g. the internal address) does not pass either.
    let res = post_signed(
        &env.http,
        &env.base,
        &env.base,
        "/twilio/voice",
        &org.token,
        &params,
    )
    .await;
    assert_eq!(res.status(), 403);
    let calls = env
        .db
        .store
        .list_calls(&org.id, &CallFilter::default(), None, None)
        .await
        .expect("calls");
    assert!(calls.data.is_empty());
    // Unknown number: a polite refusal, nothing stored anywhere, counted.
    let res = post_signed(
        &env.http,
        &env.base,
        PUBLIC,
        "/twilio/voice",
        &org.token,
        &[
            ("CallSid", "CA00000000000000000000000000000005"),
            ("From", "+15557770004"),
            ("To", "+15559990000"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let body = res.text().await.expect("twiml");
    assert!(body.contains("<Say>") && body.contains("<Hangup/>") && !body.contains("<Connect>"));
    assert!(env
        .db
        .store
        .find_call_by_sid("CA00000000000000000000000000000005")
        .await
        .expect("q")
        .is_none());
    assert_eq!(
        env.metric("switchboard_voice_unknown_number_total").await,
        1
    );
    // A media stream with a wrong token is closed, and no model session is opened.
    let twiml = env
        .incoming(&org, "CA00000000000000000000000000000006", "+15557770004")
        .await;
    let (_, mut params) = stream_of(&twiml).expect("stream");
    params
        .iter_mut()
        .filter(|(k, _)| k == "token")
        .for_each(|(_, v)| v.push('x'));
    let media = env
        .media("CA00000000000000000000000000000006", &params)
        .await;
    let got = media.finished(WAIT).await;
    assert!(got.closed);
    assert!(
        env.model.sessions().is_empty(),
        "no model session for an unauthenticated stream"
    );
    // The right token works once; a replay of the same start is refused.
    let (_, params) = stream_of(&twiml).expect("stream");
    let media = env
        .media("CA00000000000000000000000000000006", &params)
        .await;
    env.wait_model_event("session.update", 1).await;
    let replay = env
        .media("CA00000000000000000000000000000006", &params)
        .await;
    assert!(replay.finished(WAIT).await.closed);
    assert_eq!(env.model.sessions().len(), 1);
    media.stop();
    env.wait_ended(&org, "CA00000000000000000000000000000006")
        .await;
    env.shutdown();
});

backend_test!(model_failures_apologise_and_record_a_failed_call, |db| {
    let refuse = Behavior {
        refuse: true,
        ..Behavior::default()
    };
    let mut env = env(db, refuse).await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    // The model cannot be reached at all.
    let sid = "CA00000000000000000000000000000007";
    let media = env.answer(&org, sid, "+15557770007", 1.0).await;
    let call = env.wait_ended(&org, sid).await;
    assert_eq!(call.status.as_str(), "failed");
    assert_eq!(call.end_reason.as_deref(), Some("model_unavailable"));
    assert!(
        call.error.as_deref().unwrap_or_default().contains("503"),
        "{:?}",
        call.error
    );
    let reqs = env.wait_rest(1).await;
    let req = &reqs[0];
    assert_eq!(req.call_sid, sid);
    assert_eq!(req.account_sid, ACCOUNT);
    assert!(req
        .authorization
        .as_deref()
        .unwrap_or_default()
        .starts_with("Basic "));
    assert_apology(req);
    media.stop();
    // The model drops mid-call.
    env.model.set_behavior(Behavior {
        drop_after_appends: Some(20),
        ..Behavior::default()
    });
    let sid = "CA00000000000000000000000000000008";
    let media = env.answer(&org, sid, "+15557770008", 1.0).await;
    let call = env.wait_ended(&org, sid).await;
    assert_eq!(call.status.as_str(), "failed");
    assert_eq!(call.end_reason.as_deref(), Some("model_disconnected"));
    assert!(
        call.error
            .as_deref()
            .unwrap_or_default()
            .contains("restored once"),
        "{:?}",
        call.error
    );
    assert_eq!(env.wait_rest(2).await[1].call_sid, sid);
    // One reconnect was tried (it dropped again): the refused session plus two.
    assert_eq!(env.model.sessions().len(), 3);
    // A late `completed` callback does not turn the failure into success.
    assert_eq!(
        env.status(&org, sid, "completed", "3", &[("CallDuration", "4")])
            .await,
        204
    );
    let call = env.call_of(&org, sid).await;
    assert_eq!(call.status.as_str(), "failed");
    assert_eq!(call.duration_seconds, Some(4));
    media.stop();
    // The model confirms the wrong audio format: nothing is forwarded, the call fails.
    env.model.set_behavior(Behavior {
        wrong_formats: true,
        ..Behavior::default()
    });
    let sid = "CA00000000000000000000000000000009";
    let media = env.answer(&org, sid, "+15557770009", 1.0).await;
    let call = env.wait_ended(&org, sid).await;
    assert_eq!(call.end_reason.as_deref(), Some("model_error"));
    assert_eq!(
        env.model.sessions().last().expect("session").appended,
        0,
        "no caller audio before confirmed formats"
    );
    media.stop();
    env.shutdown();
});

backend_test!(the_maximum_duration_apologises_and_fails_the_call, |db| {
    let mut env = env(db, Behavior::default()).await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    // The shortest limit the API accepts; the test clock then jumps past it.
    env.patch_agent(&org, json!({"max_call_duration_seconds": 30}))
        .await;
    let sid = "CA00000000000000000000000000000010";
    let media = env.answer(&org, sid, "+15557770010", 1.0).await;
    env.wait_model_event("session.update", 1).await;
    env.clock.advance(Duration::from_secs(31));
    let call = env.wait_ended(&org, sid).await;
    assert_eq!(call.status.as_str(), "failed");
    assert_eq!(call.end_reason.as_deref(), Some("max_duration"));
    assert!(
        call.error
            .as_deref()
            .unwrap_or_default()
            .contains("maximum call duration (30 s)"),
        "{:?}",
        call.error
    );
    // The caller hears the apology: the live call is redirected to <Say> and <Hangup/>.
    let reqs = env.wait_rest(1).await;
    assert_eq!(reqs[0].call_sid, sid);
    assert_apology(&reqs[0]);
    // The model session was opened and then closed with the call.
    assert_eq!(env.model.sessions().len(), 1);
    media.stop();
    env.shutdown();
});

backend_test!(two_organizations_calls_at_once_stay_isolated, |db| {
    let behavior = Behavior {
        steps: vec![
            Step::Call("lookup_contact".into(), json!({})),
            said(AGENT_SHORT, AGENT_SHORT_TEXT),
        ],
        transcripts: vec!["Who am I?".into()],
        shape: FakeShape::Beta,
        ..Behavior::default()
    };
    let mut env = env(db, behavior).await;
    let alpha = env
        .org("Alpha", "+15550001001", &["lookup_contact"], None)
        .await;
    let beta = env
        .org("Beta", "+15550002002", &["lookup_contact"], None)
        .await;
    // The same caller is a known contact in Alpha only.
    env.db
        .store
        .create_contact(
            &alpha.id,
            serde_json::from_value(json!({"number": "+15557770010", "name": "Ada"})).expect("c"),
        )
        .await
        .expect("contact");
    let a = env
        .answer(
            &alpha,
            "CA00000000000000000000000000000010",
            "+15557770010",
            20.0,
        )
        .await;
    let b = env
        .answer(
            &beta,
            "CA00000000000000000000000000000011",
            "+15557770010",
            20.0,
        )
        .await;
    env.wait_model_event("session.update", 2).await;
    // Beta shape on the wire: flat session, the beta header.
    let update = &env.model.events("session.update")[0];
    assert_eq!(update["session"]["input_audio_format"], "g711_ulaw");
    assert!(env
        .model
        .sessions()
        .iter()
        .all(|s| s.beta_header.as_deref() == Some("realtime=v1")));
    a.play_at(CALLER_BOOKING, Duration::from_millis(5));
    b.play_at(CALLER_BOOKING, Duration::from_millis(5));
    let outputs = env.wait_model_event("conversation.item.create", 2).await;
    let results: Vec<Value> = outputs
        .iter()
        .map(|o| serde_json::from_str(o["item"]["output"].as_str().expect("s")).expect("j"))
        .collect();
    let found: Vec<bool> = results
        .iter()
        .map(|r| r["found"].as_bool().expect("found"))
        .collect();
    assert!(
        found.contains(&true) && found.contains(&false),
        "{results:?}"
    );
    assert!(results
        .iter()
        .filter(|r| r["found"] == true)
        .all(|r| r["name"] == "Ada"));
    a.stop();
    b.stop();
    let ca = env
        .wait_ended(&alpha, "CA00000000000000000000000000000010")
        .await;
    let cb = env
        .wait_ended(&beta, "CA00000000000000000000000000000011")
        .await;
    // Each organization sees only its own call, transcript and audit rows.
    let la = env
        .db
        .store
        .list_calls(&alpha.id, &CallFilter::default(), None, None)
        .await
        .expect("a");
    let lb = env
        .db
        .store
        .list_calls(&beta.id, &CallFilter::default(), None, None)
        .await
        .expect("b");
    assert_eq!(la.data.iter().map(|c| &c.id).collect::<Vec<_>>(), [&ca.id]);
    assert_eq!(lb.data.iter().map(|c| &c.id).collect::<Vec<_>>(), [&cb.id]);
    assert!(env.db.store.get_call(&beta.id, &ca.id).await.is_err());
    let audit_a = env
        .db
        .store
        .list_tool_invocations(&alpha.id, &ca.conversation_id)
        .await
        .expect("a");
    assert_eq!(audit_a.len(), 1);
    assert_eq!(
        audit_a[0].result.as_ref().map(|r| r["found"].clone()),
        Some(json!(true))
    );
    let audit_b = env
        .db
        .store
        .list_tool_invocations(&beta.id, &cb.conversation_id)
        .await
        .expect("b");
    assert_eq!(
        audit_b[0].result.as_ref().map(|r| r["found"].clone()),
        Some(json!(false))
    );
    // The audit through the API: each organization lists its own executions, with where they
    // came from, who ran them and how long they took; filters narrow them down.
    let list = |org: OrgId, query: String| {
        let env = &env;
        async move {
            let (_, key) = env
                .db
                .store
                .create_api_key(&org, "audit")
                .await
                .expect("key");
            let res = env
                .http
                .get(format!("{}/api/v1/tool-invocations{query}", env.base))
                .bearer_auth(key.expose())
                .send()
                .await
                .expect("get");
            (
                res.status().as_u16(),
                res.json::<Value>().await.expect("json"),
            )
        }
    };
    let (status, page) = list(alpha.id.clone(), "?source=call".into()).await;
    assert_eq!(status, 200);
    let rows = page["data"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{page}");
    assert_eq!(rows[0]["tool"], "lookup_contact");
    assert_eq!(rows[0]["source"], "call");
    assert_eq!(rows[0]["call_id"], ca.id.as_str());
    assert!(rows[0]["actor"]
        .as_str()
        .expect("actor")
        .starts_with("agent:"));
    assert!(rows[0]["duration_ms"].as_i64().is_some(), "{page}");
    // Beta's call is not in Alpha's audit, whatever the filter.
    let (_, page) = list(alpha.id.clone(), "?source=text".into()).await;
    assert_eq!(page["data"], json!([]));
    let (_, page) = list(alpha.id.clone(), format!("?call_id={}", cb.id)).await;
    assert_eq!(page["data"], json!([]));
    let (status, body) = list(alpha.id.clone(), "?status=exploded".into()).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["field"], "status");
    env.shutdown();
});
