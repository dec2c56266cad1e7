//! The dashboard's outbound pages in a real browser (headless Chromium over WebDriver): a call
//! placed from a contact's page, and a campaign created from a CSV file chosen in the form,
//! previewed (the rows to call, the duplicate skipped, the unreadable row named), started
//! with the bad row skipped, and watched until its progress bar is full. The server runs on a
//! fresh SQLite database against the fake Twilio, which plays every call's life.
//! Screenshots go to `target/tmp/dashboard-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/install-browser`). Without them the
//! test says it skipped, except under `CI=true`, where it fails.

use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use switchboard_domain::agent::NewAgent;
use switchboard_domain::entities::{NewContact, NewPhoneNumber};
use switchboard_domain::settings::SettingsUpdate;
use switchboard_domain::values::{NumberChannel, PhoneNumber, Role};
use switchboard_domain::{Clock, Secret};
use switchboard_store::testing::TestDb;
use switchboard_testkit::browser::Browser;
use switchboard_testkit::eventually;
use switchboard_testkit::twilio::{form_value, CallScript, FakeTwilioRest};
use switchboard_web::{Application, WebConfig};

const PUBLIC: &str = "https://dash.example.test";
const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "token-outbound-dashboard";
const WAIT: Duration = Duration::from_secs(20);
const PW: &str = "admin password 123";
const RECIPIENTS: usize = 12;

