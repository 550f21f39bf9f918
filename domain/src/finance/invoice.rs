//! The [`Invoice`] aggregate: a sales invoice or a purchase bill, one stream per document
//! (design.md D13).
//!
//! A document is drafted, then submitted. Submitting prices every line at the VAT rate in force on
//! the document's date (VAT-exclusive or VAT-inclusive prices, rounded half-up once per line),
//! works out what is withheld, takes the next number of its series and posts one balanced journal
//! entry through the ledger's own rules:
//!
//! - a sales invoice: Dr receivable (the total, naming the customer) / Cr revenue per line / Cr
//!   output VAT;
//! - a purchase bill: Dr expense or asset per line / Dr input VAT / Cr payable (what is left to
//!   pay) / Cr VDS payable / Cr TDS payable / Cr retention payable, when the organization withholds.
//!
//! The submit decides on the organization's ledger and hierarchy, its [`TaxBook`], the party and
//! the number series, and appends the document's event, the series' number and the journal entry
//! in one transaction, with each stream read at the version the decision saw (design.md D12).
//! Everything a tax invoice (Mushak-6.3) prints is recorded in [`InvoiceEvent::InvoiceSubmitted`],
//! so a changed rate, party or name later leaves the printed document as it was.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::entry::{EntryKind, EntryLine, LineParty, PartyKind};
use super::journal::{
    JournalCommand, JournalEntry, JournalError, JournalEvent, MAX_LINES, NewEntry, PostingContext,
};
use super::measure::{ExchangeRate, Quantity, Rate};
use super::party::Party;
use super::payment::{CertificateError, VdsCertificate};
use super::retention::RetentionError;
use super::series::document_number;
use super::tax::{TaxBook, TaxError, VatKind};
use super::{Money, valid_text};
use crate::ids::{
    AccountId, EntryId, InvoiceId, OrganizationId, PartyId, PaymentId, ProjectId, SiteId,
};
use crate::unique::UniqueValues;
use crate::values::{Bin, Code, CurrencyCode};

/// What a document is: a sales invoice, a supplier's bill, or a note that changes one of them
/// (Mushak-6.7 credit notes decrease it, Mushak-6.8 debit notes increase it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceKind {
    SalesInvoice,
    PurchaseBill,
    /// Issued to a customer against a sales invoice.
    SalesCreditNote,
    SalesDebitNote,
    /// Received from a supplier against a bill.
    PurchaseCreditNote,
    PurchaseDebitNote,
}

impl InvoiceKind {
    pub const ALL: [InvoiceKind; 6] = [
        Self::SalesInvoice,
        Self::PurchaseBill,
        Self::SalesCreditNote,
        Self::SalesDebitNote,
        Self::PurchaseCreditNote,
        Self::PurchaseDebitNote,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SalesInvoice => "sales_invoice",
            Self::PurchaseBill => "purchase_bill",
            Self::SalesCreditNote => "sales_credit_note",
            Self::SalesDebitNote => "sales_debit_note",
            Self::PurchaseCreditNote => "purchase_credit_note",
            Self::PurchaseDebitNote => "purchase_debit_note",
        }
    }

    /// For people: "sales invoice", "credit note" …
    pub fn label(self) -> &'static str {
        match self {
            Self::SalesInvoice => "sales invoice",
            Self::PurchaseBill => "purchase bill",
            Self::SalesCreditNote | Self::PurchaseCreditNote => "credit note",
            Self::SalesDebitNote | Self::PurchaseDebitNote => "debit note",
        }
    }

    /// The prefix of its number series.
    pub fn series_prefix(self) -> &'static str {
        match self {
            Self::SalesInvoice => "SI",
            Self::PurchaseBill => "PB",
            Self::SalesCreditNote => "SCN",
            Self::SalesDebitNote => "SDN",
            Self::PurchaseCreditNote => "PCN",
            Self::PurchaseDebitNote => "PDN",
        }
    }

    /// Whether it concerns a sale (a customer) rather than a purchase (a supplier).
    pub fn is_sale(self) -> bool {
        matches!(
            self,
            Self::SalesInvoice | Self::SalesCreditNote | Self::SalesDebitNote
        )
    }

    /// The kind of party it is addressed to.
    pub fn party_kind(self) -> PartyKind {
        if self.is_sale() {
            PartyKind::Customer
        } else {
            PartyKind::Supplier
        }
    }

    /// For a note, the kind of document it changes.
    pub fn note_of(self) -> Option<InvoiceKind> {
        match self {
            Self::SalesInvoice | Self::PurchaseBill => None,
            Self::SalesCreditNote | Self::SalesDebitNote => Some(Self::SalesInvoice),
            Self::PurchaseCreditNote | Self::PurchaseDebitNote => Some(Self::PurchaseBill),
        }
    }

    /// A credit note: it decreases what it changes, and posts the other way round.
    pub fn decreases(self) -> bool {
        matches!(self, Self::SalesCreditNote | Self::PurchaseCreditNote)
    }

    /// The credit note (`true`) or debit note of a document of this kind.
    pub fn note(self, credit: bool) -> Option<InvoiceKind> {
        match (self, credit) {
            (Self::SalesInvoice, true) => Some(Self::SalesCreditNote),
            (Self::SalesInvoice, false) => Some(Self::SalesDebitNote),
            (Self::PurchaseBill, true) => Some(Self::PurchaseCreditNote),
            (Self::PurchaseBill, false) => Some(Self::PurchaseDebitNote),
            _ => None,
        }
    }
}

/// The VAT effect above which a credit note must name the buyer's name, address and BIN to
/// count as a decreasing adjustment (VAT & SD Rules; check): Tk 5,000.
pub const NOTE_DETAILS_ABOVE: Money = Money::from_paisa(500_000);

