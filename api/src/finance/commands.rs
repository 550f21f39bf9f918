//! Command routes of the general ledger: the chart of accounts, the ledger's settings, the
//! fiscal calendar (role `finance-manager` or `admin`), and journal entries (also `accountant`).
//!
//! Chart and calendar commands run on the organization's ledger stream like any command of the
//! kit. Postings and reversals decide on two streams besides their own, the organization's ledger
//! and hierarchy, held in memory ([`AppState::postings`]); the append
//! checks both are still at the versions the decision saw (design.md D12), and the first posting
//! to an account also records that on the ledger, in the same transaction.

use std::sync::Arc;

use chrono::NaiveDate;
use vextrus_commands::CommandOutcome;
use vextrus_domain::finance::{
    AccountType, EntryKind, EntryLine, JournalCommand, Ledger, LedgerCommand, LedgerSettings,
    LineParty, Money, NewAccount, NewEntry, standard_chart,
};
use vextrus_domain::ids::{AccountId, EntryId, OrganizationId, ProjectId, SiteId};
use vextrus_domain::organization::Organization;
use vextrus_domain::values::{Code, CurrencyCode, Name};

use super::queries::{__path_get_account, __path_get_entry};
use super::views::{
    CloseFiscalYear, CreateAccount, EntryLineBody, LedgerSettingsBody, OpenFiscalYear, PartyRef,
    PostEntry, ReverseEntry, SetLockDate, SideView, SplitBody, UpdateAccount,
};
use super::{FinanceErrors, LedgerCommandErrors};
use crate::auth::Permission;
use crate::command::{Accepted, Command, CommandAccepted, Created, Fields, Issue, location};
use crate::error::ApiError;
use crate::extract::{JsonBody, PathIds};
use crate::state::AppState;

/// The organization as postings see it; 404 when the tenant has none such.
pub(crate) async fn organization(
    state: &AppState,
    issue: &Issue,
    organization: OrganizationId,
) -> Result<Arc<Organization>, ApiError> {
    let id = organization.to_string();
    let cache = &state.postings().organizations;
    let (mut found, _) = cache.get(state.store(), issue.tenant(), &id).await?;
    if found.id().is_none() {
        // Perhaps created since it was cached as missing.
        (found, _) = cache.refresh(state.store(), issue.tenant(), &id).await?;
    }
    if found.id() == Some(organization) {
        Ok(found)
    } else {
        Err(ApiError::NotFound(format!(
            "organization {organization} not found"
        )))
    }
}

/// Runs a chart or calendar command on the organization's ledger.
async fn run_ledger(
    issue: Issue,
    organization_id: OrganizationId,
    command: LedgerCommand,
) -> Result<CommandOutcome, ApiError> {
    organization(&issue.state().clone(), &issue, organization_id).await?;
    issue.run::<Ledger>(organization_id, command).await
}

impl CreateAccount {
    fn into_new(self, account_id: AccountId, base: &CurrencyCode) -> Result<NewAccount, ApiError> {
        let mut fields = Fields::default();
        let code = fields.take("code", Code::parse(&self.code));
        let name = fields.take("name", Name::parse(&self.name));
        let currency = fields.take(
            "currency",
            self.currency
                .as_deref()
                .map_or(Ok(base.clone()), CurrencyCode::parse),
        );
        fields.finish(|| {
            Some(NewAccount {
                account_id,
                code: code?,
                name: name?,
                parent_id: self.parent_id.map(AccountId::from_uuid),
                root_type: self.root_type.map(Into::into),
                account_type: self.account_type.map_or(AccountType::General, Into::into),
                is_group: self.is_group.unwrap_or(false),
                currency: currency?,
            })
        })
    }
}

/// Opens an account in the organization's chart (role `finance-manager` or `admin`).
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/accounts", tag = "ledger",
    request_body = CreateAccount,
    params(("organization_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses(Created, LedgerCommandErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-ledger"))),
)]
pub async fn create_account(
    cmd: Command,
    PathIds(organization_id): PathIds<OrganizationId>,
    JsonBody(body): JsonBody<CreateAccount>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageLedger, "opening an account")?;
    let issue = cmd.named("create-account");
    let org = organization(&issue.state().clone(), &issue, organization_id).await?;
    let account_id = AccountId::from_uuid(issue.new_id());
    let base = org.base_currency().cloned().unwrap_or_default();
    let command = LedgerCommand::CreateAccount(body.into_new(account_id, &base)?);
    let outcome = issue.run::<Ledger>(organization_id, command).await?;
    let at = location(
        __path_get_account,
        &[organization_id.into(), account_id.into()],
    );
    Ok(Accepted::created(outcome, account_id, organization_id, at))
}

