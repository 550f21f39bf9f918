//! Read-your-writes (design.md D9): a query that carries `min_position=N` (the `position` of a
//! command's response) waits, up to the configured bound, until the read model's projection has
//! applied every event it reads of the transaction that wrote N (a command's events commit
//! together: a document, its number and its journal entry), then answers. If it has not in time, the answer is 503 with
//! `Retry-After`. A position that is not an event of the caller's tenant has nothing to wait for
//! and answers at once.
//!
//! Positions are compared in commit order, as the single-node runner reads them (design.md D3):
//! the event's `(transaction_id, global_position)` against the projection's checkpoint. Workers
//! fed from Kafka apply streams in parallel and keep no single checkpoint; for them the event
//! counts as applied once its stream's recorded sequence has reached it. The check reads tables,
//! so it holds wherever the projection runs; in-process runners also wake waiting requests as
//! soon as they commit a batch.

use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;
use utoipa::IntoParams;

use vextrus_projections::Projection;

use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;

/// How often the checkpoint is re-read when no in-process runner signals progress.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// The `min_position` query parameter, shared by every query route.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Freshness {
    /// Wait until the read model includes the event at this log position (a command response's
    /// `position`). At most the server's read wait; then 503 with `Retry-After`.
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

enum Progress {
    Passed,
    Behind,
    /// No event of this tenant has that position.
    NotThisTenants,
    Stopped {
        at: i64,
    },
}

/// Waits until projection `P` has applied the event at `min_position`, if one was asked for. An
/// event of an aggregate type `P` does not read has nothing to wait for.
pub async fn wait_for<P: Projection>(
    state: &AppState,
    context: &RequestContext,
    min_position: Option<i64>,
) -> Result<(), ApiError> {
    let projection = P::NAME;
    let Some(position) = min_position else {
        return Ok(());
    };
    if position < 1 {
        return Err(ApiError::invalid_param(
            "min_position",
            "must be at least 1",
        ));
    }
    let wait = state.settings().read_wait;
    let deadline = Instant::now() + wait;
    // An in-process runner of this projection wakes the wait as soon as it commits a batch.
    let mut wakeup = state
        .background()
        .runners
        .iter()
        .find(|status| status.borrow().name == projection)
        .cloned();
    loop {
        match progress(state, context, projection, P::AGGREGATE_TYPES, position).await? {
            // A command's response only ever names an event of its own tenant, so a position
            // that is none of this tenant's events has nothing of it to wait for. Answering at
            // once, the same way for every such position, tells nothing about other tenants.
            Progress::Passed | Progress::NotThisTenants => return Ok(()),
            Progress::Stopped { at } => {
                return Err(ApiError::NotCaughtUp {
                    detail: format!(
                        "the read model is stopped at log position {at} and waits for an operator"
                    ),
                    retry_after_secs: 30,
                });
            }
            Progress::Behind => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(ApiError::NotCaughtUp {
                detail: format!(
                    "the read model has not reached log position {position} within {} ms",
                    wait.as_millis()
                ),
                retry_after_secs: 1,
            });
        }
        let nap = POLL_INTERVAL.min(deadline - now);
        let runner_gone = match &mut wakeup {
            Some(status) => matches!(
                tokio::time::timeout(nap, status.changed()).await,
                Ok(Err(_))
            ),
            None => {
                tokio::time::sleep(nap).await;
                false
            }
        };
        if runner_gone {
            wakeup = None;
        }
    }
}

async fn progress(
    state: &AppState,
    context: &RequestContext,
    projection: &'static str,
    aggregate_types: &[&str],
    position: i64,
) -> Result<Progress, ApiError> {
    let mut tx = context.tenant_transaction(state).await?;
    // Passed once the projection has applied every event of the position's transaction that it
    // reads: a command's events commit together (a document, its number, its journal entry), and
    // its position names the last of them, which may be of a type this projection does not read.
    let row: (bool, bool, Option<String>, Option<i64>) = sqlx::query_as(
        "select t.global_position is not null,
                not exists (
                    select 1 from events m
                    left join projection_stream_positions s
                           on s.projection = $1 and s.tenant_id = m.tenant_id
                          and s.aggregate_type = m.aggregate_type and s.aggregate_id = m.aggregate_id
                    where m.transaction_id = t.transaction_id and m.tenant_id = t.tenant_id
                      and m.aggregate_type = any($3)
                      and not coalesce((c.transaction_id, c.global_position)
                                       >= (m.transaction_id, m.global_position), false)
                      and not coalesce(s.sequence >= m.sequence, false)),
                c.state,
                c.stopped_at
           from (select) as one
           left join events t on t.global_position = $2
           left join projection_checkpoints c on c.projection = $1",
    )
    .bind(projection)
    .bind(position)
    .bind(aggregate_types)
    .fetch_one(&mut *tx)
    .await
    .map_err(ApiError::database)?;
    tx.rollback().await.map_err(ApiError::database)?;
    Ok(match row {
        (false, _, _, _) => Progress::NotThisTenants,
        (true, true, _, _) => Progress::Passed,
        (true, false, Some(state), Some(at)) if state == "stopped" => Progress::Stopped { at },
        _ => Progress::Behind,
    })
}
