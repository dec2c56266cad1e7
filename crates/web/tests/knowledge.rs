//! Knowledge end to end: sources through the API (inline text, uploaded files, bad uploads
//! refused with their reason), indexing in the background, search, scoping, and an agent
//! answering from its sources with `search_knowledge` in a call and in a text chat.

mod voice_env;

use switchboard_store::corpus::{DIRECTIONS, HANDBOOK, QUESTIONS};
use switchboard_testkit::chat::{ChatStep, FakeChatModel};
use voice_env::*;

/// Posts an upload of `bytes` as `file_name` with an optional `name`.
async fn upload(
    env: &Env<'_>,
    key: &str,
    file_name: &str,
    bytes: Vec<u8>,
    name: Option<&str>,
) -> (u16, Value) {
    let fields: Vec<(&str, &str)> = name.map(|n| ("name", n)).into_iter().collect();
    let (content_type, body) = switchboard_testkit::multipart::form(&fields, file_name, &bytes);
    let res = env
        .http
        .post(format!("{}/api/v1/knowledge/sources/upload", env.base))
        .bearer_auth(key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("upload");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Waits until the source's index is ready and answers it.
async fn ready(env: &Env<'_>, key: &str, id: &str) -> Value {
    let path = format!("/api/v1/knowledge/sources/{id}");
    eventually("the source is indexed", WAIT, || async {
        let (status, s) = env.call_api(reqwest::Method::GET, key, &path, None).await;
        (status == 200 && s["status"] == "ready").then_some(s)
    })
    .await
}

async fn search(env: &Env<'_>, key: &str, q: &str) -> Value {
    let path = format!(
        "/api/v1/knowledge/search?q={}",
        url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
    );
    let (status, r) = env.call_api(reqwest::Method::GET, key, &path, None).await;
    assert_eq!(status, 200, "{r}");
    r
}

backend_test!(sources_are_added_indexed_searched_and_scoped, |db| {
    let mut env = env(db, Behavior::default()).await;
    let alpha = env.org("Alpha", "+15550001001", &[], None).await;
    let beta = env.org("Beta", "+15550002002", &[], None).await;
    let (ka, kb) = (env.key(&alpha).await, env.key(&beta).await);
    let post = reqwest::Method::POST;
    // Bad input names its field; nothing is stored.
    for (body, status, field) in [
        (
            json!({"name": "", "content": "Some text."}),
            422,
            Some("name"),
        ),
        (
            json!({"name": "X", "content": " \n "}),
            422,
            Some("content"),
        ),
        (
            json!({"name": "X", "format": "pdf", "content": "Text."}),
            422,
            Some("format"),
        ),
        (
            json!({"name": "X", "content": "Text.", "colour": 1}),
            422,
            Some("colour"),
        ),
    ] {
        let (s, err) = env
            .call_api(post.clone(), &ka, "/api/v1/knowledge/sources", Some(body))
            .await;
        assert_eq!(s, status, "{err}");
        if let Some(f) = field {
            assert_eq!(err["error"]["field"], f, "{err}");
        }
    }
    let (s, list) = env
        .call_api(reqwest::Method::GET, &ka, "/api/v1/knowledge/sources", None)
        .await;
    assert_eq!((s, list["data"].as_array().map(Vec::len)), (200, Some(0)));

    let (s, created) = env
        .call_api(
            post.clone(),
            &ka,
            "/api/v1/knowledge/sources",
            Some(json!({"name": "Handbook", "format": "markdown", "content": HANDBOOK})),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["status"], "indexing");
    assert_eq!(created["version"], 1);
    assert!(created["created_by"]
        .as_str()
        .expect("by")
        .starts_with("api_key:"));
    let handbook = created["id"].as_str().expect("id").to_owned();
    let (_, directions) = env
        .call_api(
            post.clone(),
            &ka,
            "/api/v1/knowledge/sources",
            Some(json!({"name": "Directions", "content": DIRECTIONS})),
        )
        .await;
    let directions = directions["id"].as_str().expect("id").to_owned();
    let h = ready(&env, &ka, &handbook).await;
    assert_eq!(h["chunks"], 6, "{h}");
    assert_eq!(h["content"], HANDBOOK);
    ready(&env, &ka, &directions).await;
    for (question, expected) in QUESTIONS {
        let r = search(&env, &ka, question).await;
        assert!(
            r["data"][0]["text"]
                .as_str()
                .is_some_and(|t| t.contains(expected)),
            "{question}: {r}"
        );
    }
    let r = search(&env, &ka, "How much is a colour?").await;
    assert_eq!(r["terms"], json!(["much", "colour"]));
    assert_eq!(r["data"][0]["source"], "Handbook");
    assert_eq!(r["data"][0]["heading"], "Studio Lumen > Prices > Colour");
    let (s, only) = env
        .call_api(
            reqwest::Method::GET,
            &ka,
            &format!("/api/v1/knowledge/search?q=colour+parking&source_id={directions}"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert!(only["data"]
        .as_array()
        .expect("data")
        .iter()
        .all(|h| h["source_id"] == directions.as_str()));
    let (s, err) = env
        .call_api(
            reqwest::Method::GET,
            &ka,
            "/api/v1/knowledge/search?q=x&limit=99",
            None,
        )
        .await;
    assert_eq!((s, err["error"]["field"].clone()), (422, json!("limit")));

    // Another organization sees none of it.
    assert_eq!(
        search(&env, &kb, "colour treatment").await["data"],
        json!([])
    );
    for (method, body) in [
        (reqwest::Method::GET, None),
        (reqwest::Method::PATCH, Some(json!({"name": "Mine"}))),
        (reqwest::Method::DELETE, None),
    ] {
        let (s, _) = env
            .call_api(
                method,
                &kb,
                &format!("/api/v1/knowledge/sources/{handbook}"),
                body,
            )
            .await;
        assert_eq!(s, 404);
    }
    let (s, err) = env
        .call_api(
            reqwest::Method::PATCH,
            &kb,
            &format!("/api/v1/agents/{}", beta.agent),
            Some(json!({"knowledge": [handbook]})),
        )
        .await;
    assert_eq!(
        (s, err["error"]["field"].clone()),
        (422, json!("knowledge[0]")),
        "{err}"
    );

    // New text is indexed again as a new version.
    let (s, changed) = env
        .call_api(
            reqwest::Method::PATCH,
            &ka,
            &format!("/api/v1/knowledge/sources/{directions}"),
            Some(json!({"content": "We moved: Hafenstrasse 12, parking in the yard."})),
        )
        .await;
    assert_eq!(
        (s, changed["version"].clone()),
        (200, json!(2)),
        "{changed}"
    );
    eventually("the new text is searchable", WAIT, || async {
        let r = search(&env, &ka, "Where can I park?").await;
        r["data"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("Hafenstrasse"))
            .then_some(())
    })
    .await;
    let (s, _) = env
        .call_api(
            reqwest::Method::DELETE,
            &ka,
            &format!("/api/v1/knowledge/sources/{directions}"),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let r = search(&env, &ka, "Hafenstrasse").await;
    assert_eq!(r["data"], json!([]));
    env.shutdown();
});

backend_test!(uploads_are_read_or_refused_with_the_reason, |db| {
    let mut env = env(db, Behavior::default()).await;
    let alpha = env.org("Alpha", "+15550001001", &[], None).await;
    let ka = env.key(&alpha).await;
    // A PDF with a text layer becomes searchable text.
    let pdf = switchboard_testkit::pdf::with_text(&[
        "Gift vouchers",
        "Gift vouchers are valid for two years from the day of purchase (any amount).",
    ]);
    let (s, created) = upload(&env, &ka, "Vouchers.pdf", pdf, None).await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["format"], "pdf");
    assert_eq!(created["name"], "Vouchers.pdf");
    assert_eq!(created["file_name"], "Vouchers.pdf");
    let id = created["id"].as_str().expect("id").to_owned();
    let got = ready(&env, &ka, &id).await;
    assert!(
        got["content"]
            .as_str()
            .expect("text")
            .contains("valid for two years"),
        "{got}"
    );
    let r = search(&env, &ka, "How long is a voucher valid?").await;
    assert_eq!(r["data"][0]["source_id"], id.as_str(), "{r}");
    // Markdown and text files, named.
    let (s, md) = upload(
        &env,
        &ka,
        "faq.md",
        b"# FAQ\n## Pets\nDogs are welcome.\n".to_vec(),
        Some("FAQ"),
    )
    .await;
    assert_eq!(
        (s, md["format"].clone(), md["name"].clone()),
        (201, json!("markdown"), json!("FAQ")),
        "{md}"
    );
    let (s, txt) = upload(
        &env,
        &ka,
        "notes.txt",
        b"\xEF\xBB\xBFStaff parking is behind the shop.".to_vec(),
        None,
    )
    .await;
    assert_eq!((s, txt["format"].clone()), (201, json!("text")), "{txt}");
    ready(&env, &ka, txt["id"].as_str().expect("id")).await;

    // Refused, each with its reason, and nothing stored.
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "contract.docx",
            b"PK\x03\x04".to_vec(),
            422,
            "unsupported_file",
        ),
        (
            "fake.pdf",
            b"hello, not a pdf".to_vec(),
            422,
            "unreadable_pdf",
        ),
        (
            "broken.pdf",
            b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage".to_vec(),
            422,
            "unreadable_pdf",
        ),
        (
            "scan.pdf",
            switchboard_testkit::pdf::without_text(),
            422,
            "no_text",
        ),
        (
            "latin1.txt",
            b"caf\xE9 cr\xE8me".to_vec(),
            422,
            "invalid_text",
        ),
        ("empty.txt", Vec::new(), 422, "invalid_field"),
        (
            "huge.txt",
            vec![b'a'; 10 * 1024 * 1024 + 1],
            413,
            "upload_too_large",
        ),
    ];
    for (file, bytes, status, code) in cases {
        let (s, err) = upload(&env, &ka, file, bytes, None).await;
        assert_eq!(
            (s, err["error"]["code"].as_str()),
            (status, Some(code)),
            "{file}: {err}"
        );
        assert!(err["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let res = env
        .http
        .post(format!("{}/api/v1/knowledge/sources/upload", env.base))
        .bearer_auth(&ka)
        .json(&json!({"file": "x"}))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 415);
    let (_, list) = env
        .call_api(reqwest::Method::GET, &ka, "/api/v1/knowledge/sources", None)
        .await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(3), "{list}");
    env.shutdown();
});

backend_test!(
    agents_answer_from_their_knowledge_in_calls_and_chats,
    |db| {
        let chat = FakeChatModel::start().await;
        let behavior = Behavior {
            steps: vec![
                Step::Call(
                    "search_knowledge".into(),
                    json!({"query": "colour treatment price"}),
                ),
                said(AGENT_SHORT, AGENT_SHORT_TEXT),
            ],
            transcripts: vec!["How much is a colour?".into()],
            ..Behavior::default()
        };
        let mut env = voice_env::tools::env_with_chat(db, behavior, &chat).await;
        let alpha = env.org("Alpha", "+15550001001", &[], None).await;
        let beta = env.org("Beta", "+15550002002", &[], None).await;
        let (ka, kb) = (env.key(&alpha).await, env.key(&beta).await);
        let add = |key: String, name: &'static str, content: &'static str| {
            let env = &env;
            async move {
                let (s, c) = env
                    .call_api(
                        reqwest::Method::POST,
                        &key,
                        "/api/v1/knowledge/sources",
                        Some(json!({"name": name, "format": "markdown", "content": content})),
                    )
                    .await;
                assert_eq!(s, 201, "{c}");
                let id = c["id"].as_str().expect("id").to_owned();
                ready(env, &key, &id).await;
                id
            }
        };
        let handbook = add(ka.clone(), "Handbook", HANDBOOK).await;
        // Another source of the same organization the agent is not given, and another
        // organization's: neither is ever searched.
        add(
            ka.clone(),
            "Internal",
            "## Colour\nStaff price for a colour treatment: 10 euros.",
        )
        .await;
        add(
            kb.clone(),
            "Theirs",
            "## Colour\nA colour treatment costs 40 euros at Barber Nord.",
        )
        .await;
        env.patch_agent(&alpha, json!({"knowledge": [handbook]}))
            .await;

        // A call: the tool is offered without being listed in `tools`, and answers from the
        // agent's own source.
        let sid = "CA00000000000000000000000000000081";
        let media = env.answer(&alpha, sid, "+15557770081", 20.0).await;
        let updates = env.wait_model_event("session.update", 1).await;
        let offered: Vec<&str> = updates[0]["session"]["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .map(|t| t["name"].as_str().expect("name"))
            .collect();
        assert_eq!(offered, ["search_knowledge"]);
        media.play_at(CALLER_BOOKING, Duration::from_millis(5));
        let outputs = env.wait_model_event("conversation.item.create", 1).await;
        let output: Value =
            serde_json::from_str(outputs[0]["item"]["output"].as_str().expect("string"))
                .expect("json");
        assert_eq!(output["ok"], true, "{output}");
        let results = output["results"].as_array().expect("results");
        assert!(
            results[0]["text"]
                .as_str()
                .expect("text")
                .contains("95 euros"),
            "{output}"
        );
        assert_eq!(results[0]["source"], "Handbook");
        assert!(
            !output.to_string().contains("10 euros") && !output.to_string().contains("40 euros")
        );

        // A text chat with the same agent.
        chat.script([
            ChatStep::Tools(vec![(
                "search_knowledge".into(),
                json!({"query": "Where can I park?"}),
            )]),
            ChatStep::Text("There is no parking information, sorry.".into()),
        ]);
        let (status, turn) = env
            .call_api(
                reqwest::Method::POST,
                &ka,
                &format!("/api/v1/agents/{}/chat", alpha.agent),
                Some(json!({"session_id": "web-1", "message": "Where can I park?"})),
            )
            .await;
        assert_eq!(status, 200, "{turn}");
        let requests = chat.requests();
        assert!(requests[0]["tools"]
            .to_string()
            .contains("search_knowledge"));
        let tool_answer = requests[1]["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .find(|m| m["role"] == "tool")
            .expect("the tool's answer")["content"]
            .as_str()
            .expect("content")
            .to_owned();
        let tool_answer: Value = serde_json::from_str(&tool_answer).expect("json");
        assert_eq!(tool_answer["ok"], true);
        assert!(tool_answer["results"].is_array(), "{tool_answer}");
        // Both searches are audited as the agent's.
        let (_, audit) = env
            .call_api(reqwest::Method::GET, &ka, "/api/v1/tool-invocations", None)
            .await;
        let rows: Vec<&Value> = audit["data"]
            .as_array()
            .expect("rows")
            .iter()
            .filter(|r| r["tool"] == "search_knowledge")
            .collect();
        assert_eq!(rows.len(), 2, "{audit}");
        assert!(rows.iter().all(|r| r["status"] == "ok"));
        drop(media);
        env.shutdown();
    }
);
