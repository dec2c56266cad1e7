//! Call-state hygiene, on both backends: an inbound call answered with a media stream that
//! never connects, and for which Twilio sends no status, is "active now" and in the live list
//! alike until the recovery sweep closes it after the wait as `failed` / `no_media` (counted,
//! hung up at Twilio); a call whose stream did connect is left alone.

mod voice_env;

use voice_env::*;

backend_test!(a_call_whose_media_never_connects_is_closed, |db| {
    let env = env(db, Behavior::default()).await;
    let org = env.org("Acme", "+15550001001", &[], None).await;
    let key = env.key(&org).await;
    let lost = "CA00000000000000000000000000000e01";
    env.incoming(&org, lost, "+15557770001").await;
    // A second call whose stream connects and stays up.
    let live = "CA00000000000000000000000000000e02";
    let media = env.answer(&org, live, "+15557770002", 20.0).await;
    env.wait_model_event("session.update", 1).await;

    // The dashboard's "active now" and its live list count the same calls.
    let open = |key: String| {
        let env = &env;
        async move {
            let (s, page) = env
                .call_api(reqwest::Method::GET, &key, "/api/v1/calls?open=true", None)
                .await;
            assert_eq!(s, 200);
            let mut sids: Vec<String> = page["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|c| c["call_sid"].as_str().expect("sid").to_owned())
                .collect();
            sids.sort();
            sids
        }
    };
    assert_eq!(open(key.clone()).await, [lost, live]);
    let overview = env
        .db
        .store
        .overview(&org.id, Timestamp::from_millis(0))
        .await
        .expect("overview");
    assert_eq!(overview.active_calls, 2);

    // Before the wait nothing is closed; after it, only the call without media.
    assert_eq!(env.recovery.run_once().await.expect("sweep"), 0);
    env.clock.advance(Duration::from_secs(61));
    assert_eq!(env.recovery.run_once().await.expect("sweep"), 1);
    let call = env.call_of(&org, lost).await;
    assert_eq!(call.status.as_str(), "failed");
    assert_eq!(call.end_reason.as_deref(), Some("no_media"));
    assert!(
        call.error
            .as_deref()
            .is_some_and(|e| e.contains("/twilio/media")),
        "{:?}",
        call.error
    );
    assert_eq!(
        env.metric("switchboard_voice_no_media_calls_total").await,
        1
    );
    let hung_up = env
        .rest
        .requests()
        .into_iter()
        .any(|r| r.call_sid == lost && r.form.iter().any(|(k, _)| k == "Twiml"));
    assert!(hung_up, "the call is ended at Twilio");
    assert_eq!(open(key.clone()).await, [live]);
    let overview = env
        .db
        .store
        .overview(&org.id, Timestamp::from_millis(0))
        .await
        .expect("overview");
    assert_eq!(overview.active_calls, 1);
    // A second sweep finds nothing more.
    assert_eq!(env.recovery.run_once().await.expect("sweep"), 0);
    assert_eq!(env.call_of(&org, live).await.ended_at, None);
    drop(media);
});

backend_test!(failing_webhooks_and_emails_raise_an_alert, |db| {
    let env = env_with(db, Behavior::default(), |c| {
        c.jobs.allow_private_targets = true;
        c.jobs.email_analysis_wait = Duration::ZERO;
    })
    .await;
    let org = env.org("Acme", "+15550001001", &[], None).await;
    let key = env.key(&org).await;
    let admin = env.dashboard_admin(&org, "admin@acme.test").await;
    assert!(
        !admin.get("/").await.body.contains("id=\"alerts\""),
        "nothing to say while all is well"
    );
    let receiver = switchboard_testkit::webhooks::WebhookReceiver::start().await;
    receiver.script([500; 50]);
    let (s, ep) = env
        .call_api(
            reqwest::Method::POST,
            &key,
            "/api/v1/webhook-endpoints",
            Some(json!({"url": receiver.url})),
        )
        .await;
    assert_eq!(s, 201, "{ep}");
    let (s, _) = env
        .call_api(
            reqwest::Method::PUT,
            &key,
            "/api/v1/settings",
            Some(json!({"notification_emails": ["owner@acme.test"]})),
        )
        .await;
    assert_eq!(s, 200);
    // A call comes and goes: its events fail at the endpoint, its e-mail has no server.
    let sid = "CA00000000000000000000000000000e11";
    env.incoming(&org, sid, "+15557770011").await;
    assert_eq!(env.status(&org, sid, "completed", "1", &[]).await, 204);
    let page = eventually("both alerts", WAIT, || async {
        let p = admin.get("/").await;
        (p.body.contains(&receiver.url) && p.body.contains("id=\"alert-emails\"")).then_some(p)
    })
    .await;
    assert!(
        page.body.contains("has failed every delivery since"),
        "{}",
        page.body
    );
    assert!(page.body.contains("could not be sent in the last 24 hours"));
});
