//! The one conformance suite both backends must pass. Every test runs twice: `::sqlite` and
//! `::postgres` (the latter when SWITCHBOARD_TEST_POSTGRES is set).

use serde_json::json;
use switchboard_domain::agent::{AgentPatch, NewAgent};
use switchboard_domain::entities::*;
use switchboard_domain::ids::*;
use switchboard_domain::settings::SettingsUpdate;
use switchboard_domain::values::*;
use switchboard_domain::{Secret, Timestamp};
use switchboard_store::{backend_test, BootstrapInput, Store, StoreError};

fn new_agent(name: &str) -> NewAgent {
    serde_json::from_value(json!({"name": name, "instructions": "Help callers."})).expect("agent")
}

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).expect("e164")
}

fn new_number(n: &str, channel: NumberChannel, agent: Option<AgentId>) -> NewPhoneNumber {
    NewPhoneNumber {
        number: phone(n),
        channel,
        agent_id: agent,
        active: None,
    }
}

fn new_contact(n: &str, name: &str) -> NewContact {
    NewContact {
        number: phone(n),
        name: Some(name.into()),
        metadata: None,
        opted_out: None,
    }
}

fn new_conv(contact: &str, at: i64, channel: Channel, agent: Option<AgentId>) -> NewConversation {
    NewConversation {
        channel,
        direction: Direction::Inbound,
        contact_number: contact.into(),
        our_number: Some("+15555550100".into()),
        agent_id: agent,
        variables: json!({"customer": "Ada"}),
        started_at: Timestamp::from_millis(at),
    }
}

fn text(conv: &ConversationId, role: MessageRole, t: &str, at: i64) -> NewMessage {
    NewMessage {
        conversation_id: conv.clone(),
        role,
        kind: MessageKind::Message,
        content: json!({"type": "text", "text": t}),
        external_id: None,
        delivery_status: None,
        created_at: Timestamp::from_millis(at),
    }
}

fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(StoreError::NotFound) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

backend_test!(migrations_are_idempotent, |db| {
    let store = &db.store;
    assert!(store.migrate().await.expect("second migrate").is_empty());
    let status = store.migration_status().await.expect("status");
    assert!(status.pending.is_empty() && status.unknown.is_empty());
    assert_eq!(status.applied, (1..=34).collect::<Vec<i64>>());
    store.ping().await.expect("ping");
});

backend_test!(agents_round_trip, |db| {
    let store = &db.store;
    let org = store.create_org("Acme").await.expect("org");
    let a = store
        .create_agent(&org.id, new_agent("Front desk"))
        .await
        .expect("create");
    let got = store.get_agent(&org.id, &a.id).await.expect("get");
    assert_eq!(got, a);
    let patch: AgentPatch = serde_json::from_value(json!({
        "greeting": "Hello!", "tools": ["end_call", "lookup_contact"],
        "turn_detection": {"type": "semantic_vad", "eagerness": "low"},
        "analysis_fields": [{"name": "reason", "type": "enum", "description": "Why", "options": ["a", "b"]}],
        "temperature": 0.7
    }))
    .expect("patch");
    let updated = store
        .update_agent(&org.id, &a.id, patch)
        .await
        .expect("update");
    assert_eq!(store.get_agent(&org.id, &a.id).await.expect("get"), updated);
    assert_eq!(updated.tools, vec!["end_call", "lookup_contact"]);
    assert_eq!(updated.temperature, Some(0.7));
    // Invalid patches change nothing.
    let bad: AgentPatch =
        serde_json::from_value(json!({"name": "ok", "voice": "nope"})).expect("patch");
    assert!(
        matches!(store.update_agent(&org.id, &a.id, bad).await, Err(StoreError::Invalid(e)) if e.field == "voice")
    );
    assert_eq!(
        store.get_agent(&org.id, &a.id).await.expect("get").name,
        "Front desk"
    );
    let page = store.list_agents(&org.id, None, None).await.expect("list");
    assert_eq!(page.data.len(), 1);
    store.delete_agent(&org.id, &a.id).await.expect("delete");
    assert_not_found(store.get_agent(&org.id, &a.id).await, "deleted agent");
});

backend_test!(numbers_are_unique_per_organization_and_route, |db| {
    let store = &db.store;
    let a = store.create_org("A").await.expect("org");
    let b = store.create_org("B").await.expect("org");
    let agent = store
        .create_agent(&a.id, new_agent("x"))
        .await
        .expect("agent");
    let n = store
        .create_number(
            &a.id,
            new_number("+15555550123", NumberChannel::Voice, Some(agent.id.clone())),
        )
        .await
        .expect("number");
    assert_eq!(n.verification, NumberVerification::PendingVerification);
    assert_eq!(n.verification_reason.as_deref(), Some("not_checked"));
    // Same number, other channel: fine. Same number+channel twice in one organization:
    // conflict (claims across organizations: `number_claims_are_decided_by_verification`).
    store
        .create_number(&b.id, new_number("+15555550123", NumberChannel::Sms, None))
        .await
        .expect("sms");
    let r = store
        .create_number(
            &a.id,
            new_number("+15555550123", NumberChannel::Voice, None),
        )
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    // An agent of another organization cannot be attached.
    let foreign = store
        .create_agent(&b.id, new_agent("y"))
        .await
        .expect("agent");
    let r = store
        .create_number(
            &a.id,
            new_number("+15555550199", NumberChannel::Voice, Some(foreign.id)),
        )
        .await;
    assert!(matches!(r, Err(StoreError::Invalid(e)) if e.field == "agent_id"));

    let route = store
        .route_number(&phone("+15555550123"), NumberChannel::Voice)
        .await
        .expect("route")
        .expect("found");
    assert_eq!(route.org_id, a.id);
    assert_eq!(route.agent_id, Some(agent.id.clone()));
    assert!(route.active);
    assert!(store
        .route_number(&phone("+15555550000"), NumberChannel::Voice)
        .await
        .expect("route")
        .is_none());

    let patched = store
        .update_number(
            &a.id,
            &n.id,
            PhoneNumberPatch {
                agent_id: Some(None),
                active: Some(false),
            },
        )
        .await
        .expect("patch");
    assert_eq!((patched.agent_id, patched.active), (None, false));
    let route = store
        .route_number(&phone("+15555550123"), NumberChannel::Voice)
        .await
        .expect("route")
        .expect("found");
    assert!(!route.active);

    store
        .update_number(
            &a.id,
            &n.id,
            PhoneNumberPatch {
                agent_id: None,
                active: Some(true),
            },
        )
        .await
        .expect("patch");
    store
        .set_org_status(&a.id, OrgStatus::Disabled)
        .await
        .expect("disable");
    let route = store
        .route_number(&phone("+15555550123"), NumberChannel::Voice)
        .await
        .expect("route")
        .expect("found");
    assert!(
        !route.active,
        "a disabled organization's numbers are refused"
    );
    assert_eq!(store.count_numbers(&a.id).await.expect("count"), 1);
    store.delete_number(&a.id, &n.id).await.expect("delete");
    assert_not_found(store.get_number(&a.id, &n.id).await, "deleted number");
});

