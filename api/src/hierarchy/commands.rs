//! Command routes of the hierarchy: create, rename, archive, move. Each parses its input into
//! domain values (every bad field reported at once), issues one `OrganizationCommand` on the
//! organization's stream and answers with the new version (also as `ETag`) and the log position
//! of the last event (design.md D9).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;
use vextrus_commands::{CommandMetadata, CommandOutcome, ExecuteError, Version};
use vextrus_domain::ids::{DivisionId, OrganizationId, ProjectId, SiteId};
use vextrus_domain::organization::{NewOrganization, Organization, OrganizationCommand};
use vextrus_domain::values::{Bin, Code, CurrencyCode, FiscalYearStart, Name, Tin};

use super::views::{
    CommandAccepted, CreateDivision, CreateOrganization, CreateProject, CreateSite, MoveSite,
    RenameUnit,
};
use super::{ArchiveErrors, CommandErrors};
use crate::auth::Role;
use crate::context::RequestContext;
use crate::error::{ApiError, InvalidParam};
use crate::extract::{IdempotencyKey, IfMatch, JsonBody, PathIds, etag};
use crate::state::AppState;

/// Who may change organizations themselves, and who may change what is below them.
const ORGANIZATION_ROLES: &[Role] = &[Role::Admin];
const UNIT_ROLES: &[Role] = &[Role::Admin, Role::Manager];

/// Namespace of unit ids derived from idempotency keys (UUID v5 of the command id).
const KEYED_UNIT_NAMESPACE: Uuid = Uuid::from_u128(0x0b4e_61c3_27d8_4f0a_9e52_73c1_d08a_4b96);

/// How often a command without `If-Match` is retried when a concurrent command wins the race:
/// the client did not ask for optimistic concurrency, so a lost race is ours to absorb.
const CONFLICT_RETRIES: u32 = 3;

/// Collects field errors so that one response names every bad field.
#[derive(Default)]
struct Fields(Vec<InvalidParam>);

impl Fields {
    fn take<T, E: ToString>(&mut self, name: &str, parsed: Result<T, E>) -> Option<T> {
        parsed
            .map_err(|error| self.0.push(InvalidParam::new(name, error)))
            .ok()
    }

    fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, ApiError> {
        match build() {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(ApiError::invalid_input(self.0)),
        }
    }
}

/// A command ready to run: which organization, what, on whose behalf, at which version.
struct Issue {
    organization: OrganizationId,
    unit: Uuid,
    command: OrganizationCommand,
    metadata: CommandMetadata,
    expected: Option<Version>,
    created: bool,
}

impl Issue {
    async fn run(self, state: &AppState, context: &RequestContext) -> Result<Response, ApiError> {
        let stream = self.organization.to_string();
        let mut retries = 0;
        let outcome = loop {
            let result = state
                .store()
                .execute::<Organization>(
                    context.tenant,
                    &stream,
                    self.command.clone(),
                    &(),
                    &self.metadata,
                    self.expected,
                )
                .await;
            match result {
                Err(ExecuteError::Conflict { .. })
                    if self.expected.is_none() && retries < CONFLICT_RETRIES =>
                {
                    retries += 1;
                }
                other => break other?,
            }
        };
        Ok(self.respond(outcome))
    }

    fn respond(&self, outcome: CommandOutcome) -> Response {
        let body = CommandAccepted {
            id: self.unit,
            organization_id: self.organization.as_uuid(),
            version: outcome.version.get(),
            position: outcome.last_position.map(|position| position.get()),
        };
        let status = if self.created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&etag(outcome.version)) {
            headers.insert(header::ETAG, value);
        }
        if outcome.repeated {
            headers.insert(
                HeaderName::from_static("idempotent-replayed"),
                HeaderValue::from_static("true"),
            );
        }
        response
    }
}

/// The id of a unit a command creates: derived from the idempotency key when there is one, so a
/// retry names the same unit; else fresh and time-ordered.
fn new_unit_id(metadata: &CommandMetadata) -> Uuid {
    if metadata.is_idempotent() {
        Uuid::new_v5(
            &KEYED_UNIT_NAMESPACE,
            metadata.command_id().as_uuid().as_bytes(),
        )
    } else {
        Uuid::now_v7()
    }
}

fn name_only(body: RenameUnit) -> Result<Name, ApiError> {
    let mut fields = Fields::default();
    let name = fields.take("name", Name::parse(&body.name));
    fields.finish(|| name)
}

