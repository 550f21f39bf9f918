//! The [`Ledger`] aggregate: one organization's chart of accounts, fiscal calendar and ledger
//! settings, on one stream whose id is the organization's.
//!
//! Why one stream: the rules of the chart span accounts (codes unique in the organization, a parent
//! must be a group) and postings read the chart and the calendar together. Both change rarely, so
//! one small stream is cheap to keep, and a posting checks one version (design.md D12) instead of
//! one per account. Journal entries are streams of their own ([`super::JournalEntry`]); the ledger
//! learns that an account has postings through [`LedgerEvent::AccountsFirstPosted`], appended in the
//! same transaction as the first entry that posts to it, which is what makes "no delete, no group,
//! no currency change once posted" a strong rule.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::Money;
use super::calendar::FiscalYear;
use super::chart::{AccountType, NewAccount, RootType};
use super::entry::EntryLine;
use crate::ids::{AccountId, EntryId};
use crate::unique::UniqueValues;
use crate::values::{Code, CurrencyCode, FiscalYearStart, Name};

/// An account as the ledger knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub code: Code,
    pub name: Name,
    pub parent_id: Option<AccountId>,
    pub root_type: RootType,
    pub account_type: AccountType,
    pub is_group: bool,
    pub currency: CurrencyCode,
    pub frozen: bool,
    pub disabled: bool,
    /// Set by the first entry that posts to the account, never cleared.
    pub has_postings: bool,
}

/// Settings of an organization's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LedgerSettings {
    /// Profit-and-loss lines must name a site as well as a project.
    pub require_site: bool,
    /// Where an entry's allowed rounding difference is posted.
    pub round_off_account_id: Option<AccountId>,
    /// The largest difference between debits and credits that may become a round-off line.
    pub round_off_allowance: Money,
}

/// One organization's chart of accounts, fiscal calendar and settings (see the module docs).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ledger {
    accounts: BTreeMap<AccountId, Account>,
    codes: BTreeMap<Code, AccountId>,
    years: Vec<FiscalYear>,
    closed_periods: BTreeSet<NaiveDate>,
    /// Starts of the years closed to retained earnings.
    closed_years: BTreeSet<NaiveDate>,
    lock_date: Option<NaiveDate>,
    settings: LedgerSettings,
}

/// What a finance manager can ask of a ledger.
#[derive(Debug, Clone, PartialEq)]
pub enum LedgerCommand {
    CreateAccount(NewAccount),
    /// The standard chart ([`super::standard_chart`]), into an empty chart.
    InstallStandardChart(Vec<NewAccount>),
    RenameAccount {
        account_id: AccountId,
        name: Name,
    },
    SetAccountGroup {
        account_id: AccountId,
        is_group: bool,
    },
    ChangeAccountCurrency {
        account_id: AccountId,
        currency: CurrencyCode,
    },
    ChangeAccountType {
        account_id: AccountId,
        account_type: AccountType,
    },
    /// Several of the changes above at once, all or nothing; `None` leaves a field as it is.
    UpdateAccount {
        account_id: AccountId,
        name: Option<Name>,
        is_group: Option<bool>,
        currency: Option<CurrencyCode>,
        account_type: Option<AccountType>,
    },
    FreezeAccount {
        account_id: AccountId,
    },
    UnfreezeAccount {
        account_id: AccountId,
    },
    DisableAccount {
        account_id: AccountId,
    },
    EnableAccount {
        account_id: AccountId,
    },
    DeleteAccount {
        account_id: AccountId,
    },
    Configure(LedgerSettings),
    OpenFiscalYear {
        start: NaiveDate,
        end: NaiveDate,
        short: bool,
        /// The organization's fiscal-year start, which a full year begins on.
        fiscal_year_start: FiscalYearStart,
    },
    ClosePeriod {
        period: NaiveDate,
    },
    ReopenPeriod {
        period: NaiveDate,
    },
    SetLockDate {
        lock_date: Option<NaiveDate>,
    },
    /// Year-end closing. `balances` are the year's profit-and-loss balances per account and
    /// dimension (debit minus credit), read from the log once every period of the year is closed.
    CloseFiscalYear {
        start: NaiveDate,
        retained_earnings_account_id: AccountId,
        closing_entry_id: EntryId,
        balances: Vec<EntryLine>,
    },
    /// Issued with the first entry that posts to these accounts, in the same transaction.
    RecordFirstPostings {
        account_ids: Vec<AccountId>,
    },
}

