//! Given events, when a command, then events or an error: one test per rule of the ledger.

use std::sync::Arc;

use chrono::NaiveDate;
use cqrs_es::Aggregate;
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::ids::{AccountId, DivisionId, EntryId, OrganizationId, ProjectId, SiteId};
use crate::organization::{Organization, OrganizationEvent};
use crate::values::{Bin, Code, CurrencyCode, FiscalYearStart, Name, Tin};

pub(super) fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

pub(super) fn taka(text: &str) -> Money {
    Money::parse(text).unwrap()
}

fn account(
    code: &str,
    parent: Option<AccountId>,
    root: Option<RootType>,
    group: bool,
) -> NewAccount {
    NewAccount {
        account_id: AccountId::new(),
        code: Code::parse(code).unwrap(),
        name: Name::parse(&format!("Account {code}")).unwrap(),
        parent_id: parent,
        root_type: root,
        account_type: AccountType::General,
        is_group: group,
        currency: CurrencyCode::bdt(),
    }
}

/// A company with the standard chart, FY 2025-26 open, one division, project P1 with site S1,
/// and project P2.
#[derive(Clone)]
pub(super) struct Books {
    pub(super) org: OrganizationId,
    pub(super) project: ProjectId,
    pub(super) site: SiteId,
    pub(super) other_project: ProjectId,
    pub(super) other_site: SiteId,
    pub(super) chart: Vec<NewAccount>,
    pub(super) ledger_events: Vec<LedgerEvent>,
    pub(super) organization_events: Vec<OrganizationEvent>,
}

impl Books {
    pub(super) fn new() -> Self {
        let org = OrganizationId::new();
        let (division, project, site) = (DivisionId::new(), ProjectId::new(), SiteId::new());
        let (other_project, other_site) = (ProjectId::new(), SiteId::new());
        let name = |s: &str| Name::parse(s).unwrap();
        let code = |s: &str| Code::parse(s).unwrap();
        let organization_events = vec![
            OrganizationEvent::OrganizationCreated {
                organization_id: org,
                name: name("Meghna Builders Ltd"),
                code: code("MBL"),
                bin: Bin::parse("002871821-0101").unwrap(),
                tin: Tin::parse("123456789012").unwrap(),
                base_currency: CurrencyCode::bdt(),
                fiscal_year_start: FiscalYearStart::default(),
            },
            OrganizationEvent::DivisionCreated {
                division_id: division,
                name: name("Dhaka"),
                code: code("DHK"),
            },
            OrganizationEvent::ProjectCreated {
                project_id: project,
                division_id: division,
                name: name("Padma Bridge Approach"),
                code: code("P1"),
            },
            OrganizationEvent::SiteCreated {
                site_id: site,
                project_id: project,
                name: name("Mawa"),
                code: code("S1"),
            },
            OrganizationEvent::ProjectCreated {
                project_id: other_project,
                division_id: division,
                name: name("Metro Rail Depot"),
                code: code("P2"),
            },
            OrganizationEvent::SiteCreated {
                site_id: other_site,
                project_id: other_project,
                name: name("Uttara"),
                code: code("S2"),
            },
        ];
        let chart = standard_chart(&CurrencyCode::bdt());
        let mut ledger_events: Vec<LedgerEvent> = chart
            .iter()
            .cloned()
            .map(LedgerEvent::AccountCreated)
            .collect();
        ledger_events.push(LedgerEvent::FiscalYearOpened(FiscalYear {
            start: date("2025-07-01"),
            end: date("2026-06-30"),
            short: false,
        }));
        Self {
            org,
            project,
            site,
            other_project,
            other_site,
            chart,
            ledger_events,
            organization_events,
        }
    }

    pub(super) fn id(&self, code: &str) -> AccountId {
        self.chart
            .iter()
            .find(|a| a.code.as_str() == code)
            .map(|a| a.account_id)
            .unwrap()
    }

    pub(super) fn with(&self, event: LedgerEvent) -> Self {
        let mut books = self.clone();
        books.ledger_events.push(event);
        books
    }

    pub(super) fn ledger(&self) -> Ledger {
        let mut ledger = Ledger::default();
        for event in self.ledger_events.clone() {
            ledger.apply(event);
        }
        ledger
    }

    pub(super) fn context(&self) -> PostingContext {
        let mut organization = Organization::default();
        for event in self.organization_events.clone() {
            organization.apply(event);
        }
        PostingContext {
            ledger: Arc::new(self.ledger()),
            organization: Arc::new(organization),
        }
    }

