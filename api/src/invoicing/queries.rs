//! Query routes of invoicing: parties, documents and the VAT registers from the `invoicing`
//! read models through [`RequestContext::read`] (row-level security confines every statement to
//! the caller's tenant), and the tax book from its stream, which the write side holds in memory.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{Days, NaiveDate};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use vextrus_domain::finance::{
    InvoiceEvent, InvoiceKind, Money, NewInvoice, PartyKind, PaymentDirection, RecordedPayment,
    SubmittedInvoice, VatKind,
};
use vextrus_domain::ids::{InvoiceId, OrganizationId, PartyId, PaymentId};
use vextrus_domain::values::Bin;
use vextrus_projections::invoicing::Invoicing;

use super::InvoicingQueryErrors;
use super::commands::month;
use super::pdf;
use super::views::{
    AgingBasisView, AgingPartyView, AgingQuery, AgingView, AllocationView, BudgetActionView,
    BudgetQuery, BudgetReport, BudgetView, CertificateDirectionView, DeductionView,
    DocumentAccountsBody, DocumentPage, DocumentQuery, DocumentRow, DocumentStatusView,
    DocumentView, MonthPath, OpenItemView, OpenSideView, PartyLedgerLine, PartyLedgerQuery,
    PartyLedgerView, PartyPage, PartyQuery, PartyView, PaymentDirectionView, PaymentPage,
    PaymentQuery, PaymentView, RetentionBalance, RetentionMoveView, RetentionQuery,
    RetentionRegister, TaxBookView, TdsSectionView, TdsTierView, TdsTiersView, VatBookLine,
    VatBookQuery, VatBookView, VatCodeView, VatKindView, VatMonthView, VatRateView, VatReturnQuery,
    VatReturnRow, VatReturnView, VdsCertificateLine, VdsCertificateQuery, VdsCertificateRegister,
    VdsCertificateView, WithholdingLine, WithholdingQuery, WithholdingRegister,
};
use crate::auth::Permission;
use crate::consistency;
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::extract::{PathIds, QueryParams};
use crate::finance::queries::{bad_cursor, page_size, require_organization};
use crate::finance::views::{PartyKindView, ReportFormat, amount};
use crate::state::AppState;

/// Waits for `min_position` (if any), then opens the tenant's read transaction.
async fn fresh_read(
    state: &AppState,
    context: &RequestContext,
    min_position: Option<i64>,
) -> Result<sqlx::Transaction<'static, Postgres>, ApiError> {
    consistency::wait_for::<Invoicing>(state, context, min_position).await?;
    context.read(state).await
}

fn bin_text(digits: Option<String>) -> Option<String> {
    digits.map(|digits| match Bin::parse(&digits) {
        Ok(bin) => bin.to_string(),
        Err(_) => digits,
    })
}

const PARTY_COLUMNS: &str = "party_id, organization_id, kind, name, bin, tin, address, \
                             withholding_entity, terms_days, account_id, archived, version";

fn party_view(row: &PgRow) -> PartyView {
    let kind: String = row.get("kind");
    PartyView {
        id: row.get("party_id"),
        organization_id: row.get("organization_id"),
        kind: match PartyKind::parse(&kind) {
            Some(PartyKind::Supplier) => PartyKindView::Supplier,
            _ => PartyKindView::Customer,
        },
        name: row.get("name"),
        bin: bin_text(row.get("bin")),
        tin: row.get("tin"),
        address: row.get("address"),
        withholding_entity: row.get("withholding_entity"),
        terms_days: row.get("terms_days"),
        account_id: row.get("account_id"),
        archived: row.get("archived"),
        version: row.get("version"),
    }
}

/// The organization's customers and suppliers by name.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/parties", tag = "parties",
    params(("organization_id" = Uuid, Path), PartyQuery),
    responses((status = 200, description = "A page of parties", body = PartyPage), InvoicingQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn list_parties(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    QueryParams(query): QueryParams<PartyQuery>,
) -> Result<Json<PartyPage>, ApiError> {
    let limit = i64::from(page_size(query.limit, 50, 500)?);
    let offset = query
        .after
        .as_deref()
        .map(|text| text.parse::<i64>().map_err(|_| bad_cursor()))
        .transpose()?
        .unwrap_or(0);
    let mut tx = fresh_read(&state, &context, query.min_position).await?;
    require_organization(&mut tx, organization).await?;
    // Pages by name are cut by their place in the order (name, then id, so equal names keep
    // one order); the cursor is the next page's offset.
    let mut sql = QueryBuilder::<Postgres>::new(format!(
        "select {PARTY_COLUMNS} from fin_parties where organization_id = "
    ));
    sql.push_bind(organization.as_uuid());
    if let Some(kind) = query.kind {
        sql.push(" and kind = ")
            .push_bind(PartyKind::from(kind).as_str());
    }
    if let Some(text) = query.q.as_deref().filter(|text| !text.is_empty()) {
        let escaped = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        sql.push(" and name ilike ")
            .push_bind(format!("%{escaped}%"));
    }
    if !query.include_archived.unwrap_or(false) {
        sql.push(" and not archived");
    }
    sql.push(" order by lower(name), party_id offset ")
        .push_bind(offset)
        .push(" limit ")
        .push_bind(limit + 1);
    let rows = sql
        .build()
        .fetch_all(&mut *tx)
        .await
        .map_err(ApiError::database)?;
    let mut items: Vec<PartyView> = rows.iter().map(party_view).collect();
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        Some((offset + limit).to_string())
    } else {
        None
    };
    Ok(Json(PartyPage { items, next_cursor }))
}

