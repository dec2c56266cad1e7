//! The dashboard's security rules over plain HTTP, on both backends: sessions and sign-out,
//! CSRF, the sign-in rate limit, roles, organization isolation and the operator's switcher.
//! (The browser test covers the pages themselves.)

mod dash_client;

use dash_client::*;
use reqwest::header::{CONTENT_TYPE, COOKIE};
use switchboard_domain::agent::NewAgent;
use switchboard_domain::values::Role;
use switchboard_store::backend_test;

backend_test!(sessions_csrf_roles_and_isolation, |db| {
    let (base, stop) = serve(db).await;
    let a = org_with_users(
        db,
        "Alpha",
        &[
            ("admin@alpha.test", Role::Admin),
            ("member@alpha.test", Role::Member),
        ],
    )
    .await;
    let b = org_with_users(db, "Beta", &[("admin@beta.test", Role::Admin)]).await;
    let agent: NewAgent =
        serde_json::from_value(serde_json::json!({"name": "Beta bot", "instructions": "x"}))
            .expect("agent");
    let b_agent = db.store.create_agent(&b, agent).await.expect("agent");

    // Pages need a session.
    let anon = Client::new(&base);
    let (status, _) = anon.get("/agents").await;
    assert_eq!(status, 303);

    // Signing in without the form's double-submit token is refused.
    let res = anon
        .http
        .post(format!("{base}/login"))
        .header(CONTENT_TYPE, FORM)
        .body("email=admin%40alpha.test&password=a+long+enough+password&_csrf=x")
        .send()
        .await
        .expect("post");
    assert_eq!(res.status().as_u16(), 400);
    assert!(cookie_value(&res, "sb_session").is_none());

    let mut admin = Client::new(&base);
    assert_eq!(
        admin
            .sign_in("admin@alpha.test", "a long enough password")
            .await,
        303
    );
    let (status, html) = admin.get("/agents").await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"new-agent\""));

    // CSRF: a form without the token, or with another, writes nothing.
    let (status, _, _) = admin.post("/api-keys", &[("name", "no token")], &[]).await;
    assert_eq!(status, 400);
    let (status, _, _) = admin
        .post("/api-keys", &[("_csrf", "forged"), ("name", "forged")], &[])
        .await;
    assert_eq!(status, 400);
    // A cross-site request is refused even with the token.
    let token = admin.csrf().await;
    let (status, _, _) = admin
        .post(
            "/api-keys",
            &[("_csrf", &token), ("name", "xsite")],
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(status, 400);
    // A script request without the header is refused.
    let res = admin
        .http
        .post(format!("{base}/agents/agt_whatever/try"))
        .header(COOKIE, &admin.cookie)
        .header(CONTENT_TYPE, "application/json")
        .body(r#"{"session_id":"s","message":"hi"}"#)
        .send()
        .await
        .expect("try");
    assert_eq!(res.status().as_u16(), 400);
    let keys = db.store.list_api_keys(&a, None, None).await.expect("keys");
    assert!(keys.data.is_empty(), "nothing was created: {:?}", keys.data);
    // With the token it works, and the key is shown once.
    let (status, _, html) = admin
        .post("/api-keys", &[("_csrf", &token), ("name", "CRM")], &[])
        .await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"new-key-value\""));
    // Bad input: a message beside the field, 422, nothing saved.
    let (status, _, html) = admin
        .post("/api-keys", &[("_csrf", &token), ("name", "   ")], &[])
        .await;
    assert_eq!(status, 422);
    assert!(html.contains("id=\"error-name\""), "{html}");
    assert_eq!(
        db.store
            .list_api_keys(&a, None, None)
            .await
            .expect("keys")
            .data
            .len(),
        1
    );

    // Another organization's records are not found, by URL or by form.
    let (status, html) = admin.get(&format!("/agents/{}", b_agent.id)).await;
    assert_eq!(status, 404);
    assert!(!html.contains("Beta bot"));
    let (status, _, _) = admin
        .post(
            &format!("/agents/{}/delete", b_agent.id),
            &[("_csrf", &token)],
            &[],
        )
        .await;
    assert_eq!(status, 404);
    assert!(db.store.get_agent(&b, &b_agent.id).await.is_ok());
    // Only operators switch organization.
    let (status, _, _) = admin
        .post(
            "/switch-org",
            &[("_csrf", &token), ("org_id", b.as_str())],
            &[],
        )
        .await;
    assert_eq!(status, 403);

    // Members read but cannot write.
    let mut member = Client::new(&base);
    assert_eq!(
        member
            .sign_in("member@alpha.test", "a long enough password")
            .await,
        303
    );
    let (status, html) = member.get("/agents").await;
    assert_eq!(status, 200);
    assert!(!html.contains("id=\"new-agent\""));
    let mtoken = member.csrf().await;
    let (status, _, _) = member
        .post(
            "/settings",
            &[("_csrf", &mtoken), ("session_window_seconds", "60")],
            &[],
        )
        .await;
    assert_eq!(status, 403);

    // Sign-out ends the session on the server, not only in the browser.
    let (status, location, _) = admin.post("/logout", &[("_csrf", &token)], &[]).await;
    assert_eq!((status, location.as_str()), (303, "/login"));
    let (status, _) = admin.get("/agents").await;
    assert_eq!(status, 303, "the old cookie no longer works");

    // An unknown e-mail is answered like a wrong password.
    assert_eq!(
        Client::new(&base)
            .sign_in("nobody@alpha.test", "whatever it is")
            .await,
        401
    );
    // The sign-in rate limit (per e-mail and per address; all of these come from 127.0.0.1):
    // after 3 failures even the right password waits.
    let mut guesser = Client::new(&base);
    for _ in 0..3 {
        assert_eq!(
            guesser
                .sign_in("member@alpha.test", "wrong password!!")
                .await,
            401
        );
    }
    assert_eq!(
        guesser
            .sign_in("member@alpha.test", "a long enough password")
            .await,
        429
    );
    assert!(guesser.cookie.is_empty());
    let _ = stop.send(());
});

