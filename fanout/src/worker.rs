//! Projection workers fed from Kafka: one consumer group per projection
//! (`<topic prefix>projection.<name>`), the same [`Projection`] code as the single-node runner.
//!
//! Messages that have arrived together (up to 200) are applied in one transaction together with
//! the dedupe record, the last sequence applied per stream (`projection_stream_positions`), and
//! their offsets are committed only after that transaction commits. The dedupe record costs two
//! or three statements per batch, not per event: the batch's streams are locked and read in one,
//! the moved ones written in one or two:
//!
//! - an event at or below the recorded sequence is a duplicate (relay restart, rebalance,
//!   consumer restart) and is skipped;
//! - an event beyond the next expected one is preceded by its missing predecessors, read from the
//!   log, so a stream is never applied out of order;
//! - an event that cannot be applied (a poison event) is recorded in `projection_poison_events`
//!   and its partition is paused; the worker's other partitions go on. `vextrus project skip`
//!   sets `skip_requested`, and the worker then records the event as applied without applying
//!   it and resumes the partition.
//!
//! Besides, each worker checks its projection against the log itself ([`coverage`]): what Kafka
//! lost or holds back is applied from the log, and the projection's lag is measured against the
//! log, not against the relay.

mod coverage;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sqlx::PgPool;
use tokio::sync::watch;
use tracing::{error, info, instrument, warn};
use uuid::Uuid;
use vextrus_commands::{LogReader, RecordedEvent};
use vextrus_projections::{
    BatchFailure, FedBy, Projection, apply_batch, hold_off_swaps, is_transient, register,
    trace_applied,
};

use crate::config::KafkaConfig;
use crate::envelope::EventEnvelope;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("creating the Kafka consumer: {0}")]
    Consumer(#[from] rdkafka::error::KafkaError),
}

/// What a worker has done, for operators and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerStatus {
    pub events_applied: u64,
    pub duplicates_skipped: u64,
    /// Predecessors read from the log because their Kafka copy had not been applied.
    pub gap_events_applied: u64,
    /// Poison events this worker stopped a partition on (log positions), skipped ones included.
    pub poison_events: Vec<i64>,
    /// The poison events its partitions are stopped on now, waiting for an operator.
    pub stopped_on: Vec<i64>,
    /// The highest log position it has applied (events arrive in log order per stream only).
    pub highest_position: i64,
    /// True from subscribing until shutdown.
    pub running: bool,
    /// Partitions assigned to this worker now (after the group's latest rebalance).
    pub partitions: usize,
    /// From the latest check against the log: every event of the projection up to this log
    /// position is applied.
    pub covered_position: i64,
    /// From the latest check against the log: events of the projection after the covered
    /// position not applied yet (its lag behind the log).
    pub missing_events: u64,
    /// Events this worker applied from the log because Kafka had not delivered them in time
    /// (counted in `events_applied` too).
    pub healed_events: u64,
}

/// Partitions stopped on a poison event: (topic, partition) → the event's offset.
type Stopped = Arc<Mutex<HashMap<(String, i32), StoppedAt>>>;

#[derive(Debug, Clone, Copy)]
struct StoppedAt {
    offset: i64,
    global_position: i64,
}

/// Publishes which poison events the partitions are stopped on.
fn publish_stopped(stopped: &Stopped, status: &watch::Sender<WorkerStatus>) {
    let mut positions: Vec<i64> = stopped
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .values()
        .map(|at| at.global_position)
        .collect();
    positions.sort_unstable();
    status.send_modify(|status| status.stopped_on = positions);
}

/// Publishes how many partitions the worker holds after each rebalance, and forgets stopped
/// partitions that a rebalance takes away: their next owner finds the poison event again by
/// itself.
struct WorkerContext {
    projection: &'static str,
    stopped: Stopped,
    status: watch::Sender<WorkerStatus>,
}

