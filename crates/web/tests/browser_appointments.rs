//! Appointments in a real browser (headless Chromium over WebDriver), on a call running
//! through the fakes: the booking the agent makes on the phone appears on the open week
//! calendar without a reload and on the contact's page; staff move it on its page and the
//! calendar feed (made from the page) has the new time; a closure typed in the agent form
//! closes the day view, with every invalid business-hours field shown at once; staff book from
//! a free slot of the day view; the week collapses to one column at phone width.
//! Screenshots go to `target/tmp/dashboard-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/install-browser`). Without them the
//! test says it skipped, except under `CI=true`, where it fails.

mod voice_env;

use jiff::civil::{Date, Weekday};
use serde_json::Value;
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

/// Sets a date or time input the way its picker would (typing into native pickers depends on
/// the browser's locale).
async fn set(b: &Browser, id: &str, value: &str) {
    b.execute(
        "document.getElementById(arguments[0]).value = arguments[1]",
        vec![Value::from(id), Value::from(value)],
    )
    .await
    .expect("set value");
}

async fn wait_live(b: &Browser) {
    eventually("the live stream to connect", WAIT, || async {
        let v = b
            .execute("return document.body.dataset.liveConnected || ''", vec![])
            .await
            .expect("script");
        (v == "1").then_some(())
    })
    .await;
}

