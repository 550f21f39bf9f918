//! The [`Payment`] aggregate: a receipt from a customer or a payment to a supplier, one stream per
//! payment (design.md D13).
//!
//! A payment settles submitted documents of its party (allocations), never more than each has
//! outstanding; what the customer withheld (VDS, TDS, retention, the bank's charges) or what the
//! organization withholds from a supplier is a deduction line, so that
//!
//! ```text
//! cash + deductions = allocations + retention released + advance
//! ```
//!
//! and what is not allocated is held as the party's advance. A payment may also release
//! retention held with the party (checked against its [`super::Retention`] stream when the
//! payment is appended). Recording decides on the
//! organization's ledger, hierarchy and tax book, the party, every allocated document and the
//! number series, and appends the payment, its number, its journal entry and each document's
//! settlement in one transaction, every stream read at the version the decision saw (design.md
//! D12): two payments racing for one invoice's last taka cannot both commit.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::entry::{EntryKind, EntryLine, PartyKind};
use super::invoice::{Invoice, InvoiceKind, carrying_share};
use super::journal::{
    JournalCommand, JournalEntry, JournalError, JournalEvent, MAX_LINES, NewEntry, PostingContext,
};
use super::measure::ExchangeRate;
use super::party::Party;
use super::retention::RetentionError;
use super::series::document_number;
use super::tax::{DocumentAccounts, TaxBook, TaxError};
use super::{Money, valid_text};
use crate::ids::{
    AccountId, EntryId, InvoiceId, OrganizationId, PartyId, PaymentId, ProjectId, SiteId,
};
use crate::unique::UniqueValues;
use crate::values::CurrencyCode;

/// Money in from a customer, or out to a supplier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentDirection {
    Receipt,
    Payment,
}

impl PaymentDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Receipt => "receipt",
            Self::Payment => "payment",
        }
    }

    pub fn series_prefix(self) -> &'static str {
        match self {
            Self::Receipt => "RC",
            Self::Payment => "PY",
        }
    }

    pub fn party_kind(self) -> PartyKind {
        match self {
            Self::Receipt => PartyKind::Customer,
            Self::Payment => PartyKind::Supplier,
        }
    }

    /// The kind of document it settles.
    pub fn settles(self) -> InvoiceKind {
        match self {
            Self::Receipt => InvoiceKind::SalesInvoice,
            Self::Payment => InvoiceKind::PurchaseBill,
        }
    }
}

/// What settles an allocation without cash moving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeductionKind {
    /// VAT deducted at source (Mushak-6.6 certificate).
    Vds,
    /// Income tax deducted at source.
    Tds,
    /// Retention money held.
    Retention,
    /// The bank's charges on a receipt.
    BankCharges,
    /// A shortfall of no more than the ledger's round-off allowance, written off to its
    /// round-off account (an expense on a receipt, a gain on a payment).
    RoundOff,
}

impl DeductionKind {
    /// Bank charges and a round-off are costed to the payment's project, as every
    /// profit-and-loss line is.
    pub fn is_profit_and_loss(self) -> bool {
        matches!(self, Self::BankCharges | Self::RoundOff)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vds => "vds",
            Self::Tds => "tds",
            Self::Retention => "retention",
            Self::BankCharges => "bank_charges",
            Self::RoundOff => "round_off",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deduction {
    pub kind: DeductionKind,
    pub amount: Money,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub invoice_id: InvoiceId,
    pub amount: Money,
}

/// A payment or receipt to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPayment {
    pub payment_id: PaymentId,
    pub organization_id: OrganizationId,
    pub direction: PaymentDirection,
    pub party_id: PartyId,
    pub date: NaiveDate,
    /// The bank or cash account the money moved through.
    pub account_id: AccountId,
    /// The money that moved (may be zero when deductions settle everything).
    pub amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub narration: Option<String>,
    pub allocations: Vec<Allocation>,
    pub deductions: Vec<Deduction>,
    /// Retention held with the party that this payment releases: money paid to a supplier out of
    /// what was withheld from it, or received from a customer out of what it held back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_release: Option<Money>,
    /// The VDS certificate (Mushak-6.6) received with a receipt or issued with a payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vds_certificate: Option<String>,
    /// Where the bank's charges and an exchange difference are costed (a profit-and-loss line
    /// names a project).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<ProjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_id: Option<SiteId>,
    /// A foreign currency the amounts are in (they settle documents in that currency), and how
    /// many units of the base currency one unit was worth on the payment's date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<CurrencyCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_rate: Option<ExchangeRate>,
}

/// What one allocation settled of a document, in the base currency at the document's own rate
/// (its carrying amount) and, for a foreign-currency document, in its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    pub invoice_id: InvoiceId,
    pub amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreign_amount: Option<Money>,
}

