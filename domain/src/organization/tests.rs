//! Given events, when a command, then events or an error: one test per rule of the hierarchy.

use cqrs_es::test::TestFramework;

use super::*;
use crate::ids::{DivisionId, OrganizationId, ProjectId, SiteId};
use crate::unique::UniqueValues;
use crate::values::{Bin, Code, CurrencyCode, FiscalYearStart, Name, Tin};

type Framework = TestFramework<Organization>;

fn framework() -> Framework {
    TestFramework::with(())
}

fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
}

fn code(s: &str) -> Code {
    Code::parse(s).unwrap()
}

/// A fixed tree: one organization, division DHK, project PB in it, site S1 in PB.
struct Tree {
    org: OrganizationId,
    division: DivisionId,
    project: ProjectId,
    site: SiteId,
}

impl Tree {
    fn new() -> Self {
        Self {
            org: OrganizationId::new(),
            division: DivisionId::new(),
            project: ProjectId::new(),
            site: SiteId::new(),
        }
    }

    fn created(&self) -> OrganizationEvent {
        OrganizationEvent::OrganizationCreated {
            organization_id: self.org,
            name: name("Meghna Builders Ltd"),
            code: code("MBL"),
            bin: Bin::parse("002871821-0101").unwrap(),
            tin: Tin::parse("123456789012").unwrap(),
            base_currency: CurrencyCode::bdt(),
            fiscal_year_start: FiscalYearStart::default(),
        }
    }

    fn division_created(&self) -> OrganizationEvent {
        OrganizationEvent::DivisionCreated {
            division_id: self.division,
            name: name("Dhaka"),
            code: code("DHK"),
        }
    }

    fn project_created(&self) -> OrganizationEvent {
        OrganizationEvent::ProjectCreated {
            project_id: self.project,
            division_id: self.division,
            name: name("Padma Bridge Approach"),
            code: code("PB"),
        }
    }

    fn site_created(&self) -> OrganizationEvent {
        OrganizationEvent::SiteCreated {
            site_id: self.site,
            project_id: self.project,
            name: name("Mawa"),
            code: code("S1"),
        }
    }

    /// Organization, division, project and site, all active.
    fn full(&self) -> Vec<OrganizationEvent> {
        vec![
            self.created(),
            self.division_created(),
            self.project_created(),
            self.site_created(),
        ]
    }
}

fn new_organization(org: OrganizationId) -> NewOrganization {
    NewOrganization {
        organization_id: org,
        name: name("Meghna Builders Ltd"),
        code: code("MBL"),
        bin: Bin::parse("0028718210101").unwrap(),
        tin: Tin::parse("123456789012").unwrap(),
        base_currency: CurrencyCode::default(),
        fiscal_year_start: FiscalYearStart::default(),
    }
}

#[test]
fn creating_an_organization_records_its_profile_with_taka_and_a_july_fiscal_year() {
    let tree = Tree::new();
    framework()
        .given_no_previous_events()
        .when(OrganizationCommand::CreateOrganization(new_organization(
            tree.org,
        )))
        .then_expect_events(vec![tree.created()]);
}

#[test]
fn creating_an_organization_twice_is_refused() {
    let tree = Tree::new();
    framework()
        .given(vec![tree.created()])
        .when(OrganizationCommand::CreateOrganization(new_organization(
            tree.org,
        )))
        .then_expect_error(OrganizationError::OrganizationAlreadyExists);
}

#[test]
fn commands_on_an_organization_that_does_not_exist_are_refused_as_not_found() {
    framework()
        .given_no_previous_events()
        .when(OrganizationCommand::RenameOrganization { name: name("X") })
        .then_expect_error(OrganizationError::OrganizationNotFound);
}

#[test]
fn an_organization_claims_its_code_tenant_wide() {
    let claims = Organization::unique_values(&Tree::new().created());
    assert_eq!(
        claims,
        vec![crate::UniqueValue {
            scope: "organization.code",
            value: "MBL".into()
        }]
    );
    assert!(Organization::unique_values(&Tree::new().division_created()).is_empty());
}

#[test]
fn renaming_an_organization_records_the_new_name_and_the_same_name_changes_nothing() {
    let tree = Tree::new();
    framework()
        .given(vec![tree.created()])
        .when(OrganizationCommand::RenameOrganization {
            name: name("Meghna Group"),
        })
        .then_expect_events(vec![OrganizationEvent::OrganizationRenamed {
            organization_id: tree.org,
            name: name("Meghna Group"),
        }]);
    framework()
        .given(vec![tree.created()])
        .when(OrganizationCommand::RenameOrganization {
            name: name("Meghna Builders Ltd"),
        })
        .then_expect_events(vec![]);
}

