//! Analytics and exports on both backends: a range's figures per day in the organization's
//! time zone (a call late in the evening counts on its local day, not the UTC one), by
//! disposition, minutes, success rate (calls where nobody spoke left out), per-turn latency
//! percentiles, text messages (not voice transcripts), per agent and per number, with filters;
//! bad ranges refused by field; the calls list's day filter in the same time zone; CSV
//! exports streamed page by page, oldest first, every row once across pages of equal times,
//! with quoting and spreadsheet formulas defused; and the dashboard page's charts.

mod dash_client;

use dash_client::*;
use serde_json::{json, Value};
use switchboard_domain::ids::AgentId;
use switchboard_domain::values::Role;
use switchboard_domain::Timestamp;
use switchboard_store::backend_test;
use switchboard_store::seed::{seed_calls, seed_texts, SeedCall};

const MAIN: &str = "+15550001000";
const OTHER: &str = "+15550002000";

fn at(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).expect("time")
}

fn call(started: &str, agent: &AgentId, disposition: Option<&'static str>) -> SeedCall {
    SeedCall {
        started_at: at(started),
        direction: "inbound",
        our_number: MAIN.into(),
        contact: "+15557770001".into(),
        agent_id: Some(agent.clone()),
        disposition,
        duration_seconds: disposition.map(|_| 90),
        analysis: None,
        turn_latencies_ms: vec![],
    }
}

