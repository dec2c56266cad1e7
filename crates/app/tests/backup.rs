//! `switchboard backup` while a server serves: a consistent SQLite copy (it opens, passes
//! SQLite's integrity check and holds what the server wrote), never over an existing file,
//! never from a directory without a database; PostgreSQL is refused with `pg_dump` named.

mod process_env;

use process_env::*;
use std::path::PathBuf;
use switchboard_store::testing::TestDb;

fn out(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_server_is_backed_up() {
    let db = TestDb::sqlite().await.expect("db");
    let (rig, _server) = Rig::start(&db, &[]).await;
    let dir = std::env::temp_dir().join(format!(
        "switchboard-backup-{}",
        switchboard_domain::ids::random_token(8)
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let file: PathBuf = dir.join("snapshot.db");
    let path = file.to_str().expect("utf-8").to_owned();
    // The server is another process: this blocking wait holds up nothing it needs.
    let o = rig.cli(&["backup", "--to", &path], &[]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("backup written to"), "{}", out(&o));
    // The copy is a whole database with the server's rows.
    let url = format!("sqlite://{path}?mode=ro");
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("open the copy");
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .expect("check");
    assert_eq!(check, "ok");
    let numbers: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM phone_numbers WHERE number = $1")
        .bind(NUMBER)
        .fetch_one(&mut conn)
        .await
        .expect("numbers");
    assert_eq!(
        numbers, 1,
        "the number the server registered is in the copy"
    );
    sqlx::Connection::close(conn).await.expect("close");

    // Never over an existing file; nothing left behind.
    let before = std::fs::metadata(&file).expect("copy").len();
    let o = rig.cli(&["backup", "--to", &path], &[]);
    assert!(!o.status.success());
    assert!(out(&o).contains("exists already"), "{}", out(&o));
    assert_eq!(std::fs::metadata(&file).expect("copy").len(), before);
    assert!(!dir.join("snapshot.partial").exists());

    // From a directory without a database: refused, and nothing created.
    let empty = dir.join("elsewhere");
    std::fs::create_dir_all(&empty).expect("dir");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SWITCHBOARD_")) {
        cmd.env_remove(k);
    }
    let o = cmd
        .args(["backup", "--to", "x.db"])
        .current_dir(&empty)
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(out(&o).contains("no database at"), "{}", out(&o));
    assert!(!empty.join("data/switchboard.db").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_is_refused_with_pg_dump_named() {
    let Some(db) = TestDb::new(switchboard_store::Backend::Postgres)
        .await
        .expect("db")
    else {
        return;
    };
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["backup", "--to", "/tmp/never-written.db"])
        .env("SWITCHBOARD_DATABASE_URL", &db.url)
        .env(
            "SWITCHBOARD_MASTER_KEY",
            switchboard_store::testing::TEST_MASTER_KEY,
        )
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(out(&o).contains("pg_dump"), "{}", out(&o));
    db.drop_db().await;
}