/// Whether unit prices include VAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pricing {
    #[default]
    VatExclusive,
    VatInclusive,
}

/// One line as entered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub description: String,
    pub quantity: Quantity,
    pub unit_price: Money,
    pub vat_code: Code,
    /// Revenue on a sales invoice; expense or asset on a bill.
    pub account_id: AccountId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<ProjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_id: Option<SiteId>,
}

/// A document to draft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInvoice {
    pub invoice_id: InvoiceId,
    pub organization_id: OrganizationId,
    pub kind: InvoiceKind,
    pub party_id: PartyId,
    pub date: NaiveDate,
    pub due_date: NaiveDate,
    pub pricing: Pricing,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub narration: Option<String>,
    pub lines: Vec<InvoiceLine>,
    /// Bills: the TDS section the organization withholds under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tds_section: Option<Code>,
    /// Bills: the share of the VAT-exclusive value held as retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Rate>,
    /// Notes: the document the note changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<InvoiceId>,
    /// A foreign currency the document is priced in (the organization's base currency when
    /// omitted), and how many units of the base currency one unit is worth on its date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<CurrencyCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_rate: Option<ExchangeRate>,
}

/// A foreign-currency document's amounts in its own currency (its lines, the ledger and the VAT
/// books are in the base currency, converted line by line at `rate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignAmounts {
    pub currency: CurrencyCode,
    pub rate: ExchangeRate,
    pub value: Money,
    pub vat: Money,
    pub total: Money,
    /// What the organization withheld on a bill, in the document's currency (VDS, TDS and
    /// retention, each converted to the base currency on its own for the ledger).
    #[serde(default)]
    pub withheld: Money,
}

impl ForeignAmounts {
    /// What the party owes or is owed in the document's currency: the total less what was
    /// withheld.
    pub fn balance(&self) -> Money {
        self.total - self.withheld
    }
}

/// A line as submitted: priced at its VAT code's rate on the document's date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedLine {
    #[serde(flatten)]
    pub line: InvoiceLine,
    pub vat_kind: VatKind,
    pub vat_rate: Rate,
    /// Value without VAT.
    pub value: Money,
    pub vat: Money,
    /// Value with VAT.
    pub total: Money,
    /// The VAT a withholding buyer deducts at source on this line.
    pub vds: Money,
}

/// A seller or buyer as a tax invoice prints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxParty {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<Bin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// What is withheld from a document's total: by the organization on a bill (posted with it), by
/// a withholding customer on a sales invoice (expected; posted when the customer pays).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withholding {
    pub vds: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tds_rate: Option<Rate>,
    pub tds: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_rate: Option<Rate>,
    pub retention: Money,
}

impl Withholding {
    pub fn total(&self) -> Money {
        self.vds + self.tds + self.retention
    }
}

