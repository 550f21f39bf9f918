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

/// How often `serve` looks at the log's statistics ([`analyze_log_if_due`]).
pub const LOG_STATISTICS_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// Analyzes `events` if autovacuum would by now (its changes since the last analyze passed
/// `autovacuum_analyze_threshold` + `autovacuum_analyze_scale_factor` × its rows), without
/// waiting for autovacuum's next round (`autovacuum_naptime`, a minute by default). The log
/// reader's plans depend on them: on statistics of a younger log each page became a scan of the
/// whole log and a sort (`bench http`: 3–7 ms a read on a 2,000-event log, the server's
/// PostgreSQL spending 15 s of a 10 s cell in them). `owner` must own `events`. Whether it
/// analyzed.
pub async fn analyze_log_if_due(owner: &PgPool) -> Result<bool, sqlx::Error> {
    let due: Option<bool> = sqlx::query_scalar(
        "select s.n_mod_since_analyze > current_setting('autovacuum_analyze_threshold')::float8
                    + current_setting('autovacuum_analyze_scale_factor')::float8 * greatest(c.reltuples, 0)
         from pg_stat_user_tables s join pg_class c on c.oid = s.relid
         where s.relid = 'events'::regclass",
    )
    .fetch_optional(owner)
    .await?;
    if due == Some(true) {
        sqlx::query("analyze events").execute(owner).await?;
        return Ok(true);
    }
    Ok(false)
}
