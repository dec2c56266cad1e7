//! After the conversation, end to end over real HTTP: signed Twilio voice webhooks end calls,
//! the outbox delivers Standard Webhooks to a real receiving server (which verifies them on
//! its own), the fake chat model analyses, and a real SMTP conversation on loopback carries
//! the e-mail. Time moves with an adjustable clock. Both backends.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use switchboard_domain::agent::NewAgent;
use switchboard_domain::entities::{NewMessage, NewPhoneNumber};
use switchboard_domain::ids::{CallId, ConversationId, OrgId};
use switchboard_domain::settings::SettingsUpdate;
use switchboard_domain::values::{MessageKind, MessageRole, NumberChannel, PhoneNumber};
use switchboard_domain::{Clock, Secret};
use switchboard_jobs::Jobs;
use switchboard_store::backend_test;
use switchboard_store::testing::TestDb;
use switchboard_testkit::chat::{ChatStep, FakeChatModel};
use switchboard_testkit::smtp::{mail_header, parts, FakeSmtp};
use switchboard_testkit::twilio::post_signed;
use switchboard_testkit::webhooks::{verify, WebhookReceiver};
use switchboard_web::{Application, WebConfig};

const PUBLIC: &str = "https://hooks.example.test";
const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";

struct Running {
    base: String,
    jobs: Jobs,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

struct Env<'a> {
    db: &'a TestDb,
    http: reqwest::Client,
    model: FakeChatModel,
    smtp: FakeSmtp,
    clock: Clock,
    allow_private: bool,
    app: Option<Running>,
}

struct Org {
    id: OrgId,
    number: String,
    token: String,
    key: String,
}

async fn start(
    db: &TestDb,
    model: &FakeChatModel,
    smtp: &FakeSmtp,
    clock: &Clock,
    allow_private: bool,
) -> Running {
    let mut config = WebConfig {
        public_url: Some(PUBLIC.into()),
        clock: clock.clone(),
        ..WebConfig::default()
    };
    config.llm.base_url = model.url.clone();
    config.llm.api_key = Some(Secret::new("sk-test-chat-key"));
    config.llm.model = "fake-chat-1".into();
    config.messaging.poll_interval = None;
    config.jobs.allow_private_targets = allow_private;
    config.jobs.smtp = Some((
        Secret::new(&smtp.url),
        "Switchboard <calls@example.test>".into(),
    ));
    // The tests drive the queues themselves.
    config.jobs.poll_interval = None;
    let app = Application::build(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        db.store.clone(),
        &config,
    )
    .await
    .expect("bind");
    let addr = app.local_addr().expect("addr");
    let jobs = app.jobs();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(app.run_until_stopped(
        async move {
            let _ = rx.await;
        },
        Duration::from_secs(5),
    ));
    Running {
        base: format!("http://{addr}"),
        jobs,
        stop,
        done,
    }
}

async fn env(db: &TestDb, allow_private: bool) -> Env<'_> {
    let model = FakeChatModel::start().await;
    let smtp = FakeSmtp::start().await;
    let clock = Clock::adjustable();
    let app = start(db, &model, &smtp, &clock, allow_private).await;
    Env {
        db,
        http: reqwest::Client::new(),
        model,
        smtp,
        clock,
        allow_private,
        app: Some(app),
    }
}

