//! The vocabulary of a chart of accounts: root types, account types, and the standard chart of a
//! Bangladeshi construction company that [`LedgerCommand::InstallStandardChart`](super::LedgerCommand)
//! installs in one command.

use serde::{Deserialize, Serialize};

use crate::ids::AccountId;
use crate::values::{Code, CurrencyCode, Name};

/// The five root types. Asset and Expense accounts normally carry a debit balance, the others a
/// credit balance; Income and Expense are profit and loss, the others the balance sheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RootType {
    Asset,
    Liability,
    Equity,
    Income,
    Expense,
}

impl RootType {
    pub const ALL: [RootType; 5] = [
        Self::Asset,
        Self::Liability,
        Self::Equity,
        Self::Income,
        Self::Expense,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Asset => "asset",
            Self::Liability => "liability",
            Self::Equity => "equity",
            Self::Income => "income",
            Self::Expense => "expense",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|root| root.as_str() == text)
    }

    /// Income and expense accounts: their balances are the year's result and are closed to
    /// retained earnings at year end.
    pub fn is_profit_and_loss(self) -> bool {
        matches!(self, Self::Income | Self::Expense)
    }

    /// Whether a balance of this type is normally on the debit side.
    pub fn is_debit_normal(self) -> bool {
        matches!(self, Self::Asset | Self::Expense)
    }
}

/// What an account is for, where a rule depends on it. Most accounts are `general`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountType {
    #[default]
    General,
    /// Amounts customers owe; every line names a party.
    Receivable,
    /// Amounts owed to suppliers and subcontractors; every line names a party.
    Payable,
    Bank,
    Cash,
    /// VAT, VDS and TDS accounts.
    Tax,
    /// Where year-end closing moves the year's result.
    RetainedEarnings,
    /// Where an entry's allowed rounding difference goes.
    RoundOff,
}

impl AccountType {
    pub const ALL: [AccountType; 8] = [
        Self::General,
        Self::Receivable,
        Self::Payable,
        Self::Bank,
        Self::Cash,
        Self::Tax,
        Self::RetainedEarnings,
        Self::RoundOff,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::General => "general",
            Self::Receivable => "receivable",
            Self::Payable => "payable",
            Self::Bank => "bank",
            Self::Cash => "cash",
            Self::Tax => "tax",
            Self::RetainedEarnings => "retained_earnings",
            Self::RoundOff => "round_off",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// Lines on receivable and payable accounts name the customer or supplier.
    pub fn needs_party(self) -> bool {
        matches!(self, Self::Receivable | Self::Payable)
    }
}

/// Everything needed to open one account. The parent, when given, must be a group of the same
/// chart; the root type is the parent's (and required without one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAccount {
    pub account_id: AccountId,
    pub code: Code,
    pub name: Name,
    pub parent_id: Option<AccountId>,
    pub root_type: Option<RootType>,
    pub account_type: AccountType,
    pub is_group: bool,
    pub currency: CurrencyCode,
}

/// One row of the standard chart: code, name, parent code, root type (roots only), type, group.
type StandardRow = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<RootType>,
    AccountType,
    bool,
);

