//! What the voice test suites share: a server with a fake OpenAI Realtime model and a fake
//! Twilio REST API, organizations with an agent and a number, and helpers that play Twilio.
#![allow(dead_code, unused_imports)]

pub use serde_json::{json, Value};
pub use std::net::SocketAddr;
pub use std::time::Duration;
pub use switchboard_domain::agent::NewAgent;
pub use switchboard_domain::entities::{CallFilter, NewPhoneNumber};
pub use switchboard_domain::ids::{AgentId, OrgId};
pub use switchboard_domain::settings::SettingsUpdate;
pub use switchboard_domain::values::{NumberChannel, PhoneNumber};
pub use switchboard_domain::{Secret, Timestamp};
pub use switchboard_store::backend_test;
pub use switchboard_store::testing::TestDb;
pub use switchboard_testkit::eventually;
pub use switchboard_testkit::fixtures::*;
pub use switchboard_testkit::realtime::{Behavior, FakeRealtime, FakeShape, Step};
pub use switchboard_testkit::twilio::{post_signed, stream_of, FakeTwilioRest, MediaCall};
pub use switchboard_web::{Application, WebConfig};

pub mod cascade;
pub mod outbound;
pub mod tools;

pub const PUBLIC: &str = "https://voice.example.test";
pub const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
pub const WAIT: Duration = Duration::from_secs(20);

/// 10:00 on the next Monday after today (UTC), as a booking tool takes it: a free slot in
/// the test agents' hours, never in the past.
pub fn next_monday_10() -> String {
    let now = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC);
    let mut d = now.date().tomorrow().expect("date");
    while d.weekday() != jiff::civil::Weekday::Monday {
        d = d.tomorrow().expect("date");
    }
    format!("{d}T10:00")
}

pub struct Org {
    pub id: OrgId,
    pub agent: AgentId,
    pub number: String,
    pub token: String,
}

pub struct Env<'a> {
    pub db: &'a TestDb,
    pub base: String,
    pub ws: String,
    pub http: reqwest::Client,
    pub model: FakeRealtime,
    pub rest: FakeTwilioRest,
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub clock: switchboard_domain::Clock,
    pub recovery: switchboard_voice::recovery::Recovery,
    pub dialer: switchboard_voice::dialer::Dialer,
    pub recordings: switchboard_voice::recordings::Recordings,
    pub campaigns: switchboard_voice::campaigns::CampaignRunner,
    done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub config: WebConfig,
}

pub async fn env(db: &TestDb, behavior: Behavior) -> Env<'_> {
    env_with(db, behavior, |_| {}).await
}

/// [`env`] with settings changed by `tweak` before the server is built.
pub async fn env_with(
    db: &TestDb,
    behavior: Behavior,
    tweak: impl FnOnce(&mut WebConfig),
) -> Env<'_> {
    switchboard_testkit::logs();
    let model = FakeRealtime::start(behavior.clone()).await;
    let rest = FakeTwilioRest::start().await;
    let mut config = WebConfig {
        public_url: Some(PUBLIC.into()),
        twilio_api_url: rest.url.clone(),
        ..WebConfig::default()
    };
    config.voice.realtime_url = model.url.clone();
    config.voice.api_key = Some(Secret::new("sk-test-model-key"));
    config.voice.setup_timeout = Duration::from_secs(5);
    if behavior.shape == FakeShape::Beta {
        config.voice.shape = switchboard_realtime::Shape::Beta;
    }
    config.clock = switchboard_domain::Clock::adjustable();
    // Stranded calls are swept by the tests (`recovery.run_once`), not by the timer.
    config.instance_lease = Duration::from_secs(3600);
    tweak(&mut config);
    let clock = config.clock.clone();
    let running = launch(db, &config, None).await;
    Env {
        db,
        base: running.base.clone(),
        ws: running.ws.clone(),
        http: reqwest::Client::new(),
        model,
        rest,
        stop: running.stop,
        clock,
        recovery: running.recovery,
        dialer: running.dialer,
        recordings: running.recordings,
        campaigns: running.campaigns,
        done: Some(running.done),
        config,
    }
}

