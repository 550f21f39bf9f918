use std::collections::BTreeMap;

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{OrganizationCommand, OrganizationError, OrganizationEvent, UnitKind};
use crate::ids::{DivisionId, OrganizationId, ProjectId, SiteId};
use crate::unique::{UniqueValue, UniqueValues};
use crate::values::{Bin, Code, CurrencyCode, FiscalYearStart, Name};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum UnitStatus {
    #[default]
    Active,
    Archived,
}

/// One unit below the organization, with the id of its parent (`P`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Unit<P> {
    parent: P,
    name: Name,
    code: Code,
    status: UnitStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    id: OrganizationId,
    name: Name,
    status: UnitStatus,
    #[serde(default)]
    base_currency: CurrencyCode,
    #[serde(default)]
    fiscal_year_start: FiscalYearStart,
    /// Printed on its tax invoices as the seller's (or buyer's) BIN.
    #[serde(default)]
    bin: Option<Bin>,
}

/// A company and its whole tree of divisions, projects and sites: the consistency boundary of
/// the hierarchy (see the module docs for why).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Organization {
    profile: Option<Profile>,
    divisions: BTreeMap<DivisionId, Unit<OrganizationId>>,
    projects: BTreeMap<ProjectId, Unit<DivisionId>>,
    sites: BTreeMap<SiteId, Unit<ProjectId>>,
}

impl Aggregate for Organization {
    const TYPE: &'static str = "organization";
    type Command = OrganizationCommand;
    type Event = OrganizationEvent;
    type Error = OrganizationError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use OrganizationEvent as E;
        match event {
            E::OrganizationCreated {
                organization_id,
                name,
                base_currency,
                fiscal_year_start,
                bin,
                ..
            } => {
                self.profile = Some(Profile {
                    id: organization_id,
                    name,
                    status: UnitStatus::Active,
                    base_currency,
                    fiscal_year_start,
                    bin: Some(bin),
                });
            }
            E::OrganizationRenamed { name, .. } => {
                if let Some(profile) = &mut self.profile {
                    profile.name = name;
                }
            }
            E::OrganizationArchived { .. } => {
                if let Some(profile) = &mut self.profile {
                    profile.status = UnitStatus::Archived;
                }
            }
            E::DivisionCreated {
                division_id,
                name,
                code,
            } => {
                if let Some(profile) = &self.profile {
                    let unit = Unit {
                        parent: profile.id,
                        name,
                        code,
                        status: UnitStatus::Active,
                    };
                    self.divisions.insert(division_id, unit);
                }
            }
            E::DivisionRenamed { division_id, name } => {
                if let Some(unit) = self.divisions.get_mut(&division_id) {
                    unit.name = name;
                }
            }
            E::DivisionArchived { division_id } => {
                if let Some(unit) = self.divisions.get_mut(&division_id) {
                    unit.status = UnitStatus::Archived;
                }
            }
            E::ProjectCreated {
                project_id,
                division_id,
                name,
                code,
            } => {
                let unit = Unit {
                    parent: division_id,
                    name,
                    code,
                    status: UnitStatus::Active,
                };
                self.projects.insert(project_id, unit);
            }
            E::ProjectRenamed { project_id, name } => {
                if let Some(unit) = self.projects.get_mut(&project_id) {
                    unit.name = name;
                }
            }
            E::ProjectArchived { project_id } => {
                if let Some(unit) = self.projects.get_mut(&project_id) {
                    unit.status = UnitStatus::Archived;
                }
            }
            E::SiteCreated {
                site_id,
                project_id,
                name,
                code,
            } => {
                let unit = Unit {
                    parent: project_id,
                    name,
                    code,
                    status: UnitStatus::Active,
                };
                self.sites.insert(site_id, unit);
            }
            E::SiteRenamed { site_id, name } => {
                if let Some(unit) = self.sites.get_mut(&site_id) {
                    unit.name = name;
                }
            }
            E::SiteArchived { site_id } => {
                if let Some(unit) = self.sites.get_mut(&site_id) {
                    unit.status = UnitStatus::Archived;
                }
            }
            E::SiteMoved {
                site_id,
                to_project_id,
                ..
            } => {
                if let Some(unit) = self.sites.get_mut(&site_id) {
                    unit.parent = to_project_id;
                }
            }
        }
    }
}

impl UniqueValues for Organization {
    fn unique_values(event: &OrganizationEvent) -> Vec<UniqueValue> {
        match event {
            OrganizationEvent::OrganizationCreated { code, .. } => vec![UniqueValue {
                scope: "organization.code",
                value: code.as_str().to_owned(),
            }],
            _ => Vec::new(),
        }
    }
}

impl Organization {
    /// The organization's id, once it has been created.
    pub fn id(&self) -> Option<OrganizationId> {
        self.profile.as_ref().map(|profile| profile.id)
    }

