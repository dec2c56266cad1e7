//! The master keys that encrypt secrets at rest (AES-256-GCM).
//!
//! A stored secret reads `enc:v1:<key id>:<base64url(nonce || ciphertext || tag)>`. The
//! associated data names the owner (an organization id, or `platform`) and what the secret
//! is, so a ciphertext copied into another organization's row, or into another kind of
//! column, fails to decrypt instead of being used there.
//!
//! A keyring has one current key (it encrypts) and any number of older keys (they only
//! decrypt, while a rotation re-encrypts what they sealed). Key ids are the first four bytes
//! of the key's SHA-256, so an id names a key without revealing it. A keyring read from a key
//! file re-reads the file when it meets an id it does not know, so `switchboard secrets
//! rotate` (which puts a new key first in the file) needs no restart of a running server; it
//! also notices, within a second, that the file changed and starts encrypting with its new
//! first key.

use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// What every sealed value starts with.
pub const SEALED_PREFIX: &str = "enc:v1:";

/// How often a file-backed keyring looks at its file (on an unknown key id, or for a change).
const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Why a key or a sealed value could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// A key is not 32 bytes of base64.
    #[error("{0} is not a master key: expected 32 bytes in base64 (44 characters; `switchboard secrets new-key` prints one)")]
    BadKey(String),
    /// The key file could not be read or written.
    #[error("key file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The value was sealed with a key this keyring does not hold.
    #[error("a stored secret is encrypted with master key {0}, which this server does not have (set it in SWITCHBOARD_PREVIOUS_MASTER_KEYS or the key file)")]
    UnknownKey(String),
    /// Authentication failed: another owner's ciphertext, or altered data.
    #[error(
        "a stored secret cannot be decrypted: it belongs to another organization or was altered"
    )]
    Tampered,
    /// The value is not in the sealed format at all.
    #[error("a stored secret is not encrypted")]
    NotSealed,
    /// The value is too large for AES-GCM.
    #[error("a secret is too large to encrypt")]
    TooLarge,
}

struct Key {
    id: String,
    aead: LessSafeKey,
}

struct Keys {
    current: Arc<Key>,
    by_id: HashMap<String, Arc<Key>>,
}

/// The master keys; shared by every store handle of a process.
pub struct Keyring {
    keys: RwLock<Keys>,
    /// Where the keys came from, when it was a file (re-read on unknown ids).
    file: Option<PathBuf>,
    /// Decrypt-only keys given besides the file or the current key.
    previous: Vec<[u8; 32]>,
    /// When the file was last looked at, and its modification time then.
    checked: Mutex<Checked>,
}

#[derive(Default)]
struct Checked {
    /// The last look at the modification time.
    at: Option<Instant>,
    modified: Option<std::time::SystemTime>,
    /// The last re-read for an unknown key id.
    forced: Option<Instant>,
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current_id())
            .field("file", &self.file)
            .finish()
    }
}

/// Decodes a base64 key (standard or URL-safe alphabet, padded or not).
pub fn decode_key(text: &str, what: &str) -> Result<[u8; 32], KeyError> {
    let text = text.trim();
    let bytes = STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .or_else(|_| URL_SAFE_NO_PAD.decode(text))
        .map_err(|_| KeyError::BadKey(what.to_owned()))?;
    bytes
        .try_into()
        .map_err(|_| KeyError::BadKey(what.to_owned()))
}

/// A fresh random key, base64.
pub fn new_key() -> String {
    let mut key = [0u8; 32];
    switchboard_domain::ids::fill_random(&mut key);
    STANDARD.encode(key)
}

/// The id of a key: hex of the first four bytes of its SHA-256.
pub fn key_id(key: &[u8; 32]) -> String {
    Sha256::digest(key)
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The key id a sealed value names, or `None` for a value that is not sealed.
pub fn sealed_key_id(stored: &str) -> Option<&str> {
    stored.strip_prefix(SEALED_PREFIX)?.split(':').next()
}

fn make_key(bytes: &[u8; 32]) -> Result<Key, KeyError> {
    let unbound =
        UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| KeyError::BadKey("key".into()))?;
    Ok(Key {
        id: key_id(bytes),
        aead: LessSafeKey::new(unbound),
    })
}

fn build(current: &[u8; 32], others: &[[u8; 32]]) -> Result<Keys, KeyError> {
    let current = Arc::new(make_key(current)?);
    let mut by_id = HashMap::new();
    by_id.insert(current.id.clone(), current.clone());
    for k in others {
        let key = Arc::new(make_key(k)?);
        by_id.entry(key.id.clone()).or_insert(key);
    }
    Ok(Keys { current, by_id })
}

/// The keys of a key file, current first: one base64 key per line, `#` starts a comment.
fn read_file(path: &Path) -> Result<Vec<[u8; 32]>, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|e| KeyError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let keys = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .enumerate()
        .map(|(i, l)| decode_key(l, &format!("line {} of {}", i + 1, path.display())))
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(KeyError::File {
            path: path.display().to_string(),
            message: "holds no key".into(),
        });
    }
    Ok(keys)
}

