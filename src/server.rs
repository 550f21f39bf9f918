//! The running system: the HTTP API and the projection runners in one process under one
//! shutdown (design.md D4 single-node fan-out, D10). `vextrus serve` and the end-to-end tests
//! start it the same way.
//!
//! Shutdown order: the API stops accepting and finishes the requests in flight (a query waiting
//! for `min_position` still sees projections advance), then the runners finish their current
//! batch and commit, then the pools close.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vextrus_api::health::{ProjectionCheck, RelayCheck};
use vextrus_api::metrics::MetricsSource;
use vextrus_api::{ApiSettings, AppState, Background, JwtKeys};
use vextrus_commands::{DbRole, EventStore, LogReader};
use vextrus_fanout::{KafkaConfig, KafkaWorker, Relay, RelayStatus, WorkerStatus};
use vextrus_projections::registry::{self, Visit};
use vextrus_projections::{Projection, ProjectionRunner};
use vextrus_replay::{Progress, rebuild_if_outdated};

use crate::database;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("connecting to the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("serving HTTP: {0}")]
    Http(#[from] std::io::Error),
    #[error(transparent)]
    Projection(#[from] vextrus_projections::RunnerError),
    #[error(transparent)]
    Relay(#[from] vextrus_fanout::RelayError),
    #[error(transparent)]
    Worker(#[from] vextrus_fanout::WorkerError),
    #[error(transparent)]
    Rebuild(#[from] vextrus_replay::ReplayError),
    #[error("a server task panicked: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The name of the relay (its lock and checkpoint).
pub const RELAY_NAME: &str = vextrus_fanout::MAIN_RELAY;

/// How committed events reach the projections (design.md D4).
#[derive(Debug, Clone)]
pub enum Fanout {
    /// The projection runner tails the log in this process: the single-node default.
    InProcess,
    /// The relay and a Kafka worker per projection run in this process against these brokers
    /// (e.g. the embedded mock cluster of `serve --embedded-kafka`), whose topics exist.
    Kafka(KafkaConfig),
    /// Projections run elsewhere (`vextrus relay` and `vextrus project` processes); this
    /// process serves the API only.
    Elsewhere,
}

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub keys: JwtKeys,
    pub api: ApiSettings,
    /// Where projections run. `Elsewhere` also suits tests that need a read model that does not
    /// move.
    pub fanout: Fanout,
    /// Connections per pool (writer, reader); the projector pool is smaller.
    pub max_connections: u32,
    /// `GET /metrics` on a listener of its own (`VEXTRUS_METRICS_LISTEN`) instead of the API port.
    pub metrics_listen: Option<SocketAddr>,
}

impl ServerConfig {
    pub fn new(keys: JwtKeys) -> Self {
        Self {
            keys,
            api: ApiSettings::default(),
            fanout: Fanout::InProcess,
            max_connections: 16,
            metrics_listen: None,
        }
    }
}

/// A started server. Stop it with [`Server::shutdown`] or [`Server::run_until`].
pub struct Server {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), ServerError>>,
}

impl Server {
    /// Connects the pools (one per database role) on the migrated database `database`, starts
    /// the projection runners and serves the API on `listener`.
    pub async fn start(
        database: &PgConnectOptions,
        listener: TcpListener,
        mut config: ServerConfig,
    ) -> Result<Self, ServerError> {
        // The metrics recorder first, so that the relay and the workers count from the start.
        vextrus_api::metrics::handle();
        vextrus_fanout::metrics::describe();
        let metrics_listener = match config.metrics_listen {
            Some(address) => {
                config.api.metrics_on_api_port = false;
                Some(TcpListener::bind(address).await?)
            }
            None => None,
        };
        let pool_size = config.max_connections.max(2);
        let writer = database::role_pool(database, DbRole::Writer, pool_size).await?;
        let reader = database::role_pool(database, DbRole::Reader, pool_size).await?;
        let projector = database::role_pool(database, DbRole::Projector, 4).await?;
        // Replays create and swap tables: the owner's connections, only opened for a version
        // rebuild.
        let owner = PgPoolOptions::new()
            .max_connections(3)
            .connect_lazy_with(database.clone());
        let store = EventStore::new(writer);

        let (stop_runners, runners_stopped) = watch::channel(false);
        let mut runners: Vec<JoinHandle<Result<(), ServerError>>> = Vec::new();
        let mut background = Background::default();
        let log_pool = database::log_reader_pool(database, 4).await?;
        let log = LogReader::new(log_pool.clone()).with_wakeup(store.append_signal());
        let (statistics_owner, statistics_stopped) =
            (owner.clone(), signalled(runners_stopped.clone()));
        runners.push(tokio::spawn(async move {
            database::keep_log_statistics(statistics_owner, statistics_stopped).await;
            Ok(())
        }));
        let kafka = match &config.fanout {
            Fanout::InProcess => None,
            Fanout::Kafka(kafka) => {
                let relay = Relay::new(RELAY_NAME, projector.clone(), log.clone(), kafka.clone());
                let status = relay.status();
                background.relay = Some(Arc::new(move || relay_check(&status.borrow())));
                let stopped = signalled(runners_stopped.clone());
                runners.push(tokio::spawn(async move { Ok(relay.run(stopped).await?) }));
                Some(kafka.clone())
            }
            Fanout::Elsewhere => None,
        };
        if !matches!(config.fanout, Fanout::Elsewhere) {
            runners.extend(registry::each(&mut StartProjection {
                kafka,
                projector: projector.clone(),
                owner,
                log,
                stop: runners_stopped,
                background: &mut background,
            }));
        }

        config.api.latest_migration = database::latest_migration();
        let metrics_source = MetricsSource::new(projector.clone())
            .with_pool("writer", store.pool().clone())
            .with_pool("reader", reader.clone())
            .with_pool("log_reader", log_pool);
        let state = AppState::new(
            store,
            reader,
            projector,
            config.keys,
            background,
            config.api,
        );
        let local_addr = listener.local_addr()?;
        let (stop, http_stopped) = watch::channel(false);
        let metrics = metrics_listener.map(|listener| {
            tokio::spawn(vextrus_api::metrics::serve(
                listener,
                metrics_source,
                signalled(http_stopped.clone()),
            ))
        });
        let task = tokio::spawn(async move {
            let served = vextrus_api::serve(listener, state, signalled(http_stopped)).await;
            if let Some(metrics) = metrics {
                metrics.await??;
            }
            // The API has drained; now let the runners commit their batch and stop.
            stop_runners.send_replace(true);
            for runner in runners {
                runner.await??;
            }
            served.map_err(ServerError::from)
        });
        tracing::info!(%local_addr, "API listening");
        Ok(Self {
            local_addr,
            stop,
            task,
        })
    }

    /// Where the API listens (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops gracefully and waits until everything has stopped.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        self.stop.send_replace(true);
        self.task.await?
    }

    /// Runs until `signal` completes (then shuts down gracefully) or the server fails.
    pub async fn run_until(mut self, signal: impl Future<Output = ()>) -> Result<(), ServerError> {
        tokio::select! {
            () = signal => {}
            finished = &mut self.task => return finished?,
        }
        self.shutdown().await
    }
}

/// Starts a registered projection's live component in this process: its single-node runner, or
/// (with `kafka`) its Kafka worker; each after a rebuild if its version changed.
struct StartProjection<'a> {
    kafka: Option<KafkaConfig>,
    projector: PgPool,
    owner: PgPool,
    log: LogReader,
    stop: watch::Receiver<bool>,
    background: &'a mut Background,
}

impl Visit for StartProjection<'_> {
    type Output = JoinHandle<Result<(), ServerError>>;

    fn visit<P: Projection + Clone>(&mut self, projection: P) -> Self::Output {
        let (owner, log, stop) = (self.owner.clone(), self.log.clone(), self.stop.clone());
        match &self.kafka {
            None => {
                let runner =
                    ProjectionRunner::new(projection.clone(), self.projector.clone(), log.clone());
                self.background.runners.push(runner.status());
                let run = |stopped| async move { Ok(runner.run(signalled(stopped)).await?) };
                tokio::spawn(rebuild_then_run(
                    self.background,
                    projection,
                    owner,
                    log,
                    stop,
                    run,
                ))
            }
            Some(kafka) => {
                let worker = KafkaWorker::new(
                    projection.clone(),
                    self.projector.clone(),
                    log.clone(),
                    kafka.clone(),
                );
                let status = worker.status();
                self.background
                    .projections
                    .push(Arc::new(move || worker_check(P::NAME, &status.borrow())));
                let run = |stopped| async move { Ok(worker.run(signalled(stopped)).await?) };
                tokio::spawn(rebuild_then_run(
                    self.background,
                    projection,
                    owner,
                    log,
                    stop,
                    run,
                ))
            }
        }
    }
}

/// A Kafka worker as readiness reports it: stopped while any of its partitions waits on a
/// poison event.
fn worker_check(projection: &str, status: &WorkerStatus) -> ProjectionCheck {
    let (state, detail) = match (status.running, status.stopped_on.first()) {
        (false, _) => ("starting", None),
        (true, None) => ("running", None),
        (true, Some(first)) => (
            "stopped",
            Some(format!(
                "partitions stopped on poison events at log positions {:?}; \
                 skip one with `vextrus project skip {projection} --position {first}`",
                status.stopped_on
            )),
        ),
    };
    let detail = detail.or_else(|| {
        (status.missing_events > 0).then(|| {
            format!(
                "{} events of the log after position {} not applied yet",
                status.missing_events, status.covered_position
            )
        })
    });
    ProjectionCheck {
        name: projection.to_owned(),
        state: state.to_owned(),
        position: status.covered_position,
        detail,
    }
}

fn relay_check(status: &RelayStatus) -> RelayCheck {
    RelayCheck {
        state: if status.active { "active" } else { "standby" }.to_owned(),
        position: status.position.global_position,
        events_relayed: status.events_relayed,
    }
}

/// The task that runs a projection's live component (`run`) once its read model is at this
/// build's version: rebuilt first if it is not, while the old tables serve reads. The rebuild's
/// progress is registered in `background`, where readiness reports it.
fn rebuild_then_run<P, R, F>(
    background: &mut Background,
    projection: P,
    owner: PgPool,
    log: LogReader,
    stop: watch::Receiver<bool>,
    run: R,
) -> impl Future<Output = Result<(), ServerError>> + use<P, R, F>
where
    P: Projection + Clone,
    R: FnOnce(watch::Receiver<bool>) -> F,
    F: Future<Output = Result<(), ServerError>>,
{
    let (rebuild, progress) = watch::channel(None);
    background.rebuilds.push((P::NAME, progress));
    when_current(projection, owner, log, rebuild, stop, run)
}

/// [`rebuild_then_run`]'s task. Returns early if the server stops during the rebuild (the live
/// tables stay untouched).
async fn when_current<P, F>(
    projection: P,
    owner: PgPool,
    log: LogReader,
    rebuild: watch::Sender<Option<Progress>>,
    mut stop: watch::Receiver<bool>,
    run: impl FnOnce(watch::Receiver<bool>) -> F,
) -> Result<(), ServerError>
where
    P: Projection + Clone,
    F: Future<Output = Result<(), ServerError>>,
{
    let report = |progress: &Progress| {
        rebuild.send_replace(Some(*progress));
    };
    tokio::select! {
        rebuilt = rebuild_if_outdated(projection, owner, log, report) => {
            rebuild.send_replace(None);
            rebuilt?;
        }
        _ = stop.wait_for(|stop| *stop) => return Ok(()),
    }
    run(stop).await
}

/// Completes once `flag` turns true (or its sender is gone).
async fn signalled(mut flag: watch::Receiver<bool>) {
    let _ = flag.wait_for(|stop| *stop).await;
}