impl Env<'_> {
    fn base(&self) -> &str {
        &self.app.as_ref().expect("running").base
    }

    fn jobs(&self) -> Jobs {
        self.app.as_ref().expect("running").jobs.clone()
    }

    async fn restart(&mut self) {
        let old = self.app.take().expect("running");
        let _ = old.stop.send(());
        old.done.await.expect("join").expect("served");
        self.app = Some(
            start(
                self.db,
                &self.model,
                &self.smtp,
                &self.clock,
                self.allow_private,
            )
            .await,
        );
    }

    async fn org(&self, name: &str, number: &str, emails: &[&str]) -> Org {
        let store = &self.db.store;
        let org = store.create_org(name).await.expect("org");
        let token = format!("auth-token-of-{}", name.replace(' ', "-"));
        store
            .update_settings(
                &org.id,
                SettingsUpdate {
                    twilio_account_sid: Some(ACCOUNT.into()),
                    twilio_auth_token: Some(Secret::new(&token)),
                    notification_emails: Some(emails.iter().map(|e| (*e).to_owned()).collect()),
                    ..SettingsUpdate::default()
                },
            )
            .await
            .expect("settings");
        let agent: NewAgent = serde_json::from_value(json!({
            "name": "Front desk",
            "instructions": format!("You answer calls for {name}."),
            "analysis_fields": [
                {"name": "budget", "type": "number", "description": "The caller's budget in dollars"},
                {"name": "urgency", "type": "enum", "description": "How urgent", "options": ["low", "high"]}
            ],
        }))
        .expect("agent json");
        let agent = store.create_agent(&org.id, agent).await.expect("agent");
        store
            .create_number(
                &org.id,
                NewPhoneNumber {
                    number: PhoneNumber::parse(number).expect("e164"),
                    channel: NumberChannel::Voice,
                    agent_id: Some(agent.id.clone()),
                    active: None,
                },
            )
            .await
            .expect("number");
        let (_, key) = store.create_api_key(&org.id, "tests").await.expect("key");
        Org {
            id: org.id,
            number: number.into(),
            token,
            key: key.expose().to_owned(),
        }
    }

    async fn api(
        &self,
        org: &Org,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base()))
            .bearer_auth(&org.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("api");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn endpoint(&self, org: &Org, url: &str, types: Option<&[&str]>) -> (String, String) {
        let mut body = json!({"url": url});
        if let Some(t) = types {
            body["event_types"] = json!(t);
        }
        let (status, ep) = self
            .api(
                org,
                reqwest::Method::POST,
                "/api/v1/webhook-endpoints",
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "{ep}");
        (
            ep["id"].as_str().expect("id").to_owned(),
            ep["secret"].as_str().expect("secret").to_owned(),
        )
    }

    /// A call from ring to end: webhook, a caller and an agent turn (as the voice session
    /// writes them), and Twilio's terminal status callback. Returns (call id, conversation id).
    async fn call(&self, org: &Org, n: usize, caller_says: &str) -> (CallId, ConversationId) {
        let sid = format!("CA{n:032x}");
        let from = format!("+1555{:07}", n);
        let res = post_signed(
            &self.http,
            self.base(),
            PUBLIC,
            "/twilio/voice",
            &org.token,
            &[
                ("AccountSid", ACCOUNT),
                ("CallSid", &sid),
                ("CallStatus", "ringing"),
                ("Direction", "inbound"),
                ("From", &from),
                ("To", &org.number),
            ],
        )
        .await;
        assert_eq!(res.status(), 200);
        let store = &self.db.store;
        let (_, call_id) = store
            .find_call_by_sid(&sid)
            .await
            .expect("lookup")
            .expect("call stored");
        let call = store.get_call(&org.id, &call_id).await.expect("call");
        for (role, text) in [
            (MessageRole::User, caller_says),
            (MessageRole::Assistant, "Happy to help with that."),
        ] {
            store
                .append_message(
                    &org.id,
                    NewMessage {
                        conversation_id: call.conversation_id.clone(),
                        role,
                        kind: MessageKind::Message,
                        content: json!({"text": text}),
                        external_id: None,
                        delivery_status: None,
                        created_at: self.clock.now(),
                    },
                )
                .await
                .expect("transcript item");
        }
        let res = post_signed(
            &self.http,
            self.base(),
            PUBLIC,
            "/twilio/voice/status",
            &org.token,
            &[
                ("AccountSid", ACCOUNT),
                ("CallSid", &sid),
                ("CallStatus", "completed"),
                ("CallDuration", "42"),
                ("SequenceNumber", "3"),
            ],
        )
        .await;
        assert!(res.status().is_success(), "{}", res.status());
        (call_id, call.conversation_id)
    }

    async fn delivery_of(&self, org: &Org, event_type: &str) -> Value {
        let (_, page) = self
            .api(
                org,
                reqwest::Method::GET,
                "/api/v1/webhook-deliveries",
                None,
            )
            .await;
        let d = page["data"]
            .as_array()
            .expect("deliveries")
            .iter()
            .find(|d| d["event_type"] == event_type)
            .cloned()
            .unwrap_or_else(|| panic!("no {event_type} delivery in {page}"));
        let (_, detail) = self
            .api(
                org,
                reqwest::Method::GET,
                &format!(
                    "/api/v1/webhook-deliveries/{}",
                    d["id"].as_str().expect("id")
                ),
                None,
            )
            .await;
        detail
    }
}

