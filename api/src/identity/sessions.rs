//! Sign-in, refresh, sign-out, "who am I", and the public keys that verify access tokens.
//!
//! A sign-in is a command on the user's stream: the aggregate records success (a new session),
//! failure and lockout. The password is checked here first, always with one Argon2id
//! verification (against a dummy hash when there is nothing to check), and every refusal reads
//! the same: wrong tenant, unknown address, wrong password, locked, disabled.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use uuid::Uuid;
use vextrus_commands::{ActorId, ExecuteError, Version};
use vextrus_domain::TenantId;
use vextrus_domain::identity::{
    Email, Slug, Tenant, TenantStatus, User, UserCommand, UserEvent, user::EMAIL_SCOPE,
};
use vextrus_domain::ids::{SessionId, UserId};

use super::views::{LoginRequest, Me, RefreshRequest, RoleGrantView, Tokens};
use super::{password, secrets};
use crate::auth::{Permission, Principal};
use crate::command::Fields;
use crate::context::RequestOrigin;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::keys::{AUDIENCE, KeyError, ScopedRoleClaim, SessionClaims};
use crate::state::AppState;

/// The one answer to every refused sign-in.
const SIGN_IN_REFUSED: &str =
    "the tenant, e-mail address or password is wrong, or the account is locked for a while";

/// How often a command on a user's stream is decided again after a concurrent change.
const RETRIES: u32 = 3;

/// Namespace of the streams that record sign-ins for addresses no user has.
const UNKNOWN_ADDRESS_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a9e_5d47_4b0e_8c3a_91d2_7e45_b608);

/// The actor of commands whose caller is not known yet (sign-in attempts).
fn anonymous() -> Result<ActorId, ApiError> {
    ActorId::parse("anonymous").map_err(|_| ApiError::Internal("the anonymous actor".into()))
}

/// The tenant registered under `slug`, if it is active.
async fn active_tenant(state: &AppState, slug: &Slug) -> Result<Option<TenantId>, ApiError> {
    let Some(claimant) = state
        .store()
        .claimant(TenantId::PLATFORM, "tenant.slug", slug.as_str())
        .await
        .map_err(ApiError::database)?
    else {
        return Ok(None);
    };
    let Ok(tenant) = Uuid::parse_str(&claimant).map(TenantId::from_uuid) else {
        return Ok(None);
    };
    let (registry, _) = state
        .store()
        .load_aggregate::<Tenant>(TenantId::PLATFORM, &claimant)
        .await?;
    Ok((registry.status() == Some(TenantStatus::Active)).then_some(tenant))
}

/// The stream that holds `email`'s sign-ins in `tenant`: the user's, or the address's own.
async fn sign_in_stream(
    state: &AppState,
    tenant: TenantId,
    email: &Email,
) -> Result<String, ApiError> {
    let claimant = state
        .store()
        .claimant(tenant, EMAIL_SCOPE, email.as_str())
        .await
        .map_err(ApiError::database)?;
    Ok(claimant.unwrap_or_else(|| {
        let name = format!("{}\n{}", tenant.as_uuid(), email.as_str());
        Uuid::new_v5(&UNKNOWN_ADDRESS_NAMESPACE, name.as_bytes()).to_string()
    }))
}

