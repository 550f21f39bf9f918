//! API keys for machine clients: `vx_<key id>_<tenant>_<secret>`, sent as
//! `Authorization: Bearer vx_…` or `X-API-Key: vx_…`. The key names its tenant and its stream,
//! so checking it is one load of a short stream (issued, perhaps revoked) and the comparison of
//! its secret's SHA-256; a revocation or a suspension is refused at once. Lists show the first
//! characters (`vx_<first 8 of the key id>`) and when the key was last used.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use vextrus_commands::ActorId;
use vextrus_domain::TenantId;
use vextrus_domain::identity::{ApiKey, ApiKeyCommand, KeyRefusal, Role, RoleGrant};
use vextrus_domain::values::Name;

use super::secrets;
use super::users::with_etag;
use crate::auth::{Permission, Principal};
use crate::command::{Command, Fields};
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::extract::{JsonBody, PathIds};
use crate::openapi::text;
use crate::state::AppState;

/// The header that carries a key when `Authorization` does not.
pub const API_KEY_HEADER: &str = "x-api-key";

/// How often a key's last use is written, at most.
const LAST_USE_EVERY: Duration = Duration::from_secs(60);

/// A key as presented.
struct KeyText {
    key: Uuid,
    tenant: TenantId,
    secret: String,
}

fn format_key(key: Uuid, tenant: TenantId, secret: &str) -> String {
    format!("vx_{}_{}_{secret}", key.simple(), tenant.as_uuid().simple())
}

/// What lists show of a key: enough to tell keys apart, nothing to use.
fn prefix(key: Uuid) -> String {
    format!("vx_{}", &key.simple().to_string()[..8])
}

fn parse(text: &str) -> Option<KeyText> {
    let rest = text.strip_prefix("vx_")?;
    let mut parts = rest.splitn(3, '_');
    let key = parts.next().filter(|part| part.len() == 32)?;
    let tenant = parts.next().filter(|part| part.len() == 32)?;
    let secret = parts.next()?;
    let valid_secret = secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid_secret.then_some(())?;
    Some(KeyText {
        key: Uuid::try_parse(key).ok()?,
        tenant: TenantId::from_uuid(Uuid::try_parse(tenant).ok()?),
        secret: secret.to_owned(),
    })
}

/// Whether `token` is an API key rather than a JWT.
pub fn is_api_key(token: &str) -> bool {
    token.starts_with("vx_")
}

/// The caller an API key proves, or 401.
pub async fn authenticate(state: &AppState, text: &str) -> Result<Principal, ApiError> {
    let invalid = || ApiError::Unauthenticated("the API key is not valid".into());
    let key = parse(text).ok_or_else(invalid)?;
    let (api_key, _) = state
        .store()
        .load_aggregate::<ApiKey>(key.tenant, &key.key.to_string())
        .await?;
    let roles = api_key
        .authenticate(&secrets::hash(&key.secret), Utc::now())
        .map_err(|refusal| match refusal {
            KeyRefusal::Unknown | KeyRefusal::WrongSecret => invalid(),
            KeyRefusal::Revoked => ApiError::Unauthenticated("the API key was revoked".into()),
            KeyRefusal::Expired => ApiError::Unauthenticated("the API key has expired".into()),
        })?;
    record_use(state, key.tenant, key.key);
    Ok(Principal {
        subject: actor(key.key)?,
        tenant: key.tenant,
        roles: roles.into_iter().collect(),
        scoped_roles: BTreeSet::new(),
        session: None,
    })
}

/// The actor an API key's commands are recorded with.
fn actor(key: Uuid) -> Result<ActorId, ApiError> {
    ActorId::parse(&format!("api-key:{key}"))
        .map_err(|_| ApiError::Internal("an API key's actor id".into()))
}

