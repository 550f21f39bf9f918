//! Budgets on the write side (design.md D12): a posting reads its organization's budgets and the
//! usage stream of every budget its lines may spend against, before it decides; what it spends
//! is appended to those usage streams in its own transaction, at the versions read, and a Stop
//! budget it would exceed refuses it.
//!
//! A budget counts what was posted before it was set: its usage stream is seeded once from the
//! log (see `vextrus_domain::finance::budget`), by the budget's own command right after it is set
//! and, should that not have happened, by the first posting that spends against it, in the
//! posting's transaction.

use std::collections::BTreeMap;
use std::sync::Arc;

use cqrs_es::Aggregate;
use sqlx::Row;
use vextrus_domain::TenantId;
use vextrus_domain::finance::{
    BudgetCommand, BudgetError, BudgetLine, BudgetUsage, Budgets, JournalEntry, JournalEvent,
    Ledger, Money, OverBudget, PostingContext, UsageCommand, UsageError, UsageEvent,
};
use vextrus_domain::ids::{AccountId, BudgetId, OrganizationId, ProjectId};
use vextrus_domain::organization::Organization;

use crate::codec::CodecError;
use crate::error::CacheError;
use crate::finance::PostingState;
use crate::metadata::CommandMetadata;
use crate::metadata::Version;
use crate::store::{CommandOutcome, Companion, EventStore, StreamRead};
use crate::tenant;

type Held<A> = (Arc<A>, Version);

/// How often seeding reads the log again when the usage stream moved between its fold and the
/// log's totals.
const SEED_ATTEMPTS: u32 = 8;

/// An organization's budgets and the usage of those a command may spend against, as read.
pub(crate) struct BudgetRead {
    organization_id: OrganizationId,
    budgets: Held<Budgets>,
    /// Each usage as it will be once seeded (when it was not), at the version read.
    usages: BTreeMap<BudgetId, Held<BudgetUsage>>,
    /// The seeding a usage that was not seeded yet needs, appended before what a posting spends.
    seeds: BTreeMap<BudgetId, Vec<UsageEvent>>,
}

/// What the log holds against a budget, read in one statement: the net of every posted and
/// reversal line it covers and in how many entries, what its usage stream recorded as spent and
/// in how many postings, and that stream's version.
struct SeedReading {
    posted: (Money, u64),
    recorded: (Money, u64),
    version: Version,
}

