//! The general ledger over HTTP (domain-finance.md): the chart of accounts, the ledger's settings
//! and fiscal calendar, journal entries, and the reports read from the `general_ledger`
//! projection (trial balance, account ledger, balance sheet, profit and loss). Commands in
//! [`commands`], queries in [`queries`], what they take and return in [`views`]; how the
//! ledger's and the journal's refusals read as problems is their [`DomainProblem`] here.

pub mod commands;
pub mod queries;
pub mod views;

use axum::Router;
use vextrus_domain::finance::{JournalError, LedgerError};

use crate::command::DocumentedRoutes;
use crate::error::{ApiError, DomainProblem, InvalidParam};
use crate::openapi::problem_responses;
use crate::state::AppState;

/// Every finance route, each at the path and method of its `#[utoipa::path]`.
pub fn router() -> Router<AppState> {
    use commands::*;
    use queries::*;
    Router::new()
        .documented(__path_create_account, create_account)
        .documented(__path_get_chart, get_chart)
        .documented(__path_install_standard_chart, install_standard_chart)
        .documented(__path_get_account, get_account)
        .documented(__path_update_account, update_account)
        .documented(__path_delete_account, delete_account)
        .documented(__path_freeze_account, freeze_account)
        .documented(__path_unfreeze_account, unfreeze_account)
        .documented(__path_disable_account, disable_account)
        .documented(__path_enable_account, enable_account)
        .documented(__path_account_ledger, account_ledger)
        .documented(__path_get_ledger, get_ledger)
        .documented(__path_configure_ledger, configure_ledger)
        .documented(__path_set_lock_date, set_lock_date)
        .documented(__path_open_fiscal_year, open_fiscal_year)
        .documented(__path_close_fiscal_year, close_fiscal_year)
        .documented(__path_close_period, close_period)
        .documented(__path_reopen_period, reopen_period)
        .documented(__path_post_entry, post_entry)
        .documented(__path_list_entries, list_entries)
        .documented(__path_get_entry, get_entry)
        .documented(__path_reverse_entry, reverse_entry)
        .documented(__path_trial_balance, trial_balance)
        .documented(__path_balance_sheet, balance_sheet)
        .documented(__path_profit_and_loss, profit_and_loss)
}

/// A refusal by the business rule `rule` (409 with its own `type`).
pub(crate) fn rule(rule: &'static str, detail: String) -> ApiError {
    ApiError::RuleViolated { rule, detail }
}

/// One field that does not match the document (422 naming it).
pub(crate) fn field(name: impl Into<String>, detail: String) -> ApiError {
    ApiError::invalid_input(vec![InvalidParam::new(name, detail)])
}

/// The chart's and the calendar's refusals. 422 is kept for fields that do not match the
/// document (a pattern, a type); a rule of the ledger, whether it reads the ledger's state or
/// several fields together, is 409 with its own `type`; an id that names nothing is 404.
impl DomainProblem for LedgerError {
    const STREAM: &'static str = "ledger";

    fn into_problem(self) -> ApiError {
        use LedgerError as E;
        let detail = self.to_string();
        match self {
            E::AccountNotFound(_) | E::NoSuchYear(_) | E::NoFiscalYear(_) | E::NotAPeriod(_) => {
                ApiError::NotFound(detail)
            }
            E::AccountExists(_) => ApiError::AlreadyExists(detail),
            E::DuplicateCode(_) => rule("duplicate-code", detail),
            E::ParentNotGroup(_) => rule("parent-not-group", detail),
            E::RootTypeRequired | E::RootTypeMismatch { .. } => rule("root-type", detail),
            E::AccountHasPostings(_) => rule("account-has-postings", detail),
            E::AccountHasChildren(_) => rule("account-has-children", detail),
            E::ChartNotEmpty => rule("chart-not-empty", detail),
            E::InvalidRoundOffAccount => rule("invalid-round-off-account", detail),
            E::YearEndsBeforeStart
            | E::YearLength { .. }
            | E::ShortYearTooLong
            | E::YearOutOfRange => rule("fiscal-year-length", detail),
            E::YearStartMismatch(_) => rule("fiscal-year-start", detail),
            E::YearOverlaps { .. } => rule("fiscal-year-overlaps", detail),
            E::YearClosed(_) => rule("fiscal-year-closed", detail),
            E::PeriodClosed { .. } => rule("period-closed", detail),
            E::Locked { .. } => rule("before-lock-date", detail),
            E::PreviousYearOpen(_) => rule("previous-year-open", detail),
            E::PeriodsOpen(_) => rule("periods-open", detail),
            E::InvalidRetainedEarnings => rule("invalid-retained-earnings", detail),
        }
    }
}

