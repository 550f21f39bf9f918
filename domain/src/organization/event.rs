use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::ids::{DivisionId, OrganizationId, ProjectId, SiteId};
use crate::values::{Bin, Code, CurrencyCode, FiscalYearStart, Name, Tin};

/// What happened to an organization's hierarchy. Every event names the unit it concerns, so a
/// projection or an auditor reading one event needs nothing else to understand it.
///
/// Events are facts in the log forever: add fields with defaults or add new variants; never
/// change the meaning of an existing one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrganizationEvent {
    OrganizationCreated {
        organization_id: OrganizationId,
        name: Name,
        code: Code,
        bin: Bin,
        tin: Tin,
        base_currency: CurrencyCode,
        fiscal_year_start: FiscalYearStart,
    },
    OrganizationRenamed {
        organization_id: OrganizationId,
        name: Name,
    },
    OrganizationArchived {
        organization_id: OrganizationId,
    },

    DivisionCreated {
        division_id: DivisionId,
        name: Name,
        code: Code,
    },
    DivisionRenamed {
        division_id: DivisionId,
        name: Name,
    },
    DivisionArchived {
        division_id: DivisionId,
    },

    ProjectCreated {
        project_id: ProjectId,
        division_id: DivisionId,
        name: Name,
        code: Code,
    },
    ProjectRenamed {
        project_id: ProjectId,
        name: Name,
    },
    ProjectArchived {
        project_id: ProjectId,
    },

    SiteCreated {
        site_id: SiteId,
        project_id: ProjectId,
        name: Name,
        code: Code,
    },
    SiteRenamed {
        site_id: SiteId,
        name: Name,
    },
    SiteArchived {
        site_id: SiteId,
    },
    SiteMoved {
        site_id: SiteId,
        from_project_id: ProjectId,
        to_project_id: ProjectId,
    },
}

impl DomainEvent for OrganizationEvent {
    fn event_type(&self) -> String {
        let name = match self {
            Self::OrganizationCreated { .. } => "OrganizationCreated",
            Self::OrganizationRenamed { .. } => "OrganizationRenamed",
            Self::OrganizationArchived { .. } => "OrganizationArchived",
            Self::DivisionCreated { .. } => "DivisionCreated",
            Self::DivisionRenamed { .. } => "DivisionRenamed",
            Self::DivisionArchived { .. } => "DivisionArchived",
            Self::ProjectCreated { .. } => "ProjectCreated",
            Self::ProjectRenamed { .. } => "ProjectRenamed",
            Self::ProjectArchived { .. } => "ProjectArchived",
            Self::SiteCreated { .. } => "SiteCreated",
            Self::SiteRenamed { .. } => "SiteRenamed",
            Self::SiteArchived { .. } => "SiteArchived",
            Self::SiteMoved { .. } => "SiteMoved",
        };
        name.to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
