//! The per-stream hash chain, recomputed outside the database.
//!
//! The database computes each event's hash on insert (`vextrus_event_hash_of` in
//! `migrations/0010_audit_trail.sql`); this module is an independent implementation of the same
//! definition, so `vextrus audit verify` does not take the database's word for it. The hashed
//! message is a JSON array in PostgreSQL's jsonb text form: `, ` between elements, strings escaped
//! as PostgreSQL's `escape_json` does, and the jsonb values (payload, roles, request metadata)
//! embedded in the text form the database renders them in.

use std::fmt::Write;

use ring::digest::{SHA256, digest};
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
        let mut hash = [0; HASH_LEN];
        hash.copy_from_slice(digest(&SHA256, self.message(previous).as_bytes()).as_ref());
        hash
    }

    /// The hashed text: the jsonb array `vextrus_event_hash_of` builds, as PostgreSQL prints it.
    pub fn message(&self, previous: Option<&[u8]>) -> String {
        let mut message = Message(String::with_capacity(512 + self.payload.len()));
        message.0.push('[');
        message.string(Some("vextrus-event-v1"));
        message.string(previous.map(hex).as_deref());
        message.string(Some(&self.tenant_id.to_string()));
        message.string(Some(&self.aggregate_type));
        message.string(Some(&self.aggregate_id));
        message.number(self.sequence);
        message.number(self.global_position);
        message.string(Some(&self.transaction_id));
        message.string(Some(&self.event_type));
        message.string(Some(&self.event_version));
        message.json(&self.payload);
        message.string(Some(&self.actor));
        message.json(&self.actor_roles);
        message.string(Some(&self.command_id.to_string()));
        message.string(self.idempotency_key.as_deref());
        message.string(Some(&self.correlation_id.to_string()));
        message.string(self.causation_id.map(|id| id.to_string()).as_deref());
        message.string(self.request_id.as_deref());
        message.string(self.client_address.as_deref());
        message.string(self.user_agent.as_deref());
        message.string(self.project_id.map(|id| id.to_string()).as_deref());
        message.string(self.site_id.map(|id| id.to_string()).as_deref());
        message.json(&self.request_metadata);
        message.number(self.recorded_at_micros);
        message.0.push(']');
        message.0
    }

    /// The stored hash, when it has the right length.
    pub fn stored_hash(&self) -> Option<EventHash> {
        self.hash.as_deref().and_then(|hash| hash.try_into().ok())
    }
}

/// A jsonb array being printed.
struct Message(String);

impl Message {
    fn separate(&mut self) {
        if !self.0.ends_with('[') {
            self.0.push_str(", ");
        }
    }

    /// A string as PostgreSQL's `escape_json` writes it, or `null`.
    fn string(&mut self, value: Option<&str>) {
        self.separate();
        let Some(value) = value else {
            self.0.push_str("null");
            return;
        };
        self.0.push('"');
        for c in value.chars() {
            match c {
                '"' => self.0.push_str("\\\""),
                '\\' => self.0.push_str("\\\\"),
                '\u{8}' => self.0.push_str("\\b"),
                '\u{c}' => self.0.push_str("\\f"),
                '\n' => self.0.push_str("\\n"),
                '\r' => self.0.push_str("\\r"),
                '\t' => self.0.push_str("\\t"),
                c if u32::from(c) < 0x20 => {
                    let _ = write!(self.0, "\\u{:04x}", u32::from(c));
                }
                c => self.0.push(c),
            }
        }
        self.0.push('"');
    }

    fn number(&mut self, value: i64) {
        self.separate();
        let _ = write!(self.0, "{value}");
    }

    /// A value already in jsonb text form.
    fn json(&mut self, text: &str) {
        self.separate();
        self.0.push_str(text);
    }
}

/// Lower-case hex, as PostgreSQL's `encode(…, 'hex')` writes it.
pub fn hex(bytes: &[u8]) -> String {
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
    fn the_message_is_printed_as_postgresql_prints_the_jsonb_array() {
        let mut row = row();
        row.user_agent = Some("tab\there \"q\" \\ \u{1}".into());
        let message = row.message(None);
        assert!(message.starts_with(r#"["vextrus-event-v1", null, "00000000-0000-0000-0000-000000000000", "organization", "a", 1, 7, "750", "#));
        // What PostgreSQL 15 prints for `jsonb_build_array(E'tab\there "q" \\ \u0001')::text`.
        assert!(
            message.contains(r#", "tab\there \"q\" \\ \u0001", "#),
            "{message}"
        );
        assert!(message.ends_with(r#", {}, 1700000000000000]"#), "{message}");
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
