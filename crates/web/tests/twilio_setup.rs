//! Guided Twilio setup through the API, on both backends, against the fake Twilio (which
//! checks Basic auth, pages its number list and refuses relative webhook URLs like Twilio):
//! the credential check (not set, rejected, accepted), the account's numbers with where their
//! webhooks point, an import that registers each number for what it can do, proves it and
//! points its webhooks here (a number outside the account refused in its own result, a second
//! import changing nothing), and the checklist: the public URL probed at its real address,
//! unreachable at a dead one.

use reqwest::Method;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use switchboard_store::backend_test;
use switchboard_store::testing::TestDb;
use switchboard_store::BootstrapInput;
use switchboard_testkit::twilio::FakeTwilioRest;
use switchboard_web::{Application, WebConfig};

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "setup-token-123";

struct App {
    base: String,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl App {
    /// A server whose public URL is `public`, or its own address when `None`.
    async fn start(db: &TestDb, rest: &FakeTwilioRest, public: Option<&str>) -> App {
        // The address is chosen first so the server can be told it is its public URL.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let own = format!("http://127.0.0.1:{port}");
        let mut config = WebConfig {
            public_url: Some(public.unwrap_or(&own).to_owned()),
            twilio_api_url: rest.url.clone(),
            ..WebConfig::default()
        };
        config.voice.api_key = Some(switchboard_domain::Secret::new("sk-test"));
        let app = Application::build(
            SocketAddr::from(([127, 0, 0, 1], port)),
            db.store.clone(),
            &config,
        )
        .await
        .expect("bind");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(
            async move {
                let _ = rx.await;
            },
            Duration::from_secs(5),
        ));
        App {
            base: own,
            http: reqwest::Client::new(),
            stop: Some(tx),
        }
    }

