//! One-time secrets and the tokens that carry them.
//!
//! A secret is 32 random bytes (base64url); the log keeps its SHA-256 ([`SecretHash`]). Each
//! token also names where its secret is checked, so redeeming it needs no lookup and no other
//! input: `vxi.<tenant>.<user>.<secret>` (an invitation), `vxp.<tenant>.<user>.<secret>` (a
//! password reset), `vxr.<tenant>.<user>.<session>.<secret>` (a refresh token). Ids are UUIDs in
//! their 32-digit form. Knowing the ids grants nothing without the secret.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use uuid::Uuid;
use vextrus_domain::TenantId;
use vextrus_domain::identity::SecretHash;
use vextrus_domain::ids::{SessionId, UserId};

use crate::error::ApiError;

/// A fresh secret and its hash.
pub fn fresh() -> Result<(String, SecretHash), ApiError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ApiError::Internal("the system random number generator failed".into()))?;
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&secret);
    Ok((secret, hash))
}

/// The SHA-256 (hex) of a secret.
pub fn hash(secret: &str) -> SecretHash {
    let digest = digest(&SHA256, secret.as_bytes());
    SecretHash::new(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect())
}

/// What a one-time token is for: its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Invitation,
    Reset,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Self::Invitation => "vxi",
            Self::Reset => "vxp",
        }
    }
}

/// An invitation or reset token, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeToken {
    pub tenant: TenantId,
    pub user: UserId,
    pub secret: String,
}

impl OneTimeToken {
    pub fn format(kind: Kind, tenant: TenantId, user: UserId, secret: &str) -> String {
        format!(
            "{}.{}.{}.{secret}",
            kind.prefix(),
            tenant.as_uuid().simple(),
            user.as_uuid().simple()
        )
    }

    /// The token, or 422 naming `field` when it is not a token of `kind`.
    pub fn parse(kind: Kind, field: &str, text: &str) -> Result<Self, ApiError> {
        let invalid = || {
            ApiError::invalid_param(
                field,
                format!(
                    "must be a token as issued, starting with {}.",
                    kind.prefix()
                ),
            )
        };
        let mut parts = text.split('.');
        if parts.next() != Some(kind.prefix()) {
            return Err(invalid());
        }
        let (Some(tenant), Some(user), Some(secret), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        Ok(Self {
            tenant: TenantId::from_uuid(simple_uuid(tenant).ok_or_else(invalid)?),
            user: UserId::from_uuid(simple_uuid(user).ok_or_else(invalid)?),
            secret: secret_part(secret).ok_or_else(invalid)?,
        })
    }
}

/// A refresh token, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub tenant: TenantId,
    pub user: UserId,
    pub session: SessionId,
    pub secret: String,
}

impl RefreshToken {
    pub fn format(tenant: TenantId, user: UserId, session: SessionId, secret: &str) -> String {
        format!(
            "vxr.{}.{}.{}.{secret}",
            tenant.as_uuid().simple(),
            user.as_uuid().simple(),
            session.as_uuid().simple()
        )
    }

    /// The token, or 422 when it is not a refresh token as issued.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let invalid = || {
            ApiError::invalid_param(
                "refresh_token",
                "must be a refresh token as issued, starting with vxr.",
            )
        };
        let mut parts = text.split('.');
        if parts.next() != Some("vxr") {
            return Err(invalid());
        }
        let (Some(tenant), Some(user), Some(session), Some(secret), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(invalid());
        };
        Ok(Self {
            tenant: TenantId::from_uuid(simple_uuid(tenant).ok_or_else(invalid)?),
            user: UserId::from_uuid(simple_uuid(user).ok_or_else(invalid)?),
            session: SessionId::from_uuid(simple_uuid(session).ok_or_else(invalid)?),
            secret: secret_part(secret).ok_or_else(invalid)?,
        })
    }
}

fn simple_uuid(text: &str) -> Option<Uuid> {
    (text.len() == 32)
        .then(|| Uuid::try_parse(text).ok())
        .flatten()
}

fn secret_part(text: &str) -> Option<String> {
    let valid = text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid.then(|| text.to_owned())
}

/// The pattern of each token, for the OpenAPI document.
pub const INVITATION_PATTERN: &str = "^vxi\\.[0-9a-f]{32}\\.[0-9a-f]{32}\\.[A-Za-z0-9_-]{43}$";
pub const RESET_PATTERN: &str = "^vxp\\.[0-9a-f]{32}\\.[0-9a-f]{32}\\.[A-Za-z0-9_-]{43}$";
pub const REFRESH_PATTERN: &str =
    "^vxr\\.[0-9a-f]{32}\\.[0-9a-f]{32}\\.[0-9a-f]{32}\\.[A-Za-z0-9_-]{43}$";

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    #[test]
    fn tokens_round_trip_and_match_their_patterns() {
        let (secret, hashed) = fresh().unwrap();
        assert_eq!(hash(&secret), hashed);
        assert_eq!(hashed.as_str().len(), 64);
        let tenant = TenantId::new();
        let user = UserId::new();
        let invitation = OneTimeToken::format(Kind::Invitation, tenant, user, &secret);
        assert!(
            Regex::new(INVITATION_PATTERN)
                .unwrap()
                .is_match(&invitation)
        );
        let parsed = OneTimeToken::parse(Kind::Invitation, "invitation", &invitation).unwrap();
        assert_eq!((parsed.tenant, parsed.user), (tenant, user));
        assert_eq!(parsed.secret, secret);
        assert!(OneTimeToken::parse(Kind::Reset, "reset", &invitation).is_err());
        let reset = OneTimeToken::format(Kind::Reset, tenant, user, &secret);
        assert!(Regex::new(RESET_PATTERN).unwrap().is_match(&reset));

        let session = SessionId::new();
        let refresh = RefreshToken::format(tenant, user, session, &secret);
        assert!(Regex::new(REFRESH_PATTERN).unwrap().is_match(&refresh));
        assert_eq!(RefreshToken::parse(&refresh).unwrap().session, session);
        for bad in [
            "",
            "vxr",
            &format!("{refresh}.x"),
            &refresh[..refresh.len() - 1],
        ] {
            assert!(RefreshToken::parse(bad).is_err(), "{bad}");
        }
    }
}
