//! How much of the log a Kafka-fed projection holds, checked against the log itself, and the
//! gaps it heals from the log.
//!
//! Kafka may lose what the relay handed it: the embedded broker's topics die with the process
//! while the relay's checkpoint survives, a topic's retention can run out before a worker reads
//! it, a relay checkpoint can be restored ahead of what the brokers hold, and a dead group member
//! holds its partitions until the session timeout. None of these shows in the relay's or the
//! consumers' positions. So every worker, once a [`CHECK_INTERVAL`], walks the log after the
//! projection's **covered position** (the checkpoint: every event of the projection's types up to
//! it is applied) and compares each event with the projection's stream positions:
//!
//! - the covered position moves over every event found applied, up to the first that is not;
//!   when none is missing, past every event of the transactions that had finished when the
//!   check began, whatever their types;
//! - an event not applied although the relay had it acknowledged [`KafkaWorker::heal_after`]
//!   ago is applied from the log, through the same dedupe as a Kafka message (a late Kafka copy
//!   is then a duplicate);
//! - the events found missing are the projection's lag behind the log, for status and readiness.
//!
//! Each worker checks on its own, with short statements (never a connection held across the
//! check, so a small pool shared by the relay and every worker cannot starve): with several
//! workers per projection a gap may be looked at twice, and the dedupe applies it once. A stream
//! stopped on a poison event is left to the operator (`vextrus project skip`), not healed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tracing::warn;
use uuid::Uuid;
use vextrus_commands::{LogFilter, LogPosition, LogReader, RecordedEvent, tenant};
use vextrus_domain::TenantId;
use vextrus_projections::{Projection, hold_off_swaps};

use super::{Applied, ApplyError, KafkaWorker, StreamKey};

/// How often a worker checks its projection against the log.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Events read from the log per query of a check.
const PAGE: u32 = 2_000;

/// Pages a check reads at most, so that a worker that checks a long backlog still consumes.
const MAX_PAGES: usize = 10;

/// What one check found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoverageCheck {
    /// Every event of the projection up to this log position is applied.
    pub covered: LogPosition,
    /// Events of the projection after `covered` that were not applied when checked (the lag
    /// behind the log; events the check did not reach are not counted).
    pub missing: u64,
    /// Of those, the ones applied from the log by this check.
    pub healed: u64,
}

/// The relay's acknowledged positions over the last moments: an event below the position the
/// relay had reached `heal_after` ago should have been applied by now.
#[derive(Debug, Default)]
pub(super) struct RelayHistory {
    samples: VecDeque<(Instant, LogPosition)>,
}

impl RelayHistory {
    /// Records the relay's position now; returns the newest position at least `age` old.
    fn record(&mut self, now: Instant, position: LogPosition, age: Duration) -> LogPosition {
        self.samples.push_back((now, position));
        let old_enough = |sample: &(Instant, LogPosition)| now.duration_since(sample.0) >= age;
        while self.samples.len() > 1 && self.samples.get(1).is_some_and(old_enough) {
            self.samples.pop_front();
        }
        match self.samples.front() {
            Some(sample) if old_enough(sample) => sample.1,
            _ => LogPosition::START,
        }
    }
}

