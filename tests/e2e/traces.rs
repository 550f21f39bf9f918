//! OpenTelemetry: `vextrus serve` with `OTEL_EXPORTER_OTLP_ENDPOINT` exports its spans over
//! OTLP/HTTP to a receiver in this test, which decodes the protobuf it gets. A request's W3C
//! `traceparent` makes its spans part of the caller's trace, and that trace follows the event
//! through the log (and Kafka) to the projection that applies it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use uuid::Uuid;
use vextrus::server::Fanout;
use vextrus_api::{Claims, JwtKeys};

use crate::cli::{scratch_dir, serve_with};
use crate::http::{organization_body, spawn_app_with};

const SECRET: &str = "trace trials sign their tokens with this secret";

type Received = Arc<Mutex<Vec<Span>>>;

/// An OTLP/HTTP receiver on a free port: every span it is sent, decoded.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let app = axum::Router::new()
        .route(
            "/v1/traces",
            post(|State(received): State<Received>, body: Bytes| async move {
                let request = ExportTraceServiceRequest::decode(body).unwrap();
                let spans = request
                    .resource_spans
                    .into_iter()
                    .flat_map(|resource| resource.scope_spans)
                    .flat_map(|scope| scope.spans);
                received.lock().unwrap().extend(spans);
                ""
            }),
        )
        .with_state(Arc::clone(&received));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), received)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Runs `vextrus serve` (with `extra` arguments) exporting to `endpoint`, creates an organization
/// with a `traceparent` naming the caller's trace, and returns the spans of that trace once every
/// span in `expected` has arrived; also checks that the request continued the caller's span.
async fn one_traced_command(
    app: &crate::http::TestApp,
    endpoint: &str,
    received: &Received,
    extra: &[&str],
    expected: &[&str],
) -> Vec<Span> {
    let dir = scratch_dir("traces");
    let mut served = tokio::task::spawn_blocking({
        let (dir, url, endpoint) = (dir.clone(), app.db.url.clone(), endpoint.to_owned());
        let extra: Vec<String> = extra.iter().map(|arg| (*arg).to_owned()).collect();
        move || {
            serve_with(&dir, |command| {
                command
                    .args(extra)
                    .env("DATABASE_URL", url)
                    .env("VEXTRUS_JWT_SECRET", SECRET)
                    .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
                    .env("OTEL_SERVICE_NAME", "vextrus-trace-test")
                    .env("OTEL_BSP_SCHEDULE_DELAY", "100")
                    .env("VEXTRUS_LOG_FORMAT", "json")
                    .env("VEXTRUS_LOG", "info,sqlx=warn")
                    .stderr(std::process::Stdio::piped());
            })
        }
    })
    .await
    .unwrap();
    let logs = served.read_stderr();
    let client = reqwest::Client::new();
    served.wait_until_ready(&client).await;
    let token = JwtKeys::from_secret(SECRET.as_bytes())
        .unwrap()
        .sign(&Claims {
            sub: "tracer".into(),
            tenant: Uuid::now_v7(),
            roles: vec!["admin".into()],
            exp: chrono::Utc::now().timestamp() + 600,
            iat: None,
        })
        .unwrap();
    let trace_id = Uuid::now_v7().simple().to_string();
    let caller_span = Uuid::now_v7().simple().to_string()[..16].to_owned();
    let code = format!("T{}", &trace_id[24..]).to_uppercase();
    let created = client
        .post(format!("{}/v1/organizations", served.base))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .json(&organization_body(&code))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let ours = loop {
        let ours: Vec<Span> = received
            .lock()
            .unwrap()
            .iter()
            .filter(|span| hex(&span.trace_id) == trace_id)
            .cloned()
            .collect();
        if expected
            .iter()
            .all(|name| ours.iter().any(|span| span.name == *name))
        {
            break ours;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{extra:?}: the caller's trace lacks some of {expected:?}: it has {:?}",
            ours.iter()
                .map(|span| span.name.as_str())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(served.stop().await.success());
    let _ = std::fs::remove_dir_all(&dir);
    // The JSON logs of the request carry its trace id.
    let logs = logs.join().unwrap();
    assert!(
        logs.lines()
            .any(|line| serde_json::from_str::<serde_json::Value>(line)
                .is_ok_and(|line| line["span"]["trace_id"] == trace_id.as_str())),
        "no log line with trace id {trace_id}:\n{logs}"
    );
    let request = ours
        .iter()
        .find(|span| span.name == "request")
        .expect("the request's span is in the caller's trace");
    assert_eq!(
        hex(&request.parent_span_id),
        caller_span,
        "child of the caller's span"
    );
    let command = ours
        .iter()
        .find(|span| span.name == "execute_command")
        .unwrap();
    assert_eq!(
        command.parent_span_id, request.span_id,
        "the command runs inside the request"
    );
    ours
}

#[tokio::test]
async fn one_trace_runs_from_the_request_through_the_log_and_kafka_to_the_read_model() {
    let app = spawn_app_with(|config| config.fanout = Fanout::Elsewhere).await;
    let (endpoint, received) = receiver().await;
    // The single-node shape: request, append, the runner applying it.
    one_traced_command(
        &app,
        &endpoint,
        &received,
        &[],
        &["request", "execute_command", "apply_event"],
    )
    .await;
    // The Kafka shape: the relay produces it (with a `traceparent` header), a worker applies it.
    one_traced_command(
        &app,
        &endpoint,
        &received,
        &["--embedded-kafka"],
        &["request", "execute_command", "relay_event", "apply_event"],
    )
    .await;
}
