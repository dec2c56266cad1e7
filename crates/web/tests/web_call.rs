//! "Call this agent" on the server's side, on both backends: `POST /agents/{id}/web-call`
//! stores a call on channel `web` with a browser SID and answers the stream's one-time
//! parameters; a client speaking Twilio Media Streams with them at `/twilio/media` runs
//! through the same call actor (the caller heard, the agent's answer relayed); a transfer is
//! refused to the model as impossible rather than attempted; hanging up ends the call; a
//! browser call that never connects is closed by the sweep; and nothing about any of it is
//! ever asked of Twilio. Another organization's agent and a request without the CSRF header
//! are refused. (The browser itself: `browser_web_call.rs`.)

mod voice_env;

use switchboard_domain::values::Channel;
use voice_env::tools::{csrf_of, DashUser};
use voice_env::*;

async fn start_call(user: &DashUser, agent: &str, csrf: Option<&str>) -> (u16, Value) {
    let mut req = user
        .http
        .post(format!("{}/agents/{agent}/web-call", user.base))
        .header(reqwest::header::COOKIE, &user.cookie)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body("{}");
    if let Some(c) = csrf {
        req = req.header("x-csrf-token", c);
    }
    let res = req.send().await.expect("post");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

backend_test!(
    a_browser_call_runs_through_the_call_actor_without_twilio,
    |db| {
        let env = env(
            db,
            Behavior {
                steps: vec![
                    Step::Call("transfer_call".into(), json!({})),
                    said(AGENT_SHORT, AGENT_SHORT_TEXT),
                ],
                transcripts: vec!["Put me through to billing.".into()],
                ..Behavior::default()
            },
        )
        .await;
        let org = env.org("Alpha", "+15550001001", &[], None).await;
        env.patch_agent(
            &org,
            json!({"tools": ["transfer_call"], "transfer_number": "+15559990000"}),
        )
        .await;
        let admin = env.dashboard_admin(&org, "admin@alpha.test").await;
        let page = admin.get(&format!("/agents/{}", org.agent)).await;
        assert!(
            page.body.contains("id=\"web-call\""),
            "the panel is on the agent's page"
        );
        let csrf = csrf_of(&page.body);

        // Refusals first.
        assert_eq!(
            start_call(&admin, org.agent.as_str(), None).await.0,
            400,
            "no CSRF header"
        );
        let other = env.org("Beta", "+15550002001", &[], None).await;
        assert_eq!(
            start_call(&admin, other.agent.as_str(), Some(&csrf))
                .await
                .0,
            404,
            "another organization's agent"
        );

        let (status, call) = start_call(&admin, org.agent.as_str(), Some(&csrf)).await;
        assert_eq!(status, 200, "{call}");
        let sid = call["call_sid"].as_str().expect("sid").to_owned();
        assert!(sid.starts_with("WB") && sid.len() == 34, "{sid}");
        assert_eq!(call["media_path"], "/twilio/media");
        let params: Vec<(String, String)> = call["parameters"]
            .as_object()
            .expect("parameters")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        let stored = env.call_of(&org, &sid).await;
        assert_eq!(stored.from_number, "web:admin@alpha.test");
        let conv = db
            .store
            .get_conversation(&org.id, &stored.conversation_id)
            .await
            .expect("conversation");
        assert_eq!(conv.channel, Channel::Web);

        let media = env.media(&sid, &params).await;
        media.play_at(CALLER_BOOKING, Duration::from_millis(5));
        // The agent tries to transfer: told it cannot, it answers instead.
        media
            .wait_for("the agent's answer", WAIT, |r| {
                r.audio.len() >= AGENT_SHORT.len()
            })
            .await;
        let outputs = env.outputs();
        assert!(
            outputs
                .iter()
                .any(|o| o.to_string().contains("transfer_unavailable")),
            "{outputs:?}"
        );
        media.stop();
        let ended = env.wait_ended(&org, &sid).await;
        assert!(ended.transfer.is_none(), "no transfer was attempted");
        let transcript = env.transcript(&org, &sid).await;
        assert!(transcript
            .iter()
            .any(|m| m.content.to_string().contains("Put me through to billing.")));

        // A browser call that never connects is closed by the sweep.
        let (_, lost) = start_call(&admin, org.agent.as_str(), Some(&csrf)).await;
        let lost_sid = lost["call_sid"].as_str().expect("sid").to_owned();
        env.clock.advance(Duration::from_secs(61));
        assert_eq!(env.recovery.run_once().await.expect("sweep"), 1);
        let closed = env.call_of(&org, &lost_sid).await;
        assert_eq!(closed.end_reason.as_deref(), Some("no_media"));

        // Twilio heard of none of it.
        assert!(
            env.rest.requests().is_empty(),
            "{:?}",
            env.rest.requests().len()
        );
    }
);
