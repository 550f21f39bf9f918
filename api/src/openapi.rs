//! `/openapi.json`: the OpenAPI 3.1 document generated from the route annotations, so it cannot
//! drift from the code.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::Json;
use utoipa::openapi::response::{Response, ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use crate::error::{ApiError, InvalidParam, PROBLEM_JSON, Problem};
use crate::hierarchy::CreationLinks;
use crate::{finance, health, hierarchy, invoicing};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Vextrus API",
        description = "Multi-tenant, event-sourced ERP backend for construction companies in Bangladesh. \
            Every /v1 route except sign-in takes a bearer JWT (EdDSA from POST /v1/auth/login, or HS256 \
            development tokens); errors are RFC 9457 problem+json with a stable `type`."
    ),
    paths(
        hierarchy::commands::create_organization,
        hierarchy::commands::rename_organization,
        hierarchy::commands::archive_organization,
        hierarchy::commands::create_division,
        hierarchy::commands::rename_division,
        hierarchy::commands::archive_division,
        hierarchy::commands::create_project,
        hierarchy::commands::rename_project,
        hierarchy::commands::archive_project,
        hierarchy::commands::create_site,
        hierarchy::commands::rename_site,
        hierarchy::commands::archive_site,
        hierarchy::commands::move_site,
        hierarchy::queries::list_organizations,
        hierarchy::queries::get_organization,
        hierarchy::queries::get_tree,
        hierarchy::queries::list_divisions,
        hierarchy::queries::get_division,
        hierarchy::queries::list_projects,
        hierarchy::queries::get_project,
        hierarchy::queries::list_sites,
        hierarchy::queries::get_site,
        finance::commands::create_account,
        finance::commands::install_standard_chart,
        finance::commands::update_account,
        finance::commands::delete_account,
        finance::commands::freeze_account,
        finance::commands::unfreeze_account,
        finance::commands::disable_account,
        finance::commands::enable_account,
        finance::commands::configure_ledger,
        finance::commands::set_lock_date,
        finance::commands::open_fiscal_year,
        finance::commands::close_fiscal_year,
        finance::commands::close_period,
        finance::commands::reopen_period,
        finance::commands::post_entry,
        finance::commands::reverse_entry,
        finance::queries::get_chart,
        finance::queries::get_account,
        finance::queries::account_ledger,
        finance::queries::get_ledger,
        finance::queries::list_entries,
        finance::queries::get_entry,
        finance::queries::trial_balance,
        finance::queries::balance_sheet,
        finance::queries::profit_and_loss,
        invoicing::commands::register_party,
        invoicing::commands::update_party,
        invoicing::commands::archive_party,
        invoicing::commands::adopt_standard_tax_rules,
        invoicing::commands::set_vat_rate,
        invoicing::commands::set_tds_tiers,
        invoicing::commands::set_document_accounts,
        invoicing::commands::set_withholding_entity,
        invoicing::commands::submit_vat_return,
        invoicing::commands::open_vat_amendment,
        invoicing::commands::draft_sales_invoice,
        invoicing::commands::draft_purchase_bill,
        invoicing::commands::submit_document,
        invoicing::queries::list_parties,
        invoicing::queries::get_party,
        invoicing::queries::get_tax_book,
        invoicing::queries::list_documents,
        invoicing::queries::get_document,
        invoicing::queries::tax_invoice_pdf,
        invoicing::queries::sales_book,
        invoicing::queries::purchase_book,
        invoicing::queries::get_vat_return,
        invoicing::commands::record_receipt,
        invoicing::commands::record_supplier_payment,
        invoicing::queries::list_payments,
        invoicing::queries::get_payment,
        invoicing::commands::set_budget,
        invoicing::commands::revise_budget,
        invoicing::queries::budget_report,
        invoicing::commands::draft_credit_note,
        invoicing::commands::draft_debit_note,
        invoicing::commands::cancel_document,
        invoicing::queries::aging,
        invoicing::queries::party_ledger,
        invoicing::queries::withholding_register,
        invoicing::queries::retention_register,
        invoicing::commands::allocate_advance,
        crate::identity::sessions::login,
        crate::identity::sessions::refresh,
        crate::identity::sessions::logout,
        crate::identity::sessions::me,
        crate::identity::sessions::jwks,
        crate::identity::users::accept_invitation,
        crate::identity::users::reset_password,
        crate::identity::users::change_password,
        crate::identity::users::invite_user,
        crate::identity::users::get_user,
        crate::identity::users::reissue_invitation,
        crate::identity::users::issue_password_reset,
        crate::identity::users::disable_user,
        crate::identity::users::enable_user,
        crate::identity::users::assign_role,
        crate::identity::users::remove_role,
        crate::identity::api_keys::create_api_key,
        crate::identity::api_keys::list_api_keys,
        crate::identity::api_keys::revoke_api_key,
        health::live,
        health::ready,
        crate::ops::projections,
        crate::audit::stream_history,
        crate::audit::user_activity,
        crate::audit::correlation,
        crate::audit::search,
        crate::audit::checkpoints,
        crate::audit::activity,
        openapi_json,
    ),
    components(schemas(
        Problem,
        InvalidParam,
        crate::hierarchy::views::UnitStatus,
        crate::finance::views::ReportFormat,
        crate::finance::views::EntryKindView,
        crate::audit::TrailPage,
        vextrus_audit::AuditEvent,
        crate::audit::CheckpointPage,
        crate::audit::CheckpointView,
        crate::audit::ActivityCountPage,
        crate::audit::ActivityCountView,
        crate::audit::ActivityTotals,
        vextrus_replay::ProjectionReport,
        vextrus_replay::ReplayReport,
    )),
    modifiers(&BearerAuth, &PathParametersRequired, &CreationLinks, &RateLimited),
    tags(
        (name = "organizations", description = "Companies: the root of the hierarchy and its aggregate"),
        (name = "divisions", description = "Divisions of an organization"),
        (name = "projects", description = "Construction projects of a division"),
        (name = "sites", description = "Physical sites of a project"),
        (name = "ledger", description = "The chart of accounts, the ledger's settings and the fiscal calendar (finance-manager, admin)"),
        (name = "journal", description = "Journal entries: post and reverse (accountant, finance-manager, admin)"),
        (name = "reports", description = "Trial balance, account ledgers, balance sheet, profit and loss"),
        (name = "parties", description = "Customers and suppliers of an organization (accountant, finance-manager, admin)"),
        (name = "invoices", description = "Sales invoices and purchase bills: draft, submit (gapless numbers, posted through the ledger), the printed tax invoice"),
        (name = "payments", description = "Receipts from customers and payments to suppliers: allocations, deductions (VDS, TDS, retention, bank charges), advances"),
        (name = "budgets", description = "Budgets per project, site and expense account (Stop or Warn), and budget vs actual"),
        (name = "tax", description = "The tax book (dated VAT codes, VDS shares, TDS tiers), the VAT registers (Mushak-6.1, 6.2) and monthly returns (Mushak-9.1)"),
        (name = "audit", description = "The audit trail (auditor and admin roles): who changed what, when, on whose behalf"),
        (name = "auth", description = "Sign-in, sessions, invitations and passwords; the keys that verify access tokens"),
        (name = "users", description = "The tenant's users and their roles (manage-users: admin)"),
        (name = "operations", description = "Health and API description"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT or API key")
                    .description(Some(
                        "An access token from POST /v1/auth/login (EdDSA JWT), a development \
                         token (HS256), or an API key (`vx_…`, also accepted as `X-API-Key`).",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every operation may answer 429 (the per-address limit covers every route; see
/// [`crate::rate_limit`]), so every operation documents it.
struct RateLimited;

impl Modify for RateLimited {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let too_many =
            problem_responses(&[(429, "Too many requests; retry after `Retry-After` seconds")]);
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                for (status, response) in &too_many {
                    operation
                        .responses
                        .responses
                        .entry(status.clone())
                        .or_insert_with(|| response.clone());
                }
            }
        }
    }
}

/// Path parameters are always required (OpenAPI says so); utoipa leaves `required` unset on a
/// parameter whose schema comes from `schema_with`.
struct PathParametersRequired;

impl Modify for PathParametersRequired {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::Required;
        use utoipa::openapi::path::ParameterIn;
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                for parameter in operation.parameters.iter_mut().flatten() {
                    if parameter.parameter_in == ParameterIn::Path {
                        parameter.required = Required::True;
                    }
                }
            }
        }
    }
}

