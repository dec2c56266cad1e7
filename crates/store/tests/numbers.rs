//! Number claims across organizations: several may claim a number while it is unverified,
//! at most one claim is verified, routing prefers it, and a refusal never says who holds it.

use switchboard_domain::entities::NewPhoneNumber;
use switchboard_domain::ids::AgentId;
use switchboard_domain::values::{NumberChannel, NumberVerification, PhoneNumber};
use switchboard_domain::Timestamp;
use switchboard_store::{backend_test, NumberCheck, Store, StoreError};

fn phone(s: &str) -> PhoneNumber {
    PhoneNumber::parse(s).expect("valid number")
}

fn new_number(n: &str, channel: NumberChannel, agent: Option<AgentId>) -> NewPhoneNumber {
    NewPhoneNumber {
        number: phone(n),
        channel,
        agent_id: agent,
        active: None,
    }
}

backend_test!(number_claims_are_decided_by_verification, |db| {
    let store = &db.store;
    let now = Timestamp::now();
    let squatter = store.create_org("Squatter").await.expect("org");
    let owner = store.create_org("Owner").await.expect("org");
    let late = store.create_org("Late").await.expect("org");
    let voice = |n: &str| new_number(n, NumberChannel::Voice, None);
    let first = store
        .create_number(&squatter.id, voice("+15555550123"))
        .await
        .expect("first claim");
    // An unverified first claim does not block the real owner's claim.
    let real = store
        .create_number(&owner.id, voice("+15555550123"))
        .await
        .expect("second claim");
    let route = |db: &Store| {
        let db = db.clone();
        async move {
            db.route_number(&phone("+15555550123"), NumberChannel::Voice)
                .await
                .expect("route")
                .expect("routed")
        }
    };
    // With no verified claim, the oldest routes (in development only), unverified.
    let r = route(store).await;
    assert_eq!((r.org_id.clone(), r.verified), (squatter.id.clone(), false));

    let proven = store
        .record_number_check(
            &owner.id,
            &real.id,
            NumberCheck::Verified("in AC1".into()),
            now,
        )
        .await
        .expect("verified");
    assert_eq!(proven.verification, NumberVerification::Verified);
    assert_eq!(proven.verification_reason, None);
    assert_eq!(proven.verification_checked_at, Some(now));
    let r = route(store).await;
    assert_eq!((r.org_id.clone(), r.verified), (owner.id.clone(), true));
    let (with_creds, _) = store
        .route_number_with_credentials(&phone("+15555550123"), NumberChannel::Voice)
        .await
        .expect("route")
        .expect("routed");
    assert_eq!(with_creds.org_id, owner.id);

    // At most one verified claim: a second proof is recorded as held elsewhere.
    let other = store
        .record_number_check(
            &squatter.id,
            &first.id,
            NumberCheck::Verified("in AC2".into()),
            now,
        )
        .await
        .expect("recorded");
    assert_eq!(other.verification, NumberVerification::PendingVerification);
    assert_eq!(
        other.verification_reason.as_deref(),
        Some("verified_elsewhere")
    );
    // A new claim on a verified number is refused with the same words as a duplicate in
    // the organization itself: nothing tells who holds it.
    let refused = store
        .create_number(&late.id, voice("+15555550123"))
        .await
        .expect_err("verified elsewhere");
    let duplicate = store
        .create_number(&owner.id, voice("+15555550123"))
        .await
        .expect_err("duplicate");
    assert_eq!(refused.to_string(), duplicate.to_string());
    assert!(matches!(refused, StoreError::Conflict(_)), "{refused:?}");

    // Twilio unreachable: a verified number stays verified, a pending one says why.
    let kept = store
        .record_number_check(
            &owner.id,
            &real.id,
            NumberCheck::Unreachable("503".into()),
            now,
        )
        .await
        .expect("recorded");
    assert_eq!(kept.verification, NumberVerification::Verified);
    let waiting = store
        .record_number_check(
            &squatter.id,
            &first.id,
            NumberCheck::Unreachable("503".into()),
            now,
        )
        .await
        .expect("recorded");
    assert_eq!(
        waiting.verification_reason.as_deref(),
        Some("twilio_unreachable")
    );

    // A proof can be withdrawn (the number left the account); then another claim may win.
    store
        .record_number_check(
            &owner.id,
            &real.id,
            NumberCheck::Pending("not_in_account", "gone".into()),
            now,
        )
        .await
        .expect("recorded");
    let won = store
        .record_number_check(
            &squatter.id,
            &first.id,
            NumberCheck::Verified("ported".into()),
            now,
        )
        .await
        .expect("verified");
    assert_eq!(won.verification, NumberVerification::Verified);
    let r = route(store).await;
    assert_eq!((r.org_id, r.verified), (squatter.id.clone(), true));
    let listed = store.all_numbers(&squatter.id).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].verification, NumberVerification::Verified);
});

/// A database as the release before number verification left it (one claim per number and
/// channel platform-wide), with a number, then upgraded.
async fn upgrade_keeps_old_claims(backend: switchboard_store::Backend) {
    use switchboard_store::testing::TestDb;
    let Some(db) = TestDb::through(backend, 24).await.expect("database at 24") else {
        return;
    };
    let store = &db.store;
    let org = store.create_org("Old").await.expect("org");
    // Written as the connecting login (the schema owner; past row-level security), the way
    // the old release's rows are there.
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&db.url)
        .await
        .expect("connect");
    sqlx::query(
        "INSERT INTO phone_numbers (id, org_id, number, channel, agent_id, active, created_at) \
         VALUES ('pn_old', $1, '+15555550123', 'voice', NULL, 1, 1)",
    )
    .bind(org.id.as_str())
    .execute(&mut conn)
    .await
    .expect("old row");
    sqlx::Connection::close(conn).await.expect("close");

    let applied = store.migrate().await.expect("upgrade");
    assert_eq!(applied.first(), Some(&25), "{applied:?}");
    let old = store.all_numbers(&org.id).await.expect("numbers");
    assert_eq!(old.len(), 1, "{old:?}");
    assert_eq!(old[0].number, phone("+15555550123"));
    assert_eq!(old[0].verification, NumberVerification::PendingVerification);
    assert_eq!(old[0].verification_reason.as_deref(), Some("not_checked"));
    assert!(old[0].verification_message.is_some());
    // Numbers registered from now on start with no reason left behind by the defaults.
    let fresh = store
        .create_number(
            &org.id,
            new_number("+15555550124", NumberChannel::Voice, None),
        )
        .await
        .expect("new number");
    assert_eq!(fresh.verification_reason.as_deref(), Some("not_checked"));
    // The platform-wide constraint is gone: another organization may claim it now, and
    // routing still finds the old claim (the oldest) until one is verified.
    let other = store.create_org("New").await.expect("org");
    store
        .create_number(
            &other.id,
            new_number("+15555550123", NumberChannel::Voice, None),
        )
        .await
        .expect("second claim");
    let route = store
        .route_number(&phone("+15555550123"), NumberChannel::Voice)
        .await
        .expect("route")
        .expect("routed");
    assert_eq!((route.org_id, route.verified), (org.id.clone(), false));
    db.drop_db().await;
}

#[tokio::test]
async fn claims_registered_before_verification_survive_the_upgrade_sqlite() {
    upgrade_keeps_old_claims(switchboard_store::Backend::Sqlite).await;
}

#[tokio::test]
async fn claims_registered_before_verification_survive_the_upgrade_postgres() {
    upgrade_keeps_old_claims(switchboard_store::Backend::Postgres).await;
}
