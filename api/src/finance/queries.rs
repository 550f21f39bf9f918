//! Query routes of the general ledger, answered from the `fin_*` read models through
//! [`RequestContext::read`], so row-level security confines every statement to the caller's
//! tenant: another tenant's ids find nothing and answer 404 like missing ones.
//!
//! Balances come from the monthly counters (`fin_account_balances`, `fin_dimension_balances`);
//! lines are read only for the part of a month a report's range cuts (and for ledgers). Running
//! balances are computed when queried.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, Months, NaiveDate, Utc};
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use uuid::Uuid;
use vextrus_commands::Version;
use vextrus_domain::finance::{FiscalYear, RootType};
use vextrus_domain::ids::{AccountId, EntryId, OrganizationId};
use vextrus_projections::finance::{GeneralLedger, month_of};

use super::FinanceQueryErrors;
use super::views::{
    AccountLedgerQuery, AccountLedgerView, AccountNode, AccountView, BalanceSheetQuery,
    BalanceSheetView, ChartQuery, ChartView, EntryKindView, EntryPage, EntryView, FiscalYearView,
    JournalQuery, LedgerLineView, LedgerView, LineView, PartyKindView, PartyRef, PeriodView,
    ProfitAndLossQuery, ProfitAndLossView, ReportFormat, StatementLine, StatementSection,
    TrialBalanceQuery, TrialBalanceRow, TrialBalanceTotals, TrialBalanceView, amount,
};
use crate::consistency::{self, Freshness};
use crate::context::RequestContext;
use crate::error::ApiError;
use crate::extract::{PathIds, QueryParams, etag};
use crate::state::AppState;

/// Waits for `min_position` (if any), then opens the tenant's read transaction.
async fn fresh_read(
    state: &AppState,
    context: &RequestContext,
    min_position: Option<i64>,
) -> Result<sqlx::Transaction<'static, Postgres>, ApiError> {
    consistency::wait_for::<GeneralLedger>(state, context, min_position).await?;
    context.read(state).await
}

/// The first and last days a report reaches (PostgreSQL's dates span less than chrono's).
const EARLIEST: NaiveDate = match NaiveDate::from_ymd_opt(1, 1, 1) {
    Some(day) => day,
    None => panic!("1 January of year 1 exists"),
};
const LATEST: NaiveDate = match NaiveDate::from_ymd_opt(9999, 12, 31) {
    Some(day) => day,
    None => panic!("31 December 9999 exists"),
};

/// Today in Bangladesh (UTC+6), the default end of reports.
fn today() -> NaiveDate {
    (Utc::now() + chrono::Duration::hours(vextrus_projections::activity::DAY_OFFSET_HOURS))
        .date_naive()
}

const ACCOUNT_COLUMNS: &str = "account_id as id, organization_id, code, name, parent_id, root_type, \
     account_type, is_group, currency, frozen, disabled, has_postings";

async fn accounts(
    conn: &mut PgConnection,
    organization: OrganizationId,
) -> Result<Vec<AccountView>, ApiError> {
    sqlx::query_as::<_, AccountView>(&format!(
        "select {ACCOUNT_COLUMNS} from fin_accounts where organization_id = $1 order by code"
    ))
    .bind(organization.as_uuid())
    .fetch_all(conn)
    .await
    .map_err(ApiError::database)
}

async fn account(
    conn: &mut PgConnection,
    organization: OrganizationId,
    account: AccountId,
) -> Result<AccountView, ApiError> {
    sqlx::query_as::<_, AccountView>(&format!(
        "select {ACCOUNT_COLUMNS} from fin_accounts where organization_id = $1 and account_id = $2"
    ))
    .bind(organization.as_uuid())
    .bind(account.as_uuid())
    .fetch_optional(conn)
    .await
    .map_err(ApiError::database)?
    .ok_or_else(|| ApiError::NotFound(format!("account {account} not found")))
}

/// The ledger's row: its version and settings; `None` before its first command.
async fn ledger_row(
    conn: &mut PgConnection,
    organization: OrganizationId,
) -> Result<Option<sqlx::postgres::PgRow>, ApiError> {
    sqlx::query(
        "select version, lock_date, require_site, round_off_account_id, round_off_allowance
         from fin_ledgers where organization_id = $1",
    )
    .bind(organization.as_uuid())
    .fetch_optional(conn)
    .await
    .map_err(ApiError::database)
}

/// 404 unless the tenant has the organization: it has a ledger in this read model, or (before
/// its first ledger command) it is in the hierarchy's.
pub(crate) async fn require_organization(
    conn: &mut PgConnection,
    organization: OrganizationId,
) -> Result<(), ApiError> {
    let found: bool = sqlx::query_scalar(
        "select exists (select 1 from fin_ledgers where organization_id = $1)
             or exists (select 1 from org_organizations where organization_id = $1)",
    )
    .bind(organization.as_uuid())
    .fetch_one(conn)
    .await
    .map_err(ApiError::database)?;
    if found {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "organization {organization} not found"
        )))
    }
}

/// Debits and credits per account (and, with `by_dimension`, project and site) over `from..=to`,
/// and the balance before `from`: whole months from the counters, the cut months' days from the
/// lines.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    opening: i64,
    debit: i64,
    credit: i64,
}

/// Filters of a balance report.
#[derive(Debug, Clone, Copy, Default)]
struct Scope {
    project: Option<Uuid>,
    site: Option<Uuid>,
    by_dimension: bool,
    /// Leave year-end closing entries out (profit and loss over a closed year).
    without_closing: bool,
}

type TotalsKey = (Uuid, Option<Uuid>, Option<Uuid>);

