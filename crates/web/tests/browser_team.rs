//! The team in a real browser (headless Chromium over WebDriver): an admin invites someone on
//! a server that cannot send e-mail and copies the link; the invited person opens it, chooses
//! a password, signs in, and changes the password on their account page; the team page fits
//! a phone's width.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/install-browser`). Without them the
//! test says it skipped, except under `CI=true`, where it fails.

mod dash_client;

use dash_client::*;
use serde_json::Value;
use std::time::Duration;
use switchboard_domain::values::Role;
use switchboard_store::testing::TestDb;
use switchboard_testkit::browser::Browser;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_user_joins_signs_in_and_changes_the_password() {
    let Some(b) = Browser::start().await.expect("browser") else {
        return;
    };
    let db = TestDb::sqlite().await.expect("db");
    let (base, _stop) = serve(&db).await;
    org_with_users(&db, "Alpha", &[("admin@alpha.test", Role::Admin)]).await;

    b.sign_in(&base, "admin@alpha.test", "a long enough password")
        .await
        .expect("admin signed in");
    b.click_css("nav.side a[href='/team']").await.expect("Team");
    b.wait_for("#invite-form", WAIT).await.expect("team page");
    b.fill("#invite-email", "newcomer@alpha.test")
        .await
        .expect("e-mail");
    b.execute(
        "document.querySelector('#invite-role').value = 'admin';",
        vec![],
    )
    .await
    .expect("role");
    b.click_css("#invite-form button").await.expect("invite");
    b.wait_for("#invite-link", WAIT).await.expect("link shown");
    let why = b.text_of("#invite-not-mailed").await.expect("why");
    assert!(why.contains("not e-mailed"), "{why}");
    let link = b.text_of("#invite-link").await.expect("link");
    assert!(link.starts_with(&format!("{base}/invite/")), "{link}");
    b.wait_text("#invites", "newcomer@alpha.test", WAIT)
        .await
        .expect("listed as an open invitation");

    // At phone width the page does not scroll sideways.
    b.resize(390, 844).await.expect("phone");
    let wide = b
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth + 1;",
            vec![],
        )
        .await
        .expect("width");
    assert_eq!(wide, Value::Bool(false), "the team page fits a phone");
    b.resize(1280, 900).await.expect("desktop");

    b.click_css("#sign-out").await.expect("sign out");
    b.wait_for("form.login", WAIT).await.expect("signed out");

    // The invited person opens the link and chooses a password.
    b.goto(&link).await.expect("open the link");
    let intro = b
        .wait_text("#invite-intro", "newcomer@alpha.test", WAIT)
        .await
        .expect("the invitation");
    assert!(
        intro.contains("Alpha") && intro.contains("admin"),
        "{intro}"
    );
    b.fill("#password", "my first password")
        .await
        .expect("password");
    b.fill("#confirm", "my first password")
        .await
        .expect("confirm");
    b.click_css("#password-form button").await.expect("save");
    b.wait_for("#login-notice", WAIT).await.expect("ready");
    b.sign_in(&base, "newcomer@alpha.test", "my first password")
        .await
        .expect("the newcomer signs in");

    // ... and changes it on the account page.
    b.click_css("#account-link").await.expect("account");
    b.wait_for("#password-form", WAIT)
        .await
        .expect("account page");
    b.fill("#current", "my first password")
        .await
        .expect("current");
    b.fill("#password", "my second password")
        .await
        .expect("new");
    b.fill("#confirm", "my second password")
        .await
        .expect("confirm");
    b.click_css("#password-form button").await.expect("change");
    b.wait_text(".flash", "Password changed", WAIT)
        .await
        .expect("changed");
    b.click_css("#sign-out").await.expect("sign out");
    b.wait_for("form.login", WAIT).await.expect("signed out");
    b.sign_in(&base, "newcomer@alpha.test", "my second password")
        .await
        .expect("signs in with the new password");
    b.quit().await;
}