/// What happened to a ledger. Facts in the log forever: add fields with defaults or new variants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LedgerEvent {
    AccountCreated(NewAccount),
    AccountRenamed {
        account_id: AccountId,
        name: Name,
    },
    AccountGroupChanged {
        account_id: AccountId,
        is_group: bool,
    },
    AccountCurrencyChanged {
        account_id: AccountId,
        currency: CurrencyCode,
    },
    AccountTypeChanged {
        account_id: AccountId,
        account_type: AccountType,
    },
    AccountFrozen {
        account_id: AccountId,
    },
    AccountUnfrozen {
        account_id: AccountId,
    },
    AccountDisabled {
        account_id: AccountId,
    },
    AccountEnabled {
        account_id: AccountId,
    },
    AccountDeleted {
        account_id: AccountId,
    },
    AccountsFirstPosted {
        account_ids: Vec<AccountId>,
    },
    LedgerConfigured(LedgerSettings),
    FiscalYearOpened(FiscalYear),
    PeriodClosed {
        period: NaiveDate,
    },
    PeriodReopened {
        period: NaiveDate,
    },
    LockDateSet {
        lock_date: Option<NaiveDate>,
    },
    /// The closing entry: dated the year's last day, P&L balances reversed, the net to retained
    /// earnings.
    FiscalYearClosed {
        start: NaiveDate,
        end: NaiveDate,
        closing_entry_id: EntryId,
        retained_earnings_account_id: AccountId,
        lines: Vec<EntryLine>,
    },
}

impl DomainEvent for LedgerEvent {
    fn event_type(&self) -> String {
        match self {
            Self::AccountCreated(_) => "AccountCreated",
            Self::AccountRenamed { .. } => "AccountRenamed",
            Self::AccountGroupChanged { .. } => "AccountGroupChanged",
            Self::AccountCurrencyChanged { .. } => "AccountCurrencyChanged",
            Self::AccountTypeChanged { .. } => "AccountTypeChanged",
            Self::AccountFrozen { .. } => "AccountFrozen",
            Self::AccountUnfrozen { .. } => "AccountUnfrozen",
            Self::AccountDisabled { .. } => "AccountDisabled",
            Self::AccountEnabled { .. } => "AccountEnabled",
            Self::AccountDeleted { .. } => "AccountDeleted",
            Self::AccountsFirstPosted { .. } => "AccountsFirstPosted",
            Self::LedgerConfigured(_) => "LedgerConfigured",
            Self::FiscalYearOpened(_) => "FiscalYearOpened",
            Self::PeriodClosed { .. } => "PeriodClosed",
            Self::PeriodReopened { .. } => "PeriodReopened",
            Self::LockDateSet { .. } => "LockDateSet",
            Self::FiscalYearClosed { .. } => "FiscalYearClosed",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// Why a ledger refused a command, or why a date does not post. Each variant is one rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LedgerError {
    #[error("account {0} not found")]
    AccountNotFound(AccountId),
    #[error("account {0} already exists")]
    AccountExists(AccountId),
    #[error("an account with code {0} already exists in this organization")]
    DuplicateCode(Code),
    #[error("the parent {0} is not a group account")]
    ParentNotGroup(AccountId),
    #[error("an account without a parent needs a root type")]
    RootTypeRequired,
    #[error("the root type {given} differs from the parent's {parent}")]
    RootTypeMismatch {
        given: &'static str,
        parent: &'static str,
    },
    #[error("account {0} has postings: it cannot become a group, change currency or be deleted")]
    AccountHasPostings(AccountId),
    #[error("account {0} still has accounts under it")]
    AccountHasChildren(AccountId),
    #[error("the chart already has accounts; the standard chart goes into an empty chart")]
    ChartNotEmpty,
    #[error("the round-off account must be an existing ledger account")]
    InvalidRoundOffAccount,
    #[error("a fiscal year ends after it starts")]
    YearEndsBeforeStart,
    #[error("a full fiscal year starts on the organization's fiscal-year start ({0})")]
    YearStartMismatch(FiscalYearStart),
    #[error(
        "a fiscal year starting {start} ends on {full_end}; a shorter year must be flagged short"
    )]
    YearLength {
        start: NaiveDate,
        full_end: NaiveDate,
    },
    #[error("a short year must be shorter than a full year")]
    ShortYearTooLong,
    #[error("fiscal years lie between 1900-01-01 and 2999-12-31")]
    YearOutOfRange,
    #[error("the fiscal year overlaps the fiscal year {start}..{end}")]
    YearOverlaps { start: NaiveDate, end: NaiveDate },
    #[error("{0} is in no fiscal year")]
    NoFiscalYear(NaiveDate),
    #[error("{0} is not the first day of a period")]
    NotAPeriod(NaiveDate),
    #[error("the period {0} cannot be reopened: its fiscal year, or a later one, is closed")]
    YearClosed(NaiveDate),
    #[error("the period {period} is closed")]
    PeriodClosed { period: NaiveDate },
    #[error("{date} is on or before the lock date {lock_date}")]
    Locked {
        date: NaiveDate,
        lock_date: NaiveDate,
    },
    #[error("no fiscal year starts on {0}")]
    NoSuchYear(NaiveDate),
    #[error("the previous fiscal year ({0}) is not closed")]
    PreviousYearOpen(NaiveDate),
    #[error("every period of the year must be closed first; {0} is open")]
    PeriodsOpen(NaiveDate),
    #[error("the retained-earnings account must be an equity or liability ledger account")]
    InvalidRetainedEarnings,
}

