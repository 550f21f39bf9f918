//! Sample data for a first look (`vextrus serve --demo`): one tenant holding a Bangladeshi
//! construction company with its divisions, projects and sites, written through the event store
//! like any command, so the read models, the audit trail and replay see ordinary events.
//!
//! Loading is idempotent: every step carries a fixed idempotency key and names its units with
//! fixed ids, so a second load repeats the first outcome and writes nothing. Later modules add
//! their sample data as further steps of [`load`].

use chrono::NaiveDate;
use uuid::Uuid;
use vextrus_commands::{ActorId, CommandMetadata, EventStore, ExecuteError, PostingState, Version};
use vextrus_domain::TenantId;
use vextrus_domain::finance::{
    EntryKind, EntryLine, JournalCommand, JournalError, Ledger, LedgerCommand, LedgerError,
    LineParty, Money, MoneyError, NewEntry, PartyKind, standard_chart,
};
use vextrus_domain::ids::{DivisionId, EntryId, OrganizationId, ProjectId, SiteId};
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
    #[error("loading the sample ledger: {0}")]
    Ledger(#[from] ExecuteError<LedgerError>),
    #[error("loading the sample journal: {0}")]
    Journal(#[from] ExecuteError<JournalError>),
    #[error("sample amount {value:?} is invalid: {source}")]
    Amount {
        value: &'static str,
        #[source]
        source: MoneyError,
    },
    #[error("the sample chart has no account {0}")]
    Account(&'static str),
    #[error("registering the demo tenant and its administrator: {0}")]
    Identity(String),
    #[error("loading the sample invoicing: {0}")]
    Invoicing(String),
}

impl DemoError {
    fn invoicing(error: impl std::fmt::Display) -> Self {
        Self::Invoicing(error.to_string())
    }
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
    /// Journal entries in the sample ledger (a reversal counts as one).
    pub entries: usize,
    /// Sales invoices and bills, and receipts and payments, in the sample invoicing.
    pub documents: usize,
    pub payments: usize,
    /// Events written by this load (0 when everything was there already).
    pub events_written: u32,
    /// Where the printed requests wait for their read models (set by whoever reads the log after
    /// loading).
    pub positions: DemoPositions,
}

/// Log positions of the demo tenant's last events: the last the hierarchy reads, the last the
/// ledger reads, and the very last. A query's `min_position` must name an event its read model
/// reads: for any other it has nothing to wait for.
#[derive(Debug, Clone, Copy, Default, sqlx::FromRow)]
pub struct DemoPositions {
    pub hierarchy: i64,
    pub ledger: i64,
    pub last: i64,
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
    let entries = load_ledger(store, tenant, organization, &actor, &mut events_written).await?;
    let (documents, payments) =
        load_invoicing(store, tenant, organization, &actor, &mut events_written).await?;
    load_identity(store, tenant, &mut events_written).await?;
    Ok(Demo {
        tenant,
        organization,
        organization_name: ORGANIZATION.1,
        divisions: DIVISIONS.len(),
        projects,
        sites,
        entries,
        documents,
        payments,
        events_written,
        positions: DemoPositions::default(),
    })
}

/// A sample line: account code, debit, credit (decimal text), project path, site path, party.
type SampleLine = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<(PartyKind, &'static str)>,
);

/// Sample entries of fiscal year 2026-27: `(key, date, narration, document number, lines)`.
type SampleEntry = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [SampleLine],
);

const PADMA: Option<&str> = Some("MBL/DHK/PADMA");
const MAWA: Option<&str> = Some("MBL/DHK/PADMA/MAWA");
const PURBACHAL: Option<&str> = Some("MBL/DHK/PURBACHAL");
const RHD: Option<(PartyKind, &str)> = Some((PartyKind::Customer, "Roads and Highways Department"));
const CEMENT: Option<(PartyKind, &str)> = Some((PartyKind::Supplier, "Meghna Cement Mills"));
const PILING: Option<(PartyKind, &str)> = Some((PartyKind::Supplier, "Delta Piling Works"));

const ENTRIES: &[SampleEntry] = &[
    (
        "opening",
        "2026-07-01",
        "Share capital paid in",
        "JV-2627-0001",
        &[
            ("1121", "50000000.00", "", None, None, None),
            ("3100", "", "50000000.00", None, None, None),
        ],
    ),
    (
        "bill-1",
        "2026-07-15",
        "Running bill 1, Padma approach road",
        "JV-2627-0002",
        &[
            ("1130", "11500000.00", "", None, None, RHD),
            ("4100", "", "10000000.00", PADMA, None, None),
            ("2140", "", "1500000.00", None, None, None),
        ],
    ),
    (
        "cement",
        "2026-08-05",
        "Cement for Mawa side, 5,000 bags",
        "JV-2627-0003",
        &[
            ("5110", "2500000.00", "", PADMA, MAWA, None),
            ("2110", "", "2500000.00", None, None, CEMENT),
        ],
    ),
    (
        "piling",
        "2026-08-20",
        "Piling subcontract, first bill (TDS 5%, retention 5%)",
        "JV-2627-0004",
        &[
            ("5120", "4000000.00", "", PADMA, MAWA, None),
            ("2120", "", "3600000.00", None, None, PILING),
            ("2160", "", "200000.00", None, None, None),
            ("2130", "", "200000.00", None, None, PILING),
        ],
    ),
    (
        "receipt-1",
        "2026-09-10",
        "Running bill 1 received",
        "JV-2627-0005",
        &[
            ("1121", "11500000.00", "", None, None, None),
            ("1130", "", "11500000.00", None, None, RHD),
        ],
    ),
    (
        "rent",
        "2026-09-30",
        "Site office rent, Purbachal",
        "JV-2627-0006",
        &[
            ("5220", "300000.00", "", PURBACHAL, None, None),
            ("1121", "", "300000.00", None, None, None),
        ],
    ),
    (
        "salaries",
        "2026-10-31",
        "October site salaries, Padma",
        "JV-2627-0007",
        &[
            ("5210", "1200000.00", "", PADMA, None, None),
            ("1121", "", "1200000.00", None, None, None),
        ],
    ),
    (
        "rent-again",
        "2026-11-05",
        "Site office rent, Purbachal (entered twice)",
        "JV-2627-0008",
        &[
            ("5220", "300000.00", "", PURBACHAL, None, None),
            ("1121", "", "300000.00", None, None, None),
        ],
    ),
];

fn money(value: &'static str) -> Result<Money, DemoError> {
    if value.is_empty() {
        return Ok(Money::ZERO);
    }
    Money::parse(value).map_err(|source| DemoError::Amount { value, source })
}

fn day(text: &str) -> NaiveDate {
    // The sample dates above are fixed and valid; a test loads them.
    text.parse().unwrap_or_default()
}

/// The sample ledger: the standard chart, fiscal years 2025-26 and 2026-27, July 2026 closed,
/// eight entries and the reversal of the one entered twice. Returns how many entries it holds.
async fn load_ledger(
    store: &EventStore,
    tenant: TenantId,
    organization: OrganizationId,
    actor: &ActorId,
    events_written: &mut u32,
) -> Result<usize, DemoError> {
    let stream = organization.to_string();
    let metadata = |step: &str, roles: &str| {
        let mut metadata = CommandMetadata::new(actor.clone()).with_idempotency_key("demo", step);
        metadata.actor_roles = vec![roles.to_owned()];
        metadata
    };
    let written = |outcome: vextrus_commands::CommandOutcome| {
        if outcome.repeated {
            0
        } else {
            outcome.event_count
        }
    };
    let ledger_step = async |step: &str, command: LedgerCommand| {
        let outcome = store
            .execute::<Ledger>(
                tenant,
                &stream,
                command,
                &(),
                &metadata(step, "finance-manager"),
                None,
            )
            .await?;
        Ok::<_, DemoError>(written(outcome))
    };
    *events_written += ledger_step(
        "ledger/standard-chart",
        LedgerCommand::InstallStandardChart(standard_chart(&CurrencyCode::bdt())),
    )
    .await?;
    for start in ["2025-07-01", "2026-07-01"] {
        let start = day(start);
        let end = vextrus_domain::finance::FiscalYear::full_year_end(start).unwrap_or(start);
        *events_written += ledger_step(
            &format!("ledger/fiscal-year/{start}"),
            LedgerCommand::OpenFiscalYear {
                start,
                end,
                short: false,
                fiscal_year_start: FiscalYearStart::default(),
            },
        )
        .await?;
    }
    // The chart's ids were made by the first load; later loads read them back.
    let (ledger, _) = store.load_aggregate::<Ledger>(tenant, &stream).await?;
    let account = |code: &'static str| {
        ledger
            .accounts()
            .find(|(_, account)| account.code.as_str() == code)
            .map(|(id, _)| id)
            .ok_or(DemoError::Account(code))
    };
    let postings = PostingState::default();
    let journal_step =
        async |step: &str, entry: EntryId, command: JournalCommand, expected: Option<Version>| {
            let outcome = store
                .execute_journal(
                    &postings,
                    tenant,
                    organization,
                    entry,
                    command,
                    &metadata(step, "accountant"),
                    expected,
                )
                .await?;
            Ok::<_, DemoError>(written(outcome))
        };
    for (key, date, narration, document, lines) in ENTRIES {
        let entry_id = EntryId::from_uuid(unit_id(&format!("journal/{key}")));
        let lines = lines
            .iter()
            .map(|(code, debit, credit, project, site, party)| {
                Ok(EntryLine {
                    account_id: account(code)?,
                    debit: money(debit)?,
                    credit: money(credit)?,
                    party: party.map(|(kind, name)| LineParty {
                        kind,
                        id: unit_id(&format!("party/{name}")),
                    }),
                    project_id: project.map(|path| ProjectId::from_uuid(unit_id(path))),
                    site_id: site.map(|path| SiteId::from_uuid(unit_id(path))),
                    memo: None,
                })
            })
            .collect::<Result<Vec<_>, DemoError>>()?;
        let entry = NewEntry {
            entry_id,
            organization_id: organization,
            kind: if *key == "opening" {
                EntryKind::Opening
            } else {
                EntryKind::Regular
            },
            date: day(date),
            narration: (*narration).to_owned(),
            reference: None,
            document_number: Some((*document).to_owned()),
            lines,
            round_off: false,
        };
        *events_written += journal_step(
            &format!("journal/{key}"),
            entry_id,
            JournalCommand::Post(entry),
            Some(Version::NONE),
        )
        .await?;
    }
    *events_written += journal_step(
        "journal/rent-again/reverse",
        EntryId::from_uuid(unit_id("journal/rent-again")),
        JournalCommand::Reverse {
            reversal_entry_id: EntryId::from_uuid(unit_id("journal/rent-again/reversal")),
            date: day("2026-11-06"),
            narration: Some("Reversal: site office rent entered twice".to_owned()),
        },
        None,
    )
    .await?;
    *events_written += ledger_step(
        "ledger/close/2026-07-01",
        LedgerCommand::ClosePeriod {
            period: day("2026-07-01"),
        },
    )
    .await?;
    Ok(ENTRIES.len() + 1)
}

