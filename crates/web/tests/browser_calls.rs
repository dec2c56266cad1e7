//! The live call page's staff controls in a real browser (headless Chromium over WebDriver),
//! on a call running through the fakes: "Say" makes the agent speak the sentence and puts it
//! on the timeline, "Hang up" ends the call. Screenshots go to
//! `target/tmp/dashboard-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/install-browser`). Without them the
//! test says it skipped, except under `CI=true`, where it fails.

mod voice_env;

use std::path::PathBuf;
use switchboard_domain::values::Role;
use switchboard_testkit::browser::Browser;
use voice_env::*;

const PW: &str = "admin password 123";

async fn shot(b: &Browser, name: &str) {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("dashboard-screenshots")
        .join(format!("{name}.png"));
    b.screenshot(&path).await.expect("screenshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_control_a_live_call_in_a_real_browser() {
    let Some(b) = Browser::start().await.expect("browser") else {
        return;
    };
    let db = TestDb::sqlite().await.expect("db");
    let behavior = Behavior {
        steps: vec![said(AGENT_SHORT, "Your order shipped today.")],
        ..Behavior::default()
    };
    let mut env = env(&db, behavior).await;
    let org = env.org("Acme", "+15550001001", &[], None).await;
    db.store
        .create_user(&org.id, "admin@acme.test", &Secret::new(PW), Role::Admin)
        .await
        .expect("user");
    let sid = "CA00000000000000000000000000000501";
    let media = env.answer(&org, sid, "+15557770501", 20.0).await;
    env.wait_model_event("session.update", 1).await;
    let call = eventually("the call to be live", WAIT, || async {
        let c = env.call_of(&org, sid).await;
        (c.status.as_str() == "in-progress").then_some(c)
    })
    .await;

    let base = env.base.clone();
    b.sign_in(&base, "admin@acme.test", PW)
        .await
        .expect("signed in");
    b.goto(&format!("{base}/calls/{}", call.id))
        .await
        .expect("call page");
    b.wait_for("#call-control", WAIT)
        .await
        .expect("the controls");
    b.fill("#say-text", "Your order shipped today.")
        .await
        .expect("sentence");
    b.click_css("#say").await.expect("say");
    b.wait_text(".flash", "Done", WAIT).await.expect("done");
    media
        .wait_for("the sentence", WAIT, |r| r.audio.len() >= AGENT_SHORT.len())
        .await;
    b.wait_text(
        "#transcript",
        "Staff asked the agent to say: Your order shipped today.",
        WAIT,
    )
    .await
    .expect("on the timeline");
    shot(&b, "39-live-call-control").await;
    // Hang up, confirming the dialog.
    b.execute("window.confirm = function () { return true; };", vec![])
        .await
        .expect("confirm");
    b.click_css("#hangup").await.expect("hang up");
    let ended = env.wait_ended(&org, sid).await;
    assert_eq!(ended.end_reason.as_deref(), Some("hung_up_by_api"));

    b.quit().await;
    drop(media);
    env.shutdown();
}
