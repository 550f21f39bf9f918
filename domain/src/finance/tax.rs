//! The [`TaxBook`]: one organization's Bangladesh tax rules as dated data, the accounts its
//! invoices, bills and payments post to, and its submitted VAT months; one stream per
//! organization (id = the organization's id).
//!
//! Rates are never constants in code (domain-finance.md). A VAT code has rates by the date they
//! take effect, and the share of its VAT that a withholding buyer deducts at source (VDS); a TDS
//! section has tiers of rates by the document's value, also by date. A document records the rates
//! it was priced at, so a rate changed from a date leaves every earlier document as it was.
//! [`standard_tax_rules`] seeds today's figures, to be checked against each Finance Act.
//!
//! Why one stream with the VAT months: every invoice and bill reads the codes and the month's
//! lock together, and both change a few times a year, so a document checks one version (design.md
//! D12) and a submitted return refuses every later document dated in its month.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::measure::Rate;
use super::{Ledger, Money};
use crate::ids::{AccountId, OrganizationId};
use crate::unique::UniqueValues;
use crate::values::Code;

/// How a VAT code taxes a supply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VatKind {
    /// The standard rate (15 %, VAT & SD Act 2012 s.15).
    Standard,
    /// A reduced rate for specified goods and services (5 %, 7.5 %, 10 %).
    Reduced,
    /// Outside VAT: no VAT, no input credit.
    Exempt,
    /// Taxed at 0 % (exports), with input credit.
    ZeroRated,
}

impl VatKind {
    pub const ALL: [VatKind; 4] = [Self::Standard, Self::Reduced, Self::Exempt, Self::ZeroRated];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Reduced => "reduced",
            Self::Exempt => "exempt",
            Self::ZeroRated => "zero_rated",
        }
    }
}

/// A VAT rate and the share of it withheld at source, from a date on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VatRate {
    pub rate: Rate,
    /// The share of the VAT a withholding buyer deducts at source (VDS): 100 % for the services
    /// the VDS rules list, 0 % for supplies they do not.
    pub vds_share: Rate,
}

/// One VAT code (a service code such as construction `S004.00`, or a rate class).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VatCode {
    pub description: String,
    pub kind: VatKind,
    /// Rates by the first day they apply.
    pub rates: BTreeMap<NaiveDate, VatRate>,
}

impl VatCode {
    /// The rate that applies on `date`, if the code was in force.
    pub fn on(&self, date: NaiveDate) -> Option<VatRate> {
        self.rates.range(..=date).next_back().map(|(_, rate)| *rate)
    }
}

/// One tier of a TDS section: documents with a VAT-exclusive value up to `up_to` (the last tier
/// has none) withhold `rate` of that value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdsTier {
    pub up_to: Option<Money>,
    pub rate: Rate,
}

/// Income tax deducted at source on one kind of payment (Income Tax Act 2023 s.89 and its rules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdsSection {
    pub description: String,
    /// Tiers by the first day they apply, in ascending order of `up_to`.
    pub tiers: BTreeMap<NaiveDate, Vec<TdsTier>>,
}

impl TdsSection {
    /// The rate for a document of VAT-exclusive `value` dated `date`.
    pub fn rate(&self, date: NaiveDate, value: Money) -> Option<Rate> {
        let (_, tiers) = self.tiers.range(..=date).next_back()?;
        tiers
            .iter()
            .find(|tier| tier.up_to.is_none_or(|up_to| value <= up_to))
            .map(|tier| tier.rate)
    }
}

/// A VAT code as defined with its first rate: what [`standard_tax_rules`] seeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VatCodeDefinition {
    pub code: Code,
    pub description: String,
    pub kind: VatKind,
    pub effective_from: NaiveDate,
    pub rate: VatRate,
}

/// A TDS section as defined with its first tiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdsDefinition {
    pub section: Code,
    pub description: String,
    pub effective_from: NaiveDate,
    pub tiers: Vec<TdsTier>,
}

