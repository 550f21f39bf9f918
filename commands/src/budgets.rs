//! Budgets on the write side (design.md D12): a posting reads its organization's budgets and the
//! usage stream of every budget its lines may spend against, before it decides; what it spends
//! is appended to those usage streams in its own transaction, at the versions read, and a Stop
//! budget it would exceed refuses it.

use std::collections::BTreeMap;
use std::sync::Arc;

use vextrus_domain::TenantId;
use vextrus_domain::finance::{
    BudgetCommand, BudgetError, BudgetUsage, Budgets, JournalEvent, Ledger, OverBudget,
    PostingContext,
};
use vextrus_domain::ids::{AccountId, BudgetId, OrganizationId, ProjectId};
use vextrus_domain::organization::Organization;

use crate::codec::CodecError;
use crate::error::CacheError;
use crate::finance::PostingState;
use crate::metadata::Version;
use crate::store::{Companion, EventStore, StreamRead};

type Held<A> = (Arc<A>, Version);

/// An organization's budgets and the usage of those a command may spend against, as read.
pub(crate) struct BudgetRead {
    organization_id: OrganizationId,
    budgets: Held<Budgets>,
    usages: BTreeMap<BudgetId, Held<BudgetUsage>>,
}

/// Why spending could not be appended.
pub(crate) enum Spend {
    /// A Stop budget would be exceeded.
    Over(OverBudget),
    Encode(CodecError),
    /// The posting spends against a budget whose usage was not read first (a bug: the
    /// candidates given to [`PostingState::budget_read`] must cover every expense line).
    Unread(BudgetId),
}

impl PostingState {
    /// The organization's budgets, and the usage of each budget on one of `candidates` (an
    /// account and the project of a line the command may post), from memory, or brought up to
    /// date when `fresh`.
    pub(crate) async fn budget_read(
        &self,
        store: &EventStore,
        tenant: TenantId,
        organization_id: OrganizationId,
        candidates: impl IntoIterator<Item = (AccountId, Option<ProjectId>)>,
        fresh: bool,
    ) -> Result<BudgetRead, CacheError> {
        let id = organization_id.to_string();
        let budgets = if fresh {
            self.budgets.refresh(store, tenant, &id).await?
        } else {
            self.budgets.get(store, tenant, &id).await?
        };
        let candidates: Vec<(AccountId, Option<ProjectId>)> = candidates.into_iter().collect();
        let mut usages = BTreeMap::new();
        for budget in budgets.0.lines() {
            let used = candidates.iter().any(|(account, project)| {
                *account == budget.account_id && *project == Some(budget.project_id)
            });
            if used && !usages.contains_key(&budget.budget_id) {
                let stream = budget.budget_id.to_string();
                let usage = if fresh {
                    self.usages.refresh(store, tenant, &stream).await?
                } else {
                    self.usages.get(store, tenant, &stream).await?
                };
                usages.insert(budget.budget_id, usage);
            }
        }
        Ok(BudgetRead {
            organization_id,
            budgets,
            usages,
        })
    }
}

impl BudgetRead {
    /// The budgets stream and each usage stream, at the versions read.
    pub(crate) fn reads(&self) -> Vec<StreamRead> {
        let mut reads = vec![StreamRead::of::<Budgets>(
            self.organization_id,
            self.budgets.1,
        )];
        for (budget_id, (_, version)) in &self.usages {
            reads.push(StreamRead::of::<BudgetUsage>(budget_id, *version));
        }
        reads
    }

    /// What `posted` appends to the usage of each budget it spends against, or the Stop budget
    /// it would exceed.
    pub(crate) fn companions(&self, posted: &JournalEvent) -> Result<Vec<Companion>, Spend> {
        let (lines, fiscal_year, date, document) = match posted {
            JournalEvent::JournalEntryPosted {
                lines,
                fiscal_year,
                date,
                document_number,
                entry_id,
                ..
            } => (
                lines,
                *fiscal_year,
                *date,
                document_number
                    .clone()
                    .unwrap_or_else(|| entry_id.to_string()),
            ),
            JournalEvent::JournalEntryReversed {
                lines,
                fiscal_year,
                date,
                reversal_entry_id,
                ..
            } => (lines, *fiscal_year, *date, reversal_entry_id.to_string()),
        };
        let mut companions = Vec::new();
        for (budget_id, adding) in self.budgets.0.spending(lines, fiscal_year) {
            let (Some(budget), Some((usage, version))) =
                (self.budgets.0.get(budget_id), self.usages.get(&budget_id))
            else {
                return Err(Spend::Unread(budget_id));
            };
            let events = usage
                .spend(budget, adding, date, &document)
                .map_err(Spend::Over)?;
            companions.push(
                Companion::new::<BudgetUsage>(budget_id, *version, &events)
                    .map_err(Spend::Encode)?,
            );
        }
        Ok(companions)
    }
}

impl Spend {
    /// As the command's error: a Stop budget's refusal through `over`.
    pub(crate) fn into_error<E: std::error::Error>(
        self,
        over: impl FnOnce(OverBudget) -> E,
    ) -> crate::error::ExecuteError<E> {
        use crate::error::ExecuteError;
        match self {
            Spend::Over(refusal) => ExecuteError::Rejected(over(refusal)),
            Spend::Encode(error) => ExecuteError::Encode(error),
            Spend::Unread(budget_id) => ExecuteError::Database(sqlx::Error::Protocol(format!(
                "the usage of budget {budget_id} was not read before deciding"
            ))),
        }
    }
}

impl EventStore {
    /// Sets or revises a budget of `organization_id`, decided on its ledger (the account, the
    /// fiscal year) and hierarchy (the project and site), both read at known versions.
    pub async fn execute_budgets(
        &self,
        state: &PostingState,
        tenant: TenantId,
        organization_id: OrganizationId,
        command: BudgetCommand,
        metadata: &crate::metadata::CommandMetadata,
        expected: Option<Version>,
    ) -> Result<crate::store::CommandOutcome, crate::error::ExecuteError<BudgetError>> {
        use crate::error::ExecuteError;
        let stream = organization_id.to_string();
        let mut fresh = false;
        loop {
            let (ledger, ledger_version) = if fresh {
                state.ledgers.refresh(self, tenant, &stream).await?
            } else {
                state.ledgers.get(self, tenant, &stream).await?
            };
            let (organization, organization_version) = if fresh {
                state.organizations.refresh(self, tenant, &stream).await?
            } else {
                state.organizations.get(self, tenant, &stream).await?
            };
            let reads = [
                StreamRead::of::<Ledger>(organization_id, ledger_version),
                StreamRead::of::<Organization>(organization_id, organization_version),
            ];
            let context = PostingContext {
                ledger,
                organization,
            };
            let result = self
                .execute_reading::<Budgets>(
                    tenant,
                    &stream,
                    command.clone(),
                    &context,
                    metadata,
                    expected,
                    &reads,
                    |_| Ok(Vec::new()),
                )
                .await;
            match result {
                Err(ExecuteError::StaleRead { .. } | ExecuteError::Rejected(_)) if !fresh => {
                    fresh = true;
                }
                other => return other,
            }
        }
    }
}
