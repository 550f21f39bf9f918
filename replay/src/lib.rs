//! # vextrus-replay
//!
//! Rebuilding a projection's read model from the log without downtime (design.md D6).
//!
//! [`Replay`] runs the projection's own code (the same `apply` as the live runner and the Kafka
//! workers) over the log from position 0, keeping the rebuilt rows in memory; pages are read
//! ahead while the previous one is applied. Then:
//!
//! 1. it writes the rows into bare shadow tables (schema `vextrus_replay`, shaped like the live
//!    ones) with `COPY … FREEZE` (`copy_to_shadow`, two tables at a time), each table followed
//!    on its connection by its keys and, for a full swap, its other indexes and statistics
//!    (`FinishShadow`): building an index over loaded rows is cheaper than maintaining it row by
//!    row, and frozen rows need no vacuum;
//! 2. it catches up to the log's head outside any lock, saving each page with the projection's
//!    multi-row upserts (`save`);
//! 3. in one short transaction it takes the projection's swap lock (live batches finish and
//!    wait), applies the last few events, gives the shadow tables their row-level security,
//!    policies and grants, and swaps them in (`vextrus_replay_swap`) — or, for one tenant,
//!    replaces that tenant's rows only. The checkpoint moves with it, and the runner, seeing a new
//!    generation, reloads it.
//!
//! Readers see the old read model or the new one, never a half-built one. A replay that is
//! interrupted leaves the live tables untouched (the next one starts over); two replays of one
//! projection cannot run at once (an advisory lock). `--dry-run` compares instead of swapping.
//! [`rebuild_if_outdated`] runs one when a projection's version changed.

mod status;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;
use tracing::{info, warn};
use uuid::Uuid;
use vextrus_commands::{LogFilter, LogPosition, LogReader, RecordedEvent};
use vextrus_domain::TenantId;
use vextrus_projections::{
    AfterCopy, AfterCopyFuture, Projection, ReadModel, SHADOW_SCHEMA, Target,
};

pub use status::{ProjectionReport, ReplayReport, projection_reports};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("another replay of {0} is running; wait for it to finish")]
    AlreadyRunning(&'static str),
    #[error("the event at log position {position} cannot be applied: {reason}")]
    Poison { position: i64, reason: String },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Why a replay runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// An operator asked for it (`vextrus replay`).
    Operator,
    /// The projection's version changed.
    Version,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Version => "version",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Rebuild only this tenant's rows; other tenants' rows are not touched.
    pub tenant: Option<TenantId>,
    /// Build and compare with the live tables; swap nothing.
    pub dry_run: bool,
    /// At most this many events per second, so that replay leaves room for live traffic.
    pub max_rate: Option<u32>,
    /// Events per page read from the log, and per save.
    pub page_size: u32,
    pub reason: Reason,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self {
            tenant: None,
            dry_run: false,
            max_rate: None,
            page_size: 10_000,
            reason: Reason::Operator,
        }
    }
}

/// What a replay is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Applying the log to the rebuilt rows, in memory.
    Building,
    /// Writing the rebuilt rows into the shadow tables and building their keys and indexes.
    Writing,
    /// In the swap transaction.
    Swapping,
    /// Comparing the shadow with the live tables (dry run).
    Comparing,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Building => "building",
            Self::Writing => "writing",
            Self::Swapping => "swapping",
            Self::Comparing => "comparing",
        }
    }
}

/// How far a replay got; reported after every page.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub phase: Phase,
    pub events_done: u64,
    /// The projection's events in the log when the replay started (more may arrive).
    pub events_total: u64,
    pub rows_written: u64,
    pub elapsed: Duration,
}

/// How a shadow table differs from its live table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDiff {
    pub table: &'static str,
    /// Rows only the rebuilt table has.
    pub added: u64,
    /// Rows only the live table has.
    pub removed: u64,
    /// Rows both have, with different contents.
    pub changed: u64,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    /// The rebuilt read model is live, up to this log position.
    Swapped { position: LogPosition },
    /// Nothing swapped: how the rebuilt tables differ from the live ones.
    DryRun { differences: Vec<TableDiff> },
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub events: u64,
    pub rows_written: u64,
    pub elapsed: Duration,
    pub outcome: Outcome,
}

