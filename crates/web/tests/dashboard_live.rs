//! A live page's event stream starts where the page's render did: an event committed after
//! the page was read but before its stream opened still reaches it (`data-live-since` and
//! `/live?since=`), so the page cannot be left showing a stale state.

mod voice_env;

use voice_env::*;

backend_test!(
    a_live_page_misses_no_event_between_render_and_stream,
    |db| {
        let mut env = env(db, Behavior::default()).await;
        let org = env.org("Alpha", "+15550001001", &[], None).await;
        let admin = env.dashboard_admin(&org, "admin@alpha.test").await;
        let page = admin.get("/calls").await;
        assert_eq!(page.status, 200);
        let key = "data-live-since=\"";
        let at = page
            .body
            .find(key)
            .unwrap_or_else(|| panic!("{}", page.body))
            + key.len();
        let since: i64 = page.body[at..at + page.body[at..].find('"').expect("end")]
            .parse()
            .expect("a sequence");
        // A call starts after the page was rendered, before its stream opens.
        env.incoming(&org, "CA00000000000000000000000000000001", "+15557770000")
            .await;
        let mut res = reqwest::Client::new()
            .get(format!("{}/live?since={since}", env.base))
            .header(reqwest::header::COOKIE, &admin.cookie)
            .send()
            .await
            .expect("stream");
        assert_eq!(res.status(), 200);
        let mut buf = String::new();
        let event = tokio::time::timeout(WAIT, async {
            loop {
                let chunk = res.chunk().await.expect("chunk").expect("open");
                buf.push_str(&String::from_utf8_lossy(&chunk));
                if let Some(line) = buf.lines().find_map(|l| l.strip_prefix("data:")) {
                    break serde_json::from_str::<Value>(line.trim()).expect("json");
                }
            }
        })
        .await
        .expect("the event in time");
        assert_eq!(event["type"], "call.started", "{event}");
        assert!(event["sequence"].as_i64().expect("sequence") > since);
        env.shutdown();
    }
);