impl Aggregate for Ledger {
    const TYPE: &'static str = "ledger";
    type Command = LedgerCommand;
    type Event = LedgerEvent;
    type Error = LedgerError;
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
        use LedgerEvent as E;
        match event {
            E::AccountCreated(new) => {
                let root_type = new
                    .root_type
                    .or_else(|| {
                        new.parent_id
                            .and_then(|parent| self.accounts.get(&parent))
                            .map(|parent| parent.root_type)
                    })
                    .unwrap_or(RootType::Asset);
                self.codes.insert(new.code.clone(), new.account_id);
                self.accounts.insert(
                    new.account_id,
                    Account {
                        code: new.code,
                        name: new.name,
                        parent_id: new.parent_id,
                        root_type,
                        account_type: new.account_type,
                        is_group: new.is_group,
                        currency: new.currency,
                        frozen: false,
                        disabled: false,
                        has_postings: false,
                    },
                );
            }
            E::AccountRenamed { account_id, name } => {
                self.change(account_id, |a| a.name = name);
            }
            E::AccountGroupChanged {
                account_id,
                is_group,
            } => self.change(account_id, |a| a.is_group = is_group),
            E::AccountCurrencyChanged {
                account_id,
                currency,
            } => self.change(account_id, |a| a.currency = currency),
            E::AccountTypeChanged {
                account_id,
                account_type,
            } => self.change(account_id, |a| a.account_type = account_type),
            E::AccountFrozen { account_id } => self.change(account_id, |a| a.frozen = true),
            E::AccountUnfrozen { account_id } => self.change(account_id, |a| a.frozen = false),
            E::AccountDisabled { account_id } => self.change(account_id, |a| a.disabled = true),
            E::AccountEnabled { account_id } => self.change(account_id, |a| a.disabled = false),
            E::AccountDeleted { account_id } => {
                if let Some(account) = self.accounts.remove(&account_id) {
                    self.codes.remove(&account.code);
                }
            }
            E::AccountsFirstPosted { account_ids } => {
                for account_id in account_ids {
                    self.change(account_id, |a| a.has_postings = true);
                }
            }
            E::LedgerConfigured(settings) => self.settings = settings,
            E::FiscalYearOpened(year) => {
                self.years.push(year);
                self.years.sort_by_key(|year| year.start);
            }
            E::PeriodClosed { period } => {
                self.closed_periods.insert(period);
            }
            E::PeriodReopened { period } => {
                self.closed_periods.remove(&period);
            }
            E::LockDateSet { lock_date } => self.lock_date = lock_date,
            E::FiscalYearClosed { start, .. } => {
                self.closed_years.insert(start);
            }
        }
    }
}

impl UniqueValues for Ledger {}

impl Ledger {
    pub fn account(&self, account_id: AccountId) -> Option<&Account> {
        self.accounts.get(&account_id)
    }

    /// The account with `code`, if the chart has one.
    pub fn account_by_code(&self, code: &Code) -> Option<AccountId> {
        self.codes.get(code).copied()
    }

    pub fn accounts(&self) -> impl Iterator<Item = (AccountId, &Account)> {
        self.accounts.iter().map(|(id, account)| (*id, account))
    }

    pub fn settings(&self) -> &LedgerSettings {
        &self.settings
    }