#[test]
fn an_organization_with_active_divisions_cannot_be_archived() {
    let tree = Tree::new();
    framework()
        .given(vec![tree.created(), tree.division_created()])
        .when(OrganizationCommand::ArchiveOrganization)
        .then_expect_error(OrganizationError::HasActiveChildren {
            kind: UnitKind::Organization,
            id: tree.org.as_uuid(),
            children: UnitKind::Division,
        });
}

#[test]
fn an_archived_organization_accepts_no_children_and_no_renames() {
    let tree = Tree::new();
    let archived = vec![
        tree.created(),
        OrganizationEvent::OrganizationArchived {
            organization_id: tree.org,
        },
    ];
    let expected = OrganizationError::UnitArchived {
        kind: UnitKind::Organization,
        id: tree.org.as_uuid(),
    };
    framework()
        .given(archived.clone())
        .when(OrganizationCommand::CreateDivision {
            division_id: DivisionId::new(),
            name: name("Ctg"),
            code: code("CTG"),
        })
        .then_expect_error(expected.clone());
    framework()
        .given(archived.clone())
        .when(OrganizationCommand::RenameOrganization { name: name("New") })
        .then_expect_error(expected);
    framework()
        .given(archived)
        .when(OrganizationCommand::ArchiveOrganization)
        .then_expect_events(vec![]);
}

#[test]
fn division_codes_are_unique_within_the_organization_ignoring_case() {
    let tree = Tree::new();
    framework()
        .given(vec![tree.created(), tree.division_created()])
        .when(OrganizationCommand::CreateDivision {
            division_id: DivisionId::new(),
            name: name("Dhaka 2"),
            code: code("dhk"),
        })
        .then_expect_error(OrganizationError::DuplicateCode {
            kind: UnitKind::Division,
            code: code("DHK"),
            parent: UnitKind::Organization,
        });
}

#[test]
fn a_division_is_created_under_an_active_organization() {
    let tree = Tree::new();
    framework()
        .given(vec![tree.created()])
        .when(OrganizationCommand::CreateDivision {
            division_id: tree.division,
            name: name("Dhaka"),
            code: code("DHK"),
        })
        .then_expect_events(vec![tree.division_created()]);
}

#[test]
fn a_unit_id_cannot_be_used_twice_in_an_organization() {
    let tree = Tree::new();
    framework()
        .given(tree.full())
        .when(OrganizationCommand::CreateSite {
            project_id: tree.project,
            site_id: SiteId::from_uuid(tree.division.as_uuid()),
            name: name("Clash"),
            code: code("S9"),
        })
        .then_expect_error(OrganizationError::UnitAlreadyExists {
            kind: UnitKind::Site,
            id: tree.division.as_uuid(),
        });
}

#[test]
fn a_project_needs_an_existing_division() {
    let tree = Tree::new();
    let missing = DivisionId::new();
    framework()
        .given(vec![tree.created()])
        .when(OrganizationCommand::CreateProject {
            division_id: missing,
            project_id: tree.project,
            name: name("P"),
            code: code("P"),
        })
        .then_expect_error(OrganizationError::UnitNotFound {
            kind: UnitKind::Division,
            id: missing.as_uuid(),
        });
}

#[test]
fn an_archived_division_accepts_no_projects() {
    let tree = Tree::new();
    framework()
        .given(vec![
            tree.created(),
            tree.division_created(),
            OrganizationEvent::DivisionArchived {
                division_id: tree.division,
            },
        ])
        .when(OrganizationCommand::CreateProject {
            division_id: tree.division,
            project_id: tree.project,
            name: name("P"),
            code: code("P"),
        })
        .then_expect_error(OrganizationError::UnitArchived {
            kind: UnitKind::Division,
            id: tree.division.as_uuid(),
        });
}

#[test]
fn project_codes_are_unique_within_their_division_but_may_repeat_in_another() {
    let tree = Tree::new();
    let other_division = DivisionId::new();
    let mut given = vec![
        tree.created(),
        tree.division_created(),
        tree.project_created(),
    ];
    given.push(OrganizationEvent::DivisionCreated {
        division_id: other_division,
        name: name("Chattogram"),
        code: code("CTG"),
    });
    framework()
        .given(given.clone())
        .when(OrganizationCommand::CreateProject {
            division_id: tree.division,
            project_id: ProjectId::new(),
            name: name("Again"),
            code: code("PB"),
        })
        .then_expect_error(OrganizationError::DuplicateCode {
            kind: UnitKind::Project,
            code: code("PB"),
            parent: UnitKind::Division,
        });
    let elsewhere = ProjectId::new();
    framework()
        .given(given)
        .when(OrganizationCommand::CreateProject {
            division_id: other_division,
            project_id: elsewhere,
            name: name("Port"),
            code: code("PB"),
        })
        .then_expect_events(vec![OrganizationEvent::ProjectCreated {
            project_id: elsewhere,
            division_id: other_division,
            name: name("Port"),
            code: code("PB"),
        }]);
}

