//! Kafka settings (design.md D4, D10) and the scale-out subcommands: `vextrus relay`,
//! `vextrus project` and `vextrus project skip`.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use tokio::sync::watch;
use tokio::task::JoinSet;
use vextrus::database;
use vextrus::server::RELAY_NAME;
use vextrus_commands::AGGREGATE_TYPES;
use vextrus_commands::{DbRole, LogReader};
use vextrus_fanout::{KafkaConfig, KafkaWorker, Relay};
use vextrus_projections::Projection;
use vextrus_projections::registry::{self, Visit};

use super::DatabaseArgs;

#[derive(Debug, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers (`host:port,...`). Set: `serve` runs only the API and the relay
    /// and workers run as `vextrus relay` / `vextrus project`. Any other `KAFKA_<KEY>` variable
    /// passes through to librdkafka (`KAFKA_SECURITY_PROTOCOL=SASL_SSL` → `security.protocol`).
    #[arg(long, env = "KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,

    /// Prefix of topic names; each aggregate type has its topic, e.g. `vextrus.organization`.
    #[arg(long, env = "KAFKA_TOPIC_PREFIX", default_value = KafkaConfig::DEFAULT_TOPIC_PREFIX)]
    pub kafka_topic_prefix: String,

    /// Partitions of the topics the relay creates on start (where the brokers allow it).
    #[arg(long, env = "KAFKA_TOPIC_PARTITIONS", default_value_t = KafkaConfig::DEFAULT_PARTITIONS)]
    pub kafka_topic_partitions: i32,

    /// Seconds a worker waits, after the relay's brokers acknowledged an event, for Kafka to
    /// deliver it before applying it from the log (0 to 3600).
    #[arg(long, env = "VEXTRUS_KAFKA_HEAL_AFTER_SECS", default_value_t = KafkaConfig::DEFAULT_HEAL_AFTER.as_secs())]
    pub kafka_heal_after_secs: u64,
}

impl KafkaArgs {
    /// The configuration for `brokers` (the configured ones, or an embedded cluster's).
    pub fn config(&self, brokers: &str) -> anyhow::Result<KafkaConfig> {
        let prefix = &self.kafka_topic_prefix;
        let valid = prefix.len() <= 200
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            bail!("KAFKA_TOPIC_PREFIX may contain only letters, digits, '.', '_' and '-'");
        }
        if !(1..=10_000).contains(&self.kafka_topic_partitions) {
            bail!("KAFKA_TOPIC_PARTITIONS must be between 1 and 10000");
        }
        if self.kafka_heal_after_secs > 3600 {
            bail!("VEXTRUS_KAFKA_HEAL_AFTER_SECS must be between 0 and 3600");
        }
        let mut config = KafkaConfig::new(brokers).with_environment(std::env::vars());
        config.topic_prefix = prefix.clone();
        config.partitions = self.kafka_topic_partitions;
        config.heal_after = std::time::Duration::from_secs(self.kafka_heal_after_secs);
        Ok(config)
    }

    /// The configured brokers' configuration; an error naming `KAFKA_BROKERS` when unset.
    fn required(&self, command: &str) -> anyhow::Result<KafkaConfig> {
        match self
            .kafka_brokers
            .as_deref()
            .filter(|b| !b.trim().is_empty())
        {
            Some(brokers) => self.config(brokers),
            None => bail!("KAFKA_BROKERS must be set for `vextrus {command}`"),
        }
    }
}

/// `vextrus project`: the Kafka workers, or an operator's action on them.
#[derive(Debug, Args)]
pub struct ProjectArgs {
    #[command(subcommand)]
    action: Option<ProjectAction>,

    #[command(flatten)]
    kafka: KafkaArgs,
}

#[derive(Debug, Subcommand)]
enum ProjectAction {
    /// Skip a poison event deliberately: the worker owning its partition records it as applied
    /// without applying it, and resumes the partition. The read model will lack that event's
    /// effect; replay the projection once its code is fixed.
    Skip {
        /// The projection whose partition is stopped, e.g. `organization_hierarchy`.
        projection: String,
        /// The poison event's log position (in the worker's log, `/health/ready`, and
        /// `projection_poison_events`).
        #[arg(long)]
        position: i64,
    },
}

impl ProjectArgs {
    pub async fn run(
        &self,
        database: &DatabaseArgs,
        metrics_listen: Option<SocketAddr>,
    ) -> anyhow::Result<()> {
        match &self.action {
            None => project(database, &self.kafka, metrics_listen).await,
            Some(ProjectAction::Skip {
                projection,
                position,
            }) => skip(database, projection, *position).await,
        }
    }
}

/// `vextrus project skip`: asks the workers to skip the poison event at `position`.
async fn skip(database: &DatabaseArgs, projection: &str, position: i64) -> anyhow::Result<()> {
    registry::known(projection)?;
    let (options, cluster) = database.open_for_operator().await?;
    let result = async {
        let pool = database::role_pool(&options, DbRole::Projector, 1).await?;
        if let Some(event) = vextrus_fanout::request_skip(&pool, projection, position).await? {
            println!(
                "skip requested: {projection} at log position {position} (topic {}, partition {}, offset {}; \
                 stopped because: {}). The worker owning the partition resumes within seconds.",
                event.topic, event.kafka_partition, event.kafka_offset, event.reason
            );
            return Ok(());
        }
        let stopped: Vec<i64> = vextrus_fanout::poison_events(&pool, projection)
            .await?
            .into_iter()
            .filter(|event| !event.skip_requested)
            .map(|event| event.global_position)
            .collect();
        if stopped.is_empty() {
            bail!("{projection} is not stopped on any poison event");
        }
        bail!(
            "{projection} did not stop at log position {position}; it is stopped at log positions {stopped:?}"
        )
    }
    .await;
    super::stop(cluster).await;
    result
}

