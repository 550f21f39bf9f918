//! What the identity routes take and return. Request bodies reject unknown fields; secrets are
//! strings shown once (invitations, resets, refresh tokens) and never returned again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use vextrus_domain::identity::RoleGrant;

use crate::openapi::text;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The tenant's slug.
    #[schema(schema_with = text::slug)]
    pub tenant: String,
    #[schema(schema_with = text::email)]
    pub email: String,
    #[schema(schema_with = text::password_attempt)]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[schema(schema_with = text::refresh)]
    pub refresh_token: String,
}

/// A signed-in session's tokens.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Tokens {
    /// Send as `Authorization: Bearer <access_token>`: an EdDSA JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Exchange it at `POST /v1/auth/refresh` for new tokens, once: presenting it a second time
    /// ends the session.
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub session_id: Uuid,
}

/// The caller, as the server sees its token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Me {
    /// The actor recorded with the caller's commands (`user:<id>` for signed-in users).
    pub subject: String,
    pub tenant_id: Uuid,
    /// For signed-in users.
    pub user_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    /// The roles held in the whole tenant.
    pub roles: Vec<String>,
    /// What the tenant-wide roles allow everywhere (the README's table).
    pub permissions: Vec<String>,
    /// The roles held in one organization or one project: their permissions count there only.
    pub scoped_roles: Vec<RoleGrantView>,
}

/// A role, in the whole tenant or only in one organization or one project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleGrantView {
    #[schema(schema_with = text::role)]
    pub role: String,
    /// Where the role holds; absent or null: the whole tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<RoleScope>,
}

impl From<&RoleGrant> for RoleGrantView {
    fn from(grant: &RoleGrant) -> Self {
        let scope = match (grant.organization_id, grant.project_id) {
            (Some(organization), _) => Some(RoleScope::Organization(OrganizationScope {
                organization_id: organization.as_uuid(),
            })),
            (None, Some(project)) => Some(RoleScope::Project(ProjectScope {
                project_id: project.as_uuid(),
            })),
            (None, None) => None,
        };
        Self {
            role: grant.role.as_str().to_owned(),
            scope,
        }
    }
}

/// The one organization or project a role is limited to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RoleScope {
    Organization(OrganizationScope),
    Project(ProjectScope),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationScope {
    pub organization_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectScope {
    pub project_id: Uuid,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteUser {
    #[schema(schema_with = text::email)]
    pub email: String,
    #[schema(schema_with = text::name)]
    pub name: String,
    #[serde(default)]
    pub roles: Vec<RoleGrantView>,
}

/// An invitation: give `invitation` to the person, who accepts it with a password at
/// `POST /v1/auth/invitation/accept`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvitationIssued {
    pub user_id: Uuid,
    /// Shown once. Null when this answers a repeated `Idempotency-Key`: reissue the invitation
    /// for a new one.
    pub invitation: Option<String>,
    pub expires_at: DateTime<Utc>,
    /// The user's stream version after the command (its `ETag`).
    pub version: i64,
    /// Log position of the command's last event.
    pub position: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    #[schema(schema_with = text::invitation)]
    pub invitation: String,
    #[schema(schema_with = text::password)]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    #[schema(schema_with = text::password_attempt)]
    pub current_password: String,
    #[schema(schema_with = text::password)]
    pub new_password: String,
}

/// A password reset: give `reset` to the user, who sets a new password with it at
/// `POST /v1/auth/password-reset`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResetIssued {
    pub user_id: Uuid,
    /// Shown once; null when this answers a repeated `Idempotency-Key`.
    pub reset: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub version: i64,
    pub position: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    #[schema(schema_with = text::reset)]
    pub reset: String,
    #[schema(schema_with = text::password)]
    pub password: String,
}

/// What a command on a user did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserChanged {
    pub user_id: Uuid,
    pub version: i64,
    pub position: Option<i64>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatusView {
    Invited,
    Active,
    Disabled,
}

/// A user as the log has them now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub status: UserStatusView,
    pub roles: Vec<RoleGrantView>,
    /// Set while repeated failed sign-ins keep the account locked.
    pub locked_until: Option<DateTime<Utc>>,
    /// Sessions that have not expired or ended.
    pub active_sessions: u32,
    /// The stream's version (its `ETag`).
    pub version: i64,
}