/// A recorded payment: what it settled and held, its number and the entry it posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedPayment {
    #[serde(flatten)]
    pub payment: NewPayment,
    pub number: String,
    pub serial: u64,
    pub fiscal_year: NaiveDate,
    /// Cash and deductions less allocations: held as the party's advance (in the payment's
    /// currency).
    pub advance: Money,
    pub entry_id: EntryId,
    /// What each allocation settled, in the base currency.
    #[serde(default)]
    pub settlements: Vec<Settlement>,
    /// The money in the base currency at the payment's rate, less what it settled at the
    /// documents' rates and the advance: positive is a gain on a receipt and a loss on a
    /// payment.
    #[serde(default)]
    pub exchange_difference: Money,
}

/// A Mushak-6.6 certificate of VAT deducted at source: issued by the organization for what it
/// withheld from a supplier, received from a customer for what the customer deducted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VdsCertificate {
    pub number: String,
    pub date: NaiveDate,
}

impl VdsCertificate {
    /// Whether a certificate may be recorded now for VAT deducted on `deducted_on`, given the
    /// one `recorded` already, if any: `Ok(false)` when it is that same certificate (nothing to
    /// record), `Err` with the rule it breaks otherwise.
    pub fn check(
        &self,
        deducted_on: NaiveDate,
        recorded: Option<&VdsCertificate>,
    ) -> Result<bool, CertificateError> {
        match recorded {
            Some(recorded) if recorded == self => return Ok(false),
            Some(recorded) => return Err(CertificateError::Recorded(recorded.number.clone())),
            None => {}
        }
        if !valid_text(&self.number) {
            return Err(CertificateError::Number);
        }
        if self.date < deducted_on {
            return Err(CertificateError::BeforeDeduction(deducted_on));
        }
        Ok(true)
    }
}

/// Why a Mushak-6.6 certificate could not be recorded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CertificateError {
    #[error("no VAT was deducted at source on it, so it takes no Mushak-6.6 certificate")]
    NoVdsDeducted,
    #[error("certificate {0} is recorded already; a certificate is recorded once")]
    Recorded(String),
    #[error("must be 1 to 500 characters, without control characters or white space at either end")]
    Number,
    #[error("the certificate is dated before the VAT was deducted ({0})")]
    BeforeDeduction(NaiveDate),
}

#[derive(Debug, Clone, PartialEq)]
pub enum PaymentCommand {
    Record {
        payment: Box<NewPayment>,
        entry_id: EntryId,
    },
    /// Allocates part of what the payment holds as an advance to the party's documents, on
    /// `date`.
    AllocateAdvance {
        allocations: Vec<Allocation>,
        date: NaiveDate,
        entry_id: EntryId,
        /// Where an exchange difference is costed; the payment's project and site when `None`.
        project_id: Option<ProjectId>,
        site_id: Option<SiteId>,
    },
    /// Records the Mushak-6.6 certificate for the VAT the payment deducted (received from a
    /// customer, or issued to a supplier), once.
    RecordVdsCertificate {
        organization_id: OrganizationId,
        certificate: VdsCertificate,
    },
}

/// Part of a payment's advance allocated to documents after it was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvanceAllocation {
    pub payment_id: PaymentId,
    pub organization_id: OrganizationId,
    pub direction: PaymentDirection,
    pub party_id: PartyId,
    /// The payment's number, which the entry carries.
    pub number: String,
    pub date: NaiveDate,
    pub fiscal_year: NaiveDate,
    pub allocations: Vec<Allocation>,
    pub settlements: Vec<Settlement>,
    pub entry_id: EntryId,
    /// A foreign-currency advance: the base currency taken off the advances account (the
    /// allocations at the payment's rate, all that is left there when they take the whole
    /// advance). `None` in the base currency, where it is what the settlements carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advance_moved: Option<Money>,
    /// What was moved less what the settlements carried: positive is a gain on a receipt and a
    /// loss on a payment.
    #[serde(default)]
    pub exchange_difference: Money,
    /// Where an exchange difference is costed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<ProjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_id: Option<SiteId>,
}

