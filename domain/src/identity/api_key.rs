//! API keys for machine clients (service accounts): issued by an administrator with a name, roles
//! and an optional expiry, shown once, kept as the SHA-256 of their secret, revocable. One stream
//! per key.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use super::roles::{Role, RoleGrant};
use super::values::SecretHash;
use crate::values::Name;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Issued {
    key_id: Uuid,
    name: Name,
    roles: Vec<RoleGrant>,
    secret_hash: SecretHash,
    expires_at: Option<DateTime<Utc>>,
    revoked: bool,
}

/// One API key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ApiKey {
    issued: Option<Issued>,
}

/// Why a presented key does not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    Unknown,
    WrongSecret,
    Revoked,
    Expired,
}

impl ApiKey {
    /// The key's tenant-wide roles, if `secret_hash` is its secret's and it is usable at `now`.
    /// The hashes are compared in constant time by the caller's choice of input: both are
    /// SHA-256 hex of the same length.
    pub fn authenticate(
        &self,
        secret_hash: &SecretHash,
        now: DateTime<Utc>,
    ) -> Result<Vec<Role>, KeyRefusal> {
        let issued = self.issued.as_ref().ok_or(KeyRefusal::Unknown)?;
        if !constant_time_eq(
            issued.secret_hash.as_str().as_bytes(),
            secret_hash.as_str().as_bytes(),
        ) {
            return Err(KeyRefusal::WrongSecret);
        }
        if issued.revoked {
            return Err(KeyRefusal::Revoked);
        }
        if issued
            .expires_at
            .is_some_and(|expires_at| expires_at <= now)
        {
            return Err(KeyRefusal::Expired);
        }
        Ok(issued
            .roles
            .iter()
            .filter(|grant| !grant.is_scoped())
            .map(|grant| grant.role)
            .collect())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Clone, PartialEq)]
pub enum ApiKeyCommand {
    Issue {
        key_id: Uuid,
        name: Name,
        roles: Vec<RoleGrant>,
        secret_hash: SecretHash,
        expires_at: Option<DateTime<Utc>>,
    },
    Revoke,
}

/// What happened to an API key. Facts in the log forever.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ApiKeyEvent {
    ApiKeyIssued {
        key_id: Uuid,
        name: Name,
        roles: Vec<RoleGrant>,
        secret_hash: SecretHash,
        expires_at: Option<DateTime<Utc>>,
    },
    ApiKeyRevoked {
        key_id: Uuid,
    },
}

impl DomainEvent for ApiKeyEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ApiKeyIssued { .. } => "ApiKeyIssued",
            Self::ApiKeyRevoked { .. } => "ApiKeyRevoked",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApiKeyError {
    #[error("API key not found")]
    NotFound,
    #[error("the API key already exists")]
    AlreadyExists,
    #[error("the API key is already revoked")]
    AlreadyRevoked,
    #[error("an API key's roles hold in the whole tenant; scoped roles are for users")]
    ScopedRole,
}

impl ApiKey {
    fn decide(&self, command: ApiKeyCommand) -> Result<Vec<ApiKeyEvent>, ApiKeyError> {
        match (command, &self.issued) {
            (ApiKeyCommand::Issue { .. }, Some(_)) => Err(ApiKeyError::AlreadyExists),
            (
                ApiKeyCommand::Issue {
                    key_id,
                    name,
                    roles,
                    secret_hash,
                    expires_at,
                },
                None,
            ) => {
                if roles.iter().any(RoleGrant::is_scoped) {
                    return Err(ApiKeyError::ScopedRole);
                }
                Ok(vec![ApiKeyEvent::ApiKeyIssued {
                    key_id,
                    name,
                    roles,
                    secret_hash,
                    expires_at,
                }])
            }
            (ApiKeyCommand::Revoke, None) => Err(ApiKeyError::NotFound),
            (ApiKeyCommand::Revoke, Some(issued)) if issued.revoked => {
                Err(ApiKeyError::AlreadyRevoked)
            }
            (ApiKeyCommand::Revoke, Some(issued)) => Ok(vec![ApiKeyEvent::ApiKeyRevoked {
                key_id: issued.key_id,
            }]),
        }
    }
}

