//! Admission control: an organization at its cap of calls under way sends the next caller a
//! polite busy message (counted), other organizations and Twilio's retries of admitted calls
//! are unaffected, and a place frees when a call ends; media streams over the instance's cap
//! are refused at the handshake.

mod voice_env;

use voice_env::*;

backend_test!(callers_over_the_call_cap_hear_the_busy_message, |db| {
    let mut env = env_with(db, Behavior::default(), |c| {
        c.limits.max_calls_per_org = 2;
    })
    .await;
    let alpha = env.org("Alpha", "+15550001001", &[], None).await;
    let beta = env.org("Beta", "+15550002002", &[], None).await;
    let sid = |n: u32| format!("CA{n:032}");
    for n in 1..=2 {
        let twiml = env.incoming(&alpha, &sid(n), "+15557770000").await;
        assert!(twiml.contains("<Connect>"), "{twiml}");
    }
    // The third caller hears the busy message; nothing is stored for the call.
    let twiml = env.incoming(&alpha, &sid(3), "+15557770003").await;
    assert!(twiml.contains("lines are busy"), "{twiml}");
    assert!(twiml.contains("<Hangup/>"), "{twiml}");
    assert!(db
        .store
        .find_call_by_sid(&sid(3))
        .await
        .expect("lookup")
        .is_none());
    assert_eq!(env.metric("switchboard_voice_refused_busy_total").await, 1);
    // Twilio retrying the webhook of an admitted call is answered as before.
    let twiml = env.incoming(&alpha, &sid(2), "+15557770000").await;
    assert!(twiml.contains("<Connect>"), "{twiml}");
    // Another organization is not affected.
    let twiml = env.incoming(&beta, &sid(4), "+15557770004").await;
    assert!(twiml.contains("<Connect>"), "{twiml}");
    // When a call ends, its place frees.
    assert_eq!(
        env.status(&alpha, &sid(1), "completed", "3", &[]).await,
        204
    );
    env.wait_ended(&alpha, &sid(1)).await;
    let twiml = env.incoming(&alpha, &sid(5), "+15557770005").await;
    assert!(twiml.contains("<Connect>"), "{twiml}");
    env.shutdown();
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_streams_over_the_instance_cap_are_refused() {
    let db = TestDb::sqlite().await.expect("db");
    let mut env = env_with(&db, Behavior::default(), |c| {
        c.limits.max_websockets = 1;
    })
    .await;
    let url = format!("{}/twilio/media", env.ws);
    // The first stream is open (it has not said `start`, so it waits).
    let (first, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("first stream");
    let second = tokio_tungstenite::connect_async(url.as_str()).await;
    match second {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status().as_u16(), 503)
        }
        other => panic!("the second stream must be refused: {:?}", other.map(|_| ())),
    }
    assert_eq!(env.metric("switchboard_refused_websockets_total").await, 1);
    // Closing the first frees its slot.
    drop(first);
    eventually("the slot to free", WAIT, || async {
        tokio_tungstenite::connect_async(url.as_str())
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    env.shutdown();
    db.drop_db().await;
}

backend_test!(an_api_key_over_its_rate_gets_429_on_every_instance, |db| {
    let mut env = env_with(db, Behavior::default(), |c| {
        // Three at once, then one a minute: nothing refills during the test.
        c.limits.api_rate = switchboard_store::Rate {
            burst: 3,
            per_minute: 1,
        };
    })
    .await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    let (first_key, second_key) = (env.key(&org).await, env.key(&org).await);
    let second = SecondInstance::start(db, env.config.clone()).await;
    let get = |base: String, key: String| {
        let http = env.http.clone();
        async move {
            http.get(format!("{base}/api/v1/agents"))
                .bearer_auth(key)
                .send()
                .await
                .expect("request")
        }
    };
    // The bucket is the key's, whichever instance a request reaches.
    for base in [&env.base, &env.base, &second.base] {
        let res = get(base.clone(), first_key.clone()).await;
        assert_eq!(res.status(), 200);
    }
    let res = get(second.base.clone(), first_key.clone()).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    // Another key has its own bucket.
    assert_eq!(get(env.base.clone(), second_key).await.status(), 200);
    assert_eq!(
        env.metric_of(&second.base, "switchboard_rate_limited_total")
            .await,
        1
    );
    second.stop().await;
    env.shutdown();
});
