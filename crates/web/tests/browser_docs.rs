//! The API documentation: the OpenAPI document names its server, gives every response a
//! description, lists the errors each operation can answer (401/403/429 where a key is needed,
//! 404 for an id in the path, 422 where there is input), carries request and response
//! examples, documents the Twilio-facing endpoints and every outgoing webhook as OpenAPI 3.1
//! `webhooks`; and `/docs` renders it in headless Chromium (also at phone width).
//!
//! The browser part needs Debian's `chromium` and `chromium-driver` (`.ci/install-browser`).
//! Without them it says it skipped, except under `CI=true`, where it fails.

use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use switchboard_domain::webhooks::EVENT_TYPES;
use switchboard_store::testing::TestDb;
use switchboard_testkit::browser::Browser;
use switchboard_web::{Application, WebConfig};

const PUBLIC: &str = "https://voice.example.test";
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_complete_and_docs_render() {
    let db = TestDb::sqlite().await.expect("db");
    let app = Application::build(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        db.store.clone(),
        &WebConfig {
            public_url: Some(PUBLIC.into()),
            ..WebConfig::default()
        },
    )
    .await
    .expect("bind");
    let base = format!("http://{}", app.local_addr().expect("addr"));
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(
        async move {
            let _ = rx.await;
        },
        Duration::from_secs(5),
    ));
    let doc: Value = reqwest::get(format!("{base}/api/v1/openapi.json"))
        .await
        .expect("document")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["servers"][0]["url"], PUBLIC);
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            operations += 1;
            let responses = op["responses"].as_object().expect("responses");
            for (code, r) in responses {
                assert!(
                    r["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{method} {path} {code} has a description"
                );
            }
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            if secured {
                for code in ["401", "403", "429"] {
                    assert!(
                        responses.contains_key(code),
                        "{method} {path} documents {code}"
                    );
                }
            }
            if path.contains('{') && path.starts_with("/api/") {
                assert!(
                    responses.contains_key("404"),
                    "{method} {path} documents 404"
                );
            }
            if op.get("requestBody").is_some() && path.starts_with("/api/") {
                assert!(
                    responses.contains_key("422"),
                    "{method} {path} documents 422"
                );
                let media = &op["requestBody"]["content"]["application/json"];
                if media.is_object() {
                    assert!(
                        media.get("example").is_some(),
                        "{method} {path} has a request example"
                    );
                }
            }
        }
    }
    assert!(operations > 100, "{operations} operations");
    // A request example built from its schema, and a response example.
    let create = &doc["paths"]["/api/v1/appointments"]["post"];
    assert!(
        create["requestBody"]["content"]["application/json"]["example"]["agent_id"].is_string()
    );
    assert!(
        create["responses"]["201"]["content"]["application/json"]["example"]["starts_at"]
            .is_string()
    );
    // Twilio's side and the webhooks.
    assert_eq!(doc["paths"]["/twilio/voice"]["post"]["tags"][0], "twilio");
    assert!(doc["paths"]["/twilio/media"]["get"].is_object());
    let hooks = doc["webhooks"].as_object().expect("webhooks");
    for kind in EVENT_TYPES {
        let h = &hooks[*kind]["post"];
        assert_eq!(
            h["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/EventEnvelope",
            "{kind}"
        );
    }

    // The page, served from the binary.
    let res = reqwest::get(format!("{base}/docs")).await.expect("docs");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    let Some(b) = Browser::start().await.expect("browser") else {
        let _ = stop.send(());
        return;
    };
    b.goto(&format!("{base}/docs")).await.expect("docs");
    b.wait_text("h1", "Switchboard API", WAIT)
        .await
        .expect("title");
    assert_eq!(b.text_of("#server").await.expect("server"), PUBLIC);
    let op = b
        .text_of("#op-post--api-v1-appointments")
        .await
        .expect("the booking operation");
    assert!(
        op.contains("POST") && op.contains("/api/v1/appointments") && op.contains("401"),
        "{op}"
    );
    b.wait_text("#webhooks", "appointment.canceled", WAIT)
        .await
        .expect("the webhooks");
    b.wait_text("#schema-Appointment", "starts_at", WAIT)
        .await
        .expect("a schema");
    b.click_css("#op-post--api-v1-appointments a[href='#schema-NewAppointmentRequest']")
        .await
        .expect("follow the body's schema");
    b.resize(390, 844).await.expect("phone");
    let fits = b
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1",
            vec![],
        )
        .await
        .expect("layout");
    assert_eq!(fits, Value::Bool(true), "no sideways scrolling on a phone");
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("dashboard-screenshots")
        .join("60-docs-phone.png");
    b.screenshot(&path).await.expect("screenshot");
    b.quit().await;
    let _ = stop.send(());
}
