//! Sample data for a first look (`vextrus serve --demo`): one tenant holding a Bangladeshi
//! construction company with its divisions, projects and sites, written through the event store
//! like any command, so the read models, the audit trail and replay see ordinary events.
//!
//! Loading is idempotent: every step carries a fixed idempotency key and names its units with
//! fixed ids, so a second load repeats the first outcome and writes nothing. Later modules add
//! their sample data as further steps of [`load`].

use uuid::Uuid;
use vextrus_commands::{ActorId, CommandMetadata, EventStore, ExecuteError};
use vextrus_domain::TenantId;
use vextrus_domain::ids::{DivisionId, OrganizationId, ProjectId, SiteId};
use vextrus_domain::organization::{
    NewOrganization, Organization, OrganizationCommand, OrganizationError,
};
use vextrus_domain::values::{Bin, Code, CurrencyCode, FiscalYearStart, Name, Tin, ValueError};

/// The demo tenant: the same on every machine, so the printed token and links stay valid
/// across restarts.
pub const DEMO_TENANT: Uuid = Uuid::from_u128(0x01a2_0000_de30_7000_8000_0000_0000_0001);
/// Who the sample data was recorded by, and the subject of the demo token.
pub const DEMO_USER: &str = "demo@meghna-builders.example";
/// Names the demo's fixed unit ids.
const DEMO_NAMESPACE: Uuid = Uuid::from_u128(0x5d1c_0e8a_61b4_4c3f_9a0e_d3e0_7c41_a2f6);

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("sample value {value:?} is invalid: {source}")]
    Value {
        value: &'static str,
        #[source]
        source: ValueError,
    },
    #[error("the demo user {DEMO_USER:?} is not a valid actor")]
    Actor,
    #[error("loading the sample data: {0}")]
    Execute(#[from] ExecuteError<OrganizationError>),
}

/// What was loaded, for the welcome text.
#[derive(Debug, Clone)]
pub struct Demo {
    pub tenant: TenantId,
    pub organization: OrganizationId,
    pub organization_name: &'static str,
    pub divisions: usize,
    pub projects: usize,
    pub sites: usize,
    /// Events written by this load (0 when everything was there already).
    pub events_written: u32,
}

/// A division with its projects, each with its sites: `(code, name)`.
struct SampleDivision {
    code: &'static str,
    name: &'static str,
    projects: &'static [SampleProject],
}

struct SampleProject {
    code: &'static str,
    name: &'static str,
    sites: &'static [(&'static str, &'static str)],
}

const ORGANIZATION: (&str, &str) = ("MBL", "Meghna Builders Ltd");
const BIN: &str = "002871821-0101";
const TIN: &str = "123456789012";

const DIVISIONS: &[SampleDivision] = &[
    SampleDivision {
        code: "DHK",
        name: "Dhaka Division",
        projects: &[
            SampleProject {
                code: "PADMA",
                name: "Padma Bridge Approach Road",
                sites: &[("MAWA", "Mawa Side"), ("JANJIRA", "Janjira Side")],
            },
            SampleProject {
                code: "PURBACHAL",
                name: "Purbachal Residential Towers",
                sites: &[
                    ("BLOCK-A", "Block A, Sector 15"),
                    ("BLOCK-B", "Block B, Sector 15"),
                ],
            },
        ],
    },
    SampleDivision {
        code: "CTG",
        name: "Chattogram Division",
        projects: &[
            SampleProject {
                code: "KARNAPHULI",
                name: "Karnaphuli Tunnel Link Road",
                sites: &[("ANWARA", "Anwara End"), ("PATENGA", "Patenga End")],
            },
            SampleProject {
                code: "BAY-TERMINAL",
                name: "Bay Terminal Warehouses",
                sites: &[("YARD-1", "Container Yard 1")],
            },
        ],
    },
    SampleDivision {
        code: "SYL",
        name: "Sylhet Division",
        projects: &[SampleProject {
            code: "SURMA",
            name: "Surma River Embankment",
            sites: &[("KANAIGHAT", "Kanaighat Reach")],
        }],
    },
];