impl Aggregate for ApiKey {
    const TYPE: &'static str = "api_key";
    type Command = ApiKeyCommand;
    type Event = ApiKeyEvent;
    type Error = ApiKeyError;
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
            ApiKeyEvent::ApiKeyIssued {
                key_id,
                name,
                roles,
                secret_hash,
                expires_at,
            } => {
                self.issued = Some(Issued {
                    key_id,
                    name,
                    roles,
                    secret_hash,
                    expires_at,
                    revoked: false,
                });
            }
            ApiKeyEvent::ApiKeyRevoked { .. } => {
                if let Some(issued) = &mut self.issued {
                    issued.revoked = true;
                }
            }
        }
    }
}

impl crate::unique::UniqueValues for ApiKey {}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use cqrs_es::test::TestFramework;

    use super::*;

    fn issued(key_id: Uuid, expires_at: Option<DateTime<Utc>>) -> ApiKeyEvent {
        ApiKeyEvent::ApiKeyIssued {
            key_id,
            name: Name::parse("ERP sync").unwrap(),
            roles: vec![RoleGrant::tenant_wide(Role::Accountant)],
            secret_hash: SecretHash::new("ab".repeat(32)),
            expires_at,
        }
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap()
    }

    #[test]
    fn a_key_is_issued_once_revoked_once_and_holds_tenant_wide_roles_only() {
        let key_id = Uuid::now_v7();
        let ApiKeyEvent::ApiKeyIssued {
            name,
            roles,
            secret_hash,
            expires_at,
            ..
        } = issued(key_id, None)
        else {
            unreachable!()
        };
        let issue = ApiKeyCommand::Issue {
            key_id,
            name,
            roles,
            secret_hash,
            expires_at,
        };
        TestFramework::<ApiKey>::with(())
            .given_no_previous_events()
            .when(issue.clone())
            .then_expect_events(vec![issued(key_id, None)]);
        TestFramework::<ApiKey>::with(())
            .given(vec![issued(key_id, None)])
            .when(issue.clone())
            .then_expect_error(ApiKeyError::AlreadyExists);
        let ApiKeyCommand::Issue {
            name, secret_hash, ..
        } = issue
        else {
            unreachable!()
        };
        TestFramework::<ApiKey>::with(())
            .given_no_previous_events()
            .when(ApiKeyCommand::Issue {
                key_id,
                name,
                roles: vec![RoleGrant {
                    role: Role::SiteEngineer,
                    organization_id: None,
                    project_id: Some(crate::ids::ProjectId::new()),
                }],
                secret_hash,
                expires_at: None,
            })
            .then_expect_error(ApiKeyError::ScopedRole);
        TestFramework::<ApiKey>::with(())
            .given(vec![issued(key_id, None)])
            .when(ApiKeyCommand::Revoke)
            .then_expect_events(vec![ApiKeyEvent::ApiKeyRevoked { key_id }]);
        TestFramework::<ApiKey>::with(())
            .given(vec![
                issued(key_id, None),
                ApiKeyEvent::ApiKeyRevoked { key_id },
            ])
            .when(ApiKeyCommand::Revoke)
            .then_expect_error(ApiKeyError::AlreadyRevoked);
    }

    #[test]
    fn a_key_authenticates_with_its_secret_until_it_expires_or_is_revoked() {
        let key_id = Uuid::now_v7();
        let mut key = ApiKey::default();
        let right = SecretHash::new("ab".repeat(32));
        let wrong = SecretHash::new("cd".repeat(32));
        assert_eq!(key.authenticate(&right, t0()), Err(KeyRefusal::Unknown));
        key.apply(issued(key_id, Some(t0() + Duration::days(30))));
        assert_eq!(key.authenticate(&right, t0()), Ok(vec![Role::Accountant]));
        assert_eq!(key.authenticate(&wrong, t0()), Err(KeyRefusal::WrongSecret));
        assert_eq!(
            key.authenticate(&right, t0() + Duration::days(30)),
            Err(KeyRefusal::Expired)
        );
        key.apply(ApiKeyEvent::ApiKeyRevoked { key_id });
        assert_eq!(key.authenticate(&right, t0()), Err(KeyRefusal::Revoked));
    }
}
