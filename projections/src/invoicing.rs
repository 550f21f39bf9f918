//! Parties, invoices and bills, payments, and the VAT registers (`migrations/0022_invoicing.sql`,
//! `0023_payments.sql`), from `party`, `invoice` and `payment` events:
//!
//! - parties: a state row each, owned by the party's stream;
//! - documents: a state row each, owned by the document's stream, with the document as recorded
//!   (a draft, or everything a submitted tax invoice prints) for the API and the printed invoice,
//!   and what payments settled of it (their settlements are events of the document's stream);
//! - payments and receipts: a state row each, owned by the payment's stream;
//! - the VAT registers, the sales book (Mushak-6.2) and the purchase book (Mushak-6.1): one
//!   insert-only line per submitted document line ([`Lines`]), with what the document printed
//!   (number, party name and BIN, rate), so a register never depends on the order in which
//!   streams were applied (design.md D11). The monthly return summary (Mushak-9.1) sums these.
//!
//! - budgets: a row per budget line (the organization's budgets stream owns them) and counters of
//!   what was spent against each (its usage stream adds to them): budget vs actual.
//!
//! Nothing here reads another stream's rows: a document's party name is joined when queried.

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::Aggregate;
use serde_json::Value;
use uuid::Uuid;
use vextrus_commands::RecordedEvent;
use vextrus_domain::finance::{
    BudgetEvent, BudgetUsage, Budgets, DeductionKind, Invoice, InvoiceEvent, Party, PartyEvent,
    Payment, PaymentEvent, SubmittedInvoice, UsageEvent, month_of,
};

use crate::projection::{Projection, ProjectionError};
use crate::{read_model, row};

/// Builds the invoicing read models.
#[derive(Debug, Default, Clone, Copy)]
pub struct Invoicing;

read_model! {
    /// The invoicing rows a batch works on.
    #[derive(Debug)]
    pub struct InvoicingRows {
        parties: Table<PartyRow>,
        invoices: Table<InvoiceRow>,
        vat_lines: Lines<VatLineRow>,
        payments: Table<PaymentRow>,
        budgets: Table<BudgetRow>,
        budget_usage: Counters<BudgetUsageRow>,
    }
}

row! {
    /// A customer or supplier.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct PartyRow in "fin_parties" {
        key { party_id: Uuid }
        organization_id: Uuid,
        kind: String,
        name: String,
        bin: Option<String>,
        tin: Option<String>,
        address: Option<String>,
        withholding_entity: bool,
        terms_days: i32,
        account_id: Option<Uuid>,
        archived: bool,
        version: i64,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    }
}

row! {
    /// A sales invoice or purchase bill. Amounts are in paisa, zero while a draft.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct InvoiceRow in "fin_invoices" {
        key { invoice_id: Uuid }
        organization_id: Uuid,
        kind: String,
        status: String,
        party_id: Uuid,
        number: Option<String>,
        date: NaiveDate,
        due_date: NaiveDate,
        value: i64,
        vat: i64,
        total: i64,
        /// What the party owes or is owed on the receivable or payable account.
        balance: i64,
        vds: i64,
        tds: i64,
        retention: i64,
        entry_id: Option<Uuid>,
        issued_at: Option<DateTime<Utc>>,
        /// The draft as entered, or the submitted document as printed.
        document: Value,
        version: i64,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
        /// Log position of the document's first event: the order of documents within a day.
        position: i64,
        /// What payments and receipts settled of `balance`.
        settled: i64,
    }
}

row! {
    /// A payment to a supplier or a receipt from a customer. Amounts in paisa.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct PaymentRow in "fin_payments" {
        key { payment_id: Uuid }
        organization_id: Uuid,
        direction: String,
        party_id: Uuid,
        number: String,
        date: NaiveDate,
        account_id: Uuid,
        amount: i64,
        allocated: i64,
        deducted: i64,
        advance: i64,
        vds: i64,
        tds: i64,
        retention: i64,
        bank_charges: i64,
        vds_certificate: Option<String>,
        entry_id: Uuid,
        /// The recorded payment: allocations, deductions, the certificate.
        document: Value,
        version: i64,
        created_at: DateTime<Utc>,
        position: i64,
    }
}

row! {
    /// One line of a submitted document in the sales book (Mushak-6.2) or the purchase book
    /// (Mushak-6.1).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct VatLineRow in "fin_vat_lines" {
        key { invoice_id: Uuid, line_no: i32 }
        organization_id: Uuid,
        /// `sales` or `purchase`.
        book: String,
        date: NaiveDate,
        month: NaiveDate,
        number: String,
        party_id: Uuid,
        party_name: String,
        party_bin: Option<String>,
        description: String,
        /// Thousandths of a unit.
        quantity: i64,
        unit_price: i64,
        vat_code: String,
        vat_kind: String,
        /// Hundredths of a percent.
        vat_rate: i32,
        value: i64,
        vat: i64,
        total: i64,
        vds: i64,
        position: i64,
    }
}