backend_test!(
    operators_switch_organization_and_pages_read_each_backend,
    |db| {
        let (base, stop) = serve(db).await;
        let home = org_with_users(db, "Platform", &[("ops@platform.test", Role::Operator)]).await;
        let other = org_with_users(db, "Customer", &[]).await;
        let agent: NewAgent = serde_json::from_value(
            serde_json::json!({"name": "Customer bot", "instructions": "x"}),
        )
        .expect("agent");
        let agent = db.store.create_agent(&other, agent).await.expect("agent");
        let mut ops = Client::new(&base);
        assert_eq!(
            ops.sign_in("ops@platform.test", "a long enough password")
                .await,
            303
        );
        // Every page renders on this backend (PostgreSQL: under row-level security).
        for path in [
            "/",
            "/calls",
            "/conversations",
            "/agents",
            "/agents/new",
            "/phone-numbers",
            "/contacts",
            "/api-keys",
            "/webhooks",
            "/settings",
        ] {
            let (status, html) = ops.get(path).await;
            assert_eq!(status, 200, "{path}: {html}");
            assert!(
                html.contains("org-switch"),
                "operators get the switcher on {path}"
            );
        }
        let (status, _) = ops.get(&format!("/agents/{}", agent.id)).await;
        assert_eq!(status, 404, "not visible before switching");
        let token = ops.csrf().await;
        let (status, _, _) = ops
            .post(
                "/switch-org",
                &[("_csrf", &token), ("org_id", other.as_str())],
                &[],
            )
            .await;
        assert_eq!(status, 303);
        let (status, html) = ops.get(&format!("/agents/{}", agent.id)).await;
        assert_eq!(status, 200);
        assert!(html.contains("Customer bot"));
        let (status, _, _) = ops
            .post(
                "/switch-org",
                &[("_csrf", &token), ("org_id", "org_doesnotexist")],
                &[],
            )
            .await;
        assert_eq!(status, 404);
        let _ = home;
        let _ = stop.send(());
    }
);

backend_test!(the_agent_form_edits_the_voicemail_settings, |db| {
    let (base, stop) = serve(db).await;
    let org = org_with_users(db, "Alpha", &[("admin@alpha.test", Role::Admin)]).await;
    let mut admin = Client::new(&base);
    assert_eq!(
        admin
            .sign_in("admin@alpha.test", "a long enough password")
            .await,
        303
    );
    let (_, html) = admin.get("/agents/new").await;
    assert!(html.contains("name=\"voicemail\"") && html.contains("name=\"voicemail_message\""));
    let token = admin.csrf().await;
    let form = |message: &'static str| {
        vec![
            ("_csrf", token.clone()),
            ("name", "Caller".to_owned()),
            ("instructions", "Call people.".to_owned()),
            ("voice", "marin".to_owned()),
            ("model", "gpt-realtime".to_owned()),
            ("vad", "server_vad".to_owned()),
            ("max_call_duration_seconds", "1800".to_owned()),
            ("analysis_fields", "[]".to_owned()),
            ("voicemail", "leave_message".to_owned()),
            ("voicemail_message", message.to_owned()),
        ]
    };
    // Leaving a message needs the message: the form says so beside the field.
    let fields = form("");
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _, html) = admin.post("/agents/new", &pairs, &[]).await;
    assert_eq!(status, 422, "{html}");
    assert!(
        html.contains("is required when `voicemail` is `leave_message`"),
        "{html}"
    );
    let fields = form("Hi {{name}}, please call us back.");
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _, html) = admin.post("/agents/new", &pairs, &[]).await;
    assert_eq!(status, 303, "{html}");
    let agents = db
        .store
        .list_agents(&org, None, None)
        .await
        .expect("agents");
    let agent = &agents.data[0];
    assert_eq!(
        agent.voicemail,
        switchboard_domain::agent::VoicemailMode::LeaveMessage
    );
    assert_eq!(
        agent.voicemail_message.as_deref(),
        Some("Hi {{name}}, please call us back.")
    );
    let _ = stop.send(());
});