/// A Monday at least a week ahead (UTC).
fn monday_ahead() -> Date {
    let mut d = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::UTC)
        .date()
        .checked_add(jiff::Span::new().days(7))
        .expect("date");
    while d.weekday() != Weekday::Monday {
        d = d.tomorrow().expect("date");
    }
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appointments_in_a_real_browser() {
    let Some(b) = Browser::start().await.expect("browser") else {
        return;
    };
    let db = TestDb::sqlite().await.expect("db");
    let monday = monday_ahead();
    let wednesday = monday.checked_add(jiff::Span::new().days(2)).expect("date");
    let behavior = Behavior {
        steps: vec![
            Step::Call(
                "book_appointment".into(),
                json!({"start": format!("{monday}T10:00"), "name": "Ada"}),
            ),
            said(AGENT_SHORT, AGENT_SHORT_TEXT),
            Step::Call("end_call".into(), json!({"reason": "booked"})),
        ],
        transcripts: vec!["Book Monday at ten.".into(), "Bye.".into()],
        ..Behavior::default()
    };
    let mut env = env(&db, behavior).await;
    let org = env
        .org(
            "Acme",
            "+15550001001",
            &["book_appointment", "end_call"],
            None,
        )
        .await;
    db.store
        .create_user(&org.id, "admin@acme.test", &Secret::new(PW), Role::Admin)
        .await
        .expect("user");
    let base = env.base.clone();
    b.sign_in(&base, "admin@acme.test", PW)
        .await
        .expect("signed in");

    // ---- the week is open when the call books: the booking appears without a reload ----
    b.goto(&format!("{base}/appointments?view=week&date={monday}"))
        .await
        .expect("calendar");
    b.wait_for("#calendar", WAIT).await.expect("week");
    wait_live(&b).await;
    let sid = "CA00000000000000000000000000000901";
    let media = env.answer(&org, sid, "+15557770901", 20.0).await;
    env.wait_model_event("session.update", 1).await;
    media.play_at(CALLER_BOOKING, Duration::from_millis(5));
    let outputs = env.wait_model_event("conversation.item.create", 1).await;
    let booked: Value =
        serde_json::from_str(outputs[0]["item"]["output"].as_str().expect("output")).expect("json");
    assert_eq!(booked["status"], "booked", "{booked}");
    let id = booked["appointment"]["appointment_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let chip = format!("a.appt[data-id={id}]");
    b.wait_for(&format!("section.day[data-date='{monday}'] {chip}"), WAIT)
        .await
        .expect("the call's booking on Monday, live");
    let text = b.text_of(&chip).await.expect("chip");
    assert!(
        text.contains("10:00") && text.contains("Appointment with Ada"),
        "{text}"
    );
    assert!(text.contains("+15557770901"), "the caller: {text}");
    shot(&b, "40-week-with-booking").await;
    media
        .wait_for("the agent's answer", WAIT, |r| {
            r.audio.len() >= AGENT_SHORT.len()
        })
        .await;
    media.play_at(CALLER_BOOKING, Duration::from_millis(5));
    env.wait_ended(&org, sid).await;

    // ---- the contact's page lists it ----
    let contact = db
        .store
        .find_contact_by_number(&org.id, &PhoneNumber::parse("+15557770901").expect("e164"))
        .await
        .expect("query")
        .expect("the caller became a contact");
    b.goto(&format!("{base}/contacts/{}", contact.id))
        .await
        .expect("contact");
    b.wait_text("#contact-appointments", "Appointment with Ada", WAIT)
        .await
        .expect("the contact's appointments");

    // ---- business hours in the agent form: all errors at once, then a closure ----
    b.goto(&format!("{base}/agents/{}", org.agent))
        .await
        .expect("agent");
    b.wait_for("#business-hours", WAIT).await.expect("hours");
    set(&b, "hours_open", "").await;
    b.fill("#slot_minutes", "2").await.expect("slot");
    b.fill("#closures", "2026-13-01").await.expect("closure");
    b.click_css("#save").await.expect("save");
    for field in ["hours_open", "slot_minutes", "closures"] {
        b.wait_for(&format!("#error-{field}"), WAIT)
            .await
            .unwrap_or_else(|e| panic!("{field} marked: {e}"));
    }
    set(&b, "hours_open", "09:00").await;
    set(&b, "hours_close", "17:00").await;
    b.fill("#slot_minutes", "30").await.expect("slot");
    b.fill("#closures", &format!("{wednesday} Staff training"))
        .await
        .expect("closure");
    b.click_css("#save").await.expect("save");
    b.wait_text(".flash", "Saved", WAIT).await.expect("saved");
    // ---- staff move it; the calendar feed made from the page has the new time ----
    b.goto(&format!("{base}/contacts/{}", contact.id))
        .await
        .expect("contact");
    b.click_css(&format!("#contact-appointments li[data-id={id}] a"))
        .await
        .expect("open");
    b.wait_for("#move-form", WAIT).await.expect("move form");
    set(&b, "time", "11:30").await;
    b.click_css("#save-appointment").await.expect("save");
    b.wait_text(".flash", "Saved", WAIT).await.expect("saved");
    let when = b.text_of("#when").await.expect("when");
    assert!(when.contains("11:30"), "{when}");
    shot(&b, "41-appointment-moved").await;
    // A move onto a closed hour is refused beside the field, nothing changed.
    set(&b, "time", "16:45").await;
    b.fill("#duration_minutes", "60").await.expect("length");
    b.click_css("#save-appointment").await.expect("save");
    b.wait_text("#error-date", "outside business hours", WAIT)
        .await
        .expect("refused");
    b.goto(&format!("{base}/appointments?view=week&date={monday}"))
        .await
        .expect("calendar");
    b.click_css("#calendar-feed button")
        .await
        .expect("make link");
    let url = b
        .wait_text("#feed-url", "/calendar/cal_", WAIT)
        .await
        .expect("url");
    let path = url
        .trim()
        .strip_prefix(PUBLIC)
        .expect("the link is on the public URL")
        .to_owned();
    let ics = reqwest::get(format!("{base}{path}"))
        .await
        .expect("feed")
        .text()
        .await
        .expect("text");
    let compact = monday.strftime("%Y%m%d").to_string();
    assert!(ics.contains(&format!("UID:{id}@switchboard")), "{ics}");
    assert!(
        ics.contains(&format!("DTSTART:{compact}T113000Z")),
        "moved: {ics}"
    );
    assert!(ics.contains("SEQUENCE:1"), "{ics}");
    assert!(ics.contains("STATUS:CONFIRMED"), "{ics}");

    b.goto(&format!(
        "{base}/appointments?view=day&date={wednesday}&agent={}",
        org.agent
    ))
    .await
    .expect("day");
    b.wait_text("#closed-day", "Staff training", WAIT)
        .await
        .expect("the closure closes the day");

    // ---- staff book from a free slot of the day view ----
    b.goto(&format!(
        "{base}/appointments?view=day&date={monday}&agent={}",
        org.agent
    ))
    .await
    .expect("day");
    b.wait_for("#free-slots a.slot", WAIT)
        .await
        .expect("free times");
    let slots = b.find_all("#free-slots a.slot").await.expect("slots");
    let mut texts = Vec::new();
    for s in &slots {
        texts.push(b.text(s).await.expect("text"));
    }
    assert!(
        !texts.iter().any(|t| t == "11:30"),
        "the booked time is not free: {texts:?}"
    );
    let at = texts.iter().position(|t| t == "14:00").expect("14:00 free");
    b.click(&slots[at]).await.expect("pick 14:00");
    b.wait_for("#appointment-form", WAIT).await.expect("form");
    b.fill("#contact_number", "+15557770902")
        .await
        .expect("number");
    b.fill("#title", "Check-up").await.expect("title");
    b.click_css("#book").await.expect("book");
    b.wait_text(".flash", "Booked", WAIT).await.expect("booked");
    let when = b.text_of("#when").await.expect("when");
    assert!(when.contains("14:00"), "{when}");

    // ---- at phone width the week is one column ----
    b.resize(390, 844).await.expect("phone");
    b.goto(&format!("{base}/appointments?view=week&date={monday}"))
        .await
        .expect("calendar");
    b.wait_for("#calendar", WAIT).await.expect("week");
    let stacked = b
        .execute(
            "const d = document.querySelectorAll('#calendar section.day'); \
             return d[1].getBoundingClientRect().top > d[0].getBoundingClientRect().bottom - 1 \
               && document.documentElement.scrollWidth <= window.innerWidth;",
            vec![],
        )
        .await
        .expect("layout");
    assert_eq!(
        stacked,
        Value::Bool(true),
        "days stack and nothing overflows"
    );
    shot(&b, "42-week-phone").await;
    b.resize(1280, 900).await.expect("laptop");
    env.shutdown();
}
