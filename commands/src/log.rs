//! Reading the log back in commit order (design.md D3). One reader serves the projection runner,
//! the Kafka relay and replay.
//!
//! `global_position` is assigned at INSERT, not at COMMIT: a slow transaction can hold position 10
//! while position 11 commits first. A reader that took `global_position > last` would read 11,
//! move on, and never see 10. So the reader orders by `(transaction_id, global_position)` and only
//! returns rows of transactions older than the oldest one still running
//! (`pg_snapshot_xmin(pg_current_snapshot())`). Every transaction below that watermark has
//! finished, so nothing can later appear behind the checkpoint: gap-free without heuristics. A long
//! writing transaction holds the watermark back (delay, never a skip).

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use tokio::sync::watch;
use uuid::Uuid;
use vextrus_domain::TenantId;

use crate::codec;
use crate::metadata::GlobalPosition;

/// A place in the commit-ordered log: everything up to and including this event has been read.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct LogPosition {
    /// The appending transaction's id (`xid8`).
    pub transaction_id: u64,
    /// The event's `global_position`: the order within one transaction.
    pub global_position: i64,
}

impl LogPosition {
    /// Before the first event.
    pub const START: Self = Self {
        transaction_id: 0,
        global_position: 0,
    };

    /// After every event of the transactions before `transaction_id`, if there are any.
    pub fn before_transaction(transaction_id: u64) -> Option<Self> {
        transaction_id.checked_sub(1).map(|previous| Self {
            transaction_id: previous,
            global_position: i64::MAX,
        })
    }
}

/// Which events a reader wants. The default is every event of every tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub tenant: Option<TenantId>,
    /// Only these aggregate types; `None` for all.
    pub aggregate_types: Option<Vec<String>>,
}

impl LogFilter {
    /// Only events of `tenant`.
    pub fn tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// Only events of these aggregate types.
    pub fn aggregate_types<I: IntoIterator<Item = S>, S: Into<String>>(mut self, types: I) -> Self {
        self.aggregate_types = Some(types.into_iter().map(Into::into).collect());
        self
    }
}

/// One row of `events` with everything it records.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub tenant_id: TenantId,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub actor: String,
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub request_id: Option<String>,
    pub request_metadata: Value,
    pub recorded_at: DateTime<Utc>,
    pub global_position: GlobalPosition,
    pub transaction_id: u64,
}

/// The select list matching [`RecordedEvent::from_row`], which reads the columns by position
/// in this order (looking a column up by name costs a hash and a comparison per field, a
/// replay reads millions).
pub(crate) const RECORDED_EVENT_COLUMNS: &str = "tenant_id, aggregate_type, aggregate_id, sequence, event_type, \
     event_version, payload, actor, command_id, correlation_id, causation_id, request_id, request_metadata, \
     recorded_at, global_position, transaction_id::text::bigint as transaction_id";

impl RecordedEvent {
    /// A row selected with [`RECORDED_EVENT_COLUMNS`].
    pub(crate) fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let transaction_id: i64 = row.try_get(15)?;
        Ok(Self {
            tenant_id: TenantId::from_uuid(row.try_get(0)?),
            aggregate_type: row.try_get(1)?,
            aggregate_id: row.try_get(2)?,
            sequence: row.try_get(3)?,
            event_type: row.try_get(4)?,
            event_version: row.try_get(5)?,
            payload: row.try_get(6)?,
            actor: row.try_get(7)?,
            command_id: row.try_get(8)?,
            correlation_id: row.try_get(9)?,
            causation_id: row.try_get(10)?,
            request_id: row.try_get(11)?,
            request_metadata: row.try_get(12)?,
            recorded_at: row.try_get(13)?,
            global_position: GlobalPosition::new(row.try_get(14)?),
            // xid8 is a 64-bit counter that starts far below i64::MAX; a negative value is corrupt.
            transaction_id: u64::try_from(transaction_id)
                .map_err(|error| sqlx::Error::Decode(Box::new(error)))?,
        })
    }

    /// Where this event is in the commit-ordered log; a checkpoint after reading it.
    pub fn position(&self) -> LogPosition {
        LogPosition {
            transaction_id: self.transaction_id,
            global_position: self.global_position.get(),
        }
    }

    /// The event as the aggregate's event type.
    pub fn decode<E: DeserializeOwned>(&self) -> Result<E, serde_json::Error> {
        codec::decode(&self.event_type, &self.payload)
    }
}