impl<P: Projection> KafkaWorker<P> {
    /// Checks the projection against the log and heals what Kafka did not deliver in time.
    pub(super) async fn check_coverage(
        &self,
        relay_history: &mut RelayHistory,
    ) -> Result<CoverageCheck, sqlx::Error> {
        let relay = relay_position(&self.pool, &self.relay_name).await?;
        let heal_below = relay_history.record(Instant::now(), relay, self.kafka.heal_after);
        let (start, generation) = covered_position(&self.pool, P::NAME).await?;
        let poisoned = poisoned_streams(&self.pool, &self.reader, P::NAME).await?;
        let filter = LogFilter::default().aggregate_types(P::AGGREGATE_TYPES.iter().copied());
        let mut check = CoverageCheck {
            covered: start,
            ..CoverageCheck::default()
        };
        // Taken before reading: every transaction below it has finished, so the reads see all
        // of its events.
        let watermark = self.reader.watermark().await?;
        let mut after = start;
        let mut gap_found = false;
        let mut read_to_the_end = false;
        for _ in 0..MAX_PAGES {
            let events = self.reader.read_batch(after, &filter, PAGE).await?;
            let Some(last) = events.last() else {
                read_to_the_end = true;
                break;
            };
            after = last.position();
            let applied = applied_sequences(&self.pool, P::NAME, &events).await?;
            let mut heal = Vec::new();
            for event in &events {
                let key = (
                    event.tenant_id.as_uuid(),
                    event.aggregate_type.clone(),
                    event.aggregate_id.clone(),
                );
                if applied
                    .get(&key)
                    .is_some_and(|sequence| *sequence >= event.sequence)
                {
                    if !gap_found {
                        check.covered = event.position();
                    }
                    continue;
                }
                gap_found = true;
                check.missing += 1;
                if event.position() <= heal_below && !poisoned.contains(&key) {
                    heal.push(event.clone());
                }
            }
            check.healed += self.heal(&heal).await;
            if events.len() < PAGE as usize {
                read_to_the_end = true;
                break;
            }
        }
        if read_to_the_end && !gap_found {
            // Every event of the projection's types below the watermark is applied, so the
            // covered position passes the other types' events there too. Otherwise a projection
            // whose types are rare (the ledger's, in a log of hierarchy commands) would stay
            // behind them: each check would read the whole log after its last event, and empty
            // brokers would make the relay resend everything from there.
            if let Some(up_to) = LogPosition::before_transaction(watermark) {
                if let Some(last) = self.reader.last_position_at(up_to).await? {
                    check.covered = check.covered.max(last);
                }
            }
        }
        if check.covered > start {
            self.save_covered(check.covered, generation).await?;
        }
        Ok(check)
    }

    /// Applies `events` from the log, through the same dedupe as Kafka's copies, in one
    /// transaction, or one by one when one of them cannot be applied; the number applied (what
    /// failed is tried again by the next check).
    async fn heal(&self, events: &[RecordedEvent]) -> u64 {
        let Some(first) = events.first() else {
            return 0;
        };
        let outcome = match self.apply_batch(events).await {
            Err(ApplyError::Poison(_)) if events.len() > 1 => {
                let mut healed = 0;
                for event in events {
                    healed += Box::pin(self.heal(std::slice::from_ref(event))).await;
                }
                return healed;
            }
            outcome => outcome,
        };
        match outcome {
            Ok(outcomes) => {
                let healed = outcomes
                    .iter()
                    .filter(|applied| matches!(applied, Applied::New { .. }))
                    .count() as u64;
                if healed > 0 {
                    warn!(
                        healed,
                        from_position = first.global_position.get(),
                        "applied from the log events that Kafka did not deliver in time"
                    );
                }
                healed
            }
            Err(ApplyError::Transient(error)) => {
                warn!(%error, "healing from the log: will retry");
                0
            }
            Err(ApplyError::Poison(reason)) => {
                warn!(
                    reason,
                    from_position = first.global_position.get(),
                    "healing from the log failed: the worker stops on the event when Kafka delivers it"
                );
                0
            }
        }
    }

    /// Moves the covered position forward, unless a replay swapped the read model since the
    /// check read it (the swap set its own).
    async fn save_covered(&self, covered: LogPosition, generation: i64) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        if hold_off_swaps(&mut tx, P::NAME).await? == generation {
            sqlx::query(
                "update projection_checkpoints
                 set transaction_id = $2::text::xid8, global_position = $3, updated_at = now()
                 where projection = $1
                   and (transaction_id, global_position) < ($2::text::xid8, $3)",
            )
            .bind(P::NAME)
            .bind(covered.transaction_id.to_string())
            .bind(covered.global_position)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }
}

/// The position the relay's brokers acknowledged (the start when it never ran).
async fn relay_position(pool: &sqlx::PgPool, relay: &str) -> Result<LogPosition, sqlx::Error> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "select transaction_id::text::bigint, global_position from relay_checkpoints where relay = $1",
    )
    .bind(relay)
    .fetch_optional(pool)
    .await?;
    Ok(row.map_or(LogPosition::START, position))
}