    /// Its name.
    pub fn name(&self) -> Option<&Name> {
        self.profile.as_ref().map(|profile| &profile.name)
    }

    /// Its Business Identification Number (VAT registration).
    pub fn bin(&self) -> Option<&Bin> {
        self.profile
            .as_ref()
            .and_then(|profile| profile.bin.as_ref())
    }

    /// The currency its books are kept in.
    pub fn base_currency(&self) -> Option<&CurrencyCode> {
        self.profile.as_ref().map(|profile| &profile.base_currency)
    }

    /// The month and day its fiscal years begin on.
    pub fn fiscal_year_start(&self) -> Option<FiscalYearStart> {
        self.profile
            .as_ref()
            .map(|profile| profile.fiscal_year_start)
    }

    /// Whether the organization itself is archived.
    pub fn is_archived(&self) -> bool {
        self.profile
            .as_ref()
            .is_some_and(|profile| profile.status == UnitStatus::Archived)
    }

    /// The status of one of its projects, if it has that project.
    pub fn project_status(&self, project_id: ProjectId) -> Option<UnitStatus> {
        self.projects.get(&project_id).map(|unit| unit.status)
    }

    /// The project and status of one of its sites, if it has that site.
    pub fn site(&self, site_id: SiteId) -> Option<(ProjectId, UnitStatus)> {
        self.sites
            .get(&site_id)
            .map(|unit| (unit.parent, unit.status))
    }

    /// The rules: which events a command produces against the current state, or why it is refused.
    /// Renaming to the current name and archiving an archived unit change nothing and emit nothing.
    fn decide(
        &self,
        command: OrganizationCommand,
    ) -> Result<Vec<OrganizationEvent>, OrganizationError> {
        use OrganizationCommand as C;
        use OrganizationEvent as E;

        let Some(profile) = &self.profile else {
            return match command {
                C::CreateOrganization(new) => Ok(vec![E::OrganizationCreated {
                    organization_id: new.organization_id,
                    name: new.name,
                    code: new.code,
                    bin: new.bin,
                    tin: new.tin,
                    base_currency: new.base_currency,
                    fiscal_year_start: new.fiscal_year_start,
                }]),
                _ => Err(OrganizationError::OrganizationNotFound),
            };
        };
        let organization_id = profile.id;
        if let C::CreateOrganization(_) = command {
            return Err(OrganizationError::OrganizationAlreadyExists);
        }
        if profile.status == UnitStatus::Archived {
            if command == C::ArchiveOrganization {
                return Ok(Vec::new());
            }
            return Err(archived(UnitKind::Organization, organization_id.as_uuid()));
        }

        match command {
            C::CreateOrganization(_) => Err(OrganizationError::OrganizationAlreadyExists),
            C::RenameOrganization { name } => Ok(if name == profile.name {
                Vec::new()
            } else {
                vec![E::OrganizationRenamed {
                    organization_id,
                    name,
                }]
            }),
            C::ArchiveOrganization => {
                if self.divisions.values().any(is_active) {
                    return Err(OrganizationError::HasActiveChildren {
                        kind: UnitKind::Organization,
                        id: organization_id.as_uuid(),
                        children: UnitKind::Division,
                    });
                }
                Ok(vec![E::OrganizationArchived { organization_id }])
            }

            C::CreateDivision {
                division_id,
                name,
                code,
            } => {
                self.ensure_unused_id(UnitKind::Division, division_id.as_uuid())?;
                if self.divisions.values().any(|unit| unit.code == code) {
                    return Err(duplicate(UnitKind::Division, code, UnitKind::Organization));
                }
                Ok(vec![E::DivisionCreated {
                    division_id,
                    name,
                    code,
                }])
            }
            C::RenameDivision { division_id, name } => {
                let unit = active(&self.divisions, UnitKind::Division, division_id)?;
                Ok(if unit.name == name {
                    Vec::new()
                } else {
                    vec![E::DivisionRenamed { division_id, name }]
                })
            }
            C::ArchiveDivision { division_id } => {
                let unit = found(&self.divisions, UnitKind::Division, division_id)?;
                if unit.status == UnitStatus::Archived {
                    return Ok(Vec::new());
                }
                if self
                    .projects
                    .values()
                    .any(|p| p.parent == division_id && is_active(p))
                {
                    return Err(OrganizationError::HasActiveChildren {
                        kind: UnitKind::Division,
                        id: division_id.as_uuid(),
                        children: UnitKind::Project,
                    });
                }
                Ok(vec![E::DivisionArchived { division_id }])
            }

            C::CreateProject {
                division_id,
                project_id,
                name,
                code,
            } => {
                active(&self.divisions, UnitKind::Division, division_id)?;
                self.ensure_unused_id(UnitKind::Project, project_id.as_uuid())?;
                if self
                    .projects
                    .values()
                    .any(|p| p.parent == division_id && p.code == code)
                {
                    return Err(duplicate(UnitKind::Project, code, UnitKind::Division));
                }
                Ok(vec![E::ProjectCreated {
                    project_id,
                    division_id,
                    name,
                    code,
                }])
            }
            C::RenameProject { project_id, name } => {
                let unit = active(&self.projects, UnitKind::Project, project_id)?;
                Ok(if unit.name == name {
                    Vec::new()
                } else {
                    vec![E::ProjectRenamed { project_id, name }]
                })
            }
            C::ArchiveProject { project_id } => {
                let unit = found(&self.projects, UnitKind::Project, project_id)?;
                if unit.status == UnitStatus::Archived {
                    return Ok(Vec::new());
                }
                if self
                    .sites
                    .values()
                    .any(|s| s.parent == project_id && is_active(s))
                {
                    return Err(OrganizationError::HasActiveChildren {
                        kind: UnitKind::Project,
                        id: project_id.as_uuid(),
                        children: UnitKind::Site,
                    });
                }
                Ok(vec![E::ProjectArchived { project_id }])
            }

            C::CreateSite {
                project_id,
                site_id,
                name,
                code,
            } => {
                active(&self.projects, UnitKind::Project, project_id)?;
                self.ensure_unused_id(UnitKind::Site, site_id.as_uuid())?;
                self.ensure_site_code_free(project_id, &code)?;
                Ok(vec![E::SiteCreated {
                    site_id,
                    project_id,
                    name,
                    code,
                }])
            }
            C::RenameSite { site_id, name } => {
                let unit = active(&self.sites, UnitKind::Site, site_id)?;
                Ok(if unit.name == name {
                    Vec::new()
                } else {
                    vec![E::SiteRenamed { site_id, name }]
                })
            }
            C::ArchiveSite { site_id } => {
                let unit = found(&self.sites, UnitKind::Site, site_id)?;
                Ok(if unit.status == UnitStatus::Archived {
                    Vec::new()
                } else {
                    vec![E::SiteArchived { site_id }]
                })
            }
            C::MoveSite {
                site_id,
                to_project_id,
            } => {
                let site = active(&self.sites, UnitKind::Site, site_id)?;
                active(&self.projects, UnitKind::Project, to_project_id)?;
                if site.parent == to_project_id {
                    return Err(OrganizationError::SiteAlreadyInProject {
                        site_id: site_id.as_uuid(),
                        project_id: to_project_id.as_uuid(),
                    });
                }
                self.ensure_site_code_free(to_project_id, &site.code)?;
                Ok(vec![E::SiteMoved {
                    site_id,
                    from_project_id: site.parent,
                    to_project_id,
                }])
            }
        }
    }

