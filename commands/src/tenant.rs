//! The tenant of a transaction (design.md D5).
//!
//! Row-level security policies compare every row with `vextrus_current_tenant()`, which reads the
//! transaction-local setting `app.tenant_id`. Only the SQL function `vextrus_set_tenant` writes
//! that setting, and only for the current transaction, so a pooled connection can never carry one
//! tenant's context into another's request. On the Rust side, [`begin`] is the way to open a
//! tenant-scoped transaction; the store's two calls set the tenant inside their own statements.

use sqlx::{PgPool, Postgres, Transaction};
use vextrus_domain::TenantId;

/// Begins a transaction in which row-level security sees exactly `tenant`.
///
/// `BEGIN` and the setting travel in one round trip. The tenant is a parsed UUID, whose text form
/// is hex digits and dashes only, so it can be written into the statement safely.
pub async fn begin(
    pool: &PgPool,
    tenant: TenantId,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let started = std::time::Instant::now();
    let tx = pool
        .begin_with(format!("begin; select vextrus_set_tenant('{tenant}')"))
        .await;
    metrics::histogram!(BEGIN_DURATION).record(started.elapsed().as_secs_f64());
    tx
}

/// Metric: the time [`begin`] takes, a pool wait included (sqlx counts no waits itself).
pub const BEGIN_DURATION: &str = "vextrus_db_begin_duration_seconds";

/// Switches an open transaction to `tenant`: for the projector, whose transactions apply events
/// of several tenants in turn. Everything after it in the transaction sees exactly `tenant`.
pub async fn switch(conn: &mut sqlx::PgConnection, tenant: TenantId) -> Result<(), sqlx::Error> {
    sqlx::query("select vextrus_set_tenant($1)")
        .bind(tenant.as_uuid())
        .execute(conn)
        .await
        .map(drop)
}
