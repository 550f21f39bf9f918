//! Users: invited by an administrator (`manage-users`), who also disables and enables them,
//! assigns and removes roles and issues password resets; invitations accepted and passwords
//! changed or reset by the users themselves.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use uuid::Uuid;
use vextrus_commands::{CommandOutcome, ExecuteError};
use vextrus_domain::identity::{
    Email, NewPassword, OneTime, PasswordHash, Role, RoleGrant, SecretHash, User, UserCommand,
    UserStatus,
};
use vextrus_domain::ids::{OrganizationId, ProjectId, UserId};
use vextrus_domain::values::Name;

use super::secrets::{self, Kind, OneTimeToken};
use super::views::{
    AcceptInvitation, ChangePassword, InvitationIssued, InviteUser, ResetIssued, ResetPassword,
    RoleGrantView, RoleScope, UserChanged, UserStatusView, UserView,
};
use super::{password, user_problem};
use crate::auth::{Permission, Principal};
use crate::command::{Command, Fields, answer_headers};
use crate::context::{RequestContext, RequestOrigin};
use crate::error::ApiError;
use crate::extract::{JsonBody, PathIds, etag};
use crate::state::AppState;

/// The user id of a path, as the stream id it names.
fn stream(user: Uuid) -> String {
    user.to_string()
}

fn changed(user: Uuid, outcome: CommandOutcome) -> Response {
    let body = UserChanged {
        user_id: user,
        version: outcome.version.get(),
        position: outcome.last_position.map(|position| position.get()),
    };
    with_etag(StatusCode::OK, body, outcome, None)
}

/// A command's answer on an identity route: `status` with `body`, the new version as `ETag`,
/// `Cache-Control: no-store` (bodies may carry a one-time secret) and `Idempotent-Replayed`.
pub(super) fn with_etag(
    status: StatusCode,
    body: impl serde::Serialize,
    outcome: CommandOutcome,
    location: Option<&str>,
) -> Response {
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    answer_headers(headers, outcome.version, location, outcome.repeated);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A grant as the API takes it, or why not.
fn parse_grant(view: &RoleGrantView) -> Result<RoleGrant, String> {
    let role: Role = view.role.parse()?;
    let (organization_id, project_id) = match &view.scope {
        None => (None, None),
        Some(RoleScope::Organization(scope)) => {
            (Some(OrganizationId::from_uuid(scope.organization_id)), None)
        }
        Some(RoleScope::Project(scope)) => (None, Some(ProjectId::from_uuid(scope.project_id))),
    };
    Ok(RoleGrant {
        role,
        organization_id,
        project_id,
    })
}

/// 404 unless every scoped grant names an organization or project of the caller's tenant.
async fn check_scopes(
    state: &AppState,
    context: &RequestContext,
    grants: &[RoleGrant],
) -> Result<(), ApiError> {
    let organizations: Vec<Uuid> = grants
        .iter()
        .filter_map(|grant| grant.organization_id.map(|id| id.as_uuid()))
        .collect();
    let projects: Vec<Uuid> = grants
        .iter()
        .filter_map(|grant| grant.project_id.map(|id| id.as_uuid()))
        .collect();
    if organizations.is_empty() && projects.is_empty() {
        return Ok(());
    }
    let mut tx = context.read(state).await?;
    let missing: Option<(String, Uuid)> = sqlx::query_as(
        "select 'organization', id from unnest($1::uuid[]) as id
          where not exists (select from org_organizations o where o.organization_id = id)
         union all
         select 'project', id from unnest($2::uuid[]) as id
          where not exists (select from org_projects p where p.project_id = id)
         limit 1",
    )
    .bind(&organizations)
    .bind(&projects)
    .fetch_optional(&mut *tx)
    .await
    .map_err(ApiError::database)?;
    tx.rollback().await.map_err(ApiError::database)?;
    match missing {
        Some((kind, id)) => Err(ApiError::NotFound(format!("{kind} {id} not found"))),
        None => Ok(()),
    }
}

fn expiry(lifetime: std::time::Duration) -> chrono::DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::hours(1))
}