/// Notes that `key` was used now, at most once a minute per key and process, off the request's
/// path.
fn record_use(state: &AppState, tenant: TenantId, key: Uuid) {
    if !state.api_key_used(key, Instant::now(), LAST_USE_EVERY) {
        return;
    }
    let pool = state.store().pool().clone();
    tokio::spawn(async move {
        let written = async {
            let mut tx = vextrus_commands::tenant::begin(&pool, tenant).await?;
            sqlx::query(
                "insert into api_key_last_use (tenant_id, key_id, last_used_at)
                 values ($1, $2, now())
                 on conflict (tenant_id, key_id) do update set last_used_at = excluded.last_used_at",
            )
            .bind(tenant.as_uuid())
            .bind(key)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        }
        .await;
        if let Err(error) = written {
            tracing::warn!(%error, %key, "recording an API key's last use");
        }
    });
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// What the key is for, e.g. "Tally sync".
    #[schema(schema_with = text::name)]
    pub name: String,
    /// Tenant-wide roles.
    #[schema(schema_with = text::roles)]
    pub roles: Vec<String>,
    /// Days until the key stops working; none: until revoked. (A JSON number: `30` and `30.0`
    /// are the same integer to JSON Schema, so both are taken.)
    #[serde(default)]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<serde_json::Number>,
}

/// A new key: `key` is shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyCreated {
    pub key_id: Uuid,
    /// Send as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Shown once; null when this
    /// answers a repeated `Idempotency-Key` (create another key).
    pub key: Option<String>,
    pub prefix: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub position: Option<i64>,
}

/// A key as administrators see it: never its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct ApiKeyView {
    pub key_id: Uuid,
    pub prefix: String,
    pub name: String,
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Who issued it (the actor recorded on its first event).
    pub created_by: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// To the minute.
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyChanged {
    pub key_id: Uuid,
    pub version: i64,
    pub position: Option<i64>,
}

/// Create an API key for a machine client.
#[utoipa::path(
    post,
    path = "/v1/api-keys",
    tag = "users",
    security(("bearer" = [])),
    params(crate::hierarchy::IdempotencyKeyHeader),
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "Created; the key is shown once", body = ApiKeyCreated),
        super::IdentityErrors,
    ),
    extensions(("x-permission" = json!("manage-users"))),
)]
pub async fn create_api_key(
    cmd: Command,
    JsonBody(body): JsonBody<CreateApiKey>,
) -> Result<Response, ApiError> {
    cmd.require(Permission::ManageUsers, "creating an API key")?;
    let mut fields = Fields::default();
    let name = fields.take("name", Name::parse(&body.name));
    let mut roles = Vec::new();
    for (index, role) in body.roles.iter().enumerate() {
        if let Some(role) = fields.take(&format!("roles[{index}]"), role.parse::<Role>()) {
            roles.push(RoleGrant::tenant_wide(role));
        }
    }
    let days = fields.take("expires_in_days", whole_days(body.expires_in_days.as_ref()));
    let (name, days) = fields.finish(|| Some((name?, days?)))?;
    roles.sort();
    roles.dedup();
    let issue = cmd.named("create-api-key").on_new_stream();
    let key_id = issue.new_id();
    let tenant = issue.tenant();
    let (secret, secret_hash) = secrets::fresh()?;
    let expires_at = days.map(|days| Utc::now() + chrono::Duration::days(i64::from(days)));
    let outcome = issue
        .run::<ApiKey>(
            key_id,
            ApiKeyCommand::Issue {
                key_id,
                name,
                roles,
                secret_hash,
                expires_at,
            },
        )
        .await?;
    let body = ApiKeyCreated {
        key_id,
        key: (!outcome.repeated).then(|| format_key(key_id, tenant, &secret)),
        prefix: prefix(key_id),
        expires_at,
        version: outcome.version.get(),
        position: outcome.last_position.map(|position| position.get()),
    };
    Ok(with_etag(StatusCode::CREATED, body, outcome, None))
}

