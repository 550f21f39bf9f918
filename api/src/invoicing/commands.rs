//! Command routes of invoicing: parties and documents (role `accountant`, `finance-manager` or
//! `admin`), the tax book and VAT returns (`finance-manager` or `admin`).
//!
//! Parties and the tax book are streams of their own, run with the command kit. Documents decide
//! on several streams (the organization's ledger, hierarchy and tax book, the party, the number
//! series), held in memory ([`AppState::postings`]) and checked at append (design.md D12).

use std::sync::Arc;

use chrono::{Duration, NaiveDate, Utc};
use uuid::Uuid;
use vextrus_commands::CommandOutcome;
use vextrus_domain::finance::{
    AccountType, Allocation, BudgetCommand, BudgetLine, Budgets, Deduction, DocumentAccounts,
    ExchangeRate, Invoice, InvoiceCommand, InvoiceKind, InvoiceLine, Ledger, MAX_TERMS_DAYS, Money,
    NewInvoice, NewPayment, Party, PartyCommand, PartyDetails, PartyKind, Payment, PaymentCommand,
    PaymentDirection, Pricing, Quantity, Rate, TaxBook, TaxCommand, TdsDefinition, TdsTier,
    VatCodeDefinition, VatRate, standard_tax_rules,
};
use vextrus_domain::ids::{
    AccountId, BudgetId, EntryId, InvoiceId, OrganizationId, PartyId, PaymentId, ProjectId, SiteId,
};
use vextrus_domain::values::{Bin, Code, CurrencyCode, Name, Tin};

use super::InvoicingErrors;
use super::queries::{
    __path_budget_report, __path_get_document, __path_get_party, __path_get_payment,
};
use super::views::{
    AdoptStandardTaxRules, AllocateAdvance, CancelDocument, DocumentAccountsBody, DraftDocument,
    DraftNote, OpenVatAmendment, RecordPayment, RecordVdsCertificate, RegisterParty, ReviseBudget,
    SetBudget, SetTdsTiers, SetVatRate, SetWithholdingEntity, UpdateParty,
};
#[allow(unused_imports)] // named by the `#[utoipa::path]` attributes
use super::views::{MonthPath, TdsSectionPath, VatCodePath};
use crate::auth::Permission;
use crate::command::{Accepted, Command, CommandAccepted, Created, Fields, Issue, location};
use crate::error::ApiError;
use crate::extract::{JsonBody, PathIds};
use crate::finance::commands::organization;
use crate::state::AppState;

/// The organization's ledger as documents see it.
async fn ledger(issue: &Issue, organization_id: OrganizationId) -> Result<Arc<Ledger>, ApiError> {
    let state = issue.state();
    let (ledger, _) = state
        .postings()
        .ledgers
        .refresh(state.store(), issue.tenant(), &organization_id.to_string())
        .await?;
    Ok(ledger)
}

/// The party, as the write side holds it; 404 unless it is one of the organization's.
async fn party(
    state: &AppState,
    issue: &Issue,
    organization_id: OrganizationId,
    party_id: PartyId,
) -> Result<(Arc<Party>, vextrus_commands::Version), ApiError> {
    let (party, version) = state
        .postings()
        .parties
        .refresh(state.store(), issue.tenant(), &party_id.to_string())
        .await?;
    if party.organization_id() == Some(organization_id) {
        Ok((party, version))
    } else {
        Err(ApiError::NotFound(format!("party {party_id} not found")))
    }
}

/// Refuses an account a party's documents cannot post their balance to.
fn check_party_account(
    ledger: &Ledger,
    kind: PartyKind,
    account_id: Option<AccountId>,
) -> Result<(), ApiError> {
    let Some(account_id) = account_id else {
        return Ok(());
    };
    let account = ledger
        .account(account_id)
        .ok_or_else(|| ApiError::NotFound(format!("account_id: account {account_id} not found")))?;
    let expected = match kind {
        PartyKind::Customer => AccountType::Receivable,
        PartyKind::Supplier => AccountType::Payable,
    };
    if account.is_group || account.account_type != expected {
        return Err(ApiError::RuleViolated {
            rule: "party-account-type",
            detail: format!(
                "account_id: a {} posts to a {} ledger account",
                kind.as_str(),
                expected.as_str()
            ),
        });
    }
    Ok(())
}

/// Payment terms in days, sent as a JSON number: whole, 0 to [`MAX_TERMS_DAYS`].
fn terms_days(days: f64) -> Result<u16, String> {
    if days.fract() == 0.0 && (0.0..=f64::from(MAX_TERMS_DAYS)).contains(&days) {
        // Whole and in range, so the cast is exact.
        Ok(days as u16)
    } else {
        Err(format!(
            "must be a whole number of days from 0 to {MAX_TERMS_DAYS}"
        ))
    }
}

fn parse_details(
    fields: &mut Fields,
    name: &str,
    bin: Option<&str>,
    tin: Option<&str>,
) -> (Option<Name>, Option<Option<Bin>>, Option<Option<Tin>>) {
    (
        fields.take("name", Name::parse(name)),
        fields.take("bin", bin.map(Bin::parse).transpose()),
        fields.take("tin", tin.map(Tin::parse).transpose()),
    )
}

