//! Runs one projection from its checkpoint, batch by batch, until shutdown.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;
use tracing::{error, info, instrument, warn};
use vextrus_commands::{GlobalPosition, LogFilter, LogPosition, LogReader, RecordedEvent};

use crate::projection::{
    BatchFailure, Projection, ProjectionError, apply_batch, is_transient, trace_applied,
};

/// Where a projection is and what it is doing, as the runner last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionStatus {
    pub name: &'static str,
    pub version: i32,
    /// The last applied event's place in the log.
    pub position: LogPosition,
    pub events_applied: u64,
    pub state: ProjectionState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectionState {
    /// Loading its checkpoint.
    Starting,
    /// Applying events as they come.
    Running,
    /// An event could not be applied; the projection waits for an operator.
    Stopped { at: GlobalPosition, reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("projection {projection}: {source}")]
    Database {
        projection: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

/// Feeds one projection from the log. Run several side by side, one task each.
pub struct ProjectionRunner<P: Projection> {
    projection: P,
    pool: PgPool,
    reader: LogReader,
    batch_size: u32,
    poll_interval: Duration,
    status: watch::Sender<ProjectionStatus>,
}

/// How long a tail goes without a batch before the checkpoint is moved over the events it
/// skipped (events of other projections' types).
const SKIPS_SAVED_AFTER: Duration = Duration::from_secs(5);

/// How long to wait before retrying after the database went away.
const RETRY_AFTER: Duration = Duration::from_secs(1);

impl<P: Projection> ProjectionRunner<P> {
    /// `pool` must act as `vextrus_projector`; `reader` reads the log (the same role will do).
    pub fn new(projection: P, pool: PgPool, reader: LogReader) -> Self {
        let status = ProjectionStatus {
            name: P::NAME,
            version: P::VERSION,
            position: LogPosition::START,
            events_applied: 0,
            state: ProjectionState::Starting,
        };
        Self {
            projection,
            pool,
            reader,
            batch_size: 500,
            poll_interval: vextrus_commands::LogTail::DEFAULT_POLL_INTERVAL,
            status: watch::Sender::new(status),
        }
    }

    /// Events per transaction (default 500).
    pub fn batch_size(mut self, batch_size: u32) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// How often to look for new events when caught up and not woken (default 100 ms).
    pub fn poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
        self
    }

    /// Follows the runner's progress.
    pub fn status(&self) -> watch::Receiver<ProjectionStatus> {
        self.status.subscribe()
    }

    /// Applies events until `shutdown` completes. A batch that has started is finished and
    /// committed before returning. A poison event stops the projection (recorded in its
    /// checkpoint) and the runner then just waits for shutdown.
    #[instrument(name = "projection", skip_all, fields(projection = P::NAME))]
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), RunnerError> {
        tokio::pin!(shutdown);
        loop {
            match self.follow(shutdown.as_mut()).await {
                Ok(()) => return Ok(()),
                Err(FollowError::Stopped { generation }) => {
                    // Wait for an operator: a replay that swaps in a rebuilt read model moves
                    // the generation, and the runner goes on from the new checkpoint.
                    tokio::select! {
                        () = &mut shutdown => return Ok(()),
                        () = self.generation_moved(generation) => {}
                    }
                }
                Err(FollowError::Moved) => {
                    info!("a replay swapped the read model: reloading the checkpoint")
                }
                Err(FollowError::Transient(error)) => {
                    warn!(%error, "database unavailable; retrying");
                    tokio::select! {
                        () = &mut shutdown => return Ok(()),
                        () = tokio::time::sleep(RETRY_AFTER) => {}
                    }
                }
                Err(FollowError::Fatal(source)) => {
                    return Err(RunnerError::Database {
                        projection: P::NAME,
                        source,
                    });
                }
            }
        }
    }

    /// From the checkpoint on, until `shutdown` (checked only while waiting for the next batch,
    /// so a batch once read is applied and committed), a poison event or a database failure.
    async fn follow<S: Future<Output = ()>>(
        &self,
        mut shutdown: Pin<&mut S>,
    ) -> Result<(), FollowError> {
        let (checkpoint, generation) = self.load_checkpoint().await?;
        if let ProjectionState::Stopped { at, reason } = &checkpoint.state {
            error!(
                position = at.get(),
                reason, "projection is stopped at a poison event"
            );
            self.status.send_replace(checkpoint);
            return Err(FollowError::Stopped { generation });
        }
        info!(
            position = checkpoint.position.global_position,
            "projection running"
        );
        let mut position = checkpoint.position;
        let mut events_applied = checkpoint.events_applied;
        self.status.send_replace(ProjectionStatus {
            state: ProjectionState::Running,
            ..checkpoint
        });

        let filter = LogFilter::default().aggregate_types(P::AGGREGATE_TYPES.iter().copied());
        let mut tail = self
            .reader
            .tail(position, filter)
            .batch_size(self.batch_size)
            .poll_interval(self.poll_interval)
            .report_skips(SKIPS_SAVED_AFTER);
        loop {
            let batch = tokio::select! {
                biased;
                () = shutdown.as_mut() => return Ok(()),
                batch = tail.next_batch() => batch.map_err(FollowError::from_sqlx)?,
            };
            if batch.is_empty() {
                // The tail moved past events of other types (LogTail::report_skips).
                self.save_skipped(tail.position(), &mut position, generation)
                    .await?;
                continue;
            }
            // Events at or before the checkpoint were applied already: skip them.
            let fresh: Vec<&RecordedEvent> = batch
                .iter()
                .filter(|event| event.position() > position)
                .collect();
            if fresh.is_empty() {
                continue;
            }
            match self.apply_batch(&fresh, generation).await {
                Ok(Batch::Committed) => self.committed(&fresh, &mut position, &mut events_applied),
                Ok(Batch::Moved) => return Err(FollowError::Moved),
                Err(BatchFailure::Database(error)) if is_transient(&error) => {
                    return Err(FollowError::Transient(error));
                }
                Err(_) => {
                    // Some event cannot be applied: commit the events one at a time up to it,
                    // then record the stop there.
                    for event in fresh {
                        match self.apply_batch(&[event], generation).await {
                            Ok(Batch::Committed) => {
                                self.committed(&[event], &mut position, &mut events_applied)
                            }
                            Ok(Batch::Moved) => return Err(FollowError::Moved),
                            Err(BatchFailure::Database(error)) if is_transient(&error) => {
                                return Err(FollowError::Transient(error));
                            }
                            Err(BatchFailure::Database(error)) => {
                                self.record_stop(event, &ProjectionError::Database(error))
                                    .await?;
                                return Err(FollowError::Stopped { generation });
                            }
                            Err(BatchFailure::Event { error, .. }) => {
                                self.record_stop(event, &error).await?;
                                return Err(FollowError::Stopped { generation });
                            }
                        }
                    }
                }
            }
        }
    }

    /// Moves the checkpoint over the events a filtered tail skipped, up to `skipped` (the tail's
    /// position, past everything it returned): none of them is of the projection's types, so the
    /// checkpoint may name the last of them. Without this, the checkpoint of a projection whose
    /// types are rare stays at its last event of them, and everything after it is read again at
    /// each start and counted again by every status and metrics request (the lag query).
    async fn save_skipped(
        &self,
        skipped: LogPosition,
        position: &mut LogPosition,
        generation: i64,
    ) -> Result<(), FollowError> {
        if skipped <= *position {
            return Ok(());
        }
        // The tail's position may lie between events (after a transaction's last); the
        // checkpoint names an event.
        let Some(last) = self
            .reader
            .last_position_at(skipped)
            .await
            .map_err(FollowError::from_sqlx)?
        else {
            return Ok(());
        };
        if last <= *position {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(FollowError::from_sqlx)?;
        if hold_off_swaps(&mut tx, P::NAME)
            .await
            .map_err(FollowError::from_sqlx)?
            != generation
        {
            return Err(FollowError::Moved);
        }
        sqlx::query(
            "update projection_checkpoints
             set transaction_id = $2::text::xid8, global_position = $3, updated_at = now()
             where projection = $1 and (transaction_id, global_position) < ($2::text::xid8, $3)",
        )
        .bind(P::NAME)
        .bind(last.transaction_id.to_string())
        .bind(last.global_position)
        .execute(&mut *tx)
        .await
        .map_err(FollowError::from_sqlx)?;
        tx.commit().await.map_err(FollowError::from_sqlx)?;
        *position = last;
        self.status.send_modify(|status| status.position = last);
        Ok(())
    }

    /// Publishes the progress of a committed batch.
    fn committed(
        &self,
        batch: &[&RecordedEvent],
        position: &mut LogPosition,
        events_applied: &mut u64,
    ) {
        if let Some(last) = batch.last() {
            *position = last.position();
            *events_applied += batch.len() as u64;
            let (position, events_applied) = (*position, *events_applied);
            self.status.send_modify(|status| {
                status.position = position;
                status.events_applied = events_applied;
            });
        }
    }

    /// One transaction: every event's effect, then the checkpoint after the last of them.
    /// Nothing is applied when a replay has swapped the read model since `generation`.
    async fn apply_batch(
        &self,
        events: &[&RecordedEvent],
        generation: i64,
    ) -> Result<Batch, BatchFailure> {
        let started = std::time::Instant::now();
        let mut tx = self.pool.begin().await.map_err(BatchFailure::Database)?;
        let current = hold_off_swaps(&mut tx, P::NAME)
            .await
            .map_err(BatchFailure::Database)?;
        if current != generation {
            return Ok(Batch::Moved);
        }
        apply_batch(&self.projection, &mut tx, events).await?;
        let Some(last) = events.last() else {
            return Ok(Batch::Committed);
        };
        sqlx::query(
            "update projection_checkpoints
             set transaction_id = $2::text::xid8, global_position = $3, events_applied = events_applied + $4,
                 updated_at = now()
             where projection = $1",
        )
        .bind(P::NAME)
        .bind(last.transaction_id.to_string())
        .bind(last.global_position.get())
        .bind(events.len() as i64)
        .execute(&mut *tx)
        .await
        .map_err(BatchFailure::Database)?;
        tx.commit().await.map_err(BatchFailure::Database)?;
        metrics::histogram!(crate::projection::BATCH_DURATION, "projection" => P::NAME)
            .record(started.elapsed().as_secs_f64());
        trace_applied(P::NAME, events);
        Ok(Batch::Committed)
    }

    /// Completes once the checkpoint's generation is no longer `generation`.
    async fn generation_moved(&self, generation: i64) {
        loop {
            tokio::time::sleep(GENERATION_CHECK_INTERVAL).await;
            let current: Result<i64, sqlx::Error> = sqlx::query_scalar(
                "select generation from projection_checkpoints where projection = $1",
            )
            .bind(P::NAME)
            .fetch_one(&self.pool)
            .await;
            if current.is_ok_and(|current| current != generation) {
                return;
            }
        }
    }

    async fn record_stop(
        &self,
        event: &RecordedEvent,
        error: &ProjectionError,
    ) -> Result<(), FollowError> {
        let reason = format!(
            "{} {} event {}: {error}",
            event.aggregate_type, event.aggregate_id, event.event_type
        );
        error!(position = event.global_position.get(), %reason, "poison event: projection stopped");
        sqlx::query(
            "update projection_checkpoints set state = 'stopped', stopped_at = $2, stop_reason = $3, updated_at = now()
             where projection = $1",
        )
        .bind(P::NAME)
        .bind(event.global_position.get())
        .bind(&reason)
        .execute(&self.pool)
        .await
        .map_err(FollowError::from_sqlx)?;
        self.status.send_modify(|status| {
            status.state = ProjectionState::Stopped {
                at: event.global_position,
                reason,
            };
        });
        Ok(())
    }

    /// The checkpoint and its generation; creates it on first start, and records that the
    /// runner feeds this projection.
    async fn load_checkpoint(&self) -> Result<(ProjectionStatus, i64), FollowError> {
        register(&self.pool, P::NAME, P::VERSION, FedBy::Log)
            .await
            .map_err(FollowError::from_sqlx)?;
        let (transaction_id, global_position, events_applied, state, stopped_at, stop_reason, generation): (
            i64,
            i64,
            i64,
            String,
            Option<i64>,
            Option<String>,
            i64,
        ) = sqlx::query_as(
            "select transaction_id::text::bigint, global_position, events_applied, state, stopped_at, stop_reason,
                    generation
             from projection_checkpoints where projection = $1",
        )
        .bind(P::NAME)
        .fetch_one(&self.pool)
        .await
        .map_err(FollowError::from_sqlx)?;
        let unsigned = |value: i64| {
            u64::try_from(value)
                .map_err(|error| FollowError::Fatal(sqlx::Error::Decode(Box::new(error))))
        };
        let state = match state.as_str() {
            "stopped" => ProjectionState::Stopped {
                at: GlobalPosition::new(stopped_at.unwrap_or(0)),
                reason: stop_reason.unwrap_or_default(),
            },
            _ => ProjectionState::Running,
        };
        let status = ProjectionStatus {
            name: P::NAME,
            version: P::VERSION,
            position: LogPosition {
                transaction_id: unsigned(transaction_id)?,
                global_position,
            },
            events_applied: unsigned(events_applied)?,
            state,
        };
        Ok((status, generation))
    }
}

/// What feeds a projection's live tables (`projection_checkpoints.fed_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FedBy {
    /// The single-node runner, tailing the log.
    Log,
    /// Kafka workers.
    Kafka,
}

