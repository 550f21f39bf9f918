//! The message a committed event becomes on Kafka: a versioned JSON envelope, keyed by
//! `tenant_id/aggregate_id` so that each stream keeps its order within one partition, with headers
//! that let consumers route and filter without parsing the value.
//!
//! Version 1 (`envelope_version: 1`):
//!
//! ```json
//! {
//!   "envelope_version": 1,
//!   "tenant_id": "0195...", "aggregate_type": "organization", "aggregate_id": "0195...",
//!   "sequence": 3, "global_position": 1042, "transaction_id": 7781,
//!   "event_type": "ProjectCreated", "event_version": "1",
//!   "payload": { "ProjectCreated": { "project_id": "...", "division_id": "...", "name": "...", "code": "PADMA" } },
//!   "metadata": { "actor": "you@example.com", "command_id": "...", "correlation_id": "...",
//!                 "causation_id": null, "request_id": "...", "request_metadata": {} },
//!   "recorded_at": "2026-11-22T01:02:31.597378Z"
//! }
//! ```
//!
//! Consumers must ignore fields they do not know; a change that is not an addition bumps
//! `envelope_version`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;
use vextrus_commands::{GlobalPosition, RecordedEvent};
use vextrus_domain::TenantId;

/// The envelope version this build writes and reads.
pub const ENVELOPE_VERSION: u32 = 1;

/// Header names carried by every message.
pub mod headers {
    pub const TENANT_ID: &str = "vextrus-tenant-id";
    pub const EVENT_TYPE: &str = "vextrus-event-type";
    pub const SEQUENCE: &str = "vextrus-sequence";
    pub const GLOBAL_POSITION: &str = "vextrus-global-position";
    pub const CORRELATION_ID: &str = "vextrus-correlation-id";
    pub const ENVELOPE_VERSION: &str = "vextrus-envelope-version";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub envelope_version: u32,
    pub tenant_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// 1-based, gap-free position within the stream.
    pub sequence: i64,
    /// The event's place in the log (identity order).
    pub global_position: i64,
    /// The appending transaction (xid8); with `global_position`, the commit order.
    pub transaction_id: u64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: AuditMetadata,
    pub recorded_at: DateTime<Utc>,
}

/// Who caused the event and on whose behalf (the log's audit columns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditMetadata {
    pub actor: String,
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub request_id: Option<String>,
    pub request_metadata: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the message has no value")]
    Empty,
    #[error("the message is not a Vextrus event envelope: {0}")]
    Json(#[from] serde_json::Error),
    #[error("envelope version {0} is newer than this build understands ({ENVELOPE_VERSION})")]
    UnknownVersion(u32),
}

impl EventEnvelope {
    /// The message key: a stream's events share it, so they share a partition and keep order.
    pub fn key(&self) -> String {
        format!("{}/{}", self.tenant_id, self.aggregate_id)
    }

    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    pub fn from_json(bytes: Option<&[u8]>) -> Result<Self, EnvelopeError> {
        let envelope: Self = serde_json::from_slice(bytes.ok_or(EnvelopeError::Empty)?)?;
        if envelope.envelope_version > ENVELOPE_VERSION {
            return Err(EnvelopeError::UnknownVersion(envelope.envelope_version));
        }
        Ok(envelope)
    }
}

impl From<&RecordedEvent> for EventEnvelope {
    fn from(event: &RecordedEvent) -> Self {
        Self {
            envelope_version: ENVELOPE_VERSION,
            tenant_id: event.tenant_id.as_uuid(),
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence,
            global_position: event.global_position.get(),
            transaction_id: event.transaction_id,
            event_type: event.event_type.clone(),
            event_version: event.event_version.clone(),
            payload: event.payload.clone(),
            metadata: AuditMetadata {
                actor: event.actor.clone(),
                command_id: event.command_id,
                correlation_id: event.correlation_id,
                causation_id: event.causation_id,
                request_id: event.request_id.clone(),
                request_metadata: event.request_metadata.clone(),
            },
            recorded_at: event.recorded_at,
        }
    }
}

impl From<EventEnvelope> for RecordedEvent {
    fn from(envelope: EventEnvelope) -> Self {
        Self {
            tenant_id: TenantId::from_uuid(envelope.tenant_id),
            aggregate_type: envelope.aggregate_type,
            aggregate_id: envelope.aggregate_id,
            sequence: envelope.sequence,
            event_type: envelope.event_type,
            event_version: envelope.event_version,
            payload: envelope.payload,
            actor: envelope.metadata.actor,
            command_id: envelope.metadata.command_id,
            correlation_id: envelope.metadata.correlation_id,
            causation_id: envelope.metadata.causation_id,
            request_id: envelope.metadata.request_id,
            request_metadata: envelope.metadata.request_metadata,
            recorded_at: envelope.recorded_at,
            global_position: GlobalPosition::new(envelope.global_position),
            transaction_id: envelope.transaction_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> RecordedEvent {
        RecordedEvent {
            tenant_id: TenantId::new(),
            aggregate_type: "organization".into(),
            aggregate_id: Uuid::now_v7().to_string(),
            sequence: 3,
            event_type: "DivisionCreated".into(),
            event_version: "1".into(),
            payload: serde_json::json!({"DivisionCreated": {"code": "DHK"}}),
            actor: "user-1".into(),
            command_id: Uuid::now_v7(),
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            request_id: Some("req-1".into()),
            request_metadata: serde_json::json!({"site_id": "x"}),
            recorded_at: Utc::now(),
            global_position: GlobalPosition::new(42),
            transaction_id: 777,
        }
    }

    #[test]
    fn an_event_survives_the_round_trip_through_its_envelope() {
        let event = event();
        let envelope = EventEnvelope::from(&event);
        let bytes = envelope.to_json().unwrap();
        let back = EventEnvelope::from_json(Some(&bytes)).unwrap();
        assert_eq!(RecordedEvent::from(back), event);
        assert_eq!(
            envelope.key(),
            format!("{}/{}", event.tenant_id, event.aggregate_id)
        );
    }

    #[test]
    fn unknown_fields_are_ignored_and_newer_versions_refused() {
        let mut value = serde_json::to_value(EventEnvelope::from(&event())).unwrap();
        value["added_later"] = "x".into();
        assert!(EventEnvelope::from_json(Some(&serde_json::to_vec(&value).unwrap())).is_ok());
        value["envelope_version"] = 2.into();
        assert!(matches!(
            EventEnvelope::from_json(Some(&serde_json::to_vec(&value).unwrap())),
            Err(EnvelopeError::UnknownVersion(2))
        ));
        assert!(matches!(
            EventEnvelope::from_json(None),
            Err(EnvelopeError::Empty)
        ));
    }
}