/// Installs the standard chart of a Bangladeshi construction company into an empty chart (role
/// `finance-manager` or `admin`): receivables, payables, VAT input and output, VDS and TDS,
/// retention both ways, work in progress, site materials, plant, subcontractor costs and more,
/// in the organization's base currency. Edit it afterwards like any chart.
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/accounts/standard-chart", tag = "ledger",
    params(("organization_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Installed", body = CommandAccepted), LedgerCommandErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-ledger"))),
)]
pub async fn install_standard_chart(
    cmd: Command,
    PathIds(organization_id): PathIds<OrganizationId>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageLedger, "installing the standard chart")?;
    let issue = cmd.named("install-standard-chart");
    let org = organization(&issue.state().clone(), &issue, organization_id).await?;
    let base = org.base_currency().cloned().unwrap_or_default();
    let command = LedgerCommand::InstallStandardChart(standard_chart(&base));
    let outcome = issue.run::<Ledger>(organization_id, command).await?;
    Ok(Accepted::changed(outcome, organization_id, organization_id))
}

/// Renames an account, makes it a group or a ledger account, changes its currency or type, all
/// at once or none (role `finance-manager` or `admin`).
#[utoipa::path(
    patch, path = "/v1/organizations/{organization_id}/accounts/{account_id}", tag = "ledger",
    request_body = UpdateAccount,
    params(("organization_id" = Uuid, Path), ("account_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Changed (or already so)", body = CommandAccepted), LedgerCommandErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-ledger"))),
)]
pub async fn update_account(
    cmd: Command,
    PathIds((organization_id, account_id)): PathIds<(OrganizationId, AccountId)>,
    JsonBody(body): JsonBody<UpdateAccount>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageLedger, "changing an account")?;
    let mut fields = Fields::default();
    let name = fields.take("name", body.name.as_deref().map(Name::parse).transpose());
    let currency = fields.take(
        "currency",
        body.currency
            .as_deref()
            .map(CurrencyCode::parse)
            .transpose(),
    );
    let command = fields.finish(|| {
        Some(LedgerCommand::UpdateAccount {
            account_id,
            name: name?,
            is_group: body.is_group,
            currency: currency?,
            account_type: body.account_type.map(Into::into),
        })
    })?;
    let outcome = run_ledger(cmd.named("update-account"), organization_id, command).await?;
    Ok(Accepted::changed(outcome, account_id, organization_id))
}

