//! Migrations and connection pools.

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnectOptions;
use vextrus_commands::{DbRole, pool_options_for_role};

/// The SQL migrations of `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The version of the newest migration this build carries.
pub fn latest_migration() -> i64 {
    MIGRATOR
        .iter()
        .map(|migration| migration.version)
        .max()
        .unwrap_or(0)
}

/// Applies every pending migration as the connecting user, who becomes (or must be) the owner of
/// the tables. Safe to run at every start: applied migrations are skipped.
pub async fn migrate(options: &PgConnectOptions) -> Result<(), sqlx::migrate::MigrateError> {
    let pool = PgPool::connect_with(options.clone()).await?;
    let result = MIGRATOR.run(&pool).await;
    pool.close().await;
    result
}

/// A pool whose connections act as `role` (see `migrations/0001_roles.sql`).
pub async fn role_pool(
    options: &PgConnectOptions,
    role: DbRole,
    max_connections: u32,
) -> Result<PgPool, sqlx::Error> {
    pool_options_for_role(role)
        .max_connections(max_connections)
        .connect_with(options.clone())
        .await
}