/// Invite a user.
///
/// Creates the user with their roles and returns a one-time invitation (7 days by default).
/// The address must not belong to another user of the tenant (any case).
#[utoipa::path(
    post,
    path = "/v1/users",
    tag = "users",
    security(("bearer" = [])),
    params(crate::hierarchy::IdempotencyKeyHeader),
    request_body = InviteUser,
    responses(
        (status = 201, description = "Invited", body = InvitationIssued),
        super::IdentityErrors,
    ),
    extensions(("x-permission" = json!("manage-users"))),
)]
pub async fn invite_user(
    cmd: Command,
    JsonBody(body): JsonBody<InviteUser>,
) -> Result<Response, ApiError> {
    cmd.require(Permission::ManageUsers, "inviting a user")?;
    let mut fields = Fields::default();
    let email = fields.take("email", Email::parse(&body.email));
    let name = fields.take("name", Name::parse(&body.name));
    let mut roles = Vec::new();
    for (index, view) in body.roles.iter().enumerate() {
        if let Some(grant) = fields.take(&format!("roles[{index}]"), parse_grant(view)) {
            roles.push(grant);
        }
    }
    let (email, name) = fields.finish(|| Some((email?, name?)))?;
    check_scopes(cmd.state(), cmd.context(), &roles).await?;
    let issue = cmd.named("invite-user").on_new_stream();
    let user_id = UserId::from_uuid(issue.new_id());
    let tenant = issue.tenant();
    let (secret, hash) = secrets::fresh()?;
    let expires_at = expiry(issue.state().settings().lifetimes.invitation);
    let outcome = issue
        .run::<User>(
            stream(user_id.as_uuid()),
            UserCommand::Invite {
                user_id,
                email,
                name,
                roles,
                invitation: OneTime { hash, expires_at },
            },
        )
        .await?;
    let body = InvitationIssued {
        user_id: user_id.as_uuid(),
        invitation: (!outcome.repeated)
            .then(|| OneTimeToken::format(Kind::Invitation, tenant, user_id, &secret)),
        expires_at,
        version: outcome.version.get(),
        position: outcome.last_position.map(|position| position.get()),
    };
    let location = format!("/v1/users/{}", user_id.as_uuid());
    Ok(with_etag(
        StatusCode::CREATED,
        body,
        outcome,
        Some(&location),
    ))
}

