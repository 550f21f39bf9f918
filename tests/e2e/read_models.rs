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
                            and p.qual = '(tenant_id = vextrus_current_tenant())'
                            and p.with_check = '(tenant_id = vextrus_current_tenant())')
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
