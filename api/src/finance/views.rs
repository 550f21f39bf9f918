//! What the finance routes take and return. Amounts are decimal strings with two places
//! (`"50000.00"`), never JSON numbers; request amounts match [`Money::PATTERN`]. Signed amounts
//! (balances) are debit-positive: a credit balance is negative.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use vextrus_domain::finance::{AccountType, EntryKind, Money, PartyKind, RootType};

use crate::openapi::text;

/// One of the five root types: asset and expense balances are normally debits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RootTypeView {
    Asset,
    Liability,
    Equity,
    Income,
    Expense,
}

impl From<RootTypeView> for RootType {
    fn from(view: RootTypeView) -> Self {
        match view {
            RootTypeView::Asset => Self::Asset,
            RootTypeView::Liability => Self::Liability,
            RootTypeView::Equity => Self::Equity,
            RootTypeView::Income => Self::Income,
            RootTypeView::Expense => Self::Expense,
        }
    }
}

/// What an account is for, where a rule depends on it: lines on `receivable` and `payable`
/// accounts name a party; year-end closing goes to `retained_earnings`; round-off lines go to
/// the ledger's `round_off` account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountTypeView {
    General,
    Receivable,
    Payable,
    Bank,
    Cash,
    Tax,
    RetainedEarnings,
    RoundOff,
}

impl From<AccountTypeView> for AccountType {
    fn from(view: AccountTypeView) -> Self {
        match view {
            AccountTypeView::General => Self::General,
            AccountTypeView::Receivable => Self::Receivable,
            AccountTypeView::Payable => Self::Payable,
            AccountTypeView::Bank => Self::Bank,
            AccountTypeView::Cash => Self::Cash,
            AccountTypeView::Tax => Self::Tax,
            AccountTypeView::RetainedEarnings => Self::RetainedEarnings,
            AccountTypeView::RoundOff => Self::RoundOff,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// Unique in the organization.
    #[schema(schema_with = text::code)]
    pub code: String,
    #[schema(schema_with = text::name)]
    pub name: String,
    /// A group account of the same organization; none for a root.
    pub parent_id: Option<Uuid>,
    /// Required for a root; otherwise the parent's (and must equal it if given).
    pub root_type: Option<RootTypeView>,
    /// `general` when omitted.
    pub account_type: Option<AccountTypeView>,
    /// A group holds accounts and takes no postings; `false` when omitted.
    pub is_group: Option<bool>,
    #[schema(schema_with = text::currency_or_null)]
    pub currency: Option<String>,
}

/// The changes a PATCH can make, all at once or none; omitted fields stay as they are. Once an
/// account has postings, `is_group` and `currency` no longer change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    #[schema(schema_with = text::name_or_null)]
    pub name: Option<String>,
    pub is_group: Option<bool>,
    #[schema(schema_with = text::currency_or_null)]
    pub currency: Option<String>,
    pub account_type: Option<AccountTypeView>,
}

/// An account of the chart.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct AccountView {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub code: String,
    pub name: String,
    pub parent_id: Option<Uuid>,
    #[schema(value_type = RootTypeView)]
    pub root_type: String,
    #[schema(value_type = AccountTypeView)]
    pub account_type: String,
    pub is_group: bool,
    pub currency: String,
    pub frozen: bool,
    pub disabled: bool,
    /// Set by the first posting; the account then no longer becomes a group, changes currency or
    /// is deleted.
    pub has_postings: bool,
}

/// An account in the chart's tree with its balance as of a date (a group's is the sum of its
/// accounts').
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AccountNode {
    #[serde(flatten)]
    pub account: AccountView,
    /// Debits minus credits up to `as_of`.
    #[schema(example = "50000.00")]
    pub balance: String,
    #[schema(no_recursion)]
    pub children: Vec<AccountNode>,
}

/// The chart of accounts as a tree.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChartView {
    pub organization_id: Uuid,
    pub as_of: NaiveDate,
    pub roots: Vec<AccountNode>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChartQuery {
    /// Balances up to and including this day (default: today).
    pub as_of: Option<NaiveDate>,
    /// Read-your-writes: wait until the read model includes this log position.
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// The ledger's settings. Omitted fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LedgerSettingsBody {
    /// Profit-and-loss lines must name a site as well as a project.
    pub require_site: Option<bool>,
    /// A ledger account that takes round-off lines.
    pub round_off_account_id: Option<Uuid>,
    /// The largest difference an entry sent with `round_off: true` may have.
    #[schema(schema_with = text::amount_or_null)]
    pub round_off_allowance: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenFiscalYear {
    /// The organization's fiscal-year start (07-01 by default) unless the year is short.
    pub start: NaiveDate,
    /// The day before the same date a year later when omitted; earlier only for a short year.
    pub end: Option<NaiveDate>,
    /// A first or last year shorter than twelve months.
    pub short: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseFiscalYear {
    /// An equity or liability ledger account; when omitted, the chart's only account of type
    /// `retained_earnings`.
    pub retained_earnings_account_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetLockDate {
    /// Nothing posts on or before this day; null removes the lock.
    pub lock_date: Option<NaiveDate>,
}

/// A period (month) of a fiscal year.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PeriodView {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub closed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FiscalYearView {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub short: bool,
    /// Closed to retained earnings at year end.
    pub closed: bool,
    pub closing_entry_id: Option<Uuid>,
    pub periods: Vec<PeriodView>,
}

/// An organization's ledger: settings, lock date and fiscal calendar. Its ETag (`version`) is
/// the `If-Match` of chart and calendar commands.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LedgerView {
    pub organization_id: Uuid,
    pub version: i64,
    pub lock_date: Option<NaiveDate>,
    pub require_site: bool,
    pub round_off_account_id: Option<Uuid>,
    #[schema(example = "0.50")]
    pub round_off_allowance: String,
    pub fiscal_years: Vec<FiscalYearView>,
}

/// A customer or a supplier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartyKindView {
    Customer,
    Supplier,
}

