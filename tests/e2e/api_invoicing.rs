//! Invoices, bills, the tax book and the VAT registers through the HTTP API: scenarios 13, 14,
//! 17 and 22 of domain-finance.md, gapless numbering under concurrent submits, the printed tax
//! invoice read back as text, and the refusals that change nothing.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;
use vextrus_commands::{ActorId, CommandMetadata, DbRole, EventStore};
use vextrus_domain::TenantId;
use vextrus_domain::finance::{
    BudgetAction, BudgetCommand, BudgetLine, Budgets, Ledger, Money, PostingContext,
};
use vextrus_domain::ids::{AccountId, BudgetId, OrganizationId, ProjectId, SiteId};
use vextrus_domain::organization::Organization;

use crate::api_finance::Books;
use crate::http::{Reply, TestApp, spawn_app};

/// The books with the standard tax rules adopted, a customer that withholds (a government
/// body), and a subcontractor.
struct Desk<'a> {
    books: Books<'a>,
    customer: String,
    subcontractor: String,
}

impl<'a> Desk<'a> {
    async fn open(app: &'a TestApp, code: &str) -> Desk<'a> {
        let books = Books::open(app, code).await;
        books
            .caller
            .post(&books.path("tax-book/standard"), json!({}))
            .await
            .expect(200);
        let customer = books
            .caller
            .post(
                &books.path("parties"),
                json!({"kind": "customer", "name": "Roads and Highways Department",
                       "bin": "000000001-0101", "address": "Sarak Bhaban, Dhaka",
                       "withholding_entity": true, "terms_days": 45}),
            )
            .await
            .expect(201)
            .id();
        let subcontractor = books
            .caller
            .post(
                &books.path("parties"),
                json!({"kind": "supplier", "name": "Karim Earthworks", "bin": "000000002-0101",
                       "tin": "123456789013"}),
            )
            .await
            .expect(201)
            .id();
        Desk {
            books,
            customer,
            subcontractor,
        }
    }

    fn line(&self, price: &str, vat_code: &str, account: &str) -> Value {
        json!({"description": "Earthwork in embankment", "quantity": "1",
               "unit_price": price, "vat_code": vat_code,
               "account_id": self.books.id(account),
               "project_id": self.books.project, "site_id": self.books.site})
    }

    async fn draft(&self, route: &str, body: Value) -> Reply {
        self.books.caller.post(&self.books.path(route), body).await
    }

    async fn sale(&self, date: &str, price: &str, vat_code: &str) -> String {
        self.draft(
            "sales-invoices",
            json!({"party_id": self.customer, "date": date,
                   "lines": [self.line(price, vat_code, "4100")]}),
        )
        .await
        .expect(201)
        .id()
    }

    async fn submit(&self, id: &str) -> Reply {
        self.books
            .caller
            .post(
                &self.books.path(&format!("invoices/{id}/submit")),
                json!({}),
            )
            .await
    }

    async fn document(&self, id: &str, position: i64) -> Value {
        self.books
            .caller
            .get(
                &self
                    .books
                    .path(&format!("invoices/{id}?min_position={position}")),
            )
            .await
            .expect(200)
            .body
    }

    async fn get(&self, rest: &str) -> Reply {
        self.books.caller.get(&self.books.path(rest)).await
    }
}

fn row<'v>(trial_balance: &'v Value, code: &str) -> &'v Value {
    trial_balance["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["code"] == code)
        .unwrap_or_else(|| panic!("no row {code} in {trial_balance}"))
}

#[tokio::test]
async fn a_sale_of_1_00_000_at_15_percent_is_1_15_000_receivable_in_the_sales_book_and_numbered() {
    let app = spawn_app().await;
    let desk = Desk::open(&app, "SALE").await;
    let first = desk.sale("2025-08-10", "100000.00", "STD").await;
    let submitted = desk.submit(&first).await.expect(200);
    let document = desk.document(&first, submitted.position()).await;
    assert_eq!(document["status"], "submitted");
    assert_eq!(document["number"], "SI-2025-26-000001");
    assert_eq!(document["value"], "100000.00");
    assert_eq!(document["vat"], "15000.00");
    assert_eq!(document["total"], "115000.00");
    assert_eq!(document["balance"], "115000.00");
    assert_eq!(document["seller"]["bin"], "002871821-0101");
    assert_eq!(document["buyer"]["bin"], "000000001-0101");
    assert_eq!(document["lines"][0]["vat_rate"], "15.00");
    // Terms of 45 days from the party.
    assert_eq!(document["due_date"], "2025-09-24");

    let tb = desk
        .books
        .trial_balance("from=2025-07-01&to=2026-06-30", submitted.position())
        .await;
    assert_eq!(row(&tb.body, "1130")["debit"], "115000.00");
    assert_eq!(row(&tb.body, "4100")["credit"], "100000.00");
    assert_eq!(row(&tb.body, "2140")["credit"], "15000.00");
    assert_eq!(tb.body["totals"]["debit"], tb.body["totals"]["credit"]);

    let second = desk.sale("2025-08-11", "1000.00", "STD").await;
    let again = desk.submit(&second).await.expect(200);
    assert_eq!(
        desk.document(&second, again.position()).await["number"],
        "SI-2025-26-000002"
    );

    let book = desk
        .get(&format!(
            "vat/sales-book?month=2025-08&min_position={}",
            again.position()
        ))
        .await
        .expect(200);
    assert_eq!(book.body["form"], "mushak-6.2");
    let lines = book.body["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["number"], "SI-2025-26-000001");
    assert_eq!(lines[0]["party_bin"], "000000001-0101");
    assert_eq!(book.body["vat"], "15150.00");
    // A withholding customer deducts nothing of standard-rated VAT (its VDS share is 0).
    assert_eq!(book.body["vds"], "0.00");

    let csv = app
        .client
        .get(app.url(&desk.books.path("vat/sales-book?month=2025-08&format=csv")))
        .bearer_auth(&desk.books.caller.token)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("date,number,party,party_bin,"), "{csv}");
    assert!(csv.contains("SI-2025-26-000001"), "{csv}");
    assert!(csv.contains(",100000.00,15000.00,115000.00,"), "{csv}");
    assert_eq!(csv.lines().count(), 3);
    app.shutdown().await;
}

#[tokio::test]
async fn a_subcontractor_bill_withholds_vds_tds_and_retention_and_owes_the_rest() {
    let app = spawn_app().await;
    let desk = Desk::open(&app, "BILL").await;
    let bill = desk
        .draft(
            "purchase-bills",
            json!({"party_id": desk.subcontractor, "date": "2025-08-20",
                   "lines": [desk.line("1000000.00", "S004.00", "5120")],
                   "tds_section": "CONTRACT", "retention": "5"}),
        )
        .await
        .expect(201)
        .id();
    let submitted = desk.submit(&bill).await.expect(200);
    let document = desk.document(&bill, submitted.position()).await;
    assert_eq!(document["number"], "PB-2025-26-000001");
    assert_eq!(document["vat"], "75000.00");
    assert_eq!(document["withholding"]["vds"], "75000.00");
    assert_eq!(document["withholding"]["tds_rate"], "3.00");
    assert_eq!(document["withholding"]["tds"], "30000.00");
    assert_eq!(document["withholding"]["retention"], "50000.00");
    assert_eq!(document["balance"], "920000.00");

    let tb = desk
        .books
        .trial_balance("from=2025-07-01&to=2026-06-30", submitted.position())
        .await;
    assert_eq!(row(&tb.body, "5120")["debit"], "1000000.00");
    assert_eq!(row(&tb.body, "1150")["debit"], "75000.00");
    assert_eq!(row(&tb.body, "2110")["credit"], "920000.00");
    assert_eq!(row(&tb.body, "2150")["credit"], "75000.00");
    assert_eq!(row(&tb.body, "2160")["credit"], "30000.00");
    assert_eq!(row(&tb.body, "2130")["credit"], "50000.00");

    let summary = desk
        .get(&format!(
            "vat-returns/2025-08?min_position={}",
            submitted.position()
        ))
        .await
        .expect(200);
    assert_eq!(summary.body["input_vat"], "75000.00");
    assert_eq!(summary.body["output_vat"], "0.00");
    assert_eq!(summary.body["vds_deducted"], "75000.00");
    assert_eq!(summary.body["net_vat"], "-75000.00");
    assert_eq!(summary.body["due_date"], "2025-09-15");
    assert_eq!(summary.body["submitted"], false);
    app.shutdown().await;
}

#[tokio::test]
async fn a_vat_inclusive_bill_splits_base_and_vat_and_withholds_five_percent_tds_on_the_base() {
    let app = spawn_app().await;
    let desk = Desk::open(&app, "INCL").await;
    let bill = desk
        .draft(
            "purchase-bills",
            json!({"party_id": desk.subcontractor, "date": "2025-08-20", "pricing": "vat_inclusive",
                   "lines": [desk.line("8679600.00", "STD", "5110")], "tds_section": "CONTRACT"}),
        )
        .await
        .expect(201)
        .id();
    let submitted = desk.submit(&bill).await.expect(200);
    let document = desk.document(&bill, submitted.position()).await;
    assert_eq!(document["value"], "7547478.26");
    assert_eq!(document["vat"], "1132121.74");
    assert_eq!(document["withholding"]["tds_rate"], "5.00");
    assert_eq!(document["withholding"]["tds"], "377373.91");
    app.shutdown().await;
}