/// Registers a customer or supplier of the organization (role `accountant`, `finance-manager` or
/// `admin`).
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/parties", tag = "parties",
    request_body = RegisterParty,
    params(("organization_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader),
    responses(Created, InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("post-entries"))),
)]
pub async fn register_party(
    cmd: Command,
    PathIds(organization_id): PathIds<OrganizationId>,
    JsonBody(body): JsonBody<RegisterParty>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::PostEntries, "registering a party")?;
    let issue = cmd.named("register-party").on_new_stream();
    organization(issue.state(), &issue, organization_id).await?;
    let mut fields = Fields::default();
    let (name, bin, tin) = parse_details(
        &mut fields,
        &body.name,
        body.bin.as_deref(),
        body.tin.as_deref(),
    );
    let terms = fields.take("terms_days", body.terms_days.map_or(Ok(30), terms_days));
    let details = fields.finish(|| {
        Some(PartyDetails {
            name: name?,
            bin: bin?,
            tin: tin?,
            address: body.address.clone(),
            withholding_entity: body.withholding_entity.unwrap_or(false),
            terms_days: terms?,
            account_id: body.account_id.map(AccountId::from_uuid),
        })
    })?;
    let kind = PartyKind::from(body.kind);
    check_party_account(
        &*ledger(&issue, organization_id).await?,
        kind,
        details.account_id,
    )?;
    let party_id = PartyId::from_uuid(issue.new_id());
    let command = PartyCommand::Register {
        party_id,
        organization_id,
        kind,
        details,
    };
    let outcome = issue.run::<Party>(party_id, command).await?;
    let at = location(__path_get_party, &[organization_id.into(), party_id.into()]);
    Ok(Accepted::created(outcome, party_id, organization_id, at))
}

/// Changes a party's details; omitted fields stay, `null` clears an optional one. Documents
/// already submitted keep what they printed.
#[utoipa::path(
    patch, path = "/v1/organizations/{organization_id}/parties/{party_id}", tag = "parties",
    request_body = UpdateParty,
    params(("organization_id" = Uuid, Path), ("party_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Changed (or already so)", body = CommandAccepted), InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("post-entries"))),
)]
pub async fn update_party(
    cmd: Command,
    PathIds((organization_id, party_id)): PathIds<(OrganizationId, PartyId)>,
    JsonBody(body): JsonBody<UpdateParty>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::PostEntries, "changing a party")?;
    let issue = cmd.named("update-party");
    let (current, version) =
        party(&issue.state().clone(), &issue, organization_id, party_id).await?;
    let (Some(kind), Some(details)) = (current.kind(), current.details()) else {
        return Err(ApiError::NotFound(format!("party {party_id} not found")));
    };
    let mut fields = Fields::default();
    let name = body
        .name
        .as_deref()
        .map(|name| fields.take("name", Name::parse(name)));
    let bin = body
        .bin
        .as_ref()
        .map(|bin| fields.take("bin", bin.as_deref().map(Bin::parse).transpose()));
    let tin = body
        .tin
        .as_ref()
        .map(|tin| fields.take("tin", tin.as_deref().map(Tin::parse).transpose()));
    let terms = body
        .terms_days
        .map(|days| fields.take("terms_days", terms_days(days)));
    let changed = fields.finish(|| {
        Some(PartyDetails {
            name: name.map_or(Some(details.name.clone()), |name| name)?,
            bin: bin.map_or(Some(details.bin.clone()), |bin| bin)?,
            tin: tin.map_or(Some(details.tin.clone()), |tin| tin)?,
            address: body.address.clone().unwrap_or(details.address.clone()),
            withholding_entity: body
                .withholding_entity
                .unwrap_or(details.withholding_entity),
            terms_days: terms.map_or(Some(details.terms_days), |terms| terms)?,
            account_id: body
                .account_id
                .map_or(details.account_id, |id| id.map(AccountId::from_uuid)),
        })
    })?;
    check_party_account(
        &*ledger(&issue, organization_id).await?,
        kind,
        changed.account_id,
    )?;
    // Decided on the details read above: a change in between is a conflict, never overwritten.
    let outcome = issue
        .at_version(version)
        .run::<Party>(party_id, PartyCommand::Update(changed))
        .await?;
    Ok(Accepted::changed(outcome, party_id, organization_id))
}

/// Archives a party: no new documents for it; its documents stay.
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/parties/{party_id}/archive", tag = "parties",
    params(("organization_id" = Uuid, Path), ("party_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Archived (or already so)", body = CommandAccepted), InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("post-entries"))),
)]
pub async fn archive_party(
    cmd: Command,
    PathIds((organization_id, party_id)): PathIds<(OrganizationId, PartyId)>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::PostEntries, "archiving a party")?;
    let issue = cmd.named("archive-party");
    party(&issue.state().clone(), &issue, organization_id, party_id).await?;
    let outcome = issue.run::<Party>(party_id, PartyCommand::Archive).await?;
    Ok(Accepted::changed(outcome, party_id, organization_id))
}

/// Runs a command on the organization's tax book.
async fn run_tax(
    issue: Issue,
    organization_id: OrganizationId,
    command: TaxCommand,
) -> Result<Accepted, ApiError> {
    organization(&issue.state().clone(), &issue, organization_id).await?;
    let outcome = issue.run::<TaxBook>(organization_id, command).await?;
    Ok(Accepted::changed(outcome, organization_id, organization_id))
}