async fn totals(
    conn: &mut PgConnection,
    organization: OrganizationId,
    from: Option<NaiveDate>,
    to: NaiveDate,
    scope: Scope,
) -> Result<BTreeMap<TotalsKey, Totals>, ApiError> {
    let from = from.unwrap_or(EARLIEST);
    let after_to = to.succ_opt().unwrap_or(to);
    let mut result: BTreeMap<TotalsKey, Totals> = BTreeMap::new();
    let dimension = scope.project.is_some() || scope.site.is_some() || scope.by_dimension;
    if dimension {
        add_range(
            conn,
            &mut result,
            organization,
            scope,
            (EARLIEST, from),
            Part::Opening,
        )
        .await?;
        add_range(
            conn,
            &mut result,
            organization,
            scope,
            (from, after_to),
            Part::Period,
        )
        .await?;
    } else {
        // Whole fiscal years from their totals: every one that starts before the last year with
        // postings starting on or before `from` opens the balance, every one inside the range
        // adds to its debits and credits; the days in between come from months and lines.
        let last_started: Option<NaiveDate> = sqlx::query_scalar(
            "select max(fiscal_year) from fin_account_fiscal_years
             where organization_id = $1 and fiscal_year <= $2",
        )
        .bind(organization.as_uuid())
        .bind(from)
        .fetch_one(&mut *conn)
        .await
        .map_err(ApiError::database)?;
        let inside: Vec<(NaiveDate, NaiveDate)> = sqlx::query_as(
            "select start_date, end_date from fin_fiscal_years
             where organization_id = $1 and start_date >= $2 and end_date <= $3
             order by start_date",
        )
        .bind(organization.as_uuid())
        .bind(from)
        .bind(to)
        .fetch_all(&mut *conn)
        .await
        .map_err(ApiError::database)?;
        let starts: Vec<NaiveDate> = inside.iter().map(|(start, _)| *start).collect();
        let rows = sqlx::query(
            "select account_id,
                    coalesce(sum(debit - credit) filter (where fiscal_year < $2), 0)::bigint,
                    coalesce(sum(debit) filter (where fiscal_year = any($3)), 0)::bigint,
                    coalesce(sum(credit) filter (where fiscal_year = any($3)), 0)::bigint
             from fin_account_fiscal_years
             where organization_id = $1 and (fiscal_year < $2 or fiscal_year = any($3))
             group by 1",
        )
        .bind(organization.as_uuid())
        .bind(last_started.unwrap_or(EARLIEST))
        .bind(&starts)
        .fetch_all(&mut *conn)
        .await
        .map_err(ApiError::database)?;
        for row in rows {
            let entry = result.entry((row.get(0), None, None)).or_default();
            entry.opening += row.get::<i64, _>(1);
            entry.debit += row.get::<i64, _>(2);
            entry.credit += row.get::<i64, _>(3);
        }
        // No year with postings starts on or before `from`: nothing is dated before it.
        if let Some(started) = last_started {
            add_range(
                conn,
                &mut result,
                organization,
                scope,
                (started, from),
                Part::Opening,
            )
            .await?;
        }
        let mut cursor = from;
        for (start, end) in inside {
            add_range(
                conn,
                &mut result,
                organization,
                scope,
                (cursor, start),
                Part::Period,
            )
            .await?;
            cursor = end.succ_opt().unwrap_or(end);
        }
        add_range(
            conn,
            &mut result,
            organization,
            scope,
            (cursor, after_to),
            Part::Period,
        )
        .await?;
    }
    if scope.without_closing {
        // Year-end closing entries are few: subtract their lines.
        let mut sql = QueryBuilder::<Postgres>::new(
            "select l.account_id, null::uuid, null::uuid, \
               coalesce(sum(l.debit - l.credit) filter (where l.date < ",
        );
        sql.push_bind(from)
            .push("), 0)::bigint, coalesce(sum(l.debit) filter (where l.date >= ")
            .push_bind(from)
            .push("), 0)::bigint, coalesce(sum(l.credit) filter (where l.date >= ")
            .push_bind(from)
            .push(
                "), 0)::bigint from fin_entries e join fin_entry_lines l on l.tenant_id = e.tenant_id \
                 and l.entry_id = e.entry_id where e.kind = 'closing' and e.organization_id = ",
            )
            .push_bind(organization.as_uuid())
            .push(" and l.date <= ")
            .push_bind(to);
        if let Some(project) = scope.project {
            sql.push(" and l.project_id = ").push_bind(project);
        }
        if let Some(site) = scope.site {
            sql.push(" and l.site_id = ").push_bind(site);
        }
        sql.push(" group by 1, 2, 3");
        for row in sql
            .build()
            .fetch_all(&mut *conn)
            .await
            .map_err(ApiError::database)?
        {
            let key = (row.get::<Uuid, _>(0), None, None);
            let entry = result.entry(key).or_default();
            entry.opening -= row.get::<i64, _>(3);
            entry.debit -= row.get::<i64, _>(4);
            entry.credit -= row.get::<i64, _>(5);
        }
    }
    Ok(result)
}

fn next_month(month: NaiveDate) -> NaiveDate {
    month.checked_add_months(Months::new(1)).unwrap_or(LATEST)
}

/// Where a range's sums go in [`Totals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Before the report's range: debit minus credit.
    Opening,
    /// Inside it: debits and credits.
    Period,
}

