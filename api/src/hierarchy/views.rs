//! What the hierarchy routes take and return. Request bodies reject unknown fields; ids and
//! timestamps are strings (UUIDs, RFC 3339).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::openapi::text;

/// A unit's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UnitStatus {
    Active,
    Archived,
}

impl UnitStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Archived => "archived",
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganization {
    #[schema(schema_with = text::name)]
    pub name: String,
    /// Unique in the tenant.
    #[schema(schema_with = text::code)]
    pub code: String,
    #[schema(schema_with = text::bin)]
    pub bin: String,
    #[schema(schema_with = text::tin)]
    pub tin: String,
    #[schema(schema_with = text::currency_or_null)]
    pub base_currency: Option<String>,
    #[schema(schema_with = text::month_day_or_null)]
    pub fiscal_year_start: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDivision {
    #[schema(schema_with = text::name)]
    pub name: String,
    /// Unique within the organization.
    #[schema(schema_with = text::code)]
    pub code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// The active division the project belongs to.
    pub division_id: Uuid,
    #[schema(schema_with = text::name)]
    pub name: String,
    /// Unique within the division.
    #[schema(schema_with = text::code)]
    pub code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSite {
    /// The active project the site belongs to.
    pub project_id: Uuid,
    #[schema(schema_with = text::name)]
    pub name: String,
    /// Unique within the project.
    #[schema(schema_with = text::code)]
    pub code: String,
}

/// The changes a PATCH can make: today, the name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameUnit {
    #[schema(schema_with = text::name)]
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveSite {
    /// An active project of the same organization.
    pub to_project_id: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct OrganizationView {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub bin: String,
    pub tin: String,
    pub base_currency: String,
    pub fiscal_year_start: String,
    pub status: String,
    /// Codes from the organization down, e.g. `MBL`.
    pub path: String,
    /// The organization's version: the ETag of every unit in it.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct DivisionView {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub code: String,
    pub name: String,
    pub status: String,
    /// e.g. `MBL/DHK`.
    pub path: String,
    /// The organization's version after the last change to this division.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct ProjectView {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub division_id: Uuid,
    pub code: String,
    pub name: String,
    pub status: String,
    /// e.g. `MBL/DHK/PADMA`.
    pub path: String,
    /// The organization's version after the last change to this project.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct SiteView {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub division_id: Uuid,
    pub project_id: Uuid,
    pub code: String,
    pub name: String,
    pub status: String,
    /// e.g. `MBL/DHK/PADMA/S1`.
    pub path: String,
    /// The organization's version after the last change to this site.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// A page of a list, in path order. Pass `next_cursor` as `after` for the next page; it is null
/// on the last page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// An organization with everything below it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrganizationTree {
    pub organization: OrganizationView,
    pub divisions: Vec<DivisionNode>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DivisionNode {
    pub division: DivisionView,
    pub projects: Vec<ProjectNode>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProjectNode {
    pub project: ProjectView,
    pub sites: Vec<SiteView>,
}

/// The cursor of a hierarchy list: the last unit's path and id, as `next_cursor` gave it.
pub const UNIT_CURSOR_PATTERN: &str = "^[A-Z0-9][A-Z0-9._-]{0,31}(/[A-Z0-9][A-Z0-9._-]{0,31}){0,3}~[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

fn unit_cursor() -> utoipa::openapi::schema::Object {
    text::parameter(
        UNIT_CURSOR_PATTERN,
        "The `next_cursor` of the previous page.",
        "MBL/DHK~01a200c6-b37e-705b-98b7-fc963229bc13",
    )
}

fn code_filter() -> utoipa::openapi::schema::Object {
    text::parameter(
        vextrus_domain::values::Code::PATTERN,
        "Only the unit with this code (case-insensitive).",
        "DHK",
    )
}

/// Filters and paging of the organizations and divisions lists.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UnitListQuery {
    /// Only units in this state.
    pub status: Option<UnitStatus>,
    #[param(schema_with = code_filter)]
    pub code: Option<String>,
    #[param(schema_with = unit_cursor)]
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Read-your-writes: wait until the read model includes this log position.
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// Filters and paging of the projects list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProjectListQuery {
    /// Only projects in this state.
    pub status: Option<UnitStatus>,
    #[param(schema_with = code_filter)]
    pub code: Option<String>,
    /// Only projects of this division.
    pub division_id: Option<Uuid>,
    #[param(schema_with = unit_cursor)]
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Read-your-writes: wait until the read model includes this log position.
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// Filters and paging of the sites list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SiteListQuery {
    /// Only sites in this state.
    pub status: Option<UnitStatus>,
    #[param(schema_with = code_filter)]
    pub code: Option<String>,
    /// Only sites of this division.
    pub division_id: Option<Uuid>,
    /// Only sites of this project.
    pub project_id: Option<Uuid>,
    #[param(schema_with = unit_cursor)]
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Read-your-writes: wait until the read model includes this log position.
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// What every list takes, whichever parent filters its route offers.
#[derive(Debug, Default)]
pub struct ListQuery {
    pub status: Option<UnitStatus>,
    pub code: Option<String>,
    pub division_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub after: Option<String>,
    pub limit: Option<u32>,
    pub min_position: Option<i64>,
}

impl From<UnitListQuery> for ListQuery {
    fn from(query: UnitListQuery) -> Self {
        let UnitListQuery {
            status,
            code,
            after,
            limit,
            min_position,
        } = query;
        Self {
            status,
            code,
            after,
            limit,
            min_position,
            ..Self::default()
        }
    }
}

impl From<ProjectListQuery> for ListQuery {
    fn from(query: ProjectListQuery) -> Self {
        let ProjectListQuery {
            status,
            code,
            division_id,
            after,
            limit,
            min_position,
        } = query;
        Self {
            status,
            code,
            division_id,
            after,
            limit,
            min_position,
            ..Self::default()
        }
    }
}

impl From<SiteListQuery> for ListQuery {
    fn from(query: SiteListQuery) -> Self {
        let SiteListQuery {
            status,
            code,
            division_id,
            project_id,
            after,
            limit,
            min_position,
        } = query;
        Self {
            status,
            code,
            division_id,
            project_id,
            after,
            limit,
            min_position,
        }
    }
}

/// Filters of the tree.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TreeQuery {
    /// Only units below the organization in this state.
    pub status: Option<UnitStatus>,
    /// Read-your-writes: wait until the read model includes this log position.
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}