/// Signs `user` in at `version`: a fresh access token and refresh token for `session`.
fn tokens(
    state: &AppState,
    tenant: TenantId,
    user_id: UserId,
    user: &User,
    session: SessionId,
    refresh_secret: &str,
    version: Version,
) -> Result<Tokens, ApiError> {
    let settings = state.settings();
    let now = Utc::now();
    let access_secs = settings.lifetimes.access.as_secs();
    let claims = SessionClaims {
        iss: settings.issuer.clone(),
        aud: AUDIENCE.to_owned(),
        sub: user_id.as_uuid(),
        tenant: tenant.as_uuid(),
        roles: user
            .tenant_roles()
            .iter()
            .map(|role| role.as_str().to_owned())
            .collect(),
        scoped_roles: user
            .roles()
            .iter()
            .filter(|grant| grant.is_scoped())
            .map(|grant| ScopedRoleClaim {
                role: grant.role.as_str().to_owned(),
                organization_id: grant.organization_id.map(|id| id.as_uuid()),
                project_id: grant.project_id.map(|id| id.as_uuid()),
            })
            .collect(),
        sid: session.as_uuid(),
        ver: version.get(),
        iat: now.timestamp(),
        nbf: now.timestamp(),
        exp: now.timestamp() + i64::try_from(access_secs).unwrap_or(i64::MAX / 4),
    };
    let access_token = settings
        .signing_keys
        .sign(&claims)
        .map_err(|error| match error {
            KeyError::NoKey => ApiError::Unavailable(
                "sign-in is not available: the server has no signing key".into(),
            ),
            other => ApiError::Internal(other.to_string()),
        })?;
    Ok(Tokens {
        access_token,
        token_type: "Bearer".into(),
        expires_in: access_secs,
        refresh_token: secrets::RefreshToken::format(tenant, user_id, session, refresh_secret),
        refresh_expires_at: now + refresh_lifetime(state),
        user_id: user_id.as_uuid(),
        tenant_id: tenant.as_uuid(),
        session_id: session.as_uuid(),
    })
}

fn refresh_lifetime(state: &AppState) -> chrono::Duration {
    chrono::Duration::from_std(state.settings().lifetimes.refresh)
        .unwrap_or(chrono::Duration::days(14))
}

/// Answers that must not be cached.
fn no_store(body: impl serde::Serialize) -> Response {
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Sign in with a password.
///
/// Returns an access token (an EdDSA JWT, 15 minutes by default) and a refresh token. Every
/// refusal is the same 401, whatever was wrong; five failures in a row lock the account for a
/// minute, and each further lock doubles (at most an hour). Attempts are recorded in the log.
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = Tokens),
        super::IdentityErrors,
    )
)]
pub async fn login(
    State(state): State<AppState>,
    origin: RequestOrigin,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let mut fields = Fields::default();
    let slug = fields.take("tenant", Slug::parse(&body.tenant));
    let email = fields.take("email", Email::parse(&body.email));
    let attempt = fields.take(
        "password",
        if body.password.is_empty() || body.password.chars().count() > 256 {
            Err("must be 1 to 256 characters")
        } else {
            Ok(body.password)
        },
    );
    let (slug, email, attempt) = fields.finish(|| Some((slug?, email?, attempt?)))?;

    let Some(tenant) = active_tenant(&state, &slug).await? else {
        password::verify(attempt, None).await?;
        return Err(ApiError::Unauthenticated(SIGN_IN_REFUSED.into()));
    };
    tracing::Span::current().record("tenant_id", tracing::field::display(tenant));
    let stream = sign_in_stream(&state, tenant, &email).await?;
    let metadata = origin.command_metadata(anonymous()?, Vec::new(), None);
    for _ in 0..=RETRIES {
        let (user, version) = state
            .store()
            .load_aggregate::<User>(tenant, &stream)
            .await?;
        let matches = password::verify(attempt.clone(), user.password_hash().cloned()).await?;
        let session = SessionId::new();
        let (refresh_secret, refresh_hash) = secrets::fresh()?;
        let now = Utc::now();
        let command = UserCommand::SignIn {
            password_matches: matches,
            session_id: session,
            refresh: refresh_hash,
            now,
            expires_at: now + refresh_lifetime(&state),
        };
        let events = user.decide(command.clone()).map_err(super::user_problem)?;
        let signed_in = matches!(events.first(), Some(UserEvent::SignedIn { .. }));
        let mut metadata = metadata.clone();
        if let (true, Some(user_id)) = (signed_in, user.user_id()) {
            metadata.actor = ActorId::for_user(user_id);
        }
        match state
            .store()
            .execute::<User>(tenant, &stream, command, &(), &metadata, Some(version))
            .await
        {
            Err(ExecuteError::Conflict { .. }) => continue,
            Err(other) => return Err(other.into()),
            Ok(outcome) => {
                return match (signed_in, user.user_id()) {
                    (true, Some(user_id)) => Ok(no_store(tokens(
                        &state,
                        tenant,
                        user_id,
                        &user,
                        session,
                        &refresh_secret,
                        outcome.version,
                    )?)),
                    _ => Err(ApiError::Unauthenticated(SIGN_IN_REFUSED.into())),
                };
            }
        }
    }
    Err(ApiError::Unavailable(
        "the account is changing concurrently; try again".into(),
    ))
}

