//! Poison events of Kafka-fed projections, for operators: which partitions are stopped and why,
//! and the deliberate skip (`vextrus project skip`). The worker that owns the partition sees the
//! request within a second, records the event as applied without applying it, and resumes.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// A partition stopped on an event its projection could not apply.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PoisonEvent {
    pub projection: String,
    /// The event's log position.
    pub global_position: i64,
    pub topic: String,
    pub kafka_partition: i32,
    pub kafka_offset: i64,
    /// Why the projection could not apply it.
    pub reason: String,
    pub stopped_at: DateTime<Utc>,
    /// An operator asked to skip it; the worker resumes once it has recorded the skip.
    pub skip_requested: bool,
}

const COLUMNS: &str = "projection, global_position, topic, kafka_partition, kafka_offset, reason, \
                       stopped_at, skip_requested";

/// Every poison event recorded for `projection`, oldest first (skipped ones included).
pub async fn poison_events(
    pool: &PgPool,
    projection: &str,
) -> Result<Vec<PoisonEvent>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from projection_poison_events
         where projection = $1 order by global_position"
    ))
    .bind(projection)
    .fetch_all(pool)
    .await
}

/// Asks the workers of `projection` to skip the poison event at `global_position`. `None` when no
/// partition of that projection stopped there. `pool` must act as `vextrus_projector` (or own
/// the table).
pub async fn request_skip(
    pool: &PgPool,
    projection: &str,
    global_position: i64,
) -> Result<Option<PoisonEvent>, sqlx::Error> {
    sqlx::query_as(&format!(
        "update projection_poison_events set skip_requested = true
         where projection = $1 and global_position = $2
         returning {COLUMNS}"
    ))
    .bind(projection)
    .bind(global_position)
    .fetch_optional(pool)
    .await
}
