//! The agent page's call control card in a real browser (headless Chromium over WebDriver):
//! a handoff ticked without saying when is refused beside the field, then saved with a
//! description and the keypad settings, and shown ticked after a reload. Screenshots go to
//! `target/tmp/dashboard-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/install-browser`). Without them the
//! test says it skipped, except under `CI=true`, where it fails.

use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use switchboard_domain::agent::NewAgent;
use switchboard_domain::values::Role;
use switchboard_domain::Secret;
use switchboard_store::testing::TestDb;
use switchboard_testkit::browser::Browser;
use switchboard_web::{Application, WebConfig};

const WAIT: Duration = Duration::from_secs(20);
const PW: &str = "admin password 123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_control_in_a_real_browser() {
    let Some(b) = Browser::start().await.expect("browser") else {
        return;
    };
    let db = TestDb::sqlite().await.expect("db");
    let store = &db.store;
    let org = store.create_org("Acme Clinic").await.expect("org");
    let new = |name: &str| -> NewAgent {
        serde_json::from_value(json!({"name": name, "instructions": "You help callers."}))
            .expect("agent")
    };
    let reception = store
        .create_agent(&org.id, new("Reception"))
        .await
        .expect("agent");
    let billing = store
        .create_agent(&org.id, new("Billing"))
        .await
        .expect("agent");
    store
        .create_user(&org.id, "admin@acme.test", &Secret::new(PW), Role::Admin)
        .await
        .expect("user");
    let app = Application::build(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        store.clone(),
        &WebConfig::default(),
    )
    .await
    .expect("bind");
    let base = format!("http://{}", app.local_addr().expect("addr"));
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(app.run_until_stopped(
        async move {
            let _ = rx.await;
        },
        Duration::from_secs(5),
    ));

    b.sign_in(&base, "admin@acme.test", PW)
        .await
        .expect("signed in");

    b.goto(&format!("{base}/agents/{}", reception.id))
        .await
        .expect("agent page");
    b.wait_for("#call-control", WAIT).await.expect("the card");
    let tick = format!("input[name=handoff][value='{}']", billing.id);
    b.click_css(&tick).await.expect("tick billing");
    b.click_css("#save-call-control").await.expect("save");
    let err = b
        .wait_for("#error-handoffs", WAIT)
        .await
        .expect("an error beside the field");
    assert!(b.text(&err).await.expect("text").contains("description"));
    shot(&b, "37-call-control-error").await;
    // The tick is kept; fixed: when to hand over, and a shorter keypad entry.
    let kept = b
        .execute(
            "return document.querySelector(arguments[0]).checked",
            vec![json!(tick)],
        )
        .await
        .expect("checked");
    assert_eq!(kept, json!(true), "nothing typed is lost");
    b.fill(
        &format!("input[name='when_{}']", billing.id),
        "Invoices, refunds and payments",
    )
    .await
    .expect("when");
    b.fill("#max_digits", "8").await.expect("max digits");
    b.execute(
        "document.querySelector('#transfer_mode').value = 'warm'",
        vec![],
    )
    .await
    .expect("warm transfers");
    b.click_css("#save-call-control").await.expect("save");
    b.wait_text(".flash", "Call control saved", WAIT)
        .await
        .expect("saved");
    let saved = store
        .get_agent(&org.id, &reception.id)
        .await
        .expect("agent");
    assert_eq!(saved.handoffs.len(), 1);
    assert_eq!(saved.handoffs[0].agent_id, billing.id);
    assert_eq!(
        saved.handoffs[0].description,
        "Invoices, refunds and payments"
    );
    assert_eq!(saved.digits.max_digits, 8);
    assert_eq!(
        saved.transfer_mode,
        switchboard_domain::transfer::TransferMode::Warm
    );
    let checked = b
        .execute(
            "return document.querySelector(arguments[0]).checked",
            vec![json!(tick)],
        )
        .await
        .expect("checked");
    assert_eq!(checked, json!(true));
    shot(&b, "38-call-control-saved").await;

    b.quit().await;
    let _ = stop.send(());
    done.await.expect("join").expect("server");
}

async fn shot(b: &Browser, name: &str) {
    b.execute(
        "document.querySelector('#call-control').scrollIntoView()",
        vec![],
    )
    .await
    .expect("scroll");
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("dashboard-screenshots")
        .join(format!("{name}.png"));
    b.screenshot(&path).await.expect("screenshot");
}
