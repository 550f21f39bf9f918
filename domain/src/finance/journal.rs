//! The [`JournalEntry`] aggregate: one posted entry per stream (design.md D13), so postings never
//! queue behind each other on the write side.
//!
//! A posting decides on other streams: the organization's [`Ledger`] (accounts, calendar,
//! settings) and its [`Organization`] hierarchy (projects and sites). The caller hands both in as
//! the [`PostingContext`] and appends with their versions as the read set, so the posting commits
//! only if neither changed meanwhile (design.md D12). A reversal is recorded on the original
//! entry's stream, which is what makes "at most once" an ordinary rule.

use std::sync::Arc;

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::Money;
use super::budget::OverBudget;
use super::entry::{EntryKind, EntryLine};
use super::ledger::{Ledger, LedgerError};
use crate::ids::{AccountId, EntryId, OrganizationId};
use crate::organization::{Organization, UnitStatus};
use crate::unique::UniqueValues;
use crate::values::CurrencyCode;

/// The most lines one entry may have.
pub const MAX_LINES: usize = 500;
/// The longest narration, reference, document number or memo, in characters.
pub const MAX_TEXT: usize = 500;
/// What a narration, reference, document number or memo may be: 1 to 500 characters, no control
/// characters, no white space at either end (the rule of [`valid_text`], as a regular
/// expression for the API's document).
pub const TEXT_PATTERN: &str =
    r"^[^\s\x00-\x1F\x7F-\x9F]([^\x00-\x1F\x7F-\x9F]{0,498}[^\s\x00-\x1F\x7F-\x9F])?$";

/// Whether `text` is a valid narration, reference, document number or memo ([`TEXT_PATTERN`]).
pub fn valid_text(text: &str) -> bool {
    let control = |c: char| matches!(u32::from(c), 0x00..=0x1F | 0x7F..=0x9F);
    let count = text.chars().count();
    (1..=MAX_TEXT).contains(&count)
        && !text.chars().any(control)
        && !text.starts_with(char::is_whitespace)
        && !text.ends_with(char::is_whitespace)
}

/// What a posting decides on: the organization's ledger and hierarchy as of known versions.
#[derive(Debug, Clone, Default)]
pub struct PostingContext {
    pub ledger: Arc<Ledger>,
    pub organization: Arc<Organization>,
}

/// An entry to post.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    pub entry_id: EntryId,
    pub organization_id: OrganizationId,
    pub kind: EntryKind,
    pub date: NaiveDate,
    pub narration: String,
    pub reference: Option<String>,
    pub document_number: Option<String>,
    pub lines: Vec<EntryLine>,
    /// Post a difference between debits and credits up to the ledger's round-off allowance as an
    /// explicit line on its round-off account, instead of refusing the entry.
    pub round_off: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum JournalCommand {
    Post(NewEntry),
    Reverse {
        reversal_entry_id: EntryId,
        date: NaiveDate,
        narration: Option<String>,
    },
}

/// What happened to an entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum JournalEvent {
    JournalEntryPosted {
        entry_id: EntryId,
        organization_id: OrganizationId,
        kind: EntryKind,
        date: NaiveDate,
        /// The first day of the fiscal year `date` lies in: reports sum whole fiscal years.
        fiscal_year: NaiveDate,
        currency: CurrencyCode,
        narration: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        document_number: Option<String>,
        lines: Vec<EntryLine>,
    },
    /// The reversal of this entry: a new entry (`reversal_entry_id`) with every line's sides
    /// swapped, dated `date`.
    JournalEntryReversed {
        entry_id: EntryId,
        organization_id: OrganizationId,
        reversal_entry_id: EntryId,
        date: NaiveDate,
        /// The first day of the fiscal year `date` lies in.
        fiscal_year: NaiveDate,
        currency: CurrencyCode,
        narration: String,
        lines: Vec<EntryLine>,
    },
}

