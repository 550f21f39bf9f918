//! The server's Ed25519 signing keys for access tokens, and the JWKS that publishes them.
//!
//! A key set is every key the server accepts; the last one signs. Rotating means adding a new key
//! (it signs from then on) and, once every token it did not sign has expired (the access-token
//! lifetime), removing the oldest: nobody is logged out. Each key's `kid` is its RFC 7638
//! thumbprint, so the same key has the same id on every server that holds it.
//!
//! Keys are PKCS#8 (what `openssl genpkey -algorithm ed25519` and `vextrus keys rotate` write, PEM
//! or DER); the binary reads them from files, this module only from bytes.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::digest::{SHA256, digest};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::LEEWAY_SECS;
use crate::error::ApiError;

/// The `aud` of every access token this server issues.
pub const AUDIENCE: &str = "vextrus-api";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not an Ed25519 private key in PKCS#8 (PEM or DER)")]
    NotEd25519,
    #[error("the PEM text has no base64 body between its BEGIN and END lines")]
    BadPem,
    #[error("the system random number generator failed")]
    Random,
    #[error("signing failed: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
    #[error("no signing key is configured")]
    NoKey,
}

/// The claims of an access token issued at sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    pub iss: String,
    pub aud: String,
    /// The user's id.
    pub sub: Uuid,
    pub tenant: Uuid,
    /// The user's tenant-wide roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The roles the user holds in one organization or project.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scoped_roles: Vec<ScopedRoleClaim>,
    /// The session (one sign-in and its refreshes).
    pub sid: Uuid,
    /// The user's stream version at issue.
    pub ver: i64,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

/// A role held in one organization or one project, as an access token carries it. The role is a
/// name, not a [`vextrus_domain::identity::Role`], so that a server that does not know a newer
/// role ignores it instead of refusing the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopedRoleClaim {
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<Uuid>,
}

struct VerifyingKey {
    key: DecodingKey,
}

struct Inner {
    /// The key that signs, with its kid.
    signing: Option<(String, EncodingKey)>,
    verifying: HashMap<String, VerifyingKey>,
    /// In the order given, the signing key last.
    kids: Vec<String>,
    jwks: Value,
}

/// Cheap to clone.
#[derive(Clone)]
pub struct SigningKeys(Arc<Inner>);

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SigningKeys").field(&self.0.kids).finish()
    }
}

impl Default for SigningKeys {
    /// No key: sign-in answers 503 and the JWKS is empty.
    fn default() -> Self {
        Self(Arc::new(Inner {
            signing: None,
            verifying: HashMap::new(),
            kids: Vec::new(),
            jwks: json!({ "keys": [] }),
        }))
    }
}

impl SigningKeys {
    /// The keys of `pkcs8` (DER), the last of which signs.
    pub fn from_pkcs8(pkcs8: &[Vec<u8>]) -> Result<Self, KeyError> {
        let mut verifying = HashMap::new();
        let mut kids = Vec::new();
        let mut published = Vec::new();
        let mut signing = None;
        for der in pkcs8 {
            let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map_err(|_| KeyError::NotEd25519)?;
            let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
            let kid = thumbprint(&x);
            let key = DecodingKey::from_ed_components(&x).map_err(KeyError::Signing)?;
            if verifying
                .insert(kid.clone(), VerifyingKey { key })
                .is_none()
            {
                kids.push(kid.clone());
                published.push(json!({
                    "kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"
                }));
            }
            signing = Some((kid, EncodingKey::from_ed_der(der)));
        }
        Ok(Self(Arc::new(Inner {
            signing,
            verifying,
            kids,
            jwks: json!({ "keys": published }),
        })))
    }

    /// A fresh Ed25519 private key, PKCS#8 DER.
    pub fn generate_pkcs8() -> Result<Vec<u8>, KeyError> {
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map(|document| document.as_ref().to_vec())
            .map_err(|_| KeyError::Random)
    }

