//! The organization hierarchy over HTTP: commands (create, rename, archive, move) in
//! [`commands`], queries (lists, single units, the tree) in [`queries`], and what they take and
//! return in [`views`]. Every route lives under `/v1/organizations`, and units are addressed
//! within their organization, whose stream is the aggregate that decides.

pub mod commands;
pub mod queries;
pub mod views;

use axum::Router;
use axum::routing::{get, post};
use utoipa::IntoParams;

use crate::openapi::problem_responses;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    use commands::*;
    use queries::*;
    Router::new()
        .route(
            "/v1/organizations",
            post(create_organization).get(list_organizations),
        )
        .route(
            "/v1/organizations/{organization_id}",
            get(get_organization).patch(rename_organization),
        )
        .route(
            "/v1/organizations/{organization_id}/archive",
            post(archive_organization),
        )
        .route("/v1/organizations/{organization_id}/tree", get(get_tree))
        .route(
            "/v1/organizations/{organization_id}/divisions",
            post(create_division).get(list_divisions),
        )
        .route(
            "/v1/organizations/{organization_id}/divisions/{division_id}",
            get(get_division).patch(rename_division),
        )
        .route(
            "/v1/organizations/{organization_id}/divisions/{division_id}/archive",
            post(archive_division),
        )
        .route(
            "/v1/organizations/{organization_id}/projects",
            post(create_project).get(list_projects),
        )
        .route(
            "/v1/organizations/{organization_id}/projects/{project_id}",
            get(get_project).patch(rename_project),
        )
        .route(
            "/v1/organizations/{organization_id}/projects/{project_id}/archive",
            post(archive_project),
        )
        .route(
            "/v1/organizations/{organization_id}/sites",
            post(create_site).get(list_sites),
        )
        .route(
            "/v1/organizations/{organization_id}/sites/{site_id}",
            get(get_site).patch(rename_site),
        )
        .route(
            "/v1/organizations/{organization_id}/sites/{site_id}/archive",
            post(archive_site),
        )
        .route(
            "/v1/organizations/{organization_id}/sites/{site_id}/move",
            post(move_site),
        )
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