/// A posting's or a reversal's refusals, as for the ledger: 422 for a field that does not match
/// the document, 404 for an account, project or site that is not the organization's, and 409
/// with the rule's own `type` for every rule of the entry, its detail starting with the line's
/// field (`lines[1].party: …`; lines are numbered `lines` first, then each split's parts, then
/// the round-off line).
impl DomainProblem for JournalError {
    const STREAM: &'static str = "journal entry";

    fn into_problem(self) -> ApiError {
        use JournalError as E;
        let detail = self.to_string();
        let at = |line: usize, name: &str| format!("lines[{line}].{name}: {detail}");
        match self {
            E::NotFound | E::OrganizationNotFound => ApiError::NotFound(detail),
            E::AccountNotFound { line, .. } => ApiError::NotFound(at(line, "account_id")),
            E::ProjectNotFound { line } => ApiError::NotFound(at(line, "project_id")),
            E::SiteNotFound { line } => ApiError::NotFound(at(line, "site_id")),
            E::AlreadyPosted => ApiError::AlreadyExists(detail),
            E::Text { field: name } => field(name, detail),
            E::OrganizationArchived => rule("unit-archived", detail),
            E::TooFewLines | E::TooManyLines => rule("line-count", detail),
            E::LineSides { line } => rule("line-sides", format!("lines[{line}]: {detail}")),
            E::Unbalanced { .. } => rule("unbalanced", detail),
            E::AboveRoundOffAllowance { .. } => rule("above-round-off-allowance", detail),
            E::NoRoundOffAccount => rule("no-round-off-account", detail),
            E::GroupAccount { line, .. } => rule("group-account", at(line, "account_id")),
            E::CurrencyMismatch { line, .. } => rule("currency-mismatch", at(line, "account_id")),
            E::OpeningTouchesProfitAndLoss { line } => {
                rule("opening-entry-profit-and-loss", at(line, "account_id"))
            }
            E::AccountFrozen { line, .. } => rule("account-frozen", at(line, "account_id")),
            E::AccountDisabled { line, .. } => rule("account-disabled", at(line, "account_id")),
            E::PartyRequired { line } => rule("party-required", at(line, "party")),
            E::ProjectRequired { line } => rule("project-required", at(line, "project_id")),
            E::SiteWithoutProject { line } => rule("site-without-project", at(line, "site_id")),
            E::SiteRequired { line } => rule("site-required", at(line, "site_id")),
            E::SiteNotInProject { line } => rule("site-not-in-project", at(line, "site_id")),
            E::ProjectArchived { line } => rule("unit-archived", at(line, "project_id")),
            E::SiteArchived { line } => rule("unit-archived", at(line, "site_id")),
            E::Date(error) => match error {
                LedgerError::PeriodClosed { .. } => rule("period-closed", detail),
                LedgerError::Locked { .. } => rule("before-lock-date", detail),
                LedgerError::NoFiscalYear(_) => rule("no-fiscal-year", detail),
                other => other.into_problem(),
            },
            E::AlreadyReversed(_) => rule("already-reversed", detail),
            E::OverBudget(_) => rule("over-budget", detail),
            E::VatPeriodLocked { .. } => rule("vat-period-locked", detail),
        }
    }
}

/// The error responses of a chart or calendar command.
pub struct LedgerCommandErrors;

impl utoipa::IntoResponses for LedgerCommandErrors {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        problem_responses(&[
            (400, "Malformed JSON, header or parameter"),
            (401, "Missing, expired or invalid bearer token"),
            (
                403,
                "The token's role does not allow this (finance-manager or admin)",
            ),
            (
                404,
                "The organization, account, fiscal year or period does not exist in this tenant",
            ),
            (
                409,
                "Version conflict (If-Match), or a rule of the chart or calendar forbids it (see `type`)",
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

/// The error responses of a posting or a reversal.
pub struct FinanceErrors;

impl utoipa::IntoResponses for FinanceErrors {
    fn responses() -> std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
    > {
        problem_responses(&[
            (400, "Malformed JSON, header or parameter"),
            (401, "Missing, expired or invalid bearer token"),
            (
                403,
                "The token's role does not allow this (accountant, finance-manager or admin)",
            ),
            (
                404,
                "The organization or entry does not exist in this tenant",
            ),
            (
                409,
                "The ledger's state forbids it: unbalanced, a closed period, a frozen or disabled \
                 account, an archived project, already reversed (see `type`)",
            ),
            (413, "Request body too large"),
            (415, "The body is not sent as application/json"),
            (
                422,
                "Invalid fields, naming the line (see `invalid-params`)",
            ),
        ])
    }
}

/// The error responses of a finance query.
pub struct FinanceQueryErrors;

impl utoipa::IntoResponses for FinanceQueryErrors {
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
                "The organization, account or entry does not exist in this tenant",
            ),
            (422, "Invalid parameter value"),
            (
                503,
                "The read model did not reach `min_position` in time (see Retry-After)",
            ),
        ])
    }
}