/// Adds the lines dated in `[start, end)` to `part` of `result`: whole months from the monthly
/// counters, the days of cut months from the lines.
async fn add_range(
    conn: &mut PgConnection,
    result: &mut BTreeMap<TotalsKey, Totals>,
    organization: OrganizationId,
    scope: Scope,
    (start, end): (NaiveDate, NaiveDate),
    part: Part,
) -> Result<(), ApiError> {
    if start >= end {
        return Ok(());
    }
    let first_full = if start.day() == 1 {
        start
    } else {
        next_month(month_of(start))
    };
    let after_full = month_of(end);
    let dimension = scope.project.is_some() || scope.site.is_some() || scope.by_dimension;
    let (table, group) = match (dimension, scope.by_dimension) {
        (false, _) => ("fin_account_balances", "account_id, null::uuid, null::uuid"),
        (true, false) => (
            "fin_dimension_balances",
            "account_id, null::uuid, null::uuid",
        ),
        (true, true) => (
            "fin_dimension_balances",
            "account_id, nullif(project_id, '00000000-0000-0000-0000-000000000000'::uuid), \
             nullif(site_id, '00000000-0000-0000-0000-000000000000'::uuid)",
        ),
    };
    let line_group = if scope.by_dimension {
        "account_id, project_id, site_id"
    } else {
        "account_id, null::uuid, null::uuid"
    };
    let mut queries = Vec::new();
    if first_full < after_full {
        let mut sql = QueryBuilder::<Postgres>::new(format!(
            "select {group}, coalesce(sum(debit), 0)::bigint, coalesce(sum(credit), 0)::bigint \
             from {table} where organization_id = "
        ));
        sql.push_bind(organization.as_uuid())
            .push(" and month >= ")
            .push_bind(first_full)
            .push(" and month < ")
            .push_bind(after_full);
        queries.push(sql);
        // The cut days on either side.
        let mut cuts = Vec::new();
        if start < first_full {
            cuts.push((start, first_full));
        }
        if after_full < end {
            cuts.push((after_full, end));
        }
        if !cuts.is_empty() {
            queries.push(lines_query(line_group, organization, &cuts));
        }
    } else {
        queries.push(lines_query(line_group, organization, &[(start, end)]));
    }
    for mut sql in queries {
        if let Some(project) = scope.project {
            sql.push(" and project_id = ").push_bind(project);
        }
        if let Some(site) = scope.site {
            sql.push(" and site_id = ").push_bind(site);
        }
        sql.push(" group by 1, 2, 3");
        for row in sql
            .build()
            .fetch_all(&mut *conn)
            .await
            .map_err(ApiError::database)?
        {
            let key = (
                row.get::<Uuid, _>(0),
                row.get::<Option<Uuid>, _>(1),
                row.get::<Option<Uuid>, _>(2),
            );
            let (debit, credit) = (row.get::<i64, _>(3), row.get::<i64, _>(4));
            let entry = result.entry(key).or_default();
            match part {
                Part::Opening => entry.opening += debit - credit,
                Part::Period => {
                    entry.debit += debit;
                    entry.credit += credit;
                }
            }
        }
    }
    Ok(())
}

/// Debits and credits of the lines dated in any of `ranges` (each `[start, end)`).
fn lines_query<'a>(
    group: &str,
    organization: OrganizationId,
    ranges: &[(NaiveDate, NaiveDate)],
) -> QueryBuilder<'a, Postgres> {
    let mut sql = QueryBuilder::<Postgres>::new(format!(
        "select {group}, coalesce(sum(debit), 0)::bigint, coalesce(sum(credit), 0)::bigint \
         from fin_entry_lines where organization_id = "
    ));
    sql.push_bind(organization.as_uuid()).push(" and (");
    for (index, (start, end)) in ranges.iter().enumerate() {
        if index > 0 {
            sql.push(" or ");
        }
        sql.push("(date >= ")
            .push_bind(*start)
            .push(" and date < ")
            .push_bind(*end)
            .push(")");
    }
    sql.push(")");
    sql
}

/// The first day of the fiscal year that holds `day`, else of `day`'s month.
async fn year_start(
    conn: &mut PgConnection,
    organization: OrganizationId,
    day: NaiveDate,
) -> Result<NaiveDate, ApiError> {
    let start: Option<NaiveDate> = sqlx::query_scalar(
        "select start_date from fin_fiscal_years
         where organization_id = $1 and start_date <= $2 and end_date >= $2",
    )
    .bind(organization.as_uuid())
    .bind(day)
    .fetch_optional(conn)
    .await
    .map_err(ApiError::database)?;
    Ok(start.unwrap_or_else(|| month_of(day)))
}

/// `to`, or the day before `from` when `to` is earlier: a range that ends before it starts is an
/// empty period (no movements; the closing balance is the opening one), not an error.
fn range_end(from: NaiveDate, to: NaiveDate) -> NaiveDate {
    if to < from {
        from.pred_opt().unwrap_or(from)
    } else {
        to
    }
}

