//! `vextrus bench scale`: does a long log slow the system down? Append latency and the cost of
//! reading the log's tail on a database whose log was grown to `--events` (10 million by
//! default), taking turns with a fresh database on the same server, `--rounds` times, so that the
//! machine's drift during a long run touches both alike.
//!
//! Each round:
//! - **append**: single-event commands on new streams through [`EventStore::execute`] (the
//!   `vextrus` cell of `bench append`), at each of `--clients`, one database after the other;
//! - **tail read**: what a runner does. The events each database's append cells just wrote are
//!   read from the position before them in pages of `--page-size` (`LogReader::read_batch`, as
//!   the projector role), a page of one database, then a page of the other; then the caught-up
//!   tails are polled in turn (each read finds nothing new, as a runner's poll between commands
//!   does). Before reading, a log whose changes have passed autovacuum's analyze threshold is
//!   analyzed, as autovacuum would have done by then.
//!
//! The log is grown with the owner's INSERTs of 10,000 events per statement (1,000 new streams
//! of 10 events over 1,000 tenants; the chain hash computed by the log's trigger, as for every
//! row without one), then vacuumed and analyzed as autovacuum would have.

use std::time::{Duration, Instant};

use anyhow::ensure;
use clap::Args;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use uuid::Uuid;
use vextrus::database;
use vextrus_commands::{LogFilter, LogPosition, LogReader};

use super::bench::{BenchServer, CellResult, System, percentile_ms, run_cell};

#[derive(Debug, Args)]
pub struct ScaleBenchArgs {
    /// Events in the grown log.
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(10_000..=1_000_000_000))]
    events: u64,
    /// Measured seconds per append cell, split over the rounds.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Each append cell runs this many times, alternating client counts.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Concurrent client counts to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16])]
    clients: Vec<usize>,
    /// Events per tail read.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    page_size: u32,
}

/// Caught-up tail reads timed per turn.
const POLLS: usize = 200;
/// Events per INSERT while growing the log.
const GROW_CHUNK: i64 = 10_000;
/// Events per generated stream.
const GROW_STREAM: i64 = 10;
/// Tenants the generated streams belong to.
const GROW_TENANTS: usize = 1_000;

/// What one database measured over its turns.
struct Figures {
    label: String,
    /// Per client count: the append cell.
    append: Vec<(usize, CellResult)>,
    tail_events: u64,
    /// Each page read's time; their sum is the time spent reading.
    tail_pages: Vec<Duration>,
    polls: Vec<Duration>,
}

impl Figures {
    fn new(label: String, clients: &[usize]) -> Self {
        Self {
            label,
            append: clients
                .iter()
                .map(|&clients| (clients, CellResult::default()))
                .collect(),
            tail_events: 0,
            tail_pages: Vec::new(),
            polls: Vec::new(),
        }
    }

    fn tail_events_per_second(&self) -> f64 {
        let reading: Duration = self.tail_pages.iter().sum();
        self.tail_events as f64 / reading.as_secs_f64().max(f64::EPSILON)
    }
}

pub async fn scale(args: ScaleBenchArgs, external: Option<PgConnectOptions>) -> anyhow::Result<()> {
    let grown = BenchServer::start(external).await?;
    let result = async {
        let fresh = BenchServer::start(Some(grown.admin().clone())).await?;
        let result = measure_both(&fresh, &grown, &args).await;
        fresh.finish().await?;
        result
    }
    .await;
    grown.finish().await?;
    let mut sizes = result?;
    report(&mut sizes, &args);
    Ok(())
}

