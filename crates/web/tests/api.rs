//! Black-box tests of the HTTP API: the real server on port 0, a fresh database per test
//! (SQLite, and PostgreSQL when SWITCHBOARD_TEST_POSTGRES is set), plain HTTP requests.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use switchboard_domain::entities::{NewCall, NewConversation, NewMessage};
use switchboard_domain::ids::OrgId;
use switchboard_domain::values::{CallStatus, Channel, Direction, MessageKind, MessageRole};
use switchboard_domain::Timestamp;
use switchboard_store::testing::TestDb;
use switchboard_store::{Backend, BootstrapInput};
use switchboard_web::{Application, WebConfig};

const CONFIG_OPERATOR_KEY: &str = "op-from-config-0123456789abcdef";

struct TestApp {
    base: String,
    http: reqwest::Client,
    org: OrgId,
    key: String,
    operator_key: String,
    db: TestDb,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

struct Resp {
    status: StatusCode,
    body: Value,
}

impl TestApp {
    async fn spawn(backend: Backend) -> Option<TestApp> {
        let db = TestDb::new(backend).await.expect("test database")?;
        let boot = db
            .store
            .bootstrap(&BootstrapInput {
                org_name: "Alpha".into(),
                admin_email: "admin@example.com".into(),
            })
            .await
            .expect("bootstrap")
            .expect("fresh database");
        let config = WebConfig {
            operator_key: Some(switchboard_domain::Secret::new(CONFIG_OPERATOR_KEY)),
            max_body_bytes: 64 * 1024,
            ..WebConfig::default()
        };
        let app = Application::build(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            db.store.clone(),
            &config,
        )
        .await
        .expect("bind");
        let addr = app.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(
            async move {
                let _ = rx.await;
            },
            Duration::from_secs(5),
        ));
        Some(TestApp {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            org: boot.org.id,
            key: boot.org_key.expose().to_owned(),
            operator_key: boot.operator_key.expose().to_owned(),
            db,
            stop: Some(tx),
            server: Some(server),
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Resp { status, body }
    }

    async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, Some(&self.key), None).await
    }

    async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(&self.key), Some(body))
            .await
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let done = tokio::time::timeout(Duration::from_secs(10), server).await;
            assert!(done.is_ok(), "server stopped within the grace period");
        }
        self.db.drop_db().await;
    }
}

