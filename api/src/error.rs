//! Every error the API answers with, as RFC 9457 problem details (design.md D8).
//!
//! [`ApiError`] is the one way a handler fails. Each variant has one HTTP status and one stable
//! `type` URI (`urn:vextrus:problem:<kind>`), so clients branch on `type`, never on wording. The
//! `detail` is written for the person who sent the request; internal failures are logged with
//! their cause and answered with a generic text, never echoed. The event store's errors map the
//! same way for every aggregate (`From<ExecuteError<E>>`); an aggregate says only how its own
//! refusals read, as a [`DomainProblem`].

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use vextrus_commands::{ExecuteError, Version};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One input field or parameter that was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InvalidParam {
    /// The field (request body) or query parameter, e.g. `bin` or `limit`.
    pub name: String,
    pub reason: String,
}

impl InvalidParam {
    pub fn new(name: impl Into<String>, reason: impl ToString) -> Self {
        Self {
            name: name.into(),
            reason: reason.to_string(),
        }
    }
}

/// An RFC 9457 problem details body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Stable identifier of the kind of problem, e.g. `urn:vextrus:problem:not-found`.
    #[serde(rename = "type")]
    #[schema(example = "urn:vextrus:problem:not-found")]
    pub problem_type: String,
    /// Short summary of the kind of problem; the same for every occurrence.
    pub title: &'static str,
    pub status: u16,
    /// What was wrong with this request.
    pub detail: String,
    /// The fields or parameters that were refused (`invalid-input` only).
    #[serde(rename = "invalid-params", skip_serializing_if = "Vec::is_empty")]
    pub invalid_params: Vec<InvalidParam>,
    /// The stream's version now (`version-conflict` only): send it as `If-Match` after re-reading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<i64>,
}