/// A later rename, so the audit trail shows a change with its before and after.
const RENAMED_PROJECT: (&str, &str) = ("PURBACHAL", "Purbachal New Town Residential Towers");

fn parse<T>(
    value: &'static str,
    parse: impl FnOnce(&str) -> Result<T, ValueError>,
) -> Result<T, DemoError> {
    parse(value).map_err(|source| DemoError::Value { value, source })
}

/// A fixed id for the unit `path` (e.g. `MBL/DHK/PADMA`).
fn unit_id(path: &str) -> Uuid {
    Uuid::new_v5(&DEMO_NAMESPACE, path.as_bytes())
}

/// Loads the demo tenant (again): nothing is duplicated.
pub async fn load(store: &EventStore) -> Result<Demo, DemoError> {
    let tenant = TenantId::from_uuid(DEMO_TENANT);
    let organization = OrganizationId::from_uuid(unit_id(ORGANIZATION.0));
    let stream = organization.to_string();
    let actor = ActorId::parse(DEMO_USER).map_err(|_| DemoError::Actor)?;
    let mut events_written = 0;
    let mut issue = async |step: &str, command: OrganizationCommand| {
        let mut metadata = CommandMetadata::new(actor.clone()).with_idempotency_key("demo", step);
        metadata.actor_roles = vec!["admin".to_owned()];
        let outcome = store
            .execute::<Organization>(tenant, &stream, command, &(), &metadata, None)
            .await?;
        if !outcome.repeated {
            events_written += outcome.event_count;
        }
        Ok::<_, DemoError>(())
    };

    issue(
        "organization",
        OrganizationCommand::CreateOrganization(NewOrganization {
            organization_id: organization,
            name: parse(ORGANIZATION.1, Name::parse)?,
            code: parse(ORGANIZATION.0, Code::parse)?,
            bin: parse(BIN, Bin::parse)?,
            tin: parse(TIN, Tin::parse)?,
            base_currency: CurrencyCode::bdt(),
            fiscal_year_start: FiscalYearStart::default(),
        }),
    )
    .await?;
    let (mut projects, mut sites) = (0, 0);
    for division in DIVISIONS {
        let division_path = format!("{}/{}", ORGANIZATION.0, division.code);
        let division_id = DivisionId::from_uuid(unit_id(&division_path));
        issue(
            &division_path,
            OrganizationCommand::CreateDivision {
                division_id,
                name: parse(division.name, Name::parse)?,
                code: parse(division.code, Code::parse)?,
            },
        )
        .await?;
        for project in division.projects {
            let project_path = format!("{division_path}/{}", project.code);
            let project_id = ProjectId::from_uuid(unit_id(&project_path));
            issue(
                &project_path,
                OrganizationCommand::CreateProject {
                    division_id,
                    project_id,
                    name: parse(project.name, Name::parse)?,
                    code: parse(project.code, Code::parse)?,
                },
            )
            .await?;
            projects += 1;
            for (code, name) in project.sites {
                let site_path = format!("{project_path}/{code}");
                issue(
                    &site_path,
                    OrganizationCommand::CreateSite {
                        project_id,
                        site_id: SiteId::from_uuid(unit_id(&site_path)),
                        name: parse(name, Name::parse)?,
                        code: parse(code, Code::parse)?,
                    },
                )
                .await?;
                sites += 1;
            }
            if project.code == RENAMED_PROJECT.0 {
                issue(
                    &format!("{project_path} renamed"),
                    OrganizationCommand::RenameProject {
                        project_id,
                        name: parse(RENAMED_PROJECT.1, Name::parse)?,
                    },
                )
                .await?;
            }
        }
    }
    Ok(Demo {
        tenant,
        organization,
        organization_name: ORGANIZATION.1,
        divisions: DIVISIONS.len(),
        projects,
        sites,
        events_written,
    })
}