backend_test!(contacts_search_and_conflicts, |db| {
    let store = &db.store;
    let org = store.create_org("A").await.expect("org");
    let ada = store
        .create_contact(&org.id, new_contact("+15555550101", "Ada Lovelace"))
        .await
        .expect("c");
    store
        .create_contact(&org.id, new_contact("+4930123456", "Bob 100%_sure"))
        .await
        .expect("c");
    let dup = store
        .create_contact(&org.id, new_contact("+15555550101", "Twin"))
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))));
    let by_name = store
        .list_contacts(&org.id, Some("lovel"), None, None)
        .await
        .expect("search");
    assert_eq!(
        by_name.data.iter().map(|c| &c.id).collect::<Vec<_>>(),
        vec![&ada.id]
    );
    let by_number = store
        .list_contacts(&org.id, Some("+4930"), None, None)
        .await
        .expect("search");
    assert_eq!(by_number.data.len(), 1);
    // LIKE wildcards in the query are literal.
    assert_eq!(
        store
            .list_contacts(&org.id, Some("a%e"), None, None)
            .await
            .expect("s")
            .data
            .len(),
        0
    );
    assert_eq!(
        store
            .list_contacts(&org.id, Some("100%_"), None, None)
            .await
            .expect("s")
            .data
            .len(),
        1
    );
    let patch = ContactPatch {
        opted_out: Some(true),
        metadata: Some(json!({"tier": "gold"})),
        ..Default::default()
    };
    let c = store
        .update_contact(&org.id, &ada.id, patch)
        .await
        .expect("patch");
    assert!(c.opted_out);
    assert_eq!(store.get_contact(&org.id, &ada.id).await.expect("get"), c);
    let bad = ContactPatch {
        metadata: Some(json!([1])),
        ..Default::default()
    };
    assert!(matches!(
        store.update_contact(&org.id, &ada.id, bad).await,
        Err(StoreError::Invalid(_))
    ));
    store
        .delete_contact(&org.id, &ada.id)
        .await
        .expect("delete");
    assert_not_found(store.get_contact(&org.id, &ada.id).await, "deleted contact");
});