macro_rules! account_command {
    ($(#[$doc:meta])* $handler:ident, $path:literal, $operation:literal, $action:literal, $command:ident, $description:literal) => {
        $(#[$doc])*
        #[utoipa::path(
            post, path = $path, tag = "ledger",
            params(("organization_id" = Uuid, Path), ("account_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
            responses((status = 200, description = $description, body = CommandAccepted), LedgerCommandErrors),
            security(("bearer" = [])),
            extensions(("x-permission" = json!("manage-ledger"))),
        )]
        pub async fn $handler(
            cmd: Command,
            PathIds((organization_id, account_id)): PathIds<(OrganizationId, AccountId)>,
        ) -> Result<Accepted, ApiError> {
            cmd.require(Permission::ManageLedger, $action)?;
            let command = LedgerCommand::$command { account_id };
            let outcome = run_ledger(cmd.named($operation), organization_id, command).await?;
            Ok(Accepted::changed(outcome, account_id, organization_id))
        }
    };
}

account_command!(
    /// Freezes an account: it takes no postings until unfrozen (role `finance-manager` or `admin`).
    freeze_account, "/v1/organizations/{organization_id}/accounts/{account_id}/freeze",
    "freeze-account", "freezing an account", FreezeAccount, "Frozen (or already frozen)"
);
account_command!(
    /// Unfreezes an account (role `finance-manager` or `admin`).
    unfreeze_account, "/v1/organizations/{organization_id}/accounts/{account_id}/unfreeze",
    "unfreeze-account", "unfreezing an account", UnfreezeAccount, "Unfrozen (or not frozen)"
);
account_command!(
    /// Disables an account: it takes no postings until enabled (role `finance-manager` or `admin`).
    disable_account, "/v1/organizations/{organization_id}/accounts/{account_id}/disable",
    "disable-account", "disabling an account", DisableAccount, "Disabled (or already disabled)"
);
account_command!(
    /// Enables a disabled account (role `finance-manager` or `admin`).
    enable_account, "/v1/organizations/{organization_id}/accounts/{account_id}/enable",
    "enable-account", "enabling an account", EnableAccount, "Enabled (or not disabled)"
);

/// Deletes an account that has no postings and no accounts under it (role `finance-manager` or
/// `admin`). An account with postings is frozen or disabled instead.
#[utoipa::path(
    delete, path = "/v1/organizations/{organization_id}/accounts/{account_id}", tag = "ledger",
    params(("organization_id" = Uuid, Path), ("account_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Deleted", body = CommandAccepted), LedgerCommandErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-ledger"))),
)]
pub async fn delete_account(
    cmd: Command,
    PathIds((organization_id, account_id)): PathIds<(OrganizationId, AccountId)>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageLedger, "deleting an account")?;
    let command = LedgerCommand::DeleteAccount { account_id };
    let outcome = run_ledger(cmd.named("delete-account"), organization_id, command).await?;
    Ok(Accepted::changed(outcome, account_id, organization_id))
}

/// Changes the ledger's settings: whether P&L lines need a site, the round-off account and
/// allowance (role `finance-manager` or `admin`).
#[utoipa::path(
    put, path = "/v1/organizations/{organization_id}/ledger/settings", tag = "ledger",
    request_body = LedgerSettingsBody,
    params(("organization_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Changed (or already so)", body = CommandAccepted), LedgerCommandErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-ledger"))),
)]
pub async fn configure_ledger(
    cmd: Command,
    PathIds(organization_id): PathIds<OrganizationId>,
    JsonBody(body): JsonBody<LedgerSettingsBody>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageLedger, "changing the ledger's settings")?;
    let mut fields = Fields::default();
    let allowance = fields.take(
        "round_off_allowance",
        body.round_off_allowance
            .as_deref()
            .map(Money::parse)
            .transpose(),
    );
    let allowance = fields.finish(|| allowance)?;
    let issue = cmd.named("configure-ledger");
    organization(&issue.state().clone(), &issue, organization_id).await?;
    let (current, _) = issue
        .state()
        .postings()
        .ledgers
        .refresh(
            issue.state().store(),
            issue.tenant(),
            &organization_id.to_string(),
        )
        .await?;
    let current = current.settings().clone();
    let settings = LedgerSettings {
        require_site: body.require_site.unwrap_or(current.require_site),
        round_off_account_id: body
            .round_off_account_id
            .map(AccountId::from_uuid)
            .or(current.round_off_account_id),
        round_off_allowance: allowance.unwrap_or(current.round_off_allowance),
    };
    let outcome = issue
        .run::<Ledger>(organization_id, LedgerCommand::Configure(settings))
        .await?;
    Ok(Accepted::changed(outcome, organization_id, organization_id))
}

/// Opens a fiscal year (role `finance-manager` or `admin`): exactly one year from the
/// organization's fiscal-year start unless flagged short; years never overlap.
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/fiscal-years", tag = "ledger",
    request_body = OpenFiscalYear,
    params(("organization_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Opened (or already open with these dates)", body = CommandAccepted), LedgerCommandErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-ledger"))),
)]
pub async fn open_fiscal_year(
    cmd: Command,
    PathIds(organization_id): PathIds<OrganizationId>,
    JsonBody(body): JsonBody<OpenFiscalYear>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageLedger, "opening a fiscal year")?;
    let issue = cmd.named("open-fiscal-year");
    let org = organization(&issue.state().clone(), &issue, organization_id).await?;
    let end = match body.end {
        Some(end) => end,
        None => vextrus_domain::finance::FiscalYear::full_year_end(body.start)
            .ok_or_else(|| ApiError::invalid_param("start", "is too far in the future"))?,
    };
    let command = LedgerCommand::OpenFiscalYear {
        start: body.start,
        end,
        short: body.short.unwrap_or(false),
        fiscal_year_start: org.fiscal_year_start().unwrap_or_default(),
    };
    let outcome = issue.run::<Ledger>(organization_id, command).await?;
    Ok(Accepted::changed(outcome, organization_id, organization_id))
}

