use std::future::Future;

use sqlx::PgConnection;
use vextrus_commands::RecordedEvent;

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

/// True when retrying later may succeed: the connection failed, not the statement.
pub fn is_transient(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed
    )
}

/// A read model built from the log. The runner calls [`apply`](Projection::apply) for each event
/// of [`AGGREGATE_TYPES`](Projection::AGGREGATE_TYPES), in commit order, inside a transaction whose
/// tenant is the event's.
pub trait Projection: Send + Sync + 'static {
    /// Stable name: the key of the projection's checkpoint.
    const NAME: &'static str;
    /// Bumped when the projection's output changes, so that it gets rebuilt.
    const VERSION: i32;
    /// The tables this projection owns (and a rebuild replaces).
    const TABLES: &'static [&'static str];
    /// The aggregate types whose events it reads; others are never fetched.
    const AGGREGATE_TYPES: &'static [&'static str];

    fn apply(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
    ) -> impl Future<Output = Result<(), ProjectionError>> + Send;
}