/// Grows `grown`'s log, then measures the two databases taking turns.
async fn measure_both(
    fresh: &BenchServer,
    grown: &BenchServer,
    args: &ScaleBenchArgs,
) -> anyhow::Result<[Figures; 2]> {
    println!(
        "scale benchmark: single-event appends ({:.1} s per cell in {} rounds) and tail reads (pages of {}), {} core(s)",
        args.seconds,
        args.rounds.max(1),
        args.page_size,
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    let servers = [fresh, grown];
    let mut owners = Vec::new();
    for server in servers {
        owners.push(PgPool::connect_with(server.options(&server.vextrus_db)).await?);
    }
    let result = async {
        grow(&owners[1], args.events).await?;
        let mut sizes = [
            Figures::new("fresh".to_owned(), &args.clients),
            Figures::new(format!("{} events", args.events), &args.clients),
        ];
        let rounds = args.rounds.max(1);
        let per_round = Duration::from_secs_f64(args.seconds.max(0.1) / f64::from(rounds));
        for round in 1..=rounds {
            let mut befores = Vec::new();
            for (n, figures) in sizes.iter_mut().enumerate() {
                eprintln!("round {round} of {rounds}: {} appends", figures.label);
                let before = head(&owners[n]).await?;
                servers[n].checkpoint().await?;
                for (clients, cell) in &mut figures.append {
                    cell.add(run_cell(servers[n], System::Vextrus, 1, *clients, per_round).await?);
                }
                befores.push(before);
            }
            eprintln!("round {round} of {rounds}: tail reads, page by page in turn");
            read_tails(servers, &owners, &befores, &mut sizes, args).await?;
        }
        Ok(sizes)
    }
    .await;
    for owner in owners {
        owner.close().await;
    }
    result
}

/// What one database's tail reader has left to do in a round.
struct TailRead {
    log: LogReader,
    projector: PgPool,
    position: LogPosition,
    after: LogPosition,
    expected: u64,
    read: u64,
    done: bool,
}

/// Reads what each database's appends wrote in this round, a page of one, then a page of the
/// other, so that the machine's drift touches both alike; then polls the caught-up tails in
/// turn. First each log gets the planner statistics autovacuum would have given it by now (an
/// `analyze` once its changes pass autovacuum's threshold): a young log analyzed while nearly
/// empty plans a page as a sort of its whole backlog until then.
async fn read_tails(
    servers: [&BenchServer; 2],
    owners: &[PgPool],
    befores: &[LogPosition],
    sizes: &mut [Figures; 2],
    args: &ScaleBenchArgs,
) -> anyhow::Result<()> {
    let mut tails = Vec::new();
    for (n, server) in servers.into_iter().enumerate() {
        analyze_as_autovacuum_would(&owners[n]).await?;
        let projector = database::log_reader_pool(&server.options(&server.vextrus_db), 2).await?;
        let before = befores[n];
        let expected: i64 = sqlx::query_scalar(
            "select count(*) from events where (transaction_id, global_position) > ($1::text::xid8, $2)",
        )
        .bind(before.transaction_id.to_string())
        .bind(before.global_position)
        .fetch_one(&owners[n])
        .await?;
        tails.push(TailRead {
            log: LogReader::new(projector.clone()),
            projector,
            position: before,
            after: head(&owners[n]).await?,
            expected: u64::try_from(expected)?,
            read: 0,
            done: false,
        });
    }
    let filter = LogFilter::default();
    while tails.iter().any(|tail| !tail.done) {
        for (tail, figures) in tails.iter_mut().zip(sizes.iter_mut()) {
            if tail.done {
                continue;
            }
            let began = Instant::now();
            let page = tail
                .log
                .read_batch(tail.position, &filter, args.page_size)
                .await?;
            figures.tail_pages.push(began.elapsed());
            tail.read += page.len() as u64;
            figures.tail_events += page.len() as u64;
            if let Some(last) = page.last() {
                tail.position = last.position();
            }
            tail.done = page.len() < args.page_size as usize;
        }
    }
    for (n, tail) in tails.iter().enumerate() {
        ensure!(
            tail.read == tail.expected && tail.position == tail.after,
            "{}: the tail read {} events up to {:?}; the appends wrote {} up to {:?}",
            sizes[n].label,
            tail.read,
            tail.position,
            tail.expected,
            tail.after
        );
    }
    // Each database goes first every other time. Polled always right after the fresh one, the
    // long log measured 1.43-1.51 times its p50 at 2 million events; alternating, 1.19 in the
    // same setting. Planning was equal on both (0.11 ms, pg_stat_statements with
    // track_planning), and so was execution (a few microseconds, auto_explain).
    for poll in 0..POLLS {
        let mut pairs: Vec<_> = tails.iter().zip(sizes.iter_mut()).collect();
        if poll % 2 == 1 {
            pairs.reverse();
        }
        for (tail, figures) in pairs {
            let began = Instant::now();
            let page = tail
                .log
                .read_batch(tail.after, &filter, args.page_size)
                .await?;
            figures.polls.push(began.elapsed());
            ensure!(
                page.is_empty(),
                "a caught-up tail read found {} events",
                page.len()
            );
        }
    }
    for tail in tails {
        tail.projector.close().await;
    }
    Ok(())
}

/// `analyze events` if autovacuum would have by now: its changes since the last analyze passed
/// `autovacuum_analyze_threshold` + `autovacuum_analyze_scale_factor` × its rows.
async fn analyze_as_autovacuum_would(owner: &PgPool) -> anyhow::Result<()> {
    let due: bool = sqlx::query_scalar(
        "select s.n_mod_since_analyze > current_setting('autovacuum_analyze_threshold')::float8
                    + current_setting('autovacuum_analyze_scale_factor')::float8 * greatest(c.reltuples, 0)
         from pg_stat_user_tables s join pg_class c on c.oid = s.relid
         where s.relname = 'events'",
    )
    .fetch_one(owner)
    .await?;
    if due {
        sqlx::query("analyze events").execute(owner).await?;
    }
    Ok(())
}

/// The log's last position (the start when it is empty).
async fn head(owner: &PgPool) -> anyhow::Result<LogPosition> {
    let last: Option<(i64, i64)> = sqlx::query_as(
        "select transaction_id::text::bigint, global_position from events
         -- Qualified: the bare names would be the output columns, and sort the whole log.
         order by events.transaction_id desc, events.global_position desc limit 1",
    )
    .fetch_optional(owner)
    .await?;
    Ok(match last {
        Some((transaction_id, global_position)) => LogPosition {
            transaction_id: u64::try_from(transaction_id)?,
            global_position,
        },
        None => LogPosition::START,
    })
}

/// Grows the log to `target` events; then vacuums and analyzes it.
async fn grow(owner: &PgPool, target: u64) -> anyhow::Result<()> {
    let tenants: Vec<Uuid> = (0..GROW_TENANTS).map(|_| Uuid::now_v7()).collect();
    let count: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(owner)
        .await?;
    let target = i64::try_from(target)?;
    let (started, mut last_line) = (Instant::now(), Instant::now());
    let mut written = count;
    eprintln!("growing the log from {count} to {target} events");
    while written < target {
        let events = GROW_CHUNK.min(target - written);
        let streams = (events + GROW_STREAM - 1) / GROW_STREAM;
        let inserted = sqlx::query(
            "insert into events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version,
                                 payload, actor, command_id, correlation_id, request_id)
             select s.tenant, 'bench_stream', s.stream, q.sequence, 'ItemRecorded', '1',
                    jsonb_build_object('n', q.sequence, 'item', 'Portland cement, 50 kg bag (CEM II/A-M)',
                                       'quantity', '120.000', 'amount', '66000.00',
                                       'site_id', '00000000-0000-0000-0000-000000000000'),
                    'bench-user', s.command, s.command, 'bench'
             from (select k, ($1::uuid[])[1 + (k + $2) % cardinality($1::uuid[])] as tenant,
                          gen_random_uuid()::text as stream, gen_random_uuid() as command
                   from generate_series(1, $3::bigint) as k) as s
             cross join lateral generate_series(1, least($4::bigint, $5::bigint - (s.k - 1) * $4::bigint)) as q (sequence)
             order by s.k, q.sequence",
        )
        .bind(&tenants)
        .bind(written)
        .bind(streams)
        .bind(GROW_STREAM)
        .bind(events)
        .execute(owner)
        .await?
        .rows_affected();
        written += i64::try_from(inserted)?;
        if last_line.elapsed() >= Duration::from_secs(5) {
            last_line = Instant::now();
            let rate = (written - count) as f64 / started.elapsed().as_secs_f64();
            eprintln!(
                "growing: {written} of {target} events ({rate:.0} events/s, about {:.0} s left)",
                (target - written) as f64 / rate.max(1.0)
            );
        }
    }
    let count: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(owner)
        .await?;
    ensure!(
        count == target,
        "the log holds {count} events, {target} were meant"
    );
    println!(
        "grew the log to {target} events in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    sqlx::query("vacuum analyze events").execute(owner).await?;
    println!(
        "vacuumed and analyzed it in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// An append cell's commands/s, p50 and p99 (ms).
fn append_figures(cell: &mut CellResult) -> (f64, f64, f64) {
    (
        cell.events_per_second(1),
        cell.percentile_ms(0.50),
        cell.percentile_ms(0.99),
    )
}

fn report(sizes: &mut [Figures], args: &ScaleBenchArgs) {
    println!(
        "{:<22} {:>7} {:>11} {:>9} {:>9}",
        "log", "clients", "commands/s", "p50 ms", "p99 ms"
    );
    for size in sizes.iter_mut() {
        for (clients, cell) in &mut size.append {
            let (rate, p50, p99) = append_figures(cell);
            println!(
                "{:<22} {clients:>7} {rate:>11.0} {p50:>9.2} {p99:>9.2}",
                size.label
            );
        }
    }
    println!(
        "{:<22} {:>7} {:>11} {:>12} {:>12} {:>12}",
        "tail read", "events", "events/s", "page p50 ms", "poll p50 ms", "poll p99 ms"
    );
    for size in sizes.iter_mut() {
        println!(
            "{:<22} {:>7} {:>11.0} {:>12.2} {:>12.3} {:>12.3}",
            size.label,
            size.tail_events,
            size.tail_events_per_second(),
            percentile_ms(&mut size.tail_pages, 0.50),
            percentile_ms(&mut size.polls, 0.50),
            percentile_ms(&mut size.polls, 0.99)
        );
    }
    let [fresh, grown] = sizes else { return };
    let clients = args.clients.iter().copied().max().unwrap_or(1);
    let largest = |size: &mut Figures| {
        size.append
            .iter_mut()
            .find(|(c, _)| *c == clients)
            .map(|(_, cell)| append_figures(cell))
            .unwrap_or_default()
    };
    let (f, g) = (largest(fresh), largest(grown));
    let ratio = |grown: f64, fresh: f64| grown / fresh.max(f64::EPSILON);
    println!(
        "scale ratio: append commands/s={:.2} p50={:.2} p99={:.2} ({clients} clients); tail read events/s={:.2} poll p50={:.2} ({} events / fresh, taking turns; goal 0.8-1.2)",
        ratio(g.0, f.0),
        ratio(g.1, f.1),
        ratio(g.2, f.2),
        ratio(
            grown.tail_events_per_second(),
            fresh.tail_events_per_second()
        ),
        ratio(
            percentile_ms(&mut grown.polls, 0.5),
            percentile_ms(&mut fresh.polls, 0.5)
        ),
        args.events
    );
}