/// The accounts invoices, bills and payments post to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentAccounts {
    /// What customers owe (a party's own account may replace it).
    pub receivable: AccountId,
    /// What is owed to suppliers (a party's own account may replace it).
    pub payable: AccountId,
    pub output_vat: AccountId,
    pub input_vat: AccountId,
    /// VAT customers deducted at source from what they paid us, to adjust in the return.
    pub vds_receivable: AccountId,
    /// VAT we deducted from suppliers, to deposit.
    pub vds_payable: AccountId,
    /// Income tax customers deducted from what they paid us (advance income tax).
    pub tds_receivable: AccountId,
    /// Income tax we deducted from suppliers, to deposit.
    pub tds_payable: AccountId,
    pub retention_receivable: AccountId,
    pub retention_payable: AccountId,
    /// Payments received before they are allocated to invoices.
    pub customer_advances: AccountId,
    /// Payments made before they are allocated to bills.
    pub supplier_advances: AccountId,
    pub exchange_gain: AccountId,
    pub exchange_loss: AccountId,
    pub bank_charges: AccountId,
}

impl DocumentAccounts {
    /// The accounts the VAT return reports: output and input VAT, and the VAT deducted at source
    /// by customers and from suppliers.
    pub fn vat_accounts(&self) -> [AccountId; 4] {
        [
            self.output_vat,
            self.input_vat,
            self.vds_receivable,
            self.vds_payable,
        ]
    }

    /// The accounts of the standard chart ([`super::standard_chart`]) by code, when `ledger` has
    /// them all.
    pub fn from_standard_chart(ledger: &Ledger) -> Option<Self> {
        let by = |code: &str| {
            Code::parse(code)
                .ok()
                .and_then(|code| ledger.account_by_code(&code))
        };
        Some(Self {
            receivable: by("1130")?,
            payable: by("2110")?,
            output_vat: by("2140")?,
            input_vat: by("1150")?,
            vds_receivable: by("1160")?,
            vds_payable: by("2150")?,
            tds_receivable: by("1170")?,
            tds_payable: by("2160")?,
            retention_receivable: by("1140")?,
            retention_payable: by("2130")?,
            customer_advances: by("2170")?,
            supplier_advances: by("1180")?,
            exchange_gain: by("4300")?,
            exchange_loss: by("5260")?,
            bank_charges: by("5250")?,
        })
    }

