//! SignalWire as an organization's carrier, on both backends, against a fake SignalWire space
//! that follows its compatibility API (Twilio's resources under `/api/laml`, UUID SIDs,
//! webhooks signed with the project's signing key in `X-SignalWire-Signature`): switching
//! carrier through the API, an inbound call through the same call actor, an outbound call
//! placed at the space and answered, an inbound text answered through the space's Messages
//! API, and signatures made with the wrong key or as Twilio would refused.

mod voice_env;

use switchboard_testkit::chat::FakeChatModel;
use switchboard_testkit::twilio::{try_post_signed_as, FakeTwilioRest};
use voice_env::outbound::{Api, CALLEE};
use voice_env::*;

const SPACE: &str = "acme.signalwire.com";
const PROJECT: &str = "5f1c2b6e-8d2a-4f3b-9c1d-2e3f4a5b6c7d";
const API_TOKEN: &str = "PT0123456789abcdef";
const SIGNING_KEY: &str = "PSK_signing_key_0123";
const OURS: &str = "+15550003003";

async fn post(
    env: &Env<'_>,
    path: &str,
    (header, key): (&str, &str),
    params: &[(&str, &str)],
) -> reqwest::Response {
    try_post_signed_as(&env.http, &env.base, PUBLIC, path, (header, key), params)
        .await
        .expect("post")
}

fn basic(project: &str, token: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{project}:{token}"))
    )
}