/// Closes a period, named by its first day (role `finance-manager` or `admin`): nothing posts
/// into it until it is reopened. A posting that races the close either commits first or is
/// refused.
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/periods/{period}/close", tag = "ledger",
    params(("organization_id" = Uuid, Path), ("period" = NaiveDate, Path, description = "The period's first day, e.g. 2025-07-01"), crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Closed (or already closed)", body = CommandAccepted), LedgerCommandErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-ledger"))),
)]
pub async fn close_period(
    cmd: Command,
    PathIds((organization_id, period)): PathIds<(OrganizationId, NaiveDate)>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageLedger, "closing a period")?;
    let command = LedgerCommand::ClosePeriod { period };
    let outcome = run_ledger(cmd.named("close-period"), organization_id, command).await?;
    Ok(Accepted::changed(outcome, organization_id, organization_id))
}

/// Reopens a closed period, unless its fiscal year or a later one has been closed to retained
/// earnings (role `finance-manager` or `admin`).
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/periods/{period}/reopen", tag = "ledger",
    params(("organization_id" = Uuid, Path), ("period" = NaiveDate, Path, description = "The period's first day, e.g. 2025-07-01"), crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Reopened (or not closed)", body = CommandAccepted), LedgerCommandErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-ledger"))),
)]
pub async fn reopen_period(
    cmd: Command,
    PathIds((organization_id, period)): PathIds<(OrganizationId, NaiveDate)>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageLedger, "reopening a period")?;
    let command = LedgerCommand::ReopenPeriod { period };
    let outcome = run_ledger(cmd.named("reopen-period"), organization_id, command).await?;
    Ok(Accepted::changed(outcome, organization_id, organization_id))
}

/// Sets or removes the lock date: nothing posts on or before it (role `finance-manager` or
/// `admin`).
#[utoipa::path(
    put, path = "/v1/organizations/{organization_id}/ledger/lock-date", tag = "ledger",
    request_body = SetLockDate,
    params(("organization_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Set (or already so)", body = CommandAccepted), LedgerCommandErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-ledger"))),
)]
pub async fn set_lock_date(
    cmd: Command,
    PathIds(organization_id): PathIds<OrganizationId>,
    JsonBody(body): JsonBody<SetLockDate>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageLedger, "setting the lock date")?;
    let command = LedgerCommand::SetLockDate {
        lock_date: body.lock_date,
    };
    let outcome = run_ledger(cmd.named("set-lock-date"), organization_id, command).await?;
    Ok(Accepted::changed(outcome, organization_id, organization_id))
}

