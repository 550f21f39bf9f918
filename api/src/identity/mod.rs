//! Identity over HTTP: sign-in and sessions ([`sessions`]), users ([`users`]), the one-time
//! secrets they hand out ([`secrets`]), password hashing ([`password`]), and the check every
//! authenticated request passes ([`access`]). The aggregates and their rules are
//! `vextrus_domain::identity`; tenants are registered by the platform operator
//! (`vextrus tenant create`).

pub mod access;
pub mod api_keys;
pub mod oidc;
pub mod password;
pub mod secrets;
pub mod sessions;
pub mod users;
pub mod views;

use axum::Router;
use vextrus_domain::identity::{ApiKeyError, TenantError, UserError};

use crate::command::DocumentedRoutes;
use crate::error::{ApiError, DomainProblem};
use crate::openapi::problem_responses;
use crate::rate_limit;
use crate::state::{ApiSettings, AppState};

/// Every identity route, each at the path and method of its `#[utoipa::path]`. The routes that
/// take a password or a one-time secret get the stricter per-address limit of `settings`.
pub fn router(settings: &ApiSettings) -> Router<AppState> {
    use sessions::*;
    use users::*;
    let guarded = Router::new()
        .documented(__path_login, login)
        .documented(__path_refresh, refresh)
        .documented(__path_accept_invitation, accept_invitation)
        .documented(__path_reset_password, reset_password)
        .documented(__path_change_password, change_password);
    let guarded = match settings
        .rate_limits
        .auth
        .and_then(|limit| rate_limit::client_layer(limit, &settings.trusted_proxies))
    {
        Some(layer) => guarded.route_layer(layer),
        None => guarded,
    };
    Router::new()
        .merge(guarded)
        .documented(__path_logout, logout)
        .documented(__path_me, me)
        .documented(__path_jwks, jwks)
        .documented(__path_invite_user, invite_user)
        .documented(__path_get_user, get_user)
        .documented(__path_reissue_invitation, reissue_invitation)
        .documented(__path_issue_password_reset, issue_password_reset)
        .documented(__path_disable_user, disable_user)
        .documented(__path_enable_user, enable_user)
        .documented(__path_assign_role, assign_role)
        .documented(__path_remove_role, remove_role)
        .documented(api_keys::__path_create_api_key, api_keys::create_api_key)
        .documented(api_keys::__path_list_api_keys, api_keys::list_api_keys)
        .documented(api_keys::__path_revoke_api_key, api_keys::revoke_api_key)
}

/// The error responses of every identity route. Sign-in and refresh answer every refusal with
/// the same 401.
pub struct IdentityErrors;

impl utoipa::IntoResponses for IdentityErrors {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        problem_responses(&[
            (400, "Malformed JSON, header or parameter"),
            (
                401,
                "Missing, expired, revoked or invalid token; a refused sign-in, invitation or reset",
            ),
            (403, "The caller's roles do not allow this"),
            (404, "No such user in this tenant"),
            (
                409,
                "Refused by the user's state (see `type`), an address already taken, or a version \
                 conflict (If-Match)",
            ),
            (413, "Request body too large"),
            (415, "The body is not sent as application/json"),
            (
                422,
                "Invalid fields (see `invalid-params`), or a password the policy refuses",
            ),
            (429, "Too many requests; retry after `Retry-After` seconds"),
            (
                503,
                "Sign-in is not configured, or the database is unavailable",
            ),
        ])
    }
}

/// A user's refusals as problems.
pub fn user_problem(error: UserError) -> ApiError {
    error.into_problem()
}

impl DomainProblem for UserError {
    const STREAM: &'static str = "user";

    fn into_problem(self) -> ApiError {
        use UserError as E;
        let detail = self.to_string();
        match self {
            E::NotFound => ApiError::NotFound(detail),
            E::AlreadyExists => ApiError::AlreadyExists(detail),
            E::InvalidScope => ApiError::invalid_param("role", detail),
            E::InvitationInvalid | E::ResetInvalid | E::SessionInvalid => {
                ApiError::Unauthenticated(detail)
            }
            E::AlreadyActive => ApiError::RuleViolated {
                rule: "user-already-active",
                detail,
            },
            E::NotActive => ApiError::RuleViolated {
                rule: "user-not-active",
                detail,
            },
            E::AlreadyDisabled => ApiError::RuleViolated {
                rule: "user-already-disabled",
                detail,
            },
            E::NotDisabled => ApiError::RuleViolated {
                rule: "user-not-disabled",
                detail,
            },
            E::RoleAlreadyAssigned(_) => ApiError::RuleViolated {
                rule: "role-already-assigned",
                detail,
            },
            E::RoleNotAssigned(_) => ApiError::RuleViolated {
                rule: "role-not-assigned",
                detail,
            },
        }
    }
}

impl DomainProblem for TenantError {
    const STREAM: &'static str = "tenant";

    fn into_problem(self) -> ApiError {
        let detail = self.to_string();
        match self {
            TenantError::NotFound => ApiError::NotFound(detail),
            TenantError::AlreadyRegistered => ApiError::AlreadyExists(detail),
            TenantError::AlreadySuspended => ApiError::RuleViolated {
                rule: "tenant-already-suspended",
                detail,
            },
            TenantError::NotSuspended => ApiError::RuleViolated {
                rule: "tenant-not-suspended",
                detail,
            },
        }
    }
}

impl DomainProblem for ApiKeyError {
    const STREAM: &'static str = "API key";

    fn into_problem(self) -> ApiError {
        let detail = self.to_string();
        match self {
            ApiKeyError::NotFound => ApiError::NotFound(detail),
            ApiKeyError::AlreadyExists => ApiError::AlreadyExists(detail),
            ApiKeyError::AlreadyRevoked => ApiError::RuleViolated {
                rule: "api-key-already-revoked",
                detail,
            },
            ApiKeyError::ScopedRole => ApiError::invalid_param("roles", detail),
        }
    }
}
