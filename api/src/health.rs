//! `/health/live` (the process answers) and `/health/ready` (it can do its job: the database is
//! reachable, its migrations are this build's, and the projections in this process run, none
//! stopped on a poison event). Both are open to unauthenticated probes and reveal nothing about
//! tenants.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;
use vextrus_projections::{ProjectionState, ProjectionStatus};
use vextrus_replay::Progress;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/health/live", tag = "operations", responses((status = 200, body = Liveness)))]
pub async fn live() -> Json<Liveness> {
    Json(Liveness { status: "live" })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub database: Check,
    pub migrations: Check,
    pub projections: Vec<ProjectionCheck>,
    /// The relay, when this process runs one (`serve --embedded-kafka`). A standby is healthy:
    /// another process holds the relay lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<RelayCheck>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectionCheck {
    pub name: String,
    /// `starting`, `running`, `rebuilding` (after a version change; the previous version serves
    /// reads until the swap) or `stopped`.
    pub state: String,
    /// Log position of the last applied event.
    pub position: i64,
    /// Why it stopped, for a stopped projection.
    pub detail: Option<String>,
}

impl ProjectionCheck {
    /// An in-process runner's check.
    pub fn of_runner(status: &ProjectionStatus) -> Self {
        let (state, detail) = match &status.state {
            ProjectionState::Starting => ("starting", None),
            ProjectionState::Running => ("running", None),
            ProjectionState::Stopped { at, reason } => (
                "stopped",
                Some(format!("stopped at log position {at}: {reason}")),
            ),
        };
        Self {
            name: status.name.to_owned(),
            state: state.to_owned(),
            position: status.position.global_position,
            detail,
        }
    }
}

impl ProjectionCheck {
    /// This projection while its version rebuild runs: ready, since the previous version serves.
    fn rebuilding(self, progress: &Progress) -> Self {
        Self {
            state: "rebuilding".to_owned(),
            detail: Some(format!(
                "rebuilding after a version change ({} {}/{} events); the previous version serves \
                 reads until the swap",
                progress.phase.as_str(),
                progress.events_done,
                progress.events_total
            )),
            ..self
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RelayCheck {
    /// `active` (holds the relay lock and produces) or `standby`.
    pub state: String,
    /// Log position of the last event the brokers acknowledged.
    pub position: i64,
    pub events_relayed: u64,
}

/// Not ready: a problem (`not-ready`) that also carries every check, like the 200 body.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotReady {
    #[serde(flatten)]
    pub problem: crate::error::Problem,
    #[serde(flatten)]
    pub readiness: Readiness,
}

/// Ready to serve: 200 when every check passes, else 503 with a problem that carries the same
/// checks.
#[utoipa::path(
    get, path = "/health/ready", tag = "operations",
    responses(
        (status = 200, body = Readiness),
        (status = 503, description = "Not ready", body = NotReady, content_type = "application/problem+json"),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Response {
    let latest = state.settings().latest_migration;
    let applied: Result<i64, sqlx::Error> =
        sqlx::query_scalar("select coalesce(max(version), 0) from _sqlx_migrations where success")
            .fetch_one(state.read_pool())
            .await;
    let (database, migrations) = match applied {
        Ok(applied) => (
            Check {
                ok: true,
                detail: "reachable".into(),
            },
            Check {
                ok: applied >= latest,
                detail: format!("database at migration {applied}, this build needs {latest}"),
            },
        ),
        Err(error) => {
            tracing::warn!(%error, "readiness: database check failed");
            (
                Check {
                    ok: false,
                    detail: "unreachable".into(),
                },
                Check {
                    ok: false,
                    detail: "unknown".into(),
                },
            )
        }
    };
    let background = state.background();
    let projections: Vec<ProjectionCheck> = background
        .runners
        .iter()
        .map(|status| ProjectionCheck::of_runner(&status.borrow()))
        .chain(background.projections.iter().map(|probe| probe()))
        .map(|check| {
            let rebuild = background
                .rebuilds
                .iter()
                .find(|(name, _)| *name == check.name)
                .and_then(|(_, progress)| *progress.borrow());
            match rebuild {
                Some(progress) => check.rebuilding(&progress),
                None => check,
            }
        })
        .collect();
    let relay = background.relay.as_ref().map(|probe| probe());
    let ready = database.ok
        && migrations.ok
        && projections
            .iter()
            .all(|projection| projection.state == "running" || projection.state == "rebuilding");
    let readiness = Readiness {
        ready,
        database,
        migrations,
        projections,
        relay,
    };
    if ready {
        return (StatusCode::OK, Json(readiness)).into_response();
    }
    let not_ready = NotReady {
        problem: crate::error::Problem {
            problem_type: "urn:vextrus:problem:not-ready".to_owned(),
            title: "Not ready",
            status: StatusCode::SERVICE_UNAVAILABLE.as_u16(),
            detail: "a check below failed: the database, the migrations or a projection".to_owned(),
            invalid_params: Vec::new(),
            current_version: None,
        },
        readiness,
    };
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(not_ready)).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(crate::error::PROBLEM_JSON),
    );
    response
}
