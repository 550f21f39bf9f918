//! Does a verified token still stand? Asked of the log on every request ([`check`]), so that a
//! suspension, a disable, a password change, a role change or a sign-out takes effect at once in
//! every API process (migration 0021, `vextrus_access_check`).

use vextrus_domain::identity::{
    OUTDATING_EVENTS, SESSION_ENDING_EVENTS, STATUS_EVENTS, SUSPENDED_EVENT,
};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// Refuses `principal` when its tenant is suspended, or (for a sign-in token) its session has
/// ended or the user's password, roles or standing changed since the token was issued.
pub async fn check(state: &AppState, principal: &Principal) -> Result<(), ApiError> {
    let session = principal.session;
    let (tenant_event, outdated, ended): (Option<String>, bool, bool) = sqlx::query_as(
        "select tenant_event, outdated, ended from vextrus_access_check($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(principal.tenant.as_uuid())
    .bind(session.map(|session| session.user.as_uuid().to_string()))
    .bind(session.map_or(0, |session| session.version))
    .bind(session.map(|session| session.session.as_uuid().to_string()))
    .bind(STATUS_EVENTS)
    .bind(OUTDATING_EVENTS)
    .bind(SESSION_ENDING_EVENTS)
    .fetch_one(state.read_pool())
    .await
    .map_err(ApiError::database)?;
    if tenant_event.as_deref() == Some(SUSPENDED_EVENT) {
        return Err(ApiError::Unauthenticated(
            "the tenant is suspended; its tokens and keys are refused until it is resumed".into(),
        ));
    }
    if ended {
        return Err(ApiError::Unauthenticated(
            "the session has ended; sign in again".into(),
        ));
    }
    if outdated {
        return Err(ApiError::Unauthenticated(
            "the token is outdated: the user's password, roles or standing changed since it was \
             issued; refresh it (POST /v1/auth/refresh) or sign in again"
                .into(),
        ));
    }
    Ok(())
}