    fn journal(&self) -> TestFramework<JournalEntry> {
        TestFramework::with(self.context())
    }

    fn ledger_framework(&self) -> TestFramework<Ledger> {
        TestFramework::with(())
    }

    fn line(&self, code: &str, debit: &str, credit: &str) -> EntryLine {
        EntryLine {
            account_id: self.id(code),
            debit: taka(debit),
            credit: taka(credit),
            party: None,
            project_id: None,
            site_id: None,
            memo: None,
        }
    }

    /// A line on a profit-and-loss account, with project P1.
    fn pl_line(&self, code: &str, debit: &str, credit: &str) -> EntryLine {
        EntryLine {
            project_id: Some(self.project),
            ..self.line(code, debit, credit)
        }
    }

    fn entry(&self, on: &str, lines: Vec<EntryLine>) -> NewEntry {
        NewEntry {
            entry_id: EntryId::new(),
            organization_id: self.org,
            kind: EntryKind::Regular,
            date: date(on),
            narration: "August site rent".to_owned(),
            reference: Some("RENT-08".to_owned()),
            document_number: Some("JV-0001".to_owned()),
            lines,
            round_off: false,
        }
    }

    /// Dr Rent 50,000.00 (project P1) / Cr Cash 50,000.00.
    fn rent(&self, on: &str) -> NewEntry {
        self.entry(
            on,
            vec![
                self.pl_line("5220", "50000", "0"),
                self.line("1110", "0", "50000"),
            ],
        )
    }

    fn refused(&self, entry: NewEntry, error: JournalError) {
        self.journal()
            .given_no_previous_events()
            .when(JournalCommand::Post(entry))
            .then_expect_error(error);
    }

    fn posted(&self, entry: &NewEntry) -> JournalEvent {
        JournalEvent::JournalEntryPosted {
            entry_id: entry.entry_id,
            organization_id: entry.organization_id,
            kind: entry.kind,
            date: entry.date,
            fiscal_year: date("2025-07-01"),
            currency: CurrencyCode::bdt(),
            narration: entry.narration.clone(),
            reference: entry.reference.clone(),
            document_number: entry.document_number.clone(),
            lines: entry.lines.clone(),
        }
    }
}

// Journal entries (scenarios 1–10).

#[test]
fn a_balanced_entry_in_an_open_period_is_posted_as_given() {
    let books = Books::new();
    let entry = books.rent("2025-08-10");
    let expected = books.posted(&entry);
    books
        .journal()
        .given_no_previous_events()
        .when(JournalCommand::Post(entry))
        .then_expect_events(vec![expected]);
}

#[test]
fn an_unbalanced_entry_is_refused_by_the_difference() {
    let books = Books::new();
    let entry = books.entry(
        "2025-08-10",
        vec![
            books.pl_line("5220", "50000", "0"),
            books.line("1110", "0", "49999.99"),
        ],
    );
    books.refused(
        entry,
        JournalError::Unbalanced {
            debit: taka("50000"),
            credit: taka("49999.99"),
            difference: taka("0.01"),
        },
    );
}

#[test]
fn one_line_both_sides_zero_and_negative_lines_are_refused() {
    let books = Books::new();
    let one = books.entry("2025-08-10", vec![books.line("1110", "0", "0.00")]);
    books.refused(one, JournalError::LineSides { line: 0 });
    let single = books.entry("2025-08-10", vec![books.line("1110", "5", "0")]);
    books.refused(
        single,
        JournalError::Unbalanced {
            debit: taka("5"),
            credit: taka("0"),
            difference: taka("5"),
        },
    );
    let both = books.entry(
        "2025-08-10",
        vec![books.line("1110", "5", "5"), books.line("1121", "0", "5")],
    );
    books.refused(both, JournalError::LineSides { line: 0 });
    let mut negative = books.rent("2025-08-10");
    negative.lines[1].credit = Money::from_paisa(-5);
    books.refused(negative, JournalError::LineSides { line: 1 });
}

