//! The assistant page over plain HTTP, on both backends: a message is answered as a stream
//! of events (tools as they run, the proposal, the reply); a member is offered only the read
//! tools and any change they ask for is refused; one admin's proposal cannot be confirmed by
//! another admin's button.

mod dash_client;

use dash_client::*;
use reqwest::header::{CONTENT_TYPE, COOKIE};
use serde_json::{json, Value};
use switchboard_domain::values::Role;
use switchboard_domain::Secret;
use switchboard_store::backend_test;
use switchboard_testkit::chat::{ChatStep, FakeChatModel};

const PW: &str = "a long enough password";

/// Posts a message from the page; answers the events.
async fn say(c: &Client, csrf: &str, session: &str, message: &str) -> Vec<Value> {
    let res = c
        .http
        .post(format!("{}/assistant/message", c.base))
        .header(COOKIE, &c.cookie)
        .header(CONTENT_TYPE, "application/json")
        .header("x-csrf-token", csrf)
        .body(json!({"session_id": session, "message": message}).to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    res.text()
        .await
        .expect("body")
        .lines()
        .map(|l| serde_json::from_str(l).expect("an event per line"))
        .collect()
}

backend_test!(members_only_read_and_admins_decide_their_own, |db| {
    let chat = FakeChatModel::start().await;
    let url = chat.url.clone();
    let (base, _stop) = serve_with(db, |c| {
        c.llm.base_url = url;
        c.llm.api_key = Some(Secret::new("sk-test-chat-key"));
    })
    .await;
    let org = org_with_users(
        db,
        "Alpha",
        &[
            ("ann@alpha.test", Role::Admin),
            ("bob@alpha.test", Role::Admin),
            ("max@alpha.test", Role::Member),
        ],
    )
    .await;
    let agent = db
        .store
        .create_agent(
            &org,
            serde_json::from_value(json!({"name": "Desk", "instructions": "Help."}))
                .expect("agent"),
        )
        .await
        .expect("agent");

    // A member: only read tools are offered; a change asked for anyway is refused.
    let mut max = Client::new(&base);
    assert_eq!(max.sign_in("max@alpha.test", PW).await, 303);
    let (status, page) = max.get("/assistant").await;
    assert_eq!(status, 200);
    assert!(page.contains("As a member you can ask questions"));
    let csrf = csrf_of(&page);
    chat.script([
        ChatStep::Tools(vec![(
            "update_agent".into(),
            json!({"agent_id": agent.id, "instructions": "Hacked."}),
        )]),
        ChatStep::Text("I cannot do that.".into()),
    ]);
    let events = say(&max, &csrf, "m1", "Change the instructions").await;
    let offered = chat.requests()[0]["tools"].to_string();
    assert!(
        offered.contains("list_calls") && offered.contains("activity_summary"),
        "{offered}"
    );
    assert!(
        !offered.contains("update_agent") && !offered.contains("confirm_action"),
        "{offered}"
    );
    let finished = events
        .iter()
        .find(|e| e["type"] == "tool_finished")
        .expect("tool event");
    assert_eq!(
        finished["output"]["error"]["code"], "read_only",
        "{events:?}"
    );
    assert!(events.iter().all(|e| e["type"] != "action"));
    assert_eq!(events.last().expect("last")["type"], "done");
    assert_eq!(
        db.store
            .get_agent(&org, &agent.id)
            .await
            .expect("agent")
            .instructions,
        "Help."
    );

    // Ann proposes; the events show the tool starting, finishing, the proposal, the reply.
    let mut ann = Client::new(&base);
    assert_eq!(ann.sign_in("ann@alpha.test", PW).await, 303);
    let csrf_ann = ann.csrf().await;
    chat.script([
        ChatStep::Tools(vec![(
            "update_agent".into(),
            json!({"agent_id": agent.id, "instructions": "Help kindly."}),
        )]),
        ChatStep::Text("Confirm?".into()),
    ]);
    let events = say(&ann, &csrf_ann, "a1", "Be kind").await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        kinds,
        ["tool_started", "tool_finished", "action", "done"],
        "{events:?}"
    );
    let id = events[2]["id"].as_str().expect("id").to_owned();
    // Bob, another admin, cannot confirm it; Ann can, once.
    let mut bob = Client::new(&base);
    assert_eq!(bob.sign_in("bob@alpha.test", PW).await, 303);
    let csrf_bob = bob.csrf().await;
    let (status, location, _) = bob
        .post(
            &format!("/assistant/actions/{id}/confirm"),
            &[("_csrf", &csrf_bob), ("session", "a1")],
            &[],
        )
        .await;
    assert_eq!(status, 303);
    assert!(
        location.contains("someone%20else") || location.contains("someone+else"),
        "{location}"
    );
    assert_eq!(
        db.store
            .get_agent(&org, &agent.id)
            .await
            .expect("agent")
            .instructions,
        "Help."
    );
    let (status, location, _) = ann
        .post(
            &format!("/assistant/actions/{id}/confirm"),
            &[("_csrf", &csrf_ann), ("session", "a1")],
            &[],
        )
        .await;
    assert_eq!(status, 303);
    assert!(
        location.starts_with("/assistant?session=a1&flash=Done"),
        "{location}"
    );
    assert_eq!(
        db.store
            .get_agent(&org, &agent.id)
            .await
            .expect("agent")
            .instructions,
        "Help kindly."
    );
    let (_, page) = ann.get("/assistant?session=a1").await;
    assert!(
        page.contains("data-status=\"done\""),
        "the card shows it done"
    );
    assert!(page.contains("Be kind"), "the conversation is kept");
    // Without the CSRF token nothing is decided.
    let (status, _, _) = ann
        .post(
            &format!("/assistant/actions/{id}/cancel"),
            &[("session", "a1")],
            &[],
        )
        .await;
    assert_eq!(status, 400);
});
