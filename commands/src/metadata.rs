//! Who asked for a command and why: the audit metadata carried on every event, and the small
//! value types of the write side.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use thiserror::Error;
use uuid::Uuid;

/// Namespace for deriving command ids from client idempotency keys (UUID v5).
const IDEMPOTENCY_KEY_NAMESPACE: Uuid = Uuid::from_u128(0x6f0c_2a7e_9d1b_4c55_8a36_0b1e_5d3f_7a21);

/// Identifies one command. Unique per tenant: executing a command id a second time returns the
/// first outcome and writes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommandId(Uuid);

impl CommandId {
    /// A fresh id, for commands sent without an idempotency key.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// The id of the command a client names with `key` (its `Idempotency-Key`): the same key
    /// always gives the same id, so a retry is recognised as a repeat.
    pub fn from_idempotency_key(key: &str) -> Self {
        Self(Uuid::new_v5(&IDEMPOTENCY_KEY_NAMESPACE, key.as_bytes()))
    }

    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for CommandId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Who issued a command: the authenticated subject (user or service id).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ActorId(String);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("an actor id is 1 to 200 characters without control characters")]
pub struct InvalidActor;

impl ActorId {
    pub fn parse(input: &str) -> Result<Self, InvalidActor> {
        let valid = !input.is_empty()
            && input.chars().count() <= 200
            && !input.chars().any(char::is_control);
        if valid {
            Ok(Self(input.to_owned()))
        } else {
            Err(InvalidActor)
        }
    }

    /// The actor a signed-in user acts as: `user:<id>`.
    pub fn for_user(user: vextrus_domain::ids::UserId) -> Self {
        Self(format!("user:{}", user.as_uuid()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stream's version: the sequence of its last event, 0 for a stream with no events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(i64);

impl Version {
    pub const NONE: Self = Self(0);

    pub const fn new(version: i64) -> Self {
        Self(version)
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An event's place in the whole log (`events.global_position`): insertion order, not commit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GlobalPosition(i64);

impl GlobalPosition {
    pub const fn new(position: i64) -> Self {
        Self(position)
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for GlobalPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The audit metadata of one command, stored on each of its events (the `events` columns of the
/// same names; `migrations/0010_audit_trail.sql`).
#[derive(Debug, Clone, PartialEq)]
pub struct CommandMetadata {
    pub actor: ActorId,
    /// The actor's roles when the command was issued, as the verified token named them.
    pub actor_roles: Vec<String>,
    command_id: CommandId,
    /// The client's `Idempotency-Key`, verbatim, when it sent one.
    idempotency_key: Option<String>,
    /// Shared by everything one user action caused, across commands and services.
    pub correlation_id: Uuid,
    /// The command or event that directly caused this command, if any.
    pub causation_id: Option<Uuid>,
    /// The HTTP request that carried the command (`X-Request-ID`).
    pub request_id: Option<String>,
    /// The peer address of the connection that carried the command.
    pub client_address: Option<IpAddr>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// The project and site the request named as its context (`X-Project-ID`, `X-Site-ID`).
    pub project_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    /// Anything further for auditors, a JSON object (empty unless a caller adds to it).
    pub request_metadata: serde_json::Map<String, serde_json::Value>,
}

impl CommandMetadata {
    /// Metadata for a new command by `actor` that starts its own correlation.
    pub fn new(actor: ActorId) -> Self {
        let command_id = CommandId::new();
        Self {
            actor,
            actor_roles: Vec::new(),
            command_id,
            idempotency_key: None,
            correlation_id: command_id.as_uuid(),
            causation_id: None,
            request_id: None,
            client_address: None,
            user_agent: None,
            project_id: None,
            site_id: None,
            request_metadata: serde_json::Map::new(),
        }
    }

    pub fn command_id(&self) -> CommandId {
        self.command_id
    }

    /// The metadata of a command this one causes in the same request (a budget's seeding after
    /// the budget is set): the same actor, request and correlation, a fresh id that is never a
    /// repeat, and this command as its cause.
    pub fn follow_up(&self) -> Self {
        Self {
            command_id: CommandId::new(),
            idempotency_key: None,
            causation_id: Some(self.command_id.as_uuid()),
            ..self.clone()
        }
    }

    /// True when the command id came from the client's idempotency key, so a retry may follow:
    /// the store records the outcome and answers a repeat with it. A command without a key has a
    /// fresh id that can never repeat, and nothing is recorded beyond its events.
    pub fn is_idempotent(&self) -> bool {
        self.idempotency_key.is_some()
    }

    /// The client's `Idempotency-Key`, if it sent one.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }

    /// Makes the command idempotent under the client's `key` (its `Idempotency-Key`) within
    /// `scope` (the kind of request), so one key names one kind of request: the command id is
    /// derived from both, and the key is recorded verbatim.
    pub fn with_idempotency_key(mut self, scope: &str, key: &str) -> Self {
        self.command_id = CommandId::from_idempotency_key(&format!("{scope}\n{key}"));
        self.idempotency_key = Some(key.to_owned());
        self
    }

    pub fn with_correlation_id(mut self, correlation_id: Uuid) -> Self {
        self.correlation_id = correlation_id;
        self
    }

    pub fn with_causation_id(mut self, causation_id: Uuid) -> Self {
        self.causation_id = Some(causation_id);
        self
    }

    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_idempotency_key_always_gives_one_command_id() {
        assert_eq!(
            CommandId::from_idempotency_key("abc"),
            CommandId::from_idempotency_key("abc")
        );
        assert_ne!(
            CommandId::from_idempotency_key("abc"),
            CommandId::from_idempotency_key("abd")
        );
    }

    #[test]
    fn actor_ids_must_be_present_and_printable() {
        assert!(ActorId::parse("user-42").is_ok());
        assert_eq!(ActorId::parse(""), Err(InvalidActor));
        assert_eq!(ActorId::parse("a\u{0}"), Err(InvalidActor));
    }
}
