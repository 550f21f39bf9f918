//! The organization hierarchy as four relational tables: `org_organizations`, `org_divisions`,
//! `org_projects`, `org_sites` (`migrations/0005_projections.sql`). Each row carries its code,
//! name, parent ids, status, the path of codes from its organization down, the organization
//! stream's version after the last event that changed it, and who created and last changed it.
//!
//! `org_organizations.version` follows every event of the stream: it is the version a client
//! sends back as `If-Match` for any unit of that organization.
//!
//! Every row belongs to one organization stream, so all four are state rows ([`Table`]).

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use uuid::Uuid;
use vextrus_commands::RecordedEvent;
use vextrus_domain::organization::{Organization, OrganizationEvent};

use crate::columns::{Field, Fields, Row, RowReader, Sql};
use crate::projection::{Projection, ProjectionError};
use crate::table::Table;
use crate::{field_group, read_model, row};

/// Builds the organization hierarchy read model from `organization` events.
#[derive(Debug, Default, Clone, Copy)]
pub struct OrganizationHierarchy;

read_model! {
    /// The hierarchy rows a batch works on (for a replay: all of them).
    #[derive(Debug)]
    pub struct HierarchyRows {
        organizations: Table<OrganizationRow>,
        divisions: Table<DivisionRow>,
        projects: Table<ProjectRow>,
        sites: Table<SiteRow>,
    }
}

/// A unit's status, stored as `active` or `archived`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Archived,
}

impl Field for Status {
    const SQL: Sql = Sql::Text;
    fn write_field(&self, out: &mut impl Fields) {
        out.text(match self {
            Self::Active => "active",
            Self::Archived => "archived",
        });
    }
    fn read_field(row: &mut RowReader<'_>) -> Result<Self, sqlx::Error> {
        Ok(match row.text()?.as_str() {
            "archived" => Self::Archived,
            _ => Self::Active,
        })
    }
}

field_group! {
    /// Who changed a row last, and at which stream version.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Stamp {
        version: i64,
        created_at: DateTime<Utc>,
        created_by: String,
        updated_at: DateTime<Utc>,
        updated_by: String,
    }
}

impl Stamp {
    fn new(event: &RecordedEvent) -> Self {
        Self {
            version: event.sequence,
            created_at: event.recorded_at,
            created_by: event.actor.clone(),
            updated_at: event.recorded_at,
            updated_by: event.actor.clone(),
        }
    }

    fn touch(&mut self, event: &RecordedEvent) {
        self.version = event.sequence;
        self.updated_at = event.recorded_at;
        self.updated_by.clone_from(&event.actor);
    }
}

field_group! {
    /// What a division, project or site row holds besides its own parents.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Unit {
        organization_id: Uuid,
        code: String,
        name: String,
        status: Status,
        path: String,
        stamp: Stamp => flatten,
    }
}

impl Unit {
    /// A new, active unit created by `event` below a parent at `parent_path`.
    fn new(
        organization_id: Uuid,
        parent_path: &str,
        code: &str,
        name: &str,
        e: &RecordedEvent,
    ) -> Self {
        Self {
            organization_id,
            code: code.to_owned(),
            name: name.to_owned(),
            status: Status::Active,
            path: format!("{parent_path}/{code}"),
            stamp: Stamp::new(e),
        }
    }
}

row! {
    /// An organization.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OrganizationRow in "org_organizations" {
        key { organization_id: Uuid }
        code: String,
        name: String,
        bin: String,
        tin: String,
        base_currency: String,
        fiscal_year_start: String,
        status: Status,
        path: String,
        stamp: Stamp => flatten,
    }
}

row! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DivisionRow in "org_divisions" {
        key { division_id: Uuid }
        unit: Unit => flatten,
    }
}

row! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ProjectRow in "org_projects" {
        key { project_id: Uuid }
        division_id: Uuid,
        unit: Unit => flatten,
    }
}

row! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SiteRow in "org_sites" {
        key { site_id: Uuid }
        division_id: Uuid,
        project_id: Uuid,
        unit: Unit => flatten,
    }
}

/// A level below the organization: its rows' table in [`HierarchyRows`] and their [`Unit`].
trait Level: Row<Key = Uuid> {
    /// For messages: "division", "project", "site".
    const NAME: &'static str;
    fn table(rows: &mut HierarchyRows) -> &mut Table<Self>;
    fn unit(&mut self) -> &mut Unit;
}

macro_rules! level {
    ($row:ty, $name:literal, $table:ident) => {
        impl Level for $row {
            const NAME: &'static str = $name;
            fn table(rows: &mut HierarchyRows) -> &mut Table<Self> {
                &mut rows.$table
            }
            fn unit(&mut self) -> &mut Unit {
                &mut self.unit
            }
        }
    };
}

