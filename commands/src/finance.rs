//! Finance on the write side: postings and reversals decided on the organization's ledger and
//! hierarchy and checked against its budgets (design.md D12), and what year-end closing reads
//! from the log itself (never from a lagging read model).

use chrono::NaiveDate;
use cqrs_es::Aggregate;
use sqlx::Row;
use uuid::Uuid;
use vextrus_domain::TenantId;
use vextrus_domain::finance::{
    BudgetUsage, Budgets, EntryLine, Invoice, JournalCommand, JournalEntry, JournalError,
    JournalEvent, Ledger, LedgerEvent, Money, NumberSeries, Party, PostingContext, Retention,
    TaxBook, TaxError,
};
use vextrus_domain::ids::{AccountId, EntryId, OrganizationId, ProjectId, SiteId};
use vextrus_domain::organization::Organization;

use crate::cache::StreamCache;
use crate::codec::CodecError;
use crate::error::ExecuteError;
use crate::metadata::{CommandMetadata, Version};
use crate::store::{CommandOutcome, Companion, EventStore, StreamRead};
use crate::tenant;

/// How often a posting decides again when the ledger or the hierarchy changed under it.
const POSTING_ATTEMPTS: u32 = 8;

/// The streams postings and documents decide on, held in memory: every organization's ledger,
/// hierarchy and tax book, parties, number series and the documents payments settle.
#[derive(Debug, Default)]
pub struct PostingState {
    pub ledgers: StreamCache<Ledger>,
    pub organizations: StreamCache<Organization>,
    pub tax_books: StreamCache<TaxBook>,
    pub parties: StreamCache<Party>,
    pub series: StreamCache<NumberSeries>,
    /// Documents a payment settles, brought up to date before each decision.
    pub invoices: StreamCache<Invoice>,
    /// Every organization's budgets, and what was spent against each budget.
    pub budgets: StreamCache<Budgets>,
    pub usages: StreamCache<BudgetUsage>,
    /// The retention held with each party.
    pub retentions: StreamCache<Retention>,
}

impl PostingState {
    /// Brings the cached ledger to the version a committed first-postings `note` moved it to, so
    /// the next posting need not find the cache stale and decide twice.
    pub(crate) fn noted(
        &self,
        tenant: TenantId,
        organization_id: OrganizationId,
        (ledger, version): (&Ledger, Version),
        note: LedgerEvent,
    ) {
        let mut next = Ledger::clone(ledger);
        next.apply(note);
        self.ledgers.put(
            tenant,
            &organization_id.to_string(),
            std::sync::Arc::new(next),
            Version::new(version.get() + 1),
        );
    }
}

/// The accounts and projects a journal command may post to, for the budgets it may spend against:
/// the entry's lines (with the ledger's round-off account in each of their projects), or the
/// reversed entry's.
fn budget_candidates(
    ledger: &Ledger,
    command: &JournalCommand,
    reversed_lines: &[EntryLine],
) -> Vec<(AccountId, Option<ProjectId>)> {
    let lines = match command {
        JournalCommand::Post(entry) => &entry.lines,
        JournalCommand::Reverse { .. } => reversed_lines,
    };
    let mut candidates: Vec<(AccountId, Option<ProjectId>)> = lines
        .iter()
        .map(|line| (line.account_id, line.project_id))
        .collect();
    if let Some(round_off) = ledger.settings().round_off_account_id {
        let projects: Vec<Option<ProjectId>> = lines.iter().map(|line| line.project_id).collect();
        candidates.extend(projects.into_iter().map(|project| (round_off, project)));
    }
    candidates
}

/// Refuses events that post to the VAT accounts in a month whose VAT return was submitted.
fn check_vat_months(tax: &TaxBook, events: &[JournalEvent]) -> Result<(), JournalError> {
    for event in events {
        let (JournalEvent::JournalEntryPosted { date, lines, .. }
        | JournalEvent::JournalEntryReversed { date, lines, .. }) = event;
        if tax.is_vat_affecting(lines.iter().map(|line| line.account_id)) {
            if let Err(TaxError::PeriodLocked { month }) = tax.check_vat_period(*date) {
                return Err(JournalError::VatPeriodLocked { month });
            }
        }
    }
    Ok(())
}

