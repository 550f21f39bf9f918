//! What the invoicing routes take and return. Amounts are decimal strings with two places, rates
//! percentages with up to two decimals (`"7.5"`), quantities decimals with up to three (`"12.5"`),
//! as in the ledger's routes; BINs print 9+4 (`002871821-0101`).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use vextrus_domain::finance::{
    InvoiceKind, Money, NewInvoice, PricedLine, Pricing, Rate, SubmittedInvoice, TaxParty, VatKind,
    VdsCertificate, Withholding,
};
use vextrus_domain::values::Bin;

use crate::finance::views::{PartyKindView, ReportFormat};
use crate::openapi::text;

/// A party as registered.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterParty {
    pub kind: PartyKindView,
    #[schema(schema_with = text::name)]
    pub name: String,
    #[schema(schema_with = text::bin_or_null)]
    pub bin: Option<String>,
    #[schema(schema_with = text::tin_or_null)]
    pub tin: Option<String>,
    #[schema(schema_with = text::narration_or_null)]
    pub address: Option<String>,
    /// Deducts VAT (VDS) and income tax (TDS) at source when it pays: a government body, a bank,
    /// a limited company … `false` when omitted.
    pub withholding_entity: Option<bool>,
    /// Days from a document's date to its due date; 30 when omitted. Read as a JSON number so
    /// that `30.0` is the integer 30, as JSON Schema has it.
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 3650)]
    pub terms_days: Option<f64>,
    /// A receivable (customer) or payable (supplier) account of the organization for this party's
    /// documents, instead of the tax book's.
    pub account_id: Option<Uuid>,
}

/// The changes a PATCH makes; omitted fields stay as they are, `null` clears an optional one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateParty {
    #[schema(schema_with = text::name_or_null)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "given")]
    #[schema(schema_with = text::bin_or_null)]
    pub bin: Option<Option<String>>,
    #[serde(default, deserialize_with = "given")]
    #[schema(schema_with = text::tin_or_null)]
    pub tin: Option<Option<String>>,
    #[serde(default, deserialize_with = "given")]
    #[schema(schema_with = text::narration_or_null)]
    pub address: Option<Option<String>>,
    pub withholding_entity: Option<bool>,
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 3650)]
    pub terms_days: Option<f64>,
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = Option<Uuid>)]
    pub account_id: Option<Option<Uuid>>,
}

