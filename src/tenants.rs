//! The platform operator's side of identity (`vextrus tenant …`): register a tenant with an
//! invitation for its first administrator, invite further administrators, suspend and resume,
//! list. Commands go through the event store like any other, as actor `platform-operator`.

use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;
use uuid::Uuid;
use vextrus_api::identity::secrets::{self, Kind, OneTimeToken};
use vextrus_commands::{ActorId, CommandMetadata, EventStore, ExecuteError};
use vextrus_domain::TenantId;
use vextrus_domain::identity::{
    Email, IdentityValueError, OneTime, Role, RoleGrant, Slug, Tenant, TenantCommand, TenantError,
    User, UserCommand, UserError,
};
use vextrus_domain::ids::UserId;
use vextrus_domain::values::{Name, ValueError};

/// The actor the platform operator's commands are recorded with.
pub const PLATFORM_OPERATOR: &str = "platform-operator";

/// How long a tenant administrator's invitation stays valid.
pub const INVITATION_DAYS: i64 = 7;

#[derive(Debug, thiserror::Error)]
pub enum TenantAdminError {
    #[error("--name: {0}")]
    Name(ValueError),
    #[error("--reason: {0}")]
    Reason(ValueError),
    #[error("--slug: {0}")]
    Slug(IdentityValueError),
    #[error("--admin-email: {0}")]
    Email(IdentityValueError),
    #[error("the slug {0} is taken by another tenant")]
    SlugTaken(String),
    #[error("no tenant has the slug {0}")]
    NoSuchTenant(String),
    #[error("{0}")]
    Tenant(TenantError),
    #[error("{0} is already a user of this tenant")]
    EmailTaken(String),
    #[error("{0}")]
    User(UserError),
    #[error("the event store: {0}")]
    Store(String),
    #[error("the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Secret(String),
}

fn store_error<E: std::error::Error>(error: ExecuteError<E>) -> TenantAdminError {
    TenantAdminError::Store(error.to_string())
}

fn metadata() -> Result<CommandMetadata, TenantAdminError> {
    ActorId::parse(PLATFORM_OPERATOR)
        .map(CommandMetadata::new)
        .map_err(|error| TenantAdminError::Store(error.to_string()))
}

/// A registered tenant and its administrator's invitation.
#[derive(Debug, Clone)]
pub struct Registered {
    pub tenant: TenantId,
    pub slug: Slug,
    pub invitation: Invitation,
}