/// Why a request failed. The doc comment of each variant names its status and `type`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401 `unauthenticated`: no bearer token, or one that is expired, forged or malformed.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403 `forbidden`: authenticated, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404 `not-found`: missing, or belonging to another tenant (the two are indistinguishable).
    #[error("{0}")]
    NotFound(String),
    /// 405 `method-not-allowed`.
    #[error("this method is not allowed on this resource")]
    MethodNotAllowed,
    /// 400 `malformed-request`: a body that is not JSON, or a header or parameter that cannot be
    /// parsed.
    #[error("{0}")]
    Malformed(String),
    /// 413 `payload-too-large`.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 415 `unsupported-media-type`.
    #[error("the request body must be JSON, sent with Content-Type: application/json")]
    UnsupportedMediaType,
    /// 422 `invalid-input`: well-formed, but fields or parameters have invalid values.
    #[error("{detail}")]
    InvalidInput {
        detail: String,
        params: Vec<InvalidParam>,
    },
    /// 409 with a `type` per business rule (`duplicate-code`, `unit-archived`,
    /// `has-active-children`, `site-already-in-project`, `idempotency-key-reused`,
    /// `context-mismatch`): the request is valid, but the current state forbids it (RFC 9110's
    /// 409, "a conflict with the current state of the target resource"). 422 is kept for input
    /// that no state could make acceptable, so a client can tell "fix your request" from "the
    /// world changed".
    #[error("{detail}")]
    RuleViolated { rule: &'static str, detail: String },
    /// 409 `already-exists`.
    #[error("{0}")]
    AlreadyExists(String),
    /// 409 `version-conflict`: `If-Match` named an older version, or a concurrent command won.
    #[error("{detail}")]
    VersionConflict { current: Version, detail: String },
    /// 503 `not-caught-up`: the read model has not reached `min_position` within the wait.
    #[error("{detail}")]
    NotCaughtUp {
        detail: String,
        retry_after_secs: u32,
    },
    /// 429 `too-many-requests`: a rate limit (per client address, per tenant, or the stricter
    /// one of the sign-in routes) was reached; `Retry-After` says when to try again.
    #[error("{detail}")]
    TooManyRequests {
        detail: String,
        retry_after_secs: u64,
    },
    /// 503 `unavailable`: a dependency (the database) cannot serve the request now.
    #[error("{0}")]
    Unavailable(String),
    /// 500 `internal`: a bug or an unexpected failure. The cause is logged, not returned.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid_input(params: Vec<InvalidParam>) -> Self {
        let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
        Self::InvalidInput {
            detail: format!("invalid value for {}", names.join(", ")),
            params,
        }
    }

    pub fn invalid_param(name: &str, reason: impl ToString) -> Self {
        Self::invalid_input(vec![InvalidParam::new(name, reason)])
    }

    /// A failed database call: unavailable when the connection is the problem, else internal.
    pub fn database(error: sqlx::Error) -> Self {
        Self::database_ref(&error)
    }

    /// [`ApiError::database`] for an error several requests share (a failed group of checks).
    pub fn database_ref(error: &sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                tracing::warn!(%error, "database unavailable");
                Self::Unavailable("the database is not available; try again shortly".into())
            }
            other => Self::Internal(format!("database: {other}")),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::InvalidInput { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::AlreadyExists(_) | Self::VersionConflict { .. } | Self::RuleViolated { .. } => {
                StatusCode::CONFLICT
            }
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotCaughtUp { .. } | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `<kind>` of the `type` URI and the fixed title.
    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            Self::Unauthenticated(_) => ("unauthenticated", "Authentication required"),
            Self::Forbidden(_) => ("forbidden", "Forbidden"),
            Self::NotFound(_) => ("not-found", "Not found"),
            Self::MethodNotAllowed => ("method-not-allowed", "Method not allowed"),
            Self::Malformed(_) => ("malformed-request", "Malformed request"),
            Self::PayloadTooLarge { .. } => ("payload-too-large", "Request body too large"),
            Self::UnsupportedMediaType => ("unsupported-media-type", "Unsupported media type"),
            Self::InvalidInput { .. } => ("invalid-input", "Invalid input"),
            Self::RuleViolated { rule, .. } => (rule, "Business rule violated"),
            Self::AlreadyExists(_) => ("already-exists", "Already exists"),
            Self::VersionConflict { .. } => ("version-conflict", "Version conflict"),
            Self::NotCaughtUp { .. } => ("not-caught-up", "Read model not caught up"),
            Self::TooManyRequests { .. } => ("too-many-requests", "Too many requests"),
            Self::Unavailable(_) => ("unavailable", "Service unavailable"),
            Self::Internal(_) => ("internal", "Internal error"),
        }
    }

    /// The problem body this error answers with.
    pub fn problem(&self) -> Problem {
        let (kind, title) = self.kind();
        let detail = match self {
            Self::Internal(_) => "an unexpected error occurred; it has been logged".to_owned(),
            other => other.to_string(),
        };
        Problem {
            problem_type: format!("urn:vextrus:problem:{kind}"),
            title,
            status: self.status().as_u16(),
            detail,
            invalid_params: match self {
                Self::InvalidInput { params, .. } => params.clone(),
                _ => Vec::new(),
            },
            current_version: match self {
                Self::VersionConflict { current, .. } => Some(current.get()),
                _ => None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(cause) => tracing::error!(%cause, "request failed"),
            other => tracing::debug!(error = %other, "request refused"),
        }
        let status = self.status();
        let mut response = (status, axum::Json(self.problem())).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match &self {
            Self::Unauthenticated(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
            }
            Self::NotCaughtUp {
                retry_after_secs, ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(1u32));
            }
            Self::TooManyRequests {
                retry_after_secs, ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

/// How an aggregate's refusals read as problems. Implemented once per aggregate error, beside the
/// aggregate's routes, so that one `From<ExecuteError<E>>` maps every aggregate's store errors.
pub trait DomainProblem: std::error::Error + Sized + 'static {
    /// What one stream of the aggregate is called in a version conflict's detail, e.g.
    /// `organization`.
    const STREAM: &'static str;

    /// The problem this refusal answers with: usually [`ApiError::NotFound`],
    /// [`ApiError::AlreadyExists`] or a [`ApiError::RuleViolated`] with the rule's own `type`.
    fn into_problem(self) -> ApiError;
}

/// A stream that could not be brought into memory: the store's failure, never the caller's.
impl From<vextrus_commands::CacheError> for ApiError {
    fn from(error: vextrus_commands::CacheError) -> Self {
        match error {
            vextrus_commands::CacheError::Database(error) => Self::database(error),
            other => Self::Internal(format!("{other}: {:?}", std::error::Error::source(&other))),
        }
    }
}

impl<E: DomainProblem> From<ExecuteError<E>> for ApiError {
    fn from(error: ExecuteError<E>) -> Self {
        let stream = E::STREAM;
        let error_text = error.to_string();
        match error {
            ExecuteError::Rejected(rejection) => rejection.into_problem(),
            ExecuteError::Conflict { current, expected } => Self::VersionConflict {
                current,
                detail: match expected {
                    Some(expected) => format!(
                        "the {stream} is at version {current}, not {expected}; re-read it and retry with If-Match: \"{current}\""
                    ),
                    None => format!(
                        "another change to the {stream} was made at the same time (now at version {current}); retry"
                    ),
                },
            },
            ExecuteError::StaleRead { .. } => Self::RuleViolated {
                rule: "concurrent-change",
                detail: format!("{error_text}: what the command depends on kept changing; send it again"),
            },
            ExecuteError::ValueTaken { scope, value } => Self::RuleViolated {
                rule: "duplicate-code",
                detail: format!(
                    "{} {value} is already taken in this tenant",
                    scope.replace('.', " ")
                ),
            },
            ExecuteError::CommandIdReused { .. } => Self::RuleViolated {
                rule: "idempotency-key-reused",
                detail: "this Idempotency-Key was already used for a request on another resource; use a new key for a new request".into(),
            },
            ExecuteError::Database(error) => Self::database(error),
            other @ (ExecuteError::Decode { .. } | ExecuteError::Encode(_)) => {
                Self::Internal(format!("{other}: {:?}", std::error::Error::source(&other)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_causes_are_not_echoed() {
        let problem = ApiError::Internal("password=hunter2".into()).problem();
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("hunter2"));
    }

    #[test]
    fn every_kind_has_a_stable_type_uri() {
        let problem = ApiError::VersionConflict {
            current: Version::new(7),
            detail: "x".into(),
        }
        .problem();
        assert_eq!(problem.problem_type, "urn:vextrus:problem:version-conflict");
        assert_eq!(problem.current_version, Some(7));
    }

    /// An aggregate's error as the next aggregate would bring one: it only says how its own
    /// refusals read; the store's errors are mapped for it.
    #[derive(Debug, thiserror::Error)]
    enum EntryError {
        #[error("the period is closed")]
        PeriodClosed,
    }

    impl DomainProblem for EntryError {
        const STREAM: &'static str = "journal entry";

        fn into_problem(self) -> ApiError {
            ApiError::RuleViolated {
                rule: "period-closed",
                detail: self.to_string(),
            }
        }
    }

    fn problem_of(error: ExecuteError<EntryError>) -> Problem {
        ApiError::from(error).problem()
    }

    #[test]
    fn a_rejection_is_the_aggregates_own_problem() {
        let problem = problem_of(ExecuteError::Rejected(EntryError::PeriodClosed));
        assert_eq!(problem.status, 409);
        assert_eq!(problem.problem_type, "urn:vextrus:problem:period-closed");
        assert_eq!(problem.detail, "the period is closed");
    }

    #[test]
    fn a_stale_if_match_is_a_version_conflict_naming_the_version_to_send() {
        let problem = problem_of(ExecuteError::Conflict {
            current: Version::new(3),
            expected: Some(Version::new(2)),
        });
        assert_eq!(problem.status, 409);
        assert_eq!(problem.problem_type, "urn:vextrus:problem:version-conflict");
        assert_eq!(problem.current_version, Some(3));
        assert_eq!(
            problem.detail,
            "the journal entry is at version 3, not 2; re-read it and retry with If-Match: \"3\""
        );
    }

    #[test]
    fn a_race_lost_without_if_match_is_a_version_conflict_to_retry() {
        let problem = problem_of(ExecuteError::Conflict {
            current: Version::new(4),
            expected: None,
        });
        assert_eq!(problem.status, 409);
        assert_eq!(problem.current_version, Some(4));
        assert_eq!(
            problem.detail,
            "another change to the journal entry was made at the same time (now at version 4); retry"
        );
    }

    #[test]
    fn store_refusals_have_their_own_types_for_every_aggregate() {
        let taken = problem_of(ExecuteError::ValueTaken {
            scope: "organization.code".into(),
            value: "MBL".into(),
        });
        assert_eq!(taken.problem_type, "urn:vextrus:problem:duplicate-code");
        assert_eq!(
            taken.detail,
            "organization code MBL is already taken in this tenant"
        );
        let reused = problem_of(ExecuteError::CommandIdReused {
            command_id: vextrus_commands::CommandId::new(),
            aggregate_type: "journal-entry".into(),
            aggregate_id: "x".into(),
        });
        assert_eq!(reused.status, 409);
        assert_eq!(
            reused.problem_type,
            "urn:vextrus:problem:idempotency-key-reused"
        );
        let unavailable = problem_of(ExecuteError::Database(sqlx::Error::PoolTimedOut));
        assert_eq!(unavailable.status, 503);
        assert_eq!(unavailable.problem_type, "urn:vextrus:problem:unavailable");
    }
}