/// A submitted document: everything a tax invoice (Mushak-6.3) prints and the registers read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmittedInvoice {
    pub invoice_id: InvoiceId,
    pub organization_id: OrganizationId,
    pub kind: InvoiceKind,
    pub party_id: PartyId,
    /// The printed number, e.g. `SI-2025-26-000001`, and its serial in the series.
    pub number: String,
    pub serial: u64,
    /// The first day of the fiscal year of `date`, which names the series.
    pub fiscal_year: NaiveDate,
    pub date: NaiveDate,
    pub due_date: NaiveDate,
    pub issued_at: DateTime<Utc>,
    pub seller: TaxParty,
    pub buyer: TaxParty,
    pub pricing: Pricing,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub narration: String,
    pub lines: Vec<PricedLine>,
    /// Sums of the lines.
    pub value: Money,
    pub vat: Money,
    pub total: Money,
    pub withholding: Withholding,
    /// What the party owes (sales) or is owed (bills) on the receivable or payable account:
    /// the total, less on a bill what the organization withholds.
    pub balance: Money,
    /// The journal entry the submit posted.
    pub entry_id: EntryId,
    /// The receivable or payable account the balance is on.
    pub account_id: AccountId,
    /// Notes: the document changed, and its number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<InvoiceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_number: Option<String>,
    /// Sales credit notes: whether the note counts as a decreasing adjustment of output VAT (its
    /// VAT is at most Tk 5,000, or it names the buyer's name, address and BIN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decreasing_adjustment_eligible: Option<bool>,
    /// A foreign-currency document's own amounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreign: Option<ForeignAmounts>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum InvoiceCommand {
    Draft(NewInvoice),
    /// Prices, numbers and posts the draft, issued at `issued_at`.
    Submit {
        issued_at: DateTime<Utc>,
        entry_id: EntryId,
    },
    /// Cancels a submitted document nothing was settled against and no note changed: its entry
    /// is reversed on `date`.
    Cancel {
        date: NaiveDate,
        reason: String,
        reversal_entry_id: EntryId,
    },
    /// Records the Mushak-6.6 certificate the organization issued for the VAT a bill withheld,
    /// once.
    RecordVdsCertificate {
        organization_id: OrganizationId,
        certificate: VdsCertificate,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InvoiceEvent {
    InvoiceDrafted(NewInvoice),
    InvoiceSubmitted(Box<SubmittedInvoice>),
    /// A payment or receipt settled `amount` of the balance; appended by the payment, in its
    /// transaction, with this stream's version checked (never more than is outstanding).
    InvoiceSettled {
        payment_id: PaymentId,
        /// In the base currency, at the document's own rate (its carrying amount).
        amount: Money,
        /// The payment's date: when the document stopped being open by `amount`.
        date: NaiveDate,
        /// A foreign-currency document: what was settled in its currency.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        foreign_amount: Option<Money>,
    },
    /// A note changed the balance by `amount` (negative for a credit note); appended by the
    /// note's submit, with this stream's version checked.
    InvoiceAdjusted {
        note_id: InvoiceId,
        amount: Money,
        /// The note's date.
        date: NaiveDate,
        /// A foreign-currency document: what the note changed in its currency.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        foreign_amount: Option<Money>,
    },
    /// The Mushak-6.6 certificate issued for the VAT the bill withheld.
    VdsCertificateIssued(VdsCertificate),
    /// Cancelled: its entry was reversed by `reversal_entry_id` on `date`.
    InvoiceCancelled {
        invoice_id: InvoiceId,
        date: NaiveDate,
        fiscal_year: NaiveDate,
        reason: String,
        reversal_entry_id: EntryId,
    },
}

impl DomainEvent for InvoiceEvent {
    fn event_type(&self) -> String {
        match self {
            Self::InvoiceDrafted(_) => "InvoiceDrafted",
            Self::InvoiceSubmitted(_) => "InvoiceSubmitted",
            Self::InvoiceSettled { .. } => "InvoiceSettled",
            Self::InvoiceAdjusted { .. } => "InvoiceAdjusted",
            Self::InvoiceCancelled { .. } => "InvoiceCancelled",
            Self::VdsCertificateIssued(_) => "VdsCertificateIssued",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvoiceError {
    #[error("document not found")]
    NotFound,
    /// Cancelling a bill whose retention was already released.
    #[error("{0}")]
    Retention(RetentionError),
    #[error("the document already exists")]
    AlreadyExists,
    #[error("the document is already submitted; submitted documents change only by notes")]
    AlreadySubmitted,
    #[error("the party was not found in this organization")]
    PartyNotFound,
    #[error("the party is archived")]
    PartyArchived,
    #[error("a {document} is addressed to a {expected}")]
    PartyKind {
        document: &'static str,
        expected: &'static str,
    },
    #[error("a document has 1 to {MAX_LINES} lines")]
    LineCount,
    #[error("must be 1 to 500 characters, without control characters or white space at either end")]
    Text { field: String },
    #[error("the due date is before the document's date")]
    DueBeforeDate,
    #[error("TDS and retention are withheld on purchase bills only")]
    WithholdingOnSale,
    #[error(
        "lines[{line}]: the unit price is above zero and quantity times price at most 9999999999999.99"
    )]
    LineAmount { line: usize },
    #[error("lines[{line}].vat_code: {source}")]
    VatCode { line: usize, source: TaxError },
    #[error("{0}")]
    Tax(TaxError),
    #[error("the tax book has no accounts for documents to post to")]
    NoDocumentAccounts,
    #[error("what is withheld ({withheld}) is more than the document's total ({total})")]
    WithheldAboveTotal { withheld: Money, total: Money },
    #[error("the organization has no BIN to print on a tax invoice")]
    NoSellerBin,
    #[error("{0}")]
    Posting(JournalError),
    #[error("a {0} names the document it changes, a submitted one of the same party")]
    NoteWithoutOriginal(&'static str),
    #[error("the document it changes was not found")]
    OriginalNotFound,
    #[error("a note changes a {expected} of the same party")]
    OriginalOfAnother { expected: &'static str },
    #[error("a credit note of {note} is more than the {outstanding} left of the document")]
    NoteAboveOutstanding { note: Money, outstanding: Money },
    #[error("withholding is worked out on the document, not on its notes")]
    WithholdingOnNote,
    #[error("the document is not submitted")]
    NotSubmitted,
    #[error("the document is cancelled")]
    Cancelled,
    #[error("{settled} was settled against the document; it changes by notes only")]
    SettledCannotCancel { settled: Money },
    #[error("a note changed the document; it changes by further notes only")]
    AdjustedCannotCancel,
    #[error(
        "Mushak-6.6 certificate {0} was issued for the VAT it withheld; it changes by notes only"
    )]
    CertificateCannotCancel(String),
    #[error("a note is corrected by another note, not cancelled")]
    NoteCannotCancel,
    #[error("a document in {0} gives its exchange_rate to the base currency")]
    ExchangeRateRequired(CurrencyCode),
    #[error("a document in the base currency has no exchange_rate")]
    ExchangeRateInBaseCurrency,
    /// `expected` is the document's currency, and its rate when foreign (`USD at 120.00`).
    #[error("a note is in the currency of the document it changes, at its rate: {expected}")]
    NoteCurrency { expected: String },
    #[error("{0}")]
    Certificate(CertificateError),
}

/// What a document's decisions read: the organization's ledger and hierarchy, its tax book, the
/// party, and the series' next serial.
#[derive(Debug, Clone, Default)]
pub struct DocumentContext {
    pub posting: PostingContext,
    pub tax: Arc<TaxBook>,
    pub party: Arc<Party>,
    /// The next serial of the document's series in its fiscal year (submits only).
    pub next_serial: u64,
    /// A note's original document, as read (a note's draft and submit).
    pub original: Option<Arc<Invoice>>,
    /// The document's own journal entry, as read (a cancellation reverses it).
    pub entry: Option<Arc<JournalEntry>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Submitted {
    number: String,
    total: Money,
    balance: Money,
    entry_id: EntryId,
    /// The receivable or payable account the balance is on.
    account_id: AccountId,
    /// What payments and receipts have settled of the balance.
    settled: Money,
    /// What notes changed the balance by.
    adjusted: Money,
    /// A foreign-currency document: its balance and what was settled of it, in its currency.
    foreign: Option<(CurrencyCode, Money)>,
    foreign_settled: Money,
    /// What notes changed the balance by, in its currency.
    #[serde(default)]
    foreign_adjusted: Money,
    /// The date it was submitted for.
    date: NaiveDate,
    cancelled: bool,
    /// The retention a bill withheld (held with the party until released).
    #[serde(default)]
    retention: Money,
    /// The VAT a bill withheld at source, and the Mushak-6.6 certificate issued for it.
    #[serde(default)]
    vds: Money,
    #[serde(default)]
    certificate: Option<VdsCertificate>,
}

/// A sales invoice or purchase bill (see the module docs).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Invoice {
    draft: Option<NewInvoice>,
    submitted: Option<Submitted>,
}

impl Aggregate for Invoice {
    const TYPE: &'static str = "invoice";
    type Command = InvoiceCommand;
    type Event = InvoiceEvent;
    type Error = InvoiceError;
    type Services = DocumentContext;

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
            InvoiceEvent::InvoiceDrafted(draft) => self.draft = Some(draft),
            InvoiceEvent::InvoiceSubmitted(submitted) => {
                self.submitted = Some(Submitted {
                    number: submitted.number,
                    total: submitted.total,
                    balance: submitted.balance,
                    entry_id: submitted.entry_id,
                    account_id: submitted.account_id,
                    settled: Money::ZERO,
                    adjusted: Money::ZERO,
                    foreign: submitted
                        .foreign
                        .as_ref()
                        .map(|foreign| (foreign.currency.clone(), foreign.balance())),
                    foreign_settled: Money::ZERO,
                    foreign_adjusted: Money::ZERO,
                    date: submitted.date,
                    cancelled: false,
                    retention: submitted.withholding.retention,
                    vds: if submitted.kind == InvoiceKind::PurchaseBill {
                        submitted.withholding.vds
                    } else {
                        Money::ZERO
                    },
                    certificate: None,
                });
            }
            InvoiceEvent::InvoiceAdjusted {
                amount,
                foreign_amount,
                ..
            } => {
                if let Some(submitted) = &mut self.submitted {
                    submitted.adjusted += amount;
                    submitted.foreign_adjusted += foreign_amount.unwrap_or(Money::ZERO);
                }
            }
            InvoiceEvent::InvoiceCancelled { .. } => {
                if let Some(submitted) = &mut self.submitted {
                    submitted.cancelled = true;
                }
            }
            InvoiceEvent::VdsCertificateIssued(certificate) => {
                if let Some(submitted) = &mut self.submitted {
                    submitted.certificate = Some(certificate);
                }
            }
            InvoiceEvent::InvoiceSettled {
                amount,
                foreign_amount,
                ..
            } => {
                if let Some(submitted) = &mut self.submitted {
                    submitted.settled += amount;
                    submitted.foreign_settled += foreign_amount.unwrap_or(Money::ZERO);
                }
            }
        }
    }
}

