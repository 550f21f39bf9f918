//! Analysts' SQL roles: PostgreSQL login roles that read exactly one tenant's read models (and,
//! if granted, its events), whatever they set (`migrations/0020_analyst_roles.sql`).

use sqlx::PgPool;
use uuid::Uuid;

/// Why an analyst role could not be created or dropped.
#[derive(Debug, thiserror::Error)]
pub enum AnalystError {
    #[error(
        "invalid role name {0:?}: use 3-48 lowercase letters, digits or underscores, starting with a letter"
    )]
    InvalidName(String),
    #[error("a role named {0:?} exists already")]
    Exists(String),
    #[error("no analyst role named {0:?}")]
    Unknown(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A created analyst role and its password (shown once; PostgreSQL stores only its hash).
#[derive(Debug)]
pub struct Analyst {
    pub role: String,
    pub password: String,
}

/// One analyst role, as listed.
#[derive(Debug, sqlx::FromRow)]
pub struct AnalystRole {
    pub role_name: String,
    pub tenant_id: Uuid,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

fn check_name(name: &str) -> Result<(), AnalystError> {
    let valid = (3..=48).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with("pg_")
        && !name.starts_with("vextrus");
    if valid {
        Ok(())
    } else {
        Err(AnalystError::InvalidName(name.to_owned()))
    }
}

/// Creates login role `name`, bound to `tenant`, able to read the read models (and the tenant's
/// events with `with_events`). `owner` must be the database's owner and may create roles.
pub async fn create(
    owner: &PgPool,
    tenant: Uuid,
    name: &str,
    with_events: bool,
) -> Result<Analyst, AnalystError> {
    check_name(name)?;
    // Two v4 UUIDs: 244 bits from the operating system's random source, as 64 hex characters.
    let password = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let mut tx = owner.begin().await?;
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_roles where rolname = $1)")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
    if exists {
        return Err(AnalystError::Exists(name.to_owned()));
    }
    // The name is checked above (identifier characters only); the password is a literal.
    let statements = [
        format!(
            "create role {name} login nosuperuser nocreatedb nocreaterole nobypassrls \
             connection limit 10 password '{password}' in role vextrus_analyst"
        ),
        format!("alter role {name} set default_transaction_read_only = on"),
    ];
    for statement in statements {
        sqlx::raw_sql(&statement).execute(&mut *tx).await?;
    }
    sqlx::query("insert into vextrus_analysts (role_name, tenant_id) values ($1, $2)")
        .bind(name)
        .bind(tenant)
        .execute(&mut *tx)
        .await?;
    if with_events {
        sqlx::raw_sql(&format!("grant select on events to {name}"))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Analyst {
        role: name.to_owned(),
        password,
    })
}

/// Drops analyst role `name` and its binding; its open sessions are ended.
pub async fn revoke(owner: &PgPool, name: &str) -> Result<(), AnalystError> {
    check_name(name)?;
    let mut tx = owner.begin().await?;
    let deleted = sqlx::query("delete from vextrus_analysts where role_name = $1")
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(AnalystError::Unknown(name.to_owned()));
    }
    sqlx::query(
        "select pg_terminate_backend(pid) from pg_stat_activity where usename = $1 and pid <> pg_backend_pid()",
    )
    .bind(name)
    .execute(&mut *tx)
    .await?;
    // DROP OWNED also revokes what was granted to the role (the log, with --with-events).
    sqlx::raw_sql(&format!("drop owned by {name}; drop role {name}"))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Every analyst role of this database, by name.
pub async fn list(owner: &PgPool) -> Result<Vec<AnalystRole>, AnalystError> {
    Ok(sqlx::query_as(
        "select role_name, tenant_id, created_at from vextrus_analysts order by role_name",
    )
    .fetch_all(owner)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_plain_identifiers_of_our_own() {
        for good in ["bi_acme", "analyst1", "abc"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            "Acme",
            "1bi",
            "bi-acme",
            "bi acme",
            "x'; drop table events; --",
            "pg_monitor",
            "vextrus_reader",
            &"a".repeat(49),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
