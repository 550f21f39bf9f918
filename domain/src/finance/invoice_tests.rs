//! Invoices and bills: given the books, a party and the tax book, when a document is drafted and
//! submitted, then what it prices, withholds, numbers and posts (domain-finance.md scenarios 13,
//! 14, 17 and 22).

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use cqrs_es::Aggregate;

use super::tests::{Books, date, taka};
use super::*;
use crate::ids::{EntryId, InvoiceId, PartyId};
use crate::values::{Bin, Code, Name};

pub(super) fn code(text: &str) -> Code {
    Code::parse(text).unwrap()
}

pub(super) fn rate(text: &str) -> Rate {
    Rate::parse(text).unwrap()
}

/// The books with the standard tax rules adopted (the organization withholds) and one party.
pub(super) struct Desk {
    pub(super) books: Books,
    pub(super) tax: TaxBook,
    pub(super) party: Party,
}

impl Desk {
    pub(super) fn new(kind: PartyKind, withholding_entity: bool) -> Self {
        let books = Books::new();
        let ledger = books.ledger();
        let (vat_codes, tds_sections) = standard_tax_rules();
        let mut tax = TaxBook::default();
        for event in tax
            .decide(TaxCommand::Adopt {
                organization_id: books.org,
                withholding_entity: true,
                vat_codes,
                tds_sections,
                accounts: DocumentAccounts::from_standard_chart(&ledger).unwrap(),
            })
            .unwrap()
        {
            tax.apply(event);
        }
        let mut party = Party::default();
        for event in party
            .decide(PartyCommand::Register {
                party_id: PartyId::new(),
                organization_id: books.org,
                kind,
                details: PartyDetails {
                    name: Name::parse("Roads and Highways Department").unwrap(),
                    bin: Some(Bin::parse("000000001-0101").unwrap()),
                    tin: None,
                    address: Some("Sarak Bhaban, Dhaka".to_owned()),
                    withholding_entity,
                    terms_days: 30,
                    account_id: None,
                },
            })
            .unwrap()
        {
            party.apply(event);
        }
        Self { books, tax, party }
    }

    fn tax_with(&self, command: TaxCommand) -> Self {
        let mut tax = self.tax.clone();
        for event in tax.decide(command).unwrap() {
            tax.apply(event);
        }
        Self {
            books: self.books.clone(),
            tax,
            party: self.party.clone(),
        }
    }

    pub(super) fn context(&self, next_serial: u64) -> DocumentContext {
        DocumentContext {
            posting: self.books.context(),
            tax: Arc::new(self.tax.clone()),
            party: Arc::new(self.party.clone()),
            next_serial,
            original: None,
            entry: None,
        }
    }

    pub(super) fn line(&self, price: &str, vat_code: &str, account: &str) -> InvoiceLine {
        InvoiceLine {
            description: "Earthwork in embankment".to_owned(),
            quantity: Quantity::ONE,
            unit_price: taka(price),
            vat_code: code(vat_code),
            account_id: self.books.id(account),
            project_id: Some(self.books.project),
            site_id: Some(self.books.site),
        }
    }

    pub(super) fn draft(&self, kind: InvoiceKind, on: &str, lines: Vec<InvoiceLine>) -> NewInvoice {
        NewInvoice {
            invoice_id: InvoiceId::new(),
            organization_id: self.books.org,
            kind,
            party_id: self.party.id().unwrap(),
            date: date(on),
            due_date: date(on),
            pricing: Pricing::VatExclusive,
            reference: None,
            narration: None,
            lines,
            tds_section: None,
            retention: None,
            original: None,
            currency: None,
            exchange_rate: None,
        }
    }

    /// Drafts and submits `draft` as serial `serial`: the submitted event and the entry it posts.
    fn submit(
        &self,
        draft: NewInvoice,
        serial: u64,
    ) -> Result<(InvoiceEvent, JournalEvent), InvoiceError> {
        let context = self.context(serial);
        let mut invoice = Invoice::default();
        for event in invoice.decide(InvoiceCommand::Draft(draft), &context)? {
            invoice.apply(event);
        }
        let submit = InvoiceCommand::Submit {
            issued_at: Utc.with_ymd_and_hms(2025, 8, 10, 9, 30, 0).unwrap(),
            entry_id: EntryId::new(),
        };
        let mut events = invoice.decide(submit, &context)?;
        let submitted = events.pop().unwrap();
        let entry = journal_entry(&submitted, &context)?.unwrap();
        Ok((submitted, entry))
    }
}

/// (account code, debit, credit) of each line of a posted entry, in order.
pub(super) fn sides(books: &Books, entry: &JournalEvent) -> Vec<(String, Money, Money)> {
    let JournalEvent::JournalEntryPosted { lines, .. } = entry else {
        panic!("not a posting: {entry:?}");
    };
    lines
        .iter()
        .map(|line| {
            let code = books
                .chart
                .iter()
                .find(|a| a.account_id == line.account_id)
                .map(|a| a.code.to_string())
                .unwrap();
            (code, line.debit, line.credit)
        })
        .collect()
}

