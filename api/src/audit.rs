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
use chrono::{DateTime, Datelike, Utc};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::{PgConnection, Row};
use utoipa::openapi::schema::Object;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use vextrus_audit::{AuditEvent, TimeRange, TrailCursor, TrailQuery, fetch_page, redact_secrets};
use vextrus_commands::{StateFold, tenant};
use vextrus_domain::TenantId;

use crate::auth::Permission;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::extract::{PathIds, QueryParams};
use crate::openapi::{problem_responses, text};
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
        .route("/v1/audit/activity", get(activity))
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

/// What every audit list takes, whichever filters its route offers.
#[derive(Debug, Default)]
struct TrailParams {
    limit: Option<u32>,
    after: Option<String>,
    format: Option<Format>,
}

/// The time window of activity and search: `[from, to)`. A window that holds no instant (`to`
/// at or before `from`) is not an error: it finds nothing.
fn range(from: Option<&str>, to: Option<&str>) -> Result<TimeRange, ApiError> {
    let instant = |name: &str, text: Option<&str>| {
        text.map(|text| {
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
    Ok(TimeRange {
        from: instant("from", from)?,
        to: instant("to", to)?,
    })
}

/// A JSON page's size: `limit`, 1 to [`MAX_PAGE_SIZE`], default [`DEFAULT_PAGE_SIZE`].
fn page_size(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(ApiError::invalid_param(
            "limit",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    Ok(limit)
}

/// Cuts `items` (fetched `limit + 1`) to a page of `limit`; the cursor after its last item when
/// there is more.
fn cut_page<T>(
    items: &mut Vec<T>,
    limit: u32,
    cursor: impl FnOnce(&T) -> String,
) -> Option<String> {
    if items.len() <= limit as usize {
        return None;
    }
    items.truncate(limit as usize);
    items.last().map(cursor)
}

fn sequence_cursor() -> Object {
    text::parameter(
        TrailCursor::SEQUENCE_PATTERN,
        "The `next_cursor` of the previous page.",
        "42",
    )
}

fn log_cursor() -> Object {
    text::parameter(
        TrailCursor::LOG_PATTERN,
        "The `next_cursor` of the previous page.",
        "7781.1042",
    )
}

/// An aggregate type as the log records it, e.g. `organization`.
const AGGREGATE_TYPE_PATTERN: &str = "^[a-z][a-z0-9_]{0,63}$";
/// An event type as the log records it, e.g. `SiteRenamed`.
const EVENT_TYPE_PATTERN: &str = "^[A-Za-z][A-Za-z0-9_]{0,127}$";
/// A stream id: visible ASCII (ids are UUIDs today).
const STREAM_ID_PATTERN: &str = "^[!-~]{1,200}$";
/// An actor: a token subject, any text without NUL (which PostgreSQL cannot store).
const ACTOR_PATTERN: &str = "^[^\\x00]{1,255}$";

fn aggregate_type() -> Object {
    text::parameter(
        AGGREGATE_TYPE_PATTERN,
        "An aggregate type, e.g. `organization`.",
        "organization",
    )
}

fn stream_id() -> Object {
    text::parameter(
        STREAM_ID_PATTERN,
        "The stream's id, e.g. the organization id.",
        "01a200c6-b2ab-753e-8e7c-63c67713aeeb",
    )
}

fn actor() -> Object {
    text::parameter(
        ACTOR_PATTERN,
        "The actor: the token subject that issued the commands.",
        "you@example.com",
    )
}

/// The stream a history is of. A path outside these patterns names nothing (404).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct StreamPath {
    #[param(schema_with = aggregate_type)]
    pub aggregate_type: String,
    #[param(schema_with = stream_id)]
    pub aggregate_id: String,
}

/// The actor whose activity is listed. A path outside the pattern names nothing (404).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ActorPath {
    #[param(schema_with = actor)]
    pub actor: String,
}

fn event_type() -> Object {
    text::parameter(
        EVENT_TYPE_PATTERN,
        "Only this event type, e.g. `SiteRenamed`.",
        "SiteRenamed",
    )
}

/// A text filter that must match its pattern.
fn checked(
    name: &str,
    pattern: &'static str,
    value: Option<String>,
) -> Result<Option<String>, ApiError> {
    match value {
        Some(value) if !text::matches(pattern, &value) => Err(ApiError::invalid_param(
            name,
            format!("must match {pattern}"),
        )),
        value => Ok(value),
    }
}

/// Paging and format of a stream's history and of a correlation.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// `json` (default): a page of at most this many events, 1 to 1000 (default 100);
    /// `ndjson` or `csv`: export at most this many (default all).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    #[param(schema_with = sequence_cursor)]
    pub after: Option<String>,
    /// `json` (default), `ndjson` or `csv`.
    #[param(inline)]
    pub format: Option<Format>,
}

/// A correlation is in commit order, so its cursor is a log place.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CorrelationParams {
    /// `json` (default): a page of at most this many events, 1 to 1000 (default 100);
    /// `ndjson` or `csv`: export at most this many (default all).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    #[param(schema_with = log_cursor)]
    pub after: Option<String>,
    /// `json` (default), `ndjson` or `csv`.
    #[param(inline)]
    pub format: Option<Format>,
}

/// A user's activity: paging, format and a time window.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActivityParams {
    /// `json` (default): a page of at most this many events, 1 to 1000 (default 100);
    /// `ndjson` or `csv`: export at most this many (default all).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    #[param(schema_with = log_cursor)]
    pub after: Option<String>,
    /// `json` (default), `ndjson` or `csv`.
    #[param(inline)]
    pub format: Option<Format>,
    /// Only events recorded at or after this instant (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Only events recorded before this instant (RFC 3339); at or before `from` finds nothing.
    #[param(format = DateTime)]
    pub to: Option<String>,
}

