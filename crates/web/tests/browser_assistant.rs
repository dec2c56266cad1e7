//! The assistant page in a real browser (headless Chromium over WebDriver), with a scripted
//! chat model: an admin asks for a change, sees the tool run and the preview (the diff of
//! the instructions) while nothing has changed, then confirms it with the button, which
//! applies it once.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/install-browser`). Without them the
//! test says it skipped, except under `CI=true`, where it fails.

mod dash_client;

use dash_client::*;
use serde_json::json;
use std::time::Duration;
use switchboard_domain::values::Role;
use switchboard_domain::Secret;
use switchboard_store::testing::TestDb;
use switchboard_testkit::browser::Browser;
use switchboard_testkit::chat::{ChatStep, FakeChatModel};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previewed_change_is_applied_by_the_confirm_button() {
    let Some(b) = Browser::start().await.expect("browser") else {
        return;
    };
    let db = TestDb::sqlite().await.expect("db");
    let chat = FakeChatModel::start().await;
    let url = chat.url.clone();
    let (base, _stop) = serve_with(&db, |c| {
        c.llm.base_url = url;
        c.llm.api_key = Some(Secret::new("sk-test-chat-key"));
    })
    .await;
    let org = org_with_users(&db, "Alpha", &[("admin@alpha.test", Role::Admin)]).await;
    let agent = db
        .store
        .create_agent(
            &org,
            serde_json::from_value(
                json!({"name": "Receptionist", "instructions": "Answer the phone for Alpha."}),
            )
            .expect("agent"),
        )
        .await
        .expect("agent");
    chat.script([
        ChatStep::Tools(vec![(
            "update_agent".into(),
            json!({"agent_id": agent.id, "instructions": "Answer the phone for Alpha.\nClosed on Friday 25 December."}),
        )]),
        ChatStep::Text("I prepared the change; please confirm it.".into()),
    ]);

    b.sign_in(&base, "admin@alpha.test", "a long enough password")
        .await
        .expect("signed in");
    b.click_css("nav.side a[href='/assistant']")
        .await
        .expect("Assistant");
    b.wait_for("#assistant-form", WAIT).await.expect("page");
    b.fill(
        "#assistant-input",
        "Add Friday's holiday to the receptionist",
    )
    .await
    .expect("message");
    b.click_css("#assistant-send").await.expect("send");
    b.wait_text(".turn.tool[data-tool='update_agent']", "pending", WAIT)
        .await
        .expect("the tool shows as it ran");
    let card = b
        .wait_text(
            "#actions .action[data-status='pending']",
            "Receptionist",
            WAIT,
        )
        .await
        .expect("the preview");
    assert!(card.contains("Confirm"), "{card}");
    let diff = b.text_of("#actions .action pre.diff").await.expect("diff");
    assert!(diff.contains("+Closed on Friday 25 December."), "{diff}");
    b.wait_text("#assistant-log .turn.agent", "please confirm", WAIT)
        .await
        .expect("the reply");
    let unchanged = db.store.get_agent(&org, &agent.id).await.expect("agent");
    assert_eq!(unchanged.instructions, "Answer the phone for Alpha.");

    b.click_css("#actions .action button.confirm")
        .await
        .expect("confirm");
    b.wait_text("p.flash", "Done", WAIT).await.expect("applied");
    b.wait_for("#actions .action[data-status='done']", WAIT)
        .await
        .expect("shown done");
    let changed = db.store.get_agent(&org, &agent.id).await.expect("agent");
    assert_eq!(
        changed.instructions,
        "Answer the phone for Alpha.\nClosed on Friday 25 December."
    );
    // The session is kept: the conversation is there after the reload.
    let log = b.text_of("#assistant-log").await.expect("log");
    assert!(log.contains("Add Friday's holiday"), "{log}");
    b.quit().await;
}
