//! The general ledger's read models (`migrations/0012_finance.sql`), from `ledger` and
//! `journal_entry` events:
//!
//! - the chart, the ledger settings, the fiscal years and closed periods: state rows owned by
//!   the organization's ledger stream ([`Table`]);
//! - journal entries (posted, reversals, year-end closings): a state row each, owned by the
//!   stream that posted it;
//! - their lines, the account ledger: insert-only ([`Lines`]);
//! - debits, credits and line counts per account and month, and per account, month, project and
//!   site: [`Counters`] that every entry adds to, exact under any number of Kafka workers because
//!   additions commute. The trial balance, balance sheet and P&L read these, never the lines.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use cqrs_es::Aggregate;
use uuid::Uuid;
use vextrus_commands::RecordedEvent;
use vextrus_domain::finance::{
    EntryKind, EntryLine, JournalEntry, JournalEvent, Ledger, LedgerEvent, NewAccount,
};

use crate::projection::{Projection, ProjectionError};
use crate::{read_model, row};

/// Builds the general ledger's read models.
#[derive(Debug, Default, Clone, Copy)]
pub struct GeneralLedger;

read_model! {
    /// The ledger rows a batch works on.
    #[derive(Debug)]
    pub struct LedgerRows {
        accounts: Table<AccountRow>,
        ledgers: Table<LedgerRow>,
        fiscal_years: Table<FiscalYearRow>,
        closed_periods: Table<ClosedPeriodRow>,
        entries: Table<EntryRow>,
        lines: Lines<EntryLineRow>,
        balances: Counters<AccountBalance>,
        fiscal_years_totals: Counters<AccountFiscalYear>,
        dimensions: Counters<DimensionBalance>,
    }
}

row! {
    /// An account of the chart.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AccountRow in "fin_accounts" {
        key { account_id: Uuid }
        organization_id: Uuid,
        code: String,
        name: String,
        parent_id: Option<Uuid>,
        root_type: String,
        account_type: String,
        is_group: bool,
        currency: String,
        frozen: bool,
        disabled: bool,
        has_postings: bool,
        updated_at: DateTime<Utc>,
    }
}

row! {
    /// An organization's ledger: its stream version and settings.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct LedgerRow in "fin_ledgers" {
        key { organization_id: Uuid }
        version: i64,
        lock_date: Option<NaiveDate>,
        require_site: bool,
        round_off_account_id: Option<Uuid>,
        round_off_allowance: i64,
    }
}

row! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FiscalYearRow in "fin_fiscal_years" {
        key { organization_id: Uuid, start_date: NaiveDate }
        end_date: NaiveDate,
        short: bool,
        closed: bool,
        closing_entry_id: Option<Uuid>,
    }
}

row! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ClosedPeriodRow in "fin_closed_periods" {
        key { organization_id: Uuid, period: NaiveDate }
        closed_at: DateTime<Utc>,
        closed_by: String,
    }
}

row! {
    /// A journal entry, a reversal or a year-end closing entry.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct EntryRow in "fin_entries" {
        key { entry_id: Uuid }
        organization_id: Uuid,
        kind: String,
        date: NaiveDate,
        currency: String,
        narration: String,
        reference: Option<String>,
        document_number: Option<String>,
        /// The sum of the debits (= of the credits), in paisa.
        total: i64,
        line_count: i32,
        reverses: Option<Uuid>,
        reversed_by: Option<Uuid>,
        posted_at: DateTime<Utc>,
        posted_by: String,
        /// Log position of the event that posted it: the order of entries within a day.
        position: i64,
    }
}

row! {
    /// One posted line.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct EntryLineRow in "fin_entry_lines" {
        key { entry_id: Uuid, line_no: i32 }
        organization_id: Uuid,
        account_id: Uuid,
        date: NaiveDate,
        position: i64,
        debit: i64,
        credit: i64,
        party_kind: Option<String>,
        party_id: Option<Uuid>,
        project_id: Option<Uuid>,
        site_id: Option<Uuid>,
        memo: Option<String>,
    }
}

