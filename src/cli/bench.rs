//! `vextrus bench append`: the append path against its ceiling and its baseline (design.md D2).
//!
//! Each cell runs one system for a fixed time with N concurrent clients, each client issuing
//! commands on new streams back to back:
//!
//! - `vextrus`: [`EventStore::execute`] as `vextrus_writer`, declaring each stream new (expected
//!   version 0, as creations under fresh ids are issued): handle, then one committed call that sets
//!   the tenant and appends events and the command's outcome;
//! - `vextrus-load`: the same with no expected version, so the store first loads the stream and
//!   checks the command id (the path of every command on an existing stream);
//! - `raw`: the same rows in one autocommitted INSERT into a copy of `events` (same columns,
//!   indexes and defaults; no triggers, RLS, ledger or load) — the ceiling;
//! - `postgres-es`: stock postgres-es 0.5 with cqrs-es on its own `events` table — the baseline.
//!
//! All three share one server and one aggregate ([`BenchStream`]), so the figures compare the
//! write paths and nothing else. With no `DATABASE_URL` the bench starts a throwaway private
//! cluster with PostgreSQL's durable defaults (every commit flushed).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres};
use uuid::Uuid;
use vextrus::database;
use vextrus::postgres::{Durability, PostgresOptions, PrivatePostgres};
use vextrus_commands::{ActorId, CommandMetadata, DbRole, EventStore, Version};
use vextrus_domain::{TenantId, UniqueValues};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Append throughput and latency: vextrus vs a raw INSERT vs postgres-es.
    Append(AppendArgs),
    /// Commit → read-model lag at a fixed rate: the single-node runner vs the Kafka path.
    Lag(super::lag::LagArgs),
    /// Full replay of the organization projection vs the rate of scanning the same log.
    Replay(super::replay_bench::ReplayBenchArgs),
    /// Journal postings vs a raw INSERT and balance-row ledgers; report queries at a million lines.
    Ledger(super::ledger_bench::LedgerBenchArgs),
    /// Commands through the real HTTP server (`vextrus serve`) vs the store alone.
    Http(super::http_bench::HttpBenchArgs),
    /// Append latency and tail-read cost on a fresh log vs the same log grown to 10 million events.
    Scale(super::scale_bench::ScaleBenchArgs),
}

#[derive(Debug, Args)]
pub struct AppendArgs {
    /// Measured seconds per cell, split over the rounds.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// The systems of one workload and client count take turns this many times, so that
    /// checkpoints and table growth do not favour whichever runs first.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Concurrent client counts to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4, 16, 64])]
    clients: Vec<usize>,
}

impl BenchCommand {
    pub async fn run(self, external: Option<PgConnectOptions>) -> anyhow::Result<()> {
        match self {
            Self::Append(args) => append(args, external).await,
            Self::Lag(args) => super::lag::lag(args, external).await,
            Self::Replay(args) => super::replay_bench::replay(args, external).await,
            Self::Ledger(args) => super::ledger_bench::ledger(args, external).await,
            Self::Http(args) => super::http_bench::http(args, external).await,
            Self::Scale(args) => super::scale_bench::scale(args, external).await,
        }
    }
}

/// A stream that records items; each command appends `events` of them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BenchStream {
    recorded: u64,
}

#[derive(Debug, Clone)]
pub struct Record {
    events: usize,
}

/// About the size of a typical business event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BenchEvent {
    ItemRecorded {
        n: u64,
        item: String,
        quantity: String,
        amount: String,
        site_id: Uuid,
    },
}

