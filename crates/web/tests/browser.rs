//! The dashboard in a real browser: headless Chromium driven over WebDriver against the real
//! server on a fresh SQLite database, with fake Twilio REST and chat-model servers at the
//! network edge. Screenshots of every page go to `target/tmp/dashboard-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/install-browser`, which `.ci/run`
//! calls). Without them the test says it skipped, except under `CI=true`, where it fails.

use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use switchboard_domain::agent::NewAgent;
use switchboard_domain::entities::{NewCall, NewConversation, NewMessage, NewPhoneNumber};
use switchboard_domain::ids::OrgId;
use switchboard_domain::settings::SettingsUpdate;
use switchboard_domain::values::{
    CallStatus, Channel, Direction, MessageKind, MessageRole, NumberChannel, PhoneNumber, Role,
};
use switchboard_domain::{Clock, Secret, Timestamp};
use switchboard_store::testing::TestDb;
use switchboard_store::{CallEnd, Store};
use switchboard_testkit::browser::Browser;
use switchboard_testkit::chat::FakeChatModel;
use switchboard_testkit::twilio::{post_signed, FakeTwilioRest};
use switchboard_web::{Application, WebConfig};

const PUBLIC: &str = "https://dash.example.test";
const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const WAIT: Duration = Duration::from_secs(10);
const ADMIN_PW: &str = "admin password 123";
const MEMBER_PW: &str = "member password 123";

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots")
}

async fn shot(b: &Browser, name: &str) {
    let path = shots().join(format!("{name}.png"));
    b.screenshot(&path).await.expect("screenshot");
}

struct Tenant {
    id: OrgId,
    token: String,
    sms: String,
}

/// A fixed-offset zone where it is now about noon, so "today" on the overview cannot turn over
/// while the test runs (a call stored 95 s ago just after midnight UTC is yesterday's).
fn noon_zone() -> String {
    let utc_hour = Timestamp::now().millis().rem_euclid(86_400_000) / 3_600_000;
    // Etc/GMT-N is N hours *east* of UTC (POSIX sign convention).
    match 12 - utc_hour {
        0 => "Etc/UTC".into(),
        east if east > 0 => format!("Etc/GMT-{east}"),
        west => format!("Etc/GMT+{}", -west),
    }
}

async fn tenant(store: &Store, name: &str, sms: &str, users: &[(&str, &str, Role)]) -> Tenant {
    let org = store.create_org(name).await.expect("org");
    let token = format!("token-{}", name.replace(' ', "-"));
    store
        .update_settings(
            &org.id,
            SettingsUpdate {
                twilio_account_sid: Some(ACCOUNT.into()),
                twilio_auth_token: Some(Secret::new(&token)),
                timezone: Some(noon_zone()),
                ..SettingsUpdate::default()
            },
        )
        .await
        .expect("settings");
    let agent: NewAgent =
        serde_json::from_value(json!({"name": "Texter", "instructions": "You text customers."}))
            .expect("agent");
    let agent = store.create_agent(&org.id, agent).await.expect("agent");
    store
        .create_number(
            &org.id,
            NewPhoneNumber {
                number: PhoneNumber::parse(sms).expect("e164"),
                channel: NumberChannel::Sms,
                agent_id: Some(agent.id.clone()),
                active: None,
            },
        )
        .await
        .expect("number");
    for (email, pw, role) in users {
        store
            .create_user(&org.id, email, &Secret::new(*pw), *role)
            .await
            .expect("user");
    }
    Tenant {
        id: org.id,
        token,
        sms: sms.into(),
    }
}

