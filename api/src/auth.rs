//! Bearer tokens: HS256 JWTs carrying the subject, the tenant, the roles and an expiry.
//!
//! [`JwtKeys`] signs (for `vextrus token`) and verifies; [`Principal`] is the extractor that
//! every `/v1` handler takes, so no route can forget authentication. Only HS256 is accepted:
//! `alg: none` and every other algorithm are refused before the signature is looked at.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vextrus_commands::ActorId;
use vextrus_domain::TenantId;

use crate::error::ApiError;
use crate::state::AppState;

/// The shortest signing secret accepted: 32 bytes, the HS256 key size.
pub const MIN_SECRET_LEN: usize = 32;

/// Clock skew tolerated when checking `exp` and `nbf`, in seconds (documented in the README).
pub const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the JWT secret must be at least {MIN_SECRET_LEN} bytes long (it is {0})")]
pub struct SecretTooShort(pub usize);

/// The HS256 secret, ready to sign and verify.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtKeys(..)")
    }
}

impl JwtKeys {
    pub fn from_secret(secret: &[u8]) -> Result<Self, SecretTooShort> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(SecretTooShort(secret.len()));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        // A token that says it is not valid yet is refused too (it is optional in our tokens).
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        })
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
    }

    /// The verified claims of `token`, or why it is refused (worded for the client).
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|error| {
                let reason = match error.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired",
                    ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)",
                    ErrorKind::InvalidSignature => "the token's signature is not valid",
                    ErrorKind::InvalidAlgorithm => "the token must be signed with HS256",
                    ErrorKind::MissingRequiredClaim(_) => {
                        "the token lacks a required claim (sub, tenant, exp)"
                    }
                    _ => "the token is malformed",
                };
                ApiError::Unauthenticated(reason.into())
            })
    }
}

/// The claims of a Vextrus token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user or service: recorded as the actor of every command it issues.
    pub sub: String,
    /// The tenant whose data the token may touch.
    pub tenant: Uuid,
    /// Role names; see [`Role`]. Unknown names are ignored, so older servers accept newer tokens.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issued at, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
}

/// What a role allows. Every authenticated caller may read its tenant's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Everything, including creating, renaming and archiving organizations.
    Admin,
    /// Creates, renames, archives and moves divisions, projects and sites.
    Manager,
    /// Runs and watches projection replays (operations endpoints).
    Operator,
    /// Reads the tenant's audit trail (the `/v1/audit` routes).
    Auditor,
    /// Posts and reverses journal entries.
    Accountant,
    /// What an accountant does, and manages the chart of accounts and the fiscal calendar
    /// (close, reopen, lock, year-end closing).
    FinanceManager,
    /// Reads only.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Admin,
        Role::Manager,
        Role::Operator,
        Role::Auditor,
        Role::Accountant,
        Role::FinanceManager,
        Role::Viewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Manager => "manager",
            Self::Operator => "operator",
            Self::Auditor => "auditor",
            Self::Accountant => "accountant",
            Self::FinanceManager => "finance-manager",
            Self::Viewer => "viewer",
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|role| role.as_str()).collect();
                format!("unknown role {s:?}; roles are {}", names.join(", "))
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verified caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub subject: ActorId,
    pub tenant: TenantId,
    pub roles: BTreeSet<Role>,
}

impl Principal {
    /// Passes when the caller holds any of `roles`; else 403 naming what is needed.
    pub fn require_any(&self, roles: &[Role], action: &str) -> Result<(), ApiError> {
        if roles.iter().any(|role| self.roles.contains(role)) {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
        Err(ApiError::Forbidden(format!(
            "{action} requires the role {}",
            names.join(" or ")
        )))
    }
}

impl TryFrom<Claims> for Principal {
    type Error = ApiError;

    fn try_from(claims: Claims) -> Result<Self, Self::Error> {
        let subject = ActorId::parse(&claims.sub)
            .map_err(|_| ApiError::Unauthenticated("the token's subject is not valid".into()))?;
        Ok(Self {
            subject,
            tenant: TenantId::from_uuid(claims.tenant),
            roles: claims
                .roles
                .iter()
                .filter_map(|name| name.parse().ok())
                .collect(),
        })
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::Unauthenticated("send a bearer token in the Authorization header".into())
        })?;
        let token = value
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthenticated(
                    "the Authorization header must be `Bearer <token>`".into(),
                )
            })?;
        state.keys().verify(token)?.try_into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::from_secret(&[7u8; 32]).unwrap()
    }

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "user-1".into(),
            tenant: Uuid::now_v7(),
            roles: vec!["admin".into(), "astronaut".into()],
            exp,
            iat: None,
        }
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn a_signed_token_verifies_and_unknown_roles_are_ignored() {
        let claims = claims(now() + 60);
        let verified = keys().verify(&keys().sign(&claims).unwrap()).unwrap();
        assert_eq!(verified, claims);
        let principal = Principal::try_from(verified).unwrap();
        assert_eq!(principal.roles, BTreeSet::from([Role::Admin]));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(
            JwtKeys::from_secret(b"short").unwrap_err(),
            SecretTooShort(5)
        );
    }

    #[test]
    fn expired_and_foreign_tokens_are_refused() {
        let expired = keys().sign(&claims(now() - 3600)).unwrap();
        assert!(keys().verify(&expired).is_err());
        let other = JwtKeys::from_secret(&[8u8; 32]).unwrap();
        let forged = other.sign(&claims(now() + 60)).unwrap();
        assert!(keys().verify(&forged).is_err());
    }
}