    pub fn all(&self) -> [(&'static str, AccountId); 15] {
        [
            ("receivable", self.receivable),
            ("payable", self.payable),
            ("output_vat", self.output_vat),
            ("input_vat", self.input_vat),
            ("vds_receivable", self.vds_receivable),
            ("vds_payable", self.vds_payable),
            ("tds_receivable", self.tds_receivable),
            ("tds_payable", self.tds_payable),
            ("retention_receivable", self.retention_receivable),
            ("retention_payable", self.retention_payable),
            ("customer_advances", self.customer_advances),
            ("supplier_advances", self.supplier_advances),
            ("exchange_gain", self.exchange_gain),
            ("exchange_loss", self.exchange_loss),
            ("bank_charges", self.bank_charges),
        ]
    }
}

/// Bangladesh's VAT codes and TDS sections as this build knows them (marked in the README as data
/// to check against each Finance Act): the standard rate, the reduced rates, construction
/// services (`S004.00`, 7.5 %, withheld at source), exempt and zero-rated supplies; TDS on
/// contracts and supplies in three tiers by value, and on professional services.
pub fn standard_tax_rules() -> (Vec<VatCodeDefinition>, Vec<TdsDefinition>) {
    // The VAT & SD Act 2012 took effect on 1 July 2019; the Income Tax Act 2023 on 1 July 2023.
    let vat_from = NaiveDate::from_ymd_opt(2019, 7, 1).unwrap_or_default();
    let tds_from = NaiveDate::from_ymd_opt(2023, 7, 1).unwrap_or_default();
    let rate = |hundredths: u32| Rate::from_hundredths(hundredths).unwrap_or_default();
    let all = rate(10_000);
    // Every code below is valid (the tests hold it), so none is left out.
    let vat = |code: &str, description: &str, kind, hundredths, vds_share| {
        Some(VatCodeDefinition {
            code: Code::parse(code).ok()?,
            description: description.to_owned(),
            kind,
            effective_from: vat_from,
            rate: VatRate {
                rate: rate(hundredths),
                vds_share,
            },
        })
    };
    let lakh = |n: i64| Some(Money::from_paisa(n * 100_000 * 100));
    let vat_codes: Vec<VatCodeDefinition> = [
        vat("STD", "Standard rate", VatKind::Standard, 1_500, Rate::ZERO),
        vat("RED-5", "Reduced rate 5%", VatKind::Reduced, 500, all),
        vat("RED-7.5", "Reduced rate 7.5%", VatKind::Reduced, 750, all),
        vat("RED-10", "Reduced rate 10%", VatKind::Reduced, 1_000, all),
        vat(
            "S004.00",
            "Construction firm (service code S004.00)",
            VatKind::Reduced,
            750,
            all,
        ),
        vat("EXEMPT", "Exempt supply", VatKind::Exempt, 0, Rate::ZERO),
        vat(
            "ZERO",
            "Zero-rated supply (export)",
            VatKind::ZeroRated,
            0,
            Rate::ZERO,
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    let section = |text: &str| Code::parse(text).ok();
    let tds = [
        section("CONTRACT").map(|section| TdsDefinition {
            section,
            description: "Contractors and suppliers (s.89)".to_owned(),
            effective_from: tds_from,
            tiers: vec![
                TdsTier {
                    up_to: lakh(50),
                    rate: rate(300),
                },
                TdsTier {
                    up_to: lakh(200),
                    rate: rate(500),
                },
                TdsTier {
                    up_to: None,
                    rate: rate(700),
                },
            ],
        }),
        section("SERVICE").map(|section| TdsDefinition {
            section,
            description: "Professional and technical services".to_owned(),
            effective_from: tds_from,
            tiers: vec![TdsTier {
                up_to: None,
                rate: rate(1_000),
            }],
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    (vat_codes, tds)
}

/// What a finance manager can ask of the tax book.
#[derive(Debug, Clone, PartialEq)]
pub enum TaxCommand {
    /// Starts an empty book with the given rules and accounts.
    Adopt {
        organization_id: OrganizationId,
        withholding_entity: bool,
        vat_codes: Vec<VatCodeDefinition>,
        tds_sections: Vec<TdsDefinition>,
        accounts: DocumentAccounts,
    },
    /// A new VAT code, or a new rate of an existing one from `effective_from` on.
    SetVatRate(VatCodeDefinition),
    /// A TDS section's tiers from `effective_from` on (a new section when it has none).
    SetTdsTiers(TdsDefinition),
    SetAccounts(DocumentAccounts),
    /// Whether the organization deducts VAT and income tax at source when it pays suppliers.
    SetWithholdingEntity(bool),
    /// The month's return (Mushak-9.1) was submitted: no VAT-affecting document may be dated in
    /// it any more.
    SubmitVatReturn {
        month: NaiveDate,
    },
    /// Opens a submitted month for an amended return; submitting it again locks it again.
    OpenVatAmendment {
        month: NaiveDate,
        reason: String,
    },
}

/// What happened to a tax book.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TaxEvent {
    TaxBookAdopted {
        organization_id: OrganizationId,
        withholding_entity: bool,
        vat_codes: Vec<VatCodeDefinition>,
        tds_sections: Vec<TdsDefinition>,
        accounts: DocumentAccounts,
    },
    VatRateSet(VatCodeDefinition),
    TdsTiersSet(TdsDefinition),
    DocumentAccountsSet(DocumentAccounts),
    WithholdingEntitySet {
        withholding_entity: bool,
    },
    VatReturnSubmitted {
        /// The first day of the month.
        month: NaiveDate,
        /// 0 for the original return, then 1, 2, … for amendments.
        amendment: u32,
    },
    VatAmendmentOpened {
        month: NaiveDate,
        reason: String,
    },
}

impl DomainEvent for TaxEvent {
    fn event_type(&self) -> String {
        match self {
            Self::TaxBookAdopted { .. } => "TaxBookAdopted",
            Self::VatRateSet(_) => "VatRateSet",
            Self::TdsTiersSet(_) => "TdsTiersSet",
            Self::DocumentAccountsSet(_) => "DocumentAccountsSet",
            Self::WithholdingEntitySet { .. } => "WithholdingEntitySet",
            Self::VatReturnSubmitted { .. } => "VatReturnSubmitted",
            Self::VatAmendmentOpened { .. } => "VatAmendmentOpened",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// Why the tax book refused a change, or a document its date or code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TaxError {
    #[error("the organization has no tax book yet; adopt the standard rules first")]
    NotAdopted,
    #[error("the tax book is already set up")]
    AlreadyAdopted,
    #[error("VAT code {0} not found")]
    UnknownVatCode(Code),
    #[error("VAT code {code} has no rate in force on {date}")]
    NoVatRateOn { code: Code, date: NaiveDate },
    #[error("{kind} VAT codes have a rate of 0")]
    RateOfKind { kind: &'static str },
    #[error("TDS section {0} not found")]
    UnknownTdsSection(Code),
    #[error("TDS section {section} has no tiers in force on {date}")]
    NoTdsTiersOn { section: Code, date: NaiveDate },
    #[error(
        "TDS tiers rise strictly in `up_to`, and only the last one is without `up_to` (it takes every larger value)"
    )]
    TiersOutOfOrder,
    #[error("{0} must be a month's first day")]
    NotAMonth(NaiveDate),
    #[error(
        "the VAT return for {month} was submitted: its month is locked for VAT-affecting documents"
    )]
    PeriodLocked { month: NaiveDate },
    #[error("the VAT return for {0} is not submitted; there is nothing to amend")]
    NotSubmitted(NaiveDate),
    #[error("must be 1 to 500 characters, without control characters or white space at either end")]
    Text { field: &'static str },
}

/// A submitted month: locked while `open_for_amendment` is false.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VatMonth {
    pub amendment: u32,
    pub open_for_amendment: bool,
}

/// One organization's tax rules, accounts and VAT months (see the module docs).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaxBook {
    organization_id: Option<OrganizationId>,
    withholding_entity: bool,
    vat_codes: BTreeMap<Code, VatCode>,
    tds_sections: BTreeMap<Code, TdsSection>,
    accounts: Option<DocumentAccounts>,
    vat_months: BTreeMap<NaiveDate, VatMonth>,
}

impl Aggregate for TaxBook {
    const TYPE: &'static str = "tax_book";
    type Command = TaxCommand;
    type Event = TaxEvent;
    type Error = TaxError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            TaxEvent::TaxBookAdopted {
                organization_id,
                withholding_entity,
                vat_codes,
                tds_sections,
                accounts,
            } => {
                self.organization_id = Some(organization_id);
                self.withholding_entity = withholding_entity;
                self.accounts = Some(accounts);
                for code in vat_codes {
                    self.set_vat_rate(code);
                }
                for section in tds_sections {
                    self.set_tds_tiers(section);
                }
            }
            TaxEvent::VatRateSet(code) => self.set_vat_rate(code),
            TaxEvent::TdsTiersSet(section) => self.set_tds_tiers(section),
            TaxEvent::DocumentAccountsSet(accounts) => self.accounts = Some(accounts),
            TaxEvent::WithholdingEntitySet { withholding_entity } => {
                self.withholding_entity = withholding_entity;
            }
            TaxEvent::VatReturnSubmitted { month, amendment } => {
                self.vat_months.insert(
                    month,
                    VatMonth {
                        amendment,
                        open_for_amendment: false,
                    },
                );
            }
            TaxEvent::VatAmendmentOpened { month, .. } => {
                if let Some(submitted) = self.vat_months.get_mut(&month) {
                    submitted.open_for_amendment = true;
                }
            }
        }
    }
}

impl UniqueValues for TaxBook {}

/// The first day of `date`'s month.
pub fn month_of(date: NaiveDate) -> NaiveDate {
    date.with_day(1).unwrap_or(date)
}

impl TaxBook {
    pub fn organization_id(&self) -> Option<OrganizationId> {
        self.organization_id
    }