/// A call that happened: transcript with a tool call and an interruption, latencies,
/// finalization and analysis, through the same store paths the voice session uses.
async fn finished_call(store: &Store, org: &OrgId, from: &str, to: &str) -> String {
    let now = Timestamp::now();
    let call = store
        .start_call(
            org,
            NewConversation {
                channel: Channel::Voice,
                direction: Direction::Inbound,
                contact_number: from.into(),
                our_number: Some(to.into()),
                agent_id: None,
                variables: json!({}),
                started_at: Timestamp::from_millis(now.millis() - 95_000),
            },
            NewCall {
                conversation_id: switchboard_domain::ids::ConversationId::generate(),
                call_sid: format!("CA{}", switchboard_domain::ids::random_token(32)),
                direction: Direction::Inbound,
                from_number: from.into(),
                to_number: to.into(),
                agent_id: None,
                status: CallStatus::InProgress,
                started_at: Timestamp::from_millis(now.millis() - 95_000),
            },
        )
        .await
        .expect("call");
    let items = [
        (
            MessageRole::Assistant,
            MessageKind::Message,
            json!({"text": "Hi, Acme Dental, how can I help?"}),
        ),
        (
            MessageRole::User,
            MessageKind::Message,
            json!({"text": "I need to move my cleaning to Friday."}),
        ),
        (
            MessageRole::Assistant,
            MessageKind::FunctionCall,
            json!({"name": "check_availability", "arguments": "{\"date\":\"2026-11-27\"}", "call_id": "call_1"}),
        ),
        (
            MessageRole::Tool,
            MessageKind::FunctionOutput,
            json!({"call_id": "call_1", "output": "{\"slots\":[\"10:00\",\"14:30\"]}"}),
        ),
        (
            MessageRole::Assistant,
            MessageKind::Message,
            json!({"text": "Friday at ten", "generated_text": "Friday at ten or half past two works.", "interrupted": true, "audio_end_ms": 900}),
        ),
        (
            MessageRole::User,
            MessageKind::Message,
            json!({"text": "Ten is perfect."}),
        ),
    ];
    // Its tool execution, as the registry audits it.
    let run = store
        .start_tool_invocation(
            org,
            &switchboard_store::NewToolInvocation {
                conversation_id: Some(call.conversation_id.clone()),
                call_id: Some(call.id.clone()),
                external_id: Some("call_1".into()),
                tool: "check_availability".into(),
                arguments: json!({"date": "2026-11-27"}),
                actor: "agent:agt_test".into(),
                source: "call".into(),
            },
        )
        .await
        .expect("audit")
        .expect("first run");
    store
        .finish_tool_invocation(
            org,
            &run,
            "ok",
            &json!({"ok": true, "slots": ["10:00", "14:30"]}),
        )
        .await
        .expect("audit end");
    for (role, kind, content) in items {
        store
            .append_message(
                org,
                NewMessage {
                    conversation_id: call.conversation_id.clone(),
                    role,
                    kind,
                    content,
                    external_id: None,
                    delivery_status: None,
                    created_at: Timestamp::now(),
                },
            )
            .await
            .expect("item");
    }
    store
        .set_call_latencies(org, &call.id, &[640, 710, 820])
        .await
        .expect("latency");
    store
        .finalize_call(
            org,
            &call.id,
            &CallEnd {
                reason: switchboard_domain::call::EndReason::CallerHungUp,
                error: None,
                at: Timestamp::now(),
            },
        )
        .await
        .expect("finalize");
    let analysis = json!({"summary": "The caller moved a cleaning to Friday at 10:00.", "intent": "reschedule",
        "outcome": {"success": true, "reason": "booked"}, "sentiment": "positive", "fields": {"new_day": "Friday"}});
    store
        .store_call_analysis(org, &call.id, &analysis, Timestamp::now())
        .await
        .expect("analysis");
    call.id.to_string()
}

async fn sign_in(b: &Browser, base: &str, email: &str, password: &str) {
    b.goto(&format!("{base}/login")).await.expect("login page");
    b.fill("#email", email).await.expect("email");
    b.fill("#password", password).await.expect("password");
    b.click_css("form.login button").await.expect("submit");
    b.wait_for("#sign-out", WAIT).await.expect("signed in");
}

