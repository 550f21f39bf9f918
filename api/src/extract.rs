//! Extractors that turn request parts into typed values, answering every refusal as
//! problem+json ([`ApiError`]) instead of axum's plain-text rejections.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use vextrus_commands::Version;

use crate::error::ApiError;
use crate::openapi::text;
use crate::state::AppState;

/// A JSON request body. Syntax errors are 400, wrong types and unknown fields 422, a missing
/// content type 415 and an oversized body 413.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection, state.settings().body_limit)),
        }
    }
}

fn json_rejection(rejection: JsonRejection, body_limit: usize) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(error) => ApiError::InvalidInput {
            detail: format!(
                "the request body does not match the expected shape: {}",
                inner_message(&error)
            ),
            params: Vec::new(),
        },
        JsonRejection::JsonSyntaxError(error) => ApiError::Malformed(format!(
            "the request body is not valid JSON: {}",
            inner_message(&error)
        )),
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge { limit: body_limit }
        }
        other => ApiError::Malformed(other.body_text()),
    }
}

/// serde's own message (e.g. `unknown field `colour`, expected one of ...`), without axum's
/// prefix.
fn inner_message(error: &dyn std::error::Error) -> String {
    let mut source = error;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

/// Query parameters. Unknown or unparsable parameters are 400.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection: QueryRejection| {
                ApiError::Malformed(format!(
                    "invalid query parameters: {}",
                    inner_message(&rejection)
                ))
            })
    }
}

/// Ids in the path. An id that does not parse names nothing that exists: 404.
pub struct PathIds<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathIds<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|_| ApiError::NotFound("no resource exists at this path".into()))
    }
}

/// The longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
/// 1 to 255 visible ASCII characters.
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]{1,255}$";
/// A version ETag as a previous response gave it, e.g. `"3"`; `W/"3"` and a bare `3` are read
/// the same.
pub const IF_MATCH_PATTERN: &str = r#"^((W/)?"[0-9]{1,18}"|[0-9]{1,18})$"#;

/// The optional `Idempotency-Key` header: a retry with the same key returns the first response
/// and changes nothing.
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(Self(None));
        };
        let key = value
            .to_str()
            .ok()
            .filter(|key| text::matches(IDEMPOTENCY_KEY_PATTERN, key))
            .ok_or_else(|| {
                ApiError::Malformed(format!(
                    "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
                ))
            })?;
        Ok(Self(Some(key.to_owned())))
    }
}

/// The optional `If-Match` header: the organization version (its ETag) the client last read.
pub struct IfMatch(pub Option<Version>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(axum::http::header::IF_MATCH) else {
            return Ok(Self(None));
        };
        let version = value
            .to_str()
            .ok()
            .filter(|raw| text::matches(IF_MATCH_PATTERN, raw))
            .map(|raw| raw.trim_start_matches("W/").trim_matches('"'))
            .and_then(|digits| digits.parse::<i64>().ok())
            .ok_or_else(|| {
                ApiError::Malformed(
                    "If-Match must be the ETag of a previous response, e.g. \"3\"".into(),
                )
            })?;
        Ok(Self(Some(Version::new(version))))
    }
}

/// The ETag header value for a stream version.
pub fn etag(version: Version) -> String {
    format!("\"{}\"", version.get())
}