/// One account of the chart, read from the ledger's stream (which the write side holds in
/// memory), so it is never behind a change just made: a deleted account is 404 at once.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/accounts/{account_id}", tag = "ledger",
    params(("organization_id" = Uuid, Path), ("account_id" = Uuid, Path), Freshness),
    responses((status = 200, description = "The account", body = AccountView), FinanceQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn get_account(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds((organization, account_id)): PathIds<(OrganizationId, AccountId)>,
    QueryParams(freshness): QueryParams<Freshness>,
) -> Result<Json<AccountView>, ApiError> {
    // Checks the caller may read here (and `min_position`, which the stream never lags).
    fresh_read(&state, &context, freshness.min_position).await?;
    let (ledger, _) = state
        .postings()
        .ledgers
        .refresh(state.store(), context.tenant, &organization.to_string())
        .await?;
    let found = ledger
        .account(account_id)
        .ok_or_else(|| ApiError::NotFound(format!("account {account_id} not found")))?;
    Ok(Json(AccountView {
        id: account_id.as_uuid(),
        organization_id: organization.as_uuid(),
        code: found.code.to_string(),
        name: found.name.to_string(),
        parent_id: found.parent_id.map(|id| id.as_uuid()),
        root_type: found.root_type.as_str().to_owned(),
        account_type: found.account_type.as_str().to_owned(),
        is_group: found.is_group,
        currency: found.currency.as_str().to_owned(),
        frozen: found.frozen,
        disabled: found.disabled,
        has_postings: found.has_postings,
    }))
}

/// The chart of accounts as a tree, with each account's balance up to `as_of` (a group's is its
/// accounts' sum).
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/accounts", tag = "ledger",
    params(("organization_id" = Uuid, Path), ChartQuery),
    responses((status = 200, description = "The chart", body = ChartView), FinanceQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn get_chart(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    QueryParams(query): QueryParams<ChartQuery>,
) -> Result<Json<ChartView>, ApiError> {
    let mut tx = fresh_read(&state, &context, query.min_position).await?;
    require_organization(&mut tx, organization).await?;
    let as_of = query.as_of.unwrap_or_else(today);
    let all = accounts(&mut tx, organization).await?;
    let totals = totals(&mut tx, organization, None, as_of, Scope::default()).await?;
    let mut balance: HashMap<Uuid, i64> = totals
        .iter()
        .map(|((account, _, _), t)| (*account, t.opening + t.debit - t.credit))
        .collect();
    // Roll balances up to the groups, deepest first.
    let parents: HashMap<Uuid, Option<Uuid>> = all.iter().map(|a| (a.id, a.parent_id)).collect();
    let depth = |mut id: Uuid| {
        let mut depth = 0;
        while let Some(Some(parent)) = parents.get(&id) {
            depth += 1;
            id = *parent;
            if depth > all.len() {
                break;
            }
        }
        depth
    };
    let mut by_depth: Vec<&AccountView> = all.iter().collect();
    by_depth.sort_by_key(|a| std::cmp::Reverse(depth(a.id)));
    for account in by_depth {
        if let Some(parent) = account.parent_id {
            let own = balance.get(&account.id).copied().unwrap_or(0);
            *balance.entry(parent).or_default() += own;
        }
    }
    fn node(
        account: &AccountView,
        all: &[AccountView],
        balance: &HashMap<Uuid, i64>,
    ) -> AccountNode {
        AccountNode {
            account: account.clone(),
            balance: amount(balance.get(&account.id).copied().unwrap_or(0)),
            children: all
                .iter()
                .filter(|child| child.parent_id == Some(account.id))
                .map(|child| node(child, all, balance))
                .collect(),
        }
    }
    let roots = all
        .iter()
        .filter(|a| a.parent_id.is_none())
        .map(|a| node(a, &all, &balance))
        .collect();
    Ok(Json(ChartView {
        organization_id: organization.as_uuid(),
        as_of,
        roots,
    }))
}

/// The organization's ledger: settings, lock date and fiscal calendar with each period's state.
/// Its `ETag` is the version to send as `If-Match` with chart and calendar commands.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/ledger", tag = "ledger",
    params(("organization_id" = Uuid, Path), Freshness),
    responses((status = 200, description = "The ledger", body = LedgerView, headers(("ETag" = String))), FinanceQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn get_ledger(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    QueryParams(freshness): QueryParams<Freshness>,
) -> Result<Response, ApiError> {
    let mut tx = fresh_read(&state, &context, freshness.min_position).await?;
    require_organization(&mut tx, organization).await?;
    let row = ledger_row(&mut tx, organization).await?;
    let years = sqlx::query(
        "select start_date, end_date, short, closed, closing_entry_id from fin_fiscal_years
         where organization_id = $1 order by start_date",
    )
    .bind(organization.as_uuid())
    .fetch_all(&mut *tx)
    .await
    .map_err(ApiError::database)?;
    let closed: Vec<NaiveDate> = sqlx::query_scalar(
        "select period from fin_closed_periods where organization_id = $1 order by period",
    )
    .bind(organization.as_uuid())
    .fetch_all(&mut *tx)
    .await
    .map_err(ApiError::database)?;
    let fiscal_years = years
        .iter()
        .map(|year| {
            let fiscal_year = FiscalYear {
                start: year.get("start_date"),
                end: year.get("end_date"),
                short: year.get("short"),
            };
            let year_closed: bool = year.get("closed");
            FiscalYearView {
                start: fiscal_year.start,
                end: fiscal_year.end,
                short: fiscal_year.short,
                closed: year_closed,
                closing_entry_id: year.get("closing_entry_id"),
                periods: fiscal_year
                    .periods()
                    .map(|start| PeriodView {
                        start,
                        end: fiscal_year.period_end(start),
                        closed: year_closed || closed.contains(&start),
                    })
                    .collect(),
            }
        })
        .collect();
    let version = row.as_ref().map_or(0, |row| row.get::<i64, _>("version"));
    let view = LedgerView {
        organization_id: organization.as_uuid(),
        version,
        lock_date: row.as_ref().and_then(|row| row.get("lock_date")),
        require_site: row.as_ref().is_some_and(|row| row.get("require_site")),
        round_off_account_id: row.as_ref().and_then(|row| row.get("round_off_account_id")),
        round_off_allowance: amount(row.as_ref().map_or(0, |row| row.get("round_off_allowance"))),
        fiscal_years,
    };
    Ok(([(header::ETAG, etag(Version::new(version)))], Json(view)).into_response())
}

const ENTRY_COLUMNS: &str = "entry_id, organization_id, kind, date, currency, narration, reference, \
     document_number, total, line_count, reverses, reversed_by, posted_at, posted_by, position";

fn entry_view(row: &sqlx::postgres::PgRow) -> EntryView {
    EntryView {
        id: row.get("entry_id"),
        organization_id: row.get("organization_id"),
        kind: row.get("kind"),
        date: row.get("date"),
        currency: row.get("currency"),
        narration: row.get("narration"),
        reference: row.get("reference"),
        document_number: row.get("document_number"),
        total: amount(row.get("total")),
        line_count: row.get("line_count"),
        reverses: row.get("reverses"),
        reversed_by: row.get("reversed_by"),
        posted_at: row.get("posted_at"),
        posted_by: row.get("posted_by"),
        position: row.get("position"),
        lines: None,
    }
}

fn party(kind: Option<String>, id: Option<Uuid>) -> Option<PartyRef> {
    let kind = match kind?.as_str() {
        "customer" => PartyKindView::Customer,
        _ => PartyKindView::Supplier,
    };
    Some(PartyRef { kind, id: id? })
}

/// One journal entry with its lines.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/journal-entries/{entry_id}", tag = "journal",
    params(("organization_id" = Uuid, Path), ("entry_id" = Uuid, Path), Freshness),
    responses((status = 200, description = "The entry", body = EntryView), FinanceQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn get_entry(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds((organization, entry)): PathIds<(OrganizationId, EntryId)>,
    QueryParams(freshness): QueryParams<Freshness>,
) -> Result<Json<EntryView>, ApiError> {
    let mut tx = fresh_read(&state, &context, freshness.min_position).await?;
    let row = sqlx::query(&format!(
        "select {ENTRY_COLUMNS} from fin_entries where organization_id = $1 and entry_id = $2"
    ))
    .bind(organization.as_uuid())
    .bind(entry.as_uuid())
    .fetch_optional(&mut *tx)
    .await
    .map_err(ApiError::database)?
    .ok_or_else(|| ApiError::NotFound(format!("journal entry {entry} not found")))?;
    let mut view = entry_view(&row);
    let lines = sqlx::query(
        "select l.line_no, l.account_id, a.code, a.name, l.debit, l.credit, l.party_kind,
                l.party_id, l.project_id, l.site_id, l.memo
         from fin_entry_lines l
         left join fin_accounts a on a.tenant_id = l.tenant_id and a.account_id = l.account_id
         where l.entry_id = $1 order by l.line_no",
    )
    .bind(entry.as_uuid())
    .fetch_all(&mut *tx)
    .await
    .map_err(ApiError::database)?;
    view.lines = Some(
        lines
            .iter()
            .map(|line| LineView {
                line_no: line.get("line_no"),
                account_id: line.get("account_id"),
                account_code: line.get("code"),
                account_name: line.get("name"),
                debit: amount(line.get("debit")),
                credit: amount(line.get("credit")),
                party: party(line.get("party_kind"), line.get("party_id")),
                project_id: line.get("project_id"),
                site_id: line.get("site_id"),
                memo: line.get("memo"),
            })
            .collect(),
    );
    Ok(Json(view))
}

/// Page size bounds.
pub(crate) fn page_size(limit: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::invalid_param(
            "limit",
            format!("must be between 1 and {max}"),
        ));
    }
    Ok(limit)
}

pub(crate) fn bad_cursor() -> ApiError {
    ApiError::invalid_param("after", "not a cursor returned by this list")
}

/// A cursor's day: days since the earliest day a fiscal year may start, so that every entry's
/// day is a number of at most six digits and every cursor the pattern admits reads.
fn cursor_day(day: NaiveDate) -> i64 {
    (day - FiscalYear::EARLIEST).num_days()
}

fn day_of_cursor(days: &str) -> Result<NaiveDate, ApiError> {
    let days: i64 = days.parse().map_err(|_| bad_cursor())?;
    FiscalYear::EARLIEST
        .checked_add_signed(chrono::Duration::days(days))
        .ok_or_else(bad_cursor)
}

/// The journal: the organization's entries by date, then by the order they were posted.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/journal-entries", tag = "journal",
    params(("organization_id" = Uuid, Path), JournalQuery),
    responses((status = 200, description = "A page of entries", body = EntryPage), FinanceQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn list_entries(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    QueryParams(query): QueryParams<JournalQuery>,
) -> Result<Json<EntryPage>, ApiError> {
    let limit = page_size(query.limit, 50, 500)?;
    let after = query
        .after
        .as_deref()
        .map(|text| {
            let (days, position) = text.split_once('~').ok_or_else(bad_cursor)?;
            Ok::<_, ApiError>((
                day_of_cursor(days)?,
                position.parse::<i64>().map_err(|_| bad_cursor())?,
            ))
        })
        .transpose()?;
    let mut tx = fresh_read(&state, &context, query.min_position).await?;
    require_organization(&mut tx, organization).await?;
    let mut sql = QueryBuilder::<Postgres>::new(format!(
        "select {ENTRY_COLUMNS} from fin_entries where organization_id = "
    ));
    sql.push_bind(organization.as_uuid());
    if let Some(from) = query.from {
        sql.push(" and date >= ").push_bind(from);
    }
    if let Some(to) = query.to {
        sql.push(" and date <= ").push_bind(to);
    }
    if let Some(kind) = query.kind {
        let kind = match kind {
            EntryKindView::Regular => "regular",
            EntryKindView::Opening => "opening",
            EntryKindView::Reversal => "reversal",
            EntryKindView::Closing => "closing",
        };
        sql.push(" and kind = ").push_bind(kind);
    }
    if let Some((date, position)) = after {
        sql.push(" and (date, position) > (")
            .push_bind(date)
            .push(", ")
            .push_bind(position)
            .push(")");
    }
    sql.push(" order by date, position limit ")
        .push_bind(i64::from(limit) + 1);
    let rows = sql
        .build()
        .fetch_all(&mut *tx)
        .await
        .map_err(ApiError::database)?;
    let mut items: Vec<EntryView> = rows.iter().map(entry_view).collect();
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items
            .last()
            .map(|last| format!("{}~{}", cursor_day(last.date), last.position))
    } else {
        None
    };
    Ok(Json(EntryPage { items, next_cursor }))
}

/// A CSV body with a header row.
pub(crate) fn csv_response(file: &str, header_row: &[&str], rows: Vec<Vec<String>>) -> Response {
    let mut out = Vec::new();
    out.extend_from_slice(header_row.join(",").as_bytes());
    out.extend_from_slice(b"\r\n");
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            // Amounts stay numbers a spreadsheet can add up; other text is quoted and defused.
            let numeric = !cell.is_empty()
                && cell
                    .trim_start_matches('-')
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'.');
            if numeric {
                out.extend_from_slice(cell.as_bytes());
            } else {
                crate::audit::csv_cell(&mut out, cell);
            }
        }
        out.extend_from_slice(b"\r\n");
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}.csv\""),
            ),
        ],
        out,
    )
        .into_response()
}