#[test]
fn a_balanced_single_line_is_still_too_few() {
    let books = Books::new();
    let mut entry = books.entry("2025-08-10", vec![books.line("1110", "5", "0")]);
    entry.round_off = true;
    let books = books.with(LedgerEvent::LedgerConfigured(LedgerSettings {
        require_site: false,
        round_off_account_id: Some(books.id("1121")),
        round_off_allowance: taka("5"),
    }));
    // The round-off line makes two, so an entry of one real line is allowed only through it.
    assert!(
        books
            .journal()
            .given_no_previous_events()
            .when(JournalCommand::Post(entry))
            .inspect_result()
            .is_ok()
    );
    let empty = books.entry("2025-08-10", vec![]);
    books.refused(empty, JournalError::TooFewLines);
}

#[test]
fn group_frozen_and_disabled_accounts_take_no_lines() {
    let books = Books::new();
    let group = books.entry(
        "2025-08-10",
        vec![books.line("1100", "5", "0"), books.line("1110", "0", "5")],
    );
    books.refused(
        group,
        JournalError::GroupAccount {
            line: 0,
            account_id: books.id("1100"),
        },
    );
    let cash = books.id("1110");
    let frozen = books.with(LedgerEvent::AccountFrozen { account_id: cash });
    frozen.refused(
        frozen.rent("2025-08-10"),
        JournalError::AccountFrozen {
            line: 1,
            account_id: cash,
        },
    );
    let disabled = Books::new();
    let cash = disabled.id("1110");
    let disabled = disabled.with(LedgerEvent::AccountDisabled { account_id: cash });
    disabled.refused(
        disabled.rent("2025-08-10"),
        JournalError::AccountDisabled {
            line: 1,
            account_id: cash,
        },
    );
}

#[test]
fn closed_periods_locked_dates_and_dates_outside_every_year_do_not_post() {
    let books = Books::new().with(LedgerEvent::PeriodClosed {
        period: date("2025-07-01"),
    });
    books.refused(
        books.rent("2025-07-31"),
        JournalError::Date(LedgerError::PeriodClosed {
            period: date("2025-07-01"),
        }),
    );
    let entry = books.rent("2025-08-01");
    let expected = books.posted(&entry);
    books
        .journal()
        .given_no_previous_events()
        .when(JournalCommand::Post(entry))
        .then_expect_events(vec![expected]);
    books.refused(
        books.rent("2026-07-01"),
        JournalError::Date(LedgerError::NoFiscalYear(date("2026-07-01"))),
    );
    let locked = books.with(LedgerEvent::LockDateSet {
        lock_date: Some(date("2025-09-30")),
    });
    locked.refused(
        locked.rent("2025-09-30"),
        JournalError::Date(LedgerError::Locked {
            date: date("2025-09-30"),
            lock_date: date("2025-09-30"),
        }),
    );
}

#[test]
fn a_posted_entry_cannot_be_posted_again() {
    let books = Books::new();
    let entry = books.rent("2025-08-10");
    books
        .journal()
        .given(vec![books.posted(&entry)])
        .when(JournalCommand::Post(entry))
        .then_expect_error(JournalError::AlreadyPosted);
}

#[test]
fn a_reversal_swaps_sides_links_both_and_happens_once() {
    let books = Books::new();
    let entry = books.rent("2025-08-10");
    let reversal_entry_id = EntryId::new();
    let reversed = JournalEvent::JournalEntryReversed {
        entry_id: entry.entry_id,
        organization_id: books.org,
        reversal_entry_id,
        date: date("2025-08-20"),
        fiscal_year: date("2025-07-01"),
        currency: CurrencyCode::bdt(),
        narration: "Reversal of August site rent".to_owned(),
        lines: vec![
            books.pl_line("5220", "0", "50000"),
            books.line("1110", "50000", "0"),
        ],
    };
    books
        .journal()
        .given(vec![books.posted(&entry)])
        .when(JournalCommand::Reverse {
            reversal_entry_id,
            date: date("2025-08-20"),
            narration: None,
        })
        .then_expect_events(vec![reversed.clone()]);
    books
        .journal()
        .given(vec![books.posted(&entry), reversed])
        .when(JournalCommand::Reverse {
            reversal_entry_id: EntryId::new(),
            date: date("2025-08-21"),
            narration: None,
        })
        .then_expect_error(JournalError::AlreadyReversed(reversal_entry_id));
    books
        .journal()
        .given_no_previous_events()
        .when(JournalCommand::Reverse {
            reversal_entry_id: EntryId::new(),
            date: date("2025-08-21"),
            narration: None,
        })
        .then_expect_error(JournalError::NotFound);
}

