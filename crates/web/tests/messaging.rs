//! SMS, WhatsApp and web chat end to end over real HTTP: signed Twilio messaging webhooks,
//! a fake chat-completions server, a fake Twilio REST API, the REST API, and the database the
//! server wrote. Time moves with an adjustable clock. Both backends.

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use switchboard_domain::agent::NewAgent;
use switchboard_domain::entities::{ConversationFilter, Message, NewContact, NewPhoneNumber};
use switchboard_domain::ids::{AgentId, ConversationId, OrgId};
use switchboard_domain::settings::SettingsUpdate;
use switchboard_domain::values::{MessageKind, MessageRole, NumberChannel, PhoneNumber};
use switchboard_domain::{Clock, Secret, Timestamp};
use switchboard_messaging::{Event, Messaging};
use switchboard_store::backend_test;
use switchboard_store::testing::TestDb;
use switchboard_testkit::chat::{ChatStep, FakeChatModel};
use switchboard_testkit::twilio::{form_value, post_signed, FakeTwilioRest};
use switchboard_web::{Application, WebConfig};

const PUBLIC: &str = "https://sms.example.test";
const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const EMPTY: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>";
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

struct Org {
    id: OrgId,
    agent: AgentId,
    sms: String,
    whatsapp: String,
    token: String,
    key: String,
}

struct Running {
    base: String,
    messaging: Messaging,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

struct Env<'a> {
    db: &'a TestDb,
    http: reqwest::Client,
    model: FakeChatModel,
    rest: FakeTwilioRest,
    clock: Clock,
    app: Option<Running>,
    sid: std::sync::atomic::AtomicU64,
}

async fn start(
    db: &TestDb,
    model: &FakeChatModel,
    rest: &FakeTwilioRest,
    clock: &Clock,
    budget: Duration,
) -> Running {
    let mut config = WebConfig {
        public_url: Some(PUBLIC.into()),
        twilio_api_url: rest.url.clone(),
        clock: clock.clone(),
        ..WebConfig::default()
    };
    config.llm.base_url = model.url.clone();
    config.llm.api_key = Some(Secret::new("sk-test-chat-key"));
    config.llm.model = "fake-chat-1".into();
    config.messaging.reply_budget = budget;
    // The tests drive the job queues themselves.
    config.messaging.poll_interval = None;
    config.jobs.poll_interval = None;
    let app = Application::build(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        db.store.clone(),
        &config,
    )
    .await
    .expect("bind");
    let addr = app.local_addr().expect("addr");
    let messaging = app.messaging();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(app.run_until_stopped(
        async move {
            let _ = rx.await;
        },
        Duration::from_secs(5),
    ));
    Running {
        base: format!("http://{addr}"),
        messaging,
        stop,
        done,
    }
}

async fn env(db: &TestDb, budget: Duration) -> Env<'_> {
    let model = FakeChatModel::start().await;
    let rest = FakeTwilioRest::start().await;
    let clock = Clock::adjustable();
    let app = start(db, &model, &rest, &clock, budget).await;
    Env {
        db,
        http: reqwest::Client::new(),
        model,
        rest,
        clock,
        app: Some(app),
        sid: std::sync::atomic::AtomicU64::new(1),
    }
}