/// Year-end closing (role `finance-manager` or `admin`): once every period of the year is closed
/// and the previous year is closed, posts the closing entry (dated the year's last day) that
/// moves each profit-and-loss balance (per project and site) to retained earnings. The balances
/// are read from the log, not from a read model.
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/fiscal-years/{start}/close", tag = "ledger",
    request_body = CloseFiscalYear,
    params(("organization_id" = Uuid, Path), ("start" = NaiveDate, Path, description = "The year's first day"), crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Closed (or already closed)", body = CommandAccepted), LedgerCommandErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-ledger"))),
)]
pub async fn close_fiscal_year(
    cmd: Command,
    PathIds((organization_id, start)): PathIds<(OrganizationId, NaiveDate)>,
    JsonBody(body): JsonBody<CloseFiscalYear>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageLedger, "closing a fiscal year")?;
    let issue = cmd.named("close-fiscal-year");
    let state = issue.state().clone();
    organization(&state, &issue, organization_id).await?;
    let (ledger, version) = state
        .postings()
        .ledgers
        .refresh(state.store(), issue.tenant(), &organization_id.to_string())
        .await?;
    let end = ledger
        .years()
        .iter()
        .find(|year| year.start == start)
        .map(|year| year.end)
        .ok_or_else(|| ApiError::NotFound(format!("no fiscal year starts on {start}")))?;
    let retained = match body.retained_earnings_account_id {
        Some(id) => AccountId::from_uuid(id),
        None => {
            let candidates: Vec<AccountId> = ledger
                .accounts()
                .filter(|(_, a)| a.account_type == AccountType::RetainedEarnings && !a.is_group)
                .map(|(id, _)| id)
                .collect();
            match candidates.as_slice() {
                [only] => *only,
                _ => {
                    return Err(ApiError::RuleViolated {
                        rule: "retained-earnings-account-required",
                        detail: "name the retained-earnings account: the chart has no single \
                                 ledger account of type retained_earnings"
                            .to_owned(),
                    });
                }
            }
        }
    };
    let profit_and_loss: Vec<AccountId> = ledger
        .accounts()
        .filter(|(_, a)| a.root_type.is_profit_and_loss())
        .map(|(id, _)| id)
        .collect();
    let balances = state
        .store()
        .journal_totals(
            issue.tenant(),
            organization_id,
            start,
            end,
            &profit_and_loss,
        )
        .await
        .map_err(ApiError::database)?;
    let closing_entry_id = EntryId::from_uuid(issue.new_id());
    let command = LedgerCommand::CloseFiscalYear {
        start,
        retained_earnings_account_id: retained,
        closing_entry_id,
        balances,
    };
    // At the version the balances were read at: every period was closed then, so no posting
    // could have landed in the year since (the command refuses otherwise).
    let outcome = issue
        .at_version(version)
        .run::<Ledger>(organization_id, command)
        .await?;
    Ok(Accepted::changed(outcome, organization_id, organization_id))
}

/// The request's lines, splits expanded, as domain lines (every bad field named at once).
fn entry_lines(
    lines: Vec<EntryLineBody>,
    splits: Vec<SplitBody>,
) -> Result<Vec<EntryLine>, ApiError> {
    let mut fields = Fields::default();
    let party = |party: Option<PartyRef>| {
        party.map(|party| LineParty {
            kind: party.kind.into(),
            id: party.id,
        })
    };
    let mut result = Vec::new();
    for (index, line) in lines.into_iter().enumerate() {
        let amount = |fields: &mut Fields, side: &str, value: Option<String>| {
            fields.take(
                &format!("lines[{index}].{side}"),
                value.as_deref().map_or(Ok(Money::ZERO), Money::parse),
            )
        };
        let debit = amount(&mut fields, "debit", line.debit);
        let credit = amount(&mut fields, "credit", line.credit);
        if let (Some(debit), Some(credit)) = (debit, credit) {
            result.push(EntryLine {
                account_id: AccountId::from_uuid(line.account_id),
                debit,
                credit,
                party: party(line.party),
                project_id: line.project_id.map(ProjectId::from_uuid),
                site_id: line.site_id.map(SiteId::from_uuid),
                memo: line.memo,
            });
        }
    }
    for (index, split) in splits.into_iter().enumerate() {
        let Some(amount) = fields.take(
            &format!("splits[{index}].amount"),
            Money::parse(&split.amount),
        ) else {
            continue;
        };
        let whole = |weight: f64| weight.fract() == 0.0 && (1.0..=1_000_000.0).contains(&weight);
        if split.parts.iter().any(|part| !whole(part.weight)) {
            fields.take::<(), _>(
                &format!("splits[{index}].parts"),
                Err("every weight is a whole number between 1 and 1000000"),
            );
            continue;
        }
        // Whole numbers up to a million: exact in an f64 and in an i64.
        #[allow(clippy::cast_possible_truncation)]
        let weights: Vec<i64> = split.parts.iter().map(|part| part.weight as i64).collect();
        let Some(shares) = amount.split(&weights) else {
            fields.take::<(), _>(
                &format!("splits[{index}].parts"),
                Err("a split has at least one part"),
            );
            continue;
        };
        for (part, share) in split.parts.into_iter().zip(shares) {
            let (debit, credit) = match split.side {
                SideView::Debit => (share, Money::ZERO),
                SideView::Credit => (Money::ZERO, share),
            };
            result.push(EntryLine {
                account_id: AccountId::from_uuid(part.account_id),
                debit,
                credit,
                party: party(part.party),
                project_id: part.project_id.map(ProjectId::from_uuid),
                site_id: part.site_id.map(SiteId::from_uuid),
                memo: part.memo,
            });
        }
    }
    fields.finish(|| Some(result))
}