#[test]
fn a_reversal_of_an_entry_in_a_closed_period_is_dated_in_an_open_one() {
    let books = Books::new();
    let entry = books.rent("2025-07-10");
    let closed = books.with(LedgerEvent::PeriodClosed {
        period: date("2025-07-01"),
    });
    let reverse = |on: &str| JournalCommand::Reverse {
        reversal_entry_id: EntryId::new(),
        date: date(on),
        narration: Some("Wrong site".to_owned()),
    };
    assert!(
        closed
            .journal()
            .given(vec![closed.posted(&entry)])
            .when(reverse("2025-08-02"))
            .inspect_result()
            .is_ok()
    );
    closed
        .journal()
        .given(vec![closed.posted(&entry)])
        .when(reverse("2025-07-31"))
        .then_expect_error(JournalError::Date(LedgerError::PeriodClosed {
            period: date("2025-07-01"),
        }));
}

#[test]
fn receivable_lines_name_a_party_and_profit_and_loss_lines_a_project() {
    let books = Books::new();
    let no_party = books.entry(
        "2025-08-10",
        vec![
            books.line("1130", "115000", "0"),
            books.pl_line("4100", "0", "115000"),
        ],
    );
    books.refused(no_party, JournalError::PartyRequired { line: 0 });
    let mut with_party = no_party_fixed(&books);
    books
        .journal()
        .given_no_previous_events()
        .when(JournalCommand::Post(with_party.clone()))
        .inspect_result()
        .unwrap();
    with_party.lines[1].project_id = None;
    books.refused(with_party, JournalError::ProjectRequired { line: 1 });

    let strict = Books::new();
    let strict = strict.with(LedgerEvent::LedgerConfigured(LedgerSettings {
        require_site: true,
        ..LedgerSettings::default()
    }));
    strict.refused(
        strict.rent("2025-08-10"),
        JournalError::SiteRequired { line: 0 },
    );
    let mut with_site = strict.rent("2025-08-10");
    with_site.lines[0].site_id = Some(strict.site);
    strict
        .journal()
        .given_no_previous_events()
        .when(JournalCommand::Post(with_site))
        .inspect_result()
        .unwrap();
}

fn no_party_fixed(books: &Books) -> NewEntry {
    let mut entry = books.entry(
        "2025-08-10",
        vec![
            books.line("1130", "115000", "0"),
            books.pl_line("4100", "0", "115000"),
        ],
    );
    entry.lines[0].party = Some(LineParty {
        kind: PartyKind::Customer,
        id: Uuid::now_v7(),
    });
    entry
}

#[test]
fn an_opening_entry_touches_no_profit_and_loss_account() {
    let books = Books::new();
    let mut opening = books.rent("2025-07-01");
    opening.kind = EntryKind::Opening;
    books.refused(
        opening,
        JournalError::OpeningTouchesProfitAndLoss { line: 0 },
    );
    let mut opening = books.entry(
        "2025-07-01",
        vec![
            books.line("1110", "100000", "0"),
            books.line("3100", "0", "100000"),
        ],
    );
    opening.kind = EntryKind::Opening;
    books
        .journal()
        .given_no_previous_events()
        .when(JournalCommand::Post(opening))
        .inspect_result()
        .unwrap();
}

#[test]
fn accounts_projects_and_sites_must_be_the_organizations_and_sites_their_projects() {
    let books = Books::new();
    let mut foreign = books.rent("2025-08-10");
    let stranger = AccountId::new();
    foreign.lines[1].account_id = stranger;
    books.refused(
        foreign,
        JournalError::AccountNotFound {
            line: 1,
            account_id: stranger,
        },
    );
    let mut wrong_site = books.rent("2025-08-10");
    wrong_site.lines[0].site_id = Some(books.other_site);
    books.refused(wrong_site, JournalError::SiteNotInProject { line: 0 });
    let mut unknown_project = books.rent("2025-08-10");
    unknown_project.lines[0].project_id = Some(ProjectId::new());
    books.refused(unknown_project, JournalError::ProjectNotFound { line: 0 });
    let mut archived = books.rent("2025-08-10");
    archived.lines[0].project_id = Some(books.other_project);
    let mut with_archive = Books::new();
    with_archive.organization_events = books.organization_events.clone();
    with_archive.chart = books.chart.clone();
    with_archive.ledger_events = books.ledger_events.clone();
    with_archive
        .organization_events
        .push(OrganizationEvent::SiteArchived {
            site_id: books.other_site,
        });
    with_archive
        .organization_events
        .push(OrganizationEvent::ProjectArchived {
            project_id: books.other_project,
        });
    with_archive.refused(archived, JournalError::ProjectArchived { line: 0 });
    let mut other_org = books.rent("2025-08-10");
    other_org.organization_id = OrganizationId::new();
    books.refused(other_org, JournalError::OrganizationNotFound);
}

