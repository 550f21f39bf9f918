//! The audit queries: one stream's history, a user's activity, a correlation, and a tenant-wide
//! search, each a page at a time after a cursor.
//!
//! They run on a connection whose transaction has the tenant set ([`vextrus_commands::tenant`]),
//! as a role under row-level security on `events`, and also name the tenant in the SQL so the
//! tenant-first indexes apply. A stream's history is in sequence order. Everything else is in
//! commit order `(transaction_id, global_position)` and stops at the watermark, like the log
//! reader (design.md D3): a page never skips an event that commits late.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;
use vextrus_commands::LogPosition;
use vextrus_domain::TenantId;

/// One event with everything the trail records about it.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow, utoipa::ToSchema)]
pub struct AuditEvent {
    /// The event's place in the whole log (`global_position`).
    pub position: i64,
    /// The appending transaction (`xid8` as text): commit order, for cursors.
    #[serde(skip)]
    pub transaction_id: String,
    pub tenant_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// What the event says changed, as the domain recorded it.
    pub data: Value,
    /// When the database recorded it (the appending transaction's start).
    pub recorded_at: DateTime<Utc>,
    /// Who: the token's subject.
    pub actor: String,
    /// The actor's roles when it acted.
    pub actor_roles: Vec<String>,
    pub command_id: Uuid,
    /// The client's `Idempotency-Key`, when it sent one.
    pub idempotency_key: Option<String>,
    /// Shared by everything one user action caused.
    pub correlation_id: Uuid,
    /// The command or event that caused this one, if any.
    pub causation_id: Option<Uuid>,
    pub request_id: Option<String>,
    /// The peer address of the request.
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
    /// The project and site the request named as its context.
    pub project_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    /// Further request context (older events carry their project and site here).
    pub request_metadata: Value,
    /// This event's link in its stream's hash chain (hex SHA-256).
    pub hash: String,
    /// The definition `hash` was computed with: 1 (events appended before migration 0029) or 2
    /// (README, "Proving the log unaltered").
    pub hash_version: i16,
    /// The state change the event made (entity history only): `{"/path": {"before": …, "after": …}}`.
    #[sqlx(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Value>,
}

/// The select list of [`AuditEvent`].
const AUDIT_COLUMNS: &str = "global_position as position, transaction_id::text as transaction_id, tenant_id, \
     aggregate_type, aggregate_id, sequence, event_type, event_version, payload as data, recorded_at, actor, \
     actor_roles, command_id, idempotency_key, correlation_id, causation_id, request_id, \
     host(client_address) as client_address, user_agent, project_id, site_id, request_metadata, \
     encode(hash, 'hex') as hash, hash_version";

/// A half-open time range `[from, to)` on `recorded_at`; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Which events a trail query returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrailQuery {
    /// Every event of one stream (an entity's history), in sequence order.
    Stream {
        aggregate_type: String,
        aggregate_id: String,
    },
    /// Everything one actor did in a time range.
    Actor { actor: String, range: TimeRange },
    /// Everything sharing a correlation id.
    Correlation { correlation_id: Uuid },
    /// A tenant-wide search.
    Search {
        aggregate_type: Option<String>,
        event_type: Option<String>,
        range: TimeRange,
    },
}

/// Where a page ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrailCursor {
    /// After this sequence of the stream.
    Sequence(i64),
    /// After this place in commit order.
    Log(LogPosition),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a cursor returned by this query")]
pub struct InvalidCursor;

impl TrailCursor {
    /// The cursor after `event` in `query`'s order.
    pub fn after(query: &TrailQuery, event: &AuditEvent) -> Result<Self, InvalidCursor> {
        Ok(match query {
            TrailQuery::Stream { .. } => Self::Sequence(event.sequence),
            _ => Self::Log(LogPosition {
                transaction_id: event.transaction_id.parse().map_err(|_| InvalidCursor)?,
                global_position: event.position,
            }),
        })
    }

    /// A stream history's cursor: the last sequence shown.
    pub const SEQUENCE_PATTERN: &str = "^[0-9]{1,18}$";
    /// Every other trail's cursor: the last event's transaction and position, `TX.POS`.
    pub const LOG_PATTERN: &str = r"^[0-9]{1,19}\.[0-9]{1,18}$";

    /// The cursor's text, as [`Self::SEQUENCE_PATTERN`] or [`Self::LOG_PATTERN`] describe it.
    pub fn encode(&self) -> String {
        match self {
            Self::Sequence(sequence) => sequence.to_string(),
            Self::Log(position) => {
                format!("{}.{}", position.transaction_id, position.global_position)
            }
        }
    }

    /// Reads a cursor of `query`'s kind back: exactly the texts its pattern describes.
    pub fn decode(query: &TrailQuery, text: &str) -> Result<Self, InvalidCursor> {
        fn digits<T: std::str::FromStr>(text: &str, max: usize) -> Result<T, InvalidCursor> {
            if text.is_empty() || text.len() > max || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(InvalidCursor);
            }
            text.parse().map_err(|_| InvalidCursor)
        }
        match query {
            TrailQuery::Stream { .. } => Ok(Self::Sequence(digits(text, 18)?)),
            _ => {
                let (transaction_id, global_position) =
                    text.split_once('.').ok_or(InvalidCursor)?;
                Ok(Self::Log(LogPosition {
                    transaction_id: digits(transaction_id, 19)?,
                    global_position: digits(global_position, 18)?,
                }))
            }
        }
    }
}