impl UniqueValues for Invoice {}

impl Invoice {
    /// The draft as entered, once drafted.
    pub fn draft(&self) -> Option<&NewInvoice> {
        self.draft.as_ref()
    }

    pub fn is_submitted(&self) -> bool {
        self.submitted.is_some()
    }

    /// The printed number, once submitted.
    pub fn number(&self) -> Option<&str> {
        self.submitted.as_ref().map(|s| s.number.as_str())
    }

    /// What is left to settle of a submitted document's balance, as notes changed it; nothing
    /// once cancelled.
    pub fn outstanding(&self) -> Option<Money> {
        self.submitted.as_ref().map(|s| {
            if s.cancelled {
                Money::ZERO
            } else {
                s.balance + s.adjusted - s.settled
            }
        })
    }

    /// A foreign-currency document's currency and what is left of it in that currency.
    pub fn foreign_outstanding(&self) -> Option<(&CurrencyCode, Money)> {
        let submitted = self.submitted.as_ref()?;
        let (currency, balance) = submitted.foreign.as_ref()?;
        let left = if submitted.cancelled {
            Money::ZERO
        } else {
            *balance + submitted.foreign_adjusted - submitted.foreign_settled
        };
        Some((currency, left))
    }

    pub fn is_cancelled(&self) -> bool {
        self.submitted.as_ref().is_some_and(|s| s.cancelled)
    }

    /// The retention a submitted bill withheld from its supplier.
    pub fn retention(&self) -> Money {
        self.submitted.as_ref().map_or(Money::ZERO, |s| s.retention)
    }

    /// The journal entry a submitted document posted.
    pub fn entry_id(&self) -> Option<EntryId> {
        self.submitted.as_ref().map(|s| s.entry_id)
    }

    /// The receivable or payable account a submitted document's balance is on.
    pub fn balance_account(&self) -> Option<AccountId> {
        self.submitted.as_ref().map(|s| s.account_id)
    }

