use std::fmt;
use thiserror::Error;
use uuid::Uuid;

use crate::values::Code;

/// The kinds of unit in the hierarchy, for error messages and for the API's error mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitKind {
    Organization,
    Division,
    Project,
    Site,
}

impl fmt::Display for UnitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Organization => "organization",
            Self::Division => "division",
            Self::Project => "project",
            Self::Site => "site",
        })
    }
}

/// Why the hierarchy refused a command. Each variant is one broken rule, worded for the user.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OrganizationError {
    /// The command addresses an organization that was never created (or belongs to another tenant).
    #[error("organization not found")]
    OrganizationNotFound,
    #[error("the organization already exists")]
    OrganizationAlreadyExists,
    #[error("{kind} {id} not found")]
    UnitNotFound { kind: UnitKind, id: Uuid },
    #[error("{kind} {id} already exists")]
    UnitAlreadyExists { kind: UnitKind, id: Uuid },
    #[error("{kind} {id} is archived and cannot be changed or given children")]
    UnitArchived { kind: UnitKind, id: Uuid },
    #[error("a {kind} with code {code} already exists in this {parent}")]
    DuplicateCode {
        kind: UnitKind,
        code: Code,
        parent: UnitKind,
    },
    #[error("{kind} {id} still has active {children}; archive them first")]
    HasActiveChildren {
        kind: UnitKind,
        id: Uuid,
        children: UnitKind,
    },
    #[error("site {site_id} is already in project {project_id}")]
    SiteAlreadyInProject { site_id: Uuid, project_id: Uuid },
}
