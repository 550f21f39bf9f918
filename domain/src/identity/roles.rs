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

/// Where an action happens: what a [`RoleGrant`] must cover for its role's permissions to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The tenant as a whole: creating organizations, users, API keys, the audit trail,
    /// operations. Only roles held in the whole tenant reach it.
    Tenant,
    /// One organization: its record, its divisions, its ledger and reports.
    Organization(OrganizationId),
    /// One project of an organization, and its sites.
    Project {
        organization: OrganizationId,
        project: ProjectId,
    },
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tenant => f.write_str("the whole tenant"),
            Self::Organization(organization) => write!(f, "organization {organization}"),
            Self::Project { project, .. } => write!(f, "project {project}"),
        }
    }
}

impl RoleGrant {
    /// True when this grant's role counts at `scope`: a tenant-wide role everywhere, a role in
    /// an organization in that organization and its projects, a role in a project in that
    /// project only.
    pub fn covers(&self, scope: Scope) -> bool {
        match (self.organization_id, self.project_id, scope) {
            (None, None, _) => true,
            (Some(granted), _, Scope::Organization(organization)) => granted == organization,
            (Some(granted), _, Scope::Project { organization, .. }) => granted == organization,
            (None, Some(granted), Scope::Project { project, .. }) => granted == project,
            _ => false,
        }
    }

    /// True when this grant lets its holder do what `permission` allows at `scope`.
    pub fn allows(&self, permission: Permission, scope: Scope) -> bool {
        self.role.grants(permission) && self.covers(scope)
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

    #[test]
    fn a_grant_covers_its_own_unit_and_what_lies_below_it_only() {
        let organization = OrganizationId::new();
        let other_organization = OrganizationId::new();
        let project = ProjectId::new();
        let other_project = ProjectId::new();
        let in_project = Scope::Project {
            organization,
            project,
        };
        let in_other_project = Scope::Project {
            organization,
            project: other_project,
        };
        let tenant_wide = RoleGrant::tenant_wide(Role::Viewer);
        for scope in [Scope::Tenant, Scope::Organization(organization), in_project] {
            assert!(tenant_wide.covers(scope), "{scope}");
        }
        let in_organization = RoleGrant {
            organization_id: Some(organization),
            ..tenant_wide
        };
        assert!(in_organization.covers(Scope::Organization(organization)));
        assert!(in_organization.covers(in_project));
        assert!(in_organization.covers(in_other_project));
        assert!(!in_organization.covers(Scope::Tenant));
        assert!(!in_organization.covers(Scope::Organization(other_organization)));
        assert!(!in_organization.covers(Scope::Project {
            organization: other_organization,
            project,
        }));
        let in_one_project = RoleGrant {
            project_id: Some(project),
            ..tenant_wide
        };
        assert!(in_one_project.covers(in_project));
        assert!(!in_one_project.covers(in_other_project));
        assert!(!in_one_project.covers(Scope::Organization(organization)));
        assert!(!in_one_project.covers(Scope::Tenant));
        let manager_in_project = RoleGrant {
            role: Role::ProjectManager,
            ..in_one_project
        };
        assert!(manager_in_project.allows(Permission::ManageUnits, in_project));
        assert!(!manager_in_project.allows(Permission::PostEntries, in_project));
        assert!(!manager_in_project.allows(Permission::ManageUnits, in_other_project));
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