backend_test!(conversations_filter_and_paginate_newest_first, |db| {
    let store = &db.store;
    let org = store.create_org("A").await.expect("org");
    let agent = store
        .create_agent(&org.id, new_agent("x"))
        .await
        .expect("agent");
    let mut ids = Vec::new();
    for i in 0..7 {
        // Two share a timestamp to exercise the id tie-break.
        let at = 1_000_000 + (i / 2) * 1000;
        let channel = if i % 2 == 0 {
            Channel::Sms
        } else {
            Channel::Voice
        };
        let c = store
            .create_conversation(
                &org.id,
                new_conv(
                    &format!("+1555555020{i}"),
                    at,
                    channel,
                    Some(agent.id.clone()),
                ),
            )
            .await
            .expect("conv");
        ids.push(c);
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_conversations(
                &org.id,
                &ConversationFilter::default(),
                Some(3),
                cursor.as_ref(),
            )
            .await
            .expect("page");
        assert!(page.data.len() <= 3);
        seen.extend(page.data.iter().map(|c| (c.started_at, c.id.clone())));
        match page.next_cursor {
            Some(c) => cursor = Some(Cursor::decode(&c).expect("cursor")),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "every conversation exactly once");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first, ties by id");

    let sms = ConversationFilter {
        channel: Some(Channel::Sms),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_conversations(&org.id, &sms, None, None)
            .await
            .expect("f")
            .data
            .len(),
        4
    );
    let contact = ConversationFilter {
        contact: Some("+15555550203".into()),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_conversations(&org.id, &contact, None, None)
            .await
            .expect("f")
            .data
            .len(),
        1
    );
    let range = ConversationFilter {
        from: Some(Timestamp::from_millis(1_001_000)),
        to: Some(Timestamp::from_millis(1_003_000)),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_conversations(&org.id, &range, None, None)
            .await
            .expect("f")
            .data
            .len(),
        4
    );
    let by_agent = ConversationFilter {
        agent_id: Some(agent.id.clone()),
        status: Some(ConversationStatus::Active),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_conversations(&org.id, &by_agent, None, None)
            .await
            .expect("f")
            .data
            .len(),
        7
    );
    let closed = ConversationFilter {
        status: Some(ConversationStatus::Closed),
        ..Default::default()
    };
    assert!(store
        .list_conversations(&org.id, &closed, None, None)
        .await
        .expect("f")
        .data
        .is_empty());
});

backend_test!(messages_keep_order_and_structure, |db| {
    let store = &db.store;
    let org = store.create_org("A").await.expect("org");
    let conv = store
        .create_conversation(&org.id, new_conv("+15555550301", 5_000, Channel::Web, None))
        .await
        .expect("c");
    // Same millisecond for all: order must still be insertion order.
    for i in 0..5 {
        let role = if i % 2 == 0 {
            MessageRole::User
        } else {
            MessageRole::Assistant
        };
        store
            .append_message(&org.id, text(&conv.id, role, &format!("m{i}"), 9_000))
            .await
            .expect("append");
    }
    let call = NewMessage {
        kind: MessageKind::FunctionCall,
        role: MessageRole::Assistant,
        content: json!({"name": "lookup_contact", "arguments": {"number": "+15555550301"}, "call_id": "c1"}),
        ..text(&conv.id, MessageRole::Assistant, "", 9_500)
    };
    store
        .append_message(&org.id, call)
        .await
        .expect("function call");
    let first = store
        .list_messages(&org.id, &conv.id, Some(4), None)
        .await
        .expect("page");
    let cursor = Cursor::decode(first.next_cursor.as_deref().expect("more")).expect("cursor");
    let rest = store
        .list_messages(&org.id, &conv.id, Some(4), Some(&cursor))
        .await
        .expect("page");
    assert!(rest.next_cursor.is_none());
    let texts: Vec<String> = first
        .data
        .iter()
        .chain(rest.data.iter())
        .map(|m| {
            m.content
                .get("text")
                .and_then(|t| t.as_str())
                .unwrap_or("fn")
                .to_owned()
        })
        .collect();
    assert_eq!(texts, vec!["m0", "m1", "m2", "m3", "m4", "fn"]);
    assert_eq!(rest.data[1].content["arguments"]["number"], "+15555550301");
    let conv = store
        .get_conversation(&org.id, &conv.id)
        .await
        .expect("conv");
    assert_eq!(conv.last_message_at, Timestamp::from_millis(9_500));
    assert_not_found(
        store
            .append_message(
                &org.id,
                text(&ConversationId::generate(), MessageRole::User, "x", 1),
            )
            .await,
        "message to an unknown conversation",
    );
});

backend_test!(calls_round_trip, |db| {
    let store = &db.store;
    let org = store.create_org("A").await.expect("org");
    let conv = store
        .create_conversation(
            &org.id,
            new_conv("+15555550401", 5_000, Channel::Voice, None),
        )
        .await
        .expect("c");
    let new_call = NewCall {
        conversation_id: conv.id.clone(),
        call_sid: "CA0123456789abcdef0123456789abcdef".into(),
        direction: Direction::Inbound,
        from_number: "+15555550401".into(),
        to_number: "+15555550100".into(),
        agent_id: None,
        status: CallStatus::Ringing,
        started_at: Timestamp::from_millis(5_000),
    };
    let call = store
        .create_call(&org.id, new_call.clone())
        .await
        .expect("call");
    assert_eq!(store.get_call(&org.id, &call.id).await.expect("get"), call);
    assert!(matches!(
        store.create_call(&org.id, new_call).await,
        Err(StoreError::Conflict(_))
    ));
    let ringing = CallFilter {
        status: Some(CallStatus::Ringing),
        direction: Some(Direction::Inbound),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_calls(&org.id, &ringing, None, None)
            .await
            .expect("list")
            .data
            .len(),
        1
    );
    let done = CallFilter {
        status: Some(CallStatus::Completed),
        ..Default::default()
    };
    assert!(store
        .list_calls(&org.id, &done, None, None)
        .await
        .expect("list")
        .data
        .is_empty());
});

backend_test!(settings_are_partial_and_token_write_only, |db| {
    let store = &db.store;
    let org = store.create_org("A").await.expect("org");
    let s = store.get_settings(&org.id).await.expect("defaults");
    assert_eq!(s.session_window_seconds, 300);
    assert!(store
        .twilio_credentials(&org.id)
        .await
        .expect("creds")
        .is_none());
    let sid = format!("AC{}", "0".repeat(32));
    let s = store
        .update_settings(
            &org.id,
            SettingsUpdate {
                twilio_account_sid: Some(sid.clone()),
                session_window_seconds: Some(900),
                ..Default::default()
            },
        )
        .await
        .expect("update");
    assert_eq!(
        (s.session_window_seconds, s.twilio_auth_token_set),
        (900, false)
    );
    let s = store
        .update_settings(
            &org.id,
            SettingsUpdate {
                twilio_auth_token: Some(Secret::new("tok")),
                notification_emails: Some(vec!["Ops@Example.com".into()]),
                ..Default::default()
            },
        )
        .await
        .expect("update");
    assert_eq!(s.twilio_account_sid.as_deref(), Some(sid.as_str()));
    assert!(s.twilio_auth_token_set);
    assert_eq!(s.notification_emails, vec!["ops@example.com"]);
    assert_eq!(
        s.session_window_seconds, 900,
        "absent fields keep their value"
    );
    let creds = store
        .twilio_credentials(&org.id)
        .await
        .expect("creds")
        .expect("set");
    assert_eq!(creds.auth_token.expose(), "tok");
    let bad = SettingsUpdate {
        session_window_seconds: Some(1),
        notification_emails: Some(vec![]),
        ..Default::default()
    };
    assert!(matches!(
        store.update_settings(&org.id, bad).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        store
            .get_settings(&org.id)
            .await
            .expect("s")
            .notification_emails
            .len(),
        1,
        "nothing half-written"
    );
});

backend_test!(api_keys_authenticate_until_revoked, |db| {
    let store = &db.store;
    let org = store.create_org("A").await.expect("org");
    let (key, secret) = store.create_api_key(&org.id, "ci").await.expect("key");
    let hash = switchboard_domain::auth::hash_api_key(secret.expose());
    let p = store
        .authenticate_api_key(&hash)
        .await
        .expect("auth")
        .expect("valid");
    assert_eq!(
        (p.org_id.clone(), p.key_id.clone()),
        (org.id.clone(), key.id.clone())
    );
    store.touch_api_key(&org.id, &p).await.expect("touch");
    let listed = store
        .list_api_keys(&org.id, None, None)
        .await
        .expect("list");
    assert!(listed.data[0].last_used_at.is_some());
    let revoked = store
        .revoke_api_key(&org.id, &key.id)
        .await
        .expect("revoke");
    assert!(revoked.revoked_at.is_some());
    assert!(store
        .authenticate_api_key(&hash)
        .await
        .expect("auth")
        .is_none());
    assert!(store
        .authenticate_api_key("0".repeat(64).as_str())
        .await
        .expect("auth")
        .is_none());
    assert_not_found(
        store.create_api_key(&OrgId::generate(), "x").await,
        "key for unknown org",
    );
});

backend_test!(bootstrap_runs_once, |db| {
    let store = &db.store;
    let input = BootstrapInput {
        org_name: "First".into(),
        admin_email: "admin@example.com".into(),
    };
    let b = store
        .bootstrap(&input)
        .await
        .expect("bootstrap")
        .expect("created");
    assert!(store.bootstrap(&input).await.expect("again").is_none());
    assert_eq!(store.count_orgs().await.expect("count"), 1);
    let hash = switchboard_domain::auth::hash_api_key(b.org_key.expose());
    assert_eq!(
        store
            .authenticate_api_key(&hash)
            .await
            .expect("a")
            .expect("valid")
            .org_id,
        b.org.id
    );
    let op_hash = switchboard_domain::auth::hash_api_key(b.operator_key.expose());
    assert!(store.authenticate_operator_key(&op_hash).await.expect("op"));
    assert!(
        !store.authenticate_operator_key(&hash).await.expect("op"),
        "org keys are not operator keys"
    );
    let (user, phc) = store
        .find_login("ADMIN@example.com")
        .await
        .expect("login")
        .expect("found");
    assert_eq!(user.role, Role::Operator);
    assert!(switchboard_domain::auth::verify_password(
        &b.admin_password,
        &phc
    ));
    let dup = store
        .create_user(
            &b.org.id,
            "admin@example.com",
            &Secret::new("long enough pw"),
            Role::Member,
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))));
    assert_eq!(store.list_users(&b.org.id).await.expect("users").len(), 1);
});

/// Everything organization A owns, for the cross-tenant checks.
struct Owned {
    org: OrgId,
    agent: AgentId,
    number: PhoneNumberId,
    contact: ContactId,
    conv: ConversationId,
    call: CallId,
    key: ApiKeyId,
}

async fn seed_org(store: &Store, name: &str, n: u32) -> Owned {
    let org = store.create_org(name).await.expect("org").id;
    let agent = store
        .create_agent(&org, new_agent(name))
        .await
        .expect("agent")
        .id;
    let number = store
        .create_number(
            &org,
            new_number(
                &format!("+1555555{n:04}"),
                NumberChannel::Voice,
                Some(agent.clone()),
            ),
        )
        .await
        .expect("number")
        .id;
    let contact = store
        .create_contact(&org, new_contact(&format!("+1666666{n:04}"), name))
        .await
        .expect("c")
        .id;
    let conv = store
        .create_conversation(
            &org,
            new_conv("+16666660000", 1_000, Channel::Voice, Some(agent.clone())),
        )
        .await
        .expect("conv")
        .id;
    store
        .append_message(&org, text(&conv, MessageRole::User, "secret of A", 1_001))
        .await
        .expect("msg");
    let call = store
        .create_call(
            &org,
            NewCall {
                conversation_id: conv.clone(),
                call_sid: format!("CA{n:032}"),
                direction: Direction::Inbound,
                from_number: "+16666660000".into(),
                to_number: format!("+1555555{n:04}"),
                agent_id: Some(agent.clone()),
                status: CallStatus::InProgress,
                started_at: Timestamp::from_millis(1_000),
            },
        )
        .await
        .expect("call")
        .id;
    let key = store.create_api_key(&org, "k").await.expect("key").0.id;
    store
        .create_user(
            &org,
            &format!("{}@example.com", name.to_lowercase()),
            &Secret::new("a long password"),
            Role::Admin,
        )
        .await
        .expect("user");
    store
        .update_settings(
            &org,
            SettingsUpdate {
                twilio_account_sid: Some(format!("AC{}", "a".repeat(32))),
                twilio_auth_token: Some(Secret::new("t")),
                notification_emails: Some(vec!["a@example.com".into()]),
                ..Default::default()
            },
        )
        .await
        .expect("settings");
    Owned {
        org,
        agent,
        number,
        contact,
        conv,
        call,
        key,
    }
}