/// Sets up the organization's tax book with the Bangladesh rules this build knows (VAT codes
/// with their rates and VDS shares, TDS sections with their tiers; check them against each
/// Finance Act) and the standard chart's accounts for documents (role `finance-manager` or
/// `admin`). The standard chart must be installed.
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/tax-book/standard", tag = "tax",
    request_body = AdoptStandardTaxRules,
    params(("organization_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Set up", body = CommandAccepted), InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-ledger"))),
)]
pub async fn adopt_standard_tax_rules(
    cmd: Command,
    PathIds(organization_id): PathIds<OrganizationId>,
    JsonBody(body): JsonBody<AdoptStandardTaxRules>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageLedger, "setting up the tax book")?;
    let issue = cmd.named("adopt-standard-tax-rules");
    organization(&issue.state().clone(), &issue, organization_id).await?;
    let accounts = DocumentAccounts::from_standard_chart(&*ledger(&issue, organization_id).await?)
        .ok_or_else(|| ApiError::RuleViolated {
            rule: "standard-chart-required",
            detail: "the tax book's accounts come from the standard chart; install it first \
                     (POST …/accounts/standard-chart) or set the accounts with PUT …/tax-book/accounts \
                     after adopting"
                .to_owned(),
        })?;
    let (vat_codes, tds_sections) = standard_tax_rules();
    let command = TaxCommand::Adopt {
        organization_id,
        withholding_entity: body.withholding_entity.unwrap_or(true),
        vat_codes,
        tds_sections,
        accounts,
    };
    run_tax(issue, organization_id, command).await
}

/// Sets a VAT code's rate from a date on, or adds a code (role `finance-manager` or `admin`).
/// Documents dated before keep the rate they were priced at.
#[utoipa::path(
    put, path = "/v1/organizations/{organization_id}/tax-book/vat-codes/{code}", tag = "tax",
    request_body = SetVatRate,
    params(VatCodePath, crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Set (or already so)", body = CommandAccepted), InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-ledger"))),
)]
pub async fn set_vat_rate(
    cmd: Command,
    PathIds((organization_id, code)): PathIds<(OrganizationId, String)>,
    JsonBody(body): JsonBody<SetVatRate>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageLedger, "setting a VAT rate")?;
    let mut fields = Fields::default();
    let code = fields.take("code", Code::parse(&code));
    let rate = fields.take("rate", Rate::parse(&body.rate));
    let vds_share = fields.take(
        "vds_share",
        body.vds_share
            .as_deref()
            .map_or(Ok(Rate::ZERO), Rate::parse),
    );
    let command = fields.finish(|| {
        Some(TaxCommand::SetVatRate(VatCodeDefinition {
            code: code?,
            description: body.description.clone(),
            kind: body.kind.into(),
            effective_from: body.effective_from,
            rate: VatRate {
                rate: rate?,
                vds_share: vds_share?,
            },
        }))
    })?;
    run_tax(cmd.named("set-vat-rate"), organization_id, command).await
}

/// Sets a TDS section's tiers from a date on, or adds a section (role `finance-manager` or
/// `admin`).
#[utoipa::path(
    put, path = "/v1/organizations/{organization_id}/tax-book/tds-sections/{section}", tag = "tax",
    request_body = SetTdsTiers,
    params(TdsSectionPath, crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Set", body = CommandAccepted), InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-ledger"))),
)]
pub async fn set_tds_tiers(
    cmd: Command,
    PathIds((organization_id, section)): PathIds<(OrganizationId, String)>,
    JsonBody(body): JsonBody<SetTdsTiers>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageLedger, "setting TDS tiers")?;
    let mut fields = Fields::default();
    let section = fields.take("section", Code::parse(&section));
    let tiers: Vec<Option<TdsTier>> = body
        .tiers
        .iter()
        .enumerate()
        .map(|(index, tier)| {
            let up_to = fields.take(
                &format!("tiers[{index}].up_to"),
                tier.up_to.as_deref().map(Money::parse).transpose(),
            );
            let rate = fields.take(&format!("tiers[{index}].rate"), Rate::parse(&tier.rate));
            Some(TdsTier {
                up_to: up_to?,
                rate: rate?,
            })
        })
        .collect();
    let command = fields.finish(|| {
        Some(TaxCommand::SetTdsTiers(TdsDefinition {
            section: section?,
            description: body.description.clone(),
            effective_from: body.effective_from,
            tiers: tiers.into_iter().collect::<Option<Vec<_>>>()?,
        }))
    })?;
    run_tax(cmd.named("set-tds-tiers"), organization_id, command).await
}

/// Sets the accounts documents post to (role `finance-manager` or `admin`): ledger accounts of
/// the organization.
#[utoipa::path(
    put, path = "/v1/organizations/{organization_id}/tax-book/accounts", tag = "tax",
    request_body = DocumentAccountsBody,
    params(("organization_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Set (or already so)", body = CommandAccepted), InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-ledger"))),
)]
pub async fn set_document_accounts(
    cmd: Command,
    PathIds(organization_id): PathIds<OrganizationId>,
    JsonBody(body): JsonBody<DocumentAccountsBody>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageLedger, "setting the documents' accounts")?;
    let issue = cmd.named("set-document-accounts");
    let accounts = DocumentAccounts::from(body);
    let ledger = ledger(&issue, organization_id).await?;
    for (name, account_id) in accounts.all() {
        match ledger.account(account_id) {
            None => {
                return Err(ApiError::NotFound(format!(
                    "{name}: account {account_id} not found"
                )));
            }
            Some(account) if account.is_group => {
                return Err(ApiError::RuleViolated {
                    rule: "group-account",
                    detail: format!("{name}: account {account_id} is a group"),
                });
            }
            Some(_) => {}
        }
    }
    run_tax(issue, organization_id, TaxCommand::SetAccounts(accounts)).await
}