impl Summary {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// What follows a shadow table's COPY, on its connection: the live table's primary key and
/// unique constraints (the catch-up's upserts need them) and, for a swap of every tenant, its
/// other indexes and planner statistics. Building an index over loaded rows costs a sort where
/// maintaining it costs a tree descent per row; and a freshly written table has no statistics
/// until autovacuum passes (a million-line ledger's reports ran twice as slow meanwhile, `vextrus
/// bench ledger`). The COPY wrote the rows frozen and the pages all-visible, so no vacuum is
/// needed for index-only scans.
struct FinishShadow {
    full_swap: bool,
}

impl AfterCopy for FinishShadow {
    fn after_copy<'a>(
        &'a self,
        table: &'static str,
        conn: &'a mut PgConnection,
    ) -> AfterCopyFuture<'a> {
        Box::pin(async move {
            sqlx::query("select vextrus_replay_constrain(array[$1])")
                .bind(table)
                .execute(&mut *conn)
                .await?;
            if self.full_swap {
                sqlx::query("select vextrus_replay_index(array[$1])")
                    .bind(table)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(&format!("analyze {SHADOW_SCHEMA}.\"{table}\""))
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        })
    }
}

/// The swap lock's key: live batches hold it shared (`hold_off_swaps`), the swap exclusively.
const SWAP_LOCK: &str =
    "select pg_advisory_xact_lock(hashtextextended('vextrus.projection/' || $1, 0))";
/// How long the swap waits for readers of the live tables before giving up (and failing).
const SWAP_LOCK_TIMEOUT: &str = "set local lock_timeout = '30s'";
/// How often the replay's row in `projection_replays` is updated.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// One rebuild of projection `P`.
pub struct Replay<P: Projection> {
    projection: P,
    owner: PgPool,
    reader: LogReader,
    options: ReplayOptions,
}

/// The rebuilt rows in memory, and how far the replay got.
struct Build<R> {
    rows: R,
    position: LogPosition,
    events: u64,
    rows_written: u64,
    /// The last sequence per stream: the Kafka workers' dedupe record after a swap. Tracked
    /// only for a projection fed by Kafka.
    streams: Option<HashMap<(Uuid, String, String), i64>>,
}

impl<P: Projection> Replay<P> {
    /// `owner` connects as the owner of the tables (replay creates and swaps tables); `reader`
    /// reads the log (as `vextrus_projector`).
    pub fn new(projection: P, owner: PgPool, reader: LogReader, options: ReplayOptions) -> Self {
        Self {
            projection,
            owner,
            reader,
            options,
        }
    }