row! {
    /// A budget line.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct BudgetRow in "fin_budgets" {
        key { budget_id: Uuid }
        organization_id: Uuid,
        project_id: Uuid,
        site_id: Option<Uuid>,
        account_id: Uuid,
        fiscal_year: NaiveDate,
        amount: i64,
        action: String,
        updated_at: DateTime<Utc>,
    }
}

row! {
    /// What was spent against a budget (paisa), and how often a Warn budget was exceeded.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct BudgetUsageRow in "fin_budget_usage" {
        key { budget_id: Uuid }
        spent: i64 => additive,
        exceeded: i64 => additive,
        postings: i64 => additive,
    }
}

fn stream_id(event: &RecordedEvent) -> Result<Uuid, ProjectionError> {
    event.aggregate_id.parse::<Uuid>().map_err(|_| {
        ProjectionError::Inconsistent(format!("stream id {:?} is not a UUID", event.aggregate_id))
    })
}

fn missing(what: &str) -> ProjectionError {
    ProjectionError::Inconsistent(format!("{what} is not in the read model"))
}

impl InvoicingRows {
    fn apply_party(&mut self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let tenant = event.tenant_id.as_uuid();
        let party_id = stream_id(event)?;
        match event.decode::<PartyEvent>()? {
            PartyEvent::PartyRegistered {
                organization_id,
                kind,
                details,
                ..
            } => {
                self.parties.insert(
                    tenant,
                    party_id,
                    PartyRow {
                        organization_id: organization_id.as_uuid(),
                        kind: kind.as_str().to_owned(),
                        name: details.name.to_string(),
                        bin: details.bin.map(|bin| bin.digits().to_owned()),
                        tin: details.tin.map(|tin| tin.digits().to_owned()),
                        address: details.address,
                        withholding_entity: details.withholding_entity,
                        terms_days: i32::from(details.terms_days),
                        account_id: details.account_id.map(|id| id.as_uuid()),
                        archived: false,
                        version: event.sequence,
                        created_at: event.recorded_at,
                        updated_at: event.recorded_at,
                    },
                );
            }
            PartyEvent::PartyUpdated { details, .. } => {
                self.parties
                    .change(tenant, &party_id, |row| {
                        row.name = details.name.to_string();
                        row.bin = details.bin.map(|bin| bin.digits().to_owned());
                        row.tin = details.tin.map(|tin| tin.digits().to_owned());
                        row.address = details.address;
                        row.withholding_entity = details.withholding_entity;
                        row.terms_days = i32::from(details.terms_days);
                        row.account_id = details.account_id.map(|id| id.as_uuid());
                        row.version = event.sequence;
                        row.updated_at = event.recorded_at;
                    })
                    .ok_or_else(|| missing("the party"))?;
            }
            PartyEvent::PartyArchived { .. } => {
                self.parties
                    .change(tenant, &party_id, |row| {
                        row.archived = true;
                        row.version = event.sequence;
                        row.updated_at = event.recorded_at;
                    })
                    .ok_or_else(|| missing("the party"))?;
            }
        }
        Ok(())
    }

