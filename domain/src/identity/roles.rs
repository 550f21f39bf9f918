//! Roles as data: each built-in role is a set of [`Permission`]s, and every API route names the
//! permission it needs. The table here is the one the README prints and the one a test walks
//! against every operation of `/openapi.json`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::{OrganizationId, ProjectId};

/// What a route needs. Every authenticated caller may read its tenant's data ([`Self::Read`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// Read the tenant's organizations, ledgers and reports.
    Read,
    /// Create, rename and archive organizations.
    ManageOrganizations,
    /// Create, rename, archive and move divisions, projects and sites.
    ManageUnits,
    /// Open and change accounts, the fiscal calendar and year-end closing.
    ManageLedger,
    /// Post and reverse journal entries.
    PostEntries,
    /// Read the audit trail.
    ReadAudit,
    /// Watch and run projection replays.
    Operate,
    /// Invite users, assign roles, disable users, issue API keys.
    ManageUsers,
}

impl Permission {
    pub const ALL: [Permission; 8] = [
        Permission::Read,
        Permission::ManageOrganizations,
        Permission::ManageUnits,
        Permission::ManageLedger,
        Permission::PostEntries,
        Permission::ReadAudit,
        Permission::Operate,
        Permission::ManageUsers,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::ManageOrganizations => "manage-organizations",
            Self::ManageUnits => "manage-units",
            Self::ManageLedger => "manage-ledger",
            Self::PostEntries => "post-entries",
            Self::ReadAudit => "read-audit",
            Self::Operate => "operate",
            Self::ManageUsers => "manage-users",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A built-in role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything in the tenant.
    Admin,
    /// The chart of accounts, the fiscal calendar and postings.
    FinanceManager,
    /// Posts and reverses journal entries.
    Accountant,
    /// Divisions, projects and sites.
    ProjectManager,
    /// Reads; scoped to the projects they work on.
    SiteEngineer,
    /// Reads the audit trail.
    Auditor,
    /// Runs and watches projection replays.
    Operator,
    /// Reads only.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::Admin,
        Role::FinanceManager,
        Role::Accountant,
        Role::ProjectManager,
        Role::SiteEngineer,
        Role::Auditor,
        Role::Operator,
        Role::Viewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::FinanceManager => "finance-manager",
            Self::Accountant => "accountant",
            Self::ProjectManager => "project-manager",
            Self::SiteEngineer => "site-engineer",
            Self::Auditor => "auditor",
            Self::Operator => "operator",
            Self::Viewer => "viewer",
        }
    }

    /// The permissions this role grants.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission as P;
        match self {
            Self::Admin => &Permission::ALL,
            Self::FinanceManager => &[P::Read, P::ManageLedger, P::PostEntries],
            Self::Accountant => &[P::Read, P::PostEntries],
            Self::ProjectManager => &[P::Read, P::ManageUnits],
            Self::SiteEngineer | Self::Viewer => &[P::Read],
            Self::Auditor => &[P::Read, P::ReadAudit],
            Self::Operator => &[P::Read, P::Operate],
        }
    }

    pub fn grants(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|role| role.as_str()).collect();
                format!("unknown role {s:?}; roles are {}", names.join(", "))
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role held by a user, in the whole tenant or only in one organization or one project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RoleGrant {
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<OrganizationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<ProjectId>,
}

impl RoleGrant {
    /// The role in the whole tenant.
    pub fn tenant_wide(role: Role) -> Self {
        Self {
            role,
            organization_id: None,
            project_id: None,
        }
    }

    /// True when the grant is limited to one organization or project.
    pub fn is_scoped(&self) -> bool {
        self.organization_id.is_some() || self.project_id.is_some()
    }
}

impl fmt::Display for RoleGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.organization_id, self.project_id) {
            (Some(organization), _) => write!(f, "{} in organization {organization}", self.role),
            (None, Some(project)) => write!(f, "{} in project {project}", self.role),
            (None, None) => write!(f, "{}", self.role),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip_and_unknown_names_say_what_exists() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(
                serde_json_name(role),
                format!("\"{}\"", role.as_str()),
                "serde and as_str agree"
            );
        }
        let error = "astronaut".parse::<Role>().unwrap_err();
        assert!(
            error.contains("admin") && error.contains("site-engineer"),
            "{error}"
        );
    }

    fn serde_json_name(role: Role) -> String {
        serde_json::to_string(&role).unwrap()
    }

    #[test]
    fn admin_holds_every_permission_and_every_permission_has_a_role_besides_admin() {
        for permission in Permission::ALL {
            assert!(Role::Admin.grants(permission));
        }
        for permission in Permission::ALL {
            if permission == Permission::ManageOrganizations
                || permission == Permission::ManageUsers
            {
                continue;
            }
            assert!(
                Role::ALL
                    .iter()
                    .any(|role| *role != Role::Admin && role.grants(permission)),
                "{permission}"
            );
        }
        for role in Role::ALL {
            assert!(role.grants(Permission::Read), "{role} reads");
        }
        assert!(!Role::Viewer.grants(Permission::PostEntries));
        assert!(!Role::Accountant.grants(Permission::ManageLedger));
    }
}
