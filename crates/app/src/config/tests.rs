use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults() {
    let c = Config::load(&Flags::default(), &env(&[])).expect("defaults are valid");
    assert_eq!(c.port, 8080);
    assert!(c.database_url.is_none());
    assert_eq!(c.environment, Environment::Development);
}

#[test]
fn layers_override_in_order() {
    let dir = std::env::temp_dir().join(format!(
        "sb-config-{}",
        switchboard_domain::ids::random_token(8)
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("switchboard.toml");
    std::fs::write(
        &file,
        "port = 9000\nlog_format = \"json\"\nlog = \"debug\"\n",
    )
    .expect("write");
    let flags = Flags {
        config: Some(file.clone()),
        ..Default::default()
    };
    let c = Config::load(&flags, &env(&[("SWITCHBOARD_LOG_FORMAT", "text")])).expect("valid");
    assert_eq!(
        (c.port, c.log_format, c.log_filter.as_str()),
        (9000, LogFormat::Text, "debug")
    );
    let flags = Flags {
        config: Some(file),
        port: Some(7000),
        ..Default::default()
    };
    let c = Config::load(&flags, &env(&[("SWITCHBOARD_PORT", "8000")])).expect("valid");
    assert_eq!(c.port, 7000, "flags beat environment beats file");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn invalid_settings_are_named() {
    let e = Config::load(&Flags::default(), &env(&[("SWITCHBOARD_PORT", "eighty")]))
        .expect_err("bad port");
    assert_eq!(e.setting, "SWITCHBOARD_PORT");
    assert!(e.to_string().contains("port number"));
    let e = Config::load(
        &Flags::default(),
        &env(&[("SWITCHBOARD_PUBLIC_URL", "voice.example.com")]),
    )
    .expect_err("bad url");
    assert_eq!(e.setting, "SWITCHBOARD_PUBLIC_URL");
    let e = Config::load(
        &Flags::default(),
        &env(&[
            ("SWITCHBOARD_ENV", "production"),
            ("SWITCHBOARD_PUBLIC_URL", "http://x.example.com"),
        ]),
    )
    .expect_err("http in prod");
    assert!(e.message.contains("https"));
    let e = Config::load(
        &Flags::default(),
        &env(&[("SWITCHBOARD_DATABASE_URL", "mysql://x")]),
    )
    .expect_err("db");
    assert_eq!(e.setting, "SWITCHBOARD_DATABASE_URL");
    let e = Config::load(
        &Flags::default(),
        &env(&[("SWITCHBOARD_LOG_FORMAT", "xml")]),
    )
    .expect_err("fmt");
    assert_eq!(e.setting, "SWITCHBOARD_LOG_FORMAT");
    let flags = Flags {
        config: Some(PathBuf::from("/nonexistent/switchboard.toml")),
        ..Default::default()
    };
    assert!(Config::load(&flags, &env(&[])).is_err());
}

#[test]
fn the_beta_realtime_shape_is_refused_on_openai() {
    let e = Config::load(
        &Flags::default(),
        &env(&[("SWITCHBOARD_OPENAI_REALTIME_SHAPE", "beta")]),
    )
    .expect_err("OpenAI refuses beta");
    assert_eq!(e.setting, "SWITCHBOARD_OPENAI_REALTIME_SHAPE");
    assert!(e.to_string().contains("beta_api_shape_disabled"));
    let c = Config::load(
        &Flags::default(),
        &env(&[
            ("SWITCHBOARD_OPENAI_REALTIME_SHAPE", "beta"),
            (
                "SWITCHBOARD_OPENAI_REALTIME_URL",
                "wss://example.openai.azure.com/openai/realtime",
            ),
        ]),
    )
    .expect("another provider may speak beta");
    assert_eq!(c.openai_realtime_shape, switchboard_realtime::Shape::Beta);
    let c = Config::load(
        &Flags::default(),
        &env(&[
            ("SWITCHBOARD_DRAIN_TIMEOUT_SECONDS", "30"),
            ("SWITCHBOARD_INSTANCE_LEASE_SECONDS", "5"),
        ]),
    )
    .expect("valid");
    assert_eq!(c.drain_timeout, Duration::from_secs(30));
    assert_eq!(c.instance_lease, Duration::from_secs(5));
    let e = Config::load(
        &Flags::default(),
        &env(&[("SWITCHBOARD_INSTANCE_LEASE_SECONDS", "1")]),
    )
    .expect_err("too short");
    assert_eq!(e.setting, "SWITCHBOARD_INSTANCE_LEASE_SECONDS");
}

#[test]
fn unknown_file_keys_are_rejected() {
    let dir = std::env::temp_dir().join(format!(
        "sb-config-{}",
        switchboard_domain::ids::random_token(8)
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("switchboard.toml");
    std::fs::write(&file, "prot = 9000\n").expect("write");
    let e = Config::load(
        &Flags {
            config: Some(file),
            ..Default::default()
        },
        &env(&[]),
    )
    .expect_err("typo");
    assert!(
        e.to_string().contains("`prot`") && e.message.contains("unknown setting"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn public_urls() {
    assert_eq!(
        validate_public_url("https://v.example.com/", Environment::Production).as_deref(),
        Ok("https://v.example.com")
    );
    assert!(validate_public_url("https://v.example.com/twilio", Environment::Development).is_err());
    assert!(validate_public_url("http://localhost:8080", Environment::Development).is_ok());
}

#[test]
fn secrets_do_not_show_in_debug() {
    let c = Config::load(
        &Flags::default(),
        &env(&[
            ("SWITCHBOARD_OPENAI_API_KEY", "sk-very-secret"),
            ("SWITCHBOARD_DATABASE_URL", "postgres://u:pw@h/db"),
        ]),
    )
    .expect("valid");
    let dbg = format!("{c:?}");
    assert!(
        !dbg.contains("sk-very-secret") && !dbg.contains("pw@"),
        "{dbg}"
    );
}

#[test]
fn master_keys_are_checked() {
    let key = switchboard_store::keyring::new_key();
    let prod = [
        ("SWITCHBOARD_ENV", "production"),
        ("SWITCHBOARD_PUBLIC_URL", "https://voice.example.com"),
    ];
    let e = Config::load(&Flags::default(), &env(&prod)).expect_err("no key in production");
    assert_eq!(e.setting, "SWITCHBOARD_MASTER_KEY");
    let mut with_key = prod.to_vec();
    with_key.push(("SWITCHBOARD_MASTER_KEY", &key));
    let c = Config::load(&Flags::default(), &env(&with_key)).expect("valid");
    assert_eq!(
        c.master_keys.key.map(|k| k.expose().to_owned()),
        Some(key.clone())
    );
    with_key.push(("SWITCHBOARD_MASTER_KEY_FILE", "/etc/switchboard/keys"));
    let e = Config::load(&Flags::default(), &env(&with_key)).expect_err("both");
    assert_eq!(e.setting, "SWITCHBOARD_MASTER_KEY_FILE");
    let e = Config::load(
        &Flags::default(),
        &env(&[("SWITCHBOARD_PREVIOUS_MASTER_KEYS", &format!("{key}, short"))]),
    )
    .expect_err("bad previous key");
    assert_eq!(e.setting, "SWITCHBOARD_PREVIOUS_MASTER_KEYS");
    assert!(e.message.contains("not a master key"), "{}", e.message);
    let c = Config::load(&Flags::default(), &env(&[])).expect("development needs none");
    assert!(c.master_keys.key.is_none() && c.master_keys.file.is_none());
}

#[test]
fn trusted_proxies_are_checked() {
    let c = Config::load(
        &Flags::default(),
        &env(&[("SWITCHBOARD_TRUSTED_PROXIES", "10.0.0.0/8, ::1")]),
    )
    .expect("valid");
    assert!(!c.trusted_proxies.is_empty());
    let e = Config::load(
        &Flags::default(),
        &env(&[("SWITCHBOARD_TRUSTED_PROXIES", "10.0.0.0/40")]),
    )
    .expect_err("bad prefix");
    assert_eq!(e.setting, "SWITCHBOARD_TRUSTED_PROXIES");
}
