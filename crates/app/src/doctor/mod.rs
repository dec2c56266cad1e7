//! `switchboard doctor`: checks configuration and environment and prints every problem with
//! its fix. Misconfiguration is the most common outage, so this says exactly what to change.

mod outside;
mod speech;

use crate::config::{self, Config, ConfigError, Environment};
use std::process::ExitCode;
use switchboard_domain::values::NumberVerification;
use switchboard_store::{Keyring, Reseal, Store};

enum Level {
    Ok,
    Warn,
    Fail,
}

struct Report {
    failures: usize,
    warnings: usize,
}

impl Report {
    fn line(&mut self, level: Level, check: &str, text: &str, fix: Option<&str>) {
        let tag = match level {
            Level::Ok => "ok  ",
            Level::Warn => {
                self.warnings += 1;
                "WARN"
            }
            Level::Fail => {
                self.failures += 1;
                "FAIL"
            }
        };
        println!("{tag}  {check}: {text}");
        if let Some(fix) = fix {
            println!("      fix: {fix}");
        }
    }
}

/// Runs every check; exits non-zero when any fails.
pub async fn run(loaded: Result<Config, ConfigError>) -> ExitCode {
    let mut r = Report {
        failures: 0,
        warnings: 0,
    };
    let config = match loaded {
        Ok(c) => {
            let file = c
                .config_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "none".into());
            let env = match c.environment {
                Environment::Development => "development",
                Environment::Production => "production",
            };
            r.line(
                Level::Ok,
                "configuration",
                &format!("valid (environment {env}, config file {file})"),
                None,
            );
            c
        }
        Err(e) => {
            r.line(
                Level::Fail,
                "configuration",
                &e.to_string(),
                Some(&format!(
                    "correct {} and run `switchboard doctor` again",
                    e.setting
                )),
            );
            return finish(r);
        }
    };

    match &config.public_url {
        None => r.line(
            Level::Fail,
            "public URL",
            "SWITCHBOARD_PUBLIC_URL is not set, so Twilio cannot reach this server",
            Some("set SWITCHBOARD_PUBLIC_URL to the https:// address Twilio reaches this server at, e.g. https://voice.example.com (a tunnel works for development)"),
        ),
        Some(u) if u.starts_with("http://") => r.line(
            Level::Warn,
            "public URL",
            &format!("{u} is not https: fine for local development, refused in production"),
            Some("use an https:// address before pointing Twilio at it"),
        ),
        Some(u) => r.line(Level::Ok, "public URL", u, None),
    }

    outside::check_models(&config, &mut r).await;

    match config.openai_realtime_shape {
        switchboard_realtime::Shape::Ga => r.line(
            Level::Ok,
            "realtime shape",
            &format!("ga at {}", config.openai_realtime_url),
            None,
        ),
        switchboard_realtime::Shape::Beta => r.line(
            Level::Warn,
            "realtime shape",
            &format!(
                "beta at {}: OpenAI refuses this shape; only providers that still speak it work",
                config.openai_realtime_url
            ),
            Some("set SWITCHBOARD_OPENAI_REALTIME_SHAPE=ga unless this provider needs the beta shape"),
        ),
    }

    let keyring = match config::open_keyring(&config, false) {
        Ok((ring, _)) => {
            r.line(
                Level::Ok,
                "master key",
                &format!(
                    "{} (key {} encrypts)",
                    config::describe_keys(&config),
                    ring.current_id()
                ),
                None,
            );
            ring
        }
        Err(e) => {
            let level = if config.master_keys.key.is_none() && config.master_keys.file.is_none() {
                Level::Warn
            } else {
                Level::Fail
            };
            r.line(
                level,
                "master key",
                &format!("{}: {e:#}", config::describe_keys(&config)),
                Some("the first `switchboard serve` generates the default key file; in production set SWITCHBOARD_MASTER_KEY (`switchboard secrets new-key` prints one)"),
            );
            // The other checks go on with a throwaway key: they read no secret.
            let key = switchboard_store::keyring::decode_key(
                &switchboard_store::keyring::new_key(),
                "key",
            )
            .map_err(|e| e.to_string());
            match key.and_then(|k| Keyring::from_keys(&k, &[]).map_err(|e| e.to_string())) {
                Ok(ring) => std::sync::Arc::new(ring),
                Err(e) => {
                    r.line(Level::Fail, "master key", &e, None);
                    return finish(r);
                }
            }
        }
    };
    // Opening the embedded database creates it: a doctor run from the wrong directory must
    // say so instead of checking a new empty one.
    if let Some(path) = config.missing_embedded_database() {
        r.line(
            Level::Fail,
            "database",
            &format!("no database at {}", path.display()),
            Some("run doctor in the directory `switchboard serve` runs in, or set SWITCHBOARD_DATA_DIR to its data directory (or SWITCHBOARD_DATABASE_URL); on a new install, `switchboard migrate` or the first `switchboard serve` creates it"),
        );
        return finish(r);
    }
    let store = match Store::open(&config.store_options(keyring.clone())).await {
        Ok(s) => s,
        Err(e) => {
            r.line(
                Level::Fail,
                "database",
                &format!("cannot open: {e}"),
                Some("check SWITCHBOARD_DATABASE_URL (postgres://user@host/db) and that the server is up; unset it to use the embedded SQLite database"),
            );
            return finish(r);
        }
    };
    match store.ping().await {
        Ok(()) => r.line(
            Level::Ok,
            "database",
            &format!("{} reachable", store.description()),
            None,
        ),
        Err(e) => {
            r.line(
                Level::Fail,
                "database",
                &format!("{} not reachable: {e}", store.description()),
                Some("check that the database server is running and reachable"),
            );
            return finish(r);
        }
    }
    match store.migration_status().await {
        Ok(s) if !s.unknown.is_empty() => r.line(
            Level::Fail,
            "migrations",
            &format!(
                "the database has migrations {:?} this binary does not know",
                s.unknown
            ),
            Some("run the newer switchboard binary that migrated this database"),
        ),
        Ok(s) if !s.pending.is_empty() => r.line(
            Level::Fail,
            "migrations",
            &format!("{} pending ({:?})", s.pending.len(), s.pending),
            Some("run `switchboard migrate` (`switchboard serve` also migrates at start)"),
        ),
        Ok(s) => r.line(
            Level::Ok,
            "migrations",
            &format!("up to date ({} applied)", s.applied.len()),
            None,
        ),
        Err(e) => r.line(
            Level::Fail,
            "migrations",
            &format!("cannot read: {e}"),
            None,
        ),
    }
    if store.backend() == switchboard_store::Backend::Postgres {
        let role = store
            .app_role()
            .map(|r| format!("switches to role `{r}` (no BYPASSRLS)"))
            .unwrap_or_else(|| "login is subject to row-level security".into());
        r.line(
            Level::Ok,
            "tenant isolation",
            &format!("row-level security on; {role}"),
            None,
        );
    }
    check_secrets(&store, &keyring, &mut r).await;
    check_twilio(&store, &mut r).await;
    check_numbers(&store, config.environment, &mut r).await;
    outside::check_email(&config, &store, &mut r).await;
    outside::check_retell(&config, &store, &mut r).await;
    speech::check_speech(&config, &store, &mut r).await;
    store.close().await;
    finish(r)
}