/// The trial balance over `from..=to`: per account (or per account, project and site) the balance
/// before `from`, the period's debits and credits, and the closing balance; the totals balance.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/trial-balance", tag = "reports",
    params(("organization_id" = Uuid, Path), TrialBalanceQuery),
    responses((status = 200, description = "The trial balance (JSON, or CSV with `format=csv`)",
        content((TrialBalanceView = "application/json"), (String = "text/csv"))), FinanceQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn trial_balance(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    QueryParams(query): QueryParams<TrialBalanceQuery>,
) -> Result<Response, ApiError> {
    let mut tx = fresh_read(&state, &context, query.min_position).await?;
    require_organization(&mut tx, organization).await?;
    let to = query.to.unwrap_or_else(today);
    let from = match query.from {
        Some(from) => from,
        None => year_start(&mut tx, organization, to).await?,
    };
    let to = range_end(from, to);
    let scope = Scope {
        project: query.project_id,
        site: query.site_id,
        by_dimension: query.by_dimension.unwrap_or(false),
        without_closing: false,
    };
    let totals = totals(&mut tx, organization, Some(from), to, scope).await?;
    let accounts: HashMap<Uuid, AccountView> = accounts(&mut tx, organization)
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    let mut rows: Vec<(String, TrialBalanceRow)> = Vec::new();
    let mut sums = [0i64; 6];
    for ((account_id, project_id, site_id), t) in &totals {
        if t.opening == 0 && t.debit == 0 && t.credit == 0 {
            continue;
        }
        let account = accounts.get(account_id);
        let closing = t.opening + t.debit - t.credit;
        sums[0] += t.opening.max(0);
        sums[1] += (-t.opening).max(0);
        sums[2] += t.debit;
        sums[3] += t.credit;
        sums[4] += closing.max(0);
        sums[5] += (-closing).max(0);
        let code = account.map_or_else(String::new, |a| a.code.clone());
        rows.push((
            code.clone(),
            TrialBalanceRow {
                account_id: *account_id,
                code,
                name: account.map_or_else(|| "(deleted account)".to_owned(), |a| a.name.clone()),
                root_type: account.map_or_else(String::new, |a| a.root_type.clone()),
                project_id: *project_id,
                site_id: *site_id,
                opening: amount(t.opening),
                debit: amount(t.debit),
                credit: amount(t.credit),
                closing: amount(closing),
            },
        ));
    }
    rows.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.1.project_id.cmp(&b.1.project_id))
            .then(a.1.site_id.cmp(&b.1.site_id))
    });
    let rows: Vec<TrialBalanceRow> = rows.into_iter().map(|(_, row)| row).collect();
    if query.format == Some(ReportFormat::Csv) {
        let mut lines: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.code.clone(),
                    r.name.clone(),
                    r.root_type.clone(),
                    r.project_id.map(|id| id.to_string()).unwrap_or_default(),
                    r.site_id.map(|id| id.to_string()).unwrap_or_default(),
                    r.opening.clone(),
                    r.debit.clone(),
                    r.credit.clone(),
                    r.closing.clone(),
                ]
            })
            .collect();
        lines.push(vec![
            String::new(),
            "Total".to_owned(),
            String::new(),
            String::new(),
            String::new(),
            amount(sums[0] - sums[1]),
            amount(sums[2]),
            amount(sums[3]),
            amount(sums[4] - sums[5]),
        ]);
        return Ok(csv_response(
            &format!("trial-balance-{from}-{to}"),
            &[
                "code",
                "name",
                "root_type",
                "project_id",
                "site_id",
                "opening",
                "debit",
                "credit",
                "closing",
            ],
            lines,
        ));
    }
    Ok(Json(TrialBalanceView {
        organization_id: organization.as_uuid(),
        from,
        to,
        project_id: query.project_id,
        site_id: query.site_id,
        rows,
        balanced: sums[0] == sums[1] && sums[2] == sums[3] && sums[4] == sums[5],
        totals: TrialBalanceTotals {
            opening_debit: amount(sums[0]),
            opening_credit: amount(sums[1]),
            debit: amount(sums[2]),
            credit: amount(sums[3]),
            closing_debit: amount(sums[4]),
            closing_credit: amount(sums[5]),
        },
    })
    .into_response())
}

