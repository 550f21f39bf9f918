//! Documents and payments in a foreign currency: given the books and a dollar document, when it
//! withholds, takes a note, or is settled with deductions or a later advance, then what each
//! carries in both currencies and the entry it posts (domain-finance.md scenario 19 and beyond).

use std::sync::Arc;

use cqrs_es::Aggregate;

use super::invoice_tests::{Desk, applied, code, pay, rate, receipt, sides, submitted};
use super::tests::{date, taka};
use super::*;
use crate::ids::{EntryId, InvoiceId, PaymentId};
use crate::values::CurrencyCode;

fn usd() -> CurrencyCode {
    CurrencyCode::parse("USD").unwrap()
}

fn at(text: &str) -> ExchangeRate {
    ExchangeRate::parse(text).unwrap()
}

fn in_dollars(mut draft: NewInvoice, rate: &str) -> NewInvoice {
    draft.currency = Some(usd());
    draft.exchange_rate = Some(at(rate));
    draft
}

#[test]
fn a_dollar_bill_withholds_in_dollars_and_posts_each_withheld_amount_at_its_rate() {
    // A subcontractor's bill of USD 10,000.00 under S004.00 at 120.00, with CONTRACT TDS (3 %
    // on the 12,00,000.00 it is worth) and 5 % retention: 1,550.00 withheld, 9,200.00 owed.
    let desk = Desk::new(PartyKind::Supplier, false);
    let mut draft = in_dollars(
        desk.draft(
            InvoiceKind::PurchaseBill,
            "2025-08-10",
            vec![desk.line("10000", "S004.00", "5120")],
        ),
        "120",
    );
    draft.tds_section = Some(code("CONTRACT"));
    draft.retention = Some(rate("5"));
    let (bill, document, entry) = submitted(draft, &desk.context(1)).unwrap();
    let foreign = document.foreign.as_ref().unwrap();
    assert_eq!(foreign.total, taka("10750"));
    assert_eq!(foreign.withheld, taka("1550"));
    assert_eq!(foreign.balance(), taka("9200"));
    assert_eq!(document.withholding.vds, taka("90000"));
    assert_eq!(document.withholding.tds, taka("36000"));
    assert_eq!(document.withholding.retention, taka("60000"));
    assert_eq!(document.balance, taka("1104000"));
    assert_eq!(bill.outstanding(), Some(taka("1104000")));
    assert_eq!(bill.foreign_outstanding(), Some((&usd(), taka("9200"))));
    let zero = Money::ZERO;
    assert_eq!(
        sides(&desk.books, &entry),
        vec![
            ("2110".to_owned(), zero, taka("1104000")),
            ("5120".to_owned(), taka("1200000"), zero),
            ("1150".to_owned(), taka("90000"), zero),
            ("2150".to_owned(), zero, taka("90000")),
            ("2160".to_owned(), zero, taka("36000")),
            ("2130".to_owned(), zero, taka("60000")),
        ]
    );
}