async fn wait_live(b: &Browser) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let v = b
            .execute("return document.body.dataset.liveConnected || ''", vec![])
            .await
            .expect("script");
        if v == "1" {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the live stream never connected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_real_browser() {
    let Some(b) = Browser::start().await.expect("browser") else {
        return;
    };
    let db = TestDb::sqlite().await.expect("db");
    let store = &db.store;
    let model = FakeChatModel::start().await;
    let rest = FakeTwilioRest::start().await;
    let a = tenant(
        store,
        "Acme Dental",
        "+15555550100",
        &[
            ("admin@acme.test", ADMIN_PW, Role::Admin),
            ("member@acme.test", MEMBER_PW, Role::Member),
        ],
    )
    .await;
    let other = tenant(store, "Other Co", "+15555550200", &[]).await;
    let other_call = finished_call(store, &other.id, "+15555559999", "+15555550200").await;

    let mut config = WebConfig {
        public_url: Some(PUBLIC.into()),
        twilio_api_url: rest.url.clone(),
        clock: Clock::system(),
        ..WebConfig::default()
    };
    config.llm.base_url = model.url.clone();
    config.llm.api_key = Some(Secret::new("sk-test"));
    // The analysis below is stored by the test; the analysis job must not replace it.
    config.jobs.poll_interval = None;
    let app = Application::build(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        store.clone(),
        &config,
    )
    .await
    .expect("bind");
    let base = format!("http://{}", app.local_addr().expect("addr"));
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(app.run_until_stopped(
        async move {
            let _ = rx.await;
        },
        Duration::from_secs(5),
    ));

    // ---- sign-in: a page asks for it, a wrong password is refused beside the form ----
    b.goto(&format!("{base}/calls")).await.expect("goto");
    b.wait_for("form.login", WAIT)
        .await
        .expect("redirected to sign-in");
    assert!(b.url().await.expect("url").contains("/login?next=%2Fcalls"));
    b.fill("#email", "admin@acme.test").await.expect("email");
    b.fill("#password", "not the password").await.expect("pw");
    b.click_css("form.login button").await.expect("submit");
    b.wait_text("#login-error", "wrong", WAIT)
        .await
        .expect("refused");
    shot(&b, "01-login").await;
    b.fill("#password", ADMIN_PW).await.expect("pw");
    b.click_css("form.login button").await.expect("submit");
    b.wait_for("#calls", WAIT)
        .await
        .expect("back on /calls after sign-in");
    assert_eq!(b.text_of("#role").await.expect("role"), "admin");

    // ---- agents: bad input is shown beside its field and nothing is saved ----
    b.goto(&format!("{base}/agents/new")).await.expect("goto");
    b.fill("#name", "Reception").await.expect("name");
    b.fill("#instructions", "You answer calls for Acme Dental.")
        .await
        .expect("instr");
    b.fill("#temperature", "warm").await.expect("temp");
    b.fill("#transfer_number", "12").await.expect("transfer");
    b.click_css("#save").await.expect("save");
    b.wait_text("[data-field=temperature] .field-error", "number", WAIT)
        .await
        .expect("temperature error beside the field");
    let t = b
        .text_of("[data-field=transfer_number] .field-error")
        .await
        .expect("transfer error");
    assert!(!t.is_empty());
    shot(&b, "02-agent-form-errors").await;
    let agents = store.list_agents(&a.id, None, None).await.expect("agents");
    assert_eq!(agents.data.len(), 1, "nothing half-saved");
    // A domain rule (transfer_call needs a transfer number) is shown beside its field too.
    b.fill("#temperature", "0.6").await.expect("temp");
    b.fill("#transfer_number", "").await.expect("transfer");
    b.click_css("#tools input[value=transfer_call]")
        .await
        .expect("tool");
    b.click_css("#save").await.expect("save");
    b.wait_text(
        "[data-field=transfer_number] .field-error",
        "transfer_call",
        WAIT,
    )
    .await
    .expect("rule error");
    assert_eq!(
        b.execute(
            "return document.getElementById('instructions').value",
            vec![]
        )
        .await
        .expect("kept"),
        "You answer calls for Acme Dental.",
        "what was typed is kept"
    );
    b.fill("#transfer_number", "+15555550111")
        .await
        .expect("transfer");
    b.click_css("#save").await.expect("save");
    b.wait_text(".flash", "Agent created", WAIT)
        .await
        .expect("created");
    let agents = store.list_agents(&a.id, None, None).await.expect("agents");
    let created = agents
        .data
        .iter()
        .find(|x| x.name == "Reception")
        .expect("saved");
    assert_eq!(created.temperature, Some(0.6));
    assert_eq!(created.tools, vec!["transfer_call".to_owned()]);

    // ---- "Try it": the test chat channel through the fake chat model ----
    b.fill("#try-input", "What are your hours?")
        .await
        .expect("try");
    b.click_css("#try-form button").await.expect("send");
    b.wait_text("#try-log", "Reply to: What are your hours?", WAIT)
        .await
        .expect("agent answered in the panel");
    shot(&b, "03-agent-edit-try-it").await;

    // ---- conversations: an inbound SMS appears live in the open thread ----
    let http = reqwest::Client::new();
    let sms = |sid: &'static str, body: &'static str| {
        let http = http.clone();
        let base = base.clone();
        let token = a.token.clone();
        let to = a.sms.clone();
        async move {
            let res = post_signed(
                &http,
                &base,
                PUBLIC,
                "/twilio/messaging",
                &token,
                &[
                    ("MessageSid", sid),
                    ("AccountSid", ACCOUNT),
                    ("From", "+15555557777"),
                    ("To", to.as_str()),
                    ("Body", body),
                    ("NumMedia", "0"),
                ],
            )
            .await;
            assert_eq!(res.status().as_u16(), 200);
        }
    };
    sms(
        "SM00000000000000000000000000000001",
        "Hi, is my crown ready?",
    )
    .await;
    b.goto(&format!("{base}/conversations"))
        .await
        .expect("goto");
    b.wait_text("#conversations", "+15555557777", WAIT)
        .await
        .expect("listed");
    shot(&b, "04-conversations").await;
    b.click_css("#conversations tbody a")
        .await
        .expect("open thread");
    b.wait_for("#transcript", WAIT).await.expect("thread");
    wait_live(&b).await;
    b.execute("window.__sameDocument = 42; return 1", vec![])
        .await
        .expect("mark");
    sms(
        "SM00000000000000000000000000000002",
        "Also, can I pay by card?",
    )
    .await;
    b.wait_text("#transcript", "Also, can I pay by card?", WAIT)
        .await
        .expect("the new SMS appeared without a reload");
    b.wait_text(
        "#transcript",
        "Reply to: Also, can I pay by card?",
        Duration::from_secs(20),
    )
    .await
    .expect("the agent's reply appeared too");
    let same = b
        .execute("return window.__sameDocument || 0", vec![])
        .await
        .expect("mark");
    assert_eq!(same, 42, "the page was not reloaded");
    // Staff can write into the live conversation.
    b.fill("#text", "A person here: yes, cards are fine.")
        .await
        .expect("reply");
    b.click_css("#reply button").await.expect("send");
    b.wait_text("#transcript", "A person here", WAIT)
        .await
        .expect("sent");
    assert!(rest.messages().iter().any(|m| m
        .form
        .iter()
        .any(|(k, v)| k == "Body" && v.contains("A person here"))));
    shot(&b, "05-conversation-live").await;
    b.resize(390, 844).await.expect("phone");
    shot(&b, "06-conversation-phone").await;
    b.resize(1280, 900).await.expect("laptop");

    // ---- calls: a call in progress appears live, then finishes ----
    b.goto(&format!("{base}/calls")).await.expect("goto");
    wait_live(&b).await;
    let live = store
        .start_call(
            &a.id,
            NewConversation {
                channel: Channel::Voice,
                direction: Direction::Inbound,
                contact_number: "+15555554444".into(),
                our_number: Some("+15555550100".into()),
                agent_id: None,
                variables: json!({}),
                started_at: Timestamp::now(),
            },
            NewCall {
                conversation_id: switchboard_domain::ids::ConversationId::generate(),
                call_sid: "CA11111111111111111111111111111111".into(),
                direction: Direction::Inbound,
                from_number: "+15555554444".into(),
                to_number: "+15555550100".into(),
                agent_id: None,
                status: CallStatus::InProgress,
                started_at: Timestamp::now(),
            },
        )
        .await
        .expect("live call");
    let started = std::time::Instant::now();
    b.wait_text("#calls tbody", "+15555554444", WAIT)
        .await
        .expect("live call listed");
    let seen_after = started.elapsed();
    b.wait_text("#calls tr.is-live", "in-progress", WAIT)
        .await
        .expect("in progress");
    assert!(
        b.find("#calls tr.is-live .timer").await.is_ok(),
        "running timer"
    );
    shot(&b, "07-calls-live").await;
    println!("live call appeared in the list {seen_after:?} after it started");
    store
        .finalize_call(
            &a.id,
            &live.id,
            &CallEnd {
                reason: switchboard_domain::call::EndReason::CallerHungUp,
                error: None,
                at: Timestamp::now(),
            },
        )
        .await
        .expect("end");
    b.wait_text(
        &format!("#calls tr[data-call={}]", live.id),
        "completed",
        WAIT,
    )
    .await
    .expect("moved to finished");

    // ---- a finished call: transcript, tool call, interruption, analysis, latency ----
    let call = finished_call(store, &a.id, "+15555553333", "+15555550100").await;
    b.goto(&format!("{base}/calls/{call}")).await.expect("goto");
    b.wait_text("#transcript", "move my cleaning to Friday", WAIT)
        .await
        .expect("transcript");
    let transcript = b.text_of("#transcript").await.expect("text");
    assert!(transcript.contains("check_availability"), "{transcript}");
    assert!(
        transcript.contains("14:30"),
        "tool result shown: {transcript}"
    );
    assert!(transcript.contains("interrupted"), "{transcript}");
    b.wait_text("#summary", "moved a cleaning to Friday", WAIT)
        .await
        .expect("analysis");
    assert!(b.text_of("#analysis").await.expect("a").contains("Friday"));
    assert!(b
        .text_of("#latency")
        .await
        .expect("l")
        .contains("p50 710 ms"));
    b.wait_text("#call-tools", "check_availability", WAIT)
        .await
        .expect("the call's tool executions");
    shot(&b, "08-call-detail").await;

    // ---- tool activity: this organization's executions only, filterable ----
    b.goto(&format!("{base}/tools")).await.expect("goto");
    b.wait_text("#tool-invocations", "check_availability", WAIT)
        .await
        .expect("tool activity");
    let rows = b
        .find_all("#tool-invocations tbody tr")
        .await
        .expect("rows");
    assert_eq!(
        rows.len(),
        1,
        "the other organization's execution is not shown"
    );
    b.goto(&format!("{base}/tools?status=error"))
        .await
        .expect("goto");
    b.wait_text("#tool-invocations", "No tool executions", WAIT)
        .await
        .expect("filtered");
    shot(&b, "17-tool-activity").await;

    // ---- the other pages ----
    b.goto(&format!("{base}/")).await.expect("goto");
    b.wait_for("#stat-calls", WAIT).await.expect("overview");
    let calls_today = b.text_of("#stat-calls .n").await.expect("n");
    assert_eq!(calls_today, "2", "two calls in this organization today");
    assert!(b
        .text_of("#stat-success")
        .await
        .expect("s")
        .contains("100%"));
    shot(&b, "09-overview").await;
    b.goto(&format!("{base}/api-keys")).await.expect("goto");
    b.fill("#key-name", "CRM sync").await.expect("name");
    b.click_css("#new-key-form button").await.expect("create");
    let key = b
        .wait_text("#new-key-value", "sk_", WAIT)
        .await
        .expect("shown once");
    assert!(key.trim().starts_with("sk_"));
    shot(&b, "10-api-keys").await;
    b.goto(&format!("{base}/api-keys")).await.expect("goto");
    assert!(
        b.find("#new-key-value").await.is_err(),
        "the key is shown only once"
    );
    for (path, name) in [
        ("/phone-numbers", "11-phone-numbers"),
        ("/contacts", "12-contacts"),
        ("/webhooks", "13-webhooks"),
        ("/settings", "14-settings"),
        ("/agents", "15-agents"),
    ] {
        b.goto(&format!("{base}{path}")).await.expect("goto");
        b.wait_for("#main h1", WAIT).await.expect("page");
        shot(&b, name).await;
    }
    // Settings: a bad value is shown beside its field; nothing is saved.
    b.goto(&format!("{base}/settings")).await.expect("goto");
    b.fill("#session_window_seconds", "ten")
        .await
        .expect("window");
    b.click_css("#save-settings").await.expect("save");
    b.wait_text(
        "[data-field=session_window_seconds] .field-error",
        "whole number",
        WAIT,
    )
    .await
    .expect("settings error");

    // ---- organization A cannot open B's call by URL ----
    b.goto(&format!("{base}/calls/{other_call}"))
        .await
        .expect("goto");
    b.wait_text("h1", "Not found", WAIT)
        .await
        .expect("another organization's call is not found");
    assert!(!b
        .text_of("body")
        .await
        .expect("body")
        .contains("+15555559999"));

    // ---- a member reads but cannot reach admin actions ----
    b.goto(&format!("{base}/")).await.expect("goto");
    b.click_css("#sign-out").await.expect("sign out");
    b.wait_for("form.login", WAIT).await.expect("signed out");
    sign_in(&b, &base, "member@acme.test", MEMBER_PW).await;
    assert_eq!(b.text_of("#role").await.expect("role"), "member");
    b.goto(&format!("{base}/agents")).await.expect("goto");
    b.wait_for("#agents", WAIT).await.expect("agents readable");
    assert!(
        b.find("#new-agent").await.is_err(),
        "no create button for members"
    );
    b.goto(&format!("{base}/agents/new")).await.expect("goto");
    b.wait_text("h1", "Not allowed", WAIT)
        .await
        .expect("admin page refused");
    shot(&b, "16-member-refused").await;
    b.goto(&format!("{base}/api-keys")).await.expect("goto");
    assert!(b.find("#new-key-form").await.is_err());
    // Posting the form anyway (with a valid CSRF token) is refused and creates nothing.
    let status = b
        .execute(
            "return fetch('/api-keys', {method: 'POST', headers: {'content-type': 'application/x-www-form-urlencoded'}, \
             body: '_csrf=' + encodeURIComponent(document.body.dataset.csrf) + '&name=sneaky'}).then(r => r.status)",
            vec![],
        )
        .await
        .expect("post");
    assert_eq!(status, 403);
    let keys = store.list_api_keys(&a.id, None, None).await.expect("keys");
    assert!(keys.data.iter().all(|k| k.name != "sneaky"));
    b.goto(&format!("{base}/calls/{other_call}"))
        .await
        .expect("goto");
    b.wait_text("h1", "Not found", WAIT)
        .await
        .expect("not B's call either");

    b.quit().await;
    let _ = stop.send(());
    served.await.expect("join").expect("served");
    println!("screenshots in {}", shots().display());
}
