//! Command routes of the hierarchy: create, rename, archive, move. Each checks the caller's
//! role, parses its input into domain values (every bad field reported at once), issues one
//! `OrganizationCommand` on the organization's stream and answers with the new version (also as
//! `ETag`) and the log position of the last event (design.md D9), all through the command kit
//! ([`crate::command`]).

use uuid::Uuid;
use vextrus_domain::ids::{DivisionId, OrganizationId, ProjectId, SiteId};
use vextrus_domain::organization::{NewOrganization, Organization, OrganizationCommand};
use vextrus_domain::values::{Bin, Code, CurrencyCode, FiscalYearStart, Name, Tin};

use super::queries::{
    __path_get_division, __path_get_organization, __path_get_project, __path_get_site,
};
use super::views::{
    CreateDivision, CreateOrganization, CreateProject, CreateSite, MoveSite, RenameUnit,
};
use super::{ArchiveErrors, CommandErrors};
use crate::auth::Permission;
use crate::command::{Accepted, Command, CommandAccepted, Created, Fields, location};
use crate::error::ApiError;
use crate::extract::{JsonBody, PathIds};

fn name_only(body: RenameUnit) -> Result<Name, ApiError> {
    let mut fields = Fields::default();
    let name = fields.take("name", Name::parse(&body.name));
    fields.finish(|| name)
}

fn name_and_code(name: &str, code: &str) -> Result<(Name, Code), ApiError> {
    let mut fields = Fields::default();
    let name = fields.take("name", Name::parse(name));
    let code = fields.take("code", Code::parse(code));
    fields.finish(|| Some((name?, code?)))
}

/// Where a unit of `organization` is read: the path of its GET `route`, naming it.
fn unit_location<R: utoipa::Path>(
    route: R,
    organization: OrganizationId,
    unit: impl Into<Uuid>,
) -> String {
    location(route, &[organization.into(), unit.into()])
}

impl CreateOrganization {
    /// The command creating `organization_id`, or 422 naming every bad field.
    fn into_command(
        self,
        organization_id: OrganizationId,
    ) -> Result<OrganizationCommand, ApiError> {
        let mut fields = Fields::default();
        let name = fields.take("name", Name::parse(&self.name));
        let code = fields.take("code", Code::parse(&self.code));
        let bin = fields.take("bin", Bin::parse(&self.bin));
        let tin = fields.take("tin", Tin::parse(&self.tin));
        let base_currency = fields.take(
            "base_currency",
            self.base_currency
                .as_deref()
                .map_or(Ok(CurrencyCode::bdt()), CurrencyCode::parse),
        );
        let fiscal_year_start = fields.take(
            "fiscal_year_start",
            self.fiscal_year_start.as_deref().map_or(
                Ok(FiscalYearStart::default()),
                FiscalYearStart::parse_month_day,
            ),
        );
        let new = fields.finish(|| {
            Some(NewOrganization {
                organization_id,
                name: name?,
                code: code?,
                bin: bin?,
                tin: tin?,
                base_currency: base_currency?,
                fiscal_year_start: fiscal_year_start?,
            })
        })?;
        Ok(OrganizationCommand::CreateOrganization(new))
    }
}

impl CreateDivision {
    /// The command creating `division_id`, or 422 naming every bad field.
    fn into_command(self, division_id: DivisionId) -> Result<OrganizationCommand, ApiError> {
        let (name, code) = name_and_code(&self.name, &self.code)?;
        Ok(OrganizationCommand::CreateDivision {
            division_id,
            name,
            code,
        })
    }
}

impl CreateProject {
    /// The command creating `project_id`, or 422 naming every bad field.
    fn into_command(self, project_id: ProjectId) -> Result<OrganizationCommand, ApiError> {
        let (name, code) = name_and_code(&self.name, &self.code)?;
        Ok(OrganizationCommand::CreateProject {
            division_id: DivisionId::from_uuid(self.division_id),
            project_id,
            name,
            code,
        })
    }
}

impl CreateSite {
    /// The command creating `site_id`, or 422 naming every bad field.
    fn into_command(self, site_id: SiteId) -> Result<OrganizationCommand, ApiError> {
        let (name, code) = name_and_code(&self.name, &self.code)?;
        Ok(OrganizationCommand::CreateSite {
            project_id: ProjectId::from_uuid(self.project_id),
            site_id,
            name,
            code,
        })
    }
}

/// Registers a company (role `admin`).
#[utoipa::path(
    post, path = "/v1/organizations", tag = "organizations",
    request_body = CreateOrganization,
    params(super::IdempotencyKeyHeader),
    responses(Created, CommandErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-organizations"))),
)]
pub async fn create_organization(
    cmd: Command,
    JsonBody(body): JsonBody<CreateOrganization>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageOrganizations, "creating an organization")?;
    let issue = cmd.named("create-organization").on_new_stream();
    let organization = OrganizationId::from_uuid(issue.new_id());
    let command = body.into_command(organization)?;
    let outcome = issue.run::<Organization>(organization, command).await?;
    let at = location(__path_get_organization, &[organization.into()]);
    Ok(Accepted::created(outcome, organization, organization, at))
}