    pub fn years(&self) -> &[FiscalYear] {
        &self.years
    }

    pub fn lock_date(&self) -> Option<NaiveDate> {
        self.lock_date
    }

    pub fn year_of(&self, date: NaiveDate) -> Option<&FiscalYear> {
        self.years.iter().find(|year| year.contains(date))
    }

    pub fn is_period_closed(&self, period: NaiveDate) -> bool {
        self.closed_periods.contains(&period)
    }

    pub fn is_year_closed(&self, start: NaiveDate) -> bool {
        self.closed_years.contains(&start)
    }

    /// Whether an entry may be dated `date`: after the lock date, in an open period of a fiscal
    /// year that is not closed. Returns the start of that fiscal year (recorded on the entry).
    pub fn check_posting_date(&self, date: NaiveDate) -> Result<NaiveDate, LedgerError> {
        if let Some(lock_date) = self.lock_date {
            if date <= lock_date {
                return Err(LedgerError::Locked { date, lock_date });
            }
        }
        let year = self.year_of(date).ok_or(LedgerError::NoFiscalYear(date))?;
        let period = year
            .period_of(date)
            .ok_or(LedgerError::NoFiscalYear(date))?;
        if self.closed_years.contains(&year.start) || self.closed_periods.contains(&period) {
            return Err(LedgerError::PeriodClosed { period });
        }
        Ok(year.start)
    }

    fn change(&mut self, account_id: AccountId, edit: impl FnOnce(&mut Account)) {
        if let Some(account) = self.accounts.get_mut(&account_id) {
            edit(account);
        }
    }

    fn existing(&self, account_id: AccountId) -> Result<&Account, LedgerError> {
        self.accounts
            .get(&account_id)
            .ok_or(LedgerError::AccountNotFound(account_id))
    }

