//! Every aggregate type of this build, registered once (design.md D11). The Kafka topics (one
//! per aggregate type), the projections that read every aggregate, and the audit trail's state changes (each event's effect on its
//! aggregate's state) iterate this list; adding an aggregate is one line in [`AGGREGATES`].

use cqrs_es::Aggregate;
use serde::Serialize;
use serde_json::Value;
use vextrus_domain::finance::{
    BudgetUsage, Budgets, Invoice, JournalEntry, Ledger, NumberSeries, Party, Payment, Retention,
    TaxBook,
};
use vextrus_domain::identity::{ApiKey, Tenant, User};
use vextrus_domain::organization::Organization;

use crate::codec;

/// One registered aggregate type.
#[derive(Clone, Copy)]
pub struct AggregateKind {
    /// The aggregate type as the log stores it (`Aggregate::TYPE`).
    pub name: &'static str,
    fold: fn() -> Box<dyn StateFold>,
}

impl AggregateKind {
    pub const fn of<A: Aggregate + Serialize + 'static>() -> Self {
        Self {
            name: A::TYPE,
            fold: new_fold::<A>,
        }
    }

    /// A fresh state of this aggregate, to fold events into.
    pub fn fold(&self) -> Box<dyn StateFold> {
        (self.fold)()
    }
}

impl std::fmt::Debug for AggregateKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Every aggregate type of this build.
pub const AGGREGATES: &[AggregateKind] = &[
    AggregateKind::of::<Organization>(),
    AggregateKind::of::<Ledger>(),
    AggregateKind::of::<JournalEntry>(),
    AggregateKind::of::<TaxBook>(),
    AggregateKind::of::<Party>(),
    AggregateKind::of::<Invoice>(),
    AggregateKind::of::<NumberSeries>(),
    AggregateKind::of::<Payment>(),
    AggregateKind::of::<Budgets>(),
    AggregateKind::of::<BudgetUsage>(),
    AggregateKind::of::<Retention>(),
    AggregateKind::of::<Tenant>(),
    AggregateKind::of::<User>(),
    AggregateKind::of::<ApiKey>(),
];

/// The names of every aggregate type, in registration order.
pub const AGGREGATE_TYPES: &[&str] = &names::<{ AGGREGATES.len() }>();

const fn names<const N: usize>() -> [&'static str; N] {
    let mut names = [""; N];
    let mut index = 0;
    while index < N {
        names[index] = AGGREGATES[index].name;
        index += 1;
    }
    names
}

/// The registered aggregate type called `name`.
pub fn aggregate(name: &str) -> Option<&'static AggregateKind> {
    AGGREGATES.iter().find(|kind| kind.name == name)
}

/// An aggregate's state, folded event by event as the write side does.
pub trait StateFold: Send {
    /// Applies one stored event; false when it does not decode.
    fn apply(&mut self, event_type: &str, payload: &Value) -> bool;
    /// The state as JSON.
    fn state(&self) -> Value;
}

fn new_fold<A: Aggregate + Serialize + 'static>() -> Box<dyn StateFold> {
    Box::new(Folded(A::default()))
}

struct Folded<A>(A);

impl<A: Aggregate + Serialize> StateFold for Folded<A> {
    fn apply(&mut self, event_type: &str, payload: &Value) -> bool {
        match codec::decode::<A::Event>(event_type, payload) {
            Ok(event) => {
                self.0.apply(event);
                true
            }
            Err(_) => false,
        }
    }

    fn state(&self) -> Value {
        serde_json::to_value(&self.0).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_aggregate_type_is_registered_once_and_found_by_name() {
        let mut names = AGGREGATE_TYPES.to_vec();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "a type registered twice");
        assert_eq!(
            aggregate("organization").map(|kind| kind.name),
            Some("organization")
        );
        assert!(aggregate("nope").is_none());
    }

    #[test]
    fn a_fold_applies_decodable_events_and_refuses_the_rest() {
        let Some(kind) = aggregate("organization") else {
            panic!("organization is registered");
        };
        let mut fold = kind.fold();
        assert!(!fold.apply("NoSuchEvent", &Value::Null));
        assert_eq!(
            fold.state(),
            serde_json::to_value(Organization::default()).unwrap()
        );
    }
}
