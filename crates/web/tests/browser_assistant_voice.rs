//! Talking to the assistant in a real browser (headless Chromium over WebDriver, its
//! microphone fed from a speech fixture): "Talk" opens the spoken session, the person's words
//! reach the fake Realtime model, which asks for a change; the page shows what was heard,
//! the tool and the preview card while nothing has changed; the Confirm button applies it
//! without ending the conversation, and the card says it is done.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/install-browser`). Without them the
//! test says it skipped, except under `CI=true`, where it fails.

mod voice_env;

use voice_env::tools::browser_hearing;
use voice_env::*;

const PW: &str = "admin password 123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoken_request_is_previewed_and_the_button_confirms_it() {
    let Some((b, fixture)) = browser_hearing(CALLER_BOOKING).await else {
        return;
    };
    let db = TestDb::sqlite().await.expect("db");
    let env = env(&db, Behavior::default()).await;
    let org = env.org("Acme", "+15550001001", &[], None).await;
    env.model.set_behavior(Behavior {
        steps: vec![
            said(AGENT_SHORT, "Hello, what can I do for you?"),
            Step::Call(
                "update_agent".into(),
                json!({"agent_id": org.agent.as_str(), "greeting": "Good day!"}),
            ),
            said(AGENT_SHORT, "Say yes, do it, or press Confirm."),
        ],
        transcripts: vec!["Change the greeting to Good day.".into()],
        ..Behavior::default()
    });
    let key = env.key(&org).await;
    env.sign_in_admin(&b, &org, "admin@acme.test", PW).await;
    b.goto(&format!("{}/assistant?session=talk-1", env.base))
        .await
        .expect("assistant page");
    b.click_css("#assistant-voice-start").await.expect("talk");
    b.wait_for("#assistant-voice-state[data-state='live']", WAIT)
        .await
        .expect("talking");

    // The words heard, the tool and the preview show as they happen; nothing changed yet.
    b.wait_text("#assistant-log", "Change the greeting to Good day.", WAIT)
        .await
        .expect("the person's words");
    b.wait_for("#actions .action[data-status='pending']", WAIT)
        .await
        .expect("the preview card");
    b.wait_for("#assistant-log li.tool[data-tool='update_agent']", WAIT)
        .await
        .expect("the tool");
    let greeting = || async { env.agent_of(&key, &org).await["greeting"].clone() };
    assert_ne!(
        greeting().await,
        json!("Good day!"),
        "nothing before confirming"
    );

    // The button applies it; the conversation goes on.
    b.click_css("#actions .action button.confirm")
        .await
        .expect("confirm");
    b.wait_for("#actions .action[data-status='done']", WAIT)
        .await
        .expect("the card says done");
    assert_eq!(greeting().await, json!("Good day!"));
    assert!(
        b.find_all("#assistant-voice-state[data-state='live']")
            .await
            .expect("state")
            .len()
            == 1,
        "still talking after the decision"
    );
    b.wait_text("#assistant-log", "Say yes, do it, or press Confirm.", WAIT)
        .await
        .expect("the assistant's words");
    b.click_css("#assistant-voice-hangup").await.expect("stop");
    b.wait_for("#assistant-voice-state[data-state='ended']", WAIT)
        .await
        .expect("stopped");
    b.quit().await;
    let _ = std::fs::remove_file(fixture);
}