backend_test!(
    retried_deliveries_keep_their_id_and_survive_a_restart,
    |db| {
        // The protocol vector verifies with the receiver's own verifier too.
        assert!(verify(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            1614265330,
        ));
        let mut env = env(db, true).await;
        let org = env.org("Roofers", "+15550000001", &[]).await;
        let receiver = WebhookReceiver::start().await;
        let (_, secret) = env
            .endpoint(&org, &receiver.url, Some(&["call.started"]))
            .await;
        receiver.set_secret(&secret);
        receiver.script([500, 503]);

        let sid = "CA00000000000000000000000000000abc";
        let res = post_signed(
            &env.http,
            env.base(),
            PUBLIC,
            "/twilio/voice",
            &org.token,
            &[
                ("AccountSid", ACCOUNT),
                ("CallSid", sid),
                ("CallStatus", "ringing"),
                ("From", "+15557654321"),
                ("To", &org.number),
            ],
        )
        .await;
        assert_eq!(res.status(), 200);

        assert_eq!(env.jobs().run_webhooks_once().await.expect("round 1"), 1);
        let d = env.delivery_of(&org, "call.started").await;
        assert_eq!(d["status"], "pending", "{d}");
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["last_status_code"], 500);
        assert_eq!(d["history"][0]["status_code"], 500, "{d}");
        assert!(d["next_attempt_at"].as_str().is_some(), "{d}");

        // Not due yet: nothing is sent before the 5 s back-off.
        assert_eq!(env.jobs().run_webhooks_once().await.expect("early"), 0);

        // A restart between attempts loses nothing.
        env.restart().await;
        env.clock.advance(Duration::from_secs(6));
        assert_eq!(env.jobs().run_webhooks_once().await.expect("round 2"), 1);
        env.clock.advance(Duration::from_secs(6 * 60));
        assert_eq!(env.jobs().run_webhooks_once().await.expect("round 3"), 1);

        let got = receiver.received();
        assert_eq!(got.len(), 3, "the event three times");
        assert!(
            got.iter().all(|r| r.verified),
            "every attempt verifies with the endpoint secret"
        );
        assert!(
            got.iter().all(|r| r.id == got[0].id),
            "the same webhook-id on every attempt"
        );
        assert!(
            got.iter().all(|r| r.body == got[0].body),
            "the same body on every attempt"
        );
        assert_eq!(got[0].json["type"], "call.started");
        assert_eq!(got[0].json["version"], 1);
        assert_eq!(got[0].json["id"], json!(got[0].id));
        assert_eq!(got[0].json["data"]["call"]["from_number"], "+15557654321");
        let d = env.delivery_of(&org, "call.started").await;
        assert_eq!(d["status"], "succeeded", "{d}");
        let attempts = d["history"].as_array().expect("attempt list");
        assert_eq!(
            attempts
                .iter()
                .map(|a| a["status_code"].as_i64().unwrap_or(0))
                .collect::<Vec<_>>(),
            vec![500, 503, 200]
        );
        // Each attempt is visible with its status, latency and response excerpt.
        assert!(
            attempts
                .iter()
                .all(|a| a["latency_ms"].as_i64().is_some() && a["response_excerpt"] == "ok"),
            "{d}"
        );
        let detail = d;

        // Re-sent by hand: once more, same id.
        let (status, _) = env
            .api(
                &org,
                reqwest::Method::POST,
                &format!(
                    "/api/v1/webhook-deliveries/{}/resend",
                    detail["id"].as_str().expect("id")
                ),
                None,
            )
            .await;
        assert_eq!(status, 202);
        assert_eq!(env.jobs().run_webhooks_once().await.expect("resend"), 1);
        let got = receiver.received();
        assert_eq!(got.len(), 4);
        assert_eq!(got[3].id, got[0].id);
    }
);