impl From<DocumentAccountsBody> for DocumentAccounts {
    fn from(body: DocumentAccountsBody) -> Self {
        let id = AccountId::from_uuid;
        Self {
            receivable: id(body.receivable),
            payable: id(body.payable),
            output_vat: id(body.output_vat),
            input_vat: id(body.input_vat),
            vds_receivable: id(body.vds_receivable),
            vds_payable: id(body.vds_payable),
            tds_receivable: id(body.tds_receivable),
            tds_payable: id(body.tds_payable),
            retention_receivable: id(body.retention_receivable),
            retention_payable: id(body.retention_payable),
            customer_advances: id(body.customer_advances),
            supplier_advances: id(body.supplier_advances),
            exchange_gain: id(body.exchange_gain),
            exchange_loss: id(body.exchange_loss),
            bank_charges: id(body.bank_charges),
        }
    }
}

/// Whether the organization deducts VAT and income tax at source when it pays suppliers (role
/// `finance-manager` or `admin`).
#[utoipa::path(
    put, path = "/v1/organizations/{organization_id}/tax-book/withholding-entity", tag = "tax",
    request_body = SetWithholdingEntity,
    params(("organization_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Set (or already so)", body = CommandAccepted), InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-ledger"))),
)]
pub async fn set_withholding_entity(
    cmd: Command,
    PathIds(organization_id): PathIds<OrganizationId>,
    JsonBody(body): JsonBody<SetWithholdingEntity>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageLedger, "changing the withholding status")?;
    let command = TaxCommand::SetWithholdingEntity(body.withholding_entity);
    run_tax(
        cmd.named("set-withholding-entity"),
        organization_id,
        command,
    )
    .await
}

/// A VAT month from the path, `YYYY-MM`: its first day. 404 for anything else (it names no month).
pub(crate) fn month(text: &str) -> Result<NaiveDate, ApiError> {
    let parsed = text
        .split_once('-')
        .filter(|(year, month)| year.len() == 4 && month.len() == 2)
        .and_then(|(year, month)| {
            NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)
        });
    parsed.ok_or_else(|| ApiError::NotFound(format!("{text:?} is not a month (YYYY-MM)")))
}

/// Submits the month's VAT return (Mushak-9.1): from now on no VAT-affecting document may be
/// dated in the month (role `finance-manager` or `admin`). Submitting an amended month locks it
/// again.
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/vat-returns/{month}/submit", tag = "tax",
    params(MonthPath, crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Submitted", body = CommandAccepted), InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-ledger"))),
)]
pub async fn submit_vat_return(
    cmd: Command,
    PathIds((organization_id, month_text)): PathIds<(OrganizationId, String)>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageLedger, "submitting a VAT return")?;
    let month = month(&month_text)?;
    let command = TaxCommand::SubmitVatReturn { month };
    run_tax(cmd.named("submit-vat-return"), organization_id, command).await
}

/// Opens a submitted month for an amended return: documents may be dated in it again until the
/// amended return is submitted (role `finance-manager` or `admin`).
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/vat-returns/{month}/amendment", tag = "tax",
    request_body = OpenVatAmendment,
    params(MonthPath, crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Open for amendment (or already so)", body = CommandAccepted), InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-ledger"))),
)]
pub async fn open_vat_amendment(
    cmd: Command,
    PathIds((organization_id, month_text)): PathIds<(OrganizationId, String)>,
    JsonBody(body): JsonBody<OpenVatAmendment>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageLedger, "amending a VAT return")?;
    let month = month(&month_text)?;
    let command = TaxCommand::OpenVatAmendment {
        month,
        reason: body.reason,
    };
    run_tax(cmd.named("open-vat-amendment"), organization_id, command).await
}

/// Runs a document command through the store's document path, counted in the metrics.
async fn run_document(
    issue: &Issue,
    organization_id: OrganizationId,
    invoice: InvoiceId,
    command: InvoiceCommand,
) -> Result<CommandOutcome, ApiError> {
    let state = issue.state();
    let started = std::time::Instant::now();
    let result = state
        .store()
        .execute_invoice(
            state.postings(),
            issue.tenant(),
            organization_id,
            invoice,
            command,
            issue.metadata(),
            issue.expected(),
        )
        .await;
    issue.record::<Invoice, _>(&result, started);
    Ok(result?)
}

/// Runs a payment command through the store's payment path, counted in the metrics.
async fn run_payment(
    issue: &Issue,
    organization_id: OrganizationId,
    payment: PaymentId,
    command: PaymentCommand,
) -> Result<CommandOutcome, ApiError> {
    let state = issue.state();
    let started = std::time::Instant::now();
    let result = state
        .store()
        .execute_payment(
            state.postings(),
            issue.tenant(),
            organization_id,
            payment,
            command,
            issue.metadata(),
            issue.expected(),
        )
        .await;
    issue.record::<Payment, _>(&result, started);
    Ok(result?)
}

