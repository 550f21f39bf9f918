//! What the hierarchy routes take and return. Request bodies reject unknown fields; ids and
//! timestamps are strings (UUIDs, RFC 3339).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

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
    #[schema(example = "Meghna Builders Ltd")]
    pub name: String,
    /// Unique in the tenant; letters, digits, `-`, `_`, `.`; stored upper case.
    #[schema(example = "MBL")]
    pub code: String,
    /// Business Identification Number: 13 digits, or 9+4 (`002871821-0101`).
    #[schema(example = "002871821-0101")]
    pub bin: String,
    /// e-TIN: 12 digits.
    #[schema(example = "123456789012")]
    pub tin: String,
    /// ISO 4217; `BDT` when omitted.
    #[schema(example = "BDT")]
    pub base_currency: Option<String>,
    /// `MM-DD`; `07-01` (the Bangladesh fiscal year) when omitted.
    #[schema(example = "07-01")]
    pub fiscal_year_start: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDivision {
    #[schema(example = "Dhaka Division")]
    pub name: String,
    /// Unique within the organization.
    #[schema(example = "DHK")]
    pub code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// The active division the project belongs to.
    pub division_id: Uuid,
    #[schema(example = "Padma Bridge Approach Road")]
    pub name: String,
    /// Unique within the division.
    #[schema(example = "PADMA")]
    pub code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSite {
    /// The active project the site belongs to.
    pub project_id: Uuid,
    #[schema(example = "Mawa Side")]
    pub name: String,
    /// Unique within the project.
    #[schema(example = "S1")]
    pub code: String,
}

/// The changes a PATCH can make: today, the name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameUnit {
    #[schema(example = "Meghna Builders & Engineers Ltd")]
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveSite {
    /// An active project of the same organization.
    pub to_project_id: Uuid,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommandAccepted {
    /// The unit the command created or changed.
    pub id: Uuid,
    pub organization_id: Uuid,
    /// The organization's version after the command: its new ETag, for `If-Match`.
    pub version: i64,
    /// Log position of the command's last event, for `min_position`; null when nothing changed.
    pub position: Option<i64>,
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

/// Filters and paging of a list. A parent filter is refused where the unit has no such parent.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only units in this state.
    pub status: Option<UnitStatus>,
    /// Only the unit with this code (case-insensitive).
    pub code: Option<String>,
    /// Only units of this division (projects and sites).
    pub division_id: Option<Uuid>,
    /// Only sites of this project.
    pub project_id: Option<Uuid>,
    /// The `next_cursor` of the previous page.
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Read-your-writes: wait until the read model includes this log position.
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
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
