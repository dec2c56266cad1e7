//! Draining a real server process: SIGTERM (or `switchboard drain`) with live calls. The calls
//! keep talking, `/readyz` turns 503, new calls are refused, and the calls left at the drain
//! timeout hear a goodbye and end as `completed` / `shutdown`; the process exits 0 without an
//! error logged. Both backends.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use switchboard_store::backend_test;
use switchboard_store::testing::TestDb;
use switchboard_testkit::process::ServerProcess;
use switchboard_testkit::realtime::{Behavior, FakeRealtime};
use switchboard_testkit::twilio::{form_value, post_signed, stream_of, FakeTwilioRest, MediaCall};

const PUBLIC: &str = "https://voice.example.test";
const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "auth-token-of-drain";
const NUMBER: &str = "+15550001001";
const OPERATOR: &str = "sk_operator_key_for_drain_tests_0123456789";
const WAIT: Duration = Duration::from_secs(30);

struct Rig {
    server: ServerProcess,
    model: FakeRealtime,
    rest: FakeTwilioRest,
    http: reqwest::Client,
}

/// A server process on `db` with the echoing fake model, set up through its API.
async fn rig(db: &TestDb, extra: &[(&str, String)]) -> Rig {
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
    ];
    envs.extend(extra.iter().cloned());
    let server = ServerProcess::start(env!("CARGO_BIN_EXE_switchboard"), &envs).await;
    let key = server.printed("API key (org)").await;
    let http = reqwest::Client::new();
    let api = |method: reqwest::Method, path: &str, body: Value| {
        http.request(method, format!("{}/api/v1{path}", server.base))
            .bearer_auth(&key)
            .json(&body)
            .send()
    };
    let ok = |r: reqwest::Response| {
        assert!(r.status().is_success(), "{}", r.status());
        r
    };
    ok(api(
        reqwest::Method::PUT,
        "/settings",
        json!({"twilio_account_sid": ACCOUNT, "twilio_auth_token": TOKEN}),
    )
    .await
    .expect("settings"));
    let agent: Value = ok(api(
        reqwest::Method::POST,
        "/agents",
        json!({"name": "Reception", "instructions": "Answer the phone."}),
    )
    .await
    .expect("agent"))
    .json()
    .await
    .expect("agent json");
    ok(api(
        reqwest::Method::POST,
        "/phone-numbers",
        json!({"number": NUMBER, "channel": "voice", "agent_id": agent["id"]}),
    )
    .await
    .expect("number"));
    Rig {
        server,
        model,
        rest,
        http,
    }
}

