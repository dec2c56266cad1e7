//! Tenant isolation on PostgreSQL, checked against the database itself rather than a list
//! kept by hand: every table with an `org_id` column has row-level security forced, with the
//! tenant policy and nothing broader; a row is seeded for two organizations in every such
//! table (values derived from the catalog: foreign keys point at the same organization's
//! seeded rows); then, connected as the application is, each table is read, changed and
//! written in every scope. The pre-tenant look-ups, now SECURITY DEFINER functions, return
//! rows for exactly the key they are given, and the application cannot become their owner.

use sqlx::{AnyConnection, Connection, Executor, Row};
use std::collections::{BTreeMap, BTreeSet};
use switchboard_store::backend_test;
use switchboard_store::testing::TestDb;
use switchboard_store::Backend;

/// Tables with `org_id` that are deliberately not under row-level security, and why.
const PLATFORM_TABLES: &[(&str, &str)] = &[
    (
        "jobs",
        "claimed across organizations by the job worker; each job then runs scoped",
    ),
    (
        "dashboard_sessions",
        "found by the hash of the browser's cookie before any organization",
    ),
    (
        "mcp_sessions",
        "found by session id on every MCP request before any organization",
    ),
    (
        "oauth_codes",
        "found by the hash of the code at the token endpoint",
    ),
    (
        "oauth_tokens",
        "found by the hash of the bearer token on every MCP request",
    ),
];

struct Column {
    name: String,
    data_type: String,
    nullable: bool,
    has_default: bool,
}