/// The database of a scale-out process: always a configured server, shared with the API.
async fn shared_database(
    database: &DatabaseArgs,
    command: &str,
) -> anyhow::Result<sqlx::postgres::PgConnectOptions> {
    database.external()?.with_context(|| {
        format!("DATABASE_URL must be set for `vextrus {command}`: it runs beside `vextrus serve` on the same database")
    })
}

/// `vextrus relay`: produces the log to Kafka until Ctrl-C; a second instance waits as a standby.
pub async fn relay(
    database: &DatabaseArgs,
    kafka: &KafkaArgs,
    metrics_listen: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let config = kafka.required("relay")?;
    let options = shared_database(database, "relay").await?;
    database::migrate(&options)
        .await
        .context("applying migrations")?;
    let pool = database::role_pool(&options, DbRole::Projector, 4).await?;
    serve_metrics(metrics_listen, &pool).await?;
    vextrus_fanout::create_topics(&config, AGGREGATE_TYPES).await;
    let log = LogReader::new(database::log_reader_pool(&options, 2).await?);
    let relay = Relay::new(RELAY_NAME, pool, log, config);
    relay.run(super::serve::shutdown_signal()).await?;
    Ok(())
}

/// `vextrus project`: runs every projection, each as a member of its own Kafka consumer group,
/// until Ctrl-C. Start as many as there are partitions to share.
async fn project(
    database: &DatabaseArgs,
    kafka: &KafkaArgs,
    metrics_listen: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let config = kafka.required("project")?;
    let options = shared_database(database, "project").await?;
    database::migrate(&options)
        .await
        .context("applying migrations")?;
    let pool = database::role_pool(&options, DbRole::Projector, 4).await?;
    serve_metrics(metrics_listen, &pool).await?;
    // A projection whose version changed is rebuilt first (by one worker; the others wait).
    let owner = sqlx::PgPool::connect_with(options.clone()).await?;
    let (stop, stopped) = watch::channel(false);
    let mut workers = JoinSet::new();
    let log = LogReader::new(database::log_reader_pool(&options, 4).await?);
    registry::each(&mut StartWorker {
        pool,
        log,
        owner: owner.clone(),
        config,
        stopped,
        workers: &mut workers,
    });
    // Until Ctrl-C, or until a worker stops on its own (it failed): then all stop.
    let mut failed = None;
    tokio::select! {
        () = super::serve::shutdown_signal() => {}
        Some(finished) = workers.join_next() => record(finished, &mut failed),
    }
    stop.send_replace(true);
    while let Some(finished) = workers.join_next().await {
        record(finished, &mut failed);
    }
    owner.close().await;
    failed.map_or(Ok(()), Err)
}

/// Serves `GET /metrics` on `address` (when set) until Ctrl-C: the fan-out's own metrics, and
/// what the database says of the log, the projections and the relay.
async fn serve_metrics(address: Option<SocketAddr>, pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let Some(address) = address else {
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("VEXTRUS_METRICS_LISTEN: cannot listen on {address}"))?;
    vextrus_api::metrics::handle();
    vextrus_fanout::metrics::describe();
    let source = vextrus_api::metrics::MetricsSource::new(pool.clone());
    tokio::spawn(async move {
        if let Err(error) =
            vextrus_api::metrics::serve(listener, source, super::serve::shutdown_signal()).await
        {
            tracing::error!(%error, "serving metrics");
        }
    });
    tracing::info!(%address, "metrics on /metrics");
    Ok(())
}

/// Keeps the first failure of a finished worker.
fn record(
    finished: Result<anyhow::Result<()>, tokio::task::JoinError>,
    failed: &mut Option<anyhow::Error>,
) {
    let outcome = finished
        .unwrap_or_else(|panic| Err(anyhow::anyhow!("a projection worker panicked: {panic}")));
    if let Err(error) = outcome {
        tracing::error!(error = format!("{error:#}"), "projection worker failed");
        failed.get_or_insert(error);
    }
}

/// Starts one projection's Kafka worker (after a rebuild if its version changed) as a task that
/// runs until `stopped` turns true.
struct StartWorker<'a> {
    pool: sqlx::PgPool,
    log: LogReader,
    owner: sqlx::PgPool,
    config: KafkaConfig,
    stopped: watch::Receiver<bool>,
    workers: &'a mut JoinSet<anyhow::Result<()>>,
}

impl Visit for StartWorker<'_> {
    type Output = ();

    fn visit<P: Projection + Clone>(&mut self, projection: P) {
        let (pool, log, owner, config) = (
            self.pool.clone(),
            self.log.clone(),
            self.owner.clone(),
            self.config.clone(),
        );
        let mut stopped = self.stopped.clone();
        self.workers.spawn(async move {
            vextrus_replay::rebuild_if_outdated(projection.clone(), owner, log.clone(), |_| {})
                .await
                .with_context(|| format!("rebuilding {} for its new version", P::NAME))?;
            let worker = KafkaWorker::new(projection, pool, log, config);
            worker
                .run(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await?;
            Ok(())
        });
    }
}