/// The usage of `budget` folded fresh, and when it is not seeded yet, the log's totals read at
/// the version folded (`None` once seeded).
async fn seed_reading(
    state: &PostingState,
    store: &EventStore,
    tenant: TenantId,
    budget: &BudgetLine,
) -> Result<(Held<BudgetUsage>, Option<SeedReading>), CacheError> {
    let stream = budget.budget_id.to_string();
    for _ in 0..SEED_ATTEMPTS {
        let (usage, version) = state.usages.refresh(store, tenant, &stream).await?;
        if usage.is_seeded() {
            return Ok(((usage, version), None));
        }
        let reading = store.log_against(tenant, budget).await?;
        if reading.version == version {
            return Ok(((usage, version), Some(reading)));
        }
    }
    Err(CacheError::Database(sqlx::Error::Protocol(format!(
        "the usage of budget {} kept moving while it was seeded",
        budget.budget_id
    ))))
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
        let mut seeds = BTreeMap::new();
        for budget in budgets.0.lines() {
            let used = candidates.iter().any(|(account, project)| {
                *account == budget.account_id && *project == Some(budget.project_id)
            });
            if used && !usages.contains_key(&budget.budget_id) {
                let stream = budget.budget_id.to_string();
                let mut usage = if fresh {
                    self.usages.refresh(store, tenant, &stream).await?
                } else {
                    self.usages.get(store, tenant, &stream).await?
                };
                if !usage.0.is_seeded() {
                    let (folded, reading) = seed_reading(self, store, tenant, budget).await?;
                    usage = folded;
                    if let Some(reading) = reading {
                        let events =
                            usage
                                .0
                                .seed(budget.budget_id, reading.posted, reading.recorded);
                        let mut seeded = BudgetUsage::clone(&usage.0);
                        for event in &events {
                            seeded.apply(event.clone());
                        }
                        usage.0 = Arc::new(seeded);
                        seeds.insert(budget.budget_id, events);
                    }
                }
                usages.insert(budget.budget_id, usage);
            }
        }
        Ok(BudgetRead {
            organization_id,
            budgets,
            usages,
            seeds,
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
            let mut events = self.seeds.get(&budget_id).cloned().unwrap_or_default();
            events.extend(
                usage
                    .spend(budget, adding, date, &document)
                    .map_err(Spend::Over)?,
            );
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
    /// See [`SeedReading`]: the lines of the organization's entries dated in the budget's fiscal
    /// year on its account and project (and site), and the spending recorded on its usage
    /// stream, in one statement so that both are of one moment.
    async fn log_against(
        &self,
        tenant: TenantId,
        budget: &BudgetLine,
    ) -> Result<SeedReading, sqlx::Error> {
        let mut tx = tenant::begin(self.pool(), tenant).await?;
        let row = sqlx::query(
            "with covered as (
                 select e.aggregate_id, e.sequence,
                        (l->>'debit')::bigint - (l->>'credit')::bigint as net
                 from events e cross join lateral jsonb_array_elements(e.payload->'lines') as l
                 where e.tenant_id = $1 and e.aggregate_type = $2
                   and e.payload->>'organization_id' = $3
                   and (e.payload->>'fiscal_year')::date = $4
                   and l->>'account_id' = $5 and l->>'project_id' = $6
                   and ($7::text is null or l->>'site_id' = $7)),
             usage as (
                 select event_type, payload, sequence from events
                 where tenant_id = $1 and aggregate_type = $8 and aggregate_id = $9)
             select (select coalesce(sum(net), 0)::bigint from covered) as posted,
                    (select count(distinct (aggregate_id, sequence)) from covered) as postings,
                    (select coalesce(sum((payload->>'amount')::bigint), 0)::bigint from usage
                     where event_type = 'BudgetSpent') as recorded,
                    (select count(*) from usage where event_type = 'BudgetSpent')
                        as recorded_postings,
                    (select coalesce(max(sequence), 0) from usage) as version",
        )
        .bind(tenant.as_uuid())
        .bind(JournalEntry::TYPE)
        .bind(budget.organization_id.to_string())
        .bind(budget.fiscal_year)
        .bind(budget.account_id.to_string())
        .bind(budget.project_id.to_string())
        .bind(budget.site_id.map(|site| site.to_string()))
        .bind(BudgetUsage::TYPE)
        .bind(budget.budget_id.to_string())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        let count = |column: &str| -> Result<u64, sqlx::Error> {
            Ok(u64::try_from(row.try_get::<i64, _>(column)?).unwrap_or(0))
        };
        Ok(SeedReading {
            posted: (
                Money::from_paisa(row.try_get("posted")?),
                count("postings")?,
            ),
            recorded: (
                Money::from_paisa(row.try_get("recorded")?),
                count("recorded_postings")?,
            ),
            version: Version::new(row.try_get("version")?),
        })
    }

    /// Seeds the usage of a budget just set (see the module docs), as a command caused by the
    /// one that set it: its outcome, unless a posting seeded the budget first. A posting that
    /// finds the budget not yet seeded seeds it itself, so a failure here only delays the
    /// seeding.
    async fn seed_budget(
        &self,
        state: &PostingState,
        tenant: TenantId,
        budget: &BudgetLine,
        metadata: &CommandMetadata,
    ) -> Result<Option<CommandOutcome>, crate::error::ExecuteError<UsageError>> {
        use crate::error::ExecuteError;
        let metadata = metadata.follow_up();
        let stream = budget.budget_id.to_string();
        for _ in 0..SEED_ATTEMPTS {
            let ((_, version), Some(reading)) = seed_reading(state, self, tenant, budget).await?
            else {
                return Ok(None);
            };
            let command = UsageCommand::Seed {
                budget_id: budget.budget_id,
                posted: reading.posted,
                recorded: reading.recorded,
            };
            match self
                .execute_reading::<BudgetUsage>(
                    tenant,
                    &stream,
                    command,
                    &(),
                    &metadata,
                    Some(version),
                    &[],
                    |_| Ok(Vec::new()),
                )
                .await
            {
                Ok(outcome) => return Ok(Some(outcome)),
                Err(ExecuteError::StaleRead { .. } | ExecuteError::Conflict { .. }) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(None)
    }

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
    ) -> Result<CommandOutcome, crate::error::ExecuteError<BudgetError>> {
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
                Ok(mut outcome) => {
                    // A budget set counts what was posted before: its usage is seeded now, and
                    // the answer covers the seeding (its position, for read-your-writes).
                    if let BudgetCommand::Set(line) = &command {
                        match self.seed_budget(state, tenant, line, metadata).await {
                            Ok(Some(seeded)) => {
                                outcome.last_position =
                                    outcome.last_position.max(seeded.last_position);
                                outcome.event_count += seeded.event_count;
                            }
                            Ok(None) => {}
                            Err(error) => tracing::warn!(
                                budget_id = %line.budget_id,
                                %error,
                                "a budget's usage was not seeded; the first posting against it will seed it"
                            ),
                        }
                    }
                    return Ok(outcome);
                }
                other => return other,
            }
        }
    }
}
