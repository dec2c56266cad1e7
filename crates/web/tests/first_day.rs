//! Fixes from the first-day test that plain HTTP can show: the settings form names every
//! invalid field at once and saves nothing; API errors say "a number", not `f64`; a number
//! filter whose `+` arrived as a space says to write `%2B`; a time filter says it wants a
//! time; the favicon and the product name on the sign-in page; the call page names webhook
//! endpoints by URL.

mod voice_env;

use voice_env::*;

backend_test!(first_day_fixes, |db| {
    let env = env(db, Behavior::default()).await;
    let org = env.org("Acme", "+15550001001", &[], None).await;
    let key = env.key(&org).await;
    let admin = env.dashboard_admin(&org, "admin@acme.test").await;

    // Every invalid settings field at once; nothing saved.
    let page = admin
        .submit(
            "/settings",
            "/settings",
            &[
                ("timezone", "Nowhere/Land"),
                ("session_window_seconds", "5"),
                ("business_session_window_seconds", "259200"),
                ("notification_emails", "not-an-address"),
                ("notify_calls", "all"),
                ("max_concurrent_outbound_calls", "abc"),
                ("recording_retention_days", ""),
                ("transfer_destinations", ""),
                ("help_text", ""),
                ("twilio_account_sid", ""),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    for field in [
        "timezone",
        "session_window_seconds",
        "notification_emails",
        "max_concurrent_outbound_calls",
    ] {
        assert!(
            page.body.contains(&format!("id=\"error-{field}\"")),
            "{field} marked: {}",
            page.body
        );
    }
    let settings = env.db.store.get_settings(&org.id).await.expect("settings");
    assert_eq!(settings.timezone, "UTC", "nothing saved");

    // API errors in words.
    let (s, b) = env
        .call_api(
            reqwest::Method::POST,
            &key,
            "/api/v1/agents",
            Some(json!({"name": "A", "instructions": "B", "temperature": "hot"})),
        )
        .await;
    assert_eq!(s, 422);
    let m = b["error"]["message"].as_str().expect("message");
    assert!(m.contains("expected a number") && !m.contains("f64"), "{m}");
    let (s, b) = env
        .call_api(
            reqwest::Method::GET,
            &key,
            "/api/v1/calls?number=+15557770001",
            None,
        )
        .await;
    assert_eq!(s, 422);
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("%2B")),
        "{b}"
    );
    let (s, _) = env
        .call_api(
            reqwest::Method::GET,
            &key,
            "/api/v1/calls?number=%2B15557770001",
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, b) = env
        .call_api(
            reqwest::Method::GET,
            &key,
            "/api/v1/calls?from=1764547200",
            None,
        )
        .await;
    assert_eq!(s, 422);
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("RFC 3339")),
        "{b}"
    );

    // The favicon, and the product's name where people sign in.
    let res = reqwest::get(format!("{}/favicon.ico", env.base))
        .await
        .expect("favicon");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    assert!(res.text().await.expect("svg").starts_with("<svg"));
    let login = reqwest::get(format!("{}/login", env.base))
        .await
        .expect("login")
        .text()
        .await
        .expect("html");
    assert!(
        login.contains("id=\"product\"") && login.contains("Switchboard"),
        "{login}"
    );
    assert!(login.contains("rel=\"icon\""));

    // The call page names a webhook endpoint by its URL.
    let (s, ep) = env
        .call_api(
            reqwest::Method::POST,
            &key,
            "/api/v1/webhook-endpoints",
            Some(json!({"url": "https://hooks.example.com/switchboard/very/long/path"})),
        )
        .await;
    assert_eq!(s, 201, "{ep}");
    env.incoming(&org, "CA00000000000000000000000000000d01", "+15557770001")
        .await;
    let call = env
        .call_of(&org, "CA00000000000000000000000000000d01")
        .await;
    let page = eventually("the delivery on the call page", WAIT, || async {
        let p = admin.get(&format!("/calls/{}", call.id)).await;
        p.body
            .contains("https://hooks.example.com/switchboard/very/long/path")
            .then_some(p)
    })
    .await;
    assert!(!page
        .body
        .contains(&format!(">{}<", ep["id"].as_str().expect("id"))));
});

backend_test!(a_long_thread_opens_at_its_newest_messages, |db| {
    use switchboard_domain::entities::NewMessage;
    use switchboard_domain::values::{MessageKind, MessageRole};
    let env = env(db, Behavior::default()).await;
    let org = env.org("Acme", "+15550001001", &[], None).await;
    let admin = env.dashboard_admin(&org, "admin@acme.test").await;
    let start = Timestamp::parse_rfc3339("2026-11-02T12:00:00Z").expect("t");
    switchboard_store::seed::seed_texts(&db.store, &org.id, "+15550001001", None, start, 0, 0)
        .await
        .expect("thread");
    let conv = db
        .store
        .list_conversations(&org.id, &Default::default(), None, None)
        .await
        .expect("conversations")
        .data
        .into_iter()
        .next()
        .expect("the thread");
    for i in 0..250i64 {
        db.store
            .append_message(
                &org.id,
                NewMessage {
                    conversation_id: conv.id.clone(),
                    role: if i % 2 == 0 {
                        MessageRole::User
                    } else {
                        MessageRole::Assistant
                    },
                    kind: MessageKind::Message,
                    content: json!({"text": format!("Turn {i}.")}),
                    external_id: None,
                    delivery_status: None,
                    created_at: Timestamp::from_millis(start.millis() + i * 1000),
                },
            )
            .await
            .expect("turn");
    }
    // The newest 200, with a way back; nothing later.
    let page = admin.get(&format!("/conversations/{}", conv.id)).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Turn 249.") && page.body.contains("Turn 50."));
    assert!(
        !page.body.contains("Turn 49."),
        "the oldest fifty are a page back"
    );
    assert!(!page.body.contains("id=\"later-messages\""));
    let link = |body: &str, id: &str| {
        let needle = format!("id=\"{id}\" href=\"");
        let at = body.find(&needle).expect("link") + needle.len();
        body[at..at + body[at..].find('"').expect("end")].replace("&amp;", "&")
    };
    let earlier = link(&page.body, "earlier-messages");
    // Back: the first fifty, and a way forward again.
    let back = admin.get(&earlier).await;
    assert!(back.body.contains("Turn 0.") && back.body.contains("Turn 49."));
    assert!(!back.body.contains("Turn 50."));
    assert!(!back.body.contains("id=\"earlier-messages\""));
    let later = link(&back.body, "later-messages");
    let forward = admin.get(&later).await;
    assert!(forward.body.contains("Turn 50.") && forward.body.contains("Turn 249."));
    assert!(!forward.body.contains("Turn 49."));
});
