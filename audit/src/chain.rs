//! The per-stream hash chain, recomputed outside the database.
//!
//! The database computes each event's hash on insert (`vextrus_event_hash` in
//! `migrations/0010_audit_trail.sql`); this module is an independent implementation of the same
//! definition, so `vextrus audit verify` does not take the database's word for it. Every field is
//! written as `<byte length>:<value>,` (or `-,` for null), so no choice of values can shift bytes
//! from one field into another. Values come from the database in their text forms (`payload::text`
//! is the canonical jsonb rendering, `client_address::text` the inet one).

use ring::digest::{Context, SHA256};
use sqlx::FromRow;
use uuid::Uuid;

/// The length of a SHA-256 hash.
pub const HASH_LEN: usize = 32;

/// An event's hash: SHA-256.
pub type EventHash = [u8; HASH_LEN];

/// The select list of [`ChainRow`] over `events`.
pub const CHAIN_COLUMNS: &str = "tenant_id, aggregate_type, aggregate_id, sequence, global_position, \
     transaction_id::text as transaction_id, event_type, event_version, payload::text as payload, actor, \
     to_jsonb(actor_roles)::text as actor_roles, command_id, idempotency_key, correlation_id, causation_id, request_id, \
     client_address::text as client_address, user_agent, project_id, site_id, \
     request_metadata::text as request_metadata, \
     (extract(epoch from recorded_at) * 1000000)::bigint as recorded_at_micros, hash, previous_hash";

/// One event as the hash covers it, with the hash stored beside it.
#[derive(Debug, Clone, FromRow)]
pub struct ChainRow {
    pub tenant_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub global_position: i64,
    pub transaction_id: String,
    pub event_type: String,
    pub event_version: String,
    pub payload: String,
    pub actor: String,
    /// The roles as a jsonb array in its text form.
    pub actor_roles: String,
    pub command_id: Uuid,
    pub idempotency_key: Option<String>,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub request_id: Option<String>,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
    pub project_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    pub request_metadata: String,
    pub recorded_at_micros: i64,
    /// As stored; `None` only if someone removed it.
    pub hash: Option<Vec<u8>>,
    /// The predecessor's hash this event was chained to, as stored (`None` for a first event).
    pub previous_hash: Option<Vec<u8>>,
}

impl ChainRow {
    /// The hash this event must have if it follows `previous` (`None` for a stream's first event)
    /// and nothing about it changed.
    pub fn expected_hash(&self, previous: Option<&[u8]>) -> EventHash {
        let mut message = Message(Context::new(&SHA256));
        message.0.update(b"vextrus-event-v1,");
        message.field(previous.map(hex).as_deref());
        message.field(Some(&self.tenant_id.to_string()));
        message.field(Some(&self.aggregate_type));
        message.field(Some(&self.aggregate_id));
        message.field(Some(&self.sequence.to_string()));
        message.field(Some(&self.global_position.to_string()));
        message.field(Some(&self.transaction_id));
        message.field(Some(&self.event_type));
        message.field(Some(&self.event_version));
        message.field(Some(&self.payload));
        message.field(Some(&self.actor));
        message.field(Some(&self.actor_roles));
        message.field(Some(&self.command_id.to_string()));
        message.field(self.idempotency_key.as_deref());
        message.field(Some(&self.correlation_id.to_string()));
        message.field(self.causation_id.map(|id| id.to_string()).as_deref());
        message.field(self.request_id.as_deref());
        message.field(self.client_address.as_deref());
        message.field(self.user_agent.as_deref());
        message.field(self.project_id.map(|id| id.to_string()).as_deref());
        message.field(self.site_id.map(|id| id.to_string()).as_deref());
        message.field(Some(&self.request_metadata));
        message.field(Some(&self.recorded_at_micros.to_string()));
        message.finish()
    }

    /// The stored hash, when it has the right length.
    pub fn stored_hash(&self) -> Option<EventHash> {
        self.hash.as_deref().and_then(|hash| hash.try_into().ok())
    }
}

struct Message(Context);

impl Message {
    fn field(&mut self, value: Option<&str>) {
        match value {
            None => self.0.update(b"-,"),
            Some(value) => {
                self.0.update(value.len().to_string().as_bytes());
                self.0.update(b":");
                self.0.update(value.as_bytes());
                self.0.update(b",");
            }
        }
    }

    fn finish(self) -> EventHash {
        let mut hash = [0; HASH_LEN];
        hash.copy_from_slice(self.0.finish().as_ref());
        hash
    }
}

/// Lower-case hex, as PostgreSQL's `encode(…, 'hex')` writes it.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

/// The bytes of lower- or upper-case hex text; `None` if it is not hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> ChainRow {
        ChainRow {
            tenant_id: Uuid::nil(),
            aggregate_type: "organization".into(),
            aggregate_id: "a".into(),
            sequence: 1,
            global_position: 7,
            transaction_id: "750".into(),
            event_type: "OrganizationCreated".into(),
            event_version: "1".into(),
            payload: r#"{"name": "Meghna"}"#.into(),
            actor: "user-1".into(),
            actor_roles: r#"["admin"]"#.into(),
            command_id: Uuid::nil(),
            idempotency_key: None,
            correlation_id: Uuid::nil(),
            causation_id: None,
            request_id: Some("r".into()),
            client_address: Some("127.0.0.1/32".into()),
            user_agent: None,
            project_id: None,
            site_id: None,
            request_metadata: "{}".into(),
            recorded_at_micros: 1_700_000_000_000_000,
            hash: None,
            previous_hash: None,
        }
    }

    #[test]
    fn every_field_and_the_previous_hash_change_the_hash() {
        let base = row().expected_hash(None);
        assert_eq!(base, row().expected_hash(None), "deterministic");
        assert_ne!(base, row().expected_hash(Some(&[0; 32])));
        let mut changed = row();
        changed.payload = r#"{"name": "Meghnb"}"#.into();
        assert_ne!(base, changed.expected_hash(None));
        let mut changed = row();
        changed.sequence = 2;
        assert_ne!(base, changed.expected_hash(None));
        let mut changed = row();
        changed.actor_roles = "[]".into();
        assert_ne!(base, changed.expected_hash(None));
    }

    #[test]
    fn values_cannot_move_between_fields() {
        // "ab" + "" and "a" + "b" concatenate alike; the length prefixes tell them apart.
        let mut first = row();
        first.aggregate_type = "ab".into();
        first.aggregate_id = String::new();
        let mut second = row();
        second.aggregate_type = "a".into();
        second.aggregate_id = "b".into();
        assert_ne!(first.expected_hash(None), second.expected_hash(None));
        // Null and the text "-" differ too.
        let mut null = row();
        null.request_id = None;
        let mut dash = row();
        dash.request_id = Some("-".into());
        assert_ne!(null.expected_hash(None), dash.expected_hash(None));
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
        assert_eq!(unhex("000fff"), Some(vec![0, 15, 255]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }
}