/// Where a ledger page ended: the last line's date, log position and line number.
type LedgerCursor = (NaiveDate, i64, i32);

fn ledger_cursor(text: &str) -> Result<LedgerCursor, ApiError> {
    let mut parts = text.split('~');
    let (Some(date), Some(position), Some(line), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad_cursor());
    };
    Ok((
        day_of_cursor(date)?,
        position.parse().map_err(|_| bad_cursor())?,
        line.parse().map_err(|_| bad_cursor())?,
    ))
}

/// Pushes the ledger's filters (account, project, site, party) onto `sql` (lines aliased `l`).
fn ledger_filters(
    sql: &mut QueryBuilder<'_, Postgres>,
    account: AccountId,
    query: &AccountLedgerQuery,
) {
    sql.push(" l.account_id = ").push_bind(account.as_uuid());
    if let Some(project) = query.project_id {
        sql.push(" and l.project_id = ").push_bind(project);
    }
    if let Some(site) = query.site_id {
        sql.push(" and l.site_id = ").push_bind(site);
    }
    if let Some(party) = query.party_id {
        sql.push(" and l.party_id = ").push_bind(party);
    }
}

/// The balance of the filtered lines before `(date, position, line)`: whole months from the
/// counters (unless a party filter forces the lines), the rest from the lines.
async fn balance_before(
    conn: &mut PgConnection,
    organization: OrganizationId,
    account: AccountId,
    query: &AccountLedgerQuery,
    before: LedgerCursor,
) -> Result<i64, ApiError> {
    let month = month_of(before.0);
    let mut from_lines_since = month;
    let mut balance = 0;
    if query.party_id.is_none() {
        // Everything before the cursor's month, from the counters.
        let dimension = query.project_id.is_some() || query.site_id.is_some();
        let table = if dimension {
            "fin_dimension_balances"
        } else {
            "fin_account_balances"
        };
        let mut sql = QueryBuilder::<Postgres>::new(format!(
            "select coalesce(sum(debit - credit), 0)::bigint from {table} where organization_id = "
        ));
        sql.push_bind(organization.as_uuid())
            .push(" and account_id = ")
            .push_bind(account.as_uuid())
            .push(" and month < ")
            .push_bind(month);
        if let Some(project) = query.project_id {
            sql.push(" and project_id = ").push_bind(project);
        }
        if let Some(site) = query.site_id {
            sql.push(" and site_id = ").push_bind(site);
        }
        balance += sql
            .build_query_scalar::<i64>()
            .fetch_one(&mut *conn)
            .await
            .map_err(ApiError::database)?;
    } else {
        from_lines_since = EARLIEST;
    }
    let mut sql = QueryBuilder::<Postgres>::new(
        "select coalesce(sum(l.debit - l.credit), 0)::bigint from fin_entry_lines l where",
    );
    ledger_filters(&mut sql, account, query);
    sql.push(" and l.date >= ")
        .push_bind(from_lines_since)
        .push(" and (l.date, l.position, l.line_no) < (")
        .push_bind(before.0)
        .push(", ")
        .push_bind(before.1)
        .push(", ")
        .push_bind(before.2)
        .push(")");
    let rest: i64 = sql
        .build_query_scalar()
        .fetch_one(&mut *conn)
        .await
        .map_err(ApiError::database)?;
    Ok(balance + rest)
}