#[track_caller]
fn expect(r: &Resp, status: u16, code: Option<&str>) {
    assert_eq!(r.status.as_u16(), status, "body: {}", r.body);
    if let Some(code) = code {
        assert_eq!(r.body["error"]["code"], code, "body: {}", r.body);
        assert!(r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
}

macro_rules! api_test {
    ($name:ident, |$app:ident| $body:expr) => {
        mod $name {
            use super::*;

            async fn run($app: &TestApp) {
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite");
                run(&app).await;
                app.stop().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(app) = TestApp::spawn(Backend::Postgres).await else {
                    return;
                };
                run(&app).await;
                app.stop().await;
            }
        }
    };
}

api_test!(readme_tour_works, |app| {
    let agent = app
        .post(
            "/api/v1/agents",
            json!({"name": "Reception", "instructions": "Answer for Acme Dental."}),
        )
        .await;
    expect(&agent, 201, None);
    let agent_id = agent.body["id"].as_str().expect("id").to_owned();
    assert_eq!(agent.body["voice"], "marin");
    let number = app
        .post(
            "/api/v1/phone-numbers",
            json!({"number": "+15555550123", "channel": "voice", "agent_id": agent_id}),
        )
        .await;
    expect(&number, 201, None);
    assert_eq!(number.body["agent_id"], agent_id.as_str());
    let listed = app.get("/api/v1/phone-numbers").await;
    expect(&listed, 200, None);
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(1));
    assert!(listed.body["next_cursor"].is_null());

    let patched = app
        .call(
            Method::PATCH,
            &format!("/api/v1/agents/{agent_id}"),
            Some(&app.key),
            Some(json!({"greeting": "Hello!", "tools": ["end_call"]})),
        )
        .await;
    expect(&patched, 200, None);
    assert_eq!(patched.body["greeting"], "Hello!");
    expect(
        &app.get(&format!("/api/v1/agents/{agent_id}")).await,
        200,
        None,
    );

    let contact = app
        .post(
            "/api/v1/contacts",
            json!({"number": "+15555550999", "name": "Ada", "metadata": {"vip": true}}),
        )
        .await;
    expect(&contact, 201, None);
    let found = app.get("/api/v1/contacts?q=ad").await;
    assert_eq!(found.body["data"][0]["name"], "Ada");
    let cid = contact.body["id"].as_str().expect("id").to_owned();
    let c = app
        .call(
            Method::PATCH,
            &format!("/api/v1/contacts/{cid}"),
            Some(&app.key),
            Some(json!({"opted_out": true})),
        )
        .await;
    assert_eq!(c.body["opted_out"], true);
    expect(
        &app.call(
            Method::DELETE,
            &format!("/api/v1/contacts/{cid}"),
            Some(&app.key),
            None,
        )
        .await,
        204,
        None,
    );
    expect(
        &app.get(&format!("/api/v1/contacts/{cid}")).await,
        404,
        Some("not_found"),
    );

    let nid = number.body["id"].as_str().expect("id").to_owned();
    let n = app
        .call(
            Method::PATCH,
            &format!("/api/v1/phone-numbers/{nid}"),
            Some(&app.key),
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(n.body["active"], false);
    expect(
        &app.call(
            Method::DELETE,
            &format!("/api/v1/agents/{agent_id}"),
            Some(&app.key),
            None,
        )
        .await,
        204,
        None,
    );
    let n = app.get(&format!("/api/v1/phone-numbers/{nid}")).await;
    assert!(
        n.body["agent_id"].is_null(),
        "deleting the agent unroutes its number"
    );
    expect(
        &app.call(
            Method::DELETE,
            &format!("/api/v1/phone-numbers/{nid}"),
            Some(&app.key),
            None,
        )
        .await,
        204,
        None,
    );
});

api_test!(bad_input_gets_the_right_status_and_code, |app| {
    // 400: malformed JSON.
    let r = app
        .http
        .post(format!("{}/api/v1/agents", app.base))
        .bearer_auth(&app.key)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "malformed_json");
    // 415: not JSON.
    let r = app
        .http
        .post(format!("{}/api/v1/agents", app.base))
        .bearer_auth(&app.key)
        .body("name=x")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 415);
    // 401: no key, wrong scheme, unknown key.
    expect(
        &app.call(Method::GET, "/api/v1/agents", None, None).await,
        401,
        Some("unauthorized"),
    );
    let r = app
        .http
        .get(format!("{}/api/v1/agents", app.base))
        .header("authorization", format!("Basic {}", app.key))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    expect(
        &app.call(Method::GET, "/api/v1/agents", Some("sk_nope_nope"), None)
            .await,
        401,
        Some("unauthorized"),
    );
    // 403: an organization key on an operator route, and an operator key on a tenant route.
    expect(
        &app.call(Method::GET, "/api/v1/orgs", Some(&app.key), None)
            .await,
        403,
        Some("operator_only"),
    );
    expect(
        &app.call(Method::GET, "/api/v1/agents", Some(&app.operator_key), None)
            .await,
        403,
        Some("forbidden"),
    );
    // 404: absent, malformed id, unknown route.
    expect(
        &app.get("/api/v1/agents/agt_doesnotexist").await,
        404,
        Some("not_found"),
    );
    expect(
        &app.get("/api/v1/agents/not-an-id").await,
        404,
        Some("not_found"),
    );
    expect(
        &app.get("/api/v1/nothing-here").await,
        404,
        Some("not_found"),
    );
    // 405.
    expect(
        &app.call(
            Method::PUT,
            "/api/v1/agents",
            Some(&app.key),
            Some(json!({})),
        )
        .await,
        405,
        Some("method_not_allowed"),
    );
    // 409: number+channel taken.
    expect(
        &app.post(
            "/api/v1/phone-numbers",
            json!({"number": "+15555550123", "channel": "sms"}),
        )
        .await,
        201,
        None,
    );
    expect(
        &app.post(
            "/api/v1/phone-numbers",
            json!({"number": "+15555550123", "channel": "sms"}),
        )
        .await,
        409,
        Some("conflict"),
    );
    // 422: invalid fields are named; unknown fields rejected; nothing is stored.
    let cases = [
        (
            "/api/v1/phone-numbers",
            json!({"number": "555-0123", "channel": "voice"}),
            "number",
        ),
        (
            "/api/v1/phone-numbers",
            json!({"number": "+15555550124", "channel": "fax"}),
            "channel",
        ),
        (
            "/api/v1/phone-numbers",
            json!({"number": "+15555550124", "channel": "voice", "agent_id": "agt_missing"}),
            "agent_id",
        ),
        ("/api/v1/agents", json!({"name": "x"}), "instructions"),
        (
            "/api/v1/agents",
            json!({"name": "x", "instructions": "y", "colour": "red"}),
            "colour",
        ),
        (
            "/api/v1/agents",
            json!({"name": "x", "instructions": "y", "voice": "robot"}),
            "voice",
        ),
        (
            "/api/v1/agents",
            json!({"name": "x", "instructions": "y", "tools": ["rm_rf"]}),
            "tools[0]",
        ),
        (
            "/api/v1/agents",
            json!({"name": "x", "instructions": "y", "turn_detection": {"type": "server_vad", "threshold": 7}}),
            "turn_detection.threshold",
        ),
        (
            "/api/v1/contacts",
            json!({"number": "+15555550125", "metadata": [1, 2]}),
            "metadata",
        ),
        ("/api/v1/api-keys", json!({"name": ""}), "name"),
    ];
    for (path, body, field) in cases {
        let r = app.post(path, body.clone()).await;
        expect(&r, 422, Some("invalid_field"));
        assert_eq!(r.body["error"]["field"], field, "{path} {body}");
    }
    assert_eq!(
        app.get("/api/v1/agents").await.body["data"]
            .as_array()
            .map(Vec::len),
        Some(0),
        "nothing half-saved"
    );
    let r = app
        .call(
            Method::PUT,
            "/api/v1/settings",
            Some(&app.key),
            Some(json!({"notification_emails": ["ok@example.com", "broken"]})),
        )
        .await;
    assert_eq!(r.body["error"]["field"], "notification_emails[1]");
    assert_eq!(
        app.get("/api/v1/settings").await.body["notification_emails"],
        json!([])
    );
    // 422 on query parameters.
    for (q, field) in [
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("cursor=zzz", "cursor"),
        ("channel=fax", "channel"),
        ("from=yesterday", "from"),
        ("sort=asc", "sort"),
    ] {
        let r = app.get(&format!("/api/v1/conversations?{q}")).await;
        expect(&r, 422, Some("invalid_query"));
        assert_eq!(r.body["error"]["field"], field, "{q}");
    }
    // 413: body over the configured limit (64 KiB here).
    let big = "x".repeat(100 * 1024);
    expect(
        &app.post("/api/v1/agents", json!({"name": "x", "instructions": big}))
            .await,
        413,
        Some("payload_too_large"),
    );
});