/// Runs a posting or reversal on `entry`'s stream through the store's one posting path
/// ([`vextrus_commands::EventStore::execute_journal`]).
async fn run_journal(
    issue: &Issue,
    organization_id: OrganizationId,
    entry: EntryId,
    command: JournalCommand,
) -> Result<CommandOutcome, ApiError> {
    let state = issue.state();
    let started = std::time::Instant::now();
    let result = state
        .store()
        .execute_journal(
            state.postings(),
            issue.tenant(),
            organization_id,
            entry,
            command,
            issue.metadata(),
            issue.expected(),
        )
        .await;
    issue.record::<vextrus_domain::finance::JournalEntry, _>(&result, started);
    Ok(result?)
}

impl PostEntry {
    fn into_entry(
        self,
        entry_id: EntryId,
        organization_id: OrganizationId,
    ) -> Result<NewEntry, ApiError> {
        let lines = entry_lines(self.lines, self.splits.unwrap_or_default())?;
        Ok(NewEntry {
            entry_id,
            organization_id,
            kind: self.kind.map_or(EntryKind::Regular, Into::into),
            date: self.date,
            narration: self.narration,
            reference: self.reference,
            document_number: self.document_number,
            lines,
            round_off: self.round_off.unwrap_or(false),
        })
    }
}

/// Posts a journal entry (role `accountant`, `finance-manager` or `admin`). Lines are numbered
/// in order: `lines` first, then each split's parts, then the round-off line.
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/journal-entries", tag = "journal",
    request_body = PostEntry,
    params(("organization_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader),
    responses(Created, FinanceErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("post-entries"))),
)]
pub async fn post_entry(
    cmd: Command,
    PathIds(organization_id): PathIds<OrganizationId>,
    JsonBody(body): JsonBody<PostEntry>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::PostEntries, "posting a journal entry")?;
    let issue = cmd.named("post-journal-entry").on_new_stream();
    let entry_id = EntryId::from_uuid(issue.new_id());
    let entry = body.into_entry(entry_id, organization_id)?;
    organization(issue.state(), &issue, organization_id).await?;
    let outcome = run_journal(
        &issue,
        organization_id,
        entry_id,
        JournalCommand::Post(entry),
    )
    .await?;
    let at = location(__path_get_entry, &[organization_id.into(), entry_id.into()]);
    Ok(Accepted::created(outcome, entry_id, organization_id, at))
}

/// Reverses a posted entry (role `accountant`, `finance-manager` or `admin`): a new entry, dated
/// in an open period, with every line's sides swapped, linked both ways; at most once. The
/// answer's `id` is the reversal's.
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/journal-entries/{entry_id}/reverse", tag = "journal",
    request_body = ReverseEntry,
    params(("organization_id" = Uuid, Path), ("entry_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader),
    responses(Created, FinanceErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("post-entries"))),
)]
pub async fn reverse_entry(
    cmd: Command,
    PathIds((organization_id, entry_id)): PathIds<(OrganizationId, EntryId)>,
    JsonBody(body): JsonBody<ReverseEntry>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::PostEntries, "reversing a journal entry")?;
    let issue = cmd.named("reverse-journal-entry");
    let reversal_entry_id = EntryId::from_uuid(issue.new_id());
    organization(issue.state(), &issue, organization_id).await?;
    let command = JournalCommand::Reverse {
        reversal_entry_id,
        date: body.date,
        narration: body.narration,
    };
    let outcome = run_journal(&issue, organization_id, entry_id, command).await?;
    let at = location(
        __path_get_entry,
        &[organization_id.into(), reversal_entry_id.into()],
    );
    Ok(Accepted::created(
        outcome,
        reversal_entry_id,
        organization_id,
        at,
    ))
}
