//! `switchboard user reset-password`: for a forgotten password when the server cannot send
//! e-mail. The login gets a new generated password (printed once), every session of it ends,
//! and its organization's audit trail records the reset as done on the command line.

use switchboard_domain::auth::verify_password;
use switchboard_domain::values::Role;
use switchboard_domain::{Secret, Timestamp};
use switchboard_store::backend_test;

fn cli(db: &switchboard_store::testing::TestDb, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SWITCHBOARD_")) {
        cmd.env_remove(k);
    }
    cmd.args(args)
        .env("SWITCHBOARD_DATABASE_URL", &db.url)
        .env(
            "SWITCHBOARD_MASTER_KEY",
            switchboard_store::testing::TEST_MASTER_KEY,
        )
        .output()
        .expect("run switchboard")
}

backend_test!(reset_password_on_the_command_line, |db| {
    let store = &db.store;
    let org = store.create_org("Acme").await.expect("org");
    let old = Secret::new("the old password 123");
    let user = store
        .create_user(&org.id, "Dana@Acme.test", &old, Role::Admin)
        .await
        .expect("user");
    let now = Timestamp::now();
    let later = Timestamp::from_millis(now.millis() + 3_600_000);
    store
        .create_dashboard_session(&user.id, &org.id, "session-hash", "csrf", now, later)
        .await
        .expect("session");

    // The e-mail is matched whatever its case; the new password is printed once.
    let o = cli(db, &["user", "reset-password", "--email", "DANA@acme.test"]);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let printed = stdout
        .trim()
        .strip_prefix("dana@acme.test  password: ")
        .unwrap_or_else(|| panic!("unexpected output: {stdout}"))
        .to_owned();
    assert!(printed.len() >= 20, "{printed}");
    let (_, hash) = store
        .find_login("dana@acme.test")
        .await
        .expect("find")
        .expect("login");
    assert!(verify_password(&Secret::new(printed), &hash));
    assert!(
        !verify_password(&old, &hash),
        "the old password stops working"
    );
    assert!(
        store
            .dashboard_session("session-hash", now)
            .await
            .expect("session")
            .is_none(),
        "every session of the login ended"
    );
    let trail = store.audit_log(&org.id, 10).await.expect("audit");
    assert_eq!(trail.len(), 1, "{trail:?}");
    assert_eq!(trail[0].actor, "cli");
    assert_eq!(trail[0].action, "user.password_reset");
    assert_eq!(trail[0].target, "dana@acme.test");

    // An unknown e-mail is a clear error and changes nothing.
    let o = cli(
        db,
        &["user", "reset-password", "--email", "nobody@acme.test"],
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no login with the e-mail nobody@acme.test"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(store.audit_log(&org.id, 10).await.expect("audit").len(), 1);
});