#[test]
fn a_sale_of_1_00_000_at_15_percent_is_1_15_000_receivable_and_takes_the_next_number() {
    let desk = Desk::new(PartyKind::Customer, false);
    let draft = desk.draft(
        InvoiceKind::SalesInvoice,
        "2025-08-10",
        vec![desk.line("100000", "STD", "4100")],
    );
    let (submitted, entry) = desk.submit(draft, 7).unwrap();
    let InvoiceEvent::InvoiceSubmitted(submitted) = &submitted else {
        panic!("{submitted:?}");
    };
    let SubmittedInvoice {
        number,
        value,
        vat,
        total,
        balance,
        seller,
        lines,
        ..
    } = submitted.as_ref();
    assert_eq!(number, "SI-2025-26-000007");
    assert_eq!(
        (*value, *vat, *total),
        (taka("100000"), taka("15000"), taka("115000"))
    );
    assert_eq!(*balance, taka("115000"));
    assert_eq!(lines[0].vat_rate, rate("15"));
    assert_eq!(seller.bin, Some(Bin::parse("002871821-0101").unwrap()));
    let zero = Money::ZERO;
    assert_eq!(
        sides(&desk.books, &entry),
        vec![
            ("1130".to_owned(), taka("115000"), zero),
            ("4100".to_owned(), zero, taka("100000")),
            ("2140".to_owned(), zero, taka("15000")),
        ]
    );
    let JournalEvent::JournalEntryPosted {
        lines,
        document_number,
        ..
    } = &entry
    else {
        unreachable!()
    };
    assert_eq!(document_number.as_deref(), Some("SI-2025-26-000007"));
    assert_eq!(lines[0].party, desk.party.line_party());
}

#[test]
fn a_vat_inclusive_bill_splits_base_and_vat_and_withholds_tds_on_the_base() {
    // Scenario 14: 86,79,600.00 with 15 % included; TDS on contracts, 5 % in the 50 lakh – 2
    // crore tier.
    let desk = Desk::new(PartyKind::Supplier, false);
    let mut draft = desk.draft(
        InvoiceKind::PurchaseBill,
        "2025-08-10",
        vec![desk.line("8679600", "STD", "5110")],
    );
    draft.pricing = Pricing::VatInclusive;
    draft.tds_section = Some(code("CONTRACT"));
    let (submitted, _) = desk.submit(draft, 1).unwrap();
    let InvoiceEvent::InvoiceSubmitted(submitted) = &submitted else {
        panic!("{submitted:?}");
    };
    let SubmittedInvoice {
        value,
        vat,
        withholding,
        number,
        ..
    } = submitted.as_ref();
    assert_eq!(number, "PB-2025-26-000001");
    assert_eq!(*value, taka("7547478.26"));
    assert_eq!(*vat, taka("1132121.74"));
    assert_eq!(withholding.tds_rate, Some(rate("5")));
    assert_eq!(withholding.tds, taka("377373.91"));
}

#[test]
fn a_subcontractor_bill_withholds_vds_tds_and_retention_and_owes_the_rest() {
    // Scenario 17: construction service S004.00, 10,00,000.00, the organization withholds.
    let desk = Desk::new(PartyKind::Supplier, false);
    let mut draft = desk.draft(
        InvoiceKind::PurchaseBill,
        "2025-08-10",
        vec![desk.line("1000000", "S004.00", "5120")],
    );
    draft.tds_section = Some(code("CONTRACT"));
    draft.retention = Some(rate("5"));
    let (submitted, entry) = desk.submit(draft, 1).unwrap();
    let InvoiceEvent::InvoiceSubmitted(submitted) = &submitted else {
        panic!("{submitted:?}");
    };
    let SubmittedInvoice {
        vat,
        withholding,
        balance,
        ..
    } = submitted.as_ref();
    assert_eq!(*vat, taka("75000"));
    assert_eq!(withholding.vds, taka("75000"));
    assert_eq!(withholding.tds, taka("30000"));
    assert_eq!(withholding.retention, taka("50000"));
    assert_eq!(*balance, taka("920000"));
    let zero = Money::ZERO;
    assert_eq!(
        sides(&desk.books, &entry),
        vec![
            ("2110".to_owned(), zero, taka("920000")),
            ("5120".to_owned(), taka("1000000"), zero),
            ("1150".to_owned(), taka("75000"), zero),
            ("2150".to_owned(), zero, taka("75000")),
            ("2160".to_owned(), zero, taka("30000")),
            ("2130".to_owned(), zero, taka("50000")),
        ]
    );
}

#[test]
fn an_organization_that_does_not_withhold_owes_the_whole_bill() {
    let desk =
        Desk::new(PartyKind::Supplier, false).tax_with(TaxCommand::SetWithholdingEntity(false));
    let mut draft = desk.draft(
        InvoiceKind::PurchaseBill,
        "2025-08-10",
        vec![desk.line("1000000", "S004.00", "5120")],
    );
    draft.tds_section = Some(code("CONTRACT"));
    let (submitted, _) = desk.submit(draft, 1).unwrap();
    let InvoiceEvent::InvoiceSubmitted(submitted) = submitted else {
        unreachable!()
    };
    assert_eq!(submitted.withholding, Withholding::default());
    assert_eq!(submitted.balance, taka("1075000"));
}

