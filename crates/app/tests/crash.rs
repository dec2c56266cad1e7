//! `kill -9` in the middle of a call. The next start (or another instance) finds the call its
//! dead instance left in progress, tells Twilio to hang up, and finalizes it as `failed` /
//! `instance_lost`; the webhook and the e-mail go out once. A call live on another instance
//! is never touched, and a draining instance sends new calls to the one still serving.

mod process_env;

use process_env::*;
use serde_json::json;
use switchboard_store::backend_test;
use switchboard_store::testing::TestDb;
use switchboard_testkit::smtp::FakeSmtp;
use switchboard_testkit::webhooks::WebhookReceiver;

/// A short lease, so a dead instance's calls are recovered within seconds.
fn short_lease() -> (&'static str, String) {
    ("SWITCHBOARD_INSTANCE_LEASE_SECONDS", "3".into())
}

backend_test!(a_call_left_by_a_killed_instance_is_ended_once, |db| {
    let hooks = WebhookReceiver::start().await;
    let smtp = FakeSmtp::start().await;
    let extra = [
        short_lease(),
        ("SWITCHBOARD_WEBHOOKS_ALLOW_PRIVATE", "true".into()),
        ("SWITCHBOARD_SMTP_URL", smtp.url.clone()),
        ("SWITCHBOARD_SMTP_FROM", "calls@example.test".into()),
        ("SWITCHBOARD_EMAIL_ANALYSIS_WAIT_SECONDS", "0".into()),
    ];
    let (rig, mut first) = Rig::start(db, &extra).await;
    rig.api(
        &first,
        reqwest::Method::PUT,
        "/settings",
        json!({"notification_emails": ["ops@example.test"], "notify_calls": "all"}),
    )
    .await;
    let endpoint = rig
        .api(
            &first,
            reqwest::Method::POST,
            "/webhook-endpoints",
            json!({"url": hooks.url, "event_types": ["call.ended"]}),
        )
        .await;
    hooks.set_secret(endpoint["secret"].as_str().expect("secret"));
    let sid = "CA00000000000000000000000000000c01";
    let media = rig.live_call(&first, sid).await;
    first.signal("KILL");
    first.wait_exit(WAIT).await;
    assert!(call_of(db, sid).await.ended_at.is_none());
    // The next start finds the call once the dead instance's lease has run out.
    let second = rig.another().await;
    let call = wait_ended(db, sid).await;
    assert_eq!(call.status.as_str(), "failed");
    assert_eq!(call.end_reason.as_deref(), Some("instance_lost"));
    // Twilio is told to apologise and hang up, in case it still holds the caller.
    let twiml = rig.wait_redirect(sid).await;
    assert!(twiml.contains("<Hangup/>"), "{twiml}");
    // call.ended and the e-mail go out, once.
    let got = hooks.wait_for(1, WAIT).await;
    assert_eq!(got[0].json["type"], "call.ended");
    assert_eq!(got[0].json["data"]["call"]["end_reason"], "instance_lost");
    assert!(got[0].verified);
    let mails = smtp.wait_for(1, WAIT).await;
    assert_eq!(mails[0].to, ["ops@example.test"]);
    // Finalized once: one call.ended in the log, one REST hang-up, one e-mail.
    let events = rig
        .api(&second, reqwest::Method::GET, "/events", json!(null))
        .await;
    let ended = events["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|e| e["type"] == "call.ended")
        .count();
    assert_eq!(ended, 1, "finalized once");
    assert_eq!(rig.redirects(sid).len(), 1, "Twilio told once");
    assert_eq!(smtp.mails().len(), 1, "one e-mail");
    drop(media);
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_live_on_another_instance_is_untouched() {
    let Some(db) = TestDb::new(switchboard_store::Backend::Postgres)
        .await
        .expect("postgres test database")
    else {
        return;
    };
    let (rig, mut a) = Rig::start(&db, &[short_lease()]).await;
    let b = rig.another().await;
    let on_a = "CA00000000000000000000000000000c11";
    let on_b = "CA00000000000000000000000000000c12";
    let _ma = rig.live_call(&a, on_a).await;
    let mb = rig.live_call(&b, on_b).await;
    a.signal("KILL");
    a.wait_exit(WAIT).await;
    // B recovers A's call...
    let call = wait_ended(&db, on_a).await;
    assert_eq!(call.end_reason.as_deref(), Some("instance_lost"));
    // ...and its own call goes on: audio keeps flowing and nothing told Twilio to end it.
    let before = mb.snapshot().audio.len();
    mb.wait_for("more audio on B", WAIT, |r| r.audio.len() > before + 8000)
        .await;
    assert!(call_of(&db, on_b).await.ended_at.is_none());
    assert!(rig.redirects(on_b).is_empty());
    // An instance that drains while B serves sends new calls back through the public URL,
    // and Twilio, following the redirect through the load balancer, reaches B.
    let mut c = rig.another().await;
    let mc = rig
        .live_call(&c, "CA00000000000000000000000000000c13")
        .await;
    let res = rig
        .http
        .post(format!("{}/api/v1/instance/drain", c.base))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .expect("drain");
    assert_eq!(res.status(), 202);
    rig.wait_ready_status(&c, 503).await;
    let new_call = "CA00000000000000000000000000000c14";
    let redirect = rig.incoming(&c, new_call).await;
    assert!(
        redirect.contains("<Redirect method=\"POST\">https://voice.example.test/twilio/voice?drain_hop=1</Redirect>"),
        "{redirect}"
    );
    assert!(db
        .store
        .find_call_by_sid(new_call)
        .await
        .expect("q")
        .is_none());
    let answer = rig
        .incoming_at(&b, "/twilio/voice?drain_hop=1", new_call)
        .await;
    assert!(answer.contains("<Connect>"), "B takes it: {answer}");
    mc.stop();
    assert!(c.wait_exit(WAIT).await.success());
    mb.stop();
    wait_ended(&db, on_b).await;
    db.drop_db().await;
}