/// An invitation to give to a person (shown once).
#[derive(Debug, Clone)]
pub struct Invitation {
    pub user: UserId,
    pub email: Email,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// The slug `name` suggests: lower case, letters and digits, runs of anything else as one `-`.
pub fn slug_from_name(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-')
        .chars()
        .take(40)
        .collect::<String>()
}

/// Registers a tenant called `name` under `slug` and invites `admin_email` as its administrator.
pub async fn register(
    store: &EventStore,
    name: &str,
    slug: &str,
    admin_email: &str,
    admin_name: &str,
) -> Result<Registered, TenantAdminError> {
    let name = Name::parse(name).map_err(TenantAdminError::Name)?;
    let slug = Slug::parse(slug).map_err(TenantAdminError::Slug)?;
    let email = Email::parse(admin_email).map_err(TenantAdminError::Email)?;
    let admin_name = Name::parse(admin_name).map_err(TenantAdminError::Name)?;
    let tenant = TenantId::new();
    let registered = store
        .execute::<Tenant>(
            TenantId::PLATFORM,
            &tenant.as_uuid().to_string(),
            TenantCommand::Register {
                tenant_id: tenant,
                name,
                slug: slug.clone(),
            },
            &(),
            &metadata()?,
            Some(vextrus_commands::Version::NONE),
        )
        .await;
    match registered {
        Err(ExecuteError::ValueTaken { .. }) => {
            return Err(TenantAdminError::SlugTaken(slug.to_string()));
        }
        Err(ExecuteError::Rejected(error)) => return Err(TenantAdminError::Tenant(error)),
        Err(other) => return Err(store_error(other)),
        Ok(_) => {}
    }
    let invitation = invite(store, tenant, email, admin_name, Role::Admin).await?;
    Ok(Registered {
        tenant,
        slug,
        invitation,
    })
}

/// Invites `email` to `tenant` with `role` in the whole tenant.
pub async fn invite(
    store: &EventStore,
    tenant: TenantId,
    email: Email,
    name: Name,
    role: Role,
) -> Result<Invitation, TenantAdminError> {
    let user = UserId::new();
    let (secret, hash) =
        secrets::fresh().map_err(|error| TenantAdminError::Secret(error.to_string()))?;
    let expires_at = Utc::now() + Duration::days(INVITATION_DAYS);
    let invited = store
        .execute::<User>(
            tenant,
            &user.as_uuid().to_string(),
            UserCommand::Invite {
                user_id: user,
                email: email.clone(),
                name,
                roles: vec![RoleGrant::tenant_wide(role)],
                invitation: OneTime { hash, expires_at },
            },
            &(),
            &metadata()?,
            Some(vextrus_commands::Version::NONE),
        )
        .await;
    match invited {
        Err(ExecuteError::ValueTaken { .. }) => {
            Err(TenantAdminError::EmailTaken(email.to_string()))
        }
        Err(ExecuteError::Rejected(error)) => Err(TenantAdminError::User(error)),
        Err(other) => Err(store_error(other)),
        Ok(_) => Ok(Invitation {
            user,
            token: OneTimeToken::format(Kind::Invitation, tenant, user, &secret),
            email,
            expires_at,
        }),
    }
}

/// The tenant registered under `slug_or_id` (a slug or the tenant's UUID).
pub async fn find(store: &EventStore, slug_or_id: &str) -> Result<TenantId, TenantAdminError> {
    if let Ok(id) = Uuid::parse_str(slug_or_id) {
        return Ok(TenantId::from_uuid(id));
    }
    let slug = Slug::parse(slug_or_id).map_err(TenantAdminError::Slug)?;
    let claimant = store
        .claimant(TenantId::PLATFORM, "tenant.slug", slug.as_str())
        .await?
        .ok_or_else(|| TenantAdminError::NoSuchTenant(slug.to_string()))?;
    Uuid::parse_str(&claimant)
        .map(TenantId::from_uuid)
        .map_err(|_| TenantAdminError::NoSuchTenant(slug.to_string()))
}

/// Suspends (`suspend: true`) or resumes `tenant`, for `reason`.
pub async fn set_suspended(
    store: &EventStore,
    tenant: TenantId,
    suspend: bool,
    reason: &str,
) -> Result<(), TenantAdminError> {
    let reason = Name::parse(reason).map_err(TenantAdminError::Reason)?;
    let command = if suspend {
        TenantCommand::Suspend { reason }
    } else {
        TenantCommand::Resume { reason }
    };
    store
        .execute::<Tenant>(
            TenantId::PLATFORM,
            &tenant.as_uuid().to_string(),
            command,
            &(),
            &metadata()?,
            None,
        )
        .await
        .map(drop)
        .map_err(|error| match error {
            ExecuteError::Rejected(error) => TenantAdminError::Tenant(error),
            other => store_error(other),
        })
}

/// One registered tenant, as `vextrus tenant list` shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantRow {
    pub tenant_id: Uuid,
    pub slug: String,
    pub name: String,
    pub status: String,
    pub registered_at: DateTime<Utc>,
}

/// Every registered tenant, oldest first, read from the platform's partition of the log with
/// the owner's pool.
pub async fn list(owner: &PgPool) -> Result<Vec<TenantRow>, sqlx::Error> {
    sqlx::query_as(
        "select (r.payload->>'tenant_id')::uuid as tenant_id, r.payload->>'slug' as slug,
                r.payload->>'name' as name,
                case (select s.event_type from events s
                      where s.tenant_id = r.tenant_id and s.aggregate_type = 'tenant'
                        and s.aggregate_id = r.aggregate_id
                        and s.event_type in ('TenantSuspended', 'TenantResumed')
                      order by s.sequence desc limit 1)
                  when 'TenantSuspended' then 'suspended' else 'active' end as status,
                r.recorded_at as registered_at
         from events r
         where r.tenant_id = $1 and r.aggregate_type = 'tenant'
           and r.event_type = 'TenantRegistered'
         order by r.global_position",
    )
    .bind(TenantId::PLATFORM.as_uuid())
    .fetch_all(owner)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slug_is_suggested_from_a_name() {
        assert_eq!(
            slug_from_name("Meghna Builders Ltd."),
            "meghna-builders-ltd"
        );
        assert_eq!(slug_from_name("  A & B  "), "a-b");
        assert!(Slug::parse(&slug_from_name("Padma Bridge Construction Co.")).is_ok());
    }
}