    pub fn decide(
        &self,
        command: InvoiceCommand,
        context: &DocumentContext,
    ) -> Result<Vec<InvoiceEvent>, InvoiceError> {
        match command {
            InvoiceCommand::Draft(draft) => {
                if self.draft.is_some() {
                    return Err(InvoiceError::AlreadyExists);
                }
                let draft = in_original_currency(draft, context);
                check_draft(&draft, context)?;
                Ok(vec![InvoiceEvent::InvoiceDrafted(draft)])
            }
            InvoiceCommand::Submit {
                issued_at,
                entry_id,
            } => {
                let draft = self.draft.as_ref().ok_or(InvoiceError::NotFound)?;
                if context.posting.organization.id() != Some(draft.organization_id) {
                    return Err(InvoiceError::NotFound);
                }
                if self.submitted.is_some() {
                    return Err(InvoiceError::AlreadySubmitted);
                }
                let submitted = submit(draft, context, issued_at, entry_id)?;
                // The entry it posts must pass the ledger's rules.
                journal_entry(&submitted, context)?;
                Ok(vec![submitted])
            }
            InvoiceCommand::Cancel {
                date,
                reason,
                reversal_entry_id,
            } => {
                let draft = self.draft.as_ref().ok_or(InvoiceError::NotFound)?;
                if context.posting.organization.id() != Some(draft.organization_id) {
                    return Err(InvoiceError::NotFound);
                }
                let submitted = self.submitted.as_ref().ok_or(InvoiceError::NotSubmitted)?;
                if submitted.cancelled {
                    return Err(InvoiceError::Cancelled);
                }
                if draft.kind.note_of().is_some() {
                    return Err(InvoiceError::NoteCannotCancel);
                }
                if !submitted.settled.is_zero() {
                    return Err(InvoiceError::SettledCannotCancel {
                        settled: submitted.settled,
                    });
                }
                if !submitted.adjusted.is_zero() {
                    return Err(InvoiceError::AdjustedCannotCancel);
                }
                if let Some(certificate) = &submitted.certificate {
                    return Err(InvoiceError::CertificateCannotCancel(
                        certificate.number.clone(),
                    ));
                }
                text("reason", &reason)?;
                // Its VAT left the books of the month it was dated in and of the cancellation's:
                // both must still be open.
                context
                    .tax
                    .check_vat_period(submitted.date)
                    .and_then(|()| context.tax.check_vat_period(date))
                    .map_err(InvoiceError::Tax)?;
                let fiscal_year = context
                    .posting
                    .ledger
                    .check_posting_date(date)
                    .map_err(|error| InvoiceError::Posting(JournalError::Date(error)))?;
                let cancelled = InvoiceEvent::InvoiceCancelled {
                    invoice_id: draft.invoice_id,
                    date,
                    fiscal_year,
                    reason,
                    reversal_entry_id,
                };
                journal_entry(&cancelled, context)?;
                Ok(vec![cancelled])
            }
            InvoiceCommand::RecordVdsCertificate {
                organization_id,
                certificate,
            } => {
                let draft = self
                    .draft
                    .as_ref()
                    .filter(|draft| draft.organization_id == organization_id)
                    .ok_or(InvoiceError::NotFound)?;
                let submitted = self.submitted.as_ref().ok_or(InvoiceError::NotSubmitted)?;
                if submitted.cancelled {
                    return Err(InvoiceError::Cancelled);
                }
                if draft.kind != InvoiceKind::PurchaseBill || !submitted.vds.is_positive() {
                    return Err(InvoiceError::Certificate(CertificateError::NoVdsDeducted));
                }
                let new = certificate
                    .check(submitted.date, submitted.certificate.as_ref())
                    .map_err(InvoiceError::Certificate)?;
                Ok(if new {
                    vec![InvoiceEvent::VdsCertificateIssued(certificate)]
                } else {
                    Vec::new()
                })
            }
        }
    }

    /// The Mushak-6.6 certificate issued for the VAT a bill withheld, once recorded.
    pub fn certificate(&self) -> Option<&VdsCertificate> {
        self.submitted.as_ref()?.certificate.as_ref()
    }
}

/// What `amount` of the `left` a foreign-currency document still has in its currency carries in
/// the base currency: the same share of the `outstanding` it carries there, all of it when
/// `amount` is all that is left (so nothing is left open in either currency).
pub(super) fn carrying_share(outstanding: Money, left: Money, amount: Money) -> Money {
    if amount == left {
        return outstanding;
    }
    outstanding
        .split(&[amount.paisa(), (left - amount).paisa()])
        .and_then(|parts| parts.first().copied())
        .unwrap_or(Money::ZERO)
}

/// A note drafted without a currency is in the currency of the document it changes, at that
/// document's rate.
fn in_original_currency(mut draft: NewInvoice, context: &DocumentContext) -> NewInvoice {
    if draft.kind.note_of().is_none() || draft.currency.is_some() || draft.exchange_rate.is_some() {
        return draft;
    }
    let original = context
        .original
        .as_ref()
        .and_then(|original| original.draft())
        .filter(|original| Some(original.invoice_id) == draft.original);
    if let Some(original) = original {
        draft.currency.clone_from(&original.currency);
        draft.exchange_rate = original.exchange_rate;
    }
    draft
}

/// The event a submitted note appends to the document it changes: the document's balance moved
/// by the note's (down for a credit note), in the base currency and, for a foreign-currency
/// document, in its own. `None` for a document that is not a note.
pub fn original_adjustment(submitted: &SubmittedInvoice) -> Option<InvoiceEvent> {
    submitted.original?;
    let signed = |amount: Money| {
        if submitted.kind.decreases() {
            -amount
        } else {
            amount
        }
    };
    Some(InvoiceEvent::InvoiceAdjusted {
        note_id: submitted.invoice_id,
        amount: signed(submitted.balance),
        date: submitted.date,
        foreign_amount: submitted
            .foreign
            .as_ref()
            .map(|foreign| signed(foreign.balance())),
    })
}

fn text(field: &str, value: &str) -> Result<(), InvoiceError> {
    if valid_text(value) {
        Ok(())
    } else {
        Err(InvoiceError::Text {
            field: field.to_owned(),
        })
    }
}

