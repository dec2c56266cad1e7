//! The first day in a real browser (headless Chromium over WebDriver): a new organization's
//! overview shows the setup checklist, and it goes green step by step as an admin enters the
//! Twilio credentials (checked against the fake Twilio from the settings page, which shows the
//! webhook URLs to paste), creates an agent, imports the account's number (registered, proven,
//! and its webhooks set at the fake Twilio) and takes a first call, after which the checklist
//! is gone. Screenshots go to `target/tmp/dashboard-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/install-browser`). Without them the
//! test says it skipped, except under `CI=true`, where it fails.

mod voice_env;

use std::path::PathBuf;
use switchboard_domain::values::Role;
use switchboard_testkit::browser::Browser;
use voice_env::*;

const PW: &str = "admin password 123";
const TOKEN: &str = "first-day-token";
const NUMBER: &str = "+15550100001";

async fn shot(b: &Browser, name: &str) {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("dashboard-screenshots")
        .join(format!("{name}.png"));
    b.screenshot(&path).await.expect("screenshot");
}

/// The overview's checklist: the keys of the steps done and of those left.
async fn steps(b: &Browser, base: &str) -> (Vec<String>, Vec<String>) {
    b.goto(&format!("{base}/")).await.expect("overview");
    b.wait_for("#today", WAIT).await.expect("overview");
    let v = b
        .execute(
            "const all = [...document.querySelectorAll('#setup li[data-step]')]; \
             return [all.filter(l => l.classList.contains('done')).map(l => l.dataset.step), \
                     all.filter(l => !l.classList.contains('done')).map(l => l.dataset.step)];",
            vec![],
        )
        .await
        .expect("steps");
    let list = |i: usize| -> Vec<String> {
        v[i].as_array()
            .expect("list")
            .iter()
            .map(|s| s.as_str().expect("key").to_owned())
            .collect()
    };
    (list(0), list(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checklist_goes_green_step_by_step() {
    let Some(b) = Browser::start().await.expect("browser") else {
        return;
    };
    let db = TestDb::sqlite().await.expect("db");
    let mut env = env(&db, Behavior::default()).await;
    env.rest.add_account(ACCOUNT, TOKEN);
    env.rest.add_incoming_number(ACCOUNT, NUMBER, true, true);
    let org = db.store.create_org("Acme").await.expect("org");
    db.store
        .create_user(&org.id, "admin@acme.test", &Secret::new(PW), Role::Admin)
        .await
        .expect("user");
    let base = env.base.clone();
    b.sign_in(&base, "admin@acme.test", PW)
        .await
        .expect("signed in");

    // A fresh organization: the model key is the server's (set), e-mails are off.
    let (done, todo) = steps(&b, &base).await;
    assert_eq!(done, ["model_key", "email"]);
    assert_eq!(
        todo,
        [
            "twilio_credentials",
            "public_url",
            "phone_number",
            "agent",
            "test_call"
        ]
    );
    shot(&b, "50-setup-fresh").await;

    // ---- credentials, checked from the settings page, which shows what to paste ----
    b.click_css("#setup li[data-step=twilio_credentials] a")
        .await
        .expect("to settings");
    b.wait_for("#twilio-setup", WAIT)
        .await
        .expect("twilio card");
    assert_eq!(
        b.text_of("#url-voice").await.expect("url"),
        format!("{PUBLIC}/twilio/voice")
    );
    b.fill("#twilio_account_sid", ACCOUNT).await.expect("sid");
    b.fill("#twilio_auth_token", TOKEN).await.expect("token");
    b.click_css("#save-settings").await.expect("save");
    b.wait_text(".flash", "Settings saved", WAIT)
        .await
        .expect("saved");
    b.click_css("#twilio-setup form button")
        .await
        .expect("check");
    b.wait_text("#credential-check", "Twilio accepted", WAIT)
        .await
        .expect("checked");
    let (done, _) = steps(&b, &base).await;
    assert!(done.contains(&"twilio_credentials".to_owned()), "{done:?}");

    // ---- an agent ----
    b.click_css("#setup li[data-step=agent] a")
        .await
        .expect("to the agent form");
    b.wait_for("#agent-form", WAIT).await.expect("form");
    b.fill("#name", "Reception").await.expect("name");
    b.fill("#instructions", "You answer calls for Acme.")
        .await
        .expect("instructions");
    b.click_css("#save").await.expect("save");
    b.wait_text(".flash", "", WAIT).await.expect("created");
    let (done, _) = steps(&b, &base).await;
    assert!(done.contains(&"agent".to_owned()), "{done:?}");

    // ---- the number, imported with its webhooks set through the Twilio API ----
    b.goto(&format!("{base}/settings")).await.expect("settings");
    b.click_css("#import-numbers").await.expect("import");
    b.wait_for(
        &format!("#account-numbers tr[data-number='{NUMBER}'] input:checked"),
        WAIT,
    )
    .await
    .expect("the number, ticked");
    shot(&b, "51-import-numbers").await;
    b.click_css("#import").await.expect("import");
    let row = b
        .wait_text(
            &format!("#import-results tr[data-number='{NUMBER}']"),
            "verified",
            WAIT,
        )
        .await
        .expect("imported");
    assert!(row.contains("voice, sms") && row.contains("set"), "{row}");
    let (voice, status, sms) = env.rest.number_webhooks(NUMBER).expect("number");
    assert_eq!(
        voice.as_deref(),
        Some(format!("{PUBLIC}/twilio/voice").as_str())
    );
    assert_eq!(
        status.as_deref(),
        Some(format!("{PUBLIC}/twilio/voice/status").as_str())
    );
    assert_eq!(
        sms.as_deref(),
        Some(format!("{PUBLIC}/twilio/messaging").as_str())
    );
    let (done, todo) = steps(&b, &base).await;
    assert!(done.contains(&"phone_number".to_owned()), "{done:?}");
    // The fake public address does not answer this server; Twilio reaching it will prove it.
    assert_eq!(todo, ["public_url", "test_call"]);

    // ---- a first call: Twilio reached the public URL, and the checklist is gone ----
    let agent = db
        .store
        .list_agents(&org.id, None, None)
        .await
        .expect("agents")
        .data
        .remove(0);
    let o = Org {
        id: org.id.clone(),
        agent: agent.id,
        number: NUMBER.into(),
        token: TOKEN.into(),
    };
    env.incoming(&o, "CA00000000000000000000000000000777", "+15557770777")
        .await;
    b.goto(&format!("{base}/")).await.expect("overview");
    b.wait_for("#today", WAIT).await.expect("overview");
    assert!(
        b.find_all("#setup").await.expect("query").is_empty(),
        "the checklist disappears when done"
    );
    shot(&b, "52-setup-done").await;
    b.resize(390, 844).await.expect("phone");
    b.goto(&format!("{base}/phone-numbers/import"))
        .await
        .expect("import page");
    b.wait_for("#account-numbers", WAIT).await.expect("list");
    shot(&b, "53-import-phone").await;
    b.resize(1280, 900).await.expect("laptop");
    env.shutdown();
}