/// The tenant-wide search: paging, format, a time window and type filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// `json` (default): a page of at most this many events, 1 to 1000 (default 100);
    /// `ndjson` or `csv`: export at most this many (default all).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    #[param(schema_with = log_cursor)]
    pub after: Option<String>,
    /// `json` (default), `ndjson` or `csv`.
    #[param(inline)]
    pub format: Option<Format>,
    /// Only events recorded at or after this instant (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Only events recorded before this instant (RFC 3339); at or before `from` finds nothing.
    #[param(format = DateTime)]
    pub to: Option<String>,
    #[param(schema_with = aggregate_type)]
    pub aggregate_type: Option<String>,
    #[param(schema_with = event_type)]
    pub event_type: Option<String>,
}

/// A page of the trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrailPage {
    pub items: Vec<AuditEvent>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The answer of a trail list: a page of JSON, or an export.
pub struct TrailResponses;

impl utoipa::IntoResponses for TrailResponses {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
        use utoipa::openapi::{ContentBuilder, Ref};
        ResponsesBuilder::new()
            .response(
                "200",
                ResponseBuilder::new()
                    .description(
                        "`format=json`: a page of events; `ndjson`: every event, one JSON object \
                         (an `AuditEvent`) per line; `csv`: a header row, then one event per row",
                    )
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("TrailPage")))
                            .build(),
                    )
                    .content("application/x-ndjson", ContentBuilder::new().build())
                    .content("text/csv", ContentBuilder::new().build()),
            )
            .build()
            .responses
    }
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
                409,
                "X-Site-ID names a site outside the project of X-Project-ID",
            ),
            (422, "Invalid parameter value"),
        ])
    }
}

/// An entity's full history: every event of one stream in sequence order, each with the state
/// change it made (`change`: JSON pointer → `{before, after}`).
#[utoipa::path(
    get, path = "/v1/audit/streams/{aggregate_type}/{aggregate_id}/events", tag = "audit",
    params(
        StreamPath,
        HistoryParams,
    ),
    responses(TrailResponses, AuditErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read-audit"))),
)]
pub async fn stream_history(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(StreamPath {
        aggregate_type,
        aggregate_id,
    }): PathIds<StreamPath>,
    QueryParams(params): QueryParams<HistoryParams>,
) -> Result<Response, ApiError> {
    if !text::matches(AGGREGATE_TYPE_PATTERN, &aggregate_type)
        || !text::matches(STREAM_ID_PATTERN, &aggregate_id)
    {
        return Err(ApiError::NotFound("no resource exists at this path".into()));
    }
    let HistoryParams {
        limit,
        after,
        format,
    } = params;
    let query = TrailQuery::Stream {
        aggregate_type,
        aggregate_id,
    };
    answer(
        state,
        context,
        query,
        TrailParams {
            limit,
            after,
            format,
        },
    )
    .await
}

