//! The organization hierarchy over HTTP: commands (create, rename, archive, move) in
//! [`commands`], queries (lists, single units, the tree) in [`queries`], and what they take and
//! return in [`views`]. Every route lives under `/v1/organizations`, and units are addressed
//! within their organization, whose stream is the aggregate that decides. Commands go through
//! the command kit ([`crate::command`]); how the hierarchy's refusals read as problems is its
//! [`DomainProblem`] here.

pub mod commands;
pub mod queries;
pub mod views;

use axum::Router;
use utoipa::IntoParams;
use vextrus_domain::organization::OrganizationError;

use crate::command::DocumentedRoutes;
use crate::error::{ApiError, DomainProblem};
use crate::openapi::problem_responses;
use crate::state::AppState;

/// Every hierarchy route, each at the path and method of its `#[utoipa::path]`.
pub fn router() -> Router<AppState> {
    use commands::*;
    use queries::*;
    Router::new()
        .documented(__path_create_organization, create_organization)
        .documented(__path_list_organizations, list_organizations)
        .documented(__path_get_organization, get_organization)
        .documented(__path_rename_organization, rename_organization)
        .documented(__path_archive_organization, archive_organization)
        .documented(__path_get_tree, get_tree)
        .documented(__path_create_division, create_division)
        .documented(__path_list_divisions, list_divisions)
        .documented(__path_get_division, get_division)
        .documented(__path_rename_division, rename_division)
        .documented(__path_archive_division, archive_division)
        .documented(__path_create_project, create_project)
        .documented(__path_list_projects, list_projects)
        .documented(__path_get_project, get_project)
        .documented(__path_rename_project, rename_project)
        .documented(__path_archive_project, archive_project)
        .documented(__path_create_site, create_site)
        .documented(__path_list_sites, list_sites)
        .documented(__path_get_site, get_site)
        .documented(__path_rename_site, rename_site)
        .documented(__path_archive_site, archive_site)
        .documented(__path_move_site, move_site)
}

/// The hierarchy's refusals: each broken rule has its own problem `type`.
impl DomainProblem for OrganizationError {
    const STREAM: &'static str = "organization";

    fn into_problem(self) -> ApiError {
        use OrganizationError as E;
        let detail = self.to_string();
        match self {
            E::OrganizationNotFound | E::UnitNotFound { .. } => ApiError::NotFound(detail),
            E::OrganizationAlreadyExists | E::UnitAlreadyExists { .. } => {
                ApiError::AlreadyExists(detail)
            }
            E::UnitArchived { .. } => ApiError::RuleViolated {
                rule: "unit-archived",
                detail,
            },
            E::DuplicateCode { .. } => ApiError::RuleViolated {
                rule: "duplicate-code",
                detail,
            },
            E::HasActiveChildren { .. } => ApiError::RuleViolated {
                rule: "has-active-children",
                detail,
            },
            E::SiteAlreadyInProject { .. } => ApiError::RuleViolated {
                rule: "site-already-in-project",
                detail,
            },
        }
    }
}

/// OpenAPI links from each creation to the operations on the unit it created (those whose path
/// names that unit), so that client generators and stateful fuzzers follow a new unit's id
/// rather than guess one. Derived from the paths, so a new route is linked without a line here.
pub struct CreationLinks;

impl utoipa::Modify for CreationLinks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::link::LinkBuilder;
        use utoipa::openapi::path::{Operation, ParameterIn};
        // The creation and the path parameter that names what it creates.
        const CREATIONS: [(&str, &str); 4] = [
            ("create_organization", "organization_id"),
            ("create_division", "division_id"),
            ("create_project", "project_id"),
            ("create_site", "site_id"),
        ];
        let path_parameters = |operation: &Operation| -> Vec<String> {
            operation
                .parameters
                .iter()
                .flatten()
                .filter(|parameter| parameter.parameter_in == ParameterIn::Path)
                .map(|parameter| parameter.name.clone())
                .collect()
        };
        let mut targets: Vec<(String, Vec<String>)> = Vec::new();
        for item in openapi.paths.paths.values() {
            for operation in [&item.get, &item.post, &item.patch].into_iter().flatten() {
                if let Some(id) = &operation.operation_id {
                    targets.push((id.clone(), path_parameters(operation)));
                }
            }
        }
        for item in openapi.paths.paths.values_mut() {
            let Some(operation) = item.post.as_mut() else {
                continue;
            };
            let Some((_, unit)) = CREATIONS
                .iter()
                .find(|(creation, _)| operation.operation_id.as_deref() == Some(creation))
            else {
                continue;
            };
            let Some(RefOr::T(created)) = operation.responses.responses.get_mut("201") else {
                continue;
            };
            for (target, parameters) in &targets {
                let names_the_unit = parameters.iter().any(|name| name == unit)
                    && parameters
                        .iter()
                        .all(|name| name == unit || name == "organization_id");
                if !names_the_unit {
                    continue;
                }
                let mut link = LinkBuilder::new().operation_id(target.clone());
                for name in parameters {
                    let source = if name == unit {
                        "$response.body#/id"
                    } else {
                        "$response.body#/organization_id"
                    };
                    link = link.parameter(name.clone(), source);
                }
                created.links.insert(target.clone(), RefOr::T(link.build()));
            }
        }
    }
}

