//! Numbers must be proven: Switchboard asks Twilio (IncomingPhoneNumbers, with the
//! organization's own credentials) whether a number is in the organization's account, at
//! registration, when credentials change and on demand; production routes only verified
//! numbers, development routes the others with a warning; a number another organization has
//! verified cannot be claimed, and the refusal does not say who holds it.

mod voice_env;

use reqwest::Method;
use voice_env::*;

const OTHER_ACCOUNT: &str = "AC99999999999999999999999999999999";

/// The organization's numbers as the API lists them, by number and channel.
async fn numbers(env: &Env<'_>, key: &str) -> Vec<Value> {
    let (status, body) = env
        .call_api(Method::GET, key, "/api/v1/phone-numbers", None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().expect("data").clone()
}

async fn number(env: &Env<'_>, key: &str, number: &str, channel: &str) -> Value {
    numbers(env, key)
        .await
        .into_iter()
        .find(|n| n["number"] == number && n["channel"] == channel)
        .unwrap_or_else(|| panic!("{number} ({channel}) is not listed"))
}

async fn register(env: &Env<'_>, key: &str, n: &str, channel: &str) -> (u16, Value) {
    env.call_api(
        Method::POST,
        key,
        "/api/v1/phone-numbers",
        Some(json!({"number": n, "channel": channel})),
    )
    .await
}

async fn verify(env: &Env<'_>, key: &str, n: &Value) -> Value {
    let path = format!(
        "/api/v1/phone-numbers/{}/verify",
        n["id"].as_str().expect("id")
    );
    let (status, body) = env.call_api(Method::POST, key, &path, None).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn state(n: &Value) -> (String, String) {
    (
        n["verification"].as_str().unwrap_or_default().to_owned(),
        n["verification_reason"].as_str().unwrap_or("-").to_owned(),
    )
}

fn pending(reason: &str) -> (String, String) {
    ("pending_verification".into(), reason.into())
}

fn verified() -> (String, String) {
    ("verified".into(), "-".into())
}

backend_test!(
    numbers_are_proven_with_the_organizations_twilio_account,
    |db| {
        let mut env = env(db, Behavior::default()).await;
        let org = env.org("Alpha", "+15550001001", &[], None).await;
        let key = env.key(&org).await;
        env.rest.add_account(ACCOUNT, &org.token);
        // Twilio's PhoneNumber filter matches partial numbers: a longer number containing this
        // one comes first in the answer, and must not be taken for it.
        env.rest
            .add_incoming_number(ACCOUNT, "+155500010019", true, true);
        env.rest
            .add_incoming_number(ACCOUNT, "+15550001001", true, true);
        env.rest
            .add_incoming_number(ACCOUNT, "+15550001002", false, true);

        // A number registered before verification existed (here: straight into the store) waits
        // for a check; on demand, it is proven.
        let existing = number(&env, &key, "+15550001001", "voice").await;
        assert_eq!(state(&existing), pending("not_checked"), "{existing}");
        let after = verify(&env, &key, &existing).await;
        assert_eq!(state(&after), verified(), "{after}");
        assert!(after["verification_checked_at"].is_string(), "{after}");
        assert!(
            after["verification_message"]
                .as_str()
                .is_some_and(|m| m.contains(ACCOUNT)),
            "{after}"
        );

        // Registration checks at once: capabilities count per channel.
        let (status, voice_only_sms) = register(&env, &key, "+15550001002", "voice").await;
        assert_eq!(status, 201, "{voice_only_sms}");
        assert_eq!(state(&voice_only_sms), pending("missing_capability"));
        let (status, sms) = register(&env, &key, "+15550001002", "sms").await;
        assert_eq!(status, 201, "{sms}");
        assert_eq!(state(&sms), verified(), "{sms}");
        let (status, stranger) = register(&env, &key, "+15550009999", "voice").await;
        assert_eq!(status, 201, "{stranger}");
        assert_eq!(state(&stranger), pending("not_in_account"), "{stranger}");

        // Twilio unreachable: a pending number says so; a verified one stays verified.
        env.rest.fail_number_lookups(Some(503));
        assert_eq!(
            state(&verify(&env, &key, &stranger).await),
            pending("twilio_unreachable")
        );
        assert_eq!(state(&verify(&env, &key, &after).await), verified());
        env.rest.fail_number_lookups(None);
        // The number arrives in the account: proven on the next check.
        env.rest
            .add_incoming_number(ACCOUNT, "+15550009999", true, true);
        assert_eq!(state(&verify(&env, &key, &stranger).await), verified());

        // New credentials re-check every number in the background: a wrong token is refused
        // by Twilio, and the numbers lose their proof until the right one is back.
        let (status, body) = env
            .call_api(
                Method::PUT,
                &key,
                "/api/v1/settings",
                Some(json!({"twilio_auth_token": "not-the-token"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        eventually("the numbers to be re-checked", WAIT, || async {
            let all = numbers(&env, &key).await;
            all.iter()
                .all(|n| state(n) == pending("credentials_rejected"))
                .then_some(())
        })
        .await;
        let (status, body) = env
            .call_api(
                Method::PUT,
                &key,
                "/api/v1/settings",
                Some(json!({"twilio_auth_token": org.token})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        eventually("the numbers to be proven again", WAIT, || async {
            let n = number(&env, &key, "+15550001001", "voice").await;
            (state(&n) == verified()).then_some(())
        })
        .await;
        let unknown = env
            .call_api(
                Method::POST,
                &key,
                "/api/v1/phone-numbers/pn_missing/verify",
                None,
            )
            .await;
        assert_eq!(unknown.0, 404, "{}", unknown.1);
        env.shutdown();
    }
);

backend_test!(
    a_number_proven_elsewhere_cannot_be_claimed_and_the_owner_stays_hidden,
    |db| {
        let mut env = env(db, Behavior::default()).await;
        let owner = env.org("Owner", "+15550001001", &[], None).await;
        let squatter = env.org("Squatter", "+15550002002", &[], None).await;
        let (owner_key, squatter_key) = (env.key(&owner).await, env.key(&squatter).await);
        env.rest.add_account(ACCOUNT, &owner.token);
        env.rest
            .add_incoming_number(ACCOUNT, "+15550003003", true, true);
        // The squatter's own Twilio account does not hold the number.
        let (status, body) = env
        .call_api(
            Method::PUT,
            &squatter_key,
            "/api/v1/settings",
            Some(json!({"twilio_account_sid": OTHER_ACCOUNT, "twilio_auth_token": "other-token"})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        env.rest.add_account(OTHER_ACCOUNT, "other-token");

        // The squatter claims first: pending, and it does not block the owner.
        let (status, claim) = register(&env, &squatter_key, "+15550003003", "voice").await;
        assert_eq!(status, 201, "{claim}");
        assert_eq!(state(&claim), pending("not_in_account"));
        let (status, proven) = env
        .call_api(
            Method::POST,
            &owner_key,
            "/api/v1/phone-numbers",
            Some(json!({"number": "+15550003003", "channel": "voice", "agent_id": owner.agent.as_str()})),
        )
        .await;
        assert_eq!(status, 201, "{proven}");
        assert_eq!(state(&proven), verified(), "{proven}");

        // Now nobody else can claim it; the refusal reads exactly like registering a number
        // twice in one's own organization, so it does not reveal that someone holds it.
        let late = env.org("Late", "+15550004004", &[], None).await;
        let late_key = env.key(&late).await;
        let (status, elsewhere) = register(&env, &late_key, "+15550003003", "voice").await;
        assert_eq!(status, 409, "{elsewhere}");
        let (status, twice) = register(&env, &owner_key, "+15550003003", "voice").await;
        assert_eq!(status, 409, "{twice}");
        assert_eq!(elsewhere, twice);
        let text = elsewhere.to_string();
        assert!(
            !text.contains("Owner") && !text.contains(owner.id.as_str()),
            "{text}"
        );

        // Calls reach the proven owner, not the earlier claim (the request is signed with the
        // owner's token, which only the owner's route accepts).
        let twiml = env
            .incoming(
                &Org {
                    id: owner.id.clone(),
                    agent: owner.agent.clone(),
                    number: "+15550003003".into(),
                    token: owner.token.clone(),
                },
                &format!("CA{:032}", 1),
                "+15557770000",
            )
            .await;
        assert!(twiml.contains("<Connect>"), "{twiml}");
        env.shutdown();
    }
);

backend_test!(production_routes_only_verified_numbers, |db| {
    let mut env = env_with(db, Behavior::default(), |c| {
        c.require_verified_numbers = true;
    })
    .await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    let key = env.key(&org).await;
    // An SMS number on the same agent, registered through the API.
    let (status, sms) = env
        .call_api(
            Method::POST,
            &key,
            "/api/v1/phone-numbers",
            Some(
                json!({"number": "+15550001005", "channel": "sms", "agent_id": org.agent.as_str()}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{sms}");
    assert_eq!(state(&sms), pending("credentials_rejected"), "{sms}");

    // Unverified: the caller hears the not-in-service message and nothing is stored.
    let twiml = env
        .incoming(&org, &format!("CA{:032}", 1), "+15557770000")
        .await;
    assert!(twiml.contains("not in service"), "{twiml}");
    assert!(db
        .store
        .find_call_by_sid(&format!("CA{:032}", 1))
        .await
        .expect("lookup")
        .is_none());
    assert_eq!(
        env.text(
            &org,
            "+15557770001",
            "+15550001005",
            &format!("SM{:032}", 1)
        )
        .await
        .0,
        200
    );
    let (_, convs) = env
        .call_api(Method::GET, &key, "/api/v1/conversations", None)
        .await;
    assert_eq!(convs["data"].as_array().map(Vec::len), Some(0), "{convs}");

    // Proven: it routes.
    env.rest.add_account(ACCOUNT, &org.token);
    env.rest
        .add_incoming_number(ACCOUNT, "+15550001001", true, true);
    env.rest
        .add_incoming_number(ACCOUNT, "+15550001005", true, true);
    let voice = number(&env, &key, "+15550001001", "voice").await;
    assert_eq!(state(&verify(&env, &key, &voice).await), verified());
    assert_eq!(state(&verify(&env, &key, &sms).await), verified());
    let twiml = env
        .incoming(&org, &format!("CA{:032}", 2), "+15557770000")
        .await;
    assert!(twiml.contains("<Connect>"), "{twiml}");
    assert_eq!(
        env.text(
            &org,
            "+15557770001",
            "+15550001005",
            &format!("SM{:032}", 2)
        )
        .await
        .0,
        200
    );
    eventually("the text to be stored", WAIT, || async {
        let (_, convs) = env
            .call_api(Method::GET, &key, "/api/v1/conversations", None)
            .await;
        let texts = convs["data"]
            .as_array()
            .map(|all| all.iter().filter(|c| c["channel"] == "sms").count());
        (texts == Some(1)).then_some(())
    })
    .await;
    env.shutdown();
});

backend_test!(
    development_routes_unverified_numbers_and_the_dashboard_shows_why,
    |db| {
        let mut env = env(db, Behavior::default()).await;
        let org = env.org("Alpha", "+15550001001", &[], None).await;
        // Not verified (Twilio does not know the account), but development routes it.
        let twiml = env
            .incoming(&org, &format!("CA{:032}", 1), "+15557770000")
            .await;
        assert!(twiml.contains("<Connect>"), "{twiml}");

        let admin = env.dashboard_admin(&org, "admin@alpha.test").await;
        let page = admin.get("/phone-numbers").await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("pending verification"), "{}", page.body);
        assert!(
            page.body.contains("production would refuse it"),
            "{}",
            page.body
        );
        // The Verify button checks again and says what came of it.
        let id = db
            .store
            .all_numbers(&org.id)
            .await
            .expect("numbers")
            .remove(0)
            .id;
        env.rest.add_account(ACCOUNT, &org.token);
        env.rest
            .add_incoming_number(ACCOUNT, "+15550001001", true, true);
        let done = admin
            .submit(
                "/phone-numbers",
                &format!("/phone-numbers/{id}/verify"),
                &[],
            )
            .await;
        assert_eq!(done.status, 303, "{}", done.body);
        assert!(done.location.contains("verified"), "{}", done.location);
        let page = admin.get(&done.location).await;
        assert!(page.body.contains("verified with Twilio"), "{}", page.body);
        assert!(!page.body.contains("pending verification"), "{}", page.body);
        // Registering from the dashboard checks at once too.
        let added = admin
            .submit(
                "/phone-numbers",
                "/phone-numbers",
                &[
                    ("number", "+15550001009"),
                    ("channel", "sms"),
                    ("agent_id", ""),
                ],
            )
            .await;
        assert_eq!(added.status, 303, "{}", added.body);
        assert!(added.location.contains("pending"), "{}", added.location);
        env.shutdown();
    }
);

backend_test!(
    numbers_never_checked_are_checked_when_a_server_starts,
    |db| {
        let mut env = env(db, Behavior::default()).await;
        // Registered while this instance was already up, straight into the store, as rows that
        // predate verification are after the upgrade.
        let org = env.org("Alpha", "+15550001001", &[], None).await;
        let key = env.key(&org).await;
        env.rest.add_account(ACCOUNT, &org.token);
        env.rest
            .add_incoming_number(ACCOUNT, "+15550001001", true, true);
        let lookups = env.rest.number_lookups();
        let second = SecondInstance::start(db, env.config.clone()).await;
        eventually("the starting server to check the number", WAIT, || async {
            let n = number(&env, &key, "+15550001001", "voice").await;
            (state(&n) == verified()).then_some(())
        })
        .await;
        assert_eq!(env.rest.number_lookups(), lookups + 1);
        second.stop().await;
        env.shutdown();
    }
);
