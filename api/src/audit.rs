//! The audit trail over HTTP, for the `auditor` and `admin` roles: a stream's history with the
//! state change each event made, a user's activity, a correlation, a tenant-wide search, and the
//! signed checkpoints. Every route reads `events` as `vextrus_reader` in a transaction bound to
//! the caller's tenant, so row-level security confines it; a stream, user or correlation of
//! another tenant is simply empty, exactly like one that does not exist.
//!
//! Every list takes `format`: `json` (the default) answers one page (`limit`, `after`) with a
//! `next_cursor`; `ndjson` and `csv` export everything from `after` on as a streamed body,
//! read a page at a time, so memory stays flat whatever the size of the export.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::{PgConnection, Row};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use vextrus_audit::{AuditEvent, TimeRange, TrailCursor, TrailQuery, fetch_page};
use vextrus_commands::{codec, tenant};
use vextrus_domain::TenantId;

use crate::auth::Role;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::extract::{PathIds, QueryParams};
use crate::openapi::problem_responses;
use crate::state::AppState;

const DEFAULT_PAGE_SIZE: u32 = 100;
const MAX_PAGE_SIZE: u32 = 1000;
/// Events read per query while exporting.
const EXPORT_PAGE_SIZE: u32 = 1000;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route(
            "/v1/audit/streams/{aggregate_type}/{aggregate_id}/events",
            get(stream_history),
        )
        .route("/v1/audit/users/{actor}/events", get(user_activity))
        .route(
            "/v1/audit/correlations/{correlation_id}/events",
            get(correlation),
        )
        .route("/v1/audit/events", get(search))
        .route("/v1/audit/checkpoints", get(checkpoints))
}

/// How a list answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One page of JSON with `next_cursor`.
    #[default]
    Json,
    /// Every event from `after` on, one JSON object per line (`application/x-ndjson`), streamed.
    Ndjson,
    /// Every event from `after` on as RFC 4180 CSV with a header row (`text/csv`), streamed.
    Csv,
}

/// Parameters of the audit lists. Not every list takes every filter; a filter a list does not
/// take is refused (422).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TrailParams {
    /// Page size for `format=json`, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// `json` (default), `ndjson` or `csv`.
    #[param(inline)]
    pub format: Option<Format>,
    /// Only events recorded at or after this instant (RFC 3339). Activity and search only.
    pub from: Option<String>,
    /// Only events recorded before this instant (RFC 3339). Activity and search only.
    pub to: Option<String>,
    /// Only this aggregate type, e.g. `organization`. Search only.
    pub aggregate_type: Option<String>,
    /// Only this event type, e.g. `SiteRenamed`. Search only.
    pub event_type: Option<String>,
}

impl TrailParams {
    fn refuse(&self, names: &[&str]) -> Result<(), ApiError> {
        let given = [
            ("from", self.from.is_some()),
            ("to", self.to.is_some()),
            ("aggregate_type", self.aggregate_type.is_some()),
            ("event_type", self.event_type.is_some()),
        ];
        match given
            .iter()
            .find(|(name, present)| *present && names.contains(name))
        {
            Some((name, _)) => Err(ApiError::invalid_param(name, "does not apply to this list")),
            None => Ok(()),
        }
    }

    fn range(&self) -> Result<TimeRange, ApiError> {
        let parse = |name: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|text| {
                    DateTime::parse_from_rfc3339(text)
                        .map(|at| at.with_timezone(&Utc))
                        .map_err(|_| {
                            ApiError::invalid_param(
                                name,
                                "must be an RFC 3339 instant, e.g. 2026-11-22T09:00:00Z",
                            )
                        })
                })
                .transpose()
        };
        let range = TimeRange {
            from: parse("from", &self.from)?,
            to: parse("to", &self.to)?,
        };
        if let (Some(from), Some(to)) = (range.from, range.to) {
            if from >= to {
                return Err(ApiError::invalid_param("to", "must be later than `from`"));
            }
        }
        Ok(range)
    }
}

/// A page of the trail.
#[derive(Debug, Serialize)]
pub struct TrailPage {
    pub items: Vec<AuditEvent>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The error responses of an audit route.
pub struct AuditErrors;

impl utoipa::IntoResponses for AuditErrors {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        problem_responses(&[
            (400, "Malformed header or query parameter"),
            (401, "Missing, expired or invalid bearer token"),
            (
                403,
                "Not an auditor or admin, or X-Tenant-ID differs from the token",
            ),
            (
                404,
                "A path that names nothing, e.g. a correlation id that is not a UUID (an unknown or foreign stream, user or correlation is an empty list, not 404)",
            ),
            (
                422,
                "Invalid parameter value, or a filter this list does not take",
            ),
        ])
    }
}