#[tokio::test]
async fn concurrent_submits_take_every_number_of_the_series_exactly_once() {
    let app = spawn_app().await;
    let desk = Desk::open(&app, "RACE").await;
    let mut drafts = Vec::new();
    for day in 1..=12 {
        drafts.push(
            desk.sale(&format!("2025-09-{day:02}"), "1000.00", "STD")
                .await,
        );
    }
    let submits = drafts.iter().map(|id| desk.submit(id));
    let replies = futures_util::future::join_all(submits).await;
    let last = replies
        .into_iter()
        .map(|reply| reply.expect(200).position())
        .max()
        .unwrap();
    let page = desk
        .get(&format!(
            "invoices?kind=sales_invoice&status=submitted&min_position={last}&limit=50"
        ))
        .await
        .expect(200);
    let numbers: BTreeSet<String> = page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["number"].as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = (1..=12)
        .map(|serial| format!("SI-2025-26-{serial:06}"))
        .collect();
    assert_eq!(numbers, expected);
    // In pages of five, by date: every document once.
    let mut dates = Vec::new();
    let mut after = String::new();
    loop {
        let page = desk
            .get(&format!("invoices?kind=sales_invoice&limit=5{after}"))
            .await
            .expect(200);
        let items = page.body["items"].as_array().unwrap();
        dates.extend(
            items
                .iter()
                .map(|item| item["date"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(cursor) => after = format!("&after={cursor}"),
            None => break,
        }
    }
    let expected: Vec<String> = (1..=12).map(|day| format!("2025-09-{day:02}")).collect();
    assert_eq!(dates, expected);
    app.shutdown().await;
}

#[tokio::test]
async fn a_submitted_vat_month_refuses_documents_dated_in_it_until_amended() {
    let app = spawn_app().await;
    let desk = Desk::open(&app, "LOCK").await;
    let august = desk.sale("2025-08-20", "1000.00", "STD").await;
    // An entry on output VAT posted before the return, with an idempotency key.
    let correction = desk.books.entry(
        "2025-08-24",
        vec![
            desk.books.line("2140", "50.00", ""),
            desk.books.line("1110", "", "50.00"),
        ],
    );
    let keyed = || {
        desk.books
            .caller
            .request(Method::POST, &desk.books.path("journal-entries"))
            .header("idempotency-key", "vat-correction-1")
            .json(&correction)
    };
    let first = desk.books.caller.send(keyed()).await.expect(201);
    desk.books
        .caller
        .post(&desk.books.path("vat-returns/2025-08/submit"), json!({}))
        .await
        .expect(200);
    // Retried after the month was locked, it gets its first answer back, not a refusal.
    let retried = desk.books.caller.send(keyed()).await.expect(201);
    assert_eq!(retried.id(), first.id());
    assert_eq!(retried.header("idempotent-replayed"), Some("true"));
    let before = app.event_count().await;
    let refused = desk.submit(&august).await.expect(409);
    assert_eq!(refused.problem(), "vat-period-locked");
    assert_eq!(
        app.event_count().await,
        before,
        "a refused submit wrote events"
    );
    // A journal entry on a VAT account dated in the month is VAT-affecting too; one on other
    // accounts posts.
    let vat_entry = desk.books.entry(
        "2025-08-25",
        vec![
            desk.books.line("2140", "100.00", ""),
            desk.books.line("1110", "", "100.00"),
        ],
    );
    let before = app.event_count().await;
    let refused = desk.books.post_entry(vat_entry.clone()).await.expect(409);
    assert_eq!(refused.problem(), "vat-period-locked");
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("2025-08-01"),
        "{}",
        refused.body
    );
    assert_eq!(
        app.event_count().await,
        before,
        "a refused entry wrote events"
    );
    desk.books
        .post_entry(desk.books.rent("2025-08-25"))
        .await
        .expect(201);
    let september = desk.sale("2025-09-01", "1000.00", "STD").await;
    desk.submit(&september).await.expect(200);
    // Submitted twice: refused; amended, the month opens until it is submitted again.
    assert_eq!(
        desk.books
            .caller
            .post(&desk.books.path("vat-returns/2025-08/submit"), json!({}))
            .await
            .expect(409)
            .problem(),
        "vat-period-locked"
    );
    desk.books
        .caller
        .post(
            &desk.books.path("vat-returns/2025-08/amendment"),
            json!({"reason": "A sale was left out"}),
        )
        .await
        .expect(200);
    desk.submit(&august).await.expect(200);
    desk.books.post_entry(vat_entry).await.expect(201);
    desk.books
        .caller
        .post(&desk.books.path("vat-returns/2025-08/submit"), json!({}))
        .await
        .expect(200);
    let book = desk.get("tax-book").await.expect(200);
    assert_eq!(
        book.body["vat_months"],
        json!([{"month": "2025-08", "amendment": 1, "locked": true}])
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_rate_changed_from_a_date_prices_later_documents_and_leaves_earlier_ones() {
    let app = spawn_app().await;
    let desk = Desk::open(&app, "RATE").await;
    let earlier = desk.sale("2025-08-31", "1000.00", "S004.00").await;
    desk.submit(&earlier).await.expect(200);
    desk.books
        .caller
        .send(
            desk.books
                .caller
                .request(Method::PUT, &desk.books.path("tax-book/vat-codes/S004.00"))
                .json(
                    &json!({"description": "Construction firm", "kind": "reduced",
                              "effective_from": "2025-09-01", "rate": "10", "vds_share": "100"}),
                ),
        )
        .await
        .expect(200);
    let later = desk.sale("2025-09-01", "1000.00", "S004.00").await;
    let submitted = desk.submit(&later).await.expect(200);
    assert_eq!(
        desk.document(&earlier, submitted.position()).await["vat"],
        "75.00"
    );
    let document = desk.document(&later, submitted.position()).await;
    assert_eq!(document["vat"], "100.00");
    // The customer withholds all of a construction service's VAT.
    assert_eq!(document["lines"][0]["vds"], "100.00");
    let book = desk.get("tax-book").await.expect(200);
    let code = book.body["vat_codes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|code| code["code"] == "S004.00")
        .unwrap();
    assert_eq!(code["rates"].as_array().unwrap().len(), 2);
    app.shutdown().await;
}

#[tokio::test]
async fn the_tax_invoice_prints_the_mushak_6_3_fields() {
    let app = spawn_app().await;
    let desk = Desk::open(&app, "PDF").await;
    let drafted = desk
        .draft(
            "sales-invoices",
            json!({"party_id": desk.customer, "date": "2025-08-10", "reference": "WO-17",
                   "lines": [{"description": "Embankment, chainage 2+300", "quantity": "2.5",
                              "unit_price": "40000.00", "vat_code": "STD",
                              "account_id": desk.books.id("4100"),
                              "project_id": desk.books.project}]}),
        )
        .await
        .expect(201);
    let id = drafted.id();
    let draft_pdf = desk
        .get(&format!(
            "invoices/{id}/tax-invoice.pdf?min_position={}",
            drafted.position()
        ))
        .await
        .expect(409);
    assert_eq!(draft_pdf.problem(), "not-submitted");
    let submitted = desk.submit(&id).await.expect(200);
    let response = app
        .client
        .get(app.url(&desk.books.path(&format!(
            "invoices/{id}/tax-invoice.pdf?min_position={}",
            submitted.position()
        ))))
        .bearer_auth(&desk.books.caller.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    let bytes = response.bytes().await.unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    let text = pdf_text(&bytes);
    for printed in [
        "Tax Invoice (Mushak-6.3)",
        "Seller: Meghna Builders Ltd",
        "Seller BIN: 002871821-0101",
        "Buyer: Roads and Highways Department",
        "Buyer BIN: 000000001-0101",
        "Serial number: SI-2025-26-000001",
        "Date of issue: 2025-08-10",
        "Time of issue:",
        "Embankment, chainage 2+300",
        "2.5",
        "40,000.00",
        "1,00,000.00",
        "15.00%",
        "15,000.00",
        "Total value with VAT: Tk 1,15,000.00",
        "Reference: WO-17",
    ] {
        assert!(text.contains(printed), "{printed:?} not in:\n{text}");
    }
    app.shutdown().await;
}

/// The text of a PDF, as `pdftotext` (poppler) reads it.
fn pdf_text(pdf: &[u8]) -> String {
    let mut child = Command::new("pdftotext")
        .args(["-layout", "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("pdftotext (Debian's poppler-utils; .ci/run installs it)");
    child.stdin.take().unwrap().write_all(pdf).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "pdftotext failed");
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn documents_and_parties_refuse_bad_input_and_change_nothing() {
    let app = spawn_app().await;
    let desk = Desk::open(&app, "BAD").await;
    let before = app.event_count().await;
    // A bill to a customer; an unknown VAT code; a quantity with four decimals; retention on a
    // sale; a bare JSON number for a price.
    let to_customer = desk
        .draft(
            "purchase-bills",
            json!({"party_id": desk.customer, "date": "2025-08-10",
                   "lines": [desk.line("1000.00", "STD", "5110")]}),
        )
        .await
        .expect(409);
    assert_eq!(to_customer.problem(), "party-kind");
    let unknown = desk
        .draft(
            "sales-invoices",
            json!({"party_id": desk.customer, "date": "2025-08-10",
                   "lines": [desk.line("1000.00", "VAT-99", "4100")]}),
        )
        .await
        .expect(409);
    assert_eq!(unknown.problem(), "unknown-vat-code");
    let mut line = desk.line("1000.00", "STD", "4100");
    line["quantity"] = json!("1.2345");
    let quantity = desk
        .draft(
            "sales-invoices",
            json!({"party_id": desk.customer, "date": "2025-08-10", "lines": [line]}),
        )
        .await
        .expect(422);
    assert_eq!(
        quantity.body["invalid-params"][0]["name"],
        "lines[0].quantity"
    );
    let retained = desk
        .draft(
            "sales-invoices",
            json!({"party_id": desk.customer, "date": "2025-08-10", "retention": "5",
                   "lines": [desk.line("1000.00", "STD", "4100")]}),
        )
        .await
        .expect(409);
    assert_eq!(retained.problem(), "withholding-on-sale");
    let mut number = desk.line("1000.00", "STD", "4100");
    number["unit_price"] = json!(1000);
    desk.draft(
        "sales-invoices",
        json!({"party_id": desk.customer, "date": "2025-08-10", "lines": [number]}),
    )
    .await
    .expect(422);
    let bad_bin = desk
        .books
        .caller
        .post(
            &desk.books.path("parties"),
            json!({"kind": "customer", "name": "X", "bin": "12345"}),
        )
        .await
        .expect(422);
    assert_eq!(bad_bin.body["invalid-params"][0]["name"], "bin");
    let payable_for_customer = desk
        .books
        .caller
        .post(
            &desk.books.path("parties"),
            json!({"kind": "customer", "name": "Y", "account_id": desk.books.id("2110")}),
        )
        .await
        .expect(409);
    assert_eq!(payable_for_customer.problem(), "party-account-type");
    assert_eq!(app.event_count().await, before, "a refusal wrote events");

    // A draft dated in no fiscal year is drafted, and refused when submitted.
    let outside = desk.sale("2027-01-10", "1000.00", "STD").await;
    let refused = desk.submit(&outside).await.expect(409);
    assert_eq!(refused.problem(), "no-fiscal-year");
    // Submitted once only.
    let once = desk.sale("2025-08-10", "1000.00", "STD").await;
    desk.submit(&once).await.expect(200);
    assert_eq!(
        desk.submit(&once).await.expect(409).problem(),
        "already-submitted"
    );

    // Another tenant sees none of it.
    let stranger = app.caller_for(uuid::Uuid::now_v7(), &["admin"]);
    for path in [
        format!("invoices/{once}"),
        format!("parties/{}", desk.customer),
        "tax-book".to_owned(),
    ] {
        stranger.get(&desk.books.path(&path)).await.expect(404);
    }
    stranger
        .post(
            &desk.books.path(&format!("invoices/{once}/submit")),
            json!({}),
        )
        .await
        .expect(404);
    app.shutdown().await;
}

#[tokio::test]
async fn parties_are_listed_by_name_paged_and_changed_with_their_version() {
    let app = spawn_app().await;
    let desk = Desk::open(&app, "PARTY").await;
    let changed = desk
        .books
        .caller
        .patch(
            &desk.books.path(&format!("parties/{}", desk.subcontractor)),
            json!({"address": "Tongi, Gazipur", "bin": null, "terms_days": 15}),
        )
        .await
        .expect(200);
    let party = desk
        .get(&format!(
            "parties/{}?min_position={}",
            desk.subcontractor,
            changed.position()
        ))
        .await
        .expect(200);
    assert_eq!(party.body["address"], "Tongi, Gazipur");
    assert_eq!(party.body["bin"], Value::Null);
    assert_eq!(party.body["tin"], "123456789013");
    assert_eq!(party.body["terms_days"], 15);
    assert_eq!(party.header("etag"), Some("\"2\""));

    let first = desk.get("parties?limit=1").await.expect(200);
    assert_eq!(first.body["items"][0]["name"], "Karim Earthworks");
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = desk
        .get(&format!("parties?limit=1&after={cursor}"))
        .await
        .expect(200);
    assert_eq!(
        second.body["items"][0]["name"],
        "Roads and Highways Department"
    );
    assert_eq!(second.body["next_cursor"], Value::Null);
    let suppliers = desk.get("parties?kind=supplier&q=karim").await.expect(200);
    assert_eq!(suppliers.body["items"].as_array().unwrap().len(), 1);

    let archived = desk
        .books
        .caller
        .post(
            &desk
                .books
                .path(&format!("parties/{}/archive", desk.subcontractor)),
            json!({}),
        )
        .await
        .expect(200);
    let refused = desk
        .draft(
            "purchase-bills",
            json!({"party_id": desk.subcontractor, "date": "2025-08-10",
                   "lines": [desk.line("1000.00", "STD", "5110")]}),
        )
        .await
        .expect(409);
    assert_eq!(refused.problem(), "party-archived");
    let listed = desk
        .get(&format!("parties?min_position={}", archived.position()))
        .await
        .expect(200);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    app.shutdown().await;
}

impl Desk<'_> {
    async fn receipt(&self, body: Value) -> Reply {
        self.books
            .caller
            .post(&self.books.path("receipts"), body)
            .await
    }

    async fn submitted_sale(&self, date: &str, price: &str, vat_code: &str) -> (String, i64) {
        let id = self.sale(date, price, vat_code).await;
        let position = self.submit(&id).await.expect(200).position();
        (id, position)
    }

    /// Allocates `amount` of what payment `payment` holds as an advance to `invoice` on `date`.
    async fn allocate(&self, payment: &str, date: &str, invoice: &str, amount: &str) -> Reply {
        self.books
            .caller
            .post(
                &self.books.path(&format!("payments/{payment}/allocate")),
                json!({"date": date, "allocations": [{"invoice_id": invoice, "amount": amount}]}),
            )
            .await
    }
}

#[tokio::test]
async fn a_receipt_of_1_20_000_settles_1_15_000_and_holds_5_000_as_the_customers_advance() {
    let app = spawn_app().await;
    let desk = Desk::open(&app, "PAY").await;
    let (invoice, _) = desk.submitted_sale("2025-08-10", "100000.00", "STD").await;
    let bank = desk.books.id("1121").to_owned();
    let before = app.event_count().await;
    let above = desk
        .receipt(
            json!({"party_id": desk.customer, "date": "2025-08-20", "account_id": bank,
                        "amount": "120000.00",
                        "allocations": [{"invoice_id": invoice, "amount": "120000.00"}]}),
        )
        .await
        .expect(409);
    assert_eq!(above.problem(), "above-outstanding");
    assert_eq!(
        app.event_count().await,
        before,
        "a refused receipt wrote events"
    );

    let received = desk
        .receipt(
            json!({"party_id": desk.customer, "date": "2025-08-20", "account_id": bank,
                        "amount": "120000.00", "reference": "Cheque 004512",
                        "allocations": [{"invoice_id": invoice, "amount": "115000.00"}]}),
        )
        .await
        .expect(201);
    let position = received.position();
    let receipt = desk
        .get(&format!(
            "payments/{}?min_position={position}",
            received.id()
        ))
        .await
        .expect(200);
    assert_eq!(receipt.body["number"], "RC-2025-26-000001");
    assert_eq!(receipt.body["advance"], "5000.00");
    assert_eq!(receipt.body["direction"], "receipt");
    let document = desk.document(&invoice, position).await;
    assert_eq!(document["settled"], "115000.00");
    assert_eq!(document["outstanding"], "0.00");
    let tb = desk
        .books
        .trial_balance("from=2025-07-01&to=2026-06-30", position)
        .await;
    assert_eq!(row(&tb.body, "1121")["debit"], "120000.00");
    assert_eq!(row(&tb.body, "1130")["closing"], "0.00");
    assert_eq!(row(&tb.body, "2170")["credit"], "5000.00");
    // Nothing is left to settle.
    let again = desk
        .receipt(
            json!({"party_id": desk.customer, "date": "2025-08-21", "account_id": bank,
                        "amount": "1.00",
                        "allocations": [{"invoice_id": invoice, "amount": "0.01"}]}),
        )
        .await
        .expect(409);
    assert_eq!(again.problem(), "above-outstanding");
    let listed = desk
        .get(&format!(
            "payments?direction=receipt&min_position={position}"
        ))
        .await
        .expect(200);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn a_receipt_short_by_a_few_paisa_writes_them_off_within_the_round_off_allowance() {
    let app = spawn_app().await;
    let desk = Desk::open(&app, "ROUNDOFF").await;
    let bank = desk.books.id("1121").to_owned();
    let (invoice, _) = desk.submitted_sale("2025-08-10", "100000.00", "STD").await;
    let short = |cash: &str, written_off: &str| {
        json!({"party_id": desk.customer, "date": "2025-08-20", "account_id": bank,
               "amount": cash, "project_id": desk.books.project,
               "deductions": [{"kind": "round_off", "amount": written_off}],
               "allocations": [{"invoice_id": invoice, "amount": "115000.00"}]})
    };
    let before = app.event_count().await;
    assert_eq!(
        desk.receipt(short("114999.60", "0.40"))
            .await
            .expect(409)
            .problem(),
        "no-round-off-account"
    );
    desk.books
        .ledger_command(
            Method::PUT,
            "ledger/settings",
            json!({"round_off_account_id": desk.books.id("5270"), "round_off_allowance": "0.50"}),
        )
        .await
        .expect(200);
    assert_eq!(
        desk.receipt(short("114999.40", "0.60"))
            .await
            .expect(409)
            .problem(),
        "above-round-off-allowance"
    );
    let mut lone = short("0.00", "0.40");
    lone["allocations"] = json!([]);
    assert_eq!(
        desk.receipt(lone).await.expect(409).problem(),
        "round-off-with-advance"
    );
    assert_eq!(
        app.event_count().await,
        before + 1,
        "only the settings were written"
    );
    let position = desk
        .receipt(short("114999.60", "0.40"))
        .await
        .expect(201)
        .position();
    assert_eq!(
        desk.document(&invoice, position).await["outstanding"],
        "0.00"
    );
    let tb = desk
        .books
        .trial_balance("from=2025-07-01&to=2026-06-30", position)
        .await;
    assert_eq!(row(&tb.body, "5270")["debit"], "0.40");
    assert_eq!(row(&tb.body, "1130")["closing"], "0.00");
    app.shutdown().await;
}

#[tokio::test]
async fn a_withholding_customer_pays_less_and_the_subcontractor_is_paid_the_net() {
    let app = spawn_app().await;
    let desk = Desk::open(&app, "NET").await;
    let bank = desk.books.id("1121").to_owned();
    // A construction service to a government body: it deducts the VAT and 3 % TDS.
    let (sale, _) = desk
        .submitted_sale("2025-08-10", "100000.00", "S004.00")
        .await;
    let received = desk
        .receipt(
            json!({"party_id": desk.customer, "date": "2025-08-25", "account_id": bank,
                        "amount": "97000.00", "vds_certificate": "M66-2025-0042",
                        "deductions": [{"kind": "vds", "amount": "7500.00"},
                                       {"kind": "tds", "amount": "3000.00"}],
                        "allocations": [{"invoice_id": sale, "amount": "107500.00"}]}),
        )
        .await
        .expect(201);
    // The subcontractor's bill (scenario 17), paid its net 9,20,000.00.
    let bill = desk
        .draft(
            "purchase-bills",
            json!({"party_id": desk.subcontractor, "date": "2025-08-20",
                   "lines": [desk.line("1000000.00", "S004.00", "5120")],
                   "tds_section": "CONTRACT", "retention": "5"}),
        )
        .await
        .expect(201)
        .id();
    desk.submit(&bill).await.expect(200);
    let paid = desk
        .books
        .caller
        .post(
            &desk.books.path("payments"),
            json!({"party_id": desk.subcontractor, "date": "2025-08-30", "account_id": bank,
                   "amount": "920000.00", "vds_certificate": "M66-OUT-0001",
                   "allocations": [{"invoice_id": bill, "amount": "920000.00"}]}),
        )
        .await
        .expect(201);
    let position = paid.position().max(received.position());
    assert_eq!(desk.document(&sale, position).await["outstanding"], "0.00");
    assert_eq!(desk.document(&bill, position).await["outstanding"], "0.00");
    let payment = desk
        .get(&format!("payments/{}?min_position={position}", paid.id()))
        .await
        .expect(200);
    assert_eq!(payment.body["number"], "PY-2025-26-000001");
    assert_eq!(payment.body["vds_certificate"], "M66-OUT-0001");
    let tb = desk
        .books
        .trial_balance("from=2025-07-01&to=2026-06-30", position)
        .await;
    assert_eq!(row(&tb.body, "1160")["debit"], "7500.00");
    assert_eq!(row(&tb.body, "1170")["debit"], "3000.00");
    assert_eq!(row(&tb.body, "1130")["closing"], "0.00");
    assert_eq!(row(&tb.body, "2110")["closing"], "0.00");
    // What is still owed: the three liabilities of the bill.
    assert_eq!(row(&tb.body, "2150")["closing"], "-75000.00");
    assert_eq!(row(&tb.body, "2160")["closing"], "-30000.00");
    assert_eq!(row(&tb.body, "2130")["closing"], "-50000.00");
    // 97,000.00 in, 9,20,000.00 out.
    assert_eq!(row(&tb.body, "1121")["closing"], "-823000.00");
    assert_eq!(tb.body["totals"]["debit"], tb.body["totals"]["credit"]);
    app.shutdown().await;
}

#[tokio::test]
async fn vds_certificates_issued_for_bills_and_received_with_receipts_are_registered_once() {
    let app = spawn_app().await;
    let desk = Desk::open(&app, "MUSHAK66").await;
    let bank = desk.books.id("1121").to_owned();
    // The subcontractor's bill withholds its 75,000.00 VAT; the government body deducts the
    // 7,500.00 VAT of a construction invoice, its certificate to follow.
    let bill = desk
        .draft(
            "purchase-bills",
            json!({"party_id": desk.subcontractor, "date": "2025-08-20",
                   "lines": [desk.line("1000000.00", "S004.00", "5120")]}),
        )
        .await
        .expect(201)
        .id();
    desk.submit(&bill).await.expect(200);
    let (sale, _) = desk
        .submitted_sale("2025-08-10", "100000.00", "S004.00")
        .await;
    let received = desk
        .receipt(
            json!({"party_id": desk.customer, "date": "2025-08-25", "account_id": bank,
            "amount": "100000.00", "deductions": [{"kind": "vds", "amount": "7500.00"}],
            "allocations": [{"invoice_id": sale, "amount": "107500.00"}]}),
        )
        .await
        .expect(201);
    let receipt = received.id();
    let register = async |query: &str, position: i64| {
        desk.get(&format!("vds-certificates?min_position={position}{query}"))
            .await
            .expect(200)
            .body
    };
    let listed = register("", received.position()).await;
    assert_eq!(listed["pending"], 2, "{listed}");
    assert_eq!(listed["vds"], "82500.00");
    assert_eq!(listed["lines"][0]["direction"], "issued");
    assert_eq!(listed["lines"][0]["vds"], "75000.00");
    assert_eq!(listed["lines"][0]["party_bin"], "000000002-0101");
    assert_eq!(listed["lines"][0]["certificate"], Value::Null);
    assert_eq!(listed["lines"][1]["direction"], "received");
    assert_eq!(listed["lines"][1]["number"], "RC-2025-26-000001");
    let certificate = async |route: &str, number: &str, date: &str| {
        desk.books
            .caller
            .post(
                &desk.books.path(route),
                json!({"number": number, "date": date}),
            )
            .await
    };
    let bill_route = format!("invoices/{bill}/vds-certificate");
    let receipt_route = format!("payments/{receipt}/vds-certificate");
    let before = app.event_count().await;
    let early = certificate(&bill_route, "M66-OUT-0001", "2025-08-19")
        .await
        .expect(422);
    assert_eq!(
        early.body["invalid-params"][0]["name"], "date",
        "{}",
        early.body
    );
    assert_eq!(
        certificate(
            &format!("invoices/{sale}/vds-certificate"),
            "M66-X",
            "2025-08-30"
        )
        .await
        .expect(409)
        .problem(),
        "no-vds-deducted"
    );
    assert_eq!(
        app.event_count().await,
        before,
        "a refused certificate wrote events"
    );
    certificate(&bill_route, "M66-OUT-0001", "2025-08-30")
        .await
        .expect(200);
    // A bill a certificate was issued for is changed by notes only.
    assert_eq!(
        desk.books
            .caller
            .post(
                &desk.books.path(&format!("invoices/{bill}/cancel")),
                json!({"date": "2025-08-31", "reason": "Issued twice"}),
            )
            .await
            .expect(409)
            .problem(),
        "changes-by-notes-only"
    );
    // The same certificate again changes nothing; another is refused.
    certificate(&bill_route, "M66-OUT-0001", "2025-08-30")
        .await
        .expect(200);
    assert_eq!(
        certificate(&bill_route, "M66-OUT-0002", "2025-08-30")
            .await
            .expect(409)
            .problem(),
        "certificate-recorded"
    );
    let position = certificate(&receipt_route, "M66-2025-0042", "2025-09-05")
        .await
        .expect(200)
        .position();
    let pending = register("&pending=true", position).await;
    assert_eq!(pending["lines"], json!([]), "{pending}");
    let issued = register("&direction=issued", position).await;
    assert_eq!(
        issued["lines"][0]["certificate"],
        json!({"number": "M66-OUT-0001", "date": "2025-08-30"})
    );
    let payment = desk
        .get(&format!("payments/{receipt}?min_position={position}"))
        .await
        .expect(200);
    assert_eq!(payment.body["vds_certificate"], "M66-2025-0042");
    assert_eq!(payment.body["vds_certificate_date"], "2025-09-05");
    let document = desk.document(&bill, position).await;
    assert_eq!(document["vds_certificate"]["number"], "M66-OUT-0001");
    // The withholding register names the bill's certificate too.
    let withholding = desk
        .get(&format!("withholding-register?min_position={position}"))
        .await
        .expect(200);
    let bill_vds = withholding.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["kind"] == "vds" && line["direction"] == "given")
        .unwrap();
    assert_eq!(bill_vds["certificate"], "M66-OUT-0001");
    let csv = desk
        .books
        .caller
        .request(
            Method::GET,
            &desk.books.path(&format!(
                "vds-certificates?format=csv&min_position={position}"
            )),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.starts_with("direction,date,number,party,party_bin,vds,certificate,certificate_date"),
        "{csv}"
    );
    assert!(csv.contains("M66-OUT-0001,2025-08-30"), "{csv}");
    app.shutdown().await;
}

#[tokio::test]
async fn receipts_racing_for_one_invoice_never_settle_more_than_it_owes() {
    let app = spawn_app().await;
    let desk = Desk::open(&app, "RACEPAY").await;
    let (invoice, _) = desk.submitted_sale("2025-08-10", "1000.00", "STD").await;
    let bank = desk.books.id("1121").to_owned();
    // Eight receipts of 400.00 each against 1,150.00 outstanding: at most two fit.
    let receipts = (0..8).map(|_| {
        desk.receipt(
            json!({"party_id": desk.customer, "date": "2025-08-20", "account_id": bank,
                            "amount": "400.00",
                            "allocations": [{"invoice_id": invoice, "amount": "400.00"}]}),
        )
    });
    let replies = futures_util::future::join_all(receipts).await;
    let mut accepted = 0;
    let mut last = 0;
    for reply in replies {
        match reply.status {
            201 => {
                accepted += 1;
                last = last.max(reply.position());
            }
            409 => assert_eq!(reply.problem(), "above-outstanding", "{reply:?}"),
            other => panic!("unexpected {other}: {reply:?}"),
        }
    }
    assert_eq!(accepted, 2);
    let document = desk.document(&invoice, last).await;
    assert_eq!(document["settled"], "800.00");
    assert_eq!(document["outstanding"], "350.00");
    app.shutdown().await;
}

#[tokio::test]
async fn a_stop_budget_refuses_what_would_exceed_it_and_a_warn_budget_records_it() {
    let app = spawn_app().await;
    let desk = Desk::open(&app, "BUDGET").await;
    let caller = &desk.books.caller;
    let budgets = desk.books.path("budgets");
    let budget = |body: Value| caller.post(&budgets, body);
    let cement = |amount: &str, action: &str| {
        json!({"project_id": desk.books.project, "site_id": desk.books.site,
               "account_id": desk.books.id("5110"), "fiscal_year": "2025-07-01",
               "amount": amount, "action": action})
    };
    let id = budget(cement("1000000.00", "stop")).await.expect(201).id();
    // Scenario 21: zero, a balance-sheet account, an overlapping budget.
    assert_eq!(
        budget(cement("0", "stop")).await.expect(409).problem(),
        "zero-amount"
    );
    let mut cash = cement("100.00", "stop");
    cash["account_id"] = json!(desk.books.id("1110"));
    assert_eq!(
        budget(cash).await.expect(409).problem(),
        "not-an-expense-account"
    );
    let mut whole_project = cement("100.00", "warn");
    whole_project["site_id"] = Value::Null;
    assert_eq!(
        budget(whole_project).await.expect(409).problem(),
        "budget-overlaps"
    );

    // 9,80,000.00 spent by a journal entry, then a bill of 30,000.00 (scenario 20).
    desk.books
        .post_entry(desk.books.entry(
            "2025-08-05",
            vec![
                json!({"account_id": desk.books.id("5110"), "debit": "980000.00",
                       "project_id": desk.books.project, "site_id": desk.books.site}),
                desk.books.line("1121", "", "980000.00"),
            ],
        ))
        .await
        .expect(201);
    let bill = desk
        .draft(
            "purchase-bills",
            json!({"party_id": desk.subcontractor, "date": "2025-08-20",
                   "lines": [desk.line("30000.00", "EXEMPT", "5110")]}),
        )
        .await
        .expect(201)
        .id();
    let before = app.event_count().await;
    let refused = desk.submit(&bill).await.expect(409);
    assert_eq!(refused.problem(), "over-budget");
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(detail.contains("exceeded by 10000.00"), "{detail}");
    assert_eq!(
        app.event_count().await,
        before,
        "a refused bill wrote events"
    );
    // Another entry over it is refused the same way.
    let entry = desk
        .books
        .post_entry(desk.books.entry(
            "2025-08-21",
            vec![
                json!({"account_id": desk.books.id("5110"), "debit": "20000.01",
                       "project_id": desk.books.project, "site_id": desk.books.site}),
                desk.books.line("1121", "", "20000.01"),
            ],
        ))
        .await
        .expect(409);
    assert_eq!(entry.problem(), "over-budget");

    // As a Warn budget it posts, and the warning is recorded.
    caller
        .patch(
            &desk.books.path(&format!("budgets/{id}")),
            json!({"amount": "1000000.00", "action": "warn"}),
        )
        .await
        .expect(200);
    let submitted = desk.submit(&bill).await.expect(200);
    let report = desk
        .get(&format!(
            "budgets?fiscal_year=2025-07-01&min_position={}",
            submitted.position()
        ))
        .await
        .expect(200);
    let line = &report.body["items"][0];
    assert_eq!(line["budget"], "1000000.00");
    assert_eq!(line["actual"], "1010000.00");
    assert_eq!(line["available"], "-10000.00");
    assert_eq!(line["warnings"], 1);
    assert_eq!(line["account_code"], "5110");
    app.shutdown().await;
}

#[tokio::test]
async fn a_budget_set_after_the_years_spending_began_counts_it() {
    let app = spawn_app().await;
    let desk = Desk::open(&app, "LATEBUDGET").await;
    let caller = &desk.books.caller;
    let spend = async |date: &str, account: &str, amount: &str| {
        desk.books
            .post_entry(desk.books.entry(
                date,
                vec![
                    json!({"account_id": desk.books.id(account), "debit": amount,
                           "project_id": desk.books.project, "site_id": desk.books.site}),
                    desk.books.line("1121", "", amount),
                ],
            ))
            .await
    };
    // 7,00,000.00 of cement in two entries before any budget; 50,000.00 on another account.
    spend("2025-08-05", "5110", "600000.00").await.expect(201);
    spend("2025-08-06", "5110", "100000.00").await.expect(201);
    spend("2025-08-07", "5120", "50000.00").await.expect(201);
    let set = caller
        .post(
            &desk.books.path("budgets"),
            json!({"project_id": desk.books.project, "site_id": desk.books.site,
                   "account_id": desk.books.id("5110"), "fiscal_year": "2025-07-01",
                   "amount": "1000000.00", "action": "stop"}),
        )
        .await
        .expect(201);
    let report = desk
        .get(&format!(
            "budgets?fiscal_year=2025-07-01&min_position={}",
            set.position()
        ))
        .await
        .expect(200);
    let line = &report.body["items"][0];
    assert_eq!(line["actual"], "700000.00");
    assert_eq!(line["available"], "300000.00");
    // What was spent before counts against the Stop budget.
    let over = spend("2025-08-20", "5110", "300000.01").await.expect(409);
    assert_eq!(over.problem(), "over-budget");
    let detail = over.body["detail"].as_str().unwrap();
    assert!(detail.contains("exceeded by 0.01"), "{detail}");
    spend("2025-08-20", "5110", "300000.00").await.expect(201);

    // A budget appended without being seeded (as budgets set before seeding existed were) is
    // seeded by the first posting that spends against it, in that posting's transaction.
    let store = EventStore::new(
        vextrus::database::role_pool(&app.db.options, DbRole::Writer, 2)
            .await
            .unwrap(),
    );
    let tenant = TenantId::from_uuid(caller.tenant);
    let uuid = |text: &str| text.parse::<Uuid>().unwrap();
    let (ledger, _) = store.fold::<Ledger>(tenant, &desk.books.org).await.unwrap();
    let (organization, _) = store
        .fold::<Organization>(tenant, &desk.books.org)
        .await
        .unwrap();
    let line = BudgetLine {
        budget_id: BudgetId::new(),
        organization_id: OrganizationId::from_uuid(uuid(&desk.books.org)),
        project_id: ProjectId::from_uuid(uuid(&desk.books.project)),
        site_id: Some(SiteId::from_uuid(uuid(&desk.books.site))),
        account_id: AccountId::from_uuid(uuid(desk.books.id("5120"))),
        fiscal_year: "2025-07-01".parse().unwrap(),
        amount: Money::parse("60000.00").unwrap(),
        action: BudgetAction::Stop,
    };
    store
        .execute_reading::<Budgets>(
            tenant,
            &desk.books.org,
            BudgetCommand::Set(line),
            &PostingContext {
                ledger: Arc::new(ledger),
                organization: Arc::new(organization),
            },
            &CommandMetadata::new(ActorId::parse("legacy@example.com").unwrap()),
            None,
            &[],
            |_| Ok(Vec::new()),
        )
        .await
        .unwrap();
    assert_eq!(
        spend("2025-08-21", "5120", "10000.01")
            .await
            .expect(409)
            .problem(),
        "over-budget"
    );
    let within = spend("2025-08-21", "5120", "10000.00").await.expect(201);
    let report = desk
        .get(&format!(
            "budgets?fiscal_year=2025-07-01&min_position={}",
            within.position()
        ))
        .await
        .expect(200);
    let actual: BTreeSet<(String, String)> = report.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| {
            (
                line["account_code"].as_str().unwrap().to_owned(),
                line["actual"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        actual,
        BTreeSet::from([
            ("5110".to_owned(), "1000000.00".to_owned()),
            ("5120".to_owned(), "60000.00".to_owned()),
        ])
    );
    app.shutdown().await;
}

#[tokio::test]
async fn notes_change_a_document_and_cancelling_is_for_documents_nothing_touched() {
    // Scenario 16.
    let app = spawn_app().await;
    let desk = Desk::open(&app, "NOTES").await;
    let bank = desk.books.id("1121").to_owned();
    let (invoice, _) = desk.submitted_sale("2025-08-10", "100000.00", "STD").await;
    desk.receipt(
        json!({"party_id": desk.customer, "date": "2025-08-12", "account_id": bank,
                        "amount": "15000.00",
                        "allocations": [{"invoice_id": invoice, "amount": "15000.00"}]}),
    )
    .await
    .expect(201);
    let cancel = async |id: &str, date: &str| {
        let path = desk.books.path(&format!("invoices/{id}/cancel"));
        desk.books
            .caller
            .post(&path, json!({"date": date, "reason": "Issued twice"}))
            .await
    };
    assert_eq!(
        cancel(&invoice, "2025-08-31").await.expect(409).problem(),
        "changes-by-notes-only"
    );
    let note = async |kind: &str, price: &str| {
        let path = desk.books.path(&format!("invoices/{invoice}/{kind}"));
        desk.books
            .caller
            .post(
                &path,
                json!({"date": "2025-08-25", "reference": "Rate corrected",
                       "lines": [desk.line(price, "STD", "4100")]}),
            )
            .await
    };
    // 1,00,000.00 is left; a note of 90,000.00 + 13,500.00 VAT is more.
    let too_big = note("credit-notes", "90000.00").await.expect(201).id();
    assert_eq!(
        desk.submit(&too_big).await.expect(409).problem(),
        "above-outstanding"
    );
    let credit = note("credit-notes", "40000.00").await.expect(201).id();
    desk.submit(&credit).await.expect(200);
    let debit = note("debit-notes", "10000.00").await.expect(201).id();
    let last = desk.submit(&debit).await.expect(200).position();
    let credited = desk.document(&credit, last).await;
    assert_eq!(credited["kind"], "sales_credit_note");
    assert_eq!(credited["number"], "SCN-2025-26-000001");
    assert_eq!(credited["original_number"], "SI-2025-26-000001");
    assert_eq!(credited["total"], "46000.00");
    // The customer's BIN and address are known.
    assert_eq!(credited["decreasing_adjustment_eligible"], true);
    let original = desk.document(&invoice, last).await;
    // 1,15,000.00 - 46,000.00 + 11,500.00, less 15,000.00 received.
    assert_eq!(original["balance"], "80500.00");
    assert_eq!(original["outstanding"], "65500.00");
    let tb = desk
        .books
        .trial_balance("from=2025-07-01&to=2026-06-30", last)
        .await;
    assert_eq!(row(&tb.body, "2140")["closing"], "-10500.00");
    assert_eq!(row(&tb.body, "1130")["closing"], "65500.00");
    let book = desk
        .get(&format!("vat/sales-book?month=2025-08&min_position={last}"))
        .await
        .expect(200);
    assert_eq!(book.body["vat"], "10500.00");

    // A customer without a BIN: a credit note whose VAT is above Tk 5,000 is flagged.
    let walk_in = desk
        .books
        .caller
        .post(
            &desk.books.path("parties"),
            json!({"kind": "customer", "name": "Walk-in buyer"}),
        )
        .await
        .expect(201)
        .id();
    let sale = desk
        .draft(
            "sales-invoices",
            json!({"party_id": walk_in, "date": "2025-08-10",
                   "lines": [desk.line("100000.00", "STD", "4100")]}),
        )
        .await
        .expect(201)
        .id();
    desk.submit(&sale).await.expect(200);
    let flagged = desk
        .books
        .caller
        .post(
            &desk.books.path(&format!("invoices/{sale}/credit-notes")),
            json!({"date": "2025-08-25", "lines": [desk.line("40000.00", "STD", "4100")]}),
        )
        .await
        .expect(201)
        .id();
    let position = desk.submit(&flagged).await.expect(200).position();
    assert_eq!(
        desk.document(&flagged, position).await["decreasing_adjustment_eligible"],
        false
    );

    // An invoice nothing touched is cancelled: its entry reversed, its lines out of the book.
    let (unpaid, _) = desk.submitted_sale("2025-09-02", "2000.00", "STD").await;
    let cancelled = cancel(&unpaid, "2025-09-05").await.expect(200).position();
    let document = desk.document(&unpaid, cancelled).await;
    assert_eq!(document["status"], "cancelled");
    assert_eq!(document["outstanding"], "0.00");
    assert_eq!(
        cancel(&unpaid, "2025-09-06").await.expect(409).problem(),
        "cancelled"
    );
    let september = desk
        .get(&format!(
            "vat/sales-book?month=2025-09&min_position={cancelled}"
        ))
        .await
        .expect(200);
    assert_eq!(september.body["lines"].as_array().unwrap().len(), 2);
    assert_eq!(september.body["vat"], "0.00");
    let tb = desk
        .books
        .trial_balance("from=2025-09-01&to=2025-09-30", cancelled)
        .await;
    assert_eq!(row(&tb.body, "4100")["debit"], "2000.00");
    assert_eq!(row(&tb.body, "4100")["credit"], "2000.00");
    app.shutdown().await;
}

#[tokio::test]
async fn aging_as_of_any_day_agrees_with_the_receivable_account_and_registers_list_withholding() {
    let app = spawn_app().await;
    let desk = Desk::open(&app, "AGING").await;
    let bank = desk.books.id("1121").to_owned();
    let (old, _) = desk
        .submitted_sale("2025-07-01", "100000.00", "S004.00")
        .await;
    let (recent, _) = desk.submitted_sale("2025-09-15", "10000.00", "STD").await;
    let received = desk
        .receipt(
            json!({"party_id": desk.customer, "date": "2025-09-20", "account_id": bank,
                        "amount": "12000.00", "vds_certificate": "M66-2025-0007",
                        "deductions": [{"kind": "vds", "amount": "3000.00"}],
                        "allocations": [{"invoice_id": old, "amount": "15000.00"}]}),
        )
        .await
        .expect(201);
    let position = received.position();
    let aging = async |as_of: &str| {
        let path = format!("aging?side=receivable&as_of={as_of}&min_position={position}");
        desk.get(&path).await
    };
    // Before the receipt and the second sale: 1,07,500.00 at 61 days.
    let august = aging("2025-08-31").await.expect(200);
    assert_eq!(august.body["total"], "107500.00");
    assert_eq!(
        august.body["totals"],
        json!(["0.00", "0.00", "107500.00", "0.00", "0.00"])
    );
    // At the end of October: 92,500.00 at 122 days and 11,500.00 at 46.
    let october = aging("2025-10-31").await.expect(200);
    assert_eq!(
        october.body["totals"],
        json!(["0.00", "11500.00", "0.00", "0.00", "92500.00"])
    );
    assert_eq!(october.body["items"][0]["bucket"], "121+");
    assert_eq!(october.body["items"][1]["number"], "SI-2025-26-000002");
    assert_eq!(october.body["parties"][0]["total"], "104000.00");
    // The open items are what the receivable account holds on each day.
    for (as_of, aged) in [("2025-08-31", &august), ("2025-10-31", &october)] {
        let tb = desk
            .books
            .trial_balance(&format!("from=2025-07-01&to={as_of}"), position)
            .await;
        assert_eq!(
            row(&tb.body, "1130")["closing"],
            aged.body["total"],
            "{as_of}"
        );
    }
    let _ = recent;

    let ledger = desk
        .get(&format!(
            "parties/{}/ledger?from=2025-09-01&min_position={position}",
            desk.customer
        ))
        .await
        .expect(200);
    assert_eq!(ledger.body["opening"], "107500.00");
    assert_eq!(ledger.body["closing"], "104000.00");
    assert_eq!(ledger.body["lines"].as_array().unwrap().len(), 2);

    let register = desk
        .get(&format!("withholding-register?min_position={position}"))
        .await
        .expect(200);
    assert_eq!(
        register.body["lines"],
        json!([{"date": "2025-09-20", "number": "RC-2025-26-000001", "party_id": desk.customer,
                "party_name": "Roads and Highways Department", "kind": "vds",
                "direction": "suffered", "amount": "3000.00", "certificate": "M66-2025-0007"}])
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_usd_invoice_paid_at_another_rate_posts_the_exchange_gain_and_leaves_nothing_open() {
    // Scenario 18.
    let app = spawn_app().await;
    let desk = Desk::open(&app, "USD").await;
    let invoice = desk
        .draft(
            "sales-invoices",
            json!({"party_id": desk.customer, "date": "2025-08-10", "currency": "USD",
                   "exchange_rate": "120.00",
                   "lines": [desk.line("1000.00", "ZERO", "4100")]}),
        )
        .await
        .expect(201)
        .id();
    desk.submit(&invoice).await.expect(200);
    let bank = desk.books.id("1121").to_owned();
    // A receipt in taka cannot settle it; one in dollars at 122.50 can.
    let in_taka = desk
        .receipt(
            json!({"party_id": desk.customer, "date": "2025-09-10", "account_id": bank,
                        "amount": "122500.00",
                        "allocations": [{"invoice_id": invoice, "amount": "1000.00"}]}),
        )
        .await
        .expect(409);
    assert_eq!(in_taka.problem(), "currency-mismatch");
    let received = desk
        .receipt(
            json!({"party_id": desk.customer, "date": "2025-09-10", "account_id": bank,
                        "amount": "1000.00", "currency": "USD", "exchange_rate": "122.50",
                        "project_id": desk.books.project,
                        "allocations": [{"invoice_id": invoice, "amount": "1000.00"}]}),
        )
        .await
        .expect(201);
    let position = received.position();
    let document = desk.document(&invoice, position).await;
    assert_eq!(document["total"], "120000.00");
    assert_eq!(document["foreign_total"], "1000.00");
    assert_eq!(document["currency"], "USD");
    assert_eq!(document["outstanding"], "0.00");
    assert_eq!(document["foreign_outstanding"], "0.00");
    let receipt = desk
        .get(&format!(
            "payments/{}?min_position={position}",
            received.id()
        ))
        .await
        .expect(200);
    assert_eq!(receipt.body["exchange_difference"], "2500.00");
    let tb = desk
        .books
        .trial_balance("from=2025-07-01&to=2026-06-30", position)
        .await;
    assert_eq!(row(&tb.body, "1121")["debit"], "122500.00");
    assert_eq!(row(&tb.body, "1130")["closing"], "0.00");
    assert_eq!(row(&tb.body, "4300")["credit"], "2500.00");
    app.shutdown().await;
}

#[tokio::test]
async fn a_usd_bill_withholds_in_dollars_takes_a_credit_note_and_is_paid_at_another_rate() {
    let app = spawn_app().await;
    let desk = Desk::open(&app, "USDBILL").await;
    let bank = desk.books.id("1121").to_owned();
    // USD 10,000.00 of construction at 120.00: VDS 750.00, TDS 3 % (the 12,00,000.00 it is worth
    // is in the first tier) 300.00 and retention 500.00 withheld; 9,200.00 owed.
    let bill = desk
        .draft(
            "purchase-bills",
            json!({"party_id": desk.subcontractor, "date": "2025-08-10", "currency": "USD",
                   "exchange_rate": "120.00", "tds_section": "CONTRACT", "retention": "5",
                   "lines": [desk.line("10000.00", "S004.00", "5120")]}),
        )
        .await
        .expect(201)
        .id();
    let position = desk.submit(&bill).await.expect(200).position();
    let document = desk.document(&bill, position).await;
    assert_eq!(document["foreign_total"], "10750.00");
    assert_eq!(document["outstanding"], "1104000.00");
    assert_eq!(document["foreign_outstanding"], "9200.00");
    let register = desk
        .get(&format!("withholding-register?min_position={position}"))
        .await
        .expect(200);
    let withheld: Vec<(&str, &str)> = register.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| {
            (
                line["kind"].as_str().unwrap(),
                line["amount"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        withheld,
        [
            ("retention", "60000.00"),
            ("tds", "36000.00"),
            ("vds", "90000.00")
        ]
    );
    // A credit note is in the bill's dollars at its rate: 1,075.00 of the 9,200.00.
    let path = desk.books.path(&format!("invoices/{bill}/credit-notes"));
    let note = desk
        .books
        .caller
        .post(
            &path,
            json!({"date": "2025-08-25", "reference": "Short delivery",
                   "lines": [desk.line("1000.00", "S004.00", "5120")]}),
        )
        .await
        .expect(201)
        .id();
    let position = desk.submit(&note).await.expect(200).position();
    let noted = desk.document(&note, position).await;
    assert_eq!(noted["currency"], "USD");
    assert_eq!(noted["exchange_rate"], "120.000000");
    assert_eq!(noted["total"], "129000.00");
    let document = desk.document(&bill, position).await;
    assert_eq!(document["outstanding"], "975000.00");
    assert_eq!(document["foreign_outstanding"], "8125.00");
    // Retention is released in taka only.
    let payment = |body: Value| {
        let path = desk.books.path("payments");
        let caller = &desk.books.caller;
        async move { caller.post(&path, body).await }
    };
    let refused = payment(json!({"party_id": desk.subcontractor, "date": "2025-09-10",
        "account_id": bank, "amount": "100.00", "currency": "USD", "exchange_rate": "121.00",
        "retention_release": "100.00"}))
    .await
    .expect(409);
    assert_eq!(refused.problem(), "foreign-currency");
    // The 8,125.00 left paid at 121.00 costs 9,83,125.00 for the 9,75,000.00 it carried.
    let paid = payment(json!({"party_id": desk.subcontractor, "date": "2025-09-10",
        "account_id": bank, "amount": "8125.00", "currency": "USD", "exchange_rate": "121.00",
        "project_id": desk.books.project,
        "allocations": [{"invoice_id": bill, "amount": "8125.00"}]}))
    .await
    .expect(201);
    let position = paid.position();
    let document = desk.document(&bill, position).await;
    assert_eq!(document["outstanding"], "0.00");
    assert_eq!(document["foreign_outstanding"], "0.00");
    let tb = desk
        .books
        .trial_balance("from=2025-07-01&to=2026-06-30", position)
        .await;
    assert_eq!(row(&tb.body, "2110")["closing"], "0.00");
    assert_eq!(row(&tb.body, "5260")["debit"], "8125.00");
    assert_eq!(row(&tb.body, "1121")["credit"], "983125.00");
    app.shutdown().await;
}

#[tokio::test]
async fn a_usd_receipt_deducts_vds_at_its_rate_and_its_advance_is_allocated_later() {
    let app = spawn_app().await;
    let desk = Desk::open(&app, "USDVDS").await;
    let bank = desk.books.id("1121").to_owned();
    let dollar_sale = async |price: &str, vat_code: &str| {
        let id = desk
            .draft(
                "sales-invoices",
                json!({"party_id": desk.customer, "date": "2025-08-10", "currency": "USD",
                       "exchange_rate": "120.00",
                       "lines": [desk.line(price, vat_code, "4100")]}),
            )
            .await
            .expect(201)
            .id();
        desk.submit(&id).await.expect(200);
        id
    };
    // The government body deducts the 75.00 VAT of a USD 1,000.00 construction invoice (at
    // 120.00, 1,29,000.00) and pays 1,000.00, both at 122.50.
    let sale = dollar_sale("1000.00", "S004.00").await;
    let received = desk
        .receipt(
            json!({"party_id": desk.customer, "date": "2025-09-10", "account_id": bank,
            "amount": "1000.00", "currency": "USD", "exchange_rate": "122.50",
            "project_id": desk.books.project, "vds_certificate": "M66-2025-0101",
            "deductions": [{"kind": "vds", "amount": "75.00"}],
            "allocations": [{"invoice_id": sale, "amount": "1075.00"}]}),
        )
        .await
        .expect(201);
    let position = received.position();
    let receipt = desk
        .get(&format!(
            "payments/{}?min_position={position}",
            received.id()
        ))
        .await
        .expect(200);
    assert_eq!(receipt.body["exchange_difference"], "2687.50");
    let register = desk
        .get(&format!("withholding-register?min_position={position}"))
        .await
        .expect(200);
    assert_eq!(register.body["lines"][0]["amount"], "9187.50");
    assert_eq!(register.body["lines"][0]["certificate"], "M66-2025-0101");
    // USD 500.00 received at 121.00 with nothing to settle is held (60,500.00); 200.00 of it
    // settles a USD invoice at 120.00 later (24,000.00 carried, 24,200.00 moved: 200.00 gain).
    let held = desk
        .receipt(
            json!({"party_id": desk.customer, "date": "2025-09-12", "account_id": bank,
            "amount": "500.00", "currency": "USD", "exchange_rate": "121.00",
            "project_id": desk.books.project}),
        )
        .await
        .expect(201)
        .id();
    let second = dollar_sale("1000.00", "EXEMPT").await;
    let allocate = |amount| desk.allocate(&held, "2025-09-15", &second, amount);
    assert_eq!(
        allocate("500.01").await.expect(409).problem(),
        "above-advance"
    );
    let position = allocate("200.00").await.expect(200).position();
    assert_eq!(
        desk.document(&second, position).await["foreign_outstanding"],
        "800.00"
    );
    let advance = desk
        .get(&format!("payments/{held}?min_position={position}"))
        .await
        .expect(200);
    assert_eq!(advance.body["advance"], "300.00");
    let tb = desk
        .books
        .trial_balance("from=2025-07-01&to=2026-06-30", position)
        .await;
    assert_eq!(row(&tb.body, "2170")["closing"], "-36300.00");
    assert_eq!(row(&tb.body, "4300")["credit"], "2887.50");
    assert_eq!(row(&tb.body, "1160")["debit"], "9187.50");
    app.shutdown().await;
}

#[tokio::test]
async fn an_advance_held_is_allocated_later_never_above_what_is_left_of_it() {
    let app = spawn_app().await;
    let desk = Desk::open(&app, "ADVANCE").await;
    let bank = desk.books.id("1121").to_owned();
    // 5,000.00 received before any invoice: all of it held.
    let received = desk
        .receipt(
            json!({"party_id": desk.customer, "date": "2025-08-01", "account_id": bank,
                        "amount": "5000.00"}),
        )
        .await
        .expect(201);
    let payment = received.id();
    let (invoice, _) = desk.submitted_sale("2025-08-10", "4000.00", "STD").await;
    let allocate = |amount| desk.allocate(&payment, "2025-08-15", &invoice, amount);
    assert_eq!(
        allocate("4600.01").await.expect(409).problem(),
        "above-outstanding"
    );
    let position = allocate("4600.00").await.expect(200).position();
    assert_eq!(
        desk.document(&invoice, position).await["outstanding"],
        "0.00"
    );
    let held = desk
        .get(&format!("payments/{payment}?min_position={position}"))
        .await
        .expect(200);
    assert_eq!(held.body["advance"], "400.00");
    let tb = desk
        .books
        .trial_balance("from=2025-07-01&to=2026-06-30", position)
        .await;
    assert_eq!(row(&tb.body, "2170")["closing"], "-400.00");
    assert_eq!(row(&tb.body, "1130")["closing"], "0.00");
    // What is left of the advance is 400.00.
    let (second, _) = desk.submitted_sale("2025-08-12", "1000.00", "STD").await;
    let above = desk
        .allocate(&payment, "2025-08-16", &second, "400.01")
        .await
        .expect(409);
    assert_eq!(above.problem(), "above-advance");
    app.shutdown().await;
}

/// The party's line in the retention register (as of `query`), read after `position`.
async fn retention_of(desk: &Desk<'_>, party: &str, query: &str, position: i64) -> Value {
    let register = desk
        .get(&format!(
            "retention-register?party_id={party}&min_position={position}{query}"
        ))
        .await
        .expect(200);
    let parties = register.body["parties"].as_array().unwrap();
    assert_eq!(parties.len(), 1, "{}", register.body);
    parties[0].clone()
}

#[tokio::test]
async fn retention_is_held_per_party_released_never_above_what_is_held_and_agrees_with_the_ledger()
{
    let app = spawn_app().await;
    let desk = Desk::open(&app, "RETAIN").await;
    let bank = desk.books.id("1121").to_owned();
    let bill = |price: &str, date: &str| {
        json!({"party_id": desk.subcontractor, "date": date,
               "lines": [desk.line(price, "S004.00", "5120")],
               "tds_section": "CONTRACT", "retention": "5"})
    };
    // The subcontractor's bill holds 50,000.00 and is paid its net 9,20,000.00.
    let first = desk
        .draft("purchase-bills", bill("1000000.00", "2025-08-20"))
        .await
        .expect(201)
        .id();
    desk.submit(&first).await.expect(200);
    let paid = desk
        .books
        .caller
        .post(
            &desk.books.path("payments"),
            json!({"party_id": desk.subcontractor, "date": "2025-08-30", "account_id": bank,
                   "amount": "920000.00",
                   "allocations": [{"invoice_id": first, "amount": "920000.00"}]}),
        )
        .await
        .expect(201);
    // The client holds back 5,750.00 of a 1,15,000.00 invoice as retention.
    let (sale, _) = desk.submitted_sale("2025-08-10", "100000.00", "STD").await;
    let received = desk
        .receipt(
            json!({"party_id": desk.customer, "date": "2025-08-25", "account_id": bank,
                        "amount": "109250.00",
                        "deductions": [{"kind": "retention", "amount": "5750.00"}],
                        "allocations": [{"invoice_id": sale, "amount": "115000.00"}]}),
        )
        .await
        .expect(201);
    let position = paid.position().max(received.position());
    let held = retention_of(&desk, &desk.subcontractor, "", position).await;
    assert_eq!(held["side"], "payable");
    assert_eq!(held["held"], "50000.00");
    assert_eq!(held["balance"], "50000.00");
    let customer = retention_of(&desk, &desk.customer, "", position).await;
    assert_eq!(customer["side"], "receivable");
    assert_eq!(customer["balance"], "5750.00");

    // Releasing more than is held is refused and writes nothing.
    let release = |amount: &str, date: &str| {
        json!({"party_id": desk.subcontractor, "date": date, "account_id": bank,
               "amount": amount, "retention_release": amount})
    };
    let refused = desk
        .books
        .caller
        .post(
            &desk.books.path("payments"),
            release("50000.01", "2025-09-15"),
        )
        .await
        .expect(409);
    assert_eq!(refused.problem(), "above-retention-held");
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("50000.00"),
        "{}",
        refused.body
    );
    let released = desk
        .books
        .caller
        .post(
            &desk.books.path("payments"),
            release("30000.00", "2025-09-15"),
        )
        .await
        .expect(201);
    let payment = desk
        .get(&format!(
            "payments/{}?min_position={}",
            released.id(),
            released.position()
        ))
        .await
        .expect(200);
    assert_eq!(payment.body["retention_release"], "30000.00");
    assert_eq!(payment.body["advance"], "0.00");
    // The client pays what it held back.
    let repaid = desk
        .receipt(
            json!({"party_id": desk.customer, "date": "2025-09-20", "account_id": bank,
                        "amount": "5750.00", "retention_release": "5750.00"}),
        )
        .await
        .expect(201);
    let position = released.position().max(repaid.position());
    let held = retention_of(&desk, &desk.subcontractor, "", position).await;
    assert_eq!(held["held"], "50000.00");
    assert_eq!(held["released"], "30000.00");
    assert_eq!(held["balance"], "20000.00");
    // As of the end of August nothing had been released.
    let august = retention_of(&desk, &desk.subcontractor, "&to=2025-08-31", position).await;
    assert_eq!(august["balance"], "50000.00");
    let tb = desk
        .books
        .trial_balance("from=2025-07-01&to=2026-06-30", position)
        .await;
    assert_eq!(row(&tb.body, "2130")["closing"], "-20000.00");
    assert_eq!(row(&tb.body, "1140")["closing"], "0.00");
    assert_eq!(
        retention_of(&desk, &desk.customer, "", position).await["balance"],
        "0.00"
    );

    // A bill cancelled while its retention is held takes it back; once released, it cannot.
    let second = desk
        .draft("purchase-bills", bill("100000.00", "2025-09-01"))
        .await
        .expect(201)
        .id();
    desk.submit(&second).await.expect(200);
    let cancel = async |id: &str| {
        let path = desk.books.path(&format!("invoices/{id}/cancel"));
        desk.books
            .caller
            .post(
                &path,
                json!({"date": "2025-09-25", "reason": "Entered twice"}),
            )
            .await
    };
    let cancelled = cancel(&second).await.expect(200);
    let held = retention_of(&desk, &desk.subcontractor, "", cancelled.position()).await;
    assert_eq!(held["held"], "50000.00");
    assert_eq!(held["balance"], "20000.00");
    let third = desk
        .draft("purchase-bills", bill("100000.00", "2025-09-02"))
        .await
        .expect(201)
        .id();
    desk.submit(&third).await.expect(200);
    let last = desk
        .books
        .caller
        .post(
            &desk.books.path("payments"),
            release("25000.00", "2025-09-26"),
        )
        .await
        .expect(201);
    let refused = cancel(&third).await.expect(409);
    assert_eq!(refused.problem(), "retention-released");
    let register = desk
        .get(&format!(
            "retention-register?from=2025-09-01&min_position={}",
            last.position()
        ))
        .await
        .expect(200);
    let kinds: Vec<&str> = register.body["moves"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|line| line["party_id"] == desk.subcontractor.as_str())
        .map(|line| line["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["held", "held", "released", "reversed", "released"],
        "{}",
        register.body
    );

    let csv = app
        .client
        .get(app.url(&desk.books.path("retention-register?format=csv")))
        .bearer_auth(&desk.books.caller.token)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("party,side,held,released,balance"), "{csv}");
    assert!(
        csv.contains("Karim Earthworks,payable,55000.00,55000.00,0.00"),
        "{csv}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn an_organization_has_an_empty_tax_book_until_it_adopts_the_rules() {
    let app = spawn_app().await;
    let books = Books::open(&app, "EMPTY").await;
    let book = books.caller.get(&books.path("tax-book")).await.expect(200);
    assert_eq!(book.body["set_up"], false);
    assert_eq!(book.body["vat_codes"], json!([]));
    assert_eq!(book.body["version"], 0);
    books
        .caller
        .post(&books.path("tax-book/standard"), json!({}))
        .await
        .expect(200);
    let book = books.caller.get(&books.path("tax-book")).await.expect(200);
    assert_eq!(book.body["set_up"], true);
    assert!(!book.body["vat_codes"].as_array().unwrap().is_empty());
    // An organization that does not exist has no book at all.
    let missing = format!("/v1/organizations/{}/tax-book", uuid::Uuid::new_v4());
    books.caller.get(&missing).await.expect(404);
    app.shutdown().await;
}