level!(DivisionRow, "division", divisions);
level!(ProjectRow, "project", projects);
level!(SiteRow, "site", sites);

fn organization_of(event: &RecordedEvent) -> Result<Uuid, ProjectionError> {
    event.aggregate_id.parse::<Uuid>().map_err(|_| {
        ProjectionError::Inconsistent(format!(
            "organization id {:?} is not a UUID",
            event.aggregate_id
        ))
    })
}

fn missing(what: &str) -> ProjectionError {
    ProjectionError::Inconsistent(format!("{what} is not in the read model"))
}

impl Projection for OrganizationHierarchy {
    const NAME: &'static str = "organization_hierarchy";
    const VERSION: i32 = 1;
    const AGGREGATE_TYPES: &'static [&'static str] = &[Organization::TYPE];

    type Rows = HierarchyRows;

    /// The event's organization, and the units it names.
    fn want(&self, rows: &mut HierarchyRows, event: &RecordedEvent) {
        let (Ok(organization), Ok(decoded)) =
            (organization_of(event), event.decode::<OrganizationEvent>())
        else {
            return;
        };
        let tenant = event.tenant_id.as_uuid();
        rows.organizations.want(tenant, &organization);
        use OrganizationEvent as E;
        match decoded {
            E::OrganizationCreated { .. }
            | E::OrganizationRenamed { .. }
            | E::OrganizationArchived { .. } => {}
            E::DivisionCreated { division_id, .. }
            | E::DivisionRenamed { division_id, .. }
            | E::DivisionArchived { division_id } => {
                rows.divisions.want(tenant, &division_id.as_uuid());
            }
            E::ProjectCreated {
                project_id,
                division_id,
                ..
            } => {
                rows.projects.want(tenant, &project_id.as_uuid());
                rows.divisions.want(tenant, &division_id.as_uuid());
            }
            E::ProjectRenamed { project_id, .. } | E::ProjectArchived { project_id } => {
                rows.projects.want(tenant, &project_id.as_uuid());
            }
            E::SiteCreated {
                site_id,
                project_id,
                ..
            }
            | E::SiteMoved {
                site_id,
                to_project_id: project_id,
                ..
            } => {
                rows.sites.want(tenant, &site_id.as_uuid());
                rows.projects.want(tenant, &project_id.as_uuid());
            }
            E::SiteRenamed { site_id, .. } | E::SiteArchived { site_id } => {
                rows.sites.want(tenant, &site_id.as_uuid());
            }
        }
    }

    fn apply(
        &self,
        rows: &mut HierarchyRows,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        let tenant = event.tenant_id.as_uuid();
        let organization = organization_of(event)?;
        use OrganizationEvent as E;
        let decoded = event.decode::<OrganizationEvent>()?;
        if let E::OrganizationCreated {
            organization_id,
            name,
            code,
            bin,
            tin,
            base_currency,
            fiscal_year_start,
        } = decoded
        {
            if organization_id.as_uuid() != organization {
                return Err(ProjectionError::Inconsistent(format!(
                    "organization {} created in the stream of {organization}",
                    organization_id.as_uuid()
                )));
            }
            if rows.organizations.get(tenant, &organization).is_some() {
                return Err(ProjectionError::Inconsistent(format!(
                    "organization {organization} is already in the read model"
                )));
            }
            rows.organizations.insert(
                tenant,
                organization,
                OrganizationRow {
                    code: code.as_str().to_owned(),
                    name: name.as_str().to_owned(),
                    bin: bin.to_string(),
                    tin: tin.digits().to_owned(),
                    base_currency: base_currency.as_str().to_owned(),
                    fiscal_year_start: fiscal_year_start.to_string(),
                    status: Status::Active,
                    path: code.as_str().to_owned(),
                    stamp: Stamp::new(event),
                },
            );
            return Ok(());
        }
        // Every other event changes a row of an existing organization, then moves the
        // organization's version (the If-Match of all its units). Everything is checked before
        // anything changes.
        let org = rows
            .organizations
            .get(tenant, &organization)
            .ok_or_else(|| missing("the organization"))?;
        // Renames and archivals of the organization stamp it as changed; every other event only
        // moves its version.
        let changes_organization = matches!(
            decoded,
            E::OrganizationRenamed { .. } | E::OrganizationArchived { .. }
        );
        match decoded {
            E::OrganizationCreated { .. } => {}
            E::OrganizationRenamed { name, .. } => {
                rows.organizations.change(tenant, &organization, |org| {
                    name.as_str().clone_into(&mut org.name);
                });
            }
            E::OrganizationArchived { .. } => {
                rows.organizations
                    .change(tenant, &organization, |org| org.status = Status::Archived);
            }
            E::DivisionCreated {
                division_id,
                name,
                code,
            } => {
                let unit = Unit::new(organization, &org.path, code.as_str(), name.as_str(), event);
                create_unit(rows, tenant, division_id.as_uuid(), DivisionRow { unit })?;
            }
            E::ProjectCreated {
                project_id,
                division_id,
                name,
                code,
            } => {
                let division = rows
                    .divisions
                    .get(tenant, &division_id.as_uuid())
                    .ok_or_else(|| missing("the project's division"))?;
                let parent = &division.unit;
                let unit = Unit::new(
                    parent.organization_id,
                    &parent.path,
                    code.as_str(),
                    name.as_str(),
                    event,
                );
                let division_id = division_id.as_uuid();
                create_unit(
                    rows,
                    tenant,
                    project_id.as_uuid(),
                    ProjectRow { division_id, unit },
                )?;
            }
            E::SiteCreated {
                site_id,
                project_id,
                name,
                code,
            } => {
                let project = rows
                    .projects
                    .get(tenant, &project_id.as_uuid())
                    .ok_or_else(|| missing("the site's project"))?;
                let parent = &project.unit;
                let unit = Unit::new(
                    parent.organization_id,
                    &parent.path,
                    code.as_str(),
                    name.as_str(),
                    event,
                );
                let (division_id, project_id) = (project.division_id, project_id.as_uuid());
                let site = SiteRow {
                    division_id,
                    project_id,
                    unit,
                };
                create_unit(rows, tenant, site_id.as_uuid(), site)?;
            }
            E::DivisionRenamed { division_id, name } => {
                rename::<DivisionRow>(rows, tenant, division_id.as_uuid(), name.as_str(), event)?;
            }
            E::ProjectRenamed { project_id, name } => {
                rename::<ProjectRow>(rows, tenant, project_id.as_uuid(), name.as_str(), event)?;
            }
            E::SiteRenamed { site_id, name } => {
                rename::<SiteRow>(rows, tenant, site_id.as_uuid(), name.as_str(), event)?;
            }
            E::DivisionArchived { division_id } => {
                archive::<DivisionRow>(rows, tenant, division_id.as_uuid(), event)?;
            }
            E::ProjectArchived { project_id } => {
                archive::<ProjectRow>(rows, tenant, project_id.as_uuid(), event)?;
            }
            E::SiteArchived { site_id } => {
                archive::<SiteRow>(rows, tenant, site_id.as_uuid(), event)?
            }
            E::SiteMoved {
                site_id,
                to_project_id,
                ..
            } => {
                let project = rows
                    .projects
                    .get(tenant, &to_project_id.as_uuid())
                    .cloned()
                    .ok_or_else(|| missing("the moved site's new project"))?;
                change_unit::<SiteRow>(rows, tenant, site_id.as_uuid(), event, |site| {
                    site.project_id = to_project_id.as_uuid();
                    site.division_id = project.division_id;
                    site.unit.path = format!("{}/{}", project.unit.path, site.unit.code);
                })?;
            }
        }
        rows.organizations.change(tenant, &organization, |org| {
            if changes_organization {
                org.stamp.touch(event);
            } else {
                org.stamp.version = event.sequence;
            }
        });
        Ok(())
    }
}

