//! Retell as a front end, on both backends, against a scripted Retell (its custom-LLM
//! socket, its signed webhooks, its `get-call` look-up) and a fake chat model that streams:
//! the greeting, a turn with a tool, a reminder, an interruption that drops the stale
//! answer's stream, a reconnect without a second greeting, `end_call`; then the webhooks
//! land the call with its transcript (each utterance once), recording link and analyses,
//! in the organization whose agent is connected to the Retell agent and nowhere else. And
//! the refusals: bad or stale signatures, unknown agents, an organization without a key,
//! sockets for calls Retell does not know or that name another call.

mod voice_env;

use switchboard_testkit::chat::{ChatStep, FakeChatModel};
use switchboard_testkit::retell::{
    call_object, post_signed, post_webhook, utterances, FakeRetellApi, RetellSocket,
};
use voice_env::*;

const GREETING: &str = "Hi, this is Alpha. How can I help?";

struct Retell<'a> {
    env: Env<'a>,
    chat: FakeChatModel,
    api: FakeRetellApi,
    alpha: Org,
    beta: Org,
    ka: String,
    kb: String,
}

/// Two organizations, each with its agent connected to a Retell agent and its Retell key
/// set, through the API.
async fn setup(db: &TestDb) -> Retell<'_> {
    let chat = FakeChatModel::start().await;
    let api = FakeRetellApi::start().await;
    let (chat_url, api_url) = (chat.url.clone(), api.url.clone());
    let env = env_with(db, Behavior::default(), |c| {
        c.llm.base_url = chat_url;
        c.llm.api_key = Some(Secret::new("sk-test-chat-key"));
        c.llm.model = "fake-chat-1".into();
        c.retell_api_url = api_url;
    })
    .await;
    let alpha = env
        .org(
            "Alpha",
            "+15550001001",
            &["book_appointment", "end_call"],
            Some(GREETING),
        )
        .await;
    let beta = env.org("Beta", "+15550002002", &[], None).await;
    let (ka, kb) = (env.key(&alpha).await, env.key(&beta).await);
    api.add_key("key_alpha");
    api.add_key("key_beta");
    // A key Retell refuses is refused before it is saved.
    let (s, e) = env
        .call_api(
            reqwest::Method::PUT,
            &ka,
            "/api/v1/settings",
            Some(json!({"retell_api_key": "key_typo"})),
        )
        .await;
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (422, Some("retell_api_key")),
        "{e}"
    );
    for (org, key, retell_key, retell_agent) in [
        (&alpha, &ka, "key_alpha", "agent_alpha"),
        (&beta, &kb, "key_beta", "agent_beta"),
    ] {
        let (s, settings) = env
            .call_api(
                reqwest::Method::PUT,
                key,
                "/api/v1/settings",
                Some(json!({"retell_api_key": retell_key})),
            )
            .await;
        assert_eq!(s, 200, "{settings}");
        assert_eq!(settings["retell_api_key_set"], true);
        assert!(
            !settings.to_string().contains(retell_key),
            "the key is write-only"
        );
        let (s, agent) = env
            .call_api(
                reqwest::Method::PATCH,
                key,
                &format!("/api/v1/agents/{}", org.agent),
                Some(json!({"retell_agent_id": retell_agent})),
            )
            .await;
        assert_eq!(s, 200, "{agent}");
        assert_eq!(agent["retell_agent_id"], retell_agent);
    }
    Retell {
        env,
        chat,
        api,
        alpha,
        beta,
        ka,
        kb,
    }
}

/// The organization's calls through the API (`key`), newest first.
async fn calls(env: &Env<'_>, key: &str) -> Value {
    env.call_api(reqwest::Method::GET, key, "/api/v1/calls", None)
        .await
        .1
}

/// Opens a socket for a call Retell knows under `key`, through the handshake.
async fn dial(
    r: &Retell<'_>,
    call_id: &str,
    key: &str,
    agent: &str,
    to: &str,
) -> (RetellSocket, Value) {
    let call = call_object(call_id, agent, "+15557770001", to);
    r.api.add_call(key, &call);
    let mut s = RetellSocket::connect(&r.env.ws, call_id).await;
    let config = s.frame().await;
    assert_eq!(config["response_type"], "config", "{config}");
    assert_eq!(config["config"]["auto_reconnect"], true);
    assert_eq!(config["config"]["call_details"], true);
    s.call_details(&call).await;
    (s, call)
}