impl DraftDocument {
    fn into_new(
        self,
        invoice_id: InvoiceId,
        organization_id: OrganizationId,
        kind: InvoiceKind,
        terms_days: u16,
    ) -> Result<NewInvoice, ApiError> {
        let mut fields = Fields::default();
        let lines: Vec<Option<InvoiceLine>> = self
            .lines
            .into_iter()
            .enumerate()
            .map(|(index, line)| {
                let at = |name: &str| format!("lines[{index}].{name}");
                let quantity = fields.take(
                    &at("quantity"),
                    line.quantity
                        .as_deref()
                        .map_or(Ok(Quantity::ONE), Quantity::parse),
                );
                let unit_price = fields.take(&at("unit_price"), Money::parse(&line.unit_price));
                let vat_code = fields.take(&at("vat_code"), Code::parse(&line.vat_code));
                Some(InvoiceLine {
                    description: line.description,
                    quantity: quantity?,
                    unit_price: unit_price?,
                    vat_code: vat_code?,
                    account_id: AccountId::from_uuid(line.account_id),
                    project_id: line.project_id.map(ProjectId::from_uuid),
                    site_id: line.site_id.map(SiteId::from_uuid),
                })
            })
            .collect();
        let tds_section = fields.take(
            "tds_section",
            self.tds_section.as_deref().map(Code::parse).transpose(),
        );
        let retention = fields.take(
            "retention",
            self.retention.as_deref().map(Rate::parse).transpose(),
        );
        let currency = fields.take(
            "currency",
            self.currency
                .as_deref()
                .map(CurrencyCode::parse)
                .transpose(),
        );
        let exchange_rate = fields.take(
            "exchange_rate",
            self.exchange_rate
                .as_deref()
                .map(ExchangeRate::parse)
                .transpose(),
        );
        let due_date = self.due_date.or_else(|| {
            self.date
                .checked_add_signed(Duration::days(i64::from(terms_days)))
        });
        let due_date = fields.take(
            "due_date",
            due_date.ok_or("the due date is beyond the calendar"),
        );
        fields.finish(|| {
            Some(NewInvoice {
                invoice_id,
                organization_id,
                kind,
                party_id: PartyId::from_uuid(self.party_id),
                date: self.date,
                due_date: due_date?,
                pricing: self.pricing.map_or(Pricing::VatExclusive, Into::into),
                reference: self.reference,
                narration: self.narration,
                lines: lines.into_iter().collect::<Option<Vec<_>>>()?,
                tds_section: tds_section?,
                retention: retention?,
                original: None,
                currency: currency?,
                exchange_rate: exchange_rate?,
            })
        })
    }
}

/// Drafts a document of `kind` (a note: of `original`).
async fn draft(
    cmd: Command,
    organization_id: OrganizationId,
    body: DraftDocument,
    kind: InvoiceKind,
    original: Option<InvoiceId>,
) -> Result<Accepted, ApiError> {
    cmd.require(
        Permission::PostEntries,
        &format!("drafting a {}", kind.label()),
    )?;
    let operation = format!("draft-{}", kind.as_str().replace('_', "-"));
    let issue = cmd.named(&operation).on_new_stream();
    organization(issue.state(), &issue, organization_id).await?;
    let party_id = PartyId::from_uuid(body.party_id);
    let (party, _) = party(&issue.state().clone(), &issue, organization_id, party_id).await?;
    let terms = party.details().map_or(30, |details| details.terms_days);
    let invoice_id = InvoiceId::from_uuid(issue.new_id());
    let mut new = body.into_new(invoice_id, organization_id, kind, terms)?;
    new.original = original;
    let outcome = run_document(
        &issue,
        organization_id,
        invoice_id,
        InvoiceCommand::Draft(new),
    )
    .await?;
    let at = location(
        __path_get_document,
        &[organization_id.into(), invoice_id.into()],
    );
    Ok(Accepted::created(outcome, invoice_id, organization_id, at))
}

/// Drafts a sales invoice to a customer (role `accountant`, `finance-manager` or `admin`).
/// Submit it to price, number and post it.
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/sales-invoices", tag = "invoices",
    request_body = DraftDocument,
    params(("organization_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader),
    responses(Created, InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("post-entries"))),
)]
pub async fn draft_sales_invoice(
    cmd: Command,
    PathIds(organization_id): PathIds<OrganizationId>,
    JsonBody(body): JsonBody<DraftDocument>,
) -> Result<Accepted, ApiError> {
    draft(cmd, organization_id, body, InvoiceKind::SalesInvoice, None).await
}

/// Drafts a supplier's or subcontractor's bill (role `accountant`, `finance-manager` or
/// `admin`). Submit it to price, withhold, number and post it.
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/purchase-bills", tag = "invoices",
    request_body = DraftDocument,
    params(("organization_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader),
    responses(Created, InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("post-entries"))),
)]
pub async fn draft_purchase_bill(
    cmd: Command,
    PathIds(organization_id): PathIds<OrganizationId>,
    JsonBody(body): JsonBody<DraftDocument>,
) -> Result<Accepted, ApiError> {
    draft(cmd, organization_id, body, InvoiceKind::PurchaseBill, None).await
}

/// Submits a draft (role `accountant`, `finance-manager` or `admin`): prices every line at the
/// VAT rate in force on its date, works out what is withheld, takes the next gapless number of
/// its series and fiscal year, and posts its journal entry, all in one transaction. Refused in
/// a submitted VAT month, a closed period, or when a ledger rule refuses the entry.
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/invoices/{invoice_id}/submit", tag = "invoices",
    params(("organization_id" = Uuid, Path), ("invoice_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Submitted", body = CommandAccepted), InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("post-entries"))),
)]
pub async fn submit_document(
    cmd: Command,
    PathIds((organization_id, invoice_id)): PathIds<(OrganizationId, InvoiceId)>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::PostEntries, "submitting a document")?;
    let issue = cmd.named("submit-document");
    organization(issue.state(), &issue, organization_id).await?;
    let command = InvoiceCommand::Submit {
        issued_at: Utc::now(),
        entry_id: EntryId::from_uuid(issue.new_id()),
    };
    let outcome = run_document(&issue, organization_id, invoice_id, command).await?;
    Ok(Accepted::changed(outcome, invoice_id, organization_id))
}

