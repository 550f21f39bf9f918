//! Bearer tokens and the caller they prove.
//!
//! Four kinds of credential are accepted:
//! - **EdDSA** (Ed25519) access tokens issued by `POST /v1/auth/login` and `/v1/auth/refresh`,
//!   with a `kid` naming one of the server's signing keys ([`crate::keys`]), `iss`, `aud`, the
//!   session and the user's stream version;
//! - **HS256** tokens signed with `VEXTRUS_JWT_SECRET` ([`JwtKeys`]), minted by `vextrus token`:
//!   a development tool, kept so existing deployments keep working;
//! - **API keys** (`vx_…`, [`crate::identity::api_keys`]) and access tokens of a tenant's
//!   **external identity provider** ([`crate::identity::oidc`]), told apart by their prefix and
//!   their `iss`.
//!
//! `alg: none` and every other algorithm are refused before a signature is looked at.
//! [`Principal`] is the extractor every `/v1` handler takes, so no route can forget
//! authentication; after the signature it asks the log whether the token still stands
//! ([`access::check`]: the tenant not suspended, the session not ended, the user's roles and
//! standing unchanged).

use std::collections::BTreeSet;
use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vextrus_commands::ActorId;
use vextrus_domain::TenantId;
pub use vextrus_domain::identity::{Permission, Role, RoleGrant, Scope};
use vextrus_domain::ids::{OrganizationId, ProjectId};
use vextrus_domain::ids::{SessionId, UserId};

use crate::error::ApiError;
use crate::identity::{access, api_keys};
pub use crate::keys::{ScopedRoleClaim, SessionClaims};
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

/// The verified caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub subject: ActorId,
    pub tenant: TenantId,
    /// The roles held in the whole tenant.
    pub roles: BTreeSet<Role>,
    /// The roles held in one organization or one project (signed-in users only): they count
    /// where [`RoleGrant::covers`] says, see [`Principal::allows`].
    pub scoped_roles: BTreeSet<RoleGrant>,
    /// The sign-in session, for tokens issued by `POST /v1/auth/login` (none for development
    /// tokens).
    pub session: Option<SessionRef>,
}

/// What a caller may read ([`Principal::readable`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readable {
    /// The whole tenant.
    Everything,
    /// These organizations whole, and these projects with their sites.
    Units {
        organizations: Vec<OrganizationId>,
        projects: Vec<ProjectId>,
    },
}

/// The session a token was issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRef {
    pub user: UserId,
    pub session: SessionId,
    /// The user's stream version when the token was issued: a later event that outdates tokens
    /// refuses it.
    pub version: i64,
}

impl Principal {
    /// True when a role the caller holds allows `permission` at `scope`: a tenant-wide role
    /// anywhere, a scoped one where it [covers](RoleGrant::covers) the scope.
    pub fn allows(&self, permission: Permission, scope: Scope) -> bool {
        self.roles.iter().any(|role| role.grants(permission))
            || self
                .scoped_roles
                .iter()
                .any(|grant| grant.allows(permission, scope))
    }

    /// True when a role the caller holds grants `permission` somewhere in the tenant.
    pub fn holds_anywhere(&self, permission: Permission) -> bool {
        self.roles.iter().any(|role| role.grants(permission))
            || self
                .scoped_roles
                .iter()
                .any(|grant| grant.role.grants(permission))
    }

    /// Passes when a role the caller holds in the whole tenant grants `permission`; else 403
    /// naming the `action`, the permission and the roles that grant it.
    pub fn require(&self, permission: Permission, action: &str) -> Result<(), ApiError> {
        self.require_in(permission, Scope::Tenant, action)
    }

    /// Passes when the caller [`allows`](Self::allows) `permission` at `scope`; else 403 naming
    /// the `action`, the permission, the scope and the roles that grant it.
    pub fn require_in(
        &self,
        permission: Permission,
        scope: Scope,
        action: &str,
    ) -> Result<(), ApiError> {
        if self.allows(permission, scope) {
            return Ok(());
        }
        let roles: Vec<&str> = Role::ALL
            .iter()
            .filter(|role| role.grants(permission))
            .map(|role| role.as_str())
            .collect();
        Err(ApiError::Forbidden(format!(
            "{action} requires the permission {permission} in {scope} (roles: {})",
            roles.join(", ")
        )))
    }

    /// What the caller may read: with `read` in the whole tenant everything, else the
    /// organizations and projects its scoped roles name.
    pub fn readable(&self) -> Readable {
        if self.roles.iter().any(|role| role.grants(Permission::Read)) {
            return Readable::Everything;
        }
        let mut organizations = Vec::new();
        let mut projects = Vec::new();
        for grant in &self.scoped_roles {
            if !grant.role.grants(Permission::Read) {
                continue;
            }
            match (grant.organization_id, grant.project_id) {
                (Some(organization), _) => organizations.push(organization),
                (None, Some(project)) => projects.push(project),
                (None, None) => {}
            }
        }
        Readable::Units {
            organizations,
            projects,
        }
    }

    /// The roles to record in the audit metadata of the caller's commands: tenant-wide role
    /// names, then scoped ones as `role in organization <id>` or `role in project <id>`.
    pub fn role_names(&self) -> Vec<String> {
        self.roles
            .iter()
            .map(|role| role.as_str().to_owned())
            .chain(self.scoped_roles.iter().map(RoleGrant::to_string))
            .collect()
    }