#[test]
fn a_note_of_a_dollar_invoice_is_in_dollars_at_its_rate_and_a_full_credit_leaves_nothing_open() {
    // USD 1.00 at 100.005 carries 100.01; a credit note of two lines of 0.50 converts to 50.00
    // each, so crediting all of it moves the 100.01 carried and rounds its first line's account
    // by 0.01.
    let desk = Desk::new(PartyKind::Customer, false);
    let sale = in_dollars(
        desk.draft(
            InvoiceKind::SalesInvoice,
            "2025-08-10",
            vec![desk.line("1", "EXEMPT", "4100")],
        ),
        "100.005",
    );
    let sale_id = sale.invoice_id;
    let (invoice, document, _) = submitted(sale, &desk.context(1)).unwrap();
    assert_eq!(document.balance, taka("100.01"));
    let context = DocumentContext {
        original: Some(Arc::new(invoice.clone())),
        ..desk.context(1)
    };
    let note = |prices: &[&str]| {
        let mut note = desk.draft(
            InvoiceKind::SalesCreditNote,
            "2025-08-25",
            prices
                .iter()
                .map(|price| desk.line(price, "EXEMPT", "4100"))
                .collect(),
        );
        note.original = Some(sale_id);
        note
    };
    // Drafted without a currency, it takes the invoice's.
    let (_, partial, _) = submitted(note(&["0.25"]), &context).unwrap();
    assert_eq!(partial.foreign.as_ref().unwrap().currency, usd());
    assert_eq!(partial.foreign.as_ref().unwrap().rate, at("100.005"));
    // 0.25 of the 1.00 left carries a quarter of 100.01.
    assert_eq!(partial.balance, taka("25.00"));
    // More than the dollar left is refused in dollars.
    assert_eq!(
        submitted(note(&["0.50", "0.51"]), &context).unwrap_err(),
        InvoiceError::NoteAboveOutstanding {
            note: taka("1.01"),
            outstanding: taka("1.00"),
        }
    );
    // Another currency or rate is refused, naming the invoice's.
    let mut other_rate = note(&["0.50"]);
    other_rate.currency = Some(usd());
    other_rate.exchange_rate = Some(at("101"));
    assert_eq!(
        submitted(other_rate, &context).unwrap_err(),
        InvoiceError::NoteCurrency {
            expected: "USD at 100.005000".to_owned(),
        }
    );
    let (_, full, entry) = submitted(note(&["0.50", "0.50"]), &context).unwrap();
    assert_eq!(full.total, taka("100.00"));
    assert_eq!(full.balance, taka("100.01"));
    let zero = Money::ZERO;
    assert_eq!(
        sides(&desk.books, &entry),
        vec![
            ("1130".to_owned(), zero, taka("100.01")),
            ("4100".to_owned(), taka("50.00"), zero),
            ("4100".to_owned(), taka("50.00"), zero),
            ("4100".to_owned(), taka("0.01"), zero),
        ]
    );
    let credited = applied(invoice, vec![original_adjustment(&full).unwrap()]);
    assert_eq!(credited.outstanding(), Some(Money::ZERO));
    assert_eq!(credited.foreign_outstanding(), Some((&usd(), Money::ZERO)));
}

#[test]
fn a_note_of_a_taka_invoice_in_dollars_is_refused() {
    let desk = Desk::new(PartyKind::Customer, false);
    let sale = desk.draft(
        InvoiceKind::SalesInvoice,
        "2025-08-10",
        vec![desk.line("1000", "STD", "4100")],
    );
    let sale_id = sale.invoice_id;
    let (invoice, _, _) = submitted(sale, &desk.context(1)).unwrap();
    let mut note = in_dollars(
        desk.draft(
            InvoiceKind::SalesCreditNote,
            "2025-08-25",
            vec![desk.line("1", "STD", "4100")],
        ),
        "120",
    );
    note.original = Some(sale_id);
    let context = DocumentContext {
        original: Some(Arc::new(invoice)),
        ..desk.context(1)
    };
    assert_eq!(
        submitted(note, &context).unwrap_err(),
        InvoiceError::NoteCurrency {
            expected: "BDT".to_owned(),
        }
    );
}

/// A dollar sale of `price` under `vat_code` at `rate`, submitted.
fn dollar_sale(desk: &Desk, price: &str, vat_code: &str, rate: &str) -> (InvoiceId, Invoice) {
    let draft = in_dollars(
        desk.draft(
            InvoiceKind::SalesInvoice,
            "2025-08-10",
            vec![desk.line(price, vat_code, "4100")],
        ),
        rate,
    );
    let id = draft.invoice_id;
    let (invoice, _, _) = submitted(draft, &desk.context(1)).unwrap();
    (id, invoice)
}