impl From<PartyKindView> for PartyKind {
    fn from(view: PartyKindView) -> Self {
        match view {
            PartyKindView::Customer => Self::Customer,
            PartyKindView::Supplier => Self::Supplier,
        }
    }
}

/// The customer or supplier of a receivable or payable line.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartyRef {
    pub kind: PartyKindView,
    pub id: Uuid,
}

/// One line: a debit or a credit (exactly one, greater than zero).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryLineBody {
    /// A ledger account of the organization: active, not frozen.
    pub account_id: Uuid,
    #[schema(schema_with = text::amount_or_null)]
    pub debit: Option<String>,
    #[schema(schema_with = text::amount_or_null)]
    pub credit: Option<String>,
    /// Required on receivable and payable accounts.
    pub party: Option<PartyRef>,
    /// Required on income and expense accounts.
    pub project_id: Option<Uuid>,
    /// A site of `project_id`; required on income and expense accounts where the ledger says so.
    pub site_id: Option<Uuid>,
    #[schema(schema_with = text::narration_or_null)]
    pub memo: Option<String>,
}

/// Which side a split's lines go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SideView {
    Debit,
    Credit,
}

/// One share of a split.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitPart {
    /// The share's weight; the amount is divided in proportion (largest remainder, to the paisa).
    /// Read as a JSON number so that `2.0` is the integer 2, as JSON Schema has it.
    #[schema(value_type = i64, minimum = 1, maximum = 1000000)]
    pub weight: f64,
    pub account_id: Uuid,
    pub party: Option<PartyRef>,
    pub project_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    #[schema(schema_with = text::narration_or_null)]
    pub memo: Option<String>,
}

/// An amount divided over several lines on one side, by the largest-remainder method
/// (`100.00` in three equal parts: `33.33`, `33.33`, `33.34`). The lines follow `lines`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitBody {
    #[schema(schema_with = text::amount)]
    pub amount: String,
    pub side: SideView,
    #[schema(min_items = 1, max_items = 100)]
    pub parts: Vec<SplitPart>,
}

/// The kinds of entry a client posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PostedKindView {
    Regular,
    /// Balances brought in: balance-sheet accounts only.
    Opening,
}

impl From<PostedKindView> for EntryKind {
    fn from(view: PostedKindView) -> Self {
        match view {
            PostedKindView::Regular => Self::Regular,
            PostedKindView::Opening => Self::Opening,
        }
    }
}

/// A journal entry to post. Debits must equal credits exactly, unless `round_off` is true and the
/// difference is within the ledger's round-off allowance: it then becomes an explicit line on the
/// ledger's round-off account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostEntry {
    /// In an open period of a fiscal year, after the lock date.
    pub date: NaiveDate,
    #[schema(schema_with = text::narration)]
    pub narration: String,
    #[schema(schema_with = text::narration_or_null)]
    pub reference: Option<String>,
    /// Your own document number (voucher number), kept as given.
    #[schema(schema_with = text::narration_or_null)]
    pub document_number: Option<String>,
    /// `regular` when omitted.
    pub kind: Option<PostedKindView>,
    #[schema(max_items = 500)]
    pub lines: Vec<EntryLineBody>,
    /// Amounts to divide over several lines.
    pub splits: Option<Vec<SplitBody>>,
    pub round_off: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReverseEntry {
    /// In an open period, after the lock date.
    pub date: NaiveDate,
    /// "Reversal of …" when omitted.
    #[schema(schema_with = text::narration_or_null)]
    pub narration: Option<String>,
}

/// A posted line.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LineView {
    pub line_no: i32,
    pub account_id: Uuid,
    pub account_code: Option<String>,
    pub account_name: Option<String>,
    #[schema(example = "50000.00")]
    pub debit: String,
    #[schema(example = "0.00")]
    pub credit: String,
    pub party: Option<PartyRef>,
    pub project_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    pub memo: Option<String>,
}

/// What kind of entry a journal row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryKindView {
    Regular,
    Opening,
    Reversal,
    Closing,
}

