//! Invoices, bills and payments on the write side. A document decides on its organization's
//! ledger, hierarchy and tax book, its party and, when it posts, its number series (design.md
//! D12); a payment also on every document it settles. Posting appends the document's event, the
//! series' number, the journal entry, the ledger's note of first postings and (for a payment)
//! each settled document's event in one transaction (design.md D13), with what it spends against
//! budgets ([`crate::budgets`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use vextrus_domain::TenantId;
use vextrus_domain::finance::{
    DeductionKind, DocumentContext, Invoice, InvoiceCommand, InvoiceError, InvoiceEvent,
    JournalEntry, JournalError, JournalEvent, Ledger, LedgerEvent, Money, NumberSeries, Party,
    Payment, PaymentCommand, PaymentContext, PaymentError, PaymentEvent, PostingContext, Retention,
    RetentionChange, RetentionCommand, RetentionError, RetentionMove, SeriesEvent, TaxBook,
    journal_entry, original_adjustment, payment_entry, series_id,
};
use vextrus_domain::ids::{InvoiceId, OrganizationId, PartyId, PaymentId};
use vextrus_domain::organization::Organization;

use crate::budgets::BudgetRead;
use crate::codec::CodecError;
use crate::error::{CacheError, ExecuteError};
use crate::finance::{PostingState, first_postings};
use crate::metadata::{CommandMetadata, Version};
use crate::store::{CommandOutcome, Companion, EventStore, StreamRead};

/// How often a document decides again when a stream it read changed under it. Submits of one
/// series race for its next number and each round lets one through, so this bounds how many
/// submits of one series may wait on each other.
const DOCUMENT_ATTEMPTS: u32 = 64;

type Held<A> = (Arc<A>, Version);

/// The streams every document decides on besides its own, as of the versions read.
struct Books {
    organization_id: OrganizationId,
    party_id: PartyId,
    ledger: Held<Ledger>,
    organization: Held<Organization>,
    tax: Held<TaxBook>,
    party: Held<Party>,
}

impl PostingState {
    /// The organization's ledger, hierarchy and tax book and the party, from memory, or brought
    /// up to date from the log when `fresh`.
    async fn books(
        &self,
        store: &EventStore,
        tenant: TenantId,
        organization_id: OrganizationId,
        party_id: PartyId,
        fresh: bool,
    ) -> Result<Books, CacheError> {
        let organization = organization_id.to_string();
        let party = party_id.to_string();
        Ok(if fresh {
            Books {
                organization_id,
                party_id,
                ledger: self.ledgers.refresh(store, tenant, &organization).await?,
                organization: self
                    .organizations
                    .refresh(store, tenant, &organization)
                    .await?,
                tax: self.tax_books.refresh(store, tenant, &organization).await?,
                party: self.parties.refresh(store, tenant, &party).await?,
            }
        } else {
            Books {
                organization_id,
                party_id,
                ledger: self.ledgers.get(store, tenant, &organization).await?,
                organization: self.organizations.get(store, tenant, &organization).await?,
                tax: self.tax_books.get(store, tenant, &organization).await?,
                party: self.parties.get(store, tenant, &party).await?,
            }
        })
    }

    /// The number series `prefix` of the fiscal year of `date`, when the ledger has an open year
    /// for it (else the decision refuses the date itself).
    async fn series(
        &self,
        store: &EventStore,
        tenant: TenantId,
        books: &Books,
        prefix: &str,
        date: NaiveDate,
        fresh: bool,
    ) -> Result<Option<(String, Held<NumberSeries>)>, CacheError> {
        let Ok(fiscal_year) = books.ledger.0.check_posting_date(date) else {
            return Ok(None);
        };
        let id = series_id(books.organization_id, prefix, fiscal_year);
        let held = if fresh {
            self.series.refresh(store, tenant, &id).await?
        } else {
            self.series.get(store, tenant, &id).await?
        };
        Ok(Some((id, held)))
    }
}

impl Books {
    fn reads(&self) -> Vec<StreamRead> {
        vec![
            StreamRead::of::<Ledger>(self.organization_id, self.ledger.1),
            StreamRead::of::<Organization>(self.organization_id, self.organization.1),
            StreamRead::of::<TaxBook>(self.organization_id, self.tax.1),
            StreamRead::of::<Party>(self.party_id, self.party.1),
        ]
    }

