//! How an aggregate's event enum is written to and read from `events(event_type, payload)`.
//!
//! serde writes an enum variant as `{"VariantName": {..fields..}}`. The log keeps the variant
//! name in `event_type` and only the fields in `payload`, so analysts query `payload->>'name'`
//! directly; reading joins them back.

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{
    DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, VariantAccess, Visitor,
};
use serde::{Deserialize, Serialize};
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

/// Rebuilds an event from its variant name and fields, reading the fields in place (replay decodes
/// every event of the log: no copy of the payload is made).
pub fn decode<E: DeserializeOwned>(
    event_type: &str,
    payload: &Value,
) -> Result<E, serde_json::Error> {
    E::deserialize(Tagged {
        variant: event_type,
        fields: payload,
    })
}

/// An externally tagged enum value whose tag and fields are stored apart: what serde would read
/// from `{"<variant>": <fields>}`.
struct Tagged<'a> {
    variant: &'a str,
    fields: &'a Value,
}

impl<'de> Deserializer<'de> for Tagged<'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

impl<'de> EnumAccess<'de> for Tagged<'de> {
    type Error = serde_json::Error;
    type Variant = Fields<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Fields<'de>), Self::Error> {
        let variant = seed.deserialize(BorrowedStrDeserializer::new(self.variant))?;
        Ok((variant, Fields(self.fields)))
    }
}

/// The fields of a [`Tagged`] value, read as its variant's shape asks.
struct Fields<'a>(&'a Value);

impl<'de> VariantAccess<'de> for Fields<'de> {
    type Error = serde_json::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        <()>::deserialize(self.0)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        seed.deserialize(self.0)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_seq(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_struct("", fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Event {
        Renamed { id: u32, name: String },
        Counted(u64),
        Paired(u8, u8),
    }

    #[test]
    fn every_variant_shape_round_trips() {
        for event in [
            Event::Renamed {
                id: 7,
                name: "Site 1".into(),
            },
            Event::Counted(3),
            Event::Paired(1, 2),
        ] {
            let (event_type, payload) = encode(&event).unwrap();
            assert_eq!(decode::<Event>(&event_type, &payload).unwrap(), event);
        }
    }

    #[test]
    fn unknown_variants_and_missing_fields_are_errors() {
        let payload = serde_json::json!({ "id": 7 });
        let unknown = decode::<Event>("Vanished", &payload).unwrap_err();
        assert!(
            unknown.to_string().contains("unknown variant `Vanished`"),
            "{unknown}"
        );
        let missing = decode::<Event>("Renamed", &payload).unwrap_err();
        assert!(
            missing.to_string().contains("missing field `name`"),
            "{missing}"
        );
    }
}