/// A journal entry. `reverses` and `reversed_by` link an entry and its reversal both ways.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EntryView {
    pub id: Uuid,
    pub organization_id: Uuid,
    #[schema(value_type = EntryKindView)]
    pub kind: String,
    pub date: NaiveDate,
    pub currency: String,
    pub narration: String,
    pub reference: Option<String>,
    pub document_number: Option<String>,
    /// The sum of the debits (equal to the sum of the credits).
    #[schema(example = "50000.00")]
    pub total: String,
    pub line_count: i32,
    pub reverses: Option<Uuid>,
    pub reversed_by: Option<Uuid>,
    pub posted_at: DateTime<Utc>,
    pub posted_by: String,
    /// Log position of the event that posted it.
    pub position: i64,
    /// The lines (in the entry's detail; omitted from lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<LineView>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EntryPage {
    pub items: Vec<EntryView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct JournalQuery {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub kind: Option<EntryKindView>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = r"^[0-9]{1,6}~[0-9]{1,18}$")]
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// How a report is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    #[default]
    Json,
    Csv,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TrialBalanceQuery {
    /// First day (default: the start of the fiscal year that holds `to`, else `to`'s month).
    pub from: Option<NaiveDate>,
    /// Last day (default: today).
    pub to: Option<NaiveDate>,
    /// Only lines of this project.
    pub project_id: Option<Uuid>,
    /// Only lines of this site.
    pub site_id: Option<Uuid>,
    /// One row per account, project and site instead of per account.
    pub by_dimension: Option<bool>,
    /// `csv` for a spreadsheet (`text/csv`).
    pub format: Option<ReportFormat>,
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// One account's row of a trial balance.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrialBalanceRow {
    pub account_id: Uuid,
    pub code: String,
    pub name: String,
    #[schema(value_type = RootTypeView)]
    pub root_type: String,
    /// Present with `by_dimension=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_id: Option<Uuid>,
    /// Balance before `from`, debits minus credits.
    pub opening: String,
    pub debit: String,
    pub credit: String,
    /// `opening + debit - credit`.
    pub closing: String,
}

/// Column totals: the debit and credit columns are equal when the books balance.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrialBalanceTotals {
    pub opening_debit: String,
    pub opening_credit: String,
    pub debit: String,
    pub credit: String,
    pub closing_debit: String,
    pub closing_credit: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrialBalanceView {
    pub organization_id: Uuid,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub project_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    pub rows: Vec<TrialBalanceRow>,
    pub totals: TrialBalanceTotals,
    /// Debits equal credits in every column.
    pub balanced: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AccountLedgerQuery {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub project_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    pub party_id: Option<Uuid>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = r"^[0-9]{1,6}~[0-9]{1,18}~[0-9]{1,9}$")]
    pub after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `csv` for a spreadsheet (`text/csv`, every line of the range, no paging).
    pub format: Option<ReportFormat>,
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// A line of an account's ledger with the running balance after it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LedgerLineView {
    pub entry_id: Uuid,
    pub line_no: i32,
    pub date: NaiveDate,
    #[schema(value_type = EntryKindView)]
    pub kind: String,
    pub narration: String,
    pub reference: Option<String>,
    pub document_number: Option<String>,
    pub debit: String,
    pub credit: String,
    /// Debits minus credits of the filtered lines up to and including this one.
    pub balance: String,
    pub party: Option<PartyRef>,
    pub project_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    pub memo: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AccountLedgerView {
    pub account: AccountView,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Balance of the filtered lines before `from` (zero without `from`).
    pub opening_balance: String,
    pub items: Vec<LedgerLineView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BalanceSheetQuery {
    /// Default: today.
    pub as_of: Option<NaiveDate>,
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProfitAndLossQuery {
    /// Default: the start of the fiscal year that holds `to`.
    pub from: Option<NaiveDate>,
    /// Default: today.
    pub to: Option<NaiveDate>,
    /// One project's P&L.
    pub project_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    #[param(minimum = 1)]
    pub min_position: Option<i64>,
}

/// An account's amount in a statement, in its normal direction (a debit balance is positive for
/// assets and expenses, a credit balance for the others).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatementLine {
    pub account_id: Option<Uuid>,
    pub code: Option<String>,
    pub name: String,
    pub amount: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatementSection {
    pub lines: Vec<StatementLine>,
    pub total: String,
}

/// Assets = liabilities + equity, as of a day. The year's result not yet closed to retained
/// earnings shows as "Current period earnings" under equity.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BalanceSheetView {
    pub organization_id: Uuid,
    pub as_of: NaiveDate,
    pub assets: StatementSection,
    pub liabilities: StatementSection,
    pub equity: StatementSection,
    pub total_liabilities_and_equity: String,
    pub balanced: bool,
}

/// Income and expenses over a period (year-end closing entries excluded), for the organization
/// or one project.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProfitAndLossView {
    pub organization_id: Uuid,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub project_id: Option<Uuid>,
    pub site_id: Option<Uuid>,
    pub income: StatementSection,
    pub expenses: StatementSection,
    /// Income minus expenses.
    pub net_profit: String,
}

/// A signed amount as a decimal string.
pub fn amount(paisa: i64) -> String {
    Money::from_paisa(paisa).to_decimal()
}