api_test!(another_organizations_rows_are_404, |app| {
    // Organization A (the bootstrap one) owns one of everything.
    let agent = app
        .post(
            "/api/v1/agents",
            json!({"name": "A agent", "instructions": "x"}),
        )
        .await
        .body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let number = app
        .post(
            "/api/v1/phone-numbers",
            json!({"number": "+15555550100", "channel": "voice", "agent_id": agent}),
        )
        .await
        .body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let contact = app
        .post("/api/v1/contacts", json!({"number": "+15555550101"}))
        .await
        .body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let key = app
        .post("/api/v1/api-keys", json!({"name": "a"}))
        .await
        .body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let store = &app.db.store;
    let conv = store
        .create_conversation(
            &app.org,
            NewConversation {
                channel: Channel::Sms,
                direction: Direction::Inbound,
                contact_number: "+15555550101".into(),
                our_number: None,
                agent_id: None,
                variables: json!({}),
                started_at: Timestamp::now(),
            },
        )
        .await
        .expect("conv");
    let call = store
        .create_call(
            &app.org,
            NewCall {
                conversation_id: conv.id.clone(),
                call_sid: "CA11111111111111111111111111111111".into(),
                direction: Direction::Inbound,
                from_number: "+1".into(),
                to_number: "+1".into(),
                agent_id: None,
                status: CallStatus::Completed,
                started_at: Timestamp::now(),
            },
        )
        .await
        .expect("call");

    // Organization B, created by the operator, with its own key.
    let b = app
        .call(
            Method::POST,
            "/api/v1/orgs",
            Some(&app.operator_key),
            Some(json!({"name": "Beta"})),
        )
        .await;
    expect(&b, 201, None);
    let b_id = b.body["id"].as_str().expect("id");
    let b_key = app
        .call(
            Method::POST,
            &format!("/api/v1/orgs/{b_id}/api-keys"),
            Some(CONFIG_OPERATOR_KEY),
            Some(json!({"name": "beta"})),
        )
        .await;
    expect(&b_key, 201, None);
    let bk = b_key.body["key"].as_str().expect("key").to_owned();

    let absent = app
        .call(Method::GET, "/api/v1/agents/agt_absent", Some(&bk), None)
        .await;
    let paths = [
        format!("/api/v1/agents/{agent}"),
        format!("/api/v1/phone-numbers/{number}"),
        format!("/api/v1/contacts/{contact}"),
        format!("/api/v1/conversations/{}", conv.id),
        format!("/api/v1/conversations/{}/messages", conv.id),
        format!("/api/v1/calls/{}", call.id),
    ];
    for p in &paths {
        let r = app.call(Method::GET, p, Some(&bk), None).await;
        expect(&r, 404, Some("not_found"));
        assert_eq!(r.body, absent.body, "{p}: indistinguishable from absent");
    }
    for p in &paths[..3] {
        expect(
            &app.call(Method::PATCH, p, Some(&bk), Some(json!({}))).await,
            404,
            Some("not_found"),
        );
        expect(
            &app.call(Method::DELETE, p, Some(&bk), None).await,
            404,
            Some("not_found"),
        );
    }
    expect(
        &app.call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{key}"),
            Some(&bk),
            None,
        )
        .await,
        404,
        Some("not_found"),
    );
    for list in [
        "/api/v1/agents",
        "/api/v1/phone-numbers",
        "/api/v1/contacts",
        "/api/v1/conversations",
        "/api/v1/calls",
    ] {
        let r = app.call(Method::GET, list, Some(&bk), None).await;
        assert_eq!(r.body["data"], json!([]), "{list}");
    }
    // B cannot route A's agent onto its own number.
    let r = app
        .call(
            Method::POST,
            "/api/v1/phone-numbers",
            Some(&bk),
            Some(json!({"number": "+15555550102", "channel": "sms", "agent_id": agent})),
        )
        .await;
    expect(&r, 422, Some("invalid_field"));
    // A still has everything.
    for p in &paths {
        expect(&app.get(p).await, 200, None);
    }
});

