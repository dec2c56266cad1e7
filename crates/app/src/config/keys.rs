//! The master keys that encrypt secrets at rest: which settings give them, and where they come
//! from when none does (a key file generated in the data directory, development only).

use super::layers::{source_of, Layered};
use super::{err, Config, ConfigError, Environment};
use std::path::PathBuf;
use std::sync::Arc;
use switchboard_domain::Secret;
use switchboard_store::keyring::decode_key;
use switchboard_store::Keyring;

/// The key file's name in the data directory when no key is configured.
pub const DEFAULT_KEY_FILE: &str = "master.key";

/// The master-key settings, validated.
#[derive(Debug, Clone, Default)]
pub struct MasterKeys {
    /// `SWITCHBOARD_MASTER_KEY`: base64 of 32 bytes; encrypts.
    pub key: Option<Secret>,
    /// `SWITCHBOARD_MASTER_KEY_FILE`: one key per line, the first encrypts.
    pub file: Option<PathBuf>,
    /// `SWITCHBOARD_PREVIOUS_MASTER_KEYS`: comma-separated keys that only decrypt (during a
    /// rotation).
    pub previous: Vec<Secret>,
}

/// Reads and checks the master-key settings.
pub(super) fn parse(raw: &Layered, environment: Environment) -> Result<MasterKeys, ConfigError> {
    let key = match raw.get("master_key") {
        None | Some(("", _)) => None,
        Some((v, src)) => {
            decode_key(v, src).map_err(|e| err(src, e.to_string()))?;
            Some(Secret::new(v.trim()))
        }
    };
    let file = raw
        .get("master_key_file")
        .filter(|(v, _)| !v.is_empty())
        .map(|(v, _)| PathBuf::from(v));
    if key.is_some() && file.is_some() {
        return Err(err(
            source_of(raw, "master_key_file"),
            "set either SWITCHBOARD_MASTER_KEY or SWITCHBOARD_MASTER_KEY_FILE, not both",
        ));
    }
    let mut previous = Vec::new();
    if let Some((v, src)) = raw.get("previous_master_keys") {
        for k in v.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            decode_key(k, src).map_err(|e| err(src, e.to_string()))?;
            previous.push(Secret::new(k));
        }
    }
    if environment == Environment::Production && key.is_none() && file.is_none() {
        return Err(err(
            "SWITCHBOARD_MASTER_KEY",
            "required in production (or SWITCHBOARD_MASTER_KEY_FILE): it encrypts the stored \
             Twilio tokens and signing secrets; `switchboard secrets new-key` prints one",
        ));
    }
    Ok(MasterKeys {
        key,
        file,
        previous,
    })
}

/// Where the keys come from, for messages.
pub fn describe(config: &Config) -> String {
    let keys = &config.master_keys;
    match (&keys.key, &keys.file) {
        (Some(_), _) => "SWITCHBOARD_MASTER_KEY".into(),
        (None, Some(f)) => format!("key file {}", f.display()),
        (None, None) => format!(
            "key file {}",
            config.data_dir.join(DEFAULT_KEY_FILE).display()
        ),
    }
}

/// Opens the keyring the configuration names. With no key configured (development only: the
/// configuration refuses that in production) the data directory's key file is used, and
/// generated when `create` is set and it does not exist; the returned note says so.
pub fn open_keyring(
    config: &Config,
    create: bool,
) -> anyhow::Result<(Arc<Keyring>, Option<String>)> {
    let keys = &config.master_keys;
    let previous = keys
        .previous
        .iter()
        .map(|k| decode_key(k.expose(), "SWITCHBOARD_PREVIOUS_MASTER_KEYS"))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(k) = &keys.key {
        let current = decode_key(k.expose(), "SWITCHBOARD_MASTER_KEY")?;
        return Ok((Arc::new(Keyring::from_keys(&current, &previous)?), None));
    }
    if let Some(f) = &keys.file {
        let ring = Keyring::from_file(f, &previous)
            .map_err(|e| anyhow::anyhow!("SWITCHBOARD_MASTER_KEY_FILE: {e}"))?;
        return Ok((Arc::new(ring), None));
    }
    let path = config.data_dir.join(DEFAULT_KEY_FILE);
    if path.exists() || !create {
        let ring = Keyring::from_file(&path, &previous)?;
        return Ok((Arc::new(ring), None));
    }
    let ring = Keyring::create_file(&path)?;
    let note = format!(
        "generated a master key at {} (mode 0600): stored credentials are encrypted with it. \
         Back it up apart from the database; without it they cannot be read. In production \
         set SWITCHBOARD_MASTER_KEY or SWITCHBOARD_MASTER_KEY_FILE instead.",
        path.display()
    );
    Ok((Arc::new(ring), Some(note)))
}