/// Exchange a refresh token for new tokens.
///
/// The refresh token is replaced by the new one. A refresh token presented a second time ends
/// its session (someone else holds a copy): every token descended from the same sign-in is
/// refused from then on.
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = Tokens),
        super::IdentityErrors,
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    origin: RequestOrigin,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<Response, ApiError> {
    let token = secrets::RefreshToken::parse(&body.refresh_token)?;
    let invalid = || ApiError::Unauthenticated("the session is not valid; sign in again".into());
    let tenant_active = state
        .store()
        .load_aggregate::<Tenant>(TenantId::PLATFORM, &token.tenant.as_uuid().to_string())
        .await?
        .0
        .status()
        != Some(TenantStatus::Suspended);
    if !tenant_active {
        return Err(invalid());
    }
    let stream = token.user.as_uuid().to_string();
    let metadata = origin.command_metadata(ActorId::for_user(token.user), Vec::new(), None);
    for _ in 0..=RETRIES {
        let (user, version) = state
            .store()
            .load_aggregate::<User>(token.tenant, &stream)
            .await?;
        let (next_secret, next_hash) = secrets::fresh()?;
        let now = Utc::now();
        let command = UserCommand::Refresh {
            session_id: token.session,
            presented: secrets::hash(&token.secret),
            next: next_hash,
            now,
            expires_at: now + refresh_lifetime(&state),
        };
        let events = user.decide(command.clone()).map_err(|_| invalid())?;
        let refreshed = matches!(events.first(), Some(UserEvent::SessionRefreshed { .. }));
        match state
            .store()
            .execute::<User>(
                token.tenant,
                &stream,
                command,
                &(),
                &metadata,
                Some(version),
            )
            .await
        {
            Err(ExecuteError::Conflict { .. }) => continue,
            Err(other) => return Err(other.into()),
            Ok(outcome) if refreshed => {
                return Ok(no_store(tokens(
                    &state,
                    token.tenant,
                    token.user,
                    &user,
                    token.session,
                    &next_secret,
                    outcome.version,
                )?));
            }
            Ok(_) => {
                return Err(ApiError::Unauthenticated(
                    "this refresh token was already used: the session has ended; sign in again"
                        .into(),
                ));
            }
        }
    }
    Err(ApiError::Unavailable(
        "the session is changing concurrently; try again".into(),
    ))
}

/// Sign out: end the caller's session (its refresh token and every access token from it).
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        super::IdentityErrors,
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    principal: Principal,
    origin: RequestOrigin,
) -> Result<StatusCode, ApiError> {
    let session = principal.session()?;
    let metadata = origin.command_metadata(principal.subject.clone(), Vec::new(), None);
    state
        .store()
        .execute::<User>(
            principal.tenant,
            &session.user.as_uuid().to_string(),
            UserCommand::SignOut {
                session_id: session.session,
            },
            &(),
            &metadata,
            None,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller: subject, tenant, roles and what they allow.
#[utoipa::path(
    get,
    path = "/v1/auth/me",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        super::IdentityErrors,
    )
)]
pub async fn me(principal: Principal) -> Json<Me> {
    let permissions = Permission::ALL
        .into_iter()
        .filter(|permission| principal.roles.iter().any(|role| role.grants(*permission)))
        .map(|permission| permission.as_str().to_owned())
        .collect();
    Json(Me {
        subject: principal.subject.as_str().to_owned(),
        tenant_id: principal.tenant.as_uuid(),
        user_id: principal.session.map(|session| session.user.as_uuid()),
        session_id: principal.session.map(|session| session.session.as_uuid()),
        roles: principal
            .roles
            .iter()
            .map(|role| role.as_str().to_owned())
            .collect(),
        permissions,
        scoped_roles: principal
            .scoped_roles
            .iter()
            .map(RoleGrantView::from)
            .collect(),
    })
}

/// The public keys that verify access tokens (RFC 7517), for gateways and services that check
/// tokens themselves. Keys rotate: fetch again when a token names an unknown `kid`.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "auth",
    responses((status = 200, description = "The JSON Web Key Set", content_type = "application/json"))
)]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = Json(state.settings().signing_keys.jwks().clone()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
