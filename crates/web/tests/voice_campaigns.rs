//! Campaigns end to end against the fake Twilio: a CSV of 200 recipients with a bad row, a
//! duplicate and an opted-out contact; the calling window read in the recipients' zone on a
//! clock the test moves; a cap of 5 calls at once as Twilio sees it; retries after no answer,
//! busy and voicemail; pause, resume and a restart mid-run with nobody dialled twice; counts
//! per disposition and the campaign's events. Both backends.

mod voice_env;

use switchboard_testkit::twilio::CallScript;
use voice_env::outbound::*;
use voice_env::*;

const RECIPIENTS: usize = 200;

fn number(i: usize) -> String {
    format!("+1555010{i:04}")
}

impl Env<'_> {
    async fn api_post(&self, api: &Api, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&api.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("post");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn api_get(&self, api: &Api, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&api.key)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json")
    }

    async fn campaign(&self, api: &Api, id: &str) -> Value {
        self.api_get(api, &format!("/api/v1/campaigns/{id}")).await
    }

    /// Waits until the campaign satisfies `check`; a timeout shows the campaign as last seen.
    async fn wait_campaign(
        &self,
        api: &Api,
        id: &str,
        what: &str,
        sweep: bool,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let last = std::sync::Mutex::new(Value::Null);
        let what = format!("{what} (campaign as last seen in the log)");
        let found = eventually(&what, Duration::from_secs(300), || async {
            if sweep {
                // The sweep the server runs on a timer in production (off in these tests):
                // under load a status callback can be lost, and the sweep settles that call
                // from Twilio's Calls API. Not right after a clock jump longer than the
                // instance lease, which would make the live instance look dead.
                self.recovery.run_once().await.expect("sweep");
            }
            let c = self.campaign(api, id).await;
            if check(&c) {
                return Some(c);
            }
            let mut l = last.lock().expect("lock");
            if *l != c {
                eprintln!("campaign now: {}", c["counts"]);
                *l = c;
            }
            None
        })
        .await;
        found
    }

    async fn wait_dials(&self, n: usize) {
        eventually("the dials", Duration::from_secs(300), || async {
            (self.rest.created_calls().len() >= n).then_some(())
        })
        .await;
    }
}