impl AdvanceAllocation {
    /// The base currency taken off the advances account.
    pub fn moved(&self) -> Money {
        self.advance_moved
            .unwrap_or_else(|| self.settlements.iter().map(|s| s.amount).sum())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PaymentEvent {
    PaymentRecorded(Box<RecordedPayment>),
    AdvanceAllocated(Box<AdvanceAllocation>),
    /// The Mushak-6.6 certificate for the VAT the payment deducted, recorded after it.
    VdsCertificateRecorded(VdsCertificate),
}

impl DomainEvent for PaymentEvent {
    fn event_type(&self) -> String {
        match self {
            Self::PaymentRecorded(_) => "PaymentRecorded",
            Self::AdvanceAllocated(_) => "AdvanceAllocated",
            Self::VdsCertificateRecorded(_) => "VdsCertificateRecorded",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// Why a payment was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PaymentError {
    #[error("the payment already exists")]
    AlreadyExists,
    #[error("the party was not found in this organization")]
    PartyNotFound,
    #[error("the party is archived")]
    PartyArchived,
    #[error("a {direction} is {preposition} a {expected}")]
    PartyKind {
        direction: &'static str,
        preposition: &'static str,
        expected: &'static str,
    },
    #[error(
        "a payment moves money or deducts something: the amount and the deductions are not all zero"
    )]
    NothingMoved,
    #[error("allocations[{index}]: document {invoice_id} not found")]
    InvoiceNotFound { index: usize, invoice_id: InvoiceId },
    #[error("allocations[{index}]: the document is another party's, or not a {expected}")]
    InvoiceOfAnother {
        index: usize,
        expected: &'static str,
    },
    #[error("allocations[{index}]: the document is a draft; submit it first")]
    InvoiceNotSubmitted { index: usize },
    #[error("allocations[{index}]: the document is allocated twice")]
    InvoiceTwice { index: usize },
    #[error("allocations[{index}]: an allocation is greater than zero")]
    ZeroAllocation { index: usize },
    #[error("allocations[{index}]: {amount} is above the {outstanding} outstanding")]
    AboveOutstanding {
        index: usize,
        amount: Money,
        outstanding: Money,
    },
    #[error("deductions[{index}]: a deduction is greater than zero")]
    ZeroDeduction { index: usize },
    #[error("deductions[{index}]: each kind of deduction appears once")]
    DeductionTwice { index: usize },
    #[error("deductions[{index}]: bank charges are deducted from receipts only")]
    BankChargesOnPayment { index: usize },
    #[error(
        "the allocations and the retention released ({allocated}) are more than the amount and the deductions ({total})"
    )]
    AllocatedAboveTotal { allocated: Money, total: Money },
    #[error("a retention release is greater than zero")]
    ZeroRetentionRelease,
    #[error("a payment allocates to at most {MAX_LINES} documents")]
    TooManyAllocations,
    #[error("must be 1 to 500 characters, without control characters or white space at either end")]
    Text { field: String },
    #[error("{0}")]
    Tax(TaxError),
    #[error("the tax book has no accounts for documents to post to")]
    NoDocumentAccounts,
    #[error("{0}")]
    Posting(JournalError),
    #[error("allocations[{index}]: the document is in {document}, the payment in {payment}")]
    CurrencyMismatch {
        index: usize,
        document: String,
        payment: String,
    },
    #[error("a payment in {0} gives its exchange_rate to the base currency")]
    ExchangeRateRequired(CurrencyCode),
    #[error("a payment in the base currency has no exchange_rate")]
    ExchangeRateInBaseCurrency,
    #[error("retention is deducted and released in the base currency only")]
    ForeignRetention,
    #[error("payment not found")]
    NotFound,
    #[error("the allocations ({allocated}) are more than the {advance} held as an advance")]
    AboveAdvance { allocated: Money, advance: Money },
    #[error("allocate at least one document")]
    NoAllocations,
    /// Releasing more retention than is held with the party.
    #[error("retention_release: {0}")]
    Retention(RetentionError),
    #[error("{0}")]
    Certificate(CertificateError),
    #[error(
        "a round-off writes off a shortfall: with it the payment settles its allocations exactly, but {advance} would be held as an advance"
    )]
    RoundOffWithAdvance { advance: Money },
}

/// What recording a payment decides on.
#[derive(Debug, Clone, Default)]
pub struct PaymentContext {
    pub posting: PostingContext,
    pub tax: Arc<TaxBook>,
    pub party: Arc<Party>,
    /// Every allocated document as the decision saw it.
    pub invoices: BTreeMap<InvoiceId, Arc<Invoice>>,
    pub next_serial: u64,
}