/// The settings of a log reader's connections ([`log_reader_pool_options`](crate::log_reader_pool_options)).
/// Each page read is then planned once per connection, as a generic plan, and that plan can only
/// be the walk of `events_tail_idx` (or, for one tenant, of `events_audit_tenant_idx`), which
/// returns the rows in commit order: a sequential or bitmap scan and a sort are ruled out. A
/// custom plan per read cost 53–77 µs of planning for 12–19 µs of execution, and on a young or
/// unanalyzed log the planner chose a scan of the whole log and a sort for every page (README,
/// "Reading the log"). JIT is off: a generic plan's estimate grows with the log and passed
/// `jit_above_cost` on a 10-million-event log, compiling every read (4 ms). The reader's other
/// statements (a stream's events, one position, the watermark, the last position before a
/// point) are index lookups under these settings too.
pub const READ_PLAN_SETTINGS: &str = "set plan_cache_mode = force_generic_plan; set jit = off; \
     set enable_seqscan = off; set enable_bitmapscan = off; set enable_sort = off;";

/// The statement that reads a page of the log after a position with `filter`: parameters
/// `$1` (the position's transaction id as text), `$2` (its global position), then the tenant and
/// the aggregate types when the filter has them, then the page size. Only the filters asked for
/// are in the statement (one prepared statement per combination).
pub fn page_statement(filter: &LogFilter) -> String {
    // With `($3::uuid is null or tenant_id = $3)` and the like, the cached plan estimated about
    // one row and, on a young log, chose a bitmap scan of the whole tail after the position,
    // sorted, then cut to the page: 10 ms for a page of 1,000 events 20,000 behind, against
    // 0.7 ms walking `events_tail_idx` (README, "A long log").
    let mut sql = format!(
        "select {RECORDED_EVENT_COLUMNS}
         from events
         where (transaction_id, global_position) > ($1::text::xid8, $2)
           and transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
    );
    let mut parameter = 3;
    if filter.tenant.is_some() {
        sql.push_str(&format!(" and tenant_id = ${parameter}"));
        parameter += 1;
    }
    if filter.aggregate_types.is_some() {
        sql.push_str(&format!(" and aggregate_type = any(${parameter})"));
        parameter += 1;
    }
    // Qualified: the bare name would be the output column (a bigint cast) and sort the whole
    // tail instead of walking events_tail_idx.
    sql.push_str(&format!(
        " order by events.transaction_id, events.global_position limit ${parameter}"
    ));
    sql
}

/// Reads committed events in commit order. Its pool must be allowed to read every tenant it is
/// asked for: `vextrus_projector` for fan-out, with [`READ_PLAN_SETTINGS`]
/// ([`log_reader_pool_options`](crate::log_reader_pool_options)); another pool works, with the
/// planner free to choose.
#[derive(Debug, Clone)]
pub struct LogReader {
    pool: PgPool,
    wakeup: Option<watch::Receiver<u64>>,
}

impl LogReader {
    pub fn new(pool: PgPool) -> Self {
        Self { pool, wakeup: None }
    }

    /// Wakes waiting tails as soon as `signal` changes (the in-process store's
    /// [`append_signal`](crate::EventStore::append_signal)) rather than at their next poll.
    /// Appends by other processes are still seen at the next poll.
    pub fn with_wakeup(mut self, signal: watch::Receiver<u64>) -> Self {
        self.wakeup = Some(signal);
        self
    }