/// A field of a PATCH that was given: `Some(None)` for `null`, as opposed to an omitted one.
fn given<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A customer or supplier.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PartyView {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub kind: PartyKindView,
    pub name: String,
    /// 9+4, e.g. `002871821-0101`.
    pub bin: Option<String>,
    pub tin: Option<String>,
    pub address: Option<String>,
    pub withholding_entity: bool,
    pub terms_days: i32,
    pub account_id: Option<Uuid>,
    pub archived: bool,
    /// The party's stream version, for `If-Match`.
    pub version: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PartyPage {
    pub items: Vec<PartyView>,
    /// Pass as `after` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PartyQuery {
    pub kind: Option<PartyKindView>,
    /// Names containing this text, in any case.
    pub q: Option<String>,
    /// Archived parties too; `false` when omitted.
    pub include_archived: Option<bool>,
    /// 1 to 500; 50 when omitted.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^[0-9]{1,9}$")]
    pub after: Option<String>,
    /// Wait (bounded) until the read model has applied this log position.
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// How a VAT code taxes a supply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VatKindView {
    Standard,
    Reduced,
    Exempt,
    ZeroRated,
}

impl From<VatKindView> for VatKind {
    fn from(view: VatKindView) -> Self {
        match view {
            VatKindView::Standard => Self::Standard,
            VatKindView::Reduced => Self::Reduced,
            VatKindView::Exempt => Self::Exempt,
            VatKindView::ZeroRated => Self::ZeroRated,
        }
    }
}

impl From<VatKind> for VatKindView {
    fn from(kind: VatKind) -> Self {
        match kind {
            VatKind::Standard => Self::Standard,
            VatKind::Reduced => Self::Reduced,
            VatKind::Exempt => Self::Exempt,
            VatKind::ZeroRated => Self::ZeroRated,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdoptStandardTaxRules {
    /// Whether the organization deducts VAT and income tax at source when it pays suppliers (a
    /// limited company does); `true` when omitted.
    pub withholding_entity: Option<bool>,
}

/// A VAT code's rate from a date on (a new code when the book has none such).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetVatRate {
    #[schema(schema_with = text::narration)]
    pub description: String,
    pub kind: VatKindView,
    /// The first day the rate applies; documents dated earlier keep the earlier rate.
    pub effective_from: NaiveDate,
    #[schema(schema_with = text::rate)]
    pub rate: String,
    /// The share of the VAT a withholding buyer deducts at source; `"0"` when omitted.
    #[schema(schema_with = text::rate_or_null)]
    pub vds_share: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TdsTierBody {
    /// The largest VAT-exclusive value of a document in this tier; null for the last tier.
    #[schema(schema_with = text::amount_or_null)]
    pub up_to: Option<String>,
    #[schema(schema_with = text::rate)]
    pub rate: String,
}

/// A TDS section's tiers from a date on (a new section when the book has none such).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTdsTiers {
    #[schema(schema_with = text::narration)]
    pub description: String,
    pub effective_from: NaiveDate,
    /// In rising order of `up_to`; the last one without.
    #[schema(min_items = 1)]
    pub tiers: Vec<TdsTierBody>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetWithholdingEntity {
    pub withholding_entity: bool,
}

/// The accounts documents post to: ledger accounts of the organization.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentAccountsBody {
    pub receivable: Uuid,
    pub payable: Uuid,
    pub output_vat: Uuid,
    pub input_vat: Uuid,
    pub vds_receivable: Uuid,
    pub vds_payable: Uuid,
    pub tds_receivable: Uuid,
    pub tds_payable: Uuid,
    pub retention_receivable: Uuid,
    pub retention_payable: Uuid,
    pub customer_advances: Uuid,
    pub supplier_advances: Uuid,
    pub exchange_gain: Uuid,
    pub exchange_loss: Uuid,
    pub bank_charges: Uuid,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenVatAmendment {
    /// Why the submitted return is amended.
    #[schema(schema_with = text::narration)]
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VatRateView {
    pub effective_from: NaiveDate,
    /// Percent, e.g. `"15.00"`.
    pub rate: String,
    pub vds_share: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VatCodeView {
    pub code: String,
    pub description: String,
    pub kind: VatKindView,
    /// Oldest first.
    pub rates: Vec<VatRateView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TdsTierView {
    pub up_to: Option<String>,
    pub rate: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TdsTiersView {
    pub effective_from: NaiveDate,
    pub tiers: Vec<TdsTierView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TdsSectionView {
    pub section: String,
    pub description: String,
    /// Oldest first.
    pub tiers: Vec<TdsTiersView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VatMonthView {
    /// `YYYY-MM`.
    pub month: String,
    /// 0 for the original return, 1, 2 … for amendments.
    pub amendment: u32,
    /// Locked for VAT-affecting documents (false while an amendment is open).
    pub locked: bool,
}

/// An organization's tax book.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TaxBookView {
    pub organization_id: Uuid,
    /// False until the standard rules are adopted (`POST …/tax-book/standard`) or a code is
    /// defined: the book is then empty.
    pub set_up: bool,
    pub withholding_entity: bool,
    pub vat_codes: Vec<VatCodeView>,
    pub tds_sections: Vec<TdsSectionView>,
    pub accounts: Option<DocumentAccountsBody>,
    pub vat_months: Vec<VatMonthView>,
    /// The book's stream version, for `If-Match`.
    pub version: i64,
}

/// Whether unit prices include VAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PricingView {
    VatExclusive,
    VatInclusive,
}

impl From<PricingView> for Pricing {
    fn from(view: PricingView) -> Self {
        match view {
            PricingView::VatExclusive => Self::VatExclusive,
            PricingView::VatInclusive => Self::VatInclusive,
        }
    }
}

impl From<Pricing> for PricingView {
    fn from(pricing: Pricing) -> Self {
        match pricing {
            Pricing::VatExclusive => Self::VatExclusive,
            Pricing::VatInclusive => Self::VatInclusive,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentLineBody {
    #[schema(schema_with = text::narration)]
    pub description: String,
    /// `"1"` when omitted.
    #[schema(schema_with = text::quantity_or_null)]
    pub quantity: Option<String>,
    #[schema(schema_with = text::amount)]
    pub unit_price: String,
    /// A VAT code of the tax book, e.g. `STD` or `S004.00`.
    #[schema(schema_with = text::code)]
    pub vat_code: String,
    /// Revenue (sales invoice) or expense or asset (bill): a ledger account of the organization.
    pub account_id: Uuid,
    /// Required on income and expense accounts.
    pub project_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
}

/// A sales invoice or purchase bill to draft.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftDocument {
    /// A customer (sales invoice) or supplier (bill) of the organization.
    pub party_id: Uuid,
    pub date: NaiveDate,
    /// `date` plus the party's terms when omitted.
    pub due_date: Option<NaiveDate>,
    /// `vat_exclusive` when omitted.
    pub pricing: Option<PricingView>,
    /// The buyer's order or contract reference.
    #[schema(schema_with = text::narration_or_null)]
    pub reference: Option<String>,
    /// "Sales invoice SI-… to …" when omitted.
    #[schema(schema_with = text::narration_or_null)]
    pub narration: Option<String>,
    pub lines: Vec<DocumentLineBody>,
    /// Bills: the TDS section the organization withholds under (e.g. `CONTRACT`).
    #[schema(schema_with = text::code_or_null)]
    pub tds_section: Option<String>,
    /// Bills: the share of the VAT-exclusive value held as retention.
    #[schema(schema_with = text::rate_or_null)]
    pub retention: Option<String>,
    /// A foreign currency the prices are in (the organization's base currency when omitted);
    /// the ledger and the VAT books get the base currency at `exchange_rate`, line by line.
    #[schema(schema_with = text::currency_or_null)]
    pub currency: Option<String>,
    /// Required with a foreign `currency`.
    #[schema(schema_with = text::exchange_rate_or_null)]
    pub exchange_rate: Option<String>,
}

/// A sales invoice, a supplier's bill, or a credit (Mushak-6.7) or debit (Mushak-6.8) note of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKindView {
    SalesInvoice,
    PurchaseBill,
    SalesCreditNote,
    SalesDebitNote,
    PurchaseCreditNote,
    PurchaseDebitNote,
}

impl From<InvoiceKind> for DocumentKindView {
    fn from(kind: InvoiceKind) -> Self {
        match kind {
            InvoiceKind::SalesInvoice => Self::SalesInvoice,
            InvoiceKind::PurchaseBill => Self::PurchaseBill,
            InvoiceKind::SalesCreditNote => Self::SalesCreditNote,
            InvoiceKind::SalesDebitNote => Self::SalesDebitNote,
            InvoiceKind::PurchaseCreditNote => Self::PurchaseCreditNote,
            InvoiceKind::PurchaseDebitNote => Self::PurchaseDebitNote,
        }
    }
}

impl From<DocumentKindView> for InvoiceKind {
    fn from(view: DocumentKindView) -> Self {
        match view {
            DocumentKindView::SalesInvoice => Self::SalesInvoice,
            DocumentKindView::PurchaseBill => Self::PurchaseBill,
            DocumentKindView::SalesCreditNote => Self::SalesCreditNote,
            DocumentKindView::SalesDebitNote => Self::SalesDebitNote,
            DocumentKindView::PurchaseCreditNote => Self::PurchaseCreditNote,
            DocumentKindView::PurchaseDebitNote => Self::PurchaseDebitNote,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentStatusView {
    Draft,
    Submitted,
    Cancelled,
}

/// A credit or debit note to draft against a submitted document: the party is the document's,
/// and so are the currency and the exchange rate (unit prices are in the document's currency).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftNote {
    pub date: NaiveDate,
    /// `date` plus the party's terms when omitted.
    pub due_date: Option<NaiveDate>,
    pub pricing: Option<PricingView>,
    /// Why the note is issued (returned goods, a price correction …).
    #[schema(schema_with = text::narration_or_null)]
    pub reference: Option<String>,
    #[schema(schema_with = text::narration_or_null)]
    pub narration: Option<String>,
    pub lines: Vec<DocumentLineBody>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelDocument {
    /// In an open period and an open VAT month; the entry is reversed on this day.
    pub date: NaiveDate,
    #[schema(schema_with = text::narration)]
    pub reason: String,
}

/// A seller or buyer as the tax invoice prints them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TaxPartyView {
    pub name: String,
    /// 9+4.
    pub bin: Option<String>,
    pub address: Option<String>,
}

impl From<&TaxParty> for TaxPartyView {
    fn from(party: &TaxParty) -> Self {
        Self {
            name: party.name.clone(),
            bin: party.bin.as_ref().map(Bin::to_string),
            address: party.address.clone(),
        }
    }
}

/// A line: as entered on a draft; priced once submitted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DocumentLineView {
    pub description: String,
    pub quantity: String,
    pub unit_price: String,
    pub vat_code: String,
    pub account_id: Uuid,
    pub project_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    /// The rest once submitted.
    pub vat_kind: Option<VatKindView>,
    pub vat_rate: Option<String>,
    /// Value without VAT.
    pub value: Option<String>,
    pub vat: Option<String>,
    /// Value with VAT.
    pub total: Option<String>,
    pub vds: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct WithholdingView {
    pub vds: String,
    pub tds_rate: Option<String>,
    pub tds: String,
    pub retention_rate: Option<String>,
    pub retention: String,
}

impl From<&Withholding> for WithholdingView {
    fn from(withholding: &Withholding) -> Self {
        Self {
            vds: withholding.vds.to_decimal(),
            tds_rate: withholding.tds_rate.map(Rate::to_decimal),
            tds: withholding.tds.to_decimal(),
            retention_rate: withholding.retention_rate.map(Rate::to_decimal),
            retention: withholding.retention.to_decimal(),
        }
    }
}

/// A sales invoice or purchase bill.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DocumentView {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub kind: DocumentKindView,
    pub status: DocumentStatusView,
    pub party_id: Uuid,
    pub party_name: Option<String>,
    /// Gapless per series and fiscal year, e.g. `SI-2025-26-000001`; null while a draft.
    pub number: Option<String>,
    pub date: NaiveDate,
    pub due_date: NaiveDate,
    pub pricing: PricingView,
    pub reference: Option<String>,
    pub narration: Option<String>,
    pub lines: Vec<DocumentLineView>,
    /// Sums once submitted ("0.00" while a draft).
    pub value: String,
    pub vat: String,
    pub total: String,
    /// What the party owes (sales) or is owed (bills) on the receivable or payable account.
    pub balance: String,
    /// What receipts or payments settled of the balance.
    pub settled: String,
    /// What is left: `balance - settled`.
    pub outstanding: String,
    pub withholding: WithholdingView,
    pub tds_section: Option<String>,
    /// The date and time of issue printed on the tax invoice.
    pub issued_at: Option<DateTime<Utc>>,
    pub seller: Option<TaxPartyView>,
    pub buyer: Option<TaxPartyView>,
    /// The journal entry the submit posted.
    pub entry_id: Option<Uuid>,
    /// Notes: the document changed.
    pub original_id: Option<Uuid>,
    pub original_number: Option<String>,
    /// Sales credit notes: whether it counts as a decreasing adjustment of output VAT (its VAT
    /// is at most Tk 5,000, or it names the buyer's name, address and BIN).
    pub decreasing_adjustment_eligible: Option<bool>,
    /// A foreign-currency document: its currency, rate and total in that currency (its other
    /// amounts are in the base currency).
    pub currency: Option<String>,
    pub exchange_rate: Option<String>,
    pub foreign_total: Option<String>,
    /// What is left to settle in the document's own currency.
    pub foreign_outstanding: Option<String>,
    /// A bill that withheld VAT at source: the Mushak-6.6 certificate issued for it, once
    /// recorded.
    pub vds_certificate: Option<VdsCertificateView>,
    /// The document's stream version, for `If-Match`.
    pub version: i64,
    /// Log position of the document's first event.
    pub position: i64,
}

impl DocumentLineView {
    pub fn drafted(line: &vextrus_domain::finance::InvoiceLine) -> Self {
        Self {
            description: line.description.clone(),
            quantity: line.quantity.to_decimal(),
            unit_price: line.unit_price.to_decimal(),
            vat_code: line.vat_code.to_string(),
            account_id: line.account_id.as_uuid(),
            project_id: line.project_id.map(|id| id.as_uuid()),
            site_id: line.site_id.map(|id| id.as_uuid()),
            vat_kind: None,
            vat_rate: None,
            value: None,
            vat: None,
            total: None,
            vds: None,
        }
    }

    pub fn priced(line: &PricedLine) -> Self {
        Self {
            vat_kind: Some(line.vat_kind.into()),
            vat_rate: Some(line.vat_rate.to_decimal()),
            value: Some(line.value.to_decimal()),
            vat: Some(line.vat.to_decimal()),
            total: Some(line.total.to_decimal()),
            vds: Some(line.vds.to_decimal()),
            ..Self::drafted(&line.line)
        }
    }
}

/// The parts of a document row the view is made of besides its recorded document.
pub struct DocumentRow {
    pub id: Uuid,
    pub party_name: Option<String>,
    pub version: i64,
    pub position: i64,
    /// Paisa settled by payments.
    pub settled: i64,
    /// The balance as notes changed it, in paisa.
    pub balance: i64,
    pub cancelled: bool,
    /// A foreign-currency document's balance (as notes changed it) and what was settled, in
    /// its currency.
    pub foreign_balance: Option<i64>,
    pub foreign_settled: i64,
    pub vds_certificate: Option<VdsCertificateView>,
}

impl DocumentView {
    pub fn of_draft(row: DocumentRow, draft: &NewInvoice) -> Self {
        let zero = Money::ZERO.to_decimal();
        Self {
            id: row.id,
            organization_id: draft.organization_id.as_uuid(),
            kind: draft.kind.into(),
            status: DocumentStatusView::Draft,
            party_id: draft.party_id.as_uuid(),
            party_name: row.party_name,
            number: None,
            date: draft.date,
            due_date: draft.due_date,
            pricing: draft.pricing.into(),
            reference: draft.reference.clone(),
            narration: draft.narration.clone(),
            lines: draft.lines.iter().map(DocumentLineView::drafted).collect(),
            value: zero.clone(),
            vat: zero.clone(),
            total: zero.clone(),
            balance: zero.clone(),
            settled: zero.clone(),
            outstanding: zero,
            withholding: WithholdingView::from(&Withholding {
                retention_rate: draft.retention,
                ..Withholding::default()
            }),
            tds_section: draft.tds_section.as_ref().map(ToString::to_string),
            issued_at: None,
            seller: None,
            buyer: None,
            entry_id: None,
            original_id: draft.original.map(|id| id.as_uuid()),
            original_number: None,
            decreasing_adjustment_eligible: None,
            currency: draft.currency.as_ref().map(ToString::to_string),
            exchange_rate: draft.exchange_rate.map(|rate| rate.to_decimal()),
            foreign_total: None,
            foreign_outstanding: None,
            vds_certificate: None,
            version: row.version,
            position: row.position,
        }
    }

    pub fn of_submitted(
        row: DocumentRow,
        submitted: &SubmittedInvoice,
        tds_section: Option<String>,
    ) -> Self {
        Self {
            id: row.id,
            organization_id: submitted.organization_id.as_uuid(),
            kind: submitted.kind.into(),
            status: if row.cancelled {
                DocumentStatusView::Cancelled
            } else {
                DocumentStatusView::Submitted
            },
            party_id: submitted.party_id.as_uuid(),
            party_name: row.party_name,
            number: Some(submitted.number.clone()),
            date: submitted.date,
            due_date: submitted.due_date,
            pricing: submitted.pricing.into(),
            reference: submitted.reference.clone(),
            narration: Some(submitted.narration.clone()),
            lines: submitted
                .lines
                .iter()
                .map(DocumentLineView::priced)
                .collect(),
            value: submitted.value.to_decimal(),
            vat: submitted.vat.to_decimal(),
            total: submitted.total.to_decimal(),
            balance: Money::from_paisa(row.balance).to_decimal(),
            settled: Money::from_paisa(row.settled).to_decimal(),
            outstanding: if row.cancelled {
                Money::ZERO.to_decimal()
            } else {
                Money::from_paisa(row.balance - row.settled).to_decimal()
            },
            withholding: (&submitted.withholding).into(),
            tds_section,
            issued_at: Some(submitted.issued_at),
            seller: Some((&submitted.seller).into()),
            buyer: Some((&submitted.buyer).into()),
            entry_id: Some(submitted.entry_id.as_uuid()),
            original_id: submitted.original.map(|id| id.as_uuid()),
            original_number: submitted.original_number.clone(),
            decreasing_adjustment_eligible: submitted.decreasing_adjustment_eligible,
            currency: submitted
                .foreign
                .as_ref()
                .map(|foreign| foreign.currency.to_string()),
            exchange_rate: submitted
                .foreign
                .as_ref()
                .map(|foreign| foreign.rate.to_decimal()),
            foreign_total: submitted
                .foreign
                .as_ref()
                .map(|foreign| foreign.total.to_decimal()),
            foreign_outstanding: row.foreign_balance.map(|balance| {
                let left = if row.cancelled {
                    0
                } else {
                    balance - row.foreign_settled
                };
                Money::from_paisa(left).to_decimal()
            }),
            vds_certificate: row.vds_certificate,
            version: row.version,
            position: row.position,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DocumentPage {
    pub items: Vec<DocumentView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DocumentQuery {
    pub kind: Option<DocumentKindView>,
    pub status: Option<DocumentStatusView>,
    pub party_id: Option<Uuid>,
    /// First day.
    pub from: Option<NaiveDate>,
    /// Last day.
    pub to: Option<NaiveDate>,
    /// 1 to 500; 50 when omitted.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^[0-9]{1,6}~[0-9]{1,18}$")]
    pub after: Option<String>,
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VatBookQuery {
    /// The VAT month, `YYYY-MM`.
    #[param(
        pattern = r"^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])$",
        example = "2025-08"
    )]
    pub month: String,
    /// `json` (default) or `csv`.
    pub format: Option<ReportFormat>,
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VatReturnQuery {
    /// Wait (bounded) until the read model has applied this log position.
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// A VAT month in a path. A path outside the pattern names nothing (404).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MonthPath {
    pub organization_id: Uuid,
    /// `YYYY-MM`.
    #[param(
        pattern = r"^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])$",
        example = "2025-08"
    )]
    pub month: String,
}

/// A VAT code in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct VatCodePath {
    pub organization_id: Uuid,
    /// The VAT code, e.g. `S004.00`.
    #[param(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$", example = "S004.00")]
    pub code: String,
}

/// A TDS section in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TdsSectionPath {
    pub organization_id: Uuid,
    /// The TDS section, e.g. `CONTRACT`.
    #[param(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$", example = "CONTRACT")]
    pub section: String,
}

/// One line of the sales book (Mushak-6.2) or the purchase book (Mushak-6.1).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VatBookLine {
    pub date: NaiveDate,
    pub number: String,
    pub document_id: Uuid,
    pub line_no: i32,
    pub party_id: Uuid,
    pub party_name: String,
    pub party_bin: Option<String>,
    pub description: String,
    pub quantity: String,
    pub unit_price: String,
    pub vat_code: String,
    pub vat_kind: VatKindView,
    pub vat_rate: String,
    pub value: String,
    pub vat: String,
    pub total: String,
    pub vds: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VatBookView {
    /// `mushak-6.1` (purchases) or `mushak-6.2` (sales).
    pub form: String,
    pub month: String,
    pub lines: Vec<VatBookLine>,
    pub value: String,
    pub vat: String,
    pub total: String,
    pub vds: String,
}

/// Sales or purchases of one VAT kind in a month.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VatReturnRow {
    pub vat_kind: VatKindView,
    pub value: String,
    pub vat: String,
}

/// The monthly return summary (Mushak-9.1), from the sales and purchase books.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VatReturnView {
    pub month: String,
    /// Due 15 days after the month.
    pub due_date: NaiveDate,
    pub submitted: bool,
    pub amendment: Option<u32>,
    pub locked: bool,
    pub sales: Vec<VatReturnRow>,
    pub purchases: Vec<VatReturnRow>,
    pub output_vat: String,
    pub input_vat: String,
    /// VAT deducted at source from suppliers, to deposit.
    pub vds_deducted: String,
    /// Output VAT less input VAT (negative: carried forward).
    pub net_vat: String,
}

/// Which way money moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentDirectionView {
    Receipt,
    Payment,
}

/// What settled part of the documents without cash moving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeductionKindView {
    /// VAT deducted at source (Mushak-6.6).
    Vds,
    /// Income tax deducted at source.
    Tds,
    Retention,
    /// The bank's charges on a receipt.
    BankCharges,
    /// A shortfall written off to the ledger's round-off account, within its allowance.
    RoundOff,
}

impl From<DeductionKindView> for vextrus_domain::finance::DeductionKind {
    fn from(view: DeductionKindView) -> Self {
        match view {
            DeductionKindView::Vds => Self::Vds,
            DeductionKindView::Tds => Self::Tds,
            DeductionKindView::Retention => Self::Retention,
            DeductionKindView::BankCharges => Self::BankCharges,
            DeductionKindView::RoundOff => Self::RoundOff,
        }
    }
}

impl From<vextrus_domain::finance::DeductionKind> for DeductionKindView {
    fn from(kind: vextrus_domain::finance::DeductionKind) -> Self {
        use vextrus_domain::finance::DeductionKind as K;
        match kind {
            K::Vds => Self::Vds,
            K::Tds => Self::Tds,
            K::Retention => Self::Retention,
            K::BankCharges => Self::BankCharges,
            K::RoundOff => Self::RoundOff,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocationBody {
    /// A submitted document of the same party: a sales invoice for a receipt, a bill for a
    /// payment.
    pub invoice_id: Uuid,
    /// At most what the document has outstanding.
    #[schema(schema_with = text::amount)]
    pub amount: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeductionBody {
    pub kind: DeductionKindView,
    #[schema(schema_with = text::amount)]
    pub amount: String,
}

/// A receipt from a customer or a payment to a supplier: `amount` + deductions = allocations +
/// the advance held for the party.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordPayment {
    pub party_id: Uuid,
    pub date: NaiveDate,
    /// The bank or cash account the money moved through.
    pub account_id: Uuid,
    /// The money that moved.
    #[schema(schema_with = text::amount)]
    pub amount: String,
    #[schema(schema_with = text::narration_or_null)]
    pub reference: Option<String>,
    #[schema(schema_with = text::narration_or_null)]
    pub narration: Option<String>,
    /// Documents settled; none: all of it is held as an advance.
    pub allocations: Option<Vec<AllocationBody>>,
    /// What was withheld (VDS, TDS, retention) or charged by the bank (receipts only); each kind
    /// at most once.
    pub deductions: Option<Vec<DeductionBody>>,
    /// Retention held with the party that this releases: paid to the supplier out of what was
    /// withheld from it, or received from the customer out of what it held back; never more
    /// than the retention register holds for the party.
    #[schema(schema_with = text::amount_or_null)]
    pub retention_release: Option<String>,
    /// The VDS certificate (Mushak-6.6) received with a receipt or issued with a payment.
    #[schema(schema_with = text::narration_or_null)]
    pub vds_certificate: Option<String>,
    /// Where bank charges and an exchange difference are costed (required with them).
    pub project_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    /// A foreign currency the amounts are in: they settle documents in that currency.
    #[schema(schema_with = text::currency_or_null)]
    pub currency: Option<String>,
    /// Required with a foreign `currency`: the rate on the payment's date.
    #[schema(schema_with = text::exchange_rate_or_null)]
    pub exchange_rate: Option<String>,
}

/// Part of a payment's advance to allocate to the party's documents.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocateAdvance {
    /// In an open period; the entry moving the advance is dated so.
    pub date: NaiveDate,
    pub allocations: Vec<AllocationBody>,
    /// Where an exchange difference is costed (a foreign-currency advance settling documents
    /// at their own rates); the payment's project and site when omitted.
    pub project_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AllocationView {
    pub invoice_id: Uuid,
    pub amount: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeductionView {
    pub kind: DeductionKindView,
    pub amount: String,
}

/// A recorded payment or receipt.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PaymentView {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub direction: PaymentDirectionView,
    pub party_id: Uuid,
    pub party_name: Option<String>,
    /// `RC-2025-26-000001` (receipts), `PY-…` (payments).
    pub number: String,
    pub date: NaiveDate,
    pub account_id: Uuid,
    pub amount: String,
    pub allocations: Vec<AllocationView>,
    pub deductions: Vec<DeductionView>,
    /// Retention held with the party that this released.
    pub retention_release: Option<String>,
    /// Held for the party, not yet allocated (what is left after later allocations).
    pub advance: String,
    pub reference: Option<String>,
    pub narration: Option<String>,
    /// The Mushak-6.6 certificate for the VAT it deducted: received from a customer with a
    /// receipt, issued to a supplier with a payment (recorded with it or later).
    pub vds_certificate: Option<String>,
    pub vds_certificate_date: Option<NaiveDate>,
    /// A foreign-currency payment: its currency and rate.
    pub currency: Option<String>,
    pub exchange_rate: Option<String>,
    /// The base currency at the payment's rate less what it settled at the documents' rates:
    /// a gain on a receipt when positive, a loss on a payment.
    pub exchange_difference: String,
    pub entry_id: Uuid,
    pub version: i64,
    pub position: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentPage {
    pub items: Vec<PaymentView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PaymentQuery {
    pub direction: Option<PaymentDirectionView>,
    pub party_id: Option<Uuid>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// 1 to 500; 50 when omitted.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^[0-9]{1,6}~[0-9]{1,18}$")]
    pub after: Option<String>,
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// What a budget does when a posting would exceed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BudgetActionView {
    /// Refuse the posting (a bill, an entry, a receipt's bank charges).
    Stop,
    /// Post it and record a warning.
    Warn,
}

impl From<BudgetActionView> for vextrus_domain::finance::BudgetAction {
    fn from(view: BudgetActionView) -> Self {
        match view {
            BudgetActionView::Stop => Self::Stop,
            BudgetActionView::Warn => Self::Warn,
        }
    }
}

/// A budget for an expense account in a project (or one of its sites) over a fiscal year.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetBudget {
    pub project_id: Uuid,
    /// None: the whole project.
    pub site_id: Option<Uuid>,
    /// An expense ledger account of the organization.
    pub account_id: Uuid,
    /// The first day of a fiscal year of the ledger.
    pub fiscal_year: NaiveDate,
    #[schema(schema_with = text::amount)]
    pub amount: String,
    pub action: BudgetActionView,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviseBudget {
    #[schema(schema_with = text::amount)]
    pub amount: String,
    pub action: BudgetActionView,
}

/// A budget against what was spent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BudgetView {
    pub id: Uuid,
    pub project_id: Uuid,
    pub site_id: Option<Uuid>,
    pub account_id: Uuid,
    pub account_code: Option<String>,
    pub fiscal_year: NaiveDate,
    pub action: BudgetActionView,
    pub budget: String,
    /// Ordered but not yet billed: purchase orders are not built yet, so always "0.00".
    pub committed: String,
    /// Posted against the budget (bills, entries, reversals).
    pub actual: String,
    /// `budget - committed - actual` (negative once a Warn budget is exceeded).
    pub available: String,
    /// How often a Warn budget was exceeded.
    pub warnings: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BudgetReport {
    pub items: Vec<BudgetView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BudgetQuery {
    /// The first day of a fiscal year; every year when omitted.
    pub fiscal_year: Option<NaiveDate>,
    pub project_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    /// `json` (default) or `csv`.
    pub format: Option<ReportFormat>,
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// Which open items: what customers owe, or what is owed to suppliers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpenSideView {
    Receivable,
    Payable,
}

/// What an open item's age counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgingBasisView {
    /// Days since the document's date.
    #[default]
    DocumentDate,
    /// Days past the due date (not yet due counts as 0).
    DueDate,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AgingQuery {
    /// `receivable` (default) or `payable`.
    pub side: Option<OpenSideView>,
    /// What was open at the end of this day (default: today).
    pub as_of: Option<NaiveDate>,
    pub basis: Option<AgingBasisView>,
    /// One party's open items only.
    pub party_id: Option<Uuid>,
    /// `json` (default) or `csv` (one row per open document).
    pub format: Option<ReportFormat>,
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// One document open on the day.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OpenItemView {
    pub invoice_id: Uuid,
    pub number: String,
    pub party_id: Uuid,
    pub party_name: Option<String>,
    pub document_date: NaiveDate,
    pub due_date: NaiveDate,
    pub open: String,
    pub days: i64,
    /// `0-30`, `31-60`, `61-90`, `91-120` or `121+`.
    pub bucket: String,
}

/// A party's open amounts by age.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgingPartyView {
    pub party_id: Uuid,
    pub party_name: Option<String>,
    /// `0-30`, `31-60`, `61-90`, `91-120`, `121+`, in that order.
    pub buckets: Vec<String>,
    pub total: String,
}

/// Receivable or payable aging as of a day (0–30, 31–60, 61–90, 91–120, 121+ days).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgingView {
    pub side: OpenSideView,
    pub as_of: NaiveDate,
    pub basis: AgingBasisView,
    pub parties: Vec<AgingPartyView>,
    pub totals: Vec<String>,
    pub total: String,
    /// Every open document, oldest first.
    pub items: Vec<OpenItemView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PartyLedgerQuery {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// `json` (default) or `csv`.
    pub format: Option<ReportFormat>,
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// One posted line naming the party.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PartyLedgerLine {
    pub date: NaiveDate,
    pub entry_id: Uuid,
    pub document_number: Option<String>,
    pub narration: String,
    pub account_code: String,
    pub debit: String,
    pub credit: String,
    /// Debits less credits of the party's lines up to this one (a customer's is what it owes).
    pub balance: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PartyLedgerView {
    pub party_id: Uuid,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// The balance before `from`.
    pub opening: String,
    pub lines: Vec<PartyLedgerLine>,
    pub closing: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WithholdingQuery {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// `json` (default) or `csv`.
    pub format: Option<ReportFormat>,
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// One amount withheld at source.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WithholdingLine {
    pub date: NaiveDate,
    /// The bill, receipt or payment.
    pub number: String,
    pub party_id: Uuid,
    pub party_name: Option<String>,
    /// `vds`, `tds` or `retention`.
    pub kind: String,
    /// `given`: the organization withheld it from a supplier (and deposits it); `suffered`: a
    /// customer withheld it from the organization.
    pub direction: String,
    pub amount: String,
    /// The Mushak-6.6 certificate, where recorded.
    pub certificate: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WithholdingRegister {
    pub lines: Vec<WithholdingLine>,
}

/// A Mushak-6.6 certificate to record: its number and the day it was issued.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordVdsCertificate {
    #[schema(schema_with = text::narration)]
    pub number: String,
    /// On or after the day the VAT was deducted (the bill's or the payment's date).
    pub date: NaiveDate,
}

impl From<RecordVdsCertificate> for VdsCertificate {
    fn from(body: RecordVdsCertificate) -> Self {
        VdsCertificate {
            number: body.number,
            date: body.date,
        }
    }
}

/// A recorded Mushak-6.6 certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VdsCertificateView {
    pub number: String,
    pub date: NaiveDate,
}

/// Which certificates: those the organization issues (for VAT it withheld from suppliers) or
/// receives (for VAT customers deducted from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CertificateDirectionView {
    Issued,
    Received,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VdsCertificateQuery {
    /// Deductions dated from this day (from the first when omitted).
    pub from: Option<NaiveDate>,
    /// Deductions dated up to this day, included.
    pub to: Option<NaiveDate>,
    /// Only issued or only received (both when omitted).
    pub direction: Option<CertificateDirectionView>,
    /// `true`: only deductions whose certificate is not recorded yet.
    pub pending: Option<bool>,
    /// `json` (default) or `csv`.
    pub format: Option<ReportFormat>,
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// One deduction of VAT at source and its Mushak-6.6 certificate.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VdsCertificateLine {
    pub direction: CertificateDirectionView,
    /// When the VAT was deducted: the bill's date (issued for a bill) or the payment's.
    pub date: NaiveDate,
    /// The bill, receipt or payment that deducted it.
    pub document_id: Uuid,
    pub number: String,
    pub party_id: Uuid,
    pub party_name: Option<String>,
    /// The party's BIN (9+4), which the certificate names.
    pub party_bin: Option<String>,
    /// The VAT deducted at source.
    pub vds: String,
    /// Null while the certificate is not recorded.
    pub certificate: Option<VdsCertificateView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VdsCertificateRegister {
    pub lines: Vec<VdsCertificateLine>,
    /// The VAT deducted on the lines listed, and how many of them wait for a certificate.
    pub vds: String,
    pub pending: u64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RetentionQuery {
    /// Moves from this day (from the first when omitted).
    pub from: Option<NaiveDate>,
    /// Balances as of this day, and moves up to it (everything when omitted).
    pub to: Option<NaiveDate>,
    /// One party only.
    pub party_id: Option<Uuid>,
    /// `json` (default) or `csv` (the balance per party).
    pub format: Option<ReportFormat>,
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// The retention held with one party.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RetentionBalance {
    pub party_id: Uuid,
    pub party_name: Option<String>,
    /// `receivable`: a customer holds it back from the organization; `payable`: the organization
    /// withheld it from a supplier.
    pub side: OpenSideView,
    /// Held by bills and payments (less what cancelled bills reversed).
    pub held: String,
    pub released: String,
    /// Still held: `held - released`.
    pub balance: String,
}

/// One change to the retention held with a party.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RetentionMoveView {
    pub date: NaiveDate,
    pub party_id: Uuid,
    pub party_name: Option<String>,
    pub side: OpenSideView,
    /// `held`, `released` or `reversed` (a cancelled bill).
    pub kind: String,
    /// The bill, receipt or payment that made it.
    pub document: String,
    /// Positive when held, negative when released or reversed.
    pub amount: String,
}

/// Retention held and released per party.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RetentionRegister {
    /// The day the balances are as of (`null`: everything recorded).
    pub to: Option<NaiveDate>,
    pub parties: Vec<RetentionBalance>,
    /// The moves from `from` to `to`, by date.
    pub moves: Vec<RetentionMoveView>,
}