    pub fn withholding_entity(&self) -> bool {
        self.withholding_entity
    }

    pub fn accounts(&self) -> Option<&DocumentAccounts> {
        self.accounts.as_ref()
    }

    pub fn vat_codes(&self) -> &BTreeMap<Code, VatCode> {
        &self.vat_codes
    }

    pub fn tds_sections(&self) -> &BTreeMap<Code, TdsSection> {
        &self.tds_sections
    }

    pub fn vat_months(&self) -> &BTreeMap<NaiveDate, VatMonth> {
        &self.vat_months
    }

    /// The VAT rate of `code` on `date`.
    pub fn vat_rate(&self, code: &Code, date: NaiveDate) -> Result<(VatKind, VatRate), TaxError> {
        let vat = self
            .vat_codes
            .get(code)
            .ok_or_else(|| TaxError::UnknownVatCode(code.clone()))?;
        let rate = vat.on(date).ok_or_else(|| TaxError::NoVatRateOn {
            code: code.clone(),
            date,
        })?;
        Ok((vat.kind, rate))
    }

    /// The TDS rate of `section` for a document of VAT-exclusive `value` dated `date`.
    pub fn tds_rate(
        &self,
        section: &Code,
        date: NaiveDate,
        value: Money,
    ) -> Result<Rate, TaxError> {
        let tds = self
            .tds_sections
            .get(section)
            .ok_or_else(|| TaxError::UnknownTdsSection(section.clone()))?;
        tds.rate(date, value).ok_or_else(|| TaxError::NoTdsTiersOn {
            section: section.clone(),
            date,
        })
    }