    fn posting(&self) -> PostingContext {
        PostingContext {
            ledger: self.ledger.0.clone(),
            organization: self.organization.0.clone(),
        }
    }

    /// What posting `posted` appends besides the document: the series' number (when numbered),
    /// the journal entry (a new stream; a reversal goes on the reversed entry's stream, at
    /// `reversed_version`), and the ledger's note of accounts posted to for the first time (also
    /// returned, to bring the cached ledger forward once committed).
    fn posting_companions(
        &self,
        number: Option<(&str, Version, SeriesEvent)>,
        posted: &JournalEvent,
        reversed_version: Version,
    ) -> Result<(Vec<Companion>, Option<LedgerEvent>), CodecError> {
        let mut companions = Vec::with_capacity(3);
        if let Some((series, version, issued)) = number {
            companions.push(Companion::new::<NumberSeries>(series, version, &[issued])?);
        }
        let (stream, version) = match posted {
            JournalEvent::JournalEntryPosted { entry_id, .. } => (entry_id, Version::NONE),
            JournalEvent::JournalEntryReversed { entry_id, .. } => (entry_id, reversed_version),
        };
        companions.push(Companion::new::<JournalEntry>(
            stream,
            version,
            std::slice::from_ref(posted),
        )?);
        let (ledger, version) = (&self.ledger.0, self.ledger.1);
        let note = first_postings(
            ledger,
            self.organization_id,
            version,
            std::slice::from_ref(posted),
        )?;
        Ok(match note {
            Some((companion, note)) => {
                companions.push(companion);
                (companions, Some(note))
            }
            None => (companions, None),
        })
    }
}

/// The retention held with a party, as read by a command that may hold, release or reverse some.
struct RetentionRead {
    party_id: PartyId,
    held: Held<Retention>,
}

/// Why a change to the retention held could not be appended.
enum RetentionRefusal {
    Refused(RetentionError),
    Encode(CodecError),
}

impl PostingState {
    /// The retention held with `party_id`, from memory, or brought up to date when `fresh`.
    async fn retention(
        &self,
        store: &EventStore,
        tenant: TenantId,
        party_id: PartyId,
        fresh: bool,
    ) -> Result<RetentionRead, CacheError> {
        let stream = party_id.to_string();
        let held = if fresh {
            self.retentions.refresh(store, tenant, &stream).await?
        } else {
            self.retentions.get(store, tenant, &stream).await?
        };
        Ok(RetentionRead { party_id, held })
    }
}

impl RetentionRead {
    fn read(&self) -> StreamRead {
        StreamRead::of::<Retention>(self.party_id, self.held.1)
    }

    /// What `changes` append to the party's retention stream (nothing when there are none).
    fn companion(
        &self,
        changes: Vec<RetentionCommand>,
    ) -> Result<Option<Companion>, RetentionRefusal> {
        if changes.is_empty() {
            return Ok(None);
        }
        let events = self
            .held
            .0
            .decide_all(changes)
            .map_err(RetentionRefusal::Refused)?;
        Companion::new::<Retention>(self.party_id, self.held.1, &events)
            .map(Some)
            .map_err(RetentionRefusal::Encode)
    }
}

impl RetentionRefusal {
    fn into_error<E: std::error::Error>(
        self,
        refused: impl FnOnce(RetentionError) -> E,
    ) -> ExecuteError<E> {
        match self {
            Self::Refused(error) => ExecuteError::Rejected(refused(error)),
            Self::Encode(error) => ExecuteError::Encode(error),
        }
    }
}

/// The retention changes a document's events make: a submitted bill holds what it withheld; a
/// cancelled one reverses `withheld`, what it held.
fn document_retention(
    events: &[InvoiceEvent],
    organization_id: OrganizationId,
    (withheld, number): (Money, Option<&str>),
) -> Vec<RetentionCommand> {
    events
        .iter()
        .filter_map(|event| match event {
            InvoiceEvent::InvoiceSubmitted(submitted)
                if submitted.withholding.retention.is_positive() =>
            {
                Some(RetentionCommand {
                    change: RetentionChange::Hold,
                    retention: RetentionMove {
                        organization_id,
                        amount: submitted.withholding.retention,
                        date: submitted.date,
                        document: submitted.number.clone(),
                    },
                })
            }
            InvoiceEvent::InvoiceCancelled { date, .. } if withheld.is_positive() => {
                Some(RetentionCommand {
                    change: RetentionChange::Reverse,
                    retention: RetentionMove {
                        organization_id,
                        amount: withheld,
                        date: *date,
                        document: number.unwrap_or_default().to_owned(),
                    },
                })
            }
            _ => None,
        })
        .collect()
}

