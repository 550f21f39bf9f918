//! Analysts' SQL roles see exactly their tenant, whatever they try (issue 16, item 8).

use sqlx::{Connection, PgConnection};
use vextrus::analyst;
use vextrus_domain::TenantId;

use crate::support::*;

async fn seed_organization_row(fx: &Fixture, tenant: TenantId, code: &str) {
    sqlx::query(
        "insert into org_organizations (tenant_id, organization_id, code, name, bin, tin, base_currency,
                                        fiscal_year_start, status, path, version, created_at, created_by,
                                        updated_at, updated_by)
         values ($1, gen_random_uuid(), $2, $2, '000000000-0101', '000000000000', 'BDT', '07-01', 'active',
                 $2, 1, now(), 'seed', now(), 'seed')",
    )
    .bind(tenant.as_uuid())
    .bind(code)
    .execute(&fx.owner)
    .await
    .unwrap();
}

async fn count(connection: &mut PgConnection, table: &str) -> Result<i64, String> {
    sqlx::query_scalar(&format!("select count(*) from {table}"))
        .fetch_one(connection)
        .await
        .map_err(|error| error.to_string())
}

#[tokio::test]
async fn an_analyst_role_reads_its_tenant_only_whatever_it_sets() {
    let fx = fixture().await;
    let (a, b) = (TenantId::new(), TenantId::new());
    for (tenant, code) in [(a, "AAA"), (b, "BBB"), (b, "BB2")] {
        fx.create_organization(tenant, code).await;
        seed_organization_row(&fx, tenant, code).await;
    }
    let name = format!("bi_{}", &a.as_uuid().simple().to_string()[..12]);
    let created = analyst::create(&fx.owner, a.as_uuid(), &name, true)
        .await
        .unwrap();
    assert_eq!(created.password.len(), 64);
    let options = fx
        .db
        .options
        .clone()
        .username(&name)
        .password(&created.password);
    let mut analyst_session = PgConnection::connect_with(&options).await.unwrap();

    // Its own tenant, with nothing set.
    assert_eq!(
        count(&mut analyst_session, "org_organizations").await,
        Ok(1)
    );
    assert_eq!(count(&mut analyst_session, "events").await, Ok(1));
    // Every way to name another tenant changes nothing.
    let b_id = b.as_uuid().to_string();
    for attempt in [
        format!("select vextrus_set_tenant('{b_id}')"),
        format!("select set_config('app.tenant_id', '{b_id}', false)"),
        format!("set app.tenant_id = '{b_id}'"),
        format!("set session app.tenant_id = '{b_id}'"),
    ] {
        // Some attempts are refused outright; the others must not change what it sees.
        let _ = sqlx::raw_sql(&attempt).execute(&mut analyst_session).await;
        assert_eq!(
            count(&mut analyst_session, "org_organizations").await,
            Ok(1),
            "{attempt}"
        );
        assert_eq!(
            count(&mut analyst_session, "events").await,
            Ok(1),
            "{attempt}"
        );
        let seen: Vec<String> = sqlx::query_scalar("select code from org_organizations")
            .fetch_all(&mut analyst_session)
            .await
            .unwrap();
        assert_eq!(seen, ["AAA"], "{attempt}");
    }
    // In a transaction too, where the application's own setting lives.
    let mut tx = analyst_session.begin().await.unwrap();
    let _ = sqlx::query("select set_config('app.tenant_id', $1, true)")
        .bind(&b_id)
        .execute(&mut *tx)
        .await;
    assert_eq!(count(&mut tx, "org_organizations").await, Ok(1));
    tx.rollback().await.unwrap();
    // No other role to become, and nothing else to read or write.
    for statement in [
        "set role vextrus_reader",
        "set role vextrus_writer",
        "set role vextrus_projector",
        "select * from vextrus_analysts",
        "select * from projection_poison_events",
        "select * from commands",
        "select * from unique_values",
        "delete from org_organizations",
        "insert into org_organizations (tenant_id) values (gen_random_uuid())",
    ] {
        let refused = sqlx::raw_sql(statement)
            .execute(&mut analyst_session)
            .await
            .is_err();
        assert!(refused, "{statement} was allowed");
    }
    assert_eq!(
        sqlx::query_scalar::<_, i64>("select count(*) from org_organizations")
            .fetch_one(&fx.owner)
            .await
            .unwrap(),
        3
    );
    drop(analyst_session);

    // Listed, then revoked: the role is gone and cannot sign in.
    let listed = analyst::list(&fx.owner).await.unwrap();
    assert!(
        listed
            .iter()
            .any(|role| role.role_name == name && role.tenant_id == a.as_uuid())
    );
    assert!(matches!(
        analyst::create(&fx.owner, a.as_uuid(), &name, false).await,
        Err(analyst::AnalystError::Exists(_))
    ));
    analyst::revoke(&fx.owner, &name).await.unwrap();
    assert!(PgConnection::connect_with(&options).await.is_err());
    assert!(matches!(
        analyst::revoke(&fx.owner, &name).await,
        Err(analyst::AnalystError::Unknown(_))
    ));
}