/// A user's activity: everything one actor did, in commit order, optionally within
/// `[from, to)`.
#[utoipa::path(
    get, path = "/v1/audit/users/{actor}/events", tag = "audit",
    params(ActorPath, ActivityParams),
    responses(TrailResponses, AuditErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read-audit"))),
)]
pub async fn user_activity(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(ActorPath { actor }): PathIds<ActorPath>,
    QueryParams(params): QueryParams<ActivityParams>,
) -> Result<Response, ApiError> {
    if !text::matches(ACTOR_PATTERN, &actor) {
        return Err(ApiError::NotFound("no resource exists at this path".into()));
    }
    let ActivityParams {
        limit,
        after,
        format,
        from,
        to,
    } = params;
    let query = TrailQuery::Actor {
        actor,
        range: range(from.as_deref(), to.as_deref())?,
    };
    answer(
        state,
        context,
        query,
        TrailParams {
            limit,
            after,
            format,
        },
    )
    .await
}

/// Everything one user action caused: every event sharing a correlation id, in commit order.
#[utoipa::path(
    get, path = "/v1/audit/correlations/{correlation_id}/events", tag = "audit",
    params(("correlation_id" = Uuid, Path, description = "The `X-Correlation-ID` (or, when none was sent, the first command's id)"), CorrelationParams),
    responses(TrailResponses, AuditErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read-audit"))),
)]
pub async fn correlation(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(correlation_id): PathIds<Uuid>,
    QueryParams(params): QueryParams<CorrelationParams>,
) -> Result<Response, ApiError> {
    let CorrelationParams {
        limit,
        after,
        format,
    } = params;
    let query = TrailQuery::Correlation { correlation_id };
    answer(
        state,
        context,
        query,
        TrailParams {
            limit,
            after,
            format,
        },
    )
    .await
}

/// A tenant-wide search by aggregate type, event type and time range, in commit order.
#[utoipa::path(
    get, path = "/v1/audit/events", tag = "audit",
    params(SearchParams),
    responses(TrailResponses, AuditErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read-audit"))),
)]
pub async fn search(
    State(state): State<AppState>,
    context: RequestContext,
    QueryParams(params): QueryParams<SearchParams>,
) -> Result<Response, ApiError> {
    let SearchParams {
        limit,
        after,
        format,
        from,
        to,
        aggregate_type,
        event_type,
    } = params;
    let query = TrailQuery::Search {
        aggregate_type: checked("aggregate_type", AGGREGATE_TYPE_PATTERN, aggregate_type)?,
        event_type: checked("event_type", EVENT_TYPE_PATTERN, event_type)?,
        range: range(from.as_deref(), to.as_deref())?,
    };
    answer(
        state,
        context,
        query,
        TrailParams {
            limit,
            after,
            format,
        },
    )
    .await
}