row! {
    /// Totals of one account in one calendar month (its first day).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct AccountBalance in "fin_account_balances" {
        key { account_id: Uuid, month: NaiveDate }
        organization_id: Uuid,
        debit: i64 => additive,
        credit: i64 => additive,
        lines: i64 => additive,
    }
}

row! {
    /// Totals of one account in one fiscal year (its first day, as the entries record it): a
    /// year's trial balance sums whole years for its opening balance and one row per account
    /// for its debits and credits.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct AccountFiscalYear in "fin_account_fiscal_years" {
        key { account_id: Uuid, fiscal_year: NaiveDate }
        organization_id: Uuid,
        debit: i64 => additive,
        credit: i64 => additive,
        lines: i64 => additive,
    }
}

row! {
    /// Totals of one account in one month for one project and site (nil UUID: none).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct DimensionBalance in "fin_dimension_balances" {
        key { account_id: Uuid, month: NaiveDate, project_id: Uuid, site_id: Uuid }
        organization_id: Uuid,
        debit: i64 => additive,
        credit: i64 => additive,
        lines: i64 => additive,
    }
}

/// The first day of `date`'s calendar month.
pub fn month_of(date: NaiveDate) -> NaiveDate {
    date.with_day(1).unwrap_or(date)
}

fn organization_of(event: &RecordedEvent) -> Result<Uuid, ProjectionError> {
    event.aggregate_id.parse::<Uuid>().map_err(|_| {
        ProjectionError::Inconsistent(format!("ledger id {:?} is not a UUID", event.aggregate_id))
    })
}

fn missing(what: &str) -> ProjectionError {
    ProjectionError::Inconsistent(format!("{what} is not in the read model"))
}

/// A posted entry's row and lines, whatever posted it.
struct Posting<'a> {
    entry_id: Uuid,
    organization_id: Uuid,
    kind: EntryKind,
    date: NaiveDate,
    fiscal_year: NaiveDate,
    currency: &'a str,
    narration: &'a str,
    reference: Option<&'a str>,
    document_number: Option<&'a str>,
    reverses: Option<Uuid>,
    lines: &'a [EntryLine],
}

impl LedgerRows {
    fn post(
        &mut self,
        tenant: Uuid,
        event: &RecordedEvent,
        posting: Posting<'_>,
    ) -> Result<(), ProjectionError> {
        let line_count = i32::try_from(posting.lines.len())
            .map_err(|_| ProjectionError::Inconsistent("too many lines".to_owned()))?;
        let position = event.global_position.get();
        let month = month_of(posting.date);
        let mut total = 0i64;
        for (line_no, line) in (0i32..).zip(posting.lines) {
            let (debit, credit) = (line.debit.paisa(), line.credit.paisa());
            total += debit;
            let account_id = line.account_id.as_uuid();
            let project_id = line.project_id.map(|id| id.as_uuid());
            let site_id = line.site_id.map(|id| id.as_uuid());
            self.lines.push(
                tenant,
                (posting.entry_id, line_no),
                EntryLineRow {
                    organization_id: posting.organization_id,
                    account_id,
                    date: posting.date,
                    position,
                    debit,
                    credit,
                    party_kind: line.party.map(|party| party.kind.as_str().to_owned()),
                    party_id: line.party.map(|party| party.id),
                    project_id,
                    site_id,
                    memo: line.memo.clone(),
                },
            );
            let organization_id = posting.organization_id;
            self.balances.add(tenant, (account_id, month), |b| {
                b.organization_id = organization_id;
                b.debit += debit;
                b.credit += credit;
                b.lines += 1;
            });
            self.fiscal_years_totals
                .add(tenant, (account_id, posting.fiscal_year), |b| {
                    b.organization_id = organization_id;
                    b.debit += debit;
                    b.credit += credit;
                    b.lines += 1;
                });
            let dimension = (
                account_id,
                month,
                project_id.unwrap_or(Uuid::nil()),
                site_id.unwrap_or(Uuid::nil()),
            );
            self.dimensions.add(tenant, dimension, |b| {
                b.organization_id = organization_id;
                b.debit += debit;
                b.credit += credit;
                b.lines += 1;
            });
        }
        self.entries.insert(
            tenant,
            posting.entry_id,
            EntryRow {
                organization_id: posting.organization_id,
                kind: posting.kind.as_str().to_owned(),
                date: posting.date,
                currency: posting.currency.to_owned(),
                narration: posting.narration.to_owned(),
                reference: posting.reference.map(str::to_owned),
                document_number: posting.document_number.map(str::to_owned),
                total,
                line_count,
                reverses: posting.reverses,
                reversed_by: None,
                posted_at: event.recorded_at,
                posted_by: event.actor.clone(),
                position,
            },
        );
        Ok(())
    }