#[test]
fn an_allowed_rounding_difference_becomes_an_explicit_round_off_line() {
    let books = Books::new();
    let round_off = books.id("5270");
    let books = books.with(LedgerEvent::LedgerConfigured(LedgerSettings {
        require_site: false,
        round_off_account_id: Some(round_off),
        round_off_allowance: taka("0.05"),
    }));
    let mut entry = books.entry(
        "2025-08-10",
        vec![
            books.pl_line("5220", "33.33", "0"),
            books.pl_line("5220", "33.33", "0"),
            books.pl_line("5220", "33.33", "0"),
            books.line("1110", "0", "100"),
        ],
    );
    books.refused(
        entry.clone(),
        JournalError::Unbalanced {
            debit: taka("99.99"),
            credit: taka("100"),
            difference: taka("0.01"),
        },
    );
    entry.round_off = true;
    let mut expected = entry.clone();
    expected.lines.push(EntryLine {
        account_id: round_off,
        debit: taka("0.01"),
        credit: Money::ZERO,
        party: None,
        project_id: Some(books.project),
        site_id: None,
        memo: Some("Round-off".to_owned()),
    });
    let expected = books.posted(&expected);
    books
        .journal()
        .given_no_previous_events()
        .when(JournalCommand::Post(entry.clone()))
        .then_expect_events(vec![expected]);
    entry.lines[3].credit = taka("100.06");
    books.refused(
        entry,
        JournalError::AboveRoundOffAllowance {
            difference: taka("0.07"),
            allowance: taka("0.05"),
        },
    );
}

// The chart (scenario 11).

#[test]
fn an_account_with_postings_cannot_become_a_group_change_currency_or_be_deleted() {
    let books = Books::new();
    let rent = books.id("5220");
    let posted = books.with(LedgerEvent::AccountsFirstPosted {
        account_ids: vec![rent],
    });
    let given = || posted.ledger_events.clone();
    for command in [
        LedgerCommand::SetAccountGroup {
            account_id: rent,
            is_group: true,
        },
        LedgerCommand::DeleteAccount { account_id: rent },
        LedgerCommand::ChangeAccountCurrency {
            account_id: rent,
            currency: CurrencyCode::parse("USD").unwrap(),
        },
    ] {
        posted
            .ledger_framework()
            .given(given())
            .when(command)
            .then_expect_error(LedgerError::AccountHasPostings(rent));
    }
    // Before any posting, each is allowed.
    books
        .ledger_framework()
        .given(books.ledger_events.clone())
        .when(LedgerCommand::DeleteAccount { account_id: rent })
        .then_expect_events(vec![LedgerEvent::AccountDeleted { account_id: rent }]);
}

#[test]
fn only_the_first_posting_to_an_account_marks_it() {
    let books = Books::new();
    let (rent, cash) = (books.id("5220"), books.id("1110"));
    let ledger = books
        .with(LedgerEvent::AccountsFirstPosted {
            account_ids: vec![cash],
        })
        .ledger();
    assert_eq!(ledger.first_postings([rent, cash, rent]), vec![rent]);
}