async fn shot(b: &Browser, name: &str) {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("dashboard-screenshots")
        .join(format!("{name}.png"));
    b.screenshot(&path).await.expect("screenshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_pages_in_a_real_browser() {
    let Some(b) = Browser::start().await.expect("browser") else {
        return;
    };
    let db = TestDb::sqlite().await.expect("db");
    let store = &db.store;
    let rest = FakeTwilioRest::start().await;
    let org = store.create_org("Acme Dental").await.expect("org");
    store
        .update_settings(
            &org.id,
            SettingsUpdate {
                twilio_account_sid: Some(ACCOUNT.into()),
                twilio_auth_token: Some(Secret::new(TOKEN)),
                ..SettingsUpdate::default()
            },
        )
        .await
        .expect("settings");
    let agent: NewAgent = serde_json::from_value(json!({"name": "Reminders",
        "instructions": "You remind {{name}} of their appointment."}))
    .expect("agent");
    store.create_agent(&org.id, agent).await.expect("agent");
    let agent = store
        .list_agents(&org.id, None, None)
        .await
        .expect("agents")
        .data
        .remove(0);
    store
        .create_number(
            &org.id,
            NewPhoneNumber {
                number: PhoneNumber::parse("+15555550100").expect("e164"),
                channel: NumberChannel::Voice,
                agent_id: Some(agent.id.clone()),
                active: None,
            },
        )
        .await
        .expect("number");
    let contact = store
        .create_contact(
            &org.id,
            NewContact {
                number: PhoneNumber::parse("+15555550177").expect("e164"),
                name: Some("Ada".into()),
                metadata: None,
                opted_out: None,
            },
        )
        .await
        .expect("contact");
    store
        .create_user(&org.id, "admin@acme.test", &Secret::new(PW), Role::Admin)
        .await
        .expect("user");

    let config = WebConfig {
        public_url: Some(PUBLIC.into()),
        twilio_api_url: rest.url.clone(),
        clock: Clock::system(),
        ..WebConfig::default()
    };
    let app = Application::build(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        store.clone(),
        &config,
    )
    .await
    .expect("bind");
    let addr = app.local_addr().expect("addr");
    let base = format!("http://{addr}");
    rest.connect_server(PUBLIC, &base, &format!("ws://{addr}"), TOKEN);
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

    // ---- a call from the contact's page: the agent, the variables, then the call's page ----
    rest.script_number("+15555550177", [CallScript::NoAnswer]);
    b.goto(&format!("{base}/contacts/{}", contact.id))
        .await
        .expect("contact");
    b.wait_for("#call-form", WAIT).await.expect("call form");
    b.fill("#call_variables", "name=Ada\nreason=Friday's cleaning")
        .await
        .expect("variables");
    shot(&b, "20-contact-call-form").await;
    b.click_css("#call-contact").await.expect("call");
    b.wait_text("#call-status", "no-answer", WAIT)
        .await
        .expect("the call's page shows how it ended");
    let created = rest.created_calls();
    assert_eq!(created.len(), 1);
    assert_eq!(form_value(&created[0].1, "To"), Some("+15555550177"));
    let call = &store
        .list_calls(&org.id, &Default::default(), None, None)
        .await
        .expect("calls")
        .data[0];
    let conv = store
        .get_conversation(&org.id, &call.conversation_id)
        .await
        .expect("conversation");
    assert_eq!(conv.variables["reason"], "Friday's cleaning");
    shot(&b, "21-call-from-contact").await;

    // ---- a campaign from a CSV file: preview, start, progress ----
    let mut csv = String::from("number,name\n");
    for i in 0..RECIPIENTS {
        let n = format!("+1555030{i:04}");
        rest.script_number(
            &n,
            [if i % 2 == 0 {
                CallScript::NoAnswer
            } else {
                CallScript::Busy
            }],
        );
        csv.push_str(&format!("{n},Person {i}\n"));
    }
    csv.push_str("+15550300003,Again\n");
    csv.push_str("12345,Bad\n");
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("campaign-recipients.csv");
    std::fs::write(&file, &csv).expect("csv file");
    b.goto(&format!("{base}/campaigns"))
        .await
        .expect("campaigns");
    b.click_css("#new-campaign").await.expect("new");
    b.wait_for("#campaign-form", WAIT).await.expect("form");
    b.fill("#name", "November reminders").await.expect("name");
    b.fill("#timezone", &switchboard_testkit::zone_where_it_is(12))
        .await
        .expect("zone");
    b.fill("#start", "06:00").await.expect("start");
    b.fill("#end", "18:00").await.expect("end");
    for day in ["sat", "sun"] {
        b.click_css(&format!("input[name=days][value={day}]"))
            .await
            .expect("day");
    }
    b.fill("#max_concurrent_calls", "3").await.expect("cap");
    // The file is chosen like a person would; the page reads it into the form.
    let input = b.find("#csv-file").await.expect("file input");
    b.type_into(&input, file.to_str().expect("path"))
        .await
        .expect("choose file");
    eventually("the file to be read", WAIT, || async {
        let v = b
            .execute("return document.getElementById('csv').value", vec![])
            .await
            .expect("script");
        (v.as_str().is_some_and(|t| t.contains("Person 11"))).then_some(())
    })
    .await;
    shot(&b, "22-campaign-form").await;
    b.click_css("#preview-campaign").await.expect("preview");
    b.wait_for("#preview", WAIT).await.expect("preview page");
    let counts = b.text_of("#preview-counts").await.expect("counts");
    assert!(
        counts.contains(&format!("{RECIPIENTS} will be called"))
            && counts.contains("1 skipped")
            && counts.contains("1 unreadable"),
        "{counts}"
    );
    b.wait_text("#skipped-rows", "duplicate of row 4", WAIT)
        .await
        .expect("the duplicate and why");
    b.wait_text("#invalid-rows", "12345", WAIT)
        .await
        .expect("the unreadable row and why");
    b.wait_text("#preview-rows", "Person 0", WAIT)
        .await
        .expect("the first rows");
    shot(&b, "23-campaign-preview").await;
    // Starting without accepting the bad row is refused, and nothing is called.
    b.click_css("#start-campaign").await.expect("start");
    b.wait_text(".flash", "unreadable", WAIT)
        .await
        .expect("refused while a row is unreadable");
    assert_eq!(rest.created_calls().len(), 1);
    b.click_css("#skip_invalid_rows").await.expect("skip");
    b.click_css("#start-campaign").await.expect("start");
    b.wait_for("progress.campaign-progress", WAIT)
        .await
        .expect("the progress bar");
    let total = RECIPIENTS + 2;
    // The bar moves as calls end (the page refreshes itself on their events) until full.
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    eventually("the progress bar to fill", Duration::from_secs(60), || async {
        let v = b
            .execute(
                "const p = document.querySelector('progress.campaign-progress'); return p ? Number(p.value) : -1",
                vec![],
            )
            .await
            .expect("script");
        let v = v.as_i64().unwrap_or(-1);
        seen.lock().expect("lock").insert(v);
        (v == i64::try_from(total).unwrap_or(0)).then_some(())
    })
    .await;
    let seen = seen.into_inner().expect("lock");
    assert!(seen.len() > 1, "the bar moved: {seen:?}");
    b.wait_text("#campaign-status", "completed", WAIT)
        .await
        .expect("completed");
    let outcomes = b.text_of("#campaign-outcomes").await.expect("outcomes");
    assert!(
        outcomes.contains(&format!("busy: {}", RECIPIENTS / 2))
            && outcomes.contains(&format!("no answer: {}", RECIPIENTS / 2)),
        "{outcomes}"
    );
    assert!(rest.max_active_calls() <= 3);
    shot(&b, "24-campaign-done").await;

    // ---- a phone-sized screen still shows the campaign ----
    b.resize(390, 844).await.expect("resize");
    b.goto(&format!("{base}/campaigns"))
        .await
        .expect("campaigns");
    b.wait_text("#campaigns", "November reminders", WAIT)
        .await
        .expect("listed");
    shot(&b, "25-campaigns-phone").await;

    b.quit().await;
    let _ = stop.send(());
    done.await.expect("join").expect("served");
}
