//! The [`Party`] aggregate: a customer or supplier of one organization, one stream per party.
//!
//! What invoices, bills and payments need of a party lives here: its BIN and TIN (printed on tax
//! invoices, required for some VAT adjustments), its address, whether it deducts VAT and income
//! tax at source when it pays (a government body, a bank, a limited company …), its payment
//! terms, and the receivable or payable account its documents post to when not the book's.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::entry::{LineParty, PartyKind};
use crate::ids::{AccountId, OrganizationId, PartyId};
use crate::unique::UniqueValues;
use crate::values::{Bin, Name, Tin};

/// The longest payment terms, in days.
pub const MAX_TERMS_DAYS: u16 = 3_650;

/// A party's details, as registered and as each change leaves them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyDetails {
    pub name: Name,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<Bin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tin: Option<Tin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Deducts VAT (VDS) and income tax (TDS) at source when it pays.
    pub withholding_entity: bool,
    /// Days from a document's date to its due date.
    pub terms_days: u16,
    /// The receivable (customer) or payable (supplier) account its documents post to, instead of
    /// the tax book's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<AccountId>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PartyCommand {
    Register {
        party_id: PartyId,
        organization_id: OrganizationId,
        kind: PartyKind,
        details: PartyDetails,
    },
    /// Replaces the details; documents already submitted keep what they printed.
    Update(PartyDetails),
    Archive,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PartyEvent {
    PartyRegistered {
        party_id: PartyId,
        organization_id: OrganizationId,
        kind: PartyKind,
        details: PartyDetails,
    },
    PartyUpdated {
        party_id: PartyId,
        details: PartyDetails,
    },
    PartyArchived {
        party_id: PartyId,
    },
}

impl DomainEvent for PartyEvent {
    fn event_type(&self) -> String {
        match self {
            Self::PartyRegistered { .. } => "PartyRegistered",
            Self::PartyUpdated { .. } => "PartyUpdated",
            Self::PartyArchived { .. } => "PartyArchived",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PartyError {
    #[error("party not found")]
    NotFound,
    #[error("the party is already registered")]
    AlreadyRegistered,
    #[error("the party is archived")]
    Archived,
    #[error("must be 1 to 500 characters, without control characters or white space at either end")]
    Address,
    #[error("payment terms are at most {MAX_TERMS_DAYS} days")]
    TermsTooLong,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Registered {
    party_id: PartyId,
    organization_id: OrganizationId,
    kind: PartyKind,
    details: PartyDetails,
    archived: bool,
}

/// A customer or supplier (see the module docs).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Party {
    registered: Option<Registered>,
}

impl Aggregate for Party {
    const TYPE: &'static str = "party";
    type Command = PartyCommand;
    type Event = PartyEvent;
    type Error = PartyError;
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
            PartyEvent::PartyRegistered {
                party_id,
                organization_id,
                kind,
                details,
            } => {
                self.registered = Some(Registered {
                    party_id,
                    organization_id,
                    kind,
                    details,
                    archived: false,
                });
            }
            PartyEvent::PartyUpdated { details, .. } => {
                if let Some(registered) = &mut self.registered {
                    registered.details = details;
                }
            }
            PartyEvent::PartyArchived { .. } => {
                if let Some(registered) = &mut self.registered {
                    registered.archived = true;
                }
            }
        }
    }
}

impl UniqueValues for Party {}

impl Party {
    pub fn id(&self) -> Option<PartyId> {
        self.registered.as_ref().map(|r| r.party_id)
    }

    pub fn organization_id(&self) -> Option<OrganizationId> {
        self.registered.as_ref().map(|r| r.organization_id)
    }

    pub fn kind(&self) -> Option<PartyKind> {
        self.registered.as_ref().map(|r| r.kind)
    }

    pub fn details(&self) -> Option<&PartyDetails> {
        self.registered.as_ref().map(|r| &r.details)
    }

    pub fn is_archived(&self) -> bool {
        self.registered.as_ref().is_some_and(|r| r.archived)
    }

    /// How a ledger line names this party.
    pub fn line_party(&self) -> Option<LineParty> {
        self.registered.as_ref().map(|r| LineParty {
            kind: r.kind,
            id: r.party_id.as_uuid(),
        })
    }

    pub fn decide(&self, command: PartyCommand) -> Result<Vec<PartyEvent>, PartyError> {
        match command {
            PartyCommand::Register {
                party_id,
                organization_id,
                kind,
                details,
            } => {
                if self.registered.is_some() {
                    return Err(PartyError::AlreadyRegistered);
                }
                check(&details)?;
                Ok(vec![PartyEvent::PartyRegistered {
                    party_id,
                    organization_id,
                    kind,
                    details,
                }])
            }
            PartyCommand::Update(details) => {
                let registered = self.registered.as_ref().ok_or(PartyError::NotFound)?;
                if registered.archived {
                    return Err(PartyError::Archived);
                }
                check(&details)?;
                Ok(if registered.details == details {
                    Vec::new()
                } else {
                    vec![PartyEvent::PartyUpdated {
                        party_id: registered.party_id,
                        details,
                    }]
                })
            }
            PartyCommand::Archive => {
                let registered = self.registered.as_ref().ok_or(PartyError::NotFound)?;
                Ok(if registered.archived {
                    Vec::new()
                } else {
                    vec![PartyEvent::PartyArchived {
                        party_id: registered.party_id,
                    }]
                })
            }
        }
    }
}

fn check(details: &PartyDetails) -> Result<(), PartyError> {
    if details
        .address
        .as_deref()
        .is_some_and(|address| !super::valid_text(address))
    {
        return Err(PartyError::Address);
    }
    if details.terms_days > MAX_TERMS_DAYS {
        return Err(PartyError::TermsTooLong);
    }
    Ok(())
}