#[test]
fn codes_are_unique_and_parents_are_groups_of_the_same_root() {
    let books = Books::new();
    let given = || books.ledger_events.clone();
    books
        .ledger_framework()
        .given(given())
        .when(LedgerCommand::CreateAccount(account(
            "1110",
            None,
            Some(RootType::Asset),
            false,
        )))
        .then_expect_error(LedgerError::DuplicateCode(Code::parse("1110").unwrap()));
    let cash = books.id("1110");
    books
        .ledger_framework()
        .given(given())
        .when(LedgerCommand::CreateAccount(account(
            "1111",
            Some(cash),
            None,
            false,
        )))
        .then_expect_error(LedgerError::ParentNotGroup(cash));
    books
        .ledger_framework()
        .given(given())
        .when(LedgerCommand::CreateAccount(account(
            "9000", None, None, true,
        )))
        .then_expect_error(LedgerError::RootTypeRequired);
    let assets = books.id("1100");
    books
        .ledger_framework()
        .given(given())
        .when(LedgerCommand::CreateAccount(account(
            "1199",
            Some(assets),
            Some(RootType::Income),
            false,
        )))
        .then_expect_error(LedgerError::RootTypeMismatch {
            given: "income",
            parent: "asset",
        });
    let petty = account("1112", Some(assets), None, false);
    books
        .ledger_framework()
        .given(given())
        .when(LedgerCommand::CreateAccount(petty.clone()))
        .then_expect_events(vec![LedgerEvent::AccountCreated(petty)]);
    books
        .ledger_framework()
        .given(given())
        .when(LedgerCommand::InstallStandardChart(standard_chart(
            &CurrencyCode::bdt(),
        )))
        .then_expect_error(LedgerError::ChartNotEmpty);
}

#[test]
fn freezing_twice_changes_nothing() {
    let books = Books::new();
    let cash = books.id("1110");
    books
        .ledger_framework()
        .given(
            books
                .with(LedgerEvent::AccountFrozen { account_id: cash })
                .ledger_events,
        )
        .when(LedgerCommand::FreezeAccount { account_id: cash })
        .then_expect_events(vec![]);
}

// The calendar (scenarios 12 and 26).

fn open_year(start: &str, end: &str, short: bool) -> LedgerCommand {
    LedgerCommand::OpenFiscalYear {
        start: date(start),
        end: date(end),
        short,
        fiscal_year_start: FiscalYearStart::default(),
    }
}

#[test]
fn a_fiscal_year_is_exactly_one_year_unless_short_and_years_never_overlap() {
    let framework = || TestFramework::<Ledger>::with(());
    framework()
        .given_no_previous_events()
        .when(open_year("2025-07-01", "2026-06-30", false))
        .then_expect_events(vec![LedgerEvent::FiscalYearOpened(FiscalYear {
            start: date("2025-07-01"),
            end: date("2026-06-30"),
            short: false,
        })]);
    framework()
        .given_no_previous_events()
        .when(open_year("2025-07-01", "2026-06-29", false))
        .then_expect_error(LedgerError::YearLength {
            start: date("2025-07-01"),
            full_end: date("2026-06-30"),
        });
    framework()
        .given_no_previous_events()
        .when(open_year("2025-01-01", "2025-12-31", false))
        .then_expect_error(LedgerError::YearStartMismatch(FiscalYearStart::default()));
    assert!(
        framework()
            .given_no_previous_events()
            .when(open_year("2025-01-15", "2025-06-30", true))
            .inspect_result()
            .is_ok()
    );
    let books = Books::new();
    books
        .ledger_framework()
        .given(books.ledger_events.clone())
        .when(open_year("2026-01-01", "2026-06-30", true))
        .then_expect_error(LedgerError::YearOverlaps {
            start: date("2025-07-01"),
            end: date("2026-06-30"),
        });
}

#[test]
fn a_period_reopens_unless_its_year_or_a_later_one_is_closed() {
    let books = Books::new().with(LedgerEvent::PeriodClosed {
        period: date("2025-07-01"),
    });
    books
        .ledger_framework()
        .given(books.ledger_events.clone())
        .when(LedgerCommand::ReopenPeriod {
            period: date("2025-07-01"),
        })
        .then_expect_events(vec![LedgerEvent::PeriodReopened {
            period: date("2025-07-01"),
        }]);
    books
        .ledger_framework()
        .given(books.ledger_events.clone())
        .when(LedgerCommand::ClosePeriod {
            period: date("2025-07-15"),
        })
        .then_expect_error(LedgerError::NotAPeriod(date("2025-07-15")));
    let closed = books.with(LedgerEvent::FiscalYearClosed {
        start: date("2025-07-01"),
        end: date("2026-06-30"),
        closing_entry_id: EntryId::new(),
        retained_earnings_account_id: AccountId::new(),
        lines: vec![],
    });
    closed
        .ledger_framework()
        .given(closed.ledger_events.clone())
        .when(LedgerCommand::ReopenPeriod {
            period: date("2025-07-01"),
        })
        .then_expect_error(LedgerError::YearClosed(date("2025-07-01")));
}