#[test]
fn a_rate_changed_from_a_date_prices_later_documents_only() {
    let desk =
        Desk::new(PartyKind::Customer, false).tax_with(TaxCommand::SetVatRate(VatCodeDefinition {
            code: code("S004.00"),
            description: "Construction firm (service code S004.00)".to_owned(),
            kind: VatKind::Reduced,
            effective_from: date("2025-09-01"),
            rate: VatRate {
                rate: rate("10"),
                vds_share: rate("100"),
            },
        }));
    let price = |on: &str| {
        let draft = desk.draft(
            InvoiceKind::SalesInvoice,
            on,
            vec![desk.line("1000", "S004.00", "4100")],
        );
        let (InvoiceEvent::InvoiceSubmitted(submitted), _) = desk.submit(draft, 1).unwrap() else {
            unreachable!()
        };
        submitted.vat
    };
    assert_eq!(price("2025-08-31"), taka("75"));
    assert_eq!(price("2025-09-01"), taka("100"));
}

#[test]
fn a_submitted_vat_month_refuses_documents_dated_in_it_until_an_amendment_opens_it() {
    let august = date("2025-08-01");
    let desk = Desk::new(PartyKind::Customer, false)
        .tax_with(TaxCommand::SubmitVatReturn { month: august });
    let draft = |on: &str| {
        desk.draft(
            InvoiceKind::SalesInvoice,
            on,
            vec![desk.line("1000", "STD", "4100")],
        )
    };
    assert_eq!(
        desk.submit(draft("2025-08-31"), 1).unwrap_err(),
        InvoiceError::Tax(TaxError::PeriodLocked { month: august })
    );
    assert!(desk.submit(draft("2025-09-01"), 1).is_ok());
    let amending = desk.tax_with(TaxCommand::OpenVatAmendment {
        month: august,
        reason: "A missed sale".to_owned(),
    });
    assert!(amending.submit(draft("2025-08-31"), 1).is_ok());
    let resubmitted = amending.tax_with(TaxCommand::SubmitVatReturn { month: august });
    assert_eq!(resubmitted.tax.vat_months()[&august].amendment, 1);
    assert!(resubmitted.submit(draft("2025-08-31"), 1).is_err());
}

#[test]
fn an_entry_on_output_input_or_withheld_vat_is_vat_affecting_and_others_are_not() {
    let desk = Desk::new(PartyKind::Customer, false);
    let on = |codes: &[&str]| {
        desk.tax
            .is_vat_affecting(codes.iter().map(|code| desk.books.id(code)))
    };
    for vat in ["2140", "1150", "1160", "2150"] {
        assert!(on(&["1110", vat]), "{vat}");
    }
    assert!(!on(&["1110", "5220", "1130", "2160"]));
    assert!(!TaxBook::default().is_vat_affecting([desk.books.id("2140")].into_iter()));
}

#[test]
fn drafts_are_refused_for_the_wrong_party_an_unknown_code_a_late_due_date_or_withholding_on_a_sale()
{
    let desk = Desk::new(PartyKind::Customer, false);
    let sale = || {
        desk.draft(
            InvoiceKind::SalesInvoice,
            "2025-08-10",
            vec![desk.line("1000", "STD", "4100")],
        )
    };
    let bill = NewInvoice {
        kind: InvoiceKind::PurchaseBill,
        ..sale()
    };
    assert!(matches!(
        desk.submit(bill, 1),
        Err(InvoiceError::PartyKind { .. })
    ));
    let mut unknown = sale();
    unknown.lines[0].vat_code = code("VAT-99");
    assert!(matches!(
        desk.submit(unknown, 1),
        Err(InvoiceError::VatCode { line: 0, .. })
    ));
    let mut late = sale();
    late.due_date = date("2025-08-09");
    assert_eq!(
        desk.submit(late, 1).unwrap_err(),
        InvoiceError::DueBeforeDate
    );
    let mut retained = sale();
    retained.retention = Some(rate("5"));
    assert_eq!(
        desk.submit(retained, 1).unwrap_err(),
        InvoiceError::WithholdingOnSale
    );
    let mut free = sale();
    free.lines[0].unit_price = Money::ZERO;
    assert_eq!(
        desk.submit(free, 1).unwrap_err(),
        InvoiceError::LineAmount { line: 0 }
    );
}

#[test]
fn the_ledger_rules_refuse_a_submit_as_they_refuse_an_entry() {
    let desk = Desk::new(PartyKind::Customer, false);
    let mut draft = desk.draft(
        InvoiceKind::SalesInvoice,
        "2025-08-10",
        vec![desk.line("1000", "STD", "4100")],
    );
    draft.lines[0].project_id = None;
    draft.lines[0].site_id = None;
    assert!(matches!(
        desk.submit(draft, 1),
        Err(InvoiceError::Posting(JournalError::ProjectRequired { .. }))
    ));
    let outside = desk.draft(
        InvoiceKind::SalesInvoice,
        "2027-01-10",
        vec![desk.line("1000", "STD", "4100")],
    );
    assert!(matches!(
        desk.submit(outside, 1),
        Err(InvoiceError::Posting(JournalError::Date(_)))
    ));
}