struct Running {
    base: String,
    ws: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    recovery: switchboard_voice::recovery::Recovery,
    dialer: switchboard_voice::dialer::Dialer,
    recordings: switchboard_voice::recordings::Recordings,
    campaigns: switchboard_voice::campaigns::CampaignRunner,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Builds and starts a server; `rest`, when given, is pointed at it before it serves (the
/// public URL then leads to this process, as a load balancer would after a restart).
async fn launch(db: &TestDb, config: &WebConfig, rest: Option<&FakeTwilioRest>) -> Running {
    let app = Application::build(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        db.store.clone(),
        config,
    )
    .await
    .expect("bind");
    let addr = app.local_addr().expect("addr");
    if let Some(rest) = rest {
        rest.move_server(&format!("http://{addr}"), &format!("ws://{addr}"));
    }
    let recovery = app.recovery();
    let dialer = app.dialer();
    let recordings = app.recordings();
    let campaigns = app.campaigns();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(app.run_until_stopped(
        async move {
            let _ = rx.await;
        },
        Duration::from_secs(5),
    ));
    Running {
        base: format!("http://{addr}"),
        ws: format!("ws://{addr}"),
        stop: Some(tx),
        recovery,
        dialer,
        recordings,
        campaigns,
        done,
    }
}

impl Env<'_> {
    pub async fn org(
        &self,
        name: &str,
        number: &str,
        tools: &[&str],
        greeting: Option<&str>,
    ) -> Org {
        let store = &self.db.store;
        let org = store.create_org(name).await.expect("org");
        let token = format!("auth-token-of-{name}");
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
            "name": "Reception",
            "instructions": format!("You answer the phone for {name}. The caller's number is {{{{caller_number}}}}."),
            "greeting": greeting,
            "tools": tools,
            "business_hours": {"timezone": "UTC", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "open": "00:00", "close": "23:59", "slot_minutes": 30},
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
        Org {
            id: org.id,
            agent: agent.id,
            number: number.into(),
            token,
        }
    }

    /// Posts a signed inbound text from `from` to `to` (signed with `org`'s token); answers
    /// the status and the TwiML.
    pub async fn text(&self, org: &Org, from: &str, to: &str, sid: &str) -> (u16, String) {
        let res = post_signed(
            &self.http,
            &self.base,
            PUBLIC,
            "/twilio/messaging",
            &org.token,
            &[
                ("MessageSid", sid),
                ("SmsMessageSid", sid),
                ("AccountSid", ACCOUNT),
                ("From", from),
                ("To", to),
                ("Body", "Can I book for Friday?"),
                ("NumMedia", "0"),
            ],
        )
        .await;
        let status = res.status().as_u16();
        (status, res.text().await.expect("twiml"))
    }

    /// Posts the signed incoming-call webhook; returns the TwiML.
    pub async fn incoming(&self, org: &Org, call_sid: &str, from: &str) -> String {
        let res = post_signed(
            &self.http,
            &self.base,
            PUBLIC,
            "/twilio/voice",
            &org.token,
            &[
                ("AccountSid", ACCOUNT),
                ("ApiVersion", "2010-04-01"),
                ("CallSid", call_sid),
                ("CallStatus", "ringing"),
                ("Direction", "inbound"),
                ("From", from),
                ("To", &org.number),
                ("FromCity", ""),
            ],
        )
        .await;
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/xml"));
        res.text().await.expect("twiml")
    }

    /// Answers a call: webhook, TwiML, media stream.
    pub async fn answer(&self, org: &Org, call_sid: &str, from: &str, speed: f64) -> MediaCall {
        let twiml = self.incoming(org, call_sid, from).await;
        let (url, params) = stream_of(&twiml).expect("a <Connect><Stream>");
        assert_eq!(url, "wss://voice.example.test/twilio/media");
        MediaCall::connect(
            &format!("{}/twilio/media", self.ws),
            call_sid,
            &params,
            Duration::from_millis(20),
            speed,
        )
        .await
        .expect("media socket")
    }

    pub async fn status(
        &self,
        org: &Org,
        call_sid: &str,
        status: &str,
        seq: &str,
        extra: &[(&str, &str)],
    ) -> u16 {
        let mut params = vec![
            ("AccountSid", ACCOUNT),
            ("CallSid", call_sid),
            ("CallStatus", status),
            ("SequenceNumber", seq),
            ("CallbackSource", "call-progress-events"),
            ("To", org.number.as_str()),
        ];
        params.extend_from_slice(extra);
        post_signed(
            &self.http,
            &self.base,
            PUBLIC,
            "/twilio/voice/status",
            &org.token,
            &params,
        )
        .await
        .status()
        .as_u16()
    }

    /// Opens a media stream with `params` at real-time playback.
    pub async fn media(&self, call_sid: &str, params: &[(String, String)]) -> MediaCall {
        MediaCall::connect(
            &format!("{}/twilio/media", self.ws),
            call_sid,
            params,
            Duration::from_millis(20),
            1.0,
        )
        .await
        .expect("socket")
    }

    /// Waits until the fake Twilio REST API has received `n` requests.
    pub async fn wait_rest(&self, n: usize) -> Vec<switchboard_testkit::twilio::RestRequest> {
        eventually("the REST requests", WAIT, || async {
            let reqs = self.rest.requests();
            (reqs.len() >= n).then_some(reqs)
        })
        .await
    }

    pub async fn call_of(&self, org: &Org, call_sid: &str) -> switchboard_domain::entities::Call {
        let (o, id) = self
            .db
            .store
            .find_call_by_sid(call_sid)
            .await
            .expect("lookup")
            .expect("call exists");
        assert_eq!(o, org.id);
        self.db.store.get_call(&org.id, &id).await.expect("call")
    }

    pub async fn wait_ended(
        &self,
        org: &Org,
        call_sid: &str,
    ) -> switchboard_domain::entities::Call {
        eventually("the call to end", WAIT, || async {
            let call = self.call_of(org, call_sid).await;
            call.ended_at.is_some().then_some(call)
        })
        .await
    }

    pub async fn transcript(
        &self,
        org: &Org,
        call_sid: &str,
    ) -> Vec<switchboard_domain::entities::Message> {
        let call = self.call_of(org, call_sid).await;
        self.db
            .store
            .list_messages(&org.id, &call.conversation_id, Some(200), None)
            .await
            .expect("messages")
            .data
    }

    /// The function outputs the model was given, in order.
    pub fn outputs(&self) -> Vec<Value> {
        self.model
            .events("conversation.item.create")
            .into_iter()
            .filter(|e| e["item"]["type"] == "function_call_output")
            .map(|e| {
                serde_json::from_str(e["item"]["output"].as_str().expect("output")).expect("json")
            })
            .collect()
    }

    /// Answers a call whose media stream the fake Twilio ties to its call (REST updates stop
    /// it), once its model session is configured.
    pub async fn answer_attached(&self, org: &Org, call_sid: &str, from: &str) -> MediaCall {
        let media = self.answer(org, call_sid, from, 20.0).await;
        self.rest.attach(&media);
        self.wait_model_event("session.update", 1).await;
        media
    }

    pub async fn wait_model_event(&self, kind: &str, n: usize) -> Vec<Value> {
        eventually(kind, WAIT, || async {
            let ev = self.model.events(kind);
            (ev.len() >= n).then_some(ev)
        })
        .await
    }

    /// Changes the organization's agent through the API (as its owner would).
    pub async fn patch_agent(&self, org: &Org, patch: Value) {
        let (_, key) = self
            .db
            .store
            .create_api_key(&org.id, "test")
            .await
            .expect("key");
        let res = self
            .http
            .patch(format!("{}/api/v1/agents/{}", self.base, org.agent))
            .bearer_auth(key.expose())
            .json(&patch)
            .send()
            .await
            .expect("patch");
        assert_eq!(res.status(), 200);
    }

    /// The value of a counter or gauge on `/metrics` (0 when absent).
    pub async fn metric(&self, name: &str) -> u64 {
        self.metric_of(&self.base, name).await
    }

    /// A counter of the server at `base` (another instance).
    pub async fn metric_of(&self, base: &str, name: &str) -> u64 {
        let text = self
            .http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Stops the server (waiting until it has) and starts a new one on the same database.
    pub async fn restart(&mut self) {
        self.shutdown();
        if let Some(done) = self.done.take() {
            done.await.expect("join").expect("served");
        }
        let running = launch(self.db, &self.config, Some(&self.rest)).await;
        self.base = running.base;
        self.ws = running.ws;
        self.stop = running.stop;
        self.recovery = running.recovery;
        self.dialer = running.dialer;
        self.recordings = running.recordings;
        self.campaigns = running.campaigns;
        self.done = Some(running.done);
    }

    pub fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The live call was redirected to an apology and a hang-up.
pub fn assert_apology(req: &switchboard_testkit::twilio::RestRequest) {
    let twiml = &req
        .form
        .iter()
        .find(|(k, _)| k == "Twiml")
        .expect("Twiml")
        .1;
    assert!(
        twiml.contains("<Say>") && twiml.contains("<Hangup/>"),
        "{twiml}"
    );
}

pub fn said(audio: &[u8], text: &str) -> Step {
    Step::Say(audio.to_vec(), text.to_owned())
}

/// Milliseconds of the current agent item Twilio has confirmed played: the byte count in the
/// last echoed mark (`generation:item:bytes`).
pub fn played_ms(r: &switchboard_testkit::twilio::Received) -> u64 {
    r.echoed
        .checked_sub(1)
        .and_then(|i| r.marks.get(i))
        .and_then(|m| m.rsplit(':').next())
        .and_then(|b| b.parse::<u64>().ok())
        .map_or(0, |bytes| bytes / 8)
}

/// Another server on the same database, as behind a load balancer.
pub struct SecondInstance {
    /// `http://127.0.0.1:port`.
    pub base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl SecondInstance {
    /// Starts it with `config` on `db`'s database.
    pub async fn start(db: &TestDb, config: WebConfig) -> SecondInstance {
        let app = Application::build(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            db.store.clone(),
            &config,
        )
        .await
        .expect("bind the second instance");
        let base = format!("http://{}", app.local_addr().expect("addr"));
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(app.run_until_stopped(
            async move {
                let _ = rx.await;
            },
            Duration::from_secs(5),
        ));
        SecondInstance { base, stop, done }
    }

    /// Stops it and waits until it has.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.done.await.expect("join").expect("second instance");
    }
}