impl RecordPayment {
    fn into_new(
        self,
        payment_id: PaymentId,
        organization_id: OrganizationId,
        direction: PaymentDirection,
    ) -> Result<NewPayment, ApiError> {
        let mut fields = Fields::default();
        let amount = fields.take("amount", Money::parse(&self.amount));
        let currency = fields.take(
            "currency",
            self.currency
                .as_deref()
                .map(CurrencyCode::parse)
                .transpose(),
        );
        let exchange_rate = fields.take(
            "exchange_rate",
            self.exchange_rate
                .as_deref()
                .map(ExchangeRate::parse)
                .transpose(),
        );
        let retention_release = fields.take(
            "retention_release",
            self.retention_release
                .as_deref()
                .map(Money::parse)
                .transpose(),
        );
        let allocations: Vec<Option<Allocation>> = self
            .allocations
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(index, allocation)| {
                let amount = fields.take(
                    &format!("allocations[{index}].amount"),
                    Money::parse(&allocation.amount),
                );
                Some(Allocation {
                    invoice_id: InvoiceId::from_uuid(allocation.invoice_id),
                    amount: amount?,
                })
            })
            .collect();
        let deductions: Vec<Option<Deduction>> = self
            .deductions
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(index, deduction)| {
                let amount = fields.take(
                    &format!("deductions[{index}].amount"),
                    Money::parse(&deduction.amount),
                );
                Some(Deduction {
                    kind: deduction.kind.into(),
                    amount: amount?,
                })
            })
            .collect();
        fields.finish(|| {
            Some(NewPayment {
                payment_id,
                organization_id,
                direction,
                party_id: PartyId::from_uuid(self.party_id),
                date: self.date,
                account_id: AccountId::from_uuid(self.account_id),
                amount: amount?,
                reference: self.reference,
                narration: self.narration,
                allocations: allocations.into_iter().collect::<Option<Vec<_>>>()?,
                deductions: deductions.into_iter().collect::<Option<Vec<_>>>()?,
                retention_release: retention_release?,
                vds_certificate: self.vds_certificate,
                project_id: self.project_id.map(ProjectId::from_uuid),
                site_id: self.site_id.map(SiteId::from_uuid),
                currency: currency?,
                exchange_rate: exchange_rate?,
            })
        })
    }
}

/// Records a payment or receipt of `direction`.
async fn record_payment(
    cmd: Command,
    organization_id: OrganizationId,
    body: RecordPayment,
    direction: PaymentDirection,
) -> Result<Accepted, ApiError> {
    let (action, operation) = match direction {
        PaymentDirection::Receipt => ("recording a receipt", "record-receipt"),
        PaymentDirection::Payment => ("recording a payment", "record-payment"),
    };
    cmd.require(Permission::PostEntries, action)?;
    let issue = cmd.named(operation).on_new_stream();
    organization(issue.state(), &issue, organization_id).await?;
    let payment_id = PaymentId::from_uuid(issue.new_id());
    let new = body.into_new(payment_id, organization_id, direction)?;
    let command = PaymentCommand::Record {
        payment: Box::new(new),
        entry_id: EntryId::from_uuid(Uuid::new_v5(&payment_id.as_uuid(), b"entry")),
    };
    let outcome = run_payment(&issue, organization_id, payment_id, command).await?;
    let at = location(
        __path_get_payment,
        &[organization_id.into(), payment_id.into()],
    );
    Ok(Accepted::created(outcome, payment_id, organization_id, at))
}

/// Records a receipt from a customer (role `accountant`, `finance-manager` or `admin`): the
/// money in, what the customer withheld (VDS with its Mushak-6.6 certificate, TDS, retention)
/// and the bank's charges, allocated to the customer's submitted invoices (never above what each
/// has outstanding); the rest is held as the customer's advance. Posts its journal entry and
/// settles the invoices in one transaction.
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/receipts", tag = "payments",
    request_body = RecordPayment,
    params(("organization_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader),
    responses(Created, InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("post-entries"))),
)]
pub async fn record_receipt(
    cmd: Command,
    PathIds(organization_id): PathIds<OrganizationId>,
    JsonBody(body): JsonBody<RecordPayment>,
) -> Result<Accepted, ApiError> {
    record_payment(cmd, organization_id, body, PaymentDirection::Receipt).await
}

/// Records a payment to a supplier (role `accountant`, `finance-manager` or `admin`): the money
/// out and what the organization withholds now (VDS, TDS, retention), allocated to the
/// supplier's submitted bills; the rest is held as an advance to the supplier.
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/payments", tag = "payments",
    request_body = RecordPayment,
    params(("organization_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader),
    responses(Created, InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("post-entries"))),
)]
pub async fn record_supplier_payment(
    cmd: Command,
    PathIds(organization_id): PathIds<OrganizationId>,
    JsonBody(body): JsonBody<RecordPayment>,
) -> Result<Accepted, ApiError> {
    record_payment(cmd, organization_id, body, PaymentDirection::Payment).await
}

/// Runs a budget command, counted in the metrics.
async fn run_budgets(
    issue: Issue,
    organization_id: OrganizationId,
    command: BudgetCommand,
) -> Result<CommandOutcome, ApiError> {
    organization(&issue.state().clone(), &issue, organization_id).await?;
    let state = issue.state();
    let started = std::time::Instant::now();
    let result = state
        .store()
        .execute_budgets(
            state.postings(),
            issue.tenant(),
            organization_id,
            command,
            issue.metadata(),
            issue.expected(),
        )
        .await;
    issue.record::<Budgets, _>(&result, started);
    Ok(result?)
}