/// Renames an organization (role `admin`).
#[utoipa::path(
    patch, path = "/v1/organizations/{organization_id}", tag = "organizations",
    request_body = RenameUnit,
    params(("organization_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses((status = 200, description = "Renamed (or already so named)", body = CommandAccepted), CommandErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-organizations"))),
)]
pub async fn rename_organization(
    cmd: Command,
    PathIds(organization): PathIds<OrganizationId>,
    JsonBody(body): JsonBody<RenameUnit>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageOrganizations, "renaming an organization")?;
    let command = OrganizationCommand::RenameOrganization {
        name: name_only(body)?,
    };
    let issue = cmd.named("rename-organization");
    let outcome = issue.run::<Organization>(organization, command).await?;
    Ok(Accepted::changed(outcome, organization, organization))
}

/// Archives an organization whose divisions are all archived (role `admin`).
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/archive", tag = "organizations",
    params(("organization_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses((status = 200, description = "Archived (or already archived)", body = CommandAccepted), ArchiveErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-organizations"))),
)]
pub async fn archive_organization(
    cmd: Command,
    PathIds(organization): PathIds<OrganizationId>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageOrganizations, "archiving an organization")?;
    let command = OrganizationCommand::ArchiveOrganization;
    let issue = cmd.named("archive-organization");
    let outcome = issue.run::<Organization>(organization, command).await?;
    Ok(Accepted::changed(outcome, organization, organization))
}

/// Adds a division to an organization (role `admin` or `manager`).
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/divisions", tag = "divisions",
    request_body = CreateDivision,
    params(("organization_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses(Created, CommandErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-units"))),
)]
pub async fn create_division(
    cmd: Command,
    PathIds(organization): PathIds<OrganizationId>,
    JsonBody(body): JsonBody<CreateDivision>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageUnits, "creating a division")?;
    let issue = cmd.named("create-division");
    let division_id = DivisionId::from_uuid(issue.new_id());
    let command = body.into_command(division_id)?;
    let outcome = issue.run::<Organization>(organization, command).await?;
    let at = unit_location(__path_get_division, organization, division_id);
    Ok(Accepted::created(outcome, division_id, organization, at))
}

/// Renames a division (role `admin` or `manager`).
#[utoipa::path(
    patch, path = "/v1/organizations/{organization_id}/divisions/{division_id}", tag = "divisions",
    request_body = RenameUnit,
    params(("organization_id" = Uuid, Path), ("division_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses((status = 200, description = "Renamed (or already so named)", body = CommandAccepted), CommandErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-units"))),
)]
pub async fn rename_division(
    cmd: Command,
    PathIds((organization, division_id)): PathIds<(OrganizationId, DivisionId)>,
    JsonBody(body): JsonBody<RenameUnit>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageUnits, "renaming a division")?;
    let name = name_only(body)?;
    let command = OrganizationCommand::RenameDivision { division_id, name };
    let issue = cmd.named("rename-division");
    let outcome = issue.run::<Organization>(organization, command).await?;
    Ok(Accepted::changed(outcome, division_id, organization))
}

/// Archives a division whose projects are all archived (role `admin` or `manager`).
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/divisions/{division_id}/archive", tag = "divisions",
    params(("organization_id" = Uuid, Path), ("division_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses((status = 200, description = "Archived (or already archived)", body = CommandAccepted), ArchiveErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-units"))),
)]
pub async fn archive_division(
    cmd: Command,
    PathIds((organization, division_id)): PathIds<(OrganizationId, DivisionId)>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageUnits, "archiving a division")?;
    let command = OrganizationCommand::ArchiveDivision { division_id };
    let issue = cmd.named("archive-division");
    let outcome = issue.run::<Organization>(organization, command).await?;
    Ok(Accepted::changed(outcome, division_id, organization))
}

/// Adds a project to a division (role `admin` or `manager`).
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/projects", tag = "projects",
    request_body = CreateProject,
    params(("organization_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses(Created, CommandErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-units"))),
)]
pub async fn create_project(
    cmd: Command,
    PathIds(organization): PathIds<OrganizationId>,
    JsonBody(body): JsonBody<CreateProject>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageUnits, "creating a project")?;
    let issue = cmd.named("create-project");
    let project_id = ProjectId::from_uuid(issue.new_id());
    let command = body.into_command(project_id)?;
    let outcome = issue.run::<Organization>(organization, command).await?;
    let at = unit_location(__path_get_project, organization, project_id);
    Ok(Accepted::created(outcome, project_id, organization, at))
}