    fn apply_invoice(&mut self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let tenant = event.tenant_id.as_uuid();
        let invoice_id = stream_id(event)?;
        match event.decode::<InvoiceEvent>()? {
            InvoiceEvent::InvoiceDrafted(draft) => {
                self.invoices.insert(
                    tenant,
                    invoice_id,
                    InvoiceRow {
                        organization_id: draft.organization_id.as_uuid(),
                        kind: draft.kind.as_str().to_owned(),
                        status: "draft".to_owned(),
                        party_id: draft.party_id.as_uuid(),
                        number: None,
                        date: draft.date,
                        due_date: draft.due_date,
                        value: 0,
                        vat: 0,
                        total: 0,
                        balance: 0,
                        vds: 0,
                        tds: 0,
                        retention: 0,
                        entry_id: None,
                        issued_at: None,
                        document: serde_json::to_value(&draft)?,
                        version: event.sequence,
                        created_at: event.recorded_at,
                        updated_at: event.recorded_at,
                        position: event.global_position.get(),
                        settled: 0,
                    },
                );
            }
            InvoiceEvent::InvoiceAdjusted { amount, .. } => {
                self.invoices
                    .change(tenant, &invoice_id, |row| {
                        row.balance += amount.paisa();
                        row.version = event.sequence;
                        row.updated_at = event.recorded_at;
                    })
                    .ok_or_else(|| missing("the document"))?;
            }
            InvoiceEvent::InvoiceCancelled { date, .. } => {
                let document = self
                    .invoices
                    .get(tenant, &invoice_id)
                    .map(|row| row.document.clone())
                    .ok_or_else(|| missing("the document"))?;
                let submitted: SubmittedInvoice = serde_json::from_value(document)?;
                // The cancelled lines leave the book in the month of the cancellation.
                let sign = if submitted.kind.decreases() { 1 } else { -1 };
                let first = i32::try_from(submitted.lines.len()).unwrap_or(i32::MAX);
                self.push_vat_lines(event, invoice_id, &submitted, sign, date, first);
                self.invoices
                    .change(tenant, &invoice_id, |row| {
                        row.status = "cancelled".to_owned();
                        row.version = event.sequence;
                        row.updated_at = event.recorded_at;
                    })
                    .ok_or_else(|| missing("the document"))?;
            }
            InvoiceEvent::InvoiceSettled { amount, .. } => {
                self.invoices
                    .change(tenant, &invoice_id, |row| {
                        row.settled += amount.paisa();
                        row.version = event.sequence;
                        row.updated_at = event.recorded_at;
                    })
                    .ok_or_else(|| missing("the document"))?;
            }
            InvoiceEvent::InvoiceSubmitted(submitted) => {
                // A credit note's lines count against its book; a debit note's add to it.
                let sign = if submitted.kind.decreases() { -1 } else { 1 };
                self.push_vat_lines(event, invoice_id, &submitted, sign, submitted.date, 0);
                let document = serde_json::to_value(&submitted)?;
                self.invoices
                    .change(tenant, &invoice_id, |row| {
                        row.status = "submitted".to_owned();
                        row.number = Some(submitted.number.clone());
                        row.value = submitted.value.paisa();
                        row.vat = submitted.vat.paisa();
                        row.total = submitted.total.paisa();
                        row.balance = submitted.balance.paisa();
                        row.vds = submitted.withholding.vds.paisa();
                        row.tds = submitted.withholding.tds.paisa();
                        row.retention = submitted.withholding.retention.paisa();
                        row.entry_id = Some(submitted.entry_id.as_uuid());
                        row.issued_at = Some(submitted.issued_at);
                        row.document = document;
                        row.version = event.sequence;
                        row.updated_at = event.recorded_at;
                    })
                    .ok_or_else(|| missing("the document"))?;
            }
        }
        Ok(())
    }
}

impl InvoicingRows {
    /// The lines of `submitted` in its VAT book, dated `date`, with amounts times `sign`,
    /// numbered from `first`.
    fn push_vat_lines(
        &mut self,
        event: &RecordedEvent,
        invoice_id: Uuid,
        submitted: &SubmittedInvoice,
        sign: i64,
        date: NaiveDate,
        first: i32,
    ) {
        let tenant = event.tenant_id.as_uuid();
        let book = if submitted.kind.is_sale() {
            "sales"
        } else {
            "purchase"
        };
        let party = if submitted.kind.is_sale() {
            &submitted.buyer
        } else {
            &submitted.seller
        };
        for (line_no, line) in (first..).zip(&submitted.lines) {
            self.vat_lines.push(
                tenant,
                (invoice_id, line_no),
                VatLineRow {
                    organization_id: submitted.organization_id.as_uuid(),
                    book: book.to_owned(),
                    date,
                    month: month_of(date),
                    number: submitted.number.clone(),
                    party_id: submitted.party_id.as_uuid(),
                    party_name: party.name.clone(),
                    party_bin: party.bin.as_ref().map(|bin| bin.digits().to_owned()),
                    description: line.line.description.clone(),
                    quantity: line.line.quantity.thousandths(),
                    unit_price: line.line.unit_price.paisa(),
                    vat_code: line.line.vat_code.to_string(),
                    vat_kind: line.vat_kind.as_str().to_owned(),
                    vat_rate: i32::try_from(line.vat_rate.hundredths()).unwrap_or(i32::MAX),
                    value: sign * line.value.paisa(),
                    vat: sign * line.vat.paisa(),
                    total: sign * line.total.paisa(),
                    vds: sign * line.vds.paisa(),
                    position: event.global_position.get(),
                },
            );
        }
    }