/// A payment or receipt (see the module docs).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Payment {
    recorded: Option<RecordedPayment>,
    /// What was allocated of the advance after the payment was recorded.
    allocated_later: Money,
    /// What that took off the advances account in the base currency.
    #[serde(default)]
    moved_later: Money,
    /// The Mushak-6.6 certificate for the VAT it deducted, once recorded.
    #[serde(default)]
    certificate: Option<VdsCertificate>,
}

impl Aggregate for Payment {
    const TYPE: &'static str = "payment";
    type Command = PaymentCommand;
    type Event = PaymentEvent;
    type Error = PaymentError;
    type Services = PaymentContext;

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
            PaymentEvent::PaymentRecorded(recorded) => {
                self.certificate =
                    recorded
                        .payment
                        .vds_certificate
                        .as_ref()
                        .map(|number| VdsCertificate {
                            number: number.clone(),
                            date: recorded.payment.date,
                        });
                self.recorded = Some(*recorded);
            }
            PaymentEvent::AdvanceAllocated(allocated) => {
                self.allocated_later += allocated.allocations.iter().map(|a| a.amount).sum();
                self.moved_later += allocated.moved();
            }
            PaymentEvent::VdsCertificateRecorded(certificate) => {
                self.certificate = Some(certificate);
            }
        }
    }
}

impl UniqueValues for Payment {}

fn text(field: &str, value: &Option<String>) -> Result<(), PaymentError> {
    match value {
        Some(value) if !valid_text(value) => Err(PaymentError::Text {
            field: field.to_owned(),
        }),
        _ => Ok(()),
    }
}

impl Payment {
    pub fn recorded(&self) -> Option<&RecordedPayment> {
        self.recorded.as_ref()
    }

    pub fn decide(
        &self,
        command: PaymentCommand,
        context: &PaymentContext,
    ) -> Result<Vec<PaymentEvent>, PaymentError> {
        let event = match command {
            PaymentCommand::Record { payment, entry_id } => {
                if self.recorded.is_some() {
                    return Err(PaymentError::AlreadyExists);
                }
                PaymentEvent::PaymentRecorded(Box::new(record(*payment, entry_id, context)?))
            }
            PaymentCommand::AllocateAdvance {
                allocations,
                date,
                entry_id,
                project_id,
                site_id,
            } => {
                let recorded = self.recorded.as_ref().ok_or(PaymentError::NotFound)?;
                let costed_to = match project_id {
                    Some(project_id) => (Some(project_id), site_id),
                    None => (recorded.payment.project_id, recorded.payment.site_id),
                };
                PaymentEvent::AdvanceAllocated(Box::new(self.allocate_advance(
                    recorded,
                    allocations,
                    (date, entry_id),
                    costed_to,
                    context,
                )?))
            }
            PaymentCommand::RecordVdsCertificate {
                organization_id,
                certificate,
            } => {
                let payment = self
                    .recorded
                    .as_ref()
                    .map(|recorded| &recorded.payment)
                    .filter(|payment| payment.organization_id == organization_id)
                    .ok_or(PaymentError::NotFound)?;
                let deducted = payment
                    .deductions
                    .iter()
                    .any(|d| d.kind == DeductionKind::Vds);
                if !deducted {
                    return Err(PaymentError::Certificate(CertificateError::NoVdsDeducted));
                }
                let new = certificate
                    .check(payment.date, self.certificate.as_ref())
                    .map_err(PaymentError::Certificate)?;
                return Ok(if new {
                    vec![PaymentEvent::VdsCertificateRecorded(certificate)]
                } else {
                    Vec::new()
                });
            }
        };
        payment_entry(&event, context)?;
        Ok(vec![event])
    }

    /// The Mushak-6.6 certificate for the VAT the payment deducted, once recorded.
    pub fn certificate(&self) -> Option<&VdsCertificate> {
        self.certificate.as_ref()
    }

    /// What is held as an advance now.
    pub fn advance_left(&self) -> Option<Money> {
        self.recorded
            .as_ref()
            .map(|recorded| recorded.advance - self.allocated_later)
    }