#[test]
fn a_document_is_submitted_once() {
    let desk = Desk::new(PartyKind::Customer, false);
    let context = desk.context(1);
    let mut invoice = Invoice::default();
    let draft = desk.draft(
        InvoiceKind::SalesInvoice,
        "2025-08-10",
        vec![desk.line("1000", "STD", "4100")],
    );
    for event in invoice
        .decide(InvoiceCommand::Draft(draft.clone()), &context)
        .unwrap()
    {
        invoice.apply(event);
    }
    assert_eq!(
        invoice
            .decide(InvoiceCommand::Draft(draft), &context)
            .unwrap_err(),
        InvoiceError::AlreadyExists
    );
    let submit = InvoiceCommand::Submit {
        issued_at: Utc::now(),
        entry_id: EntryId::new(),
    };
    for event in invoice.decide(submit.clone(), &context).unwrap() {
        invoice.apply(event);
    }
    assert_eq!(invoice.number(), Some("SI-2025-26-000001"));
    assert_eq!(
        invoice.decide(submit, &context).unwrap_err(),
        InvoiceError::AlreadySubmitted
    );
}

#[test]
fn tds_tiers_must_rise_and_end_open_and_exempt_codes_carry_no_rate() {
    let desk = Desk::new(PartyKind::Customer, false);
    let tiers = |tiers: Vec<TdsTier>| {
        desk.tax.decide(TaxCommand::SetTdsTiers(TdsDefinition {
            section: code("CONTRACT"),
            description: "Contractors".to_owned(),
            effective_from: date("2026-07-01"),
            tiers,
        }))
    };
    let tier = |up_to: Option<&str>, r: &str| TdsTier {
        up_to: up_to.map(taka),
        rate: rate(r),
    };
    assert!(tiers(vec![tier(Some("100"), "1"), tier(None, "2")]).is_ok());
    assert_eq!(
        tiers(vec![tier(Some("100"), "1"), tier(Some("50"), "2")]).unwrap_err(),
        TaxError::TiersOutOfOrder
    );
    assert_eq!(
        tiers(vec![tier(None, "1"), tier(Some("50"), "2")]).unwrap_err(),
        TaxError::TiersOutOfOrder
    );
    assert_eq!(tiers(vec![]).unwrap_err(), TaxError::TiersOutOfOrder);
    let exempt_with_rate = desk.tax.decide(TaxCommand::SetVatRate(VatCodeDefinition {
        code: code("EXEMPT"),
        description: "Exempt".to_owned(),
        kind: VatKind::Exempt,
        effective_from: date("2026-07-01"),
        rate: VatRate {
            rate: rate("5"),
            vds_share: Rate::ZERO,
        },
    }));
    assert!(matches!(exempt_with_rate, Err(TaxError::RateOfKind { .. })));
}

#[test]
fn the_standard_rules_are_whole() {
    let (vat_codes, tds) = standard_tax_rules();
    assert_eq!(vat_codes.len(), 7);
    assert_eq!(tds.len(), 2);
    let books = Books::new();
    assert!(DocumentAccounts::from_standard_chart(&books.ledger()).is_some());
}

/// Submits a sale of `price` under `vat_code` as serial 1 and returns the document's state.
fn submitted_sale(desk: &Desk, price: &str, vat_code: &str) -> (InvoiceId, Invoice) {
    let draft = desk.draft(
        InvoiceKind::SalesInvoice,
        "2025-08-10",
        vec![desk.line(price, vat_code, "4100")],
    );
    let id = draft.invoice_id;
    let context = desk.context(1);
    let mut invoice = Invoice::default();
    for event in invoice
        .decide(InvoiceCommand::Draft(draft), &context)
        .unwrap()
    {
        invoice.apply(event);
    }
    let submit = InvoiceCommand::Submit {
        issued_at: Utc::now(),
        entry_id: EntryId::new(),
    };
    for event in invoice.decide(submit, &context).unwrap() {
        invoice.apply(event);
    }
    (id, invoice)
}

pub(super) fn receipt(desk: &Desk, amount: &str, allocations: Vec<Allocation>) -> NewPayment {
    NewPayment {
        payment_id: crate::ids::PaymentId::new(),
        organization_id: desk.books.org,
        direction: PaymentDirection::Receipt,
        party_id: desk.party.id().unwrap(),
        date: date("2025-08-20"),
        account_id: desk.books.id("1121"),
        amount: taka(amount),
        reference: None,
        narration: None,
        allocations,
        deductions: Vec::new(),
        retention_release: None,
        vds_certificate: None,
        project_id: Some(desk.books.project),
        site_id: Some(desk.books.site),
        currency: None,
        exchange_rate: None,
    }
}