backend_test!(
    call_analyzed_follows_call_ended_for_fifty_concurrent_calls,
    |db| {
        let env = env(db, true).await;
        let org = env.org("Plumbers", "+15550000002", &[]).await;
        let receiver = WebhookReceiver::start().await;
        let (_, secret) = env.endpoint(&org, &receiver.url, None).await;
        receiver.set_secret(&secret);
        // A slow model: analyses finish while other calls are still ending.
        env.model.set_delay(Duration::from_millis(150));

        let calls = futures_util::future::join_all(
            (0..50).map(|n| env.call(&org, n + 100, "My sink is leaking, can someone come today?")),
        )
        .await;
        let jobs = env.jobs();
        let expected = 50 * 3; // started, ended, analyzed
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            jobs.drain(20).await.expect("drain");
            let analyzed = receiver
                .received()
                .iter()
                .filter(|r| r.json["type"] == "call.analyzed")
                .count();
            if analyzed >= 50 || tokio::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let got = receiver.received();
        assert!(got.iter().all(|r| r.verified));
        let call_events: Vec<&switchboard_testkit::webhooks::Received> = got
            .iter()
            .filter(|r| {
                r.json["type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("call."))
            })
            .collect();
        assert_eq!(
            call_events.len(),
            expected,
            "every call.* event delivered once"
        );
        let mut by_conv: HashMap<String, Vec<(String, i64)>> = HashMap::new();
        for r in &got {
            let conv = r.json["data"]["call"]["conversation_id"]
                .as_str()
                .or_else(|| r.json["data"]["conversation_id"].as_str())
                .or_else(|| r.json["data"]["conversation"]["id"].as_str())
                .unwrap_or_default()
                .to_owned();
            by_conv.entry(conv).or_default().push((
                r.json["type"].as_str().unwrap_or_default().to_owned(),
                r.json["sequence"].as_i64().unwrap_or(0),
            ));
        }
        for (call_id, conv) in &calls {
            let seen = &by_conv[conv.as_str()];
            let pos = |t: &str| {
                seen.iter()
                    .position(|(k, _)| k == t)
                    .unwrap_or_else(|| panic!("{t} missing for {call_id}: {seen:?}"))
            };
            assert!(pos("call.started") < pos("call.ended"), "{seen:?}");
            assert!(
                pos("call.ended") < pos("call.analyzed"),
                "call.analyzed before call.ended: {seen:?}"
            );
            // Per-conversation order: sequence numbers arrive increasing.
            assert!(
                seen.windows(2).all(|w| w[0].1 < w[1].1),
                "out of order: {seen:?}"
            );
        }
        // call.ended carries the final status, duration and end reason.
        for r in got.iter().filter(|r| r.json["type"] == "call.ended") {
            let c = &r.json["data"]["call"];
            assert_eq!(c["status"], "completed", "{c}");
            assert!(c["duration_seconds"].as_i64().is_some(), "{c}");
            assert!(c["end_reason"].as_str().is_some(), "{c}");
        }
        for r in got.iter().filter(|r| r.json["type"] == "call.analyzed") {
            let a = &r.json["data"]["analysis"];
            assert_eq!(a["status"], "completed", "{a}");
            assert!(
                a["fields"]
                    .as_object()
                    .is_some_and(|f| f.contains_key("budget") && f.contains_key("urgency")),
                "{a}"
            );
        }
        assert_eq!(env.model.structured_calls(), 50, "one analysis per call");
        // Reasoning models refuse `temperature`: analysis requests carry none by default.
        let analyses: Vec<Value> = env
            .model
            .requests()
            .into_iter()
            .filter(|r| r.get("response_format").is_some())
            .collect();
        assert!(!analyses.is_empty());
        assert!(analyses.iter().all(|r| r.get("temperature").is_none()));
    }
);

backend_test!(
    call_email_has_text_and_inline_html_parts_after_the_analysis,
    |db| {
        let env = env(db, true).await;
        let org = env
            .org("Electricians", "+15550000003", &["ops@example.test"])
            .await;
        env.model.script_structured([
        // Invalid first (budget must be a number): asked again, then valid.
        ChatStep::Text(json!({"summary": "x", "intent": "quote", "outcome": {"success": true, "reason": "r"},
            "sentiment": "neutral", "fields": {"budget": "lots", "urgency": null}}).to_string()),
        ChatStep::Text(json!({"summary": "Caller wants a quote for rewiring a kitchen <today>.",
            "intent": "quote", "outcome": {"success": true, "reason": "An electrician was booked."},
            "sentiment": "positive", "fields": {"budget": 5000, "urgency": "high"}}).to_string()),
    ]);
        env.smtp.fail_next(1);
        let (call_id, _) = env.call(&org, 7, "I need my kitchen rewired & fast").await;
        env.jobs().drain(10).await.expect("drain");
        // The first SMTP attempt failed temporarily: visible, and retried.
        let (_, emails) = env
            .api(
                &org,
                reqwest::Method::GET,
                &format!("/api/v1/email-notifications?call_id={call_id}"),
                None,
            )
            .await;
        assert_eq!(emails["data"][0]["status"], "pending", "{emails}");
        assert!(
            emails["data"][0]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("451")),
            "{emails}"
        );
        env.clock.advance(Duration::from_secs(6));
        env.jobs().drain(10).await.expect("drain");
        let mails = env.smtp.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(mails.len(), 1);
        let mail = &mails[0];
        assert_eq!(mail.to, vec!["ops@example.test"]);
        assert!(
            mail_header(&mail.data, "Subject").is_some_and(|s| s.contains("+15550000007")),
            "{}",
            mail.data
        );
        let p = parts(&mail.data);
        let text = p
            .iter()
            .find(|p| p.content_type.starts_with("text/plain"))
            .expect("plain part");
        let html = p
            .iter()
            .find(|p| p.content_type.starts_with("text/html"))
            .expect("html part");
        for body in [&text.body, &html.body] {
            assert!(body.contains("+15550000007"), "caller");
            assert!(body.contains("+15550000003"), "our number");
            assert!(body.contains("Front desk"), "agent");
            assert!(body.contains("5000"), "extracted field");
        }
        assert!(text
            .body
            .contains("Caller wants a quote for rewiring a kitchen <today>."));
        assert!(text.body.contains("I need my kitchen rewired & fast"));
        assert!(
            html.body
                .contains("Caller wants a quote for rewiring a kitchen &lt;today&gt;."),
            "escaped summary"
        );
        assert!(
            html.body.contains("I need my kitchen rewired &amp; fast"),
            "transcript"
        );
        assert!(
            !html.body.to_ascii_lowercase().contains("<style"),
            "no style blocks"
        );
        assert!(!html.body.contains("class="), "no classes");
        assert!(!html.body.contains("gradient"), "solid colours");
        let (_, emails) = env
            .api(
                &org,
                reqwest::Method::GET,
                &format!("/api/v1/email-notifications?call_id={call_id}"),
                None,
            )
            .await;
        assert_eq!(emails["data"][0]["status"], "sent", "{emails}");

        // Re-analysis on request: a new call.analyzed, computed again.
        let before = env.model.structured_calls();
        let (status, _) = env
            .api(
                &org,
                reqwest::Method::POST,
                &format!("/api/v1/calls/{call_id}/analyze"),
                None,
            )
            .await;
        assert_eq!(status, 202);
        env.jobs().drain(10).await.expect("drain");
        assert_eq!(env.model.structured_calls(), before + 1);
        let (_, events) = env
            .api(
                &org,
                reqwest::Method::GET,
                "/api/v1/events?limit=1000",
                None,
            )
            .await;
        let analyzed = events["data"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["type"] == "call.analyzed")
            .count();
        assert_eq!(analyzed, 2);
        // Only one e-mail per call.
        assert_eq!(env.smtp.mails().len(), 1);
    }
);