/// A user: status, roles, lock and sessions, as the log has them now.
///
/// Administrators (`manage-users`) read any user of the tenant; every signed-in user reads
/// themselves.
#[utoipa::path(
    get,
    path = "/v1/users/{user_id}",
    tag = "users",
    security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "The user")),
    responses(
        (status = 200, description = "The user", body = UserView),
        super::IdentityErrors,
    ),
    extensions(("x-permission" = json!("manage-users"))),
)]
pub async fn get_user(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(user_id): PathIds<Uuid>,
) -> Result<Response, ApiError> {
    let own = context
        .principal
        .session
        .is_some_and(|session| session.user.as_uuid() == user_id);
    if !own {
        context
            .principal
            .require(Permission::ManageUsers, "reading another user")?;
    }
    let (user, version) = state
        .store()
        .load_aggregate::<User>(context.tenant, &stream(user_id))
        .await?;
    let (Some(email), Some(name), Some(status)) = (user.email(), user.name(), user.status()) else {
        return Err(ApiError::NotFound(format!("user {user_id} not found")));
    };
    let now = Utc::now();
    let view = UserView {
        user_id,
        email: email.as_str().to_owned(),
        name: name.as_str().to_owned(),
        status: match status {
            UserStatus::Invited => UserStatusView::Invited,
            UserStatus::Active => UserStatusView::Active,
            UserStatus::Disabled => UserStatusView::Disabled,
        },
        roles: user.roles().iter().map(RoleGrantView::from).collect(),
        locked_until: user.locked_until().filter(|until| *until > now),
        active_sessions: u32::try_from(user.sessions(now).count()).unwrap_or(u32::MAX),
        version: version.get(),
    };
    let mut response = Json(view).into_response();
    if let Ok(value) = HeaderValue::from_str(&etag(version)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
}

/// Issue a new invitation to a user who has not accepted one yet (the old one stops working).
#[utoipa::path(
    post,
    path = "/v1/users/{user_id}/invitation",
    tag = "users",
    security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "The user"), crate::hierarchy::IdempotencyKeyHeader),
    responses(
        (status = 200, description = "A new invitation", body = InvitationIssued),
        super::IdentityErrors,
    ),
    extensions(("x-permission" = json!("manage-users"))),
)]
pub async fn reissue_invitation(
    cmd: Command,
    PathIds(user_id): PathIds<Uuid>,
) -> Result<Response, ApiError> {
    cmd.require(Permission::ManageUsers, "reissuing an invitation")?;
    let issue = cmd.named("reissue-invitation");
    let tenant = issue.tenant();
    let (secret, hash) = secrets::fresh()?;
    let expires_at = expiry(issue.state().settings().lifetimes.invitation);
    let outcome = issue
        .run::<User>(
            stream(user_id),
            UserCommand::ReissueInvitation {
                invitation: OneTime { hash, expires_at },
            },
        )
        .await?;
    let user = UserId::from_uuid(user_id);
    let body = InvitationIssued {
        user_id,
        invitation: (!outcome.repeated)
            .then(|| OneTimeToken::format(Kind::Invitation, tenant, user, &secret)),
        expires_at,
        version: outcome.version.get(),
        position: outcome.last_position.map(|position| position.get()),
    };
    Ok(with_etag(StatusCode::OK, body, outcome, None))
}

/// Issue a password reset for a user (1 hour by default); hand it to them yourself.
#[utoipa::path(
    post,
    path = "/v1/users/{user_id}/password-reset",
    tag = "users",
    security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "The user"), crate::hierarchy::IdempotencyKeyHeader),
    responses(
        (status = 200, description = "A reset token", body = ResetIssued),
        super::IdentityErrors,
    ),
    extensions(("x-permission" = json!("manage-users"))),
)]
pub async fn issue_password_reset(
    cmd: Command,
    PathIds(user_id): PathIds<Uuid>,
) -> Result<Response, ApiError> {
    cmd.require(Permission::ManageUsers, "issuing a password reset")?;
    let issue = cmd.named("issue-password-reset");
    let tenant = issue.tenant();
    let (secret, hash) = secrets::fresh()?;
    let expires_at = expiry(issue.state().settings().lifetimes.reset);
    let outcome = issue
        .run::<User>(
            stream(user_id),
            UserCommand::IssuePasswordReset {
                reset: OneTime { hash, expires_at },
            },
        )
        .await?;
    let user = UserId::from_uuid(user_id);
    let body = ResetIssued {
        user_id,
        reset: (!outcome.repeated)
            .then(|| OneTimeToken::format(Kind::Reset, tenant, user, &secret)),
        expires_at,
        version: outcome.version.get(),
        position: outcome.last_position.map(|position| position.get()),
    };
    Ok(with_etag(StatusCode::OK, body, outcome, None))
}

macro_rules! user_command_route {
    ($(#[$doc:meta])* $handler:ident, $path:literal, $operation:literal, $action:literal, $command:expr) => {
        $(#[$doc])*
        #[utoipa::path(
            post,
            path = $path,
            tag = "users",
            security(("bearer" = [])),
            params(
                ("user_id" = Uuid, Path, description = "The user"),
                crate::hierarchy::IdempotencyKeyHeader
            ),
            responses(
                (status = 200, description = "Done", body = UserChanged),
                super::IdentityErrors,
            ),
            extensions(("x-permission" = json!("manage-users"))),
        )]
        pub async fn $handler(
            cmd: Command,
            PathIds(user_id): PathIds<Uuid>,
        ) -> Result<Response, ApiError> {
            cmd.require(Permission::ManageUsers, $action)?;
            let outcome = cmd
                .named($operation)
                .run::<User>(stream(user_id), $command)
                .await?;
            Ok(changed(user_id, outcome))
        }
    };
}

