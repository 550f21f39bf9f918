//! [`Retention`]: the retention money held with one party (one stream per party, id = the
//! party's), so that releasing it is checked against what is held on the write side (design.md
//! D12), never a lagging read model.
//!
//! Retention is held when a purchase bill withholds it from a subcontractor, when a payment to a
//! supplier deducts it, or when a customer holds it back from a receipt; a later payment or
//! receipt releases it, never more than is held. Cancelling a bill reverses what it held, unless
//! that was already released. Documents and payments append here as companions, in their own
//! transaction, at the version they read: two releases racing for the last taka held cannot
//! both commit.

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::Money;
use crate::ids::OrganizationId;
use crate::unique::UniqueValues;

/// What a change does to the retention held with a party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionChange {
    /// A bill or payment withholds it, or a customer holds it back.
    Hold,
    /// A payment or receipt releases part of what is held.
    Release,
    /// A cancelled bill takes back what it held.
    Reverse,
}

/// A change to the retention held with a party, named by the document that makes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionMove {
    pub organization_id: OrganizationId,
    pub amount: Money,
    pub date: NaiveDate,
    pub document: String,
}

/// A change to make: what it does, and the move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionCommand {
    pub change: RetentionChange,
    pub retention: RetentionMove,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetentionEvent {
    RetentionHeld(RetentionMove),
    RetentionReleased(RetentionMove),
    RetentionReversed(RetentionMove),
}

impl RetentionEvent {
    pub fn change(&self) -> (RetentionChange, &RetentionMove) {
        match self {
            Self::RetentionHeld(retention) => (RetentionChange::Hold, retention),
            Self::RetentionReleased(retention) => (RetentionChange::Release, retention),
            Self::RetentionReversed(retention) => (RetentionChange::Reverse, retention),
        }
    }
}

impl DomainEvent for RetentionEvent {
    fn event_type(&self) -> String {
        match self {
            Self::RetentionHeld(_) => "RetentionHeld",
            Self::RetentionReleased(_) => "RetentionReleased",
            Self::RetentionReversed(_) => "RetentionReversed",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// Why a change to the retention held was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RetentionError {
    #[error("retention moves by an amount greater than zero")]
    NotPositive,
    #[error("{amount} of retention is more than the {held} held with the party")]
    AboveHeld { amount: Money, held: Money },
    #[error(
        "the document's retention of {amount} was released already: {held} is held with the party"
    )]
    AlreadyReleased { amount: Money, held: Money },
}

/// The retention money held with one party (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    held: Money,
    released: Money,
}

impl Retention {
    /// What is held now: everything held, less what was released or reversed.
    pub fn held(&self) -> Money {
        self.held - self.released
    }

    /// What `command` appends, or why it is refused.
    pub fn decide(&self, command: RetentionCommand) -> Result<Vec<RetentionEvent>, RetentionError> {
        let RetentionCommand { change, retention } = command;
        let (amount, held) = (retention.amount, self.held());
        if !amount.is_positive() {
            return Err(RetentionError::NotPositive);
        }
        let event = match change {
            RetentionChange::Hold => RetentionEvent::RetentionHeld(retention),
            RetentionChange::Release if amount > held => {
                return Err(RetentionError::AboveHeld { amount, held });
            }
            RetentionChange::Release => RetentionEvent::RetentionReleased(retention),
            RetentionChange::Reverse if amount > held => {
                return Err(RetentionError::AlreadyReleased { amount, held });
            }
            RetentionChange::Reverse => RetentionEvent::RetentionReversed(retention),
        };
        Ok(vec![event])
    }

    /// What `commands` append one after the other, each decided on what the ones before left, or
    /// the first refusal.
    pub fn decide_all(
        &self,
        commands: impl IntoIterator<Item = RetentionCommand>,
    ) -> Result<Vec<RetentionEvent>, RetentionError> {
        let mut state = self.clone();
        let mut events = Vec::new();
        for command in commands {
            for event in state.decide(command)? {
                state.apply(event.clone());
                events.push(event);
            }
        }
        Ok(events)
    }
}

impl Aggregate for Retention {
    const TYPE: &'static str = "retention";
    type Command = RetentionCommand;
    type Event = RetentionEvent;
    type Error = RetentionError;
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
        match event.change() {
            (RetentionChange::Hold, retention) => self.held += retention.amount,
            (RetentionChange::Release | RetentionChange::Reverse, retention) => {
                self.released += retention.amount;
            }
        }
    }
}

impl UniqueValues for Retention {}

#[cfg(test)]
mod tests {
    use super::*;

    fn taka(value: &str) -> Money {
        Money::parse(value).unwrap()
    }

    fn date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 9, 1).unwrap()
    }

    fn command(change: RetentionChange, amount: &str, document: &str) -> RetentionCommand {
        RetentionCommand {
            change,
            retention: RetentionMove {
                organization_id: OrganizationId::default(),
                amount: taka(amount),
                date: date(),
                document: document.to_owned(),
            },
        }
    }

    fn hold(amount: &str) -> RetentionCommand {
        command(RetentionChange::Hold, amount, "PB-2025-26-000001")
    }

    fn release(amount: &str) -> RetentionCommand {
        command(RetentionChange::Release, amount, "PY-2025-26-000001")
    }

    fn given(commands: Vec<RetentionCommand>) -> Retention {
        let mut retention = Retention::default();
        for event in retention.decide_all(commands).unwrap() {
            retention.apply(event);
        }
        retention
    }

    #[test]
    fn releasing_takes_from_what_is_held() {
        let retention = given(vec![hold("50000"), hold("25000"), release("30000")]);
        assert_eq!(retention.held(), taka("45000"));
        let events = retention.decide(release("45000")).unwrap();
        assert!(matches!(
            events.as_slice(),
            [RetentionEvent::RetentionReleased(released)] if released.amount == taka("45000")
        ));
    }

    #[test]
    fn releasing_more_than_is_held_is_refused_with_what_is_held() {
        let retention = given(vec![hold("50000"), release("30000")]);
        assert_eq!(
            retention.decide(release("20000.01")),
            Err(RetentionError::AboveHeld {
                amount: taka("20000.01"),
                held: taka("20000"),
            })
        );
    }

    #[test]
    fn a_cancelled_bill_takes_back_only_what_is_still_held() {
        let retention = given(vec![hold("50000"), release("40000")]);
        let reverse = |amount: &str| command(RetentionChange::Reverse, amount, "PB-2025-26-000001");
        assert_eq!(
            retention.decide(reverse("50000")),
            Err(RetentionError::AlreadyReleased {
                amount: taka("50000"),
                held: taka("10000"),
            })
        );
        assert!(retention.decide(reverse("10000")).is_ok());
    }

    #[test]
    fn several_changes_decide_in_order() {
        let retention = Retention::default();
        // A payment that withholds 5,000 may release it in the same breath, not 5,000.01.
        assert!(
            retention
                .decide_all([hold("5000"), release("5000")])
                .is_ok()
        );
        assert!(matches!(
            retention.decide_all([hold("5000"), release("5000.01")]),
            Err(RetentionError::AboveHeld { .. })
        ));
        assert_eq!(
            retention.decide(hold("0")),
            Err(RetentionError::NotPositive)
        );
    }
}
