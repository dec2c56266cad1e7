//! Text-agent replies in flight per organization: an organization at its cap has the next
//! text stored and its reply queued until a slot frees (then sent through the REST API),
//! while another organization's replies go on; a second instance's worker does not take the
//! queued reply early either.

mod voice_env;

use switchboard_testkit::chat::FakeChatModel;
use voice_env::*;

async fn sms_number(env: &Env<'_>, org: &Org, number: &str) {
    env.db
        .store
        .create_number(
            &org.id,
            NewPhoneNumber {
                number: PhoneNumber::parse(number).expect("e164"),
                channel: NumberChannel::Sms,
                agent_id: Some(org.agent.clone()),
                active: None,
            },
        )
        .await
        .expect("sms number");
}

backend_test!(
    an_organization_at_its_reply_cap_queues_the_next_reply,
    |db| {
        let chat = FakeChatModel::start().await;
        let mut env = {
            let url = chat.url.clone();
            env_with(db, Behavior::default(), move |c| {
                c.llm.base_url = url;
                c.llm.api_key = Some(Secret::new("sk-test-chat-key"));
                c.llm.model = "fake-chat-1".into();
                c.messaging.max_replies_per_org = 2;
                // The webhook answers at once; replies then go out through the REST API.
                c.messaging.reply_budget = Duration::from_millis(1);
            })
            .await
        };
        let alpha = env.org("Alpha", "+15550001001", &[], None).await;
        let beta = env.org("Beta", "+15550002002", &[], None).await;
        sms_number(&env, &alpha, "+15550001005").await;
        sms_number(&env, &beta, "+15550002005").await;
        chat.hold();
        let sid = |n: u32| format!("SM{n:032}");
        // Two replies in flight: the model holds them.
        for n in 1..=2 {
            env.text(&alpha, &format!("+1555777000{n}"), "+15550001005", &sid(n))
                .await;
        }
        eventually("two replies at the model", WAIT, || async {
            (chat.in_flight() == 2).then_some(())
        })
        .await;
        // The third text is stored; its reply waits.
        let (_, twiml) = env
            .text(&alpha, "+15557770003", "+15550001005", &sid(3))
            .await;
        assert!(!twiml.contains("<Message"), "{twiml}");
        assert_eq!(
            env.metric("switchboard_messaging_replies_deferred_total")
                .await,
            1
        );
        // Another instance's worker does not take it while the two are in flight.
        let claimed = db
            .store
            .claim_jobs_per_org(
                "another-instance",
                switchboard_messaging::REPLY_JOB,
                Timestamp::now(),
                60_000,
                32,
                2,
            )
            .await
            .expect("claim");
        assert!(claimed.is_empty(), "{claimed:?}");
        // Another organization is not held back by Alpha's cap.
        env.text(&beta, "+15557770009", "+15550002005", &sid(9))
            .await;
        eventually("Beta's reply at the model", WAIT, || async {
            (chat.in_flight() == 3).then_some(())
        })
        .await;
        assert_eq!(chat.max_in_flight(), 3, "Alpha never had more than two");

        // Released: every reply goes out, the queued one through the worker.
        chat.release();
        eventually("four replies sent", WAIT, || async {
            let sent = env
                .rest
                .requests
                .lock()
                .expect("requests")
                .iter()
                .filter(|r| r.resource == "Messages")
                .count();
            (sent == 4).then_some(())
        })
        .await;
        assert_eq!(chat.max_in_flight(), 3);
        env.shutdown();
    }
);