backend_test!(loopback_targets_are_refused_unless_allowed, |db| {
    let env = env(db, false).await;
    let org = env.org("Gardeners", "+15550000004", &[]).await;
    let receiver = WebhookReceiver::start().await;
    // A literal loopback address is refused at once, beside the field.
    let (status, body) = env
        .api(
            &org,
            reqwest::Method::POST,
            "/api/v1/webhook-endpoints",
            Some(json!({"url": receiver.url})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "url");
    // A name that resolves to loopback is refused when delivering, visibly.
    let url = format!("http://localhost:{}/hooks", receiver.port);
    env.endpoint(&org, &url, Some(&["call.started"])).await;
    env.call(&org, 9, "hello").await;
    env.jobs().run_webhooks_once().await.expect("attempt");
    let d = env.delivery_of(&org, "call.started").await;
    assert_eq!(d["status"], "failed", "{d}");
    let err = d["history"][0]["error"].as_str().unwrap_or_default();
    assert!(
        err.starts_with("refused: localhost resolves to") && err.contains("loopback"),
        "{d}"
    );
    assert!(
        receiver.received().is_empty(),
        "nothing reached the receiver"
    );
});

backend_test!(endpoints_are_managed_scoped_and_disabled_by_gone, |db| {
    let env = env(db, true).await;
    let a = env.org("Alpha", "+15550000005", &[]).await;
    let b = env.org("Beta", "+15550000006", &[]).await;
    let receiver = WebhookReceiver::start().await;
    let (id, secret) = env.endpoint(&a, &receiver.url, Some(&["call.ended"])).await;
    // The secret is shown once.
    let (status, ep) = env
        .api(
            &a,
            reqwest::Method::GET,
            &format!("/api/v1/webhook-endpoints/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(ep.get("secret").is_none(), "{ep}");
    assert_eq!(ep["event_types"], json!(["call.ended"]));
    // Another organization cannot see or change it.
    let (status, _) = env
        .api(
            &b,
            reqwest::Method::GET,
            &format!("/api/v1/webhook-endpoints/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = env
        .api(
            &b,
            reqwest::Method::DELETE,
            &format!("/api/v1/webhook-endpoints/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (_, list) = env
        .api(&b, reqwest::Method::GET, "/api/v1/webhook-endpoints", None)
        .await;
    assert_eq!(list["data"], json!([]));
    // Bad input names the field, nothing is written.
    let (status, body) = env
        .api(
            &a,
            reqwest::Method::PATCH,
            &format!("/api/v1/webhook-endpoints/{id}"),
            Some(json!({"event_types": ["call.ended", "call.exploded"]})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["field"], "event_types[1]");
    let (status, body) = env
        .api(
            &a,
            reqwest::Method::POST,
            "/api/v1/webhook-endpoints",
            Some(json!({"url": "ftp://example.com/x"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (422, json!("url"))
    );
    // Rotation: deliveries verify with the new secret and, for the overlap, the old one.
    let (status, rotated) = env
        .api(
            &a,
            reqwest::Method::POST,
            &format!("/api/v1/webhook-endpoints/{id}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let new_secret = rotated["secret"].as_str().expect("new secret").to_owned();
    assert_ne!(new_secret, secret);
    receiver.set_secret(&new_secret);
    receiver.script([410]);
    env.call(&a, 11, "hi").await;
    env.jobs().run_webhooks_once().await.expect("attempt");
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].verified, "new secret");
    let now = got[0].timestamp;
    assert!(
        verify(
            &secret,
            &got[0].id,
            got[0].timestamp,
            got[0].body.as_bytes(),
            &got[0].signature,
            now
        ),
        "old secret during the overlap"
    );
    // 410 Gone disables the endpoint, with the reason, and writes the notice event.
    let (_, ep) = env
        .api(
            &a,
            reqwest::Method::GET,
            &format!("/api/v1/webhook-endpoints/{id}"),
            None,
        )
        .await;
    assert_eq!(ep["enabled"], false, "{ep}");
    assert!(
        ep["disabled_reason"]
            .as_str()
            .is_some_and(|r| r.contains("410")),
        "{ep}"
    );
    let (_, events) = env
        .api(&a, reqwest::Method::GET, "/api/v1/events", None)
        .await;
    assert!(events["data"]
        .as_array()
        .expect("events")
        .iter()
        .any(|e| e["type"] == "webhook_endpoint.disabled"));
    // Disabled: new events are not queued for it.
    env.call(&a, 12, "hi again").await;
    assert_eq!(env.jobs().run_webhooks_once().await.expect("none"), 0);
    // Re-enabled and re-sent by hand: delivered.
    let (status, ep) = env
        .api(
            &a,
            reqwest::Method::PATCH,
            &format!("/api/v1/webhook-endpoints/{id}"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!((status, ep["disabled_reason"].clone()), (200, Value::Null));
    let d = env.delivery_of(&a, "call.ended").await;
    let (status, _) = env
        .api(
            &a,
            reqwest::Method::POST,
            &format!(
                "/api/v1/webhook-deliveries/{}/resend",
                d["id"].as_str().expect("id")
            ),
            None,
        )
        .await;
    assert_eq!(status, 202);
    env.jobs().run_webhooks_once().await.expect("resend");
    assert_eq!(receiver.received().len(), 2);
    // Delete.
    let (status, _) = env
        .api(
            &a,
            reqwest::Method::DELETE,
            &format!("/api/v1/webhook-endpoints/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = env
        .api(
            &a,
            reqwest::Method::GET,
            &format!("/api/v1/webhook-endpoints/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
});

backend_test!(
    admins_are_emailed_when_an_endpoint_is_turned_off_or_call_emails_bounce,
    |db| {
        let env = env(db, true).await;
        let org = env
            .org("Plumbers", "+15550000009", &["nobody@example.test"])
            .await;
        for (email, role) in [
            ("boss@example.test", switchboard_domain::values::Role::Admin),
            (
                "staff@example.test",
                switchboard_domain::values::Role::Member,
            ),
        ] {
            db.store
                .create_user(&org.id, email, &Secret::new("a long enough password"), role)
                .await
                .expect("user");
        }
        // The call e-mail's only recipient does not exist: the server refuses it for good.
        env.smtp.reject_recipient("nobody@example.test");
        // An endpoint that answers 410 Gone is turned off at its first attempt.
        let receiver = WebhookReceiver::start().await;
        receiver.script([410]);
        let (endpoint, _) = env
            .endpoint(&org, &receiver.url, Some(&["call.ended"]))
            .await;
        env.call(&org, 21, "hello").await;
        env.jobs().drain(10).await.expect("drain");
        let mails = env.smtp.wait_for(2, Duration::from_secs(20)).await;
        assert_eq!(mails.len(), 2, "one alert for each: {mails:?}");
        let subject = |m: &switchboard_testkit::smtp::Mail| {
            mail_header(&m.data, "Subject").unwrap_or_default()
        };
        for m in &mails {
            assert_eq!(m.to, vec!["boss@example.test"], "admins only, not members");
        }
        let off = mails
            .iter()
            .find(|m| subject(m).contains("webhook endpoint was turned off"))
            .expect("the endpoint alert");
        let text = parts(&off.data)
            .into_iter()
            .find(|p| p.content_type.starts_with("text/plain"))
            .expect("text")
            .body;
        assert!(
            text.contains(&receiver.url) && text.contains("410"),
            "{text}"
        );
        assert!(
            text.contains(&format!("{PUBLIC}/webhooks/{endpoint}")),
            "{text}"
        );
        let bounced = mails
            .iter()
            .find(|m| subject(m).contains("Call e-mails could not be sent"))
            .expect("the e-mail alert");
        let text = parts(&bounced.data)
            .into_iter()
            .find(|p| p.content_type.starts_with("text/plain"))
            .expect("text")
            .body;
        assert!(text.contains("550"), "the server's reason: {text}");

        // Another bounce within six hours: no second alert; after them, one more.
        env.call(&org, 22, "hello again").await;
        env.jobs().drain(10).await.expect("drain");
        let (_, emails) = env
            .api(
                &org,
                reqwest::Method::GET,
                "/api/v1/email-notifications",
                None,
            )
            .await;
        let failed = emails["data"]
            .as_array()
            .expect("emails")
            .iter()
            .filter(|e| e["status"] == "failed")
            .count();
        assert_eq!(failed, 2, "{emails}");
        assert_eq!(env.smtp.mails().len(), 2, "the alert is not repeated yet");
        env.clock.advance(Duration::from_secs(6 * 3600 + 1));
        env.call(&org, 23, "and again").await;
        env.jobs().drain(10).await.expect("drain");
        let mails = env.smtp.wait_for(3, Duration::from_secs(20)).await;
        assert_eq!(mails.len(), 3);
        assert!(subject(&mails[2]).contains("Call e-mails could not be sent"));
    }
);
