//! Prometheus metrics (`GET /metrics`, text format 0.0.4).
//!
//! - Every metric is named and described here, once ([`describe`]): base units, `_total`
//!   counters, and bounded labels (route templates, never paths; no tenant label).
//! - Requests are counted by [`track_requests`], commands by [`record_command`] (called by the
//!   command kit for every command a route issues).
//! - What lives in the database (the log's head and watermark, each projection's lag and state,
//!   the relay, replays) and in the process (pools, memory, CPU, files) is read when Prometheus
//!   scrapes ([`render`]), so any API process reports the whole system.
//!
//! The recorder is process-wide ([`handle`]): every server in a process shares it.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;

use crate::state::AppState;

pub const HTTP_REQUESTS: &str = "vextrus_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "vextrus_http_request_duration_seconds";
pub const COMMANDS: &str = "vextrus_commands_total";
pub const COMMAND_DURATION: &str = "vextrus_command_duration_seconds";
pub const EVENTS_APPENDED: &str = "vextrus_events_appended_total";
pub const LOG_HEAD: &str = "vextrus_log_head_position";
pub const LOG_WATERMARK_AGE: &str = "vextrus_log_watermark_age_seconds";
pub const PROJECTION_LAG_EVENTS: &str = "vextrus_projection_lag_events";
pub const PROJECTION_LAG_SECONDS: &str = "vextrus_projection_lag_seconds";
pub const PROJECTION_POSITION: &str = "vextrus_projection_position";
pub const PROJECTION_STATE: &str = "vextrus_projection_state";
pub const PROJECTION_EVENTS_APPLIED: &str = "vextrus_projection_events_applied_total";
pub const PROJECTION_POISON_EVENTS: &str = "vextrus_projection_poison_events";
pub const REPLAY_EVENTS_DONE: &str = "vextrus_replay_events_done";
pub const REPLAY_EVENTS_TOTAL: &str = "vextrus_replay_events";
pub const RELAY_POSITION: &str = "vextrus_relay_position";
pub const RELAY_LAG_EVENTS: &str = "vextrus_relay_lag_events";
pub const RELAY_EVENTS_RELAYED: &str = "vextrus_relay_events_relayed_total";
pub const POOL_CONNECTIONS: &str = "vextrus_db_pool_connections";
pub const POOL_MAX_CONNECTIONS: &str = "vextrus_db_pool_max_connections";
pub const POOL_IDLE_CONNECTIONS: &str = "vextrus_db_pool_idle_connections";
pub const PROCESS_RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
pub const PROCESS_CPU: &str = "process_cpu_seconds_total";
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";

/// The states a projection reports; [`PROJECTION_STATE`] is 1 for the current one, 0 for the rest.
const PROJECTION_STATES: [&str; 4] = ["running", "stopped", "rebuilding", "not started"];

/// Histogram buckets for request and command durations, in seconds.
const DURATION_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The process-wide recorder, installed on first use with every metric described.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &DURATION_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let handle = match builder.install_recorder() {
            Ok(handle) => handle,
            // Another recorder is installed (not ours): render what this one holds, alone.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        };
        describe();
        handle
    })
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route template and status"
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request"
    );
    describe_counter!(
        COMMANDS,
        "Commands issued through the API, by aggregate, command and outcome \
         (accepted, idempotent_replay, refused, conflict, error)"
    );
    describe_histogram!(
        COMMAND_DURATION,
        Unit::Seconds,
        "Time to decide and append a command"
    );
    describe_counter!(
        EVENTS_APPENDED,
        "Events appended by the API's commands, by aggregate"
    );
    describe_gauge!(LOG_HEAD, "The highest global position in the log");
    describe_gauge!(
        LOG_WATERMARK_AGE,
        Unit::Seconds,
        "How long the oldest event a running transaction holds back from log readers has waited"
    );
    describe_gauge!(
        PROJECTION_LAG_EVENTS,
        "Events of the projection not applied yet, behind the log"
    );
    describe_gauge!(
        PROJECTION_LAG_SECONDS,
        Unit::Seconds,
        "How long the oldest event the projection has not applied has waited"
    );
    describe_gauge!(
        PROJECTION_POSITION,
        "Log position up to which the projection has applied every event"
    );
    describe_gauge!(
        PROJECTION_STATE,
        "1 for the projection's current state, 0 for the others"
    );
    describe_counter!(
        PROJECTION_EVENTS_APPLIED,
        "Events the projection has applied (since its last rebuild)"
    );
    describe_gauge!(
        PROJECTION_POISON_EVENTS,
        "Poison events the projection is stopped on, waiting for an operator"
    );
    describe_gauge!(
        REPLAY_EVENTS_DONE,
        "Events the projection's latest replay has read"
    );
    describe_gauge!(
        REPLAY_EVENTS_TOTAL,
        "Events the projection's latest replay has to read"
    );
    describe_gauge!(
        RELAY_POSITION,
        "Log position the relay's brokers acknowledged"
    );
    describe_gauge!(
        RELAY_LAG_EVENTS,
        "Events in the log after the relay's acknowledged position"
    );
    describe_counter!(RELAY_EVENTS_RELAYED, "Events the relay has handed to Kafka");
    describe_gauge!(
        POOL_CONNECTIONS,
        "Open connections of a database pool (writer, reader, projector)"
    );
    describe_gauge!(POOL_IDLE_CONNECTIONS, "Idle connections of a database pool");
    describe_gauge!(
        POOL_MAX_CONNECTIONS,
        "The most connections a database pool opens: open equal to it with none idle means waits"
    );
    describe_histogram!(
        vextrus_commands::tenant::BEGIN_DURATION,
        Unit::Seconds,
        "Time to take a connection from a pool and begin a tenant's transaction (pool waits show here)"
    );
    describe_counter!(
        vextrus_commands::STREAM_CACHE,
        "Commands decided on the stream state kept from the last command (hit), decided again from the stored stream after that state gave a refusal, a conflict or nothing to do (rechecked), or loaded (miss)"
    );
    describe_histogram!(
        vextrus_projections::BATCH_DURATION,
        Unit::Seconds,
        "Time a projection takes to apply and commit one batch"
    );
    describe_gauge!(
        PROCESS_RESIDENT_MEMORY,
        Unit::Bytes,
        "Resident memory of this process"
    );
    describe_counter!(
        PROCESS_CPU,
        Unit::Seconds,
        "CPU time this process has used (user and system)"
    );
    describe_gauge!(PROCESS_OPEN_FDS, "Open file descriptors of this process");
}

