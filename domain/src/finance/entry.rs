//! The lines of a journal entry, shared by posted entries, reversals and year-end closings.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Money;
use crate::ids::{AccountId, ProjectId, SiteId};

/// Whether a party is a customer or a supplier (subcontractors are suppliers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyKind {
    Customer,
    Supplier,
}

impl PartyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Supplier => "supplier",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "customer" => Some(Self::Customer),
            "supplier" => Some(Self::Supplier),
            _ => None,
        }
    }
}

/// The customer or supplier a receivable or payable line concerns, by kind and id (a
/// [`super::Party`]'s id when the line comes from an invoice, bill or payment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LineParty {
    pub kind: PartyKind,
    pub id: Uuid,
}

/// What kind of entry a set of lines is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    #[default]
    Regular,
    /// Balances brought in when a company starts on Vextrus: balance-sheet accounts only.
    Opening,
    /// The reversal of another entry, sides swapped.
    Reversal,
    /// Year-end closing: the year's profit-and-loss balances moved to retained earnings.
    Closing,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Regular => "regular",
            Self::Opening => "opening",
            Self::Reversal => "reversal",
            Self::Closing => "closing",
        }
    }
}

/// One line of an entry: a debit or a credit (one of the two is zero) on a ledger account, with
/// the dimensions the account's rules ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryLine {
    pub account_id: AccountId,
    pub debit: Money,
    pub credit: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party: Option<LineParty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<ProjectId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_id: Option<SiteId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

impl EntryLine {
    /// The same line on the other side: what a reversal posts.
    pub fn swapped(&self) -> Self {
        Self {
            debit: self.credit,
            credit: self.debit,
            ..self.clone()
        }
    }

    /// Debit minus credit.
    pub fn net(&self) -> Money {
        self.debit - self.credit
    }
}