backend_test!(
    a_campaign_calls_within_its_window_and_cap_retries_and_survives_pause_and_restart,
    |db| {
        let mut env = env(db, Behavior::default()).await;
        let org = env.org("Alpha", "+15550001001", &[], None).await;
        let api = env.outbound(&org).await;
        // What each recipient's calls do: answered at once; no answer then answered; busy
        // twice; a machine then no answer.
        for i in 0..RECIPIENTS {
            let scripts = match i % 4 {
                // Twilio refuses the first one at create (no geo permission).
                0 if i == 0 => vec![CallScript::Refuse(
                    400,
                    21215,
                    "Account not authorized to call this number".into(),
                )],
                0 => vec![CallScript::AnswerAndHangUp],
                1 => vec![CallScript::NoAnswer, CallScript::AnswerAndHangUp],
                2 => vec![CallScript::Busy, CallScript::Busy],
                _ => vec![
                    CallScript::Machine("machine_end_beep"),
                    CallScript::NoAnswer,
                ],
            };
            env.rest.script_number(&number(i), scripts);
        }
        // An opted-out contact among them.
        let res = env
            .http
            .post(format!("{}/api/v1/contacts", env.base))
            .bearer_auth(&api.key)
            .json(&json!({"number": "+15550209999", "name": "Out", "opted_out": true}))
            .send()
            .await
            .expect("contact");
        assert_eq!(res.status(), 201);

        let zone = switchboard_testkit::zone_where_it_is(6);
        let (status, created) = env
            .api_post(
                &api,
                "/api/v1/campaigns",
                Some(json!({"name": "Reminders", "timezone": zone,
                    "window": {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "07:00", "end": "20:00"},
                    "max_concurrent_calls": 5, "max_attempts": 2, "retry_delay_seconds": 600,
                    "metadata": {"batch": "nov"}})),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let id = created["campaign"]["id"].as_str().expect("id").to_owned();
        assert_eq!(created["campaign"]["status"], "draft");
        let mut csv = String::from("number,first_name\n");
        for i in 0..RECIPIENTS {
            csv.push_str(&format!("{},Person {i}\n", number(i)));
        }
        csv.push_str("not-a-number,Bad\n");
        csv.push_str(&format!("{},Again\n", number(7)));
        csv.push_str("+15550209999,Out\n");
        let res = env
            .http
            .post(format!("{}/api/v1/campaigns/{id}/recipients", env.base))
            .bearer_auth(&api.key)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .expect("recipients");
        assert_eq!(res.status(), 200);
        let import: Value = res.json().await.expect("json");
        let report = &import["import"];
        assert_eq!(report["accepted"], RECIPIENTS);
        assert_eq!(report["invalid"][0]["row"], RECIPIENTS + 1);
        assert!(report["invalid"][0]["reason"]
            .as_str()
            .expect("reason")
            .contains("not-a-number"));
        let skipped: Vec<&str> = report["skipped"]
            .as_array()
            .expect("skipped")
            .iter()
            .map(|s| s["reason"].as_str().expect("reason"))
            .collect();
        assert_eq!(skipped, ["duplicate of row 8", "opted_out"]);
        assert_eq!(report["preview"][0]["variables"]["first_name"], "Person 0");
        assert_eq!(report["preview"][0]["timezone"], zone.as_str());

        // The bad row blocks the start until skipping it is accepted.
        let (status, body) = env
            .api_post(&api, &format!("/api/v1/campaigns/{id}/start"), None)
            .await;
        assert_eq!(status, 409);
        assert_eq!(body["error"]["code"], "invalid_rows");
        let (status, body) = env
            .api_post(
                &api,
                &format!("/api/v1/campaigns/{id}/start"),
                Some(json!({"skip_invalid_rows": true})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "running");

        // It is 06:xx where the recipients live: nobody is called.
        assert_eq!(env.campaigns.run_once().await.expect("pass"), 0);
        assert!(env.rest.created_calls().is_empty());
        // An hour later the window is open.
        env.clock.advance(Duration::from_secs(3600));
        env.wait_dials(30).await;

        // Pause: once the calls in flight end, nothing new is dialled.
        let (status, body) = env
            .api_post(&api, &format!("/api/v1/campaigns/{id}/pause"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        env.wait_campaign(
            &api,
            &id,
            "the paused campaign's calls to end",
            false,
            |c| c["counts"]["calling"] == 0,
        )
        .await;
        let paused_at = env.rest.created_calls().len();
        assert_eq!(env.campaigns.run_once().await.expect("pass"), 0);
        assert_eq!(env.rest.created_calls().len(), paused_at);
        let (status, _) = env
            .api_post(&api, &format!("/api/v1/campaigns/{id}/resume"), None)
            .await;
        assert_eq!(status, 200);

        // A restart mid-run: paused with nothing in flight, restarted, still paused (the new
        // process dials nobody), then resumed where it stopped. (In-flight dials across a
        // restart are covered by the dial job's own tests and by the sweep that settles calls
        // whose callbacks were lost.)
        env.wait_dials(paused_at + 40).await;
        let (status, _) = env
            .api_post(&api, &format!("/api/v1/campaigns/{id}/pause"), None)
            .await;
        assert_eq!(status, 200);
        env.wait_campaign(&api, &id, "the calls in flight to end", false, |c| {
            c["counts"]["calling"] == 0
        })
        .await;
        let before_restart = env.rest.created_calls().len();
        env.restart().await;
        assert_eq!(env.campaigns.run_once().await.expect("pass"), 0);
        assert_eq!(env.rest.created_calls().len(), before_restart);
        let (status, _) = env
            .api_post(&api, &format!("/api/v1/campaigns/{id}/resume"), None)
            .await;
        assert_eq!(status, 200);

        // The first round ends: a quarter done, the rest waiting for their retry.
        let last = std::sync::Mutex::new(Value::Null);
        let c = eventually("the first round", Duration::from_secs(300), || async {
            env.recovery.run_once().await.expect("sweep");
            let c = env.campaign(&api, &id).await;
            if c["counts"]["calling"] == 0 && c["counts"]["pending"] == 3 * RECIPIENTS / 4 {
                return Some(c);
            }
            let mut l = last.lock().expect("lock");
            if l["counts"] != c["counts"] {
                eprintln!("campaign now: {}", c["counts"]);
                *l = c;
            }
            None
        })
        .await;
        assert_eq!(c["counts"]["done"], RECIPIENTS / 4);
        assert_eq!(env.rest.created_calls().len(), RECIPIENTS - 1);
        // The retries are due ten minutes later.
        env.clock.advance(Duration::from_secs(601));
        let c = env
            .wait_campaign(&api, &id, "the campaign to complete", true, |c| {
                c["status"] == "completed"
            })
            .await;
        let counts = &c["counts"];
        assert_eq!(counts["done"], RECIPIENTS, "{counts}");
        assert_eq!(counts["skipped"], 2);
        assert_eq!(counts["invalid"], 1);
        assert_eq!(
            counts["outcomes"],
            json!({"completed": RECIPIENTS / 2 - 1, "failed": 1, "busy": RECIPIENTS / 4, "no_answer": RECIPIENTS / 4})
        );
        // The refused one says why, and the campaign moved on.
        let first = env
            .api_get(&api, &format!("/api/v1/campaigns/{id}/recipients?limit=1"))
            .await;
        assert_eq!(first[0]["outcome"], "failed");
        let refused = env
            .get_call(&api, first[0]["call_id"].as_str().expect("call"))
            .await;
        assert_eq!(refused["twilio_error_code"], 21215);

        // Twilio never saw more than 5 calls at once, and nobody was dialled more often than
        // their attempts say.
        assert!(
            env.rest.max_active_calls() <= 5,
            "{}",
            env.rest.max_active_calls()
        );
        // Every create request, the refused one included (it made no call).
        let creates: Vec<_> = env
            .rest
            .requests()
            .into_iter()
            .filter(|r| r.resource == "Calls.json")
            .collect();
        assert_eq!(creates.len(), RECIPIENTS + 3 * RECIPIENTS / 4);
        let mut per_number = std::collections::HashMap::<String, i64>::new();
        for req in &creates {
            *per_number
                .entry(values(req, "To")[0].to_owned())
                .or_default() += 1;
        }
        let mut after = 0;
        loop {
            let page = env
                .api_get(
                    &api,
                    &format!(
                        "/api/v1/campaigns/{id}/recipients?status=done&limit=100&after={after}"
                    ),
                )
                .await;
            let rows = page.as_array().expect("rows");
            if rows.is_empty() {
                break;
            }
            for r in rows {
                let n = r["number"].as_str().expect("number");
                assert_eq!(per_number.get(n).copied(), r["attempts"].as_i64(), "{r}");
                after = r["row"].as_i64().expect("row");
            }
        }
        // The calls carry the campaign; the events say it started and completed.
        let calls = env
            .api_get(&api, "/api/v1/calls?direction=outbound&limit=5")
            .await;
        assert_eq!(calls["data"][0]["campaign_id"], id.as_str());
        assert_eq!(calls["data"][0]["metadata"]["batch"], "nov");
        let mut kinds = Vec::new();
        let mut after = 0;
        loop {
            let page = env
                .api_get(&api, &format!("/api/v1/events?after={after}&limit=1000"))
                .await;
            let data = page["data"].as_array().expect("events").clone();
            if data.is_empty() {
                break;
            }
            for e in &data {
                let kind = e["type"].as_str().unwrap_or_default().to_owned();
                if kind.starts_with("campaign.") {
                    assert_eq!(e["payload"]["data"]["campaign"]["id"], id.as_str(), "{e}");
                    kinds.push(kind);
                }
            }
            after = page["next_after"].as_i64().expect("next");
        }
        assert_eq!(kinds, ["campaign.started", "campaign.completed"]);
        env.shutdown();
    }
);

backend_test!(
    a_campaign_waits_for_its_start_and_refuses_bad_input_by_name,
    |db| {
        let mut env = env(db, Behavior::default()).await;
        let org = env.org("Alpha", "+15550001001", &[], None).await;
        let api = env.outbound(&org).await;
        let all_week = json!({"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "23:59"});
        // Bad settings are refused by field, and nothing is created.
        for (body, field) in [
            (json!({"name": "X", "agent_id": "agt_nope"}), "agent_id"),
            (
                json!({"name": "X", "from_number": "+15550009999"}),
                "from_number",
            ),
            (
                json!({"name": "X", "window": {"start": "18:00", "end": "09:00"}}),
                "window.end",
            ),
            (json!({"name": "X", "timezone": "Mars/Base"}), "timezone"),
            (
                json!({"name": "X", "max_concurrent_calls": 0}),
                "max_concurrent_calls",
            ),
            (json!({"name": ""}), "name"),
        ] {
            let (status, res) = env.api_post(&api, "/api/v1/campaigns", Some(body)).await;
            assert_eq!(status, 422, "{res}");
            assert_eq!(res["error"]["field"], field, "{res}");
        }
        let listed = env.api_get(&api, "/api/v1/campaigns").await;
        assert_eq!(listed["data"], json!([]));
        // A campaign that starts in an hour (the window covers the whole day in UTC+14, the
        // furthest zone ahead, so only the start time holds it back).
        let start_at = Timestamp::from_millis(env.clock.now().millis() + 3_600_000);
        let (status, created) = env
            .api_post(
                &api,
                "/api/v1/campaigns",
                Some(json!({"name": "Later", "timezone": "Etc/GMT-14", "window": all_week,
                    "start_at": start_at.to_rfc3339(),
                    "recipients": [{"number": "+15550400001"}, {"number": "12"}, {"name": "no number"}]})),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let id = created["campaign"]["id"].as_str().expect("id").to_owned();
        assert_eq!(created["import"]["accepted"], 1);
        let reasons: Vec<&str> = created["import"]["invalid"]
            .as_array()
            .expect("invalid")
            .iter()
            .map(|r| r["reason"].as_str().expect("reason"))
            .collect();
        assert!(
            reasons[0].contains("`12`") && reasons[1] == "no number",
            "{reasons:?}"
        );
        // Not a running campaign: pause is refused; unreadable rows block the start.
        let (status, res) = env
            .api_post(&api, &format!("/api/v1/campaigns/{id}/pause"), None)
            .await;
        assert_eq!(
            (status, res["error"]["code"].as_str()),
            (409, Some("campaign_state"))
        );
        let (status, res) = env
            .api_post(&api, &format!("/api/v1/campaigns/{id}/start"), None)
            .await;
        assert_eq!(
            (status, res["error"]["code"].as_str()),
            (409, Some("invalid_rows"))
        );
        env.rest
            .script_number("+15550400001", [CallScript::NoAnswer]);
        let (status, _) = env
            .api_post(
                &api,
                &format!("/api/v1/campaigns/{id}/start"),
                Some(json!({"skip_invalid_rows": true})),
            )
            .await;
        assert_eq!(status, 200);
        // Recipients can no longer be added.
        let res = env
            .http
            .post(format!("{}/api/v1/campaigns/{id}/recipients", env.base))
            .bearer_auth(&api.key)
            .header("content-type", "text/csv")
            .body("number\n+15550400002\n")
            .send()
            .await
            .expect("post");
        assert_eq!(res.status(), 409);
        // Before its start time nobody is called; after it, the call goes out.
        assert_eq!(env.campaigns.run_once().await.expect("pass"), 0);
        assert!(env.rest.created_calls().is_empty());
        env.clock.advance(Duration::from_secs(3601));
        env.wait_campaign(&api, &id, "the campaign to complete", false, |c| {
            c["status"] == "completed"
        })
        .await;
        assert_eq!(env.rest.created_calls().len(), 1);
        // A finished campaign cannot be resumed or canceled.
        let (status, _) = env
            .api_post(&api, &format!("/api/v1/campaigns/{id}/cancel"), None)
            .await;
        assert_eq!(status, 409);
        env.shutdown();
    }
);
