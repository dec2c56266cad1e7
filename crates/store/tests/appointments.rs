//! The calendar in the store: simultaneous bookings of one slot (one wins, one event), a move
//! that would overlap refused under the same lock, and the upgrade that renames the old
//! `cancelled` status and adds the revision, on both backends.

use switchboard_domain::entities::{AppointmentChange, NewAppointment};
use switchboard_domain::Timestamp;
use switchboard_store::{backend_test, StoreError};

const HOUR: i64 = 3_600_000;

fn slot(start: Timestamp, by: &str) -> NewAppointment {
    NewAppointment {
        agent_id: None,
        contact_id: None,
        starts_at: start,
        ends_at: Timestamp::from_millis(start.millis() + HOUR),
        title: format!("Visit by {by}"),
        notes: None,
        by: by.to_owned(),
    }
}

backend_test!(one_slot_one_booking_under_concurrency, |db| {
    let store = db.store.clone();
    let org = store.create_org("Clinic").await.expect("org");
    let start = Timestamp::from_millis(Timestamp::now().millis() + 48 * HOUR);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (store, org) = (store.clone(), org.id.clone());
            tokio::spawn(async move {
                // Overlapping, not identical: each starts 5 minutes later than the last.
                let t = Timestamp::from_millis(start.millis() + i * 300_000);
                store
                    .book_appointment(&org, slot(t, &format!("t{i}")))
                    .await
            })
        })
        .collect();
    let mut won = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(a) => won.push(a),
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!(
        won.len(),
        1,
        "exactly one overlapping booking wins: {won:?}"
    );
    let events = store.list_events(&org.id, None, 100).await.expect("events");
    let created: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "appointment.created")
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0].payload["data"]["appointment"]["id"],
        won[0].id.as_str()
    );

    // A second booking later the same day, then a move onto the first is refused.
    let later = store
        .book_appointment(
            &org.id,
            slot(Timestamp::from_millis(start.millis() + 4 * HOUR), "b"),
        )
        .await
        .expect("later");
    let onto = AppointmentChange {
        times: Some((won[0].starts_at, won[0].ends_at)),
        ..AppointmentChange::default()
    };
    assert!(matches!(
        store
            .update_appointment(&org.id, &later.id, onto, "staff")
            .await,
        Err(StoreError::Conflict(_))
    ));
    // Moving an appointment onto its own time (or within it) is not a clash with itself.
    let own = AppointmentChange {
        times: Some((
            Timestamp::from_millis(won[0].starts_at.millis() + 600_000),
            Timestamp::from_millis(won[0].ends_at.millis() + 600_000),
        )),
        ..AppointmentChange::default()
    };
    let moved = store
        .update_appointment(&org.id, &won[0].id, own, "staff")
        .await
        .expect("moved within its own time");
    assert_eq!(moved.revision, 1);
    let gone = store
        .cancel_appointment(&org.id, &later.id, None, "staff")
        .await
        .expect("canceled");
    assert_eq!((gone.status.as_str(), gone.revision), ("canceled", 1));
    assert!(matches!(
        store
            .cancel_appointment(&org.id, &later.id, None, "staff")
            .await,
        Err(StoreError::Conflict(_))
    ));
});

/// A database as the release before the calendar left it, with a canceled appointment, then
/// upgraded.
async fn upgrade(backend: switchboard_store::Backend) {
    use switchboard_store::testing::TestDb;
    let Some(db) = TestDb::through(backend, 25).await.expect("database at 25") else {
        return;
    };
    let store = &db.store;
    let org = store.create_org("Old").await.expect("org");
    // Written as the connecting login (the schema owner; past row-level security), the way
    // the old release's rows are there.
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&db.url)
        .await
        .expect("connect");
    for (id, status) in [("apt_old1", "cancelled"), ("apt_old2", "booked")] {
        sqlx::query(
            "INSERT INTO appointments (id, org_id, agent_id, contact_id, starts_at, ends_at, \
             status, title, notes, created_at, updated_at) \
             VALUES ($1, $2, NULL, NULL, 1000, 2000, $3, 'Old', NULL, 1, 1)",
        )
        .bind(id)
        .bind(org.id.as_str())
        .bind(status)
        .execute(&mut conn)
        .await
        .expect("old row");
    }
    sqlx::Connection::close(conn).await.expect("close");

    let applied = store.migrate().await.expect("upgrade");
    assert_eq!(applied.first(), Some(&26), "{applied:?}");
    let old = store
        .get_appointment(&org.id, "apt_old1")
        .await
        .expect("old");
    assert_eq!((old.status.as_str(), old.revision), ("canceled", 0));
    let kept = store
        .get_appointment(&org.id, "apt_old2")
        .await
        .expect("old");
    assert_eq!(kept.status, "booked");
    assert_eq!(
        store
            .get_settings(&org.id)
            .await
            .expect("settings")
            .timezone,
        "UTC"
    );
    db.drop_db().await;
}

#[tokio::test]
async fn the_upgrade_renames_canceled_and_adds_revisions_sqlite() {
    upgrade(switchboard_store::Backend::Sqlite).await;
}

#[tokio::test]
async fn the_upgrade_renames_canceled_and_adds_revisions_postgres() {
    upgrade(switchboard_store::Backend::Postgres).await;
}
