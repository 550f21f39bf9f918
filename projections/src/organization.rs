//! The organization hierarchy as four relational tables: `org_organizations`, `org_divisions`,
//! `org_projects`, `org_sites` (`migrations/0005_projections.sql`). Each row carries its code,
//! name, parent ids, status, the path of codes from its organization down, the organization
//! stream's version after the last event that changed it, and who created and last changed it.
//!
//! `org_organizations.version` follows every event of the stream: it is the version a client
//! sends back as `If-Match` for any unit of that organization.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use sqlx::PgConnection;
use uuid::Uuid;
use vextrus_commands::RecordedEvent;
use vextrus_domain::organization::{Organization, OrganizationEvent};

use crate::projection::{Projection, ProjectionError};

/// Builds the organization hierarchy read model from `organization` events.
#[derive(Debug, Default, Clone, Copy)]
pub struct OrganizationHierarchy;

/// A level below the organization.
#[derive(Debug, Clone, Copy)]
enum Unit {
    Division,
    Project,
    Site,
}

impl Unit {
    fn table(self) -> &'static str {
        match self {
            Self::Division => "org_divisions",
            Self::Project => "org_projects",
            Self::Site => "org_sites",
        }
    }

    fn id_column(self) -> &'static str {
        match self {
            Self::Division => "division_id",
            Self::Project => "project_id",
            Self::Site => "site_id",
        }
    }
}

/// What every change records: whose row, the stream version, and who changed it when.
struct Change<'a> {
    tenant: Uuid,
    organization: Uuid,
    version: i64,
    at: DateTime<Utc>,
    by: &'a str,
}

impl Projection for OrganizationHierarchy {
    const NAME: &'static str = "organization_hierarchy";
    const VERSION: i32 = 1;
    const TABLES: &'static [&'static str] = &[
        "org_organizations",
        "org_divisions",
        "org_projects",
        "org_sites",
    ];
    const AGGREGATE_TYPES: &'static [&'static str] = &[Organization::TYPE];

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        let organization = event.aggregate_id.parse::<Uuid>().map_err(|_| {
            ProjectionError::Inconsistent(format!(
                "organization id {:?} is not a UUID",
                event.aggregate_id
            ))
        })?;
        let change = Change {
            tenant: event.tenant_id.as_uuid(),
            organization,
            version: event.sequence,
            at: event.recorded_at,
            by: &event.actor,
        };
        use OrganizationEvent as E;
        match event.decode::<OrganizationEvent>()? {
            E::OrganizationCreated {
                organization_id,
                name,
                code,
                bin,
                tin,
                base_currency,
                fiscal_year_start,
            } => {
                sqlx::query(
                    "insert into org_organizations (tenant_id, organization_id, code, name, bin, tin, base_currency,
                         fiscal_year_start, status, path, version, created_at, created_by, updated_at, updated_by)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $3, $9, $10, $11, $10, $11)",
                )
                .bind(change.tenant)
                .bind(organization_id.as_uuid())
                .bind(code.as_str())
                .bind(name.as_str())
                .bind(bin.to_string())
                .bind(tin.digits())
                .bind(base_currency.as_str())
                .bind(fiscal_year_start.to_string())
                .bind(change.version)
                .bind(change.at)
                .bind(change.by)
                .execute(&mut *conn)
                .await?;
            }
            E::OrganizationRenamed { name, .. } => {
                update_organization(conn, &change, "name = $6", Some(name.as_str())).await?;
            }
            E::OrganizationArchived { .. } => {
                update_organization(conn, &change, "status = 'archived'", None).await?;
            }
            E::DivisionCreated {
                division_id,
                name,
                code,
            } => {
                let child = NewChild {
                    parent: change.organization,
                    id: division_id.as_uuid(),
                    code: code.as_str(),
                    name: name.as_str(),
                };
                insert_child(
                    conn,
                    &change,
                    &child,
                    "insert into org_divisions (tenant_id, division_id, organization_id, code, name, status, path,
                         version, created_at, created_by, updated_at, updated_by)
                     select o.tenant_id, $3, o.organization_id, $4, $5, 'active', o.path || '/' || $4, $6, $7, $8, $7, $8
                     from org_organizations o where o.tenant_id = $1 and o.organization_id = $2",
                    "the division's organization",
                )
                .await?;
            }
            E::ProjectCreated {
                project_id,
                division_id,
                name,
                code,
            } => {
                let child = NewChild {
                    parent: division_id.as_uuid(),
                    id: project_id.as_uuid(),
                    code: code.as_str(),
                    name: name.as_str(),
                };
                insert_child(
                    conn,
                    &change,
                    &child,
                    "insert into org_projects (tenant_id, project_id, division_id, organization_id, code, name, status,
                         path, version, created_at, created_by, updated_at, updated_by)
                     select d.tenant_id, $3, d.division_id, d.organization_id, $4, $5, 'active', d.path || '/' || $4,
                            $6, $7, $8, $7, $8
                     from org_divisions d where d.tenant_id = $1 and d.division_id = $2",
                    "the project's division",
                )
                .await?;
            }
            E::SiteCreated {
                site_id,
                project_id,
                name,
                code,
            } => {
                let child = NewChild {
                    parent: project_id.as_uuid(),
                    id: site_id.as_uuid(),
                    code: code.as_str(),
                    name: name.as_str(),
                };
                insert_child(
                    conn,
                    &change,
                    &child,
                    "insert into org_sites (tenant_id, site_id, project_id, division_id, organization_id, code, name,
                         status, path, version, created_at, created_by, updated_at, updated_by)
                     select p.tenant_id, $3, p.project_id, p.division_id, p.organization_id, $4, $5, 'active',
                            p.path || '/' || $4, $6, $7, $8, $7, $8
                     from org_projects p where p.tenant_id = $1 and p.project_id = $2",
                    "the site's project",
                )
                .await?;
            }
            E::DivisionRenamed { division_id, name } => {
                update_unit(
                    conn,
                    &change,
                    Unit::Division,
                    division_id.as_uuid(),
                    Some(name.as_str()),
                )
                .await?;
            }
            E::ProjectRenamed { project_id, name } => {
                update_unit(
                    conn,
                    &change,
                    Unit::Project,
                    project_id.as_uuid(),
                    Some(name.as_str()),
                )
                .await?;
            }
            E::SiteRenamed { site_id, name } => {
                update_unit(
                    conn,
                    &change,
                    Unit::Site,
                    site_id.as_uuid(),
                    Some(name.as_str()),
                )
                .await?;
            }
            E::DivisionArchived { division_id } => {
                update_unit(conn, &change, Unit::Division, division_id.as_uuid(), None).await?;
            }
            E::ProjectArchived { project_id } => {
                update_unit(conn, &change, Unit::Project, project_id.as_uuid(), None).await?;
            }
            E::SiteArchived { site_id } => {
                update_unit(conn, &change, Unit::Site, site_id.as_uuid(), None).await?;
            }
            E::SiteMoved {
                site_id,
                to_project_id,
                ..
            } => {
                let moved = sqlx::query(
                    "update org_sites s
                     set project_id = p.project_id, division_id = p.division_id, path = p.path || '/' || s.code,
                         version = $4, updated_at = $5, updated_by = $6
                     from org_projects p
                     where s.tenant_id = $1 and s.site_id = $2 and p.tenant_id = $1 and p.project_id = $3",
                )
                .bind(change.tenant)
                .bind(site_id.as_uuid())
                .bind(to_project_id.as_uuid())
                .bind(change.version)
                .bind(change.at)
                .bind(change.by)
                .execute(&mut *conn)
                .await?;
                expect_one(moved.rows_affected(), "the moved site and its new project")?;
            }
        }
        // Every event moves the organization's version, the If-Match of all its units.
        let touched = sqlx::query(
            "update org_organizations set version = $3 where tenant_id = $1 and organization_id = $2",
        )
        .bind(change.tenant)
        .bind(change.organization)
        .bind(change.version)
        .execute(&mut *conn)
        .await?;
        expect_one(touched.rows_affected(), "the organization")
    }
}