impl DomainEvent for JournalEvent {
    fn event_type(&self) -> String {
        match self {
            Self::JournalEntryPosted { .. } => "JournalEntryPosted",
            Self::JournalEntryReversed { .. } => "JournalEntryReversed",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// Which line a refusal is about (0-based, as in the request's `lines` array).
pub type LineIndex = usize;

/// Why an entry was refused. Each variant is one rule of domain-finance.md.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JournalError {
    #[error("journal entry not found")]
    NotFound,
    #[error(
        "the journal entry is already posted; posted entries never change (reverse it instead)"
    )]
    AlreadyPosted,
    #[error("the organization was not found")]
    OrganizationNotFound,
    #[error("the organization is archived")]
    OrganizationArchived,
    #[error("an entry has at least two lines")]
    TooFewLines,
    #[error("an entry has at most {MAX_LINES} lines")]
    TooManyLines,
    #[error(
        "must be 1 to {MAX_TEXT} characters, without control characters or white space at either end"
    )]
    Text { field: String },
    #[error("a line is either a debit or a credit, greater than zero")]
    LineSides { line: LineIndex },
    #[error("debits {debit} and credits {credit} differ by {difference}")]
    Unbalanced {
        debit: Money,
        credit: Money,
        difference: Money,
    },
    #[error("the difference {difference} is above the round-off allowance {allowance}")]
    AboveRoundOffAllowance { difference: Money, allowance: Money },
    #[error("the ledger has no round-off account")]
    NoRoundOffAccount,
    #[error("account {account_id} not found")]
    AccountNotFound {
        line: LineIndex,
        account_id: AccountId,
    },
    #[error("account {account_id} is a group; post to one of its ledger accounts")]
    GroupAccount {
        line: LineIndex,
        account_id: AccountId,
    },
    #[error("account {account_id} is frozen")]
    AccountFrozen {
        line: LineIndex,
        account_id: AccountId,
    },
    #[error("account {account_id} is disabled")]
    AccountDisabled {
        line: LineIndex,
        account_id: AccountId,
    },
    #[error("account {account_id} is kept in {account}, not in the entry's {entry}")]
    CurrencyMismatch {
        line: LineIndex,
        account_id: AccountId,
        account: CurrencyCode,
        entry: CurrencyCode,
    },
    #[error("a line on a receivable or payable account names a party")]
    PartyRequired { line: LineIndex },
    #[error("a profit-and-loss line names a project")]
    ProjectRequired { line: LineIndex },
    #[error("this organization's profit-and-loss lines name a site")]
    SiteRequired { line: LineIndex },
    #[error("project not found in this organization")]
    ProjectNotFound { line: LineIndex },
    #[error("the project is archived")]
    ProjectArchived { line: LineIndex },
    #[error("site not found in this organization")]
    SiteNotFound { line: LineIndex },
    #[error("the site is not in the line's project")]
    SiteNotInProject { line: LineIndex },
    #[error("the site is archived")]
    SiteArchived { line: LineIndex },
    #[error("a site is given only with its project")]
    SiteWithoutProject { line: LineIndex },
    #[error("an opening entry touches no profit-and-loss account")]
    OpeningTouchesProfitAndLoss { line: LineIndex },
    #[error("{0}")]
    Date(LedgerError),
    #[error("the entry was already reversed by {0}")]
    AlreadyReversed(EntryId),
    /// A Stop budget the entry spends against would be exceeded (checked where the entry is
    /// appended, against the budget's usage stream).
    #[error("{0}")]
    OverBudget(OverBudget),
    /// The entry touches an account the VAT return reports, in a month whose return was
    /// submitted (checked where the entry is appended, against the tax book's stream).
    #[error(
        "the VAT return for {month} was submitted: its month is locked for entries on the VAT accounts"
    )]
    VatPeriodLocked { month: NaiveDate },
}

/// One posted entry: its lines and whether it was reversed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JournalEntry {
    posted: Option<Posted>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Posted {
    entry_id: EntryId,
    organization_id: OrganizationId,
    currency: CurrencyCode,
    narration: String,
    lines: Vec<EntryLine>,
    reversed_by: Option<EntryId>,
}

impl Aggregate for JournalEntry {
    const TYPE: &'static str = "journal_entry";
    type Command = JournalCommand;
    type Event = JournalEvent;
    type Error = JournalError;
    type Services = PostingContext;

