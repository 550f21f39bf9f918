//! The general ledger through the HTTP API: the scenarios of domain-finance.md (1–12, 19, 23–26),
//! and postings raced against closes, freezes and archives (design.md D12).

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Value, json};

use crate::http::{Caller, Reply, TestApp, spawn_app};

/// An organization with divisions, projects P1 (site S1) and P2 (site S2), the standard chart
/// and fiscal year 2025-26 open.
pub(crate) struct Books<'a> {
    pub(crate) caller: Caller<'a>,
    pub(crate) org: String,
    pub(crate) project: String,
    pub(crate) site: String,
    pub(crate) other_project: String,
    pub(crate) other_site: String,
    pub(crate) accounts: HashMap<String, String>,
}

impl<'a> Books<'a> {
    pub(crate) async fn open(app: &'a TestApp, code: &str) -> Books<'a> {
        Self::open_as(app.caller(&["admin"]), code).await
    }

    /// As [`Books::open`], by `caller` (an administrator).
    pub(crate) async fn open_as(caller: Caller<'a>, code: &str) -> Books<'a> {
        let tree = caller.create_hierarchy(code).await;
        let org = tree.org.clone();
        let other_project = caller
            .post(
                &format!("/v1/organizations/{org}/projects"),
                json!({"division_id": tree.division, "name": "Metro Depot", "code": "P2"}),
            )
            .await
            .expect(201)
            .id();
        let other_site = caller
            .post(
                &format!("/v1/organizations/{org}/sites"),
                json!({"project_id": other_project, "name": "Uttara", "code": "S2"}),
            )
            .await
            .expect(201)
            .id();
        caller
            .post(
                &format!("/v1/organizations/{org}/accounts/standard-chart"),
                json!({}),
            )
            .await
            .expect(200);
        let year = caller
            .post(
                &format!("/v1/organizations/{org}/fiscal-years"),
                json!({"start": "2025-07-01"}),
            )
            .await
            .expect(200);
        let chart = caller
            .get(&format!(
                "/v1/organizations/{org}/accounts?min_position={}",
                year.position()
            ))
            .await
            .expect(200);
        let mut accounts = HashMap::new();
        fn walk(node: &Value, accounts: &mut HashMap<String, String>) {
            accounts.insert(
                node["code"].as_str().unwrap().to_owned(),
                node["id"].as_str().unwrap().to_owned(),
            );
            for child in node["children"].as_array().unwrap() {
                walk(child, accounts);
            }
        }
        for root in chart.body["roots"].as_array().unwrap() {
            walk(root, &mut accounts);
        }
        Books {
            caller,
            org,
            project: tree.project,
            site: tree.site,
            other_project,
            other_site,
            accounts,
        }
    }

    pub(crate) fn id(&self, code: &str) -> &str {
        &self.accounts[code]
    }

    pub(crate) fn path(&self, rest: &str) -> String {
        format!("/v1/organizations/{}/{rest}", self.org)
    }

    pub(crate) async fn post_entry(&self, body: Value) -> Reply {
        self.caller.post(&self.path("journal-entries"), body).await
    }

    pub(crate) fn line(&self, code: &str, debit: &str, credit: &str) -> Value {
        let mut line = json!({"account_id": self.id(code)});
        if !debit.is_empty() {
            line["debit"] = json!(debit);
        }
        if !credit.is_empty() {
            line["credit"] = json!(credit);
        }
        line
    }

    /// A line on a profit-and-loss account, with project P1.
    pub(crate) fn pl_line(&self, code: &str, debit: &str, credit: &str) -> Value {
        let mut line = self.line(code, debit, credit);
        line["project_id"] = json!(self.project);
        line
    }

    pub(crate) fn entry(&self, date: &str, lines: Vec<Value>) -> Value {
        json!({"date": date, "narration": "Site rent", "reference": "RENT", "document_number": "JV-1", "lines": lines})
    }

    /// Dr Rent 50,000.00 (P1) / Cr Cash 50,000.00.
    pub(crate) fn rent(&self, date: &str) -> Value {
        self.entry(
            date,
            vec![
                self.pl_line("5220", "50000.00", ""),
                self.line("1110", "", "50000.00"),
            ],
        )
    }

    pub(crate) async fn trial_balance(&self, query: &str, position: i64) -> Reply {
        self.caller
            .get(&self.path(&format!("trial-balance?{query}&min_position={position}")))
            .await
            .expect(200)
    }

    pub(crate) async fn ledger_command(&self, method: Method, rest: &str, body: Value) -> Reply {
        self.caller
            .send(self.caller.request(method, &self.path(rest)).json(&body))
            .await
    }

    pub(crate) async fn close_period(&self, period: &str) -> Reply {
        self.ledger_command(Method::POST, &format!("periods/{period}/close"), json!({}))
            .await
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

fn invalid_names(reply: &Reply) -> Vec<String> {
    reply.body["invalid-params"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|param| param["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// 422 naming `field`, and nothing written.
async fn refused_naming(app: &TestApp, books: &Books<'_>, body: Value, field: &str) {
    let before = app.event_count().await;
    let reply = books.post_entry(body).await.expect(422);
    assert_eq!(reply.problem(), "invalid-input");
    assert_eq!(invalid_names(&reply), [field], "{reply:?}");
    assert_eq!(
        app.event_count().await,
        before,
        "a refused entry wrote events"
    );
}

/// 409 of the rule `kind`, and nothing written.
async fn refused_by(app: &TestApp, books: &Books<'_>, body: Value, kind: &str) -> Reply {
    let before = app.event_count().await;
    let reply = books.post_entry(body).await.expect(409);
    assert_eq!(reply.problem(), kind, "{reply:?}");
    assert_eq!(
        app.event_count().await,
        before,
        "a refused entry wrote events"
    );
    reply
}

#[tokio::test]
async fn scenario_1_a_balanced_entry_posts_and_the_trial_balance_balances() {
    let app = spawn_app().await;
    let books = Books::open(&app, "FIN1").await;
    let posted = books.post_entry(books.rent("2025-08-10")).await.expect(201);
    let tb = books
        .trial_balance("from=2025-07-01&to=2026-06-30", posted.position())
        .await;
    assert_eq!(tb.body["totals"]["debit"], "50000.00");
    assert_eq!(tb.body["totals"]["credit"], "50000.00");
    assert_eq!(tb.body["balanced"], true);
    assert_eq!(
        row(&tb.body, "5220")["closing"],
        "50000.00",
        "rent has a debit balance"
    );
    assert_eq!(row(&tb.body, "1110")["closing"], "-50000.00");
    let entry = books
        .caller
        .get(&format!(
            "{}?min_position={}",
            posted.header("location").unwrap(),
            posted.position()
        ))
        .await
        .expect(200);
    assert_eq!(entry.body["narration"], "Site rent");
    assert_eq!(entry.body["document_number"], "JV-1");
    assert_eq!(entry.body["reference"], "RENT");
    assert_eq!(entry.body["total"], "50000.00");
    assert_eq!(entry.body["lines"][0]["debit"], "50000.00");
    assert_eq!(entry.body["lines"][0]["project_id"], books.project.as_str());
    // A trial balance cut mid-month reads the cut days from the lines: the same figures.
    let cut = books
        .trial_balance("from=2025-08-05&to=2025-08-10", posted.position())
        .await;
    assert_eq!(row(&cut.body, "5220")["debit"], "50000.00");
    let before = books
        .trial_balance("from=2025-08-11&to=2025-08-31", posted.position())
        .await;
    assert_eq!(row(&before.body, "5220")["opening"], "50000.00");
    assert_eq!(row(&before.body, "5220")["debit"], "0.00");
    app.shutdown().await;
}

#[tokio::test]
async fn scenarios_2_3_23_unbalanced_malformed_and_inexact_entries_are_refused_and_write_nothing() {
    let app = spawn_app().await;
    let books = Books::open(&app, "FIN2").await;
    let unbalanced = books.entry(
        "2025-08-10",
        vec![
            books.pl_line("5220", "50000.00", ""),
            books.line("1110", "", "49999.99"),
        ],
    );
    let reply = refused_by(&app, &books, unbalanced, "unbalanced").await;
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .contains("differ by 0.01"),
        "{reply:?}"
    );

    let one_line = books.entry("2025-08-10", vec![books.line("1110", "5.00", "")]);
    refused_by(&app, &books, one_line, "unbalanced").await;
    let none = books.entry("2025-08-10", vec![]);
    refused_by(&app, &books, none, "line-count").await;
    let both = books.entry(
        "2025-08-10",
        vec![
            books.line("1110", "5.00", "5.00"),
            books.line("1121", "", "5.00"),
        ],
    );
    refused_by(&app, &books, both, "line-sides").await;
    let zero = books.entry(
        "2025-08-10",
        vec![books.line("1110", "0.00", ""), books.line("1121", "", "0")],
    );
    refused_by(&app, &books, zero, "line-sides").await;
    let negative = books.entry(
        "2025-08-10",
        vec![
            books.line("1110", "5.00", ""),
            books.line("1121", "", "-5.00"),
        ],
    );
    refused_naming(&app, &books, negative, "lines[1].credit").await;
    for bad in ["1.234", "NaN", "99999999999999", "1e3", " 5"] {
        let body = books.entry(
            "2025-08-10",
            vec![books.line("1110", bad, ""), books.line("1121", "", "5.00")],
        );
        refused_naming(&app, &books, body, "lines[0].debit").await;
    }
    // A bare JSON number is not an amount.
    let mut number = books.rent("2025-08-10");
    number["lines"][0]["debit"] = json!(50000.0);
    let before = app.event_count().await;
    let reply = books.post_entry(number).await.expect(422);
    assert_eq!(reply.problem(), "invalid-input");
    assert_eq!(app.event_count().await, before);
    // "12.5" is 1,250 paisa.
    let posted = books
        .post_entry(books.entry(
            "2025-08-10",
            vec![
                books.line("1110", "12.5", ""),
                books.line("1121", "", "12.50"),
            ],
        ))
        .await
        .expect(201);
    let entry = books
        .caller
        .get(&format!(
            "{}?min_position={}",
            posted.header("location").unwrap(),
            posted.position()
        ))
        .await
        .expect(200);
    assert_eq!(entry.body["lines"][0]["debit"], "12.50");
    assert_eq!(entry.body["lines"][1]["credit"], "12.50");
    app.shutdown().await;
}

#[tokio::test]
async fn scenario_4_group_frozen_and_disabled_accounts_take_no_lines() {
    let app = spawn_app().await;
    let books = Books::open(&app, "FIN4").await;
    let group = books.entry(
        "2025-08-10",
        vec![
            books.line("1100", "5.00", ""),
            books.line("1110", "", "5.00"),
        ],
    );
    refused_by(&app, &books, group, "group-account").await;
    let cash = books.id("1110").to_owned();
    books
        .ledger_command(Method::POST, &format!("accounts/{cash}/freeze"), json!({}))
        .await
        .expect(200);
    refused_by(&app, &books, books.rent("2025-08-10"), "account-frozen").await;
    books
        .ledger_command(
            Method::POST,
            &format!("accounts/{cash}/unfreeze"),
            json!({}),
        )
        .await
        .expect(200);
    books
        .ledger_command(Method::POST, &format!("accounts/{cash}/disable"), json!({}))
        .await
        .expect(200);
    refused_by(&app, &books, books.rent("2025-08-10"), "account-disabled").await;
    books
        .ledger_command(Method::POST, &format!("accounts/{cash}/enable"), json!({}))
        .await
        .expect(200);
    books.post_entry(books.rent("2025-08-10")).await.expect(201);
    app.shutdown().await;
}

#[tokio::test]
async fn scenario_5_closed_periods_and_dates_outside_every_year_do_not_post() {
    let app = spawn_app().await;
    let books = Books::open(&app, "FIN5").await;
    books.close_period("2025-07-01").await.expect(200);
    refused_by(&app, &books, books.rent("2025-07-31"), "period-closed").await;
    books.post_entry(books.rent("2025-08-01")).await.expect(201);
    refused_by(&app, &books, books.rent("2027-01-01"), "no-fiscal-year").await;
    // The lock date: nothing on or before it.
    books
        .ledger_command(
            Method::PUT,
            "ledger/lock-date",
            json!({"lock_date": "2025-08-31"}),
        )
        .await
        .expect(200);
    refused_by(&app, &books, books.rent("2025-08-31"), "before-lock-date").await;
    books.post_entry(books.rent("2025-09-01")).await.expect(201);
    // A period is named by its first day.
    let reply = books.close_period("2025-09-15").await.expect(404);
    assert_eq!(reply.problem(), "not-found");
    app.shutdown().await;
}

#[tokio::test]
async fn scenarios_6_7_a_reversal_swaps_sides_links_both_restores_balances_and_happens_once() {
    let app = spawn_app().await;
    let books = Books::open(&app, "FIN6").await;
    let original = books.post_entry(books.rent("2025-07-10")).await.expect(201);
    let original_id = original.id();
    // There is no way to edit a posted entry.
    let edit = books
        .caller
        .send(
            books
                .caller
                .request(
                    Method::PATCH,
                    &books.path(&format!("journal-entries/{original_id}")),
                )
                .json(&json!({"narration": "changed"})),
        )
        .await;
    assert_eq!(edit.status, 405, "{edit:?}");
    books.close_period("2025-07-01").await.expect(200);
    let reverse = |date: &str| {
        let path = books.path(&format!("journal-entries/{original_id}/reverse"));
        let body = json!({"date": date});
        let books = &books;
        async move { books.caller.post(&path, body).await }
    };
    let before = app.event_count().await;
    let reply = reverse("2025-07-31").await.expect(409);
    assert_eq!(reply.problem(), "period-closed");
    assert_eq!(app.event_count().await, before);
    let reversal = reverse("2025-08-02").await.expect(201);
    let reversal_id = reversal.id();
    assert_ne!(reversal_id, original_id);
    let again = reverse("2025-08-03").await.expect(409);
    assert_eq!(again.problem(), "already-reversed");

    let read = |id: &str| {
        let path = books.path(&format!(
            "journal-entries/{id}?min_position={}",
            reversal.position()
        ));
        let books = &books;
        async move { books.caller.get(&path).await }
    };
    let original = read(&original_id).await.expect(200);
    let reversal = read(&reversal_id).await.expect(200);
    assert_eq!(original.body["reversed_by"], reversal_id.as_str());
    assert_eq!(reversal.body["reverses"], original_id.as_str());
    assert_eq!(reversal.body["kind"], "reversal");
    assert_eq!(reversal.body["date"], "2025-08-02");
    assert_eq!(reversal.body["lines"][0]["credit"], "50000.00");
    assert_eq!(reversal.body["lines"][1]["debit"], "50000.00");
    let position = reversal.body["position"].as_i64().unwrap();
    let tb = books
        .trial_balance("from=2025-07-01&to=2026-06-30", position)
        .await;
    assert_eq!(row(&tb.body, "5220")["closing"], "0.00");
    assert_eq!(row(&tb.body, "1110")["closing"], "0.00");
    assert_eq!(tb.body["totals"]["debit"], "100000.00");
    app.shutdown().await;
}

#[tokio::test]
async fn scenarios_8_9_parties_projects_sites_and_opening_entries() {
    let app = spawn_app().await;
    let books = Books::open(&app, "FIN8").await;
    let sale = |party: bool| {
        let mut receivable = books.line("1130", "115000.00", "");
        if party {
            receivable["party"] =
                json!({"kind": "customer", "id": "0190a3c4-0000-7000-8000-000000000001"});
        }
        books.entry(
            "2025-08-10",
            vec![receivable, books.pl_line("4100", "", "115000.00")],
        )
    };
    let reply = refused_by(&app, &books, sale(false), "party-required").await;
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("lines[0].party: "),
        "{reply:?}"
    );
    books.post_entry(sale(true)).await.expect(201);
    let no_project = books.entry(
        "2025-08-10",
        vec![
            books.line("5220", "5.00", ""),
            books.line("1110", "", "5.00"),
        ],
    );
    refused_by(&app, &books, no_project, "project-required").await;
    books
        .ledger_command(
            Method::PUT,
            "ledger/settings",
            json!({"require_site": true}),
        )
        .await
        .expect(200);
    refused_by(&app, &books, books.rent("2025-08-10"), "site-required").await;
    let mut with_site = books.rent("2025-08-10");
    with_site["lines"][0]["site_id"] = json!(books.site);
    books.post_entry(with_site).await.expect(201);
    // Scenario 9: an opening entry touches no profit-and-loss account.
    let mut opening = books.rent("2025-07-01");
    opening["kind"] = json!("opening");
    opening["lines"][0]["site_id"] = json!(books.site);
    refused_by(&app, &books, opening, "opening-entry-profit-and-loss").await;
    let mut opening = books.entry(
        "2025-07-01",
        vec![
            books.line("1121", "1000000.00", ""),
            books.line("3100", "", "1000000.00"),
        ],
    );
    opening["kind"] = json!("opening");
    books.post_entry(opening).await.expect(201);
    app.shutdown().await;
}

#[tokio::test]
async fn scenario_10_another_tenants_account_is_simply_not_found_and_sites_stay_in_their_project() {
    let app = spawn_app().await;
    let ours = Books::open(&app, "FINA").await;
    let theirs = Books::open(&app, "FINB").await;
    let mut foreign = ours.rent("2025-08-10");
    foreign["lines"][1]["account_id"] = json!(theirs.id("1110"));
    let before = app.event_count().await;
    let foreign_reply = ours.post_entry(foreign).await.expect(404);
    let mut unknown = ours.rent("2025-08-10");
    let stranger = "0190a3c4-0000-7000-8000-0000000000ff";
    unknown["lines"][1]["account_id"] = json!(stranger);
    let unknown_reply = ours.post_entry(unknown).await.expect(404);
    assert_eq!(app.event_count().await, before);
    // Word for word the same answer, but for the id itself.
    let text = |reply: &Reply, id: &str| reply.body.to_string().replace(id, "<id>");
    assert_eq!(
        text(&foreign_reply, theirs.id("1110")),
        text(&unknown_reply, stranger)
    );
    assert_eq!(foreign_reply.problem(), "not-found");
    let detail = foreign_reply.body["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("lines[1].account_id: account"),
        "{detail}"
    );
    // A site of another project of the same organization.
    let mut wrong_site = ours.rent("2025-08-10");
    wrong_site["lines"][0]["site_id"] = json!(ours.other_site);
    refused_by(&app, &ours, wrong_site, "site-not-in-project").await;
    // Another tenant's organization is not found at all.
    let reply = ours
        .caller
        .post(&theirs.path("journal-entries"), theirs.rent("2025-08-10"))
        .await
        .expect(404);
    assert_eq!(reply.problem(), "not-found");
    app.shutdown().await;
}

#[tokio::test]
async fn scenario_11_an_account_with_postings_keeps_its_kind_currency_and_existence() {
    let app = spawn_app().await;
    let books = Books::open(&app, "FIN11").await;
    books.post_entry(books.rent("2025-08-10")).await.expect(201);
    let rent = books.id("5220").to_owned();
    for body in [json!({"is_group": true}), json!({"currency": "USD"})] {
        let reply = books
            .ledger_command(Method::PATCH, &format!("accounts/{rent}"), body)
            .await
            .expect(409);
        assert_eq!(reply.problem(), "account-has-postings");
    }
    let reply = books
        .ledger_command(Method::DELETE, &format!("accounts/{rent}"), json!({}))
        .await
        .expect(409);
    assert_eq!(reply.problem(), "account-has-postings");
    // An unused one can change and go; renaming is always allowed.
    let utilities = books.id("5230").to_owned();
    books
        .ledger_command(
            Method::PATCH,
            &format!("accounts/{rent}"),
            json!({"name": "Site Rent"}),
        )
        .await
        .expect(200);
    books
        .ledger_command(
            Method::PATCH,
            &format!("accounts/{utilities}"),
            json!({"currency": "USD"}),
        )
        .await
        .expect(200);
    let deleted = books
        .ledger_command(Method::DELETE, &format!("accounts/{utilities}"), json!({}))
        .await
        .expect(200);
    let gone = books
        .caller
        .get(&books.path(&format!(
            "accounts/{utilities}?min_position={}",
            deleted.position()
        )))
        .await
        .expect(404);
    assert_eq!(gone.problem(), "not-found");
    // Codes are unique in the organization.
    let reply = books
        .caller
        .post(
            &books.path("accounts"),
            json!({"code": "1110", "name": "Petty cash", "parent_id": books.id("1100")}),
        )
        .await
        .expect(409);
    assert_eq!(reply.problem(), "duplicate-code");
    let created = books
        .caller
        .post(&books.path("accounts"), json!({"code": "1111", "name": "Petty Cash", "parent_id": books.id("1100"), "account_type": "cash"}))
        .await
        .expect(201);
    let account = books
        .caller
        .get(&format!(
            "{}?min_position={}",
            created.header("location").unwrap(),
            created.position()
        ))
        .await
        .expect(200);
    assert_eq!(account.body["root_type"], "asset");
    assert_eq!(account.body["currency"], "BDT");
    app.shutdown().await;
}

#[tokio::test]
async fn scenario_12_fiscal_years_are_one_year_unless_short_and_never_overlap() {
    let app = spawn_app().await;
    let books = Books::open(&app, "FIN12").await;
    let path = books.path("fiscal-years");
    let open = |body: Value| books.caller.post(&path, body);
    let reply = open(json!({"start": "2026-07-01", "end": "2027-06-29"}))
        .await
        .expect(409);
    assert_eq!(reply.problem(), "fiscal-year-length");
    let reply = open(json!({"start": "2026-01-01", "end": "2026-06-30", "short": true}))
        .await
        .expect(409);
    assert_eq!(reply.problem(), "fiscal-year-overlaps");
    let reply = open(json!({"start": "2027-01-01"})).await.expect(409);
    assert_eq!(reply.problem(), "fiscal-year-start");
    let next = open(json!({"start": "2026-07-01", "end": "2027-06-30"}))
        .await
        .expect(200);
    let ledger = books
        .caller
        .get(&books.path(&format!("ledger?min_position={}", next.position())))
        .await
        .expect(200);
    let years = ledger.body["fiscal_years"].as_array().unwrap();
    assert_eq!(years.len(), 2);
    assert_eq!(years[1]["end"], "2027-06-30");
    assert_eq!(years[0]["periods"].as_array().unwrap().len(), 12);
    assert_eq!(years[0]["periods"][1]["start"], "2025-08-01");
    assert_eq!(years[0]["periods"][1]["end"], "2025-08-31");
    app.shutdown().await;
}

#[tokio::test]
async fn scenario_19_splits_use_the_largest_remainder_and_rounding_differences_are_explicit_lines()
{
    let app = spawn_app().await;
    let books = Books::open(&app, "FIN19").await;
    let split = json!({
        "date": "2025-08-10",
        "narration": "Shared site rent",
        "lines": [books.line("1110", "", "100.00")],
        "splits": [{"amount": "100.00", "side": "debit", "parts": [
            {"weight": 1, "account_id": books.id("5220"), "project_id": books.project},
            {"weight": 1, "account_id": books.id("5220"), "project_id": books.project},
            {"weight": 1, "account_id": books.id("5220"), "project_id": books.other_project},
        ]}]
    });
    let posted = books.post_entry(split).await.expect(201);
    let entry = books
        .caller
        .get(&format!(
            "{}?min_position={}",
            posted.header("location").unwrap(),
            posted.position()
        ))
        .await
        .expect(200);
    let debits: Vec<&str> = entry.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["debit"].as_str().unwrap())
        .collect();
    assert_eq!(debits, ["0.00", "33.33", "33.33", "33.34"]);
    // Project P&L splits the rent by project.
    let p2 = books
        .caller
        .get(&books.path(&format!(
            "profit-and-loss?from=2025-07-01&to=2026-06-30&project_id={}",
            books.other_project
        )))
        .await
        .expect(200);
    assert_eq!(p2.body["expenses"]["total"], "33.34");
    assert_eq!(p2.body["net_profit"], "-33.34");

    books
        .ledger_command(
            Method::PUT,
            "ledger/settings",
            json!({"round_off_account_id": books.id("5270"), "round_off_allowance": "0.05"}),
        )
        .await
        .expect(200);
    let thirds = |credit: &str| {
        let mut body = books.entry(
            "2025-08-11",
            vec![
                books.pl_line("5220", "33.33", ""),
                books.pl_line("5220", "33.33", ""),
                books.pl_line("5220", "33.33", ""),
                books.line("1110", "", credit),
            ],
        );
        body["round_off"] = json!(true);
        body
    };
    let before = app.event_count().await;
    let reply = books.post_entry(thirds("100.06")).await.expect(409);
    assert_eq!(reply.problem(), "above-round-off-allowance");
    assert_eq!(app.event_count().await, before);
    let posted = books.post_entry(thirds("100.00")).await.expect(201);
    let entry = books
        .caller
        .get(&format!(
            "{}?min_position={}",
            posted.header("location").unwrap(),
            posted.position()
        ))
        .await
        .expect(200);
    let last = entry.body["lines"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["account_id"], books.id("5270"));
    assert_eq!(last["debit"], "0.01");
    assert_eq!(last["memo"], "Round-off");
    app.shutdown().await;
}

#[tokio::test]
async fn scenario_25_one_idempotency_key_posts_once_and_one_stale_version_conflicts_once() {
    let app = spawn_app().await;
    let books = Books::open(&app, "FIN25").await;
    let send = || {
        books.caller.send(
            books
                .caller
                .request(Method::POST, &books.path("journal-entries"))
                .header("idempotency-key", "jv-2025-08-0001")
                .json(&books.rent("2025-08-10")),
        )
    };
    let first = send().await.expect(201);
    let count = app.event_count().await;
    let again = send().await.expect(201);
    assert_eq!(again.id(), first.id());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.event_count().await, count);

    let ledger = books
        .caller
        .get(&books.path(&format!("ledger?min_position={}", first.position())))
        .await
        .expect(200);
    let version = ledger.header("etag").unwrap().to_owned();
    let freeze = |code: &str| {
        books.caller.send(
            books
                .caller
                .request(
                    Method::POST,
                    &books.path(&format!("accounts/{}/freeze", books.id(code))),
                )
                .header("if-match", version.clone()),
        )
    };
    let (a, b) = tokio::join!(freeze("5230"), freeze("5240"));
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn scenario_26_year_end_closing_moves_the_result_to_retained_earnings() {
    let app = spawn_app().await;
    let books = Books::open(&app, "FIN26").await;
    let mut sale = books.entry(
        "2025-09-10",
        vec![
            books.line("1121", "300000.00", ""),
            books.pl_line("4100", "", "300000.00"),
        ],
    );
    sale["narration"] = json!("Running bill 1");
    books.post_entry(sale).await.expect(201);
    books.post_entry(books.rent("2025-08-10")).await.expect(201);
    let close_year = |start: &str| {
        let path = books.path(&format!("fiscal-years/{start}/close"));
        let books = &books;
        async move { books.caller.post(&path, json!({})).await }
    };
    let reply = close_year("2025-07-01").await.expect(409);
    assert_eq!(reply.problem(), "periods-open");
    // The next year cannot close before this one.
    books
        .caller
        .post(&books.path("fiscal-years"), json!({"start": "2026-07-01"}))
        .await
        .expect(200);
    for month in 7..=18 {
        let (year, month) = if month > 12 {
            (2027, month - 12)
        } else {
            (2026, month)
        };
        books
            .close_period(&format!("{year}-{month:02}-01"))
            .await
            .expect(200);
    }
    let reply = close_year("2026-07-01").await.expect(409);
    assert_eq!(reply.problem(), "previous-year-open");
    for month in 7..=18 {
        let (year, month) = if month > 12 {
            (2026, month - 12)
        } else {
            (2025, month)
        };
        books
            .close_period(&format!("{year}-{month:02}-01"))
            .await
            .expect(200);
    }
    let closed = close_year("2025-07-01").await.expect(200);
    let position = closed.position();
    // After the closing: P&L accounts at zero, the result in retained earnings.
    let tb = books
        .trial_balance("from=2025-07-01&to=2026-06-30", position)
        .await;
    assert_eq!(row(&tb.body, "4100")["closing"], "0.00");
    assert_eq!(row(&tb.body, "5220")["closing"], "0.00");
    assert_eq!(row(&tb.body, "3200")["closing"], "-250000.00");
    assert_eq!(tb.body["balanced"], true);
    // The year's P&L still shows the year's result: closing entries are left out.
    let pl = books
        .caller
        .get(&books.path(&format!(
            "profit-and-loss?from=2025-07-01&to=2026-06-30&min_position={position}"
        )))
        .await
        .expect(200);
    assert_eq!(pl.body["net_profit"], "250000.00");
    let sheet = books
        .caller
        .get(&books.path(&format!(
            "balance-sheet?as_of=2026-06-30&min_position={position}"
        )))
        .await
        .expect(200);
    assert_eq!(sheet.body["balanced"], true, "{}", sheet.body);
    assert_eq!(sheet.body["assets"]["total"], "250000.00");
    assert_eq!(sheet.body["equity"]["total"], "250000.00");
    // A closed year's periods stay closed; nothing posts into it.
    let reply = books
        .ledger_command(Method::POST, "periods/2025-08-01/reopen", json!({}))
        .await
        .expect(409);
    assert_eq!(reply.problem(), "fiscal-year-closed");
    // The following year closes now.
    close_year("2026-07-01").await.expect(200);
    app.shutdown().await;
}

/// Trial balances over ranges that match fiscal years, cross them, cut months or lie before
/// every posting read whole years, months and days from different tables: each must equal the
/// sums of the posted lines.
#[tokio::test]
async fn trial_balances_over_any_range_equal_the_posted_lines() {
    let app = spawn_app().await;
    let books = Books::open(&app, "FINTB").await;
    books
        .caller
        .post(&books.path("fiscal-years"), json!({"start": "2026-07-01"}))
        .await
        .expect(200);
    // Rent paid on days at year, month and range edges; each amount distinct.
    let days = [
        "2025-07-01",
        "2025-07-15",
        "2025-07-31",
        "2025-08-01",
        "2025-12-31",
        "2026-01-01",
        "2026-03-10",
        "2026-06-30",
        "2026-07-01",
        "2026-09-10",
        "2027-02-15",
        "2027-06-30",
    ];
    let mut posted: Vec<(&str, i64)> = Vec::new();
    let mut position = 0;
    for (index, day) in days.iter().enumerate() {
        let paisa = 100_000 * (index as i64 + 1) + index as i64;
        let amount = taka(paisa);
        let reply = books
            .post_entry(books.entry(
                day,
                vec![
                    books.pl_line("5220", &amount, ""),
                    books.line("1110", "", &amount),
                ],
            ))
            .await
            .expect(201);
        position = reply.position();
        posted.push((day, paisa));
    }
    let ranges = [
        ("2025-07-01", "2026-06-30"),
        ("2026-07-01", "2027-06-30"),
        ("2025-07-01", "2027-06-30"),
        ("2025-08-15", "2026-09-10"),
        ("2026-03-01", "2026-03-31"),
        ("2026-06-30", "2026-07-01"),
        ("2024-01-01", "2025-12-31"),
        ("2025-07-10", "2025-07-20"),
        ("2026-01-01", "2027-12-31"),
        ("2027-07-01", "2027-12-31"),
    ];
    for (from, to) in ranges {
        let before: i64 = posted
            .iter()
            .filter(|(d, _)| *d < from)
            .map(|(_, p)| p)
            .sum();
        let inside: i64 = posted
            .iter()
            .filter(|(d, _)| *d >= from && *d <= to)
            .map(|(_, p)| p)
            .sum();
        for dimension in ["", "&by_dimension=true"] {
            let tb = books
                .trial_balance(&format!("from={from}&to={to}{dimension}"), position)
                .await;
            let range = format!("{from}..{to}{dimension}");
            assert_eq!(tb.body["balanced"], true, "{range}: {}", tb.body);
            assert_eq!(tb.body["totals"]["debit"], taka(inside), "{range}");
            if before == 0 && inside == 0 {
                assert_eq!(tb.body["rows"], json!([]), "{range}");
                continue;
            }
            let (rent, cash) = (row(&tb.body, "5220"), row(&tb.body, "1110"));
            assert_eq!(rent["opening"], taka(before), "{range}");
            assert_eq!(rent["debit"], taka(inside), "{range}");
            assert_eq!(rent["closing"], taka(before + inside), "{range}");
            assert_eq!(
                cash["opening"],
                format!("-{}", taka(before)).replace("-0.00", "0.00"),
                "{range}"
            );
            assert_eq!(cash["credit"], taka(inside), "{range}");
        }
    }
    app.shutdown().await;
}

#[tokio::test]
async fn reports_page_the_ledger_with_running_balances_and_export_csv() {
    let app = spawn_app().await;
    let books = Books::open(&app, "FINR").await;
    let mut last = 0;
    for day in 1..=12 {
        let body = books.entry(
            &format!("2025-08-{day:02}"),
            vec![
                books.pl_line("5220", &format!("{day}.00"), ""),
                books.line("1110", "", &format!("{day}.00")),
            ],
        );
        last = books.post_entry(body).await.expect(201).position();
    }
    let rent = books.id("5220");
    let mut balances = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("accounts/{rent}/ledger?limit=5&min_position={last}");
        if let Some(cursor) = &after {
            path.push_str(&format!("&after={cursor}"));
        }
        let page = books.caller.get(&books.path(&path)).await.expect(200);
        for item in page.body["items"].as_array().unwrap() {
            balances.push(item["balance"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(cursor) => after = Some(cursor.to_owned()),
            None => break,
        }
    }
    let expected: Vec<String> = (1..=12)
        .map(|n| format!("{}.00", n * (n + 1) / 2))
        .collect();
    assert_eq!(balances, expected);
    // From a date: the opening balance carries the days before.
    let from = books
        .caller
        .get(&books.path(&format!("accounts/{rent}/ledger?from=2025-08-11")))
        .await
        .expect(200);
    assert_eq!(from.body["opening_balance"], "55.00");
    assert_eq!(from.body["items"][0]["balance"], "66.00");
    let csv = books
        .caller
        .send(books.caller.request(
            Method::GET,
            &books.path(&format!("accounts/{rent}/ledger?format=csv")),
        ))
        .await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let text = books
        .caller
        .request(
            Method::GET,
            &books.path("trial-balance?from=2025-07-01&to=2026-06-30&format=csv"),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.starts_with("code,name,root_type"), "{text}");
    assert!(
        text.contains("5220,Rent,expense,,,0.00,78.00,0.00,78.00"),
        "{text}"
    );
    assert!(
        text.contains("1110,Cash in Hand,asset,,,0.00,0.00,78.00,-78.00"),
        "{text}"
    );
    // The chart as a tree with group balances.
    let chart = books
        .caller
        .get(&books.path("accounts?as_of=2025-12-31"))
        .await
        .expect(200);
    let expenses = chart.body["roots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|root| root["code"] == "5000")
        .unwrap();
    assert_eq!(expenses["balance"], "78.00");
    // The journal lists entries in date order, in pages.
    let journal = books
        .caller
        .get(&books.path("journal-entries?limit=10"))
        .await
        .expect(200);
    assert_eq!(journal.body["items"].as_array().unwrap().len(), 10);
    assert_eq!(journal.body["items"][0]["date"], "2025-08-01");
    let cursor = journal.body["next_cursor"].as_str().unwrap();
    let rest = books
        .caller
        .get(&books.path(&format!("journal-entries?after={cursor}")))
        .await
        .expect(200);
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 2);
    // Only finance roles post; every role reads.
    let viewer = app.caller_for(books.caller.tenant, &["viewer"]);
    let reply = viewer
        .post(&books.path("journal-entries"), books.rent("2025-08-10"))
        .await
        .expect(403);
    assert_eq!(reply.problem(), "forbidden");
    viewer.get(&books.path("trial-balance")).await.expect(200);
    let accountant = app.caller_for(books.caller.tenant, &["accountant"]);
    accountant
        .post(&books.path("journal-entries"), books.rent("2025-08-10"))
        .await
        .expect(201);
    let reply = accountant
        .post(&books.path("periods/2025-08-01/close"), json!({}))
        .await
        .expect(403);
    assert_eq!(reply.problem(), "forbidden");
    app.shutdown().await;
}

/// Design.md D12: postings raced against a period close, an account freeze and a project
/// archive. Every posting that committed must have committed before the change that forbids it
/// (by commit timestamp), every other posting is refused with the rule's problem, and the trial
/// balance equals the log.
#[tokio::test]
async fn postings_raced_against_closes_freezes_and_archives_never_commit_what_a_rule_forbids() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    let app = spawn_app().await;
    let books = Books::open(&app, "RACE").await;
    let done = AtomicUsize::new(0);
    let poster = |worker: usize| {
        let (books, done) = (&books, &done);
        async move {
            let mut outcomes = Vec::new();
            for n in 0..40 {
                let date = if (worker + n) % 2 == 0 {
                    "2025-08-15"
                } else {
                    "2025-09-15"
                };
                let account = if n % 3 == 0 { "5230" } else { "5220" };
                let project = if n % 4 == 1 {
                    &books.other_project
                } else {
                    &books.project
                };
                let mut expense = books.line(account, "1.00", "");
                expense["project_id"] = json!(project);
                let reply = books
                    .post_entry(books.entry(date, vec![expense, books.line("1110", "", "1.00")]))
                    .await;
                done.fetch_add(1, Ordering::SeqCst);
                let kind = (reply.status != 201).then(|| reply.problem().to_owned());
                outcomes.push((reply.status, kind));
            }
            outcomes
        }
    };
    let wait_for = |count: usize| {
        let done = &done;
        async move {
            while done.load(Ordering::SeqCst) < count {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    };
    let changes = async {
        wait_for(30).await;
        books.close_period("2025-08-01").await.expect(200);
        wait_for(80).await;
        books
            .ledger_command(
                Method::POST,
                &format!("accounts/{}/freeze", books.id("5230")),
                json!({}),
            )
            .await
            .expect(200);
        wait_for(130).await;
        let org = &books.org;
        books
            .caller
            .post(
                &format!("/v1/organizations/{org}/sites/{}/archive", books.other_site),
                json!({}),
            )
            .await
            .expect(200);
        books
            .caller
            .post(
                &format!(
                    "/v1/organizations/{org}/projects/{}/archive",
                    books.other_project
                ),
                json!({}),
            )
            .await
            .expect(200);
    };
    let (outcomes, ()) = tokio::join!(futures_util::future::join_all((0..6).map(poster)), changes);
    let outcomes: Vec<_> = outcomes.into_iter().flatten().collect();
    for (status, kind) in &outcomes {
        match kind.as_deref() {
            None => assert_eq!(*status, 201),
            Some(kind) => {
                assert_eq!(*status, 409, "{kind}");
                assert!(
                    ["period-closed", "account-frozen", "unit-archived"].contains(&kind),
                    "refused as {kind}"
                );
            }
        }
    }
    let refused = outcomes.iter().filter(|(status, _)| *status != 201).count();
    assert!(
        refused > 0 && refused < outcomes.len(),
        "{refused} of {} refused",
        outcomes.len()
    );

    // When each change committed, and what each posting committed with.
    let tenant = books.caller.tenant;
    let change_at = |event_type: &'static str| {
        let owner = &app.owner;
        async move {
            sqlx::query_scalar::<_, chrono::DateTime<chrono::Utc>>(
                "select pg_xact_commit_timestamp(xmin) from events where tenant_id = $1 and event_type = $2",
            )
            .bind(tenant)
            .bind(event_type)
            .fetch_one(owner)
            .await
            .unwrap()
        }
    };
    let closed = change_at("PeriodClosed").await;
    let frozen = change_at("AccountFrozen").await;
    let archived = change_at("ProjectArchived").await;
    let postings: Vec<(Value, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "select payload, pg_xact_commit_timestamp(xmin) from events
         where tenant_id = $1 and aggregate_type = 'journal_entry'",
    )
    .bind(tenant)
    .fetch_all(&app.owner)
    .await
    .unwrap();
    assert_eq!(postings.len(), outcomes.len() - refused);
    let (mut debits, mut after_a_change) = (0i64, 0);
    for (payload, committed) in &postings {
        let lines = payload["lines"].as_array().unwrap();
        if payload["date"] == "2025-08-15" {
            assert!(
                committed < &closed,
                "posted into August after it closed: {payload}"
            );
        }
        if lines.iter().any(|l| l["account_id"] == books.id("5230")) {
            assert!(committed < &frozen, "posted to a frozen account: {payload}");
        }
        if lines
            .iter()
            .any(|l| l["project_id"] == books.other_project.as_str())
        {
            assert!(
                committed < &archived,
                "posted to an archived project: {payload}"
            );
        }
        if committed > &closed {
            after_a_change += 1;
        }
        debits += lines
            .iter()
            .map(|l| l["debit"].as_i64().unwrap())
            .sum::<i64>();
    }
    assert!(
        after_a_change > 0,
        "no posting committed after the close: the race did not happen"
    );
    let position: i64 =
        sqlx::query_scalar("select max(global_position) from events where tenant_id = $1")
            .bind(tenant)
            .fetch_one(&app.owner)
            .await
            .unwrap();
    let tb = books
        .trial_balance("from=2025-07-01&to=2026-06-30", position)
        .await;
    assert_eq!(tb.body["totals"]["debit"], crate::api_finance::taka(debits));
    assert_eq!(tb.body["balanced"], true);
    app.shutdown().await;
}

fn taka(paisa: i64) -> String {
    format!("{}.{:02}", paisa / 100, paisa % 100)
}

#[tokio::test]
async fn scenario_24_bin_and_tin_are_digits_of_their_exact_length() {
    let app = spawn_app().await;
    let caller = app.caller(&["admin"]);
    let body = |bin: &str, tin: &str| json!({"name": "Meghna Builders Ltd", "code": "MBL", "bin": bin, "tin": tin});
    for (bin, tin, field) in [
        ("002871821-010", "123456789012", "bin"),
        ("00287182101AB", "123456789012", "bin"),
        ("002871821-0101", "12345678901", "tin"),
        ("002871821-0101", "12345678901X", "tin"),
    ] {
        let before = app.event_count().await;
        let reply = caller
            .post("/v1/organizations", body(bin, tin))
            .await
            .expect(422);
        assert_eq!(invalid_names(&reply), [field], "{bin} {tin}");
        assert_eq!(app.event_count().await, before);
    }
    let created = caller
        .post("/v1/organizations", body("002871821-0101", "123456789012"))
        .await
        .expect(201);
    let stored: Value = sqlx::query_scalar(
        "select payload->'bin' from events where aggregate_id = $1 and sequence = 1",
    )
    .bind(created.id())
    .fetch_one(&app.owner)
    .await
    .unwrap();
    assert_eq!(stored, "0028718210101", "stored as 13 digits");
    app.shutdown().await;
}