/// Renames a project (role `admin` or `manager`).
#[utoipa::path(
    patch, path = "/v1/organizations/{organization_id}/projects/{project_id}", tag = "projects",
    request_body = RenameUnit,
    params(("organization_id" = Uuid, Path), ("project_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses((status = 200, description = "Renamed (or already so named)", body = CommandAccepted), CommandErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-units"))),
)]
pub async fn rename_project(
    cmd: Command,
    PathIds((organization, project_id)): PathIds<(OrganizationId, ProjectId)>,
    JsonBody(body): JsonBody<RenameUnit>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageUnits, "renaming a project")?;
    let name = name_only(body)?;
    let command = OrganizationCommand::RenameProject { project_id, name };
    let issue = cmd.named("rename-project");
    let outcome = issue.run::<Organization>(organization, command).await?;
    Ok(Accepted::changed(outcome, project_id, organization))
}

/// Archives a project whose sites are all archived (role `admin` or `manager`).
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/projects/{project_id}/archive", tag = "projects",
    params(("organization_id" = Uuid, Path), ("project_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses((status = 200, description = "Archived (or already archived)", body = CommandAccepted), ArchiveErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-units"))),
)]
pub async fn archive_project(
    cmd: Command,
    PathIds((organization, project_id)): PathIds<(OrganizationId, ProjectId)>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageUnits, "archiving a project")?;
    let command = OrganizationCommand::ArchiveProject { project_id };
    let issue = cmd.named("archive-project");
    let outcome = issue.run::<Organization>(organization, command).await?;
    Ok(Accepted::changed(outcome, project_id, organization))
}

/// Adds a site to a project (role `admin` or `manager`).
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/sites", tag = "sites",
    request_body = CreateSite,
    params(("organization_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses(Created, CommandErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-units"))),
)]
pub async fn create_site(
    cmd: Command,
    PathIds(organization): PathIds<OrganizationId>,
    JsonBody(body): JsonBody<CreateSite>,
) -> Result<Accepted, ApiError> {
    cmd.require_in_project(
        Permission::ManageUnits,
        ProjectId::from_uuid(body.project_id),
        "creating a site",
    )?;
    let issue = cmd.named("create-site");
    let site_id = SiteId::from_uuid(issue.new_id());
    let command = body.into_command(site_id)?;
    let outcome = issue.run::<Organization>(organization, command).await?;
    let at = unit_location(__path_get_site, organization, site_id);
    Ok(Accepted::created(outcome, site_id, organization, at))
}

/// Renames a site (role `admin` or `manager`).
#[utoipa::path(
    patch, path = "/v1/organizations/{organization_id}/sites/{site_id}", tag = "sites",
    request_body = RenameUnit,
    params(("organization_id" = Uuid, Path), ("site_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses((status = 200, description = "Renamed (or already so named)", body = CommandAccepted), CommandErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-units"))),
)]
pub async fn rename_site(
    cmd: Command,
    PathIds((organization, site_id)): PathIds<(OrganizationId, SiteId)>,
    JsonBody(body): JsonBody<RenameUnit>,
) -> Result<Accepted, ApiError> {
    cmd.require_for_site(Permission::ManageUnits, site_id, "renaming a site")
        .await?;
    let name = name_only(body)?;
    let command = OrganizationCommand::RenameSite { site_id, name };
    let issue = cmd.named("rename-site");
    let outcome = issue.run::<Organization>(organization, command).await?;
    Ok(Accepted::changed(outcome, site_id, organization))
}

/// Archives a site (role `admin` or `manager`).
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/sites/{site_id}/archive", tag = "sites",
    params(("organization_id" = Uuid, Path), ("site_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses((status = 200, description = "Archived (or already archived)", body = CommandAccepted), ArchiveErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-units"))),
)]
pub async fn archive_site(
    cmd: Command,
    PathIds((organization, site_id)): PathIds<(OrganizationId, SiteId)>,
) -> Result<Accepted, ApiError> {
    cmd.require_for_site(Permission::ManageUnits, site_id, "archiving a site")
        .await?;
    let command = OrganizationCommand::ArchiveSite { site_id };
    let issue = cmd.named("archive-site");
    let outcome = issue.run::<Organization>(organization, command).await?;
    Ok(Accepted::changed(outcome, site_id, organization))
}

/// Moves a site to another active project of the same organization (role `admin` or `manager`).
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/sites/{site_id}/move", tag = "sites",
    request_body = MoveSite,
    params(("organization_id" = Uuid, Path), ("site_id" = Uuid, Path), super::IdempotencyKeyHeader, super::IfMatchHeader),
    responses((status = 200, description = "Moved", body = CommandAccepted), CommandErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-units"))),
)]
pub async fn move_site(
    cmd: Command,
    PathIds((organization, site_id)): PathIds<(OrganizationId, SiteId)>,
    JsonBody(body): JsonBody<MoveSite>,
) -> Result<Accepted, ApiError> {
    cmd.require_for_site(Permission::ManageUnits, site_id, "moving a site")
        .await?;
    let to_project_id = ProjectId::from_uuid(body.to_project_id);
    cmd.require_in_project(
        Permission::ManageUnits,
        to_project_id,
        "moving a site to a project",
    )?;
    let command = OrganizationCommand::MoveSite {
        site_id,
        to_project_id,
    };
    let issue = cmd.named("move-site");
    let outcome = issue.run::<Organization>(organization, command).await?;
    Ok(Accepted::changed(outcome, site_id, organization))
}