backend_test!(organization_b_cannot_touch_organization_a, |db| {
    let store = &db.store;
    let a = seed_org(store, "Alpha", 1).await;
    let b = seed_org(store, "Beta", 2).await;
    let bo = &b.org;

    // Read.
    assert_not_found(store.get_agent(bo, &a.agent).await, "get_agent");
    assert_not_found(store.get_number(bo, &a.number).await, "get_number");
    assert_not_found(store.get_contact(bo, &a.contact).await, "get_contact");
    assert_not_found(
        store.get_conversation(bo, &a.conv).await,
        "get_conversation",
    );
    assert_not_found(
        store.list_messages(bo, &a.conv, None, None).await,
        "list_messages",
    );
    assert_not_found(store.get_call(bo, &a.call).await, "get_call");

    // List: B sees only its own rows.
    let agents = store.list_agents(bo, None, None).await.expect("list");
    assert!(agents.data.iter().all(|x| x.id != a.agent) && agents.data.len() == 1);
    let numbers = store.list_numbers(bo, None, None).await.expect("list");
    assert!(numbers.data.iter().all(|x| x.id != a.number) && numbers.data.len() == 1);
    let contacts = store
        .list_contacts(bo, None, None, None)
        .await
        .expect("list");
    assert!(contacts.data.iter().all(|x| x.id != a.contact) && contacts.data.len() == 1);
    let found = store
        .list_contacts(bo, Some("Alpha"), None, None)
        .await
        .expect("search");
    assert!(found.data.is_empty(), "search cannot find A's contact");
    let convs = store
        .list_conversations(bo, &ConversationFilter::default(), None, None)
        .await
        .expect("list");
    assert!(convs.data.iter().all(|x| x.id != a.conv) && convs.data.len() == 1);
    let by_agent = ConversationFilter {
        agent_id: Some(a.agent.clone()),
        ..Default::default()
    };
    assert!(store
        .list_conversations(bo, &by_agent, None, None)
        .await
        .expect("list")
        .data
        .is_empty());
    let calls = store
        .list_calls(bo, &CallFilter::default(), None, None)
        .await
        .expect("list");
    assert!(calls.data.iter().all(|x| x.id != a.call) && calls.data.len() == 1);
    let keys = store.list_api_keys(bo, None, None).await.expect("list");
    assert!(keys.data.iter().all(|x| x.id != a.key) && keys.data.len() == 1);
    assert!(store
        .list_users(bo)
        .await
        .expect("users")
        .iter()
        .all(|u| u.org_id == *bo));
    assert_eq!(store.count_numbers(bo).await.expect("count"), 1);

    // Update.
    let patch: AgentPatch = serde_json::from_value(json!({"name": "pwned"})).expect("patch");
    assert_not_found(
        store.update_agent(bo, &a.agent, patch).await,
        "update_agent",
    );
    assert_not_found(
        store
            .update_number(
                bo,
                &a.number,
                PhoneNumberPatch {
                    active: Some(false),
                    ..Default::default()
                },
            )
            .await,
        "update_number",
    );
    assert_not_found(
        store
            .update_contact(
                bo,
                &a.contact,
                ContactPatch {
                    opted_out: Some(true),
                    ..Default::default()
                },
            )
            .await,
        "update_contact",
    );
    assert_not_found(store.revoke_api_key(bo, &a.key).await, "revoke_api_key");
    assert_not_found(
        store
            .append_message(bo, text(&a.conv, MessageRole::User, "inject", 2_000))
            .await,
        "append_message",
    );
    let call_in_a = NewCall {
        conversation_id: a.conv.clone(),
        call_sid: "CAffffffffffffffffffffffffffffffff".into(),
        direction: Direction::Inbound,
        from_number: "+1".into(),
        to_number: "+1".into(),
        agent_id: None,
        status: CallStatus::Queued,
        started_at: Timestamp::now(),
    };
    assert_not_found(
        store.create_call(bo, call_in_a).await,
        "create_call into A's conversation",
    );
    // B cannot attach A's agent to its numbers or conversations.
    let r = store
        .create_number(
            bo,
            new_number("+17777770000", NumberChannel::Sms, Some(a.agent.clone())),
        )
        .await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    assert_not_found(
        store
            .create_conversation(bo, new_conv("+1", 1, Channel::Web, Some(a.agent.clone())))
            .await,
        "create_conversation with A's agent",
    );

    // Delete.
    assert_not_found(store.delete_agent(bo, &a.agent).await, "delete_agent");
    assert_not_found(store.delete_number(bo, &a.number).await, "delete_number");
    assert_not_found(store.delete_contact(bo, &a.contact).await, "delete_contact");

    // Settings are per organization.
    store
        .update_settings(
            bo,
            SettingsUpdate {
                session_window_seconds: Some(120),
                ..Default::default()
            },
        )
        .await
        .expect("b settings");
    assert_eq!(
        store
            .get_settings(&a.org)
            .await
            .expect("a")
            .session_window_seconds,
        300
    );

    // A's data is intact.
    let agent = store.get_agent(&a.org, &a.agent).await.expect("A's agent");
    assert_eq!(agent.name, "Alpha");
    assert!(
        store
            .get_number(&a.org, &a.number)
            .await
            .expect("A's number")
            .active
    );
    assert!(
        !store
            .get_contact(&a.org, &a.contact)
            .await
            .expect("A's contact")
            .opted_out
    );
    let msgs = store
        .list_messages(&a.org, &a.conv, None, None)
        .await
        .expect("A's messages");
    assert_eq!(msgs.data.len(), 1);
    assert!(store
        .list_api_keys(&a.org, None, None)
        .await
        .expect("keys")
        .data[0]
        .revoked_at
        .is_none());
});

fn inbound(
    contact: &str,
    key: Option<&str>,
    at: i64,
    body: &str,
) -> switchboard_store::InboundText {
    switchboard_store::InboundText {
        channel: Channel::Sms,
        contact: contact.into(),
        our_number: "+15555550100".into(),
        agent_id: None,
        dedupe_key: key.map(str::to_owned),
        external_id: key.map(str::to_owned),
        content: json!({"text": body}),
        keyword: switchboard_domain::messaging::keyword(body),
        track_contact: true,
        variables: json!({}),
        at: Timestamp::from_millis(at),
        reply: Some(switchboard_store::NewJob {
            kind: "messaging.reply".into(),
            payload: json!({}),
            run_at: Timestamp::from_millis(at),
            lease: None,
            subject: None,
        }),
        reply_cap: None,
    }
}

fn stored(r: switchboard_store::InboundResult) -> Box<switchboard_store::Received> {
    match r {
        switchboard_store::InboundResult::Stored(s) => s,
        other => panic!("expected a stored message, got {other:?}"),
    }
}