/// An entity's full history: every event of one stream in sequence order, each with the state
/// change it made (`change`: JSON pointer → `{before, after}`).
#[utoipa::path(
    get, path = "/v1/audit/streams/{aggregate_type}/{aggregate_id}/events", tag = "audit",
    params(
        ("aggregate_type" = String, Path, description = "e.g. `organization`"),
        ("aggregate_id" = String, Path, description = "The stream's id, e.g. the organization id"),
        TrailParams,
    ),
    responses(
        (status = 200, description = "`{items, next_cursor}` (json), or the export (ndjson, csv). Items: position, tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version, data, recorded_at, actor, actor_roles, command_id, idempotency_key, correlation_id, causation_id, request_id, client_address, user_agent, project_id, site_id, request_metadata, hash, change"),
        AuditErrors,
    ),
    security(("bearer" = []))
)]
pub async fn stream_history(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds((aggregate_type, aggregate_id)): PathIds<(String, String)>,
    QueryParams(params): QueryParams<TrailParams>,
) -> Result<Response, ApiError> {
    params.refuse(&["from", "to", "aggregate_type", "event_type"])?;
    let query = TrailQuery::Stream {
        aggregate_type,
        aggregate_id,
    };
    answer(state, context, query, params).await
}

/// A user's activity: everything one actor did, in commit order, optionally within
/// `[from, to)`.
#[utoipa::path(
    get, path = "/v1/audit/users/{actor}/events", tag = "audit",
    params(("actor" = String, Path, description = "The actor: the token subject that issued the commands"), TrailParams),
    responses((status = 200, description = "`{items, next_cursor}` (json), or the export (ndjson, csv)"), AuditErrors),
    security(("bearer" = []))
)]
pub async fn user_activity(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(actor): PathIds<String>,
    QueryParams(params): QueryParams<TrailParams>,
) -> Result<Response, ApiError> {
    params.refuse(&["aggregate_type", "event_type"])?;
    let query = TrailQuery::Actor {
        actor,
        range: params.range()?,
    };
    answer(state, context, query, params).await
}

/// Everything one user action caused: every event sharing a correlation id, in commit order.
#[utoipa::path(
    get, path = "/v1/audit/correlations/{correlation_id}/events", tag = "audit",
    params(("correlation_id" = Uuid, Path, description = "The `X-Correlation-ID` (or, when none was sent, the first command's id)"), TrailParams),
    responses((status = 200, description = "`{items, next_cursor}` (json), or the export (ndjson, csv)"), AuditErrors),
    security(("bearer" = []))
)]
pub async fn correlation(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(correlation_id): PathIds<Uuid>,
    QueryParams(params): QueryParams<TrailParams>,
) -> Result<Response, ApiError> {
    params.refuse(&["from", "to", "aggregate_type", "event_type"])?;
    answer(
        state,
        context,
        TrailQuery::Correlation { correlation_id },
        params,
    )
    .await
}

/// A tenant-wide search by aggregate type, event type and time range, in commit order.
#[utoipa::path(
    get, path = "/v1/audit/events", tag = "audit",
    params(TrailParams),
    responses((status = 200, description = "`{items, next_cursor}` (json), or the export (ndjson, csv)"), AuditErrors),
    security(("bearer" = []))
)]
pub async fn search(
    State(state): State<AppState>,
    context: RequestContext,
    QueryParams(params): QueryParams<TrailParams>,
) -> Result<Response, ApiError> {
    let query = TrailQuery::Search {
        aggregate_type: params.aggregate_type.clone(),
        event_type: params.event_type.clone(),
        range: params.range()?,
    };
    answer(state, context, query, params).await
}

fn require_auditor(context: &RequestContext) -> Result<(), ApiError> {
    context
        .principal
        .require_any(&[Role::Auditor, Role::Admin], "reading the audit trail")
}

