//! `vextrus bench replay`: how fast a full replay rebuilds a read model, next to the rate of
//! merely scanning the same log in pages of the same size (design.md D6), for two workloads:
//!
//! - `hierarchy`: `--events` organization events. Each organization stream is one company's
//!   life: it is created, gains two divisions, four projects and eight sites, is renamed, renames
//!   a project and a site, moves a site and archives one (20 events). Streams belong to
//!   `--tenants` tenants round robin, and a window of streams is written interleaved, so that a
//!   page of the log mixes creations with updates of rows saved pages earlier, as a real log does.
//! - `ledger`: `--lines` posted lines, three per journal entry (`bench ledger`'s postings: a hot
//!   cash and cost account in every entry, one of 1,000 others, dates over six fiscal years),
//!   rebuilt into the general ledger (entries, lines, balances, fiscal-year and dimension totals).
//!
//! Each workload gets a fresh database; events are written as the owner, many per statement
//! (generating them through the command path would measure the append path instead). Then, in
//! the same run: the scan ceiling (`LogReader::read_batch` page after page over the projection's
//! aggregate types, decoding nothing further), and the replay itself (`Replay::run`, from reading
//! to swap). The replay's result is checked against what was generated before any figure is
//! printed.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::{Args, ValueEnum};
use cqrs_es::Aggregate;
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;
use vextrus::database;
use vextrus_commands::codec;
use vextrus_commands::{DbRole, EventStore, LogFilter, LogPosition, LogReader};
use vextrus_domain::ids::{DivisionId, OrganizationId, ProjectId, SiteId};
use vextrus_domain::organization::{Organization, OrganizationEvent};
use vextrus_domain::values::{Bin, Code, CurrencyCode, FiscalYearStart, Name, Tin};
use vextrus_projections::Projection;
use vextrus_projections::finance::GeneralLedger;
use vextrus_projections::organization::OrganizationHierarchy;
use vextrus_replay::{Replay, ReplayOptions, Summary};

use super::ledger_bench;
use super::replay::ProgressDisplay;

#[derive(Debug, Args)]
pub struct ReplayBenchArgs {
    /// The workloads to measure, each in a fresh database.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Workload::Hierarchy, Workload::Ledger])]
    workloads: Vec<Workload>,
    /// Hierarchy events to generate and replay (rounded down to whole organization streams of 20).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(20..=50_000_000))]
    events: u64,
    /// Tenants the organizations belong to, round robin.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    tenants: u64,
    /// Ledger lines to generate and replay (rounded down to whole three-line entries).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(3..=50_000_000))]
    lines: u64,
    /// Events per page, for the replay and for the scan alike.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    page_size: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// The organization hierarchy, from `--events` organization events.
    Hierarchy,
    /// The general ledger, from `--lines` posted lines.
    Ledger,
}

/// Events in one generated organization stream.
const EVENTS_PER_STREAM: u64 = 20;
/// Streams written interleaved: an organization's last events land about this many events after
/// its first, a page or two later.
const INTERLEAVED_STREAMS: u64 = 1_000;
/// Events per INSERT (and per transaction) while generating.
const INSERT_CHUNK: usize = 10_000;

/// One workload's figures.
struct Measured {
    projection: &'static str,
    replay_rate: f64,
    scan_rate: f64,
}

pub async fn replay(
    args: ReplayBenchArgs,
    external: Option<PgConnectOptions>,
) -> anyhow::Result<()> {
    let streams = args.events / EVENTS_PER_STREAM;
    if args.workloads.contains(&Workload::Hierarchy) {
        ensure!(
            args.tenants <= streams,
            "--tenants ({}) must not exceed the organizations generated ({streams})",
            args.tenants
        );
    }
    let (admin, cluster) = super::bench::bench_server(external).await?;
    let mut measured = Vec::new();
    let mut result = Ok(());
    for workload in &args.workloads {
        match in_fresh_database(&admin, cluster.is_none(), *workload, &args).await {
            Ok(figures) => measured.push(figures),
            Err(error) => {
                result = Err(error);
                break;
            }
        }
    }
    super::stop(cluster).await;
    result?;
    let ratios: Vec<String> = measured
        .iter()
        .map(|m| {
            format!(
                "{}={:.2} ({:.0} of {:.0} events/s)",
                m.projection,
                m.replay_rate / m.scan_rate,
                m.replay_rate,
                m.scan_rate
            )
        })
        .collect();
    println!("replay ratio: {} (replay/scan ceiling)", ratios.join(" "));
    Ok(())
}