async fn api(base: &str, key: &str, path: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .expect("get");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

backend_test!(
    figures_per_day_agent_and_number_in_the_organizations_days,
    |db| {
        let (base, _stop) = serve(db).await;
        let org = org_with_users(db, "Alpha", &[("admin@alpha.test", Role::Admin)]).await;
        let (_, key) = db.store.create_api_key(&org, "test").await.expect("key");
        let key = key.expose().to_owned();
        let put = reqwest::Client::new()
            .put(format!("{base}/api/v1/settings"))
            .bearer_auth(&key)
            .json(&json!({"timezone": "America/New_York"}))
            .send()
            .await
            .expect("settings");
        assert_eq!(put.status().as_u16(), 200);
        let agent = |name: &str| {
            serde_json::from_value::<switchboard_domain::agent::NewAgent>(
                json!({"name": name, "instructions": "x"}),
            )
            .expect("agent")
        };
        let reception = db
            .store
            .create_agent(&org, agent("Reception"))
            .await
            .expect("a")
            .id;
        let sales = db
            .store
            .create_agent(&org, agent("Sales"))
            .await
            .expect("a")
            .id;

        // 2 November (New York, UTC-5 since 1 November):
        let judged = |ok: bool| json!({"summary": "x", "outcome": {"success": ok}});
        let mut calls = vec![
            SeedCall {
                analysis: Some(judged(true)),
                turn_latencies_ms: vec![100, 200, 300],
                ..call("2026-11-02T14:00:00Z", &reception, Some("completed"))
            },
            SeedCall {
                analysis: Some(judged(false)),
                turn_latencies_ms: vec![400],
                ..call("2026-11-02T15:00:00Z", &reception, Some("completed"))
            },
            call("2026-11-02T16:00:00Z", &reception, Some("no-answer")),
            // Nobody spoke: not judged either way.
            SeedCall {
                analysis: Some(json!({"source": "no_transcript", "outcome": {"success": false}})),
                ..call("2026-11-02T17:00:00Z", &reception, Some("completed"))
            },
            // 22:00 on 2 November in New York, 3 November in UTC.
            SeedCall {
                our_number: OTHER.into(),
                direction: "outbound",
                ..call("2026-11-03T03:00:00Z", &sales, Some("busy"))
            },
        ];
        // 4 November: one call still under way.
        calls.push(call("2026-11-04T15:00:00Z", &reception, None));
        // Outside the range.
        calls.push(call("2026-10-20T15:00:00Z", &reception, Some("completed")));
        seed_calls(&db.store, &org, &calls).await.expect("seed");
        seed_texts(
            &db.store,
            &org,
            MAIN,
            Some(&reception),
            at("2026-11-02T18:00:00Z"),
            2,
            1,
        )
        .await
        .expect("texts");

        let (status, a) = api(
            &base,
            &key,
            "/api/v1/analytics?from=2026-11-01&to=2026-11-07",
        )
        .await;
        assert_eq!(status, 200, "{a}");
        assert_eq!(a["timezone"], "America/New_York");
        assert_eq!(a["days"].as_array().expect("days").len(), 7);
        let nov2 = &a["days"][1];
        assert_eq!(nov2["day"], "2026-11-02");
        assert_eq!(nov2["calls"], 5, "{nov2}");
        assert_eq!(
            nov2["by_disposition"],
            json!({"busy": 1, "completed": 3, "no-answer": 1})
        );
        assert_eq!(nov2["minutes"], 7.5);
        assert_eq!(nov2["analysed"], 2);
        assert_eq!(nov2["success_rate"], 50.0);
        assert_eq!(
            nov2["latency_p50_ms"], 300,
            "round((4 - 1) / 2) = 2: 100 200 [300] 400"
        );
        assert_eq!(nov2["latency_p95_ms"], 400);
        assert_eq!(
            (nov2["messages_in"].clone(), nov2["messages_out"].clone()),
            (json!(2), json!(1))
        );
        assert_eq!(
            a["days"][2]["calls"], 0,
            "nothing on 3 November in New York"
        );
        assert_eq!(a["days"][3]["by_disposition"], json!({"in-progress": 1}));
        assert_eq!(a["total"]["calls"], 6);
        assert_eq!(a["agents"][sales.as_str()]["calls"], 1);
        assert_eq!(a["agents"][reception.as_str()]["calls"], 5);
        assert_eq!(a["agents"][reception.as_str()]["messages_in"], 2);
        assert_eq!(
            a["numbers"][OTHER]["calls"], 1,
            "an outbound call counts on the number it came from"
        );
        assert_eq!(a["numbers"][MAIN]["calls"], 5);

        // Filters.
        let (_, a) = api(
            &base,
            &key,
            &format!("/api/v1/analytics?from=2026-11-01&to=2026-11-07&agent_id={sales}"),
        )
        .await;
        assert_eq!(a["total"]["calls"], 1);
        assert_eq!(a["total"]["messages_in"], 0);
        let (_, a) = api(
            &base,
            &key,
            "/api/v1/analytics?from=2026-11-01&to=2026-11-07&number=%2B15550001000",
        )
        .await;
        assert_eq!(a["total"]["calls"], 5);
        assert_eq!(a["total"]["messages_in"], 2);

        // Bad ranges, by field.
        for (q, field) in [
            ("from=yesterday", "from"),
            ("from=2026-11-05&to=2026-11-01", "to"),
            ("from=2024-01-01&to=2026-01-01", "from"),
            ("agent_id=nope", "agent_id"),
            ("number=5550001000", "number"),
        ] {
            let (status, e) = api(&base, &key, &format!("/api/v1/analytics?{q}")).await;
            assert_eq!(status, 422, "{q}: {e}");
            assert_eq!(e["error"]["field"], field, "{q}: {e}");
        }

        // The dashboard: the page's charts and tables, errors beside the field, and the calls
        // list's day in the organization's time zone.
        let mut admin = Client::new(&base);
        assert_eq!(
            admin
                .sign_in("admin@alpha.test", "a long enough password")
                .await,
            303
        );
        let (status, html) = admin.get("/analytics?from=2026-11-01&to=2026-11-07").await;
        assert_eq!(status, 200);
        for id in [
            "chart-calls",
            "chart-minutes",
            "chart-success",
            "chart-latency",
            "chart-messages",
            "by-agent",
            "by-number",
            "export-calls",
        ] {
            assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
        }
        assert!(
            html.contains("2026-11-02 · completed: 3"),
            "a tooltip per bar"
        );
        assert!(html.contains("Reception") && html.contains("Sales"));
        let (status, html) = admin.get("/analytics?from=someday&to=2026-11-07").await;
        assert_eq!(status, 422);
        assert!(html.contains("id=\"error-from\""));
        let (_, list) = admin.get("/calls?date=2026-11-02").await;
        assert!(
            list.contains(OTHER),
            "the 22:00 call is on the 2nd in New York"
        );
        let (_, list) = admin.get("/calls?date=2026-11-03").await;
        assert!(!list.contains(OTHER), "and not on the 3rd");
    }
);

backend_test!(exports_stream_every_row_once_oldest_first, |db| {
    let (base, _stop) = serve(db).await;
    let org = org_with_users(db, "Alpha", &[("admin@alpha.test", Role::Admin)]).await;
    let (_, key) = db.store.create_api_key(&org, "test").await.expect("key");
    let key = key.expose().to_owned();
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
    // 2,500 calls in groups of ten with the same start time, so page boundaries fall inside
    // groups; the first one's summary needs quoting and one is a formula.
    let mut calls = Vec::new();
    for i in 0..2500i64 {
        let t = Timestamp::from_millis(at("2026-11-02T12:00:00Z").millis() + (i / 10) * 1000);
        let mut c = call(&t.to_rfc3339(), &agent, Some("completed"));
        c.turn_latencies_ms = vec![120, 180, 240];
        if i == 0 {
            c.analysis = Some(
                json!({"summary": "Asked about \"prices\", then booked", "outcome": {"success": true}}),
            );
        }
        if i == 1 {
            c.analysis =
                Some(json!({"summary": "=HYPERLINK(\"http://x\")", "outcome": {"success": false}}));
        }
        calls.push(c);
    }
    seed_calls(&db.store, &org, &calls).await.expect("seed");
    let res = reqwest::Client::new()
        .get(format!(
            "{base}/api/v1/exports/calls.csv?from=2026-11-01&to=2026-11-30"
        ))
        .bearer_auth(&key)
        .send()
        .await
        .expect("export");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(res.headers()["content-disposition"]
        .to_str()
        .expect("ascii")
        .contains("calls-2026-11-01-to-2026-11-30.csv"));
    assert!(
        res.headers().get("content-length").is_none(),
        "streamed, not buffered"
    );
    let mut chunks = 0;
    let mut body = Vec::new();
    let mut stream = res.bytes_stream();
    while let Some(c) = futures_util::StreamExt::next(&mut stream).await {
        body.extend_from_slice(&c.expect("chunk"));
        chunks += 1;
    }
    assert!(chunks >= 3, "one page at a time ({chunks} chunks)");
    let text = String::from_utf8(body).expect("utf-8");
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(
        lines[0].starts_with("id,started_at,started_local,"),
        "{}",
        lines[0]
    );
    assert_eq!(lines.len(), 2501, "a header and every call");
    let mut ids = std::collections::HashSet::new();
    let mut last = String::new();
    for l in &lines[1..] {
        let mut f = l.split(',');
        assert!(
            ids.insert(f.next().expect("id").to_owned()),
            "each row once"
        );
        let started = f.next().expect("time").to_owned();
        assert!(started >= last, "oldest first");
        last = started;
    }
    assert!(
        text.contains(",\"Asked about \"\"prices\"\", then booked\","),
        "quoted"
    );
    assert!(
        text.contains(",\"'=HYPERLINK(\"\"http://x\"\")\","),
        "defused"
    );
    assert!(
        text.contains(",+15557770001,+15550001000,"),
        "numbers kept as they are"
    );
    assert!(text.contains(",180,240,"), "latency p50 and p95");

    // Conversations and appointments, and a bad range.
    let get = |path: String| {
        let key = key.clone();
        async move {
            reqwest::Client::new()
                .get(path)
                .bearer_auth(key)
                .send()
                .await
                .expect("get")
        }
    };
    let res = get(format!(
        "{base}/api/v1/exports/conversations.csv?from=2026-11-01&to=2026-11-30"
    ))
    .await;
    let text = res.text().await.expect("csv");
    assert_eq!(text.split("\r\n").filter(|l| !l.is_empty()).count(), 2501);
    assert!(text.starts_with("id,started_at,started_local,last_message_at,"));
    let res = get(format!("{base}/api/v1/exports/appointments.csv")).await;
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.text().await.expect("csv").starts_with("id,starts_at,"));
    let res = get(format!("{base}/api/v1/exports/calls.csv?to=2026-13-01")).await;
    assert_eq!(res.status().as_u16(), 422);

    // The dashboard's download for a signed-in user.
    let mut admin = Client::new(&base);
    assert_eq!(
        admin
            .sign_in("admin@alpha.test", "a long enough password")
            .await,
        303
    );
    let (status, csv) = admin
        .get("/analytics/export/calls.csv?from=2026-11-02&to=2026-11-02")
        .await;
    assert_eq!(status, 200);
    assert_eq!(csv.split("\r\n").filter(|l| !l.is_empty()).count(), 2501);
    assert_eq!(admin.get("/analytics/export/secrets.csv").await.0, 404);
});
