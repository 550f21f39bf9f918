//! How an aggregate's event enum is written to and read from `events(event_type, payload)`.
//!
//! serde writes an enum variant as `{"VariantName": {..fields..}}`. The log keeps the variant
//! name in `event_type` and only the fields in `payload`, so analysts query `payload->>'name'`
//! directly; reading joins them back.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why an event could not be laid out as `event_type` + `payload`.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("events must serialize as an enum variant with fields, got {0}")]
    NotAStructVariant(String),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Splits an event into its variant name and its fields.
pub fn encode<E: Serialize>(event: &E) -> Result<(String, Value), CodecError> {
    match serde_json::to_value(event)? {
        Value::Object(map) if map.len() == 1 => {
            let (variant, fields) = map
                .into_iter()
                .next()
                .ok_or_else(|| CodecError::NotAStructVariant("{}".into()))?;
            Ok((variant, fields))
        }
        other => Err(CodecError::NotAStructVariant(other.to_string())),
    }
}

/// Rebuilds an event from its variant name and fields.
pub fn decode<E: DeserializeOwned>(
    event_type: &str,
    payload: &Value,
) -> Result<E, serde_json::Error> {
    let mut map = serde_json::Map::with_capacity(1);
    map.insert(event_type.to_owned(), payload.clone());
    serde_json::from_value(Value::Object(map))
}