impl ClientContext for WorkerContext {
    /// librdkafka's statistics (every [`STATISTICS_INTERVAL_MS`]): each partition's consumer lag.
    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in statistics.topics {
            for (partition, stats) in stats.partitions {
                // -1: the internal unassigned partition, or a lag not known yet.
                if partition < 0 || stats.consumer_lag < 0 {
                    continue;
                }
                metrics::gauge!(
                    crate::metrics::CONSUMER_LAG,
                    "projection" => self.projection,
                    "topic" => topic.clone(),
                    "partition" => partition.to_string()
                )
                .set(stats.consumer_lag as f64);
            }
        }
    }
}

/// How often librdkafka reports a worker's statistics (its partitions' lag).
const STATISTICS_INTERVAL_MS: &str = "5000";

impl ConsumerContext for WorkerContext {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        metrics::counter!(crate::metrics::REBALANCES, "projection" => self.projection).increment(1);
        let assigned = consumer
            .assignment()
            .map_or(0, |assignment| assignment.count());
        self.status
            .send_modify(|status| status.partitions = assigned);
        if let Rebalance::Revoke(partitions) = rebalance {
            let mut stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
            for partition in partitions.elements() {
                stopped.remove(&(partition.topic().to_owned(), partition.partition()));
            }
            drop(stopped);
            publish_stopped(&self.stopped, &self.status);
        }
    }
}

enum Applied {
    New { gap_events: u64 },
    Duplicate,
}

impl WorkerStatus {
    fn count(&mut self, applied: Applied, event: &RecordedEvent) {
        self.highest_position = self.highest_position.max(event.global_position.get());
        match applied {
            Applied::New { gap_events } => {
                self.events_applied += 1;
                self.gap_events_applied += gap_events;
            }
            Applied::Duplicate => self.duplicates_skipped += 1,
        }
    }
}

enum ApplyError {
    /// Retry: the database went away or another worker raced us.
    Transient(sqlx::Error),
    /// The event cannot be applied; retrying would fail again.
    Poison(String),
}

impl From<sqlx::Error> for ApplyError {
    fn from(error: sqlx::Error) -> Self {
        classify(error)
    }
}

fn classify(error: sqlx::Error) -> ApplyError {
    let unique_violation = matches!(&error, sqlx::Error::Database(e) if e.is_unique_violation());
    if is_transient(&error) || unique_violation {
        ApplyError::Transient(error)
    } else {
        ApplyError::Poison(format!("database: {error}"))
    }
}

/// The most messages applied in one transaction.
const MAX_BATCH: usize = 200;

/// True when `message`'s partition is stopped at or before it.
fn is_stopped(stopped: &Stopped, message: &BorrowedMessage<'_>) -> bool {
    stopped
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&(message.topic().to_owned(), message.partition()))
        .is_some_and(|at| message.offset() >= at.offset)
}

/// How often stopped partitions are checked for an operator's skip.
const SKIP_CHECK_INTERVAL: Duration = Duration::from_secs(1);
const RETRY_AFTER: Duration = Duration::from_millis(500);

pub struct KafkaWorker<P: Projection> {
    projection: P,
    pool: PgPool,
    reader: LogReader,
    kafka: KafkaConfig,
    consumer_settings: Vec<(String, String)>,
    /// The relay whose acknowledged position tells which events Kafka should have delivered.
    relay_name: String,
    status: watch::Sender<WorkerStatus>,
}

impl<P: Projection> KafkaWorker<P> {
    /// `pool` must act as `vextrus_projector`; `reader` reads missing predecessors from the log.
    pub fn new(projection: P, pool: PgPool, reader: LogReader, kafka: KafkaConfig) -> Self {
        Self {
            projection,
            pool,
            reader,
            kafka,
            consumer_settings: Vec::new(),
            relay_name: crate::relay::MAIN_RELAY.to_owned(),
            status: watch::Sender::new(WorkerStatus::default()),
        }
    }