/// The retention changes a recorded payment makes: what it deducts as retention is held; what it
/// releases is released.
fn payment_retention(event: &PaymentEvent) -> Vec<RetentionCommand> {
    let PaymentEvent::PaymentRecorded(recorded) = event else {
        return Vec::new();
    };
    let payment = &recorded.payment;
    let command = |change: RetentionChange, amount: Money| RetentionCommand {
        change,
        retention: RetentionMove {
            organization_id: payment.organization_id,
            amount,
            date: payment.date,
            document: recorded.number.clone(),
        },
    };
    let held = payment
        .deductions
        .iter()
        .filter(|deduction| deduction.kind == DeductionKind::Retention)
        .map(|deduction| command(RetentionChange::Hold, deduction.amount));
    let released = payment
        .retention_release
        .map(|amount| command(RetentionChange::Release, amount));
    held.chain(released).collect()
}

/// Whether a document command decides again: on a stream that moved (unless the caller pinned
/// the version), or on a refusal decided on state held in memory, which fresh state must confirm.
fn again<E: std::error::Error>(
    result: &Result<CommandOutcome, ExecuteError<E>>,
    attempt: u32,
    expected: Option<Version>,
    fresh: bool,
) -> bool {
    match result {
        Err(ExecuteError::StaleRead { .. } | ExecuteError::Conflict { .. }) => {
            attempt < DOCUMENT_ATTEMPTS && expected.is_none_or(|v| v == Version::NONE)
        }
        Err(ExecuteError::Rejected(_)) => !fresh,
        _ => false,
    }
}