async fn columns(conn: &mut AnyConnection, table: &str) -> Vec<Column> {
    let rows = sqlx::query(
        "SELECT column_name::text AS name, data_type::text AS data_type, \
         CAST(is_nullable = 'YES' AS INTEGER) AS nullable, \
         CAST(column_default IS NOT NULL OR is_identity = 'YES' AS INTEGER) AS has_default \
         FROM information_schema.columns WHERE table_schema = current_schema() \
         AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
    .expect("columns");
    rows.iter()
        .map(|r| Column {
            name: r.get("name"),
            data_type: r.get("data_type"),
            nullable: r.get::<i32, _>("nullable") == 1,
            has_default: r.get::<i32, _>("has_default") == 1,
        })
        .collect()
}

/// `(column, referenced table)` for every single-column foreign key of `table`.
async fn foreign_keys(conn: &mut AnyConnection, table: &str) -> Vec<(String, String)> {
    sqlx::query(
        "SELECT a.attname::text AS col, r.relname::text AS target FROM pg_constraint c \
         JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
         WHERE c.contype = 'f' AND t.relname = $1 AND array_length(c.conkey, 1) = 1",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
    .expect("foreign keys")
    .iter()
    .map(|r| (r.get("col"), r.get("target")))
    .collect()
}

/// The first value a `CHECK (col IN (...))` allows, per column of `table`.
async fn checked_values(conn: &mut AnyConnection, table: &str) -> BTreeMap<String, String> {
    let defs: Vec<String> = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(c.oid)::text FROM pg_constraint c \
         JOIN pg_class t ON t.oid = c.conrelid WHERE c.contype = 'c' AND t.relname = $1",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
    .expect("checks");
    let mut out = BTreeMap::new();
    for d in defs {
        // CHECK ((status = ANY (ARRAY['pending'::text, ...])))
        let Some(col) = d
            .trim_start_matches("CHECK ((")
            .split(&[' ', ')'][..])
            .next()
        else {
            continue;
        };
        if let Some(v) = d.split('\'').nth(1) {
            out.insert(col.to_owned(), v.to_owned());
        }
    }
    out
}

/// Tables with an `org_id` column.
async fn tenant_tables(conn: &mut AnyConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND column_name = 'org_id' \
         AND table_name IN (SELECT table_name FROM information_schema.tables \
           WHERE table_schema = current_schema() AND table_type = 'BASE TABLE') \
         ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("tables")
}

/// Inserts one row of `table` for `org` with every required column filled: foreign keys
/// point at `seeded` rows of the same organization. Returns the row's `id` value.
async fn seed_row(
    conn: &mut AnyConnection,
    table: &str,
    org: &str,
    seeded: &BTreeMap<(String, String), String>,
) -> String {
    let cols = columns(conn, table).await;
    let fks: BTreeMap<String, String> = foreign_keys(conn, table).await.into_iter().collect();
    let checks = checked_values(conn, table).await;
    let id = format!("{table}_{org}");
    let mut names = Vec::new();
    let mut values = Vec::new();
    for c in &cols {
        let fk = fks.get(&c.name);
        if c.has_default || (c.nullable && fk.is_none()) {
            continue;
        }
        let value = if c.name == "org_id" {
            org.to_owned()
        } else if let Some(target) = fk {
            match seeded.get(&(target.clone(), org.to_owned())) {
                Some(v) => v.clone(),
                None if c.nullable => continue,
                None => panic!("{table}.{}: {target} is not seeded yet", c.name),
            }
        } else if let Some(v) = checks.get(&c.name) {
            format!("'{v}'")
        } else if c.name == "id" || c.data_type == "text" {
            format!("'{}_{id}'", c.name)
        } else if c.data_type == "boolean" {
            "false".into()
        } else {
            "1".into()
        };
        let value = if c.name == "org_id" || fk.is_some() {
            format!("'{value}'")
        } else {
            value
        };
        names.push(c.name.clone());
        values.push(value);
    }
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        names.join(", "),
        values.join(", ")
    );
    conn.execute(sql.as_str())
        .await
        .unwrap_or_else(|e| panic!("seed {table}: {e}\n{sql}"));
    if cols.iter().any(|c| c.name == "id") {
        format!("id_{id}")
    } else {
        org.to_owned()
    }
}

/// Tables in an order that seeds every foreign key's target first.
async fn seed_order(conn: &mut AnyConnection, tables: &[String]) -> Vec<String> {
    let set: BTreeSet<&String> = tables.iter().collect();
    let mut deps = BTreeMap::new();
    for t in tables {
        let targets: BTreeSet<String> = foreign_keys(conn, t)
            .await
            .into_iter()
            .map(|(_, target)| target)
            .filter(|target| target != t && set.contains(target))
            .collect();
        deps.insert(t.clone(), targets);
    }
    let mut order: Vec<String> = Vec::new();
    while order.len() < tables.len() {
        let before = order.len();
        for (t, d) in &deps {
            if !order.contains(t) && d.iter().all(|x| order.contains(x)) {
                order.push(t.clone());
            }
        }
        assert!(order.len() > before, "foreign keys form a cycle: {deps:?}");
    }
    order
}

backend_test!(every_tenant_table_is_isolated_in_every_scope, |db| {
    if db.store.backend() != Backend::Postgres {
        return; // Row-level security is a PostgreSQL feature; SQLite relies on the store's scoping.
    }
    run_isolation(db).await;
});

async fn run_isolation(db: &TestDb) {
    let store = &db.store;
    let orgs = [
        store.create_org("Alpha").await.expect("org").id,
        store.create_org("Beta").await.expect("org").id,
    ];
    let (a, b) = (orgs[0].as_str(), orgs[1].as_str());
    // The owner's connection (the test login is a superuser: past row-level security).
    let mut owner = AnyConnection::connect(&db.url).await.expect("owner");
    let tables = tenant_tables(&mut owner).await;
    let platform: BTreeSet<&str> = PLATFORM_TABLES.iter().map(|(t, _)| *t).collect();
    let isolated: Vec<String> = tables
        .iter()
        .filter(|t| !platform.contains(t.as_str()))
        .cloned()
        .collect();
    assert!(isolated.len() >= 25, "{isolated:?}");

    // The catalog: forced row-level security and no policy broader than the tenant's.
    for t in &isolated {
        let (on, forced): (i32, i32) = sqlx::query_as(
            "SELECT CAST(relrowsecurity AS INTEGER), CAST(relforcerowsecurity AS INTEGER) \
             FROM pg_class WHERE relname = $1 AND relnamespace = current_schema()::regnamespace",
        )
        .bind(t)
        .fetch_one(&mut owner)
        .await
        .expect("pg_class");
        assert_eq!((on, forced), (1, 1), "{t}: row-level security forced");
        let policies = sqlx::query(
            "SELECT policyname::text AS name, array_to_string(roles, ',') AS roles, \
             cmd::text AS cmd, coalesce(qual, '') AS qual FROM pg_policies \
             WHERE schemaname = current_schema() AND tablename = $1",
        )
        .bind(t)
        .fetch_all(&mut owner)
        .await
        .expect("policies");
        assert!(
            policies
                .iter()
                .any(|p| p.get::<String, _>("name") == "tenant_isolation"),
            "{t}: tenant policy"
        );
        for p in &policies {
            let (name, roles, qual): (String, String, String) =
                (p.get("name"), p.get("roles"), p.get("qual"));
            let tenant = name == "tenant_isolation" && qual.contains("switchboard.org_id");
            let definer = roles == "switchboard_lookup";
            assert!(
                tenant || definer,
                "{t}: policy {name} ({roles}) reaches beyond one organization: {qual}"
            );
        }
    }

    // A row of each organization in every tenant table and what they reference.
    let mut seeded: BTreeMap<(String, String), String> = BTreeMap::new();
    for org in [a, b] {
        seeded.insert(("organizations".into(), org.into()), org.into());
    }
    // Every isolated table, and the sessions table its look-up function reads.
    let mut to_seed = isolated.clone();
    to_seed.push("dashboard_sessions".into());
    for t in seed_order(&mut owner, &to_seed).await {
        for org in [a, b] {
            let id = seed_row(&mut owner, &t, org, &seeded).await;
            seeded.insert((t.clone(), org.into()), id);
        }
    }

    // Connected as the application is.
    let mut app = AnyConnection::connect(&db.url).await.expect("app");
    let role = store
        .app_role()
        .expect("the test login switches role")
        .to_owned();
    app.execute(format!("SET ROLE \"{role}\"").as_str())
        .await
        .expect("set role");
    for t in &isolated {
        // Scoped to B: only B's rows, and nothing of A's can be changed or moved.
        let mut tx = app.begin().await.expect("tx");
        sqlx::query("SELECT set_config('switchboard.org_id', $1, true)")
            .bind(b)
            .execute(&mut *tx)
            .await
            .expect("scope");
        let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT org_id FROM {t}"))
            .fetch_all(&mut *tx)
            .await
            .expect("select");
        assert!(!rows.is_empty(), "{t}: B sees its own row");
        assert!(
            rows.iter().all(|o| o == b),
            "{t}: another organization's row leaked"
        );
        for sql in [
            format!("UPDATE {t} SET org_id = org_id WHERE org_id = $1"),
            format!("DELETE FROM {t} WHERE org_id = $1"),
        ] {
            let n = sqlx::query(&sql)
                .bind(a)
                .execute(&mut *tx)
                .await
                .expect("write")
                .rows_affected();
            assert_eq!(n, 0, "{t}: `{sql}` reached A's rows from B's scope");
        }
        tx.rollback().await.expect("rollback");
        let mut tx = app.begin().await.expect("tx");
        sqlx::query("SELECT set_config('switchboard.org_id', $1, true)")
            .bind(b)
            .execute(&mut *tx)
            .await
            .expect("scope");
        let moved = sqlx::query(&format!("UPDATE {t} SET org_id = $1 WHERE org_id = $2"))
            .bind(a)
            .bind(b)
            .execute(&mut *tx)
            .await;
        assert!(
            moved.is_err(),
            "{t}: a row was moved to another organization"
        );
        tx.rollback().await.expect("rollback");
        // No organization, or the settings that used to open look-ups and the worker:
        // nothing is visible and nothing can be changed.
        for (setting, value) in [
            ("switchboard.org_id", ""),
            ("switchboard.lookup", "on"),
            ("switchboard.worker", "on"),
        ] {
            let mut tx = app.begin().await.expect("tx");
            sqlx::query("SELECT set_config($1, $2, true)")
                .bind(setting)
                .bind(value)
                .execute(&mut *tx)
                .await
                .expect("setting");
            let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {t}"))
                .fetch_one(&mut *tx)
                .await
                .expect("count");
            assert_eq!(n, 0, "{t}: rows visible with {setting}={value:?}");
            let n = sqlx::query(&format!("DELETE FROM {t}"))
                .execute(&mut *tx)
                .await
                .expect("delete")
                .rows_affected();
            assert_eq!(n, 0, "{t}: rows deleted with {setting}={value:?}");
            tx.rollback().await.expect("rollback");
        }
    }

    // The look-up functions answer for exactly the key given.
    let key = |t: &str, org: &str| seeded[&(t.to_owned(), org.to_owned())].clone();
    let one = |t: &str, col: &str, org: &str| format!("{col}_{t}_{org}");
    for org in [a, b] {
        let cases: Vec<(String, Vec<String>)> = vec![
            (
                format!(
                    "SELECT org_id FROM sb_authenticate_api_key('{}')",
                    one("api_keys", "key_hash", org)
                ),
                vec![org.into()],
            ),
            (
                format!(
                    "SELECT org_id FROM sb_find_login('{}')",
                    one("users", "email", org)
                ),
                vec![org.into()],
            ),
            (
                format!(
                    "SELECT org_id FROM sb_find_call_by_sid('{}')",
                    one("calls", "call_sid", org)
                ),
                vec![org.into()],
            ),
            (
                format!(
                    "SELECT org_id FROM sb_find_call_org('{}')",
                    key("calls", org)
                ),
                vec![org.into()],
            ),
            (
                format!(
                    "SELECT org_id FROM sb_route_number('{}', 'voice')",
                    one("phone_numbers", "number", org)
                ),
                vec![org.into()],
            ),
            (
                format!(
                    "SELECT org_id FROM sb_route_number_with_credentials('{}', 'voice')",
                    one("phone_numbers", "number", org)
                ),
                vec![org.into()],
            ),
            (
                format!(
                    "SELECT acting_org FROM sb_dashboard_session('{}', 0)",
                    one("dashboard_sessions", "token_hash", org)
                ),
                vec![org.into()],
            ),
            (
                format!(
                    "SELECT org_id FROM sb_undelivered_call_actions('{}')",
                    one("call_actions", "instance_id", org)
                ),
                vec![org.into()],
            ),
            (
                format!(
                    "SELECT org_id FROM sb_calendar_feed('{}')",
                    one("calendar_feeds", "token_hash", org)
                ),
                vec![org.into()],
            ),
        ];
        for (sql, want) in cases {
            let got: Vec<String> = sqlx::query_scalar(&sql)
                .fetch_all(&mut app)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            assert_eq!(got, want, "{sql}");
        }
    }
    // A key nobody has answers nothing; the sessions look-up needs the token's hash.
    let none: Vec<String> =
        sqlx::query_scalar("SELECT org_id FROM sb_authenticate_api_key('nope')")
            .fetch_all(&mut app)
            .await
            .expect("lookup");
    assert!(none.is_empty());
    // The application role is not a member of the functions' owner (this test logs in as a
    // superuser, which could SET ROLE to anything: production refuses such a login).
    let member: bool = sqlx::query_scalar::<_, i32>(
        "SELECT CAST(pg_has_role($1, 'switchboard_lookup', 'MEMBER') AS INTEGER)",
    )
    .bind(&role)
    .fetch_one(&mut owner)
    .await
    .expect("membership")
        == 1;
    assert!(
        !member,
        "the application role can become switchboard_lookup"
    );
    app.close().await.expect("close");
    owner.close().await.expect("close");
}