    /// The relay whose position tells which events Kafka has (default [`crate::MAIN_RELAY`]).
    pub fn relay_name(mut self, relay_name: &str) -> Self {
        self.relay_name = relay_name.to_owned();
        self
    }

    /// How long after the relay's brokers acknowledged an event this worker waits for Kafka to
    /// deliver it before applying it from the log (default: the configuration's `heal_after`).
    pub fn heal_after(mut self, heal_after: Duration) -> Self {
        self.kafka.heal_after = heal_after;
        self
    }

    /// Extra consumer properties (e.g. `session.timeout.ms`), over the pass-through ones.
    pub fn consumer_setting(mut self, key: &str, value: &str) -> Self {
        self.consumer_settings
            .push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn status(&self) -> watch::Receiver<WorkerStatus> {
        self.status.subscribe()
    }

    /// The consumer group of this projection.
    pub fn group_id(&self) -> String {
        format!("{}projection.{}", self.kafka.topic_prefix, P::NAME)
    }

    /// Consumes until `shutdown`; the message being applied is finished first.
    #[instrument(name = "kafka_worker", skip_all, fields(projection = P::NAME))]
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), WorkerError> {
        tokio::pin!(shutdown);
        let stopped: Stopped = Arc::default();
        if let Err(error) = register(&self.pool, P::NAME, P::VERSION, FedBy::Kafka).await {
            warn!(%error, "could not record that Kafka feeds the projection");
        }
        let mut config = self.kafka.client_config();
        config
            .set("group.id", self.group_id())
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
        for (key, value) in &self.consumer_settings {
            config.set(key, value);
        }
        let consumer: StreamConsumer<WorkerContext> =
            config.create_with_context(WorkerContext {
                projection: P::NAME,
                stopped: Arc::clone(&stopped),
                status: self.status.clone(),
            })?;
        let topics: Vec<String> = P::AGGREGATE_TYPES
            .iter()
            .map(|aggregate_type| self.kafka.topic(aggregate_type))
            .collect();
        let topic_names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topic_names)?;
        info!(group = %self.group_id(), ?topics, "consuming");
        self.status.send_modify(|status| status.running = true);
        let mut skip_check = tokio::time::interval(SKIP_CHECK_INTERVAL);
        let mut coverage_check = tokio::time::interval(coverage::CHECK_INTERVAL);
        coverage_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut relay_history = coverage::RelayHistory::default();
        loop {
            let message = tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = skip_check.tick() => {
                    self.resume_skipped(&consumer, &stopped).await;
                    continue;
                }
                _ = coverage_check.tick() => {
                    match self.check_coverage(&mut relay_history).await {
                        Ok(check) => {
                            metrics::counter!(crate::metrics::HEALED_EVENTS, "projection" => P::NAME)
                                .increment(check.healed);
                            self.status.send_modify(|status| {
                                status.covered_position = check.covered.global_position;
                                status.missing_events = check.missing;
                                status.healed_events += check.healed;
                                status.events_applied += check.healed;
                            });
                        }
                        Err(error) => warn!(%error, "checking the projection against the log"),
                    }
                    continue;
                }
                message = consumer.recv() => message,
            };
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    warn!(%error, "consuming");
                    continue;
                }
            };
            // Whatever else has already arrived joins the batch: one transaction for all.
            let mut batch = vec![message];
            while batch.len() < MAX_BATCH {
                match tokio::time::timeout(Duration::ZERO, consumer.recv()).await {
                    Ok(Ok(message)) => batch.push(message),
                    _ => break,
                }
            }
            batch.retain(|message| !is_stopped(&stopped, message));
            self.handle_batch(&consumer, batch, &stopped, shutdown.as_mut())
                .await;
        }
        self.status.send_modify(|status| status.running = false);
        Ok(())
    }

    /// Applies a batch in one transaction and commits its offsets; when any event of it is a
    /// poison event (or a message is not an envelope), falls back to one message at a time so
    /// that only the poison's partition stops.
    async fn handle_batch(
        &self,
        consumer: &StreamConsumer<WorkerContext>,
        batch: Vec<BorrowedMessage<'_>>,
        stopped: &Stopped,
        mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
    ) {
        let events: Option<Vec<RecordedEvent>> = batch
            .iter()
            .map(|message| {
                EventEnvelope::from_json(message.payload())
                    .ok()
                    .map(RecordedEvent::from)
                    .filter(|event| P::AGGREGATE_TYPES.contains(&event.aggregate_type.as_str()))
            })
            .collect();
        if let Some(events) = events.filter(|events| events.len() > 1) {
            loop {
                match self.apply_batch(&events).await {
                    Ok(outcomes) => {
                        self.status.send_modify(|status| {
                            for (applied, event) in outcomes.into_iter().zip(&events) {
                                status.count(applied, event);
                            }
                        });
                        commit_batch(consumer, &batch);
                        return;
                    }
                    Err(ApplyError::Transient(error)) => {
                        warn!(%error, "retrying the batch");
                        tokio::select! {
                            () = &mut shutdown => return,
                            () = tokio::time::sleep(RETRY_AFTER) => {}
                        }
                    }
                    Err(ApplyError::Poison(_)) => break,
                }
            }
        }
        for message in &batch {
            if is_stopped(stopped, message) {
                continue;
            }
            self.handle(consumer, message, stopped, shutdown.as_mut())
                .await;
        }
    }

    /// Applies one message (retrying transient failures), commits its offset, or stops its
    /// partition on a poison event.
    async fn handle(
        &self,
        consumer: &StreamConsumer<WorkerContext>,
        message: &BorrowedMessage<'_>,
        stopped: &Stopped,
        mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
    ) {
        let event = match EventEnvelope::from_json(message.payload()) {
            Ok(envelope) => RecordedEvent::from(envelope),
            Err(error) => {
                // Not ours to apply and not an event we can point at: log and move on.
                error!(topic = message.topic(), partition = message.partition(), offset = message.offset(), %error, "skipping a message that is not an event envelope");
                commit(consumer, message);
                return;
            }
        };
        if !P::AGGREGATE_TYPES.contains(&event.aggregate_type.as_str()) {
            commit(consumer, message);
            return;
        }
        loop {
            match self.apply(&event).await {
                Ok(applied) => {
                    self.status
                        .send_modify(|status| status.count(applied, &event));
                    commit(consumer, message);
                    return;
                }
                Err(ApplyError::Transient(error)) => {
                    warn!(%error, position = event.global_position.get(), "retrying");
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(RETRY_AFTER) => {}
                    }
                }
                Err(ApplyError::Poison(reason)) => {
                    self.stop_partition(consumer, message, &event, &reason, stopped)
                        .await;
                    return;
                }
            }
        }
    }

    /// One event, its dedupe record and any missing predecessors, in one transaction.
    async fn apply(&self, event: &RecordedEvent) -> Result<Applied, ApplyError> {
        let mut outcomes = self.apply_batch(std::slice::from_ref(event)).await?;
        Ok(outcomes.pop().unwrap_or(Applied::Duplicate))
    }

    /// Several events in one transaction: the whole batch, or nothing. The dedupe records are
    /// written as the events are admitted; the projection then applies every admitted event
    /// (and missing predecessor) in one go.
    async fn apply_batch(&self, events: &[RecordedEvent]) -> Result<Vec<Applied>, ApplyError> {
        let started = std::time::Instant::now();
        let mut tx = self.pool.begin().await?;
        // A replay's swap replaces the read model and the dedupe record together, between batches.
        hold_off_swaps(&mut tx, P::NAME).await?;
        let (outcomes, admitted) = self.admit(&mut tx, events).await?;
        let admitted: Vec<&RecordedEvent> = admitted.iter().collect();
        apply_batch(&self.projection, &mut tx, &admitted)
            .await
            .map_err(|failure| match failure {
                BatchFailure::Event { error, .. } => ApplyError::Poison(error.to_string()),
                BatchFailure::Database(error) => classify(error),
            })?;
        tx.commit().await?;
        metrics::histogram!(vextrus_projections::BATCH_DURATION, "projection" => P::NAME)
            .record(started.elapsed().as_secs_f64());
        trace_applied(P::NAME, &admitted);
        Ok(outcomes)
    }

    /// Decides which of `events` are new, inside the caller's transaction, with at most three
    /// statements for the whole batch whatever its size: the streams' last applied sequences
    /// (locked), then the moved and the new ones. An event at or below its stream's sequence is a duplicate; a new one goes to
    /// the admitted events after any missing predecessors (read from the log). The outcome of each
    /// event, in order, and the events to apply.
    async fn admit(
        &self,
        tx: &mut sqlx::PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(Vec<Applied>, Vec<RecordedEvent>), ApplyError> {
        let mut applied = lock_applied(&mut *tx, P::NAME, events).await?;
        let recorded: HashMap<StreamKey, i64> = applied.clone();
        let mut outcomes = Vec::with_capacity(events.len());
        let mut admitted = Vec::with_capacity(events.len());
        for event in events {
            let key = stream_key(event);
            let last = applied.get(&key).copied().unwrap_or(0);
            if event.sequence <= last {
                outcomes.push(Applied::Duplicate);
                continue;
            }
            let mut gap_events = 0;
            if event.sequence > last + 1 {
                let missing = self
                    .reader
                    .read_stream(
                        event.tenant_id,
                        &event.aggregate_type,
                        &event.aggregate_id,
                        last,
                        event.sequence - 1,
                    )
                    .await?;
                if missing.len() as i64 != event.sequence - 1 - last {
                    return Err(ApplyError::Poison(format!(
                        "the log lacks events {}..{} of this stream",
                        last + 1,
                        event.sequence - 1
                    )));
                }
                gap_events = missing.len() as u64;
                admitted.extend(missing);
            }
            admitted.push(event.clone());
            applied.insert(key, event.sequence);
            outcomes.push(Applied::New { gap_events });
        }
        record_applied(&mut *tx, P::NAME, &recorded, &applied).await?;
        Ok((outcomes, admitted))
    }

    async fn stop_partition(
        &self,
        consumer: &StreamConsumer<WorkerContext>,
        message: &BorrowedMessage<'_>,
        event: &RecordedEvent,
        reason: &str,
        stopped: &Stopped,
    ) {
        let position = event.global_position.get();
        error!(
            position,
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
            reason,
            "poison event: stopping its partition"
        );
        let recorded = sqlx::query(
            "insert into projection_poison_events
                 (projection, global_position, topic, kafka_partition, kafka_offset, reason)
             values ($1, $2, $3, $4, $5, $6)
             on conflict (projection, global_position) do update
             set topic = excluded.topic, kafka_partition = excluded.kafka_partition,
                 kafka_offset = excluded.kafka_offset, reason = excluded.reason, stopped_at = now()",
        )
        .bind(P::NAME)
        .bind(position)
        .bind(message.topic())
        .bind(message.partition())
        .bind(message.offset())
        .bind(reason)
        .execute(&self.pool)
        .await;
        if let Err(error) = recorded {
            warn!(%error, "could not record the poison event");
        }
        let mut partition = TopicPartitionList::new();
        partition.add_partition(message.topic(), message.partition());
        if let Err(error) = consumer.pause(&partition) {
            warn!(%error, "could not pause the partition");
        }
        stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                (message.topic().to_owned(), message.partition()),
                StoppedAt {
                    offset: message.offset(),
                    global_position: position,
                },
            );
        self.status
            .send_modify(|status| status.poison_events.push(position));
        publish_stopped(stopped, &self.status);
    }

    /// Resumes stopped partitions whose poison event an operator chose to skip.
    async fn resume_skipped(&self, consumer: &StreamConsumer<WorkerContext>, stopped: &Stopped) {
        let candidates: Vec<((String, i32), StoppedAt)> = stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(key, at)| (key.clone(), *at))
            .collect();
        for ((topic, partition), at) in candidates {
            match self.skip_if_requested(at.global_position).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(error) => {
                    warn!(%error, "checking for a skip");
                    continue;
                }
            }
            info!(position = at.global_position, %topic, partition, "operator skipped the poison event: resuming");
            let mut list = TopicPartitionList::new();
            if list
                .add_partition_offset(&topic, partition, Offset::Offset(at.offset + 1))
                .is_err()
            {
                continue;
            }
            stopped
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&(topic.clone(), partition));
            publish_stopped(stopped, &self.status);
            if let Err(error) = consumer.commit(&list, CommitMode::Sync) {
                warn!(%error, "committing past the skipped event");
            }
            if let Err(error) = consumer.seek(
                &topic,
                partition,
                Offset::Offset(at.offset + 1),
                Duration::from_secs(5),
            ) {
                warn!(%error, "seeking past the skipped event");
            }
            if let Err(error) = consumer.resume(&list) {
                warn!(%error, "resuming the partition");
            }
        }
    }

    /// When an operator asked to skip the event at `position`, records it as applied (without
    /// applying it) and returns true.
    async fn skip_if_requested(&self, position: i64) -> Result<bool, sqlx::Error> {
        let requested: bool = sqlx::query_scalar(
            "select coalesce(bool_or(skip_requested), false) from projection_poison_events
             where projection = $1 and global_position = $2",
        )
        .bind(P::NAME)
        .bind(position)
        .fetch_one(&self.pool)
        .await?;
        if !requested {
            return Ok(false);
        }
        let Some(event) = self.reader.read_position(position).await? else {
            return Ok(true);
        };
        let mut tx = self.pool.begin().await?;
        let events = std::slice::from_ref(&event);
        let recorded = lock_applied(&mut tx, P::NAME, events).await?;
        let key = stream_key(&event);
        if recorded
            .get(&key)
            .is_none_or(|sequence| *sequence < event.sequence)
        {
            let mut applied = recorded.clone();
            applied.insert(key, event.sequence);
            record_applied(&mut tx, P::NAME, &recorded, &applied).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// A stream of the log: tenant, aggregate type, aggregate id.
pub(crate) type StreamKey = (Uuid, String, String);

fn stream_key(event: &RecordedEvent) -> StreamKey {
    (
        event.tenant_id.as_uuid(),
        event.aggregate_type.clone(),
        event.aggregate_id.clone(),
    )
}

/// The last sequence the projection applied of each stream of `events` that it has applied
/// before, locked until the transaction ends so that two workers cannot both apply the next
/// event. One statement; a primary-key lookup per stream (LATERAL with LIMIT, so that no cached
/// plan turns it into a join over a scan), locked in key order so that two batches never wait
/// for each other in a circle.
async fn lock_applied(
    conn: &mut sqlx::PgConnection,
    projection: &str,
    events: &[RecordedEvent],
) -> Result<HashMap<StreamKey, i64>, sqlx::Error> {
    let mut streams: Vec<StreamKey> = events.iter().map(stream_key).collect();
    streams.sort();
    streams.dedup();
    let tenants: Vec<Uuid> = streams.iter().map(|key| key.0).collect();
    let types: Vec<&str> = streams.iter().map(|key| key.1.as_str()).collect();
    let ids: Vec<&str> = streams.iter().map(|key| key.2.as_str()).collect();
    let rows: Vec<(Uuid, String, String, i64)> = sqlx::query_as(
        "select k.tenant_id, k.aggregate_type, k.aggregate_id, p.sequence
         from unnest($2::uuid[], $3::text[], $4::text[]) with ordinality
              as k(tenant_id, aggregate_type, aggregate_id, n)
         cross join lateral (
             select s.sequence from projection_stream_positions s
             where s.tenant_id = k.tenant_id and s.projection = $1
               and s.aggregate_type = k.aggregate_type and s.aggregate_id = k.aggregate_id
             limit 1
             for update) p
         order by k.n",
    )
    .bind(projection)
    .bind(&tenants)
    .bind(&types)
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(tenant, aggregate_type, aggregate_id, sequence)| {
            ((tenant, aggregate_type, aggregate_id), sequence)
        })
        .collect())
}