pub(super) fn pay(
    desk: &Desk,
    invoices: &[(InvoiceId, Invoice)],
    payment: NewPayment,
) -> Result<(RecordedPayment, JournalEvent), PaymentError> {
    let context = PaymentContext {
        posting: desk.books.context(),
        tax: Arc::new(desk.tax.clone()),
        party: Arc::new(desk.party.clone()),
        invoices: invoices
            .iter()
            .map(|(id, invoice)| (*id, Arc::new(invoice.clone())))
            .collect(),
        next_serial: 1,
    };
    let mut events = Payment::default().decide(
        PaymentCommand::Record {
            payment: Box::new(payment),
            entry_id: EntryId::new(),
        },
        &context,
    )?;
    let event = events.pop().unwrap();
    let entry = payment_entry(&event, &context)?;
    let PaymentEvent::PaymentRecorded(recorded) = event else {
        panic!("not a recorded payment: {event:?}");
    };
    Ok((*recorded, entry.unwrap()))
}

#[test]
fn a_receipt_of_1_20_000_settles_1_15_000_and_holds_5_000_as_an_advance() {
    // Scenario 15.
    let desk = Desk::new(PartyKind::Customer, false);
    let (id, invoice) = submitted_sale(&desk, "100000", "STD");
    let invoices = [(id, invoice)];
    let allocate = |amount: &str| Allocation {
        invoice_id: id,
        amount: taka(amount),
    };
    let (recorded, entry) = pay(
        &desk,
        &invoices,
        receipt(&desk, "120000", vec![allocate("115000")]),
    )
    .unwrap();
    assert_eq!(recorded.number, "RC-2025-26-000001");
    assert_eq!(recorded.advance, taka("5000"));
    let zero = Money::ZERO;
    assert_eq!(
        sides(&desk.books, &entry),
        vec![
            ("1121".to_owned(), taka("120000"), zero),
            ("1130".to_owned(), zero, taka("115000")),
            ("2170".to_owned(), zero, taka("5000")),
        ]
    );
    assert_eq!(
        pay(
            &desk,
            &invoices,
            receipt(&desk, "120000", vec![allocate("120000")])
        )
        .unwrap_err(),
        PaymentError::AboveOutstanding {
            index: 0,
            amount: taka("120000"),
            outstanding: taka("115000"),
        }
    );
    // Once settled, nothing is outstanding.
    let mut settled = invoices[0].1.clone();
    settled.apply(InvoiceEvent::InvoiceSettled {
        payment_id: recorded.payment.payment_id,
        amount: taka("115000"),
        date: date("2025-08-20"),
        foreign_amount: None,
    });
    assert_eq!(settled.outstanding(), Some(Money::ZERO));
}

#[test]
fn a_withholding_customer_pays_less_cash_and_the_deductions_settle_the_rest() {
    // A construction service of 1,00,000.00 at 7.5 %: the customer deducts the VAT (VDS) and 3 %
    // TDS and pays the rest.
    let desk = Desk::new(PartyKind::Customer, true);
    let (id, invoice) = submitted_sale(&desk, "100000", "S004.00");
    assert_eq!(invoice.outstanding(), Some(taka("107500")));
    let mut payment = receipt(
        &desk,
        "97000",
        vec![Allocation {
            invoice_id: id,
            amount: taka("107500"),
        }],
    );
    payment.deductions = vec![
        Deduction {
            kind: DeductionKind::Vds,
            amount: taka("7500"),
        },
        Deduction {
            kind: DeductionKind::Tds,
            amount: taka("3000"),
        },
    ];
    payment.vds_certificate = Some("M66-2025-0042".to_owned());
    let (recorded, entry) = pay(&desk, &[(id, invoice)], payment).unwrap();
    assert_eq!(recorded.advance, Money::ZERO);
    let zero = Money::ZERO;
    assert_eq!(
        sides(&desk.books, &entry),
        vec![
            ("1121".to_owned(), taka("97000"), zero),
            ("1160".to_owned(), taka("7500"), zero),
            ("1170".to_owned(), taka("3000"), zero),
            ("1130".to_owned(), zero, taka("107500")),
        ]
    );
}

#[test]
fn payments_refuse_another_partys_document_a_draft_and_more_allocated_than_received() {
    let desk = Desk::new(PartyKind::Customer, false);
    let (id, invoice) = submitted_sale(&desk, "1000", "STD");
    let invoices = [(id, invoice)];
    let allocate = |amount: &str| Allocation {
        invoice_id: id,
        amount: taka(amount),
    };
    assert_eq!(
        pay(
            &desk,
            &invoices,
            receipt(&desk, "100", vec![allocate("1150")])
        )
        .unwrap_err(),
        PaymentError::AllocatedAboveTotal {
            allocated: taka("1150"),
            total: taka("100"),
        }
    );
    assert!(matches!(
        pay(
            &desk,
            &invoices,
            receipt(&desk, "2000", vec![allocate("100"), allocate("100")])
        ),
        Err(PaymentError::InvoiceTwice { index: 1 })
    ));
    let mut to_supplier = receipt(&desk, "100", Vec::new());
    to_supplier.direction = PaymentDirection::Payment;
    assert!(matches!(
        pay(&desk, &invoices, to_supplier),
        Err(PaymentError::PartyKind { .. })
    ));
    let unknown = Allocation {
        invoice_id: InvoiceId::new(),
        amount: taka("1"),
    };
    assert!(matches!(
        pay(&desk, &invoices, receipt(&desk, "100", vec![unknown])),
        Err(PaymentError::InvoiceNotFound { index: 0, .. })
    ));
    assert_eq!(
        pay(&desk, &invoices, receipt(&desk, "0", Vec::new())).unwrap_err(),
        PaymentError::NothingMoved
    );
}

