//! Budgets per project, site and cost account (domain-finance.md, "Construction specifics"), in
//! two kinds of stream, so that postings contend only on the budgets they use:
//!
//! - [`Budgets`]: an organization's budget lines (one stream per organization, id = the
//!   organization's), which every posting reads (they change rarely);
//! - [`BudgetUsage`]: what has been spent against one budget (one stream per budget, id = the
//!   budget's), which a posting that uses the budget appends to, at the version it read.
//!
//! A **Stop** budget refuses a posting that would take it past its amount, saying by how much;
//! a **Warn** budget lets it post and records a warning. The check is on the write side, against
//! the usage stream's version (design.md D12), never a lagging read model: two bills racing for a
//! budget's last taka cannot both commit.
//!
//! A budget set after the year's spending began counts that spending too: its usage stream is
//! **seeded** once ([`UsageEvent::UsageSeeded`]) with what the log holds on the budget's account,
//! project (and site) and year beyond what was already spent against it. The budget's command
//! seeds it once the budget is set, and a posting that finds a budget not yet seeded seeds it in
//! its own transaction first, so no posting is checked against a budget that does not count
//! what came before it.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::Money;
use super::chart::RootType;
use super::entry::EntryLine;
use super::journal::PostingContext;
use crate::ids::{AccountId, BudgetId, OrganizationId, ProjectId, SiteId};
use crate::organization::UnitStatus;
use crate::unique::UniqueValues;

/// What a budget does when a posting would exceed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetAction {
    /// Refuse the posting.
    Stop,
    /// Post it and record a warning.
    Warn,
}

impl BudgetAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Warn => "warn",
        }
    }
}

/// One budget: an expense account's spending in a project (or one of its sites) over a fiscal
/// year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetLine {
    pub budget_id: BudgetId,
    pub organization_id: OrganizationId,
    pub project_id: ProjectId,
    /// `None`: the whole project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_id: Option<SiteId>,
    pub account_id: AccountId,
    /// The first day of the fiscal year it covers.
    pub fiscal_year: NaiveDate,
    pub amount: Money,
    pub action: BudgetAction,
}

impl BudgetLine {
    fn covers(
        &self,
        account_id: AccountId,
        project_id: ProjectId,
        site_id: Option<SiteId>,
    ) -> bool {
        self.account_id == account_id
            && self.project_id == project_id
            && self.site_id.is_none_or(|site| Some(site) == site_id)
    }

