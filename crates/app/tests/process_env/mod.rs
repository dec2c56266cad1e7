//! What the process-level tests share: fakes for the model and Twilio's REST API, server
//! processes on one database, an organization set up through the API, and calls played
//! like Twilio plays them.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::time::Duration;
use switchboard_store::testing::TestDb;
use switchboard_testkit::eventually;
use switchboard_testkit::process::ServerProcess;
use switchboard_testkit::realtime::{Behavior, FakeRealtime};
use switchboard_testkit::twilio::{form_value, post_signed, stream_of, FakeTwilioRest, MediaCall};

pub const PUBLIC: &str = "https://voice.example.test";
pub const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
pub const TOKEN: &str = "auth-token-of-process-tests";
pub const NUMBER: &str = "+15550001001";
pub const OPERATOR: &str = "sk_operator_key_for_process_tests_0123456789";
pub const WAIT: Duration = Duration::from_secs(30);

/// The fakes and settings every server process of one test shares.
pub struct Rig {
    pub model: FakeRealtime,
    pub rest: FakeTwilioRest,
    pub http: reqwest::Client,
    /// The organization's API key (printed by the first server at first start).
    pub key: String,
    envs: Vec<(&'static str, String)>,
}

impl Rig {
    /// Starts the first server on `db` (fresh) with the echoing fake model, and sets up the
    /// organization through its API: Twilio credentials, an agent, a voice number.
    pub async fn start(db: &TestDb, extra: &[(&'static str, String)]) -> (Rig, ServerProcess) {
        let model = FakeRealtime::start(Behavior {
            echo: true,
            ..Behavior::default()
        })
        .await;
        let rest = FakeTwilioRest::start().await;
        let mut envs = vec![
            ("SWITCHBOARD_DATABASE_URL", db.url.clone()),
            ("SWITCHBOARD_PUBLIC_URL", PUBLIC.to_owned()),
            ("SWITCHBOARD_OPENAI_API_KEY", "sk-test-model-key".to_owned()),
            ("SWITCHBOARD_OPENAI_REALTIME_URL", model.url.clone()),
            ("SWITCHBOARD_TWILIO_API_URL", rest.url.clone()),
            ("SWITCHBOARD_OPERATOR_KEY", OPERATOR.to_owned()),
            // The key of the test's own store, so both read the same secrets.
            (
                "SWITCHBOARD_MASTER_KEY",
                switchboard_store::testing::TEST_MASTER_KEY.to_owned(),
            ),
        ];
        envs.extend(extra.iter().cloned());
        let server = ServerProcess::start(env!("CARGO_BIN_EXE_switchboard"), &envs).await;
        let key = server.printed("API key (org)").await;
        let rig = Rig {
            model,
            rest,
            http: reqwest::Client::new(),
            key,
            envs,
        };
        rig.api(
            &server,
            reqwest::Method::PUT,
            "/settings",
            json!({"twilio_account_sid": ACCOUNT, "twilio_auth_token": TOKEN}),
        )
        .await;
        let agent = rig
            .api(
                &server,
                reqwest::Method::POST,
                "/agents",
                json!({"name": "Reception", "instructions": "Answer the phone."}),
            )
            .await;
        rig.api(
            &server,
            reqwest::Method::POST,
            "/phone-numbers",
            json!({"number": NUMBER, "channel": "voice", "agent_id": agent["id"]}),
        )
        .await;
        (rig, server)
    }

    /// Runs a `switchboard` command with the servers' settings (and `extra`); answers its
    /// output.
    pub fn cli(&self, args: &[&str], extra: &[(&str, &str)]) -> std::process::Output {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
        cmd.args(args);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SWITCHBOARD_")) {
            cmd.env_remove(k);
        }
        cmd.envs(self.envs.iter().map(|(k, v)| (*k, v.as_str())));
        cmd.envs(extra.iter().copied());
        cmd.output().expect("run switchboard")
    }

    /// Another server process on the same database with the same settings.
    pub async fn another(&self) -> ServerProcess {
        ServerProcess::start(env!("CARGO_BIN_EXE_switchboard"), &self.envs).await
    }

    /// Calls the API of `server` with the organization's key; panics on a non-2xx answer.
    pub async fn api(
        &self,
        server: &ServerProcess,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Value {
        let res = self
            .http
            .request(method, format!("{}/api/v1{path}", server.base))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .expect("api");
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.unwrap_or(Value::Null)
    }

    /// Posts the signed incoming-call webhook to `server`; returns the TwiML.
    pub async fn incoming(&self, server: &ServerProcess, call_sid: &str) -> String {
        self.incoming_at(server, "/twilio/voice", call_sid).await
    }

    /// [`Rig::incoming`] at `path` (with a query string, as after a `<Redirect>`).
    pub async fn incoming_at(&self, server: &ServerProcess, path: &str, call_sid: &str) -> String {
        let res = post_signed(
            &self.http,
            &server.base,
            PUBLIC,
            path,
            TOKEN,
            &[
                ("AccountSid", ACCOUNT),
                ("CallSid", call_sid),
                ("CallStatus", "ringing"),
                ("Direction", "inbound"),
                ("From", "+15557770001"),
                ("To", NUMBER),
            ],
        )
        .await;
        assert_eq!(res.status(), 200);
        res.text().await.expect("twiml")
    }

    /// Answers a call on `server` and waits until agent audio flows back.
    pub async fn live_call(&self, server: &ServerProcess, call_sid: &str) -> MediaCall {
        let twiml = self.incoming(server, call_sid).await;
        let (_, params) = stream_of(&twiml).expect("a <Connect><Stream>");
        let media = MediaCall::connect(
            &format!("{}/twilio/media", server.ws),
            call_sid,
            &params,
            Duration::from_millis(20),
            1.0,
        )
        .await
        .expect("media socket");
        self.rest.attach(&media);
        media
            .wait_for("echoed audio", WAIT, |r| r.audio.len() >= 1600)
            .await;
        media
    }

    /// `/readyz` of `server`.
    pub async fn ready_status(&self, server: &ServerProcess) -> u16 {
        self.http
            .get(format!("{}/readyz", server.base))
            .send()
            .await
            .expect("readyz")
            .status()
            .as_u16()
    }

    /// Waits until `/readyz` of `server` answers `status`.
    pub async fn wait_ready_status(&self, server: &ServerProcess, status: u16) {
        eventually("/readyz", WAIT, || async {
            (self.ready_status(server).await == status).then_some(())
        })
        .await;
    }

    /// The TwiML of the REST updates received for `call_sid`.
    pub fn redirects(&self, call_sid: &str) -> Vec<String> {
        self.rest
            .requests()
            .iter()
            .filter(|r| r.call_sid == call_sid)
            .filter_map(|r| form_value(r, "Twiml").map(str::to_owned))
            .collect()
    }

    /// Waits until a REST update for `call_sid` arrived; returns its TwiML.
    pub async fn wait_redirect(&self, call_sid: &str) -> String {
        eventually("a REST update of the call", WAIT, || async {
            self.redirects(call_sid).into_iter().next()
        })
        .await
    }
}

/// The stored call with this CallSid.
pub async fn call_of(db: &TestDb, sid: &str) -> switchboard_domain::entities::Call {
    let (org, id) = db
        .store
        .find_call_by_sid(sid)
        .await
        .expect("lookup")
        .expect("call");
    db.store.get_call(&org, &id).await.expect("call")
}

/// Waits until the call with this CallSid has ended.
pub async fn wait_ended(db: &TestDb, sid: &str) -> switchboard_domain::entities::Call {
    eventually("the call to end", WAIT, || async {
        let call = call_of(db, sid).await;
        call.ended_at.is_some().then_some(call)
    })
    .await
}