#[test]
fn a_division_with_active_projects_cannot_be_archived() {
    let tree = Tree::new();
    framework()
        .given(vec![
            tree.created(),
            tree.division_created(),
            tree.project_created(),
        ])
        .when(OrganizationCommand::ArchiveDivision {
            division_id: tree.division,
        })
        .then_expect_error(OrganizationError::HasActiveChildren {
            kind: UnitKind::Division,
            id: tree.division.as_uuid(),
            children: UnitKind::Project,
        });
}

#[test]
fn archiving_bottom_up_succeeds_and_archiving_again_changes_nothing() {
    let tree = Tree::new();
    let mut history = tree.full();
    history.push(OrganizationEvent::SiteArchived { site_id: tree.site });
    framework()
        .given(history.clone())
        .when(OrganizationCommand::ArchiveProject {
            project_id: tree.project,
        })
        .then_expect_events(vec![OrganizationEvent::ProjectArchived {
            project_id: tree.project,
        }]);
    framework()
        .given(history)
        .when(OrganizationCommand::ArchiveSite { site_id: tree.site })
        .then_expect_events(vec![]);
}

#[test]
fn site_codes_are_unique_within_their_project() {
    let tree = Tree::new();
    framework()
        .given(tree.full())
        .when(OrganizationCommand::CreateSite {
            project_id: tree.project,
            site_id: SiteId::new(),
            name: name("Mawa 2"),
            code: code("s1"),
        })
        .then_expect_error(OrganizationError::DuplicateCode {
            kind: UnitKind::Site,
            code: code("S1"),
            parent: UnitKind::Project,
        });
}

#[test]
fn a_project_with_active_sites_cannot_be_archived() {
    let tree = Tree::new();
    framework()
        .given(tree.full())
        .when(OrganizationCommand::ArchiveProject {
            project_id: tree.project,
        })
        .then_expect_error(OrganizationError::HasActiveChildren {
            kind: UnitKind::Project,
            id: tree.project.as_uuid(),
            children: UnitKind::Site,
        });
}

#[test]
fn an_archived_project_accepts_no_sites() {
    let tree = Tree::new();
    let mut history = vec![
        tree.created(),
        tree.division_created(),
        tree.project_created(),
    ];
    history.push(OrganizationEvent::ProjectArchived {
        project_id: tree.project,
    });
    framework()
        .given(history)
        .when(OrganizationCommand::CreateSite {
            project_id: tree.project,
            site_id: tree.site,
            name: name("Mawa"),
            code: code("S1"),
        })
        .then_expect_error(OrganizationError::UnitArchived {
            kind: UnitKind::Project,
            id: tree.project.as_uuid(),
        });
}

#[test]
fn renaming_an_archived_site_is_refused() {
    let tree = Tree::new();
    let mut history = tree.full();
    history.push(OrganizationEvent::SiteArchived { site_id: tree.site });
    framework()
        .given(history)
        .when(OrganizationCommand::RenameSite {
            site_id: tree.site,
            name: name("Janjira"),
        })
        .then_expect_error(OrganizationError::UnitArchived {
            kind: UnitKind::Site,
            id: tree.site.as_uuid(),
        });
}

#[test]
fn each_unit_can_be_renamed() {
    let tree = Tree::new();
    let cases = [
        (
            OrganizationCommand::RenameDivision {
                division_id: tree.division,
                name: name("Dhaka North"),
            },
            OrganizationEvent::DivisionRenamed {
                division_id: tree.division,
                name: name("Dhaka North"),
            },
        ),
        (
            OrganizationCommand::RenameProject {
                project_id: tree.project,
                name: name("Padma Link"),
            },
            OrganizationEvent::ProjectRenamed {
                project_id: tree.project,
                name: name("Padma Link"),
            },
        ),
        (
            OrganizationCommand::RenameSite {
                site_id: tree.site,
                name: name("Janjira"),
            },
            OrganizationEvent::SiteRenamed {
                site_id: tree.site,
                name: name("Janjira"),
            },
        ),
    ];
    for (command, event) in cases {
        framework()
            .given(tree.full())
            .when(command)
            .then_expect_events(vec![event]);
    }
}

#[test]
fn renaming_a_unit_of_another_organization_or_tenant_is_not_found() {
    let tree = Tree::new();
    let stranger = SiteId::new();
    framework()
        .given(tree.full())
        .when(OrganizationCommand::RenameSite {
            site_id: stranger,
            name: name("X"),
        })
        .then_expect_error(OrganizationError::UnitNotFound {
            kind: UnitKind::Site,
            id: stranger.as_uuid(),
        });
}