const FILE_HEADER: &str =
    "# Switchboard master keys. The first key encrypts secrets at rest; the\n\
# keys below it only decrypt what they sealed, until `switchboard secrets rotate`\n\
# has re-encrypted everything. Back this file up apart from the database: without\n\
# it the stored credentials cannot be read.\n";

/// Writes a key file atomically (a temporary file with mode 0600, then a rename).
fn write_file(path: &Path, keys: &[[u8; 32]]) -> Result<(), KeyError> {
    use std::io::Write as _;
    let err = |e: std::io::Error| KeyError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut text = String::from(FILE_HEADER);
    for k in keys {
        text.push_str(&STANDARD.encode(k));
        text.push('\n');
    }
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(err)
}

impl Keyring {
    /// A keyring with `current` (base64) encrypting and `previous` decrypting only.
    pub fn from_keys(current: &[u8; 32], previous: &[[u8; 32]]) -> Result<Keyring, KeyError> {
        Ok(Keyring {
            keys: RwLock::new(build(current, previous)?),
            file: None,
            previous: previous.to_vec(),
            checked: Mutex::default(),
        })
    }

    /// A keyring read from a key file (first key current), plus decrypt-only `previous`.
    pub fn from_file(path: &Path, previous: &[[u8; 32]]) -> Result<Keyring, KeyError> {
        let mut keys = read_file(path)?;
        let current = keys.remove(0);
        keys.extend_from_slice(previous);
        Ok(Keyring {
            keys: RwLock::new(build(&current, &keys)?),
            file: Some(path.to_owned()),
            previous: previous.to_vec(),
            checked: Mutex::new(Checked {
                at: Some(Instant::now()),
                modified: modified(path),
                forced: None,
            }),
        })
    }