    /// The DER inside PEM text (`-----BEGIN PRIVATE KEY-----` …), or the bytes themselves when
    /// they are not PEM.
    pub fn der_from_file(bytes: &[u8]) -> Result<Vec<u8>, KeyError> {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Ok(bytes.to_vec());
        };
        if !text.trim_start().starts_with("-----BEGIN") {
            return Ok(bytes.to_vec());
        }
        let body: String = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.starts_with("-----") && !line.is_empty())
            .collect();
        STANDARD.decode(body).map_err(|_| KeyError::BadPem)
    }

    /// PEM text of a PKCS#8 private key.
    pub fn pem(der: &[u8]) -> String {
        let body = STANDARD.encode(der);
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in body.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        pem
    }

    /// The key ids, oldest first; the last signs.
    pub fn kids(&self) -> &[String] {
        &self.0.kids
    }

    /// `{"keys": [...]}`: the public keys, as `/.well-known/jwks.json` serves them.
    pub fn jwks(&self) -> &Value {
        &self.0.jwks
    }

    pub fn sign(&self, claims: &SessionClaims) -> Result<String, KeyError> {
        let (kid, key) = self.0.signing.as_ref().ok_or(KeyError::NoKey)?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, key)?)
    }

    /// The verified claims of `token` (whose header named `kid`) for `issuer`, or why it is
    /// refused (worded for the client).
    pub fn verify(
        &self,
        token: &str,
        kid: Option<&str>,
        issuer: &str,
    ) -> Result<SessionClaims, ApiError> {
        let kid = kid.ok_or_else(|| {
            ApiError::Unauthenticated("the token names no signing key (kid)".into())
        })?;
        let key = self.0.verifying.get(kid).ok_or_else(|| {
            ApiError::Unauthenticated(
                "the token was signed with a key this server does not hold (kid); sign in again"
                    .into(),
            )
        })?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "nbf", "sub", "iss", "aud"]);
        jsonwebtoken::decode::<SessionClaims>(token, &key.key, &validation)
            .map(|data| data.claims)
            .map_err(|error| {
                let reason = match error.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired; refresh it",
                    ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)",
                    ErrorKind::InvalidSignature => "the token's signature is not valid",
                    ErrorKind::InvalidIssuer => "the token was issued by another server (iss)",
                    ErrorKind::InvalidAudience => "the token is meant for another audience (aud)",
                    ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim",
                    _ => "the token is malformed",
                };
                ApiError::Unauthenticated(reason.into())
            })
    }
}

/// The RFC 7638 thumbprint of an Ed25519 public key (`x`, base64url): SHA-256 of the JWK's
/// required members in lexicographic order, base64url.
fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(iss: &str, exp_in: i64) -> SessionClaims {
        let now = chrono::Utc::now().timestamp();
        SessionClaims {
            iss: iss.into(),
            aud: AUDIENCE.into(),
            sub: Uuid::now_v7(),
            tenant: Uuid::now_v7(),
            roles: vec!["admin".into()],
            scoped_roles: Vec::new(),
            sid: Uuid::now_v7(),
            ver: 3,
            iat: now,
            nbf: now,
            exp: now + exp_in,
        }
    }

    fn kid_of(token: &str) -> Option<String> {
        jsonwebtoken::decode_header(token).unwrap().kid
    }

    #[test]
    fn the_newest_key_signs_and_older_keys_still_verify() {
        let old = SigningKeys::generate_pkcs8().unwrap();
        let new = SigningKeys::generate_pkcs8().unwrap();
        let before = SigningKeys::from_pkcs8(std::slice::from_ref(&old)).unwrap();
        let after = SigningKeys::from_pkcs8(&[old.clone(), new]).unwrap();
        let token = before.sign(&claims("vextrus", 60)).unwrap();
        let kid = kid_of(&token);
        assert_eq!(kid.as_deref(), Some(before.kids()[0].as_str()));
        assert!(after.verify(&token, kid.as_deref(), "vextrus").is_ok());
        let fresh = after.sign(&claims("vextrus", 60)).unwrap();
        assert_eq!(kid_of(&fresh).as_deref(), Some(after.kids()[1].as_str()));
        assert!(
            before
                .verify(&fresh, kid_of(&fresh).as_deref(), "vextrus")
                .is_err(),
            "a key the server does not hold"
        );
        assert_eq!(after.jwks()["keys"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn issuer_audience_expiry_and_kid_are_checked() {
        let keys = SigningKeys::from_pkcs8(&[SigningKeys::generate_pkcs8().unwrap()]).unwrap();
        let kid = keys.kids()[0].clone();
        let other_issuer = keys.sign(&claims("elsewhere", 60)).unwrap();
        assert!(keys.verify(&other_issuer, Some(&kid), "vextrus").is_err());
        let expired = keys.sign(&claims("vextrus", -60)).unwrap();
        assert!(keys.verify(&expired, Some(&kid), "vextrus").is_err());
        let mut wrong_audience = claims("vextrus", 60);
        wrong_audience.aud = "someone-else".into();
        let token = keys.sign(&wrong_audience).unwrap();
        assert!(keys.verify(&token, Some(&kid), "vextrus").is_err());
        let good = keys.sign(&claims("vextrus", 60)).unwrap();
        assert!(keys.verify(&good, None, "vextrus").is_err());
        assert!(keys.verify(&good, Some(&kid), "vextrus").is_ok());
    }

    #[test]
    fn pem_round_trips_and_the_kid_is_the_rfc_7638_thumbprint() {
        let der = SigningKeys::generate_pkcs8().unwrap();
        let pem = SigningKeys::pem(&der);
        assert_eq!(SigningKeys::der_from_file(pem.as_bytes()).unwrap(), der);
        assert_eq!(SigningKeys::der_from_file(&der).unwrap(), der);
        // RFC 8037, appendix A.3: the thumbprint of its example key.
        assert_eq!(
            thumbprint("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn no_key_signs_nothing_and_publishes_nothing() {
        let keys = SigningKeys::default();
        assert!(matches!(
            keys.sign(&claims("vextrus", 60)),
            Err(KeyError::NoKey)
        ));
        assert_eq!(keys.jwks(), &json!({ "keys": [] }));
    }
}