    /// Whether the two would both count one posting line.
    fn overlaps(&self, other: &BudgetLine) -> bool {
        self.account_id == other.account_id
            && self.project_id == other.project_id
            && self.fiscal_year == other.fiscal_year
            && (self.site_id.is_none() || other.site_id.is_none() || self.site_id == other.site_id)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum BudgetCommand {
    Set(BudgetLine),
    /// A new amount or action for a budget.
    Revise {
        budget_id: BudgetId,
        amount: Money,
        action: BudgetAction,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BudgetEvent {
    BudgetSet(BudgetLine),
    BudgetRevised {
        budget_id: BudgetId,
        amount: Money,
        action: BudgetAction,
    },
}

impl DomainEvent for BudgetEvent {
    fn event_type(&self) -> String {
        match self {
            Self::BudgetSet(_) => "BudgetSet",
            Self::BudgetRevised { .. } => "BudgetRevised",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BudgetError {
    #[error("budget not found")]
    NotFound,
    #[error("the budget already exists")]
    AlreadyExists,
    #[error("a budget is greater than zero")]
    NotPositive,
    #[error("account {0} not found")]
    AccountNotFound(AccountId),
    #[error("a budget is set on an expense ledger account, not a balance-sheet or group account")]
    NotAnExpenseAccount,
    #[error("project not found in this organization")]
    ProjectNotFound,
    #[error("the project is archived")]
    ProjectArchived,
    #[error("site not found in the project")]
    SiteNotFound,
    #[error("{0} does not start a fiscal year of the ledger")]
    NoSuchYear(NaiveDate),
    #[error(
        "it overlaps budget {0} (same account, project and year, and the same site or the whole project)"
    )]
    Overlaps(BudgetId),
}

/// An organization's budget lines (see the module docs).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Budgets {
    lines: BTreeMap<BudgetId, BudgetLine>,
}

impl Aggregate for Budgets {
    const TYPE: &'static str = "budgets";
    type Command = BudgetCommand;
    type Event = BudgetEvent;
    type Error = BudgetError;
    type Services = PostingContext;

    async fn handle(
        &mut self,
        command: Self::Command,
        context: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command, context)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            BudgetEvent::BudgetSet(line) => {
                self.lines.insert(line.budget_id, line);
            }
            BudgetEvent::BudgetRevised {
                budget_id,
                amount,
                action,
            } => {
                if let Some(line) = self.lines.get_mut(&budget_id) {
                    line.amount = amount;
                    line.action = action;
                }
            }
        }
    }
}

impl UniqueValues for Budgets {}

impl Budgets {
    pub fn lines(&self) -> impl Iterator<Item = &BudgetLine> {
        self.lines.values()
    }

    pub fn get(&self, budget_id: BudgetId) -> Option<&BudgetLine> {
        self.lines.get(&budget_id)
    }

    /// The budget that counts `line` of a posting in `fiscal_year`, if any.
    pub fn covering(&self, line: &EntryLine, fiscal_year: NaiveDate) -> Option<&BudgetLine> {
        let project_id = line.project_id?;
        self.lines.values().find(|budget| {
            budget.fiscal_year == fiscal_year
                && budget.covers(line.account_id, project_id, line.site_id)
        })
    }

    /// The net spending (debit minus credit) `lines` add to each budget that covers one of them.
    pub fn spending(
        &self,
        lines: &[EntryLine],
        fiscal_year: NaiveDate,
    ) -> BTreeMap<BudgetId, Money> {
        let mut spending = BTreeMap::new();
        for line in lines {
            if let Some(budget) = self.covering(line, fiscal_year) {
                *spending.entry(budget.budget_id).or_insert(Money::ZERO) += line.net();
            }
        }
        spending
    }

    pub fn decide(
        &self,
        command: BudgetCommand,
        context: &PostingContext,
    ) -> Result<Vec<BudgetEvent>, BudgetError> {
        match command {
            BudgetCommand::Set(line) => {
                if self.lines.contains_key(&line.budget_id) {
                    return Err(BudgetError::AlreadyExists);
                }
                check(&line, context)?;
                if let Some(other) = self.lines.values().find(|other| other.overlaps(&line)) {
                    return Err(BudgetError::Overlaps(other.budget_id));
                }
                Ok(vec![BudgetEvent::BudgetSet(line)])
            }
            BudgetCommand::Revise {
                budget_id,
                amount,
                action,
            } => {
                let line = self.lines.get(&budget_id).ok_or(BudgetError::NotFound)?;
                if !amount.is_positive() {
                    return Err(BudgetError::NotPositive);
                }
                Ok(if line.amount == amount && line.action == action {
                    Vec::new()
                } else {
                    vec![BudgetEvent::BudgetRevised {
                        budget_id,
                        amount,
                        action,
                    }]
                })
            }
        }
    }
}

fn check(line: &BudgetLine, context: &PostingContext) -> Result<(), BudgetError> {
    if !line.amount.is_positive() {
        return Err(BudgetError::NotPositive);
    }
    let account = context
        .ledger
        .account(line.account_id)
        .ok_or(BudgetError::AccountNotFound(line.account_id))?;
    if account.is_group || account.root_type != RootType::Expense {
        return Err(BudgetError::NotAnExpenseAccount);
    }
    match context.organization.project_status(line.project_id) {
        None => return Err(BudgetError::ProjectNotFound),
        Some(UnitStatus::Archived) => return Err(BudgetError::ProjectArchived),
        Some(UnitStatus::Active) => {}
    }
    if let Some(site_id) = line.site_id {
        match context.organization.site(site_id) {
            Some((project, _)) if project == line.project_id => {}
            _ => return Err(BudgetError::SiteNotFound),
        }
    }
    if !context
        .ledger
        .years()
        .iter()
        .any(|year| year.start == line.fiscal_year)
    {
        return Err(BudgetError::NoSuchYear(line.fiscal_year));
    }
    Ok(())
}

/// Why a posting was refused by a budget.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "budget {budget_id} (stop) would be exceeded by {over}: {spent} spent of {amount}, this adds {adding}"
)]
pub struct OverBudget {
    pub budget_id: BudgetId,
    pub amount: Money,
    pub spent: Money,
    pub adding: Money,
    pub over: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UsageEvent {
    /// A posting spent `amount` (negative for a reversal) against the budget.
    BudgetSpent {
        budget_id: BudgetId,
        amount: Money,
        date: NaiveDate,
        /// The document or entry that spent it (its number, or the entry's id).
        document: String,
    },
    /// A posting took a Warn budget past its amount; it was posted all the same.
    BudgetExceeded {
        budget_id: BudgetId,
        over: Money,
        document: String,
    },
    /// What the log held on the budget's account, project (and site) and year beyond what had
    /// been spent against it when it was seeded: spending posted before the budget was set.
    UsageSeeded {
        budget_id: BudgetId,
        amount: Money,
        /// How many entries (and reversals) that was.
        postings: u64,
    },
}

impl DomainEvent for UsageEvent {
    fn event_type(&self) -> String {
        match self {
            Self::BudgetSpent { .. } => "BudgetSpent",
            Self::BudgetExceeded { .. } => "BudgetExceeded",
            Self::UsageSeeded { .. } => "UsageSeeded",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// What has been spent against one budget (see the module docs). Appended to by postings only,
/// as a companion; it takes no commands of its own.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BudgetUsage {
    spent: Money,
    /// Whether spending posted before the budget was set has been counted.
    #[serde(default)]
    seeded: bool,
}

impl BudgetUsage {
    pub fn spent(&self) -> Money {
        self.spent
    }

    pub fn is_seeded(&self) -> bool {
        self.seeded
    }

    /// What seeding appends: `posted` is the net the log holds on the budget's account, project
    /// (and site) and year in `postings` entries, `recorded` the spending already appended here
    /// in `recorded_postings` of them (read together); nothing once seeded.
    pub fn seed(
        &self,
        budget_id: BudgetId,
        (posted, postings): (Money, u64),
        (recorded, recorded_postings): (Money, u64),
    ) -> Vec<UsageEvent> {
        if self.seeded {
            return Vec::new();
        }
        vec![UsageEvent::UsageSeeded {
            budget_id,
            amount: posted - recorded,
            postings: postings.saturating_sub(recorded_postings),
        }]
    }

    /// What a posting that spends `adding` against `budget` appends here, or why a Stop budget
    /// refuses it. Spending that lowers the total (a reversal) is never refused.
    pub fn spend(
        &self,
        budget: &BudgetLine,
        adding: Money,
        date: NaiveDate,
        document: &str,
    ) -> Result<Vec<UsageEvent>, OverBudget> {
        let after = self.spent + adding;
        let over = after - budget.amount;
        let mut events = vec![UsageEvent::BudgetSpent {
            budget_id: budget.budget_id,
            amount: adding,
            date,
            document: document.to_owned(),
        }];
        if adding.is_positive() && over.is_positive() {
            // Over by what this posting adds beyond the budget, not by earlier overruns.
            let over = if self.spent > budget.amount {
                adding
            } else {
                over
            };
            match budget.action {
                BudgetAction::Stop => {
                    return Err(OverBudget {
                        budget_id: budget.budget_id,
                        amount: budget.amount,
                        spent: self.spent,
                        adding,
                        over,
                    });
                }
                BudgetAction::Warn => events.push(UsageEvent::BudgetExceeded {
                    budget_id: budget.budget_id,
                    over,
                    document: document.to_owned(),
                }),
            }
        }
        Ok(events)
    }
}

/// The budgets' commands are [`Budgets`]'; usage is appended by postings, and seeded once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageCommand {
    /// See [`BudgetUsage::seed`].
    Seed {
        budget_id: BudgetId,
        posted: (Money, u64),
        recorded: (Money, u64),
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UsageError {}

impl Aggregate for BudgetUsage {
    const TYPE: &'static str = "budget_usage";
    type Command = UsageCommand;
    type Event = UsageEvent;
    type Error = UsageError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let UsageCommand::Seed {
            budget_id,
            posted,
            recorded,
        } = command;
        for event in self.seed(budget_id, posted, recorded) {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            UsageEvent::BudgetSpent { amount, .. } => self.spent += amount,
            UsageEvent::UsageSeeded { amount, .. } => {
                self.spent += amount;
                self.seeded = true;
            }
            UsageEvent::BudgetExceeded { .. } => {}
        }
    }
}

impl UniqueValues for BudgetUsage {}

#[cfg(test)]
mod tests {
    //! Scenarios 20 and 21 of domain-finance.md.

    use super::*;
    use crate::finance::tests::{Books, date, taka};

    fn cement(books: &Books, amount: &str, action: BudgetAction) -> BudgetLine {
        BudgetLine {
            budget_id: BudgetId::new(),
            organization_id: books.org,
            project_id: books.project,
            site_id: Some(books.site),
            account_id: books.id("5110"),
            fiscal_year: date("2025-07-01"),
            amount: taka(amount),
            action,
        }
    }

    fn spend(books: &Books, amount: &str) -> EntryLine {
        EntryLine {
            account_id: books.id("5110"),
            debit: taka(amount),
            credit: Money::ZERO,
            party: None,
            project_id: Some(books.project),
            site_id: Some(books.site),
            memo: None,
        }
    }

    #[test]
    fn a_stop_budget_refuses_the_bill_that_would_exceed_it_by_what_it_exceeds() {
        let books = Books::new();
        let budget = cement(&books, "1000000", BudgetAction::Stop);
        let usage = BudgetUsage {
            spent: taka("980000"),
            seeded: true,
        };
        let over = usage
            .spend(&budget, taka("30000"), date("2025-09-01"), "PB-1")
            .unwrap_err();
        assert_eq!(over.over, taka("10000"));
        assert!(
            usage
                .spend(&budget, taka("20000"), date("2025-09-01"), "PB-2")
                .is_ok()
        );
        // A reversal always passes and lowers what was spent.
        let mut usage = usage;
        for event in usage
            .spend(&budget, -taka("50000"), date("2025-09-02"), "JV-3")
            .unwrap()
        {
            usage.apply(event);
        }
        assert_eq!(usage.spent(), taka("930000"));
    }

    #[test]
    fn seeding_counts_once_what_the_log_holds_beyond_what_was_spent_against_the_budget() {
        let books = Books::new();
        let budget = cement(&books, "1000000", BudgetAction::Stop);
        // One posting of 1,00,000.00 spent against it before seeding (a budget set before this
        // rule existed); the log holds it and four earlier entries, 9,00,000.00 in all.
        let mut usage = BudgetUsage::default();
        for event in usage
            .spend(&budget, taka("100000"), date("2025-09-01"), "PB-1")
            .unwrap()
        {
            usage.apply(event);
        }
        assert!(!usage.is_seeded());
        let events = usage.seed(budget.budget_id, (taka("900000"), 5), (taka("100000"), 1));
        assert_eq!(
            events,
            vec![UsageEvent::UsageSeeded {
                budget_id: budget.budget_id,
                amount: taka("800000"),
                postings: 4,
            }]
        );
        for event in events {
            usage.apply(event);
        }
        assert_eq!(usage.spent(), taka("900000"));
        assert!(
            usage
                .seed(budget.budget_id, (taka("1"), 1), (Money::ZERO, 0))
                .is_empty()
        );
        // What was posted before counts against the Stop budget: 1,00,000.01 more is refused.
        let over = usage
            .spend(&budget, taka("100000.01"), date("2025-09-02"), "PB-2")
            .unwrap_err();
        assert_eq!(over.over, taka("0.01"));
    }

    #[test]
    fn a_warn_budget_posts_and_records_a_warning() {
        let books = Books::new();
        let budget = cement(&books, "1000000", BudgetAction::Warn);
        let usage = BudgetUsage {
            spent: taka("980000"),
            seeded: true,
        };
        let events = usage
            .spend(&budget, taka("30000"), date("2025-09-01"), "PB-1")
            .unwrap();
        assert_eq!(
            events[1],
            UsageEvent::BudgetExceeded {
                budget_id: budget.budget_id,
                over: taka("10000"),
                document: "PB-1".to_owned(),
            }
        );
    }

    #[test]
    fn budgets_of_zero_on_balance_sheet_accounts_or_overlapping_are_refused() {
        let books = Books::new();
        let context = books.context();
        let mut budgets = Budgets::default();
        let first = cement(&books, "1000000", BudgetAction::Stop);
        for event in budgets
            .decide(BudgetCommand::Set(first.clone()), &context)
            .unwrap()
        {
            budgets.apply(event);
        }
        let zero = cement(&books, "0", BudgetAction::Stop);
        assert_eq!(
            budgets.decide(BudgetCommand::Set(zero), &context),
            Err(BudgetError::NotPositive)
        );
        let mut cash = cement(&books, "100", BudgetAction::Stop);
        cash.account_id = books.id("1110");
        assert_eq!(
            budgets.decide(BudgetCommand::Set(cash), &context),
            Err(BudgetError::NotAnExpenseAccount)
        );
        let mut whole_project = cement(&books, "100", BudgetAction::Warn);
        whole_project.site_id = None;
        assert_eq!(
            budgets.decide(BudgetCommand::Set(whole_project), &context),
            Err(BudgetError::Overlaps(first.budget_id))
        );
        let mut next_year = cement(&books, "100", BudgetAction::Warn);
        next_year.fiscal_year = date("2026-07-01");
        assert_eq!(
            budgets.decide(BudgetCommand::Set(next_year), &context),
            Err(BudgetError::NoSuchYear(date("2026-07-01")))
        );
        // The budget counts its project's and site's lines in its year, nothing else.
        let spending = budgets.spending(
            &[spend(&books, "30000"), {
                let mut other = spend(&books, "5");
                other.project_id = Some(books.other_project);
                other.site_id = Some(books.other_site);
                other
            }],
            date("2025-07-01"),
        );
        assert_eq!(spending.get(&first.budget_id), Some(&taka("30000")));
        assert_eq!(spending.len(), 1);
        assert!(
            budgets
                .spending(&[spend(&books, "1")], date("2026-07-01"))
                .is_empty()
        );
    }
}
