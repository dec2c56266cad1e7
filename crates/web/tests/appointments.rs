//! The appointments API and the calendar feed, on both backends: staff book with the booking
//! tools' rules (business hours, closures, the future, no overlap), list by day in the
//! organization's time zone, move, edit and cancel; every change is an `appointment.*` event;
//! the secret iCalendar feed shows a move with a higher SEQUENCE and a cancellation as
//! CANCELLED, parses with an independent iCalendar parser, and stops working when revoked or
//! replaced. Nothing of one organization is reachable from another.

use icalendar::{Calendar, CalendarComponent, Component};
use jiff::civil::{Date, Weekday};
use reqwest::Method;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use switchboard_store::backend_test;
use switchboard_store::testing::TestDb;
use switchboard_store::BootstrapInput;
use switchboard_web::{Application, WebConfig};

struct App {
    base: String,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl App {
    async fn start(db: &TestDb) -> App {
        let app = Application::build(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            db.store.clone(),
            &WebConfig {
                public_url: Some("https://switchboard.example.test".into()),
                ..WebConfig::default()
            },
        )
        .await
        .expect("bind");
        let addr = app.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(
            async move {
                let _ = rx.await;
            },
            Duration::from_secs(5),
        ));
        App {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            stop: Some(tx),
        }
    }