/// Up to `limit` events of `tenant` that `query` selects, after `after`, in the query's order.
/// `conn` must be in a transaction whose tenant is `tenant`.
pub async fn fetch_page(
    conn: &mut PgConnection,
    tenant: TenantId,
    query: &TrailQuery,
    after: Option<TrailCursor>,
    limit: u32,
) -> Result<Vec<AuditEvent>, sqlx::Error> {
    let mut sql = QueryBuilder::<Postgres>::new(format!(
        "select {AUDIT_COLUMNS} from events where tenant_id = "
    ));
    sql.push_bind(tenant.as_uuid());
    let in_commit_order = !matches!(query, TrailQuery::Stream { .. });
    match query {
        TrailQuery::Stream {
            aggregate_type,
            aggregate_id,
        } => {
            sql.push(" and aggregate_type = ")
                .push_bind(aggregate_type.clone())
                .push(" and aggregate_id = ")
                .push_bind(aggregate_id.clone());
        }
        TrailQuery::Actor { actor, range } => {
            sql.push(" and actor = ").push_bind(actor.clone());
            push_range(&mut sql, range);
        }
        TrailQuery::Correlation { correlation_id } => {
            sql.push(" and correlation_id = ")
                .push_bind(*correlation_id);
        }
        TrailQuery::Search {
            aggregate_type,
            event_type,
            range,
        } => {
            if let Some(aggregate_type) = aggregate_type {
                sql.push(" and aggregate_type = ")
                    .push_bind(aggregate_type.clone());
            }
            if let Some(event_type) = event_type {
                sql.push(" and event_type = ").push_bind(event_type.clone());
            }
            push_range(&mut sql, range);
        }
    }
    match after {
        Some(TrailCursor::Sequence(sequence)) => {
            sql.push(" and sequence > ").push_bind(sequence);
        }
        Some(TrailCursor::Log(position)) => {
            sql.push(" and (transaction_id, global_position) > (")
                .push_bind(position.transaction_id.to_string())
                .push("::text::xid8, ")
                .push_bind(position.global_position)
                .push(")");
        }
        None => {}
    }
    if in_commit_order {
        sql.push(
            " and transaction_id < pg_snapshot_xmin(pg_current_snapshot())
              order by events.transaction_id, events.global_position",
        );
    } else {
        sql.push(" order by sequence");
    }
    sql.push(" limit ").push_bind(i64::from(limit));
    let mut events = sql.build_query_as::<AuditEvent>().fetch_all(conn).await?;
    for event in &mut events {
        redact_secrets(&mut event.data);
    }
    Ok(events)
}

/// The JSON keys whose values the audit trail never shows: password hashes (users' streams keep
/// them so that sign-in is decided from the log). The hash chain covers the stored payload, so
/// `vextrus audit verify` is unaffected.
pub const REDACTED_KEYS: &[&str] = &["password_hash"];

/// Replaces the value of every [`REDACTED_KEYS`] member, at any depth, with `"[redacted]"`.
pub fn redact_secrets(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, member) in map.iter_mut() {
                if REDACTED_KEYS.contains(&key.as_str()) {
                    if !member.is_null() {
                        *member = Value::String("[redacted]".into());
                    }
                } else {
                    redact_secrets(member);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_secrets),
        _ => {}
    }
}

fn push_range(sql: &mut QueryBuilder<'_, Postgres>, range: &TimeRange) {
    if let Some(from) = range.from {
        sql.push(" and recorded_at >= ").push_bind(from);
    }
    if let Some(to) = range.to {
        sql.push(" and recorded_at < ").push_bind(to);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_belong_to_their_kind_of_query() {
        let stream = TrailQuery::Stream {
            aggregate_type: "organization".into(),
            aggregate_id: "x".into(),
        };
        let correlation = TrailQuery::Correlation {
            correlation_id: Uuid::nil(),
        };
        let by_sequence = TrailCursor::Sequence(7);
        let by_log = TrailCursor::Log(LogPosition {
            transaction_id: 900,
            global_position: 42,
        });
        assert_eq!(
            TrailCursor::decode(&stream, &by_sequence.encode()),
            Ok(by_sequence)
        );
        assert_eq!(
            TrailCursor::decode(&correlation, &by_log.encode()),
            Ok(by_log)
        );
        assert_eq!(
            TrailCursor::decode(&stream, &by_log.encode()),
            Err(InvalidCursor)
        );
        assert_eq!(
            TrailCursor::decode(&correlation, &by_sequence.encode()),
            Err(InvalidCursor)
        );
        for garbage in ["garbage!", "", "+7", "7.", "1234567890123456789", " 7"] {
            assert_eq!(
                TrailCursor::decode(&stream, garbage),
                Err(InvalidCursor),
                "{garbage:?}"
            );
        }
        for garbage in ["900", ".42", "900.", "900.42.1", "-1.42", "900.+42"] {
            assert_eq!(
                TrailCursor::decode(&correlation, garbage),
                Err(InvalidCursor),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn password_hashes_are_redacted_at_any_depth() {
        let mut value = serde_json::json!({
            "password_hash": "$argon2id$v=19$secret",
            "profile": {"password_hash": null, "name": "Alice"},
            "list": [{"password_hash": "x"}]
        });
        redact_secrets(&mut value);
        assert_eq!(
            value,
            serde_json::json!({
                "password_hash": "[redacted]",
                "profile": {"password_hash": null, "name": "Alice"},
                "list": [{"password_hash": "[redacted]"}]
            })
        );
    }
}
