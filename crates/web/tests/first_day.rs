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
