//! Finance: the double-entry general ledger (domain-finance.md; design.md D12–D13).
//!
//! - [`Money`]: exact amounts in paisa, parsed from decimal strings.
//! - [`Ledger`]: an organization's chart of accounts, fiscal calendar and settings, one stream per
//!   organization (id = the organization's id).
//! - [`JournalEntry`]: one stream per posted entry; its posting decides on the ledger and the
//!   organization's hierarchy ([`PostingContext`]), whose versions the store checks at append.
//! - [`standard_chart`]: the chart a Bangladeshi construction company starts from.
//! - [`Party`]: a customer or supplier, one stream per party.
//! - [`TaxBook`]: an organization's dated VAT codes, VDS shares and TDS tiers, the accounts its
//!   documents post to and its submitted VAT months, one stream per organization.
//! - [`Invoice`]: a sales invoice or purchase bill, one stream per document; its submit takes a
//!   gapless number from a [`NumberSeries`] and posts a journal entry, in one transaction.
//! - [`Payment`]: a receipt or payment, one stream each; it settles documents of its party (never
//!   above what is outstanding), deducts what was withheld and holds the rest as an advance.
//! - [`Budgets`] and [`BudgetUsage`]: budgets per project, site and expense account, Stop or Warn,
//!   checked against each budget's own usage stream when a posting spends against it.
//! - [`Retention`]: the retention money held with one party, one stream per party; a release is
//!   checked against it.
//! - [`Rate`] and [`Quantity`]: exact percentages and quantities.

mod budget;
mod calendar;
mod chart;
mod entry;
mod invoice;
mod journal;
mod ledger;
mod measure;
mod money;
mod party;
mod payment;
mod retention;
mod series;
mod tax;

#[cfg(test)]
mod foreign_tests;
#[cfg(test)]
mod invoice_tests;
#[cfg(test)]
mod tests;

pub use budget::{
    BudgetAction, BudgetCommand, BudgetError, BudgetEvent, BudgetLine, BudgetUsage, Budgets,
    OverBudget, UsageCommand, UsageError, UsageEvent,
};
pub use calendar::FiscalYear;
pub use chart::{AccountType, NewAccount, RootType, standard_chart};
pub use entry::{EntryKind, EntryLine, LineParty, PartyKind};
pub use invoice::{
    DocumentContext, ForeignAmounts, Invoice, InvoiceCommand, InvoiceError, InvoiceEvent,
    InvoiceKind, InvoiceLine, NewInvoice, PricedLine, Pricing, SubmittedInvoice, TaxParty,
    Withholding, journal_entry, original_adjustment,
};
pub use journal::{
    JournalCommand, JournalEntry, JournalError, JournalEvent, LineIndex, MAX_LINES, MAX_TEXT,
    NewEntry, PostingContext, TEXT_PATTERN, valid_text,
};
pub use ledger::{Account, Ledger, LedgerCommand, LedgerError, LedgerEvent, LedgerSettings};
pub use measure::{ExchangeRate, MeasureError, Quantity, Rate};
pub use money::{Money, MoneyError};
pub use party::{MAX_TERMS_DAYS, Party, PartyCommand, PartyDetails, PartyError, PartyEvent};
pub use payment::{
    AdvanceAllocation, Allocation, CertificateError, Deduction, DeductionKind, NewPayment, Payment,
    PaymentCommand, PaymentContext, PaymentDirection, PaymentError, PaymentEvent, RecordedPayment,
    Settlement, VdsCertificate, payment_entry,
};
pub use retention::{
    Retention, RetentionChange, RetentionCommand, RetentionError, RetentionEvent, RetentionMove,
};
pub use series::{
    NumberSeries, SeriesCommand, SeriesError, SeriesEvent, document_number, series_id,
};
pub use tax::{
    DocumentAccounts, TaxBook, TaxCommand, TaxError, TaxEvent, TdsDefinition, TdsSection, TdsTier,
    VatCode, VatCodeDefinition, VatKind, VatMonth, VatRate, month_of, standard_tax_rules,
};