    /// Up to `limit` events after `after`, in commit order, from transactions that have all
    /// finished. An empty batch means "nothing new yet", never "the end".
    #[tracing::instrument(level = "debug", skip(self), err(level = tracing::Level::DEBUG))]
    pub async fn read_batch(
        &self,
        after: LogPosition,
        filter: &LogFilter,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, sqlx::Error> {
        let sql = page_statement(filter);
        let mut query = sqlx::query(&sql)
            .bind(after.transaction_id.to_string())
            .bind(after.global_position);
        if let Some(tenant) = filter.tenant {
            query = query.bind(tenant.as_uuid());
        }
        if let Some(types) = &filter.aggregate_types {
            query = query.bind(types.as_slice());
        }
        query
            .bind(i64::from(limit))
            .try_map(|row: PgRow| RecordedEvent::from_row(&row))
            .fetch(&self.pool)
            // Sized once: a replay reads pages of thousands of events.
            .try_fold(
                Vec::with_capacity(limit.min(100_000) as usize),
                |mut events, event| async move {
                    events.push(event);
                    Ok(events)
                },
            )
            .await
    }

    /// The events of one stream with sequence in `after + 1 ..= up_to`, in order: for a consumer
    /// that received an event ahead of predecessors it has not applied (Kafka redelivery after a
    /// rebalance) and must apply them first. These events are committed (a later one was
    /// delivered), so no watermark applies.
    #[tracing::instrument(level = "debug", skip(self), err(level = tracing::Level::DEBUG))]
    pub async fn read_stream(
        &self,
        tenant: TenantId,
        aggregate_type: &str,
        aggregate_id: &str,
        after: i64,
        up_to: i64,
    ) -> Result<Vec<RecordedEvent>, sqlx::Error> {
        sqlx::query(&format!(
            "select {}
             from events
             where tenant_id = $1 and aggregate_type = $2 and aggregate_id = $3
               and sequence > $4 and sequence <= $5
             order by sequence",
            RECORDED_EVENT_COLUMNS
        ))
        .bind(tenant.as_uuid())
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(after)
        .bind(up_to)
        .try_map(|row: PgRow| RecordedEvent::from_row(&row))
        .fetch_all(&self.pool)
        .await
    }

    /// The event at `position`, if there is one (and the pool's role may see it).
    pub async fn read_position(&self, position: i64) -> Result<Option<RecordedEvent>, sqlx::Error> {
        sqlx::query(&format!(
            "select {} from events where global_position = $1",
            RECORDED_EVENT_COLUMNS
        ))
        .bind(position)
        .try_map(|row: PgRow| RecordedEvent::from_row(&row))
        .fetch_optional(&self.pool)
        .await
    }

    /// The oldest transaction id still running in the cluster (`xid8`): every transaction below
    /// it has finished, so no event can still appear before it.
    pub async fn watermark(&self) -> Result<u64, sqlx::Error> {
        let xmin: String =
            sqlx::query_scalar("select pg_snapshot_xmin(pg_current_snapshot())::text")
                .fetch_one(&self.pool)
                .await?;
        xmin.parse()
            .map_err(|_| sqlx::Error::Protocol(format!("unreadable watermark {xmin:?}")))
    }

    /// The position of the last event at or before `up_to`, if there is one: with `up_to`
    /// from a filtered read that found nothing more (a position
    /// [`before_transaction`](LogPosition::before_transaction) a watermark taken before it), the
    /// last event the read has in truth looked past. One step back along `events_tail_idx`.
    pub async fn last_position_at(
        &self,
        up_to: LogPosition,
    ) -> Result<Option<LogPosition>, sqlx::Error> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "select transaction_id::text, global_position from events
             where (transaction_id, global_position) <= ($1::text::xid8, $2)
             order by transaction_id desc, global_position desc
             limit 1",
        )
        .bind(up_to.transaction_id.to_string())
        .bind(up_to.global_position)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(transaction_id, global_position)| {
            transaction_id
                .parse()
                .map(|transaction_id| LogPosition {
                    transaction_id,
                    global_position,
                })
                .map_err(|_| {
                    sqlx::Error::Protocol(format!("unreadable transaction id {transaction_id:?}"))
                })
        })
        .transpose()
    }

    /// A tail that starts after `from`.
    pub fn tail(&self, from: LogPosition, filter: LogFilter) -> LogTail {
        LogTail {
            wakeup: self.wakeup.clone(),
            reader: self.clone(),
            position: from,
            filter,
            batch_size: LogTail::DEFAULT_BATCH_SIZE,
            poll_interval: LogTail::DEFAULT_POLL_INTERVAL,
            pace: LogTail::DEFAULT_PACE,
            last_caught_up_read: None,
            retry_after_signal: None,
            report_skips_after: None,
            returned_at: tokio::time::Instant::now(),
            returned_position: from,
        }
    }
}

/// Follows the log from a position, batch by batch, waiting when it has caught up. It remembers
/// only what it has handed out; persisting checkpoints is the consumer's job, in the same
/// transaction as the effect of the events.
#[derive(Debug, Clone)]
pub struct LogTail {
    reader: LogReader,
    wakeup: Option<watch::Receiver<u64>>,
    position: LogPosition,
    filter: LogFilter,
    batch_size: u32,
    poll_interval: Duration,
    /// The least time between the starts of two reads while the tail keeps up (see
    /// [`LogTail::pace`]).
    pace: Duration,
    /// When the last read that found less than a full batch started: the tail had caught up.
    last_caught_up_read: Option<tokio::time::Instant>,
    /// Set after an append signal that found nothing readable yet: the watermark (which counts
    /// every running transaction of the cluster) had not passed the new events. Retry soon.
    retry_after_signal: Option<Duration>,
    /// See [`LogTail::report_skips`].
    report_skips_after: Option<Duration>,
    /// When `next_batch` last returned, and the position then.
    returned_at: tokio::time::Instant,
    returned_position: LogPosition,
}

impl LogTail {
    pub const DEFAULT_BATCH_SIZE: u32 = 500;
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(100);
    /// Measured with `vextrus bench http` and `vextrus bench lag` on the 2-core machine (README,
    /// "Through the HTTP server" and the lag bench): reading at most every 10 ms while caught up
    /// lets a busy log's events gather into batches whose fixed cost (the read, the transaction,
    /// the checkpoint) they share, and adds at most that much to a projection's lag.
    pub const DEFAULT_PACE: Duration = Duration::from_millis(10);