    fn allocate_advance(
        &self,
        recorded: &RecordedPayment,
        allocations: Vec<Allocation>,
        (date, entry_id): (NaiveDate, EntryId),
        (project_id, site_id): (Option<ProjectId>, Option<SiteId>),
        context: &PaymentContext,
    ) -> Result<AdvanceAllocation, PaymentError> {
        let payment = &recorded.payment;
        if context.posting.organization.id() != Some(payment.organization_id) {
            return Err(PaymentError::NotFound);
        }
        let base = context
            .posting
            .organization
            .base_currency()
            .cloned()
            .unwrap_or_default();
        let foreign = match (&payment.currency, payment.exchange_rate) {
            (Some(currency), Some(rate)) if *currency != base => Some((currency, rate)),
            _ => None,
        };
        if allocations.is_empty() {
            return Err(PaymentError::NoAllocations);
        }
        if allocations.len() > MAX_LINES {
            return Err(PaymentError::TooManyAllocations);
        }
        let payment_currency = foreign.map_or(&base, |(currency, _)| currency);
        let settlements = settle(
            &allocations,
            (payment.organization_id, payment.party_id, payment.direction),
            (&base, payment_currency),
            context,
        )?;
        let allocated: Money = allocations.iter().map(|a| a.amount).sum();
        let advance = recorded.advance - self.allocated_later;
        if allocated > advance {
            return Err(PaymentError::AboveAdvance { allocated, advance });
        }
        // A foreign-currency advance sits on the advances account at the payment's rate; the
        // documents it settles carry their own rate's amounts, and the rest is an exchange
        // difference.
        let carried: Money = settlements.iter().map(|s| s.amount).sum();
        let advance_moved = foreign.map(|(_, rate)| {
            if allocated == advance {
                rate.convert(recorded.advance) - self.moved_later
            } else {
                rate.convert(allocated)
            }
        });
        let exchange_difference = advance_moved.map_or(Money::ZERO, |moved| moved - carried);
        let fiscal_year = context
            .posting
            .ledger
            .check_posting_date(date)
            .map_err(|error| PaymentError::Posting(JournalError::Date(error)))?;
        Ok(AdvanceAllocation {
            payment_id: payment.payment_id,
            organization_id: payment.organization_id,
            direction: payment.direction,
            party_id: payment.party_id,
            number: recorded.number.clone(),
            date,
            fiscal_year,
            allocations,
            settlements,
            entry_id,
            advance_moved,
            exchange_difference,
            project_id: project_id.filter(|_| !exchange_difference.is_zero()),
            site_id: site_id.filter(|_| !exchange_difference.is_zero()),
        })
    }
}

