//! The log is append-only for every role, and application roles see one tenant at a time.

use sqlx::{Connection, PgConnection};
use vextrus_commands::{DbRole, tenant};
use vextrus_domain::TenantId;

use crate::support::*;

async fn seed_two_tenants(fx: &Fixture) -> (TenantId, TenantId) {
    let (a, b) = (TenantId::new(), TenantId::new());
    for (tenant, code) in [(a, "AAA"), (b, "BBB")] {
        fx.create_organization(tenant, code).await;
    }
    (a, b)
}

fn message(error: sqlx::Error) -> String {
    error
        .as_database_error()
        .map(|e| e.message().to_owned())
        .unwrap_or_else(|| error.to_string())
}

#[tokio::test]
async fn update_delete_and_truncate_are_refused_even_for_the_owner() {
    let fx = fixture().await;
    seed_two_tenants(&fx).await;
    for statement in [
        "update events set payload = '{}'",
        "delete from events",
        "truncate events",
    ] {
        let error = sqlx::query(statement).execute(&fx.owner).await.unwrap_err();
        assert!(
            message(error).contains("append-only"),
            "{statement} was not refused by the trigger"
        );
    }
    assert_eq!(event_count(&fx.owner).await, 2);
}

#[tokio::test]
async fn no_application_role_may_update_delete_or_truncate_events() {
    let fx = fixture().await;
    let (a, _) = seed_two_tenants(&fx).await;
    for role in [DbRole::Writer, DbRole::Projector, DbRole::Reader] {
        let pool = fx.db.role_pool(role, 1).await.unwrap();
        for statement in [
            "update events set payload = '{}'",
            "update events set hash = null",
            "delete from events",
            "truncate events",
        ] {
            // Inside a tenant's transaction too, where the rows are visible.
            let mut tx = tenant::begin(&pool, a).await.unwrap();
            let error = sqlx::query(statement).execute(&mut *tx).await.unwrap_err();
            assert!(
                message(error).contains("permission denied"),
                "{statement} was allowed for {role:?}"
            );
        }
    }
    assert_eq!(event_count(&fx.owner).await, 2);
}

#[tokio::test]
async fn application_roles_see_only_the_tenant_of_their_transaction() {
    let fx = fixture().await;
    let (a, b) = seed_two_tenants(&fx).await;
    for role in [DbRole::Writer, DbRole::Reader] {
        let pool = fx.db.role_pool(role, 1).await.unwrap();

        let unscoped: i64 = sqlx::query_scalar("select count(*) from events")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(unscoped, 0, "{role:?} without a tenant sees nothing");

        let mut tx = tenant::begin(&pool, a).await.unwrap();
        let tenants: Vec<uuid::Uuid> = sqlx::query_scalar("select distinct tenant_id from events")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        assert_eq!(
            tenants,
            vec![a.as_uuid()],
            "{role:?} in tenant A sees only A"
        );
        let b_rows: i64 = sqlx::query_scalar("select count(*) from events where tenant_id = $1")
            .bind(b.as_uuid())
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(
            b_rows, 0,
            "{role:?} in tenant A cannot read B even by asking for it"
        );
        tx.rollback().await.unwrap();
    }
}

/// The writer appends only through `vextrus_append`: no INSERT of its own into the log or the
/// tables written with it, for its own tenant or another.
#[tokio::test]
async fn the_writer_cannot_insert_into_the_log_itself() {
    let fx = fixture().await;
    let (a, b) = seed_two_tenants(&fx).await;
    let writer = fx.db.role_pool(DbRole::Writer, 1).await.unwrap();
    for target in [a, b] {
        let mut tx = tenant::begin(&writer, a).await.unwrap();
        let error = sqlx::query(
            "insert into events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
                                 actor, command_id, correlation_id)
             values ($1, 'organization', 'x', 1, 'Forged', '1', '{}', 'mallory', gen_random_uuid(), gen_random_uuid())",
        )
        .bind(target.as_uuid())
        .execute(&mut *tx)
        .await
        .unwrap_err();
        assert!(
            message(error).contains("permission denied"),
            "tenant {target:?}"
        );
    }
    for statement in [
        "insert into unique_values (tenant_id, scope, value, aggregate_type, aggregate_id)
         values ($1, 'organization.code', 'X', 'organization', 'x')",
        "insert into commands (tenant_id, command_id, aggregate_type, aggregate_id, stream_version, event_count)
         values ($1, gen_random_uuid(), 'organization', 'x', 0, 0)",
    ] {
        let mut tx = tenant::begin(&writer, a).await.unwrap();
        let error = sqlx::query(statement)
            .bind(a.as_uuid())
            .execute(&mut *tx)
            .await
            .unwrap_err();
        assert!(message(error).contains("permission denied"), "{statement}");
    }
    assert_eq!(event_count(&fx.owner).await, 2);
}

#[tokio::test]
async fn the_writer_cannot_choose_the_columns_the_database_sets() {
    let fx = fixture().await;
    let (a, _) = seed_two_tenants(&fx).await;
    let writer = fx.db.role_pool(DbRole::Writer, 1).await.unwrap();
    for (column, value) in [
        ("transaction_id", "'1'::xid8"),
        ("recorded_at", "now() - interval '1 year'"),
        ("hash_version", "1"),
    ] {
        let mut tx = tenant::begin(&writer, a).await.unwrap();
        let error = sqlx::query(&format!(
            "insert into events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
                                 actor, command_id, correlation_id, {column})
             values ($1, 'organization', 'x', 1, 'Forged', '1', '{{}}', 'mallory', gen_random_uuid(), gen_random_uuid(), {value})"
        ))
        .bind(a.as_uuid())
        .execute(&mut *tx)
        .await
        .unwrap_err();
        assert!(
            message(error).contains("permission denied"),
            "the writer could set {column}"
        );
    }
}

#[tokio::test]
async fn the_immutability_triggers_fire_even_in_replica_mode() {
    let fx = fixture().await;
    seed_two_tenants(&fx).await;
    let mut conn = PgConnection::connect_with(&fx.db.options).await.unwrap();
    sqlx::query("set session_replication_role = replica")
        .execute(&mut conn)
        .await
        .unwrap();
    let error = sqlx::query("delete from events")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(message(error).contains("append-only"));
    assert_eq!(event_count(&fx.owner).await, 2);
}

#[tokio::test]
async fn the_tenant_setting_does_not_outlive_its_transaction() {
    let fx = fixture().await;
    let (a, _) = seed_two_tenants(&fx).await;
    let mut conn = PgConnection::connect_with(&fx.db.options).await.unwrap();
    sqlx::query("set role vextrus_reader")
        .execute(&mut conn)
        .await
        .unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("select set_config('app.tenant_id', $1, true)")
        .bind(a.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let after: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(after, 0);
}
