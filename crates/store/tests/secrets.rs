//! Secrets at rest, on both backends: values written before encryption existed are sealed by
//! the migration sweep, a ciphertext moved to another organization's row does not decrypt,
//! and a rotation re-encrypts everything under the new key while the old key still reads
//! until then.

use serde_json::json;
use std::sync::Arc;
use switchboard_domain::mcp_server::{McpAuth, McpServer, NewMcpServer};
use switchboard_domain::settings::SettingsUpdate;
use switchboard_domain::{Secret, Timestamp};
use switchboard_store::keyring::{decode_key, key_id, sealed_key_id};
use switchboard_store::testing::{TestDb, TEST_MASTER_KEY};
use switchboard_store::{backend_test, Keyring, Reseal, Store, StoreError, StoreOptions};

/// Runs one statement as the database login (past row-level security): what a person with
/// the database, but not the key, can do.
async fn raw(db: &TestDb, sql: &str, binds: &[&str]) -> Vec<String> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db.url)
        .await
        .expect("connect");
    let mut q = sqlx::query_scalar::<_, String>(sql);
    for b in binds {
        q = q.bind(*b);
    }
    let out = q.fetch_all(&mut conn).await.expect("raw statement");
    let _ = conn.close().await;
    out
}

async fn store_with(db: &TestDb, current: [u8; 32], previous: &[[u8; 32]]) -> Store {
    let ring = Keyring::from_keys(&current, previous).expect("keyring");
    let mut opts = StoreOptions::new(Arc::new(ring));
    opts.url = Some(db.url.clone());
    Store::open(&opts).await.expect("open")
}

fn header_server(value: &str) -> McpServer {
    let input: NewMcpServer = serde_json::from_value(json!({"name": "crm",
        "url": "https://crm.example.com/mcp",
        "auth": {"type": "header", "name": "X-Api-Key", "value": value},
        "allowed_tools": ["*"]}))
    .expect("input");
    McpServer::create(input, false, Timestamp::now()).expect("valid")
}

async fn set_token(store: &Store, org: &switchboard_domain::ids::OrgId, token: &str) {
    store
        .update_settings(
            org,
            SettingsUpdate {
                twilio_account_sid: Some("AC0123456789abcdef0123456789abcdef".into()),
                twilio_auth_token: Some(Secret::new(token)),
                ..SettingsUpdate::default()
            },
        )
        .await
        .expect("settings");
}

async fn token_of(store: &Store, org: &switchboard_domain::ids::OrgId) -> String {
    store
        .twilio_credentials(org)
        .await
        .expect("credentials")
        .expect("set")
        .auth_token
        .expose()
        .to_owned()
}

backend_test!(secrets_are_sealed_bound_to_their_org_and_rotated, |db| {
    let store = &db.store;
    let a = store.create_org("Alpha").await.expect("org");
    let b = store.create_org("Beta").await.expect("org");
    set_token(store, &a.id, "token-of-alpha").await;
    set_token(store, &b.id, "token-of-beta").await;
    let server = header_server("header-of-alpha");
    store
        .create_mcp_server(&a.id, &server)
        .await
        .expect("server");
    let media = store
        .platform_secret("media_token")
        .await
        .expect("platform");

    // Stored sealed, with the test key's id.
    let test_id = key_id(&decode_key(TEST_MASTER_KEY, "k").expect("key"));
    let stored = raw(
        db,
        "SELECT auth_token FROM twilio_credentials WHERE org_id = $1",
        &[a.id.as_str()],
    )
    .await;
    assert_eq!(sealed_key_id(&stored[0]), Some(test_id.as_str()));

    // A ciphertext copied into another organization's row does not decrypt there.
    raw(
        db,
        "UPDATE twilio_credentials SET auth_token = $1 WHERE org_id = $2 RETURNING org_id",
        &[&stored[0], b.id.as_str()],
    )
    .await;
    match store.twilio_credentials(&b.id).await {
        Err(StoreError::Corrupt(m)) => assert!(m.contains("another organization"), "{m}"),
        other => panic!("a moved ciphertext must not decrypt: {other:?}"),
    }
    set_token(store, &b.id, "token-of-beta").await;

    // Values stored in clear by an earlier version are sealed by the migration sweep.
    raw(
        db,
        "UPDATE twilio_credentials SET auth_token = 'clear-token-of-alpha' WHERE org_id = $1 \
         RETURNING org_id",
        &[a.id.as_str()],
    )
    .await;
    let before = store.reseal_secrets(Reseal::Count).await.expect("count");
    assert_eq!(before.plaintext, 1, "{before:?}");
    assert!(
        store.twilio_credentials(&a.id).await.is_err(),
        "a value in clear is refused until it is sealed"
    );
    let swept = store
        .reseal_secrets(Reseal::Plaintext)
        .await
        .expect("sweep");
    assert_eq!((swept.resealed, swept.plaintext), (1, 0), "{swept:?}");
    assert_eq!(token_of(store, &a.id).await, "clear-token-of-alpha");
    store.forget_freed_pages().await.expect("vacuum");
    if store.backend() == switchboard_store::Backend::Sqlite {
        assert!(
            !db.dump_text().await.contains("clear-token-of-alpha"),
            "no copy of the clear value is left in the file or its log"
        );
    }

    // Rotation: a store with a new key (the old one decrypting) re-encrypts everything.
    let old = decode_key(TEST_MASTER_KEY, "k").expect("key");
    let new = [7u8; 32];
    let rotated = store_with(db, new, &[old]).await;
    assert_eq!(token_of(&rotated, &a.id).await, "clear-token-of-alpha");
    let report = rotated.reseal_secrets(Reseal::All).await.expect("rotate");
    let total: u64 = report.by_key.values().sum();
    assert_eq!(report.by_key.get(&key_id(&new)), Some(&total), "{report:?}");
    assert_eq!(
        (report.resealed, report.unreadable, report.plaintext),
        (total, 0, 0)
    );
    assert!(
        total >= 4,
        "two tokens, a header, the platform key: {report:?}"
    );
    // Everything reads with the new key alone; the old key alone no longer can.
    let only_new = store_with(db, new, &[]).await;
    assert_eq!(token_of(&only_new, &b.id).await, "token-of-beta");
    let s = only_new
        .get_mcp_server(&a.id, &server.id)
        .await
        .expect("server");
    match s.auth {
        McpAuth::Header { value, .. } => assert_eq!(value.expose(), "header-of-alpha"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        only_new
            .platform_secret("media_token")
            .await
            .expect("platform")
            .expose(),
        media.expose(),
        "the media-token key survives the rotation"
    );
    match store.twilio_credentials(&a.id).await {
        Err(StoreError::Config(m)) => assert!(m.contains(&key_id(&new)), "{m}"),
        other => panic!("the old key alone cannot read: {other:?}"),
    }
    // A second rotation to the same key finds nothing to do.
    let again = rotated.reseal_secrets(Reseal::All).await.expect("again");
    assert_eq!(again.resealed, 0);
    rotated.close().await;
    only_new.close().await;
});
