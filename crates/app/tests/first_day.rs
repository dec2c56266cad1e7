//! Fixes from the first-day test that need the real process: a webhook refused for a bad
//! signature logs the exact URL that was checked (so a proxy or public-URL mismatch shows),
//! never the token.

mod process_env;

use process_env::*;
use switchboard_store::testing::TestDb;
use switchboard_testkit::eventually;
use switchboard_testkit::twilio::post_signed;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_signature_logs_the_url_it_checked() {
    let db = TestDb::sqlite().await.expect("db");
    let (rig, server) = Rig::start(&db, &[]).await;
    let wrong = "not-the-auth-token-xyz";
    let res = post_signed(
        &rig.http,
        &server.base,
        PUBLIC,
        "/twilio/voice",
        wrong,
        &[
            ("AccountSid", ACCOUNT),
            ("CallSid", "CA00000000000000000000000000000f01"),
            ("From", "+15557770001"),
            ("To", NUMBER),
        ],
    )
    .await;
    assert_eq!(res.status(), 403);
    let line = eventually("the warning", WAIT, || async {
        server
            .log_lines("WARN")
            .into_iter()
            .find(|l| l["fields"]["url"].is_string())
    })
    .await;
    assert_eq!(
        line["fields"]["url"],
        format!("{PUBLIC}/twilio/voice"),
        "{line}"
    );
    let all = serde_json::to_string(&server.log_lines("WARN")).expect("json");
    assert!(
        !all.contains(TOKEN) && !all.contains(wrong),
        "no token in the logs"
    );
}