fn record(
    payment: NewPayment,
    entry_id: EntryId,
    context: &PaymentContext,
) -> Result<RecordedPayment, PaymentError> {
    let party = &context.party;
    if party.id() != Some(payment.party_id)
        || party.organization_id() != Some(payment.organization_id)
    {
        return Err(PaymentError::PartyNotFound);
    }
    if party.is_archived() {
        return Err(PaymentError::PartyArchived);
    }
    let direction = payment.direction;
    if party.kind() != Some(direction.party_kind()) {
        return Err(PaymentError::PartyKind {
            direction: direction.as_str(),
            preposition: match direction {
                PaymentDirection::Receipt => "from",
                PaymentDirection::Payment => "to",
            },
            expected: direction.party_kind().as_str(),
        });
    }
    let base = context
        .posting
        .organization
        .base_currency()
        .cloned()
        .unwrap_or_default();
    let foreign = match (&payment.currency, payment.exchange_rate) {
        (Some(currency), None) if *currency != base => {
            return Err(PaymentError::ExchangeRateRequired(currency.clone()));
        }
        (Some(currency), Some(rate)) if *currency != base => Some((currency.clone(), rate)),
        (_, Some(_)) => return Err(PaymentError::ExchangeRateInBaseCurrency),
        _ => None,
    };
    let retention = payment
        .deductions
        .iter()
        .any(|d| d.kind == DeductionKind::Retention)
        || payment.retention_release.is_some();
    if foreign.is_some() && retention {
        return Err(PaymentError::ForeignRetention);
    }
    let in_base = |amount: Money| match &foreign {
        Some((_, rate)) => rate.convert(amount),
        None => amount,
    };
    text("reference", &payment.reference)?;
    text("narration", &payment.narration)?;
    text("vds_certificate", &payment.vds_certificate)?;
    if payment.allocations.len() > MAX_LINES {
        return Err(PaymentError::TooManyAllocations);
    }
    let payment_currency = foreign.as_ref().map_or(&base, |(currency, _)| currency);
    let settlements = settle(
        &payment.allocations,
        (payment.organization_id, payment.party_id, direction),
        (&base, payment_currency),
        context,
    )?;
    let mut kinds = BTreeSet::new();
    for (index, deduction) in payment.deductions.iter().enumerate() {
        if !deduction.amount.is_positive() {
            return Err(PaymentError::ZeroDeduction { index });
        }
        if !kinds.insert(deduction.kind) {
            return Err(PaymentError::DeductionTwice { index });
        }
        if deduction.kind == DeductionKind::BankCharges && direction == PaymentDirection::Payment {
            return Err(PaymentError::BankChargesOnPayment { index });
        }
        if deduction.kind == DeductionKind::RoundOff {
            let settings = context.posting.ledger.settings();
            if settings.round_off_account_id.is_none() {
                return Err(PaymentError::Posting(JournalError::NoRoundOffAccount));
            }
            let difference = in_base(deduction.amount);
            if difference > settings.round_off_allowance {
                return Err(PaymentError::Posting(
                    JournalError::AboveRoundOffAllowance {
                        difference,
                        allowance: settings.round_off_allowance,
                    },
                ));
            }
        }
    }
    let deducted: Money = payment.deductions.iter().map(|d| d.amount).sum();
    let total = payment.amount + deducted;
    if total.is_zero() {
        return Err(PaymentError::NothingMoved);
    }
    let released = match payment.retention_release {
        Some(amount) if !amount.is_positive() => return Err(PaymentError::ZeroRetentionRelease),
        Some(amount) => amount,
        None => Money::ZERO,
    };
    let allocated: Money = payment.allocations.iter().map(|a| a.amount).sum::<Money>() + released;
    if allocated > total {
        return Err(PaymentError::AllocatedAboveTotal { allocated, total });
    }
    if payment
        .deductions
        .iter()
        .any(|d| d.kind == DeductionKind::Vds)
    {
        context
            .tax
            .check_vat_period(payment.date)
            .map_err(PaymentError::Tax)?;
    }
    let fiscal_year = context
        .posting
        .ledger
        .check_posting_date(payment.date)
        .map_err(|error| PaymentError::Posting(JournalError::Date(error)))?;
    let serial = context.next_serial.max(1);
    let advance = total - allocated;
    let rounds_off = payment
        .deductions
        .iter()
        .any(|d| d.kind == DeductionKind::RoundOff);
    if rounds_off && !advance.is_zero() {
        return Err(PaymentError::RoundOffWithAdvance { advance });
    }
    let carried: Money = settlements.iter().map(|s| s.amount).sum();
    // The money and each deduction at the payment's rate (as the entry posts them), less what
    // the documents carried and the advance; retention is released in the base currency only,
    // so it carries no difference.
    let brought: Money = in_base(payment.amount)
        + payment
            .deductions
            .iter()
            .map(|d| in_base(d.amount))
            .sum::<Money>();
    let exchange_difference = brought - carried - released - in_base(advance);
    Ok(RecordedPayment {
        number: document_number(direction.series_prefix(), fiscal_year, serial),
        serial,
        fiscal_year,
        advance,
        entry_id,
        settlements,
        exchange_difference,
        payment,
    })
}

/// What `allocations` settle of the party's documents, each checked: a submitted document of the
/// party, of the kind the direction settles, in the payment's currency, at most what is left.
fn settle(
    allocations: &[Allocation],
    (organization_id, party_id, direction): (OrganizationId, PartyId, PaymentDirection),
    (base, payment_currency): (&CurrencyCode, &CurrencyCode),
    context: &PaymentContext,
) -> Result<Vec<Settlement>, PaymentError> {
    let mut seen = BTreeSet::new();
    let mut settlements = Vec::with_capacity(allocations.len());
    for (index, allocation) in allocations.iter().enumerate() {
        if !allocation.amount.is_positive() {
            return Err(PaymentError::ZeroAllocation { index });
        }
        if !seen.insert(allocation.invoice_id) {
            return Err(PaymentError::InvoiceTwice { index });
        }
        let invoice = context
            .invoices
            .get(&allocation.invoice_id)
            .filter(|invoice| {
                invoice
                    .draft()
                    .is_some_and(|draft| draft.organization_id == organization_id)
            })
            .ok_or(PaymentError::InvoiceNotFound {
                index,
                invoice_id: allocation.invoice_id,
            })?;
        let ours = invoice
            .draft()
            .is_some_and(|d| d.party_id == party_id && d.kind == direction.settles());
        if !ours {
            return Err(PaymentError::InvoiceOfAnother {
                index,
                expected: direction.settles().label(),
            });
        }
        let outstanding = invoice
            .outstanding()
            .ok_or(PaymentError::InvoiceNotSubmitted { index })?;
        let document_currency = invoice
            .foreign_outstanding()
            .map_or(base, |(currency, _)| currency);
        if document_currency != payment_currency {
            return Err(PaymentError::CurrencyMismatch {
                index,
                document: document_currency.to_string(),
                payment: payment_currency.to_string(),
            });
        }
        let settlement = match invoice.foreign_outstanding() {
            // The carrying amount settled: the same share of what the document still carries in
            // the base currency, all of it when the allocation takes what is left.
            Some((_, left)) => {
                if allocation.amount > left {
                    return Err(PaymentError::AboveOutstanding {
                        index,
                        amount: allocation.amount,
                        outstanding: left,
                    });
                }
                Settlement {
                    invoice_id: allocation.invoice_id,
                    amount: carrying_share(outstanding, left, allocation.amount),
                    foreign_amount: Some(allocation.amount),
                }
            }
            None => {
                if allocation.amount > outstanding {
                    return Err(PaymentError::AboveOutstanding {
                        index,
                        amount: allocation.amount,
                        outstanding,
                    });
                }
                Settlement {
                    invoice_id: allocation.invoice_id,
                    amount: allocation.amount,
                    foreign_amount: None,
                }
            }
        };
        settlements.push(settlement);
    }
    Ok(settlements)
}