    /// Events per read (at least 1; default [`Self::DEFAULT_BATCH_SIZE`]).
    pub fn batch_size(mut self, batch_size: u32) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// How long to wait between reads once caught up, when no append signal comes (default
    /// [`Self::DEFAULT_POLL_INTERVAL`]).
    pub fn poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
        self
    }

    /// The least time between the starts of two reads while the tail keeps up (default
    /// [`Self::DEFAULT_PACE`]; zero reads as soon as anything may be new). A tail that is behind
    /// (its last read filled a batch) reads on at once; one that keeps up waits until `pace`
    /// has passed since its last read, so that under load each read gathers what was appended
    /// meanwhile instead of one commit's events.
    pub fn pace(mut self, pace: Duration) -> Self {
        self.pace = pace;
        self
    }

    /// Where the tail is: after the last event it handed out or, for a filtered tail that found
    /// nothing more, possibly further (after every event of the transactions below a watermark:
    /// [`LogPosition::before_transaction`]). Every event the filter wants up to here has been
    /// handed out.
    pub fn position(&self) -> LogPosition {
        self.position
    }

    /// Makes a filtered tail that has moved past events its filter does not want, and returned
    /// nothing for `after`, return an empty batch: its [`position`](Self::position) has moved,
    /// and a consumer may record that (a checkpoint that would otherwise stay at the last event
    /// it wanted). Off by default: [`next_batch`](Self::next_batch) then never returns empty.
    pub fn report_skips(mut self, after: Duration) -> Self {
        self.report_skips_after = Some(after);
        self
    }

    /// The next non-empty batch, waiting for one if the tail has caught up (or an empty one, see
    /// [`report_skips`](Self::report_skips)). Cancel-safe: dropping the future loses nothing; the
    /// position moves only over events handed out or, when the tail is filtered, over events of
    /// finished transactions that the filter does not want.
    pub async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>, sqlx::Error> {
        let filtered = self.filter.tenant.is_some() || self.filter.aggregate_types.is_some();
        let mut idle = false;
        loop {
            if let Some(last_read) = self.last_caught_up_read {
                tokio::time::sleep_until(last_read + self.pace).await;
            }
            // Mark appends seen *before* reading: one that lands after the read still wakes us.
            if let Some(wakeup) = &mut self.wakeup {
                wakeup.borrow_and_update();
            }
            // An idle filtered tail notes the watermark before reading: if the read then finds
            // nothing, every event it could want from a transaction below the watermark has been
            // handed out, and the events it skipped there need not be scanned again.
            let watermark = if filtered && idle {
                Some(self.reader.watermark().await?)
            } else {
                None
            };
            let started = tokio::time::Instant::now();
            let batch = self
                .reader
                .read_batch(self.position, &self.filter, self.batch_size)
                .await?;
            self.last_caught_up_read =
                (batch.len() < self.batch_size as usize && !self.pace.is_zero()).then_some(started);
            if let Some(last) = batch.last() {
                self.position = last.position();
                self.retry_after_signal = None;
                self.returned_at = tokio::time::Instant::now();
                self.returned_position = self.position;
                return Ok(batch);
            }
            if let Some(skipped) = watermark.and_then(LogPosition::before_transaction) {
                self.position = self.position.max(skipped);
            }
            if self.position > self.returned_position
                && self
                    .report_skips_after
                    .is_some_and(|after| self.returned_at.elapsed() >= after)
            {
                self.returned_at = tokio::time::Instant::now();
                self.returned_position = self.position;
                return Ok(Vec::new());
            }
            idle = true;
            self.wait_for_new_events().await;
        }
    }

    /// Until the store signals an append or the poll interval passes. After a signal whose events
    /// were not yet below the watermark, retries with a doubling delay (from 2 ms) until they are
    /// or the delay reaches the poll interval. Never spins.
    async fn wait_for_new_events(&mut self) {
        if let Some(delay) = self.retry_after_signal {
            tokio::time::sleep(delay).await;
            let next = delay * 2;
            self.retry_after_signal = (next < self.poll_interval).then_some(next);
            return;
        }
        match &mut self.wakeup {
            Some(wakeup) => {
                match tokio::time::timeout(self.poll_interval, wakeup.changed()).await {
                    Ok(Ok(())) => self.retry_after_signal = Some(Duration::from_millis(2)),
                    Ok(Err(_closed)) => {
                        // The store is gone: only polling can see new events now.
                        self.wakeup = None;
                        tokio::time::sleep(self.poll_interval).await;
                    }
                    Err(_poll_interval_passed) => {}
                }
            }
            None => tokio::time::sleep(self.poll_interval).await,
        }
    }
}
