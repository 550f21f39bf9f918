//! The per-stream hash chain, recomputed outside the database.
//!
//! The database computes each event's hash on insert; this module is an independent
//! implementation of the same definitions, so `vextrus audit verify` does not take the database's
//! word for it. Each event names the definition it was chained with (`hash_version`):
//!
//! - **Version 1** (`vextrus_event_hash_of`, `migrations/0010_audit_trail.sql`; events appended
//!   before migration 0029): the hashed message is a JSON array in PostgreSQL's jsonb text form:
//!   `, ` between elements, strings escaped as PostgreSQL's `escape_json` does, and the jsonb
//!   values (payload, roles, request metadata) embedded in the text form the database renders
//!   them in.
//! - **Version 2** (`vextrus_event_hash_v2_of`, `migrations/0029_event_hash_v2.sql`): bytes, each
//!   value behind its 4-byte big-endian length (-1 when absent), integers as 8 bytes big-endian,
//!   uuids as their 16 bytes, text as UTF-8 and the jsonb values as their text form.

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
     (extract(epoch from recorded_at) * 1000000)::bigint as recorded_at_micros, hash, previous_hash, hash_version";

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
    /// The definition the hash was computed with: 1 or 2.
    pub hash_version: i16,
}

impl ChainRow {
    /// The hash this event must have if it follows `previous` (`None` for a stream's first event)
    /// and nothing about it changed, by the definition it names; `None` for a version no
    /// definition has (no stored hash can then be right).
    pub fn expected_hash(&self, previous: Option<&[u8]>) -> Option<EventHash> {
        let digest = match self.hash_version {
            1 => digest(&SHA256, self.message_v1(previous).as_bytes()),
            2 => digest(&SHA256, &self.message_v2(previous)),
            _ => return None,
        };
        let mut hash = [0; HASH_LEN];
        hash.copy_from_slice(digest.as_ref());
        Some(hash)
    }

    /// Version 1's hashed text: the jsonb array `vextrus_event_hash_of` builds, as PostgreSQL
    /// prints it.
    pub fn message_v1(&self, previous: Option<&[u8]>) -> String {
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

    /// Version 2's hashed bytes: `vextrus-event-v2`, then the event's own values, then those its
    /// command's events share (`vextrus_event_hash_v2_of` and `vextrus_command_hash_part`).
    pub fn message_v2(&self, previous: Option<&[u8]>) -> Vec<u8> {
        let mut message = Fields(Vec::with_capacity(512 + self.payload.len()));
        message.0.extend_from_slice(b"vextrus-event-v2");
        message.bytes(previous);
        message.integer(self.sequence);
        message.integer(self.global_position);
        message.text(Some(&self.event_type));
        message.text(Some(&self.event_version));
        message.text(Some(&self.payload));
        message.uuid(Some(self.tenant_id));
        message.text(Some(&self.aggregate_type));
        message.text(Some(&self.aggregate_id));
        match self.transaction_id.parse::<u64>() {
            Ok(transaction) => message.bytes(Some(&transaction.to_be_bytes())),
            // xid8 prints as a decimal u64; anything else is not what the database hashed.
            Err(_) => message.text(Some(&self.transaction_id)),
        }
        message.text(Some(&self.actor));
        message.text(Some(&self.actor_roles));
        message.uuid(Some(self.command_id));
        message.text(self.idempotency_key.as_deref());
        message.uuid(Some(self.correlation_id));
        message.uuid(self.causation_id);
        message.text(self.request_id.as_deref());
        message.text(self.client_address.as_deref());
        message.text(self.user_agent.as_deref());
        message.uuid(self.project_id);
        message.uuid(self.site_id);
        message.text(Some(&self.request_metadata));
        message.integer(self.recorded_at_micros);
        message.0
    }

    /// The stored hash, when it has the right length.
    pub fn stored_hash(&self) -> Option<EventHash> {
        self.hash.as_deref().and_then(|hash| hash.try_into().ok())
    }
}

/// Version 2's message being written: each value behind its 4-byte big-endian length, or the
/// length -1 alone when absent (`vextrus_hash_field`).
struct Fields(Vec<u8>);

impl Fields {
    fn bytes(&mut self, value: Option<&[u8]>) {
        match value {
            Some(value) => {
                // A value's length fits: PostgreSQL values are at most 1 GB.
                let length = i32::try_from(value.len()).unwrap_or(i32::MAX);
                self.0.extend_from_slice(&length.to_be_bytes());
                self.0.extend_from_slice(value);
            }
            None => self.0.extend_from_slice(&(-1_i32).to_be_bytes()),
        }
    }

    fn text(&mut self, value: Option<&str>) {
        self.bytes(value.map(str::as_bytes));
    }

