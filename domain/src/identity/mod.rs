//! Identity and access: the tenants themselves ([`Tenant`], in the platform's partition of the
//! log), each tenant's users ([`User`]: invitation, password, roles, lockout, sessions), API keys
//! for machine clients ([`ApiKey`]), and the built-in roles as data ([`Role`] → [`Permission`]).
//!
//! Everything that changes who may do what is an event, so the audit trail answers "who could
//! act as whom, since when, granted by whom". Secrets are never in the log: see [`user`].

mod api_key;
mod roles;
mod tenant;
pub mod user;
mod values;

#[cfg(test)]
mod tests;

pub use api_key::{ApiKey, ApiKeyCommand, ApiKeyError, ApiKeyEvent, KeyRefusal};
pub use roles::{Permission, Role, RoleGrant, Scope};
pub use tenant::{
    STATUS_EVENTS, SUSPENDED_EVENT, Tenant, TenantCommand, TenantError, TenantEvent, TenantStatus,
};
pub use user::{
    OUTDATING_EVENTS, OneTime, RevocationReason, SESSION_ENDING_EVENTS, SignInFailure, User,
    UserCommand, UserError, UserEvent, UserStatus,
};
pub use values::{Email, IdentityValueError, NewPassword, PasswordHash, SecretHash, Slug};
