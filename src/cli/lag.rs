//! `vextrus bench lag`: how long after a command commits its effect is visible in the read
//! model, for the single-node runner and for the Kafka path (relay → broker → worker, on the
//! embedded mock cluster), at a fixed command rate, in one run.
//!
//! Each path gets a fresh database, whose log's planner statistics are kept current as `serve`
//! keeps them ([`database::keep_log_statistics`]). The driver renames `--streams` organizations
//! round robin at `--rate` commands/s for `--seconds`; a monitor reads
//! `org_organizations.version` every millisecond (as `vextrus_reader`, like the API) and pairs
//! each newly visible version with the instant its command returned. Latency is visible-at minus
//! committed-at, measured identically for both paths.
//!
//! Then the Kafka worker's catch-up: stopped while 20,000 events are relayed, a new worker of the
//! same group is timed from the first of them visible to the last ([`catch_up`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::oneshot;
use uuid::Uuid;
use vextrus::database;
use vextrus_commands::{
    ActorId, CommandMetadata, DbRole, EventStore, ExecuteError, LogReader, Version, tenant,
};
use vextrus_domain::TenantId;
use vextrus_domain::ids::OrganizationId;
use vextrus_domain::organization::{NewOrganization, Organization, OrganizationCommand};
use vextrus_domain::values::{Bin, Code, CurrencyCode, FiscalYearStart, Name, Tin};
use vextrus_fanout::{EmbeddedKafka, KafkaConfig, KafkaWorker, Relay};
use vextrus_projections::ProjectionRunner;
use vextrus_projections::organization::OrganizationHierarchy;

use super::bench::percentile_ms;

#[derive(Debug, Args)]
pub struct LagArgs {
    /// Commands per second.
    #[arg(long, default_value_t = 500)]
    rate: u32,
    /// Measured seconds per path.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Organizations renamed round robin.
    #[arg(long, default_value_t = 200)]
    streams: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    SingleNode,
    Kafka,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Self::SingleNode => "single-node",
            Self::Kafka => "kafka",
        }
    }
}

pub async fn lag(args: LagArgs, external: Option<PgConnectOptions>) -> anyhow::Result<()> {
    if !(1..=20_000).contains(&args.rate) {
        bail!("--rate must be between 1 and 20000 commands/s");
    }
    if !(args.seconds > 0.0 && args.seconds <= 3600.0) || args.streams == 0 {
        bail!("--seconds must be in (0, 3600] and --streams at least 1");
    }
    let (admin, cluster) = super::bench::bench_server(external).await?;
    println!(
        "lag at {} commands/s for {} s per path, {} streams",
        args.rate, args.seconds, args.streams
    );
    let mut results = Vec::new();
    let mut catch_up_rate = 0.0;
    for path in [Path::SingleNode, Path::Kafka] {
        let Measured {
            mut latencies,
            catch_up,
        } = measure(&admin, path, &args).await?;
        let commands = latencies.len();
        let mut p = |q: f64| percentile_ms(&mut latencies, q);
        println!(
            "{:>12}: {} commands, p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            path.name(),
            commands,
            p(0.50),
            p(0.95),
            p(0.99),
            p(1.0)
        );
        results.push(p(0.99));
        if let Some(catch_up) = catch_up {
            println!(
                "{:>12}  a worker stopped while {} events were relayed, then started: it applied them in {:.2} s, {:.0} events/s",
                "",
                catch_up.events,
                catch_up.seconds,
                catch_up.rate()
            );
            catch_up_rate = catch_up.rate();
        }
    }
    println!(
        "lag p99: single-node={:.0}ms kafka={:.0}ms at {} commands/s; kafka catch-up={:.0} events/s",
        results[0], results[1], args.rate, catch_up_rate
    );
    super::stop(cluster).await;
    Ok(())
}

/// Commit and visibility instants, paired by (stream index, version), whichever comes first.
#[derive(Default)]
struct Pairing {
    committed: HashMap<(usize, i64), Instant>,
    seen: HashMap<(usize, i64), Instant>,
    latencies: Vec<Duration>,
}

