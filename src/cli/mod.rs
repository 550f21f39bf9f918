//! Subcommands and their configuration. Every option can come from the environment (design.md
//! D10), and every secret also from a file (`*_FILE`).

mod analyst;
mod audit;
mod bench;
mod http_bench;
mod kafka;
mod keys;
mod lag;
mod ledger_bench;
mod replay;
mod replay_bench;
mod scale_bench;
mod serve;
mod tenant;

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use vextrus::database;
use vextrus::postgres::{PostgresOptions, PrivatePostgres};

/// Vextrus: a multi-tenant, event-sourced ERP backend for construction companies.
#[derive(Debug, Parser)]
#[command(name = "vextrus", version)]
pub struct Cli {
    #[command(flatten)]
    database: DatabaseArgs,

    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `info,vextrus_commands=debug`.
    #[arg(
        long,
        env = "VEXTRUS_LOG",
        default_value = "info,sqlx=warn",
        global = true
    )]
    pub log: String,

    /// Log lines as `text` (colours only on a terminal) or `json` (one object per line, with the
    /// current span's fields: request, tenant, command and correlation ids).
    #[arg(
        long,
        env = "VEXTRUS_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    pub log_format: LogFormat,

    /// Serve `GET /metrics` on this address instead of the API port (`serve`); `relay` and
    /// `project` serve it only when this is set.
    #[arg(long, env = "VEXTRUS_METRICS_LISTEN", global = true)]
    pub metrics_listen: Option<String>,

    #[command(subcommand)]
    command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Vextrus: migrate, then serve the HTTP API and run the projections, until Ctrl-C.
    Serve(Box<serve::ServeArgs>),
    /// Print a signed bearer token for the API.
    Token(serve::TokenArgs),
    /// Scale-out: produce the event log to Kafka (needs KAFKA_BROKERS and DATABASE_URL).
    Relay(kafka::KafkaArgs),
    /// Scale-out: run the projections as Kafka consumers (needs KAFKA_BROKERS and DATABASE_URL);
    /// `project skip` skips a poison event.
    Project(kafka::ProjectArgs),
    /// Rebuild a projection's read model from the log, without downtime (all tenants or one).
    Replay(replay::ReplayArgs),
    /// Operators' view of the projections.
    #[command(subcommand)]
    Projections(replay::ProjectionsCommand),
    /// Tamper evidence for the event log: verify the hash chains, sign checkpoints.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Measure performance and print the figures.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Analysts' SQL roles, each bound to one tenant (psql, BI tools).
    #[command(subcommand)]
    Analyst(analyst::AnalystCommand),
    /// Tenants (platform operators): register with a first administrator, suspend, resume.
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// The Ed25519 keys that sign access tokens: rotate, list.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
}

/// Where the data lives.
#[derive(Debug, Args)]
struct DatabaseArgs {
    /// PostgreSQL connection URL. When unset, Vextrus runs a private PostgreSQL under the data
    /// directory, started from the installed server binaries.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    database_url: Option<String>,

    /// A file holding the PostgreSQL connection URL (for secrets mounted as files).
    #[arg(
        long,
        env = "DATABASE_URL_FILE",
        global = true,
        conflicts_with = "database_url"
    )]
    database_url_file: Option<PathBuf>,

    /// Directory for local state: the private PostgreSQL cluster lives in `<data-dir>/pg`.
    #[arg(
        long,
        env = "VEXTRUS_DATA_DIR",
        default_value = ".vextrus",
        global = true
    )]
    data_dir: PathBuf,
}

/// The database name used in a private cluster.
const PRIVATE_DATABASE: &str = "vextrus";