/// Counts every request by method, route template ([`route_label`]; `unmatched` when no route
/// matched) and status, and times it.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| route_label(path.as_str()));
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    counter!(HTTP_REQUESTS, "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    histogram!(HTTP_REQUEST_DURATION, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// A route template as a label: `/v1/organizations/:organization_id/tree`. Braces are legal in
/// label values, but some parsers split on them.
fn route_label(template: &str) -> String {
    template.replace('{', ":").replace('}', "")
}

/// Bounded: the methods the API serves, `other` for the rest.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// How a command ended, for [`COMMANDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandOutcomeLabel {
    Accepted,
    IdempotentReplay,
    Refused,
    Conflict,
    Error,
}

impl CommandOutcomeLabel {
    fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::IdempotentReplay => "idempotent_replay",
            Self::Refused => "refused",
            Self::Conflict => "conflict",
            Self::Error => "error",
        }
    }
}

/// Records one command: its outcome, how long it took and the events it appended.
pub fn record_command(
    aggregate: &'static str,
    command: &str,
    outcome: CommandOutcomeLabel,
    elapsed: Duration,
    events_appended: u32,
) {
    counter!(COMMANDS, "aggregate" => aggregate, "command" => command.to_owned(), "outcome" => outcome.as_str())
        .increment(1);
    histogram!(COMMAND_DURATION, "aggregate" => aggregate, "command" => command.to_owned())
        .record(elapsed.as_secs_f64());
    if events_appended > 0 {
        counter!(EVENTS_APPENDED, "aggregate" => aggregate).increment(u64::from(events_appended));
    }
}

/// What a scrape reads besides the recorder: a pool that reads the whole log
/// (`vextrus_projector`), and the process's pools by name.
#[derive(Debug, Clone)]
pub struct MetricsSource {
    projector: PgPool,
    pools: Vec<(&'static str, PgPool)>,
}

impl MetricsSource {
    pub fn new(projector: PgPool) -> Self {
        Self {
            pools: vec![("projector", projector.clone())],
            projector,
        }
    }

    /// Reports `pool`'s connections as `pool="<name>"`.
    pub fn with_pool(mut self, name: &'static str, pool: PgPool) -> Self {
        self.pools.push((name, pool));
        self
    }