/// An account's ledger: its posted lines in order with the running balance after each, filtered
/// by date range, project, site and party, in cursor pages (or all of it as CSV).
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/accounts/{account_id}/ledger", tag = "reports",
    params(("organization_id" = Uuid, Path), ("account_id" = Uuid, Path), AccountLedgerQuery),
    responses((status = 200, description = "A page of the account's ledger (JSON, or CSV with `format=csv`)",
        content((AccountLedgerView = "application/json"), (String = "text/csv"))), FinanceQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn account_ledger(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds((organization, account_id)): PathIds<(OrganizationId, AccountId)>,
    QueryParams(query): QueryParams<AccountLedgerQuery>,
) -> Result<Response, ApiError> {
    let csv = query.format == Some(ReportFormat::Csv);
    let limit = if csv {
        None
    } else {
        Some(page_size(query.limit, 100, 1000)?)
    };
    let after = query.after.as_deref().map(ledger_cursor).transpose()?;
    let mut tx = fresh_read(&state, &context, query.min_position).await?;
    let account = account(&mut tx, organization, account_id).await?;
    let opening = match query.from {
        Some(from) => {
            balance_before(
                &mut tx,
                organization,
                account_id,
                &query,
                (from, i64::MIN, i32::MIN),
            )
            .await?
        }
        None => 0,
    };
    let mut sql = QueryBuilder::<Postgres>::new(
        "select l.entry_id, l.line_no, l.date, l.position, l.debit, l.credit, l.party_kind, l.party_id,
                l.project_id, l.site_id, l.memo, e.kind, e.narration, e.reference, e.document_number
         from fin_entry_lines l
         join fin_entries e on e.tenant_id = l.tenant_id and e.entry_id = l.entry_id
         where",
    );
    ledger_filters(&mut sql, account_id, &query);
    if let Some(from) = query.from {
        sql.push(" and l.date >= ").push_bind(from);
    }
    if let Some(to) = query.to {
        sql.push(" and l.date <= ").push_bind(to);
    }
    if let Some((date, position, line)) = after {
        sql.push(" and (l.date, l.position, l.line_no) > (")
            .push_bind(date)
            .push(", ")
            .push_bind(position)
            .push(", ")
            .push_bind(line)
            .push(")");
    }
    sql.push(" order by l.date, l.position, l.line_no");
    if let Some(limit) = limit {
        sql.push(" limit ").push_bind(i64::from(limit) + 1);
    }
    let rows = sql
        .build()
        .fetch_all(&mut *tx)
        .await
        .map_err(ApiError::database)?;
    // A later page starts from the balance of everything before its first line.
    let mut balance = match (after, rows.first()) {
        (Some(_), Some(first)) => {
            let first_key = (
                first.get("date"),
                first.get("position"),
                first.get("line_no"),
            );
            balance_before(&mut tx, organization, account_id, &query, first_key).await?
        }
        _ => opening,
    };
    let mut items = Vec::with_capacity(rows.len());
    let mut keys = Vec::with_capacity(rows.len());
    for row in &rows {
        let (debit, credit): (i64, i64) = (row.get("debit"), row.get("credit"));
        balance += debit - credit;
        keys.push((
            row.get::<NaiveDate, _>("date"),
            row.get::<i64, _>("position"),
            row.get::<i32, _>("line_no"),
        ));
        items.push(LedgerLineView {
            entry_id: row.get("entry_id"),
            line_no: row.get("line_no"),
            date: row.get("date"),
            kind: row.get("kind"),
            narration: row.get("narration"),
            reference: row.get("reference"),
            document_number: row.get("document_number"),
            debit: amount(debit),
            credit: amount(credit),
            balance: amount(balance),
            party: party(row.get("party_kind"), row.get("party_id")),
            project_id: row.get("project_id"),
            site_id: row.get("site_id"),
            memo: row.get("memo"),
        });
    }
    let next_cursor = match limit {
        Some(limit) if items.len() > limit as usize => {
            items.truncate(limit as usize);
            keys.get(limit as usize - 1)
                .map(|(date, position, line)| format!("{}~{position}~{line}", cursor_day(*date)))
        }
        _ => None,
    };
    if csv {
        let lines = items
            .iter()
            .map(|line| {
                vec![
                    line.date.to_string(),
                    line.entry_id.to_string(),
                    line.line_no.to_string(),
                    line.kind.clone(),
                    line.narration.clone(),
                    line.reference.clone().unwrap_or_default(),
                    line.document_number.clone().unwrap_or_default(),
                    line.project_id.map(|id| id.to_string()).unwrap_or_default(),
                    line.site_id.map(|id| id.to_string()).unwrap_or_default(),
                    line.party
                        .as_ref()
                        .map(|p| p.id.to_string())
                        .unwrap_or_default(),
                    line.debit.clone(),
                    line.credit.clone(),
                    line.balance.clone(),
                ]
            })
            .collect();
        return Ok(csv_response(
            &format!("ledger-{}", account.code),
            &[
                "date",
                "entry_id",
                "line_no",
                "kind",
                "narration",
                "reference",
                "document_number",
                "project_id",
                "site_id",
                "party_id",
                "debit",
                "credit",
                "balance",
            ],
            lines,
        ));
    }
    Ok(Json(AccountLedgerView {
        account,
        from: query.from,
        to: query.to,
        opening_balance: amount(opening),
        items,
        next_cursor,
    })
    .into_response())
}

/// Statement sections: each account's amount in its normal direction.
fn section(
    accounts: &[AccountView],
    balances: &HashMap<Uuid, i64>,
    roots: &[RootType],
) -> (StatementSection, i64) {
    let mut total = 0i64;
    let mut lines = Vec::new();
    for account in accounts.iter().filter(|a| !a.is_group) {
        let Some(root) = RootType::parse(&account.root_type) else {
            continue;
        };
        if !roots.contains(&root) {
            continue;
        }
        let balance = balances.get(&account.id).copied().unwrap_or(0);
        if balance == 0 {
            continue;
        }
        let normal = if root.is_debit_normal() {
            balance
        } else {
            -balance
        };
        total += normal;
        lines.push(StatementLine {
            account_id: Some(account.id),
            code: Some(account.code.clone()),
            name: account.name.clone(),
            amount: amount(normal),
        });
    }
    (
        StatementSection {
            lines,
            total: amount(total),
        },
        total,
    )
}

/// The balance sheet as of a day: assets, liabilities and equity, with the result not yet closed
/// to retained earnings as current period earnings.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/balance-sheet", tag = "reports",
    params(("organization_id" = Uuid, Path), BalanceSheetQuery),
    responses((status = 200, description = "The balance sheet", body = BalanceSheetView), FinanceQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn balance_sheet(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    QueryParams(query): QueryParams<BalanceSheetQuery>,
) -> Result<Json<BalanceSheetView>, ApiError> {
    let mut tx = fresh_read(&state, &context, query.min_position).await?;
    require_organization(&mut tx, organization).await?;
    let as_of = query.as_of.unwrap_or_else(today);
    let all = accounts(&mut tx, organization).await?;
    let totals = totals(&mut tx, organization, None, as_of, Scope::default()).await?;
    let balances: HashMap<Uuid, i64> = totals
        .iter()
        .map(|((account, _, _), t)| (*account, t.opening + t.debit - t.credit))
        .collect();
    let (assets, assets_total) = section(&all, &balances, &[RootType::Asset]);
    let (liabilities, liabilities_total) = section(&all, &balances, &[RootType::Liability]);
    let (mut equity, mut equity_total) = section(&all, &balances, &[RootType::Equity]);
    // Income and expenses not yet closed: credit balances are earnings.
    let earnings: i64 = all
        .iter()
        .filter(|a| RootType::parse(&a.root_type).is_some_and(RootType::is_profit_and_loss))
        .map(|a| -balances.get(&a.id).copied().unwrap_or(0))
        .sum();
    if earnings != 0 {
        equity.lines.push(StatementLine {
            account_id: None,
            code: None,
            name: "Current period earnings".to_owned(),
            amount: amount(earnings),
        });
        equity_total += earnings;
        equity.total = amount(equity_total);
    }
    let right = liabilities_total + equity_total;
    Ok(Json(BalanceSheetView {
        organization_id: organization.as_uuid(),
        as_of,
        balanced: assets_total == right,
        total_liabilities_and_equity: amount(right),
        assets,
        liabilities,
        equity,
    }))
}

/// Profit and loss over a period, for the organization or one project (and site): income,
/// expenses and the net profit, without year-end closing entries.
#[utoipa::path(
    get, path = "/v1/organizations/{organization_id}/profit-and-loss", tag = "reports",
    params(("organization_id" = Uuid, Path), ProfitAndLossQuery),
    responses((status = 200, description = "The profit and loss statement", body = ProfitAndLossView), FinanceQueryErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("read"))),
)]
pub async fn profit_and_loss(
    State(state): State<AppState>,
    context: RequestContext,
    PathIds(organization): PathIds<OrganizationId>,
    QueryParams(query): QueryParams<ProfitAndLossQuery>,
) -> Result<Json<ProfitAndLossView>, ApiError> {
    let mut tx = fresh_read(&state, &context, query.min_position).await?;
    require_organization(&mut tx, organization).await?;
    let to = query.to.unwrap_or_else(today);
    let from = match query.from {
        Some(from) => from,
        None => year_start(&mut tx, organization, to).await?,
    };
    let to = range_end(from, to);
    let scope = Scope {
        project: query.project_id,
        site: query.site_id,
        by_dimension: false,
        without_closing: true,
    };
    let all = accounts(&mut tx, organization).await?;
    let totals = totals(&mut tx, organization, Some(from), to, scope).await?;
    let movements: HashMap<Uuid, i64> = totals
        .iter()
        .map(|((account, _, _), t)| (*account, t.debit - t.credit))
        .collect();
    let (income, income_total) = section(&all, &movements, &[RootType::Income]);
    let (expenses, expenses_total) = section(&all, &movements, &[RootType::Expense]);
    let net = income_total - expenses_total;
    Ok(Json(ProfitAndLossView {
        organization_id: organization.as_uuid(),
        from,
        to,
        project_id: query.project_id,
        site_id: query.site_id,
        income,
        expenses,
        net_profit: amount(net),
    }))
}