    /// Rebuilds, calling `on_progress` after every page. Refuses to start while another replay
    /// of the projection runs.
    pub async fn run(
        self,
        mut on_progress: impl FnMut(&Progress) + Send,
    ) -> Result<Summary, ReplayError> {
        let started = Instant::now();
        // Held by this session until the replay ends, however it ends.
        let mut lock = self.owner.acquire().await?.detach();
        let locked: bool = sqlx::query_scalar(
            "select pg_try_advisory_lock(hashtextextended('vextrus.replay/' || $1, 0))",
        )
        .bind(P::NAME)
        .fetch_one(&mut lock)
        .await?;
        if !locked {
            return Err(ReplayError::AlreadyRunning(P::NAME));
        }
        let filter = self.filter();
        let events_total: i64 = sqlx::query_scalar(
            "select count(*) from events where aggregate_type = any($1) and ($2::uuid is null or tenant_id = $2)",
        )
        .bind(P::AGGREGATE_TYPES)
        .bind(self.options.tenant.map(|tenant| tenant.as_uuid()))
        .fetch_one(&self.owner)
        .await?;
        let replay_id = Uuid::now_v7();
        sqlx::query(
            "insert into projection_replays (replay_id, projection, tenant_id, dry_run, reason, state, events_total)
             values ($1, $2, $3, $4, $5, 'building', $6)",
        )
        .bind(replay_id)
        .bind(P::NAME)
        .bind(self.options.tenant.map(|tenant| tenant.as_uuid()))
        .bind(self.options.dry_run)
        .bind(self.options.reason.as_str())
        .bind(events_total)
        .execute(&self.owner)
        .await?;
        info!(projection = P::NAME, tenant = ?self.options.tenant, dry_run = self.options.dry_run, events_total, "replay started");

        let mut reporter = Reporter {
            pool: self.owner.clone(),
            replay_id,
            events_total: u64::try_from(events_total).unwrap_or(0),
            started,
            last_report: started,
        };
        let result = self.rebuild(&filter, &mut reporter, &mut on_progress).await;
        let (state, detail) = match &result {
            Ok(summary) => ("finished", describe(summary)),
            Err(error) => ("failed", error.to_string()),
        };
        let recorded = sqlx::query(
            "update projection_replays set state = $2, detail = $3, finished_at = now(), updated_at = now(),
                    events_done = coalesce($4, events_done), rows_written = coalesce($5, rows_written)
             where replay_id = $1",
        )
        .bind(replay_id)
        .bind(state)
        .bind(&detail)
        .bind(result.as_ref().ok().map(|summary| summary.events as i64))
        .bind(result.as_ref().ok().map(|summary| summary.rows_written as i64))
        .execute(&self.owner)
        .await;
        if let Err(error) = recorded {
            warn!(%error, "could not record the replay's end");
        }
        if let Err(error) = sqlx::Connection::close(lock).await {
            warn!(%error, "closing the replay lock's connection");
        }
        result
    }

    fn filter(&self) -> LogFilter {
        let filter = LogFilter::default().aggregate_types(P::AGGREGATE_TYPES.iter().copied());
        match self.options.tenant {
            Some(tenant) => filter.tenant(tenant),
            None => filter,
        }
    }

    async fn rebuild(
        &self,
        filter: &LogFilter,
        reporter: &mut Reporter,
        on_progress: &mut (impl FnMut(&Progress) + Send),
    ) -> Result<Summary, ReplayError> {
        sqlx::query("select vextrus_replay_prepare($1)")
            .bind(P::TABLES)
            .execute(&self.owner)
            .await?;
        let fed_by: Option<String> =
            sqlx::query_scalar("select fed_by from projection_checkpoints where projection = $1")
                .bind(P::NAME)
                .fetch_optional(&self.owner)
                .await?;
        let kafka_fed = fed_by.as_deref() == Some("kafka");
        // One tenant's rows, next to a runner that goes on for the others, must end exactly at
        // the runner's checkpoint: the runner applies everything after it.
        let bounded_by_runner = self.options.tenant.is_some() && !kafka_fed;
        let mut build = Build {
            rows: P::Rows::default(),
            position: LogPosition::START,
            events: 0,
            rows_written: 0,
            streams: kafka_fed.then(HashMap::new),
        };
        let mut conn = self.owner.acquire().await?;

        // The bulk of the log, read a page ahead.
        let upper = if bounded_by_runner {
            Some(runner_checkpoint(&mut conn, P::NAME).await?)
        } else {
            None
        };
        let (pages, mut incoming) = mpsc::channel(2);
        let reader = self.reader.clone();
        let (page_filter, page_size) = (filter.clone(), self.options.page_size);
        let read_ahead = tokio::spawn(async move {
            let mut position = LogPosition::START;
            loop {
                let page = reader.read_batch(position, &page_filter, page_size).await;
                let page = match page {
                    Ok(page) => bounded(page, upper),
                    Err(error) => {
                        let _ = pages.send(Err(error)).await;
                        return;
                    }
                };
                let Some(last) = page.last() else { return };
                position = last.position();
                let full = page.len() == page_size as usize;
                if pages.send(Ok(page)).await.is_err() || !full {
                    return;
                }
            }
        });
        while let Some(page) = incoming.recv().await {
            self.apply_events(&mut build, &page?)?;
            self.report(reporter, &build, Phase::Building, on_progress)
                .await;
            self.throttle(reporter.started, build.events).await;
        }
        read_ahead.await.map_err(|join| {
            ReplayError::Database(sqlx::Error::Protocol(format!("log reader: {join}")))
        })?;

        // The rebuilt rows into the bare shadow tables, each followed on its connection by its
        // keys (and, for a swap of every tenant, its other indexes and statistics) while the
        // next table is written.
        self.report(reporter, &build, Phase::Writing, on_progress)
            .await;
        let finish = FinishShadow {
            full_swap: self.options.tenant.is_none() && !self.options.dry_run,
        };
        build.rows_written += build.rows.copy_to_shadow(&self.owner, &finish).await?;

        // Whatever arrived meanwhile, still outside any lock.
        self.catch_up(
            &mut conn,
            &mut build,
            filter,
            bounded_by_runner,
            reporter,
            on_progress,
        )
        .await?;

        let outcome = if self.options.dry_run {
            self.report(reporter, &build, Phase::Comparing, on_progress)
                .await;
            let differences = self.compare(&mut conn).await?;
            self.drop_shadow(&mut conn).await?;
            Outcome::DryRun { differences }
        } else {
            self.report(reporter, &build, Phase::Swapping, on_progress)
                .await;
            let position = self
                .swap(&mut conn, &mut build, filter, bounded_by_runner)
                .await?;
            Outcome::Swapped { position }
        };
        let summary = Summary {
            events: build.events,
            rows_written: build.rows_written,
            elapsed: reporter.started.elapsed(),
            outcome,
        };
        info!(
            projection = P::NAME,
            events = summary.events,
            rows = summary.rows_written,
            seconds = summary.elapsed.as_secs_f64(),
            events_per_second = summary.events_per_second(),
            "replay finished"
        );
        Ok(summary)
    }