impl FedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Log => "log",
            Self::Kafka => "kafka",
        }
    }
}

/// Creates the projection's checkpoint row if it is missing and records what feeds it.
pub async fn register(
    pool: &PgPool,
    projection: &str,
    version: i32,
    fed_by: FedBy,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into projection_checkpoints (projection, version, fed_by) values ($1, $2, $3)
         on conflict (projection) do update set fed_by = excluded.fed_by
         where projection_checkpoints.fed_by <> excluded.fed_by",
    )
    .bind(projection)
    .bind(version)
    .bind(fed_by.as_str())
    .execute(pool)
    .await
    .map(drop)
}

/// Called first in every transaction that applies events to a projection's live tables: waits
/// while a replay swaps its read model, then keeps the swap out until the transaction ends
/// (a shared advisory lock; the swap takes it exclusively). Returns the checkpoint's generation,
/// which a swap moves.
pub async fn hold_off_swaps(
    conn: &mut sqlx::PgConnection,
    projection: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "select pg_advisory_xact_lock_shared(hashtextextended('vextrus.projection/' || $1, 0))",
    )
    .bind(projection)
    .execute(&mut *conn)
    .await?;
    // A statement of its own: its snapshot is taken after the lock, so it sees a swap that
    // committed while we waited.
    sqlx::query_scalar("select generation from projection_checkpoints where projection = $1")
        .bind(projection)
        .fetch_optional(conn)
        .await
        .map(|generation| generation.unwrap_or(0))
}

/// How often a stopped runner looks for a replay that swapped its read model.
const GENERATION_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// What became of a batch.
enum Batch {
    Committed,
    /// A replay swapped the read model since the runner loaded its checkpoint: nothing applied.
    Moved,
}

enum FollowError {
    /// The projection is stopped at a poison event; `generation` is the checkpoint's then.
    Stopped {
        generation: i64,
    },
    /// A replay swapped the read model: reload the checkpoint.
    Moved,
    /// The database is unreachable; try again later.
    Transient(sqlx::Error),
    Fatal(sqlx::Error),
}

impl FollowError {
    fn from_sqlx(error: sqlx::Error) -> Self {
        if is_transient(&error) {
            Self::Transient(error)
        } else {
            Self::Fatal(error)
        }
    }
}