impl DomainEvent for BenchEvent {
    fn event_type(&self) -> String {
        "ItemRecorded".to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl Aggregate for BenchStream {
    const TYPE: &'static str = "bench_stream";
    type Command = Record;
    type Event = BenchEvent;
    type Error = Infallible;
    type Services = ();

    async fn handle(
        &mut self,
        command: Record,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Infallible> {
        for _ in 0..command.events {
            let event = BenchEvent::ItemRecorded {
                n: self.recorded + 1,
                item: "Portland cement, 50 kg bag (CEM II/A-M)".to_owned(),
                quantity: "120.000".to_owned(),
                amount: "66000.00".to_owned(),
                site_id: Uuid::nil(),
            };
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: BenchEvent) {
        let BenchEvent::ItemRecorded { n, .. } = event;
        self.recorded = n;
    }
}

impl UniqueValues for BenchStream {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum System {
    Vextrus,
    Raw,
    PostgresEs,
    VextrusLoad,
}

impl System {
    const ALL: [Self; 4] = [
        Self::Vextrus,
        Self::VextrusLoad,
        Self::Raw,
        Self::PostgresEs,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Vextrus => "vextrus",
            Self::VextrusLoad => "vextrus-load",
            Self::Raw => "raw",
            Self::PostgresEs => "postgres-es",
        }
    }
}

/// The server a benchmark runs on: `DATABASE_URL`'s, or a throwaway private cluster with
/// PostgreSQL's durable defaults (every commit flushed), which the caller must stop.
pub(super) async fn bench_server(
    external: Option<PgConnectOptions>,
) -> anyhow::Result<(PgConnectOptions, Option<PrivatePostgres>)> {
    if let Some(options) = external {
        return Ok((options, None));
    }
    println!("DATABASE_URL is not set: starting a throwaway private PostgreSQL (durable settings)");
    let cluster = tokio::task::spawn_blocking(|| {
        PrivatePostgres::start(&PostgresOptions::throwaway(Durability::Durable))
    })
    .await??;
    Ok((cluster.connect_options("postgres"), Some(cluster)))
}

/// The `q` quantile of `samples` (sorted in place), in ms; 0 for none.
pub(super) fn percentile_ms(samples: &mut [Duration], q: f64) -> f64 {
    samples.sort_unstable();
    let index = ((samples.len().max(1) - 1) as f64 * q).round() as usize;
    samples
        .get(index)
        .map_or(0.0, |sample| sample.as_secs_f64() * 1000.0)
}

/// Creates a database named `prefix` and a fresh suffix on the bench's server; its name.
pub(super) async fn fresh_database(
    admin: &PgConnectOptions,
    prefix: &str,
) -> anyhow::Result<String> {
    let name = format!("{prefix}_{}", &Uuid::now_v7().simple().to_string()[..12]);
    let mut conn = PgConnection::connect_with(admin)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::query(&format!("create database {name}"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(name)
}

/// The databases the bench writes to, and the private cluster if it started one.
pub(super) struct BenchServer {
    admin: PgConnectOptions,
    pub(super) vextrus_db: String,
    pges_db: String,
    cluster: Option<PrivatePostgres>,
}

impl BenchServer {
    pub(super) async fn start(external: Option<PgConnectOptions>) -> anyhow::Result<Self> {
        let (admin, cluster) = bench_server(external).await?;
        let run = Uuid::now_v7().simple().to_string();
        let server = Self {
            vextrus_db: format!("vextrus_bench_{}", &run[..12]),
            pges_db: format!("vextrus_bench_pges_{}", &run[..12]),
            admin,
            cluster,
        };
        let mut conn = PgConnection::connect_with(&server.admin)
            .await
            .context("connecting to PostgreSQL")?;
        for db in [&server.vextrus_db, &server.pges_db] {
            sqlx::query(&format!("create database {db}"))
                .execute(&mut conn)
                .await?;
        }
        conn.close().await?;

        database::migrate(&server.options(&server.vextrus_db)).await?;
        let mut vextrus = PgConnection::connect_with(&server.options(&server.vextrus_db)).await?;
        // The same columns and indexes, none of the triggers: the hash chain is vextrus's cost.
        sqlx::raw_sql(
            "create table raw_events (like events including all);
             alter table raw_events alter column hash drop not null;",
        )
        .execute(&mut vextrus)
        .await?;
        vextrus.close().await?;

        let mut pges = PgConnection::connect_with(&server.options(&server.pges_db)).await?;
        sqlx::raw_sql(POSTGRES_ES_SCHEMA).execute(&mut pges).await?;
        pges.close().await?;
        Ok(server)
    }

    /// Rows in `system`'s events table: each cell checks that it wrote what it reported.
    async fn rows_written(&self, system: System) -> anyhow::Result<u64> {
        let (database, table) = match system {
            System::Vextrus | System::VextrusLoad => (&self.vextrus_db, "events"),
            System::Raw => (&self.vextrus_db, "raw_events"),
            System::PostgresEs => (&self.pges_db, "events"),
        };
        let mut conn = PgConnection::connect_with(&self.options(database)).await?;
        let rows: i64 = sqlx::query_scalar(&format!("select count(*) from {table}"))
            .fetch_one(&mut conn)
            .await?;
        conn.close().await?;
        Ok(u64::try_from(rows)?)
    }

    /// Flushes dirty pages now, so that a checkpoint does not land in the middle of a cell.
    pub(super) async fn checkpoint(&self) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect_with(&self.admin).await?;
        // CHECKPOINT needs superuser (or pg_checkpoint); on a shared server, skip it quietly.
        let _ = sqlx::query("checkpoint").execute(&mut conn).await;
        conn.close().await?;
        Ok(())
    }

    /// The server's administrative connection options (another bench database can be created
    /// on the same server with [`BenchServer::start`]`(Some(admin))`).
    pub(super) fn admin(&self) -> &PgConnectOptions {
        &self.admin
    }

    pub(super) fn options(&self, database: &str) -> PgConnectOptions {
        self.admin.clone().database(database)
    }

    pub(super) async fn finish(self) -> anyhow::Result<()> {
        if let Some(cluster) = self.cluster {
            tokio::task::spawn_blocking(move || cluster.stop()).await??;
        } else {
            let mut conn = PgConnection::connect_with(&self.admin).await?;
            for db in [&self.vextrus_db, &self.pges_db] {
                sqlx::query(&format!("drop database {db} with (force)"))
                    .execute(&mut conn)
                    .await?;
            }
            conn.close().await?;
        }
        Ok(())
    }
}

/// The schema from postgres-es's own `db/init.sql`.
const POSTGRES_ES_SCHEMA: &str = "
create table events (
    aggregate_type text not null,
    aggregate_id text not null,
    sequence bigint check (sequence >= 0) not null,
    event_type text not null,
    event_version text not null,
    payload json not null,
    metadata json not null,
    primary key (aggregate_type, aggregate_id, sequence)
);
create table snapshots (
    aggregate_type text not null,
    aggregate_id text not null,
    last_sequence bigint check (last_sequence >= 0) not null,
    current_snapshot bigint check (current_snapshot >= 0) not null,
    payload json not null,
    primary key (aggregate_type, aggregate_id, last_sequence)
);";

/// One client's way of issuing a command of `events` events on a new stream.
enum Client {
    Vextrus {
        store: EventStore,
        tenant: TenantId,
        actor: ActorId,
        expected: Option<Version>,
    },
    Raw {
        pool: PgPool,
        /// The client's own connection, taken on its first command and kept (no pool round
        /// trip per command: the ceiling should not pay what a server would not).
        connection: Option<PoolConnection<Postgres>>,
        tenant: TenantId,
        payload: Value,
    },
    PostgresEs {
        cqrs: Arc<postgres_es::PostgresCqrs<BenchStream>>,
    },
}

impl Client {
    async fn command(&mut self, events: usize) -> anyhow::Result<()> {
        let stream = Uuid::now_v7().to_string();
        match self {
            Self::Vextrus {
                store,
                tenant,
                actor,
                expected,
            } => {
                let metadata = CommandMetadata::new(actor.clone()).with_request_id("bench");
                store
                    .execute::<BenchStream>(
                        *tenant,
                        &stream,
                        Record { events },
                        &(),
                        &metadata,
                        *expected,
                    )
                    .await?;
            }
            Self::Raw {
                pool,
                connection,
                tenant,
                payload,
            } => {
                let connection = match connection {
                    Some(connection) => connection,
                    None => connection.insert(pool.acquire().await?),
                };
                let command_id = Uuid::now_v7();
                sqlx::query(
                    "insert into raw_events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version,
                                             payload, actor, command_id, correlation_id, request_id)
                     select $1, 'bench_stream', $2, e.sequence, 'ItemRecorded', '1', e.payload, 'bench-user', $3, $3, 'bench'
                     from unnest($4::bigint[], $5::jsonb[]) as e(sequence, payload)",
                )
                .bind(tenant.as_uuid())
                .bind(&stream)
                .bind(command_id)
                .bind((1..=events as i64).collect::<Vec<_>>())
                .bind(vec![payload.clone(); events])
                .execute(&mut **connection)
                .await?;
            }
            Self::PostgresEs { cqrs } => {
                let metadata = [("actor", "bench-user"), ("request_id", "bench")]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                cqrs.execute_with_metadata(&stream, Record { events }, metadata)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
        }
        Ok(())
    }
}

/// The measured commands of one cell: each command's latency.
#[derive(Default)]
pub(super) struct CellResult {
    latencies: Vec<Duration>,
    measured: Duration,
}

impl CellResult {
    pub(super) fn add(&mut self, mut other: CellResult) {
        self.latencies.append(&mut other.latencies);
        self.measured += other.measured;
    }

    pub(super) fn events_per_second(&self, events_per_command: usize) -> f64 {
        (self.latencies.len() * events_per_command) as f64
            / self.measured.as_secs_f64().max(f64::EPSILON)
    }

    /// The `p` quantile of the commands' latencies, in ms.
    pub(super) fn percentile_ms(&mut self, p: f64) -> f64 {
        percentile_ms(&mut self.latencies, p)
    }
}

pub(super) async fn run_cell(
    server: &BenchServer,
    system: System,
    events: usize,
    clients: usize,
    measured: Duration,
) -> anyhow::Result<CellResult> {
    let max = u32::try_from(clients).unwrap_or(u32::MAX);
    let pool = match system {
        System::Vextrus | System::VextrusLoad => {
            database::role_pool(&server.options(&server.vextrus_db), DbRole::Writer, max).await?
        }
        System::Raw => {
            PgPoolOptions::new()
                .max_connections(max)
                .connect_with(server.options(&server.vextrus_db))
                .await?
        }
        System::PostgresEs => {
            PgPoolOptions::new()
                .max_connections(max)
                .connect_with(server.options(&server.pges_db))
                .await?
        }
    };
    let payload = serde_json::json!({
        "n": 1, "item": "Portland cement, 50 kg bag (CEM II/A-M)", "quantity": "120.000",
        "amount": "66000.00", "site_id": Uuid::nil(),
    });
    let store = EventStore::new(pool.clone());
    let cqrs = Arc::new(postgres_es::postgres_cqrs::<BenchStream>(
        pool.clone(),
        Vec::new(),
        (),
    ));
    let actor = ActorId::parse("bench-user").unwrap_or_else(|_| unreachable!("a valid literal"));

    let rows_before = server.rows_written(system).await?;
    let warm_up = Duration::from_millis(200);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let tenant = TenantId::new();
            let mut client = match system {
                System::Vextrus | System::VextrusLoad => Client::Vextrus {
                    store: store.clone(),
                    tenant,
                    actor: actor.clone(),
                    expected: (system == System::Vextrus).then_some(Version::NONE),
                },
                System::Raw => Client::Raw {
                    pool: pool.clone(),
                    connection: None,
                    tenant,
                    payload: payload.clone(),
                },
                System::PostgresEs => Client::PostgresEs {
                    cqrs: Arc::clone(&cqrs),
                },
            };
            tokio::spawn(async move {
                let (mut latencies, mut commands) = (Vec::new(), 0_u64);
                let (measure_from, until) = (start + warm_up, start + warm_up + measured);
                loop {
                    let began = Instant::now();
                    if began >= until {
                        return Ok::<_, anyhow::Error>((latencies, commands));
                    }
                    client.command(events).await?;
                    commands += 1;
                    if began >= measure_from {
                        latencies.push(began.elapsed());
                    }
                }
            })
        })
        .collect();
    let (mut latencies, mut commands) = (Vec::new(), 0_u64);
    for task in tasks {
        let (client_latencies, client_commands) = task.await??;
        latencies.extend(client_latencies);
        commands += client_commands;
    }
    pool.close().await;
    let written = server.rows_written(system).await? - rows_before;
    let expected = commands * events as u64;
    if written != expected {
        anyhow::bail!(
            "{} reported {expected} events but wrote {written} rows",
            system.name()
        );
    }
    Ok(CellResult {
        latencies,
        measured,
    })
}

/// The append bench's workloads: a name and the events per command.
const WORKLOADS: [(&str, usize); 2] = [("single-event", 1), ("10-event", 10)];

async fn append(args: AppendArgs, external: Option<PgConnectOptions>) -> anyhow::Result<()> {
    let rounds = args.rounds.max(1);
    let per_round = Duration::from_secs_f64(args.seconds.max(0.1) / f64::from(rounds));
    let server = BenchServer::start(external).await?;
    println!(
        "append benchmark: commands on new streams, {:.1} s per cell in {rounds} interleaved rounds, {} core(s)",
        per_round.as_secs_f64() * f64::from(rounds),
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    println!(
        "{:<13} {:>7}  {:<12} {:>10} {:>9} {:>9}",
        "workload", "clients", "system", "events/s", "p50 ms", "p99 ms"
    );

    // events/s per system at 16 clients, per workload.
    let mut headline = [[0.0_f64; 4]; 2];
    let result: anyhow::Result<()> = async {
        for (shape, (workload, events)) in WORKLOADS.into_iter().enumerate() {
            for &clients in &args.clients {
                server.checkpoint().await?;
                let mut cells: Vec<CellResult> =
                    System::ALL.iter().map(|_| CellResult::default()).collect();
                for _ in 0..rounds {
                    for (system, cell) in System::ALL.into_iter().zip(cells.iter_mut()) {
                        cell.add(run_cell(&server, system, events, clients, per_round).await?);
                    }
                }
                for (system, mut cell) in System::ALL.into_iter().zip(cells) {
                    let events_per_second = cell.events_per_second(events);
                    println!(
                        "{workload:<13} {clients:>7}  {:<12} {:>10.0} {:>9.2} {:>9.2}",
                        system.name(),
                        events_per_second,
                        cell.percentile_ms(0.50),
                        cell.percentile_ms(0.99)
                    );
                    if clients == 16 {
                        headline[shape][system as usize] = events_per_second;
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    server.finish().await?;
    result?;

    for ((workload, _), [vextrus, raw, pges, _]) in WORKLOADS.into_iter().zip(headline) {
        if vextrus > 0.0 && raw > 0.0 && pges > 0.0 {
            println!(
                "append ratio: vextrus/raw={:.2} vextrus/postgres-es={:.2} ({workload}, 16 clients)",
                vextrus / raw,
                vextrus / pges
            );
        } else {
            println!(
                "append ratio: not measured for {workload} (the 16-client cell was not in --clients)"
            );
        }
    }
    Ok(())
}