/// A unit being created below `parent`.
struct NewChild<'a> {
    parent: Uuid,
    id: Uuid,
    code: &'a str,
    name: &'a str,
}

/// Inserts a child row copied from its parent's row (ids, path) by `sql`, whose parameters are:
/// $1 tenant, $2 parent id, $3 child id, $4 code, $5 name, $6 version, $7 at, $8 by. A missing
/// parent is an inconsistency named by `parent_row`.
async fn insert_child(
    conn: &mut PgConnection,
    change: &Change<'_>,
    child: &NewChild<'_>,
    sql: &str,
    parent_row: &str,
) -> Result<(), ProjectionError> {
    let inserted = sqlx::query(sql)
        .bind(change.tenant)
        .bind(child.parent)
        .bind(child.id)
        .bind(child.code)
        .bind(child.name)
        .bind(change.version)
        .bind(change.at)
        .bind(change.by)
        .execute(&mut *conn)
        .await?;
    expect_one(inserted.rows_affected(), parent_row)
}

/// Renames (`name` given) or archives (no name) the organization row.
async fn update_organization(
    conn: &mut PgConnection,
    change: &Change<'_>,
    assignment: &str,
    name: Option<&str>,
) -> Result<(), ProjectionError> {
    let updated = sqlx::query(&format!(
        "update org_organizations set {assignment}, version = $3, updated_at = $4, updated_by = $5
         where tenant_id = $1 and organization_id = $2"
    ))
    .bind(change.tenant)
    .bind(change.organization)
    .bind(change.version)
    .bind(change.at)
    .bind(change.by)
    .bind(name)
    .execute(&mut *conn)
    .await?;
    expect_one(updated.rows_affected(), "the organization")
}

/// Renames (`name` given) or archives (no name) a division, project or site.
async fn update_unit(
    conn: &mut PgConnection,
    change: &Change<'_>,
    unit: Unit,
    id: Uuid,
    name: Option<&str>,
) -> Result<(), ProjectionError> {
    let assignment = if name.is_some() {
        "name = $6"
    } else {
        "status = 'archived'"
    };
    let updated = sqlx::query(&format!(
        "update {table} set {assignment}, version = $3, updated_at = $4, updated_by = $5
         where tenant_id = $1 and {id_column} = $2",
        table = unit.table(),
        id_column = unit.id_column(),
    ))
    .bind(change.tenant)
    .bind(id)
    .bind(change.version)
    .bind(change.at)
    .bind(change.by)
    .bind(name)
    .execute(&mut *conn)
    .await?;
    expect_one(updated.rows_affected(), &format!("{unit:?} {id}"))
}

fn expect_one(rows: u64, what: &str) -> Result<(), ProjectionError> {
    if rows == 1 {
        Ok(())
    } else {
        Err(ProjectionError::Inconsistent(format!(
            "{what} is not in the read model"
        )))
    }
}