    /// Applies one page to the rows in memory.
    fn apply_events(
        &self,
        build: &mut Build<P::Rows>,
        page: &[RecordedEvent],
    ) -> Result<(), ReplayError> {
        for event in page {
            self.projection
                .apply(&mut build.rows, event)
                .map_err(|error| ReplayError::Poison {
                    position: event.global_position.get(),
                    reason: error.to_string(),
                })?;
            if let Some(streams) = &mut build.streams {
                streams.insert(
                    (
                        event.tenant_id.as_uuid(),
                        event.aggregate_type.clone(),
                        event.aggregate_id.clone(),
                    ),
                    event.sequence,
                );
            }
            build.position = event.position();
        }
        build.events += page.len() as u64;
        Ok(())
    }

    /// Applies the events after the build's position up to the log's watermark (or, bounded by
    /// the runner, up to its checkpoint), page by page.
    async fn catch_up(
        &self,
        conn: &mut PgConnection,
        build: &mut Build<P::Rows>,
        filter: &LogFilter,
        bounded_by_runner: bool,
        reporter: &mut Reporter,
        on_progress: &mut (impl FnMut(&Progress) + Send),
    ) -> Result<(), ReplayError> {
        while self
            .next_page(&mut *conn, build, filter, bounded_by_runner)
            .await?
        {
            self.report(reporter, build, Phase::Building, on_progress)
                .await;
        }
        Ok(())
    }

    /// Reads and applies the next page after the build's position (bounded by the runner's
    /// checkpoint when asked); false when there was none.
    async fn next_page(
        &self,
        conn: &mut PgConnection,
        build: &mut Build<P::Rows>,
        filter: &LogFilter,
        bounded_by_runner: bool,
    ) -> Result<bool, ReplayError> {
        let upper = if bounded_by_runner {
            Some(runner_checkpoint(&mut *conn, P::NAME).await?)
        } else {
            None
        };
        let page = self
            .reader
            .read_batch(build.position, filter, self.options.page_size)
            .await?;
        let page = bounded(page, upper);
        if page.is_empty() {
            return Ok(false);
        }
        self.apply_events(build, &page)?;
        build.rows_written += build.rows.save(conn, Target::Shadow).await?;
        Ok(true)
    }