/// Applies `events` to `invoice`.
/// Drafts and submits `draft` under `context`, returning the state and the
/// submitted document.
pub(super) fn submitted(
    draft: NewInvoice,
    context: &DocumentContext,
) -> Result<(Invoice, Box<SubmittedInvoice>, JournalEvent), InvoiceError> {
    let drafted = applied(
        Invoice::default(),
        Invoice::default().decide(InvoiceCommand::Draft(draft), context)?,
    );
    let events = drafted.decide(
        InvoiceCommand::Submit {
            issued_at: Utc::now(),
            entry_id: EntryId::new(),
        },
        context,
    )?;
    let entry = journal_entry(&events[0], context)?.unwrap();
    let InvoiceEvent::InvoiceSubmitted(document) = events[0].clone() else {
        panic!("not submitted: {events:?}");
    };
    Ok((applied(drafted, events), document, entry))
}

pub(super) fn applied(mut invoice: Invoice, events: Vec<InvoiceEvent>) -> Invoice {
    for event in events {
        invoice.apply(event);
    }
    invoice
}

#[test]
fn a_credit_note_takes_no_more_than_is_left_and_names_the_buyer_above_tk_5000() {
    // Scenario 16.
    let mut desk = Desk::new(PartyKind::Customer, false);
    let (original_id, original) = submitted_sale(&desk, "100000", "STD");
    let note = |desk: &Desk, price: &str| {
        let mut note = desk.draft(
            InvoiceKind::SalesCreditNote,
            "2025-08-25",
            vec![desk.line(price, "STD", "4100")],
        );
        note.original = Some(original_id);
        note
    };
    let context = DocumentContext {
        original: Some(Arc::new(original.clone())),
        ..desk.context(1)
    };
    let submit_note = |draft: NewInvoice, context: &DocumentContext| {
        let drafted = applied(
            Invoice::default(),
            Invoice::default().decide(InvoiceCommand::Draft(draft), context)?,
        );
        let submit = InvoiceCommand::Submit {
            issued_at: Utc::now(),
            entry_id: EntryId::new(),
        };
        drafted.decide(submit, context)
    };
    // 1,00,001.00 + VAT is more than the 1,15,000.00 left.
    assert!(matches!(
        submit_note(note(&desk, "100001"), &context),
        Err(InvoiceError::NoteAboveOutstanding { .. })
    ));
    let events = submit_note(note(&desk, "40000"), &context).unwrap();
    let InvoiceEvent::InvoiceSubmitted(submitted) = &events[0] else {
        unreachable!()
    };
    assert_eq!(submitted.number, "SCN-2025-26-000001");
    assert_eq!(submitted.total, taka("46000"));
    assert_eq!(
        submitted.original_number.as_deref(),
        Some("SI-2025-26-000001")
    );
    // The buyer has a BIN and an address: eligible though the VAT is 6,000.00.
    assert_eq!(submitted.decreasing_adjustment_eligible, Some(true));
    let entry = journal_entry(&events[0], &context).unwrap().unwrap();
    let zero = Money::ZERO;
    assert_eq!(
        sides(&desk.books, &entry),
        vec![
            ("1130".to_owned(), zero, taka("46000")),
            ("4100".to_owned(), taka("40000"), zero),
            ("2140".to_owned(), taka("6000"), zero),
        ]
    );
    // Without the buyer's BIN, a VAT effect above Tk 5,000 is flagged.
    let mut details = desk.party.details().unwrap().clone();
    details.bin = None;
    desk.party.apply(PartyEvent::PartyUpdated {
        party_id: desk.party.id().unwrap(),
        details,
    });
    let context = DocumentContext {
        original: Some(Arc::new(original)),
        ..desk.context(2)
    };
    let events = submit_note(note(&desk, "40000"), &context).unwrap();
    let InvoiceEvent::InvoiceSubmitted(submitted) = &events[0] else {
        unreachable!()
    };
    assert_eq!(submitted.decreasing_adjustment_eligible, Some(false));
    let small = submit_note(note(&desk, "1000"), &context).unwrap();
    let InvoiceEvent::InvoiceSubmitted(submitted) = &small[0] else {
        unreachable!()
    };
    assert_eq!(submitted.decreasing_adjustment_eligible, Some(true));
}