/// One party.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/parties/{party_id}", tag = "parties",
    params(("organization_id" = Uuid, Path), ("party_id" = Uuid, Path), VatReturnQuery),
    responses((status = 200, description = "The party", body = PartyView), InvoicingQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn get_party(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds((organization, party)): PathIds<(OrganizationId, PartyId)>,
    QueryParams(query): QueryParams<VatReturnQuery>,
) -> Result<Response, ApiError> {
    let mut tx = fresh_read(&state, &context, query.min_position).await?;
    let row = sqlx::query(&format!(
        "select {PARTY_COLUMNS} from fin_parties where organization_id = $1 and party_id = $2"
    ))
    .bind(organization.as_uuid())
    .bind(party.as_uuid())
    .fetch_optional(&mut *tx)
    .await
    .map_err(ApiError::database)?
    .ok_or_else(|| ApiError::NotFound(format!("party {party} not found")))?;
    let view = party_view(&row);
    let version = view.version;
    Ok(([(header::ETAG, format!("\"{version}\""))], Json(view)).into_response())
}

/// The organization's tax book: VAT codes with their dated rates, TDS sections with their dated
/// tiers, the accounts documents post to, and the submitted VAT months. Read from the book's
/// stream, so it is never behind a change just made.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/tax-book", tag = "tax",
    params(("organization_id" = Uuid, Path)),
    responses((status = 200, description = "The tax book", body = TaxBookView), InvoicingQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn get_tax_book(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
) -> Result<Response, ApiError> {
    context
        .principal
        .require_in(Permission::Read, context.scope, "reading the tax book")?;
    let (book, version) = state
        .postings()
        .tax_books
        .refresh(state.store(), context.tenant, &organization.to_string())
        .await?;
    // An organization whose book was never set up has an empty one (version 0).
    let set_up = book.organization_id() == Some(organization);
    if !set_up {
        let (found, _) = state
            .postings()
            .organizations
            .refresh(state.store(), context.tenant, &organization.to_string())
            .await?;
        if found.id() != Some(organization) {
            return Err(ApiError::NotFound(format!(
                "organization {organization} not found"
            )));
        }
    }
    let view = TaxBookView {
        organization_id: organization.as_uuid(),
        set_up,
        withholding_entity: book.withholding_entity(),
        vat_codes: book
            .vat_codes()
            .iter()
            .map(|(code, vat)| VatCodeView {
                code: code.to_string(),
                description: vat.description.clone(),
                kind: vat.kind.into(),
                rates: vat
                    .rates
                    .iter()
                    .map(|(from, rate)| VatRateView {
                        effective_from: *from,
                        rate: rate.rate.to_decimal(),
                        vds_share: rate.vds_share.to_decimal(),
                    })
                    .collect(),
            })
            .collect(),
        tds_sections: book
            .tds_sections()
            .iter()
            .map(|(section, tds)| TdsSectionView {
                section: section.to_string(),
                description: tds.description.clone(),
                tiers: tds
                    .tiers
                    .iter()
                    .map(|(from, tiers)| TdsTiersView {
                        effective_from: *from,
                        tiers: tiers
                            .iter()
                            .map(|tier| TdsTierView {
                                up_to: tier.up_to.map(Money::to_decimal),
                                rate: tier.rate.to_decimal(),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
        accounts: book.accounts().map(|a| DocumentAccountsBody {
            receivable: a.receivable.as_uuid(),
            payable: a.payable.as_uuid(),
            output_vat: a.output_vat.as_uuid(),
            input_vat: a.input_vat.as_uuid(),
            vds_receivable: a.vds_receivable.as_uuid(),
            vds_payable: a.vds_payable.as_uuid(),
            tds_receivable: a.tds_receivable.as_uuid(),
            tds_payable: a.tds_payable.as_uuid(),
            retention_receivable: a.retention_receivable.as_uuid(),
            retention_payable: a.retention_payable.as_uuid(),
            customer_advances: a.customer_advances.as_uuid(),
            supplier_advances: a.supplier_advances.as_uuid(),
            exchange_gain: a.exchange_gain.as_uuid(),
            exchange_loss: a.exchange_loss.as_uuid(),
            bank_charges: a.bank_charges.as_uuid(),
        }),
        vat_months: book
            .vat_months()
            .iter()
            .map(|(month, submitted)| VatMonthView {
                month: month.format("%Y-%m").to_string(),
                amendment: submitted.amendment,
                locked: !submitted.open_for_amendment,
            })
            .collect(),
        version: version.get(),
    };
    Ok((
        [(header::ETAG, format!("\"{}\"", version.get()))],
        Json(view),
    )
        .into_response())
}

/// Documents' cursors count days from here, so that every cursor the published pattern admits
/// (at most six digits) names a date.
const CURSOR_EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(day) => day,
    None => panic!("1 January 1900 exists"),
};

/// A cursor of a list by date and log position: `days since CURSOR_EPOCH~position`.
fn dated_cursor(text: &str) -> Result<(NaiveDate, i64), ApiError> {
    let (days, position) = text.split_once('~').ok_or_else(bad_cursor)?;
    let days: u64 = days.parse().map_err(|_| bad_cursor())?;
    Ok((
        CURSOR_EPOCH
            .checked_add_days(Days::new(days))
            .ok_or_else(bad_cursor)?,
        position.parse::<i64>().map_err(|_| bad_cursor())?,
    ))
}

/// What a list by date and log position shares: the party, the dates, the page after the
/// cursor, and the page size.
struct DatedWindow {
    party: Option<uuid::Uuid>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    after: Option<(NaiveDate, i64)>,
    limit: i64,
}

impl DatedWindow {
    /// The window's conditions on the rows of table `alias`, its order, and one row more than
    /// a page (to tell whether another page follows).
    fn push(&self, sql: &mut QueryBuilder<'_, Postgres>, alias: &str) {
        if let Some(party) = self.party {
            sql.push(format!(" and {alias}.party_id = "))
                .push_bind(party);
        }
        if let Some(from) = self.from {
            sql.push(format!(" and {alias}.date >= ")).push_bind(from);
        }
        if let Some(to) = self.to {
            sql.push(format!(" and {alias}.date <= ")).push_bind(to);
        }
        if let Some((date, position)) = self.after {
            sql.push(format!(" and ({alias}.date, {alias}.position) > ("))
                .push_bind(date)
                .push(", ")
                .push_bind(position)
                .push(")");
        }
        sql.push(format!(" order by {alias}.date, {alias}.position limit "))
            .push_bind(self.limit + 1);
    }

    /// Cuts `items` to a page; the cursor of the next page, if there is one.
    fn next_cursor<T>(
        &self,
        items: &mut Vec<T>,
        key: impl Fn(&T) -> (NaiveDate, i64),
    ) -> Option<String> {
        let page = usize::try_from(self.limit).unwrap_or(usize::MAX);
        if items.len() <= page {
            return None;
        }
        items.truncate(page);
        items.last().map(|last| {
            let (date, position) = key(last);
            let days = (date - CURSOR_EPOCH).num_days().max(0);
            format!("{days}~{position}")
        })
    }
}

const DOCUMENT_COLUMNS: &str = "i.invoice_id, i.kind, i.status, i.document, i.version, \
                                i.position, i.date, i.settled, i.balance, \
                                coalesce(i.foreign_balance, i.foreign_total) as foreign_balance, \
                                i.foreign_settled, i.vds_certificate, i.vds_certificate_date, \
                                p.name as party_name";

/// A document row as the API shows it; the recorded document decides the rest.
fn document_view(row: &PgRow) -> Result<DocumentView, ApiError> {
    let document: serde_json::Value = row.get("document");
    let base = DocumentRow {
        id: row.get("invoice_id"),
        party_name: row.get("party_name"),
        version: row.get("version"),
        position: row.get("position"),
        settled: row.get("settled"),
        balance: row.get("balance"),
        cancelled: row.get::<String, _>("status") == "cancelled",
        foreign_balance: row.get("foreign_balance"),
        foreign_settled: row.get("foreign_settled"),
        vds_certificate: certificate_of(row),
    };
    let unreadable =
        |error: serde_json::Error| ApiError::Internal(format!("a recorded document: {error}"));
    let status: String = row.get("status");
    if status != "draft" {
        let submitted: SubmittedInvoice = serde_json::from_value(document).map_err(unreadable)?;
        Ok(DocumentView::of_submitted(base, &submitted, None))
    } else {
        let draft: NewInvoice = serde_json::from_value(document).map_err(unreadable)?;
        Ok(DocumentView::of_draft(base, &draft))
    }
}

/// The organization's sales invoices and bills by date, then by the order they were drafted.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/invoices", tag = "invoices",
    params(("organization_id" = Uuid, Path), DocumentQuery),
    responses((status = 200, description = "A page of documents", body = DocumentPage), InvoicingQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn list_documents(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    QueryParams(query): QueryParams<DocumentQuery>,
) -> Result<Json<DocumentPage>, ApiError> {
    let limit = i64::from(page_size(query.limit, 50, 500)?);
    let after = query.after.as_deref().map(dated_cursor).transpose()?;
    let mut tx = fresh_read(&state, &context, query.min_position).await?;
    require_organization(&mut tx, organization).await?;
    let mut sql = QueryBuilder::<Postgres>::new(format!(
        "select {DOCUMENT_COLUMNS} from fin_invoices i \
         left join fin_parties p on p.tenant_id = i.tenant_id and p.party_id = i.party_id \
         where i.organization_id = "
    ));
    sql.push_bind(organization.as_uuid());
    if let Some(kind) = query.kind {
        sql.push(" and i.kind = ")
            .push_bind(InvoiceKind::from(kind).as_str());
    }
    if let Some(status) = query.status {
        sql.push(" and i.status = ").push_bind(match status {
            DocumentStatusView::Draft => "draft",
            DocumentStatusView::Submitted => "submitted",
            DocumentStatusView::Cancelled => "cancelled",
        });
    }
    let window = DatedWindow {
        party: query.party_id,
        from: query.from,
        to: query.to,
        after,
        limit,
    };
    window.push(&mut sql, "i");
    let rows = sql
        .build()
        .fetch_all(&mut *tx)
        .await
        .map_err(ApiError::database)?;
    let mut items = rows
        .iter()
        .map(document_view)
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = window.next_cursor(&mut items, |item| (item.date, item.position));
    Ok(Json(DocumentPage { items, next_cursor }))
}

async fn document_row(
    tx: &mut PgConnection,
    organization: OrganizationId,
    invoice: InvoiceId,
) -> Result<PgRow, ApiError> {
    sqlx::query(&format!(
        "select {DOCUMENT_COLUMNS} from fin_invoices i \
         left join fin_parties p on p.tenant_id = i.tenant_id and p.party_id = i.party_id \
         where i.organization_id = $1 and i.invoice_id = $2"
    ))
    .bind(organization.as_uuid())
    .bind(invoice.as_uuid())
    .fetch_optional(tx)
    .await
    .map_err(ApiError::database)?
    .ok_or_else(|| ApiError::NotFound(format!("document {invoice} not found")))
}

/// One sales invoice or bill: as drafted, or as submitted with everything its tax invoice prints.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/invoices/{invoice_id}", tag = "invoices",
    params(("organization_id" = Uuid, Path), ("invoice_id" = Uuid, Path), VatReturnQuery),
    responses((status = 200, description = "The document", body = DocumentView), InvoicingQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn get_document(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds((organization, invoice)): PathIds<(OrganizationId, InvoiceId)>,
    QueryParams(query): QueryParams<VatReturnQuery>,
) -> Result<Response, ApiError> {
    let mut tx = fresh_read(&state, &context, query.min_position).await?;
    let row = document_row(&mut tx, organization, invoice).await?;
    let view = document_view(&row)?;
    let version = view.version;
    Ok(([(header::ETAG, format!("\"{version}\""))], Json(view)).into_response())
}

/// The tax invoice (Mushak-6.3) of a submitted sales invoice, as a printable PDF: seller's and
/// buyer's names and BINs, the serial number, the date and time of issue, and per line the
/// description, quantity, unit price, value without VAT, VAT rate, VAT and value with VAT.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/invoices/{invoice_id}/tax-invoice.pdf", tag = "invoices",
    params(("organization_id" = Uuid, Path), ("invoice_id" = Uuid, Path), VatReturnQuery),
    responses((status = 200, description = "The tax invoice", content_type = "application/pdf", body = Vec<u8>), InvoicingQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn tax_invoice_pdf(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds((organization, invoice)): PathIds<(OrganizationId, InvoiceId)>,
    QueryParams(query): QueryParams<VatReturnQuery>,
) -> Result<Response, ApiError> {
    let mut tx = fresh_read(&state, &context, query.min_position).await?;
    let row = document_row(&mut tx, organization, invoice).await?;
    let status: String = row.get("status");
    if status == "draft" {
        return Err(ApiError::RuleViolated {
            rule: "not-submitted",
            detail: "a draft has no tax invoice yet; submit it first".to_owned(),
        });
    }
    let document: serde_json::Value = row.get("document");
    let submitted: SubmittedInvoice = serde_json::from_value(document)
        .map_err(|error| ApiError::Internal(format!("a recorded document: {error}")))?;
    let file = format!("{}.pdf", submitted.number);
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{file}\""),
            ),
        ],
        pdf::tax_invoice(&InvoiceEvent::InvoiceSubmitted(Box::new(submitted))),
    )
        .into_response())
}

/// A VAT book's lines of one month, and their sums of value, VAT, total and VDS in paisa.
async fn book_lines(
    tx: &mut PgConnection,
    organization: OrganizationId,
    book: &str,
    month: NaiveDate,
) -> Result<(Vec<VatBookLine>, [i64; 4]), ApiError> {
    let rows = sqlx::query(
        "select invoice_id, line_no, date, number, party_id, party_name, party_bin, description,
                quantity, unit_price, vat_code, vat_kind, vat_rate, value, vat, total, vds
         from fin_vat_lines
         where organization_id = $1 and book = $2 and month = $3
         order by date, position, line_no",
    )
    .bind(organization.as_uuid())
    .bind(book)
    .bind(month)
    .fetch_all(tx)
    .await
    .map_err(ApiError::database)?;
    let mut sums = [0i64; 4];
    let lines = rows
        .iter()
        .map(|row| {
            let quantity: i64 = row.get("quantity");
            let rate: i32 = row.get("vat_rate");
            for (sum, column) in sums.iter_mut().zip(["value", "vat", "total", "vds"]) {
                *sum += row.get::<i64, _>(column);
            }
            VatBookLine {
                date: row.get("date"),
                number: row.get("number"),
                document_id: row.get("invoice_id"),
                line_no: row.get("line_no"),
                party_id: row.get("party_id"),
                party_name: row.get("party_name"),
                party_bin: bin_text(row.get("party_bin")),
                description: row.get("description"),
                quantity: decimal(quantity, 3),
                unit_price: amount(row.get("unit_price")),
                vat_code: row.get("vat_code"),
                vat_kind: vat_kind(row.get("vat_kind")),
                vat_rate: decimal(i64::from(rate), 2),
                value: amount(row.get("value")),
                vat: amount(row.get("vat")),
                total: amount(row.get("total")),
                vds: amount(row.get("vds")),
            }
        })
        .collect();
    Ok((lines, sums))
}

/// `value` with `places` decimals: `decimal(750, 2)` is `"7.50"`.
fn decimal(value: i64, places: u32) -> String {
    let scale = 10i64.pow(places);
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    let scale = scale.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = places as usize
    )
}

fn vat_kind(text: String) -> VatKindView {
    VatKind::ALL
        .into_iter()
        .find(|kind| kind.as_str() == text)
        .map_or(VatKindView::Standard, Into::into)
}

/// A VAT book as JSON or CSV.
async fn vat_book(
    state: &AppState,
    context: &RequestContext,
    organization: OrganizationId,
    query: VatBookQuery,
    book: &str,
) -> Result<Response, ApiError> {
    let month_start = month(&query.month).map_err(|_| {
        ApiError::invalid_param("month", "must be a month written YYYY-MM, e.g. 2025-08")
    })?;
    let mut tx = fresh_read(state, context, query.min_position).await?;
    require_organization(&mut tx, organization).await?;
    let (lines, [value, vat, total, vds]) =
        book_lines(&mut tx, organization, book, month_start).await?;
    let form = if book == "sales" {
        "mushak-6.2"
    } else {
        "mushak-6.1"
    };
    if query.format == Some(ReportFormat::Csv) {
        let header_row = [
            "date",
            "number",
            "party",
            "party_bin",
            "description",
            "quantity",
            "unit_price",
            "vat_code",
            "vat_rate",
            "value",
            "vat",
            "total",
            "vds",
        ];
        let rows = lines
            .into_iter()
            .map(|line| {
                vec![
                    line.date.to_string(),
                    line.number,
                    line.party_name,
                    line.party_bin.unwrap_or_default(),
                    line.description,
                    line.quantity,
                    line.unit_price,
                    line.vat_code,
                    line.vat_rate,
                    line.value,
                    line.vat,
                    line.total,
                    line.vds,
                ]
            })
            .collect();
        let file = format!("{form}-{}", query.month);
        return Ok(crate::finance::queries::csv_response(
            &file,
            &header_row,
            rows,
        ));
    }
    let view = VatBookView {
        form: form.to_owned(),
        month: query.month.clone(),
        value: amount(value),
        vat: amount(vat),
        total: amount(total),
        vds: amount(vds),
        lines,
    };
    Ok(Json(view).into_response())
}

/// The sales book (Mushak-6.2) of a month: every line of every sales invoice dated in it, as the
/// invoice printed it. JSON, or CSV with `format=csv`.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/vat/sales-book", tag = "tax",
    params(("organization_id" = Uuid, Path), VatBookQuery),
    responses((status = 200, description = "The sales book",
        content((VatBookView = "application/json"), (String = "text/csv"))), InvoicingQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn sales_book(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    QueryParams(query): QueryParams<VatBookQuery>,
) -> Result<Response, ApiError> {
    vat_book(&state, &context, organization, query, "sales").await
}

/// The purchase book (Mushak-6.1) of a month: every line of every bill dated in it. JSON, or CSV
/// with `format=csv`.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/vat/purchase-book", tag = "tax",
    params(("organization_id" = Uuid, Path), VatBookQuery),
    responses((status = 200, description = "The purchase book",
        content((VatBookView = "application/json"), (String = "text/csv"))), InvoicingQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn purchase_book(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    QueryParams(query): QueryParams<VatBookQuery>,
) -> Result<Response, ApiError> {
    vat_book(&state, &context, organization, query, "purchase").await
}

/// The monthly return summary (Mushak-9.1) of a month: sales and purchases by VAT kind, output
/// and input VAT, VAT deducted at source from suppliers, the net VAT, and whether the return was
/// submitted.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/vat-returns/{month}", tag = "tax",
    params(MonthPath, VatReturnQuery),
    responses((status = 200, description = "The return summary", body = VatReturnView), InvoicingQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn get_vat_return(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds((organization, month_text)): PathIds<(OrganizationId, String)>,
    QueryParams(query): QueryParams<VatReturnQuery>,
) -> Result<Json<VatReturnView>, ApiError> {
    let month_start = month(&month_text)?;
    let mut tx = fresh_read(&state, &context, query.min_position).await?;
    require_organization(&mut tx, organization).await?;
    let rows = sqlx::query(
        "select book, vat_kind, sum(value)::bigint as value, sum(vat)::bigint as vat,
                sum(vds)::bigint as vds
         from fin_vat_lines where organization_id = $1 and month = $2
         group by book, vat_kind order by book, vat_kind",
    )
    .bind(organization.as_uuid())
    .bind(month_start)
    .fetch_all(&mut *tx)
    .await
    .map_err(ApiError::database)?;
    drop(tx);
    let mut totals: BTreeMap<(&str, i64), i64> = BTreeMap::new();
    let (mut sales, mut purchases) = (Vec::new(), Vec::new());
    for row in &rows {
        let book: String = row.get("book");
        let book = if book == "sales" { "sales" } else { "purchase" };
        let (value, vat, vds): (i64, i64, i64) = (row.get("value"), row.get("vat"), row.get("vds"));
        *totals.entry((book, 0)).or_default() += vat;
        *totals.entry((book, 1)).or_default() += vds;
        let line = VatReturnRow {
            vat_kind: vat_kind(row.get("vat_kind")),
            value: amount(value),
            vat: amount(vat),
        };
        if book == "sales" {
            sales.push(line);
        } else {
            purchases.push(line);
        }
    }
    let output_vat = totals.get(&("sales", 0)).copied().unwrap_or(0);
    let input_vat = totals.get(&("purchase", 0)).copied().unwrap_or(0);
    let vds_deducted = totals.get(&("purchase", 1)).copied().unwrap_or(0);
    let (book, _) = state
        .postings()
        .tax_books
        .refresh(state.store(), context.tenant, &organization.to_string())
        .await?;
    let submitted = book.vat_months().get(&month_start).copied();
    let next_month = month_start
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(month_start);
    Ok(Json(VatReturnView {
        month: month_text,
        due_date: next_month
            .checked_add_days(Days::new(14))
            .unwrap_or(next_month),
        submitted: submitted.is_some(),
        amendment: submitted.map(|s| s.amendment),
        locked: submitted.is_some_and(|s| !s.open_for_amendment),
        sales,
        purchases,
        output_vat: amount(output_vat),
        input_vat: amount(input_vat),
        vds_deducted: amount(vds_deducted),
        net_vat: amount(output_vat - input_vat),
    }))
}

const PAYMENT_COLUMNS: &str = "y.payment_id, y.document, y.version, y.position, y.date, y.advance, \
                               y.vds_certificate, \
                               coalesce(y.vds_certificate_date, y.date) as vds_certificate_date, \
                               p.name as party_name";

/// The Mushak-6.6 certificate a row records (`vds_certificate`, `vds_certificate_date`).
fn certificate_of(row: &PgRow) -> Option<VdsCertificateView> {
    let number: Option<String> = row.get("vds_certificate");
    let date: Option<NaiveDate> = row.get("vds_certificate_date");
    number
        .zip(date)
        .map(|(number, date)| VdsCertificateView { number, date })
}

fn payment_view(row: &PgRow) -> Result<PaymentView, ApiError> {
    let document: serde_json::Value = row.get("document");
    let recorded: RecordedPayment = serde_json::from_value(document)
        .map_err(|error| ApiError::Internal(format!("a recorded payment: {error}")))?;
    let payment = &recorded.payment;
    Ok(PaymentView {
        id: row.get("payment_id"),
        organization_id: payment.organization_id.as_uuid(),
        direction: match payment.direction {
            PaymentDirection::Receipt => PaymentDirectionView::Receipt,
            PaymentDirection::Payment => PaymentDirectionView::Payment,
        },
        party_id: payment.party_id.as_uuid(),
        party_name: row.get("party_name"),
        number: recorded.number.clone(),
        date: payment.date,
        account_id: payment.account_id.as_uuid(),
        amount: payment.amount.to_decimal(),
        allocations: payment
            .allocations
            .iter()
            .map(|a| AllocationView {
                invoice_id: a.invoice_id.as_uuid(),
                amount: a.amount.to_decimal(),
            })
            .collect(),
        deductions: payment
            .deductions
            .iter()
            .map(|d| DeductionView {
                kind: d.kind.into(),
                amount: d.amount.to_decimal(),
            })
            .collect(),
        retention_release: payment.retention_release.map(Money::to_decimal),
        advance: amount(row.get("advance")),
        reference: payment.reference.clone(),
        narration: payment.narration.clone(),
        vds_certificate: row.get("vds_certificate"),
        vds_certificate_date: certificate_of(row).map(|certificate| certificate.date),
        currency: payment.currency.as_ref().map(ToString::to_string),
        exchange_rate: payment.exchange_rate.map(|rate| rate.to_decimal()),
        exchange_difference: recorded.exchange_difference.to_decimal(),
        entry_id: recorded.entry_id.as_uuid(),
        version: row.get("version"),
        position: row.get("position"),
    })
}

/// The organization's receipts and payments by date, then by the order they were recorded.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/payments", tag = "payments",
    params(("organization_id" = Uuid, Path), PaymentQuery),
    responses((status = 200, description = "A page of payments and receipts", body = PaymentPage), InvoicingQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn list_payments(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    QueryParams(query): QueryParams<PaymentQuery>,
) -> Result<Json<PaymentPage>, ApiError> {
    let limit = i64::from(page_size(query.limit, 50, 500)?);
    let after = query.after.as_deref().map(dated_cursor).transpose()?;
    let mut tx = fresh_read(&state, &context, query.min_position).await?;
    require_organization(&mut tx, organization).await?;
    let mut sql = QueryBuilder::<Postgres>::new(format!(
        "select {PAYMENT_COLUMNS} from fin_payments y \
         left join fin_parties p on p.tenant_id = y.tenant_id and p.party_id = y.party_id \
         where y.organization_id = "
    ));
    sql.push_bind(organization.as_uuid());
    if let Some(direction) = query.direction {
        sql.push(" and y.direction = ").push_bind(match direction {
            PaymentDirectionView::Receipt => "receipt",
            PaymentDirectionView::Payment => "payment",
        });
    }
    let window = DatedWindow {
        party: query.party_id,
        from: query.from,
        to: query.to,
        after,
        limit,
    };
    window.push(&mut sql, "y");
    let rows = sql
        .build()
        .fetch_all(&mut *tx)
        .await
        .map_err(ApiError::database)?;
    let mut items = rows
        .iter()
        .map(payment_view)
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = window.next_cursor(&mut items, |item| (item.date, item.position));
    Ok(Json(PaymentPage { items, next_cursor }))
}

/// One receipt or payment.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/payments/{payment_id}", tag = "payments",
    params(("organization_id" = Uuid, Path), ("payment_id" = Uuid, Path), VatReturnQuery),
    responses((status = 200, description = "The payment", body = PaymentView), InvoicingQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn get_payment(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds((organization, payment)): PathIds<(OrganizationId, PaymentId)>,
    QueryParams(query): QueryParams<VatReturnQuery>,
) -> Result<Json<PaymentView>, ApiError> {
    let mut tx = fresh_read(&state, &context, query.min_position).await?;
    let row = sqlx::query(&format!(
        "select {PAYMENT_COLUMNS} from fin_payments y \
         left join fin_parties p on p.tenant_id = y.tenant_id and p.party_id = y.party_id \
         where y.organization_id = $1 and y.payment_id = $2"
    ))
    .bind(organization.as_uuid())
    .bind(payment.as_uuid())
    .fetch_optional(&mut *tx)
    .await
    .map_err(ApiError::database)?
    .ok_or_else(|| ApiError::NotFound(format!("payment {payment} not found")))?;
    Ok(Json(payment_view(&row)?))
}

/// Budget vs actual: each budget with what was committed, spent and is still available, by
/// fiscal year, project and site. JSON, or CSV with `format=csv`.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/budgets", tag = "budgets",
    params(("organization_id" = Uuid, Path), BudgetQuery),
    responses((status = 200, description = "Budget vs actual",
        content((BudgetReport = "application/json"), (String = "text/csv"))), InvoicingQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn budget_report(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    QueryParams(query): QueryParams<BudgetQuery>,
) -> Result<Response, ApiError> {
    let mut tx = fresh_read(&state, &context, query.min_position).await?;
    require_organization(&mut tx, organization).await?;
    let mut sql = QueryBuilder::<Postgres>::new(
        "select b.budget_id, b.project_id, b.site_id, b.account_id, a.code, b.fiscal_year,
                b.amount, b.action, coalesce(u.spent, 0) as spent,
                coalesce(u.exceeded, 0) as exceeded
         from fin_budgets b
         left join fin_budget_usage u on u.tenant_id = b.tenant_id and u.budget_id = b.budget_id
         left join fin_accounts a on a.tenant_id = b.tenant_id and a.account_id = b.account_id
         where b.organization_id = ",
    );
    sql.push_bind(organization.as_uuid());
    if let Some(year) = query.fiscal_year {
        sql.push(" and b.fiscal_year = ").push_bind(year);
    }
    if let Some(project) = query.project_id {
        sql.push(" and b.project_id = ").push_bind(project);
    }
    if let Some(site) = query.site_id {
        sql.push(" and b.site_id = ").push_bind(site);
    }
    sql.push(" order by b.fiscal_year, b.project_id, b.site_id nulls first, a.code, b.budget_id");
    let rows = sql
        .build()
        .fetch_all(&mut *tx)
        .await
        .map_err(ApiError::database)?;
    let items: Vec<BudgetView> = rows
        .iter()
        .map(|row| {
            let (budget, spent): (i64, i64) = (row.get("amount"), row.get("spent"));
            let action: String = row.get("action");
            BudgetView {
                id: row.get("budget_id"),
                project_id: row.get("project_id"),
                site_id: row.get("site_id"),
                account_id: row.get("account_id"),
                account_code: row.get("code"),
                fiscal_year: row.get("fiscal_year"),
                action: if action == "warn" {
                    BudgetActionView::Warn
                } else {
                    BudgetActionView::Stop
                },
                budget: amount(budget),
                committed: amount(0),
                actual: amount(spent),
                available: amount(budget - spent),
                warnings: row.get("exceeded"),
            }
        })
        .collect();
    if query.format == Some(ReportFormat::Csv) {
        let header_row = [
            "fiscal_year",
            "project_id",
            "site_id",
            "account",
            "action",
            "budget",
            "committed",
            "actual",
            "available",
            "warnings",
        ];
        let rows = items
            .into_iter()
            .map(|item| {
                vec![
                    item.fiscal_year.to_string(),
                    item.project_id.to_string(),
                    item.site_id.map(|id| id.to_string()).unwrap_or_default(),
                    item.account_code.unwrap_or_default(),
                    if item.action == BudgetActionView::Warn {
                        "warn".to_owned()
                    } else {
                        "stop".to_owned()
                    },
                    item.budget,
                    item.committed,
                    item.actual,
                    item.available,
                    item.warnings.to_string(),
                ]
            })
            .collect();
        return Ok(crate::finance::queries::csv_response(
            "budget-vs-actual",
            &header_row,
            rows,
        ));
    }
    Ok(Json(BudgetReport { items }).into_response())
}

/// The age bucket of `days`.
fn bucket(days: i64) -> usize {
    match days {
        ..=30 => 0,
        31..=60 => 1,
        61..=90 => 2,
        91..=120 => 3,
        _ => 4,
    }
}

const BUCKETS: [&str; 5] = ["0-30", "31-60", "61-90", "91-120", "121+"];

/// Receivable or payable aging as of any day: what each document left open at the end of the
/// day (its balance, notes, settlements and cancellation dated up to then), by party and by age
/// (0–30, 31–60, 61–90, 91–120, 121+ days). With `party_id`, that party's open items. JSON, or
/// CSV with `format=csv` (one row per open document).
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/aging", tag = "reports",
    params(("organization_id" = Uuid, Path), AgingQuery),
    responses((status = 200, description = "Aging",
        content((AgingView = "application/json"), (String = "text/csv"))), InvoicingQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn aging(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    QueryParams(query): QueryParams<AgingQuery>,
) -> Result<Response, ApiError> {
    let side = query.side.unwrap_or(OpenSideView::Receivable);
    let basis = query.basis.unwrap_or_default();
    let as_of = query.as_of.unwrap_or_else(|| {
        (chrono::Utc::now()
            + chrono::Duration::hours(vextrus_projections::activity::DAY_OFFSET_HOURS))
        .date_naive()
    });
    let mut tx = fresh_read(&state, &context, query.min_position).await?;
    require_organization(&mut tx, organization).await?;
    let mut sql = QueryBuilder::<Postgres>::new(
        "select m.invoice_id, m.party_id, m.number, m.document_date, m.due_date,
                sum(m.amount)::bigint as open, p.name as party_name
         from fin_open_item_moves m
         left join fin_parties p on p.tenant_id = m.tenant_id and p.party_id = m.party_id
         where m.organization_id = ",
    );
    sql.push_bind(organization.as_uuid())
        .push(" and m.side = ")
        .push_bind(match side {
            OpenSideView::Receivable => "receivable",
            OpenSideView::Payable => "payable",
        })
        .push(" and m.date <= ")
        .push_bind(as_of);
    if let Some(party) = query.party_id {
        sql.push(" and m.party_id = ").push_bind(party);
    }
    sql.push(
        " group by m.invoice_id, m.party_id, m.number, m.document_date, m.due_date, p.name
          having sum(m.amount) <> 0
          order by m.document_date, m.number",
    );
    let rows = sql
        .build()
        .fetch_all(&mut *tx)
        .await
        .map_err(ApiError::database)?;
    let mut parties: BTreeMap<(Option<String>, uuid::Uuid), [i64; 5]> = BTreeMap::new();
    let mut totals = [0i64; 5];
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let document_date: NaiveDate = row.get("document_date");
        let due_date: NaiveDate = row.get("due_date");
        let open: i64 = row.get("open");
        let from = match basis {
            AgingBasisView::DocumentDate => document_date,
            AgingBasisView::DueDate => due_date,
        };
        let days = (as_of - from).num_days().max(0);
        let at = bucket(days);
        let party_id: uuid::Uuid = row.get("party_id");
        let party_name: Option<String> = row.get("party_name");
        parties.entry((party_name.clone(), party_id)).or_default()[at] += open;
        totals[at] += open;
        items.push(OpenItemView {
            invoice_id: row.get("invoice_id"),
            number: row.get("number"),
            party_id,
            party_name,
            document_date,
            due_date,
            open: amount(open),
            days,
            bucket: BUCKETS[at].to_owned(),
        });
    }
    if query.format == Some(ReportFormat::Csv) {
        let header_row = [
            "party",
            "number",
            "document_date",
            "due_date",
            "days",
            "bucket",
            "open",
        ];
        let rows = items
            .into_iter()
            .map(|item| {
                vec![
                    item.party_name.unwrap_or_default(),
                    item.number,
                    item.document_date.to_string(),
                    item.due_date.to_string(),
                    item.days.to_string(),
                    item.bucket,
                    item.open,
                ]
            })
            .collect();
        let file = format!("aging-{}", as_of);
        return Ok(crate::finance::queries::csv_response(
            &file,
            &header_row,
            rows,
        ));
    }
    let view = AgingView {
        side,
        as_of,
        basis,
        parties: parties
            .into_iter()
            .map(|((party_name, party_id), buckets)| AgingPartyView {
                party_id,
                party_name,
                total: amount(buckets.iter().sum()),
                buckets: buckets.iter().copied().map(amount).collect(),
            })
            .collect(),
        total: amount(totals.iter().sum()),
        totals: totals.iter().copied().map(amount).collect(),
        items,
    };
    Ok(Json(view).into_response())
}

/// A party's ledger: every posted line naming the party (invoices, bills, notes, receipts,
/// payments, advances, retention, journal entries) in date order with the running balance.
/// JSON, or CSV with `format=csv`.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/parties/{party_id}/ledger", tag = "parties",
    params(("organization_id" = Uuid, Path), ("party_id" = Uuid, Path), PartyLedgerQuery),
    responses((status = 200, description = "The party's ledger",
        content((PartyLedgerView = "application/json"), (String = "text/csv"))), InvoicingQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn party_ledger(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds((organization, party)): PathIds<(OrganizationId, PartyId)>,
    QueryParams(query): QueryParams<PartyLedgerQuery>,
) -> Result<Response, ApiError> {
    let mut tx = fresh_read(&state, &context, query.min_position).await?;
    let found: bool = sqlx::query_scalar(
        "select exists (select 1 from fin_parties where organization_id = $1 and party_id = $2)",
    )
    .bind(organization.as_uuid())
    .bind(party.as_uuid())
    .fetch_one(&mut *tx)
    .await
    .map_err(ApiError::database)?;
    if !found {
        return Err(ApiError::NotFound(format!("party {party} not found")));
    }
    let rows = sqlx::query(
        "select l.date, l.entry_id, e.document_number, e.narration, a.code, l.debit, l.credit,
                sum(l.debit - l.credit) over (order by l.date, l.position, l.entry_id, l.line_no)
                    ::bigint as balance
         from fin_entry_lines l
         join fin_entries e on e.tenant_id = l.tenant_id and e.entry_id = l.entry_id
         join fin_accounts a on a.tenant_id = l.tenant_id and a.account_id = l.account_id
         where l.organization_id = $1 and l.party_id = $2 and ($3::date is null or l.date <= $3)
         order by l.date, l.position, l.entry_id, l.line_no",
    )
    .bind(organization.as_uuid())
    .bind(party.as_uuid())
    .bind(query.to)
    .fetch_all(&mut *tx)
    .await
    .map_err(ApiError::database)?;
    let mut opening = 0i64;
    let mut closing = 0i64;
    let mut lines = Vec::new();
    for row in &rows {
        let date: NaiveDate = row.get("date");
        let balance: i64 = row.get("balance");
        closing = balance;
        if query.from.is_some_and(|from| date < from) {
            opening = balance;
            continue;
        }
        lines.push(PartyLedgerLine {
            date,
            entry_id: row.get("entry_id"),
            document_number: row.get("document_number"),
            narration: row.get("narration"),
            account_code: row.get("code"),
            debit: amount(row.get("debit")),
            credit: amount(row.get("credit")),
            balance: amount(balance),
        });
    }
    if query.format == Some(ReportFormat::Csv) {
        let header_row = [
            "date",
            "document_number",
            "narration",
            "account",
            "debit",
            "credit",
            "balance",
        ];
        let rows = lines
            .into_iter()
            .map(|line| {
                vec![
                    line.date.to_string(),
                    line.document_number.unwrap_or_default(),
                    line.narration,
                    line.account_code,
                    line.debit,
                    line.credit,
                    line.balance,
                ]
            })
            .collect();
        return Ok(crate::finance::queries::csv_response(
            &format!("party-ledger-{party}"),
            &header_row,
            rows,
        ));
    }
    Ok(Json(PartyLedgerView {
        party_id: party.as_uuid(),
        from: query.from,
        to: query.to,
        opening: amount(opening),
        lines,
        closing: amount(closing),
    })
    .into_response())
}

/// The withholding register: VAT (VDS), income tax (TDS) and retention withheld at source,
/// given (by the organization, from its suppliers, to deposit) and suffered (by its customers,
/// from it), with the Mushak-6.6 certificates recorded. JSON, or CSV with `format=csv`.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/withholding-register", tag = "tax",
    params(("organization_id" = Uuid, Path), WithholdingQuery),
    responses((status = 200, description = "The withholding register",
        content((WithholdingRegister = "application/json"), (String = "text/csv"))), InvoicingQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn withholding_register(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    QueryParams(query): QueryParams<WithholdingQuery>,
) -> Result<Response, ApiError> {
    let mut tx = fresh_read(&state, &context, query.min_position).await?;
    require_organization(&mut tx, organization).await?;
    // Bills withhold when submitted; receipts and payments when recorded.
    let rows = sqlx::query(
        "with withheld as (
             select i.tenant_id, i.date, i.number, i.party_id, k.kind, 'given' as direction,
                    k.amount, case k.kind when 'vds' then i.vds_certificate end as certificate,
                    i.position
             from fin_invoices i
             cross join lateral (values ('vds', i.vds), ('tds', i.tds), ('retention', i.retention))
                  as k(kind, amount)
             where i.organization_id = $1 and i.kind = 'purchase_bill' and i.status = 'submitted'
               and k.amount <> 0
             union all
             select y.tenant_id, y.date, y.number, y.party_id, k.kind,
                    case y.direction when 'receipt' then 'suffered' else 'given' end,
                    k.amount, case k.kind when 'vds' then y.vds_certificate end, y.position
             from fin_payments y
             cross join lateral (values ('vds', y.vds), ('tds', y.tds), ('retention', y.retention))
                  as k(kind, amount)
             where y.organization_id = $1 and k.amount <> 0)
         select w.*, p.name as party_name from withheld w
         left join fin_parties p on p.tenant_id = w.tenant_id and p.party_id = w.party_id
         where ($2::date is null or w.date >= $2) and ($3::date is null or w.date <= $3)
         order by w.date, w.position, w.kind",
    )
    .bind(organization.as_uuid())
    .bind(query.from)
    .bind(query.to)
    .fetch_all(&mut *tx)
    .await
    .map_err(ApiError::database)?;
    let lines: Vec<WithholdingLine> = rows
        .iter()
        .map(|row| WithholdingLine {
            date: row.get("date"),
            number: row.get::<Option<String>, _>("number").unwrap_or_default(),
            party_id: row.get("party_id"),
            party_name: row.get("party_name"),
            kind: row.get("kind"),
            direction: row.get("direction"),
            amount: amount(row.get("amount")),
            certificate: row.get("certificate"),
        })
        .collect();
    if query.format == Some(ReportFormat::Csv) {
        let header_row = [
            "date",
            "number",
            "party",
            "kind",
            "direction",
            "amount",
            "certificate",
        ];
        let rows = lines
            .into_iter()
            .map(|line| {
                vec![
                    line.date.to_string(),
                    line.number,
                    line.party_name.unwrap_or_default(),
                    line.kind,
                    line.direction,
                    line.amount,
                    line.certificate.unwrap_or_default(),
                ]
            })
            .collect();
        return Ok(crate::finance::queries::csv_response(
            "withholding-register",
            &header_row,
            rows,
        ));
    }
    Ok(Json(WithholdingRegister { lines }).into_response())
}

/// The register of Mushak-6.6 certificates: every deduction of VAT at source, with the
/// certificate recorded for it or none yet. `issued`: a bill's VDS (the organization withheld it
/// from the supplier when the bill was submitted) and a payment's VDS deduction; `received`: a
/// receipt's VDS deduction (the customer withheld it). With `pending=true`, only the deductions
/// whose certificate is still to be issued or collected. JSON, or CSV with `format=csv`.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/vds-certificates", tag = "tax",
    params(("organization_id" = Uuid, Path), VdsCertificateQuery),
    responses((status = 200, description = "The Mushak-6.6 certificates issued and received",
        content((VdsCertificateRegister = "application/json"), (String = "text/csv"))), InvoicingQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn vds_certificates(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    QueryParams(query): QueryParams<VdsCertificateQuery>,
) -> Result<Response, ApiError> {
    let mut tx = fresh_read(&state, &context, query.min_position).await?;
    require_organization(&mut tx, organization).await?;
    let direction = query.direction.map(|direction| match direction {
        CertificateDirectionView::Issued => "issued",
        CertificateDirectionView::Received => "received",
    });
    let rows = sqlx::query(
        "with deducted as (
             select 'issued' as direction, i.tenant_id, i.invoice_id as document_id, i.date,
                    i.number, i.party_id, i.vds, i.vds_certificate, i.vds_certificate_date,
                    i.position
             from fin_invoices i
             where i.organization_id = $1 and i.kind = 'purchase_bill' and i.status = 'submitted'
               and i.vds <> 0
             union all
             select case y.direction when 'payment' then 'issued' else 'received' end,
                    y.tenant_id, y.payment_id, y.date, y.number, y.party_id, y.vds,
                    y.vds_certificate, coalesce(y.vds_certificate_date, y.date), y.position
             from fin_payments y
             where y.organization_id = $1 and y.vds <> 0)
         select d.*, p.name as party_name, p.bin as party_bin from deducted d
         left join fin_parties p on p.tenant_id = d.tenant_id and p.party_id = d.party_id
         where ($2::date is null or d.date >= $2) and ($3::date is null or d.date <= $3)
           and ($4::text is null or d.direction = $4)
           and (not $5 or d.vds_certificate is null)
         order by d.date, d.position",
    )
    .bind(organization.as_uuid())
    .bind(query.from)
    .bind(query.to)
    .bind(direction)
    .bind(query.pending.unwrap_or(false))
    .fetch_all(&mut *tx)
    .await
    .map_err(ApiError::database)?;
    drop(tx);
    let mut total = 0_i64;
    let mut pending = 0_u64;
    let lines: Vec<VdsCertificateLine> = rows
        .iter()
        .map(|row| {
            let vds: i64 = row.get("vds");
            total += vds;
            let certificate = certificate_of(row);
            if certificate.is_none() {
                pending += 1;
            }
            VdsCertificateLine {
                direction: if row.get::<String, _>("direction") == "issued" {
                    CertificateDirectionView::Issued
                } else {
                    CertificateDirectionView::Received
                },
                date: row.get("date"),
                document_id: row.get("document_id"),
                number: row.get::<Option<String>, _>("number").unwrap_or_default(),
                party_id: row.get("party_id"),
                party_name: row.get("party_name"),
                party_bin: bin_text(row.get("party_bin")),
                vds: amount(vds),
                certificate,
            }
        })
        .collect();
    if query.format == Some(ReportFormat::Csv) {
        let header_row = [
            "direction",
            "date",
            "number",
            "party",
            "party_bin",
            "vds",
            "certificate",
            "certificate_date",
        ];
        let rows = lines
            .into_iter()
            .map(|line| {
                let (certificate, date) = line
                    .certificate
                    .map(|c| (c.number, c.date.to_string()))
                    .unwrap_or_default();
                vec![
                    match line.direction {
                        CertificateDirectionView::Issued => "issued".to_owned(),
                        CertificateDirectionView::Received => "received".to_owned(),
                    },
                    line.date.to_string(),
                    line.number,
                    line.party_name.unwrap_or_default(),
                    line.party_bin.unwrap_or_default(),
                    line.vds,
                    certificate,
                    date,
                ]
            })
            .collect();
        return Ok(crate::finance::queries::csv_response(
            "vds-certificates",
            &header_row,
            rows,
        ));
    }
    Ok(Json(VdsCertificateRegister {
        lines,
        vds: amount(total),
        pending,
    })
    .into_response())
}

/// The side of the books a party's retention is on: customers hold it back from the
/// organization, the organization withholds it from suppliers.
fn retention_side(row: &PgRow) -> OpenSideView {
    match row.get::<Option<String>, _>("party_kind").as_deref() {
        Some("customer") => OpenSideView::Receivable,
        _ => OpenSideView::Payable,
    }
}

/// The retention register: per party, the retention held (by bills and payments that withheld
/// it, or customers that held it back), released and still held as of `to`, and every change
/// from `from` to `to`. JSON, or the balances as CSV with `format=csv`.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/retention-register", tag = "tax",
    params(("organization_id" = Uuid, Path), RetentionQuery),
    responses((status = 200, description = "The retention register",
        content((RetentionRegister = "application/json"), (String = "text/csv"))), InvoicingQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn retention_register(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    QueryParams(query): QueryParams<RetentionQuery>,
) -> Result<Response, ApiError> {
    let mut tx = fresh_read(&state, &context, query.min_position).await?;
    require_organization(&mut tx, organization).await?;
    let balances = sqlx::query(
        "select m.party_id, p.name as party_name, p.kind as party_kind,
                coalesce(sum(m.amount) filter (where m.kind <> 'released'), 0)::bigint as held,
                coalesce(-sum(m.amount) filter (where m.kind = 'released'), 0)::bigint as released,
                sum(m.amount)::bigint as balance
         from fin_retention_moves m
         left join fin_parties p on p.tenant_id = m.tenant_id and p.party_id = m.party_id
         where m.organization_id = $1 and ($2::date is null or m.date <= $2)
           and ($3::uuid is null or m.party_id = $3)
         group by m.party_id, p.name, p.kind
         order by p.name, m.party_id",
    )
    .bind(organization.as_uuid())
    .bind(query.to)
    .bind(query.party_id)
    .fetch_all(&mut *tx)
    .await
    .map_err(ApiError::database)?;
    let parties: Vec<RetentionBalance> = balances
        .iter()
        .map(|row| RetentionBalance {
            party_id: row.get("party_id"),
            party_name: row.get("party_name"),
            side: retention_side(row),
            held: amount(row.get("held")),
            released: amount(row.get("released")),
            balance: amount(row.get("balance")),
        })
        .collect();
    if query.format == Some(ReportFormat::Csv) {
        let header_row = ["party", "side", "held", "released", "balance"];
        let rows = parties
            .into_iter()
            .map(|party| {
                let side = match party.side {
                    OpenSideView::Receivable => "receivable",
                    OpenSideView::Payable => "payable",
                };
                vec![
                    party.party_name.unwrap_or_default(),
                    side.to_owned(),
                    party.held,
                    party.released,
                    party.balance,
                ]
            })
            .collect();
        return Ok(crate::finance::queries::csv_response(
            "retention-register",
            &header_row,
            rows,
        ));
    }
    let moves = sqlx::query(
        "select m.date, m.party_id, p.name as party_name, p.kind as party_kind, m.kind,
                m.document, m.amount
         from fin_retention_moves m
         left join fin_parties p on p.tenant_id = m.tenant_id and p.party_id = m.party_id
         where m.organization_id = $1 and ($2::date is null or m.date >= $2)
           and ($3::date is null or m.date <= $3) and ($4::uuid is null or m.party_id = $4)
         order by m.date, m.position, m.party_id, m.sequence",
    )
    .bind(organization.as_uuid())
    .bind(query.from)
    .bind(query.to)
    .bind(query.party_id)
    .fetch_all(&mut *tx)
    .await
    .map_err(ApiError::database)?
    .iter()
    .map(|row| RetentionMoveView {
        date: row.get("date"),
        party_id: row.get("party_id"),
        party_name: row.get("party_name"),
        side: retention_side(row),
        kind: row.get("kind"),
        document: row.get("document"),
        amount: amount(row.get("amount")),
    })
    .collect();
    Ok(Json(RetentionRegister {
        to: query.to,
        parties,
        moves,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use chrono::Datelike;

    use super::*;

    #[test]
    fn decimals_keep_their_places() {
        assert_eq!(decimal(750, 2), "7.50");
        assert_eq!(decimal(12_500, 3), "12.500");
        assert_eq!(decimal(-5, 2), "-0.05");
        assert_eq!(month("2025-08").unwrap().day(), 1);
        assert!(month("2025-13").is_err());
        assert!(month("25-08").is_err());
    }
}
