//! `vextrus bench replay`: how fast a full replay rebuilds the organization hierarchy, next to
//! the rate of merely scanning the same log in pages of the same size (design.md D6).
//!
//! The bench writes `--events` organization events into a fresh database, as the owner and a
//! chunk per transaction (generating them through the command path would measure the append path
//! instead). Each organization stream is one company's life: it is created, gains two divisions,
//! four projects and eight sites, is renamed, renames a project and a site, moves a site and
//! archives one (20 events). Streams belong to `--tenants` tenants round robin, and a window of
//! streams is written interleaved, so that a page of the log mixes creations with updates of rows
//! saved pages earlier, as a real log does.
//!
//! Then, in the same run: the scan ceiling (`LogReader::read_batch` page after page, decoding
//! nothing further), and the replay itself (`Replay::run`, from reading to swap). The replay's
//! result is checked against the generated counts before any figure is printed.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Args;
use cqrs_es::Aggregate;
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;
use vextrus::database;
use vextrus_commands::codec;
use vextrus_commands::{DbRole, LogFilter, LogPosition, LogReader};
use vextrus_domain::ids::{DivisionId, OrganizationId, ProjectId, SiteId};
use vextrus_domain::organization::{Organization, OrganizationEvent};
use vextrus_domain::values::{Bin, Code, CurrencyCode, FiscalYearStart, Name, Tin};
use vextrus_projections::organization::OrganizationHierarchy;
use vextrus_replay::{Replay, ReplayOptions};

use super::replay::ProgressDisplay;

#[derive(Debug, Args)]
pub struct ReplayBenchArgs {
    /// Events to generate and replay (rounded down to whole organization streams of 20).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(20..=50_000_000))]
    events: u64,
    /// Tenants the organizations belong to, round robin.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    tenants: u64,
    /// Events per page, for the replay and for the scan alike.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    page_size: u32,
}

/// Events in one generated organization stream.
const EVENTS_PER_STREAM: u64 = 20;
/// Streams written interleaved: an organization's last events land about this many events after
/// its first, a page or two later.
const INTERLEAVED_STREAMS: u64 = 1_000;
/// Events per INSERT (and per transaction) while generating.
const INSERT_CHUNK: usize = 10_000;

pub async fn replay(
    args: ReplayBenchArgs,
    external: Option<PgConnectOptions>,
) -> anyhow::Result<()> {
    let streams = args.events / EVENTS_PER_STREAM;
    let events = streams * EVENTS_PER_STREAM;
    ensure!(
        args.tenants <= streams,
        "--tenants ({}) must not exceed the organizations generated ({streams})",
        args.tenants
    );
    let (admin, cluster) = super::bench::bench_server(external).await?;
    let name = format!(
        "vextrus_bench_replay_{}",
        &Uuid::now_v7().simple().to_string()[..12]
    );
    let mut conn = PgConnection::connect_with(&admin)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::query(&format!("create database {name}"))
        .execute(&mut conn)
        .await?;
    let options = admin.clone().database(&name);
    let result = measure(&options, &args, streams, events).await;
    if cluster.is_none() {
        sqlx::query(&format!("drop database {name} with (force)"))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await?;
    super::stop(cluster).await;
    result
}

async fn measure(
    options: &PgConnectOptions,
    args: &ReplayBenchArgs,
    streams: u64,
    events: u64,
) -> anyhow::Result<()> {
    database::migrate(options).await?;
    let owner = PgPool::connect_with(options.clone()).await?;
    let projector = database::role_pool(options, DbRole::Projector, 4).await?;

    println!(
        "generating {events} organization events: {streams} streams of {EVENTS_PER_STREAM}, {} tenants",
        args.tenants
    );
    let started = Instant::now();
    generate(&owner, streams, args.tenants).await?;
    // What autovacuum would have done to a log this old: hint bits set, statistics current.
    sqlx::query("vacuum analyze events").execute(&owner).await?;
    println!("generated in {:.1} s", started.elapsed().as_secs_f64());

    let log = LogReader::new(projector.clone());
    let (scanned, scan_time) = scan(&log, args.page_size).await?;
    ensure!(
        scanned == events,
        "the scan read {scanned} events, {events} were written"
    );
    let scan_rate = scanned as f64 / scan_time.as_secs_f64().max(1e-9);
    println!(
        "scan: {scanned} events in pages of {} in {:.2} s ({scan_rate:.0} events/s)",
        args.page_size,
        scan_time.as_secs_f64()
    );

    let display = ProgressDisplay::new();
    let summary = Replay::new(
        OrganizationHierarchy,
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
        summary.events == events,
        "the replay applied {} events, {events} were written",
        summary.events
    );
    check_rebuilt(&owner, streams).await?;
    println!(
        "replay: {} events in {:.2} s, {} rows written",
        summary.events,
        summary.elapsed.as_secs_f64(),
        summary.rows_written
    );
    let rate = summary.events_per_second();
    println!(
        "replay: {rate:.0} events/s (scan ceiling {scan_rate:.0} events/s, ratio {:.2})",
        rate / scan_rate
    );
    owner.close().await;
    projector.close().await;
    Ok(())
}

/// Reads the whole organization log page by page, as the replay's reader does.
async fn scan(log: &LogReader, page_size: u32) -> anyhow::Result<(u64, Duration)> {
    let filter = LogFilter::default().aggregate_types([Organization::TYPE]);
    let started = Instant::now();
    let mut position = LogPosition::START;
    let mut events = 0u64;
    loop {
        let page = log.read_batch(position, &filter, page_size).await?;
        events += page.len() as u64;
        let Some(last) = page.last() else { break };
        position = last.position();
        if page.len() < page_size as usize {
            break;
        }
    }
    Ok((events, started.elapsed()))
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
