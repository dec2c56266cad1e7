//! Credentials: API keys (random, stored as SHA-256) and passwords (argon2id).

use crate::ids::random_token;
use crate::Secret;
use sha2::{Digest, Sha256};

/// A freshly minted API key. `key` is shown once and never stored; `hash` is what the store keeps.
#[derive(Debug)]
pub struct MintedKey {
    /// The full key to hand to the user (`sk_<prefix>_<secret>`).
    pub key: Secret,
    /// The visible part, safe to list (`sk_<prefix>`).
    pub prefix: String,
    /// SHA-256 of the full key, hex.
    pub hash: String,
}

/// Mints an API key. The secret part carries 160 random bits, so a fast hash is enough at rest
/// (unlike passwords, keys cannot be guessed from a dictionary).
pub fn mint_api_key() -> MintedKey {
    let prefix = format!("sk_{}", random_token(8));
    let key = format!("{prefix}_{}", random_token(32));
    MintedKey {
        hash: hash_api_key(&key),
        key: Secret::new(key),
        prefix,
    }
}

/// The at-rest form of an API key (lowercase hex SHA-256).
pub fn hash_api_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &Secret) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt_bytes = [0u8; 16];
    crate::ids::fill_random(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Checks a password against a stored PHC hash.
pub fn verify_password(password: &Secret, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2::Argon2::default()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A random password for generated logins (24 characters, ~120 bits).
pub fn generate_password() -> Secret {
    Secret::new(random_token(24))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_hash_to_their_stored_hash() {
        let k = mint_api_key();
        assert!(k.key.expose().starts_with(&k.prefix));
        assert_eq!(hash_api_key(k.key.expose()), k.hash);
        assert_ne!(mint_api_key().hash, k.hash);
        assert_eq!(format!("{:?}", k.key), "[redacted]");
    }

    #[test]
    fn sha256_vector() {
        assert_eq!(
            hash_api_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let pw = Secret::new("correct horse");
        let phc = hash_password(&pw).expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password(&pw, &phc));
        assert!(!verify_password(&Secret::new("wrong"), &phc));
        assert!(!verify_password(&pw, "not a hash"));
    }
}
