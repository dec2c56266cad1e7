//! `switchboard numbers verify` and `doctor`: the operator proves numbers with Twilio from the
//! command line, records a manual verification for a number no carrier API can prove (a
//! WhatsApp sandbox sender), and `doctor` names every number still pending and why.

mod process_env;

use process_env::*;
use serde_json::{json, Value};
use switchboard_store::testing::TestDb;

const SANDBOX: &str = "+14155238886";

fn out(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn states(listed: &Value) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = listed["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|n| {
            (
                n["number"].as_str().unwrap_or_default().to_owned(),
                n["channel"].as_str().unwrap_or_default().to_owned(),
                n["verification"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_proves_numbers_from_the_command_line() {
    let db = TestDb::sqlite().await.expect("db");
    let (rig, mut server) = Rig::start(&db, &[]).await;
    let org = server.printed("Organization").await;
    let org = org
        .rsplit_once('(')
        .and_then(|(_, id)| id.strip_suffix(')'))
        .expect("org id")
        .to_owned();
    // Twilio's sandbox sender is not in the organization's account.
    rig.api(
        &server,
        reqwest::Method::POST,
        "/phone-numbers",
        json!({"number": SANDBOX, "channel": "whatsapp"}),
    )
    .await;
    // The fake Twilio did not know the account when the numbers were registered.
    let listed = rig
        .api(&server, reqwest::Method::GET, "/phone-numbers", Value::Null)
        .await;
    assert!(
        states(&listed)
            .iter()
            .all(|s| s.2 == "pending_verification"),
        "{listed}"
    );
    let doctor = rig.cli(
        &["doctor"],
        &[("SWITCHBOARD_LLM_BASE_URL", "http://127.0.0.1:9/v1")],
    );
    let text = out(&doctor);
    assert!(
        text.contains(&format!("WARN  numbers: {NUMBER} (voice) of organization {org} is pending verification [credentials_rejected]")),
        "{text}"
    );
    assert!(
        text.contains("switchboard numbers verify --pending"),
        "{text}"
    );
    let doctor = rig.cli(
        &["doctor"],
        &[
            ("SWITCHBOARD_ENV", "production"),
            ("SWITCHBOARD_LLM_BASE_URL", "http://127.0.0.1:9/v1"),
        ],
    );
    assert!(!doctor.status.success());
    assert!(
        out(&doctor).contains("FAIL  numbers") && out(&doctor).contains("does not route"),
        "{}",
        out(&doctor)
    );

    rig.rest.add_account(ACCOUNT, TOKEN);
    rig.rest.add_incoming_number(ACCOUNT, NUMBER, true, true);
    let verify = rig.cli(&["numbers", "verify", "--pending"], &[]);
    let text = out(&verify);
    assert!(verify.status.success(), "{text}");
    assert!(
        text.contains(&format!("{org}  {NUMBER}  voice  verified")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{org}  {SANDBOX}  whatsapp  pending_verification")),
        "{text}"
    );
    assert!(
        text.contains("1 verified, 1 pending verification"),
        "{text}"
    );

    // A manual verification needs the number to exist in that organization.
    let wrong = rig.cli(
        &[
            "numbers",
            "verify",
            "--manual",
            "--org",
            &org,
            "--number",
            "+15550009999",
            "--channel",
            "whatsapp",
        ],
        &[],
    );
    assert!(!wrong.status.success());
    assert!(
        out(&wrong).contains("has no whatsapp number +15550009999"),
        "{}",
        out(&wrong)
    );
    let incomplete = rig.cli(&["numbers", "verify", "--manual", "--org", &org], &[]);
    assert!(!incomplete.status.success(), "{}", out(&incomplete));
    let manual = rig.cli(
        &[
            "numbers",
            "verify",
            "--manual",
            "--org",
            &org,
            "--number",
            SANDBOX,
            "--channel",
            "whatsapp",
        ],
        &[],
    );
    assert!(manual.status.success(), "{}", out(&manual));
    assert!(
        out(&manual).contains("verified manually by the operator"),
        "{}",
        out(&manual)
    );

    let listed = rig
        .api(&server, reqwest::Method::GET, "/phone-numbers", Value::Null)
        .await;
    assert!(
        states(&listed).iter().all(|s| s.2 == "verified"),
        "{listed}"
    );
    let doctor = rig.cli(
        &["doctor"],
        &[("SWITCHBOARD_LLM_BASE_URL", "http://127.0.0.1:9/v1")],
    );
    assert!(
        out(&doctor).contains("ok    numbers: 2 verified with Twilio, none pending"),
        "{}",
        out(&doctor)
    );
    server.signal("TERM");
    server.wait_exit(WAIT).await;
    db.drop_db().await;
}
