//! The organization hierarchy as four relational tables: `org_organizations`, `org_divisions`,
//! `org_projects`, `org_sites` (`migrations/0005_projections.sql`). Each row carries its code,
//! name, parent ids, status, the path of codes from its organization down, the organization
//! stream's version after the last event that changed it, and who created and last changed it.
//!
//! `org_organizations.version` follows every event of the stream: it is the version a client
//! sends back as `If-Match` for any unit of that organization.
//!
//! Every row belongs to one organization stream, so all four are state rows ([`Table`]).

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use uuid::Uuid;
use vextrus_commands::RecordedEvent;
use vextrus_domain::organization::{Organization, OrganizationEvent};

use crate::columns::{Column, Fields, Row, RowReader, Sql, col};
use crate::projection::{Projection, ProjectionError};
use crate::read_model;
use crate::table::Table;

/// Builds the organization hierarchy read model from `organization` events.
#[derive(Debug, Default, Clone, Copy)]
pub struct OrganizationHierarchy;

read_model! {
    /// The hierarchy rows a batch works on (for a replay: all of them).
    #[derive(Debug)]
    pub struct HierarchyRows {
        organizations: Table<OrganizationRow>,
        divisions: Table<UnitRow<Division>>,
        projects: Table<UnitRow<Project>>,
        sites: Table<UnitRow<Site>>,
    }
}

impl HierarchyRows {
    /// How many rows it holds.
    pub fn len(&self) -> usize {
        self.organizations.len() + self.divisions.len() + self.projects.len() + self.sites.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Active,
    Archived,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Archived => "archived",
        }
    }

    fn parse(text: &str) -> Self {
        if text == "archived" {
            Self::Archived
        } else {
            Self::Active
        }
    }
}

/// Who changed a row last, and at which stream version.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    version: i64,
    created_at: DateTime<Utc>,
    created_by: String,
    updated_at: DateTime<Utc>,
    updated_by: String,
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

    fn write(&self, out: &mut impl Fields) {
        out.int8(self.version);
        out.timestamptz(self.created_at);
        out.text(&self.created_by);
        out.timestamptz(self.updated_at);
        out.text(&self.updated_by);
    }

    fn read(row: &mut RowReader<'_>) -> Result<Self, sqlx::Error> {
        Ok(Self {
            version: row.int8()?,
            created_at: row.timestamptz()?,
            created_by: row.text()?,
            updated_at: row.timestamptz()?,
            updated_by: row.text()?,
        })
    }
}

/// An organization: `org_organizations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationRow {
    code: String,
    name: String,
    bin: String,
    tin: String,
    base_currency: String,
    fiscal_year_start: String,
    status: Status,
    path: String,
    stamp: Stamp,
}

impl Row for OrganizationRow {
    type Key = Uuid;
    const TABLE: &'static str = "org_organizations";
    const KEY: &'static [Column] = &[col("organization_id", Sql::Uuid)];
    const COLUMNS: &'static [Column] = &[
        col("code", Sql::Text),
        col("name", Sql::Text),
        col("bin", Sql::Text),
        col("tin", Sql::Text),
        col("base_currency", Sql::Text),
        col("fiscal_year_start", Sql::Text),
        col("status", Sql::Text),
        col("path", Sql::Text),
        col("version", Sql::Int8),
        col("created_at", Sql::Timestamptz),
        col("created_by", Sql::Text),
        col("updated_at", Sql::Timestamptz),
        col("updated_by", Sql::Text),
    ];

    fn write_key(key: &Uuid, out: &mut impl Fields) {
        out.uuid(*key);
    }

    fn write(&self, out: &mut impl Fields) {
        out.text(&self.code);
        out.text(&self.name);
        out.text(&self.bin);
        out.text(&self.tin);
        out.text(&self.base_currency);
        out.text(&self.fiscal_year_start);
        out.text(self.status.as_str());
        out.text(&self.path);
        self.stamp.write(out);
    }

    fn read(row: &mut RowReader<'_>) -> Result<(Uuid, Self), sqlx::Error> {
        Ok((
            row.uuid()?,
            Self {
                code: row.text()?,
                name: row.text()?,
                bin: row.text()?,
                tin: row.text()?,
                base_currency: row.text()?,
                fiscal_year_start: row.text()?,
                status: Status::parse(&row.text()?),
                path: row.text()?,
                stamp: Stamp::read(row)?,
            },
        ))
    }
}