    /// The rules: which events a command produces, or why it is refused. Asking for what already
    /// holds (freezing a frozen account, closing a closed period) changes nothing.
    pub fn decide(&self, command: LedgerCommand) -> Result<Vec<LedgerEvent>, LedgerError> {
        use LedgerCommand as C;
        use LedgerEvent as E;
        match command {
            C::CreateAccount(new) => {
                let mut chart = self.clone();
                let event = chart.check_new_account(new)?;
                Ok(vec![event])
            }
            C::InstallStandardChart(accounts) => {
                if !self.accounts.is_empty() {
                    return Err(LedgerError::ChartNotEmpty);
                }
                let mut chart = self.clone();
                let mut events = Vec::with_capacity(accounts.len());
                for new in accounts {
                    let event = chart.check_new_account(new)?;
                    chart.apply(event.clone());
                    events.push(event);
                }
                Ok(events)
            }
            C::RenameAccount { account_id, name } => {
                let account = self.existing(account_id)?;
                Ok(if account.name == name {
                    vec![]
                } else {
                    vec![E::AccountRenamed { account_id, name }]
                })
            }
            C::SetAccountGroup {
                account_id,
                is_group,
            } => {
                let account = self.existing(account_id)?;
                if account.is_group == is_group {
                    return Ok(vec![]);
                }
                if account.has_postings {
                    return Err(LedgerError::AccountHasPostings(account_id));
                }
                if !is_group && self.has_children(account_id) {
                    return Err(LedgerError::AccountHasChildren(account_id));
                }
                Ok(vec![E::AccountGroupChanged {
                    account_id,
                    is_group,
                }])
            }
            C::ChangeAccountCurrency {
                account_id,
                currency,
            } => {
                let account = self.existing(account_id)?;
                if account.currency == currency {
                    return Ok(vec![]);
                }
                if account.has_postings {
                    return Err(LedgerError::AccountHasPostings(account_id));
                }
                Ok(vec![E::AccountCurrencyChanged {
                    account_id,
                    currency,
                }])
            }
            C::ChangeAccountType {
                account_id,
                account_type,
            } => {
                let account = self.existing(account_id)?;
                Ok(if account.account_type == account_type {
                    vec![]
                } else {
                    vec![E::AccountTypeChanged {
                        account_id,
                        account_type,
                    }]
                })
            }
            C::UpdateAccount {
                account_id,
                name,
                is_group,
                currency,
                account_type,
            } => {
                self.existing(account_id)?;
                let changes = [
                    name.map(|name| C::RenameAccount { account_id, name }),
                    is_group.map(|is_group| C::SetAccountGroup {
                        account_id,
                        is_group,
                    }),
                    currency.map(|currency| C::ChangeAccountCurrency {
                        account_id,
                        currency,
                    }),
                    account_type.map(|account_type| C::ChangeAccountType {
                        account_id,
                        account_type,
                    }),
                ];
                let mut ledger = self.clone();
                let mut events = Vec::new();
                for change in changes.into_iter().flatten() {
                    for event in ledger.decide(change)? {
                        ledger.apply(event.clone());
                        events.push(event);
                    }
                }
                Ok(events)
            }
            C::FreezeAccount { account_id } => {
                let frozen = self.existing(account_id)?.frozen;
                Ok(if frozen {
                    vec![]
                } else {
                    vec![E::AccountFrozen { account_id }]
                })
            }
            C::UnfreezeAccount { account_id } => {
                let frozen = self.existing(account_id)?.frozen;
                Ok(if frozen {
                    vec![E::AccountUnfrozen { account_id }]
                } else {
                    vec![]
                })
            }
            C::DisableAccount { account_id } => {
                let disabled = self.existing(account_id)?.disabled;
                Ok(if disabled {
                    vec![]
                } else {
                    vec![E::AccountDisabled { account_id }]
                })
            }
            C::EnableAccount { account_id } => {
                let disabled = self.existing(account_id)?.disabled;
                Ok(if disabled {
                    vec![E::AccountEnabled { account_id }]
                } else {
                    vec![]
                })
            }
            C::DeleteAccount { account_id } => {
                let account = self.existing(account_id)?;
                if account.has_postings {
                    return Err(LedgerError::AccountHasPostings(account_id));
                }
                if self.has_children(account_id) {
                    return Err(LedgerError::AccountHasChildren(account_id));
                }
                Ok(vec![E::AccountDeleted { account_id }])
            }
            C::Configure(settings) => {
                if let Some(account_id) = settings.round_off_account_id {
                    match self.accounts.get(&account_id) {
                        Some(account) if !account.is_group => {}
                        _ => return Err(LedgerError::InvalidRoundOffAccount),
                    }
                }
                Ok(if settings == self.settings {
                    vec![]
                } else {
                    vec![E::LedgerConfigured(settings)]
                })
            }
            C::OpenFiscalYear {
                start,
                end,
                short,
                fiscal_year_start,
            } => {
                if end <= start {
                    return Err(LedgerError::YearEndsBeforeStart);
                }
                if start < FiscalYear::EARLIEST || end > FiscalYear::LATEST {
                    return Err(LedgerError::YearOutOfRange);
                }
                let full_end =
                    FiscalYear::full_year_end(start).ok_or(LedgerError::YearEndsBeforeStart)?;
                if short {
                    if end >= full_end {
                        return Err(LedgerError::ShortYearTooLong);
                    }
                } else {
                    if !FiscalYear::starts_on(start, fiscal_year_start) {
                        return Err(LedgerError::YearStartMismatch(fiscal_year_start));
                    }
                    if end != full_end {
                        return Err(LedgerError::YearLength { start, full_end });
                    }
                }
                let year = FiscalYear { start, end, short };
                if let Some(other) = self.years.iter().find(|other| other.overlaps(&year)) {
                    if *other == year {
                        return Ok(vec![]);
                    }
                    return Err(LedgerError::YearOverlaps {
                        start: other.start,
                        end: other.end,
                    });
                }
                Ok(vec![E::FiscalYearOpened(year)])
            }
            C::ClosePeriod { period } => {
                self.existing_period(period)?;
                Ok(if self.closed_periods.contains(&period) {
                    vec![]
                } else {
                    vec![E::PeriodClosed { period }]
                })
            }
            C::ReopenPeriod { period } => {
                let year = self.existing_period(period)?;
                if self.closed_years.iter().any(|closed| *closed >= year.start) {
                    return Err(LedgerError::YearClosed(period));
                }
                Ok(if self.closed_periods.contains(&period) {
                    vec![E::PeriodReopened { period }]
                } else {
                    vec![]
                })
            }
            C::SetLockDate { lock_date } => Ok(if lock_date == self.lock_date {
                vec![]
            } else {
                vec![E::LockDateSet { lock_date }]
            }),
            C::CloseFiscalYear {
                start,
                retained_earnings_account_id,
                closing_entry_id,
                balances,
            } => self.close_year(
                start,
                retained_earnings_account_id,
                closing_entry_id,
                balances,
            ),
            C::RecordFirstPostings { account_ids } => {
                let first = self.first_postings(account_ids);
                Ok(if first.is_empty() {
                    vec![]
                } else {
                    vec![E::AccountsFirstPosted { account_ids: first }]
                })
            }
        }
    }

