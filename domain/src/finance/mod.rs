//! Finance: the double-entry general ledger (domain-finance.md; design.md D12–D13).
//!
//! - [`Money`]: exact amounts in paisa, parsed from decimal strings.
//! - [`Ledger`]: an organization's chart of accounts, fiscal calendar and settings, one stream per
//!   organization (id = the organization's id).
//! - [`JournalEntry`]: one stream per posted entry; its posting decides on the ledger and the
//!   organization's hierarchy ([`PostingContext`]), whose versions the store checks at append.
//! - [`standard_chart`]: the chart a Bangladeshi construction company starts from.

mod calendar;
mod chart;
mod entry;
mod journal;
mod ledger;
mod money;

#[cfg(test)]
mod tests;

pub use calendar::FiscalYear;
pub use chart::{AccountType, NewAccount, RootType, standard_chart};
pub use entry::{EntryKind, EntryLine, Party, PartyKind};
pub use journal::{
    JournalCommand, JournalEntry, JournalError, JournalEvent, LineIndex, MAX_LINES, MAX_TEXT,
    NewEntry, PostingContext, TEXT_PATTERN, valid_text,
};
pub use ledger::{Account, Ledger, LedgerCommand, LedgerError, LedgerEvent, LedgerSettings};
pub use money::{Money, MoneyError};