/// Documents the `Idempotency-Key` header (read by [`crate::extract::IdempotencyKey`]).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct IdempotencyKeyHeader {
    #[param(rename = "Idempotency-Key", schema_with = idempotency_key)]
    idempotency_key: Option<String>,
}

fn idempotency_key() -> utoipa::openapi::schema::Object {
    crate::openapi::text::parameter(
        crate::extract::IDEMPOTENCY_KEY_PATTERN,
        "1 to 255 visible ASCII characters. A retry with the same key returns the first response \
         (with `Idempotent-Replayed: true`) and changes nothing. A creation's new id is derived \
         from the key.",
        "create-mbl-2026-12-02",
    )
}

/// Documents the `If-Match` header (read by [`crate::extract::IfMatch`]).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct IfMatchHeader {
    #[param(rename = "If-Match", schema_with = if_match)]
    if_match: Option<String>,
}

fn if_match() -> utoipa::openapi::schema::Object {
    crate::openapi::text::parameter(
        crate::extract::IF_MATCH_PATTERN,
        "The organization's ETag (e.g. `\"3\"`; `W/\"3\"` and `3` are read the same) from a \
         previous response: the command runs only if the organization is still at that version, \
         else 409.",
        "\"3\"",
    )
}

/// The error responses of a command route.
pub struct CommandErrors;

impl utoipa::IntoResponses for CommandErrors {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        problem_responses(&[
            (400, "Malformed JSON, header or parameter"),
            (401, "Missing, expired or invalid bearer token"),
            (
                403,
                "The token's role does not allow this, or X-Tenant-ID differs from the token",
            ),
            (
                404,
                "The organization or unit does not exist in this tenant",
            ),
            (
                409,
                "Version conflict (If-Match), the unit already exists, or a business rule forbids \
                 it in the current state, e.g. a code already taken (see `type`)",
            ),
            (413, "Request body too large"),
            (415, "The body is not sent as application/json"),
            (422, "Invalid fields (see `invalid-params`)"),
        ])
    }
}

/// The error responses of an archive route (no request body).
pub struct ArchiveErrors;

impl utoipa::IntoResponses for ArchiveErrors {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        problem_responses(&[
            (400, "Malformed header"),
            (401, "Missing, expired or invalid bearer token"),
            (
                403,
                "The token's role does not allow this, or X-Tenant-ID differs from the token",
            ),
            (
                404,
                "The organization or unit does not exist in this tenant",
            ),
            (
                409,
                "Version conflict (If-Match), or a business rule forbids it in the current \
                 state, e.g. active children (see `type`)",
            ),
        ])
    }
}

/// The error responses of a query route.
pub struct QueryErrors;

impl utoipa::IntoResponses for QueryErrors {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        problem_responses(&[
            (400, "Malformed header or query parameter"),
            (401, "Missing, expired or invalid bearer token"),
            (403, "X-Tenant-ID differs from the token"),
            (
                404,
                "The organization or unit does not exist in this tenant",
            ),
            (
                409,
                "X-Site-ID names a site outside the project of X-Project-ID",
            ),
            (422, "Invalid parameter value"),
            (
                503,
                "The read model did not reach `min_position` in time (see Retry-After)",
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode};
    use axum::response::Response;
    use serde_json::Value;
    use tower::Service;
    use utoipa::OpenApi;
    use uuid::Uuid;
    use vextrus_commands::EventStore;

    use super::*;
    use crate::auth::JwtKeys;

    const SECRET: [u8; 32] = [7; 32];

    /// The hierarchy's (and the ledger's and invoicing's) routes over a database that is never
    /// reached: every
    /// request here is answered before a command or query would touch it (unauthenticated ones;
    /// an authenticated request asks the log whether its token stands, so the order of the
    /// refusals after authentication is tried in `tests/e2e/api_input.rs`).
    fn app() -> Router {
        let pool =
            sqlx::PgPool::connect_lazy("postgres://vextrus@127.0.0.1:1/unreachable").unwrap();
        let state = AppState::new(
            EventStore::new(pool.clone()),
            pool.clone(),
            pool,
            JwtKeys::from_secret(&SECRET).unwrap(),
            Default::default(),
            Default::default(),
        );
        router()
            .merge(crate::finance::router())
            .merge(crate::invoicing::router())
            .with_state(state)
    }

    async fn send(request: Request<Body>) -> (StatusCode, Value) {
        let response: Response = app().call(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn every_documented_operation_is_served_at_its_documented_path_and_method() {
        let document = crate::openapi::ApiDoc::openapi();
        let mut served = 0;
        for (path, item) in &document.paths.paths {
            if !path.starts_with("/v1/organizations") {
                continue;
            }
            let uri: Vec<String> = path
                .split('/')
                .map(|segment| match segment.starts_with('{') {
                    true => Uuid::now_v7().to_string(),
                    false => segment.to_owned(),
                })
                .collect();
            let operations = [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PATCH, &item.patch),
                (Method::PUT, &item.put),
                (Method::DELETE, &item.delete),
            ];
            for (method, _) in operations.iter().filter(|(_, op)| op.is_some()) {
                let request = Request::builder()
                    .method(method)
                    .uri(uri.join("/"))
                    .body(Body::empty())
                    .unwrap();
                // Not 404 or 405: the route exists, and its handler asks who is calling.
                let (status, _) = send(request).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
                served += 1;
            }
        }
        // The hierarchy's 22, the general ledger's 25 and invoicing's 37.
        assert_eq!(served, 84);
    }
}