/// The ledger's note of the accounts `events` post to for the first time, appended with them, and
/// the note itself.
pub(crate) fn first_postings(
    ledger: &Ledger,
    organization_id: OrganizationId,
    version: Version,
    events: &[JournalEvent],
) -> Result<Option<(Companion, LedgerEvent)>, CodecError> {
    let accounts = events.iter().flat_map(|event| match event {
        JournalEvent::JournalEntryPosted { lines, .. }
        | JournalEvent::JournalEntryReversed { lines, .. } => lines.iter().map(|l| l.account_id),
    });
    let account_ids = ledger.first_postings(accounts);
    if account_ids.is_empty() {
        return Ok(None);
    }
    let note = LedgerEvent::AccountsFirstPosted { account_ids };
    let companion =
        Companion::new::<Ledger>(organization_id, version, std::slice::from_ref(&note))?;
    Ok(Some((companion, note)))
}

impl EventStore {
    /// Runs a posting or a reversal on `entry`'s stream, deciding on `organization_id`'s ledger
    /// and hierarchy as `state` holds them, with both as the read set (design.md D12); the first
    /// posting to an account also records that on the ledger, in the same transaction. When
    /// either stream moved meanwhile, refreshes it and decides again (unless `expected` pins the
    /// entry's version); a refusal decided on state held in memory is checked on fresh state
    /// before it is returned.
    #[allow(clippy::too_many_arguments)]
    pub async fn execute_journal(
        &self,
        state: &PostingState,
        tenant: TenantId,
        organization_id: OrganizationId,
        entry: EntryId,
        command: JournalCommand,
        metadata: &CommandMetadata,
        expected: Option<Version>,
    ) -> Result<CommandOutcome, ExecuteError<JournalError>> {
        let stream = organization_id.to_string();
        // A reversal spends the original's lines back: the budgets they were on are read first.
        let reversed_lines = match &command {
            JournalCommand::Reverse { .. } => self
                .load_aggregate::<JournalEntry>(tenant, &entry.to_string())
                .await?
                .0
                .lines()
                .to_vec(),
            JournalCommand::Post(_) => Vec::new(),
        };
        let mut fresh = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ((ledger, ledger_version), (organization, organization_version)) = if fresh {
                (
                    state.ledgers.refresh(self, tenant, &stream).await?,
                    state.organizations.refresh(self, tenant, &stream).await?,
                )
            } else {
                (
                    state.ledgers.get(self, tenant, &stream).await?,
                    state.organizations.get(self, tenant, &stream).await?,
                )
            };
            let budgets = state
                .budget_read(
                    self,
                    tenant,
                    organization_id,
                    budget_candidates(&ledger, &command, &reversed_lines),
                    fresh,
                )
                .await?;
            let mut reads = vec![
                StreamRead::of::<Ledger>(organization_id, ledger_version),
                StreamRead::of::<Organization>(organization_id, organization_version),
            ];
            reads.extend(budgets.reads());
            // An entry on the VAT accounts is VAT-affecting: its month's return must not be
            // submitted. The tax book's stream joins the read set (its VAT accounts and months
            // may change meanwhile), and the check is made on the events decided, so that a
            // repeated command gets its first outcome back however the month stands now.
            let (tax, tax_version) = if fresh {
                state.tax_books.refresh(self, tenant, &stream).await?
            } else {
                state.tax_books.get(self, tenant, &stream).await?
            };
            if tax_version != Version::NONE {
                reads.push(StreamRead::of::<TaxBook>(organization_id, tax_version));
            }
            let context = PostingContext {
                ledger: ledger.clone(),
                organization,
            };
            // The companion's note, to bring the cached ledger to the version it writes.
            let mut noted: Option<LedgerEvent> = None;
            let result = self
                .execute_reading::<JournalEntry>(
                    tenant,
                    &entry.to_string(),
                    command.clone(),
                    &context,
                    metadata,
                    expected,
                    &reads,
                    |events| {
                        check_vat_months(&tax, events).map_err(ExecuteError::Rejected)?;
                        let first =
                            first_postings(&ledger, organization_id, ledger_version, events)
                                .map_err(ExecuteError::Encode)?;
                        let mut companions: Vec<Companion> = first
                            .map(|(companion, note)| {
                                noted = Some(note);
                                companion
                            })
                            .into_iter()
                            .collect();
                        for event in events {
                            companions.extend(
                                budgets
                                    .companions(event)
                                    .map_err(|spend| spend.into_error(JournalError::OverBudget))?,
                            );
                        }
                        Ok(companions)
                    },
                )
                .await;
            if let (
                Ok(CommandOutcome {
                    repeated: false, ..
                }),
                Some(note),
            ) = (&result, noted)
            {
                state.noted(tenant, organization_id, (&ledger, ledger_version), note);
            }
            match result {
                Err(ExecuteError::StaleRead { .. } | ExecuteError::Conflict { .. })
                    if attempt < POSTING_ATTEMPTS
                        && expected.is_none_or(|v| v == Version::NONE) =>
                {
                    fresh = true;
                }
                Err(ExecuteError::Rejected(_)) if !fresh => fresh = true,
                other => return other,
            }
        }
    }

    /// The net (debit minus credit) of every posted and reversal line of `organization` dated
    /// `from..=to` on one of `accounts`, per account, project and site, from the log. Year-end
    /// closing reads the year's profit-and-loss balances this way once every period of the year
    /// is closed, so that no posting can still land in it.
    pub async fn journal_totals(
        &self,
        tenant: TenantId,
        organization: OrganizationId,
        from: NaiveDate,
        to: NaiveDate,
        accounts: &[AccountId],
    ) -> Result<Vec<EntryLine>, sqlx::Error> {
        let accounts: Vec<String> = accounts.iter().map(ToString::to_string).collect();
        let mut tx = tenant::begin(self.pool(), tenant).await?;
        let rows = sqlx::query(
            "select l->>'account_id' as account_id, l->>'project_id' as project_id,
                    l->>'site_id' as site_id,
                    sum((l->>'debit')::bigint - (l->>'credit')::bigint)::bigint as net
             from events e cross join lateral jsonb_array_elements(e.payload->'lines') as l
             where e.tenant_id = $1 and e.aggregate_type = $2
               and e.payload->>'organization_id' = $3
               and (e.payload->>'date')::date between $4 and $5
               and l->>'account_id' = any($6)
             group by 1, 2, 3
             order by 1, 2, 3",
        )
        .bind(tenant.as_uuid())
        .bind(JournalEntry::TYPE)
        .bind(organization.to_string())
        .bind(from)
        .bind(to)
        .bind(&accounts)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let id = |text: Option<String>| text.and_then(|text| text.parse::<Uuid>().ok());
        let mut lines = Vec::with_capacity(rows.len());
        for row in rows {
            let Some(account_id) = id(row.try_get("account_id")?) else {
                continue;
            };
            let net = Money::from_paisa(row.try_get::<Option<i64>, _>("net")?.unwrap_or(0));
            lines.push(EntryLine {
                account_id: AccountId::from_uuid(account_id),
                debit: if net.is_positive() { net } else { Money::ZERO },
                credit: if net.is_positive() { Money::ZERO } else { -net },
                party: None,
                project_id: id(row.try_get("project_id")?).map(ProjectId::from_uuid),
                site_id: id(row.try_get("site_id")?).map(SiteId::from_uuid),
                memo: None,
            });
        }
        Ok(lines)
    }
}
