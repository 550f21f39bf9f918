//! # vextrus-api
//!
//! The HTTP API (axum): commands in, read models out (design.md D7, D8, D9).
//!
//! - [`router`] assembles every route with its layers: request ids (`X-Request-ID`, generated
//!   when absent and echoed on the response), one tracing span per request that the handlers fill
//!   with tenant, command and correlation ids, and the body limit.
//! - [`auth`]: bearer tokens (EdDSA from sign-in, HS256 for development) and the permission
//!   each route requires; [`identity`]: sign-in, sessions, users and the JWKS; [`keys`]: the
//!   signing keys. [`context`]: the tenant context of a request and
//!   the one helper that opens a tenant-scoped read transaction.
//! - [`hierarchy`]: the organization → division → project → site routes; [`finance`] the general
//!   ledger's, [`invoicing`] parties, the tax book, invoices and bills and the VAT registers.
//!   Each bounded context has a module of its own, merged in [`router`].
//! - [`command`]: the command kit every command route is written with (one extractor, one
//!   accepted answer, routes at their documented paths).
//! - [`error`]: every failure as RFC 9457 problem+json with a stable `type`.
//! - [`audit`]: the audit trail for auditors (history, activity, correlation, search, export,
//!   signed checkpoints), read under row-level security.
//! - [`client_address`]: the address recorded with commands (the peer, or `X-Forwarded-For`
//!   behind trusted proxies).
//! - [`consistency`]: read-your-writes through `?min_position=N`.
//! - [`health`] and [`openapi`]: probes and the generated OpenAPI document; [`ops`]: the
//!   operators' projection status; [`metrics`]: `GET /metrics` for Prometheus.
//!
//! The binary wires it to the event store, the read pool and the projection runners
//! (`vextrus serve`); the API itself holds no state beyond [`AppState`].

pub mod audit;
pub mod auth;
pub mod client_address;
pub mod command;
pub mod consistency;
pub mod context;
pub mod error;
pub mod extract;
pub mod finance;
pub mod health;
pub mod hierarchy;
pub mod identity;
pub mod invoicing;
pub mod keys;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod rate_limit;
mod state;

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Request, header};
use axum::routing::get;
use opentelemetry::trace::TraceContextExt as _;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::{Level, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

pub use auth::{Claims, JwtKeys, Permission, Role};
pub use error::ApiError;
pub use identity::oidc::OidcProviders;
pub use keys::SigningKeys;
pub use rate_limit::{LimitSetting, RateLimits};
pub use state::{ApiSettings, AppState, Background, DEFAULT_ISSUER, Lifetimes, Probe};

/// Every route of the API, ready to serve.
pub fn router(state: AppState) -> Router {
    // Installed before the first request, so that it counts from the start.
    metrics::handle();
    let settings = state.settings();
    let body_limit = settings.body_limit;
    let hsts = settings.hsts;
    let client_limit = settings
        .rate_limits
        .client
        .and_then(|limit| rate_limit::client_layer(limit, &settings.trusted_proxies));
    Router::new()
        .merge(hierarchy::router())
        .merge(finance::router())
        .merge(invoicing::router())
        .merge(identity::router(settings))
        .merge(audit::router())
        .merge(health::router())
        .merge(ops::router())
        .route("/openapi.json", get(openapi::openapi_json))
        .merge(if settings.metrics_on_api_port {
            Router::new().route("/metrics", get(metrics::render))
        } else {
            Router::new()
        })
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(metrics::track_requests))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_response(DefaultOnResponse::new().level(Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::x_request_id())
                // The security headers of every response: no content sniffing, no referrer, a
                // policy that lets a browser load nothing from an API response, and HSTS when the
                // API is reached over https.
                .layer(SetResponseHeaderLayer::overriding(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                .layer(SetResponseHeaderLayer::overriding(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                ))
                .layer(SetResponseHeaderLayer::overriding(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
                ))
                .option_layer(hsts.then(|| {
                    SetResponseHeaderLayer::overriding(
                        header::STRICT_TRANSPORT_SECURITY,
                        HeaderValue::from_static("max-age=31536000; includeSubDomains"),
                    )
                }))
                // Inside the headers, so a 429 carries a request id and the security headers.
                .option_layer(client_limit),
        )
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` completes, then stops accepting and lets the
/// requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer address is recorded with every command (audit metadata).
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// The span of one request. Handlers record the tenant, command and correlation ids once known.
/// A W3C `traceparent` (and `tracestate`) makes it a child of the caller's span when traces are
/// exported (see the binary's `telemetry`); otherwise it has no effect.
fn request_span(request: &Request<Body>) -> Span {
    let request_id = request
        .headers()
        .get(context::REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id,
        tenant_id = tracing::field::Empty,
        command_id = tracing::field::Empty,
        correlation_id = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    let caller = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&TraceHeaders(request.headers()))
    });
    // Without an exporter there is no OpenTelemetry layer, and none of this does anything.
    span.set_parent(caller);
    let trace_id = span.context().span().span_context().trace_id();
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
    span
}

/// A request's headers, as the W3C trace-context propagator reads them.
struct TraceHeaders<'a>(&'a axum::http::HeaderMap);

impl opentelemetry::propagation::Extractor for TraceHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(axum::http::HeaderName::as_str).collect()
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no resource exists at this path".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