#[test]
fn an_invoice_is_cancelled_only_while_nothing_settled_or_changed_it() {
    let desk = Desk::new(PartyKind::Customer, false);
    let (id, invoice) = submitted_sale(&desk, "1000", "STD");
    let cancel = InvoiceCommand::Cancel {
        date: date("2025-08-31"),
        reason: "Issued twice".to_owned(),
        reversal_entry_id: EntryId::new(),
    };
    // The entry it posted, as the journal holds it.
    let draft = invoice.draft().unwrap().clone();
    let mut posted = Invoice::default();
    let context = desk.context(1);
    posted = applied(
        posted.clone(),
        posted
            .decide(InvoiceCommand::Draft(draft), &context)
            .unwrap(),
    );
    let submitted = posted
        .decide(
            InvoiceCommand::Submit {
                issued_at: Utc::now(),
                entry_id: invoice.entry_id().unwrap(),
            },
            &context,
        )
        .unwrap();
    let journal = journal_entry(&submitted[0], &context).unwrap().unwrap();
    let mut entry = JournalEntry::default();
    entry.apply(journal);
    let context = DocumentContext {
        entry: Some(Arc::new(entry)),
        ..desk.context(1)
    };
    let events = invoice.decide(cancel.clone(), &context).unwrap();
    let reversal = journal_entry(&events[0], &context).unwrap().unwrap();
    assert!(matches!(
        reversal,
        JournalEvent::JournalEntryReversed { .. }
    ));
    let cancelled = applied(invoice.clone(), events);
    assert_eq!(cancelled.outstanding(), Some(Money::ZERO));
    assert_eq!(
        cancelled.decide(cancel.clone(), &context).unwrap_err(),
        InvoiceError::Cancelled
    );
    // Settled in part: only notes change it.
    let paid = applied(
        invoice,
        vec![InvoiceEvent::InvoiceSettled {
            payment_id: crate::ids::PaymentId::new(),
            amount: taka("1"),
            date: date("2025-08-20"),
            foreign_amount: None,
        }],
    );
    assert!(matches!(
        paid.decide(cancel, &context),
        Err(InvoiceError::SettledCannotCancel { .. })
    ));
    let _ = id;
}

#[test]
fn released_retention_settles_the_partys_retention_account_beside_its_documents() {
    let desk = Desk::new(PartyKind::Customer, false);
    let (id, invoice) = submitted_sale(&desk, "100000", "STD");
    let invoices = [(id, invoice)];
    let mut released = receipt(
        &desk,
        "125000",
        vec![Allocation {
            invoice_id: id,
            amount: taka("115000"),
        }],
    );
    released.retention_release = Some(taka("10000"));
    let (recorded, entry) = pay(&desk, &invoices, released.clone()).unwrap();
    assert_eq!(recorded.advance, Money::ZERO);
    assert_eq!(recorded.exchange_difference, Money::ZERO);
    let zero = Money::ZERO;
    assert_eq!(
        sides(&desk.books, &entry),
        vec![
            ("1121".to_owned(), taka("125000"), zero),
            ("1130".to_owned(), zero, taka("115000")),
            ("1140".to_owned(), zero, taka("10000")),
        ]
    );
    // The allocations and the release together never exceed the money.
    released.amount = taka("124999.99");
    assert!(matches!(
        pay(&desk, &invoices, released.clone()).unwrap_err(),
        PaymentError::AllocatedAboveTotal { .. }
    ));
    released.retention_release = Some(Money::ZERO);
    assert_eq!(
        pay(&desk, &invoices, released).unwrap_err(),
        PaymentError::ZeroRetentionRelease
    );
}

#[test]
fn a_bills_vds_certificate_is_recorded_once_and_only_where_vat_was_withheld() {
    let desk = Desk::new(PartyKind::Supplier, false);
    let bill = |vat_code: &str| {
        let draft = desk.draft(
            InvoiceKind::PurchaseBill,
            "2025-08-10",
            vec![desk.line("1000000", vat_code, "5120")],
        );
        submitted(draft, &desk.context(1)).unwrap().0
    };
    let certificate = |number: &str, on: &str| InvoiceCommand::RecordVdsCertificate {
        organization_id: desk.books.org,
        certificate: VdsCertificate {
            number: number.to_owned(),
            date: date(on),
        },
    };
    let context = desk.context(1);
    // S004.00 withholds all of its 7.5 % VAT.
    let withheld = bill("S004.00");
    assert_eq!(
        withheld
            .decide(certificate("M66-OUT-7", "2025-08-09"), &context)
            .unwrap_err(),
        InvoiceError::Certificate(CertificateError::BeforeDeduction(date("2025-08-10")))
    );
    assert_eq!(
        withheld
            .decide(certificate(" M66", "2025-08-12"), &context)
            .unwrap_err(),
        InvoiceError::Certificate(CertificateError::Number)
    );
    let issued = applied(
        withheld.clone(),
        withheld
            .decide(certificate("M66-OUT-7", "2025-08-12"), &context)
            .unwrap(),
    );
    assert_eq!(issued.certificate().unwrap().number, "M66-OUT-7");
    assert!(
        issued
            .decide(certificate("M66-OUT-7", "2025-08-12"), &context)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        issued
            .decide(certificate("M66-OUT-8", "2025-08-12"), &context)
            .unwrap_err(),
        InvoiceError::Certificate(CertificateError::Recorded("M66-OUT-7".to_owned()))
    );
    // The standard rate withholds nothing; another organization's bill is not found.
    assert_eq!(
        bill("STD")
            .decide(certificate("M66-OUT-9", "2025-08-12"), &context)
            .unwrap_err(),
        InvoiceError::Certificate(CertificateError::NoVdsDeducted)
    );
    let elsewhere = InvoiceCommand::RecordVdsCertificate {
        organization_id: crate::ids::OrganizationId::new(),
        certificate: VdsCertificate {
            number: "M66-OUT-7".to_owned(),
            date: date("2025-08-12"),
        },
    };
    assert_eq!(
        withheld.decide(elsewhere, &context).unwrap_err(),
        InvoiceError::NotFound
    );
}