    fn apply_payment(&mut self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let tenant = event.tenant_id.as_uuid();
        let payment_id = stream_id(event)?;
        let PaymentEvent::PaymentRecorded(recorded) = event.decode::<PaymentEvent>()?;
        let payment = &recorded.payment;
        let deducted = |kind: DeductionKind| -> i64 {
            payment
                .deductions
                .iter()
                .filter(|d| d.kind == kind)
                .map(|d| d.amount.paisa())
                .sum()
        };
        self.payments.insert(
            tenant,
            payment_id,
            PaymentRow {
                organization_id: payment.organization_id.as_uuid(),
                direction: payment.direction.as_str().to_owned(),
                party_id: payment.party_id.as_uuid(),
                number: recorded.number.clone(),
                date: payment.date,
                account_id: payment.account_id.as_uuid(),
                amount: payment.amount.paisa(),
                allocated: payment.allocations.iter().map(|a| a.amount.paisa()).sum(),
                deducted: payment.deductions.iter().map(|d| d.amount.paisa()).sum(),
                advance: recorded.advance.paisa(),
                vds: deducted(DeductionKind::Vds),
                tds: deducted(DeductionKind::Tds),
                retention: deducted(DeductionKind::Retention),
                bank_charges: deducted(DeductionKind::BankCharges),
                vds_certificate: payment.vds_certificate.clone(),
                entry_id: recorded.entry_id.as_uuid(),
                document: serde_json::to_value(&recorded)?,
                version: event.sequence,
                created_at: event.recorded_at,
                position: event.global_position.get(),
            },
        );
        Ok(())
    }
}

impl InvoicingRows {
    fn apply_budgets(&mut self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let tenant = event.tenant_id.as_uuid();
        match event.decode::<BudgetEvent>()? {
            BudgetEvent::BudgetSet(line) => {
                self.budgets.insert(
                    tenant,
                    line.budget_id.as_uuid(),
                    BudgetRow {
                        organization_id: line.organization_id.as_uuid(),
                        project_id: line.project_id.as_uuid(),
                        site_id: line.site_id.map(|id| id.as_uuid()),
                        account_id: line.account_id.as_uuid(),
                        fiscal_year: line.fiscal_year,
                        amount: line.amount.paisa(),
                        action: line.action.as_str().to_owned(),
                        updated_at: event.recorded_at,
                    },
                );
            }
            BudgetEvent::BudgetRevised {
                budget_id,
                amount,
                action,
            } => {
                self.budgets
                    .change(tenant, &budget_id.as_uuid(), |row| {
                        row.amount = amount.paisa();
                        row.action = action.as_str().to_owned();
                        row.updated_at = event.recorded_at;
                    })
                    .ok_or_else(|| missing("the budget"))?;
            }
        }
        Ok(())
    }

    fn apply_budget_usage(&mut self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let tenant = event.tenant_id.as_uuid();
        let budget_id = stream_id(event)?;
        match event.decode::<UsageEvent>()? {
            UsageEvent::BudgetSpent { amount, .. } => {
                self.budget_usage.add(tenant, budget_id, |row| {
                    row.spent += amount.paisa();
                    row.postings += 1;
                });
            }
            UsageEvent::BudgetExceeded { .. } => {
                self.budget_usage
                    .add(tenant, budget_id, |row| row.exceeded += 1);
            }
        }
        Ok(())
    }
}

impl Projection for Invoicing {
    const NAME: &'static str = "invoicing";
    const VERSION: i32 = 1;
    const AGGREGATE_TYPES: &'static [&'static str] = &[
        Party::TYPE,
        Invoice::TYPE,
        Payment::TYPE,
        Budgets::TYPE,
        BudgetUsage::TYPE,
    ];

    type Rows = InvoicingRows;

    fn want(&self, rows: &mut InvoicingRows, event: &RecordedEvent) {
        let (tenant, Ok(id)) = (event.tenant_id.as_uuid(), stream_id(event)) else {
            return;
        };
        match event.aggregate_type.as_str() {
            Party::TYPE => rows.parties.want(tenant, &id),
            Payment::TYPE => rows.payments.want(tenant, &id),
            Invoice::TYPE => rows.invoices.want(tenant, &id),
            Budgets::TYPE => {
                if let Ok(BudgetEvent::BudgetRevised { budget_id, .. }) = event.decode() {
                    rows.budgets.want(tenant, &budget_id.as_uuid());
                }
            }
            _ => {}
        }
    }

    fn apply(
        &self,
        rows: &mut InvoicingRows,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        match event.aggregate_type.as_str() {
            Party::TYPE => rows.apply_party(event),
            Payment::TYPE => rows.apply_payment(event),
            Budgets::TYPE => rows.apply_budgets(event),
            BudgetUsage::TYPE => rows.apply_budget_usage(event),
            _ => rows.apply_invoice(event),
        }
    }
}