/// The journal entry a recorded payment or an allocation of its advance posts, decided by the
/// ledger's own rules; `Ok(None)` for events that post nothing.
pub fn payment_entry(
    event: &PaymentEvent,
    context: &PaymentContext,
) -> Result<Option<JournalEvent>, PaymentError> {
    let accounts: &DocumentAccounts = context
        .tax
        .accounts()
        .ok_or(PaymentError::NoDocumentAccounts)?;
    let recorded = match event {
        PaymentEvent::PaymentRecorded(recorded) => recorded,
        PaymentEvent::AdvanceAllocated(allocated) => {
            return advance_entry(allocated, accounts, context).map(Some);
        }
        PaymentEvent::VdsCertificateRecorded(_) => return Ok(None),
    };
    let payment = &recorded.payment;
    let party = context.party.line_party();
    let receipt = payment.direction == PaymentDirection::Receipt;
    // A receipt debits the bank and what was deducted, and credits the customer; a payment the
    // other way round.
    let side = |account_id: AccountId, amount: Money, debit: bool| EntryLine {
        account_id,
        debit: if debit { amount } else { Money::ZERO },
        credit: if debit { Money::ZERO } else { amount },
        party: None,
        project_id: None,
        site_id: None,
        memo: None,
    };
    let in_base = |amount: Money| match payment.exchange_rate {
        Some(rate) => rate.convert(amount),
        None => amount,
    };
    let mut lines = vec![side(payment.account_id, in_base(payment.amount), receipt)];
    let round_off = context.posting.ledger.settings().round_off_account_id;
    for deduction in &payment.deductions {
        let (account_id, with_party) = match (deduction.kind, receipt) {
            (DeductionKind::Vds, true) => (accounts.vds_receivable, false),
            (DeductionKind::Vds, false) => (accounts.vds_payable, false),
            (DeductionKind::Tds, true) => (accounts.tds_receivable, false),
            (DeductionKind::Tds, false) => (accounts.tds_payable, false),
            (DeductionKind::Retention, true) => (accounts.retention_receivable, true),
            (DeductionKind::Retention, false) => (accounts.retention_payable, true),
            (DeductionKind::BankCharges, _) => (accounts.bank_charges, false),
            (DeductionKind::RoundOff, _) => (
                round_off.ok_or(PaymentError::Posting(JournalError::NoRoundOffAccount))?,
                false,
            ),
        };
        let mut line = side(account_id, in_base(deduction.amount), receipt);
        if with_party {
            line.party = party;
        }
        if deduction.kind.is_profit_and_loss() {
            line.project_id = payment.project_id;
            line.site_id = payment.site_id;
        }
        lines.push(line);
    }
    for allocation in &recorded.settlements {
        let account_id = context
            .invoices
            .get(&allocation.invoice_id)
            .and_then(|invoice| invoice.balance_account())
            .unwrap_or(if receipt {
                accounts.receivable
            } else {
                accounts.payable
            });
        lines.push(EntryLine {
            party,
            memo: context
                .invoices
                .get(&allocation.invoice_id)
                .and_then(|invoice| invoice.number().map(str::to_owned)),
            ..side(account_id, allocation.amount, !receipt)
        });
    }
    let advances = if receipt {
        accounts.customer_advances
    } else {
        accounts.supplier_advances
    };
    // Released retention settles the party's retention account, as an allocation settles its
    // balance.
    if let Some(released) = payment.retention_release {
        let account_id = if receipt {
            accounts.retention_receivable
        } else {
            accounts.retention_payable
        };
        lines.push(EntryLine {
            party,
            memo: Some("Retention released".to_owned()),
            ..side(account_id, released, !receipt)
        });
    }
    lines.push(EntryLine {
        party,
        ..side(advances, in_base(recorded.advance), !receipt)
    });
    lines.extend(exchange_line(
        recorded.exchange_difference,
        receipt,
        accounts,
        (payment.project_id, payment.site_id),
    ));
    lines.retain(|line| !(line.debit.is_zero() && line.credit.is_zero()));
    let narration = payment.narration.clone().unwrap_or_else(|| {
        let what = if receipt { "Receipt" } else { "Payment" };
        let name = context
            .party
            .details()
            .map(|d| d.name.to_string())
            .unwrap_or_default();
        let to = if receipt { "from" } else { "to" };
        format!("{what} {} {to} {name}", recorded.number)
            .chars()
            .take(super::MAX_TEXT)
            .collect::<String>()
            .trim_end()
            .to_owned()
    });
    let entry = NewEntry {
        entry_id: recorded.entry_id,
        organization_id: payment.organization_id,
        kind: EntryKind::Regular,
        date: payment.date,
        narration,
        reference: payment.reference.clone(),
        document_number: Some(recorded.number.clone()),
        lines,
        round_off: false,
    };
    let mut events = JournalEntry::default()
        .decide(JournalCommand::Post(entry), &context.posting)
        .map_err(PaymentError::Posting)?;
    events
        .pop()
        .ok_or(PaymentError::Posting(JournalError::TooFewLines))
        .map(Some)
}