backend_test!(
    a_retell_call_is_answered_with_the_agent_and_its_tools,
    |db| {
        let mut r = setup(db).await;
        let slot = next_monday_10();
        let (mut s, _) = dial(&r, "call_a1", "key_alpha", "agent_alpha", "+15550001001").await;

        // The begin message is the agent's greeting, complete.
        let begin = s.answer(0).await;
        assert_eq!(begin.text(), GREETING);
        assert!(begin.last.get("end_call").is_none());

        // Keepalive is answered with the same timestamp.
        s.send(json!({"interaction_type": "ping_pong", "timestamp": 1_764_579_600_123_i64}))
            .await;
        let pong = s.frame().await;
        assert_eq!(
            pong,
            json!({"response_type": "ping_pong", "timestamp": 1_764_579_600_123_i64})
        );

        // A turn with a tool: shown to Retell, run inside Alpha, then the words, streamed.
        r.chat.script([
            ChatStep::Tools(vec![(
                "book_appointment".into(),
                json!({"start": slot, "name": "Dana"}),
            )]),
            ChatStep::Text("You're booked for Monday at ten.".into()),
        ]);
        let mut said = vec![
            ("agent", GREETING),
            ("user", "Can I come Monday at ten? I'm Dana."),
        ];
        s.request(1, false, &said).await;
        let one = s.answer(1).await;
        assert_eq!(one.text(), "You're booked for Monday at ten.");
        assert!(one.pieces.len() > 1, "streamed in pieces: {:?}", one.pieces);
        assert_eq!(one.tools.len(), 2, "{:?}", one.tools);
        assert_eq!(one.tools[0]["response_type"], "tool_call_invocation");
        assert_eq!(one.tools[0]["name"], "book_appointment");
        assert_eq!(one.tools[1]["response_type"], "tool_call_result");
        assert_eq!(one.tools[1]["successful"], true, "{}", one.tools[1]);
        assert_eq!(one.tools[0]["tool_call_id"], one.tools[1]["tool_call_id"]);
        let asked = r.chat.requests();
        let first = &asked[asked.len() - 2];
        assert_eq!(first["stream"], true);
        assert!(first["messages"][0]["content"]
            .as_str()
            .expect("system")
            .contains("You answer the phone for Alpha"));
        assert!(
            first.to_string().contains("Can I come Monday at ten?"),
            "{first}"
        );
        let (_, booked) = r
            .env
            .call_api(reqwest::Method::GET, &r.ka, "/api/v1/appointments", None)
            .await;
        assert_eq!(booked["data"].as_array().map(Vec::len), Some(1), "{booked}");
        let (_, none) = r
            .env
            .call_api(reqwest::Method::GET, &r.kb, "/api/v1/appointments", None)
            .await;
        assert_eq!(
            none["data"].as_array().map(Vec::len),
            Some(0),
            "nothing reached Beta"
        );

        // An interruption: the caller speaks while the answer is still being written. The
        // stale answer's stream is dropped and the new request is answered.
        said.push(("agent", "You're booked for Monday at ten."));
        said.push(("user", "What else do you offer?"));
        r.chat.script([ChatStep::Stalled(
            "We offer cuts, colour and styling for the whole family.".into(),
        )]);
        s.request(2, false, &said).await;
        eventually("the answer to wait after its first word", WAIT, || async {
            (r.chat.stalled() == 1).then_some(())
        })
        .await;
        said.push(("agent", "We"));
        said.push(("user", "Actually, never mind."));
        r.chat.script([ChatStep::Text("No problem.".into())]);
        s.request(3, false, &said).await;
        let three = s.answer(3).await;
        assert_eq!(three.text(), "No problem.");
        eventually("the stale stream to be dropped", WAIT, || async {
            (r.chat.stalled() == 0).then_some(())
        })
        .await;
        assert!(
            !s.seen
                .iter()
                .any(|f| f["response_id"] == 2 && f["content_complete"] == true),
            "the stale answer is not completed after the newer one: {:?}",
            s.seen
        );

        // A reminder: the model is told the caller went quiet.
        said.push(("agent", "No problem."));
        r.chat
            .script([ChatStep::Text("Are you still there?".into())]);
        s.request(4, true, &said).await;
        assert_eq!(s.answer(4).await.text(), "Are you still there?");
        let reminder = r.chat.requests().last().cloned().expect("request");
        let last = reminder["messages"]
            .as_array()
            .and_then(|m| m.last())
            .cloned()
            .expect("messages");
        assert_eq!(last["role"], "system");
        assert!(
            last["content"].as_str().expect("text").contains("silent"),
            "{last}"
        );

        // Retell reconnects on the same call id: no second greeting, the conversation goes on.
        drop(s);
        let mut s = RetellSocket::connect(&r.env.ws, "call_a1").await;
        assert_eq!(s.frame().await["response_type"], "config");
        s.call_details(&call_object(
            "call_a1",
            "agent_alpha",
            "+15557770001",
            "+15550001001",
        ))
        .await;
        said.push(("agent", "Are you still there?"));
        said.push(("user", "Yes, thanks, that's all. Bye."));
        r.chat.script([
            ChatStep::Tools(vec![("end_call".into(), json!({}))]),
            ChatStep::Text("Goodbye, Dana!".into()),
        ]);
        s.request(5, false, &said).await;
        let five = s.answer(5).await;
        assert_eq!(five.text(), "Goodbye, Dana!");
        assert_eq!(
            five.last["end_call"], true,
            "hang up after the words: {}",
            five.last
        );
        assert!(
            !s.seen.iter().any(|f| f["response_id"] == 0),
            "no greeting on a reconnect: {:?}",
            s.seen
        );
        said.push(("agent", "Goodbye, Dana!"));

        // Retell's webhooks end the call: stored once, with what the socket stored.
        let mut ended = call_object("call_a1", "agent_alpha", "+15557770001", "+15550001001");
        ended["call_status"] = json!("ended");
        ended["end_timestamp"] = json!(1_764_579_660_000_i64);
        ended["disconnection_reason"] = json!("agent_hangup");
        ended["transcript_object"] = utterances(&said);
        ended["recording_url"] = json!("https://retellai.example/recordings/call_a1.wav");
        assert_eq!(
            post_webhook(&r.env.base, "key_alpha", "call_ended", &ended).await,
            204
        );
        let mut analyzed = ended.clone();
        analyzed["call_analysis"] = json!({"call_summary": "Dana booked Monday at ten.", "user_sentiment": "Positive", "call_successful": true});
        assert_eq!(
            post_webhook(&r.env.base, "key_alpha", "call_analyzed", &analyzed).await,
            204
        );
        // A retried delivery changes nothing.
        assert_eq!(
            post_webhook(&r.env.base, "key_alpha", "call_ended", &ended).await,
            204
        );

        let calls = calls(&r.env, &r.ka).await;
        let call = calls["data"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["call_sid"] == "retell:call_a1"))
            .cloned()
            .expect("the call is listed");
        assert_eq!(call["status"], "completed", "{call}");
        assert_eq!(call["end_reason"], "agent_ended");
        assert_eq!(call["duration_seconds"], 60);
        assert_eq!(
            call["recording_url"],
            "https://retellai.example/recordings/call_a1.wav"
        );
        assert_eq!(
            call["provider_analysis"]["call_summary"],
            "Dana booked Monday at ten."
        );
        assert!(
            !call["turn_latencies_ms"]
                .as_array()
                .expect("latencies")
                .is_empty(),
            "{call}"
        );
        let conv = call["conversation_id"].as_str().expect("conversation");
        let (_, items) = r
            .env
            .call_api(
                reqwest::Method::GET,
                &r.ka,
                &format!("/api/v1/conversations/{conv}/messages?limit=100"),
                None,
            )
            .await;
        let items = items["data"].as_array().cloned().expect("items");
        let words: Vec<(String, String)> = items
            .iter()
            .filter(|m| m["kind"] == "message")
            .map(|m| {
                (
                    m["role"].as_str().unwrap_or_default().to_owned(),
                    m["content"]["text"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = said
            .iter()
            .map(|(role, text)| {
                (
                    (if *role == "agent" {
                        "assistant"
                    } else {
                        "user"
                    })
                    .to_owned(),
                    (*text).to_owned(),
                )
            })
            .collect();
        assert_eq!(words, expected, "every utterance once, in spoken order");
        let tools: Vec<&Value> = items
            .iter()
            .filter(|m| m["kind"] == "function_call")
            .collect();
        assert_eq!(tools.len(), 2, "book_appointment and end_call");
        // The call page shows Retell's recording link and analysis beside ours.
        let admin = r.env.dashboard_admin(&r.alpha, "admin@alpha.test").await;
        let page = admin
            .get(&format!(
                "/calls/{}",
                call["id"].as_str().unwrap_or_default()
            ))
            .await;
        assert_eq!(page.status, 200);
        assert!(
            page.body
                .contains("https://retellai.example/recordings/call_a1.wav"),
            "{}",
            page.body
        );
        assert!(
            page.body.contains("id=\"provider-analysis\"")
                && page.body.contains("Dana booked Monday at ten.")
        );
        // The counters say what happened: one answer dropped as stale, the webhooks taken.
        eventually("the Retell counters", WAIT, || async {
            (r.env.metric("switchboard_retell_stale_turns_total").await == 1
                && r.env.metric("switchboard_retell_webhooks_total").await == 3
                && r.env.metric("switchboard_retell_failed_turns_total").await == 0)
                .then_some(())
        })
        .await;
        // Our own analysis runs on it like on any call.
        eventually("the call's analysis", WAIT, || async {
            let (_, c) = r
                .env
                .call_api(
                    reqwest::Method::GET,
                    &r.ka,
                    &format!("/api/v1/calls/{}", call["id"].as_str().unwrap_or_default()),
                    None,
                )
                .await;
            (!c["analysis"].is_null()).then_some(())
        })
        .await;
        r.env.shutdown();
    }
);

backend_test!(
    retell_webhooks_route_by_agent_and_refuse_what_is_not_theirs,
    |db| {
        let mut r = setup(db).await;
        // Another organization cannot claim a Retell agent already connected.
        let (s, e) = r
            .env
            .call_api(
                reqwest::Method::PATCH,
                &r.kb,
                &format!("/api/v1/agents/{}", r.beta.agent),
                Some(json!({"retell_agent_id": "agent_alpha"})),
            )
            .await;
        assert_eq!(s, 409, "{e}");
        let (s, e) = r
            .env
            .call_api(
                reqwest::Method::PATCH,
                &r.kb,
                &format!("/api/v1/agents/{}", r.beta.agent),
                Some(json!({"retell_agent_id": "not valid!"})),
            )
            .await;
        assert_eq!(
            (s, e["error"]["field"].as_str()),
            (422, Some("retell_agent_id")),
            "{e}"
        );

        // Beta's Retell call lands in Beta only.
        let mut b = call_object("call_b1", "agent_beta", "+15557770002", "+15550002002");
        assert_eq!(
            post_webhook(&r.env.base, "key_beta", "call_started", &b).await,
            204
        );
        b["end_timestamp"] = json!(1_764_579_630_000_i64);
        b["disconnection_reason"] = json!("user_hangup");
        b["transcript_object"] = utterances(&[("user", "Hello?"), ("agent", "Hi!")]);
        assert_eq!(
            post_webhook(&r.env.base, "key_beta", "call_ended", &b).await,
            204
        );
        let theirs = calls(&r.env, &r.kb).await;
        let call = theirs["data"][0].clone();
        assert_eq!(call["call_sid"], "retell:call_b1", "{theirs}");
        assert_eq!(call["end_reason"], "caller_hung_up");
        assert_eq!(call["agent_id"], r.beta.agent.as_str());
        let ours = calls(&r.env, &r.ka).await;
        assert_eq!(
            ours["data"].as_array().map(Vec::len),
            Some(0),
            "nothing in Alpha: {ours}"
        );

        // A Retell agent nobody connected, on a number Alpha has proven: routed by the
        // number, to the number's agent. On Beta's unproven number: refused.
        r.env.rest.add_account(ACCOUNT, &r.alpha.token);
        r.env
            .rest
            .add_incoming_number(ACCOUNT, &r.alpha.number, true, true);
        let (_, numbers) = r
            .env
            .call_api(reqwest::Method::GET, &r.ka, "/api/v1/phone-numbers", None)
            .await;
        let nid = numbers["data"][0]["id"]
            .as_str()
            .expect("number")
            .to_owned();
        let (s, n) = r
            .env
            .call_api(
                reqwest::Method::POST,
                &r.ka,
                &format!("/api/v1/phone-numbers/{nid}/verify"),
                None,
            )
            .await;
        assert_eq!(
            (s, n["verification"].as_str()),
            (200, Some("verified")),
            "{n}"
        );
        let by_number = call_object(
            "call_n1",
            "agent_elsewhere",
            "+15557770004",
            &r.alpha.number,
        );
        assert_eq!(
            post_webhook(&r.env.base, "key_alpha", "call_started", &by_number).await,
            204
        );
        let unproven = call_object("call_n2", "agent_elsewhere", "+15557770004", &r.beta.number);
        assert_eq!(
            post_webhook(&r.env.base, "key_beta", "call_started", &unproven).await,
            404
        );
        let ours = calls(&r.env, &r.ka).await;
        assert_eq!(ours["data"].as_array().map(Vec::len), Some(1), "{ours}");
        assert_eq!(ours["data"][0]["call_sid"], "retell:call_n1");
        assert_eq!(ours["data"][0]["agent_id"], r.alpha.agent.as_str());

        // Refusals, and nothing more written by any of them.
        let c = call_object("call_x1", "agent_alpha", "+15557770003", "+15550001001");
        let body = json!({"event": "call_started", "call": c}).to_string();
        let now = Timestamp::now().millis();
        let cases = [
            (
                "Beta's key on Alpha's call",
                switchboard_retell::sign("key_beta", body.as_bytes(), now),
                401,
            ),
            (
                "six minutes old",
                switchboard_retell::sign("key_alpha", body.as_bytes(), now - 6 * 60 * 1000),
                401,
            ),
            ("no signature", String::new(), 401),
            (
                "uppercase hex",
                switchboard_retell::sign("key_alpha", body.as_bytes(), now)
                    .to_uppercase()
                    .replacen("V=", "v=", 1)
                    .replacen(",D=", ",d=", 1),
                401,
            ),
        ];
        for (what, sig, want) in cases {
            assert_eq!(post_signed(&r.env.base, &body, &sig).await, want, "{what}");
        }
        assert_eq!(post_signed(&r.env.base, "not json", "v=1,d=00").await, 400);
        let stranger = call_object("call_x2", "agent_unknown", "+15557770003", "+15559999999");
        assert_eq!(
            post_webhook(&r.env.base, "key_alpha", "call_started", &stranger).await,
            404,
            "no default organization"
        );
        // An event Switchboard does not keep is acknowledged.
        assert_eq!(
            post_webhook(&r.env.base, "key_alpha", "transcript_updated", &c).await,
            204
        );
        let ours = calls(&r.env, &r.ka).await;
        assert_eq!(ours["data"].as_array().map(Vec::len), Some(1), "{ours}");

        // Without a key, Alpha's webhooks cannot be verified.
        let (s, _) = r
            .env
            .call_api(
                reqwest::Method::PUT,
                &r.ka,
                "/api/v1/settings",
                Some(json!({"retell_api_key": null})),
            )
            .await;
        assert_eq!(s, 200);
        assert_eq!(
            post_webhook(&r.env.base, "key_alpha", "call_started", &c).await,
            403
        );
        r.env.shutdown();
    }
);

backend_test!(
    retell_sockets_for_calls_retell_does_not_vouch_for_are_closed,
    |db| {
        let mut r = setup(db).await;
        // A call Retell's API does not know under Alpha's key; details naming another call
        // than the socket's; a Retell agent no organization connected.
        let forged = call_object("call_forged", "agent_alpha", "+15557770001", "+15550001001");
        let real = call_object("call_real", "agent_alpha", "+15557770001", "+15550001001");
        let stray = call_object("call_stray", "agent_nobody", "+15557770001", "+15559999999");
        r.api.add_call("key_alpha", &real);
        r.api.add_call("key_alpha", &stray);
        for (what, socket_call, details) in [
            ("unknown at Retell", "call_forged", &forged),
            ("another call's details", "call_other", &real),
            ("an agent nobody connected", "call_stray", &stray),
        ] {
            let mut s = RetellSocket::connect(&r.env.ws, socket_call).await;
            assert_eq!(s.frame().await["response_type"], "config");
            s.call_details(details).await;
            assert_eq!(s.closed().await, Some(1008), "{what}");
            assert!(s.seen.is_empty(), "nothing answered ({what}): {:?}", s.seen);
        }
        // A call id that cannot be Retell's.
        let mut s = RetellSocket::connect(&r.env.ws, "bad%20id").await;
        assert_eq!(s.closed().await, Some(1008));
        let calls = calls(&r.env, &r.ka).await;
        assert_eq!(
            calls["data"].as_array().map(Vec::len),
            Some(0),
            "nothing recorded: {calls}"
        );
        // A real call opens.
        let (mut s, _) = dial(&r, "call_ok", "key_alpha", "agent_alpha", "+15550001001").await;
        assert_eq!(s.answer(0).await.text(), GREETING);
        assert!(r.api.lookups() >= 1);
        assert_eq!(
            r.env
                .metric("switchboard_retell_refused_sockets_total")
                .await,
            4
        );
        assert_eq!(r.env.metric("switchboard_retell_sockets_total").await, 1);
        let _ = &r.alpha;
        r.env.shutdown();
    }
);
