//! Call recordings end to end: an outbound call dialled with `Record=true`, an inbound call
//! recorded through Twilio's Recordings API, the recording callback, the audio streamed through
//! Switchboard with `Range` (the fake Twilio redirects to a media host that ignores `Range` and
//! refuses forwarded credentials), deletion, and the retention job on a clock the test moves.

mod voice_env;

use switchboard_testkit::twilio::{recording_audio, CallScript};
use voice_env::outbound::*;
use voice_env::*;

impl Env<'_> {
    async fn recording(&self, api: &Api, id: &str, range: Option<&str>) -> reqwest::Response {
        let mut req = self
            .http
            .get(format!("{}/api/v1/calls/{id}/recording", self.base))
            .bearer_auth(&api.key);
        if let Some(r) = range {
            req = req.header("Range", r);
        }
        req.send().await.expect("get recording")
    }

    /// Waits until the API shows the call's recording with this status.
    async fn wait_recording(&self, api: &Api, id: &str, status: &str) -> Value {
        eventually("the recording's status", WAIT, || async {
            let call = self.get_call(api, id).await;
            (call["recording"]["status"] == status).then_some(call)
        })
        .await
    }

    /// Places a recorded call that a person answers, then hangs up; returns its id once its
    /// recording is complete.
    async fn recorded_call(&self, api: &Api, n: usize) -> String {
        let (status, call, _) = self
            .post_call(api, json!({"to": CALLEE, "record": true}), None)
            .await;
        assert_eq!(status, 201, "{call}");
        assert_eq!(call["recording"]["status"], "requested");
        let id = call["id"].as_str().expect("id").to_owned();
        let (sid, media) = self.rest.answered(n, WAIT).await;
        media.stop();
        self.rest.complete(&sid, 2).await;
        self.wait_call_ended(api, &id).await;
        self.wait_recording(api, &id, "completed").await;
        id
    }
}

backend_test!(
    a_recorded_outbound_call_is_served_through_switchboard_with_ranges,
    |db| {
        let mut env = env(db, Behavior::default()).await;
        let org = env.org("Alpha", "+15550001001", &[], None).await;
        let api = env.outbound(&org).await;
        env.rest.script_calls([CallScript::Answer]);
        let id = env.recorded_call(&api, 0).await;
        // The dial asked Twilio to record both channels and report to our callback.
        let created = env.wait_created(1).await;
        let req = &created[0].1;
        assert_eq!(values(req, "Record"), ["true"]);
        assert_eq!(values(req, "RecordingChannels"), ["dual"]);
        assert_eq!(
            values(req, "RecordingStatusCallback"),
            [format!("{PUBLIC}/twilio/voice/recording?call_id={id}").as_str()]
        );
        assert!(values(req, "RecordingStatusCallbackEvent").contains(&"completed"));
        let call = env.get_call(&api, &id).await;
        assert_eq!(
            call["recording_url"],
            format!("/api/v1/calls/{id}/recording")
        );
        assert_eq!(call["recording"]["channels"], 2);
        assert_eq!(call["recording"]["duration_seconds"], 2);
        let shown = call.to_string();
        assert!(
            !shown.contains(&env.rest.url) && !shown.contains("RE"),
            "{shown}"
        );

        // The whole file.
        let audio = recording_audio();
        let res = env.recording(&api, &id, None).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["accept-ranges"], "bytes");
        assert!(res.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("audio/"));
        let headers = format!("{:?}", res.headers());
        assert!(!headers.contains(&env.rest.url) && !headers.contains(ACCOUNT));
        assert_eq!(res.bytes().await.expect("body").as_ref(), audio.as_slice());
        // A range, cut by Switchboard since the media host ignores `Range`.
        let res = env.recording(&api, &id, Some("bytes=100-1099")).await;
        assert_eq!(res.status(), 206);
        assert_eq!(
            res.headers()["content-range"],
            format!("bytes 100-1099/{}", audio.len()).as_str()
        );
        assert_eq!(res.headers()["content-length"], "1000");
        assert_eq!(res.bytes().await.expect("body").as_ref(), &audio[100..1100]);
        // The last bytes, and an open-ended range spanning several chunks.
        let res = env.recording(&api, &id, Some("bytes=-16")).await;
        assert_eq!(res.status(), 206);
        assert_eq!(
            res.bytes().await.expect("body").as_ref(),
            &audio[audio.len() - 16..]
        );
        let res = env.recording(&api, &id, Some("bytes=20000-")).await;
        assert_eq!(res.status(), 206);
        assert_eq!(res.bytes().await.expect("body").as_ref(), &audio[20000..]);
        // Outside the file.
        let res = env
            .recording(&api, &id, Some(&format!("bytes={}-", audio.len())))
            .await;
        assert_eq!(res.status(), 416);
        assert_eq!(
            res.headers()["content-range"],
            format!("bytes */{}", audio.len()).as_str()
        );
        // Every fetch reached the media host through Twilio's redirect, credentials dropped
        // (the host refuses a request that carries them).
        assert_eq!(env.rest.media_fetches().len(), 5);

        // Another organization cannot fetch it.
        let other = env.org("Beta", "+15550002002", &[], None).await;
        let (_, other_key) = env
            .db
            .store
            .create_api_key(&other.id, "other")
            .await
            .expect("key");
        let res = env
            .http
            .get(format!("{}/api/v1/calls/{id}/recording", env.base))
            .bearer_auth(other_key.expose())
            .send()
            .await
            .expect("get");
        assert_eq!(res.status(), 404);

        // Deleted through the API: at Twilio too, and gone here.
        let res = env
            .http
            .delete(format!("{}/api/v1/calls/{id}/recording", env.base))
            .bearer_auth(&api.key)
            .send()
            .await
            .expect("delete");
        assert_eq!(res.status(), 204);
        assert!(env.rest.recordings()[0].deleted);
        let call = env.get_call(&api, &id).await;
        assert_eq!(call["recording"]["status"], "deleted");
        assert!(call["recording_url"].is_null());
        let res = env.recording(&api, &id, None).await;
        assert_eq!(res.status(), 410);
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["error"]["code"], "recording_deleted");
        env.shutdown();
    }
);