/// The projection's covered position and its checkpoint's generation.
async fn covered_position(
    pool: &PgPool,
    projection: &str,
) -> Result<(LogPosition, i64), sqlx::Error> {
    let row: Option<(i64, i64, i64)> = sqlx::query_as(
        "select transaction_id::text::bigint, global_position, generation
         from projection_checkpoints where projection = $1",
    )
    .bind(projection)
    .fetch_optional(pool)
    .await?;
    Ok(row.map_or(
        (LogPosition::START, 0),
        |(transaction_id, global_position, generation)| {
            (position((transaction_id, global_position)), generation)
        },
    ))
}

fn position((transaction_id, global_position): (i64, i64)) -> LogPosition {
    LogPosition {
        transaction_id: u64::try_from(transaction_id).unwrap_or(0),
        global_position,
    }
}

/// The streams stopped on a poison event that no operator has skipped yet.
async fn poisoned_streams(
    pool: &PgPool,
    reader: &LogReader,
    projection: &str,
) -> Result<HashSet<StreamKey>, sqlx::Error> {
    let mut streams = HashSet::new();
    let waiting = crate::poison::poison_events(pool, projection)
        .await?
        .into_iter()
        .filter(|poison| !poison.skip_requested);
    for poison in waiting {
        if let Some(event) = reader.read_position(poison.global_position).await? {
            streams.insert((
                event.tenant_id.as_uuid(),
                event.aggregate_type,
                event.aggregate_id,
            ));
        }
    }
    Ok(streams)
}

/// Stream → last applied sequence, for the streams of `events`, read tenant by tenant (the stream
/// positions are under row-level security).
async fn applied_sequences(
    pool: &PgPool,
    projection: &str,
    events: &[RecordedEvent],
) -> Result<HashMap<StreamKey, i64>, sqlx::Error> {
    let mut by_tenant: HashMap<Uuid, (Vec<&str>, Vec<&str>)> = HashMap::new();
    for event in events {
        let (types, ids) = by_tenant.entry(event.tenant_id.as_uuid()).or_default();
        types.push(&event.aggregate_type);
        ids.push(&event.aggregate_id);
    }
    let mut applied = HashMap::new();
    for (tenant_id, (types, ids)) in by_tenant {
        let mut tx = tenant::begin(pool, TenantId::from_uuid(tenant_id)).await?;
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            // A primary-key lookup per stream (LATERAL with LIMIT, which the planner cannot
            // turn into a join): a join let a cached generic plan hash the whole table on every
            // check (67 ms a check at 2,000 streams, `bench lag --streams 2000`).
            "select s.t, s.i, p.sequence
             from (select distinct t, i from unnest($2::text[], $3::text[]) as s (t, i)) s
             cross join lateral (
                 select p.sequence from projection_stream_positions p
                 where p.tenant_id = $4 and p.projection = $1
                   and p.aggregate_type = s.t and p.aggregate_id = s.i
                 limit 1) p",
        )
        .bind(projection)
        .bind(&types)
        .bind(&ids)
        .bind(tenant_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.rollback().await?;
        for (aggregate_type, aggregate_id, sequence) in rows {
            applied.insert((tenant_id, aggregate_type, aggregate_id), sequence);
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(global_position: i64) -> LogPosition {
        LogPosition {
            transaction_id: 1,
            global_position,
        }
    }

    #[test]
    fn the_heal_limit_is_the_newest_relay_position_old_enough() {
        let mut history = RelayHistory::default();
        let start = Instant::now();
        let age = Duration::from_secs(10);
        assert_eq!(history.record(start, at(5), age), LogPosition::START);
        let later = |secs| start + Duration::from_secs(secs);
        assert_eq!(history.record(later(4), at(9), age), LogPosition::START);
        assert_eq!(history.record(later(10), at(12), age), at(5));
        assert_eq!(history.record(later(15), at(20), age), at(9));
        assert_eq!(history.record(later(30), at(21), age), at(20));
        assert!(history.samples.len() <= 2, "old samples are dropped");
    }
}
