//! Invoicing over HTTP (domain-finance.md, "Invoices, bills and payments"): parties, the tax book
//! (dated VAT codes, VDS shares, TDS tiers, the accounts documents post to, the VAT months),
//! sales invoices and purchase bills with their printed tax invoice (Mushak-6.3), and the VAT
//! registers (Mushak-6.1, 6.2) and monthly return summary (Mushak-9.1) read from the `invoicing`
//! projection, and payments and receipts that settle documents. Commands in [`commands`], queries in [`queries`], what they take and return in
//! [`views`], the printed tax invoice in [`pdf`]; how the refusals read as problems is their
//! [`DomainProblem`] here.

pub mod commands;
pub mod pdf;
pub mod queries;
pub mod views;

use axum::Router;
use vextrus_domain::finance::{
    BudgetError, CertificateError, InvoiceError, PartyError, PaymentError, RetentionError, TaxError,
};

use crate::command::DocumentedRoutes;
use crate::error::{ApiError, DomainProblem};
use crate::finance::{field, rule};
use crate::openapi::problem_responses;
use crate::state::AppState;

/// Every invoicing route, each at the path and method of its `#[utoipa::path]`.
pub fn router() -> Router<AppState> {
    use commands::*;
    use queries::*;
    Router::new()
        .documented(__path_register_party, register_party)
        .documented(__path_list_parties, list_parties)
        .documented(__path_get_party, get_party)
        .documented(__path_update_party, update_party)
        .documented(__path_archive_party, archive_party)
        .documented(__path_get_tax_book, get_tax_book)
        .documented(__path_adopt_standard_tax_rules, adopt_standard_tax_rules)
        .documented(__path_set_vat_rate, set_vat_rate)
        .documented(__path_set_tds_tiers, set_tds_tiers)
        .documented(__path_set_document_accounts, set_document_accounts)
        .documented(__path_set_withholding_entity, set_withholding_entity)
        .documented(__path_draft_sales_invoice, draft_sales_invoice)
        .documented(__path_draft_purchase_bill, draft_purchase_bill)
        .documented(__path_submit_document, submit_document)
        .documented(__path_list_documents, list_documents)
        .documented(__path_get_document, get_document)
        .documented(__path_tax_invoice_pdf, tax_invoice_pdf)
        .documented(__path_sales_book, sales_book)
        .documented(__path_purchase_book, purchase_book)
        .documented(__path_get_vat_return, get_vat_return)
        .documented(__path_submit_vat_return, submit_vat_return)
        .documented(__path_open_vat_amendment, open_vat_amendment)
        .documented(__path_record_receipt, record_receipt)
        .documented(__path_record_supplier_payment, record_supplier_payment)
        .documented(__path_list_payments, list_payments)
        .documented(__path_get_payment, get_payment)
        .documented(__path_set_budget, set_budget)
        .documented(__path_revise_budget, revise_budget)
        .documented(__path_budget_report, budget_report)
        .documented(__path_draft_credit_note, draft_credit_note)
        .documented(__path_draft_debit_note, draft_debit_note)
        .documented(__path_cancel_document, cancel_document)
        .documented(__path_aging, aging)
        .documented(__path_party_ledger, party_ledger)
        .documented(__path_withholding_register, withholding_register)
        .documented(__path_retention_register, retention_register)
        .documented(__path_allocate_advance, allocate_advance)
        .documented(
            __path_record_bill_vds_certificate,
            record_bill_vds_certificate,
        )
        .documented(
            __path_record_payment_vds_certificate,
            record_payment_vds_certificate,
        )
        .documented(__path_vds_certificates, vds_certificates)
}

/// A Mushak-6.6 certificate's refusals, for a bill or a payment.
fn certificate_problem(error: CertificateError) -> ApiError {
    let detail = error.to_string();
    match error {
        CertificateError::NoVdsDeducted => rule("no-vds-deducted", detail),
        CertificateError::Recorded(_) => rule("certificate-recorded", detail),
        CertificateError::Number => field("number", detail),
        CertificateError::BeforeDeduction(_) => field("date", detail),
    }
}

impl DomainProblem for PartyError {
    const STREAM: &'static str = "party";

    fn into_problem(self) -> ApiError {
        let detail = self.to_string();
        match self {
            PartyError::NotFound => ApiError::NotFound(detail),
            PartyError::AlreadyRegistered => ApiError::AlreadyExists(detail),
            PartyError::Archived => rule("party-archived", detail),
            PartyError::Address => field("address", detail),
            PartyError::TermsTooLong => field("terms_days", detail),
        }
    }
}

/// The tax book's refusals: 422 for a field no state could make acceptable, 409 with the rule's
/// `type` for what the book's state forbids.
impl DomainProblem for TaxError {
    const STREAM: &'static str = "tax book";

