//! The analytics page in a real browser (headless Chromium over WebDriver) for a seeded month:
//! the charts draw (bars per disposition, lines for success rate and latency), the numbers
//! open under a chart, the filters narrow the range, and the page fits a phone's width.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/install-browser`). Without them the
//! test says it skipped, except under `CI=true`, where it fails.

mod dash_client;

use dash_client::*;
use serde_json::{json, Value};
use std::time::Duration;
use switchboard_domain::values::Role;
use switchboard_domain::Timestamp;
use switchboard_store::seed::{seed_calls, seed_texts, SeedCall};
use switchboard_store::testing::TestDb;
use switchboard_testkit::browser::Browser;

const WAIT: Duration = Duration::from_secs(20);

async fn count(b: &Browser, css: &str) -> u64 {
    b.execute(
        &format!("return document.querySelectorAll({css:?}).length;"),
        vec![],
    )
    .await
    .expect("script")
    .as_u64()
    .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analytics_page_charts_a_seeded_month() {
    let Some(b) = Browser::start().await.expect("browser") else {
        return;
    };
    let db = TestDb::sqlite().await.expect("db");
    let (base, _stop) = serve(&db).await;
    let org = org_with_users(&db, "Alpha", &[("admin@alpha.test", Role::Admin)]).await;
    let agent = db
        .store
        .create_agent(
            &org,
            serde_json::from_value(json!({"name": "Reception", "instructions": "x"}))
                .expect("agent"),
        )
        .await
        .expect("agent")
        .id;
    // November 2026: on day d, d calls, a third of them unanswered, every other one judged.
    let start = Timestamp::parse_rfc3339("2026-11-01T15:00:00Z").expect("t");
    let mut calls = Vec::new();
    for d in 0..30i64 {
        for k in 0..=d {
            let disposition = if k % 3 == 2 { "no-answer" } else { "completed" };
            calls.push(SeedCall {
                started_at: Timestamp::from_millis(start.millis() + d * 86_400_000 + k * 60_000),
                direction: "inbound",
                our_number: "+15550001000".into(),
                contact: format!("+1555777{k:04}"),
                agent_id: Some(agent.clone()),
                disposition: Some(disposition),
                duration_seconds: Some(60 + k),
                analysis: (disposition == "completed")
                    .then(|| json!({"summary": "ok", "outcome": {"success": k % 2 == 0}})),
                turn_latencies_ms: vec![150 + d, 300 + 2 * d],
            });
        }
        seed_texts(
            &db.store,
            &org,
            "+15550001000",
            Some(&agent),
            Timestamp::from_millis(start.millis() + d * 86_400_000),
            2,
            2,
        )
        .await
        .expect("texts");
    }
    seed_calls(&db.store, &org, &calls).await.expect("seed");

    b.sign_in(&base, "admin@alpha.test", "a long enough password")
        .await
        .expect("signed in");
    b.goto(&format!("{base}/analytics?from=2026-11-01&to=2026-11-30"))
        .await
        .expect("analytics");
    b.wait_for("#chart-calls svg rect", WAIT)
        .await
        .expect("bars drawn");
    // 30 days of completed calls and 28 with an unanswered one (from day 3 on).
    assert_eq!(count(&b, "#chart-calls svg rect").await, 30 + 28);
    assert_eq!(
        count(&b, "#chart-latency svg polyline").await,
        2,
        "p50 and p95"
    );
    assert_eq!(count(&b, "#chart-success svg circle").await, 30);
    assert_eq!(count(&b, "#chart-messages svg rect").await, 60);
    let total = b.text_of("#total-calls .n").await.expect("total");
    assert_eq!(total, (1..=30).sum::<i64>().to_string());
    // The numbers under a chart.
    b.click_css("#chart-calls details summary")
        .await
        .expect("open the numbers");
    b.wait_text("#chart-calls table", "2026-11-30", WAIT)
        .await
        .expect("table");
    // A narrower range.
    b.execute(
        "document.querySelector('#from').value = '2026-11-28'; \
         document.querySelector('#to').value = '2026-11-30';",
        vec![],
    )
    .await
    .expect("dates");
    b.click_css("#analytics-form button").await.expect("show");
    b.wait_text("#range", "2026-11-28", WAIT)
        .await
        .expect("narrowed");
    assert_eq!(
        b.text_of("#total-calls .n").await.expect("total"),
        (28 + 29 + 30).to_string()
    );
    // A phone.
    b.resize(390, 844).await.expect("phone");
    let fits = b
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
            vec![],
        )
        .await
        .expect("width");
    assert_eq!(fits, Value::Bool(true), "the page fits a phone");
    // Times show in the organization's time zone: the newest call started at 15:29 UTC on
    // 30 November, 10:29 in New York.
    db.store
        .update_settings(
            &org,
            switchboard_domain::settings::SettingsUpdate {
                timezone: Some("America/New_York".into()),
                ..Default::default()
            },
        )
        .await
        .expect("time zone");
    b.goto(&format!("{base}/calls")).await.expect("calls");
    b.resize(1280, 900).await.expect("desktop");
    b.wait_for("main table time", WAIT).await.expect("a call");
    let shown = b
        .execute(
            "return document.querySelector('main table time').textContent;",
            vec![],
        )
        .await
        .expect("time");
    assert_eq!(shown, Value::String("2026-11-30 10:29:00".into()));
    b.quit().await;
}