/// The sample invoicing, in November 2026: the tax book with the standard rules, the parties of
/// the ledger's entries, a Warn budget for plant hire on the Padma project, running bill 2 to
/// the Roads and Highways Department (construction services at 7.5 %), the piling
/// subcontractor's second bill with VDS, TDS and retention withheld, plant hire over its budget,
/// the department's payment with VAT and income tax deducted at source (its Mushak-6.6
/// certificate received with it), the subcontractor paid its net, and the Mushak-6.6
/// certificate issued for the VAT withheld from it. Returns how many documents and payments it
/// holds.
async fn load_invoicing(
    store: &EventStore,
    tenant: TenantId,
    organization: OrganizationId,
    actor: &ActorId,
    events_written: &mut u32,
) -> Result<(usize, usize), DemoError> {
    use vextrus_domain::finance::{
        Allocation, BudgetAction, BudgetCommand, BudgetLine, Deduction, DeductionKind,
        DocumentAccounts, InvoiceCommand, InvoiceKind, InvoiceLine, NewInvoice, NewPayment, Party,
        PartyCommand, PartyDetails, PaymentCommand, PaymentDirection, Pricing, Quantity, Rate,
        TaxBook, TaxCommand, VdsCertificate, standard_tax_rules,
    };
    use vextrus_domain::ids::{AccountId, BudgetId, InvoiceId, PartyId, PaymentId};

    let metadata = |step: &str, role: &str| {
        let mut metadata = CommandMetadata::new(actor.clone()).with_idempotency_key("demo", step);
        metadata.actor_roles = vec![role.to_owned()];
        metadata
    };
    let mut count = |outcome: vextrus_commands::CommandOutcome| {
        if !outcome.repeated {
            *events_written += outcome.event_count;
        }
    };
    let stream = organization.to_string();
    let (ledger, _) = store.load_aggregate::<Ledger>(tenant, &stream).await?;
    let account = |code: &'static str| -> Result<AccountId, DemoError> {
        ledger
            .accounts()
            .find(|(_, account)| account.code.as_str() == code)
            .map(|(id, _)| id)
            .ok_or(DemoError::Account(code))
    };
    let accounts =
        DocumentAccounts::from_standard_chart(&ledger).ok_or(DemoError::Account("2140"))?;
    let (vat_codes, tds_sections) = standard_tax_rules();
    count(
        store
            .execute::<TaxBook>(
                tenant,
                &stream,
                TaxCommand::Adopt {
                    organization_id: organization,
                    withholding_entity: true,
                    vat_codes,
                    tds_sections,
                    accounts,
                },
                &(),
                &metadata("tax-book/standard", "finance-manager"),
                None,
            )
            .await
            .map_err(DemoError::invoicing)?,
    );
    // The ledger's sample entries name these parties by the same ids.
    let parties = [
        (RHD, true, Some("000000001-0101"), None),
        (CEMENT, false, Some("000000003-0101"), None),
        (PILING, false, Some("000000004-0101"), Some("2120")),
        (
            Some((PartyKind::Supplier, "Bengal Plant Hire")),
            false,
            None,
            None,
        ),
    ];
    for (party, withholding_entity, bin, own_account) in parties {
        let Some((kind, name)) = party else { continue };
        let party_id = PartyId::from_uuid(unit_id(&format!("party/{name}")));
        let details = PartyDetails {
            name: Name::parse(name).map_err(|source| DemoError::Value {
                value: name,
                source,
            })?,
            bin: bin.map(|bin| parse(bin, Bin::parse)).transpose()?,
            tin: None,
            address: Some("Dhaka".to_owned()),
            withholding_entity,
            terms_days: 30,
            account_id: own_account.map(account).transpose()?,
        };
        count(
            store
                .execute::<Party>(
                    tenant,
                    &party_id.to_string(),
                    PartyCommand::Register {
                        party_id,
                        organization_id: organization,
                        kind,
                        details,
                    },
                    &(),
                    &metadata(&format!("party/{name}"), "accountant"),
                    Some(Version::NONE),
                )
                .await
                .map_err(DemoError::invoicing)?,
        );
    }
    let postings = PostingState::default();
    let padma = ProjectId::from_uuid(unit_id("MBL/DHK/PADMA"));
    let mawa = SiteId::from_uuid(unit_id("MBL/DHK/PADMA/MAWA"));
    count(
        store
            .execute_budgets(
                &postings,
                tenant,
                organization,
                BudgetCommand::Set(BudgetLine {
                    budget_id: BudgetId::from_uuid(unit_id("budget/padma/plant-hire")),
                    organization_id: organization,
                    project_id: padma,
                    site_id: None,
                    account_id: account("5140")?,
                    fiscal_year: day("2026-07-01"),
                    amount: money("500000.00")?,
                    action: BudgetAction::Warn,
                }),
                &metadata("budget/padma/plant-hire", "finance-manager"),
                None,
            )
            .await
            .map_err(DemoError::invoicing)?,
    );
    let rate = |text: &'static str| {
        Rate::parse(text).map_err(|_| DemoError::Invoicing(format!("rate {text}")))
    };
    // (key, kind, party, date, description, price, code, account, TDS and retention)
    let documents = [
        (
            "running-bill-2",
            InvoiceKind::SalesInvoice,
            "Roads and Highways Department",
            "2026-11-10",
            "Running bill 2: embankment and sub-base, chainage 2+000 to 4+500",
            "10000000.00",
            "4100",
            false,
        ),
        (
            "piling-2",
            InvoiceKind::PurchaseBill,
            "Delta Piling Works",
            "2026-11-12",
            "Bored piling, 40 piles, second bill",
            "2000000.00",
            "5120",
            true,
        ),
        (
            "plant-hire",
            InvoiceKind::PurchaseBill,
            "Bengal Plant Hire",
            "2026-11-15",
            "Excavator and roller hire, October to November",
            "600000.00",
            "5140",
            false,
        ),
    ];
    for (key, kind, party, date, description, price, code, withheld) in documents {
        let invoice_id = InvoiceId::from_uuid(unit_id(&format!("invoice/{key}")));
        let draft = NewInvoice {
            invoice_id,
            organization_id: organization,
            kind,
            party_id: PartyId::from_uuid(unit_id(&format!("party/{party}"))),
            date: day(date),
            due_date: day(date) + chrono::Days::new(30),
            pricing: Pricing::VatExclusive,
            reference: None,
            narration: None,
            lines: vec![InvoiceLine {
                description: description.to_owned(),
                quantity: Quantity::ONE,
                unit_price: money(price)?,
                vat_code: parse("S004.00", Code::parse)?,
                account_id: account(code)?,
                project_id: Some(padma),
                site_id: Some(mawa),
            }],
            tds_section: withheld
                .then(|| parse("CONTRACT", Code::parse))
                .transpose()?,
            retention: withheld.then(|| rate("5")).transpose()?,
            original: None,
            currency: None,
            exchange_rate: None,
        };
        for (step, command, expected) in [
            (
                format!("invoice/{key}"),
                InvoiceCommand::Draft(draft),
                Some(Version::NONE),
            ),
            (
                format!("invoice/{key}/submit"),
                InvoiceCommand::Submit {
                    issued_at: chrono::Utc::now(),
                    entry_id: EntryId::from_uuid(unit_id(&format!("invoice/{key}/entry"))),
                },
                None,
            ),
        ] {
            count(
                store
                    .execute_invoice(
                        &postings,
                        tenant,
                        organization,
                        invoice_id,
                        command,
                        &metadata(&step, "accountant"),
                        expected,
                    )
                    .await
                    .map_err(DemoError::invoicing)?,
            );
        }
    }
    // (key, direction, party, date, amount, document, allocated, deductions, certificate)
    let payments = [
        (
            "rhd-running-bill-2",
            PaymentDirection::Receipt,
            "Roads and Highways Department",
            "2026-11-28",
            "9500000.00",
            "running-bill-2",
            "10750000.00",
            vec![
                (DeductionKind::Vds, "750000.00"),
                (DeductionKind::Tds, "500000.00"),
            ],
            Some("M66-RHD-2026-0311"),
        ),
        (
            "piling-2",
            PaymentDirection::Payment,
            "Delta Piling Works",
            "2026-11-30",
            "1840000.00",
            "piling-2",
            "1840000.00",
            Vec::new(),
            None,
        ),
    ];
    let payment_count = payments.len();
    for (key, direction, party, date, amount, document, allocated, deductions, certificate) in
        payments
    {
        let payment_id = PaymentId::from_uuid(unit_id(&format!("payment/{key}")));
        let payment = NewPayment {
            payment_id,
            organization_id: organization,
            direction,
            party_id: PartyId::from_uuid(unit_id(&format!("party/{party}"))),
            date: day(date),
            account_id: account("1121")?,
            amount: money(amount)?,
            reference: None,
            narration: None,
            allocations: vec![Allocation {
                invoice_id: InvoiceId::from_uuid(unit_id(&format!("invoice/{document}"))),
                amount: money(allocated)?,
            }],
            deductions: deductions
                .into_iter()
                .map(|(kind, amount)| {
                    Ok(Deduction {
                        kind,
                        amount: money(amount)?,
                    })
                })
                .collect::<Result<_, DemoError>>()?,
            retention_release: None,
            vds_certificate: certificate.map(str::to_owned),
            project_id: None,
            site_id: None,
            currency: None,
            exchange_rate: None,
        };
        count(
            store
                .execute_payment(
                    &postings,
                    tenant,
                    organization,
                    payment_id,
                    PaymentCommand::Record {
                        payment: Box::new(payment),
                        entry_id: EntryId::from_uuid(unit_id(&format!("payment/{key}/entry"))),
                    },
                    &metadata(&format!("payment/{key}"), "accountant"),
                    Some(Version::NONE),
                )
                .await
                .map_err(DemoError::invoicing)?,
        );
    }
    count(
        store
            .execute_invoice(
                &postings,
                tenant,
                organization,
                InvoiceId::from_uuid(unit_id("invoice/piling-2")),
                InvoiceCommand::RecordVdsCertificate {
                    organization_id: organization,
                    certificate: VdsCertificate {
                        number: "M66-MBL-2026-0042".to_owned(),
                        date: day("2026-11-30"),
                    },
                },
                &metadata("certificate/piling-2", "accountant"),
                None,
            )
            .await
            .map_err(DemoError::invoicing)?,
    );
    Ok((documents.len(), payment_count))
}