    async fn call(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

fn step<'a>(setup: &'a Value, key: &str) -> &'a Value {
    setup["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("{key} in {setup}"))
}

backend_test!(
    credentials_checked_numbers_imported_and_webhooks_set,
    |db| {
        let boot = db
            .store
            .bootstrap(&BootstrapInput {
                org_name: "Acme".into(),
                admin_email: "admin@acme.test".into(),
            })
            .await
            .expect("bootstrap")
            .expect("fresh");
        let key = boot.org_key.expose().to_owned();
        let rest = FakeTwilioRest::start().await;
        rest.add_account(ACCOUNT, TOKEN);
        rest.add_incoming_number(ACCOUNT, "+15550100001", true, true);
        rest.add_incoming_number(ACCOUNT, "+15550100002", true, false);
        // Another account's number is not this organization's to import.
        rest.add_account("AC99999999999999999999999999999999", "other");
        rest.add_incoming_number(
            "AC99999999999999999999999999999999",
            "+15550100009",
            true,
            true,
        );
        let app = App::start(db, &rest, None).await;

        // A fresh organization: nothing set up yet, except what the server itself has.
        let (s, setup) = app.call(&key, Method::GET, "/setup", None).await;
        assert_eq!(s, 200, "{setup}");
        assert_eq!(setup["complete"], false);
        let keys: Vec<&str> = setup["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .map(|s| s["key"].as_str().expect("key"))
            .collect();
        assert_eq!(
            keys,
            [
                "twilio_credentials",
                "public_url",
                "phone_number",
                "agent",
                "model_key",
                "email",
                "test_call"
            ]
        );
        assert_eq!(step(&setup, "twilio_credentials")["done"], false);
        assert_eq!(
            step(&setup, "public_url")["done"],
            true,
            "the server answers at its own address: {setup}"
        );
        assert_eq!(step(&setup, "model_key")["done"], true);
        assert_eq!(
            step(&setup, "email")["done"],
            true,
            "no recipients, no SMTP needed"
        );
        assert!(setup["webhook_urls"]["voice"]
            .as_str()
            .is_some_and(|u| u.ends_with("/twilio/voice")));

        let (s, check) = app.call(&key, Method::POST, "/twilio/check", None).await;
        assert_eq!(
            (s, &check["ok"], &check["reason"]),
            (200, &json!(false), &json!("not_configured")),
            "{check}"
        );
        let (s, b) = app
            .call(&key, Method::GET, "/twilio/incoming-numbers", None)
            .await;
        assert_eq!(
            (s, &b["error"]["code"]),
            (409, &json!("not_configured")),
            "{b}"
        );

        // A wrong token: refused by Twilio, and said so.
        let (s, _) = app
            .call(
                &key,
                Method::PUT,
                "/settings",
                Some(json!({"twilio_account_sid": ACCOUNT, "twilio_auth_token": "wrong"})),
            )
            .await;
        assert_eq!(s, 200);
        let (_, check) = app.call(&key, Method::POST, "/twilio/check", None).await;
        assert_eq!(
            (&check["ok"], &check["reason"]),
            (&json!(false), &json!("credentials_rejected")),
            "{check}"
        );
        let (s, b) = app
            .call(&key, Method::GET, "/twilio/incoming-numbers", None)
            .await;
        assert_eq!(
            (s, &b["error"]["code"]),
            (409, &json!("credentials_rejected")),
            "{b}"
        );
        let (_, setup) = app.call(&key, Method::GET, "/setup", None).await;
        assert_eq!(step(&setup, "twilio_credentials")["done"], false);

        // The right token.
        app.call(
            &key,
            Method::PUT,
            "/settings",
            Some(json!({"twilio_auth_token": TOKEN})),
        )
        .await;
        let (_, check) = app.call(&key, Method::POST, "/twilio/check", None).await;
        assert_eq!(
            (&check["ok"], &check["account_status"]),
            (&json!(true), &json!("active")),
            "{check}"
        );
        let (_, setup) = app.call(&key, Method::GET, "/setup", None).await;
        assert_eq!(
            step(&setup, "twilio_credentials")["done"],
            true,
            "a new token is checked again: {setup}"
        );

        let (s, listed) = app
            .call(&key, Method::GET, "/twilio/incoming-numbers", None)
            .await;
        assert_eq!(s, 200, "{listed}");
        let numbers: Vec<&str> = listed["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|n| n["number"].as_str().expect("n"))
            .collect();
        assert_eq!(numbers, ["+15550100001", "+15550100002"]);
        assert_eq!(listed["data"][0]["points_here"], false);

        // An agent to answer them.
        let (_, agent) = app
            .call(
                &key,
                Method::POST,
                "/agents",
                Some(json!({"name": "Reception", "instructions": "Answer."})),
            )
            .await;
        let agent_id = agent["id"].as_str().expect("agent").to_owned();
        for (body, field) in [
            (json!({"numbers": []}), "numbers"),
            (json!({"numbers": ["555"]}), "numbers[0]"),
            (
                json!({"numbers": ["+15550100001"], "agent_id": "agt_nosuchagent"}),
                "agent_id",
            ),
        ] {
            let (s, b) = app
                .call(
                    &key,
                    Method::POST,
                    "/twilio/incoming-numbers/import",
                    Some(body),
                )
                .await;
            assert_eq!((s, b["error"]["field"].as_str()), (422, Some(field)), "{b}");
        }
        let (s, imported) = app
        .call(&key, Method::POST, "/twilio/incoming-numbers/import", Some(json!({
            "numbers": ["+15550100001", "+15550100002", "+15550100009"], "agent_id": agent_id
        })))
        .await;
        assert_eq!(s, 200, "{imported}");
        let r = imported["results"].as_array().expect("results");
        assert_eq!(r[0]["registered"], json!(["voice", "sms"]));
        assert_eq!(
            (&r[0]["verified"], &r[0]["webhooks_configured"]),
            (&json!(true), &json!(true)),
            "{imported}"
        );
        assert_eq!(
            r[1]["registered"],
            json!(["voice"]),
            "a voice-only number is not registered for texts"
        );
        assert_eq!(r[1]["webhooks_configured"], true);
        assert!(
            r[2]["error"]
                .as_str()
                .is_some_and(|e| e.contains("not a number of Twilio account")),
            "{imported}"
        );
        assert_eq!(r[2]["registered"], json!([]));

        // Twilio now sends everything here.
        let base = &app.base;
        let (voice, status, sms) = rest.number_webhooks("+15550100001").expect("number");
        assert_eq!(
            voice.as_deref(),
            Some(format!("{base}/twilio/voice").as_str())
        );
        assert_eq!(
            status.as_deref(),
            Some(format!("{base}/twilio/voice/status").as_str())
        );
        assert_eq!(
            sms.as_deref(),
            Some(format!("{base}/twilio/messaging").as_str())
        );
        let (_, _, sms2) = rest.number_webhooks("+15550100002").expect("number");
        assert_eq!(
            sms2, None,
            "messaging untouched on a number that cannot text"
        );
        let (_, listed) = app
            .call(&key, Method::GET, "/twilio/incoming-numbers", None)
            .await;
        assert_eq!(listed["data"][0]["points_here"], true);
        assert_eq!(listed["data"][0]["registered"], json!(["voice", "sms"]));
        let (_, ours) = app.call(&key, Method::GET, "/phone-numbers", None).await;
        let ours = ours["data"].as_array().expect("numbers");
        assert_eq!(ours.len(), 3);
        assert!(
            ours.iter()
                .all(|n| n["verification"] == "verified" && n["agent_id"] == agent_id.as_str()),
            "{ours:?}"
        );

        // Importing again changes nothing and says so.
        let (_, again) = app
            .call(
                &key,
                Method::POST,
                "/twilio/incoming-numbers/import",
                Some(json!({
                    "numbers": ["+15550100001"], "configure_webhooks": false
                })),
            )
            .await;
        assert_eq!(again["results"][0]["registered"], json!([]));
        assert_eq!(
            again["results"][0]["already_registered"],
            json!(["voice", "sms"])
        );
        assert_eq!(again["results"][0]["webhooks_configured"], false);

        let (_, setup) = app.call(&key, Method::GET, "/setup", None).await;
        for k in [
            "twilio_credentials",
            "public_url",
            "phone_number",
            "agent",
            "model_key",
            "email",
        ] {
            assert_eq!(step(&setup, k)["done"], true, "{k}: {setup}");
        }
        assert_eq!(step(&setup, "test_call")["done"], false);
        // Call e-mails without an e-mail server: the step says what is missing.
        app.call(
            &key,
            Method::PUT,
            "/settings",
            Some(json!({"notification_emails": ["owner@acme.test"]})),
        )
        .await;
        let (_, setup) = app.call(&key, Method::GET, "/setup", None).await;
        assert_eq!(step(&setup, "email")["done"], false);
        assert!(step(&setup, "email")["detail"]
            .as_str()
            .is_some_and(|d| d.contains("SWITCHBOARD_SMTP_URL")));
    }
);

backend_test!(an_unreachable_public_url_is_reported, |db| {
    let boot = db
        .store
        .bootstrap(&BootstrapInput {
            org_name: "Acme".into(),
            admin_email: "admin@acme.test".into(),
        })
        .await
        .expect("bootstrap")
        .expect("fresh");
    let rest = FakeTwilioRest::start().await;
    // Port 9 (discard) on loopback: nothing answers there.
    let app = App::start(db, &rest, Some("http://127.0.0.1:9")).await;
    let (_, setup) = app
        .call(boot.org_key.expose(), Method::GET, "/setup", None)
        .await;
    let s = step(&setup, "public_url");
    assert_eq!(s["done"], false, "{setup}");
    assert!(
        s["detail"]
            .as_str()
            .is_some_and(|d| d.contains("could not be reached")),
        "{s}"
    );
    assert_eq!(
        setup["webhook_urls"]["voice"],
        "http://127.0.0.1:9/twilio/voice"
    );
});
