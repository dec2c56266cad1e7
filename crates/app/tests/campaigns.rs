//! A campaign shared by two server processes on one PostgreSQL database: both run the
//! campaign runner and the dialer, and together they still keep the campaign's cap, place
//! every recipient's call exactly once, and complete the campaign once.

mod process_env;

use process_env::*;
use serde_json::json;
use std::time::Duration;
use switchboard_store::testing::TestDb;
use switchboard_testkit::eventually;
use switchboard_testkit::twilio::{form_value, CallScript};

const RECIPIENTS: usize = 40;
const CAP: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_a_campaign_without_exceeding_its_cap_or_calling_twice() {
    let Some(db) = TestDb::new(switchboard_store::Backend::Postgres)
        .await
        .expect("postgres test database")
    else {
        return;
    };
    let (rig, a) = Rig::start(&db, &[]).await;
    let b = rig.another().await;
    // Twilio reaches the servers through the public URL; here it lands on A, while both
    // instances dial.
    rig.rest.connect_server(PUBLIC, &a.base, &a.ws, TOKEN);
    let number = |i: usize| format!("+1555020{i:04}");
    for i in 0..RECIPIENTS {
        let script = if i % 5 == 0 {
            CallScript::AnswerAndHangUp
        } else {
            CallScript::NoAnswer
        };
        rig.rest.script_number(&number(i), [script]);
    }
    let recipients: Vec<_> = (0..RECIPIENTS)
        .map(|i| json!({"number": number(i), "name": format!("P{i}")}))
        .collect();
    let created = rig
        .api(
            &b,
            reqwest::Method::POST,
            "/campaigns",
            json!({"name": "Shared", "timezone": switchboard_testkit::zone_where_it_is(12),
                "window": {"days": ["mon","tue","wed","thu","fri","sat","sun"], "start": "06:00", "end": "18:00"},
                "max_concurrent_calls": CAP, "recipients": recipients}),
        )
        .await;
    assert_eq!(created["import"]["accepted"], RECIPIENTS);
    let id = created["campaign"]["id"].as_str().expect("id").to_owned();
    rig.api(
        &a,
        reqwest::Method::POST,
        &format!("/campaigns/{id}/start"),
        json!({}),
    )
    .await;
    let done = eventually(
        "the shared campaign to complete",
        Duration::from_secs(120),
        || async {
            let c = rig
                .api(
                    &b,
                    reqwest::Method::GET,
                    &format!("/campaigns/{id}"),
                    json!(null),
                )
                .await;
            (c["status"] == "completed").then_some(c)
        },
    )
    .await;
    assert_eq!(done["counts"]["done"], RECIPIENTS);
    assert_eq!(
        done["counts"]["outcomes"],
        json!({"completed": RECIPIENTS / 5, "no_answer": RECIPIENTS - RECIPIENTS / 5})
    );
    assert!(
        rig.rest.max_active_calls() <= CAP,
        "{} calls at once",
        rig.rest.max_active_calls()
    );
    let mut dialled: Vec<String> = rig
        .rest
        .created_calls()
        .iter()
        .map(|(_, r)| form_value(r, "To").unwrap_or_default().to_owned())
        .collect();
    dialled.sort();
    let mut expected: Vec<String> = (0..RECIPIENTS).map(number).collect();
    expected.sort();
    assert_eq!(dialled, expected, "every recipient dialled exactly once");
    // One `campaign.completed`, though both instances ran passes.
    let events = rig
        .api(&a, reqwest::Method::GET, "/events?limit=1000", json!(null))
        .await;
    let completed = events["data"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "campaign.completed")
        .count();
    assert_eq!(completed, 1);
}