/// Measures one workload in a database of its own, dropped afterwards on a shared server.
async fn in_fresh_database(
    admin: &PgConnectOptions,
    shared_server: bool,
    workload: Workload,
    args: &ReplayBenchArgs,
) -> anyhow::Result<Measured> {
    let name = super::bench::fresh_database(admin, "vextrus_bench_replay").await?;
    let options = admin.clone().database(&name);
    let result = measure(&options, workload, args).await;
    if shared_server {
        let mut conn = PgConnection::connect_with(admin)
            .await
            .context("connecting to PostgreSQL")?;
        sqlx::query(&format!("drop database {name} with (force)"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
    }
    result
}

async fn measure(
    options: &PgConnectOptions,
    workload: Workload,
    args: &ReplayBenchArgs,
) -> anyhow::Result<Measured> {
    database::migrate(options).await?;
    let owner = PgPool::connect_with(options.clone()).await?;
    let log_pool = database::log_reader_pool(options, 4).await?;
    let started = Instant::now();
    let measured = match workload {
        Workload::Hierarchy => {
            let streams = args.events / EVENTS_PER_STREAM;
            println!(
                "hierarchy: generating {} organization events: {streams} streams of {EVENTS_PER_STREAM}, {} tenants",
                streams * EVENTS_PER_STREAM,
                args.tenants
            );
            generate(&owner, streams, args.tenants).await?;
            ready(&owner, started).await?;
            let (summary, measured) =
                replay_beside_scan(OrganizationHierarchy, &owner, &log_pool, args).await?;
            ensure!(
                summary.events == streams * EVENTS_PER_STREAM,
                "the replay applied {} events, {} were written",
                summary.events,
                streams * EVENTS_PER_STREAM
            );
            check_rebuilt(&owner, streams).await?;
            measured
        }
        Workload::Ledger => {
            let entries = args.lines / 3;
            println!(
                "ledger: generating {entries} journal entries ({} lines) in one organization's books",
                entries * 3
            );
            let writer = database::role_pool(options, DbRole::Writer, 1).await?;
            let books = ledger_bench::open_books(&EventStore::new(writer.clone())).await?;
            writer.close().await;
            ledger_bench::write_postings(&owner, &books, entries).await?;
            ready(&owner, started).await?;
            let (_, measured) = replay_beside_scan(GeneralLedger, &owner, &log_pool, args).await?;
            check_ledger(&owner, entries).await?;
            measured
        }
    };
    owner.close().await;
    log_pool.close().await;
    Ok(measured)
}

/// What autovacuum would have done to a log this old: hint bits set, statistics current.
async fn ready(owner: &PgPool, started: Instant) -> anyhow::Result<()> {
    sqlx::query("vacuum analyze events").execute(owner).await?;
    println!("generated in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The scan ceiling over `P`'s events, then a full replay of `P`; checks that both saw every
/// event of `P` in the log.
async fn replay_beside_scan<P: Projection>(
    projection: P,
    owner: &PgPool,
    log_pool: &PgPool,
    args: &ReplayBenchArgs,
) -> anyhow::Result<(Summary, Measured)> {
    let in_log: i64 =
        sqlx::query_scalar("select count(*) from events where aggregate_type = any($1)")
            .bind(P::AGGREGATE_TYPES)
            .fetch_one(owner)
            .await?;
    let in_log = u64::try_from(in_log)?;
    let log = LogReader::new(log_pool.clone());
    let filter = LogFilter::default().aggregate_types(P::AGGREGATE_TYPES.iter().copied());
    let (scanned, scan_time) = scan(&log, &filter, args.page_size).await?;
    ensure!(
        scanned == in_log,
        "the scan read {scanned} events, the log holds {in_log}"
    );
    let scan_rate = scanned as f64 / scan_time.as_secs_f64().max(1e-9);
    println!(
        "scan: {scanned} events in pages of {} in {:.2} s ({scan_rate:.0} events/s)",
        args.page_size,
        scan_time.as_secs_f64()
    );

    let display = ProgressDisplay::new();
    let summary = Replay::new(
        projection,
        owner.clone(),
        log,
        ReplayOptions {
            page_size: args.page_size,
            ..ReplayOptions::default()
        },
    )
    .run(|progress| display.update(progress))
    .await;
    display.finish();
    let summary = summary?;
    ensure!(
        summary.events == in_log,
        "the replay applied {} events, the log holds {in_log}",
        summary.events
    );
    println!(
        "replay: {} events in {:.2} s, {} rows written",
        summary.events,
        summary.elapsed.as_secs_f64(),
        summary.rows_written
    );
    let replay_rate = summary.events_per_second();
    println!(
        "replay: {replay_rate:.0} events/s (scan ceiling {scan_rate:.0} events/s, ratio {:.2})",
        replay_rate / scan_rate
    );
    Ok((
        summary,
        Measured {
            projection: P::NAME,
            replay_rate,
            scan_rate,
        },
    ))
}

/// Reads the projection's log page by page, as the replay's reader does.
async fn scan(
    log: &LogReader,
    filter: &LogFilter,
    page_size: u32,
) -> anyhow::Result<(u64, Duration)> {
    let started = Instant::now();
    let mut position = LogPosition::START;
    let mut events = 0u64;
    loop {
        let page = log.read_batch(position, filter, page_size).await?;
        events += page.len() as u64;
        let Some(last) = page.last() else { break };
        position = last.position();
        if page.len() < page_size as usize {
            break;
        }
    }
    Ok((events, started.elapsed()))
}

/// The rebuilt general ledger holds every generated line, and balances: per account, the
/// balances equal the lines' sums, and debits equal credits.
async fn check_ledger(owner: &PgPool, entries: u64) -> anyhow::Result<()> {
    let lines: i64 = sqlx::query_scalar("select count(*) from fin_entry_lines")
        .fetch_one(owner)
        .await?;
    ensure!(
        u64::try_from(lines)? == entries * 3,
        "the rebuilt general ledger holds {lines} lines, {} were posted",
        entries * 3
    );
    // Accounts whose monthly balances disagree with their lines; and the whole ledger's sides.
    let (disagreeing, debit, credit): (i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from (
                    select account_id, sum(debit) as debit, sum(credit) as credit from fin_entry_lines group by account_id
                    except all
                    select account_id, sum(debit), sum(credit) from fin_account_balances group by account_id) as d),
                (select sum(debit)::bigint from fin_account_balances),
                (select sum(credit)::bigint from fin_account_balances)",
    )
    .fetch_one(owner)
    .await?;
    ensure!(
        disagreeing == 0 && debit == credit,
        "the rebuilt general ledger does not agree with itself: {disagreeing} accounts' balances differ from their lines; debits {debit}, credits {credit}"
    );
    Ok(())
}

/// The rebuilt tables hold what the generated streams describe.
async fn check_rebuilt(owner: &PgPool, streams: u64) -> anyhow::Result<()> {
    let streams = i64::try_from(streams)?;
    // Each table's rows, and how many of them the later events of a stream changed.
    let expected = [
        (
            "org_organizations",
            streams,
            "name like '% (renamed)'",
            streams,
        ),
        (
            "org_divisions",
            2 * streams,
            "status = 'active'",
            2 * streams,
        ),
        (
            "org_projects",
            4 * streams,
            "name like '% (renamed)'",
            streams,
        ),
        ("org_sites", 8 * streams, "status = 'archived'", streams),
    ];
    for (table, rows, condition, changed) in expected {
        let (count, matching): (i64, i64) = sqlx::query_as(&format!(
            "select count(*), count(*) filter (where {condition}) from {table}"
        ))
        .fetch_one(owner)
        .await?;
        ensure!(
            count == rows && matching == changed,
            "the rebuilt {table} has {count} rows, {matching} with {condition}; expected {rows} and {changed}"
        );
    }
    Ok(())
}

/// Writes `streams` organization streams of [`EVENTS_PER_STREAM`] events, [`INTERLEAVED_STREAMS`]
/// at a time, one INSERT of [`INSERT_CHUNK`] events per transaction.
async fn generate(owner: &PgPool, streams: u64, tenants: u64) -> anyhow::Result<()> {
    let tenant_ids: Vec<Uuid> = (0..tenants).map(|_| Uuid::now_v7()).collect();
    let mut chunk = EventRows::default();
    let mut written = 0u64;
    let mut last_line = Instant::now();
    for window_start in (0..streams).step_by(INTERLEAVED_STREAMS as usize) {
        let window: Vec<(Uuid, String, Vec<OrganizationEvent>)> = (window_start
            ..streams.min(window_start + INTERLEAVED_STREAMS))
            .map(|n| {
                let tenant = tenant_ids[(n % tenants) as usize];
                let organization_id = OrganizationId::new();
                company_life(n, organization_id)
                    .map(|events| (tenant, organization_id.to_string(), events))
            })
            .collect::<anyhow::Result<_>>()?;
        for (sequence, step) in (1..).zip(0..EVENTS_PER_STREAM as usize) {
            for (tenant, stream, events) in &window {
                chunk.push(*tenant, stream, sequence, &events[step])?;
                if chunk.len() == INSERT_CHUNK {
                    written += chunk.insert(owner).await?;
                    if last_line.elapsed() >= Duration::from_secs(2) {
                        last_line = Instant::now();
                        eprintln!("generating: {written} events written");
                    }
                }
            }
        }
    }
    chunk.insert(owner).await?;
    Ok(())
}

/// The 20 events of organization number `n`.
fn company_life(n: u64, organization_id: OrganizationId) -> anyhow::Result<Vec<OrganizationEvent>> {
    let name = |text: &str| Name::parse(text).context("generated name");
    let code = |text: &str| Code::parse(text).context("generated code");
    let divisions = [DivisionId::new(), DivisionId::new()];
    let projects = [
        ProjectId::new(),
        ProjectId::new(),
        ProjectId::new(),
        ProjectId::new(),
    ];
    let sites: Vec<SiteId> = (0..8).map(|_| SiteId::new()).collect();
    let mut events = vec![OrganizationEvent::OrganizationCreated {
        organization_id,
        name: name(&format!("Builders {n} Ltd"))?,
        code: code(&format!("B{n}"))?,
        bin: Bin::parse("0028718210101")?,
        tin: Tin::parse("123456789012")?,
        base_currency: CurrencyCode::bdt(),
        fiscal_year_start: FiscalYearStart::default(),
    }];
    for (d, division_id) in divisions.iter().enumerate() {
        events.push(OrganizationEvent::DivisionCreated {
            division_id: *division_id,
            name: name(&format!("Division {d}"))?,
            code: code(&format!("D{d}"))?,
        });
    }
    for (p, project_id) in projects.iter().enumerate() {
        events.push(OrganizationEvent::ProjectCreated {
            project_id: *project_id,
            division_id: divisions[p / 2],
            name: name(&format!("Project {p}"))?,
            code: code(&format!("P{p}"))?,
        });
    }
    for (s, site_id) in sites.iter().enumerate() {
        events.push(OrganizationEvent::SiteCreated {
            site_id: *site_id,
            project_id: projects[s / 2],
            name: name(&format!("Site {s}"))?,
            code: code(&format!("S{s}"))?,
        });
    }
    events.extend([
        OrganizationEvent::OrganizationRenamed {
            organization_id,
            name: name(&format!("Builders {n} Ltd (renamed)"))?,
        },
        OrganizationEvent::ProjectRenamed {
            project_id: projects[0],
            name: name("Project 0 (renamed)")?,
        },
        OrganizationEvent::SiteRenamed {
            site_id: sites[1],
            name: name("Site 1 (renamed)")?,
        },
        OrganizationEvent::SiteMoved {
            site_id: sites[0],
            from_project_id: projects[0],
            to_project_id: projects[1],
        },
        OrganizationEvent::SiteArchived { site_id: sites[7] },
    ]);
    debug_assert_eq!(events.len() as u64, EVENTS_PER_STREAM);
    Ok(events)
}

/// Columns of a multi-row INSERT into `events`.
#[derive(Default)]
struct EventRows {
    tenants: Vec<Uuid>,
    aggregate_ids: Vec<String>,
    sequences: Vec<i64>,
    event_types: Vec<String>,
    payloads: Vec<Value>,
}

impl EventRows {
    fn len(&self) -> usize {
        self.tenants.len()
    }

    fn push(
        &mut self,
        tenant: Uuid,
        stream: &str,
        sequence: i64,
        event: &OrganizationEvent,
    ) -> anyhow::Result<()> {
        let (event_type, payload) = codec::encode(event)?;
        self.tenants.push(tenant);
        self.aggregate_ids.push(stream.to_owned());
        self.sequences.push(sequence);
        self.event_types.push(event_type);
        self.payloads.push(payload);
        Ok(())
    }

    /// Inserts the rows in one transaction and empties the buffer; returns how many.
    async fn insert(&mut self, owner: &PgPool) -> anyhow::Result<u64> {
        if self.tenants.is_empty() {
            return Ok(0);
        }
        let inserted = sqlx::query(
            "insert into events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version,
                                 payload, actor, command_id, correlation_id)
             select t, $2, a, s, e, '1', p, 'bench', gen_random_uuid(), gen_random_uuid()
             from unnest($1::uuid[], $3::text[], $4::int8[], $5::text[], $6::jsonb[]) as u (t, a, s, e, p)",
        )
        .bind(&self.tenants)
        .bind(Organization::TYPE)
        .bind(&self.aggregate_ids)
        .bind(&self.sequences)
        .bind(&self.event_types)
        .bind(&self.payloads)
        .execute(owner)
        .await?
        .rows_affected();
        *self = Self::default();
        Ok(inserted)
    }
}