async fn answer(
    state: AppState,
    context: RequestContext,
    query: TrailQuery,
    params: TrailParams,
) -> Result<Response, ApiError> {
    require_auditor(&context)?;
    let after = params
        .after
        .as_deref()
        .map(|text| TrailCursor::decode(&query, text))
        .transpose()
        .map_err(|error| ApiError::invalid_param("after", error))?;
    let format = params.format.unwrap_or_default();
    if format != Format::Json {
        if params.limit.is_some() {
            return Err(ApiError::invalid_param(
                "limit",
                "an export has no pages; leave `limit` out",
            ));
        }
        return Ok(export(state, context.tenant, query, after, format));
    }
    let limit = params.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(ApiError::invalid_param(
            "limit",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    let mut tx = context.read(&state).await?;
    // One more than asked tells whether another page follows.
    let mut items = fetch_page(&mut tx, context.tenant, &query, after, limit + 1)
        .await
        .map_err(ApiError::database)?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items
            .last()
            .map(|last| TrailCursor::after(&query, last).map(|cursor| cursor.encode()))
            .transpose()
            .map_err(|error| ApiError::Internal(error.to_string()))?
    } else {
        None
    };
    if let (TrailQuery::Stream { .. }, Some(first)) = (&query, items.first()) {
        let before = state_before(&mut tx, context.tenant, first).await?;
        with_changes(before, &mut items);
    }
    tx.rollback().await.map_err(ApiError::database)?;
    Ok(Json(TrailPage { items, next_cursor }).into_response())
}

/// A streamed export: pages of [`EXPORT_PAGE_SIZE`] events, each read in its own short
/// transaction, encoded and handed to the connection before the next is read.
fn export(
    state: AppState,
    tenant: TenantId,
    query: TrailQuery,
    after: Option<TrailCursor>,
    format: Format,
) -> Response {
    struct Cursor {
        after: Option<TrailCursor>,
        done: bool,
    }
    let pages = stream::try_unfold(Cursor { after, done: false }, move |cursor| {
        let (state, query) = (state.clone(), query.clone());
        async move {
            if cursor.done {
                return Ok::<_, ExportError>(None);
            }
            let mut tx = tenant::begin(state.read_pool(), tenant).await?;
            let events =
                fetch_page(&mut tx, tenant, &query, cursor.after, EXPORT_PAGE_SIZE).await?;
            tx.rollback().await?;
            let Some(last) = events.last() else {
                return Ok(None);
            };
            let next = Cursor {
                after: Some(TrailCursor::after(&query, last)?),
                done: events.len() < EXPORT_PAGE_SIZE as usize,
            };
            Ok(Some((encode(&events, format)?, next)))
        }
    })
    .inspect_err(|error| tracing::error!(%error, "audit export failed; the response is cut short"));
    let (content_type, body) = match format {
        Format::Csv => (
            "text/csv; charset=utf-8",
            Body::from_stream(stream::once(async { Ok(Bytes::from(csv_header())) }).chain(pages)),
        ),
        Format::Ndjson | Format::Json => ("application/x-ndjson", Body::from_stream(pages)),
    };
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(transparent)]
    Cursor(#[from] vextrus_audit::InvalidCursor),
}

fn encode(events: &[AuditEvent], format: Format) -> Result<Bytes, serde_json::Error> {
    let mut out = Vec::with_capacity(events.len() * 512);
    for event in events {
        match format {
            Format::Csv => csv_row(&mut out, event)?,
            Format::Ndjson | Format::Json => {
                serde_json::to_writer(&mut out, event)?;
                out.push(b'\n');
            }
        }
    }
    Ok(Bytes::from(out))
}

/// The CSV columns, in order.
const CSV_COLUMNS: [&str; 22] = [
    "position",
    "recorded_at",
    "tenant_id",
    "aggregate_type",
    "aggregate_id",
    "sequence",
    "event_type",
    "event_version",
    "actor",
    "actor_roles",
    "command_id",
    "idempotency_key",
    "correlation_id",
    "causation_id",
    "request_id",
    "client_address",
    "user_agent",
    "project_id",
    "site_id",
    "data",
    "request_metadata",
    "hash",
];

fn csv_header() -> String {
    let mut line = CSV_COLUMNS.join(",");
    line.push_str("\r\n");
    line
}

fn csv_row(out: &mut Vec<u8>, event: &AuditEvent) -> Result<(), serde_json::Error> {
    let optional = |value: Option<String>| value.unwrap_or_default();
    let cells = [
        event.position.to_string(),
        event.recorded_at.to_rfc3339(),
        event.tenant_id.to_string(),
        event.aggregate_type.clone(),
        event.aggregate_id.clone(),
        event.sequence.to_string(),
        event.event_type.clone(),
        event.event_version.clone(),
        event.actor.clone(),
        event.actor_roles.join(" "),
        event.command_id.to_string(),
        optional(event.idempotency_key.clone()),
        event.correlation_id.to_string(),
        optional(event.causation_id.map(|id| id.to_string())),
        optional(event.request_id.clone()),
        optional(event.client_address.clone()),
        optional(event.user_agent.clone()),
        optional(event.project_id.map(|id| id.to_string())),
        optional(event.site_id.map(|id| id.to_string())),
        serde_json::to_string(&event.data)?,
        serde_json::to_string(&event.request_metadata)?,
        event.hash.clone(),
    ];
    for (index, cell) in cells.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        csv_cell(out, cell);
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// One RFC 4180 cell: quoted when it holds a comma, quote or line break, quotes doubled. A cell
/// a spreadsheet would evaluate as a formula (`=`, `+`, `-`, `@`, tab, carriage return first) is
/// prefixed with `'`, so a crafted User-Agent cannot run in an auditor's spreadsheet; NDJSON
/// carries every value verbatim.
fn csv_cell(out: &mut Vec<u8>, cell: &str) {
    let formula = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quoted = formula || cell.contains([',', '"', '\n', '\r']);
    if quoted {
        out.push(b'"');
    }
    if formula {
        out.push(b'\'');
    }
    for byte in cell.bytes() {
        if byte == b'"' {
            out.push(b'"');
        }
        out.push(byte);
    }
    if quoted {
        out.push(b'"');
    }
}

/// The aggregate's state just before `first`, for the history's `change`: the stream's earlier
/// events, applied. `None` for an aggregate type this build cannot fold.
async fn state_before(
    conn: &mut PgConnection,
    tenant: TenantId,
    first: &AuditEvent,
) -> Result<Option<Folder>, ApiError> {
    let Some(mut folder) = Folder::new(&first.aggregate_type) else {
        return Ok(None);
    };
    let mut earlier = sqlx::query(
        "select event_type, payload from events
         where tenant_id = $1 and aggregate_type = $2 and aggregate_id = $3 and sequence < $4
         order by sequence",
    )
    .bind(tenant.as_uuid())
    .bind(&first.aggregate_type)
    .bind(&first.aggregate_id)
    .bind(first.sequence)
    .fetch(conn);
    while let Some(row) = earlier.try_next().await.map_err(ApiError::database)? {
        let event_type: String = row.try_get("event_type").map_err(ApiError::database)?;
        let payload: Value = row.try_get("payload").map_err(ApiError::database)?;
        if !folder.apply(&event_type, &payload) {
            return Ok(None);
        }
    }
    Ok(Some(folder))
}

/// Sets each event's `change` by folding it into the state before it.
fn with_changes(mut folder: Option<Folder>, events: &mut [AuditEvent]) {
    for event in events {
        let Some(current) = folder.as_mut() else {
            return;
        };
        let before = current.state();
        if !current.apply(&event.event_type, &event.data) {
            return;
        }
        let mut change = Map::new();
        diff(&before, &current.state(), String::new(), &mut change);
        event.change = Some(Value::Object(change));
    }
}

/// Folds one aggregate type's events into its state, as the write side does.
enum Folder {
    Organization(Box<vextrus_domain::organization::Organization>),
}

impl Folder {
    fn new(aggregate_type: &str) -> Option<Self> {
        use cqrs_es::Aggregate;
        use vextrus_domain::organization::Organization;
        (aggregate_type == Organization::TYPE).then(|| Self::Organization(Box::default()))
    }

    /// Applies one event; false when it does not decode (history is then shown without changes).
    fn apply(&mut self, event_type: &str, payload: &Value) -> bool {
        use cqrs_es::Aggregate;
        match self {
            Self::Organization(state) => match codec::decode(event_type, payload) {
                Ok(event) => {
                    state.apply(event);
                    true
                }
                Err(_) => false,
            },
        }
    }

    fn state(&self) -> Value {
        match self {
            Self::Organization(state) => serde_json::to_value(state).unwrap_or(Value::Null),
        }
    }
}

/// The leaves that differ between two JSON values, keyed by JSON pointer (RFC 6901): objects
/// are compared key by key, anything else as a whole.
fn diff(before: &Value, after: &Value, path: String, out: &mut Map<String, Value>) {
    match (before, after) {
        (Value::Object(old), Value::Object(new)) => {
            for key in old
                .keys()
                .chain(new.keys().filter(|key| !old.contains_key(*key)))
            {
                let child = format!("{path}/{}", key.replace('~', "~0").replace('/', "~1"));
                diff(
                    old.get(key).unwrap_or(&Value::Null),
                    new.get(key).unwrap_or(&Value::Null),
                    child,
                    out,
                );
            }
        }
        (old, new) if old != new => {
            let path = if path.is_empty() {
                "/".to_owned()
            } else {
                path
            };
            out.insert(path, serde_json::json!({ "before": old, "after": new }));
        }
        _ => {}
    }
}

/// The checkpoints' parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CheckpointParams {
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
}

/// One signed checkpoint, with what an external auditor needs to check it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointView {
    pub checkpoint_id: i64,
    pub tenant_id: Uuid,
    /// The last event covered, in the log's commit order.
    pub global_position: i64,
    pub event_count: i64,
    pub stream_count: i64,
    /// Hex SHA-256 of the stream heads (README, "Auditing").
    pub heads_sha256: String,
    pub created_at: DateTime<Utc>,
    /// The exact signed text.
    pub message: String,
    /// Ed25519 signature over `message`, base64.
    pub signature: String,
    /// The signer's public key, SubjectPublicKeyInfo PEM (compare it with your own copy).
    pub public_key: String,
}