    /// Whether a journal entry on `accounts` is VAT-affecting: it touches an account the VAT
    /// return reports (output and input VAT, VAT deducted at source), so its date must be in a
    /// month whose return is not submitted ([`TaxBook::check_vat_period`]). Never before the
    /// rules are adopted.
    pub fn is_vat_affecting(&self, mut accounts: impl Iterator<Item = AccountId>) -> bool {
        self.accounts
            .as_ref()
            .is_some_and(|book| accounts.any(|account| book.vat_accounts().contains(&account)))
    }

    /// Whether a VAT-affecting document may be dated `date`: its month's return is not submitted
    /// (or is open for amendment).
    pub fn check_vat_period(&self, date: NaiveDate) -> Result<(), TaxError> {
        let month = month_of(date);
        match self.vat_months.get(&month) {
            Some(submitted) if !submitted.open_for_amendment => {
                Err(TaxError::PeriodLocked { month })
            }
            _ => Ok(()),
        }
    }

    fn set_vat_rate(&mut self, definition: VatCodeDefinition) {
        let code = self
            .vat_codes
            .entry(definition.code)
            .or_insert_with(|| VatCode {
                description: definition.description.clone(),
                kind: definition.kind,
                rates: BTreeMap::new(),
            });
        code.description = definition.description;
        code.kind = definition.kind;
        code.rates
            .insert(definition.effective_from, definition.rate);
    }

    fn set_tds_tiers(&mut self, definition: TdsDefinition) {
        let section = self
            .tds_sections
            .entry(definition.section)
            .or_insert_with(|| TdsSection {
                description: definition.description.clone(),
                tiers: BTreeMap::new(),
            });
        section.description = definition.description;
        section
            .tiers
            .insert(definition.effective_from, definition.tiers);
    }