    fn uuid(&mut self, value: Option<Uuid>) {
        self.bytes(value.as_ref().map(|id| id.as_bytes().as_slice()));
    }

    fn integer(&mut self, value: i64) {
        self.bytes(Some(&value.to_be_bytes()));
    }
}

/// Version 1's jsonb array being printed.
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

    fn row(hash_version: i16) -> ChainRow {
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
            hash_version,
        }
    }

    #[test]
    fn every_field_and_the_previous_hash_change_the_hash() {
        for version in [1, 2] {
            let base = row(version).expected_hash(None);
            assert!(base.is_some());
            assert_eq!(base, row(version).expected_hash(None), "deterministic");
            assert_ne!(base, row(version).expected_hash(Some(&[0; 32])));
            let mut changed = row(version);
            changed.payload = r#"{"name": "Meghnb"}"#.into();
            assert_ne!(base, changed.expected_hash(None));
            let mut changed = row(version);
            changed.sequence = 2;
            assert_ne!(base, changed.expected_hash(None));
            let mut changed = row(version);
            changed.actor_roles = "[]".into();
            assert_ne!(base, changed.expected_hash(None));
            let mut changed = row(version);
            changed.recorded_at_micros += 1;
            assert_ne!(base, changed.expected_hash(None));
        }
        assert_ne!(row(1).expected_hash(None), row(2).expected_hash(None));
    }

    #[test]
    fn a_version_without_a_definition_expects_no_hash() {
        assert_eq!(row(0).expected_hash(None), None);
        assert_eq!(row(3).expected_hash(None), None);
    }

    #[test]
    fn version_1_is_printed_as_postgresql_prints_the_jsonb_array() {
        let mut row = row(1);
        row.user_agent = Some("tab\there \"q\" \\ \u{1}".into());
        let message = row.message_v1(None);
        assert!(message.starts_with(r#"["vextrus-event-v1", null, "00000000-0000-0000-0000-000000000000", "organization", "a", 1, 7, "750", "#));
        // What PostgreSQL 15 prints for `jsonb_build_array(E'tab\there "q" \\ \u0001')::text`.
        assert!(
            message.contains(r#", "tab\there \"q\" \\ \u0001", "#),
            "{message}"
        );
        assert!(message.ends_with(r#", {}, 1700000000000000]"#), "{message}");
    }

    #[test]
    fn version_2_is_what_postgresql_computes() {
        // PostgreSQL 15 (migration 0029), for the same values:
        // select encode(vextrus_event_hash_v2_of(<previous>, 1, 7, 'OrganizationCreated', '1',
        //   '{"name": "Meghna"}', vextrus_command_hash_part(<nil uuid>, 'organization', 'a', '750',
        //   'user-1', '{admin}', <nil uuid>, null, <nil uuid>, null, 'r', '127.0.0.1', null, null,
        //   null, '{}', to_timestamp(1700000000))), 'hex')
        // with <previous> null, then sha256('x').
        let first = row(2).expected_hash(None).map(|hash| hex(&hash));
        assert_eq!(
            first.as_deref(),
            Some("528592821736a7f806ba83210211d0de5851f21ed5a2a6942a531b8db5ea9bd5")
        );
        let previous = unhex("2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881");
        let second = row(2)
            .expected_hash(previous.as_deref())
            .map(|hash| hex(&hash));
        assert_eq!(
            second.as_deref(),
            Some("62e68c82a9ef6b27ef1af5c8eafaaabe3a987b29a26e3bdaa97a3f03aa21cb23")
        );
        let message = row(2).message_v2(None);
        assert!(
            message.starts_with(b"vextrus-event-v2\xff\xff\xff\xff\0\0\0\x08\0\0\0\0\0\0\0\x01")
        );
    }

    #[test]
    fn values_cannot_move_between_fields() {
        for version in [1, 2] {
            // "ab" + "" and "a" + "b" concatenate alike; the length prefixes tell them apart.
            let mut first = row(version);
            first.aggregate_type = "ab".into();
            first.aggregate_id = String::new();
            let mut second = row(version);
            second.aggregate_type = "a".into();
            second.aggregate_id = "b".into();
            assert_ne!(first.expected_hash(None), second.expected_hash(None));
            // Null and the text "-" differ too, and null and the empty text.
            let mut null = row(version);
            null.request_id = None;
            let mut dash = row(version);
            dash.request_id = Some("-".into());
            let mut empty = row(version);
            empty.request_id = Some(String::new());
            assert_ne!(null.expected_hash(None), dash.expected_hash(None));
            assert_ne!(null.expected_hash(None), empty.expected_hash(None));
        }
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
        assert_eq!(unhex("000fff"), Some(vec![0, 15, 255]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }
}