impl DatabaseArgs {
    /// The configured server, if any: `DATABASE_URL`, else the contents of `DATABASE_URL_FILE`.
    fn external(&self) -> anyhow::Result<Option<PgConnectOptions>> {
        let (url, variable) = match (&self.database_url, &self.database_url_file) {
            (Some(url), _) => (url.clone(), "DATABASE_URL"),
            (None, Some(file)) => {
                let url = std::fs::read_to_string(file).with_context(|| {
                    format!("DATABASE_URL_FILE: cannot read {}", file.display())
                })?;
                (url.trim().to_owned(), "DATABASE_URL_FILE")
            }
            (None, None) => return Ok(None),
        };
        if url.is_empty() {
            bail!("{variable} is set but empty");
        }
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            bail!("{variable} must be a postgres:// or postgresql:// URL");
        }
        let options = url
            .parse::<PgConnectOptions>()
            .with_context(|| format!("{variable} is not a valid postgres:// URL"))?;
        Ok(Some(options))
    }

    /// The application database: the configured server, or the private cluster under the data
    /// directory (started, and created on first use). The cluster, if any, must be stopped by the
    /// caller.
    async fn open(&self) -> anyhow::Result<(PgConnectOptions, Option<PrivatePostgres>)> {
        if let Some(options) = self.external()? {
            return Ok((options, None));
        }
        let pg_dir = self.data_dir.join("pg");
        tracing::info!(data_dir = %pg_dir.display(), "DATABASE_URL is not set: starting a private PostgreSQL");
        let options = PostgresOptions::persistent(pg_dir);
        let cluster = tokio::task::spawn_blocking(move || PrivatePostgres::start(&options))
            .await?
            .context("starting the private PostgreSQL")?;
        let mut admin = PgConnection::connect_with(&cluster.connect_options("postgres")).await?;
        let exists: bool =
            sqlx::query_scalar("select exists (select from pg_database where datname = $1)")
                .bind(PRIVATE_DATABASE)
                .fetch_one(&mut admin)
                .await?;
        if !exists {
            sqlx::query(&format!("create database {PRIVATE_DATABASE}"))
                .execute(&mut admin)
                .await?;
        }
        admin.close().await?;
        tracing::info!(url = %cluster.url(PRIVATE_DATABASE), "private PostgreSQL is running");
        Ok((cluster.connect_options(PRIVATE_DATABASE), Some(cluster)))
    }
}

impl DatabaseArgs {
    /// The migrated database for an operator's command that runs beside `vextrus serve`, and the
    /// private cluster if it had to start one (stop it when done).
    async fn open_for_operator(
        &self,
    ) -> anyhow::Result<(PgConnectOptions, Option<PrivatePostgres>)> {
        let (options, cluster) = self.open().await.context(
            "opening the database (while `vextrus serve` runs on its private PostgreSQL, set \
             DATABASE_URL to the URL it logged at start)",
        )?;
        if let Err(error) = database::migrate(&options).await {
            stop(cluster).await;
            return Err(error).context("applying migrations");
        }
        Ok((options, cluster))
    }
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Serve(serve) => {
                serve
                    .run(&self.database, metrics_listen(&self.metrics_listen)?)
                    .await
            }
            Command::Token(token) => token.run(&self.database.data_dir),
            Command::Relay(kafka) => {
                kafka::relay(
                    &self.database,
                    &kafka,
                    metrics_listen(&self.metrics_listen)?,
                )
                .await
            }
            Command::Project(project) => {
                project
                    .run(&self.database, metrics_listen(&self.metrics_listen)?)
                    .await
            }
            Command::Replay(replay) => replay.run(&self.database).await,
            Command::Projections(projections) => projections.run(&self.database).await,
            Command::Audit(audit) => audit.run(&self.database).await,
            Command::Migrate => {
                let (options, cluster) = self.database.open().await?;
                let result = database::migrate(&options)
                    .await
                    .context("applying migrations");
                if result.is_ok() {
                    println!(
                        "migrations applied ({} in total)",
                        database::MIGRATOR.iter().count()
                    );
                }
                stop(cluster).await;
                result
            }
            Command::Bench(bench) => bench.run(self.database.external()?).await,
            Command::Analyst(analyst) => analyst.run(&self.database).await,
            Command::Tenant(tenant) => tenant.run(&self.database).await,
            Command::Keys(keys) => keys.run(&self.database.data_dir),
        }
    }
}

/// Stops a private cluster, logging rather than failing: the work is already done.
async fn stop(cluster: Option<PrivatePostgres>) {
    if let Some(cluster) = cluster {
        match tokio::task::spawn_blocking(move || cluster.stop()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "stopping the private PostgreSQL"),
            Err(error) => tracing::warn!(%error, "stopping the private PostgreSQL"),
        }
    }
}

/// `VEXTRUS_METRICS_LISTEN` as an address, or an error naming the variable.
fn metrics_listen(value: &Option<String>) -> anyhow::Result<Option<std::net::SocketAddr>> {
    value
        .as_deref()
        .map(|text| {
            text.parse().map_err(|_| {
                anyhow::anyhow!(
                    "VEXTRUS_METRICS_LISTEN (--metrics-listen) must be an address like 127.0.0.1:9464, not {text:?}"
                )
            })
        })
        .transpose()
}