impl EventStore {
    /// Drafts or submits document `invoice` of `organization_id` (see the module docs). When a
    /// stream it read moved meanwhile, refreshes what it holds and decides again (unless
    /// `expected` pins the document's version); a refusal decided on state held in memory is
    /// checked on fresh state before it is returned.
    #[allow(clippy::too_many_arguments)]
    pub async fn execute_invoice(
        &self,
        state: &PostingState,
        tenant: TenantId,
        organization_id: OrganizationId,
        invoice: InvoiceId,
        command: InvoiceCommand,
        metadata: &CommandMetadata,
        expected: Option<Version>,
    ) -> Result<CommandOutcome, ExecuteError<InvoiceError>> {
        let invoice_stream = invoice.to_string();
        let mut fresh = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            // The draft names the party, the date and the original the decision reads by; a draft
            // never changes once written, so reading it before the command's own load is safe.
            let (draft, entry_id, withheld) = match &command {
                InvoiceCommand::Draft(draft) => (draft.clone(), None, (Money::ZERO, None)),
                InvoiceCommand::Submit { .. }
                | InvoiceCommand::Cancel { .. }
                | InvoiceCommand::RecordVdsCertificate { .. } => {
                    let (document, _) = self
                        .load_aggregate::<Invoice>(tenant, &invoice_stream)
                        .await?;
                    let draft = document
                        .draft()
                        .filter(|draft| draft.organization_id == organization_id)
                        .cloned()
                        .ok_or(ExecuteError::Rejected(InvoiceError::NotFound))?;
                    let withheld = (document.retention(), document.number().map(str::to_owned));
                    (draft, document.entry_id(), withheld)
                }
            };
            let books = state
                .books(self, tenant, organization_id, draft.party_id, fresh)
                .await?;
            let mut reads = books.reads();
            // A note reads the document it changes (and a submitted note adjusts it).
            let original = match draft.original {
                Some(original) => {
                    let (document, version) = state
                        .invoices
                        .refresh(self, tenant, &original.to_string())
                        .await?;
                    if version != Version::NONE {
                        reads.push(StreamRead::of::<Invoice>(original, version));
                    }
                    Some((original, document, version))
                }
                None => None,
            };
            // A cancellation reverses the document's own entry, on that entry's stream.
            let entry = match (&command, entry_id) {
                (InvoiceCommand::Cancel { .. }, Some(entry_id)) => {
                    let (entry, version) = self
                        .fold::<JournalEntry>(tenant, &entry_id.to_string())
                        .await?;
                    reads.push(StreamRead::of::<JournalEntry>(entry_id, version));
                    Some((Arc::new(entry), version))
                }
                _ => None,
            };
            // Posting spends the lines against the budgets on their accounts and projects.
            let budgets = match &command {
                InvoiceCommand::Submit { .. } | InvoiceCommand::Cancel { .. } => Some(
                    state
                        .budget_read(
                            self,
                            tenant,
                            organization_id,
                            draft
                                .lines
                                .iter()
                                .map(|line| (line.account_id, line.project_id)),
                            fresh,
                        )
                        .await?,
                ),
                InvoiceCommand::Draft(_) | InvoiceCommand::RecordVdsCertificate { .. } => None,
            };
            reads.extend(budgets.iter().flat_map(BudgetRead::reads));
            // A bill that withholds retention holds it with the party; cancelling one reverses it.
            let retention = match &command {
                InvoiceCommand::Submit { .. } if draft.retention.is_some() => true,
                InvoiceCommand::Cancel { .. } => withheld.0.is_positive(),
                _ => false,
            };
            let retention = if retention {
                Some(state.retention(self, tenant, draft.party_id, fresh).await?)
            } else {
                None
            };
            reads.extend(retention.iter().map(RetentionRead::read));
            let series = match &command {
                InvoiceCommand::Submit { entry_id, .. } => {
                    let prefix = draft.kind.series_prefix();
                    let series = state
                        .series(self, tenant, &books, prefix, draft.date, fresh)
                        .await?;
                    if let Some((id, (_, version))) = &series {
                        reads.push(StreamRead::of::<NumberSeries>(id, *version));
                        reads.push(StreamRead::of::<JournalEntry>(entry_id, Version::NONE));
                    }
                    series
                }
                InvoiceCommand::Draft(_)
                | InvoiceCommand::Cancel { .. }
                | InvoiceCommand::RecordVdsCertificate { .. } => None,
            };
            let context = DocumentContext {
                posting: books.posting(),
                tax: books.tax.0.clone(),
                party: books.party.0.clone(),
                next_serial: series
                    .as_ref()
                    .map_or(1, |(_, (series, _))| series.next_serial()),
                original: original.as_ref().map(|(_, document, _)| document.clone()),
                entry: entry.as_ref().map(|(entry, _)| entry.clone()),
            };
            let reversed_version = entry.as_ref().map_or(Version::NONE, |(_, v)| *v);
            let mut noted: Option<LedgerEvent> = None;
            let result = self
                .execute_reading::<Invoice>(
                    tenant,
                    &invoice_stream,
                    command.clone(),
                    &context,
                    metadata,
                    expected,
                    &reads,
                    |events| {
                        let mut companions = Vec::new();
                        let changes = document_retention(
                            events,
                            organization_id,
                            (withheld.0, withheld.1.as_deref()),
                        );
                        if let Some(retention) = &retention {
                            companions.extend(
                                retention
                                    .companion(changes)
                                    .map_err(|change| change.into_error(InvoiceError::Retention))?,
                            );
                        }
                        for event in events {
                            let Some(posted) =
                                journal_entry(event, &context).map_err(ExecuteError::Rejected)?
                            else {
                                continue;
                            };
                            let number = match (event, &series) {
                                (
                                    InvoiceEvent::InvoiceSubmitted(submitted),
                                    Some((id, (_, version))),
                                ) => Some((
                                    id.as_str(),
                                    *version,
                                    SeriesEvent::NumberIssued {
                                        document_id: submitted.invoice_id.as_uuid(),
                                        serial: submitted.serial,
                                        number: submitted.number.clone(),
                                    },
                                )),
                                _ => None,
                            };
                            let (more, note) = books
                                .posting_companions(number, &posted, reversed_version)
                                .map_err(ExecuteError::Encode)?;
                            companions.extend(more);
                            noted = note;
                            let adjusted = match (event, &original) {
                                (
                                    InvoiceEvent::InvoiceSubmitted(submitted),
                                    Some((original, _, version)),
                                ) => original_adjustment(submitted)
                                    .map(|adjusted| (original, version, adjusted)),
                                _ => None,
                            };
                            if let Some((original, version, adjusted)) = adjusted {
                                companions.push(
                                    Companion::new::<Invoice>(original, *version, &[adjusted])
                                        .map_err(ExecuteError::Encode)?,
                                );
                            }
                            if let Some(budgets) = &budgets {
                                companions.extend(budgets.companions(&posted).map_err(
                                    |spend| {
                                        spend.into_error(|over| {
                                            InvoiceError::Posting(JournalError::OverBudget(over))
                                        })
                                    },
                                )?);
                            }
                        }
                        Ok(companions)
                    },
                )
                .await;
            if let (Ok(outcome), Some(note)) = (&result, noted) {
                if !outcome.repeated {
                    let (ledger, version) = &books.ledger;
                    state.noted(tenant, organization_id, (ledger, *version), note);
                }
            }
            if !again(&result, attempt, expected, fresh) {
                return result;
            }
            fresh = true;
        }
    }

    /// Records payment `payment` (see the module docs): decides on the books, the party, the
    /// series and every document it settles, and appends the payment, its number, its journal
    /// entry and each document's settlement together. Retried like a document's submit.
    #[allow(clippy::too_many_arguments)]
    pub async fn execute_payment(
        &self,
        state: &PostingState,
        tenant: TenantId,
        organization_id: OrganizationId,
        payment: PaymentId,
        command: PaymentCommand,
        metadata: &CommandMetadata,
        expected: Option<Version>,
    ) -> Result<CommandOutcome, ExecuteError<PaymentError>> {
        let payment_stream = payment.to_string();
        // A new payment names its party and documents; an allocation of its advance, the
        // recorded payment's party (which never changes) and the command's documents; a
        // certificate, the recorded payment's party and nothing to post.
        let (new, allocations, entry_id) = match &command {
            PaymentCommand::Record { payment, entry_id } => {
                (Some(payment), payment.allocations.clone(), Some(*entry_id))
            }
            PaymentCommand::AllocateAdvance {
                allocations,
                entry_id,
                ..
            } => (None, allocations.clone(), Some(*entry_id)),
            PaymentCommand::RecordVdsCertificate { .. } => (None, Vec::new(), None),
        };
        // The party, and for a payment in a foreign currency where its exchange difference is
        // costed: the new payment's project, or the allocation's (else the recorded payment's).
        let (party_id, exchange_costed_to) = match new {
            Some(new) => (
                new.party_id,
                new.currency.is_some().then_some(new.project_id),
            ),
            None => {
                let (recorded, _) = self.fold::<Payment>(tenant, &payment_stream).await?;
                let payment = recorded
                    .recorded()
                    .map(|recorded| &recorded.payment)
                    .filter(|payment| payment.organization_id == organization_id)
                    .ok_or(ExecuteError::Rejected(PaymentError::NotFound))?;
                let project_id = match &command {
                    PaymentCommand::AllocateAdvance {
                        project_id: Some(project_id),
                        ..
                    } => Some(*project_id),
                    _ => payment.project_id,
                };
                (
                    payment.party_id,
                    payment.currency.is_some().then_some(project_id),
                )
            }
        };
        let mut fresh = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let books = state
                .books(self, tenant, organization_id, party_id, fresh)
                .await?;
            let mut reads = books.reads();
            reads.extend(
                entry_id.map(|entry_id| StreamRead::of::<JournalEntry>(entry_id, Version::NONE)),
            );
            // A new payment takes a number of its series.
            let series = match new {
                Some(new) => {
                    let prefix = new.direction.series_prefix();
                    state
                        .series(self, tenant, &books, prefix, new.date, fresh)
                        .await?
                }
                None => None,
            };
            if let Some((id, (_, version))) = &series {
                reads.push(StreamRead::of::<NumberSeries>(id, *version));
            }
            // Bank charges, a round-off and an exchange difference are profit and loss in a
            // project: they spend against its budgets.
            let candidates: Vec<_> = new
                .into_iter()
                .flat_map(|new| {
                    new.deductions.iter().filter_map(|deduction| {
                        let account = match deduction.kind {
                            DeductionKind::BankCharges => {
                                books.tax.0.accounts().map(|accounts| accounts.bank_charges)
                            }
                            DeductionKind::RoundOff => {
                                books.ledger.0.settings().round_off_account_id
                            }
                            _ => None,
                        };
                        account.map(|account| (account, new.project_id))
                    })
                })
                .chain(
                    books
                        .tax
                        .0
                        .accounts()
                        .zip(exchange_costed_to)
                        .into_iter()
                        .flat_map(|(accounts, project_id)| {
                            [
                                (accounts.exchange_gain, project_id),
                                (accounts.exchange_loss, project_id),
                            ]
                        }),
                )
                .collect();
            let budgets = state
                .budget_read(self, tenant, organization_id, candidates, fresh)
                .await?;
            reads.extend(budgets.reads());
            // Retention deducted is held with the party; retention released is taken from it.
            let retention = match new {
                Some(new)
                    if new.retention_release.is_some()
                        || new
                            .deductions
                            .iter()
                            .any(|deduction| deduction.kind == DeductionKind::Retention) =>
                {
                    Some(state.retention(self, tenant, party_id, fresh).await?)
                }
                _ => None,
            };
            reads.extend(retention.iter().map(RetentionRead::read));
            // Every settled document, read now: its version is checked at append, so a
            // settlement never lands on a balance the decision did not see.
            let mut invoices = BTreeMap::new();
            let mut versions = BTreeMap::new();
            for allocation in &allocations {
                let (document, version) = state
                    .invoices
                    .refresh(self, tenant, &allocation.invoice_id.to_string())
                    .await?;
                if version != Version::NONE {
                    reads.push(StreamRead::of::<Invoice>(allocation.invoice_id, version));
                }
                versions.insert(allocation.invoice_id, version);
                invoices.insert(allocation.invoice_id, document);
            }
            let context = PaymentContext {
                posting: books.posting(),
                tax: books.tax.0.clone(),
                party: books.party.0.clone(),
                invoices,
                next_serial: series
                    .as_ref()
                    .map_or(1, |(_, (series, _))| series.next_serial()),
            };
            let mut noted: Option<LedgerEvent> = None;
            let result = self
                .execute_reading::<Payment>(
                    tenant,
                    &payment_stream,
                    command.clone(),
                    &context,
                    metadata,
                    expected,
                    &reads,
                    |events| {
                        let mut companions = Vec::new();
                        if let Some(retention) = &retention {
                            let changes = events.iter().flat_map(payment_retention).collect();
                            companions.extend(
                                retention
                                    .companion(changes)
                                    .map_err(|change| change.into_error(PaymentError::Retention))?,
                            );
                        }
                        for event in events {
                            let Some(posted) =
                                payment_entry(event, &context).map_err(ExecuteError::Rejected)?
                            else {
                                continue;
                            };
                            let (payment_id, date, settlements, number) = match event {
                                PaymentEvent::PaymentRecorded(recorded) => (
                                    recorded.payment.payment_id,
                                    recorded.payment.date,
                                    &recorded.settlements,
                                    series.as_ref().map(|(id, (_, version))| {
                                        (
                                            id.as_str(),
                                            *version,
                                            SeriesEvent::NumberIssued {
                                                document_id: recorded.payment.payment_id.as_uuid(),
                                                serial: recorded.serial,
                                                number: recorded.number.clone(),
                                            },
                                        )
                                    }),
                                ),
                                PaymentEvent::AdvanceAllocated(allocated) => (
                                    allocated.payment_id,
                                    allocated.date,
                                    &allocated.settlements,
                                    None,
                                ),
                                PaymentEvent::VdsCertificateRecorded(_) => continue,
                            };
                            let (more, note) = books
                                .posting_companions(number, &posted, Version::NONE)
                                .map_err(ExecuteError::Encode)?;
                            companions.extend(more);
                            noted = note;
                            companions.extend(budgets.companions(&posted).map_err(|spend| {
                                spend.into_error(|over| {
                                    PaymentError::Posting(JournalError::OverBudget(over))
                                })
                            })?);
                            for settlement in settlements {
                                let settled = InvoiceEvent::InvoiceSettled {
                                    payment_id,
                                    amount: settlement.amount,
                                    date,
                                    foreign_amount: settlement.foreign_amount,
                                };
                                let version = versions
                                    .get(&settlement.invoice_id)
                                    .copied()
                                    .unwrap_or(Version::NONE);
                                companions.push(
                                    Companion::new::<Invoice>(
                                        settlement.invoice_id,
                                        version,
                                        &[settled],
                                    )
                                    .map_err(ExecuteError::Encode)?,
                                );
                            }
                        }
                        Ok(companions)
                    },
                )
                .await;
            if let (Ok(outcome), Some(note)) = (&result, noted) {
                if !outcome.repeated {
                    let (ledger, version) = &books.ledger;
                    state.noted(tenant, organization_id, (ledger, *version), note);
                }
            }
            if !again(&result, attempt, expected, fresh) {
                return result;
            }
            fresh = true;
        }
    }
}
