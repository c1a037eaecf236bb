//! Auth tokens: JWTs (HS256, compact form) so that UIs can decode the middle segment as
//! base64url JSON, as Kazoo's do.
//!
//! The signing key is 32 random bytes generated at first start and kept in the store, so tokens
//! survive a restart. Verification checks the signature in constant time (`Mac::verify_slice`)
//! before looking at the claims, then the expiry.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// What a token says about its bearer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The account the token is for.
    pub account_id: String,
    /// The user who logged in (`user_auth`); absent for `api_auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    /// Which login issued it (`api_auth` / `user_auth`).
    pub method: String,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expires at (Unix seconds).
    pub exp: u64,
    /// Random token id (for logs and a future revocation list).
    pub jti: String,
}

/// Why a presented token is refused. Every variant becomes the same 401 for the client.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TokenError {
    /// Not three base64url segments of the right content.
    #[error("malformed token")]
    Malformed,
    /// Signed with another key, or altered.
    #[error("bad token signature")]
    BadSignature,
    /// Past its `exp`.
    #[error("token expired")]
    Expired,
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Issues and checks tokens with one HMAC key.
#[derive(Clone)]
pub struct TokenSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(..)")
    }
}

impl TokenSigner {
    /// A signer over `key` (the store's persistent signing key).
    pub fn new(key: Vec<u8>) -> Self {
        TokenSigner { key }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length; `new_from_slice` only fails for fixed-size MACs.
        Hmac::<Sha256>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC-SHA256 accepts keys of any length"))
    }

    /// Signs `claims` into `header.payload.signature`.
    pub fn issue(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(HEADER);
        // Serialising a struct of strings and integers cannot fail.
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// Checks the signature, then the expiry against `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(header.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims {
            account_id: "a".repeat(32),
            owner_id: None,
            method: "api_auth".into(),
            iat: 100,
            exp,
            jti: "j".into(),
        }
    }

    #[test]
    fn round_trip_and_jwt_shape() {
        let signer = TokenSigner::new(vec![7; 32]);
        let token = signer.issue(&claims(200));
        let middle = token.split('.').nth(1).unwrap();
        let decoded: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(middle).unwrap()).unwrap();
        assert_eq!(decoded["account_id"], "a".repeat(32));
        assert_eq!(signer.verify(&token, 150).unwrap(), claims(200));
        assert_eq!(signer.verify(&token, 200), Err(TokenError::Expired));
    }

    #[test]
    fn tampering_and_other_keys_fail() {
        let signer = TokenSigner::new(vec![7; 32]);
        let token = signer.issue(&claims(200));
        assert_eq!(
            TokenSigner::new(vec![8; 32]).verify(&token, 150),
            Err(TokenError::BadSignature)
        );
        let forged = format!(
            "{}.{}.{}",
            token.split('.').next().unwrap(),
            URL_SAFE_NO_PAD
                .encode(br#"{"account_id":"b","method":"x","iat":0,"exp":999,"jti":"j"}"#),
            token.split('.').nth(2).unwrap()
        );
        assert_eq!(signer.verify(&forged, 150), Err(TokenError::BadSignature));
        assert_eq!(signer.verify("nope", 0), Err(TokenError::Malformed));
    }
}