    fn account_row(
        organization_id: Uuid,
        new: &NewAccount,
        root_type: &str,
        at: DateTime<Utc>,
    ) -> AccountRow {
        AccountRow {
            organization_id,
            code: new.code.as_str().to_owned(),
            name: new.name.as_str().to_owned(),
            parent_id: new.parent_id.map(|id| id.as_uuid()),
            root_type: root_type.to_owned(),
            account_type: new.account_type.as_str().to_owned(),
            is_group: new.is_group,
            currency: new.currency.as_str().to_owned(),
            frozen: false,
            disabled: false,
            has_postings: false,
            updated_at: at,
        }
    }

    fn apply_ledger(&mut self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let tenant = event.tenant_id.as_uuid();
        let organization = organization_of(event)?;
        let decoded = event.decode::<LedgerEvent>()?;
        let at = event.recorded_at;
        let version = event.sequence;
        // Changed here and saved once the event has applied, so a failing event changes nothing.
        let mut ledger = self
            .ledgers
            .get(tenant, &organization)
            .cloned()
            .unwrap_or(LedgerRow {
                version,
                lock_date: None,
                require_site: false,
                round_off_account_id: None,
                round_off_allowance: 0,
            });
        let account = |rows: &mut Self, id: Uuid, edit: &dyn Fn(&mut AccountRow)| {
            rows.accounts
                .change(tenant, &id, |row| {
                    edit(row);
                    row.updated_at = at;
                })
                .ok_or_else(|| missing("the account"))
        };
        use LedgerEvent as E;
        match decoded {
            E::AccountCreated(new) => {
                let root_type = match (new.root_type, new.parent_id) {
                    (Some(root), _) => root.as_str().to_owned(),
                    (None, Some(parent)) => self
                        .accounts
                        .get(tenant, &parent.as_uuid())
                        .ok_or_else(|| missing("the parent account"))?
                        .root_type
                        .clone(),
                    (None, None) => return Err(missing("the root type")),
                };
                let row = Self::account_row(organization, &new, &root_type, at);
                self.accounts.insert(tenant, new.account_id.as_uuid(), row);
            }
            E::AccountRenamed { account_id, name } => {
                account(self, account_id.as_uuid(), &|row| {
                    name.as_str().clone_into(&mut row.name)
                })?;
            }
            E::AccountGroupChanged {
                account_id,
                is_group,
            } => {
                account(self, account_id.as_uuid(), &|row| row.is_group = is_group)?;
            }
            E::AccountCurrencyChanged {
                account_id,
                currency,
            } => {
                account(self, account_id.as_uuid(), &|row| {
                    currency.as_str().clone_into(&mut row.currency)
                })?;
            }
            E::AccountTypeChanged {
                account_id,
                account_type,
            } => {
                account(self, account_id.as_uuid(), &|row| {
                    account_type.as_str().clone_into(&mut row.account_type)
                })?;
            }
            E::AccountFrozen { account_id } => {
                account(self, account_id.as_uuid(), &|row| row.frozen = true)?;
            }
            E::AccountUnfrozen { account_id } => {
                account(self, account_id.as_uuid(), &|row| row.frozen = false)?;
            }
            E::AccountDisabled { account_id } => {
                account(self, account_id.as_uuid(), &|row| row.disabled = true)?;
            }
            E::AccountEnabled { account_id } => {
                account(self, account_id.as_uuid(), &|row| row.disabled = false)?;
            }
            E::AccountDeleted { account_id } => {
                self.accounts
                    .remove(tenant, &account_id.as_uuid())
                    .ok_or_else(|| missing("the account"))?;
            }
            E::AccountsFirstPosted { account_ids } => {
                if account_ids
                    .iter()
                    .any(|id| self.accounts.get(tenant, &id.as_uuid()).is_none())
                {
                    return Err(missing("an account"));
                }
                for account_id in account_ids {
                    account(self, account_id.as_uuid(), &|row| row.has_postings = true)?;
                }
            }
            E::LedgerConfigured(settings) => {
                ledger.require_site = settings.require_site;
                ledger.round_off_account_id = settings.round_off_account_id.map(|id| id.as_uuid());
                ledger.round_off_allowance = settings.round_off_allowance.paisa();
            }
            E::FiscalYearOpened(year) => {
                self.fiscal_years.insert(
                    tenant,
                    (organization, year.start),
                    FiscalYearRow {
                        end_date: year.end,
                        short: year.short,
                        closed: false,
                        closing_entry_id: None,
                    },
                );
            }
            E::PeriodClosed { period } => {
                self.closed_periods.insert(
                    tenant,
                    (organization, period),
                    ClosedPeriodRow {
                        closed_at: at,
                        closed_by: event.actor.clone(),
                    },
                );
            }
            E::PeriodReopened { period } => {
                self.closed_periods.remove(tenant, &(organization, period));
            }
            E::LockDateSet { lock_date } => ledger.lock_date = lock_date,
            E::FiscalYearClosed {
                start,
                end,
                closing_entry_id,
                retained_earnings_account_id,
                lines,
            } => {
                let currency = self
                    .accounts
                    .get(tenant, &retained_earnings_account_id.as_uuid())
                    .ok_or_else(|| missing("the retained-earnings account"))?
                    .currency
                    .clone();
                self.fiscal_years
                    .change(tenant, &(organization, start), |row| {
                        row.closed = true;
                        row.closing_entry_id = Some(closing_entry_id.as_uuid());
                    })
                    .ok_or_else(|| missing("the fiscal year"))?;
                if !lines.is_empty() {
                    let narration = format!("Year-end closing {start} to {end}");
                    self.post(
                        tenant,
                        event,
                        Posting {
                            entry_id: closing_entry_id.as_uuid(),
                            organization_id: organization,
                            kind: EntryKind::Closing,
                            date: end,
                            fiscal_year: start,
                            currency: &currency,
                            narration: &narration,
                            reference: None,
                            document_number: None,
                            reverses: None,
                            lines: &lines,
                        },
                    )?;
                }
            }
        }
        ledger.version = version;
        self.ledgers.insert(tenant, organization, ledger);
        Ok(())
    }