impl Pairing {
    fn committed(&mut self, key: (usize, i64), at: Instant) {
        match self.seen.remove(&key) {
            Some(seen) => self.latencies.push(seen.saturating_duration_since(at)),
            None => drop(self.committed.insert(key, at)),
        }
    }

    fn seen(&mut self, key: (usize, i64), at: Instant) {
        match self.committed.remove(&key) {
            Some(committed) => self.latencies.push(at.saturating_duration_since(committed)),
            None => drop(self.seen.insert(key, at)),
        }
    }
}

async fn measure(admin: &PgConnectOptions, path: Path, args: &LagArgs) -> anyhow::Result<Measured> {
    let name = super::bench::fresh_database(
        admin,
        &format!("vextrus_lag_{}", path.name().replace('-', "_")),
    )
    .await?;
    let options = admin.clone().database(&name);
    database::migrate(&options).await?;
    let writer = database::role_pool(&options, DbRole::Writer, 16).await?;
    let projector = database::role_pool(&options, DbRole::Projector, 4).await?;
    let reader = database::role_pool(&options, DbRole::Reader, 2).await?;
    let store = EventStore::new(writer);
    let log = LogReader::new(database::log_reader_pool(&options, 4).await?)
        .with_wakeup(store.append_signal());
    // As `serve` does beside its log readers.
    let owner = PgPool::connect_with(options.clone()).await?;
    let statistics = Fanout::start(move |stopped| async move {
        database::keep_log_statistics(owner, stopped).await;
        Ok(())
    });

    let mut embedded = None;
    let mut relay = None;
    let (fanout, kafka) = match path {
        Path::SingleNode => {
            let runner = ProjectionRunner::new(OrganizationHierarchy, projector, log);
            (
                Fanout::start(move |stopped| async move { Ok(runner.run(stopped).await?) }),
                None,
            )
        }
        Path::Kafka => {
            let kafka = EmbeddedKafka::start(1)?;
            let config =
                KafkaConfig::new(kafka.bootstrap_servers()).with_environment(std::env::vars());
            kafka.create_topic(&config.topic("organization"), 6)?;
            embedded = Some(kafka);
            let started = Relay::new("lag", projector.clone(), log.clone(), config.clone());
            let relayed = started.status();
            relay = Some((
                Fanout::start(move |stopped| async move { Ok(started.run(stopped).await?) }),
                relayed,
            ));
            let worker = KafkaPath {
                projector,
                log,
                config,
            };
            (worker.start(), Some(worker))
        }
    };

    let tenant = TenantId::new();
    let actor = ActorId::parse("bench").map_err(|_| anyhow::anyhow!("actor"))?;
    let mut organizations = Vec::with_capacity(args.streams);
    for n in 0..args.streams {
        let organization = OrganizationId::new();
        let command = OrganizationCommand::CreateOrganization(NewOrganization {
            organization_id: organization,
            name: Name::parse("Bench Builders Ltd")?,
            code: Code::parse(&format!("B{n}"))?,
            bin: Bin::parse("0028718210101")?,
            tin: Tin::parse("123456789012")?,
            base_currency: CurrencyCode::bdt(),
            fiscal_year_start: FiscalYearStart::default(),
        });
        store
            .execute::<Organization>(
                tenant,
                &organization.to_string(),
                command,
                &(),
                &CommandMetadata::new(actor.clone()),
                Some(Version::NONE),
            )
            .await?;
        organizations.push(organization);
    }
    let index: HashMap<Uuid, usize> = organizations
        .iter()
        .enumerate()
        .map(|(i, o)| (o.as_uuid(), i))
        .collect();
    // Every organization visible at version 1 before the clock starts.
    let deadline = Instant::now() + Duration::from_secs(120);
    while visible_versions(&reader, tenant).await?.len() < args.streams {
        if Instant::now() > deadline {
            bail!(
                "{}: the read model did not catch up with the setup",
                path.name()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let pairing = Arc::new(Mutex::new(Pairing::default()));
    let (monitor_stop, mut monitor_stopped) = oneshot::channel::<()>();
    let monitor = tokio::spawn({
        let (pairing, reader) = (Arc::clone(&pairing), reader.clone());
        let mut last_seen = vec![1i64; args.streams];
        async move {
            loop {
                if monitor_stopped.try_recv().is_ok() {
                    return anyhow::Ok(());
                }
                let rows = visible_versions(&reader, tenant).await?;
                let now = Instant::now();
                {
                    let mut pairing = pairing.lock().unwrap_or_else(PoisonError::into_inner);
                    for (organization, version) in rows {
                        let Some(&i) = index.get(&organization) else {
                            continue;
                        };
                        for seen in last_seen[i] + 1..=version {
                            pairing.seen((i, seen), now);
                        }
                        last_seen[i] = last_seen[i].max(version);
                    }
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });

    let total = (f64::from(args.rate) * args.seconds).round() as usize;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut commands = Vec::with_capacity(total);
    for n in 0..total {
        ticker.tick().await;
        let (store, pairing, actor) = (store.clone(), Arc::clone(&pairing), actor.clone());
        let i = n % args.streams;
        let organization = organizations[i];
        commands.push(tokio::spawn(async move {
            let name = Name::parse(&format!("Round {n}"))?;
            for _attempt in 0..5 {
                let result = store
                    .execute::<Organization>(
                        tenant,
                        &organization.to_string(),
                        OrganizationCommand::RenameOrganization { name: name.clone() },
                        &(),
                        &CommandMetadata::new(actor.clone()),
                        None,
                    )
                    .await;
                match result {
                    Ok(outcome) => {
                        pairing
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .committed((i, outcome.version.get()), Instant::now());
                        return anyhow::Ok(());
                    }
                    Err(ExecuteError::Conflict { .. }) => continue,
                    Err(error) => return Err(error.into()),
                }
            }
            bail!("organization {i}: five conflicts in a row")
        }));
    }
    for command in commands {
        command.await??;
    }
    // Let the tail of the run become visible.
    let deadline = Instant::now() + Duration::from_secs(60);
    while pairing
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .latencies
        .len()
        < total
    {
        if Instant::now() > deadline {
            bail!(
                "{}: not every command became visible within 60 s",
                path.name()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = monitor_stop.send(());
    monitor.await??;
    fanout.stop().await?;
    let catch_up = match (kafka, relay) {
        (Some(kafka), Some((relay, relayed))) => {
            let catch_up = catch_up(&store, &reader, tenant, &organizations, &kafka, relayed).await;
            relay.stop().await?;
            Some(catch_up?)
        }
        _ => None,
    };
    drop(embedded);
    statistics.stop().await?;
    let latencies = std::mem::take(
        &mut pairing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .latencies,
    );
    Ok(Measured {
        latencies,
        catch_up,
    })
}

/// What one path measured.
struct Measured {
    /// Commit → visible, per command.
    latencies: Vec<Duration>,
    /// The Kafka worker's rate after a pause.
    catch_up: Option<CatchUp>,
}

/// A background task of the bench with its own stop.
struct Fanout {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Fanout {
    fn start<F, Fut>(run: F) -> Self
    where
        F: FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(Box::pin(async { drop(stopped.await) })));
        Self { stop, task }
    }

    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await?
    }
}

/// What a Kafka worker of the bench is made of, so that a new one can be started after a pause.
struct KafkaPath {
    projector: PgPool,
    log: LogReader,
    config: KafkaConfig,
}

impl KafkaPath {
    fn start(&self) -> Fanout {
        let worker = KafkaWorker::new(
            OrganizationHierarchy,
            self.projector.clone(),
            self.log.clone(),
            self.config.clone(),
        )
        .consumer_setting("fetch.wait.max.ms", "5");
        Fanout::start(move |stopped| async move { Ok(worker.run(stopped).await?) })
    }
}

/// How fast a Kafka worker applied the events relayed while it was stopped.
struct CatchUp {
    events: u64,
    seconds: f64,
}

impl CatchUp {
    fn rate(&self) -> f64 {
        self.events as f64 / self.seconds.max(f64::EPSILON)
    }
}

/// Events appended (organization renames) while the worker is stopped.
const CATCH_UP_EVENTS: usize = 20_000;

/// With the worker stopped: renames the organizations round robin until `CATCH_UP_EVENTS`
/// events wait in Kafka (the relay has published them all), then starts a worker of the same
/// group and times it from the first of those events visible in the read model to the last.
/// The worker's start (joining the group) is not counted: the rate is its applying.
async fn catch_up(
    store: &EventStore,
    reader: &PgPool,
    tenant: TenantId,
    organizations: &[OrganizationId],
    kafka: &KafkaPath,
    mut relayed: tokio::sync::watch::Receiver<vextrus_fanout::RelayStatus>,
) -> anyhow::Result<CatchUp> {
    let before = version_sum(reader, tenant).await?;
    let relayed_before = relayed.borrow().events_relayed;
    let actor = ActorId::parse("bench").map_err(|_| anyhow::anyhow!("actor"))?;
    let mut renamed = 0;
    let mut rounds = 0;
    while renamed < CATCH_UP_EVENTS {
        rounds += 1;
        // A new name every round: renaming to the same name appends nothing.
        let name = Name::parse(&format!("Caught Up Round {rounds}"))?;
        // One command per organization at a time: no two on a stream at once.
        let round = organizations
            .iter()
            .take(CATCH_UP_EVENTS - renamed)
            .map(|organization| {
                let (store, actor, organization, name) =
                    (store.clone(), actor.clone(), *organization, name.clone());
                tokio::spawn(async move {
                    store
                        .execute::<Organization>(
                            tenant,
                            &organization.to_string(),
                            OrganizationCommand::RenameOrganization { name },
                            &(),
                            &CommandMetadata::new(actor),
                            None,
                        )
                        .await
                        .map_err(anyhow::Error::from)
                })
            });
        for outcome in round.collect::<Vec<_>>() {
            let outcome = outcome.await??;
            renamed += outcome.event_count as usize;
        }
    }
    let published = tokio::time::timeout(
        Duration::from_secs(120),
        // Counted, not compared by position: the last event committed need not be the one with
        // the highest position.
        relayed.wait_for(|status| status.events_relayed >= relayed_before + renamed as u64),
    )
    .await
    .is_ok_and(|waited| waited.is_ok());
    if !published {
        let published = relayed.borrow().events_relayed - relayed_before;
        bail!("kafka: the relay published {published} of the {renamed} paused events in 120 s");
    }
    let expected = before + renamed as i64;
    let worker = kafka.start();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut first_seen = None;
    let finished = loop {
        let sum = version_sum(reader, tenant).await?;
        let now = Instant::now();
        if sum > before && first_seen.is_none() {
            first_seen = Some((now, sum - before));
        }
        if sum >= expected {
            break now;
        }
        if now > deadline {
            bail!("kafka: the worker did not catch up within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    worker.stop().await?;
    let (started, already) = first_seen.unwrap_or((finished, 0));
    Ok(CatchUp {
        // What the first look already saw was applied before the clock started.
        events: (renamed as i64 - already).max(0) as u64,
        seconds: finished.duration_since(started).as_secs_f64(),
    })
}

/// The sum of the tenant's organizations' versions in the read model: one row however many.
async fn version_sum(reader: &PgPool, tenant_id: TenantId) -> Result<i64, sqlx::Error> {
    let mut tx = tenant::begin(reader, tenant_id).await?;
    let sum: i64 =
        sqlx::query_scalar("select coalesce(sum(version), 0)::int8 from org_organizations")
            .fetch_one(&mut *tx)
            .await?;
    tx.rollback().await?;
    Ok(sum)
}

/// (organization id, version) of every organization of `tenant`, as the API would read them.
async fn visible_versions(
    reader: &PgPool,
    tenant_id: TenantId,
) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
    let mut tx = tenant::begin(reader, tenant_id).await?;
    let rows = sqlx::query_as("select organization_id, version from org_organizations")
        .fetch_all(&mut *tx)
        .await?;
    tx.rollback().await?;
    Ok(rows)
}