    /// The rules of the tax book.
    pub fn decide(&self, command: TaxCommand) -> Result<Vec<TaxEvent>, TaxError> {
        if !matches!(command, TaxCommand::Adopt { .. }) && self.organization_id.is_none() {
            return Err(TaxError::NotAdopted);
        }
        match command {
            TaxCommand::Adopt {
                organization_id,
                withholding_entity,
                vat_codes,
                tds_sections,
                accounts,
            } => {
                if self.organization_id.is_some() {
                    return Err(TaxError::AlreadyAdopted);
                }
                for code in &vat_codes {
                    check_vat_code(code)?;
                }
                for section in &tds_sections {
                    check_tds(section)?;
                }
                Ok(vec![TaxEvent::TaxBookAdopted {
                    organization_id,
                    withholding_entity,
                    vat_codes,
                    tds_sections,
                    accounts,
                }])
            }
            TaxCommand::SetVatRate(definition) => {
                check_vat_code(&definition)?;
                let unchanged = self.vat_codes.get(&definition.code).is_some_and(|code| {
                    code.description == definition.description
                        && code.kind == definition.kind
                        && code.rates.get(&definition.effective_from) == Some(&definition.rate)
                });
                Ok(if unchanged {
                    Vec::new()
                } else {
                    vec![TaxEvent::VatRateSet(definition)]
                })
            }
            TaxCommand::SetTdsTiers(definition) => {
                check_tds(&definition)?;
                Ok(vec![TaxEvent::TdsTiersSet(definition)])
            }
            TaxCommand::SetAccounts(accounts) => Ok(if self.accounts == Some(accounts) {
                Vec::new()
            } else {
                vec![TaxEvent::DocumentAccountsSet(accounts)]
            }),
            TaxCommand::SetWithholdingEntity(withholding_entity) => {
                Ok(if self.withholding_entity == withholding_entity {
                    Vec::new()
                } else {
                    vec![TaxEvent::WithholdingEntitySet { withholding_entity }]
                })
            }
            TaxCommand::SubmitVatReturn { month } => {
                if month_of(month) != month {
                    return Err(TaxError::NotAMonth(month));
                }
                let amendment = match self.vat_months.get(&month) {
                    None => 0,
                    Some(submitted) if submitted.open_for_amendment => submitted.amendment + 1,
                    Some(_) => return Err(TaxError::PeriodLocked { month }),
                };
                Ok(vec![TaxEvent::VatReturnSubmitted { month, amendment }])
            }
            TaxCommand::OpenVatAmendment { month, reason } => {
                if !super::valid_text(&reason) {
                    return Err(TaxError::Text { field: "reason" });
                }
                match self.vat_months.get(&month) {
                    None => Err(TaxError::NotSubmitted(month)),
                    Some(submitted) if submitted.open_for_amendment => Ok(Vec::new()),
                    Some(_) => Ok(vec![TaxEvent::VatAmendmentOpened { month, reason }]),
                }
            }
        }
    }
}

fn check_vat_code(definition: &VatCodeDefinition) -> Result<(), TaxError> {
    if !super::valid_text(&definition.description) {
        return Err(TaxError::Text {
            field: "description",
        });
    }
    match definition.kind {
        VatKind::Exempt | VatKind::ZeroRated if !definition.rate.rate.is_zero() => {
            Err(TaxError::RateOfKind {
                kind: definition.kind.as_str(),
            })
        }
        _ => Ok(()),
    }
}

fn check_tds(definition: &TdsDefinition) -> Result<(), TaxError> {
    if !super::valid_text(&definition.description) {
        return Err(TaxError::Text {
            field: "description",
        });
    }
    let Some((last, rest)) = definition.tiers.split_last() else {
        return Err(TaxError::TiersOutOfOrder);
    };
    let mut previous: Option<Money> = None;
    for tier in rest {
        let up_to = tier.up_to.ok_or(TaxError::TiersOutOfOrder)?;
        if previous.is_some_and(|previous| up_to <= previous) {
            return Err(TaxError::TiersOutOfOrder);
        }
        previous = Some(up_to);
    }
    if let (Some(up_to), Some(previous)) = (last.up_to, previous) {
        if up_to <= previous {
            return Err(TaxError::TiersOutOfOrder);
        }
    }
    Ok(())
}
