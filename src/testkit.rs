//! Test fixtures: a fresh, migrated database for every test.
//!
//! The first test of a process starts one throwaway cluster ([`crate::postgres`]) and migrates a
//! template database; every test then gets its own database cloned from the template, so tests
//! run in parallel without seeing each other's rows. Several test processes at once each have
//! their own cluster. With `TEST_DATABASE_URL` set, that server is used instead (its user must be
//! allowed to create databases and roles); the databases made there are left behind.
//!
//! Only tests use this module.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::OnceCell;
use vextrus_commands::DbRole;

use crate::database;
use crate::postgres::{Durability, PostgresOptions, PrivatePostgres};

#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    #[error(transparent)]
    Postgres(#[from] crate::postgres::PostgresError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("TEST_DATABASE_URL is not a valid PostgreSQL URL: {0}")]
    BadUrl(sqlx::Error),
}

/// The server the tests of this process share, and the migrated template on it.
struct TestServer {
    /// Connection options for the server's maintenance database (`postgres`).
    admin: PgConnectOptions,
    /// A database's URL is `url_prefix + name + url_suffix` (for child processes).
    url_prefix: String,
    url_suffix: String,
    template: String,
    /// Kept alive for the whole process; its watchdog stops it when the process ends.
    _cluster: Option<PrivatePostgres>,
}

static SERVER: OnceCell<TestServer> = OnceCell::const_new();
static DATABASE_COUNTER: AtomicU64 = AtomicU64::new(0);

async fn server() -> Result<&'static TestServer, TestkitError> {
    SERVER
        .get_or_try_init(|| async {
            let (admin, (url_prefix, url_suffix), cluster) =
                match std::env::var("TEST_DATABASE_URL") {
                    Ok(url) => (
                        url.parse::<PgConnectOptions>()
                            .map_err(TestkitError::BadUrl)?,
                        split_around_database(&url),
                        None,
                    ),
                    Err(_) => {
                        let cluster = tokio::task::spawn_blocking(|| {
                            PrivatePostgres::start(&PostgresOptions::throwaway(
                                Durability::Throwaway,
                            ))
                        })
                        .await
                        .map_err(|join| sqlx::Error::Protocol(join.to_string()))??;
                        (
                            cluster.connect_options("postgres"),
                            (cluster.url(""), String::new()),
                            Some(cluster),
                        )
                    }
                };
            let template = format!("vextrus_template_{}", uuid::Uuid::now_v7().simple());
            let mut conn = PgConnection::connect_with(&admin).await?;
            sqlx::query(&format!("create database {template}"))
                .execute(&mut conn)
                .await?;
            conn.close().await?;
            database::migrate(&admin.clone().database(&template)).await?;
            Ok(TestServer {
                admin,
                url_prefix,
                url_suffix,
                template,
                _cluster: cluster,
            })
        })
        .await
}

/// A database of its own for one test, migrated, with a pool per role.
pub struct TestDatabase {
    pub name: String,
    /// Connects as the owner (the server's superuser in a private cluster).
    pub options: PgConnectOptions,
    /// The same as a `postgres://` URL, for a child process's `DATABASE_URL`.
    pub url: String,
}

/// `postgres://user@host/db?opts` → (`postgres://user@host/`, `?opts`).
fn split_around_database(url: &str) -> (String, String) {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let prefix = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash + 1],
        None => return (format!("{base}/"), query.to_owned()),
    };
    (prefix.to_owned(), query.to_owned())
}

impl TestDatabase {
    /// Clones the migrated template into a new database.
    pub async fn new() -> Result<Self, TestkitError> {
        let server = server().await?;
        let name = format!(
            "vextrus_test_{}_{}_{}",
            std::process::id(),
            DATABASE_COUNTER.fetch_add(1, Ordering::Relaxed),
            &uuid::Uuid::now_v7().simple().to_string()[..8]
        );
        let mut conn = PgConnection::connect_with(&server.admin).await?;
        sqlx::query(&format!(
            "create database {name} template {}",
            server.template
        ))
        .execute(&mut conn)
        .await?;
        conn.close().await?;
        Ok(Self {
            options: server.admin.clone().database(&name),
            url: format!("{}{name}{}", server.url_prefix, server.url_suffix),
            name,
        })
    }

    /// A pool connected as the owner of the tables.
    pub async fn owner_pool(&self) -> Result<PgPool, sqlx::Error> {
        PgPool::connect_with(self.options.clone()).await
    }

    /// A pool whose connections act as `role`.
    pub async fn role_pool(
        &self,
        role: DbRole,
        max_connections: u32,
    ) -> Result<PgPool, sqlx::Error> {
        database::role_pool(&self.options, role, max_connections).await
    }

    /// A pool for a [`LogReader`](vextrus_commands::LogReader), as `serve` opens it.
    pub async fn log_reader_pool(&self, max_connections: u32) -> Result<PgPool, sqlx::Error> {
        database::log_reader_pool(&self.options, max_connections).await
    }
}