impl Env<'_> {
    fn app(&self) -> &Running {
        self.app.as_ref().expect("running")
    }

    fn base(&self) -> &str {
        &self.app().base
    }

    /// Stops the server (graceful shutdown) and starts a new one on the same database.
    async fn restart(&mut self, budget: Duration) {
        let old = self.app.take().expect("running");
        let _ = old.stop.send(());
        old.done.await.expect("join").expect("served");
        self.app = Some(start(self.db, &self.model, &self.rest, &self.clock, budget).await);
    }

    async fn org(&self, name: &str, sms: &str, whatsapp: &str, tools: &[&str]) -> Org {
        let store = &self.db.store;
        let org = store.create_org(name).await.expect("org");
        let token = format!("auth-token-of-{}", name.replace(' ', "-"));
        store
            .update_settings(
                &org.id,
                SettingsUpdate {
                    twilio_account_sid: Some(ACCOUNT.into()),
                    twilio_auth_token: Some(Secret::new(&token)),
                    ..SettingsUpdate::default()
                },
            )
            .await
            .expect("settings");
        let agent: NewAgent = serde_json::from_value(json!({
            "name": "Billing",
            "instructions": format!("You text for {name}. Customer: {{{{customer_name}}}}; amount due {{{{amount_due}}}} by {{{{due_date}}}}."),
            "tools": tools,
            "business_hours": {"timezone": "UTC", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "open": "00:00", "close": "23:59", "slot_minutes": 30},
        }))
        .expect("agent json");
        let agent = store.create_agent(&org.id, agent).await.expect("agent");
        for (number, channel) in [
            (sms, NumberChannel::Sms),
            (whatsapp, NumberChannel::Whatsapp),
        ] {
            store
                .create_number(
                    &org.id,
                    NewPhoneNumber {
                        number: PhoneNumber::parse(number).expect("e164"),
                        channel,
                        agent_id: Some(agent.id.clone()),
                        active: None,
                    },
                )
                .await
                .expect("number");
        }
        let (_, key) = store.create_api_key(&org.id, "tests").await.expect("key");
        Org {
            id: org.id,
            agent: agent.id,
            sms: sms.into(),
            whatsapp: whatsapp.into(),
            token,
            key: key.expose().to_owned(),
        }
    }

    fn next_sid(&self) -> String {
        let n = self.sid.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("SM{n:032x}")
    }

    /// Posts a signed inbound text; returns (status, TwiML).
    async fn text_with_sid(
        &self,
        org: &Org,
        sid: &str,
        from: &str,
        to: &str,
        body: &str,
    ) -> (u16, String) {
        let res = post_signed(
            &self.http,
            self.base(),
            PUBLIC,
            "/twilio/messaging",
            &org.token,
            &[
                ("MessageSid", sid),
                ("SmsMessageSid", sid),
                ("AccountSid", ACCOUNT),
                ("From", from),
                ("To", to),
                ("Body", body),
                ("NumMedia", "0"),
                ("NumSegments", "1"),
            ],
        )
        .await;
        let status = res.status().as_u16();
        (status, res.text().await.expect("body"))
    }

    async fn sms(&self, org: &Org, from: &str, body: &str) -> String {
        let (status, xml) = self
            .text_with_sid(org, &self.next_sid(), from, &org.sms, body)
            .await;
        assert_eq!(status, 200, "{xml}");
        xml
    }

    async fn whatsapp(&self, org: &Org, from: &str, body: &str) -> String {
        let (status, xml) = self
            .text_with_sid(
                org,
                &self.next_sid(),
                &format!("whatsapp:{from}"),
                &format!("whatsapp:{}", org.whatsapp),
                body,
            )
            .await;
        assert_eq!(status, 200, "{xml}");
        xml
    }

    /// Widens the org's agent to every contact (`contact_scope: organization`), as for an
    /// agent staff use.
    async fn for_staff(&self, org: &Org) {
        let (status, body) = self
            .api(
                org,
                reqwest::Method::PATCH,
                &format!("/api/v1/agents/{}", org.agent),
                Some(json!({"contact_scope": "organization"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
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
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn conversations_with(
        &self,
        org: &Org,
        contact: &str,
    ) -> Vec<switchboard_domain::entities::Conversation> {
        let filter = ConversationFilter {
            contact: Some(contact.into()),
            ..ConversationFilter::default()
        };
        self.db
            .store
            .list_conversations(&org.id, &filter, Some(200), None)
            .await
            .expect("list")
            .data
    }

    async fn transcript(&self, org: &Org, conv: &ConversationId) -> Vec<Message> {
        self.db
            .store
            .list_messages(&org.id, conv, Some(200), None)
            .await
            .expect("messages")
            .data
    }

    /// Waits until the conversation's first agent reply has its provider id (the REST send's
    /// answer is stored after the fake API has recorded the request).
    async fn wait_provider_id(&self, org: &Org, conv: &ConversationId) -> Message {
        for _ in 0..300 {
            let reply = self
                .transcript(org, conv)
                .await
                .into_iter()
                .find(|m| m.role == MessageRole::Assistant);
            if let Some(m) = reply.filter(|m| m.external_id.is_some()) {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the agent's reply never got its provider id");
    }

    /// Waits until the fake REST API has received `n` message sends.
    async fn wait_sent(&self, n: usize) -> Vec<switchboard_testkit::twilio::RestRequest> {
        for _ in 0..300 {
            let m = self.rest.messages();
            if m.len() >= n {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "expected {n} REST message sends, got {}",
            self.rest.messages().len()
        );
    }
}

/// The `<Message>` bodies of a TwiML answer.
fn bodies(xml: &str) -> Vec<String> {
    xml.split("<Message")
        .skip(1)
        .filter_map(|m| {
            let start = m.find('>')? + 1;
            let end = m.find("</Message>")?;
            Some(
                m[start..end]
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&apos;", "'")
                    .replace("&amp;", "&"),
            )
        })
        .collect()
}

fn texts(items: &[Message], role: MessageRole) -> Vec<String> {
    items
        .iter()
        .filter(|m| m.role == role && m.kind == MessageKind::Message)
        .map(|m| m.content["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn drain(rx: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<Event>>) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    while let Ok(e) = rx.try_recv() {
        kinds.push(e.kind);
    }
    kinds
}

backend_test!(
    sessions_follow_the_window_and_the_database_keeps_one_open,
    |db| {
        let env = env(db, Duration::from_secs(10)).await;
        let org = env.org("Acme", "+15550001000", "+15550001001", &[]).await;
        let mut events = env.app().messaging.events().subscribe();
        let jane = "+15551110001";

        let xml = env.sms(&org, jane, "Hello there").await;
        assert_eq!(bodies(&xml), vec!["Reply to: Hello there"]);
        assert!(
            xml.contains(
                "statusCallback=\"https://sms.example.test/twilio/messaging/status?message_id=msg_"
            ),
            "{xml}"
        );
        env.clock.advance(2 * MINUTE);
        env.sms(&org, jane, "Are you open today?").await;
        let convs = env.conversations_with(&org, jane).await;
        assert_eq!(
            convs.len(),
            1,
            "same contact within 5 minutes: one conversation"
        );
        let first = convs[0].id.clone();
        // The second turn saw the first exchange.
        let last = env.model.requests().pop().expect("request");
        let roles: Vec<&str> = last["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["role"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(roles, vec!["system", "user", "assistant", "user"]);
        assert_eq!(last["model"], "fake-chat-1");
        assert_eq!(
            env.model.authorizations()[0].as_deref(),
            Some("Bearer sk-test-chat-key")
        );

        // Idle longer than the window: a new conversation, the old one closed.
        env.clock.advance(6 * MINUTE);
        env.sms(&org, jane, "Me again").await;
        let convs = env.conversations_with(&org, jane).await;
        assert_eq!(convs.len(), 2);
        let old = convs.iter().find(|c| c.id == first).expect("old");
        assert_eq!(old.status.as_str(), "closed");
        assert_eq!(
            texts(&env.transcript(&org, &convs[0].id).await, MessageRole::User),
            vec!["Me again"]
        );
        let kinds = drain(&mut events);
        for k in [
            "conversation.started",
            "message.received",
            "message.sent",
            "conversation.closed",
        ] {
            assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
        }

        // Different contact, channel or number: separate conversations.
        env.sms(&org, "+15551110002", "Hi").await;
        env.whatsapp(&org, jane, "Hi on WhatsApp").await;
        let convs = env.conversations_with(&org, jane).await;
        assert_eq!(convs.len(), 3);
        assert_eq!(
            convs
                .iter()
                .filter(|c| c.channel.as_str() == "whatsapp")
                .count(),
            1
        );
        let other = NewPhoneNumber {
            number: PhoneNumber::parse("+15550001002").expect("e164"),
            channel: NumberChannel::Sms,
            agent_id: Some(org.agent.clone()),
            active: None,
        };
        db.store
            .create_number(&org.id, other)
            .await
            .expect("number");
        let (status, _) = env
            .text_with_sid(&org, &env.next_sid(), jane, "+15550001002", "Other line")
            .await;
        assert_eq!(status, 200);
        assert_eq!(env.conversations_with(&org, jane).await.len(), 4);

        // Eight first messages from a new contact at the same moment: one conversation.
        let bob = "+15551110003";
        let sids: Vec<String> = (0..8).map(|_| env.next_sid()).collect();
        let posts = sids
            .iter()
            .map(|sid| env.text_with_sid(&org, sid, bob, &org.sms, "burst"));
        for (status, _) in futures_util::future::join_all(posts).await {
            assert_eq!(status, 200);
        }
        let convs = env.conversations_with(&org, bob).await;
        assert_eq!(
            convs.len(),
            1,
            "concurrent first messages must share one conversation"
        );
        assert_eq!(
            texts(&env.transcript(&org, &convs[0].id).await, MessageRole::User).len(),
            8
        );

        // The idle sweeper closes what went quiet.
        env.clock.advance(10 * MINUTE);
        let closed = env.app().messaging.close_idle_once().await.expect("sweep");
        assert!(closed >= 4, "closed {closed}");
        assert!(env
            .conversations_with(&org, bob)
            .await
            .iter()
            .all(|c| c.status.as_str() == "closed"));
    }
);

backend_test!(
    retried_webhooks_store_nothing_new_and_send_no_second_reply,
    |db| {
        let env = env(db, Duration::from_secs(10)).await;
        let org = env.org("Acme", "+15550002000", "+15550002001", &[]).await;
        let jane = "+15552220001";
        let sid = env.next_sid();
        let (s1, first) = env.text_with_sid(&org, &sid, jane, &org.sms, "Hello").await;
        let (s2, again) = env.text_with_sid(&org, &sid, jane, &org.sms, "Hello").await;
        assert_eq!((s1, s2), (200, 200));
        assert_eq!(bodies(&first), vec!["Reply to: Hello"]);
        assert_eq!(again, EMPTY);
        // Twice at the same moment: one stored message, one reply between them.
        let sid = env.next_sid();
        let (a, b) = tokio::join!(
            env.text_with_sid(&org, &sid, jane, &org.sms, "Twice"),
            env.text_with_sid(&org, &sid, jane, &org.sms, "Twice")
        );
        assert_eq!(bodies(&a.1).len() + bodies(&b.1).len(), 1, "{a:?} {b:?}");
        let convs = env.conversations_with(&org, jane).await;
        let items = env.transcript(&org, &convs[0].id).await;
        assert_eq!(texts(&items, MessageRole::User), vec!["Hello", "Twice"]);
        assert_eq!(texts(&items, MessageRole::Assistant).len(), 2);
        assert_eq!(env.model.calls(), 2);
        assert!(env.rest.messages().is_empty());
        let metrics = env
            .http
            .get(format!("{}/metrics", env.base()))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        assert!(
            metrics.contains("switchboard_messaging_duplicates_total 2"),
            "{metrics}"
        );
    }
);

backend_test!(
    slow_model_replies_over_rest_exactly_once_even_across_a_restart,
    |db| {
        let mut env = env(db, Duration::from_millis(200)).await;
        let org = env.org("Acme", "+15550003000", "+15550003001", &[]).await;
        let jane = "+15553330001";
        env.model.set_delay(Duration::from_millis(800));
        // The model takes longer than the reply budget: the webhook answers empty TwiML
        // (the reply is not inline), and the reply follows over REST.
        let xml = env.sms(&org, jane, "Slow question").await;
        assert_eq!(xml, EMPTY, "the webhook answers before the model");
        let sent = env.wait_sent(1).await;
        let req = &sent[0];
        assert_eq!(form_value(req, "To"), Some(jane));
        assert_eq!(form_value(req, "From"), Some(org.sms.as_str()));
        assert_eq!(form_value(req, "Body"), Some("Reply to: Slow question"));
        assert_eq!(req.account_sid, ACCOUNT);
        let callback = form_value(req, "StatusCallback")
            .expect("callback")
            .to_owned();
        assert!(callback
            .starts_with("https://sms.example.test/twilio/messaging/status?message_id=msg_"));
        // Delivery reports merge forward only, and must be signed.
        let path = callback.trim_start_matches(PUBLIC).to_owned();
        let conv = env.conversations_with(&org, jane).await.remove(0);
        // The fake API has the request; the server stores Twilio's id once the answer is back.
        let reply = env.wait_provider_id(&org, &conv.id).await;
        let sm = reply.external_id.clone().expect("provider id");
        assert_eq!(reply.delivery_status.as_deref(), Some("queued"));
        for (status, code) in [("delivered", 204), ("sent", 204)] {
            let res = post_signed(
                &env.http,
                env.base(),
                PUBLIC,
                &path,
                &org.token,
                &[
                    ("MessageSid", &sm),
                    ("MessageStatus", status),
                    ("From", &org.sms),
                    ("To", jane),
                    ("AccountSid", ACCOUNT),
                ],
            )
            .await;
            assert_eq!(res.status().as_u16(), code);
        }
        let bad = post_signed(
            &env.http,
            env.base(),
            PUBLIC,
            &path,
            "wrong-token",
            &[
                ("MessageSid", &sm),
                ("MessageStatus", "failed"),
                ("From", &org.sms),
                ("To", jane),
            ],
        )
        .await;
        assert_eq!(bad.status().as_u16(), 403);
        let after = db
            .store
            .get_message(&org.id, &reply.id)
            .await
            .expect("message");
        assert_eq!(after.delivery_status.as_deref(), Some("delivered"));

        // Now the server stops while the model is still thinking.
        env.model.set_delay(Duration::from_millis(1500));
        let xml = env.sms(&org, jane, "Question before a restart").await;
        assert_eq!(xml, EMPTY);
        env.restart(Duration::from_millis(200)).await;
        env.model.set_delay(Duration::ZERO);
        assert_eq!(
            env.rest.messages().len(),
            1,
            "nothing sent by the stopped server"
        );
        let ran = env.app().messaging.run_jobs_once().await.expect("jobs");
        assert_eq!(ran, 1);
        let sent = env.wait_sent(2).await;
        assert_eq!(
            form_value(&sent[1], "Body"),
            Some("Reply to: Question before a restart")
        );
        // The queue is drained (nothing left to run), so nothing can send it again.
        assert_eq!(env.app().messaging.run_jobs_once().await.expect("jobs"), 0);
        assert_eq!(env.rest.messages().len(), 2, "sent exactly once");
        let items = env.transcript(&org, &conv.id).await;
        assert_eq!(texts(&items, MessageRole::Assistant).len(), 2);
    }
);

backend_test!(
    model_failure_keeps_the_message_and_retries_the_reply,
    |db| {
        let env = env(db, Duration::from_secs(5)).await;
        let org = env.org("Acme", "+15550004000", "+15550004001", &[]).await;
        let jane = "+15554440001";
        env.model.script([ChatStep::Fail(503)]);
        let xml = env.sms(&org, jane, "Anyone there?").await;
        assert_eq!(xml, EMPTY, "no garbage is sent");
        let conv = env.conversations_with(&org, jane).await.remove(0);
        assert!(
            conv.error.as_deref().is_some_and(|e| e.contains("503")),
            "{:?}",
            conv.error
        );
        assert_eq!(
            texts(&env.transcript(&org, &conv.id).await, MessageRole::User),
            vec!["Anyone there?"]
        );
        // Not due yet; then due after the backoff.
        assert_eq!(env.app().messaging.run_jobs_once().await.expect("jobs"), 0);
        env.clock.advance(Duration::from_secs(6));
        assert_eq!(env.app().messaging.run_jobs_once().await.expect("jobs"), 1);
        let sent = env.wait_sent(1).await;
        assert_eq!(
            form_value(&sent[0], "Body"),
            Some("Reply to: Anyone there?")
        );
        let conv = db
            .store
            .get_conversation(&org.id, &conv.id)
            .await
            .expect("conv");
        assert_eq!(conv.error, None);

        // A long reply is split into parts of at most 1,600 characters.
        let long = "word ".repeat(700);
        env.model.script([ChatStep::Text(long.clone())]);
        let xml = env.sms(&org, jane, "Tell me everything").await;
        let parts = bodies(&xml);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.chars().count() <= 1600));
        assert_eq!(parts.join(" "), long.trim());
    }
);

backend_test!(stop_start_and_help_are_honoured, |db| {
    let env = env(db, Duration::from_secs(10)).await;
    let org = env
        .org("Acme Dental", "+15550005000", "+15550005001", &["send_sms"])
        .await;
    let jane = "+15555550001";
    env.sms(&org, jane, "Hi").await;
    // "Yes" from a subscribed contact is an answer for the agent, not a keyword.
    assert_eq!(
        bodies(&env.sms(&org, jane, "Yes").await),
        vec!["Reply to: Yes"]
    );
    let calls = env.model.calls();
    let xml = env.sms(&org, jane, "STOP").await;
    assert!(bodies(&xml)[0].contains("unsubscribed"), "{xml}");
    let contact = db
        .store
        .find_contact_by_number(&org.id, &PhoneNumber::parse(jane).expect("e164"))
        .await
        .expect("find")
        .expect("contact");
    assert!(contact.opted_out);
    assert_eq!(
        env.sms(&org, jane, "hello?").await,
        EMPTY,
        "no agent replies after STOP"
    );
    assert_eq!(
        env.sms(&org, jane, "stop").await,
        EMPTY,
        "confirmation sent once"
    );
    assert_eq!(env.model.calls(), calls, "the model was not asked");
    let default_help = bodies(&env.sms(&org, jane, "HELP").await);
    assert!(
        default_help[0].starts_with("Acme Dental:"),
        "{default_help:?}"
    );
    let (status, _) = env
        .api(
            &org,
            reqwest::Method::PUT,
            "/api/v1/settings",
            Some(json!({"help_text": "Acme Dental help: call 555-0100."})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        bodies(&env.sms(&org, jane, "help").await),
        vec!["Acme Dental help: call 555-0100."]
    );
    // Sending to an opted-out contact is refused, through the API and through a tool.
    let (status, body) = env.api(&org, reqwest::Method::POST, "/api/v1/conversations",
        Some(json!({"channel": "sms", "contact_number": jane, "first_message": "Your appointment is tomorrow"}))).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "contact_opted_out");
    let conv = env.conversations_with(&org, jane).await.remove(0);
    let (status, body) = env
        .api(
            &org,
            reqwest::Method::POST,
            &format!("/api/v1/conversations/{}/messages", conv.id),
            Some(json!({"text": "Are you there?"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("contact_opted_out"))
    );
    env.for_staff(&org).await;
    env.model.script([
        ChatStep::Tools(vec![(
            "send_sms".into(),
            json!({"to": jane, "text": "Reminder"}),
        )]),
        ChatStep::Text("I could not text them.".into()),
    ]);
    let (status, turn) = env
        .api(
            &org,
            reqwest::Method::POST,
            &format!("/api/v1/agents/{}/chat", org.agent),
            Some(json!({"session_id": "staff-1", "message": "Text Jane a reminder"})),
        )
        .await;
    assert_eq!(status, 200, "{turn}");
    assert_eq!(
        turn["tool_calls"][0]["output"]["error"]["code"],
        "opted_out"
    );
    assert!(env.rest.messages().is_empty());
    // START opts back in.
    assert!(bodies(&env.sms(&org, jane, "Start").await)[0].contains("resubscribed"));
    assert_eq!(
        bodies(&env.sms(&org, jane, "Back again").await),
        vec!["Reply to: Back again"]
    );
    let items = env
        .transcript(&org, &env.conversations_with(&org, jane).await[0].id)
        .await;
    let keywords: Vec<&str> = items
        .iter()
        .filter_map(|m| m.content["keyword"].as_str())
        .collect();
    assert_eq!(
        keywords,
        vec!["opt_out", "opt_out", "help", "help", "opt_in"]
    );
});

backend_test!(
    business_started_whatsapp_conversation_keeps_its_variables_and_history,
    |db| {
        let env = env(db, Duration::from_secs(10)).await;
        let org = env
            .org("Acme Energy", "+15550006000", "+15550006001", &[])
            .await;
        let jane = "+15556660001";
        let start = json!({"channel": "whatsapp", "contact_number": jane, "agent_id": org.agent,
        "variables": {"customer_name": "Jane", "amount_due": "$120.50", "due_date": "December 1"},
        "generate_first_message": true});
        // Free-form WhatsApp needs the contact to have written in the last 24 hours.
        let (status, body) = env
            .api(
                &org,
                reqwest::Method::POST,
                "/api/v1/conversations",
                Some(start.clone()),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("whatsapp_window_closed")),
            "{body}"
        );
        // A template may open it.
        let (status, body) = env.api(&org, reqwest::Method::POST, "/api/v1/conversations", Some(json!({
        "channel": "whatsapp", "contact_number": jane, "content_sid": "HX0123456789abcdef0123456789abcdef",
        "content_variables": {"1": "Jane"}}))).await;
        assert_eq!(status, 201, "{body}");
        let sent = env.wait_sent(1).await;
        assert_eq!(form_value(&sent[0], "To"), Some("whatsapp:+15556660001"));
        assert_eq!(form_value(&sent[0], "From"), Some("whatsapp:+15550006001"));
        assert_eq!(
            form_value(&sent[0], "ContentSid"),
            Some("HX0123456789abcdef0123456789abcdef")
        );
        assert_eq!(
            form_value(&sent[0], "ContentVariables"),
            Some("{\"1\":\"Jane\"}")
        );
        assert_eq!(form_value(&sent[0], "Body"), None);
        env.whatsapp(&org, jane, "Hi, what is this about?").await;

        // Within 24 hours of her message the agent may write first, with the variables.
        env.model.script([ChatStep::Text(
            "Hi Jane, your balance of $120.50 is due December 1.".into(),
        )]);
        let (status, body) = env
            .api(
                &org,
                reqwest::Method::POST,
                "/api/v1/conversations",
                Some(start),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let conv_id = body["conversation"]["id"].as_str().expect("id").to_owned();
        assert_eq!(body["conversation"]["direction"], "outbound");
        assert_eq!(body["conversation"]["variables"]["customer_name"], "Jane");
        assert_eq!(body["message"]["delivery_status"], "queued");
        let system = env.model.requests().pop().expect("request")["messages"][0]["content"]
            .as_str()
            .expect("system")
            .to_owned();
        assert!(
            system.contains("Customer: Jane; amount due $120.50 by December 1."),
            "{system}"
        );
        let sent = env.wait_sent(2).await;
        assert_eq!(
            form_value(&sent[1], "Body"),
            Some("Hi Jane, your balance of $120.50 is due December 1.")
        );

        // Two days later (inside the 72-hour window) she answers: same conversation, full context.
        env.clock.advance(47 * HOUR);
        env.model
            .script([ChatStep::Text("Friday works, Jane.".into())]);
        let xml = env.whatsapp(&org, jane, "Can I pay on Friday?").await;
        assert_eq!(bodies(&xml), vec!["Friday works, Jane."]);
        let wa: Vec<_> = env
            .conversations_with(&org, jane)
            .await
            .into_iter()
            .filter(|c| c.status.as_str() == "active")
            .collect();
        assert_eq!(wa.len(), 1);
        assert_eq!(wa[0].id.as_str(), conv_id);
        let req = env.model.requests().pop().expect("request");
        let msgs = req["messages"].as_array().expect("messages");
        assert!(msgs[0]["content"]
            .as_str()
            .is_some_and(|s| s.contains("$120.50")));
        assert_eq!(
            msgs[1],
            json!({"role": "assistant", "content": "Hi Jane, your balance of $120.50 is due December 1."})
        );
        assert_eq!(
            msgs[2],
            json!({"role": "user", "content": "Can I pay on Friday?"})
        );

        // A person from the business writes into the thread; the agent sees it next turn.
        let (status, body) = env
            .api(
                &org,
                reqwest::Method::POST,
                &format!("/api/v1/conversations/{conv_id}/messages"),
                Some(json!({"text": "This is Sam from billing: Friday is fine."})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["role"], "human");
        assert_eq!(
            form_value(&env.wait_sent(3).await[2], "Body"),
            Some("This is Sam from billing: Friday is fine.")
        );
        env.whatsapp(&org, jane, "Thanks Sam").await;
        let req = env.model.requests().pop().expect("request");
        assert!(req["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .any(|m| m["content"]
                == "[Sent by a staff member] This is Sam from billing: Friday is fine."));

        // Over 24 hours after her last message, free-form is refused again.
        env.clock.advance(25 * HOUR);
        let (status, body) = env
            .api(
                &org,
                reqwest::Method::POST,
                &format!("/api/v1/conversations/{conv_id}/messages"),
                Some(json!({"text": "Reminder"})),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("whatsapp_window_closed"))
        );
        // Bad input names the field.
        let (status, body) = env.api(&org, reqwest::Method::POST, "/api/v1/conversations",
        Some(json!({"channel": "sms", "contact_number": jane, "first_message": "a", "generate_first_message": true}))).await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (422, Some("first_message"))
        );
        let (status, body) = env
            .api(
                &org,
                reqwest::Method::POST,
                "/api/v1/conversations",
                Some(json!({"channel": "voice", "contact_number": jane, "first_message": "a"})),
            )
            .await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (422, Some("channel"))
        );
    }
);

backend_test!(
    text_agent_tools_run_in_their_organization_and_are_audited,
    |db| {
        let env = env(db, Duration::from_secs(10)).await;
        let a = env
            .org(
                "Clinic A",
                "+15550007000",
                "+15550007001",
                &["book_appointment", "send_sms", "lookup_contact"],
            )
            .await;
        let b = env
            .org(
                "Clinic B",
                "+15550008000",
                "+15550008001",
                &["book_appointment"],
            )
            .await;
        let jane = "+15557770001";
        let slot = jiff::Zoned::now()
            .date()
            .tomorrow()
            .expect("date")
            .to_string()
            + "T10:00";
        env.model.script([
            ChatStep::Tools(vec![(
                "book_appointment".into(),
                json!({"start": slot, "name": "Jane"}),
            )]),
            ChatStep::Text("You are booked for tomorrow at 10:00.".into()),
        ]);
        let xml = env.sms(&a, jane, "Book me tomorrow at 10").await;
        assert_eq!(bodies(&xml), vec!["You are booked for tomorrow at 10:00."]);
        let conv = env.conversations_with(&a, jane).await.remove(0);
        let audit = db
            .store
            .list_tool_invocations(&a.id, &conv.id)
            .await
            .expect("audit");
        assert_eq!(audit.len(), 1);
        assert_eq!(
            (audit[0].tool.as_str(), audit[0].status.as_str()),
            ("book_appointment", "ok")
        );
        assert_eq!(audit[0].source, "text");
        assert!(audit[0].duration_ms.is_some());
        let (from, to) = (
            Timestamp::from_millis(0),
            Timestamp::from_millis(i64::MAX / 2),
        );
        assert_eq!(
            db.store
                .list_appointments(&a.id, from, to, None)
                .await
                .expect("a")
                .len(),
            1
        );
        assert!(db
            .store
            .list_appointments(&b.id, from, to, None)
            .await
            .expect("b")
            .is_empty());
        let items = env.transcript(&a, &conv.id).await;
        let kinds: Vec<&str> = items.iter().map(|m| m.kind.as_str()).collect();
        assert_eq!(
            kinds,
            vec!["message", "function_call", "function_output", "message"]
        );
        // The tool result went back to the model with the call's id.
        let req = env.model.requests().pop().expect("request");
        let tool_msg = req["messages"]
            .as_array()
            .expect("m")
            .iter()
            .find(|m| m["role"] == "tool")
            .expect("tool result")
            .clone();
        assert!(tool_msg["tool_call_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("call_")));
        assert!(req["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .any(|t| t["function"]["name"] == "send_sms"));

        // The web test chat runs tools too: send_sms to a contact of this organization only.
        for (org, number) in [(&a, "+15557770002"), (&b, "+15557770003")] {
            db.store
                .create_contact(
                    &org.id,
                    NewContact {
                        number: PhoneNumber::parse(number).expect("e164"),
                        name: Some("Pat".into()),
                        metadata: None,
                        opted_out: None,
                    },
                )
                .await
                .expect("contact");
        }
        // Staff test the agent here: it may text any contact.
        env.for_staff(&a).await;
        env.model.script([
            ChatStep::Tools(vec![
                (
                    "send_sms".into(),
                    json!({"to": "+15557770002", "text": "Your results are ready."}),
                ),
                (
                    "send_sms".into(),
                    json!({"to": "+15557770003", "text": "Not yours to text."}),
                ),
            ]),
            ChatStep::Text("Texted Pat.".into()),
        ]);
        let (status, turn) = env
            .api(
                &a,
                reqwest::Method::POST,
                &format!("/api/v1/agents/{}/chat", a.agent),
                Some(json!({"session_id": "web-1", "message": "Text Pat that results are ready"})),
            )
            .await;
        assert_eq!(status, 200, "{turn}");
        assert_eq!(turn["reply"], "Texted Pat.");
        assert_eq!(turn["tool_calls"][0]["status"], "ok");
        assert_eq!(
            turn["tool_calls"][1]["output"]["error"]["code"],
            "not_a_contact"
        );
        let sent = env.wait_sent(1).await;
        assert_eq!(sent.len(), 1);
        assert_eq!(form_value(&sent[0], "To"), Some("+15557770002"));
        assert_eq!(form_value(&sent[0], "From"), Some("+15550007000"));
        // The same session continues the same web conversation.
        let (_, again) = env
            .api(
                &a,
                reqwest::Method::POST,
                &format!("/api/v1/agents/{}/chat", a.agent),
                Some(json!({"session_id": "web-1", "message": "Thanks"})),
            )
            .await;
        assert_eq!(again["conversation_id"], turn["conversation_id"]);
        assert_eq!(again["reply"], "Reply to: Thanks");
        // Another organization's key cannot chat with this agent.
        let (status, _) = env
            .api(
                &b,
                reqwest::Method::POST,
                &format!("/api/v1/agents/{}/chat", a.agent),
                Some(json!({"session_id": "web-1", "message": "hi"})),
            )
            .await;
        assert_eq!(status, 404);
        let (status, body) = env
            .api(
                &a,
                reqwest::Method::POST,
                &format!("/api/v1/agents/{}/chat", a.agent),
                Some(json!({"session_id": "bad id!", "message": "hi"})),
            )
            .await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (422, Some("session_id"))
        );
    }
);

backend_test!(unknown_numbers_and_bad_signatures_store_nothing, |db| {
    let env = env(db, Duration::from_secs(10)).await;
    let org = env.org("Acme", "+15550009000", "+15550009001", &[]).await;
    let jane = "+15559990001";
    let (status, xml) = env
        .text_with_sid(&org, &env.next_sid(), jane, "+15550009999", "Hello?")
        .await;
    assert_eq!((status, xml.as_str()), (200, EMPTY));
    let res = post_signed(
        &env.http,
        env.base(),
        PUBLIC,
        "/twilio/messaging",
        "not-the-token",
        &[
            ("MessageSid", "SM00000000000000000000000000000001"),
            ("From", jane),
            ("To", org.sms.as_str()),
            ("Body", "hi"),
        ],
    )
    .await;
    assert_eq!(res.status().as_u16(), 403);
    let unsigned = env
        .http
        .post(format!("{}/twilio/messaging", env.base()))
        .form(&[
            ("MessageSid", "SM00000000000000000000000000000002"),
            ("From", jane),
            ("To", org.sms.as_str()),
            ("Body", "hi"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(unsigned.status().as_u16(), 403);
    assert!(env.conversations_with(&org, jane).await.is_empty());
    assert_eq!(env.model.calls(), 0);
    let metrics = env
        .http
        .get(format!("{}/metrics", env.base()))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("switchboard_messaging_unknown_number_total 1"),
        "{metrics}"
    );
    let (status, body) = env.api(&org, reqwest::Method::POST, "/api/v1/conversations",
        Some(json!({"channel": "sms", "contact_number": jane, "first_message": "Hello from Acme"}))).await;
    assert_eq!(status, 201, "{body}");
    // Twilio refusing a message: the conversation says why.
    env.rest.fail_messages(Some((
        400,
        21211,
        "The 'To' number is not a valid phone number.".into(),
    )));
    let (status, body) = env.api(&org, reqwest::Method::POST, "/api/v1/conversations",
        Some(json!({"channel": "sms", "contact_number": "+15559990002", "first_message": "Hello"}))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("twilio_error")),
        "{body}"
    );
    // The client learns Twilio's error code, not Twilio's text (that goes to the log).
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("Twilio error 21211"), "{body}");
    assert!(!message.contains("not a valid phone number"), "{body}");
    let failed = env.conversations_with(&org, "+15559990002").await.remove(0);
    assert_eq!(failed.status.as_str(), "failed");
    let item = env.transcript(&org, &failed.id).await.remove(0);
    assert_eq!(item.delivery_status.as_deref(), Some("failed"));
    assert!(item
        .delivery_error
        .as_deref()
        .is_some_and(|e| e.contains("21211")));
});

/// Reads SSE events from `res` until `n` have arrived: (event, id, data).
async fn sse_events(res: &mut reqwest::Response, n: usize) -> Vec<(String, i64, Value)> {
    let mut buf = String::new();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while out.len() < n {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let chunk = tokio::time::timeout(left, res.chunk())
            .await
            .expect("events in time")
            .expect("chunk")
            .expect("stream open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut event, mut id, mut data) = (String::new(), 0, Value::Null);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().expect("numeric id");
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = serde_json::from_str(v.trim()).expect("json data");
                }
            }
            // Keep-alive comments carry no event.
            if !event.is_empty() {
                out.push((event, id, data));
            }
        }
    }
    out
}

backend_test!(the_event_stream_follows_one_organization, |db| {
    let env = env(db, Duration::from_secs(10)).await;
    let a = env.org("Alpha", "+15550010000", "+15550010001", &[]).await;
    let b = env.org("Beta", "+15550011000", "+15550011001", &[]).await;
    let open = |org: &Org| {
        env.http
            .get(format!("{}/api/v1/events/stream", env.base()))
            .bearer_auth(&org.key)
            .send()
    };
    let (mut sa, mut sb) = (open(&a).await.expect("a"), open(&b).await.expect("b"));
    assert_eq!(sa.headers()["content-type"], "text/event-stream");
    env.sms(&a, "+15550012001", "Hello Alpha").await;
    let events = sse_events(&mut sa, 3).await;
    let kinds: Vec<&str> = events.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["conversation.started", "message.received", "message.sent"]
    );
    // The id is the event's sequence, and the data is the webhook envelope.
    let (_, id, data) = &events[1];
    assert_eq!(data["sequence"], *id);
    assert_eq!(data["type"], "message.received");
    assert_eq!(data["org_id"], a.id.as_str());
    assert_eq!(data["data"]["message"]["content"]["text"], "Hello Alpha");
    assert!(data["conversation_id"].is_string() && data["message_id"].is_string());
    assert!(
        events.windows(2).all(|w| w[1].1 > w[0].1),
        "in sequence order"
    );
    // Beta's stream saw none of it: its first event is Beta's own.
    env.sms(&b, "+15550012002", "Hello Beta").await;
    let first = sse_events(&mut sb, 1).await.remove(0);
    assert_eq!(first.2["org_id"], b.id.as_str());
    assert_eq!(first.0, "conversation.started");
});

backend_test!(
    the_event_stream_resumes_from_last_event_id_across_a_restart,
    |db| {
        let mut env = env(db, Duration::from_secs(10)).await;
        let a = env.org("Alpha", "+15550010000", "+15550010001", &[]).await;
        let http = env.http.clone();
        let key = a.key.clone();
        let open = |base: String, last: Option<i64>| {
            let mut req = http
                .get(format!("{base}/api/v1/events/stream"))
                .bearer_auth(&key);
            if let Some(id) = last {
                req = req.header("Last-Event-ID", id.to_string());
            }
            req.send()
        };
        let mut stream = open(env.base().to_owned(), None).await.expect("open");
        env.sms(&a, "+15550012001", "First").await;
        let before = sse_events(&mut stream, 3).await;
        let last_seen = before.last().expect("events").1;
        drop(stream);
        // The server restarts; meanwhile (before the reader reconnects) more happens.
        env.restart(Duration::from_secs(10)).await;
        env.sms(&a, "+15550012001", "Second").await;
        env.sms(&a, "+15550012002", "Third").await;
        let mut resumed = open(env.base().to_owned(), Some(last_seen))
            .await
            .expect("reopen");
        let after = sse_events(&mut resumed, 5).await;
        // Exactly the events after the last one seen: no gap, no duplicate.
        let seqs: Vec<i64> = after.iter().map(|(_, id, _)| *id).collect();
        let expected: Vec<i64> = (last_seen + 1..=last_seen + 5).collect();
        assert_eq!(seqs, expected);
        assert_eq!(after[0].0, "message.received");
        assert_eq!(after[0].2["data"]["message"]["content"]["text"], "Second");
        // The log agrees with what the stream served.
        let (status, page) = env
            .api(
                &a,
                reqwest::Method::GET,
                &format!("/api/v1/events?after={last_seen}"),
                None,
            )
            .await;
        assert_eq!(status, 200);
        let logged: Vec<i64> = page["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|e| e["sequence"].as_i64().expect("seq"))
            .collect();
        assert_eq!(logged, expected);
    }
);

backend_test!(
    a_scheduled_message_whose_time_passed_while_stopped_is_sent_once_at_start,
    |db| {
        let mut env = env(db, Duration::from_secs(10)).await;
        let org = env.org("Acme", "+15550003000", "+15550003001", &[]).await;
        let later = Timestamp::from_millis(env.clock.now().millis() + 3_600_000).to_rfc3339();
        let conversation = json!({"channel": "sms", "contact_number": "+15553330001",
            "first_message": "Reminder: your appointment is tomorrow at 10."});
        let (status, scheduled) = env
            .api(
                &org,
                reqwest::Method::POST,
                "/api/v1/scheduled-messages",
                Some(json!({"send_at": later, "conversation": conversation})),
            )
            .await;
        assert_eq!(status, 201, "{scheduled}");
        assert_eq!(scheduled["status"], "scheduled");
        let id = scheduled["id"].as_str().expect("id").to_owned();
        // A second one, cancelled.
        let (_, other) = env
            .api(
                &org,
                reqwest::Method::POST,
                "/api/v1/scheduled-messages",
                Some(json!({"send_at": later, "conversation": conversation})),
            )
            .await;
        let other_id = other["id"].as_str().expect("id").to_owned();
        let (status, canceled) = env
            .api(
                &org,
                reqwest::Method::POST,
                &format!("/api/v1/scheduled-messages/{other_id}/cancel"),
                None,
            )
            .await;
        assert_eq!(
            (status, canceled["status"].as_str()),
            (200, Some("canceled"))
        );
        // Refused now, not at send time: an unknown sender, a generated message.
        let (status, err) = env
            .api(
                &org,
                reqwest::Method::POST,
                "/api/v1/scheduled-messages",
                Some(json!({"send_at": later, "conversation": {"channel": "sms",
                    "contact_number": "+15553330001", "generate_first_message": true}})),
            )
            .await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some("conversation.generate_first_message"))
        );
        // Not due yet.
        assert_eq!(
            env.app().messaging.run_scheduled_once().await.expect("run"),
            0
        );
        // The server stops; the time passes; it starts again and sends it, once.
        env.restart(Duration::from_secs(10)).await;
        env.clock.advance(Duration::from_secs(3601));
        assert_eq!(
            env.app().messaging.run_scheduled_once().await.expect("run"),
            2,
            "both jobs came due (the cancelled one sends nothing)"
        );
        assert_eq!(
            env.app().messaging.run_scheduled_once().await.expect("run"),
            0
        );
        let sent = env.wait_sent(1).await;
        assert_eq!(sent.len(), 1, "sent once");
        assert_eq!(
            form_value(&sent[0], "Body"),
            Some("Reminder: your appointment is tomorrow at 10.")
        );
        let (_, done) = env
            .api(
                &org,
                reqwest::Method::GET,
                &format!("/api/v1/scheduled-messages/{id}"),
                None,
            )
            .await;
        assert_eq!(done["status"], "sent", "{done}");
        assert!(done["conversation_id"].is_string() && done["message_id"].is_string());
        let (_, list) = env
            .api(
                &org,
                reqwest::Method::GET,
                "/api/v1/scheduled-messages?status=canceled",
                None,
            )
            .await;
        let ids: Vec<&str> = list["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|m| m["id"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(ids, [other_id.as_str()]);
    }
);

backend_test!(
    agents_schedule_texts_and_calls_to_contacts_with_tools,
    |db| {
        let env = env(db, Duration::from_secs(10)).await;
        let org = env
            .org(
                "Acme",
                "+15550003000",
                "+15550003001",
                &["schedule_sms", "call_contact"],
            )
            .await;
        env.db
            .store
            .create_number(
                &org.id,
                NewPhoneNumber {
                    number: PhoneNumber::parse("+15550003002").expect("e164"),
                    channel: NumberChannel::Voice,
                    agent_id: Some(org.agent.clone()),
                    active: None,
                },
            )
            .await
            .expect("voice number");
        let ada = "+15553330001";
        let bo = "+15553330002";
        for (number, opted_out) in [(ada, false), (bo, true)] {
            env.db
                .store
                .create_contact(
                    &org.id,
                    serde_json::from_value(json!({"number": number, "opted_out": opted_out}))
                        .expect("contact"),
                )
                .await
                .expect("contact");
        }
        let tomorrow = Timestamp::from_millis(env.clock.now().millis() + 86_400_000).to_rfc3339();
        env.for_staff(&org).await;
        env.model.script([
            ChatStep::Tools(vec![
                (
                    "schedule_sms".into(),
                    json!({"to": ada, "text": "See you tomorrow at 10.", "at": tomorrow}),
                ),
                (
                    "call_contact".into(),
                    json!({"to": ada, "at": tomorrow, "reason": "confirm the booking"}),
                ),
                ("call_contact".into(), json!({"to": bo})),
                (
                    "schedule_sms".into(),
                    json!({"to": ada, "text": "Too late", "at": "2001-01-01T10:00"}),
                ),
            ]),
            ChatStep::Text("Done.".into()),
        ]);
        let (status, turn) = env
            .api(
                &org,
                reqwest::Method::POST,
                &format!("/api/v1/agents/{}/chat", org.agent),
                Some(json!({"session_id": "staff-2", "message": "Remind Ada and call her tomorrow; call Bo now"})),
            )
            .await;
        assert_eq!(status, 200, "{turn}");
        let outputs: Vec<&Value> = turn["tool_calls"]
            .as_array()
            .expect("tool calls")
            .iter()
            .map(|t| &t["output"])
            .collect();
        assert_eq!(outputs[0]["ok"], true, "{}", outputs[0]);
        assert_eq!(outputs[1]["ok"], true, "{}", outputs[1]);
        assert_eq!(outputs[2]["error"]["code"], "opted_out");
        assert_eq!(outputs[3]["error"]["code"], "invalid_time");
        // The text waits for its time; the call is queued for tomorrow, marked as the tool's.
        let (_, scheduled) = env
            .api(
                &org,
                reqwest::Method::GET,
                "/api/v1/scheduled-messages",
                None,
            )
            .await;
        assert_eq!(scheduled["data"][0]["status"], "scheduled");
        assert_eq!(
            scheduled["data"][0]["request"]["first_message"],
            "See you tomorrow at 10."
        );
        let (_, calls) = env
            .api(&org, reqwest::Method::GET, "/api/v1/calls", None)
            .await;
        let call = &calls["data"][0];
        assert_eq!(calls["data"].as_array().expect("calls").len(), 1);
        assert_eq!(call["status"], "queued");
        assert_eq!(call["to_number"], ada);
        assert_eq!(call["metadata"]["requested_by"], "call_contact");
        assert_eq!(call["scheduled_at"], outputs[1]["scheduled_at"]);
        assert!(env.rest.messages().is_empty() && env.rest.created_calls().is_empty());
        // Every execution is audited.
        let conv =
            ConversationId::parse(turn["conversation_id"].as_str().expect("conv")).expect("id");
        let audit = env
            .db
            .store
            .list_tool_invocations(&org.id, &conv)
            .await
            .expect("audit");
        let statuses: Vec<(&str, &str)> = audit
            .iter()
            .map(|t| (t.tool.as_str(), t.status.as_str()))
            .collect();
        assert_eq!(
            statuses,
            [
                ("schedule_sms", "ok"),
                ("call_contact", "ok"),
                ("call_contact", "error"),
                ("schedule_sms", "error")
            ]
        );
    }
);