/// Error responses, each with a problem+json body, for `IntoResponses` implementations.
pub fn problem_responses(statuses: &[(u16, &str)]) -> BTreeMap<String, RefOr<Response>> {
    let mut responses = ResponsesBuilder::new();
    for (status, description) in statuses {
        responses = responses.response(
            status.to_string(),
            ResponseBuilder::new().description(*description).content(
                PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            ),
        );
    }
    responses.build().responses
}

/// Schemas of the text the API parses by a rule, with the rule's pattern, so that the document
/// says exactly what the server takes. The domain's patterns come from the value types
/// themselves (`vextrus_domain::values`); the API's own (headers, cursors) are beside the code
/// that reads them.
pub mod text {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex, PoisonError};

    use regex::Regex;
    use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};
    use vextrus_domain::finance::{ExchangeRate, Money, Quantity, Rate, TEXT_PATTERN};
    use vextrus_domain::values::{Bin, Code, CurrencyCode, FiscalYearStart, Name, Tin};

    fn string(pattern: &str, description: &str, example: &str) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(pattern))
            .description(Some(description))
            .examples([example])
    }

    /// The same text, or null (an optional field that takes null for "not given").
    fn or_null(builder: ObjectBuilder) -> Object {
        builder
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .build()
    }

    pub fn code() -> Object {
        string(
            Code::PATTERN,
            "Letters, digits, `-`, `_`, `.`; starts with a letter or digit; at most 32 characters; \
             case-insensitive, stored upper case.",
            "MBL",
        )
        .build()
    }

    pub fn name() -> Object {
        string(
            Name::PATTERN,
            "1 to 200 characters, no control characters, no white space at either end.",
            "Meghna Builders Ltd",
        )
        .build()
    }

    pub fn bin() -> Object {
        string(
            Bin::PATTERN,
            "Business Identification Number: 13 digits, or 9+4 (`002871821-0101`).",
            "002871821-0101",
        )
        .build()
    }

    pub fn tin() -> Object {
        string(Tin::PATTERN, "e-TIN: 12 digits.", "123456789012").build()
    }

    pub fn bin_or_null() -> Object {
        or_null(string(
            Bin::PATTERN,
            "Business Identification Number: 13 digits, or 9+4 (`002871821-0101`).",
            "002871821-0101",
        ))
    }

    pub fn tin_or_null() -> Object {
        or_null(string(Tin::PATTERN, "e-TIN: 12 digits.", "123456789012"))
    }

    pub fn code_or_null() -> Object {
        or_null(string(
            Code::PATTERN,
            "Letters, digits, `-`, `_`, `.`; starts with a letter or digit; at most 32 characters; \
             case-insensitive, stored upper case.",
            "CONTRACT",
        ))
    }

    const RATE: &str = "A percentage from 0 to 100 with at most two decimals, as a string: `\"15\"`, \
                        `\"7.5\"`.";

    pub fn rate() -> Object {
        string(Rate::PATTERN, RATE, "7.5").build()
    }

    pub fn rate_or_null() -> Object {
        or_null(string(Rate::PATTERN, RATE, "5"))
    }

    pub fn exchange_rate_or_null() -> Object {
        or_null(string(
            ExchangeRate::PATTERN,
            "Units of the base currency one unit of the foreign currency is worth, with at most six \
             decimals, as a string: `\"122.50\"`.",
            "122.50",
        ))
    }

    pub fn quantity_or_null() -> Object {
        or_null(string(
            Quantity::PATTERN,
            "A quantity greater than zero with at most three decimals, as a string: `\"12.5\"`.",
            "1",
        ))
    }

    pub fn currency_or_null() -> Object {
        or_null(string(
            CurrencyCode::PATTERN,
            "ISO 4217 code, either case; `BDT` when omitted or null.",
            "BDT",
        ))
    }

    pub fn name_or_null() -> Object {
        or_null(string(
            Name::PATTERN,
            "1 to 200 characters, no control characters, no white space at either end.",
            "Meghna Builders Ltd",
        ))
    }

    const AMOUNT: &str = "An exact amount: a decimal string with at most two decimals (whole paisa), \
                          never a JSON number, e.g. `\"50000.00\"` or `\"12.5\"`.";

    pub fn amount() -> Object {
        string(Money::PATTERN, AMOUNT, "50000.00").build()
    }

    pub fn amount_or_null() -> Object {
        or_null(string(Money::PATTERN, AMOUNT, "50000.00"))
    }

    const NARRATION: &str =
        "1 to 500 characters, no control characters, no white space at either end.";

    pub fn narration() -> Object {
        string(TEXT_PATTERN, NARRATION, "August site rent, Mawa").build()
    }

    pub fn narration_or_null() -> Object {
        or_null(string(TEXT_PATTERN, NARRATION, "RENT-08"))
    }

    pub fn month_day_or_null() -> Object {
        or_null(string(
            FiscalYearStart::PATTERN,
            "The first day of the fiscal year as `MM-DD` (not 02-29); `07-01` (the Bangladesh \
             fiscal year) when omitted or null.",
            "07-01",
        ))
    }

    pub fn role() -> Object {
        let names: Vec<&str> = vextrus_domain::identity::Role::ALL
            .iter()
            .map(|role| role.as_str())
            .collect();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(names))
            .description(Some(
                "A built-in role; the README's table says what each allows.",
            ))
            .build()
    }

    pub fn roles() -> utoipa::openapi::schema::Array {
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(role())
            .description(Some(
                "Built-in roles; the README's table says what each allows.",
            ))
            .build()
    }

    pub fn slug() -> Object {
        string(
            vextrus_domain::identity::Slug::PATTERN,
            "The tenant's slug: 3 to 40 letters, digits and inner `-`; case-insensitive.",
            "meghna-builders",
        )
        .build()
    }

    /// Documented addresses: a plain subset of what the server takes (any address with one `@`
    /// and a dotted domain, at most 254 characters, case-insensitive).
    pub const EMAIL_PATTERN: &str = "^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9]([A-Za-z0-9-]{0,40}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,40}[A-Za-z0-9])?){1,3}$";

    pub fn email() -> Object {
        string(
            EMAIL_PATTERN,
            "An e-mail address; case-insensitive, unique per tenant.",
            "rahim@meghna.com.bd",
        )
        .max_length(Some(254))
        .build()
    }

    /// Printable text of 12 to 64 characters documents the policy's length (the server takes up
    /// to 256 characters of any kind); the common-password list is not a pattern.
    pub const PASSWORD_PATTERN: &str = "^[!-~][ -~]{10,62}[!-~]$";

    pub fn password() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(PASSWORD_PATTERN))
            .min_length(Some(12))
            .max_length(Some(256))
            .description(Some(
                "12 to 256 characters; none of the 10,000 most common passwords.",
            ))
            .examples(["correct horse battery staple"])
            .build()
    }

    /// A password as typed at sign-in (checked against the stored hash, never against the
    /// policy: an old password may predate it).
    pub fn password_attempt() -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[ -~]{1,64}$"))
            .min_length(Some(1))
            .max_length(Some(256))
            .examples(["correct horse battery staple"])
            .build()
    }

    pub fn invitation() -> Object {
        string(
            crate::identity::secrets::INVITATION_PATTERN,
            "The invitation token, as issued.",
            "vxi.0190a1b2c3d4e5f60718293a4b5c6d7e.0190a1b2c3d4e5f60718293a4b5c6d7f.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdE",
        )
        .build()
    }

    pub fn reset() -> Object {
        string(
            crate::identity::secrets::RESET_PATTERN,
            "The password-reset token, as issued.",
            "vxp.0190a1b2c3d4e5f60718293a4b5c6d7e.0190a1b2c3d4e5f60718293a4b5c6d7f.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdE",
        )
        .build()
    }

    pub fn refresh() -> Object {
        string(
            crate::identity::secrets::REFRESH_PATTERN,
            "The refresh token, as issued.",
            "vxr.0190a1b2c3d4e5f60718293a4b5c6d7e.0190a1b2c3d4e5f60718293a4b5c6d7f.0190a1b2c3d4e5f60718293a4b5c6d80.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdE",
        )
        .build()
    }

    /// Whether `text` matches `pattern` (one of the API's published patterns), as a client's
    /// validator reads it: the server checks the API's own patterns with this, so the document
    /// and the check cannot differ. A pattern that does not compile matches nothing (a unit
    /// test compiles every one).
    pub fn matches(pattern: &'static str, text: &str) -> bool {
        static COMPILED: LazyLock<Mutex<HashMap<&'static str, Option<Regex>>>> =
            LazyLock::new(Default::default);
        let mut compiled = COMPILED.lock().unwrap_or_else(PoisonError::into_inner);
        compiled
            .entry(pattern)
            .or_insert_with(|| Regex::new(pattern).ok())
            .as_ref()
            .is_some_and(|regex| regex.is_match(text))
    }

    /// A query parameter's schema: `pattern` with a description.
    pub fn parameter(pattern: &str, description: &str, example: &str) -> Object {
        string(pattern, description, example).build()
    }
}