backend_test!(
    a_signalwire_organization_calls_and_texts_through_its_space,
    |db| {
        let sw = FakeTwilioRest::start_signalwire().await;
        let chat = FakeChatModel::start().await;
        let (sw_url, chat_url) = (sw.url.clone(), chat.url.clone());
        let behavior = Behavior {
            steps: vec![
                said(AGENT_SHORT, AGENT_SHORT_TEXT),
                said(AGENT_SHORT, AGENT_SHORT_TEXT),
            ],
            ..Behavior::default()
        };
        let mut env = env_with(db, behavior, |c| {
            c.signalwire_api_url = Some(sw_url);
            c.llm.base_url = chat_url;
            c.llm.api_key = Some(Secret::new("sk-test-chat-key"));
        })
        .await;
        let org = env
            .org("Gamma", OURS, &[], Some("Thanks for calling Gamma!"))
            .await;
        let sms: NewPhoneNumber = serde_json::from_value(
            json!({"number": OURS, "channel": "sms", "agent_id": org.agent}),
        )
        .expect("number");
        env.db
            .store
            .create_number(&org.id, sms)
            .await
            .expect("sms number");
        let key = env.key(&org).await;
        // The space holds the number under the project.
        sw.add_account(PROJECT, API_TOKEN);
        sw.add_incoming_number(PROJECT, OURS, true, true);

        // The switch needs every SignalWire credential; then the settings show them (secrets as
        // set/unset only) and no Twilio account.
        let mut switch = json!({"carrier": "signalwire", "signalwire_space": SPACE,
        "signalwire_project_id": PROJECT, "signalwire_api_token": API_TOKEN});
        let (s, e) = env
            .call_api(
                reqwest::Method::PUT,
                &key,
                "/api/v1/settings",
                Some(switch.clone()),
            )
            .await;
        assert_eq!(
            (s, e["error"]["field"].as_str()),
            (422, Some("signalwire_signing_key")),
            "{e}"
        );
        let (s, e) = env
            .call_api(
                reqwest::Method::PUT,
                &key,
                "/api/v1/settings",
                Some(json!({"carrier": "signalwire", "signalwire_space": "evil.example.com"})),
            )
            .await;
        assert_eq!(
            (s, e["error"]["field"].as_str()),
            (422, Some("signalwire_space")),
            "{e}"
        );
        switch["signalwire_signing_key"] = json!(SIGNING_KEY);
        let (s, settings) = env
            .call_api(reqwest::Method::PUT, &key, "/api/v1/settings", Some(switch))
            .await;
        assert_eq!(s, 200, "{settings}");
        assert_eq!(settings["carrier"], "signalwire");
        assert_eq!(settings["signalwire_space"], SPACE);
        assert_eq!(settings["signalwire_project_id"], PROJECT);
        assert_eq!(settings["signalwire_api_token_set"], true);
        assert_eq!(settings["signalwire_signing_key_set"], true);
        assert!(settings["twilio_account_sid"].is_null());
        assert!(
            !settings.to_string().contains(SIGNING_KEY)
                && !settings.to_string().contains(API_TOKEN)
        );

        // The numbers are proven again, at the space.
        eventually("the numbers proven at the space", WAIT, || async {
            let (_, numbers) = env
                .call_api(reqwest::Method::GET, &key, "/api/v1/phone-numbers", None)
                .await;
            let all = numbers["data"].as_array().cloned().unwrap_or_default();
            (all.len() == 2
                && all.iter().all(|n| {
                    n["verification"] == "verified"
                        && n["verification_message"]
                            .as_str()
                            .is_some_and(|m| m.starts_with("in SignalWire project "))
                }))
            .then_some(())
        })
        .await;

        // An inbound call, signed with the signing key in SignalWire's header.
        let call_sid = "0b7d4a2e-3c1f-4e5a-9b8c-7d6e5f4a3b2c";
        let params = [
            ("AccountSid", PROJECT),
            ("CallSid", call_sid),
            ("CallStatus", "ringing"),
            ("Direction", "inbound"),
            ("From", "+15557770001"),
            ("To", OURS),
            ("ApiVersion", "2010-04-01"),
        ];
        for (why, header, signer) in [
            (
                "Twilio's way, with the API token",
                "X-Twilio-Signature",
                API_TOKEN,
            ),
            ("the API token", "X-SignalWire-Signature", API_TOKEN),
        ] {
            assert_eq!(
                post(&env, "/twilio/voice", (header, signer), &params)
                    .await
                    .status(),
                403,
                "{why}"
            );
        }
        let res = post(
            &env,
            "/twilio/voice",
            ("X-SignalWire-Signature", SIGNING_KEY),
            &params,
        )
        .await;
        assert_eq!(res.status(), 200);
        let twiml = res.text().await.expect("cxml");
        let (_, stream) = stream_of(&twiml).expect("a <Connect><Stream>");
        let media = MediaCall::connect(
            &format!("{}/twilio/media", env.ws),
            call_sid,
            &stream,
            Duration::from_millis(20),
            8.0,
        )
        .await
        .expect("media");
        media
            .wait_for("the greeting", WAIT, |r| r.audio.len() >= AGENT_SHORT.len())
            .await;
        media.stop();
        let call = env.wait_ended(&org, call_sid).await;
        assert_eq!(call.status.as_str(), "completed");
        assert!(sw
            .requests
            .lock()
            .expect("requests")
            .iter()
            .all(|r| r.account_sid == PROJECT));

        // An outbound call: placed at the space with the project's credentials, answered there,
        // its callbacks signed with the signing key and its SID a UUID.
        sw.connect_signalwire(PUBLIC, &env.base, &env.ws, SIGNING_KEY, API_TOKEN);
        let (s, _) = env
            .call_api(
                reqwest::Method::PATCH,
                &key,
                &format!("/api/v1/agents/{}", org.agent),
                Some(json!({"record": true})),
            )
            .await;
        assert_eq!(s, 200);
        let (s, placed) = env
            .call_api(
                reqwest::Method::POST,
                &key,
                "/api/v1/calls",
                Some(json!({"to": CALLEE})),
            )
            .await;
        assert!(s == 201 || s == 202, "{s} {placed}");
        let (sid, out_media) = sw.answered(0, WAIT).await;
        assert_eq!(sid.len(), 36, "a UUID: {sid}");
        let created = &sw.created_calls()[0].1;
        assert_eq!(created.account_sid, PROJECT);
        assert_eq!(
            created.authorization.as_deref(),
            Some(basic(PROJECT, API_TOKEN).as_str())
        );
        assert_eq!(
            switchboard_testkit::twilio::form_value(created, "To").unwrap_or_default(),
            CALLEE
        );
        out_media
            .wait_for("the agent's first words", WAIT, |r| !r.audio.is_empty())
            .await;
        let id = placed["id"].as_str().expect("id").to_owned();
        let api = Api { key: key.clone() };
        eventually("the call's SID from SignalWire", WAIT, || async {
            let c = env.get_call(&api, &id).await;
            (c["call_sid"] == sid.as_str() && c["status"] == "in-progress").then_some(())
        })
        .await;
        sw.complete(&sid, 7).await;
        out_media.stop();
        env.wait_call_ended(&api, &id).await;

        // The recording, made at the space, reached with the project's credentials.
        let recording = eventually("the recording at the space", WAIT, || async {
            let c = env.get_call(&api, &id).await;
            (c["recording"]["status"] == "completed").then_some(c)
        })
        .await;
        assert_eq!(sw.recordings()[0].sid.len(), 36, "a UUID");
        let audio = env
            .http
            .get(format!(
                "{}{}",
                env.base,
                recording["recording_url"].as_str().expect("url")
            ))
            .bearer_auth(&key)
            .send()
            .await
            .expect("recording");
        assert_eq!(audio.status(), 200);
        assert_eq!(
            audio.bytes().await.expect("bytes").as_ref(),
            switchboard_testkit::twilio::recording_audio().as_slice()
        );

        // Texts: received with SignalWire's signature; the agent's reply goes back in the cXML
        // answer, and a staff message goes out through the space's Messages API.
        let text = |sid, from, body| {
            [
                ("MessageSid", sid),
                ("AccountSid", PROJECT),
                ("From", from),
                ("To", OURS),
                ("Body", body),
                ("NumMedia", "0"),
            ]
        };
        let quick = text(
            "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
            "+15557770009",
            "Are you open on Saturday?",
        );
        assert_eq!(
            post(
                &env,
                "/twilio/messaging",
                ("X-Twilio-Signature", API_TOKEN),
                &quick
            )
            .await
            .status(),
            403
        );
        let res = post(
            &env,
            "/twilio/messaging",
            ("X-SignalWire-Signature", SIGNING_KEY),
            &quick,
        )
        .await;
        assert_eq!(res.status(), 200);
        let cxml = res.text().await.expect("cxml");
        assert!(
            cxml.contains(">Reply to: Are you open on Saturday?</Message>"),
            "{cxml}"
        );
        // A person of the business writes into the thread: sent at the space.
        let (_, convs) = env
            .call_api(
                reqwest::Method::GET,
                &key,
                "/api/v1/conversations?channel=sms",
                None,
            )
            .await;
        let conv = convs["data"][0]["id"]
            .as_str()
            .expect("the thread")
            .to_owned();
        let (s, m) = env
            .call_api(
                reqwest::Method::POST,
                &key,
                &format!("/api/v1/conversations/{conv}/messages"),
                Some(json!({"text": "And on Sunday we open at ten."})),
            )
            .await;
        assert_eq!(s, 201, "{m}");
        let sent = eventually("the reply sent at the space", WAIT, || async {
            sw.requests
                .lock()
                .expect("requests")
                .iter()
                .find(|r| r.resource == "Messages")
                .cloned()
        })
        .await;
        assert_eq!(sent.account_sid, PROJECT);
        assert_eq!(
            sent.authorization.as_deref(),
            Some(basic(PROJECT, API_TOKEN).as_str())
        );
        assert_eq!(
            switchboard_testkit::twilio::form_value(&sent, "To").unwrap_or_default(),
            "+15557770009"
        );
        assert!(switchboard_testkit::twilio::form_value(&sent, "Body")
            .unwrap_or_default()
            .contains("And on Sunday we open at ten."));
        // Nothing went to Twilio.
        assert!(
            env.rest.requests.lock().expect("requests").is_empty(),
            "Twilio was not asked"
        );
        env.shutdown();
    }
);