/// The rules a draft meets on its own and against the party and the tax book.
fn check_draft(draft: &NewInvoice, context: &DocumentContext) -> Result<(), InvoiceError> {
    if context.posting.organization.id() != Some(draft.organization_id) {
        return Err(InvoiceError::NotFound);
    }
    check_party(draft, &context.party)?;
    if draft.lines.is_empty() || draft.lines.len() > MAX_LINES {
        return Err(InvoiceError::LineCount);
    }
    if draft.due_date < draft.date {
        return Err(InvoiceError::DueBeforeDate);
    }
    let withholds = draft.tds_section.is_some() || draft.retention.is_some();
    let base = context
        .posting
        .organization
        .base_currency()
        .cloned()
        .unwrap_or_default();
    match (&draft.currency, draft.exchange_rate) {
        (Some(currency), None) if *currency != base => {
            return Err(InvoiceError::ExchangeRateRequired(currency.clone()));
        }
        (Some(currency), Some(_)) if *currency != base => {}
        (_, Some(_)) => return Err(InvoiceError::ExchangeRateInBaseCurrency),
        _ => {}
    }
    match draft.kind.note_of() {
        Some(original_kind) => {
            if withholds {
                return Err(InvoiceError::WithholdingOnNote);
            }
            let original_id = draft
                .original
                .ok_or(InvoiceError::NoteWithoutOriginal(draft.kind.label()))?;
            let original = context
                .original
                .as_ref()
                .filter(|original| {
                    original.draft().is_some_and(|d| {
                        d.invoice_id == original_id && d.organization_id == draft.organization_id
                    })
                })
                .ok_or(InvoiceError::OriginalNotFound)?;
            let ours = original
                .draft()
                .is_some_and(|d| d.kind == original_kind && d.party_id == draft.party_id);
            if !ours {
                return Err(InvoiceError::OriginalOfAnother {
                    expected: original_kind.label(),
                });
            }
            if !original.is_submitted() {
                return Err(InvoiceError::NotSubmitted);
            }
            if original.is_cancelled() {
                return Err(InvoiceError::Cancelled);
            }
            // A note is in its document's currency, at its document's rate, so that it changes
            // what the document carries and what is left of it in that currency alike.
            let in_currency = |d: &NewInvoice| match (&d.currency, d.exchange_rate) {
                (Some(currency), Some(rate)) if *currency != base => Some((currency.clone(), rate)),
                _ => None,
            };
            let original_currency = original.draft().and_then(in_currency);
            if in_currency(draft) != original_currency {
                let expected = match original_currency {
                    Some((currency, rate)) => format!("{currency} at {}", rate.to_decimal()),
                    None => base.to_string(),
                };
                return Err(InvoiceError::NoteCurrency { expected });
            }
        }
        None => {
            if draft.original.is_some() {
                return Err(InvoiceError::OriginalOfAnother {
                    expected: "credit or debit note",
                });
            }
            if draft.kind == InvoiceKind::SalesInvoice && withholds {
                return Err(InvoiceError::WithholdingOnSale);
            }
        }
    }
    if let Some(reference) = &draft.reference {
        text("reference", reference)?;
    }
    if let Some(narration) = &draft.narration {
        text("narration", narration)?;
    }
    let tax = &context.tax;
    if tax.organization_id().is_none() {
        return Err(InvoiceError::Tax(TaxError::NotAdopted));
    }
    for (index, line) in draft.lines.iter().enumerate() {
        text(&format!("lines[{index}].description"), &line.description)?;
        if !line.unit_price.is_positive() || line.quantity.times(line.unit_price).is_none() {
            return Err(InvoiceError::LineAmount { line: index });
        }
        tax.vat_rate(&line.vat_code, draft.date)
            .map_err(|source| InvoiceError::VatCode {
                line: index,
                source,
            })?;
    }
    if let Some(section) = &draft.tds_section {
        if !tax.tds_sections().contains_key(section) {
            return Err(InvoiceError::Tax(TaxError::UnknownTdsSection(
                section.clone(),
            )));
        }
    }
    Ok(())
}

fn check_party(draft: &NewInvoice, party: &Party) -> Result<(), InvoiceError> {
    if party.id() != Some(draft.party_id) || party.organization_id() != Some(draft.organization_id)
    {
        return Err(InvoiceError::PartyNotFound);
    }
    if party.is_archived() {
        return Err(InvoiceError::PartyArchived);
    }
    let expected = draft.kind.party_kind();
    if party.kind() != Some(expected) {
        return Err(InvoiceError::PartyKind {
            document: draft.kind.label(),
            expected: expected.as_str(),
        });
    }
    Ok(())
}