    /// Ids are generated on the write side, so a clash means the same creation was sent twice
    /// with a reused id; refusing it keeps every unit's id unique within the organization.
    fn ensure_unused_id(&self, kind: UnitKind, id: Uuid) -> Result<(), OrganizationError> {
        let taken = self.profile.as_ref().is_some_and(|p| p.id.as_uuid() == id)
            || self.divisions.contains_key(&DivisionId::from_uuid(id))
            || self.projects.contains_key(&ProjectId::from_uuid(id))
            || self.sites.contains_key(&SiteId::from_uuid(id));
        if taken {
            Err(OrganizationError::UnitAlreadyExists { kind, id })
        } else {
            Ok(())
        }
    }

    fn ensure_site_code_free(
        &self,
        project_id: ProjectId,
        code: &Code,
    ) -> Result<(), OrganizationError> {
        if self
            .sites
            .values()
            .any(|s| s.parent == project_id && &s.code == code)
        {
            Err(duplicate(UnitKind::Site, code.clone(), UnitKind::Project))
        } else {
            Ok(())
        }
    }
}

fn is_active<P>(unit: &Unit<P>) -> bool {
    unit.status == UnitStatus::Active
}

fn found<K: Ord + Copy + Into<Uuid>, P>(
    units: &BTreeMap<K, Unit<P>>,
    kind: UnitKind,
    id: K,
) -> Result<&Unit<P>, OrganizationError> {
    units.get(&id).ok_or(OrganizationError::UnitNotFound {
        kind,
        id: id.into(),
    })
}

fn active<K: Ord + Copy + Into<Uuid>, P>(
    units: &BTreeMap<K, Unit<P>>,
    kind: UnitKind,
    id: K,
) -> Result<&Unit<P>, OrganizationError> {
    let unit = found(units, kind, id)?;
    if unit.status == UnitStatus::Archived {
        return Err(archived(kind, id.into()));
    }
    Ok(unit)
}

fn archived(kind: UnitKind, id: Uuid) -> OrganizationError {
    OrganizationError::UnitArchived { kind, id }
}

fn duplicate(kind: UnitKind, code: Code, parent: UnitKind) -> OrganizationError {
    OrganizationError::DuplicateCode { kind, code, parent }
}