/// The standard chart of a Bangladeshi construction company: the accounts its first entries,
/// invoices, bills and payments need (receivables and payables, VAT input and output, VDS and
/// TDS, retention both ways, work in progress, site materials, plant, subcontractor costs).
const STANDARD_CHART: &[StandardRow] = {
    use AccountType as T;
    use RootType as R;
    &[
        ("1000", "Assets", None, Some(R::Asset), T::General, true),
        (
            "1100",
            "Current Assets",
            Some("1000"),
            None,
            T::General,
            true,
        ),
        ("1110", "Cash in Hand", Some("1100"), None, T::Cash, false),
        (
            "1120",
            "Bank Accounts",
            Some("1100"),
            None,
            T::General,
            true,
        ),
        (
            "1121",
            "Main Operating Bank Account",
            Some("1120"),
            None,
            T::Bank,
            false,
        ),
        (
            "1130",
            "Trade Receivables",
            Some("1100"),
            None,
            T::Receivable,
            false,
        ),
        (
            "1140",
            "Retention Receivable",
            Some("1100"),
            None,
            T::Receivable,
            false,
        ),
        (
            "1150",
            "VAT Input (Current Account)",
            Some("1100"),
            None,
            T::Tax,
            false,
        ),
        (
            "1160",
            "VDS Receivable (Deducted by Clients)",
            Some("1100"),
            None,
            T::Tax,
            false,
        ),
        (
            "1170",
            "Advance Income Tax (TDS Suffered)",
            Some("1100"),
            None,
            T::Tax,
            false,
        ),
        (
            "1180",
            "Advances to Suppliers and Subcontractors",
            Some("1100"),
            None,
            T::Payable,
            false,
        ),
        (
            "1190",
            "Security Deposits and Earnest Money",
            Some("1100"),
            None,
            T::General,
            false,
        ),
        (
            "1200",
            "Inventories and Work in Progress",
            Some("1000"),
            None,
            T::General,
            true,
        ),
        (
            "1210",
            "Site Materials",
            Some("1200"),
            None,
            T::General,
            false,
        ),
        (
            "1220",
            "Construction Work in Progress",
            Some("1200"),
            None,
            T::General,
            false,
        ),
        (
            "1300",
            "Non-current Assets",
            Some("1000"),
            None,
            T::General,
            true,
        ),
        (
            "1310",
            "Plant and Machinery",
            Some("1300"),
            None,
            T::General,
            false,
        ),
        ("1320", "Vehicles", Some("1300"), None, T::General, false),
        (
            "1330",
            "Office Equipment",
            Some("1300"),
            None,
            T::General,
            false,
        ),
        (
            "1390",
            "Accumulated Depreciation",
            Some("1300"),
            None,
            T::General,
            false,
        ),
        (
            "2000",
            "Liabilities",
            None,
            Some(R::Liability),
            T::General,
            true,
        ),
        (
            "2100",
            "Current Liabilities",
            Some("2000"),
            None,
            T::General,
            true,
        ),
        (
            "2110",
            "Trade Payables",
            Some("2100"),
            None,
            T::Payable,
            false,
        ),
        (
            "2120",
            "Subcontractor Payables",
            Some("2100"),
            None,
            T::Payable,
            false,
        ),
        (
            "2130",
            "Retention Payable",
            Some("2100"),
            None,
            T::Payable,
            false,
        ),
        (
            "2140",
            "VAT Output (Current Account)",
            Some("2100"),
            None,
            T::Tax,
            false,
        ),
        (
            "2150",
            "VDS Payable (Deducted from Suppliers)",
            Some("2100"),
            None,
            T::Tax,
            false,
        ),
        (
            "2160",
            "TDS Payable (Deducted from Suppliers)",
            Some("2100"),
            None,
            T::Tax,
            false,
        ),
        (
            "2170",
            "Mobilisation Advances from Clients",
            Some("2100"),
            None,
            T::Receivable,
            false,
        ),
        (
            "2180",
            "Accrued Expenses",
            Some("2100"),
            None,
            T::General,
            false,
        ),
        (
            "2200",
            "Non-current Liabilities",
            Some("2000"),
            None,
            T::General,
            true,
        ),
        (
            "2210",
            "Long-term Bank Loans",
            Some("2200"),
            None,
            T::General,
            false,
        ),
        ("3000", "Equity", None, Some(R::Equity), T::General, true),
        (
            "3100",
            "Share Capital",
            Some("3000"),
            None,
            T::General,
            false,
        ),
        (
            "3200",
            "Retained Earnings",
            Some("3000"),
            None,
            T::RetainedEarnings,
            false,
        ),
        ("4000", "Income", None, Some(R::Income), T::General, true),
        (
            "4100",
            "Contract Revenue",
            Some("4000"),
            None,
            T::General,
            false,
        ),
        (
            "4200",
            "Other Income",
            Some("4000"),
            None,
            T::General,
            false,
        ),
        (
            "4300",
            "Exchange Gain",
            Some("4000"),
            None,
            T::General,
            false,
        ),
        ("5000", "Expenses", None, Some(R::Expense), T::General, true),
        (
            "5100",
            "Direct Construction Costs",
            Some("5000"),
            None,
            T::General,
            true,
        ),
        (
            "5110",
            "Construction Materials",
            Some("5100"),
            None,
            T::General,
            false,
        ),
        (
            "5120",
            "Subcontractor Costs",
            Some("5100"),
            None,
            T::General,
            false,
        ),
        ("5130", "Site Labour", Some("5100"), None, T::General, false),
        (
            "5140",
            "Plant Hire and Fuel",
            Some("5100"),
            None,
            T::General,
            false,
        ),
        ("5200", "Overheads", Some("5000"), None, T::General, true),
        (
            "5210",
            "Salaries and Wages",
            Some("5200"),
            None,
            T::General,
            false,
        ),
        ("5220", "Rent", Some("5200"), None, T::General, false),
        ("5230", "Utilities", Some("5200"), None, T::General, false),
        (
            "5240",
            "Depreciation",
            Some("5200"),
            None,
            T::General,
            false,
        ),
        (
            "5250",
            "Bank Charges",
            Some("5200"),
            None,
            T::General,
            false,
        ),
        (
            "5260",
            "Exchange Loss",
            Some("5200"),
            None,
            T::General,
            false,
        ),
        ("5270", "Round-off", Some("5200"), None, T::RoundOff, false),
    ]
};

/// The standard chart in `currency`, each account under a fresh id (parents before children).
pub fn standard_chart(currency: &CurrencyCode) -> Vec<NewAccount> {
    let mut ids: Vec<(&str, AccountId)> = Vec::with_capacity(STANDARD_CHART.len());
    let mut accounts = Vec::with_capacity(STANDARD_CHART.len());
    for (code, name, parent, root_type, account_type, is_group) in STANDARD_CHART {
        let account_id = AccountId::new();
        ids.push((code, account_id));
        let parent_id = parent.and_then(|parent| {
            ids.iter()
                .find(|(code, _)| *code == parent)
                .map(|(_, id)| *id)
        });
        // The table above is fixed and every code and name in it is valid; the test below holds it.
        let (Ok(code), Ok(name)) = (Code::parse(code), Name::parse(name)) else {
            continue;
        };
        accounts.push(NewAccount {
            account_id,
            code,
            name,
            parent_id,
            root_type: *root_type,
            account_type: *account_type,
            is_group: *is_group,
            currency: currency.clone(),
        });
    }
    accounts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_chart_is_whole_and_every_parent_comes_first() {
        let chart = standard_chart(&CurrencyCode::bdt());
        assert_eq!(chart.len(), STANDARD_CHART.len());
        for (index, account) in chart.iter().enumerate() {
            match account.parent_id {
                Some(parent) => assert!(
                    chart[..index]
                        .iter()
                        .any(|a| a.account_id == parent && a.is_group),
                    "{} has no group parent before it",
                    account.code
                ),
                None => assert!(account.root_type.is_some(), "{} is a root", account.code),
            }
        }
    }
}
