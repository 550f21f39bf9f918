//! Migrations and connection pools.

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnectOptions;
use vextrus_commands::{DbRole, log_reader_pool_options, pool_options_for_role};

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

/// A pool for a [`LogReader`](vextrus_commands::LogReader): `vextrus_projector`, with the
/// reader's plan settings ([`vextrus_commands::log::READ_PLAN_SETTINGS`]). Its own pool, so that
/// the settings touch only the reader's statements, not the projections' writes.
pub async fn log_reader_pool(
    options: &PgConnectOptions,
    max_connections: u32,
) -> Result<PgPool, sqlx::Error> {
    log_reader_pool_options()
        .max_connections(max_connections)
        .connect_with(options.clone())
        .await
}

/// How often `serve` looks at the log's statistics ([`analyze_log_if_doubled`]).
pub const LOG_STATISTICS_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// Analyzes `events` once it has changed by more than it held at its last analyze (and by at
/// least 1,000 rows): a log that has doubled since. The log readers no longer depend on the log's
/// statistics ([`log_reader_pool`]), but the other statements that read `events` do (the access
/// check, the audit trail): before the readers' plans were pinned, those of a much younger log
/// made each page a scan of the whole log and a sort (`bench http`: 3–7 ms a read on a
/// 2,000-event log, the server's PostgreSQL spending 15 s of a 10 s cell in them), and
/// autovacuum takes up to a minute (`autovacuum_naptime`) to look. Autovacuum still keeps a steady
/// log's statistics fresher than this (every 10% of its rows by default); this keeps a young or
/// bulk-loaded log from going unanalyzed, at one `analyze` per doubling. `owner` must own
/// `events`. Whether it analyzed.
pub async fn analyze_log_if_doubled(owner: &PgPool) -> Result<bool, sqlx::Error> {
    let due: Option<bool> = sqlx::query_scalar(
        "select s.n_mod_since_analyze > greatest(c.reltuples, 1000)
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

/// Keeps the log's planner statistics up to date ([`analyze_log_if_doubled`], every
/// [`LOG_STATISTICS_CHECK`]) until `stopped`: what `serve` runs beside its log readers. A failure
/// is logged and tried again at the next check.
pub async fn keep_log_statistics(owner: PgPool, stopped: impl std::future::Future<Output = ()>) {
    tokio::pin!(stopped);
    let mut checks = tokio::time::interval(LOG_STATISTICS_CHECK);
    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            () = &mut stopped => return,
            _ = checks.tick() => {}
        }
        match analyze_log_if_doubled(&owner).await {
            Ok(analyzed) => {
                failing = false;
                if analyzed {
                    tracing::debug!("analyzed the log: its planner statistics are current");
                }
            }
            // Once per run of failures: a database that is down says so elsewhere too.
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "could not bring the log's planner statistics up to date");
            }
            Err(_) => {}
        }
    }
}