/// Adds a new division, project or site; refuses one that exists.
fn create_unit<L: Level>(
    rows: &mut HierarchyRows,
    tenant: Uuid,
    id: Uuid,
    row: L,
) -> Result<(), ProjectionError> {
    let table = L::table(rows);
    if table.get(tenant, &id).is_some() {
        return Err(ProjectionError::Inconsistent(format!(
            "{} {id} is already in the read model",
            L::NAME
        )));
    }
    table.insert(tenant, id, row);
    Ok(())
}

/// Changes an existing division, project or site and stamps it with `event`.
fn change_unit<L: Level>(
    rows: &mut HierarchyRows,
    tenant: Uuid,
    id: Uuid,
    event: &RecordedEvent,
    change: impl FnOnce(&mut L),
) -> Result<(), ProjectionError> {
    L::table(rows)
        .change(tenant, &id, |row| {
            change(row);
            row.unit().stamp.touch(event);
        })
        .ok_or_else(|| missing(&format!("{} {id}", L::NAME)))
}

fn rename<L: Level>(
    rows: &mut HierarchyRows,
    tenant: Uuid,
    id: Uuid,
    name: &str,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    change_unit::<L>(rows, tenant, id, event, |row| {
        name.clone_into(&mut row.unit().name);
    })
}

fn archive<L: Level>(
    rows: &mut HierarchyRows,
    tenant: Uuid,
    id: Uuid,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    change_unit::<L>(rows, tenant, id, event, |row| {
        row.unit().status = Status::Archived;
    })
}