    fn apply_journal(&mut self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let tenant = event.tenant_id.as_uuid();
        match event.decode::<JournalEvent>()? {
            JournalEvent::JournalEntryPosted {
                entry_id,
                organization_id,
                kind,
                date,
                fiscal_year,
                currency,
                narration,
                reference,
                document_number,
                lines,
            } => self.post(
                tenant,
                event,
                Posting {
                    entry_id: entry_id.as_uuid(),
                    organization_id: organization_id.as_uuid(),
                    kind,
                    date,
                    fiscal_year,
                    currency: currency.as_str(),
                    narration: &narration,
                    reference: reference.as_deref(),
                    document_number: document_number.as_deref(),
                    reverses: None,
                    lines: &lines,
                },
            ),
            JournalEvent::JournalEntryReversed {
                entry_id,
                organization_id,
                reversal_entry_id,
                date,
                fiscal_year,
                currency,
                narration,
                lines,
            } => {
                self.entries
                    .change(tenant, &entry_id.as_uuid(), |row| {
                        row.reversed_by = Some(reversal_entry_id.as_uuid());
                    })
                    .ok_or_else(|| missing("the reversed entry"))?;
                self.post(
                    tenant,
                    event,
                    Posting {
                        entry_id: reversal_entry_id.as_uuid(),
                        organization_id: organization_id.as_uuid(),
                        kind: EntryKind::Reversal,
                        date,
                        fiscal_year,
                        currency: currency.as_str(),
                        narration: &narration,
                        reference: None,
                        document_number: None,
                        reverses: Some(entry_id.as_uuid()),
                        lines: &lines,
                    },
                )
            }
        }
    }
}

