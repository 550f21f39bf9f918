//! Invoices and bills on the write side: a document decides on its organization's ledger,
//! hierarchy and tax book, its party and, when submitted, its number series (design.md D12); its
//! submit appends the document's event, the series' number, the journal entry and (for a first
//! posting to an account) the ledger's note in one transaction (design.md D13).

use vextrus_domain::TenantId;
use vextrus_domain::finance::{
    DocumentContext, Invoice, InvoiceCommand, InvoiceError, InvoiceEvent, JournalEntry,
    JournalEvent, LedgerEvent, NumberSeries, Party, PostingContext, SeriesEvent, TaxBook,
    journal_entry, series_id,
};
use vextrus_domain::ids::{InvoiceId, OrganizationId};
use vextrus_domain::organization::Organization;

use crate::error::ExecuteError;
use crate::finance::{PostingState, first_postings};
use crate::metadata::{CommandMetadata, Version};
use crate::store::{CommandOutcome, Companion, EventStore, StreamRead};

/// How often a document decides again when a stream it read changed under it. Submits of one
/// series race for its next number and each round lets one through, so this bounds how many
/// submits of one series may wait on each other.
const DOCUMENT_ATTEMPTS: u32 = 64;

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
        let organization_stream = organization_id.to_string();
        let invoice_stream = invoice.to_string();
        let mut fresh = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            // The draft names the party and the date the decision reads by; a draft never
            // changes once written, so reading it before the command's own load is safe.
            let draft = match &command {
                InvoiceCommand::Draft(draft) => draft.clone(),
                InvoiceCommand::Submit { .. } => {
                    let (document, _) = self
                        .load_aggregate::<Invoice>(tenant, &invoice_stream)
                        .await?;
                    document
                        .draft()
                        .filter(|draft| draft.organization_id == organization_id)
                        .cloned()
                        .ok_or(ExecuteError::Rejected(InvoiceError::NotFound))?
                }
            };
            let party_stream = draft.party_id.to_string();
            let load = async |fresh: bool| -> Result<_, ExecuteError<InvoiceError>> {
                Ok(if fresh {
                    (
                        state
                            .ledgers
                            .refresh(self, tenant, &organization_stream)
                            .await?,
                        state
                            .organizations
                            .refresh(self, tenant, &organization_stream)
                            .await?,
                        state
                            .tax_books
                            .refresh(self, tenant, &organization_stream)
                            .await?,
                        state.parties.refresh(self, tenant, &party_stream).await?,
                    )
                } else {
                    (
                        state
                            .ledgers
                            .get(self, tenant, &organization_stream)
                            .await?,
                        state
                            .organizations
                            .get(self, tenant, &organization_stream)
                            .await?,
                        state
                            .tax_books
                            .get(self, tenant, &organization_stream)
                            .await?,
                        state.parties.get(self, tenant, &party_stream).await?,
                    )
                })
            };
            let (
                (ledger, ledger_version),
                (organization, organization_version),
                (tax, tax_version),
                (party, party_version),
            ) = load(fresh).await?;
            let mut reads = vec![
                StreamRead::of::<vextrus_domain::finance::Ledger>(organization_id, ledger_version),
                StreamRead::of::<Organization>(organization_id, organization_version),
                StreamRead::of::<TaxBook>(organization_id, tax_version),
                StreamRead::of::<Party>(draft.party_id, party_version),
            ];
            // A submit takes the next number of its series in the fiscal year of its date; a
            // date in no open year is refused by the decision itself.
            let series = match (&command, ledger.check_posting_date(draft.date)) {
                (InvoiceCommand::Submit { entry_id, .. }, Ok(fiscal_year)) => {
                    let id = series_id(organization_id, draft.kind.series_prefix(), fiscal_year);
                    let (series, version) = if fresh {
                        state.series.refresh(self, tenant, &id).await?
                    } else {
                        state.series.get(self, tenant, &id).await?
                    };
                    reads.push(StreamRead::of::<NumberSeries>(&id, version));
                    reads.push(StreamRead::of::<JournalEntry>(entry_id, Version::NONE));
                    Some((id, series, version))
                }
                _ => None,
            };
            let context = DocumentContext {
                posting: PostingContext {
                    ledger: ledger.clone(),
                    organization,
                },
                tax,
                party,
                next_serial: series
                    .as_ref()
                    .map_or(1, |(_, series, _)| series.next_serial()),
            };
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
                        for event in events {
                            let Some(posted) =
                                journal_entry(event, &context).map_err(ExecuteError::Rejected)?
                            else {
                                continue;
                            };
                            if let (
                                InvoiceEvent::InvoiceSubmitted(submitted),
                                Some((id, _, version)),
                            ) = (event, &series)
                            {
                                let number = SeriesEvent::NumberIssued {
                                    document_id: submitted.invoice_id.as_uuid(),
                                    serial: submitted.serial,
                                    number: submitted.number.clone(),
                                };
                                companions.push(
                                    Companion::new::<NumberSeries>(id, *version, &[number])
                                        .map_err(ExecuteError::Encode)?,
                                );
                            }
                            let JournalEvent::JournalEntryPosted { entry_id, .. } = &posted else {
                                continue;
                            };
                            companions.push(
                                Companion::new::<JournalEntry>(
                                    entry_id,
                                    Version::NONE,
                                    std::slice::from_ref(&posted),
                                )
                                .map_err(ExecuteError::Encode)?,
                            );
                            if let Some((companion, note)) = first_postings(
                                &ledger,
                                organization_id,
                                ledger_version,
                                std::slice::from_ref(&posted),
                            )
                            .map_err(ExecuteError::Encode)?
                            {
                                companions.push(companion);
                                noted = Some(note);
                            }
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
                    if attempt < DOCUMENT_ATTEMPTS
                        && expected.is_none_or(|v| v == Version::NONE) =>
                {
                    fresh = true;
                }
                Err(ExecuteError::Rejected(_)) if !fresh => fresh = true,
                other => return other,
            }
        }
    }
}