backend_test!(text_sessions_dedupe_opt_outs_and_isolation, |db| {
    let store = &db.store;
    let a = store.create_org("Alpha").await.expect("org").id;
    let b = store.create_org("Beta").await.expect("org").id;
    let x = "+15550101001";
    let t0 = 1_800_000_000_000;
    let first = stored(
        store
            .receive_text(&a, &inbound(x, Some("SM1"), t0, "hi"))
            .await
            .expect("first"),
    );
    assert!(
        first.started && first.job.is_none(),
        "no agent: no reply job"
    );
    assert!(matches!(
        store
            .receive_text(&a, &inbound(x, Some("SM1"), t0 + 5, "hi"))
            .await
            .expect("again"),
        switchboard_store::InboundResult::Duplicate { .. }
    ));
    let joined = stored(
        store
            .receive_text(&a, &inbound(x, Some("SM2"), t0 + 299_000, "still here"))
            .await
            .expect("join"),
    );
    assert_eq!(joined.conversation.id, first.conversation.id);
    // Idle past the 5-minute window (measured from the last message).
    let fresh = stored(
        store
            .receive_text(&a, &inbound(x, Some("SM3"), t0 + 299_000 + 300_001, "new"))
            .await
            .expect("new"),
    );
    assert!(fresh.started);
    assert_eq!(
        fresh.closed.as_ref().map(|c| c.id.clone()),
        Some(first.conversation.id.clone())
    );
    assert_eq!(
        store
            .get_conversation(&a, &first.conversation.id)
            .await
            .expect("old")
            .ended_at,
        Some(Timestamp::from_millis(t0 + 299_000 + 300_000))
    );
    // The same MessageSid in another organization is another message.
    let other = stored(
        store
            .receive_text(&b, &inbound(x, Some("SM1"), t0, "hi B"))
            .await
            .expect("b"),
    );
    assert!(other.started);

    // Concurrent first messages from one contact: one conversation.
    let y = "+15550101002";
    let a_ref = &a;
    let burst = (0..6).map(|i| {
        let key = format!("SMY{i}");
        async move {
            store
                .receive_text(a_ref, &inbound(y, Some(&key), t0, "burst"))
                .await
        }
    });
    let results = futures_util::future::join_all(burst).await;
    let convs: std::collections::HashSet<String> = results
        .into_iter()
        .map(|r| stored(r.expect("burst")).conversation.id.to_string())
        .collect();
    assert_eq!(convs.len(), 1);

    // Opt-out keyword: applied in the same transaction, no reply job.
    let stop = stored(
        store
            .receive_text(&a, &inbound(x, Some("SM4"), t0 + 700_000, "STOP"))
            .await
            .expect("stop"),
    );
    assert!(stop.opted_out && !stop.was_opted_out && stop.job.is_none());
    assert!(store.contact_opted_out(&a, x).await.expect("a"));
    assert!(
        !store.contact_opted_out(&b, x).await.expect("b"),
        "opt-out is per organization"
    );

    // Organization B cannot see or change A's messages.
    let msg = &first.message;
    assert!(matches!(
        store.get_message(&b, &msg.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(store
        .recent_messages(&b, &first.conversation.id, 10)
        .await
        .expect("recent")
        .is_empty());
    assert!(matches!(
        store
            .set_delivery(&b, &msg.id, "failed", None, Some("x"))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(store
        .apply_delivery_report(&b, Some(&msg.id), "SM1", "delivered", None)
        .await
        .expect("report")
        .is_none());
    assert!(store
        .last_inbound_at(&b, Channel::Sms, y)
        .await
        .expect("last")
        .is_none());
    assert_eq!(
        store
            .last_inbound_at(&a, Channel::Sms, x)
            .await
            .expect("last"),
        Some(Timestamp::from_millis(t0 + 700_000))
    );
    assert!(
        store
            .close_idle_conversations(&b, Timestamp::from_millis(t0 + 10_000_000))
            .await
            .expect("b")
            .len()
            == 1
    );
    assert_eq!(
        store
            .get_conversation(&a, &fresh.conversation.id)
            .await
            .expect("a")
            .status,
        ConversationStatus::Active
    );
});

backend_test!(jobs_are_claimed_once_and_taken_over_after_the_lease, |db| {
    let store = &db.store;
    let org = store.create_org("Alpha").await.expect("org").id;
    let now = Timestamp::from_millis(1_800_000_000_000);
    let job = |n: i64| switchboard_store::NewJob {
        kind: "test.job".into(),
        payload: json!({"n": n}),
        run_at: now,
        lease: None,
        subject: None,
    };
    for n in 0..20 {
        store
            .enqueue_job(&org, &job(n), now)
            .await
            .expect("enqueue");
    }
    let (w1, w2) = tokio::join!(
        store.claim_jobs("w1", &["test.job"], now, 60_000, 15),
        store.claim_jobs("w2", &["test.job"], now, 60_000, 15)
    );
    let (w1, w2) = (w1.expect("w1"), w2.expect("w2"));
    assert_eq!(w1.len() + w2.len(), 20, "every job claimed exactly once");
    let ids: std::collections::HashSet<&str> =
        w1.iter().chain(&w2).map(|j| j.id.as_str()).collect();
    assert_eq!(ids.len(), 20);
    assert!(store
        .claim_jobs("w3", &["test.job"], now, 60_000, 50)
        .await
        .expect("w3")
        .is_empty());
    // w1's lease expires: w3 takes its jobs over, and w1 can no longer finish them.
    let later = Timestamp::from_millis(now.millis() + 60_001);
    let taken = store
        .claim_jobs("w3", &["test.job"], later, 60_000, 50)
        .await
        .expect("w3");
    assert_eq!(taken.len(), 20);
    let j = &w1[0];
    assert!(!store
        .complete_job(&j.id, "w1", later)
        .await
        .expect("w1 lost it"));
    assert!(store
        .complete_job(&j.id, "w3", later)
        .await
        .expect("w3 owns it"));
    assert_eq!(
        store.job_status(&j.id).await.expect("status").map(|s| s.0),
        Some("done".into())
    );
    // Retry later, release, fail (on jobs other than the completed one).
    let rest: Vec<_> = taken.iter().filter(|t| t.id != j.id).collect();
    let k = rest[0];
    assert!(store
        .retry_job(
            &k.id,
            "w3",
            Timestamp::from_millis(later.millis() + 5_000),
            "boom"
        )
        .await
        .expect("retry"));
    assert!(store
        .claim_jobs("w4", &["test.job"], later, 60_000, 50)
        .await
        .expect("none due")
        .iter()
        .all(|x| x.id != k.id));
    let again = store
        .claim_jobs(
            "w4",
            &["test.job"],
            Timestamp::from_millis(later.millis() + 5_000),
            60_000,
            50,
        )
        .await
        .expect("due");
    assert!(again.iter().any(|x| x.id == k.id && x.attempts == 3));
    assert!(store.release_job(&k.id, "w4").await.expect("release"));
    assert!(store
        .fail_job(&rest[1].id, "w3", "gave up", later)
        .await
        .expect("fail"));
    assert_eq!(
        store
            .job_status(&rest[1].id)
            .await
            .expect("status")
            .map(|s| (s.0, s.2)),
        Some(("failed".into(), Some("gave up".into())))
    );
});

backend_test!(
    outbox_numbers_events_per_organization_and_keeps_them_apart,
    |db| {
        use switchboard_domain::webhooks::{NewWebhookEndpoint, WebhookEndpointUpdate};
        let store = &db.store;
        let a = store.create_org("Outbox A").await.expect("a").id;
        let b = store.create_org("Outbox B").await.expect("b").id;
        let now = Timestamp::now();
        let new_ep = NewWebhookEndpoint {
            url: "https://hooks.example.com/a".into(),
            event_types: Some(vec!["tool.executed".into()]),
            description: None,
            enabled: None,
        };
        let ep = store
            .create_webhook_endpoint(&a, &new_ep, "whsec_c2VjcmV0", now)
            .await
            .expect("endpoint");
        // Three events in A (one delivery each to the interested endpoint), one in B.
        for (org, n) in [(&a, 3), (&b, 1)] {
            for i in 0..n {
                let id = store
                    .start_tool_invocation(
                        org,
                        &switchboard_store::NewToolInvocation {
                            conversation_id: None,
                            call_id: None,
                            external_id: Some(format!("call_{i}")),
                            tool: "lookup_contact".into(),
                            arguments: json!({}),
                            actor: "test".into(),
                            source: "text".into(),
                        },
                    )
                    .await
                    .expect("tool")
                    .expect("first run");
                store
                    .finish_tool_invocation(org, &id, "ok", &json!({"ok": true}))
                    .await
                    .expect("finish");
            }
        }
        let ev_a = store.list_events(&a, None, 100).await.expect("events a");
        let ev_b = store.list_events(&b, None, 100).await.expect("events b");
        assert_eq!(
            ev_a.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(ev_b.iter().map(|e| e.sequence).collect::<Vec<_>>(), vec![1]);
        assert!(ev_a
            .iter()
            .all(|e| e.payload["org_id"] == json!(a) && e.kind == "tool.executed"));
        assert_eq!(
            store
                .list_events(&a, Some(2), 100)
                .await
                .expect("after")
                .len(),
            1
        );
        let filter = switchboard_store::DeliveryFilter::default();
        let dl_a = store
            .list_webhook_deliveries(&a, &filter, None, None)
            .await
            .expect("a");
        assert_eq!(dl_a.data.len(), 3);
        // B reaches none of A's endpoint, deliveries or events.
        assert!(store
            .list_webhook_deliveries(&b, &filter, None, None)
            .await
            .expect("b")
            .data
            .is_empty());
        assert!(matches!(
            store.get_webhook_endpoint(&b, &ep.id).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store
                .update_webhook_endpoint(
                    &b,
                    &ep.id,
                    &WebhookEndpointUpdate {
                        enabled: Some(false),
                        ..Default::default()
                    },
                    now
                )
                .await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store
                .rotate_webhook_secret(&b, &ep.id, "whsec_eA==", now, now)
                .await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.get_webhook_delivery(&b, &dl_a.data[0].id).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store
                .resend_webhook_delivery(&b, &dl_a.data[0].id, now)
                .await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.delete_webhook_endpoint(&b, &ep.id).await,
            Err(StoreError::NotFound)
        ));
        assert!(store
            .list_webhook_endpoints(&b, None, None)
            .await
            .expect("list")
            .data
            .is_empty());
        // The claim loop sees every organization's due deliveries, in order per subject: the
        // three share no conversation (subject = invocation id), so all are claimable at once.
        let now = Timestamp::now();
        let claimed = store
            .claim_webhook_deliveries("w1", now, 60_000, 10, 10)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 3);
        assert!(claimed.iter().all(|c| c.org_id == a));
        assert!(store
            .claim_webhook_deliveries("w2", now, 60_000, 10, 10)
            .await
            .expect("again")
            .is_empty());
        assert_eq!(
            store
                .release_webhook_deliveries("w1", now)
                .await
                .expect("release"),
            3
        );
        // At most `per_endpoint` in flight per endpoint, across workers: the leased ones
        // count against the next claim.
        let first = store
            .claim_webhook_deliveries("w1", now, 60_000, 10, 2)
            .await
            .expect("claim");
        assert_eq!(first.len(), 2);
        let second = store
            .claim_webhook_deliveries("w2", now, 60_000, 10, 2)
            .await
            .expect("claim");
        assert!(second.is_empty(), "the endpoint has 2 in flight");
        let third = store
            .claim_webhook_deliveries("w3", now, 60_000, 10, 3)
            .await
            .expect("claim");
        assert_eq!(third.len(), 1);
        assert!(third.iter().all(|c| first.iter().all(|f| f.id != c.id)));
    }
);

backend_test!(
    dashboard_sessions_and_overview_stay_in_their_organization,
    |db| {
        let store = &db.store;
        let a = store.create_org("A").await.expect("org");
        let b = store.create_org("B").await.expect("org");
        let pw = Secret::new("a long enough password");
        let ua = store
            .create_user(&a.id, "a@a.test", &pw, Role::Admin)
            .await
            .expect("user");
        let now = Timestamp::from_millis(1_800_000_000_000);
        let later = Timestamp::from_millis(now.millis() + 3_600_000);
        store
            .create_dashboard_session(&ua.id, &a.id, "hash-a", "csrf-a", now, later)
            .await
            .expect("session");
        let s = store
            .dashboard_session("hash-a", now)
            .await
            .expect("read")
            .expect("live");
        assert_eq!(
            (s.user.id.clone(), s.org_id.clone()),
            (ua.id.clone(), a.id.clone())
        );
        assert_eq!(
            (s.org_name.as_str(), s.csrf_token.as_str()),
            ("A", "csrf-a")
        );
        assert!(
            store
                .dashboard_session("hash-a", later)
                .await
                .expect("read")
                .is_none(),
            "expired"
        );
        assert!(store
            .dashboard_session("other", now)
            .await
            .expect("read")
            .is_none());
        store
            .switch_dashboard_org("hash-a", &b.id)
            .await
            .expect("switch");
        assert_eq!(
            store
                .dashboard_session("hash-a", now)
                .await
                .expect("read")
                .expect("live")
                .org_id,
            b.id
        );
        assert!(matches!(
            store
                .switch_dashboard_org("hash-a", &OrgId::generate())
                .await,
            Err(StoreError::NotFound)
        ));
        store
            .delete_dashboard_session("hash-a")
            .await
            .expect("delete");
        assert!(store
            .dashboard_session("hash-a", now)
            .await
            .expect("read")
            .is_none());

        // A's calls, messages and opted-out contacts are invisible from B.
        let conv = store
            .create_conversation(
                &a.id,
                new_conv("+15550001111", now.millis(), Channel::Sms, None),
            )
            .await
            .expect("conv");
        store
            .append_message(
                &a.id,
                NewMessage {
                    conversation_id: conv.id.clone(),
                    role: MessageRole::User,
                    kind: MessageKind::Message,
                    content: json!({"text": "hi"}),
                    external_id: None,
                    delivery_status: None,
                    created_at: now,
                },
            )
            .await
            .expect("message");
        store
            .create_contact(
                &a.id,
                NewContact {
                    number: PhoneNumber::parse("+15550001111").expect("e164"),
                    name: None,
                    metadata: None,
                    opted_out: Some(true),
                },
            )
            .await
            .expect("contact");
        let numbers = vec!["+15550001111".to_owned()];
        assert_eq!(
            store
                .opted_out_among(&a.id, &numbers)
                .await
                .expect("a")
                .len(),
            1
        );
        assert!(store
            .opted_out_among(&b.id, &numbers)
            .await
            .expect("b")
            .is_empty());
        let day = Timestamp::from_millis(now.millis() - 1000);
        assert_eq!(store.overview(&a.id, day).await.expect("a").messages, 1);
        assert_eq!(store.overview(&b.id, day).await.expect("b").messages, 0);
        // `call.started` is A's first event; B has none.
        store
            .start_call(
                &a.id,
                new_conv("+15550002222", now.millis(), Channel::Voice, None),
                NewCall {
                    conversation_id: ConversationId::generate(),
                    call_sid: "CA22222222222222222222222222222222".into(),
                    direction: Direction::Inbound,
                    from_number: "+15550002222".into(),
                    to_number: "+15550009999".into(),
                    agent_id: None,
                    status: CallStatus::InProgress,
                    started_at: now,
                },
            )
            .await
            .expect("call");
        assert_eq!(store.last_event_seq(&a.id).await.expect("seq"), 1);
        assert_eq!(store.last_event_seq(&b.id).await.expect("seq"), 0);
        let o = store.overview(&a.id, day).await.expect("a");
        assert_eq!((o.calls, o.active_calls), (1, 1));
        let o = store.overview(&b.id, day).await.expect("b");
        assert_eq!((o.calls, o.active_calls), (0, 0));
    }
);

fn reply_to(conv: &ConversationId, t: &str, at: i64) -> Message {
    Message {
        id: MessageId::generate(),
        conversation_id: conv.clone(),
        role: MessageRole::Assistant,
        kind: MessageKind::Message,
        content: json!({"text": t}),
        external_id: None,
        delivery_status: None,
        delivery_error: None,
        created_at: Timestamp::from_millis(at),
    }
}

// Many write transactions at once (on SQLite they share group commits): each one's writes
// are kept or dropped on its own, events stay gapless, and nothing is reported committed
// that is not.
backend_test!(concurrent_writes_commit_or_fail_on_their_own, |db| {
    let store = &db.store;
    let a = store.create_org("Alpha").await.expect("org").id;
    let b = store.create_org("Beta").await.expect("org").id;
    let t0 = 1_800_000_000_000;
    let home = stored(
        store
            .receive_text(&a, &inbound("+15550102000", Some("SMH"), t0, "hello"))
            .await
            .expect("home"),
    )
    .conversation;
    let theirs = stored(
        store
            .receive_text(&b, &inbound("+15550102000", Some("SMH"), t0, "hello"))
            .await
            .expect("theirs"),
    )
    .conversation;

    #[derive(Debug)]
    enum Done {
        In(Result<switchboard_store::InboundResult, StoreError>),
        Out(&'static str, MessageId, Result<(), StoreError>),
    }
    let (a_ref, home_id, their_id) = (&a, &home.id, &theirs.id);
    let mut work: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = Done> + Send + '_>>> =
        Vec::new();
    for i in 0..60 {
        match i % 6 {
            // A new texter each time, and the same provider message five times over.
            0..=2 => work.push(Box::pin(async move {
                let from = format!("+155501021{i:02}");
                let key = format!("SMC{i}");
                Done::In(
                    store
                        .receive_text(a_ref, &inbound(&from, Some(&key), t0 + i, "hi"))
                        .await,
                )
            })),
            3 => work.push(Box::pin(async move {
                Done::In(
                    store
                        .receive_text(a_ref, &inbound("+15550102999", Some("SMDUP"), t0, "again"))
                        .await,
                )
            })),
            // A reply whose job lease is gone, and one into another organization's thread:
            // both must leave nothing behind.
            4 => work.push(Box::pin(async move {
                let m = reply_to(home_id, "lost lease", t0 + i);
                let id = m.id.clone();
                let r = store
                    .store_outbound(a_ref, home_id, &[m], false, Some(("job_gone", "w", None)))
                    .await;
                Done::Out("lease", id, r)
            })),
            _ => work.push(Box::pin(async move {
                let m = reply_to(their_id, "wrong org", t0 + i);
                let id = m.id.clone();
                let r = store
                    .store_outbound(a_ref, their_id, &[m], false, None)
                    .await;
                Done::Out("foreign", id, r)
            })),
        }
    }
    // And good replies in between.
    for i in 0..10 {
        work.push(Box::pin(async move {
            let m = reply_to(home_id, "fine", t0 + 100 + i);
            let id = m.id.clone();
            let r = store
                .store_outbound(a_ref, home_id, &[m], false, None)
                .await;
            Done::Out("good", id, r)
        }));
    }
    let results = futures_util::future::join_all(work).await;

    let (mut new_texts, mut dup_stored, mut dup_seen, mut good) = (0, 0, 0, Vec::new());
    let mut started = 0;
    for r in results {
        match r {
            Done::In(Ok(switchboard_store::InboundResult::Stored(s))) => {
                if s.message.content["text"] == "again" {
                    dup_stored += 1;
                } else {
                    new_texts += 1;
                }
                started += usize::from(s.started);
            }
            Done::In(Ok(switchboard_store::InboundResult::Duplicate { .. })) => dup_seen += 1,
            Done::In(Err(e)) => panic!("inbound text failed: {e}"),
            Done::Out("lease", id, r) => {
                assert!(
                    matches!(r, Err(StoreError::Conflict(_))),
                    "lost lease: {r:?}"
                );
                assert!(matches!(
                    store.get_message(&a, &id).await,
                    Err(StoreError::NotFound)
                ));
            }
            Done::Out("foreign", id, r) => {
                assert!(
                    matches!(r, Err(StoreError::NotFound)),
                    "foreign thread: {r:?}"
                );
                assert!(matches!(
                    store.get_message(&a, &id).await,
                    Err(StoreError::NotFound)
                ));
                assert!(matches!(
                    store.get_message(&b, &id).await,
                    Err(StoreError::NotFound)
                ));
            }
            Done::Out(_, id, r) => {
                r.expect("good reply");
                good.push(id);
            }
        }
    }
    assert_eq!((new_texts, dup_stored, dup_seen), (30, 1, 9));
    for id in &good {
        store
            .get_message(&a, id)
            .await
            .expect("a committed reply is readable");
    }
    let home_msgs = store
        .list_messages(&a, &home.id, Some(100), None)
        .await
        .expect("home");
    assert_eq!(
        home_msgs.data.len(),
        1 + good.len(),
        "only the good replies joined"
    );

    // Gapless: one event per stored text, per started conversation and per good reply,
    // plus the two from the first message.
    let events = store.list_events(&a, None, 500).await.expect("events");
    let expected = 2 + new_texts + dup_stored + started + good.len();
    assert_eq!(events.len(), expected);
    let seqs: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(
        seqs,
        (1..=i64::try_from(expected).expect("n")).collect::<Vec<_>>()
    );
    assert_eq!(
        store.last_event_seq(&a).await.expect("seq"),
        i64::try_from(expected).expect("n")
    );
});

backend_test!(outbound_calls_are_idempotent_and_stay_in_their_org, |db| {
    use switchboard_store::{DialStart, NewOutboundCall, Placed};
    let store = &db.store;
    let a = store.create_org("A").await.expect("a");
    let b = store.create_org("B").await.expect("b");
    let now = Timestamp::now();
    let new = |key: &str, hash: &str| NewOutboundCall {
        conversation: NewConversation {
            channel: Channel::Voice,
            direction: Direction::Outbound,
            contact_number: "+15557770100".into(),
            our_number: Some("+15550001001".into()),
            agent_id: None,
            variables: json!({"name": "Ada"}),
            started_at: now,
        },
        from_number: "+15550001001".into(),
        to_number: "+15557770100".into(),
        metadata: Some(json!({"crm": 1})),
        dial_at: now,
        idempotency: Some((key.into(), hash.into())),
        voicemail_mode: None,
        record: false,
        campaign: None,
        now,
    };
    let Placed::New(call) = store
        .place_call(&a.id, new("k1", "h1"))
        .await
        .expect("placed")
    else {
        panic!("a new call");
    };
    assert_eq!(call.status, CallStatus::Queued);
    assert_eq!(call.call_sid, "");
    // The same key and body: the same call; another body: a conflict.
    match store
        .place_call(&a.id, new("k1", "h1"))
        .await
        .expect("again")
    {
        Placed::Existing(c) => assert_eq!(c.id, call.id),
        Placed::New(_) => panic!("a second call for the same key"),
    }
    assert!(matches!(
        store.place_call(&a.id, new("k1", "h2")).await,
        Err(StoreError::Conflict(_))
    ));
    // Keys are per organization.
    assert!(matches!(
        store.place_call(&b.id, new("k1", "h9")).await,
        Ok(Placed::New(_))
    ));
    assert_eq!(
        store.find_call_org(&call.id).await.expect("lookup"),
        Some(a.id.clone())
    );
    // B cannot dial, mark or read A's call.
    assert!(matches!(
        store.begin_dial(&b.id, &call.id, now).await.expect("b"),
        DialStart::Done
    ));
    assert_not_found(
        store
            .set_call_dialed(&b.id, &call.id, "CA0001", CallStatus::Queued)
            .await,
        "set_call_dialed",
    );
    store
        .set_call_attempt_codes(&b.id, &call.id, Some(486), Some(1))
        .await
        .expect("no-op");
    assert_not_found(store.get_call(&b.id, &call.id).await, "get_call");
    // A dial starts once; a second start (after a crash) knows the outcome is unknown.
    assert!(matches!(
        store.begin_dial(&a.id, &call.id, now).await.expect("a"),
        DialStart::Dial(_)
    ));
    assert!(matches!(
        store.begin_dial(&a.id, &call.id, now).await.expect("a"),
        DialStart::Unknown(_)
    ));
    assert!(!store
        .set_call_dialed(&a.id, &call.id, "CA0001", CallStatus::Initiated)
        .await
        .expect("dialed"));
    let got = store.get_call(&a.id, &call.id).await.expect("call");
    assert_eq!(got.call_sid, "CA0001");
    assert_eq!(got.sip_response_code, None);
    assert_eq!(got.metadata, Some(json!({"crm": 1})));
    assert!(matches!(
        store.begin_dial(&a.id, &call.id, now).await.expect("a"),
        DialStart::Done
    ));
});

fn custom_tool(name: &str) -> switchboard_domain::custom_tool::CustomTool {
    let input = serde_json::from_value(json!({"name": name, "description": "Looks up orders",
        "url": "https://crm.example.com/t", "headers": {"Authorization": "Bearer k"}}))
    .expect("input");
    switchboard_domain::custom_tool::CustomTool::create(
        input,
        Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        false,
        Timestamp::now(),
    )
    .expect("valid")
}

backend_test!(
    custom_tools_are_scoped_renamed_with_agents_and_guarded,
    |db| {
        let store = &db.store;
        let a = seed_org(store, "Alpha", 1).await;
        let b = seed_org(store, "Beta", 2).await;
        let tool = custom_tool("order_status");
        store
            .create_custom_tool(&a.org, &tool)
            .await
            .expect("create");
        assert!(matches!(
            store
                .create_custom_tool(&a.org, &custom_tool("order_status"))
                .await,
            Err(StoreError::Conflict(_))
        ));
        // Another organization may use the same name, and cannot see or change A's tool.
        store
            .create_custom_tool(&b.org, &custom_tool("order_status"))
            .await
            .expect("same name elsewhere");
        assert!(matches!(
            store.get_custom_tool(&b.org, &tool.id).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.delete_custom_tool(&b.org, &tool.id).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.update_custom_tool(&b.org, &tool.id, Ok).await,
            Err(StoreError::NotFound)
        ));
        let got = store.get_custom_tool(&a.org, &tool.id).await.expect("get");
        assert_eq!(got.headers.0[0].1.expose(), "Bearer k");
        assert_eq!(got.secrets.len(), 1);
        // An agent may list the tool only in its own organization.
        let listed = AgentPatch {
            tools: Some(vec!["end_call".into(), "order_status".into()]),
            ..AgentPatch::default()
        };
        store
            .update_agent(&a.org, &a.agent, listed.clone())
            .await
            .expect("A lists its tool");
        let unknown = AgentPatch {
            tools: Some(vec!["end_call".into(), "no_such_tool".into()]),
            ..AgentPatch::default()
        };
        match store.update_agent(&b.org, &b.agent, unknown).await {
            Err(StoreError::Invalid(e)) => assert_eq!(e.field, "tools[1]"),
            other => panic!("unknown custom tool accepted: {other:?}"),
        }
        // Renaming follows into the agent; deleting is refused while an agent lists it.
        let renamed = store
            .update_custom_tool(&a.org, &tool.id, |mut t| {
                t.name = "order_lookup".into();
                Ok(t)
            })
            .await
            .expect("rename");
        assert_eq!(renamed.name, "order_lookup");
        let agent = store.get_agent(&a.org, &a.agent).await.expect("agent");
        assert_eq!(agent.tools, ["end_call", "order_lookup"]);
        match store.delete_custom_tool(&a.org, &tool.id).await {
            Err(StoreError::Conflict(m)) => assert!(m.contains("Alpha"), "{m}"),
            other => panic!("deleted a tool in use: {other:?}"),
        }
        let off = AgentPatch {
            tools: Some(vec!["end_call".into()]),
            ..AgentPatch::default()
        };
        store
            .update_agent(&a.org, &a.agent, off)
            .await
            .expect("detach");
        // Rotation keeps the previous secret signing until the overlap ends.
        let rotated = store
            .rotate_custom_tool_secret(
                &a.org,
                &tool.id,
                &Secret::new("whsec_new"),
                Timestamp::from_millis(Timestamp::now().millis() + 60_000),
                Timestamp::now(),
            )
            .await
            .expect("rotate");
        let secrets: Vec<&str> = rotated.secrets.iter().map(Secret::expose).collect();
        assert_eq!(
            secrets,
            ["whsec_new", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
        );
        store
            .delete_custom_tool(&a.org, &tool.id)
            .await
            .expect("delete");
        assert!(store
            .list_custom_tools(&a.org)
            .await
            .expect("list")
            .is_empty());
        assert_eq!(
            store.list_custom_tools(&b.org).await.expect("list").len(),
            1
        );
    }
);