fn all_periods_closed(mut books: Books, start: &str) -> Books {
    let year = FiscalYear {
        start: date(start),
        end: FiscalYear::full_year_end(date(start)).unwrap(),
        short: false,
    };
    for period in year.periods() {
        books = books.with(LedgerEvent::PeriodClosed { period });
    }
    books
}

#[test]
fn year_end_closing_moves_the_result_to_retained_earnings() {
    let books = all_periods_closed(Books::new(), "2025-07-01");
    let retained = books.id("3200");
    let closing_entry_id = EntryId::new();
    let balances = vec![
        // Revenue: a credit balance of 3,00,000.00; rent: a debit balance of 50,000.00.
        books.pl_line("4100", "0", "300000"),
        books.pl_line("5220", "50000", "0"),
    ];
    let mut expected_lines = vec![
        books.pl_line("4100", "300000", "0"),
        books.pl_line("5220", "0", "50000"),
    ];
    expected_lines.push(EntryLine {
        memo: Some("Result of the year".to_owned()),
        ..books.line("3200", "0", "250000")
    });
    books
        .ledger_framework()
        .given(books.ledger_events.clone())
        .when(LedgerCommand::CloseFiscalYear {
            start: date("2025-07-01"),
            retained_earnings_account_id: retained,
            closing_entry_id,
            balances: balances.clone(),
        })
        .then_expect_events(vec![LedgerEvent::FiscalYearClosed {
            start: date("2025-07-01"),
            end: date("2026-06-30"),
            closing_entry_id,
            retained_earnings_account_id: retained,
            lines: expected_lines,
        }]);
}

#[test]
fn year_end_closing_needs_every_period_and_the_previous_year_closed() {
    let books = Books::new();
    let retained = books.id("3200");
    let close = |start: &str| LedgerCommand::CloseFiscalYear {
        start: date(start),
        retained_earnings_account_id: retained,
        closing_entry_id: EntryId::new(),
        balances: vec![],
    };
    books
        .ledger_framework()
        .given(books.ledger_events.clone())
        .when(close("2025-07-01"))
        .then_expect_error(LedgerError::PeriodsOpen(date("2025-07-01")));
    let next = all_periods_closed(
        books.with(LedgerEvent::FiscalYearOpened(FiscalYear {
            start: date("2026-07-01"),
            end: date("2027-06-30"),
            short: false,
        })),
        "2026-07-01",
    );
    next.ledger_framework()
        .given(next.ledger_events.clone())
        .when(close("2026-07-01"))
        .then_expect_error(LedgerError::PreviousYearOpen(date("2025-07-01")));
    let cash = next.id("1110");
    let all = all_periods_closed(next, "2025-07-01");
    all.ledger_framework()
        .given(all.ledger_events.clone())
        .when(LedgerCommand::CloseFiscalYear {
            start: date("2025-07-01"),
            retained_earnings_account_id: cash,
            closing_entry_id: EntryId::new(),
            balances: vec![],
        })
        .then_expect_error(LedgerError::InvalidRetainedEarnings);
}

#[test]
fn a_closed_year_takes_no_postings() {
    let books = Books::new().with(LedgerEvent::FiscalYearClosed {
        start: date("2025-07-01"),
        end: date("2026-06-30"),
        closing_entry_id: EntryId::new(),
        retained_earnings_account_id: AccountId::new(),
        lines: vec![],
    });
    books.refused(
        books.rent("2025-08-10"),
        JournalError::Date(LedgerError::PeriodClosed {
            period: date("2025-08-01"),
        }),
    );
}

mod text {
    use proptest::prelude::*;

    use super::super::{TEXT_PATTERN, valid_text};

    #[test]
    fn text_is_trimmed_by_the_writer_never_by_us() {
        assert!(valid_text("August site rent, Mawa"));
        assert!(valid_text("আগস্ট মাসের ভাড়া"));
        for bad in ["", " rent", "rent ", "rent\nmore", "\u{85}"] {
            assert!(!valid_text(bad), "{bad:?}");
        }
        assert!(valid_text(&"x".repeat(500)));
        assert!(!valid_text(&"x".repeat(501)));
    }

    proptest! {
        #[test]
        fn the_pattern_accepts_exactly_valid_text(text in "(?s).{0,6}|x{495,505}") {
            let pattern = regex::Regex::new(TEXT_PATTERN).unwrap();
            prop_assert_eq!(pattern.is_match(&text), valid_text(&text), "{:?}", text);
        }
    }
}