user_command_route!(
    /// Disable a user: sign-in is refused and every session ends at once.
    disable_user,
    "/v1/users/{user_id}/disable",
    "disable-user",
    "disabling a user",
    UserCommand::Disable
);

user_command_route!(
    /// Enable a disabled user.
    enable_user,
    "/v1/users/{user_id}/enable",
    "enable-user",
    "enabling a user",
    UserCommand::Enable
);

/// The grant of a role route's body, or 422.
fn grant_of(body: &RoleGrantView) -> Result<RoleGrant, ApiError> {
    parse_grant(body).map_err(|reason| ApiError::invalid_param("role", reason))
}

/// Assign a role (in the whole tenant, or in one organization or project). The user's access
/// tokens issued before it are refused; the next refresh carries the new roles.
#[utoipa::path(
    post,
    path = "/v1/users/{user_id}/roles",
    tag = "users",
    security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "The user"), crate::hierarchy::IdempotencyKeyHeader),
    request_body = RoleGrantView,
    responses(
        (status = 200, description = "Assigned", body = UserChanged),
        super::IdentityErrors,
    ),
    extensions(("x-permission" = json!("manage-users"))),
)]
pub async fn assign_role(
    cmd: Command,
    PathIds(user_id): PathIds<Uuid>,
    JsonBody(body): JsonBody<RoleGrantView>,
) -> Result<Response, ApiError> {
    cmd.require(Permission::ManageUsers, "assigning a role")?;
    let grant = grant_of(&body)?;
    check_scopes(cmd.state(), cmd.context(), &[grant]).await?;
    let outcome = cmd
        .named("assign-role")
        .run::<User>(stream(user_id), UserCommand::AssignRole(grant))
        .await?;
    Ok(changed(user_id, outcome))
}

/// Remove a role the user holds (with the same scope it was assigned with).
#[utoipa::path(
    post,
    path = "/v1/users/{user_id}/roles/remove",
    tag = "users",
    security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "The user"), crate::hierarchy::IdempotencyKeyHeader),
    request_body = RoleGrantView,
    responses(
        (status = 200, description = "Removed", body = UserChanged),
        super::IdentityErrors,
    ),
    extensions(("x-permission" = json!("manage-users"))),
)]
pub async fn remove_role(
    cmd: Command,
    PathIds(user_id): PathIds<Uuid>,
    JsonBody(body): JsonBody<RoleGrantView>,
) -> Result<Response, ApiError> {
    cmd.require(Permission::ManageUsers, "removing a role")?;
    let grant = grant_of(&body)?;
    let outcome = cmd
        .named("remove-role")
        .run::<User>(stream(user_id), UserCommand::RemoveRole(grant))
        .await?;
    Ok(changed(user_id, outcome))
}

/// A new password, or 422 saying why the policy refuses it.
fn new_password(field: &str, text: &str) -> Result<NewPassword, ApiError> {
    NewPassword::parse(text).map_err(|error| ApiError::invalid_param(field, error))
}

/// Accept an invitation with a password (12 to 256 characters, not a common one). Then sign in.
#[utoipa::path(
    post,
    path = "/v1/auth/invitation/accept",
    tag = "auth",
    request_body = AcceptInvitation,
    responses(
        (status = 200, description = "Accepted: sign in with the password", body = UserChanged),
        super::IdentityErrors,
    )
)]
pub async fn accept_invitation(
    State(state): State<AppState>,
    origin: RequestOrigin,
    JsonBody(body): JsonBody<AcceptInvitation>,
) -> Result<Response, ApiError> {
    let token = OneTimeToken::parse(Kind::Invitation, "invitation", &body.invitation)?;
    redeem(
        &state,
        &origin,
        &token,
        &body.password,
        "invitation",
        |secret, password, now| UserCommand::AcceptInvitation {
            invitation: secret,
            password,
            now,
        },
    )
    .await
}