api_test!(operator_manages_organizations, |app| {
    let r = app
        .call(
            Method::POST,
            "/api/v1/orgs",
            Some(&app.operator_key),
            Some(json!({"name": "Gamma"})),
        )
        .await;
    expect(&r, 201, None);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let list = app
        .call(
            Method::GET,
            "/api/v1/orgs?limit=1",
            Some(&app.operator_key),
            None,
        )
        .await;
    assert_eq!(list.body["data"].as_array().map(Vec::len), Some(1));
    assert!(list.body["next_cursor"].is_string());
    expect(
        &app.call(
            Method::POST,
            "/api/v1/orgs",
            Some(&app.operator_key),
            Some(json!({"name": " "})),
        )
        .await,
        422,
        Some("invalid_field"),
    );
    let key = app
        .call(
            Method::POST,
            &format!("/api/v1/orgs/{id}/api-keys"),
            Some(&app.operator_key),
            Some(json!({"name": "g"})),
        )
        .await
        .body["key"]
        .as_str()
        .expect("key")
        .to_owned();
    expect(
        &app.call(Method::GET, "/api/v1/agents", Some(&key), None)
            .await,
        200,
        None,
    );
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/orgs/{id}/disable"),
            Some(&app.operator_key),
            None,
        )
        .await;
    assert_eq!(r.body["status"], "disabled");
    expect(
        &app.call(Method::GET, "/api/v1/agents", Some(&key), None)
            .await,
        403,
        Some("organization_disabled"),
    );
    app.call(
        Method::POST,
        &format!("/api/v1/orgs/{id}/enable"),
        Some(&app.operator_key),
        None,
    )
    .await;
    expect(
        &app.call(Method::GET, "/api/v1/agents", Some(&key), None)
            .await,
        200,
        None,
    );
    expect(
        &app.call(
            Method::GET,
            "/api/v1/orgs/org_absent",
            Some(&app.operator_key),
            None,
        )
        .await,
        404,
        Some("not_found"),
    );
});

