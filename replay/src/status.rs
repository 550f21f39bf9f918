//! What operators see of the projections (`vextrus projections status`, `GET /v1/ops/projections`):
//! version, position, lag behind the log, state, and the latest replay. Everything comes from
//! the database, so any process can answer for all of them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// A replay is considered interrupted when its row has not moved for this long.
const STALE_AFTER_SECONDS: f64 = 10.0;

/// One projection, as an operator sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProjectionReport {
    pub name: String,
    /// This build's version of the projection.
    pub version: i32,
    /// The version its live tables were built with (null before its first start).
    pub built_version: Option<i32>,
    /// `log` (the single-node runner) or `kafka` (workers).
    pub fed_by: String,
    /// The log position the live tables are at: every event of the projection up to it is
    /// applied (for Kafka-fed projections, as the workers' check against the log found it).
    pub position: i64,
    /// The projection's events after that position.
    pub lag_events: i64,
    /// How long the oldest of those has waited.
    pub lag_seconds: f64,
    /// `running`, `stopped` (on a poison event), `rebuilding`, or `not started`.
    pub state: String,
    pub detail: Option<String>,
    /// The latest replay of this projection, if any.
    pub last_replay: Option<ReplayReport>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ReplayReport {
    pub replay_id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub dry_run: bool,
    /// `operator` or `version`.
    pub reason: String,
    /// `building`, `finished`, `failed` or `interrupted`.
    pub state: String,
    pub events_done: i64,
    pub events_total: i64,
    pub rows_written: i64,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub detail: Option<String>,
}

/// A checkpoint: built version, fed by, transaction id, position, state, stopped at, reason.
type CheckpointRow = (i32, String, i64, i64, String, Option<i64>, Option<String>);

/// Reports on every registered projection. `pool` must read the whole log: `vextrus_projector`
/// or the owner.
pub async fn projection_reports(pool: &PgPool) -> Result<Vec<ProjectionReport>, sqlx::Error> {
    let projections = vextrus_projections::registry::catalog();
    let mut reports = Vec::with_capacity(projections.len());
    for projection in &projections {
        let (name, version, aggregate_types) = (
            projection.name,
            projection.version,
            projection.aggregate_types,
        );
        let checkpoint: Option<CheckpointRow> = sqlx::query_as(
            "select c.version, c.fed_by, c.transaction_id::text::bigint, c.global_position,
                        c.state, c.stopped_at, c.stop_reason
                 from projection_checkpoints c
                 where c.projection = $1",
        )
        .bind(name)
        .fetch_optional(pool)
        .await?;
        let last_replay: Option<ReplayReport> = sqlx::query_as(
            "select replay_id, tenant_id, dry_run, reason,
                    case when state = 'building' and now() - updated_at > make_interval(secs => $2)
                         then 'interrupted' else state end as state,
                    events_done, events_total, rows_written, started_at, updated_at, finished_at, detail
             from projection_replays where projection = $1
             order by started_at desc limit 1",
        )
        .bind(name)
        .bind(STALE_AFTER_SECONDS)
        .fetch_optional(pool)
        .await?;
        let Some((built_version, fed_by, transaction_id, position, state, stopped_at, reason)) =
            checkpoint
        else {
            reports.push(ProjectionReport {
                name: name.to_owned(),
                version,
                built_version: None,
                fed_by: "log".into(),
                position: 0,
                lag_events: 0,
                lag_seconds: 0.0,
                state: "not started".into(),
                detail: None,
                last_replay,
            });
            continue;
        };
        let (lag_events, lag_seconds): (i64, f64) = sqlx::query_as(
            "select count(*), coalesce(extract(epoch from now() - min(recorded_at))::float8, 0)
             from events
             where (transaction_id, global_position) > ($1::text::xid8, $2) and aggregate_type = any($3)",
        )
        .bind(transaction_id.to_string())
        .bind(position)
        .bind(aggregate_types)
        .fetch_one(pool)
        .await?;
        let unresolved_poison: Vec<i64> = sqlx::query_scalar(
            "select global_position from projection_poison_events
             where projection = $1 and not skip_requested order by global_position",
        )
        .bind(name)
        .fetch_all(pool)
        .await?;
        let rebuilding = last_replay
            .as_ref()
            .filter(|replay| replay.state == "building" && !replay.dry_run);
        let (state, detail) = if let Some(replay) = rebuilding {
            (
                "rebuilding",
                Some(format!(
                    "replay {} at {} of {} events",
                    replay.replay_id, replay.events_done, replay.events_total
                )),
            )
        } else if state == "stopped" && fed_by == "log" {
            (
                "stopped",
                Some(format!(
                    "stopped on the poison event at log position {}: {}",
                    stopped_at.unwrap_or(0),
                    reason.unwrap_or_default()
                )),
            )
        } else if fed_by == "kafka" && !unresolved_poison.is_empty() {
            (
                "stopped",
                Some(format!(
                    "partitions stopped on poison events at log positions {unresolved_poison:?}"
                )),
            )
        } else {
            ("running", None)
        };
        reports.push(ProjectionReport {
            name: name.to_owned(),
            version,
            built_version: Some(built_version),
            fed_by,
            position,
            lag_events,
            lag_seconds,
            state: state.to_owned(),
            detail,
            last_replay,
        });
    }
    Ok(reports)
}