    async fn call(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn feed(&self, url: &str) -> (u16, String, String) {
        let path = url
            .strip_prefix("https://switchboard.example.test")
            .expect("the public URL");
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("feed");
        let status = res.status().as_u16();
        let ct = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, ct, res.text().await.expect("text"))
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A Monday at least a week ahead (Paris dates).
fn monday_ahead() -> Date {
    let mut d = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::get("Europe/Paris").expect("tz"))
        .date()
        .checked_add(jiff::Span::new().days(7))
        .expect("date");
    while d.weekday() != Weekday::Monday {
        d = d.tomorrow().expect("date");
    }
    d
}

fn day(d: Date, n: i64) -> Date {
    d.checked_add(jiff::Span::new().days(n)).expect("date")
}

fn err(body: &Value) -> (&str, &str) {
    (
        body["error"]["code"].as_str().unwrap_or(""),
        body["error"]["field"].as_str().unwrap_or(""),
    )
}

backend_test!(staff_book_move_and_cancel_with_the_tools_rules, |db| {
    let boot = db
        .store
        .bootstrap(&BootstrapInput {
            org_name: "Acme Dental".into(),
            admin_email: "admin@example.com".into(),
        })
        .await
        .expect("bootstrap")
        .expect("fresh");
    let key = boot.org_key.expose().to_owned();
    let app = App::start(db).await;
    let monday = monday_ahead();
    let wednesday = day(monday, 2);
    let closed = day(monday, 3);
    let (s, agent) = app
        .call(&key, Method::POST, "/agents", Some(json!({
            "name": "Reception", "instructions": "Book visits.",
            "business_hours": {"timezone": "Europe/Paris", "days": ["mon", "tue", "wed", "thu", "fri"],
                "open": "09:00", "close": "17:00", "slot_minutes": 30,
                "closures": [{"from": closed.to_string(), "reason": "Staff training"}]}
        })))
        .await;
    assert_eq!(s, 201, "{agent}");
    assert_eq!(
        agent["business_hours"]["closures"][0]["reason"],
        "Staff training"
    );
    let agent_id = agent["id"].as_str().expect("id").to_owned();
    let (s, _) = app
        .call(
            &key,
            Method::PUT,
            "/settings",
            Some(json!({"timezone": "Europe/Paris"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, bad) = app
        .call(
            &key,
            Method::PUT,
            "/settings",
            Some(json!({"timezone": "Mars/Olympus"})),
        )
        .await;
    assert_eq!(
        (s, err(&bad)),
        (422, ("invalid_field", "timezone")),
        "{bad}"
    );

    // A booking by number creates the contact; the length defaults to the slot.
    let (s, a) = app
        .call(
            &key,
            Method::POST,
            "/appointments",
            Some(json!({
                "agent_id": agent_id, "contact_number": "+15557770001",
                "start": format!("{monday}T10:00"), "notes": "Cleaning"
            })),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(a["status"], "booked");
    assert_eq!(a["title"], "Appointment with +15557770001");
    assert_eq!(a["revision"], 0);
    let first = a["id"].as_str().expect("id").to_owned();
    let starts = a["starts_at"].as_str().expect("start");
    let paris = jiff::tz::TimeZone::get("Europe/Paris").expect("tz");
    let want = monday
        .at(10, 0, 0, 0)
        .to_zoned(paris)
        .expect("zoned")
        .timestamp();
    assert_eq!(
        starts.parse::<jiff::Timestamp>().expect("rfc 3339"),
        want,
        "a local time in the agent's zone"
    );
    let contact_id = a["contact_id"].as_str().expect("contact").to_owned();

    // Every refusal names the field, with the same codes as the tools.
    for (body, status, code, field) in [
        (
            json!({"agent_id": agent_id, "start": format!("{monday}T10:15")}),
            409,
            "slot_taken",
            "",
        ),
        (
            json!({"agent_id": agent_id, "start": format!("{}T10:00", day(monday, 5))}),
            422,
            "outside_hours",
            "start",
        ),
        (
            json!({"agent_id": agent_id, "start": format!("{monday}T16:45")}),
            422,
            "outside_hours",
            "start",
        ),
        (
            json!({"agent_id": agent_id, "start": format!("{closed}T10:00")}),
            422,
            "closed_day",
            "start",
        ),
        (
            json!({"agent_id": agent_id, "start": "2020-01-06T10:00"}),
            422,
            "past",
            "start",
        ),
        (
            json!({"agent_id": agent_id, "start": "next monday"}),
            422,
            "invalid_field",
            "start",
        ),
        (
            json!({"agent_id": agent_id, "start": format!("{monday}T11:00"), "duration_minutes": 2}),
            422,
            "invalid_field",
            "duration_minutes",
        ),
        (
            json!({"agent_id": agent_id, "start": format!("{monday}T11:00"), "contact_number": "555"}),
            422,
            "invalid_field",
            "contact_number",
        ),
        (
            json!({"agent_id": agent_id, "start": format!("{monday}T11:00"), "contact_number": "+15557770001", "contact_id": contact_id}),
            422,
            "invalid_field",
            "contact_number",
        ),
        (
            json!({"agent_id": "agt_doesnotexist", "start": format!("{monday}T11:00")}),
            422,
            "invalid_field",
            "agent_id",
        ),
        (
            json!({"start": format!("{monday}T11:00")}),
            422,
            "invalid_field",
            "agent_id",
        ),
    ] {
        let (s, b) = app
            .call(&key, Method::POST, "/appointments", Some(body.clone()))
            .await;
        assert_eq!(s, status, "{body} -> {b}");
        let (c, f) = err(&b);
        assert_eq!(c, code, "{body} -> {b}");
        if !field.is_empty() {
            assert_eq!(f, field, "{body} -> {b}");
        }
    }

    // A longer staff booking on Wednesday, for the known contact.
    let (s, b) = app
        .call(&key, Method::POST, "/appointments", Some(json!({
            "agent_id": agent_id, "contact_id": contact_id, "start": format!("{wednesday}T14:00"),
            "duration_minutes": 90, "title": "Crown fitting"
        })))
        .await;
    assert_eq!(s, 201, "{b}");
    let second = b["id"].as_str().expect("id").to_owned();

    // Day filters read the organization's time zone; `to` includes its day.
    let (s, page) = app
        .call(
            &key,
            Method::GET,
            &format!("/appointments?from={monday}&to={monday}"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{page}");
    let ids: Vec<&str> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|a| a["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [first.as_str()]);
    let (_, page) = app
        .call(
            &key,
            Method::GET,
            &format!("/appointments?from={monday}&to={wednesday}&limit=1"),
            None,
        )
        .await;
    assert_eq!(page["data"][0]["id"], first.as_str());
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let (_, page) = app
        .call(
            &key,
            Method::GET,
            &format!("/appointments?from={monday}&to={wednesday}&limit=1&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(page["data"][0]["id"], second.as_str());
    assert!(page["next_cursor"].is_null());
    let (_, page) = app
        .call(
            &key,
            Method::GET,
            &format!("/appointments?contact_id={contact_id}&agent_id={agent_id}&status=booked"),
            None,
        )
        .await;
    assert_eq!(page["data"].as_array().map(Vec::len), Some(2));
    for q in [
        "from=yesterday",
        "to=2026-02-30",
        "status=cancelled",
        "contact_id=agt_x",
        "limit=0",
        &format!("from={wednesday}&to={monday}"),
    ] {
        let (s, b) = app
            .call(&key, Method::GET, &format!("/appointments?{q}"), None)
            .await;
        assert_eq!((s, err(&b).0), (422, "invalid_query"), "{q}: {b}");
    }

    // Moving onto the other booking is refused; within hours elsewhere it moves.
    let (s, b) = app
        .call(
            &key,
            Method::PATCH,
            &format!("/appointments/{first}"),
            Some(json!({"start": format!("{wednesday}T15:00")})),
        )
        .await;
    assert_eq!((s, err(&b).0), (409, "slot_taken"), "{b}");
    let (s, b) = app
        .call(
            &key,
            Method::PATCH,
            &format!("/appointments/{first}"),
            Some(json!({"start": format!("{wednesday}T16:45")})),
        )
        .await;
    assert_eq!((s, err(&b)), (422, ("outside_hours", "start")), "{b}");
    let (s, moved) = app
        .call(
            &key,
            Method::PATCH,
            &format!("/appointments/{first}"),
            Some(json!({"start": format!("{monday}T11:30"), "notes": null, "title": "Cleaning"})),
        )
        .await;
    assert_eq!(s, 200, "{moved}");
    assert_eq!(moved["revision"], 1);
    assert!(moved["notes"].is_null());
    assert_eq!(moved["title"], "Cleaning");
    // A title-only edit of the moved appointment keeps its time.
    let (s, edited) = app
        .call(
            &key,
            Method::PATCH,
            &format!("/appointments/{first}"),
            Some(json!({"title": "Cleaning (30 min)"})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(edited["starts_at"], moved["starts_at"]);
    assert_eq!(edited["revision"], 2);

    // The calendar feed: made once, shows the move, parses, and the canceled one after.
    let (s, feed) = app.call(&key, Method::GET, "/calendar-feed", None).await;
    assert_eq!((s, &feed["enabled"]), (200, &json!(false)));
    let (s, feed) = app.call(&key, Method::POST, "/calendar-feed", None).await;
    assert_eq!(s, 201, "{feed}");
    let url = feed["url"].as_str().expect("url").to_owned();
    assert!(
        url.starts_with("https://switchboard.example.test/calendar/cal_") && url.ends_with(".ics"),
        "{url}"
    );
    let (s, later) = app.call(&key, Method::GET, "/calendar-feed", None).await;
    assert_eq!(
        (s, &later["enabled"], later.get("url")),
        (200, &json!(true), None),
        "the URL is shown once"
    );

    let (s, canceled) = app
        .call(
            &key,
            Method::DELETE,
            &format!("/appointments/{second}"),
            None,
        )
        .await;
    assert_eq!(
        (s, &canceled["status"]),
        (200, &json!("canceled")),
        "{canceled}"
    );
    let (s, b) = app
        .call(
            &key,
            Method::DELETE,
            &format!("/appointments/{second}"),
            None,
        )
        .await;
    assert_eq!((s, err(&b).0), (409, "conflict"), "{b}");
    let (s, b) = app
        .call(
            &key,
            Method::PATCH,
            &format!("/appointments/{second}"),
            Some(json!({"title": "x"})),
        )
        .await;
    assert_eq!((s, err(&b).0), (409, "conflict"), "{b}");
    // Its time is free again.
    let (s, b) = app
        .call(
            &key,
            Method::POST,
            "/appointments",
            Some(json!({"agent_id": agent_id, "start": format!("{wednesday}T14:30")})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let third = b["id"].as_str().expect("id").to_owned();

    let (s, ct, text) = app.feed(&url).await;
    assert_eq!(s, 200);
    assert_eq!(ct, "text/calendar; charset=utf-8");
    assert!(text.lines().all(|l| l.len() <= 75), "folded lines");
    assert!(text.contains("\r\n"), "CRLF line ends");
    let cal: Calendar = text.parse().expect("an iCalendar parser reads the feed");
    let events: Vec<_> = cal
        .components
        .iter()
        .filter_map(|c| match c {
            CalendarComponent::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    let find = |id: &str| {
        events
            .iter()
            .find(|e| e.get_uid() == Some(&format!("{id}@switchboard")))
            .unwrap_or_else(|| panic!("{id} in the feed: {text}"))
            .clone()
    };
    let e1 = find(&first);
    assert_eq!(e1.property_value("SEQUENCE"), Some("2"));
    assert_eq!(e1.property_value("STATUS"), Some("CONFIRMED"));
    assert_eq!(e1.get_summary(), Some("Cleaning (30 min)"));
    let dtstart = e1.property_value("DTSTART").expect("start");
    let moved_utc = moved["starts_at"]
        .as_str()
        .expect("start")
        .replace(['-', ':'], "");
    assert_eq!(
        dtstart,
        format!("{}Z", &moved_utc[..15]),
        "the feed has the moved time"
    );
    assert!(e1
        .get_description()
        .expect("description")
        .contains("+15557770001"));
    let e2 = find(&second);
    assert_eq!(e2.property_value("STATUS"), Some("CANCELLED"));
    assert_eq!(e2.property_value("SEQUENCE"), Some("1"));
    find(&third);

    // Another organization sees none of it.
    let (s, other) = app
        .call(
            boot.operator_key.expose(),
            Method::POST,
            "/orgs",
            Some(json!({"name": "Beta"})),
        )
        .await;
    assert_eq!(s, 201, "{other}");
    let beta_id = other["id"].as_str().expect("id").to_owned();
    let (s, k) = app
        .call(
            boot.operator_key.expose(),
            Method::POST,
            &format!("/orgs/{beta_id}/api-keys"),
            Some(json!({"name": "beta"})),
        )
        .await;
    assert_eq!(s, 201, "{k}");
    let beta = k["key"].as_str().expect("key").to_owned();
    for (m, p, body) in [
        (Method::GET, format!("/appointments/{first}"), None),
        (
            Method::PATCH,
            format!("/appointments/{first}"),
            Some(json!({"title": "mine"})),
        ),
        (Method::DELETE, format!("/appointments/{first}"), None),
    ] {
        let (s, b) = app.call(&beta, m, &p, body).await;
        assert_eq!(s, 404, "{p}: {b}");
    }
    let (s, b) = app
        .call(
            &beta,
            Method::POST,
            "/appointments",
            Some(json!({"agent_id": agent_id, "start": format!("{monday}T15:00")})),
        )
        .await;
    assert_eq!(
        (s, err(&b)),
        (422, ("invalid_field", "agent_id")),
        "another organization's agent: {b}"
    );
    let (_, page) = app.call(&beta, Method::GET, "/appointments", None).await;
    assert_eq!(page["data"], json!([]));

    // Every change is an event, with who made it.
    let (_, events) = app
        .call(&key, Method::GET, "/events?limit=1000", None)
        .await;
    let kinds: Vec<(String, String)> = events["data"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| {
            e["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("appointment."))
        })
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_owned(),
                e["payload"]["data"]["appointment"]["id"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("appointment.created", &first),
        ("appointment.created", &second),
        ("appointment.updated", &first),
        ("appointment.updated", &first),
        ("appointment.canceled", &second),
        ("appointment.created", &third),
    ]
    .iter()
    .map(|(k, id)| ((*k).to_owned(), (*id).clone()))
    .collect();
    assert_eq!(kinds, want);
    let by = events["data"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["type"] == "appointment.canceled")
        .map(|e| e["payload"]["data"]["changed_by"].clone())
        .expect("canceled");
    assert!(
        by.as_str().is_some_and(|b| b.starts_with("api_key:key_")),
        "{by}"
    );

    // A new link replaces the old one; revoking ends it.
    let (_, again) = app.call(&key, Method::POST, "/calendar-feed", None).await;
    let url2 = again["url"].as_str().expect("url").to_owned();
    assert_ne!(url, url2);
    assert_eq!(app.feed(&url).await.0, 404, "the replaced link");
    assert_eq!(app.feed(&url2).await.0, 200);
    let (s, _) = app.call(&key, Method::DELETE, "/calendar-feed", None).await;
    assert_eq!(s, 204);
    assert_eq!(app.feed(&url2).await.0, 404, "the revoked link");
    let (s, _) = app.call(&key, Method::DELETE, "/calendar-feed", None).await;
    assert_eq!(s, 404);
    let forged = url2.replace(".ics", "");
    assert_eq!(app.feed(&forged).await.0, 404);
});
