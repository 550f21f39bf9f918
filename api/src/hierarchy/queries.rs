//! Query routes of the hierarchy, answered from the `org_*` read models through
//! [`RequestContext::read_filtered`], so row-level security confines every statement to the
//! caller's tenant: another tenant's id finds nothing and answers 404 exactly like a missing one.
//! Within the tenant, a caller whose roles are scoped sees the organizations it holds a role in
//! and the projects it works on (with their sites, and the organization and division above
//! them); a unit it cannot see answers 404 too.
//!
//! Lists are in path order (`MBL/DHK/PADMA/S1`) with keyset pagination on `(path, id)`; the
//! cursor is opaque to clients.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;
use vextrus_commands::Version;
use vextrus_domain::ids::{DivisionId, OrganizationId, ProjectId, SiteId};
use vextrus_domain::values::Code;
use vextrus_projections::organization::OrganizationHierarchy;

use super::QueryErrors;
use super::views::{
    DivisionNode, DivisionView, ListQuery, OrganizationTree, OrganizationView, Page,
    ProjectListQuery, ProjectNode, ProjectView, SiteListQuery, SiteView, TreeQuery,
    UNIT_CURSOR_PATTERN, UnitListQuery, UnitStatus,
};
use crate::auth::Readable;
use crate::consistency::{self, Freshness};
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::extract::{PathIds, QueryParams, etag};
use crate::state::AppState;

const DEFAULT_PAGE_SIZE: u32 = 50;
const MAX_PAGE_SIZE: u32 = 500;

/// One read-model table and how its rows become views.
struct Table {
    name: &'static str,
    id_column: &'static str,
    columns: &'static str,
    /// The column, also one of `org_projects`', that ties a row to the projects below or at it:
    /// a caller with a role in a project sees the rows that share that project's value.
    project_link: &'static str,
}

const ORGANIZATIONS: Table = Table {
    name: "org_organizations",
    id_column: "organization_id",
    columns: "organization_id as id, code, name, bin, tin, base_currency, fiscal_year_start, \
              status, path, version, created_at, created_by, updated_at, updated_by",
    project_link: "organization_id",
};
const DIVISIONS: Table = Table {
    name: "org_divisions",
    id_column: "division_id",
    columns: "division_id as id, organization_id, code, name, status, path, version, \
              created_at, created_by, updated_at, updated_by",
    project_link: "division_id",
};
const PROJECTS: Table = Table {
    name: "org_projects",
    id_column: "project_id",
    columns: "project_id as id, organization_id, division_id, code, name, status, path, version, \
              created_at, created_by, updated_at, updated_by",
    project_link: "project_id",
};
const SITES: Table = Table {
    name: "org_sites",
    id_column: "site_id",
    columns: "site_id as id, organization_id, division_id, project_id, code, name, status, path, \
              version, created_at, created_by, updated_at, updated_by",
    project_link: "project_id",
};

/// A view's place in path order.
trait Keyed {
    fn key(&self) -> (&str, Uuid);
}

macro_rules! keyed {
    ($($view:ty),*) => {$(
        impl Keyed for $view {
            fn key(&self) -> (&str, Uuid) {
                (&self.path, self.id)
            }
        }
    )*};
}
keyed!(OrganizationView, DivisionView, ProjectView, SiteView);

/// Where the previous page ended: the last unit's path and id, written `PATH~ID`
/// ([`UNIT_CURSOR_PATTERN`]).
struct Cursor {
    path: String,
    id: Uuid,
}

impl Cursor {
    fn encode(path: &str, id: Uuid) -> String {
        format!("{path}~{id}")
    }

    fn decode(text: &str) -> Result<Self, ApiError> {
        let invalid = || ApiError::invalid_param("after", "not a cursor returned by this list");
        if !crate::openapi::text::matches(UNIT_CURSOR_PATTERN, text) {
            return Err(invalid());
        }
        let (path, id) = text.rsplit_once('~').ok_or_else(invalid)?;
        Ok(Self {
            path: path.to_owned(),
            id: Uuid::parse_str(id).map_err(|_| invalid())?,
        })
    }
}

/// Validated filters of a list.
#[derive(Default)]
struct Filter {
    organization: Option<Uuid>,
    /// One unit of the table, by its id.
    id: Option<Uuid>,
    status: Option<UnitStatus>,
    code: Option<Code>,
    division: Option<Uuid>,
    project: Option<Uuid>,
    after: Option<Cursor>,
    /// Rows to fetch; `None` for all.
    limit: Option<u32>,
}