    /// Creates a key file with one fresh key (mode 0600); refuses to replace an existing one.
    pub fn create_file(path: &Path) -> Result<Keyring, KeyError> {
        if path.exists() {
            return Err(KeyError::File {
                path: path.display().to_string(),
                message: "already exists".into(),
            });
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| KeyError::File {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        }
        let key = decode_key(&new_key(), "new key")?;
        write_file(path, &[key])?;
        Keyring::from_file(path, &[])
    }

    /// The key file this keyring reads, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The id of the key that encrypts.
    pub fn current_id(&self) -> String {
        self.read().current.id.clone()
    }

    /// Every key id this keyring can decrypt with, current first.
    pub fn ids(&self) -> Vec<String> {
        let keys = self.read();
        let mut ids = vec![keys.current.id.clone()];
        let mut rest: Vec<String> = keys
            .by_id
            .keys()
            .filter(|id| **id != keys.current.id)
            .cloned()
            .collect();
        rest.sort();
        ids.extend(rest);
        ids
    }

    /// Puts a fresh key first in the key file (the old ones stay below it, decrypting) and
    /// starts encrypting with it. Returns the new key's id. Only for file-backed keyrings.
    pub fn rotate_file(&self) -> Result<String, KeyError> {
        let Some(path) = &self.file else {
            return Err(KeyError::File {
                path: "(none)".into(),
                message: "the master key comes from SWITCHBOARD_MASTER_KEY, not a file".into(),
            });
        };
        let mut keys = read_file(path)?;
        let fresh = decode_key(&new_key(), "new key")?;
        keys.insert(0, fresh);
        write_file(path, &keys)?;
        self.reload()?;
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        checked.modified = modified(path);
        Ok(key_id(&fresh))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Re-reads the key file.
    fn reload(&self) -> Result<(), KeyError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let mut keys = read_file(path)?;
        let current = keys.remove(0);
        keys.extend_from_slice(&self.previous);
        let fresh = build(&current, &keys)?;
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// Seals `plaintext` with the current key for `aad`.
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> Result<String, KeyError> {
        self.look_at_file(false)?;
        let key = self.read().current.clone();
        let mut nonce = [0u8; NONCE_LEN];
        switchboard_domain::ids::fill_random(&mut nonce);
        let mut buf = plaintext.to_vec();
        key.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut buf,
            )
            .map_err(|_| KeyError::TooLarge)?;
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(format!(
            "{SEALED_PREFIX}{}:{}",
            key.id,
            URL_SAFE_NO_PAD.encode(out)
        ))
    }

    /// Opens a sealed value for `aad`.
    pub fn open(&self, aad: &str, stored: &str) -> Result<Vec<u8>, KeyError> {
        let rest = stored
            .strip_prefix(SEALED_PREFIX)
            .ok_or(KeyError::NotSealed)?;
        let (id, body) = rest.split_once(':').ok_or(KeyError::Tampered)?;
        let key = match self.key(id) {
            Some(k) => k,
            None => {
                self.look_at_file(true)?;
                self.key(id)
                    .ok_or_else(|| KeyError::UnknownKey(id.to_owned()))?
            }
        };
        let mut data = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| KeyError::Tampered)?;
        if data.len() < NONCE_LEN {
            return Err(KeyError::Tampered);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&data[..NONCE_LEN]);
        let plain = key
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut data[NONCE_LEN..],
            )
            .map_err(|_| KeyError::Tampered)?;
        Ok(plain.to_vec())
    }

    fn key(&self, id: &str) -> Option<Arc<Key>> {
        self.read().by_id.get(id).cloned()
    }

    /// Re-reads the key file when it changed (or, with `unknown_id`, whenever it may hold a
    /// key not seen yet), at most once per [`RELOAD_INTERVAL`].
    fn look_at_file(&self, unknown_id: bool) -> Result<(), KeyError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        let due = |t: Option<Instant>| t.is_none_or(|t| t.elapsed() >= RELOAD_INTERVAL);
        let now = Instant::now();
        if unknown_id {
            if !due(checked.forced) {
                return Ok(());
            }
            checked.forced = Some(now);
        } else {
            if !due(checked.at) {
                return Ok(());
            }
            checked.at = Some(now);
            let m = modified(path);
            if m == checked.modified {
                return Ok(());
            }
        }
        checked.modified = modified(path);
        self.reload()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> [u8; 32] {
        [b; 32]
    }

    #[test]
    fn sealed_values_open_only_for_the_same_owner() {
        let ring = Keyring::from_keys(&key(1), &[]).expect("ring");
        let sealed = ring.seal("org_a:twilio.auth_token", b"tok").expect("seal");
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(!sealed.contains("tok"));
        assert_eq!(
            ring.open("org_a:twilio.auth_token", &sealed).expect("open"),
            b"tok"
        );
        assert_eq!(
            ring.open("org_b:twilio.auth_token", &sealed),
            Err(KeyError::Tampered)
        );
        assert_eq!(
            ring.open("org_a:webhook.secret", &sealed),
            Err(KeyError::Tampered)
        );
        // Each sealing uses a fresh nonce.
        assert_ne!(
            sealed,
            ring.seal("org_a:twilio.auth_token", b"tok").expect("seal")
        );
    }

    #[test]
    fn altered_or_unsealed_values_are_refused() {
        let ring = Keyring::from_keys(&key(1), &[]).expect("ring");
        let sealed = ring.seal("a", b"value").expect("seal");
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).expect("utf8");
        assert_eq!(ring.open("a", &altered), Err(KeyError::Tampered));
        assert_eq!(ring.open("a", "plain"), Err(KeyError::NotSealed));
        assert_eq!(ring.open("a", "enc:v1:zz"), Err(KeyError::Tampered));
    }

    #[test]
    fn previous_keys_decrypt_and_the_current_one_encrypts() {
        let old = Keyring::from_keys(&key(1), &[]).expect("old");
        let sealed = old.seal("a", b"v").expect("seal");
        let new = Keyring::from_keys(&key(2), &[key(1)]).expect("new");
        assert_eq!(new.open("a", &sealed).expect("open"), b"v");
        let resealed = new.seal("a", b"v").expect("seal");
        assert_eq!(sealed_key_id(&resealed), Some(key_id(&key(2)).as_str()));
        assert_eq!(
            old.open("a", &resealed),
            Err(KeyError::UnknownKey(key_id(&key(2))))
        );
        assert_eq!(new.ids()[0], key_id(&key(2)));
    }

    #[test]
    fn a_file_keyring_follows_a_rotation_made_by_another_process() {
        let dir = std::env::temp_dir().join(format!(
            "switchboard-keyring-{}",
            switchboard_domain::ids::random_token(10)
        ));
        let path = dir.join("master.key");
        let server = Keyring::create_file(&path).expect("create");
        assert!(Keyring::create_file(&path).is_err(), "never overwritten");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let before = server.seal("a", b"v").expect("seal");
        // Another process (the CLI) rotates the file.
        let cli = Keyring::from_file(&path, &[]).expect("cli");
        let new_id = cli.rotate_file().expect("rotate");
        assert_eq!(cli.current_id(), new_id);
        let after = cli.seal("a", b"v").expect("seal");
        // The server meets the new id, re-reads the file and reads both.
        assert_eq!(server.open("a", &after).expect("open new"), b"v");
        assert_eq!(server.open("a", &before).expect("open old"), b"v");
        assert_eq!(server.current_id(), new_id);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn keys_are_checked() {
        assert!(decode_key(&new_key(), "k").is_ok());
        assert!(decode_key("c2hvcnQ=", "k").is_err());
        assert!(decode_key("not base64!", "k").is_err());
        let url_safe = URL_SAFE_NO_PAD.encode([0xfb; 32]);
        assert_eq!(decode_key(&url_safe, "k"), Ok([0xfb; 32]));
    }
}