/// Prices, withholds and numbers a draft.
fn submit(
    draft: &NewInvoice,
    context: &DocumentContext,
    issued_at: DateTime<Utc>,
    entry_id: EntryId,
) -> Result<InvoiceEvent, InvoiceError> {
    check_draft(draft, context)?;
    let tax = &context.tax;
    tax.check_vat_period(draft.date)
        .map_err(InvoiceError::Tax)?;
    let accounts = tax.accounts().ok_or(InvoiceError::NoDocumentAccounts)?;
    let party = &context.party;
    let details = party.details().ok_or(InvoiceError::PartyNotFound)?;
    let organization = &context.posting.organization;
    let fiscal_year = context
        .posting
        .ledger
        .check_posting_date(draft.date)
        .map_err(|error| InvoiceError::Posting(JournalError::Date(error)))?;

    // VDS is withheld by the buyer: the organization on a bill, a withholding customer on a sale.
    let buyer_withholds = if draft.kind.note_of().is_some() {
        false
    } else if draft.kind.is_sale() {
        details.withholding_entity
    } else {
        tax.withholding_entity()
    };
    let mut lines = Vec::with_capacity(draft.lines.len());
    for (index, line) in draft.lines.iter().enumerate() {
        let (vat_kind, rate) =
            tax.vat_rate(&line.vat_code, draft.date)
                .map_err(|source| InvoiceError::VatCode {
                    line: index,
                    source,
                })?;
        let amount = line
            .quantity
            .times(line.unit_price)
            .ok_or(InvoiceError::LineAmount { line: index })?;
        let (value, vat) = match draft.pricing {
            Pricing::VatExclusive => (amount, rate.rate.of(amount)),
            Pricing::VatInclusive => rate.rate.split_inclusive(amount),
        };
        let vds = if buyer_withholds {
            rate.vds_share.of(vat)
        } else {
            Money::ZERO
        };
        lines.push(PricedLine {
            line: line.clone(),
            vat_kind,
            vat_rate: rate.rate,
            value,
            vat,
            total: value + vat,
            vds,
        });
    }
    // Amounts in the document's currency; a foreign-currency document converts each line's to
    // the base currency, rounded once per amount, and each withheld amount likewise.
    let own_value: Money = lines.iter().map(|l| l.value).sum();
    let own_vat: Money = lines.iter().map(|l| l.vat).sum();
    let own_vds: Money = lines.iter().map(|l| l.vds).sum();
    let rate = match (&draft.currency, draft.exchange_rate) {
        (Some(currency), Some(rate)) => Some((currency, rate)),
        _ => None,
    };
    let in_base = |amount: Money| rate.map_or(amount, |(_, rate)| rate.convert(amount));
    if rate.is_some() {
        for line in &mut lines {
            line.value = in_base(line.value);
            line.vat = in_base(line.vat);
            line.total = line.value + line.vat;
            line.vds = in_base(line.vds);
        }
    }
    let value: Money = lines.iter().map(|l| l.value).sum();
    let vat: Money = lines.iter().map(|l| l.vat).sum();
    let total = value + vat;
    if total > Money::MAX || lines.iter().any(|l| l.total > Money::MAX) {
        return Err(InvoiceError::LineAmount { line: 0 });
    }
    let mut withholding = Withholding {
        vds: lines.iter().map(|l| l.vds).sum(),
        ..Withholding::default()
    };
    let mut own_withheld = own_vds;
    if let Some(section) = &draft.tds_section {
        if buyer_withholds {
            // The tier is chosen by the value in the base currency, which the law's figures are in.
            let tds_rate = tax
                .tds_rate(section, draft.date, value)
                .map_err(InvoiceError::Tax)?;
            withholding.tds_rate = Some(tds_rate);
            withholding.tds = in_base(tds_rate.of(own_value));
            own_withheld += tds_rate.of(own_value);
        }
    }
    if let Some(retention_rate) = draft.retention {
        withholding.retention_rate = Some(retention_rate);
        withholding.retention = in_base(retention_rate.of(own_value));
        own_withheld += retention_rate.of(own_value);
    }
    let own_total = own_value + own_vat;
    let mut balance = if draft.kind == InvoiceKind::PurchaseBill {
        if own_withheld > own_total {
            return Err(InvoiceError::WithheldAboveTotal {
                withheld: own_withheld,
                total: own_total,
            });
        }
        if withholding.total() > total {
            return Err(InvoiceError::WithheldAboveTotal {
                withheld: withholding.total(),
                total,
            });
        }
        total - withholding.total()
    } else {
        total
    };
    let foreign = rate.map(|(currency, rate)| ForeignAmounts {
        currency: currency.clone(),
        rate,
        value: own_value,
        vat: own_vat,
        total: own_total,
        withheld: if draft.kind == InvoiceKind::PurchaseBill {
            own_withheld
        } else {
            Money::ZERO
        },
    });
    // A credit note takes no more than what is left of the document. Of a foreign-currency
    // document it takes what it carries as a payment would (its share of what is left in the
    // base currency, all of it when the note takes all that is left in the document's currency);
    // the entry posts the rounding between that and the note's own amounts on its first line's
    // account ([`journal_entry`]).
    let original = context
        .original
        .as_ref()
        .filter(|_| draft.original.is_some());
    if draft.kind.decreases() {
        let outstanding = original
            .and_then(|original| original.outstanding())
            .unwrap_or(Money::ZERO);
        let left = original.and_then(|original| original.foreign_outstanding());
        match (&foreign, left) {
            (Some(foreign), Some((_, left))) => {
                if foreign.balance() > left {
                    return Err(InvoiceError::NoteAboveOutstanding {
                        note: foreign.balance(),
                        outstanding: left,
                    });
                }
                balance = carrying_share(outstanding, left, foreign.balance());
            }
            _ if balance > outstanding => {
                return Err(InvoiceError::NoteAboveOutstanding {
                    note: balance,
                    outstanding,
                });
            }
            _ => {}
        }
    }
    let organization_party = TaxParty {
        name: organization
            .name()
            .map(ToString::to_string)
            .unwrap_or_default(),
        bin: organization.bin().cloned(),
        address: None,
    };
    let counterparty = TaxParty {
        name: details.name.to_string(),
        bin: details.bin.clone(),
        address: details.address.clone(),
    };
    let (seller, buyer) = if draft.kind.is_sale() {
        (organization_party, counterparty)
    } else {
        (counterparty, organization_party)
    };
    if draft.kind.is_sale() && seller.bin.is_none() {
        return Err(InvoiceError::NoSellerBin);
    }
    // A note moves the balance of the document it changes, on that document's account.
    let account_id = original
        .and_then(|original| original.balance_account())
        .or(details.account_id)
        .unwrap_or(if draft.kind.is_sale() {
            accounts.receivable
        } else {
            accounts.payable
        });
    let decreasing_adjustment_eligible = (draft.kind == InvoiceKind::SalesCreditNote)
        .then(|| vat <= NOTE_DETAILS_ABOVE || (buyer.bin.is_some() && buyer.address.is_some()));
    let serial = context.next_serial.max(1);
    let number = document_number(draft.kind.series_prefix(), fiscal_year, serial);
    let narration = draft.narration.clone().unwrap_or_else(|| {
        let to = if draft.kind.is_sale() { "to" } else { "from" };
        let what = draft.kind.label();
        format!("{what} {number} {to} {}", details.name)
            .chars()
            .take(super::MAX_TEXT)
            .collect::<String>()
            .trim_end()
            .to_owned()
    });
    Ok(InvoiceEvent::InvoiceSubmitted(Box::new(SubmittedInvoice {
        invoice_id: draft.invoice_id,
        organization_id: draft.organization_id,
        kind: draft.kind,
        party_id: draft.party_id,
        number,
        serial,
        fiscal_year,
        date: draft.date,
        due_date: draft.due_date,
        issued_at,
        seller,
        buyer,
        pricing: draft.pricing,
        reference: draft.reference.clone(),
        narration,
        lines,
        value,
        vat,
        total,
        withholding,
        balance,
        entry_id,
        account_id,
        original: draft.original,
        original_number: original.and_then(|original| original.number().map(str::to_owned)),
        decreasing_adjustment_eligible,
        foreign,
    })))
}