/// The demo tenant's slug, its administrator's address and password: printed by
/// `serve --demo`, the same on every machine. A demo on your own machine, not a secret.
pub const DEMO_SLUG: &str = "meghna-builders";
pub const DEMO_ADMIN_EMAIL: &str = "admin@meghna-builders.example";
pub const DEMO_ADMIN_PASSWORD: &str = "meghna demo 2026";

/// Registers the demo tenant with the platform (slug [`DEMO_SLUG`]) and an administrator who
/// signs in with [`DEMO_ADMIN_PASSWORD`]: invited and accepted, like any user.
async fn load_identity(
    store: &EventStore,
    tenant: TenantId,
    events_written: &mut u32,
) -> Result<(), DemoError> {
    use vextrus_domain::identity::{
        Email, NewPassword, OneTime, Role, RoleGrant, Slug, Tenant, TenantCommand, User,
        UserCommand,
    };
    use vextrus_domain::ids::UserId;
    let identity = |error: &dyn std::fmt::Display| DemoError::Identity(error.to_string());
    let operator = ActorId::parse(crate::tenants::PLATFORM_OPERATOR).map_err(|e| identity(&e))?;
    let metadata = |actor: &ActorId, step: &str| {
        CommandMetadata::new(actor.clone()).with_idempotency_key("demo", step)
    };
    let outcome = store
        .execute::<Tenant>(
            TenantId::PLATFORM,
            &tenant.as_uuid().to_string(),
            TenantCommand::Register {
                tenant_id: tenant,
                name: parse(ORGANIZATION.1, Name::parse)?,
                slug: Slug::parse(DEMO_SLUG).map_err(|e| identity(&e))?,
            },
            &(),
            &metadata(&operator, "register-tenant"),
            None,
        )
        .await
        .map_err(|e| identity(&e))?;
    if !outcome.repeated {
        *events_written += outcome.event_count;
    }

    let user = UserId::from_uuid(unit_id("user/admin"));
    let (_, invitation) = vextrus_api::identity::secrets::fresh().map_err(|e| identity(&e))?;
    let now = chrono::Utc::now();
    let invited = store
        .execute::<User>(
            tenant,
            &user.as_uuid().to_string(),
            UserCommand::Invite {
                user_id: user,
                email: Email::parse(DEMO_ADMIN_EMAIL).map_err(|e| identity(&e))?,
                name: parse("Demo Administrator", Name::parse)?,
                roles: vec![RoleGrant::tenant_wide(Role::Admin)],
                invitation: OneTime {
                    hash: invitation.clone(),
                    expires_at: now + chrono::Duration::hours(1),
                },
            },
            &(),
            &metadata(&operator, "invite-admin"),
            None,
        )
        .await
        .map_err(|e| identity(&e))?;
    if invited.repeated {
        return Ok(());
    }
    *events_written += invited.event_count;
    let password = NewPassword::parse(DEMO_ADMIN_PASSWORD).map_err(|e| identity(&e))?;
    let password = vextrus_api::identity::password::hash(password)
        .await
        .map_err(|e| identity(&e))?;
    let accepted = store
        .execute::<User>(
            tenant,
            &user.as_uuid().to_string(),
            UserCommand::AcceptInvitation {
                invitation,
                password,
                now,
            },
            &(),
            &metadata(&ActorId::for_user(user), "accept-admin-invitation"),
            None,
        )
        .await
        .map_err(|e| identity(&e))?;
    *events_written += accepted.event_count;
    Ok(())
}
