//! `/openapi.json`: the OpenAPI 3.1 document generated from the route annotations, so it cannot
//! drift from the code.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::Json;
use utoipa::openapi::response::{Response, ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use crate::error::{InvalidParam, PROBLEM_JSON, Problem};
use crate::{health, hierarchy};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Vextrus API",
        description = "Multi-tenant, event-sourced ERP backend for construction companies in Bangladesh. \
            Every /v1 route takes a bearer JWT (HS256); errors are RFC 9457 problem+json with a stable `type`."
    ),
    paths(
        hierarchy::commands::create_organization,
        hierarchy::commands::rename_organization,
        hierarchy::commands::archive_organization,
        hierarchy::commands::create_division,
        hierarchy::commands::rename_division,
        hierarchy::commands::archive_division,
        hierarchy::commands::create_project,
        hierarchy::commands::rename_project,
        hierarchy::commands::archive_project,
        hierarchy::commands::create_site,
        hierarchy::commands::rename_site,
        hierarchy::commands::archive_site,
        hierarchy::commands::move_site,
        hierarchy::queries::list_organizations,
        hierarchy::queries::get_organization,
        hierarchy::queries::get_tree,
        hierarchy::queries::list_divisions,
        hierarchy::queries::get_division,
        hierarchy::queries::list_projects,
        hierarchy::queries::get_project,
        hierarchy::queries::list_sites,
        hierarchy::queries::get_site,
        health::live,
        health::ready,
        crate::ops::projections,
        crate::audit::stream_history,
        crate::audit::user_activity,
        crate::audit::correlation,
        crate::audit::search,
        crate::audit::checkpoints,
        openapi_json,
    ),
    components(schemas(Problem, InvalidParam, crate::audit::CheckpointView)),
    modifiers(&BearerAuth),
    tags(
        (name = "organizations", description = "Companies: the root of the hierarchy and its aggregate"),
        (name = "divisions", description = "Divisions of an organization"),
        (name = "projects", description = "Construction projects of a division"),
        (name = "sites", description = "Physical sites of a project"),
        (name = "audit", description = "The audit trail (auditor and admin roles): who changed what, when, on whose behalf"),
        (name = "operations", description = "Health and API description"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Error responses, each with a problem+json body, for `IntoResponses` implementations.
pub fn problem_responses(statuses: &[(u16, &str)]) -> BTreeMap<String, RefOr<Response>> {
    let mut responses = ResponsesBuilder::new();
    for (status, description) in statuses {
        responses = responses.response(
            status.to_string(),
            ResponseBuilder::new().description(*description).content(
                PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            ),
        );
    }
    responses.build().responses
}

/// This document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    // The document depends on the code only: build it on first use, not per request.
    static DOCUMENT: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    Json(DOCUMENT.get_or_init(ApiDoc::openapi))
}
