use sqlx::PgConnection;
use vextrus_commands::RecordedEvent;

use crate::table::ReadModel;

/// Why a projection could not apply an event. Every variant but a lost connection makes the event
/// a poison event: applying it again would fail again.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("the event's payload does not decode: {0}")]
    Decode(#[from] serde_json::Error),
    /// The event contradicts the read model (e.g. its parent row is missing).
    #[error("inconsistent with the read model: {0}")]
    Inconsistent(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// True when retrying later may succeed: the connection failed, or the transaction lost a race;
/// not the statement itself.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed => true,
        // A deadlock or serialization failure between two workers saving the same rows (counters
        // fed by many streams): the transaction rolled back, and running it again succeeds.
        sqlx::Error::Database(error) => {
            matches!(error.code().as_deref(), Some("40P01" | "40001"))
        }
        _ => false,
    }
}

/// Where a projection's rows are read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The live tables (schema `public`), under forced row-level security: rows are read and
    /// written one tenant at a time, with that tenant set on the transaction, so a projection bug
    /// cannot touch another tenant's rows.
    Live,
    /// A replay's shadow tables (schema `vextrus_replay`), which get their row-level security
    /// only when they are swapped in: rows of all tenants are written together.
    Shadow,
}

impl Target {
    /// The schema of the tables.
    pub fn schema(self) -> &'static str {
        match self {
            Self::Live => "public",
            Self::Shadow => SHADOW_SCHEMA,
        }
    }
}

/// The schema of replay's shadow tables (`migrations/0008_replay.sql`, `0009_replay_bulk_copy.sql`).
pub const SHADOW_SCHEMA: &str = "vextrus_replay";

/// A read model built from the log, in batches: [`want`](Projection::want) marks the rows each
/// event reads, the batch loads them, [`apply`](Projection::apply) applies the events one by one
/// in memory, and the batch saves the rows that changed. The rows are a [`ReadModel`]: typed
/// tables declared once (`read_model!`), which load, save and COPY themselves. The single-node
/// runner, the Kafka workers and replay all run this same code; a replay keeps its rows in
/// memory from batch to batch and so never needs to load.
///
/// Events arrive in commit order for each stream, never out of it; events of different tenants
/// never touch the same rows. Rows of [`Table`](crate::Table)s must be owned by one stream;
/// totals fed by many streams are [`Counters`](crate::Counters).
pub trait Projection: Send + Sync + 'static {
    /// Stable name: the key of the projection's checkpoint.
    const NAME: &'static str;
    /// Bumped when the projection's output changes, so that it gets rebuilt.
    const VERSION: i32;
    /// The aggregate types whose events it reads; others are never fetched.
    const AGGREGATE_TYPES: &'static [&'static str];
    /// The tables this projection owns (and a rebuild replaces), in schema `public`.
    const TABLES: &'static [&'static str] = <Self::Rows as ReadModel>::TABLES;

    /// The rows a batch works on, in memory.
    type Rows: ReadModel;

    /// Asks `rows` to load whatever applying `event` will read (`Table::want`). An event that
    /// does not decode needs nothing: it fails in `apply`.
    fn want(&self, rows: &mut Self::Rows, event: &RecordedEvent) {
        let _ = (rows, event);
    }

    /// Applies one event to `rows`, with no I/O. When it fails, `rows` is as it was.
    fn apply(&self, rows: &mut Self::Rows, event: &RecordedEvent) -> Result<(), ProjectionError>;
}

/// Metric: how long one batch took to apply and commit, by projection (runner and workers).
pub const BATCH_DURATION: &str = "vextrus_projection_batch_duration_seconds";

/// Marks each traced event of a committed batch in its request's trace: an `apply_event` span,
/// child of the request that appended it (see `vextrus_commands::trace`). Untraced events cost
/// nothing.
pub fn trace_applied(projection: &'static str, events: &[&RecordedEvent]) {
    for event in events.iter().filter(|event| event.traceparent().is_some()) {
        let span = tracing::info_span!(
            "apply_event",
            projection,
            global_position = event.global_position.get(),
            event_type = %event.event_type,
        );
        event.continue_trace(&span);
    }
}

/// Loads, applies and saves `events` in the caller's transaction: a whole batch. On failure the
/// caller rolls back; the error says whether an event (and which) or the database failed.
pub async fn apply_batch<P: Projection>(
    projection: &P,
    conn: &mut PgConnection,
    events: &[&RecordedEvent],
) -> Result<u64, BatchFailure> {
    let mut rows = P::Rows::default();
    for event in events {
        projection.want(&mut rows, event);
    }
    rows.load(conn, Target::Live)
        .await
        .map_err(BatchFailure::Database)?;
    for (index, event) in events.iter().enumerate() {
        projection
            .apply(&mut rows, event)
            .map_err(|error| BatchFailure::Event { index, error })?;
    }
    rows.save(conn, Target::Live)
        .await
        .map_err(BatchFailure::Database)
}

/// Why [`apply_batch`] failed.
#[derive(Debug)]
pub enum BatchFailure {
    /// The event at `index` cannot be applied: a poison event.
    Event {
        index: usize,
        error: ProjectionError,
    },
    /// The database failed while loading or saving.
    Database(sqlx::Error),
}