#[test]
fn a_site_moves_to_another_active_project_of_the_organization() {
    let tree = Tree::new();
    let target = ProjectId::new();
    let mut history = tree.full();
    history.push(OrganizationEvent::ProjectCreated {
        project_id: target,
        division_id: tree.division,
        name: name("Rooppur"),
        code: code("RP"),
    });
    framework()
        .given(history)
        .when(OrganizationCommand::MoveSite {
            site_id: tree.site,
            to_project_id: target,
        })
        .then_expect_events(vec![OrganizationEvent::SiteMoved {
            site_id: tree.site,
            from_project_id: tree.project,
            to_project_id: target,
        }]);
}

#[test]
fn a_site_cannot_move_to_a_project_that_is_not_in_the_organization() {
    let tree = Tree::new();
    let foreign = ProjectId::new();
    framework()
        .given(tree.full())
        .when(OrganizationCommand::MoveSite {
            site_id: tree.site,
            to_project_id: foreign,
        })
        .then_expect_error(OrganizationError::UnitNotFound {
            kind: UnitKind::Project,
            id: foreign.as_uuid(),
        });
}

#[test]
fn a_site_cannot_move_to_an_archived_project() {
    let tree = Tree::new();
    let target = ProjectId::new();
    let mut history = tree.full();
    history.push(OrganizationEvent::ProjectCreated {
        project_id: target,
        division_id: tree.division,
        name: name("Old"),
        code: code("OLD"),
    });
    history.push(OrganizationEvent::ProjectArchived { project_id: target });
    framework()
        .given(history)
        .when(OrganizationCommand::MoveSite {
            site_id: tree.site,
            to_project_id: target,
        })
        .then_expect_error(OrganizationError::UnitArchived {
            kind: UnitKind::Project,
            id: target.as_uuid(),
        });
}

#[test]
fn a_site_cannot_move_into_a_project_that_already_uses_its_code() {
    let tree = Tree::new();
    let target = ProjectId::new();
    let mut history = tree.full();
    history.push(OrganizationEvent::ProjectCreated {
        project_id: target,
        division_id: tree.division,
        name: name("Rooppur"),
        code: code("RP"),
    });
    history.push(OrganizationEvent::SiteCreated {
        site_id: SiteId::new(),
        project_id: target,
        name: name("Other"),
        code: code("S1"),
    });
    framework()
        .given(history)
        .when(OrganizationCommand::MoveSite {
            site_id: tree.site,
            to_project_id: target,
        })
        .then_expect_error(OrganizationError::DuplicateCode {
            kind: UnitKind::Site,
            code: code("S1"),
            parent: UnitKind::Project,
        });
}

#[test]
fn a_site_cannot_move_to_the_project_it_is_in() {
    let tree = Tree::new();
    framework()
        .given(tree.full())
        .when(OrganizationCommand::MoveSite {
            site_id: tree.site,
            to_project_id: tree.project,
        })
        .then_expect_error(OrganizationError::SiteAlreadyInProject {
            site_id: tree.site.as_uuid(),
            project_id: tree.project.as_uuid(),
        });
}

#[test]
fn after_a_move_the_site_belongs_to_its_new_project() {
    let tree = Tree::new();
    let target = ProjectId::new();
    let mut history = tree.full();
    history.push(OrganizationEvent::ProjectCreated {
        project_id: target,
        division_id: tree.division,
        name: name("Rooppur"),
        code: code("RP"),
    });
    history.push(OrganizationEvent::SiteMoved {
        site_id: tree.site,
        from_project_id: tree.project,
        to_project_id: target,
    });
    // The old project no longer has an active site, so it may be archived; its code S1 is free again.
    framework()
        .given(history.clone())
        .when(OrganizationCommand::ArchiveProject {
            project_id: tree.project,
        })
        .then_expect_events(vec![OrganizationEvent::ProjectArchived {
            project_id: tree.project,
        }]);
    framework()
        .given(history)
        .when(OrganizationCommand::ArchiveProject { project_id: target })
        .then_expect_error(OrganizationError::HasActiveChildren {
            kind: UnitKind::Project,
            id: target.as_uuid(),
            children: UnitKind::Site,
        });
}

#[test]
fn event_type_names_match_the_serialized_variant() {
    use cqrs_es::DomainEvent;
    for event in Tree::new().full() {
        let json = serde_json::to_value(&event).unwrap();
        let (variant, _) = json.as_object().unwrap().iter().next().unwrap();
        assert_eq!(variant, &event.event_type());
    }
}
