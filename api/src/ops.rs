//! Operations endpoints, for the `operator` role: the projections' status, the same document as
//! `vextrus projections status --json`. It holds no tenant data (versions, positions, counts).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use vextrus_replay::ProjectionReport;

use crate::auth::Permission;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::state::AppState;

/// The error responses of an operations route.
pub struct OpsErrors;

impl utoipa::IntoResponses for OpsErrors {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        crate::openapi::problem_responses(&[
            (400, "Malformed header"),
            (401, "Missing, expired or invalid bearer token"),
            (
                403,
                "Not an operator, or X-Tenant-ID differs from the token",
            ),
        ])
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/ops/projections", get(projections))
}

/// Every projection: version, position, lag behind the log (events and seconds), state
/// (`running`, `stopped` on a poison event, `rebuilding`), and its latest replay.
#[utoipa::path(
    get, path = "/v1/ops/projections", tag = "operations",
    responses(
        (status = 200, description = "Every projection's status", body = Vec<ProjectionReport>),
        OpsErrors,
    ),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("operate"))),
)]
pub async fn projections(
    State(state): State<AppState>,
    context: RequestContext,
) -> Result<Json<Vec<ProjectionReport>>, ApiError> {
    context
        .principal
        .require(Permission::Operate, "reading the projections' status")?;
    let reports = vextrus_replay::projection_reports(state.ops_pool())
        .await
        .map_err(ApiError::database)?;
    Ok(Json(reports))
}
