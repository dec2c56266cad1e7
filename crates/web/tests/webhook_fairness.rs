//! Webhook deliveries are fair: one organization's receiver that hangs holds only its own
//! attempts (at most the per-endpoint cap in flight), and another organization's deliveries go
//! out meanwhile, through the real background worker.

mod voice_env;

use switchboard_testkit::webhooks::WebhookReceiver;
use voice_env::*;

backend_test!(
    a_hanging_endpoint_does_not_delay_another_orgs_deliveries,
    |db| {
        let slow = WebhookReceiver::start().await;
        // Longer than the test: with a loop that waits for a whole batch, nothing else would go
        // out before the deadline below.
        slow.set_delay(Duration::from_secs(600));
        let fast = WebhookReceiver::start().await;
        let mut env = env_with(db, Behavior::default(), |c| {
            c.jobs.allow_private_targets = true;
            c.jobs.webhook_timeout = Duration::from_secs(600);
            c.jobs.webhook_concurrency = 4;
            c.jobs.endpoint_concurrency = 2;
        })
        .await;
        let alpha = env.org("Alpha", "+15550001001", &[], None).await;
        let beta = env.org("Beta", "+15550002002", &[], None).await;
        for (org, receiver) in [(&alpha, &slow), (&beta, &fast)] {
            let key = env.key(org).await;
            let (status, ep) = env
                .call_api(
                    reqwest::Method::POST,
                    &key,
                    "/api/v1/webhook-endpoints",
                    Some(json!({"url": receiver.url, "event_types": ["call.started"]})),
                )
                .await;
            assert_eq!(status, 201, "{ep}");
            receiver.set_secret(ep["secret"].as_str().expect("secret"));
        }
        // Five calls of Alpha: their deliveries go to the receiver that hangs.
        for i in 0..5 {
            env.incoming(&alpha, &format!("CA{i:032}"), "+15557770000")
                .await;
        }
        slow.wait_arrived(2, WAIT).await;
        // A call of Beta meanwhile: delivered while Alpha's attempts still hang.
        env.incoming(&beta, "CA0000000000000000000000000000beef", "+15557770001")
            .await;
        let got = fast.wait_for(1, WAIT).await;
        assert_eq!(got[0].json["type"], "call.started");
        assert!(got[0].verified);
        assert!(
            slow.received().is_empty(),
            "Alpha's attempts are still hanging"
        );
        assert_eq!(
            slow.arrivals(),
            2,
            "no more than the per-endpoint cap in flight to one receiver"
        );
        env.shutdown();
    }
);
