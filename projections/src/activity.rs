//! Audit activity: how many events and commands each actor caused, per tenant, day and
//! aggregate type (`audit_activity`, `migrations/0011_read_model_layer.sql`), for auditors who
//! ask "who did how much, when" without scanning the log.
//!
//! Every stream of every aggregate type feeds the same rows, so they are [`Counters`](crate::Counters): a batch
//! adds its counts, and two Kafka workers applying different streams' events to the same row
//! both count. A command's events are contiguous in one stream; an event starts a new command
//! when its command id differs from the previous event's of its stream, which one state row per
//! stream remembers (`audit_activity_streams`, owned by that stream).
//!
//! Days are calendar days in Bangladesh (UTC+6, no daylight saving), where our users work.

use chrono::{Duration, NaiveDate};
use uuid::Uuid;
use vextrus_commands::{AGGREGATE_TYPES, RecordedEvent};

use crate::projection::{Projection, ProjectionError};
use crate::{read_model, row};

/// Bangladesh Standard Time's offset from UTC, in hours.
pub const DAY_OFFSET_HOURS: i64 = 6;

/// Builds the activity counters from every aggregate type's events.
#[derive(Debug, Default, Clone, Copy)]
pub struct AuditActivity;

read_model! {
    /// The counters a batch adds, and the streams' last commands it reads.
    #[derive(Debug)]
    pub struct ActivityRows {
        activity: Counters<ActivityCount>,
        streams: Table<StreamCommand>,
    }
}

row! {
    /// Counts for one actor, (Bangladesh) day and aggregate type.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct ActivityCount in "audit_activity" {
        key { actor: String, day: NaiveDate, aggregate_type: String }
        events: i64 => additive,
        /// Commands that appended at least one event.
        commands: i64 => additive,
    }
}

row! {
    /// The command of a stream's latest event.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct StreamCommand in "audit_activity_streams" {
        key { aggregate_type: String, aggregate_id: String }
        command_id: Uuid,
    }
}

/// The Bangladesh calendar day of `event`.
pub fn day_of(event: &RecordedEvent) -> NaiveDate {
    (event.recorded_at + Duration::hours(DAY_OFFSET_HOURS)).date_naive()
}

fn stream_of(event: &RecordedEvent) -> (String, String) {
    (event.aggregate_type.clone(), event.aggregate_id.clone())
}

impl Projection for AuditActivity {
    const NAME: &'static str = "audit_activity";
    const VERSION: i32 = 1;
    const AGGREGATE_TYPES: &'static [&'static str] = AGGREGATE_TYPES;

    type Rows = ActivityRows;

    fn want(&self, rows: &mut ActivityRows, event: &RecordedEvent) {
        rows.streams
            .want(event.tenant_id.as_uuid(), &stream_of(event));
    }

    fn apply(&self, rows: &mut ActivityRows, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let tenant = event.tenant_id.as_uuid();
        let stream = stream_of(event);
        let new_command = rows
            .streams
            .get(tenant, &stream)
            .is_none_or(|last| last.command_id != event.command_id);
        if new_command {
            rows.streams.insert(
                tenant,
                stream,
                StreamCommand {
                    command_id: event.command_id,
                },
            );
        }
        let key = (
            event.actor.clone(),
            day_of(event),
            event.aggregate_type.clone(),
        );
        rows.activity.add(tenant, key, |count| {
            count.events += 1;
            count.commands += i64::from(new_command);
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::Value;
    use vextrus_commands::GlobalPosition;
    use vextrus_domain::TenantId;

    use super::*;

    fn event(stream: &str, sequence: i64, command: Uuid, at: (u32, u32)) -> RecordedEvent {
        RecordedEvent {
            tenant_id: TenantId::from_uuid(Uuid::nil()),
            aggregate_type: "organization".into(),
            aggregate_id: stream.into(),
            sequence,
            event_type: "OrganizationRenamed".into(),
            event_version: "1".into(),
            payload: Value::Null,
            actor: "alice".into(),
            command_id: command,
            correlation_id: command,
            causation_id: None,
            request_id: None,
            request_metadata: Value::Null,
            recorded_at: Utc.with_ymd_and_hms(2026, 12, at.0, at.1, 0, 0).unwrap(),
            global_position: GlobalPosition::new(sequence),
            transaction_id: 1,
        }
    }

    #[test]
    fn a_command_counts_once_however_many_events_it_appended_and_days_are_dhaka_days() {
        let (one, two) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut rows = ActivityRows::default();
        // 17:59 UTC on the 1st is 23:59 in Dhaka; 18:00 UTC is the 2nd there.
        for event in [
            event("a", 1, one, (1, 17)),
            event("a", 2, one, (1, 17)),
            event("b", 1, Uuid::from_u128(3), (1, 17)),
            event("a", 3, two, (1, 18)),
        ] {
            AuditActivity.apply(&mut rows, &event).unwrap();
        }
        let count = |day| {
            let day = NaiveDate::from_ymd_opt(2026, 12, day).unwrap();
            let key = ("alice".to_owned(), day, "organization".to_owned());
            rows.activity.pending(Uuid::nil(), &key).cloned()
        };
        assert_eq!(
            count(1),
            Some(ActivityCount {
                events: 3,
                commands: 2
            })
        );
        assert_eq!(
            count(2),
            Some(ActivityCount {
                events: 1,
                commands: 1
            })
        );
    }
}