api_test!(api_keys_are_shown_once_and_revocable, |app| {
    let r = app.post("/api/v1/api-keys", json!({"name": "crm"})).await;
    expect(&r, 201, None);
    let secret = r.body["key"].as_str().expect("key").to_owned();
    assert!(secret.starts_with(r.body["prefix"].as_str().expect("prefix")));
    expect(
        &app.call(Method::GET, "/api/v1/agents", Some(&secret), None)
            .await,
        200,
        None,
    );
    let listed = app.get("/api/v1/api-keys").await;
    assert!(
        !listed.body.to_string().contains(&secret),
        "secrets are never listed"
    );
    let id = r.body["id"].as_str().expect("id");
    let revoked = app
        .call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{id}"),
            Some(&app.key),
            None,
        )
        .await;
    assert!(revoked.body["revoked_at"].is_string());
    expect(
        &app.call(Method::GET, "/api/v1/agents", Some(&secret), None)
            .await,
        401,
        Some("unauthorized"),
    );
});

api_test!(conversations_list_filter_and_transcript, |app| {
    let store = &app.db.store;
    let mut last = None;
    for i in 0..5 {
        let c = store
            .create_conversation(
                &app.org,
                NewConversation {
                    channel: if i < 3 {
                        Channel::Sms
                    } else {
                        Channel::Whatsapp
                    },
                    direction: Direction::Inbound,
                    contact_number: format!("+1555555030{i}"),
                    our_number: Some("+15555550100".into()),
                    agent_id: None,
                    variables: json!({"name": "Ada", "amount_due": 42.5}),
                    started_at: Timestamp::from_millis(1_800_000_000_000 + i * 60_000),
                },
            )
            .await
            .expect("conv");
        last = Some(c.id);
    }
    let conv = last.expect("conv");
    store
        .append_message(
            &app.org,
            NewMessage {
                conversation_id: conv.clone(),
                role: MessageRole::User,
                kind: MessageKind::Message,
                content: json!({"type": "text", "text": "Hi"}),
                external_id: Some("SM123".into()),
                delivery_status: None,
                created_at: Timestamp::now(),
            },
        )
        .await
        .expect("msg");
    store
        .append_message(
            &app.org,
            NewMessage {
                conversation_id: conv.clone(),
                role: MessageRole::Assistant,
                kind: MessageKind::FunctionCall,
                content: json!({"name": "lookup_contact", "arguments": {"number": "+15555550304"}}),
                external_id: None,
                delivery_status: None,
                created_at: Timestamp::now(),
            },
        )
        .await
        .expect("msg");

    let page = app.get("/api/v1/conversations?limit=2").await;
    expect(&page, 200, None);
    assert_eq!(page.body["data"][0]["id"], conv.as_str(), "newest first");
    let cursor = page.body["next_cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let next = app
        .get(&format!("/api/v1/conversations?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(next.body["data"].as_array().map(Vec::len), Some(2));
    assert_ne!(next.body["data"][0]["id"], page.body["data"][0]["id"]);
    let wa = app
        .get("/api/v1/conversations?channel=whatsapp&status=active")
        .await;
    assert_eq!(wa.body["data"].as_array().map(Vec::len), Some(2));
    let by_contact = app
        .get("/api/v1/conversations?contact=%2B15555550301")
        .await;
    assert_eq!(by_contact.body["data"].as_array().map(Vec::len), Some(1));
    let range = app
        .get("/api/v1/conversations?from=2027-01-15T08:01:00Z&to=2027-01-15T08:03:00Z")
        .await;
    expect(&range, 200, None);
    let detail = app.get(&format!("/api/v1/conversations/{conv}")).await;
    assert_eq!(detail.body["variables"]["amount_due"], 42.5);
    let msgs = app
        .get(&format!("/api/v1/conversations/{conv}/messages"))
        .await;
    assert_eq!(msgs.body["data"][0]["content"]["text"], "Hi");
    assert_eq!(msgs.body["data"][0]["external_id"], "SM123");
    assert_eq!(msgs.body["data"][1]["kind"], "function_call");
    assert_eq!(
        msgs.body["data"][1]["content"]["arguments"]["number"],
        "+15555550304"
    );
    let calls = app
        .get("/api/v1/calls?status=completed&direction=inbound")
        .await;
    expect(&calls, 200, None);
    expect(
        &app.get("/api/v1/calls?status=exploded").await,
        422,
        Some("invalid_query"),
    );
});

api_test!(settings_keep_the_token_write_only, |app| {
    let sid = format!("AC{}", "f".repeat(32));
    let token = "0123456789abcdef0123456789abcdef";
    let r = app.call(Method::PUT, "/api/v1/settings", Some(&app.key), Some(json!({
        "twilio_account_sid": sid, "twilio_auth_token": token, "session_window_seconds": 600,
        "notification_emails": ["ops@example.com"]
    }))).await;
    expect(&r, 200, None);
    assert_eq!(r.body["twilio_auth_token_set"], true);
    assert!(!r.body.to_string().contains(token));
    let got = app.get("/api/v1/settings").await;
    assert_eq!(got.body["session_window_seconds"], 600);
    assert_eq!(got.body["twilio_account_sid"], sid.as_str());
    assert!(
        !got.body.to_string().contains(token),
        "the auth token is never returned"
    );
    expect(
        &app.call(
            Method::PUT,
            "/api/v1/settings",
            Some(&app.key),
            Some(json!({"session_window_seconds": 5})),
        )
        .await,
        422,
        Some("invalid_field"),
    );
});

api_test!(operations_endpoints, |app| {
    let h = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        (h.status.as_u16(), h.body["status"].as_str()),
        (200, Some("ok"))
    );
    let r = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (r.status.as_u16(), r.body["status"].as_str()),
        (200, Some("ready"))
    );
    app.get("/api/v1/agents").await;
    app.get("/api/v1/agents/agt_x").await;
    let m = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        m.contains(
            r#"switchboard_http_requests_total{method="GET",route="/api/v1/agents",status="200"} 1"#
        ),
        "{m}"
    );
    // Route templates, never raw ids, as labels.
    assert!(
        m.contains(r#"route="/api/v1/agents/{id}",status="404""#),
        "{m}"
    );
    assert!(!m.contains("agt_x"));
    assert!(m.contains("switchboard_http_request_duration_seconds_bucket"));
    // The instance endpoints are the operator's: state, then a drain through the API.
    let op = app.operator_key.clone();
    let i = app
        .call(Method::GET, "/api/v1/instance", Some(&app.key), None)
        .await;
    assert_eq!(i.status.as_u16(), 403);
    let i = app
        .call(Method::GET, "/api/v1/instance", Some(&op), None)
        .await;
    assert_eq!(i.body["status"], "serving");
    assert!(i.body["id"].as_str().expect("id").starts_with("ins_"));
    assert_eq!(i.body["live_calls"], 0);
    let d = app
        .call(Method::POST, "/api/v1/instance/drain", Some(&op), None)
        .await;
    assert_eq!(d.status.as_u16(), 202);
    assert_eq!(d.body["status"], "draining");
    // With no call to wait for, the drained server stops on its own.
    switchboard_testkit::eventually(
        "the server to stop",
        std::time::Duration::from_secs(20),
        || async {
            let up = app.http.get(format!("{}/healthz", app.base)).send().await;
            up.is_err().then_some(())
        },
    )
    .await;
});

/// Every public route, as fixed by the API contract.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/orgs"),
    ("post", "/api/v1/orgs"),
    ("get", "/api/v1/orgs/{id}"),
    ("post", "/api/v1/orgs/{id}/disable"),
    ("post", "/api/v1/orgs/{id}/enable"),
    ("post", "/api/v1/orgs/{id}/api-keys"),
    ("get", "/api/v1/api-keys"),
    ("post", "/api/v1/api-keys"),
    ("delete", "/api/v1/api-keys/{id}"),
    ("get", "/api/v1/agents"),
    ("post", "/api/v1/agents"),
    ("get", "/api/v1/agents/{id}"),
    ("patch", "/api/v1/agents/{id}"),
    ("post", "/api/v1/agents/{id}/chat"),
    ("delete", "/api/v1/agents/{id}"),
    ("get", "/api/v1/phone-numbers"),
    ("post", "/api/v1/phone-numbers"),
    ("get", "/api/v1/phone-numbers/{id}"),
    ("patch", "/api/v1/phone-numbers/{id}"),
    ("delete", "/api/v1/phone-numbers/{id}"),
    ("post", "/api/v1/phone-numbers/{id}/verify"),
    ("get", "/api/v1/appointments"),
    ("post", "/api/v1/appointments"),
    ("get", "/api/v1/appointments/{id}"),
    ("patch", "/api/v1/appointments/{id}"),
    ("delete", "/api/v1/appointments/{id}"),
    ("get", "/api/v1/setup"),
    ("get", "/api/v1/analytics"),
    ("get", "/api/v1/exports/calls.csv"),
    ("get", "/api/v1/exports/conversations.csv"),
    ("get", "/api/v1/exports/appointments.csv"),
    ("post", "/api/v1/twilio/check"),
    ("get", "/api/v1/twilio/incoming-numbers"),
    ("post", "/api/v1/twilio/incoming-numbers/import"),
    ("post", "/twilio/voice"),
    ("post", "/twilio/voice/status"),
    ("post", "/twilio/voice/outbound"),
    ("post", "/twilio/voice/amd"),
    ("post", "/twilio/voice/dial"),
    ("post", "/twilio/voice/warm"),
    ("post", "/twilio/voice/warm/ask"),
    ("post", "/twilio/voice/warm/answer"),
    ("post", "/twilio/voice/warm/status"),
    ("post", "/twilio/voice/recording"),
    ("post", "/twilio/messaging"),
    ("post", "/twilio/messaging/status"),
    ("get", "/twilio/media"),
    ("post", "/retell/webhook"),
    ("get", "/retell/llm/{call_id}"),
    ("get", "/api/v1/calendar-feed"),
    ("post", "/api/v1/calendar-feed"),
    ("delete", "/api/v1/calendar-feed"),
    ("get", "/api/v1/contacts"),
    ("post", "/api/v1/contacts"),
    ("get", "/api/v1/contacts/{id}"),
    ("patch", "/api/v1/contacts/{id}"),
    ("delete", "/api/v1/contacts/{id}"),
    ("get", "/api/v1/conversations"),
    ("post", "/api/v1/conversations"),
    ("get", "/api/v1/conversations/{id}"),
    ("get", "/api/v1/conversations/{id}/messages"),
    ("post", "/api/v1/conversations/{id}/messages"),
    ("get", "/api/v1/events/stream"),
    ("get", "/api/v1/calls"),
    ("get", "/api/v1/calls/{id}"),
    ("post", "/api/v1/calls/{id}/analyze"),
    ("get", "/api/v1/webhook-endpoints"),
    ("post", "/api/v1/webhook-endpoints"),
    ("get", "/api/v1/webhook-endpoints/{id}"),
    ("patch", "/api/v1/webhook-endpoints/{id}"),
    ("delete", "/api/v1/webhook-endpoints/{id}"),
    ("post", "/api/v1/webhook-endpoints/{id}/rotate-secret"),
    ("get", "/api/v1/webhook-deliveries"),
    ("get", "/api/v1/webhook-deliveries/{id}"),
    ("post", "/api/v1/webhook-deliveries/{id}/resend"),
    ("get", "/api/v1/events"),
    ("get", "/api/v1/event-types"),
    ("get", "/api/v1/email-notifications"),
    ("get", "/api/v1/settings"),
    ("put", "/api/v1/settings"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/api/v1/instance"),
    ("post", "/api/v1/calls"),
    ("post", "/api/v1/calls/{id}/cancel"),
    ("get", "/api/v1/calls/{id}/recording"),
    ("delete", "/api/v1/calls/{id}/recording"),
    ("get", "/api/v1/campaigns"),
    ("post", "/api/v1/campaigns"),
    ("get", "/api/v1/campaigns/{id}"),
    ("get", "/api/v1/campaigns/{id}/recipients"),
    ("post", "/api/v1/campaigns/{id}/recipients"),
    ("post", "/api/v1/campaigns/{id}/start"),
    ("post", "/api/v1/campaigns/{id}/pause"),
    ("post", "/api/v1/campaigns/{id}/resume"),
    ("post", "/api/v1/campaigns/{id}/cancel"),
    ("get", "/api/v1/tool-invocations"),
    ("get", "/api/v1/tools"),
    ("post", "/api/v1/tools"),
    ("get", "/api/v1/tools/{id}"),
    ("patch", "/api/v1/tools/{id}"),
    ("delete", "/api/v1/tools/{id}"),
    ("post", "/api/v1/tools/{id}/rotate-secret"),
    ("post", "/api/v1/tools/{id}/test"),
    ("get", "/api/v1/knowledge/sources"),
    ("post", "/api/v1/knowledge/sources"),
    ("post", "/api/v1/knowledge/sources/upload"),
    ("get", "/api/v1/knowledge/sources/{id}"),
    ("patch", "/api/v1/knowledge/sources/{id}"),
    ("delete", "/api/v1/knowledge/sources/{id}"),
    ("get", "/api/v1/knowledge/search"),
    ("post", "/api/v1/assistant"),
    ("post", "/api/v1/assistant/actions/{id}/confirm"),
    ("post", "/api/v1/assistant/actions/{id}/cancel"),
    ("get", "/api/v1/assistant/sessions"),
    ("get", "/api/v1/assistant/sessions/{id}"),
    ("get", "/api/v1/mcp-servers"),
    ("post", "/api/v1/mcp-servers"),
    ("get", "/api/v1/mcp-servers/{id}"),
    ("patch", "/api/v1/mcp-servers/{id}"),
    ("delete", "/api/v1/mcp-servers/{id}"),
    ("get", "/api/v1/mcp-servers/{id}/tools"),
    ("delete", "/api/v1/mcp-servers/{id}/oauth"),
    ("post", "/api/v1/calls/{id}/actions"),
    ("get", "/api/v1/calls/{id}/actions"),
    ("get", "/api/v1/calls/{id}/actions/{action_id}"),
    ("get", "/api/v1/scheduled-messages"),
    ("post", "/api/v1/scheduled-messages"),
    ("get", "/api/v1/scheduled-messages/{id}"),
    ("post", "/api/v1/scheduled-messages/{id}/cancel"),
    ("post", "/api/v1/instance/drain"),
    ("get", "/metrics"),
];

api_test!(openapi_documents_every_route, |app| {
    let doc = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .body;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                documented.push((method.to_owned(), path.clone()));
            }
        }
    }
    for (method, path) in ROUTES {
        assert!(
            documented.iter().any(|(m, p)| m == method && p == path),
            "{method} {path} missing from openapi.json"
        );
    }
    // And nothing is documented that the server does not serve: every documented operation
    // reaches a handler (not the router's 404/405 fallbacks).
    for (method, path) in &documented {
        if path == "/api/v1/events/stream" {
            // A stream never ends: check it opens, then hang up.
            let res = app
                .http
                .get(format!("{}{path}", app.base))
                .bearer_auth(&app.key)
                .send()
                .await
                .expect("stream");
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(res.headers()["content-type"], "text/event-stream");
            continue;
        }
        let concrete = path.replace("{id}", "x_unknown");
        let key = if path.starts_with("/api/v1/orgs") {
            app.operator_key.clone()
        } else {
            app.key.clone()
        };
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let body = (m != Method::GET && m != Method::DELETE).then(|| json!({}));
        let r = app.call(m, &concrete, Some(&key), body).await;
        let fallback = r.body["error"]["message"] == "no such route"
            || r.status == StatusCode::METHOD_NOT_ALLOWED;
        assert!(
            !fallback,
            "{method} {path} is documented but not routed: {}",
            r.body
        );
    }
    assert_eq!(documented.len(), ROUTES.len(), "documented: {documented:?}");
    // Schemas are there for the request bodies clients build.
    for schema in [
        "NewAgent",
        "Agent",
        "NewPhoneNumber",
        "ErrorBody",
        "SettingsUpdate",
    ] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "schema {schema}"
        );
    }
});