/// Whether every stored secret is sealed with a key this configuration holds.
async fn check_secrets(store: &Store, keyring: &Keyring, r: &mut Report) {
    let report = match store.reseal_secrets(Reseal::Count).await {
        Ok(rep) => rep,
        Err(e) => {
            r.line(
                Level::Fail,
                "stored secrets",
                &format!("cannot count: {e}"),
                None,
            );
            return;
        }
    };
    let known = keyring.ids();
    let foreign: u64 = report
        .by_key
        .iter()
        .filter(|(id, _)| !known.contains(id))
        .map(|(_, n)| n)
        .sum();
    let sealed: u64 = report.by_key.values().sum();
    if foreign > 0 {
        r.line(
            Level::Fail,
            "stored secrets",
            &format!("{foreign} of {sealed} are encrypted with a master key this configuration does not have"),
            Some("set the key that sealed them (SWITCHBOARD_MASTER_KEY, or SWITCHBOARD_PREVIOUS_MASTER_KEYS during a rotation); check the working directory if the default data/master.key is used"),
        );
    } else if report.plaintext > 0 {
        r.line(
            Level::Warn,
            "stored secrets",
            &format!("{} stored in clear", report.plaintext),
            Some("run `switchboard secrets rotate` to encrypt them"),
        );
    } else {
        let old: u64 = report
            .by_key
            .iter()
            .filter(|(id, _)| **id != keyring.current_id())
            .map(|(_, n)| n)
            .sum();
        let note = if old > 0 {
            format!("{sealed} encrypted; {old} still with an older key (`switchboard secrets rotate` re-encrypts them)")
        } else {
            format!("{sealed} encrypted with the current key")
        };
        r.line(Level::Ok, "stored secrets", &note, None);
    }
}