backend_test!(retention_deletes_recordings_older_than_the_setting, |db| {
    let mut env = env(db, Behavior::default()).await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    let api = env.outbound(&org).await;
    env.rest
        .script_calls([CallScript::Answer, CallScript::Answer]);
    let old = env.recorded_call(&api, 0).await;
    // Kept while no retention is set, however old.
    env.clock.advance(Duration::from_secs(40 * 86_400));
    assert_eq!(env.recordings.run_once().await.expect("pass"), 0);
    let res = env
        .http
        .put(format!("{}/api/v1/settings", env.base))
        .bearer_auth(&api.key)
        .json(&json!({"recording_retention_days": 30}))
        .send()
        .await
        .expect("settings");
    assert_eq!(res.status(), 200);
    let fresh = env.recorded_call(&api, 1).await;
    assert_eq!(env.recordings.run_once().await.expect("pass"), 1);
    assert_eq!(
        env.get_call(&api, &old).await["recording"]["status"],
        "deleted"
    );
    assert_eq!(
        env.get_call(&api, &fresh).await["recording"]["status"],
        "completed"
    );
    let deleted: Vec<bool> = env.rest.recordings().iter().map(|r| r.deleted).collect();
    assert_eq!(deleted, [true, false]);
    // Thirty-one days on, the second one goes too; a pass finds nothing after that.
    env.clock.advance(Duration::from_secs(31 * 86_400));
    assert_eq!(env.recordings.run_once().await.expect("pass"), 1);
    assert_eq!(env.recordings.run_once().await.expect("pass"), 0);
    // A bad setting is refused by name.
    let res = env
        .http
        .put(format!("{}/api/v1/settings", env.base))
        .bearer_auth(&api.key)
        .json(&json!({"recording_retention_days": 0}))
        .send()
        .await
        .expect("settings");
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"]["field"], "recording_retention_days");
    env.shutdown();
});

backend_test!(
    an_inbound_call_of_a_recording_agent_is_recorded_through_the_api,
    |db| {
        let mut env = env(db, Behavior::default()).await;
        let org = env.org("Alpha", "+15550001001", &[], None).await;
        let api = env.outbound(&org).await;
        let res = env
            .http
            .patch(format!("{}/api/v1/agents/{}", env.base, org.agent))
            .bearer_auth(&api.key)
            .json(&json!({"record": true}))
            .send()
            .await
            .expect("patch");
        assert_eq!(res.status(), 200);
        let sid = "CA00000000000000000000000000000a11";
        let media = env.answer(&org, sid, "+15557770111", 1.0).await;
        env.rest.attach(&media);
        // Once the stream is up, Twilio is asked to record the rest of the call.
        let started = eventually("the recording request", WAIT, || async {
            env.rest
                .requests()
                .into_iter()
                .find(|r| r.resource == "Recordings")
        })
        .await;
        assert_eq!(started.call_sid, sid);
        let form = |k: &str| {
            started
                .form
                .iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(form("RecordingChannels"), ["dual"]);
        let callback = form("RecordingStatusCallback");
        assert!(
            callback[0].starts_with(&format!("{PUBLIC}/twilio/voice/recording?call_id=")),
            "{callback:?}"
        );
        let call = env.call_of(&org, sid).await;
        let id = call.id.to_string();
        env.wait_recording(&api, &id, "in-progress").await;
        // The caller hangs up; Twilio finishes the recording and says so.
        media.stop();
        env.status(&org, sid, "completed", "3", &[("CallDuration", "5")])
            .await;
        env.rest.end_recordings(sid).await;
        env.wait_recording(&api, &id, "completed").await;
        let res = env.recording(&api, &id, Some("bytes=0-43")).await;
        assert_eq!(res.status(), 206);
        assert_eq!(
            res.bytes().await.expect("body").as_ref(),
            &recording_audio()[..44]
        );
        env.shutdown();
    }
);