fn require_auditor(context: &RequestContext) -> Result<(), ApiError> {
    context
        .principal
        .require(Permission::ReadAudit, "reading the audit trail")
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
    if params
        .limit
        .is_some_and(|limit| !(1..=MAX_PAGE_SIZE).contains(&limit))
    {
        return Err(ApiError::invalid_param(
            "limit",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    let format = params.format.unwrap_or_default();
    if format != Format::Json {
        return Ok(export(
            state,
            context.tenant,
            query,
            after,
            params.limit,
            format,
        ));
    }
    let limit = params.limit.unwrap_or(DEFAULT_PAGE_SIZE);
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
    limit: Option<u32>,
    format: Format,
) -> Response {
    struct Cursor {
        after: Option<TrailCursor>,
        /// Events still to export.
        left: u64,
    }
    let start = Cursor {
        after,
        left: limit.map_or(u64::MAX, u64::from),
    };
    let pages = stream::try_unfold(start, move |cursor| {
        let (state, query) = (state.clone(), query.clone());
        async move {
            if cursor.left == 0 {
                return Ok::<_, ExportError>(None);
            }
            let page_size = u32::try_from(cursor.left.min(u64::from(EXPORT_PAGE_SIZE)))
                .unwrap_or(EXPORT_PAGE_SIZE);
            let mut tx = tenant::begin(state.read_pool(), tenant).await?;
            let events = fetch_page(&mut tx, tenant, &query, cursor.after, page_size).await?;
            tx.rollback().await?;
            let Some(last) = events.last() else {
                return Ok(None);
            };
            let next = Cursor {
                after: Some(TrailCursor::after(&query, last)?),
                // A short page is the last one.
                left: if events.len() < page_size as usize {
                    0
                } else {
                    cursor.left - u64::from(page_size)
                },
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
const CSV_COLUMNS: [&str; 23] = [
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
    "hash_version",
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
        event.hash_version.to_string(),
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
pub(crate) fn csv_cell(out: &mut Vec<u8>, cell: &str) {
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
) -> Result<Option<Box<dyn StateFold>>, ApiError> {
    let Some(mut folder) =
        vextrus_commands::aggregate(&first.aggregate_type).map(|kind| kind.fold())
    else {
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
fn with_changes(mut folder: Option<Box<dyn StateFold>>, events: &mut [AuditEvent]) {
    for event in events {
        let Some(current) = folder.as_mut() else {
            return;
        };
        let mut before = current.state();
        if !current.apply(&event.event_type, &event.data) {
            return;
        }
        let mut after = current.state();
        redact_secrets(&mut before);
        redact_secrets(&mut after);
        let mut change = Map::new();
        diff(&before, &after, String::new(), &mut change);
        event.change = Some(Value::Object(change));
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

/// The checkpoints' cursor: the last checkpoint id shown.
const CHECKPOINT_CURSOR_PATTERN: &str = "^[0-9]{1,18}$";

fn checkpoint_cursor() -> Object {
    text::parameter(
        CHECKPOINT_CURSOR_PATTERN,
        "The `next_cursor` of the previous page.",
        "12",
    )
}

/// The checkpoints' parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CheckpointParams {
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    #[param(schema_with = checkpoint_cursor)]
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
    responses((status = 200, description = "A page of checkpoints", body = CheckpointPage), AuditErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read-audit"))),
)]
pub async fn checkpoints(
    State(state): State<AppState>,
    context: RequestContext,
    QueryParams(params): QueryParams<CheckpointParams>,
) -> Result<Json<CheckpointPage>, ApiError> {
    require_auditor(&context)?;
    let limit = page_size(params.limit)?;
    let after = params
        .after
        .as_deref()
        .map(|text| {
            text.parse::<i64>()
                .ok()
                .filter(|_| text::matches(CHECKPOINT_CURSOR_PATTERN, text))
                .ok_or_else(|| {
                    ApiError::invalid_param("after", "not a cursor returned by this list")
                })
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
    let next_cursor = cut_page(&mut items, limit, |last| last.checkpoint_id.to_string());
    Ok(Json(CheckpointPage { items, next_cursor }))
}

/// A page of checkpoints. Pass `next_cursor` as `after` for the next page; absent on the last.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointPage {
    pub items: Vec<CheckpointView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The activity list's cursor: the last item's day (days since 1970-01-01), aggregate type and
/// actor.
const ACTIVITY_CURSOR_PATTERN: &str = "^[0-9]{1,7}~[a-z][a-z0-9_]{0,63}~[^\\x00]{1,255}$";
/// The window `activity` shows when `from` is not given: this many days up to `to`.
const DEFAULT_ACTIVITY_DAYS: i64 = 30;

fn activity_cursor() -> Object {
    text::parameter(
        ACTIVITY_CURSOR_PATTERN,
        "The `next_cursor` of the previous page.",
        "20788~organization~alice",
    )
}

/// Activity counts: a window of days, an actor, paging, freshness.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActivityCountParams {
    /// The first day counted (Bangladesh calendar day, UTC+6); default 29 days before `to`.
    #[param(value_type = Option<String>, format = Date)]
    pub from: Option<String>,
    /// The last day counted, inclusive; default today in Bangladesh. Before `from`: nothing.
    #[param(value_type = Option<String>, format = Date)]
    pub to: Option<String>,
    /// Only this actor (a token subject, as the trail records it).
    #[param(schema_with = actor)]
    pub actor: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    #[param(schema_with = activity_cursor)]
    pub after: Option<String>,
    /// Wait until the counts include the event at this log position (a command response's
    /// `position`).
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// Events and commands of one actor on one day, for one aggregate type.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityCountView {
    /// Bangladesh calendar day (UTC+6).
    #[schema(value_type = String, format = Date)]
    pub day: chrono::NaiveDate,
    pub actor: String,
    pub aggregate_type: String,
    pub events: i64,
    /// Commands that appended at least one event.
    pub commands: i64,
}

/// Activity in a window of days, ordered by day, aggregate type and actor. Pass `next_cursor` as
/// `after` for the next page; absent on the last. `totals` covers the whole window.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityCountPage {
    #[schema(value_type = String, format = Date)]
    pub from: chrono::NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: chrono::NaiveDate,
    pub items: Vec<ActivityCountView>,
    pub totals: ActivityTotals,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityTotals {
    pub events: i64,
    pub commands: i64,
}

/// A calendar day as RFC 3339's `full-date` (what `format: date` means).
fn calendar_day(name: &str, text: &str) -> Result<chrono::NaiveDate, ApiError> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|day| text.len() == 10 && day.year() >= 1)
        .ok_or_else(|| ApiError::invalid_param(name, "must be a calendar day, e.g. 2026-12-01"))
}

/// Cursors count days from the Unix epoch, so that every cursor the pattern allows is a day.
const CURSOR_EPOCH: chrono::NaiveDate = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();

/// How much each actor did, per day and aggregate type: events and commands, counted by the
/// `audit_activity` projection. Auditors and administrators.
#[utoipa::path(
    get, path = "/v1/audit/activity", tag = "audit",
    params(ActivityCountParams),
    responses((status = 200, description = "A page of activity counts", body = ActivityCountPage), AuditErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read-audit"))),
)]
pub async fn activity(
    State(state): State<AppState>,
    context: RequestContext,
    QueryParams(params): QueryParams<ActivityCountParams>,
) -> Result<Json<ActivityCountPage>, ApiError> {
    require_auditor(&context)?;
    let limit = page_size(params.limit)?;
    let to = match params.to.as_deref() {
        Some(text) => calendar_day("to", text)?,
        None => (Utc::now()
            + chrono::Duration::hours(vextrus_projections::activity::DAY_OFFSET_HOURS))
        .date_naive(),
    };
    let from = match params.from.as_deref() {
        Some(text) => calendar_day("from", text)?,
        None => to
            .checked_sub_signed(chrono::Duration::days(DEFAULT_ACTIVITY_DAYS - 1))
            .unwrap_or(to),
    };
    if params
        .actor
        .as_deref()
        .is_some_and(|actor| !text::matches(ACTOR_PATTERN, actor))
    {
        return Err(ApiError::invalid_param(
            "actor",
            "must be 1 to 255 characters without NUL",
        ));
    }
    let after = params
        .after
        .as_deref()
        .map(|text| {
            let mut parts = text.splitn(3, '~');
            let (Some(day), Some(aggregate_type), Some(actor)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return None;
            };
            let day = CURSOR_EPOCH.checked_add_signed(chrono::Duration::days(day.parse().ok()?))?;
            text::matches(ACTIVITY_CURSOR_PATTERN, text)
                .then(|| (day, aggregate_type.to_owned(), actor.to_owned()))
        })
        .map(|cursor| {
            cursor.ok_or_else(|| {
                ApiError::invalid_param("after", "not a cursor returned by this list")
            })
        })
        .transpose()?;
    crate::consistency::wait_for::<vextrus_projections::activity::AuditActivity>(
        &state,
        &context,
        params.min_position,
    )
    .await?;
    let (after_day, after_type, after_actor) = match after {
        Some((day, aggregate_type, actor)) => (Some(day), Some(aggregate_type), Some(actor)),
        None => (None, None, None),
    };
    let mut tx = context.read(&state).await?;
    let rows = sqlx::query(
        "select day, actor, aggregate_type, events, commands from audit_activity
         where tenant_id = $1 and day between $2 and $3 and ($4::text is null or actor = $4)
           and ($5::date is null or (day, aggregate_type, actor) > ($5, $6, $7))
         order by day, aggregate_type, actor
         limit $8",
    )
    .bind(context.tenant.as_uuid())
    .bind(from)
    .bind(to)
    .bind(&params.actor)
    .bind(after_day)
    .bind(after_type)
    .bind(after_actor)
    .bind(i64::from(limit) + 1)
    .fetch_all(&mut *tx)
    .await
    .map_err(ApiError::database)?;
    let (events, commands): (i64, i64) = sqlx::query_as(
        "select coalesce(sum(events), 0)::int8, coalesce(sum(commands), 0)::int8 from audit_activity
         where tenant_id = $1 and day between $2 and $3 and ($4::text is null or actor = $4)",
    )
    .bind(context.tenant.as_uuid())
    .bind(from)
    .bind(to)
    .bind(&params.actor)
    .fetch_one(&mut *tx)
    .await
    .map_err(ApiError::database)?;
    tx.rollback().await.map_err(ApiError::database)?;
    let mut items = rows
        .iter()
        .map(|row| {
            Ok(ActivityCountView {
                day: row.try_get("day")?,
                actor: row.try_get("actor")?,
                aggregate_type: row.try_get("aggregate_type")?,
                events: row.try_get("events")?,
                commands: row.try_get("commands")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(ApiError::database)?;
    let next_cursor = cut_page(&mut items, limit, |last| {
        let day = (last.day - CURSOR_EPOCH).num_days();
        format!("{day}~{}~{}", last.aggregate_type, last.actor)
    });
    Ok(Json(ActivityCountPage {
        from,
        to,
        items,
        totals: ActivityTotals { events, commands },
        next_cursor,
    }))
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