/// Set a new password with a reset token. Every session of the user ends; sign in again.
#[utoipa::path(
    post,
    path = "/v1/auth/password-reset",
    tag = "auth",
    request_body = ResetPassword,
    responses(
        (status = 200, description = "The password is set", body = UserChanged),
        super::IdentityErrors,
    )
)]
pub async fn reset_password(
    State(state): State<AppState>,
    origin: RequestOrigin,
    JsonBody(body): JsonBody<ResetPassword>,
) -> Result<Response, ApiError> {
    let token = OneTimeToken::parse(Kind::Reset, "reset", &body.reset)?;
    redeem(
        &state,
        &origin,
        &token,
        &body.password,
        "reset token",
        |secret, password, now| UserCommand::ResetPassword {
            reset: secret,
            password,
            now,
        },
    )
    .await
}

/// Redeems a one-time `token` with a new `password` (checked against the policy, then hashed)
/// through the command `redeem` makes; a wrong, used or expired `what` is 401.
async fn redeem(
    state: &AppState,
    origin: &RequestOrigin,
    token: &OneTimeToken,
    password: &str,
    what: &str,
    redeem: impl FnOnce(SecretHash, PasswordHash, DateTime<Utc>) -> UserCommand,
) -> Result<Response, ApiError> {
    let password = password::hash(new_password("password", password)?).await?;
    let metadata = origin.command_metadata(
        vextrus_commands::ActorId::for_user(token.user),
        Vec::new(),
        None,
    );
    let command = redeem(secrets::hash(&token.secret), password, Utc::now());
    let outcome = state
        .store()
        .execute::<User>(
            token.tenant,
            &stream(token.user.as_uuid()),
            command,
            &(),
            &metadata,
            None,
        )
        .await
        .map_err(|error| match error {
            ExecuteError::Rejected(_) => ApiError::Unauthenticated(format!(
                "the {what} is not valid (wrong, used or expired); ask for a new one"
            )),
            other => other.into(),
        })?;
    Ok(changed(token.user.as_uuid(), outcome))
}

/// Change your own password: the current one is checked first. Every session ends, this one
/// included; sign in again.
#[utoipa::path(
    post,
    path = "/v1/auth/password",
    tag = "auth",
    security(("bearer" = [])),
    request_body = ChangePassword,
    responses(
        (status = 200, description = "Changed", body = UserChanged),
        super::IdentityErrors,
    )
)]
pub async fn change_password(
    State(state): State<AppState>,
    principal: Principal,
    origin: RequestOrigin,
    JsonBody(body): JsonBody<ChangePassword>,
) -> Result<Response, ApiError> {
    let session = principal.session()?;
    let new = new_password("new_password", &body.new_password)?;
    let user_stream = stream(session.user.as_uuid());
    let (user, version) = state
        .store()
        .load_aggregate::<User>(principal.tenant, &user_stream)
        .await?;
    if !password::verify(body.current_password, user.password_hash().cloned()).await? {
        return Err(ApiError::invalid_param(
            "current_password",
            "is not your current password",
        ));
    }
    let password = password::hash(new).await?;
    let metadata = origin.command_metadata(principal.subject.clone(), Vec::new(), None);
    let outcome = state
        .store()
        .execute::<User>(
            principal.tenant,
            &user_stream,
            UserCommand::ChangePassword { password },
            &(),
            &metadata,
            Some(version),
        )
        .await
        .map_err(|error| match error {
            ExecuteError::Rejected(rejection) => user_problem(rejection),
            other => other.into(),
        })?;
    Ok(changed(session.user.as_uuid(), outcome))
}