/// The tenant's signed checkpoints, oldest first.
#[utoipa::path(
    get, path = "/v1/audit/checkpoints", tag = "audit",
    params(CheckpointParams),
    responses((status = 200, description = "`{items, next_cursor}` of checkpoints"), AuditErrors),
    security(("bearer" = []))
)]
pub async fn checkpoints(
    State(state): State<AppState>,
    context: RequestContext,
    QueryParams(params): QueryParams<CheckpointParams>,
) -> Result<Json<CheckpointPage>, ApiError> {
    require_auditor(&context)?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(ApiError::invalid_param(
            "limit",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    let after = params
        .after
        .as_deref()
        .map(|text| {
            text.parse::<i64>()
                .map_err(|_| ApiError::invalid_param("after", "not a cursor returned by this list"))
        })
        .transpose()?
        .unwrap_or(0);
    let mut tx = context.read(&state).await?;
    let rows = sqlx::query(
        "select checkpoint_id, tenant_id, global_position, event_count, stream_count,
                encode(heads_digest, 'hex') as heads_sha256, created_at, message, signature, public_key
         from audit_checkpoints
         where tenant_id = $1 and checkpoint_id > $2
         order by checkpoint_id
         limit $3",
    )
    .bind(context.tenant.as_uuid())
    .bind(after)
    .bind(i64::from(limit) + 1)
    .fetch_all(&mut *tx)
    .await
    .map_err(ApiError::database)?;
    tx.rollback().await.map_err(ApiError::database)?;
    let mut items = rows
        .iter()
        .map(|row| {
            let signature: Vec<u8> = row.try_get("signature")?;
            let public_key: Vec<u8> = row.try_get("public_key")?;
            Ok(CheckpointView {
                checkpoint_id: row.try_get("checkpoint_id")?,
                tenant_id: row.try_get("tenant_id")?,
                global_position: row.try_get("global_position")?,
                event_count: row.try_get("event_count")?,
                stream_count: row.try_get("stream_count")?,
                heads_sha256: row.try_get("heads_sha256")?,
                created_at: row.try_get("created_at")?,
                message: row.try_get("message")?,
                signature: STANDARD.encode(signature),
                public_key: vextrus_audit::checkpoint::public_key_pem(&public_key),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(ApiError::database)?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|last| last.checkpoint_id.to_string())
    } else {
        None
    };
    Ok(Json(CheckpointPage { items, next_cursor }))
}

#[derive(Debug, Serialize)]
pub struct CheckpointPage {
    pub items: Vec<CheckpointView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cell(text: &str) -> String {
        let mut out = Vec::new();
        csv_cell(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_cells_are_quoted_when_needed_and_formulas_are_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell(""), "");
    }

    #[test]
    fn diffs_name_each_changed_leaf_by_json_pointer() {
        let mut out = Map::new();
        diff(
            &json!({"profile": {"name": "A", "code": "X"}, "sites": {}}),
            &json!({"profile": {"name": "B", "code": "X"}, "sites": {"s/1": {"name": "S"}}}),
            String::new(),
            &mut out,
        );
        assert_eq!(
            Value::Object(out),
            json!({
                "/profile/name": {"before": "A", "after": "B"},
                "/sites/s~11": {"before": null, "after": {"name": "S"}},
            })
        );
    }
}