impl Projection for GeneralLedger {
    const NAME: &'static str = "general_ledger";
    /// 2: yearly totals (`fin_account_years`); 3: fiscal-year totals instead
    /// (`fin_account_fiscal_years`).
    const VERSION: i32 = 3;
    const AGGREGATE_TYPES: &'static [&'static str] = &[Ledger::TYPE, JournalEntry::TYPE];

    type Rows = LedgerRows;

    fn want(&self, rows: &mut LedgerRows, event: &RecordedEvent) {
        let tenant = event.tenant_id.as_uuid();
        if event.aggregate_type == JournalEntry::TYPE {
            if let Ok(JournalEvent::JournalEntryReversed { entry_id, .. }) = event.decode() {
                rows.entries.want(tenant, &entry_id.as_uuid());
            }
            return;
        }
        let (Ok(organization), Ok(decoded)) =
            (organization_of(event), event.decode::<LedgerEvent>())
        else {
            return;
        };
        rows.ledgers.want(tenant, &organization);
        use LedgerEvent as E;
        let accounts: Vec<Uuid> = match &decoded {
            E::AccountCreated(new) => new.parent_id.iter().map(|id| id.as_uuid()).collect(),
            E::AccountRenamed { account_id, .. }
            | E::AccountGroupChanged { account_id, .. }
            | E::AccountCurrencyChanged { account_id, .. }
            | E::AccountTypeChanged { account_id, .. }
            | E::AccountFrozen { account_id }
            | E::AccountUnfrozen { account_id }
            | E::AccountDisabled { account_id }
            | E::AccountEnabled { account_id }
            | E::AccountDeleted { account_id } => vec![account_id.as_uuid()],
            E::AccountsFirstPosted { account_ids } => {
                account_ids.iter().map(|id| id.as_uuid()).collect()
            }
            _ => Vec::new(),
        };
        for account in accounts {
            rows.accounts.want(tenant, &account);
        }
        match decoded {
            E::PeriodReopened { period } => {
                rows.closed_periods.want(tenant, &(organization, period))
            }
            E::FiscalYearClosed {
                start,
                retained_earnings_account_id,
                ..
            } => {
                rows.fiscal_years.want(tenant, &(organization, start));
                rows.accounts
                    .want(tenant, &retained_earnings_account_id.as_uuid());
            }
            _ => {}
        }
    }

    fn apply(&self, rows: &mut LedgerRows, event: &RecordedEvent) -> Result<(), ProjectionError> {
        if event.aggregate_type == JournalEntry::TYPE {
            rows.apply_journal(event)
        } else {
            rows.apply_ledger(event)
        }
    }
}

#[cfg(test)]
mod tests {
    //! A property of the whole ledger: random sessions of postings, reversals, period closes and
    //! account freezes, valid and not, decided by the aggregates as the write side decides them
    //! and applied by this projection, keep the trial balance balanced and equal to a
    //! recomputation from the log.

    use std::collections::{BTreeMap, HashMap};
    use std::sync::Arc;

    use chrono::{Days, Months, TimeZone};
    use cqrs_es::DomainEvent;
    use proptest::prelude::*;
    use serde_json::Value;
    use vextrus_commands::{GlobalPosition, codec};
    use vextrus_domain::TenantId;
    use vextrus_domain::finance::{
        FiscalYear, JournalCommand, LedgerCommand, LineParty, Money, NewEntry, PartyKind,
        PostingContext, standard_chart,
    };
    use vextrus_domain::ids::{AccountId, DivisionId, EntryId, OrganizationId, ProjectId};
    use vextrus_domain::organization::{Organization, OrganizationEvent};
    use vextrus_domain::values::{Bin, Code, CurrencyCode, FiscalYearStart, Name, Tin};

    use super::*;