    async fn handle(
        &mut self,
        command: Self::Command,
        context: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command, context)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            JournalEvent::JournalEntryPosted {
                entry_id,
                organization_id,
                currency,
                narration,
                lines,
                ..
            } => {
                self.posted = Some(Posted {
                    entry_id,
                    organization_id,
                    currency,
                    narration,
                    lines,
                    reversed_by: None,
                });
            }
            JournalEvent::JournalEntryReversed {
                reversal_entry_id, ..
            } => {
                if let Some(posted) = &mut self.posted {
                    posted.reversed_by = Some(reversal_entry_id);
                }
            }
        }
    }
}

impl UniqueValues for JournalEntry {}

impl JournalEntry {
    /// The posted lines, once posted.
    pub fn lines(&self) -> &[EntryLine] {
        self.posted.as_ref().map_or(&[], |posted| &posted.lines)
    }

    /// The rules of posting and reversing.
    pub fn decide(
        &self,
        command: JournalCommand,
        context: &PostingContext,
    ) -> Result<Vec<JournalEvent>, JournalError> {
        match command {
            JournalCommand::Post(entry) => {
                if self.posted.is_some() {
                    return Err(JournalError::AlreadyPosted);
                }
                Ok(vec![post(entry, context)?])
            }
            JournalCommand::Reverse {
                reversal_entry_id,
                date,
                narration,
            } => {
                let posted = self
                    .posted
                    .as_ref()
                    .filter(|posted| context.organization.id() == Some(posted.organization_id))
                    .ok_or(JournalError::NotFound)?;
                if let Some(by) = posted.reversed_by {
                    return Err(JournalError::AlreadyReversed(by));
                }
                let narration = match narration {
                    Some(narration) => text("narration", narration)?,
                    None => format!("Reversal of {}", posted.narration)
                        .chars()
                        .take(MAX_TEXT)
                        .collect(),
                };
                let lines: Vec<EntryLine> = posted.lines.iter().map(EntryLine::swapped).collect();
                // The reversal posts like any entry today: open period, usable accounts, live
                // projects. Only its kind is exempt from the opening-entry rule.
                check_lines(&lines, EntryKind::Reversal, &posted.currency, context)?;
                let fiscal_year = context
                    .ledger
                    .check_posting_date(date)
                    .map_err(JournalError::Date)?;
                Ok(vec![JournalEvent::JournalEntryReversed {
                    entry_id: posted.entry_id,
                    organization_id: posted.organization_id,
                    reversal_entry_id,
                    date,
                    fiscal_year,
                    currency: posted.currency.clone(),
                    narration,
                    lines,
                }])
            }
        }
    }
}

fn text(field: &str, value: String) -> Result<String, JournalError> {
    if valid_text(&value) {
        Ok(value)
    } else {
        Err(JournalError::Text {
            field: field.to_owned(),
        })
    }
}

fn optional_text(field: &str, value: Option<String>) -> Result<Option<String>, JournalError> {
    value.map(|value| text(field, value)).transpose()
}