#[test]
fn a_receipts_vds_certificate_is_recorded_with_it_or_later_and_only_when_vat_was_deducted() {
    let desk = Desk::new(PartyKind::Customer, true);
    let (id, invoice) = submitted_sale(&desk, "100000", "S004.00");
    let allocation = Allocation {
        invoice_id: id,
        amount: taka("107500"),
    };
    let mut money = receipt(&desk, "100000", vec![allocation]);
    money.deductions = vec![Deduction {
        kind: DeductionKind::Vds,
        amount: taka("7500"),
    }];
    let (recorded, _) = pay(&desk, &[(id, invoice.clone())], money).unwrap();
    let mut payment = Payment::default();
    payment.apply(PaymentEvent::PaymentRecorded(Box::new(recorded.clone())));
    let record = |number: &str| PaymentCommand::RecordVdsCertificate {
        organization_id: desk.books.org,
        certificate: VdsCertificate {
            number: number.to_owned(),
            date: date("2025-09-01"),
        },
    };
    let context = PaymentContext::default();
    let events = payment.decide(record("M66-IN-1"), &context).unwrap();
    assert_eq!(events.len(), 1);
    payment.apply(events[0].clone());
    assert_eq!(payment.certificate().unwrap().number, "M66-IN-1");
    assert!(
        payment
            .decide(record("M66-IN-1"), &context)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        payment.decide(record("M66-IN-2"), &context).unwrap_err(),
        PaymentError::Certificate(CertificateError::Recorded("M66-IN-1".to_owned()))
    );
    // A receipt that deducted no VAT takes no certificate.
    let plain = receipt(&desk, "100", Vec::new());
    let (recorded, _) = pay(&desk, &[], plain).unwrap();
    let mut payment = Payment::default();
    payment.apply(PaymentEvent::PaymentRecorded(Box::new(recorded)));
    assert_eq!(
        payment.decide(record("M66-IN-3"), &context).unwrap_err(),
        PaymentError::Certificate(CertificateError::NoVdsDeducted)
    );
}

#[test]
fn a_shortfall_within_the_allowance_is_written_off_to_the_round_off_account() {
    // 1,14,999.60 received for 1,15,000.00: the 0.40 is written off (Dr round-off 5270).
    let mut desk = Desk::new(PartyKind::Customer, false);
    let (id, invoice) = submitted_sale(&desk, "100000", "STD");
    let invoices = [(id, invoice)];
    let mut money = receipt(
        &desk,
        "114999.60",
        vec![Allocation {
            invoice_id: id,
            amount: taka("115000"),
        }],
    );
    money.deductions = vec![Deduction {
        kind: DeductionKind::RoundOff,
        amount: taka("0.40"),
    }];
    assert_eq!(
        pay(&desk, &invoices, money.clone()).unwrap_err(),
        PaymentError::Posting(JournalError::NoRoundOffAccount)
    );
    desk.books = desk
        .books
        .with(LedgerEvent::LedgerConfigured(LedgerSettings {
            require_site: false,
            round_off_account_id: Some(desk.books.id("5270")),
            round_off_allowance: taka("0.50"),
        }));
    let (_, entry) = pay(&desk, &invoices, money.clone()).unwrap();
    let zero = Money::ZERO;
    assert_eq!(
        sides(&desk.books, &entry),
        vec![
            ("1121".to_owned(), taka("114999.60"), zero),
            ("5270".to_owned(), taka("0.40"), zero),
            ("1130".to_owned(), zero, taka("115000")),
        ]
    );
    // It writes off a shortfall only, never holds an advance.
    let mut lone = receipt(&desk, "0", Vec::new());
    lone.deductions = money.deductions.clone();
    assert_eq!(
        pay(&desk, &invoices, lone).unwrap_err(),
        PaymentError::RoundOffWithAdvance {
            advance: taka("0.40")
        }
    );
    // Above the allowance it is refused.
    money.amount = taka("114999.40");
    money.deductions[0].amount = taka("0.60");
    assert_eq!(
        pay(&desk, &invoices, money).unwrap_err(),
        PaymentError::Posting(JournalError::AboveRoundOffAllowance {
            difference: taka("0.60"),
            allowance: taka("0.50"),
        })
    );
}