/// The journal entry a submitted document posts, decided by the ledger's own rules (the same
/// decision as a manual posting); `Ok(None)` for events that post nothing.
pub fn journal_entry(
    event: &InvoiceEvent,
    context: &DocumentContext,
) -> Result<Option<JournalEvent>, InvoiceError> {
    let submitted = match event {
        InvoiceEvent::InvoiceSubmitted(submitted) => submitted,
        InvoiceEvent::InvoiceCancelled {
            date,
            reason,
            reversal_entry_id,
            ..
        } => {
            let entry = context.entry.as_ref().ok_or(InvoiceError::NotFound)?;
            let mut events = entry
                .decide(
                    JournalCommand::Reverse {
                        reversal_entry_id: *reversal_entry_id,
                        date: *date,
                        narration: Some(
                            format!("Cancelled: {reason}")
                                .chars()
                                .take(super::MAX_TEXT)
                                .collect(),
                        ),
                    },
                    &context.posting,
                )
                .map_err(InvoiceError::Posting)?;
            return Ok(events.pop());
        }
        _ => return Ok(None),
    };
    let SubmittedInvoice {
        organization_id,
        kind,
        number,
        date,
        reference,
        narration,
        lines,
        vat,
        withholding,
        balance,
        entry_id,
        account_id,
        ..
    } = submitted.as_ref();
    let accounts = context
        .tax
        .accounts()
        .ok_or(InvoiceError::NoDocumentAccounts)?;
    let party: Option<LineParty> = context.party.line_party();
    let side = |account_id: AccountId, amount: Money, debit: bool| EntryLine {
        account_id,
        debit: if debit { amount } else { Money::ZERO },
        credit: if debit { Money::ZERO } else { amount },
        party: None,
        project_id: None,
        site_id: None,
        memo: None,
    };
    // Sales credit revenue and VAT and debit the customer; bills the other way round; a credit
    // note posts its document's sides swapped.
    let sale = kind.is_sale();
    let mut entry_lines = Vec::with_capacity(lines.len() + 5);
    entry_lines.push(EntryLine {
        party,
        ..side(*account_id, *balance, sale)
    });
    for line in lines {
        entry_lines.push(EntryLine {
            project_id: line.line.project_id,
            site_id: line.line.site_id,
            memo: Some(line.line.description.clone()),
            ..side(line.line.account_id, line.value, !sale)
        });
    }
    let vat_account = if sale {
        accounts.output_vat
    } else {
        accounts.input_vat
    };
    entry_lines.push(side(vat_account, *vat, !sale));
    if *kind == InvoiceKind::PurchaseBill {
        entry_lines.push(side(accounts.vds_payable, withholding.vds, false));
        entry_lines.push(side(accounts.tds_payable, withholding.tds, false));
        entry_lines.push(EntryLine {
            party,
            ..side(accounts.retention_payable, withholding.retention, false)
        });
    }
    entry_lines.retain(|line| !(line.debit.is_zero() && line.credit.is_zero()));
    if kind.decreases() {
        entry_lines = entry_lines.iter().map(EntryLine::swapped).collect();
    }
    // A foreign-currency note moves its document's carrying amount, which can differ from its
    // own converted amounts by the rounding of each (a paisa or a few): the difference goes on
    // the note's first line's account, project and site, as a rounding of that line, so it needs
    // nothing the note does not name already.
    if let (Some(_), Some(first)) = (&submitted.foreign, lines.first()) {
        let debits: Money = entry_lines.iter().map(|line| line.debit).sum();
        let credits: Money = entry_lines.iter().map(|line| line.credit).sum();
        if debits != credits {
            let (amount, debit) = if debits > credits {
                (debits - credits, false)
            } else {
                (credits - debits, true)
            };
            entry_lines.push(EntryLine {
                project_id: first.line.project_id,
                site_id: first.line.site_id,
                memo: Some("Rounding to the carrying amount".to_owned()),
                ..side(first.line.account_id, amount, debit)
            });
        }
    }
    let entry = NewEntry {
        entry_id: *entry_id,
        organization_id: *organization_id,
        kind: EntryKind::Regular,
        date: *date,
        narration: narration.clone(),
        reference: reference.clone(),
        document_number: Some(number.clone()),
        lines: entry_lines,
        round_off: false,
    };
    let mut events = JournalEntry::default()
        .decide(JournalCommand::Post(entry), &context.posting)
        .map_err(InvoiceError::Posting)?;
    Ok(events.pop())
}