/// Sets a budget for an expense account in a project, or one of its sites, over a fiscal year
/// (role `finance-manager` or `admin`). A `stop` budget refuses the bill, entry or receipt that
/// would exceed it, checked where the posting is appended; a `warn` budget lets it post and
/// records a warning. Budgets of one account, project and year may not overlap.
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/budgets", tag = "budgets",
    request_body = SetBudget,
    params(("organization_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader),
    responses(Created, InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-ledger"))),
)]
pub async fn set_budget(
    cmd: Command,
    PathIds(organization_id): PathIds<OrganizationId>,
    JsonBody(body): JsonBody<SetBudget>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageLedger, "setting a budget")?;
    let issue = cmd.named("set-budget");
    let budget_id = BudgetId::from_uuid(issue.new_id());
    let mut fields = Fields::default();
    let amount = fields.take("amount", Money::parse(&body.amount));
    let line = fields.finish(|| {
        Some(BudgetLine {
            budget_id,
            organization_id,
            project_id: ProjectId::from_uuid(body.project_id),
            site_id: body.site_id.map(SiteId::from_uuid),
            account_id: AccountId::from_uuid(body.account_id),
            fiscal_year: body.fiscal_year,
            amount: amount?,
            action: body.action.into(),
        })
    })?;
    let outcome = run_budgets(issue, organization_id, BudgetCommand::Set(line)).await?;
    let at = location(__path_budget_report, &[organization_id.into()]);
    Ok(Accepted::created(outcome, budget_id, organization_id, at))
}

/// Changes a budget's amount or action (role `finance-manager` or `admin`).
#[utoipa::path(
    patch, path = "/v1/organizations/{organization_id}/budgets/{budget_id}", tag = "budgets",
    request_body = ReviseBudget,
    params(("organization_id" = Uuid, Path), ("budget_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Changed (or already so)", body = CommandAccepted), InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("manage-ledger"))),
)]
pub async fn revise_budget(
    cmd: Command,
    PathIds((organization_id, budget_id)): PathIds<(OrganizationId, BudgetId)>,
    JsonBody(body): JsonBody<ReviseBudget>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::ManageLedger, "changing a budget")?;
    let mut fields = Fields::default();
    let amount = fields.take("amount", Money::parse(&body.amount));
    let command = fields.finish(|| {
        Some(BudgetCommand::Revise {
            budget_id,
            amount: amount?,
            action: body.action.into(),
        })
    })?;
    let outcome = run_budgets(cmd.named("revise-budget"), organization_id, command).await?;
    Ok(Accepted::changed(outcome, budget_id, organization_id))
}

/// Drafts a credit (`credit`) or debit note of a submitted document, for its party.
async fn draft_note(
    cmd: Command,
    organization_id: OrganizationId,
    original: InvoiceId,
    body: DraftNote,
    credit: bool,
) -> Result<Accepted, ApiError> {
    // The role first: a caller who may not draft learns nothing of the document.
    cmd.require(Permission::PostEntries, "drafting a note")?;
    let state = cmd.state().clone();
    let (document, _) = state
        .postings()
        .invoices
        .refresh(state.store(), cmd.context().tenant, &original.to_string())
        .await?;
    let (kind, party_id) = document
        .draft()
        .filter(|draft| draft.organization_id == organization_id)
        .and_then(|draft| Some((draft.kind.note(credit)?, draft.party_id)))
        .ok_or_else(|| ApiError::NotFound(format!("document {original} not found, or a note")))?;
    let body = DraftDocument {
        party_id: party_id.as_uuid(),
        date: body.date,
        due_date: body.due_date,
        pricing: body.pricing,
        reference: body.reference,
        narration: body.narration,
        lines: body.lines,
        tds_section: None,
        retention: None,
        currency: None,
        exchange_rate: None,
    };
    draft(cmd, organization_id, body, kind, Some(original)).await
}

/// Drafts a credit note (Mushak-6.7) of a submitted sales invoice or bill (role `accountant`,
/// `finance-manager` or `admin`): it decreases the document, never by more than is left of it,
/// and posts the document's entry the other way round when submitted. A sales credit note whose
/// VAT is above Tk 5,000 counts as a decreasing adjustment only when the buyer's BIN and address
/// are known (`decreasing_adjustment_eligible`).
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/invoices/{invoice_id}/credit-notes", tag = "invoices",
    request_body = DraftNote,
    params(("organization_id" = Uuid, Path), ("invoice_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader),
    responses(Created, InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("post-entries"))),
)]
pub async fn draft_credit_note(
    cmd: Command,
    PathIds((organization_id, invoice_id)): PathIds<(OrganizationId, InvoiceId)>,
    JsonBody(body): JsonBody<DraftNote>,
) -> Result<Accepted, ApiError> {
    draft_note(cmd, organization_id, invoice_id, body, true).await
}

/// Drafts a debit note (Mushak-6.8) of a submitted sales invoice or bill (role `accountant`,
/// `finance-manager` or `admin`): it increases what the party owes or is owed.
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/invoices/{invoice_id}/debit-notes", tag = "invoices",
    request_body = DraftNote,
    params(("organization_id" = Uuid, Path), ("invoice_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader),
    responses(Created, InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("post-entries"))),
)]
pub async fn draft_debit_note(
    cmd: Command,
    PathIds((organization_id, invoice_id)): PathIds<(OrganizationId, InvoiceId)>,
    JsonBody(body): JsonBody<DraftNote>,
) -> Result<Accepted, ApiError> {
    draft_note(cmd, organization_id, invoice_id, body, false).await
}

