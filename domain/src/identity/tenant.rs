//! The tenant registry: one [`Tenant`] stream per customer, kept in the platform's partition of
//! the log ([`TenantId::PLATFORM`]), so that slugs are unique among all tenants (a claim of the
//! platform) and only a platform operator changes a tenant's status.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::values::Slug;
use crate::ids::TenantId;
use crate::unique::{UniqueValue, UniqueValues};
use crate::values::Name;

/// Whether a tenant's users and keys may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    #[default]
    Active,
    /// Every token and key of the tenant is refused until it is resumed.
    Suspended,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    tenant_id: TenantId,
    name: Name,
    slug: Slug,
    status: TenantStatus,
}

/// A customer of Vextrus.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tenant {
    profile: Option<Profile>,
}

impl Tenant {
    pub fn status(&self) -> Option<TenantStatus> {
        self.profile.as_ref().map(|profile| profile.status)
    }

    pub fn name(&self) -> Option<&Name> {
        self.profile.as_ref().map(|profile| &profile.name)
    }

    pub fn slug(&self) -> Option<&Slug> {
        self.profile.as_ref().map(|profile| &profile.slug)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TenantCommand {
    Register {
        tenant_id: TenantId,
        name: Name,
        slug: Slug,
    },
    Suspend {
        reason: Name,
    },
    Resume {
        reason: Name,
    },
}

/// What happened to a tenant. Facts in the log forever: add fields with defaults or add
/// variants; never change the meaning of an existing one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TenantEvent {
    TenantRegistered {
        tenant_id: TenantId,
        name: Name,
        slug: Slug,
    },
    TenantSuspended {
        tenant_id: TenantId,
        reason: Name,
    },
    TenantResumed {
        tenant_id: TenantId,
        reason: Name,
    },
}

/// The event types that change a tenant's status, and the one that suspends it: the API asks the
/// log for the latest of these on every request.
pub const STATUS_EVENTS: &[&str] = &["TenantSuspended", "TenantResumed"];
pub const SUSPENDED_EVENT: &str = "TenantSuspended";

impl DomainEvent for TenantEvent {
    fn event_type(&self) -> String {
        match self {
            Self::TenantRegistered { .. } => "TenantRegistered",
            Self::TenantSuspended { .. } => "TenantSuspended",
            Self::TenantResumed { .. } => "TenantResumed",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TenantError {
    #[error("tenant not found")]
    NotFound,
    #[error("the tenant is already registered")]
    AlreadyRegistered,
    #[error("the tenant is already suspended")]
    AlreadySuspended,
    #[error("the tenant is not suspended")]
    NotSuspended,
}

impl Tenant {
    fn decide(&self, command: TenantCommand) -> Result<Vec<TenantEvent>, TenantError> {
        use TenantCommand as C;
        match (command, &self.profile) {
            (C::Register { .. }, Some(_)) => Err(TenantError::AlreadyRegistered),
            (
                C::Register {
                    tenant_id,
                    name,
                    slug,
                },
                None,
            ) => Ok(vec![TenantEvent::TenantRegistered {
                tenant_id,
                name,
                slug,
            }]),
            (_, None) => Err(TenantError::NotFound),
            (C::Suspend { reason }, Some(profile)) => match profile.status {
                TenantStatus::Suspended => Err(TenantError::AlreadySuspended),
                TenantStatus::Active => Ok(vec![TenantEvent::TenantSuspended {
                    tenant_id: profile.tenant_id,
                    reason,
                }]),
            },
            (C::Resume { reason }, Some(profile)) => match profile.status {
                TenantStatus::Active => Err(TenantError::NotSuspended),
                TenantStatus::Suspended => Ok(vec![TenantEvent::TenantResumed {
                    tenant_id: profile.tenant_id,
                    reason,
                }]),
            },
        }
    }
}

impl Aggregate for Tenant {
    const TYPE: &'static str = "tenant";
    type Command = TenantCommand;
    type Event = TenantEvent;
    type Error = TenantError;
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
            TenantEvent::TenantRegistered {
                tenant_id,
                name,
                slug,
            } => {
                self.profile = Some(Profile {
                    tenant_id,
                    name,
                    slug,
                    status: TenantStatus::Active,
                });
            }
            TenantEvent::TenantSuspended { .. } => self.set_status(TenantStatus::Suspended),
            TenantEvent::TenantResumed { .. } => self.set_status(TenantStatus::Active),
        }
    }
}

impl Tenant {
    fn set_status(&mut self, status: TenantStatus) {
        if let Some(profile) = &mut self.profile {
            profile.status = status;
        }
    }
}

impl UniqueValues for Tenant {
    fn unique_values(event: &TenantEvent) -> Vec<UniqueValue> {
        match event {
            TenantEvent::TenantRegistered { slug, .. } => vec![UniqueValue {
                scope: "tenant.slug",
                value: slug.as_str().to_owned(),
            }],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;

    fn registered(tenant_id: TenantId) -> TenantEvent {
        TenantEvent::TenantRegistered {
            tenant_id,
            name: Name::parse("Meghna Builders").unwrap(),
            slug: Slug::parse("meghna").unwrap(),
        }
    }

    fn reason() -> Name {
        Name::parse("unpaid invoice").unwrap()
    }

    #[test]
    fn a_tenant_registers_once_and_claims_its_slug() {
        let tenant_id = TenantId::new();
        let command = TenantCommand::Register {
            tenant_id,
            name: Name::parse("Meghna Builders").unwrap(),
            slug: Slug::parse("Meghna").unwrap(),
        };
        TestFramework::<Tenant>::with(())
            .given_no_previous_events()
            .when(command.clone())
            .then_expect_events(vec![registered(tenant_id)]);
        TestFramework::<Tenant>::with(())
            .given(vec![registered(tenant_id)])
            .when(command)
            .then_expect_error(TenantError::AlreadyRegistered);
        assert_eq!(
            Tenant::unique_values(&registered(tenant_id)),
            vec![UniqueValue {
                scope: "tenant.slug",
                value: "meghna".into()
            }]
        );
    }

    #[test]
    fn suspend_and_resume_alternate() {
        let tenant_id = TenantId::new();
        let suspended = TenantEvent::TenantSuspended {
            tenant_id,
            reason: reason(),
        };
        TestFramework::<Tenant>::with(())
            .given(vec![registered(tenant_id)])
            .when(TenantCommand::Suspend { reason: reason() })
            .then_expect_events(vec![suspended.clone()]);
        TestFramework::<Tenant>::with(())
            .given(vec![registered(tenant_id), suspended.clone()])
            .when(TenantCommand::Suspend { reason: reason() })
            .then_expect_error(TenantError::AlreadySuspended);
        TestFramework::<Tenant>::with(())
            .given(vec![registered(tenant_id)])
            .when(TenantCommand::Resume { reason: reason() })
            .then_expect_error(TenantError::NotSuspended);
        TestFramework::<Tenant>::with(())
            .given(vec![registered(tenant_id), suspended])
            .when(TenantCommand::Resume { reason: reason() })
            .then_expect_events(vec![TenantEvent::TenantResumed {
                tenant_id,
                reason: reason(),
            }]);
        TestFramework::<Tenant>::with(())
            .given_no_previous_events()
            .when(TenantCommand::Suspend { reason: reason() })
            .then_expect_error(TenantError::NotFound);
    }

    #[test]
    fn the_status_event_names_are_the_events_own() {
        let tenant_id = TenantId::new();
        let suspended = TenantEvent::TenantSuspended {
            tenant_id,
            reason: reason(),
        };
        let resumed = TenantEvent::TenantResumed {
            tenant_id,
            reason: reason(),
        };
        assert_eq!(suspended.event_type(), SUSPENDED_EVENT);
        assert_eq!(
            STATUS_EVENTS,
            [suspended.event_type(), resumed.event_type()]
        );
    }
}