    #[derive(Debug, Clone)]
    enum Step {
        /// Lines as (account, debit?, paisa, fault): fault 0 picks any account (a group, perhaps),
        /// 1 leaves out the project, 2 makes the amount zero; others are well-formed.
        Post {
            day: u64,
            lines: Vec<(usize, bool, i64, u8)>,
            opening: bool,
        },
        Reverse {
            entry: usize,
            day: u64,
        },
        Close {
            month: u32,
        },
        Reopen {
            month: u32,
        },
        Freeze {
            account: usize,
            frozen: bool,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        let line = (0usize..60, any::<bool>(), 1i64..100_000, 0u8..24);
        prop_oneof![
            8 => (0u64..380, proptest::collection::vec(line, 0..5), 0u8..8)
                .prop_map(|(day, lines, opening)| Step::Post { day, lines, opening: opening == 0 }),
            2 => (0usize..20, 0u64..420).prop_map(|(entry, day)| Step::Reverse { entry, day }),
            1 => (0u32..12).prop_map(|month| Step::Close { month }),
            1 => (0u32..12).prop_map(|month| Step::Reopen { month }),
            1 => (0usize..60, any::<bool>()).prop_map(|(account, frozen)| Step::Freeze { account, frozen }),
        ]
    }

    struct Session {
        tenant: TenantId,
        organization_id: OrganizationId,
        project: ProjectId,
        organization: Arc<Organization>,
        ledger: Ledger,
        accounts: Vec<AccountId>,
        /// The ledger accounts (not groups).
        postable: Vec<AccountId>,
        entries: Vec<(EntryId, JournalEntry)>,
        versions: HashMap<String, i64>,
        log: Vec<RecordedEvent>,
        rows: LedgerRows,
    }

    impl Session {
        fn new() -> Self {
            let organization_id = OrganizationId::new();
            let (division, project) = (DivisionId::new(), ProjectId::new());
            let mut organization = Organization::default();
            for event in [
                OrganizationEvent::OrganizationCreated {
                    organization_id,
                    name: Name::parse("Meghna Builders Ltd").unwrap(),
                    code: Code::parse("MBL").unwrap(),
                    bin: Bin::parse("002871821-0101").unwrap(),
                    tin: Tin::parse("123456789012").unwrap(),
                    base_currency: CurrencyCode::bdt(),
                    fiscal_year_start: FiscalYearStart::default(),
                },
                OrganizationEvent::DivisionCreated {
                    division_id: division,
                    name: Name::parse("Dhaka").unwrap(),
                    code: Code::parse("DHK").unwrap(),
                },
                OrganizationEvent::ProjectCreated {
                    project_id: project,
                    division_id: division,
                    name: Name::parse("Padma").unwrap(),
                    code: Code::parse("P1").unwrap(),
                },
            ] {
                organization.apply(event);
            }
            let chart = standard_chart(&CurrencyCode::bdt());
            let mut session = Self {
                tenant: TenantId::new(),
                organization_id,
                project,
                organization: Arc::new(organization),
                ledger: Ledger::default(),
                accounts: chart.iter().map(|account| account.account_id).collect(),
                postable: chart
                    .iter()
                    .filter(|account| !account.is_group)
                    .map(|account| account.account_id)
                    .collect(),
                entries: Vec::new(),
                versions: HashMap::new(),
                log: Vec::new(),
                rows: LedgerRows::default(),
            };
            session.ledger_command(LedgerCommand::InstallStandardChart(chart));
            session.ledger_command(LedgerCommand::OpenFiscalYear {
                start: start(),
                end: FiscalYear::full_year_end(start()).unwrap(),
                short: false,
                fiscal_year_start: FiscalYearStart::default(),
            });
            session
        }

        /// Appends `event` to the log and applies it to the read model.
        fn record(
            &mut self,
            aggregate_type: &str,
            id: String,
            (event_type, payload): (String, Value),
            event_version: String,
        ) {
            let sequence = self.versions.entry(id.clone()).or_default();
            *sequence += 1;
            let position = i64::try_from(self.log.len()).unwrap() + 1;
            let recorded = RecordedEvent {
                tenant_id: self.tenant,
                aggregate_type: aggregate_type.to_owned(),
                aggregate_id: id,
                sequence: *sequence,
                event_type,
                event_version,
                payload,
                actor: "accountant".into(),
                command_id: Uuid::now_v7(),
                correlation_id: Uuid::now_v7(),
                causation_id: None,
                request_id: None,
                request_metadata: Value::Null,
                recorded_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
                global_position: GlobalPosition::new(position),
                transaction_id: u64::try_from(position).unwrap(),
            };
            GeneralLedger.apply(&mut self.rows, &recorded).unwrap();
            self.log.push(recorded);
        }

