//! Every registered projection's row declarations match the migrated tables, so a slip in a
//! declaration fails here rather than in a replay; and every table a projection owns is
//! protected by row-level security like the others.

use std::collections::BTreeMap;

use sqlx::{PgPool, Row};
use vextrus_projections::registry;

use crate::http::spawn_app;

/// A column as the database has it: type, nullability.
type Migrated = BTreeMap<String, (String, bool)>;

async fn migrated_columns(owner: &PgPool, table: &str) -> Migrated {
    sqlx::query(
        "select column_name::text, data_type::text, is_nullable = 'YES'
           from information_schema.columns
          where table_schema = 'public' and table_name = $1",
    )
    .bind(table)
    .fetch_all(owner)
    .await
    .unwrap()
    .iter()
    .map(|row| (row.get(0), (row.get(1), row.get(2))))
    .collect()
}

async fn primary_key(owner: &PgPool, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "select a.attname::text
           from pg_index i
           join lateral unnest(i.indkey) with ordinality as k(attnum, n) on true
           join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
          where i.indrelid = format('public.%I', $1::text)::regclass and i.indisprimary
          order by k.n",
    )
    .bind(table)
    .fetch_all(owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn every_declared_row_matches_its_migrated_table_column_for_column() {
    let app = spawn_app().await;
    let catalog = registry::catalog();
    assert!(catalog.len() >= 2, "the registry lists the projections");
    for projection in &catalog {
        assert_eq!(
            projection
                .declarations
                .iter()
                .map(|declaration| declaration.table)
                .collect::<Vec<_>>(),
            projection.tables,
            "{}: its tables are its declared rows' tables",
            projection.name
        );
        for declaration in &projection.declarations {
            let table = declaration.table;
            let migrated = migrated_columns(&app.owner, table).await;
            assert!(!migrated.is_empty(), "{table} is migrated");
            let declared: Migrated = declaration
                .columns
                .iter()
                .map(|column| {
                    (
                        column.name.to_owned(),
                        (
                            column.sql.information_schema_name().to_owned(),
                            column.nullable,
                        ),
                    )
                })
                .collect();
            assert_eq!(
                declared, migrated,
                "{table}: declared (left) and migrated (right) columns: name → (type, nullable)"
            );
            let key: Vec<&str> = declaration.key.iter().map(|column| column.name).collect();
            assert_eq!(
                primary_key(&app.owner, table).await,
                key,
                "{table}: the primary key is tenant_id then the declared key"
            );
        }
    }
}

#[tokio::test]
async fn every_projection_table_has_forced_row_security_and_the_helper_s_policy() {
    let app = spawn_app().await;
    for projection in registry::catalog() {
        for table in projection.tables {
            let (enabled, forced, policies): (bool, bool, i64) = sqlx::query_as(
                "select c.relrowsecurity, c.relforcerowsecurity,
                        (select count(*) from pg_policies p
                          where p.schemaname = 'public' and p.tablename = c.relname
                            and p.qual = '(tenant_id = ( SELECT vextrus_current_tenant() AS vextrus_current_tenant))'
                            and p.with_check = '(tenant_id = ( SELECT vextrus_current_tenant() AS vextrus_current_tenant))')
                   from pg_class c join pg_namespace n on n.oid = c.relnamespace
                  where n.nspname = 'public' and c.relname = $1",
            )
            .bind(table)
            .fetch_one(&app.owner)
            .await
            .unwrap();
            assert!(
                enabled && forced && policies == 1,
                "{table}: row-level security enabled ({enabled}), forced ({forced}), one tenant policy ({policies})"
            );
        }
    }
}

vextrus_projections::row! {
    /// A state row with a composite key and every kind of column.
    #[derive(Debug, Clone, PartialEq)]
    struct Note in "test_notes" {
        key { note_id: uuid::Uuid, day: chrono::NaiveDate }
        body: String,
        weight: Option<i32>,
        tags: serde_json::Value,
        done: bool,
    }
}

#[tokio::test]
async fn a_table_saves_loads_changes_and_deletes_rows_per_tenant_under_row_security() {
    use vextrus_projections::{ReadModelTable, Table, Target};
    let app = spawn_app().await;
    sqlx::raw_sql(
        "create table test_notes (tenant_id uuid not null, note_id uuid not null, day date not null,
             body text not null, weight integer, tags jsonb not null, done boolean not null,
             primary key (tenant_id, note_id, day));
         select vextrus_protect_read_model('test_notes');",
    )
    .execute(&app.owner)
    .await
    .unwrap();
    let projector = app
        .db
        .role_pool(vextrus_commands::DbRole::Projector, 1)
        .await
        .unwrap();
    let (tenant, other) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
    let (one, two, three) = (
        (uuid::Uuid::now_v7(), day),
        (uuid::Uuid::now_v7(), day.succ_opt().unwrap()),
        (uuid::Uuid::now_v7(), day),
    );
    let note = |body: &str, weight| Note {
        body: body.into(),
        weight,
        tags: serde_json::json!({"tags": [body]}),
        done: weight.is_some(),
    };
    let mut table = Table::<Note>::default();
    table.insert(tenant, one, note("one", Some(1)));
    table.insert(tenant, two, note("two", None));
    table.insert(other, three, note("three", Some(3)));
    let mut tx = projector.begin().await.unwrap();
    assert_eq!(table.save(&mut tx, Target::Live).await.unwrap(), 3);
    tx.commit().await.unwrap();

    // A fresh batch loads what it asks for, each row under its own tenant.
    let mut batch = Table::<Note>::default();
    batch.want(tenant, &one);
    batch.want(other, &three);
    batch.want(other, &one); // tenant's key, other's tenant: not found
    let mut tx = projector.begin().await.unwrap();
    batch.load(&mut tx, Target::Live).await.unwrap();
    assert_eq!(batch.get(tenant, &one), Some(&note("one", Some(1))));
    assert_eq!(batch.get(other, &three), Some(&note("three", Some(3))));
    assert_eq!(batch.get(other, &one), None);
    assert_eq!(batch.len(), 2);

    batch.change(tenant, &one, |row| row.weight = None).unwrap();
    assert!(batch.remove(other, &three).is_some());
    assert_eq!(batch.save(&mut tx, Target::Live).await.unwrap(), 2);
    tx.commit().await.unwrap();

    let stored: Vec<(uuid::Uuid, uuid::Uuid, Option<i32>)> =
        sqlx::query_as("select tenant_id, note_id, weight from test_notes order by body")
            .fetch_all(&app.owner)
            .await
            .unwrap();
    assert_eq!(stored, vec![(tenant, one.0, None), (tenant, two.0, None)]);
}