async fn check_twilio(store: &Store, r: &mut Report) {
    let orgs = match store.all_org_ids().await {
        Ok(o) => o,
        Err(e) => {
            r.line(
                Level::Fail,
                "twilio credentials",
                &format!("cannot list organizations: {e}"),
                Some("run `switchboard migrate`"),
            );
            return;
        }
    };
    let mut missing = 0;
    for org in &orgs {
        let numbers = store.count_numbers(org).await.unwrap_or(0);
        if numbers == 0 {
            continue;
        }
        match store.twilio_credentials(org).await {
            Ok(Some(_)) => {}
            _ => {
                missing += 1;
                r.line(
                    Level::Fail,
                    "twilio credentials",
                    &format!("organization {org} has {numbers} phone number(s) but no Twilio account SID and auth token"),
                    Some("PUT /api/v1/settings with twilio_account_sid and twilio_auth_token using that organization's API key"),
                );
            }
        }
    }
    if missing == 0 {
        r.line(
            Level::Ok,
            "twilio credentials",
            &format!(
                "every organization with numbers has them ({} organizations)",
                orgs.len()
            ),
            None,
        );
    }
}

/// Numbers not proven to be their organization's: they do not route in production.
async fn check_numbers(store: &Store, environment: Environment, r: &mut Report) {
    let Ok(orgs) = store.all_org_ids().await else {
        return; // check_twilio reported it
    };
    let (mut verified, mut pending) = (0, 0);
    for org in &orgs {
        let numbers = match store.all_numbers(org).await {
            Ok(n) => n,
            Err(e) => {
                r.line(
                    Level::Fail,
                    "numbers",
                    &format!("cannot list organization {org}'s: {e}"),
                    None,
                );
                continue;
            }
        };
        for n in numbers {
            if n.verification == NumberVerification::Verified {
                verified += 1;
                continue;
            }
            pending += 1;
            let (level, effect) = match environment {
                Environment::Production => (Level::Fail, "does not route"),
                Environment::Development => (
                    Level::Warn,
                    "routes with a warning in development; production would refuse it",
                ),
            };
            r.line(
                level,
                "numbers",
                &format!(
                    "{} ({}) of organization {org} is pending verification [{}]: {}; it {effect}",
                    n.number.as_str(),
                    n.channel,
                    n.verification_reason.as_deref().unwrap_or("unknown"),
                    n.verification_message.as_deref().unwrap_or("not checked"),
                ),
                Some("fix the cause, then `switchboard numbers verify --pending` (or the Verify button on the dashboard's Phone numbers page)"),
            );
        }
    }
    if pending == 0 {
        r.line(
            Level::Ok,
            "numbers",
            &format!("{verified} verified with Twilio, none pending"),
            None,
        );
    }
}

fn finish(r: Report) -> ExitCode {
    println!();
    if r.failures == 0 {
        println!("no problems found ({} warning(s))", r.warnings);
        ExitCode::SUCCESS
    } else {
        println!("{} problem(s) found, {} warning(s)", r.failures, r.warnings);
        ExitCode::FAILURE
    }
}