/// Registers a company (role `admin`).
#[utoipa::path(
    post, path = "/v1/organizations", tag = "organizations",
    request_body = CreateOrganization,
    params(super::IdempotencyKeyHeader),
    responses((status = 201, description = "Created", body = CommandAccepted, headers(("ETag" = String))), CommandErrors),
    security(("bearer" = []))
)]
pub async fn create_organization(
    State(state): State<AppState>,
    context: RequestContext,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<CreateOrganization>,
) -> Result<Response, ApiError> {
    context
        .principal
        .require_any(ORGANIZATION_ROLES, "creating an organization")?;
    let mut fields = Fields::default();
    let name = fields.take("name", Name::parse(&body.name));
    let code = fields.take("code", Code::parse(&body.code));
    let bin = fields.take("bin", Bin::parse(&body.bin));
    let tin = fields.take("tin", Tin::parse(&body.tin));
    let base_currency = fields.take(
        "base_currency",
        body.base_currency
            .as_deref()
            .map_or(Ok(CurrencyCode::bdt()), CurrencyCode::parse),
    );
    let fiscal_year_start = fields.take(
        "fiscal_year_start",
        body.fiscal_year_start.as_deref().map_or(
            Ok(FiscalYearStart::default()),
            FiscalYearStart::parse_month_day,
        ),
    );
    let metadata = context.command_metadata(key.as_deref(), "create-organization");
    let organization = OrganizationId::from_uuid(new_unit_id(&metadata));
    let new = fields.finish(|| {
        Some(NewOrganization {
            organization_id: organization,
            name: name?,
            code: code?,
            bin: bin?,
            tin: tin?,
            base_currency: base_currency?,
            fiscal_year_start: fiscal_year_start?,
        })
    })?;
    let mut response = Issue {
        organization,
        unit: organization.as_uuid(),
        command: OrganizationCommand::CreateOrganization(new),
        metadata,
        expected: Some(Version::NONE),
        created: true,
    }
    .run(&state, &context)
    .await?;
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/organizations/{organization}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Renames an organization (role `admin`).
#[utoipa::path(
    patch, path = "/v1/organizations/{organization_id}", tag = "organizations",
    request_body = RenameUnit,
    params(("organization_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses((status = 200, description = "Renamed (or already so named)", body = CommandAccepted), CommandErrors),
    security(("bearer" = []))
)]
pub async fn rename_organization(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    IdempotencyKey(key): IdempotencyKey,
    IfMatch(expected): IfMatch,
    JsonBody(body): JsonBody<RenameUnit>,
) -> Result<Response, ApiError> {
    context
        .principal
        .require_any(ORGANIZATION_ROLES, "renaming an organization")?;
    let name = name_only(body)?;
    Issue {
        organization,
        unit: organization.as_uuid(),
        command: OrganizationCommand::RenameOrganization { name },
        metadata: context.command_metadata(key.as_deref(), "rename-organization"),
        expected,
        created: false,
    }
    .run(&state, &context)
    .await
}

/// Archives an organization whose divisions are all archived (role `admin`).
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/archive", tag = "organizations",
    params(("organization_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses((status = 200, description = "Archived (or already archived)", body = CommandAccepted), ArchiveErrors),
    security(("bearer" = []))
)]
pub async fn archive_organization(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    IdempotencyKey(key): IdempotencyKey,
    IfMatch(expected): IfMatch,
) -> Result<Response, ApiError> {
    context
        .principal
        .require_any(ORGANIZATION_ROLES, "archiving an organization")?;
    Issue {
        organization,
        unit: organization.as_uuid(),
        command: OrganizationCommand::ArchiveOrganization,
        metadata: context.command_metadata(key.as_deref(), "archive-organization"),
        expected,
        created: false,
    }
    .run(&state, &context)
    .await
}

/// Adds a division to an organization (role `admin` or `manager`).
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/divisions", tag = "divisions",
    request_body = CreateDivision,
    params(("organization_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses((status = 201, description = "Created", body = CommandAccepted), CommandErrors),
    security(("bearer" = []))
)]
pub async fn create_division(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    IdempotencyKey(key): IdempotencyKey,
    IfMatch(expected): IfMatch,
    JsonBody(body): JsonBody<CreateDivision>,
) -> Result<Response, ApiError> {
    context
        .principal
        .require_any(UNIT_ROLES, "creating a division")?;
    let mut fields = Fields::default();
    let name = fields.take("name", Name::parse(&body.name));
    let code = fields.take("code", Code::parse(&body.code));
    let (name, code) = fields.finish(|| Some((name?, code?)))?;
    let metadata = context.command_metadata(key.as_deref(), "create-division");
    let division_id = DivisionId::from_uuid(new_unit_id(&metadata));
    Issue {
        organization,
        unit: division_id.as_uuid(),
        command: OrganizationCommand::CreateDivision {
            division_id,
            name,
            code,
        },
        metadata,
        expected,
        created: true,
    }
    .run(&state, &context)
    .await
}

/// Renames a division (role `admin` or `manager`).
#[utoipa::path(
    patch, path = "/v1/organizations/{organization_id}/divisions/{division_id}", tag = "divisions",
    request_body = RenameUnit,
    params(("organization_id" = Uuid, Path), ("division_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses((status = 200, description = "Renamed (or already so named)", body = CommandAccepted), CommandErrors),
    security(("bearer" = []))
)]
pub async fn rename_division(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds((organization, division_id)): PathIds<(OrganizationId, DivisionId)>,
    IdempotencyKey(key): IdempotencyKey,
    IfMatch(expected): IfMatch,
    JsonBody(body): JsonBody<RenameUnit>,
) -> Result<Response, ApiError> {
    context
        .principal
        .require_any(UNIT_ROLES, "renaming a division")?;
    let name = name_only(body)?;
    Issue {
        organization,
        unit: division_id.as_uuid(),
        command: OrganizationCommand::RenameDivision { division_id, name },
        metadata: context.command_metadata(key.as_deref(), "rename-division"),
        expected,
        created: false,
    }
    .run(&state, &context)
    .await
}

/// Archives a division whose projects are all archived (role `admin` or `manager`).
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/divisions/{division_id}/archive", tag = "divisions",
    params(("organization_id" = Uuid, Path), ("division_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses((status = 200, description = "Archived (or already archived)", body = CommandAccepted), ArchiveErrors),
    security(("bearer" = []))
)]
pub async fn archive_division(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds((organization, division_id)): PathIds<(OrganizationId, DivisionId)>,
    IdempotencyKey(key): IdempotencyKey,
    IfMatch(expected): IfMatch,
) -> Result<Response, ApiError> {
    context
        .principal
        .require_any(UNIT_ROLES, "archiving a division")?;
    Issue {
        organization,
        unit: division_id.as_uuid(),
        command: OrganizationCommand::ArchiveDivision { division_id },
        metadata: context.command_metadata(key.as_deref(), "archive-division"),
        expected,
        created: false,
    }
    .run(&state, &context)
    .await
}

/// Adds a project to a division (role `admin` or `manager`).
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/projects", tag = "projects",
    request_body = CreateProject,
    params(("organization_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses((status = 201, description = "Created", body = CommandAccepted), CommandErrors),
    security(("bearer" = []))
)]
pub async fn create_project(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    IdempotencyKey(key): IdempotencyKey,
    IfMatch(expected): IfMatch,
    JsonBody(body): JsonBody<CreateProject>,
) -> Result<Response, ApiError> {
    context
        .principal
        .require_any(UNIT_ROLES, "creating a project")?;
    let mut fields = Fields::default();
    let name = fields.take("name", Name::parse(&body.name));
    let code = fields.take("code", Code::parse(&body.code));
    let (name, code) = fields.finish(|| Some((name?, code?)))?;
    let metadata = context.command_metadata(key.as_deref(), "create-project");
    let project_id = ProjectId::from_uuid(new_unit_id(&metadata));
    Issue {
        organization,
        unit: project_id.as_uuid(),
        command: OrganizationCommand::CreateProject {
            division_id: DivisionId::from_uuid(body.division_id),
            project_id,
            name,
            code,
        },
        metadata,
        expected,
        created: true,
    }
    .run(&state, &context)
    .await
}

/// Renames a project (role `admin` or `manager`).
#[utoipa::path(
    patch, path = "/v1/organizations/{organization_id}/projects/{project_id}", tag = "projects",
    request_body = RenameUnit,
    params(("organization_id" = Uuid, Path), ("project_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses((status = 200, description = "Renamed (or already so named)", body = CommandAccepted), CommandErrors),
    security(("bearer" = []))
)]
pub async fn rename_project(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds((organization, project_id)): PathIds<(OrganizationId, ProjectId)>,
    IdempotencyKey(key): IdempotencyKey,
    IfMatch(expected): IfMatch,
    JsonBody(body): JsonBody<RenameUnit>,
) -> Result<Response, ApiError> {
    context
        .principal
        .require_any(UNIT_ROLES, "renaming a project")?;
    let name = name_only(body)?;
    Issue {
        organization,
        unit: project_id.as_uuid(),
        command: OrganizationCommand::RenameProject { project_id, name },
        metadata: context.command_metadata(key.as_deref(), "rename-project"),
        expected,
        created: false,
    }
    .run(&state, &context)
    .await
}

/// Archives a project whose sites are all archived (role `admin` or `manager`).
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/projects/{project_id}/archive", tag = "projects",
    params(("organization_id" = Uuid, Path), ("project_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses((status = 200, description = "Archived (or already archived)", body = CommandAccepted), ArchiveErrors),
    security(("bearer" = []))
)]
pub async fn archive_project(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds((organization, project_id)): PathIds<(OrganizationId, ProjectId)>,
    IdempotencyKey(key): IdempotencyKey,
    IfMatch(expected): IfMatch,
) -> Result<Response, ApiError> {
    context
        .principal
        .require_any(UNIT_ROLES, "archiving a project")?;
    Issue {
        organization,
        unit: project_id.as_uuid(),
        command: OrganizationCommand::ArchiveProject { project_id },
        metadata: context.command_metadata(key.as_deref(), "archive-project"),
        expected,
        created: false,
    }
    .run(&state, &context)
    .await
}

/// Adds a site to a project (role `admin` or `manager`).
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/sites", tag = "sites",
    request_body = CreateSite,
    params(("organization_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses((status = 201, description = "Created", body = CommandAccepted), CommandErrors),
    security(("bearer" = []))
)]
pub async fn create_site(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    IdempotencyKey(key): IdempotencyKey,
    IfMatch(expected): IfMatch,
    JsonBody(body): JsonBody<CreateSite>,
) -> Result<Response, ApiError> {
    context
        .principal
        .require_any(UNIT_ROLES, "creating a site")?;
    let mut fields = Fields::default();
    let name = fields.take("name", Name::parse(&body.name));
    let code = fields.take("code", Code::parse(&body.code));
    let (name, code) = fields.finish(|| Some((name?, code?)))?;
    let metadata = context.command_metadata(key.as_deref(), "create-site");
    let site_id = SiteId::from_uuid(new_unit_id(&metadata));
    Issue {
        organization,
        unit: site_id.as_uuid(),
        command: OrganizationCommand::CreateSite {
            project_id: ProjectId::from_uuid(body.project_id),
            site_id,
            name,
            code,
        },
        metadata,
        expected,
        created: true,
    }
    .run(&state, &context)
    .await
}

/// Renames a site (role `admin` or `manager`).
#[utoipa::path(
    patch, path = "/v1/organizations/{organization_id}/sites/{site_id}", tag = "sites",
    request_body = RenameUnit,
    params(("organization_id" = Uuid, Path), ("site_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses((status = 200, description = "Renamed (or already so named)", body = CommandAccepted), CommandErrors),
    security(("bearer" = []))
)]
pub async fn rename_site(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds((organization, site_id)): PathIds<(OrganizationId, SiteId)>,
    IdempotencyKey(key): IdempotencyKey,
    IfMatch(expected): IfMatch,
    JsonBody(body): JsonBody<RenameUnit>,
) -> Result<Response, ApiError> {
    context
        .principal
        .require_any(UNIT_ROLES, "renaming a site")?;
    let name = name_only(body)?;
    Issue {
        organization,
        unit: site_id.as_uuid(),
        command: OrganizationCommand::RenameSite { site_id, name },
        metadata: context.command_metadata(key.as_deref(), "rename-site"),
        expected,
        created: false,
    }
    .run(&state, &context)
    .await
}

/// Archives a site (role `admin` or `manager`).
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/sites/{site_id}/archive", tag = "sites",
    params(("organization_id" = Uuid, Path), ("site_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses((status = 200, description = "Archived (or already archived)", body = CommandAccepted), ArchiveErrors),
    security(("bearer" = []))
)]
pub async fn archive_site(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds((organization, site_id)): PathIds<(OrganizationId, SiteId)>,
    IdempotencyKey(key): IdempotencyKey,
    IfMatch(expected): IfMatch,
) -> Result<Response, ApiError> {
    context
        .principal
        .require_any(UNIT_ROLES, "archiving a site")?;
    Issue {
        organization,
        unit: site_id.as_uuid(),
        command: OrganizationCommand::ArchiveSite { site_id },
        metadata: context.command_metadata(key.as_deref(), "archive-site"),
        expected,
        created: false,
    }
    .run(&state, &context)
    .await
}

/// Moves a site to another active project of the same organization (role `admin` or `manager`).
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/sites/{site_id}/move", tag = "sites",
    request_body = MoveSite,
    params(("organization_id" = Uuid, Path), ("site_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses((status = 200, description = "Moved", body = CommandAccepted), CommandErrors),
    security(("bearer" = []))
)]
pub async fn move_site(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds((organization, site_id)): PathIds<(OrganizationId, SiteId)>,
    IdempotencyKey(key): IdempotencyKey,
    IfMatch(expected): IfMatch,
    JsonBody(body): JsonBody<MoveSite>,
) -> Result<Response, ApiError> {
    context.principal.require_any(UNIT_ROLES, "moving a site")?;
    Issue {
        organization,
        unit: site_id.as_uuid(),
        command: OrganizationCommand::MoveSite {
            site_id,
            to_project_id: ProjectId::from_uuid(body.to_project_id),
        },
        metadata: context.command_metadata(key.as_deref(), "move-site"),
        expected,
        created: false,
    }
    .run(&state, &context)
    .await
}