#[test]
fn a_withholding_customer_deducts_vds_from_a_dollar_receipt_at_the_receipts_rate() {
    // USD 1,000.00 of construction at 7.5 % invoiced at 120.00 (1,29,000.00); the customer pays
    // 1,000.00 and deducts the 75.00 VAT at 122.50: bank 1,22,500.00, VDS 9,187.50, gain 2,687.50.
    let desk = Desk::new(PartyKind::Customer, true);
    let (id, invoice) = dollar_sale(&desk, "1000", "S004.00", "120");
    let mut money = receipt(
        &desk,
        "1000",
        vec![Allocation {
            invoice_id: id,
            amount: taka("1075"),
        }],
    );
    money.currency = Some(usd());
    money.exchange_rate = Some(at("122.50"));
    money.deductions = vec![Deduction {
        kind: DeductionKind::Vds,
        amount: taka("75"),
    }];
    let (recorded, entry) = pay(&desk, &[(id, invoice.clone())], money.clone()).unwrap();
    assert_eq!(recorded.exchange_difference, taka("2687.50"));
    let zero = Money::ZERO;
    assert_eq!(
        sides(&desk.books, &entry),
        vec![
            ("1121".to_owned(), taka("122500"), zero),
            ("1160".to_owned(), taka("9187.50"), zero),
            ("1130".to_owned(), zero, taka("129000")),
            ("4300".to_owned(), zero, taka("2687.50")),
        ]
    );
    // Retention is held and released in taka only.
    money.deductions = vec![Deduction {
        kind: DeductionKind::Retention,
        amount: taka("75"),
    }];
    assert_eq!(
        pay(&desk, &[(id, invoice)], money).unwrap_err(),
        PaymentError::ForeignRetention
    );
}

#[test]
fn a_dollar_advance_allocated_later_moves_it_at_the_receipts_rate_and_posts_the_difference() {
    // USD 500.00 received at 121.00 with nothing allocated sits on customer advances as
    // 60,500.00; a USD 1,000.00 invoice at 120.00 takes 200.00 of it (24,000.00 carried, 24,200.00
    // moved: 200.00 gain), then the other 300.00 (the 36,300.00 left moved, 36,000.00 carried).
    let desk = Desk::new(PartyKind::Customer, false);
    let (id, invoice) = dollar_sale(&desk, "1000", "EXEMPT", "120");
    let mut money = receipt(&desk, "500", Vec::new());
    money.currency = Some(usd());
    money.exchange_rate = Some(at("121"));
    let (recorded, entry) = pay(&desk, &[], money).unwrap();
    assert_eq!(recorded.advance, taka("500"));
    let zero = Money::ZERO;
    assert_eq!(
        sides(&desk.books, &entry),
        vec![
            ("1121".to_owned(), taka("60500"), zero),
            ("2170".to_owned(), zero, taka("60500")),
        ]
    );
    let mut payment = Payment::default();
    payment.apply(PaymentEvent::PaymentRecorded(Box::new(recorded.clone())));
    let mut invoice = invoice;
    let mut allocate = |payment: &mut Payment, amount: &str| {
        let context = PaymentContext {
            posting: desk.books.context(),
            tax: Arc::new(desk.tax.clone()),
            party: Arc::new(desk.party.clone()),
            invoices: [(id, Arc::new(invoice.clone()))].into(),
            next_serial: 1,
        };
        let mut events = payment
            .decide(
                PaymentCommand::AllocateAdvance {
                    allocations: vec![Allocation {
                        invoice_id: id,
                        amount: taka(amount),
                    }],
                    date: date("2025-08-28"),
                    entry_id: EntryId::new(),
                    project_id: None,
                    site_id: None,
                },
                &context,
            )
            .unwrap();
        let event = events.pop().unwrap();
        let entry = payment_entry(&event, &context).unwrap().unwrap();
        let PaymentEvent::AdvanceAllocated(allocated) = &event else {
            panic!("{event:?}");
        };
        for settlement in &allocated.settlements {
            invoice.apply(InvoiceEvent::InvoiceSettled {
                payment_id: PaymentId::new(),
                amount: settlement.amount,
                date: date("2025-08-28"),
                foreign_amount: settlement.foreign_amount,
            });
        }
        payment.apply(event.clone());
        let left = invoice.foreign_outstanding().map(|(_, left)| left);
        (sides(&desk.books, &entry), left)
    };
    let (first, left) = allocate(&mut payment, "200");
    assert_eq!(
        first,
        vec![
            ("2170".to_owned(), taka("24200"), zero),
            ("1130".to_owned(), zero, taka("24000")),
            ("4300".to_owned(), zero, taka("200")),
        ]
    );
    assert_eq!(left, Some(taka("800")));
    let (second, left) = allocate(&mut payment, "300");
    assert_eq!(
        second,
        vec![
            ("2170".to_owned(), taka("36300"), zero),
            ("1130".to_owned(), zero, taka("36000")),
            ("4300".to_owned(), zero, taka("300")),
        ]
    );
    assert_eq!(left, Some(taka("500")));
    assert_eq!(payment.advance_left(), Some(Money::ZERO));
}