/// A level below the organization: which table, and which parent ids its rows have.
pub trait Level: Send + Sync + 'static {
    /// For messages: "division", "project", "site".
    const NAME: &'static str;
    const TABLE: &'static str;
    const KEY: &'static [Column];
    const COLUMNS: &'static [Column];
    const HAS_DIVISION: bool;
    const HAS_PROJECT: bool;
    fn table(rows: &mut HierarchyRows) -> &mut Table<UnitRow<Self>>
    where
        Self: Sized;
}

/// The columns every level has after its parent ids.
macro_rules! unit_columns {
    ($($parent:literal),*) => {
        &[
            col("organization_id", Sql::Uuid),
            $(col($parent, Sql::Uuid),)*
            col("code", Sql::Text),
            col("name", Sql::Text),
            col("status", Sql::Text),
            col("path", Sql::Text),
            col("version", Sql::Int8),
            col("created_at", Sql::Timestamptz),
            col("created_by", Sql::Text),
            col("updated_at", Sql::Timestamptz),
            col("updated_by", Sql::Text),
        ]
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Division;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Project;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site;

impl Level for Division {
    const NAME: &'static str = "division";
    const TABLE: &'static str = "org_divisions";
    const KEY: &'static [Column] = &[col("division_id", Sql::Uuid)];
    const COLUMNS: &'static [Column] = unit_columns!();
    const HAS_DIVISION: bool = false;
    const HAS_PROJECT: bool = false;
    fn table(rows: &mut HierarchyRows) -> &mut Table<UnitRow<Self>> {
        &mut rows.divisions
    }
}

impl Level for Project {
    const NAME: &'static str = "project";
    const TABLE: &'static str = "org_projects";
    const KEY: &'static [Column] = &[col("project_id", Sql::Uuid)];
    const COLUMNS: &'static [Column] = unit_columns!("division_id");
    const HAS_DIVISION: bool = true;
    const HAS_PROJECT: bool = false;
    fn table(rows: &mut HierarchyRows) -> &mut Table<UnitRow<Self>> {
        &mut rows.projects
    }
}

impl Level for Site {
    const NAME: &'static str = "site";
    const TABLE: &'static str = "org_sites";
    const KEY: &'static [Column] = &[col("site_id", Sql::Uuid)];
    const COLUMNS: &'static [Column] = unit_columns!("division_id", "project_id");
    const HAS_DIVISION: bool = true;
    const HAS_PROJECT: bool = true;
    fn table(rows: &mut HierarchyRows) -> &mut Table<UnitRow<Self>> {
        &mut rows.sites
    }
}

/// A division, project or site; the parents a level does not have are nil.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRow<L> {
    organization_id: Uuid,
    division_id: Uuid,
    project_id: Uuid,
    code: String,
    name: String,
    status: Status,
    path: String,
    stamp: Stamp,
    level: PhantomData<L>,
}

impl<L: Level> UnitRow<L> {
    /// A new, active unit created by `event` below a parent at `parent_path`; `parents` are the
    /// organization, division and project ids (nil where the level has none).
    fn new(
        (organization_id, division_id, project_id): (Uuid, Uuid, Uuid),
        parent_path: &str,
        code: &str,
        name: &str,
        event: &RecordedEvent,
    ) -> Self {
        Self {
            organization_id,
            division_id,
            project_id,
            code: code.to_owned(),
            name: name.to_owned(),
            status: Status::Active,
            path: format!("{parent_path}/{code}"),
            stamp: Stamp::new(event),
            level: PhantomData,
        }
    }
}

impl<L: Level> Row for UnitRow<L> {
    type Key = Uuid;
    const TABLE: &'static str = L::TABLE;
    const KEY: &'static [Column] = L::KEY;
    const COLUMNS: &'static [Column] = L::COLUMNS;

    fn write_key(key: &Uuid, out: &mut impl Fields) {
        out.uuid(*key);
    }

    fn write(&self, out: &mut impl Fields) {
        out.uuid(self.organization_id);
        if L::HAS_DIVISION {
            out.uuid(self.division_id);
        }
        if L::HAS_PROJECT {
            out.uuid(self.project_id);
        }
        out.text(&self.code);
        out.text(&self.name);
        out.text(self.status.as_str());
        out.text(&self.path);
        self.stamp.write(out);
    }

    fn read(row: &mut RowReader<'_>) -> Result<(Uuid, Self), sqlx::Error> {
        let id = row.uuid()?;
        let organization_id = row.uuid()?;
        let division_id = if L::HAS_DIVISION {
            row.uuid()?
        } else {
            Uuid::nil()
        };
        let project_id = if L::HAS_PROJECT {
            row.uuid()?
        } else {
            Uuid::nil()
        };
        Ok((
            id,
            Self {
                organization_id,
                division_id,
                project_id,
                code: row.text()?,
                name: row.text()?,
                status: Status::parse(&row.text()?),
                path: row.text()?,
                stamp: Stamp::read(row)?,
                level: PhantomData,
            },
        ))
    }
}

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
                let parents = (organization, Uuid::nil(), Uuid::nil());
                let child = UnitRow::new(parents, &org.path, code.as_str(), name.as_str(), event);
                create_unit::<Division>(rows, tenant, division_id.as_uuid(), child)?;
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
                let parents = (division.organization_id, division_id.as_uuid(), Uuid::nil());
                let child =
                    UnitRow::new(parents, &division.path, code.as_str(), name.as_str(), event);
                create_unit::<Project>(rows, tenant, project_id.as_uuid(), child)?;
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
                let parents = (
                    project.organization_id,
                    project.division_id,
                    project_id.as_uuid(),
                );
                let child =
                    UnitRow::new(parents, &project.path, code.as_str(), name.as_str(), event);
                create_unit::<Site>(rows, tenant, site_id.as_uuid(), child)?;
            }
            E::DivisionRenamed { division_id, name } => {
                change_unit::<Division>(rows, tenant, division_id.as_uuid(), event, |row| {
                    name.as_str().clone_into(&mut row.name)
                })?;
            }
            E::ProjectRenamed { project_id, name } => {
                change_unit::<Project>(rows, tenant, project_id.as_uuid(), event, |row| {
                    name.as_str().clone_into(&mut row.name)
                })?;
            }
            E::SiteRenamed { site_id, name } => {
                change_unit::<Site>(rows, tenant, site_id.as_uuid(), event, |row| {
                    name.as_str().clone_into(&mut row.name)
                })?;
            }
            E::DivisionArchived { division_id } => {
                change_unit::<Division>(rows, tenant, division_id.as_uuid(), event, |row| {
                    row.status = Status::Archived
                })?;
            }
            E::ProjectArchived { project_id } => {
                change_unit::<Project>(rows, tenant, project_id.as_uuid(), event, |row| {
                    row.status = Status::Archived
                })?;
            }
            E::SiteArchived { site_id } => {
                change_unit::<Site>(rows, tenant, site_id.as_uuid(), event, |row| {
                    row.status = Status::Archived
                })?;
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
                change_unit::<Site>(rows, tenant, site_id.as_uuid(), event, |row| {
                    row.project_id = to_project_id.as_uuid();
                    row.division_id = project.division_id;
                    row.path = format!("{}/{}", project.path, row.code);
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
    row: UnitRow<L>,
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
    change: impl FnOnce(&mut UnitRow<L>),
) -> Result<(), ProjectionError> {
    L::table(rows)
        .change(tenant, &id, |row| {
            change(row);
            row.stamp.touch(event);
        })
        .ok_or_else(|| missing(&format!("{} {id}", L::NAME)))
}