/// Records the streams whose last applied sequence moved from `recorded` (what
/// [`lock_applied`] found) to `applied`: an upsert for the streams it locked, a plain insert for
/// the new ones, so that a worker racing this one on a new stream fails there and retries.
async fn record_applied(
    conn: &mut sqlx::PgConnection,
    projection: &str,
    recorded: &HashMap<StreamKey, i64>,
    applied: &HashMap<StreamKey, i64>,
) -> Result<(), sqlx::Error> {
    let moved = |known: bool| {
        applied
            .iter()
            .filter(move |(key, sequence)| {
                recorded
                    .get(*key)
                    .map_or(!known, |before| known && before != *sequence)
            })
            .map(|(key, sequence)| (key, *sequence))
    };
    for (known, statement) in [
        (
            true,
            "insert into projection_stream_positions as p
                 (tenant_id, projection, aggregate_type, aggregate_id, sequence)
             select u.tenant_id, $1, u.aggregate_type, u.aggregate_id, u.sequence
             from unnest($2::uuid[], $3::text[], $4::text[], $5::int8[])
                  as u(tenant_id, aggregate_type, aggregate_id, sequence)
             on conflict (tenant_id, projection, aggregate_type, aggregate_id)
             do update set sequence = excluded.sequence",
        ),
        (
            false,
            "insert into projection_stream_positions
                 (tenant_id, projection, aggregate_type, aggregate_id, sequence)
             select u.tenant_id, $1, u.aggregate_type, u.aggregate_id, u.sequence
             from unnest($2::uuid[], $3::text[], $4::text[], $5::int8[])
                  as u(tenant_id, aggregate_type, aggregate_id, sequence)",
        ),
    ] {
        let rows: Vec<(&StreamKey, i64)> = moved(known).collect();
        if rows.is_empty() {
            continue;
        }
        let tenants: Vec<Uuid> = rows.iter().map(|(key, _)| key.0).collect();
        let types: Vec<&str> = rows.iter().map(|(key, _)| key.1.as_str()).collect();
        let ids: Vec<&str> = rows.iter().map(|(key, _)| key.2.as_str()).collect();
        let sequences: Vec<i64> = rows.iter().map(|(_, sequence)| *sequence).collect();
        sqlx::query(statement)
            .bind(projection)
            .bind(&tenants)
            .bind(&types)
            .bind(&ids)
            .bind(&sequences)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Commits, for each partition of `batch`, the offset after its last message: one request for
/// the batch (not one per message, which kept the group coordinator busy at thousands of events
/// a second). Asynchronous: a lost commit only means a redelivery, which the dedupe record
/// absorbs.
fn commit_batch(consumer: &StreamConsumer<WorkerContext>, batch: &[BorrowedMessage<'_>]) {
    let mut next: HashMap<(&str, i32), i64> = HashMap::new();
    for message in batch {
        let offset = next
            .entry((message.topic(), message.partition()))
            .or_insert(0);
        *offset = (*offset).max(message.offset() + 1);
    }
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        if let Err(error) = list.add_partition_offset(topic, partition, Offset::Offset(offset)) {
            tracing::debug!(%error, "offset not committed; the messages may be redelivered");
        }
    }
    if let Err(error) = consumer.commit(&list, CommitMode::Async) {
        tracing::debug!(%error, "offset commit refused; the messages may be redelivered");
    }
}

/// Commits the offset after `message` ([`commit_batch`] of one).
fn commit(consumer: &StreamConsumer<WorkerContext>, message: &BorrowedMessage<'_>) {
    commit_batch(consumer, std::slice::from_ref(message));
}
