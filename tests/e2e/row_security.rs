//! Row-level security as a property of the schema, not of each migration's care: every table
//! that holds tenant data has RLS on, the read models have it forced, and every application
//! role sees nothing of any tenant until its transaction names one, then only that tenant.
//! The few cross-tenant readers are the fan-out's, by design (design.md D4, D5), listed here
//! with their reason so a new one has to be argued for.

use std::collections::BTreeSet;

use sqlx::{PgPool, Row};
use uuid::Uuid;
use vextrus_commands::DbRole;

use crate::http::spawn_app;

/// Tables with `tenant_id` whose RLS is not FORCEd, so the owner can work across tenants: the
/// log and its ledger (migrations, operator tooling, `audit checkpoint`), and the analysts'
/// tenant bindings (read by `vextrus_current_tenant`, written by `vextrus analyst`).
const OWNER_WORKS_ACROSS_TENANTS: [&str; 5] = [
    "audit_checkpoints",
    "commands",
    "events",
    "unique_values",
    "vextrus_analysts",
];

/// Operators' records that name a tenant without holding its data: which tenant a replay rebuilt.
/// Platform operators see every tenant's replays (`vextrus projections status`, the ops route).
const OPERATOR_RECORDS: [&str; 1] = ["projection_replays"];

/// `(role, table)`: the fan-out reads every tenant's events and keeps the Kafka dedupe record
/// for all of them (relay, runner, replay's swap).
const FAN_OUT_READS_ACROSS_TENANTS: [(&str, &str); 2] = [
    ("vextrus_projector", "events"),
    ("vextrus_projector", "projection_stream_positions"),
];

async fn tenant_tables(owner: &PgPool) -> Vec<(String, bool, bool)> {
    sqlx::query(
        "select c.relname::text, c.relrowsecurity, c.relforcerowsecurity
           from pg_class c
           join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = 'public' and c.relkind in ('r', 'p')
            and exists (select from pg_attribute a
                         where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)
          order by 1",
    )
    .fetch_all(owner)
    .await
    .unwrap()
    .iter()
    .map(|row| (row.get(0), row.get(1), row.get(2)))
    .filter(|(name, ..): &(String, bool, bool)| !OPERATOR_RECORDS.contains(&name.as_str()))
    .collect()
}

/// How many rows of `table` `role` sees with the transaction's tenant set to `tenant` (or none),
/// or `None` when the role may not read the table at all.
async fn visible_rows(pool: &PgPool, table: &str, tenant: Option<Uuid>) -> Option<i64> {
    let mut tx = pool.begin().await.unwrap();
    let readable: bool = sqlx::query_scalar("select has_table_privilege($1, 'select')")
        .bind(table)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    if !readable {
        return None;
    }
    if let Some(tenant) = tenant {
        sqlx::query("select vextrus_set_tenant($1)")
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let count = sqlx::query_scalar(&format!("select count(*) from {table}"))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    Some(count)
}

#[tokio::test]
async fn every_tenant_table_fails_closed_for_every_application_role() {
    let app = spawn_app().await;
    let admin = app.caller(&["admin"]);
    let hierarchy = admin.create_hierarchy("RLS").await;
    admin
        .tree_after(&hierarchy.org, hierarchy.position)
        .await
        .expect(200);

    let tables = tenant_tables(&app.owner).await;
    let names: BTreeSet<&str> = tables.iter().map(|(name, ..)| name.as_str()).collect();
    for expected in [
        "events",
        "org_organizations",
        "org_sites",
        "projection_stream_positions",
    ] {
        assert!(
            names.contains(expected),
            "{expected} not found in {names:?}"
        );
    }
    for (table, enabled, forced) in &tables {
        assert!(
            enabled,
            "{table} holds tenant data without row-level security"
        );
        assert_eq!(
            *forced,
            !OWNER_WORKS_ACROSS_TENANTS.contains(&table.as_str()),
            "{table}: FORCE ROW LEVEL SECURITY"
        );
    }

    let stranger = Some(Uuid::now_v7());
    let mut checked = 0;
    for role in [DbRole::Writer, DbRole::Projector, DbRole::Reader] {
        let pool = app.db.role_pool(role, 1).await.unwrap();
        for (table, ..) in &tables {
            let across = FAN_OUT_READS_ACROSS_TENANTS.contains(&(role.name(), table.as_str()));
            for tenant in [None, stranger] {
                let Some(seen) = visible_rows(&pool, table, tenant).await else {
                    continue;
                };
                checked += 1;
                if !across {
                    assert_eq!(
                        seen,
                        0,
                        "{} sees {seen} rows of {table} with tenant {tenant:?}",
                        role.name()
                    );
                }
            }
        }
    }
    assert!(
        checked >= 20,
        "only {checked} (role, table) pairs were readable"
    );

    // And each tenant's own rows are there to be seen: the zeros above are not empty tables.
    let reader = app.db.role_pool(DbRole::Reader, 1).await.unwrap();
    for table in [
        "events",
        "org_organizations",
        "org_divisions",
        "org_projects",
        "org_sites",
    ] {
        let own = visible_rows(&reader, table, Some(admin.tenant)).await;
        assert!(own.is_some_and(|rows| rows > 0), "{table}: {own:?}");
    }
}
