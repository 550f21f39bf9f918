//! Every projection of this build, registered once (design.md D11). The server (in both fan-out
//! shapes), `vextrus project`, `vextrus replay`, `projections status`, the ops route, readiness
//! and the tests all iterate [`each`]; adding a projection is one line there.
//!
//! Projections are distinct types (each with its own rows), so the registry hands each one to a
//! [`Visit`]or, whose generic `visit` does what the caller needs with it: start a runner, a
//! Kafka worker, a replay.

use crate::activity::AuditActivity;
use crate::columns::Declaration;
use crate::finance::GeneralLedger;
use crate::invoicing::Invoicing;
use crate::organization::OrganizationHierarchy;
use crate::projection::Projection;
use crate::table::ReadModel;

/// What to do with each registered projection.
pub trait Visit {
    type Output;
    fn visit<P: Projection + Clone>(&mut self, projection: P) -> Self::Output;
}

/// Visits every projection, in registration order.
pub fn each<V: Visit>(visitor: &mut V) -> Vec<V::Output> {
    vec![
        visitor.visit(OrganizationHierarchy),
        visitor.visit(AuditActivity),
        visitor.visit(GeneralLedger),
        visitor.visit(Invoicing),
    ]
}

/// Visits the projection called `name`; refuses an unknown name, listing the known ones.
pub fn named<V: Visit>(name: &str, visitor: &mut V) -> Result<V::Output, UnknownProjection> {
    struct Only<'a, V> {
        name: &'a str,
        inner: &'a mut V,
    }
    impl<V: Visit> Visit for Only<'_, V> {
        type Output = Option<V::Output>;
        fn visit<P: Projection + Clone>(&mut self, projection: P) -> Self::Output {
            (P::NAME == self.name).then(|| self.inner.visit(projection))
        }
    }
    each(&mut Only {
        name,
        inner: visitor,
    })
    .into_iter()
    .flatten()
    .next()
    .ok_or_else(|| UnknownProjection {
        name: name.to_owned(),
        known: names(),
    })
}

/// The registered name equal to `name`; refuses an unknown one, listing the known ones.
pub fn known(name: &str) -> Result<&'static str, UnknownProjection> {
    let known = names();
    known
        .iter()
        .find(|known| **known == name)
        .copied()
        .ok_or_else(|| UnknownProjection {
            name: name.to_owned(),
            known,
        })
}

/// A projection name this build does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown projection `{name}`; the projections are: {}", known.join(", "))]
pub struct UnknownProjection {
    pub name: String,
    pub known: Vec<&'static str>,
}

/// A registered projection, described.
#[derive(Debug, Clone)]
pub struct Registered {
    pub name: &'static str,
    pub version: i32,
    pub aggregate_types: &'static [&'static str],
    pub tables: &'static [&'static str],
    /// Its row types, as the migrations must declare them.
    pub declarations: Vec<Declaration>,
}

/// Every projection, described.
pub fn catalog() -> Vec<Registered> {
    struct Describe;
    impl Visit for Describe {
        type Output = Registered;
        fn visit<P: Projection + Clone>(&mut self, _: P) -> Registered {
            Registered {
                name: P::NAME,
                version: P::VERSION,
                aggregate_types: P::AGGREGATE_TYPES,
                tables: P::TABLES,
                declarations: <P::Rows as ReadModel>::declarations(),
            }
        }
    }
    each(&mut Describe)
}

/// Every projection's name.
pub fn names() -> Vec<&'static str> {
    catalog()
        .into_iter()
        .map(|registered| registered.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tables_are_unique_and_a_name_finds_its_projection() {
        let catalog = catalog();
        let mut names = names();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), catalog.len());
        let mut tables: Vec<&str> = catalog
            .iter()
            .flat_map(|p| p.tables.iter().copied())
            .collect();
        let count = tables.len();
        tables.sort_unstable();
        tables.dedup();
        assert_eq!(tables.len(), count, "a table owned by two projections");

        struct Name;
        impl Visit for Name {
            type Output = &'static str;
            fn visit<P: Projection + Clone>(&mut self, _: P) -> &'static str {
                P::NAME
            }
        }
        assert_eq!(named("audit_activity", &mut Name), Ok("audit_activity"));
        let unknown = named("nope", &mut Name).unwrap_err().to_string();
        assert!(
            unknown.contains("organization_hierarchy, audit_activity"),
            "{unknown}"
        );
    }
}