/// The tenant's API keys, oldest first (at most 1,000), with when each was last used.
#[utoipa::path(
    get,
    path = "/v1/api-keys",
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The keys", body = ApiKeyList),
        super::IdentityErrors,
    ),
    extensions(("x-permission" = json!("manage-users"))),
)]
pub async fn list_api_keys(
    State(state): State<AppState>,
    context: RequestContext,
) -> Result<Json<ApiKeyList>, ApiError> {
    context
        .principal
        .require(Permission::ManageUsers, "listing API keys")?;
    let mut tx = context.read(&state).await?;
    let items: Vec<ApiKeyView> = sqlx::query_as(
        "select (i.payload->>'key_id')::uuid as key_id,
                'vx_' || left(replace(i.payload->>'key_id', '-', ''), 8) as prefix,
                i.payload->>'name' as name,
                array(select g->>'role' from jsonb_array_elements(i.payload->'roles') g) as roles,
                i.recorded_at as created_at, i.actor as created_by,
                (i.payload->>'expires_at')::timestamptz as expires_at,
                (select r.recorded_at from events r
                  where r.tenant_id = i.tenant_id and r.aggregate_type = 'api_key'
                    and r.aggregate_id = i.aggregate_id and r.event_type = 'ApiKeyRevoked'
                  limit 1) as revoked_at,
                u.last_used_at
         from events i
         left join api_key_last_use u
           on u.tenant_id = i.tenant_id and u.key_id = (i.payload->>'key_id')::uuid
         where i.tenant_id = $1 and i.aggregate_type = 'api_key' and i.event_type = 'ApiKeyIssued'
         order by i.global_position
         limit 1000",
    )
    .bind(context.tenant.as_uuid())
    .fetch_all(&mut *tx)
    .await
    .map_err(ApiError::database)?;
    tx.rollback().await.map_err(ApiError::database)?;
    Ok(Json(ApiKeyList { items }))
}

/// A whole number of days from 1 to 3650, written as JSON would (`30` or `30.0`).
fn whole_days(number: Option<&serde_json::Number>) -> Result<Option<u32>, &'static str> {
    let Some(number) = number else {
        return Ok(None);
    };
    let days = number
        .as_u64()
        .or_else(|| {
            number
                .as_f64()
                .filter(|days| days.fract() == 0.0 && *days >= 0.0 && *days <= 4000.0)
                .map(|days| days as u64)
        })
        .and_then(|days| u32::try_from(days).ok())
        .filter(|days| (1..=3650).contains(days))
        .ok_or("must be a whole number of days from 1 to 3650")?;
    Ok(Some(days))
}

/// Revoke an API key: refused from the next request on.
#[utoipa::path(
    post,
    path = "/v1/api-keys/{key_id}/revoke",
    tag = "users",
    security(("bearer" = [])),
    params(
        ("key_id" = Uuid, Path, description = "The key"),
        crate::hierarchy::IdempotencyKeyHeader
    ),
    responses(
        (status = 200, description = "Revoked", body = ApiKeyChanged),
        super::IdentityErrors,
    ),
    extensions(("x-permission" = json!("manage-users"))),
)]
pub async fn revoke_api_key(
    cmd: Command,
    PathIds(key_id): PathIds<Uuid>,
) -> Result<Response, ApiError> {
    cmd.require(Permission::ManageUsers, "revoking an API key")?;
    let outcome = cmd
        .named("revoke-api-key")
        .run::<ApiKey>(key_id, ApiKeyCommand::Revoke)
        .await?;
    let body = ApiKeyChanged {
        key_id,
        version: outcome.version.get(),
        position: outcome.last_position.map(|position| position.get()),
    };
    Ok(with_etag(StatusCode::OK, body, outcome, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_round_trips_and_shows_only_its_prefix() {
        let (secret, _) = secrets::fresh().unwrap();
        let key = Uuid::now_v7();
        let tenant = TenantId::new();
        let text = format_key(key, tenant, &secret);
        assert!(is_api_key(&text));
        let parsed = parse(&text).unwrap();
        assert_eq!((parsed.key, parsed.tenant), (key, tenant));
        assert_eq!(parsed.secret, secret);
        assert!(text.starts_with(&prefix(key)));
        assert_eq!(prefix(key).len(), 11);
        for bad in [
            "vx_",
            "vx_abc",
            &text[..text.len() - 1],
            &format!("{text}x"),
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