        fn ledger_command(&mut self, command: LedgerCommand) {
            if let Ok(events) = self.ledger.decide(command) {
                for event in events {
                    self.ledger.apply(event.clone());
                    let encoded = codec::encode(&event).unwrap();
                    let id = self.organization_id.to_string();
                    self.record(Ledger::TYPE, id, encoded, event.event_version());
                }
            }
        }

        fn journal_command(&mut self, index: Option<usize>, command: JournalCommand) {
            let context = PostingContext {
                ledger: Arc::new(self.ledger.clone()),
                organization: self.organization.clone(),
            };
            let (entry_id, mut entry) = match index {
                Some(index) => self.entries[index].clone(),
                None => match &command {
                    JournalCommand::Post(new) => (new.entry_id, JournalEntry::default()),
                    JournalCommand::Reverse { .. } => return,
                },
            };
            let Ok(events) = entry.decide(command, &context) else {
                return;
            };
            let first = self
                .ledger
                .first_postings(events.iter().flat_map(|event| match event {
                    JournalEvent::JournalEntryPosted { lines, .. }
                    | JournalEvent::JournalEntryReversed { lines, .. } => {
                        lines.iter().map(|l| l.account_id)
                    }
                }));
            for event in &events {
                entry.apply(event.clone());
                let encoded = codec::encode(event).unwrap();
                self.record(
                    JournalEntry::TYPE,
                    entry_id.to_string(),
                    encoded,
                    event.event_version(),
                );
            }
            if !first.is_empty() {
                self.ledger_command(LedgerCommand::RecordFirstPostings { account_ids: first });
            }
            match index {
                Some(index) => self.entries[index].1 = entry,
                None => self.entries.push((entry_id, entry)),
            }
        }

        fn run(&mut self, step: Step) {
            match step {
                Step::Post {
                    day,
                    lines,
                    opening,
                } => {
                    let lines = lines
                        .into_iter()
                        .map(|(account, debit, paisa, fault)| {
                            let paisa = if fault == 2 { 0 } else { paisa };
                            EntryLine {
                                account_id: if fault == 0 {
                                    self.accounts[account % self.accounts.len()]
                                } else {
                                    self.postable[account % self.postable.len()]
                                },
                                debit: Money::from_paisa(if debit { paisa } else { 0 }),
                                credit: Money::from_paisa(if debit { 0 } else { paisa }),
                                party: Some(LineParty {
                                    kind: PartyKind::Customer,
                                    id: Uuid::nil(),
                                }),
                                project_id: (fault != 1).then_some(self.project),
                                site_id: None,
                                memo: None,
                            }
                        })
                        .collect::<Vec<_>>();
                    // Mostly, balance the entry on cash so that it has a chance to post.
                    let mut lines = lines;
                    let net: i64 = lines.iter().map(|l| l.net().paisa()).sum();
                    if day % 4 != 0 && net != 0 {
                        lines.push(EntryLine {
                            account_id: self.accounts[2],
                            debit: Money::from_paisa((-net).max(0)),
                            credit: Money::from_paisa(net.max(0)),
                            party: None,
                            project_id: None,
                            site_id: None,
                            memo: None,
                        });
                    }
                    let entry = NewEntry {
                        entry_id: EntryId::new(),
                        organization_id: self.organization_id,
                        kind: if opening {
                            EntryKind::Opening
                        } else {
                            EntryKind::Regular
                        },
                        date: start() + Days::new(day),
                        narration: "Property".into(),
                        reference: None,
                        document_number: None,
                        lines,
                        round_off: false,
                    };
                    self.journal_command(None, JournalCommand::Post(entry));
                }
                Step::Reverse { entry, day } => {
                    if self.entries.is_empty() {
                        return;
                    }
                    let index = entry % self.entries.len();
                    self.journal_command(
                        Some(index),
                        JournalCommand::Reverse {
                            reversal_entry_id: EntryId::new(),
                            date: start() + Days::new(day),
                            narration: None,
                        },
                    );
                }
                Step::Close { month } => self.ledger_command(LedgerCommand::ClosePeriod {
                    period: start() + Months::new(month),
                }),
                Step::Reopen { month } => self.ledger_command(LedgerCommand::ReopenPeriod {
                    period: start() + Months::new(month),
                }),
                Step::Freeze { account, frozen } => {
                    let account_id = self.accounts[account % self.accounts.len()];
                    self.ledger_command(if frozen {
                        LedgerCommand::FreezeAccount { account_id }
                    } else {
                        LedgerCommand::UnfreezeAccount { account_id }
                    });
                }
            }
        }