impl Rig {
    /// Posts the signed incoming-call webhook; returns the TwiML.
    async fn incoming(&self, call_sid: &str) -> String {
        let res = post_signed(
            &self.http,
            &self.server.base,
            PUBLIC,
            "/twilio/voice",
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

    /// Answers a call and waits until agent audio flows back.
    async fn live_call(&self, call_sid: &str) -> MediaCall {
        let twiml = self.incoming(call_sid).await;
        let (_, params) = stream_of(&twiml).expect("a <Connect><Stream>");
        let media = MediaCall::connect(
            &format!("{}/twilio/media", self.server.ws),
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

    async fn ready_status(&self) -> u16 {
        self.http
            .get(format!("{}/readyz", self.server.base))
            .send()
            .await
            .expect("readyz")
            .status()
            .as_u16()
    }

    /// Waits until `/readyz` answers `status`.
    async fn wait_ready_status(&self, status: u16) {
        let deadline = Instant::now() + WAIT;
        while self.ready_status().await != status {
            assert!(Instant::now() < deadline, "/readyz never answered {status}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The REST redirects received for `call_sid`.
    fn redirects(&self, call_sid: &str) -> Vec<String> {
        self.rest
            .requests()
            .iter()
            .filter(|r| r.call_sid == call_sid)
            .filter_map(|r| form_value(r, "Twiml").map(str::to_owned))
            .collect()
    }
}

backend_test!(sigterm_drains_live_calls_then_says_goodbye, |db| {
    let mut rig = rig(db, &[("SWITCHBOARD_DRAIN_TIMEOUT_SECONDS", "8".into())]).await;
    assert_eq!(rig.ready_status().await, 200);
    let sids = [
        "CA00000000000000000000000000000d01",
        "CA00000000000000000000000000000d02",
        "CA00000000000000000000000000000d03",
    ];
    let mut calls = Vec::new();
    for sid in sids {
        calls.push(rig.live_call(sid).await);
    }
    let signalled = Instant::now();
    rig.server.signal("TERM");
    rig.wait_ready_status(503).await;
    let body: Value = rig
        .http
        .get(format!("{}/readyz", rig.server.base))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    assert_eq!(body["error"]["code"], "draining");
    // A new call is refused politely (the only instance), and nothing is stored for it.
    let twiml = rig.incoming("CA00000000000000000000000000000d04").await;
    assert!(
        twiml.contains("<Say>") && twiml.contains("<Hangup/>") && !twiml.contains("<Connect>"),
        "{twiml}"
    );
    // The live calls keep talking until the drain timeout, then hear the goodbye.
    for sid in sids {
        let deadline = Instant::now() + WAIT;
        while rig.redirects(sid).is_empty() {
            assert!(Instant::now() < deadline, "no goodbye for {sid}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let twiml = &rig.redirects(sid)[0];
        assert!(
            twiml.contains("maintenance") && twiml.contains("<Hangup/>"),
            "a goodbye, not the failure apology: {twiml}"
        );
    }
    for media in &calls {
        let got = media.snapshot();
        let last = got.media.last().expect("audio").0;
        assert!(
            last.duration_since(signalled) >= Duration::from_secs(5),
            "audio was still relayed 5 s after the signal"
        );
    }
    let status = rig.server.wait_exit(WAIT).await;
    assert!(status.success(), "exit status {status}");
    assert!(
        rig.server.log_lines("ERROR").is_empty(),
        "errors logged: {:?}",
        rig.server.log_lines("ERROR")
    );
    for sid in sids {
        let (org, id) = db
            .store
            .find_call_by_sid(sid)
            .await
            .expect("lookup")
            .expect("call");
        let call = db.store.get_call(&org, &id).await.expect("call");
        assert_eq!(call.status.as_str(), "completed", "{sid}");
        assert_eq!(call.end_reason.as_deref(), Some("shutdown"), "{sid}");
    }
    assert!(db
        .store
        .find_call_by_sid("CA00000000000000000000000000000d04")
        .await
        .expect("lookup")
        .is_none());
    assert_eq!(rig.model.sessions().len(), 3);
});

backend_test!(drain_command_waits_for_calls_to_end_by_themselves, |db| {
    let mut rig = rig(db, &[]).await;
    let sid = "CA00000000000000000000000000000d11";
    let media = rig.live_call(sid).await;
    // `switchboard drain` asks the running server to drain through the operator API.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["drain", "--url", &rig.server.base])
        .env("SWITCHBOARD_OPERATOR_KEY", OPERATOR)
        .output()
        .expect("drain");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("is draining: 1 live call(s)"), "{printed}");
    rig.wait_ready_status(503).await;
    // Without an operator key the command says what is missing.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["drain", "--url", &rig.server.base])
        .env_remove("SWITCHBOARD_OPERATOR_KEY")
        .output()
        .expect("drain");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SWITCHBOARD_OPERATOR_KEY"));
    // The call is still live and relayed; when the caller hangs up, the server exits.
    let before = media.snapshot().audio.len();
    media
        .wait_for("more audio while draining", WAIT, |r| {
            r.audio.len() > before + 8000
        })
        .await;
    media.stop();
    let status = rig.server.wait_exit(WAIT).await;
    assert!(status.success(), "exit status {status}");
    let (org, id) = db
        .store
        .find_call_by_sid(sid)
        .await
        .expect("lookup")
        .expect("call");
    let call = db.store.get_call(&org, &id).await.expect("call");
    assert_eq!(call.status.as_str(), "completed");
    assert_eq!(call.end_reason.as_deref(), Some("caller_hung_up"));
    assert!(rig.redirects(sid).is_empty(), "no goodbye was needed");
});