    fn into_problem(self) -> ApiError {
        use TaxError as E;
        let detail = self.to_string();
        match self {
            E::NotAdopted => rule("tax-book-not-set-up", detail),
            E::AlreadyAdopted => ApiError::AlreadyExists(detail),
            E::UnknownVatCode(_) => rule("unknown-vat-code", detail),
            E::NoVatRateOn { .. } => rule("no-vat-rate", detail),
            E::RateOfKind { .. } => rule("vat-rate-of-kind", detail),
            E::UnknownTdsSection(_) => rule("unknown-tds-section", detail),
            E::NoTdsTiersOn { .. } => rule("no-tds-tiers", detail),
            E::TiersOutOfOrder => rule("tds-tiers-order", detail),
            E::NotAMonth(_) => field("month", detail),
            E::PeriodLocked { .. } => rule("vat-period-locked", detail),
            E::NotSubmitted(_) => rule("vat-return-not-submitted", detail),
            E::Text { field: name } => field(name, detail),
        }
    }
}

/// A document's refusals; those of the ledger's rules read as for a journal entry, with the
/// entry's line numbers (the receivable or payable line first, then the document's lines, then
/// VAT and what is withheld).
impl DomainProblem for InvoiceError {
    const STREAM: &'static str = "document";

    fn into_problem(self) -> ApiError {
        use InvoiceError as E;
        let detail = self.to_string();
        match self {
            E::NotFound => ApiError::NotFound(detail),
            E::PartyNotFound => ApiError::NotFound(format!("party_id: {detail}")),
            E::AlreadyExists => ApiError::AlreadyExists(detail),
            E::AlreadySubmitted => rule("already-submitted", detail),
            E::PartyArchived => rule("party-archived", format!("party_id: {detail}")),
            E::PartyKind { .. } => rule("party-kind", format!("party_id: {detail}")),
            E::LineCount => rule("line-count", detail),
            E::Text { field: name } => field(name, detail),
            E::DueBeforeDate => rule("due-before-date", format!("due_date: {detail}")),
            E::WithholdingOnSale => rule("withholding-on-sale", detail),
            E::LineAmount { .. } => rule("line-amount", detail),
            E::VatCode { source, .. } => match source {
                TaxError::UnknownVatCode(_) => rule("unknown-vat-code", detail),
                TaxError::NoVatRateOn { .. } => rule("no-vat-rate", detail),
                other => other.into_problem(),
            },
            E::Tax(error) => error.into_problem(),
            E::NoDocumentAccounts => rule("no-document-accounts", detail),
            E::WithheldAboveTotal { .. } => rule("withheld-above-total", detail),
            E::NoSellerBin => rule("no-seller-bin", detail),
            E::Posting(error) => error.into_problem(),
            E::NoteWithoutOriginal(_) | E::OriginalNotFound => ApiError::NotFound(detail),
            E::OriginalOfAnother { .. } => rule("document-of-another-party", detail),
            E::NoteAboveOutstanding { .. } => rule("above-outstanding", detail),
            E::WithholdingOnNote => rule("withholding-on-note", detail),
            E::NotSubmitted => rule("not-submitted", detail),
            E::Cancelled => rule("cancelled", detail),
            E::SettledCannotCancel { .. }
            | E::AdjustedCannotCancel
            | E::NoteCannotCancel
            | E::CertificateCannotCancel(_) => rule("changes-by-notes-only", detail),
            E::ExchangeRateRequired(_) | E::ExchangeRateInBaseCurrency => {
                rule("exchange-rate", format!("exchange_rate: {detail}"))
            }
            E::NoteCurrency { .. } => rule("currency-mismatch", detail),
            E::Certificate(error) => certificate_problem(error),
            E::Retention(error) => error.into_problem(),
        }
    }
}

/// A payment's refusals: its allocations and deductions by index; those of the ledger's rules as
/// for a journal entry.
impl DomainProblem for PaymentError {
    const STREAM: &'static str = "payment";