        /// Debits and credits per account and month, recomputed from the log alone.
        fn recomputed(&self) -> BTreeMap<(Uuid, NaiveDate), (i64, i64)> {
            let mut totals = BTreeMap::new();
            for event in &self.log {
                let (date, lines) = match event.decode::<JournalEvent>() {
                    Ok(JournalEvent::JournalEntryPosted { date, lines, .. })
                    | Ok(JournalEvent::JournalEntryReversed { date, lines, .. }) => (date, lines),
                    Err(_) => continue,
                };
                for line in lines {
                    let total: &mut (i64, i64) = totals
                        .entry((line.account_id.as_uuid(), month_of(date)))
                        .or_default();
                    total.0 += line.debit.paisa();
                    total.1 += line.credit.paisa();
                }
            }
            totals
        }
    }

    fn start() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 7, 1).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn the_trial_balance_always_balances_and_equals_the_log(steps in proptest::collection::vec(step(), 1..60)) {
            let mut session = Session::new();
            for step in steps {
                session.run(step);
                let expected = session.recomputed();
                let tenant = session.tenant.as_uuid();
                let (mut debit, mut credit) = (0, 0);
                for (key, (expected_debit, expected_credit)) in &expected {
                    let row = session.rows.balances.pending(tenant, key).cloned().unwrap_or_default();
                    prop_assert_eq!((row.debit, row.credit), (*expected_debit, *expected_credit));
                    debit += row.debit;
                    credit += row.credit;
                }
                prop_assert_eq!(session.rows.balances.len(), expected.len());
                prop_assert_eq!(debit, credit, "the trial balance does not balance");
                // The fiscal-year totals are the months of the session's one fiscal year.
                let mut per_account: BTreeMap<Uuid, (i64, i64)> = BTreeMap::new();
                for ((account, _), (d, c)) in &expected {
                    let total = per_account.entry(*account).or_default();
                    total.0 += d;
                    total.1 += c;
                }
                for (account, total) in &per_account {
                    let row = session.rows.fiscal_years_totals.pending(tenant, &(*account, start())).cloned().unwrap_or_default();
                    prop_assert_eq!((row.debit, row.credit), *total);
                }
                prop_assert_eq!(session.rows.fiscal_years_totals.len(), per_account.len());
            }
            // Every posted entry balances, and the journal holds one row per entry and reversal.
            let postings = session
                .log
                .iter()
                .filter(|event| event.aggregate_type == JournalEntry::TYPE)
                .count();
            prop_assert_eq!(session.rows.entries.len(), postings);
        }
    }

    /// The sessions above are not vacuous: a long one posts, reverses and refuses.
    #[test]
    fn random_sessions_post_reverse_and_refuse() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
        let mut runner = TestRunner::new_with_rng(
            ProptestConfig::default(),
            TestRng::deterministic_rng(RngAlgorithm::ChaCha),
        );
        let mut session = Session::new();
        let steps = 400;
        for _ in 0..steps {
            let step = step().new_tree(&mut runner).unwrap().current();
            session.run(step);
        }
        let count = |event_type: &str| {
            session
                .log
                .iter()
                .filter(|e| e.event_type == event_type)
                .count()
        };
        let (posted, reversed) = (count("JournalEntryPosted"), count("JournalEntryReversed"));
        assert!(posted >= 20, "only {posted} postings");
        assert!(reversed >= 2, "only {reversed} reversals");
        assert!(posted < steps, "nothing was refused");
    }
}