/// Cancels a submitted sales invoice or bill that nothing was settled against and no note
/// changed (role `accountant`, `finance-manager` or `admin`): its entry is reversed on `date`,
/// and its lines leave the VAT book in that month. Both its own VAT month and the
/// cancellation's must be open; otherwise a credit note changes it.
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/invoices/{invoice_id}/cancel", tag = "invoices",
    request_body = CancelDocument,
    params(("organization_id" = Uuid, Path), ("invoice_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Cancelled", body = CommandAccepted), InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("post-entries"))),
)]
pub async fn cancel_document(
    cmd: Command,
    PathIds((organization_id, invoice_id)): PathIds<(OrganizationId, InvoiceId)>,
    JsonBody(body): JsonBody<CancelDocument>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::PostEntries, "cancelling a document")?;
    let issue = cmd.named("cancel-document");
    organization(issue.state(), &issue, organization_id).await?;
    let command = InvoiceCommand::Cancel {
        date: body.date,
        reason: body.reason,
        reversal_entry_id: EntryId::from_uuid(issue.new_id()),
    };
    let outcome = run_document(&issue, organization_id, invoice_id, command).await?;
    Ok(Accepted::changed(outcome, invoice_id, organization_id))
}

/// Allocates part of what a receipt or payment holds as an advance to the party's submitted
/// documents (role `accountant`, `finance-manager` or `admin`), never above what each has
/// outstanding nor above the advance left: Dr customer advances / Cr receivable (or Dr payable /
/// Cr supplier advances), and each document settled, in one transaction.
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/payments/{payment_id}/allocate", tag = "payments",
    request_body = AllocateAdvance,
    params(("organization_id" = Uuid, Path), ("payment_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Allocated", body = CommandAccepted), InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("post-entries"))),
)]
pub async fn allocate_advance(
    cmd: Command,
    PathIds((organization_id, payment_id)): PathIds<(OrganizationId, PaymentId)>,
    JsonBody(body): JsonBody<AllocateAdvance>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::PostEntries, "allocating an advance")?;
    let issue = cmd.named("allocate-advance");
    organization(issue.state(), &issue, organization_id).await?;
    let mut fields = Fields::default();
    let allocations: Vec<Option<Allocation>> = body
        .allocations
        .into_iter()
        .enumerate()
        .map(|(index, allocation)| {
            let amount = fields.take(
                &format!("allocations[{index}].amount"),
                Money::parse(&allocation.amount),
            );
            Some(Allocation {
                invoice_id: InvoiceId::from_uuid(allocation.invoice_id),
                amount: amount?,
            })
        })
        .collect();
    let allocations = fields.finish(|| allocations.into_iter().collect::<Option<Vec<_>>>())?;
    let command = PaymentCommand::AllocateAdvance {
        allocations,
        date: body.date,
        entry_id: EntryId::from_uuid(issue.new_id()),
        project_id: body.project_id.map(ProjectId::from_uuid),
        site_id: body.site_id.map(SiteId::from_uuid),
    };
    let outcome = run_payment(&issue, organization_id, payment_id, command).await?;
    Ok(Accepted::changed(outcome, payment_id, organization_id))
}

/// Records the Mushak-6.6 certificate the organization issued for the VAT a purchase bill
/// withheld at source (role `accountant`, `finance-manager` or `admin`), once: the same
/// certificate again changes nothing, another is refused (`certificate-recorded`).
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/invoices/{invoice_id}/vds-certificate", tag = "tax",
    request_body = RecordVdsCertificate,
    params(("organization_id" = Uuid, Path), ("invoice_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Recorded", body = CommandAccepted), InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("post-entries"))),
)]
pub async fn record_bill_vds_certificate(
    cmd: Command,
    PathIds((organization_id, invoice_id)): PathIds<(OrganizationId, InvoiceId)>,
    JsonBody(body): JsonBody<RecordVdsCertificate>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::PostEntries, "recording a VDS certificate")?;
    let issue = cmd.named("record-bill-vds-certificate");
    organization(issue.state(), &issue, organization_id).await?;
    let command = InvoiceCommand::RecordVdsCertificate {
        organization_id,
        certificate: body.into(),
    };
    let outcome = run_document(&issue, organization_id, invoice_id, command).await?;
    Ok(Accepted::changed(outcome, invoice_id, organization_id))
}

/// Records the Mushak-6.6 certificate for the VAT a receipt or payment deducted (received from
/// the customer, or issued to the supplier) after it was recorded (role `accountant`,
/// `finance-manager` or `admin`), once.
#[utoipa::path(
    post, path = "/v1/organizations/{organization_id}/payments/{payment_id}/vds-certificate", tag = "tax",
    request_body = RecordVdsCertificate,
    params(("organization_id" = Uuid, Path), ("payment_id" = Uuid, Path), crate::hierarchy::IdempotencyKeyHeader, crate::hierarchy::IfMatchHeader),
    responses((status = 200, description = "Recorded", body = CommandAccepted), InvoicingErrors),
    security(("bearer" = [])),
    extensions(("x-permission" = json!("post-entries"))),
)]
pub async fn record_payment_vds_certificate(
    cmd: Command,
    PathIds((organization_id, payment_id)): PathIds<(OrganizationId, PaymentId)>,
    JsonBody(body): JsonBody<RecordVdsCertificate>,
) -> Result<Accepted, ApiError> {
    cmd.require(Permission::PostEntries, "recording a VDS certificate")?;
    let issue = cmd.named("record-payment-vds-certificate");
    organization(issue.state(), &issue, organization_id).await?;
    let command = PaymentCommand::RecordVdsCertificate {
        organization_id,
        certificate: body.into(),
    };
    let outcome = run_payment(&issue, organization_id, payment_id, command).await?;
    Ok(Accepted::changed(outcome, payment_id, organization_id))
}