impl Filter {
    fn from_query(query: &ListQuery) -> Result<Self, ApiError> {
        let limit = query.limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(ApiError::invalid_param(
                "limit",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        Ok(Self {
            organization: None,
            id: None,
            status: query.status,
            code: query
                .code
                .as_deref()
                .map(Code::parse)
                .transpose()
                .map_err(|error| ApiError::invalid_param("code", error))?,
            division: query.division_id,
            project: query.project_id,
            after: query.after.as_deref().map(Cursor::decode).transpose()?,
            limit: Some(limit),
        })
    }
}

/// The rows of `table` that pass `filter` and the caller may see, in path order.
async fn select<T>(
    conn: &mut PgConnection,
    table: &Table,
    filter: &Filter,
    readable: &Readable,
) -> Result<Vec<T>, ApiError>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    let mut sql = QueryBuilder::<Postgres>::new(format!(
        "select {} from {} where true",
        table.columns, table.name
    ));
    if let Readable::Units {
        organizations,
        projects,
    } = readable
    {
        let organizations: Vec<Uuid> = organizations.iter().map(|id| id.as_uuid()).collect();
        let projects: Vec<Uuid> = projects.iter().map(|id| id.as_uuid()).collect();
        sql.push(" and (organization_id = any(")
            .push_bind(organizations)
            .push(format!(
                ") or {0} in (select p.{0} from org_projects p where p.project_id = any(",
                table.project_link
            ))
            .push_bind(projects)
            .push(")))");
    }
    if let Some(organization) = filter.organization {
        sql.push(" and organization_id = ").push_bind(organization);
    }
    if let Some(id) = filter.id {
        sql.push(format!(" and {} = ", table.id_column))
            .push_bind(id);
    }
    if let Some(status) = filter.status {
        sql.push(" and status = ").push_bind(status.as_str());
    }
    if let Some(code) = &filter.code {
        sql.push(" and code = ").push_bind(code.as_str().to_owned());
    }
    if let Some(division) = filter.division {
        sql.push(" and division_id = ").push_bind(division);
    }
    if let Some(project) = filter.project {
        sql.push(" and project_id = ").push_bind(project);
    }
    if let Some(after) = &filter.after {
        sql.push(format!(" and (path, {}) > (", table.id_column))
            .push_bind(after.path.clone())
            .push(", ")
            .push_bind(after.id)
            .push(")");
    }
    sql.push(format!(" order by path, {}", table.id_column));
    if let Some(limit) = filter.limit {
        // One more than asked tells whether another page follows.
        sql.push(" limit ").push_bind(i64::from(limit) + 1);
    }
    sql.build_query_as::<T>()
        .fetch_all(conn)
        .await
        .map_err(ApiError::database)
}

/// Cuts the extra row off and turns it into the next cursor.
fn page<T: Keyed>(mut rows: Vec<T>, limit: Option<u32>) -> Page<T> {
    let limit = limit.map_or(usize::MAX, |limit| limit as usize);
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|last| {
            let (path, id) = last.key();
            Cursor::encode(path, id)
        })
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

/// The organization, when the tenant has it and the caller may see it.
async fn visible_organization(
    conn: &mut PgConnection,
    organization: OrganizationId,
    readable: &Readable,
) -> Result<Option<OrganizationView>, ApiError> {
    let filter = Filter {
        organization: Some(organization.as_uuid()),
        ..Filter::default()
    };
    Ok(select(conn, &ORGANIZATIONS, &filter, readable).await?.pop())
}

fn organization_not_found(organization: OrganizationId) -> ApiError {
    ApiError::NotFound(format!("organization {organization} not found"))
}

fn with_etag<T: serde::Serialize>(version: Version, body: T) -> Response {
    ([(header::ETAG, etag(version))], Json(body)).into_response()
}

/// Waits for `min_position` (if any), then opens the tenant's read transaction, with what the
/// caller may see in it.
async fn fresh_read(
    state: &AppState,
    context: &RequestContext,
    min_position: Option<i64>,
) -> Result<(sqlx::Transaction<'static, Postgres>, Readable), ApiError> {
    consistency::wait_for::<OrganizationHierarchy>(state, context, min_position).await?;
    context.read_filtered(state).await
}

/// Lists the tenant's organizations.
#[utoipa::path(
    get, path = "/v1/organizations", tag = "organizations",
    params(UnitListQuery),
    responses((status = 200, description = "A page of organizations", body = Page<OrganizationView>), QueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn list_organizations(
    State(state): State<AppState>,
    context: RequestContext,
    QueryParams(query): QueryParams<UnitListQuery>,
) -> Result<Json<Page<OrganizationView>>, ApiError> {
    let query = ListQuery::from(query);
    let filter = Filter::from_query(&query)?;
    let (mut tx, readable) = fresh_read(&state, &context, query.min_position).await?;
    let rows = select(&mut tx, &ORGANIZATIONS, &filter, &readable).await?;
    Ok(Json(page(rows, filter.limit)))
}

/// One organization. Its `ETag` is the version to send as `If-Match` for any unit in it.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}", tag = "organizations",
    params(("organization_id" = Uuid, Path), Freshness),
    responses((status = 200, description = "The organization", body = OrganizationView, headers(("ETag" = String))), QueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn get_organization(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    QueryParams(freshness): QueryParams<Freshness>,
) -> Result<Response, ApiError> {
    let (mut tx, readable) = fresh_read(&state, &context, freshness.min_position).await?;
    let view = visible_organization(&mut tx, organization, &readable)
        .await?
        .ok_or_else(|| organization_not_found(organization))?;
    Ok(with_etag(Version::new(view.version), view))
}

/// An organization with its divisions, their projects and their sites, in path order.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/tree", tag = "organizations",
    params(("organization_id" = Uuid, Path), TreeQuery),
    responses((status = 200, description = "The organization's tree", body = OrganizationTree, headers(("ETag" = String))), QueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn get_tree(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    QueryParams(query): QueryParams<TreeQuery>,
) -> Result<Response, ApiError> {
    let (mut tx, readable) = fresh_read(&state, &context, query.min_position).await?;
    let view = visible_organization(&mut tx, organization, &readable)
        .await?
        .ok_or_else(|| organization_not_found(organization))?;
    let filter = Filter {
        organization: Some(organization.as_uuid()),
        status: query.status,
        ..Filter::default()
    };
    let divisions: Vec<DivisionView> = select(&mut tx, &DIVISIONS, &filter, &readable).await?;
    let projects: Vec<ProjectView> = select(&mut tx, &PROJECTS, &filter, &readable).await?;
    let sites: Vec<SiteView> = select(&mut tx, &SITES, &filter, &readable).await?;
    let divisions = divisions
        .into_iter()
        .map(|division| DivisionNode {
            projects: projects
                .iter()
                .filter(|project| project.division_id == division.id)
                .map(|project| ProjectNode {
                    sites: sites
                        .iter()
                        .filter(|site| site.project_id == project.id)
                        .cloned()
                        .collect(),
                    project: project.clone(),
                })
                .collect(),
            division,
        })
        .collect();
    Ok(with_etag(
        Version::new(view.version),
        OrganizationTree {
            organization: view,
            divisions,
        },
    ))
}

/// Lists one level below an organization, 404 when the organization is not the tenant's.
async fn list_units<T>(
    state: &AppState,
    context: &RequestContext,
    organization: OrganizationId,
    table: &Table,
    query: &ListQuery,
) -> Result<Response, ApiError>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin + Keyed + serde::Serialize,
{
    let mut filter = Filter::from_query(query)?;
    filter.organization = Some(organization.as_uuid());
    let (mut tx, readable) = fresh_read(state, context, query.min_position).await?;
    let version = visible_organization(&mut tx, organization, &readable)
        .await?
        .ok_or_else(|| organization_not_found(organization))?
        .version;
    let rows: Vec<T> = select(&mut tx, table, &filter, &readable).await?;
    Ok(with_etag(Version::new(version), page(rows, filter.limit)))
}

/// One unit below an organization, 404 unless it is in that organization of the tenant.
async fn get_unit<T>(
    state: &AppState,
    context: &RequestContext,
    organization: OrganizationId,
    table: &Table,
    id: Uuid,
    min_position: Option<i64>,
) -> Result<Response, ApiError>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin + serde::Serialize,
{
    let (mut tx, readable) = fresh_read(state, context, min_position).await?;
    let not_found = || {
        let kind = table.id_column.trim_end_matches("_id");
        ApiError::NotFound(format!("{kind} {id} not found"))
    };
    let version = visible_organization(&mut tx, organization, &readable)
        .await?
        .ok_or_else(not_found)?
        .version;
    let filter = Filter {
        organization: Some(organization.as_uuid()),
        id: Some(id),
        ..Filter::default()
    };
    let row: T = select(&mut tx, table, &filter, &readable)
        .await?
        .pop()
        .ok_or_else(not_found)?;
    Ok(with_etag(Version::new(version), row))
}

/// Lists an organization's divisions.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/divisions", tag = "divisions",
    params(("organization_id" = Uuid, Path), UnitListQuery),
    responses((status = 200, description = "A page of divisions", body = Page<DivisionView>), QueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn list_divisions(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    QueryParams(query): QueryParams<UnitListQuery>,
) -> Result<Response, ApiError> {
    list_units::<DivisionView>(&state, &context, organization, &DIVISIONS, &query.into()).await
}

/// One division.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/divisions/{division_id}", tag = "divisions",
    params(("organization_id" = Uuid, Path), ("division_id" = Uuid, Path), Freshness),
    responses((status = 200, description = "The division", body = DivisionView, headers(("ETag" = String))), QueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn get_division(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds((organization, division)): PathIds<(OrganizationId, DivisionId)>,
    QueryParams(freshness): QueryParams<Freshness>,
) -> Result<Response, ApiError> {
    get_unit::<DivisionView>(
        &state,
        &context,
        organization,
        &DIVISIONS,
        division.as_uuid(),
        freshness.min_position,
    )
    .await
}

/// Lists an organization's projects (optionally of one division).
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/projects", tag = "projects",
    params(("organization_id" = Uuid, Path), ProjectListQuery),
    responses((status = 200, description = "A page of projects", body = Page<ProjectView>), QueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn list_projects(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    QueryParams(query): QueryParams<ProjectListQuery>,
) -> Result<Response, ApiError> {
    list_units::<ProjectView>(&state, &context, organization, &PROJECTS, &query.into()).await
}

/// One project.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/projects/{project_id}", tag = "projects",
    params(("organization_id" = Uuid, Path), ("project_id" = Uuid, Path), Freshness),
    responses((status = 200, description = "The project", body = ProjectView, headers(("ETag" = String))), QueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn get_project(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds((organization, project)): PathIds<(OrganizationId, ProjectId)>,
    QueryParams(freshness): QueryParams<Freshness>,
) -> Result<Response, ApiError> {
    get_unit::<ProjectView>(
        &state,
        &context,
        organization,
        &PROJECTS,
        project.as_uuid(),
        freshness.min_position,
    )
    .await
}

/// Lists an organization's sites (optionally of one division or project).
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/sites", tag = "sites",
    params(("organization_id" = Uuid, Path), SiteListQuery),
    responses((status = 200, description = "A page of sites", body = Page<SiteView>), QueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn list_sites(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    QueryParams(query): QueryParams<SiteListQuery>,
) -> Result<Response, ApiError> {
    list_units::<SiteView>(&state, &context, organization, &SITES, &query.into()).await
}

/// One site.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/sites/{site_id}", tag = "sites",
    params(("organization_id" = Uuid, Path), ("site_id" = Uuid, Path), Freshness),
    responses((status = 200, description = "The site", body = SiteView, headers(("ETag" = String))), QueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn get_site(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds((organization, site)): PathIds<(OrganizationId, SiteId)>,
    QueryParams(freshness): QueryParams<Freshness>,
) -> Result<Response, ApiError> {
    get_unit::<SiteView>(
        &state,
        &context,
        organization,
        &SITES,
        site.as_uuid(),
        freshness.min_position,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let id = Uuid::now_v7();
        let cursor = Cursor::decode(&Cursor::encode("MBL/DHK", id)).unwrap();
        assert_eq!((cursor.path.as_str(), cursor.id), ("MBL/DHK", id));
        for garbage in [
            "not-a-cursor",
            "MBL/DHK",
            "mbl~00000000-0000-0000-0000-000000000000",
        ] {
            assert!(Cursor::decode(garbage).is_err(), "{garbage}");
        }
    }
}