/// The entry that moves an advance to the documents it settles: Dr customer advances / Cr
/// receivable for a receipt, Dr payable / Cr supplier advances for a payment.
fn advance_entry(
    allocated: &AdvanceAllocation,
    accounts: &DocumentAccounts,
    context: &PaymentContext,
) -> Result<JournalEvent, PaymentError> {
    let party = context.party.line_party();
    let receipt = allocated.direction == PaymentDirection::Receipt;
    let line =
        |account_id: AccountId, amount: Money, debit: bool, memo: Option<String>| EntryLine {
            account_id,
            debit: if debit { amount } else { Money::ZERO },
            credit: if debit { Money::ZERO } else { amount },
            party,
            project_id: None,
            site_id: None,
            memo,
        };
    let advances = if receipt {
        accounts.customer_advances
    } else {
        accounts.supplier_advances
    };
    let mut lines = vec![line(advances, allocated.moved(), receipt, None)];
    for settlement in &allocated.settlements {
        let invoice = context.invoices.get(&settlement.invoice_id);
        let account_id = invoice
            .and_then(|invoice| invoice.balance_account())
            .unwrap_or(if receipt {
                accounts.receivable
            } else {
                accounts.payable
            });
        let memo = invoice.and_then(|invoice| invoice.number().map(str::to_owned));
        lines.push(line(account_id, settlement.amount, !receipt, memo));
    }
    lines.extend(exchange_line(
        allocated.exchange_difference,
        receipt,
        accounts,
        (allocated.project_id, allocated.site_id),
    ));
    let entry = NewEntry {
        entry_id: allocated.entry_id,
        organization_id: allocated.organization_id,
        kind: EntryKind::Regular,
        date: allocated.date,
        narration: format!("Advance of {} allocated", allocated.number),
        reference: None,
        document_number: Some(allocated.number.clone()),
        lines,
        round_off: false,
    };
    let mut events = JournalEntry::default()
        .decide(JournalCommand::Post(entry), &context.posting)
        .map_err(PaymentError::Posting)?;
    events
        .pop()
        .ok_or(PaymentError::Posting(JournalError::TooFewLines))
}

/// The line that posts an exchange `difference` (more base currency than the documents carried:
/// a gain on money in, a loss on money out), costed to a project as every profit-and-loss line
/// is; `None` when there is none.
fn exchange_line(
    difference: Money,
    receipt: bool,
    accounts: &DocumentAccounts,
    (project_id, site_id): (Option<ProjectId>, Option<SiteId>),
) -> Option<EntryLine> {
    if difference.is_zero() {
        return None;
    }
    let amount = if difference.is_positive() {
        difference
    } else {
        -difference
    };
    let (account_id, debit) = if difference.is_positive() == receipt {
        (accounts.exchange_gain, false)
    } else {
        (accounts.exchange_loss, true)
    };
    Some(EntryLine {
        account_id,
        debit: if debit { amount } else { Money::ZERO },
        credit: if debit { Money::ZERO } else { amount },
        party: None,
        project_id,
        site_id,
        memo: Some("Exchange difference".to_owned()),
    })
}