/// This document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub async fn openapi_json() -> Result<Json<&'static serde_json::Value>, ApiError> {
    // The document depends on the code only: build it on first use, not per request.
    static DOCUMENT: OnceLock<Result<serde_json::Value, String>> = OnceLock::new();
    DOCUMENT
        .get_or_init(document)
        .as_ref()
        .map(Json)
        .map_err(|error| ApiError::Internal(format!("building the OpenAPI document: {error}")))
}

/// The document as JSON. utoipa 5.5 writes a Link Object's fields in snake case
/// (`operation_id`), which OpenAPI does not know; they are renamed here.
fn document() -> Result<serde_json::Value, String> {
    let mut document =
        serde_json::to_value(ApiDoc::openapi()).map_err(|error| error.to_string())?;
    let paths = document
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut);
    for item in paths.into_iter().flat_map(|paths| paths.values_mut()) {
        let operations = item
            .as_object_mut()
            .into_iter()
            .flat_map(|item| item.values_mut());
        for operation in operations {
            let responses = operation
                .get_mut("responses")
                .and_then(serde_json::Value::as_object_mut);
            for response in responses
                .into_iter()
                .flat_map(|responses| responses.values_mut())
            {
                let links = response
                    .get_mut("links")
                    .and_then(serde_json::Value::as_object_mut);
                for link in links.into_iter().flat_map(|links| links.values_mut()) {
                    let Some(link) = link.as_object_mut() else {
                        continue;
                    };
                    for (snake, camel) in [
                        ("operation_id", "operationId"),
                        ("operation_ref", "operationRef"),
                        ("request_body", "requestBody"),
                    ] {
                        if let Some(value) = link.remove(snake) {
                            link.insert(camel.to_owned(), value);
                        }
                    }
                }
            }
        }
    }
    Ok(document)
}