    fn into_problem(self) -> ApiError {
        use PaymentError as E;
        let detail = self.to_string();
        match self {
            E::AlreadyExists => ApiError::AlreadyExists(detail),
            E::PartyNotFound => ApiError::NotFound(format!("party_id: {detail}")),
            E::PartyArchived => rule("party-archived", format!("party_id: {detail}")),
            E::PartyKind { .. } => rule("party-kind", format!("party_id: {detail}")),
            E::NothingMoved => rule("nothing-moved", detail),
            E::InvoiceNotFound { .. } => ApiError::NotFound(detail),
            E::InvoiceOfAnother { .. } => rule("document-of-another-party", detail),
            E::InvoiceNotSubmitted { .. } => rule("not-submitted", detail),
            E::InvoiceTwice { .. } => rule("allocated-twice", detail),
            E::ZeroAllocation { .. } => rule("zero-amount", detail),
            E::AboveOutstanding { .. } => rule("above-outstanding", detail),
            E::ZeroDeduction { .. } => rule("zero-amount", detail),
            E::DeductionTwice { .. } => rule("deducted-twice", detail),
            E::BankChargesOnPayment { index } => field(format!("deductions[{index}].kind"), detail),
            E::AllocatedAboveTotal { .. } => rule("allocated-above-total", detail),
            E::TooManyAllocations => rule("line-count", detail),
            E::Text { field: name } => field(name, detail),
            E::Tax(error) => error.into_problem(),
            E::NoDocumentAccounts => rule("no-document-accounts", detail),
            E::Posting(error) => error.into_problem(),
            E::CurrencyMismatch { .. } => rule("currency-mismatch", detail),
            E::ExchangeRateRequired(_) | E::ExchangeRateInBaseCurrency => {
                rule("exchange-rate", format!("exchange_rate: {detail}"))
            }
            E::ForeignRetention => rule("foreign-currency", detail),
            E::RoundOffWithAdvance { .. } => rule("round-off-with-advance", detail),
            E::Certificate(error) => certificate_problem(error),
            E::NotFound => ApiError::NotFound(detail),
            E::AboveAdvance { .. } => rule("above-advance", detail),
            E::NoAllocations => rule("line-count", detail),
            E::ZeroRetentionRelease => rule("zero-amount", detail),
            E::Retention(error) => error.into_problem(),
        }
    }
}

/// Retention released above what is held with the party, or a bill's retention reversed after
/// it was released.
impl DomainProblem for RetentionError {
    const STREAM: &'static str = "retention";

    fn into_problem(self) -> ApiError {
        use RetentionError as E;
        let detail = self.to_string();
        match self {
            E::NotPositive => rule("zero-amount", detail),
            E::AboveHeld { .. } => rule("above-retention-held", detail),
            E::AlreadyReleased { .. } => rule("retention-released", detail),
        }
    }
}

impl DomainProblem for BudgetError {
    const STREAM: &'static str = "budgets";

    fn into_problem(self) -> ApiError {
        use BudgetError as E;
        let detail = self.to_string();
        match self {
            E::NotFound => ApiError::NotFound(detail),
            E::AlreadyExists => ApiError::AlreadyExists(detail),
            E::NotPositive => rule("zero-amount", format!("amount: {detail}")),
            E::AccountNotFound(_) => ApiError::NotFound(format!("account_id: {detail}")),
            E::NotAnExpenseAccount => {
                rule("not-an-expense-account", format!("account_id: {detail}"))
            }
            E::ProjectNotFound => ApiError::NotFound(format!("project_id: {detail}")),
            E::ProjectArchived => rule("unit-archived", format!("project_id: {detail}")),
            E::SiteNotFound => ApiError::NotFound(format!("site_id: {detail}")),
            E::NoSuchYear(_) => rule("no-fiscal-year", format!("fiscal_year: {detail}")),
            E::Overlaps(_) => rule("budget-overlaps", detail),
        }
    }
}

/// The error responses of an invoicing command.
pub struct InvoicingErrors;

impl utoipa::IntoResponses for InvoicingErrors {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        problem_responses(&[
            (400, "Malformed JSON, header or parameter"),
            (401, "Missing, expired or invalid bearer token"),
            (
                403,
                "The token's role does not allow this (accountant, finance-manager or admin; the \
                 tax book and VAT returns: finance-manager or admin)",
            ),
            (
                404,
                "The organization, party, document or account does not exist in this tenant",
            ),
            (
                409,
                "Version conflict (If-Match), or a rule forbids it: a locked VAT month, a closed \
                 period, an unknown VAT code, a party of the wrong kind … (see `type`)",
            ),
            (413, "Request body too large"),
            (415, "The body is not sent as application/json"),
            (
                422,
                "A field does not match the document (see `invalid-params`)",
            ),
        ])
    }
}

/// The error responses of an invoicing query.
pub struct InvoicingQueryErrors;

impl utoipa::IntoResponses for InvoicingQueryErrors {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        problem_responses(&[
            (400, "Malformed header or query parameter"),
            (401, "Missing, expired or invalid bearer token"),
            (403, "X-Tenant-ID differs from the token"),
            (
                404,
                "The organization, party or document does not exist in this tenant",
            ),
            (422, "Invalid parameter value"),
            (
                503,
                "The read model did not reach `min_position` in time (see Retry-After)",
            ),
        ])
    }
}