    /// The swap transaction; returns the position the live read model is at afterwards. For a
    /// projection fed by Kafka, the dedupe record is replaced with the rebuilt one too.
    async fn swap(
        &self,
        conn: &mut PgConnection,
        build: &mut Build<P::Rows>,
        filter: &LogFilter,
        bounded_by_runner: bool,
    ) -> Result<LogPosition, ReplayError> {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::query(SWAP_LOCK_TIMEOUT).execute(&mut *tx).await?;
        // Live batches finish; new ones wait until this transaction ends.
        sqlx::query(SWAP_LOCK)
            .bind(P::NAME)
            .execute(&mut *tx)
            .await?;
        // The last events, now that nothing live moves.
        while self
            .next_page(&mut tx, build, filter, bounded_by_runner)
            .await?
        {}
        match self.options.tenant {
            None => {
                sqlx::query("select vextrus_replay_protect($1)")
                    .bind(P::TABLES)
                    .execute(&mut *tx)
                    .await?;
                if let Some(streams) = &build.streams {
                    sqlx::query("delete from projection_stream_positions where projection = $1")
                        .bind(P::NAME)
                        .execute(&mut *tx)
                        .await?;
                    insert_stream_positions(&mut tx, P::NAME, streams).await?;
                }
                sqlx::query("select vextrus_replay_swap($1)")
                    .bind(P::TABLES)
                    .execute(&mut *tx)
                    .await?;
                // The runner sees the new generation and goes on from here.
                sqlx::query(
                    "insert into projection_checkpoints (projection, version, fed_by)
                     values ($1, $2, 'log') on conflict (projection) do nothing",
                )
                .bind(P::NAME)
                .bind(P::VERSION)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "update projection_checkpoints
                     set version = $2, transaction_id = $3::text::xid8, global_position = $4,
                         events_applied = $5, state = 'running', stopped_at = null, stop_reason = null,
                         generation = generation + 1, updated_at = now()
                     where projection = $1",
                )
                .bind(P::NAME)
                .bind(P::VERSION)
                .bind(build.position.transaction_id.to_string())
                .bind(build.position.global_position)
                .bind(build.events as i64)
                .execute(&mut *tx)
                .await?;
            }
            Some(tenant) => {
                sqlx::query("select vextrus_set_tenant($1)")
                    .bind(tenant.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                // Explicitly the tenant's rows: row-level security agrees, and a superuser (whom
                // it does not confine) touches no other tenant either.
                for table in P::TABLES {
                    sqlx::query(&format!("delete from public.{table} where tenant_id = $1"))
                        .bind(tenant.as_uuid())
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(&format!(
                        "insert into public.{table} select * from {SHADOW_SCHEMA}.{table} where tenant_id = $1"
                    ))
                    .bind(tenant.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                }
                if let Some(streams) = &build.streams {
                    sqlx::query(
                        "delete from projection_stream_positions where projection = $1 and tenant_id = $2",
                    )
                    .bind(P::NAME)
                    .bind(tenant.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                    insert_stream_positions(&mut tx, P::NAME, streams).await?;
                }
            }
        }
        tx.commit().await?;
        if self.options.tenant.is_some() {
            self.drop_shadow(conn).await?;
        }
        Ok(build.position)
    }

    /// Row counts by which each shadow table differs from its live table, tenant by tenant (the
    /// live tables show one tenant at a time).
    async fn compare(&self, conn: &mut PgConnection) -> Result<Vec<TableDiff>, ReplayError> {
        let tenants: Vec<Uuid> = match self.options.tenant {
            Some(tenant) => vec![tenant.as_uuid()],
            None => {
                sqlx::query_scalar(
                    "select distinct tenant_id from events where aggregate_type = any($1)",
                )
                .bind(P::AGGREGATE_TYPES)
                .fetch_all(&mut *conn)
                .await?
            }
        };
        let mut differences = Vec::new();
        for table in P::TABLES {
            let key: Vec<String> = sqlx::query_scalar(
                "select a.attname::text from pg_index i
                 join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
                 where i.indrelid = format('public.%I', $1::text)::regclass and i.indisprimary",
            )
            .bind(table)
            .fetch_all(&mut *conn)
            .await?;
            let key = key.join(", ");
            let mut diff = TableDiff {
                table,
                added: 0,
                removed: 0,
                changed: 0,
            };
            for tenant in &tenants {
                let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                sqlx::query("select vextrus_set_tenant($1)")
                    .bind(tenant)
                    .execute(&mut *tx)
                    .await?;
                let (added, removed, changed): (i64, i64, i64) = sqlx::query_as(&format!(
                    "select count(*) filter (where live.tenant_id is null),
                            count(*) filter (where rebuilt.tenant_id is null),
                            count(*) filter (where live.tenant_id is not null and rebuilt.tenant_id is not null
                                             and rebuilt is distinct from live)
                     from (select * from {SHADOW_SCHEMA}.{table} where tenant_id = $1) rebuilt
                     full join (select * from public.{table} where tenant_id = $1) live using ({key})"
                ))
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await?;
                tx.rollback().await?;
                diff.added += added as u64;
                diff.removed += removed as u64;
                diff.changed += changed as u64;
            }
            differences.push(diff);
        }
        Ok(differences)
    }

    async fn drop_shadow(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        for table in P::TABLES {
            sqlx::query(&format!("drop table if exists {SHADOW_SCHEMA}.{table}"))
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    async fn report(
        &self,
        reporter: &mut Reporter,
        build: &Build<P::Rows>,
        phase: Phase,
        on_progress: &mut (impl FnMut(&Progress) + Send),
    ) {
        let progress = Progress {
            phase,
            events_done: build.events,
            events_total: reporter.events_total.max(build.events),
            rows_written: build.rows_written,
            elapsed: reporter.started.elapsed(),
        };
        on_progress(&progress);
        reporter.record(&progress).await;
    }

    /// Sleeps as long as the replay is ahead of `max_rate`.
    async fn throttle(&self, started: Instant, events: u64) {
        if let Some(rate) = self.options.max_rate.filter(|rate| *rate > 0) {
            let due = Duration::from_secs_f64(events as f64 / f64::from(rate));
            if let Some(ahead) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(ahead).await;
            }
        }
    }
}

/// Updates the replay's row in `projection_replays`, at most once per [`REPORT_INTERVAL`].
struct Reporter {
    pool: PgPool,
    replay_id: Uuid,
    events_total: u64,
    started: Instant,
    last_report: Instant,
}

impl Reporter {
    async fn record(&mut self, progress: &Progress) {
        if self.last_report.elapsed() < REPORT_INTERVAL {
            return;
        }
        self.last_report = Instant::now();
        let updated = sqlx::query(
            "update projection_replays set events_done = $2, rows_written = $3, updated_at = now()
             where replay_id = $1",
        )
        .bind(self.replay_id)
        .bind(progress.events_done as i64)
        .bind(progress.rows_written as i64)
        .execute(&self.pool)
        .await;
        if let Err(error) = updated {
            warn!(%error, "could not record the replay's progress");
        }
    }
}

/// The events of `page` at or before `upper`.
fn bounded(mut page: Vec<RecordedEvent>, upper: Option<LogPosition>) -> Vec<RecordedEvent> {
    if let Some(upper) = upper {
        page.retain(|event| event.position() <= upper);
    }
    page
}

/// The single-node runner's checkpoint.
async fn runner_checkpoint(
    conn: &mut PgConnection,
    projection: &str,
) -> Result<LogPosition, sqlx::Error> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "select transaction_id::text::bigint, global_position from projection_checkpoints where projection = $1",
    )
    .bind(projection)
    .fetch_optional(conn)
    .await?;
    Ok(
        row.map_or(LogPosition::START, |(transaction_id, global_position)| {
            LogPosition {
                transaction_id: u64::try_from(transaction_id).unwrap_or(0),
                global_position,
            }
        }),
    )
}

async fn insert_stream_positions(
    conn: &mut PgConnection,
    projection: &str,
    streams: &HashMap<(Uuid, String, String), i64>,
) -> Result<(), sqlx::Error> {
    let mut tenants = Vec::with_capacity(streams.len());
    let mut types = Vec::with_capacity(streams.len());
    let mut ids = Vec::with_capacity(streams.len());
    let mut sequences = Vec::with_capacity(streams.len());
    for ((tenant, aggregate_type, aggregate_id), sequence) in streams {
        tenants.push(*tenant);
        types.push(aggregate_type.as_str());
        ids.push(aggregate_id.as_str());
        sequences.push(*sequence);
    }
    sqlx::query(
        "insert into projection_stream_positions (tenant_id, projection, aggregate_type, aggregate_id, sequence)
         select t, $2, a, i, s from unnest($1::uuid[], $3::text[], $4::text[], $5::int8[]) as u (t, a, i, s)",
    )
    .bind(tenants)
    .bind(projection)
    .bind(types)
    .bind(ids)
    .bind(sequences)
    .execute(conn)
    .await
    .map(drop)
}

fn describe(summary: &Summary) -> String {
    match &summary.outcome {
        Outcome::Swapped { position } => format!(
            "swapped in at log position {}: {} events, {} rows, {:.1} s",
            position.global_position,
            summary.events,
            summary.rows_written,
            summary.elapsed.as_secs_f64()
        ),
        Outcome::DryRun { differences } => {
            let parts: Vec<String> = differences
                .iter()
                .map(|d| format!("{}: +{} -{} ~{}", d.table, d.added, d.removed, d.changed))
                .collect();
            format!("dry run, nothing swapped: {}", parts.join(", "))
        }
    }
}

/// When the projection's recorded version is not this build's, rebuilds it (the old read model
/// serves until the swap), calling `on_progress` as [`Replay::run`] does. If another process is
/// already rebuilding it, waits for that. Returns the summary of a rebuild this call ran.
pub async fn rebuild_if_outdated<P: Projection + Clone>(
    projection: P,
    owner: PgPool,
    reader: LogReader,
    mut on_progress: impl FnMut(&Progress) + Send,
) -> Result<Option<Summary>, ReplayError> {
    loop {
        let recorded: Option<i32> =
            sqlx::query_scalar("select version from projection_checkpoints where projection = $1")
                .bind(P::NAME)
                .fetch_optional(&owner)
                .await?;
        match recorded {
            None => return Ok(None),
            Some(version) if version == P::VERSION => return Ok(None),
            Some(version) => {
                info!(
                    projection = P::NAME,
                    from = version,
                    to = P::VERSION,
                    "projection version changed: rebuilding"
                );
                let options = ReplayOptions {
                    reason: Reason::Version,
                    ..ReplayOptions::default()
                };
                match Replay::new(projection.clone(), owner.clone(), reader.clone(), options)
                    .run(&mut on_progress)
                    .await
                {
                    Err(ReplayError::AlreadyRunning(_)) => {
                        // Another process rebuilds it: its progress, as it records it.
                        let theirs: Option<(i64, i64, i64, f64)> = sqlx::query_as(
                            "select events_done, events_total, rows_written,
                                    extract(epoch from now() - started_at)::float8
                             from projection_replays where projection = $1 and state = 'building'
                             order by started_at desc limit 1",
                        )
                        .bind(P::NAME)
                        .fetch_optional(&owner)
                        .await?;
                        let (done, total, rows, seconds) = theirs.unwrap_or_default();
                        on_progress(&Progress {
                            phase: Phase::Building,
                            events_done: u64::try_from(done).unwrap_or(0),
                            events_total: u64::try_from(total).unwrap_or(0),
                            rows_written: u64::try_from(rows).unwrap_or(0),
                            elapsed: Duration::from_secs_f64(seconds.max(0.0)),
                        });
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    other => return other.map(Some),
                }
            }
        }
    }
}