    /// The accounts a posting to `account_ids` marks as used for the first time.
    pub fn first_postings(
        &self,
        account_ids: impl IntoIterator<Item = AccountId>,
    ) -> Vec<AccountId> {
        account_ids
            .into_iter()
            .filter(|id| self.accounts.get(id).is_some_and(|a| !a.has_postings))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    fn has_children(&self, account_id: AccountId) -> bool {
        self.accounts
            .values()
            .any(|account| account.parent_id == Some(account_id))
    }

    fn existing_period(&self, period: NaiveDate) -> Result<&FiscalYear, LedgerError> {
        let year = self
            .year_of(period)
            .ok_or(LedgerError::NoFiscalYear(period))?;
        if year.period_of(period) != Some(period) {
            return Err(LedgerError::NotAPeriod(period));
        }
        Ok(year)
    }

    fn check_new_account(&mut self, new: NewAccount) -> Result<LedgerEvent, LedgerError> {
        if self.accounts.contains_key(&new.account_id) {
            return Err(LedgerError::AccountExists(new.account_id));
        }
        if self.codes.contains_key(&new.code) {
            return Err(LedgerError::DuplicateCode(new.code));
        }
        match new.parent_id {
            Some(parent_id) => {
                let parent = self.existing(parent_id)?;
                if !parent.is_group {
                    return Err(LedgerError::ParentNotGroup(parent_id));
                }
                if let Some(given) = new.root_type {
                    if given != parent.root_type {
                        return Err(LedgerError::RootTypeMismatch {
                            given: given.as_str(),
                            parent: parent.root_type.as_str(),
                        });
                    }
                }
            }
            None if new.root_type.is_none() => return Err(LedgerError::RootTypeRequired),
            None => {}
        }
        Ok(LedgerEvent::AccountCreated(new))
    }

    fn close_year(
        &self,
        start: NaiveDate,
        retained_earnings_account_id: AccountId,
        closing_entry_id: EntryId,
        balances: Vec<EntryLine>,
    ) -> Result<Vec<LedgerEvent>, LedgerError> {
        let year = *self
            .years
            .iter()
            .find(|year| year.start == start)
            .ok_or(LedgerError::NoSuchYear(start))?;
        if self.closed_years.contains(&start) {
            return Ok(vec![]);
        }
        if let Some(later) = self.closed_years.iter().find(|closed| **closed > start) {
            return Err(LedgerError::YearClosed(*later));
        }
        if let Some(previous) = self.years.iter().rev().find(|y| y.end < start) {
            if !self.closed_years.contains(&previous.start) {
                return Err(LedgerError::PreviousYearOpen(previous.start));
            }
        }
        if let Some(open) = year.periods().find(|p| !self.closed_periods.contains(p)) {
            return Err(LedgerError::PeriodsOpen(open));
        }
        match self.accounts.get(&retained_earnings_account_id) {
            Some(account)
                if !account.is_group
                    && matches!(account.root_type, RootType::Equity | RootType::Liability) => {}
            _ => return Err(LedgerError::InvalidRetainedEarnings),
        }
        let mut lines: Vec<EntryLine> = balances
            .into_iter()
            .filter(|line| !line.net().is_zero())
            .map(|line| {
                let net = line.net();
                EntryLine {
                    debit: if net.paisa() < 0 { -net } else { Money::ZERO },
                    credit: if net.paisa() > 0 { net } else { Money::ZERO },
                    ..line
                }
            })
            .collect();
        let result: Money = lines.iter().map(EntryLine::net).sum();
        if !result.is_zero() {
            lines.push(EntryLine {
                account_id: retained_earnings_account_id,
                debit: if result.paisa() < 0 {
                    -result
                } else {
                    Money::ZERO
                },
                credit: if result.paisa() > 0 {
                    result
                } else {
                    Money::ZERO
                },
                party: None,
                project_id: None,
                site_id: None,
                memo: Some("Result of the year".to_owned()),
            });
        }
        Ok(vec![LedgerEvent::FiscalYearClosed {
            start,
            end: year.end,
            closing_entry_id,
            retained_earnings_account_id,
            lines,
        }])
    }
}