    /// Refreshes what is read at scrape time, then renders everything.
    pub async fn render(&self) -> Response {
        let handle = handle();
        if let Err(error) = refresh_from_database(&self.projector).await {
            // The rest still renders: a scrape that fails entirely hides the process metrics too.
            tracing::warn!(%error, "metrics: reading the database failed");
        }
        for (name, pool) in &self.pools {
            gauge!(POOL_CONNECTIONS, "pool" => *name).set(f64::from(pool.size()));
            gauge!(POOL_IDLE_CONNECTIONS, "pool" => *name).set(pool.num_idle() as f64);
            gauge!(POOL_MAX_CONNECTIONS, "pool" => *name)
                .set(f64::from(pool.options().get_max_connections()));
        }
        refresh_process();
        handle.run_upkeep();
        let mut response = handle.render().into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        response
    }
}

/// `GET /metrics` on the API port.
pub async fn render(State(state): State<AppState>) -> Response {
    MetricsSource::new(state.ops_pool().clone())
        .with_pool("writer", state.store().pool().clone())
        .with_pool("reader", state.read_pool().clone())
        .render()
        .await
}

/// Serves `GET /metrics`, and nothing else, on `listener` until `shutdown`
/// (`VEXTRUS_METRICS_LISTEN`; also for `vextrus relay` and `vextrus project`, which have no API).
pub async fn serve(
    listener: tokio::net::TcpListener,
    source: MetricsSource,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    handle();
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(|State(source): State<MetricsSource>| async move {
                source.render().await
            }),
        )
        .with_state(source);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The log, the projections, the relay and replays, as the database has them. `pool` reads the
/// whole log (`vextrus_projector`).
async fn refresh_from_database(pool: &PgPool) -> Result<(), sqlx::Error> {
    let (head, watermark_age): (i64, f64) = sqlx::query_as(
        "select (select coalesce(max(global_position), 0) from events),
                (select coalesce(extract(epoch from now() - min(recorded_at))::float8, 0)
                   from events where transaction_id >= pg_snapshot_xmin(pg_current_snapshot()))",
    )
    .fetch_one(pool)
    .await?;
    gauge!(LOG_HEAD).set(head as f64);
    gauge!(LOG_WATERMARK_AGE).set(watermark_age.max(0.0));
    for report in vextrus_replay::projection_reports(pool).await? {
        let name = report.name.clone();
        gauge!(PROJECTION_LAG_EVENTS, "projection" => name.clone()).set(report.lag_events as f64);
        gauge!(PROJECTION_LAG_SECONDS, "projection" => name.clone()).set(report.lag_seconds);
        gauge!(PROJECTION_POSITION, "projection" => name.clone()).set(report.position as f64);
        for state in PROJECTION_STATES {
            let current = if report.state == state { 1.0 } else { 0.0 };
            gauge!(PROJECTION_STATE, "projection" => name.clone(), "state" => state).set(current);
        }
        // 0 of 0 before the first replay.
        let (done, total) = report
            .last_replay
            .as_ref()
            .map_or((0, 0), |replay| (replay.events_done, replay.events_total));
        gauge!(REPLAY_EVENTS_DONE, "projection" => name.clone()).set(done as f64);
        gauge!(REPLAY_EVENTS_TOTAL, "projection" => name.clone()).set(total as f64);
    }
    let projections: Vec<(String, i64, i64)> = sqlx::query_as(
        "select c.projection, c.events_applied,
                (select count(*) from projection_poison_events p
                  where p.projection = c.projection and not p.skip_requested)
         from projection_checkpoints c",
    )
    .fetch_all(pool)
    .await?;
    for (name, applied, poison) in projections {
        counter!(PROJECTION_EVENTS_APPLIED, "projection" => name.clone())
            .absolute(u64::try_from(applied).unwrap_or(0));
        gauge!(PROJECTION_POISON_EVENTS, "projection" => name).set(poison as f64);
    }
    let relays: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "select r.relay, r.global_position, r.events_relayed,
                (select count(*) from events e
                  where (e.transaction_id, e.global_position) > (r.transaction_id, r.global_position))
         from relay_checkpoints r",
    )
    .fetch_all(pool)
    .await?;
    for (relay, position, relayed, lag) in relays {
        gauge!(RELAY_POSITION, "relay" => relay.clone()).set(position as f64);
        gauge!(RELAY_LAG_EVENTS, "relay" => relay.clone()).set(lag as f64);
        counter!(RELAY_EVENTS_RELAYED, "relay" => relay)
            .absolute(u64::try_from(relayed).unwrap_or(0));
    }
    Ok(())
}

/// Resident memory, CPU time and open files, from `/proc/self` (Linux; elsewhere nothing).
fn refresh_process() {
    // Linux's page size and clock tick on the machines we run on (x86-64 and arm64).
    const PAGE_SIZE: f64 = 4096.0;
    const TICKS_PER_SECOND: f64 = 100.0;
    if let Some(resident_pages) = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<f64>().ok())
    {
        gauge!(PROCESS_RESIDENT_MEMORY).set(resident_pages * PAGE_SIZE);
    }
    if let Some(ticks) = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| cpu_ticks(&stat))
    {
        counter!(PROCESS_CPU).absolute((ticks as f64 / TICKS_PER_SECOND) as u64);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        gauge!(PROCESS_OPEN_FDS).set(fds.count() as f64);
    }
}

/// User plus system CPU ticks from a `/proc/<pid>/stat` line (fields 14 and 15, counted after the
/// command name, which may hold spaces and parentheses).
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_after_a_command_name_with_spaces() {
        let stat =
            "4242 (vextrus (serve) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 25 0 0 20 0 9 0";
        assert_eq!(cpu_ticks(stat), Some(175));
        assert_eq!(cpu_ticks("garbage"), None);
    }
}