fn post(entry: NewEntry, context: &PostingContext) -> Result<JournalEvent, JournalError> {
    let organization = &context.organization;
    if organization.id() != Some(entry.organization_id) {
        return Err(JournalError::OrganizationNotFound);
    }
    if organization.is_archived() {
        return Err(JournalError::OrganizationArchived);
    }
    let currency = organization.base_currency().cloned().unwrap_or_default();
    let narration = text("narration", entry.narration)?;
    let reference = optional_text("reference", entry.reference)?;
    let document_number = optional_text("document_number", entry.document_number)?;
    let mut lines = entry.lines;
    if lines.len() > MAX_LINES {
        return Err(JournalError::TooManyLines);
    }
    for (index, line) in lines.iter().enumerate() {
        if let Some(memo) = &line.memo {
            if !valid_text(memo) {
                return Err(JournalError::Text {
                    field: format!("lines[{index}].memo"),
                });
            }
        }
        let one_side = line.debit.is_positive() != line.credit.is_positive();
        if !one_side || line.debit.paisa() < 0 || line.credit.paisa() < 0 {
            return Err(JournalError::LineSides { line: index });
        }
    }
    let debit: Money = lines.iter().map(|l| l.debit).sum();
    let credit: Money = lines.iter().map(|l| l.credit).sum();
    if debit != credit {
        let difference = if debit > credit {
            debit - credit
        } else {
            credit - debit
        };
        if !entry.round_off {
            return Err(JournalError::Unbalanced {
                debit,
                credit,
                difference,
            });
        }
        let settings = context.ledger.settings();
        if difference > settings.round_off_allowance {
            return Err(JournalError::AboveRoundOffAllowance {
                difference,
                allowance: settings.round_off_allowance,
            });
        }
        let account_id = settings
            .round_off_account_id
            .ok_or(JournalError::NoRoundOffAccount)?;
        let (debit, credit) = if debit > credit {
            (Money::ZERO, difference)
        } else {
            (difference, Money::ZERO)
        };
        // On a profit-and-loss round-off account the line needs a project: the entry's first.
        let project_id = lines.iter().find_map(|l| l.project_id);
        let site_id = lines
            .iter()
            .find(|l| l.project_id == project_id)
            .and_then(|l| l.site_id);
        lines.push(EntryLine {
            account_id,
            debit,
            credit,
            party: None,
            project_id,
            site_id,
            memo: Some("Round-off".to_owned()),
        });
    }
    if lines.len() < 2 {
        return Err(JournalError::TooFewLines);
    }
    check_lines(&lines, entry.kind, &currency, context)?;
    let fiscal_year = context
        .ledger
        .check_posting_date(entry.date)
        .map_err(JournalError::Date)?;
    Ok(JournalEvent::JournalEntryPosted {
        entry_id: entry.entry_id,
        organization_id: entry.organization_id,
        kind: entry.kind,
        date: entry.date,
        fiscal_year,
        currency,
        narration,
        reference,
        document_number,
        lines,
    })
}

/// The rules every line meets against the ledger and the hierarchy.
fn check_lines(
    lines: &[EntryLine],
    kind: EntryKind,
    currency: &CurrencyCode,
    context: &PostingContext,
) -> Result<(), JournalError> {
    for (line, entry_line) in lines.iter().enumerate() {
        let account_id = entry_line.account_id;
        let account = context
            .ledger
            .account(account_id)
            .ok_or(JournalError::AccountNotFound { line, account_id })?;
        if account.is_group {
            return Err(JournalError::GroupAccount { line, account_id });
        }
        if account.disabled {
            return Err(JournalError::AccountDisabled { line, account_id });
        }
        if account.frozen {
            return Err(JournalError::AccountFrozen { line, account_id });
        }
        if account.currency != *currency {
            return Err(JournalError::CurrencyMismatch {
                line,
                account_id,
                account: account.currency.clone(),
                entry: currency.clone(),
            });
        }
        if account.account_type.needs_party() && entry_line.party.is_none() {
            return Err(JournalError::PartyRequired { line });
        }
        let profit_and_loss = account.root_type.is_profit_and_loss();
        if profit_and_loss && kind == EntryKind::Opening {
            return Err(JournalError::OpeningTouchesProfitAndLoss { line });
        }
        if let Some(project_id) = entry_line.project_id {
            match context.organization.project_status(project_id) {
                None => return Err(JournalError::ProjectNotFound { line }),
                Some(UnitStatus::Archived) => return Err(JournalError::ProjectArchived { line }),
                Some(UnitStatus::Active) => {}
            }
        }
        if let Some(site_id) = entry_line.site_id {
            let project_id = entry_line
                .project_id
                .ok_or(JournalError::SiteWithoutProject { line })?;
            match context.organization.site(site_id) {
                None => return Err(JournalError::SiteNotFound { line }),
                Some((project, _)) if project != project_id => {
                    return Err(JournalError::SiteNotInProject { line });
                }
                Some((_, UnitStatus::Archived)) => {
                    return Err(JournalError::SiteArchived { line });
                }
                Some(_) => {}
            }
        }
        if profit_and_loss {
            if entry_line.project_id.is_none() {
                return Err(JournalError::ProjectRequired { line });
            }
            if context.ledger.settings().require_site && entry_line.site_id.is_none() {
                return Err(JournalError::SiteRequired { line });
            }
        }
    }
    Ok(())
}
