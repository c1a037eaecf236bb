//! Secret material at rest: nothing here can be turned back into the secret.
//!
//! **API keys** (Kazoo uses 64 characters) are 64 lowercase hex: the first [`KEY_ID_LEN`]
//! characters are a public lookup id, so `api_auth` finds the one stored record without scanning;
//! the whole key is then checked against `HMAC-SHA256(salt, key)` with a per-key random salt, in
//! constant time. The remaining 192 random bits make a brute force pointless, so a fast hash is
//! right here.
//!
//! **User credentials** are what `user_auth` sends: `md5("user:pass")` (or sha1 with
//! `"method":"sha"`), i.e. a password in disguise with little entropy. They are stored as argon2id
//! PHC strings (salted, slow), one per digest kind.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use hmac::{Hmac, Mac};
use md5::Md5;
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Length of the public lookup prefix of an API key.
pub const KEY_ID_LEN: usize = 16;
/// Length of a whole API key.
pub const API_KEY_LEN: usize = 64;

/// A freshly generated API key: shown once, then only its [`ApiKeyHash`] is kept.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// The 64-hex key to give to the user.
    pub key: String,
    /// What the store keeps.
    pub hash: ApiKeyHash,
}

/// The stored form of an API key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyHash {
    /// Public lookup id (the key's first [`KEY_ID_LEN`] characters).
    pub key_id: String,
    /// Random per-key salt (hex).
    pub salt: String,
    /// `HMAC-SHA256(salt, key)` (hex).
    pub hash: String,
}

/// Generates a new random API key and its stored hash.
pub fn new_api_key() -> NewApiKey {
    let key = crate::util::random_hex(API_KEY_LEN / 2);
    let salt = crate::util::random_hex(16);
    let hash = keyed_hash(&salt, &key);
    NewApiKey {
        hash: ApiKeyHash {
            key_id: key[..KEY_ID_LEN].to_string(),
            salt,
            hash,
        },
        key,
    }
}

/// The lookup id of a presented key, or `None` when it cannot be one of ours (wrong length or
/// not hex): such a key is rejected without touching the store.
pub fn api_key_id(key: &str) -> Option<&str> {
    (key.len() == API_KEY_LEN && key.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| &key[..KEY_ID_LEN])
}

impl ApiKeyHash {
    /// Constant-time check of a presented key against this record.
    pub fn verify(&self, presented: &str) -> bool {
        let computed = keyed_hash(&self.salt, &presented.to_ascii_lowercase());
        computed.as_bytes().ct_eq(self.hash.as_bytes()).into()
    }
}

fn keyed_hash(salt: &str, secret: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail; fall back to a plain salted SHA-256
    // anyway rather than panic.
    match Hmac::<Sha256>::new_from_slice(salt.as_bytes()) {
        Ok(mut mac) => {
            mac.update(secret.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => hex::encode(Sha256::digest(format!("{salt}{secret}").as_bytes())),
    }
}

/// Which digest a `user_auth` request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestMethod {
    /// `md5("user:pass")` hex (Kazoo's default).
    Md5,
    /// `sha1("user:pass")` hex (`"method":"sha"`).
    Sha1,
}

/// The stored form of one user's login: argon2id PHC strings of both digests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserCredential {
    /// Id of the user (owner_id in tokens).
    pub user_id: String,
    /// Login name, lowercased (informational; the digest already binds it).
    pub username: String,
    /// argon2id PHC of the md5 digest hex.
    pub md5: String,
    /// argon2id PHC of the sha1 digest hex.
    pub sha1: String,
}

/// Why a secret could not be hashed (argon2 parameter errors; should not happen).
#[derive(Debug, thiserror::Error)]
#[error("cannot hash secret: {0}")]
pub struct HashError(String);

impl UserCredential {
    /// Builds the stored record from a username and password (`account create --username`).
    /// Usernames are lowercased, as Kazoo's UIs do before computing the digest.
    pub fn new(user_id: &str, username: &str, password: &str) -> Result<Self, HashError> {
        let username = username.to_lowercase();
        let plain = format!("{username}:{password}");
        let md5_hex = hex::encode(Md5::digest(plain.as_bytes()));
        let sha1_hex = hex::encode(Sha1::digest(plain.as_bytes()));
        Ok(UserCredential {
            user_id: user_id.to_string(),
            username,
            md5: slow_hash(&md5_hex)?,
            sha1: slow_hash(&sha1_hex)?,
        })
    }

    /// Checks a presented digest (hex, any case). argon2's verifier compares in constant time.
    pub fn verify(&self, method: DigestMethod, digest_hex: &str) -> bool {
        let stored = match method {
            DigestMethod::Md5 => &self.md5,
            DigestMethod::Sha1 => &self.sha1,
        };
        let Ok(parsed) = PasswordHash::new(stored) else {
            return false;
        };
        Argon2::default()
            .verify_password(digest_hex.to_ascii_lowercase().as_bytes(), &parsed)
            .is_ok()
    }
}

fn slow_hash(secret: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// `md5("user:pass")` as lowercase hex: what a Kazoo client sends (tests, docs).
pub fn md5_credentials(username: &str, password: &str) -> String {
    hex::encode(Md5::digest(format!("{username}:{password}").as_bytes()))
}

/// `sha1("user:pass")` as lowercase hex (`"method":"sha"`).
pub fn sha1_credentials(username: &str, password: &str) -> String {
    hex::encode(Sha1::digest(format!("{username}:{password}").as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_verify_and_hide_the_secret() {
        let new = new_api_key();
        assert_eq!(new.key.len(), 64);
        assert_eq!(api_key_id(&new.key), Some(new.hash.key_id.as_str()));
        assert!(new.hash.verify(&new.key));
        assert!(!new.hash.verify(&"0".repeat(64)));
        assert!(!new.hash.hash.contains(&new.key));
        assert_eq!(api_key_id("short"), None);
        assert_eq!(api_key_id(&"z".repeat(64)), None);
    }

    #[test]
    fn user_credentials_both_methods() {
        let cred = UserCredential::new("u1", "Alice", "secret").unwrap();
        assert!(cred.verify(DigestMethod::Md5, &md5_credentials("alice", "secret")));
        assert!(cred.verify(DigestMethod::Sha1, &sha1_credentials("alice", "secret")));
        assert!(!cred.verify(DigestMethod::Md5, &md5_credentials("alice", "wrong")));
        assert!(!cred.verify(DigestMethod::Sha1, &md5_credentials("alice", "secret")));
    }
}
