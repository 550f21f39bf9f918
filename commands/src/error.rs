use crate::codec::CodecError;
use crate::metadata::{CommandId, GlobalPosition, Version};

/// Why a command was not executed. Everything but [`ExecuteError::Database`] is the caller's
/// business (a 4xx); in every case nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError<E: std::error::Error + 'static> {
    /// The aggregate refused the command: a broken business rule.
    #[error(transparent)]
    Rejected(E),
    /// The stream is not at the expected version, or another command appended to it first.
    #[error("version conflict: the stream is at version {current}{}", expected.map(|v| format!(", not {v}")).unwrap_or_default())]
    Conflict {
        current: Version,
        expected: Option<Version>,
    },
    /// A stream the decision read (design.md D12) changed before the command could append:
    /// decide again on its new state.
    #[error("{aggregate_type} {aggregate_id} changed while the command was decided; try again")]
    StaleRead {
        aggregate_type: String,
        aggregate_id: String,
    },
    /// A value that must be unique in the tenant (e.g. an organization code) is already claimed.
    #[error("{scope} {value:?} is already taken")]
    ValueTaken { scope: String, value: String },
    /// The command id (idempotency key) was already used for a command on another stream.
    #[error("command id {command_id} was already used for {aggregate_type} {aggregate_id}")]
    CommandIdReused {
        command_id: CommandId,
        aggregate_type: String,
        aggregate_id: String,
    },
    /// A recorded event no longer deserializes into the aggregate's event type.
    #[error("the event at log position {position} could not be read back")]
    Decode {
        position: GlobalPosition,
        #[source]
        source: serde_json::Error,
    },
    /// A new event could not be serialized.
    #[error("a new event could not be serialized")]
    Encode(#[source] CodecError),
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

/// Why a stream could not be brought into memory ([`crate::StreamCache`]).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("the event at log position {position} could not be read back")]
    Decode {
        position: GlobalPosition,
        #[source]
        source: serde_json::Error,
    },
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl<E: std::error::Error + 'static> From<CacheError> for ExecuteError<E> {
    fn from(error: CacheError) -> Self {
        match error {
            CacheError::Decode { position, source } => Self::Decode { position, source },
            CacheError::Database(error) => Self::Database(error),
        }
    }
}