    /// The caller as a signed-in user, or 403 for other callers (development tokens).
    pub fn session(&self) -> Result<SessionRef, ApiError> {
        self.session.ok_or_else(|| {
            ApiError::Forbidden("this needs a token from POST /v1/auth/login".into())
        })
    }
}

/// Role names as a token carries them: unknown names are ignored, so older servers accept newer
/// tokens.
fn known_roles(names: &[String]) -> BTreeSet<Role> {
    names.iter().filter_map(|name| name.parse().ok()).collect()
}

/// Scoped roles as a token carries them: unknown role names, and claims naming neither an
/// organization nor a project, are ignored.
fn known_scoped_roles(claims: &[ScopedRoleClaim]) -> BTreeSet<RoleGrant> {
    claims
        .iter()
        .filter_map(|claim| {
            let grant = RoleGrant {
                role: claim.role.parse().ok()?,
                organization_id: claim.organization_id.map(OrganizationId::from_uuid),
                project_id: claim.project_id.map(ProjectId::from_uuid),
            };
            grant.is_scoped().then_some(grant)
        })
        .collect()
}

impl TryFrom<Claims> for Principal {
    type Error = ApiError;

    fn try_from(claims: Claims) -> Result<Self, Self::Error> {
        let subject = ActorId::parse(&claims.sub)
            .map_err(|_| ApiError::Unauthenticated("the token's subject is not valid".into()))?;
        Ok(Self {
            subject,
            tenant: TenantId::from_uuid(claims.tenant),
            roles: known_roles(&claims.roles),
            scoped_roles: BTreeSet::new(),
            session: None,
        })
    }
}

impl From<SessionClaims> for Principal {
    fn from(claims: SessionClaims) -> Self {
        let user = UserId::from_uuid(claims.sub);
        Self {
            subject: ActorId::for_user(user),
            tenant: TenantId::from_uuid(claims.tenant),
            roles: known_roles(&claims.roles),
            scoped_roles: known_scoped_roles(&claims.scoped_roles),
            session: Some(SessionRef {
                user,
                session: SessionId::from_uuid(claims.sid),
                version: claims.ver,
            }),
        }
    }
}

/// The token of an `Authorization: Bearer` header, or 401 saying what to send.
pub fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::Unauthenticated("send a bearer token in the Authorization header".into())
    })?;
    value
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthenticated("the Authorization header must be `Bearer <token>`".into())
        })
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = match parts.headers.get(api_keys::API_KEY_HEADER) {
            Some(value) if !parts.headers.contains_key(header::AUTHORIZATION) => {
                value.to_str().map_err(|_| {
                    ApiError::Unauthenticated("X-API-Key must be an API key (vx_…)".into())
                })?
            }
            _ => bearer_token(parts)?,
        };
        let principal = if api_keys::is_api_key(token) {
            api_keys::authenticate(state, token).await?
        } else if let Some(verified) = state.settings().oidc.verify(token).await {
            verified?
        } else {
            Self::from_jwt(state, token)?
        };
        if let Some(limiter) = state.tenant_limiter() {
            limiter.check(principal.tenant.as_uuid())?;
        }
        access::check(state, &principal).await?;
        Ok(principal)
    }
}

impl Principal {
    /// The caller a JWT proves: EdDSA from sign-in, or an HS256 development token.
    fn from_jwt(state: &AppState, token: &str) -> Result<Self, ApiError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| ApiError::Unauthenticated("the token is malformed".into()))?;
        Ok(match header.alg {
            Algorithm::EdDSA => state
                .settings()
                .signing_keys
                .verify(token, header.kid.as_deref(), &state.settings().issuer)?
                .into(),
            Algorithm::HS256 => state.keys().verify(token)?.try_into()?,
            _ => {
                return Err(ApiError::Unauthenticated(
                    "the token must be signed with EdDSA (POST /v1/auth/login) or HS256 \
                     (development tokens), or be an API key (vx_…)"
                        .into(),
                ));
            }
        })
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
    fn scoped_roles_of_a_token_count_only_where_they_hold_and_unknown_ones_are_ignored() {
        let organization = Uuid::now_v7();
        let project = Uuid::now_v7();
        let scoped = |role: &str, organization_id, project_id| ScopedRoleClaim {
            role: role.into(),
            organization_id,
            project_id,
        };
        let principal = Principal {
            subject: ActorId::parse("user-1").unwrap(),
            tenant: TenantId::from_uuid(Uuid::now_v7()),
            roles: BTreeSet::new(),
            scoped_roles: known_scoped_roles(&[
                scoped("project-manager", None, Some(project)),
                scoped("accountant", Some(organization), None),
                scoped("astronaut", Some(organization), None),
                scoped("admin", None, None),
            ]),
            session: None,
        };
        assert_eq!(principal.scoped_roles.len(), 2);
        let organization = OrganizationId::from_uuid(organization);
        let in_project = Scope::Project {
            organization: OrganizationId::new(),
            project: ProjectId::from_uuid(project),
        };
        assert!(principal.allows(Permission::ManageUnits, in_project));
        assert!(!principal.allows(Permission::ManageUnits, Scope::Organization(organization)));
        assert!(principal.allows(Permission::PostEntries, Scope::Organization(organization)));
        assert!(!principal.allows(Permission::Read, Scope::Tenant));
        assert!(principal.holds_anywhere(Permission::Read));
        assert!(principal.require(Permission::Read, "reading").is_err());
        assert_eq!(
            principal.readable(),
            Readable::Units {
                organizations: vec![organization],
                projects: vec![ProjectId::from_uuid(project)],
            }
        );
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
