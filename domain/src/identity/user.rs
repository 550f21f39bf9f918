//! A tenant's user: invitation, password, roles, status, and every sign-in session, in one
//! stream per user, so that the log shows who could act as whom and when.
//!
//! Secrets never enter the log: passwords arrive hashed ([`PasswordHash`], Argon2id), one-time
//! secrets (invitations, resets, refresh tokens) as their SHA-256 ([`SecretHash`]). Checking a
//! password is the write side's work (it is slow on purpose); the aggregate is told whether it
//! matched and decides everything else: lockout, sessions, refresh-token rotation and reuse.
//!
//! Sign-in attempts for an e-mail address that belongs to no user are recorded on a stream of
//! their own (the write side derives its id from the address), which this aggregate runs like any
//! other: failures count and lock it the same way. A password guesser therefore sees the same
//! answers, lockouts included, whether or not the account exists.
//!
//! Some commands record a refusal rather than fail (a wrong password, a reused refresh token):
//! the refusal must be in the log. [`User::decide`] is public so the write side can see which
//! events a command produces before it runs it at the version it decided on.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::roles::{Role, RoleGrant};
use super::values::{Email, PasswordHash, SecretHash};
use crate::ids::{SessionId, UserId};
use crate::unique::{UniqueValue, UniqueValues};
use crate::values::Name;

/// Consecutive failed sign-ins that lock an account.
pub const LOCK_AFTER_FAILURES: u32 = 5;
/// The first lock, in seconds; each further lock before a successful sign-in doubles it.
pub const FIRST_LOCK_SECS: i64 = 60;
/// The longest lock, in seconds.
pub const MAX_LOCK_SECS: i64 = 3600;

/// The claim scope of users' e-mail addresses.
pub const EMAIL_SCOPE: &str = "user.email";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// Invited; signs in once the invitation is accepted with a password.
    Invited,
    Active,
    /// Refused at sign-in, every session ended.
    Disabled,
}

/// A one-time secret's hash and when it stops working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneTime {
    pub hash: SecretHash,
    pub expires_at: DateTime<Utc>,
}

impl OneTime {
    fn accepts(&self, presented: &SecretHash, now: DateTime<Utc>) -> bool {
        &self.hash == presented && now < self.expires_at
    }
}

/// Why a sign-in was refused. Recorded for auditors; the caller always hears the same answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInFailure {
    WrongPassword,
    /// No user has this address (the attempt is recorded on the address's own stream).
    UnknownUser,
    /// The invitation was not accepted yet.
    NotActivated,
    Disabled,
    /// Locked after repeated failures; the password was not looked at.
    Locked,
}

/// Why a session was ended by the system rather than its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    /// A refresh token that had already been exchanged was presented again: someone else holds
    /// a copy, so the whole session (every token descended from the same sign-in) ends.
    RefreshTokenReused,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    user_id: UserId,
    email: Email,
    name: Name,
    status: UserStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Session {
    refresh: SecretHash,
    /// Refresh tokens already exchanged: presenting one again is reuse.
    used: BTreeSet<SecretHash>,
    expires_at: DateTime<Utc>,
}

/// A user of one tenant.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct User {
    profile: Option<Profile>,
    roles: BTreeSet<RoleGrant>,
    password_hash: Option<PasswordHash>,
    invitation: Option<OneTime>,
    reset: Option<OneTime>,
    /// Consecutive failed sign-ins since the last success or lock.
    failures: u32,
    /// Locks since the last successful sign-in: each doubles the next.
    lockouts: u32,
    locked_until: Option<DateTime<Utc>>,
    sessions: BTreeMap<SessionId, Session>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    Invite {
        user_id: UserId,
        email: Email,
        name: Name,
        roles: Vec<RoleGrant>,
        invitation: OneTime,
    },
    ReissueInvitation {
        invitation: OneTime,
    },
    AcceptInvitation {
        invitation: SecretHash,
        password: PasswordHash,
        now: DateTime<Utc>,
    },
    /// The current password was checked by the write side.
    ChangePassword {
        password: PasswordHash,
    },
    IssuePasswordReset {
        reset: OneTime,
    },
    ResetPassword {
        reset: SecretHash,
        password: PasswordHash,
        now: DateTime<Utc>,
    },
    Disable,
    Enable,
    AssignRole(RoleGrant),
    RemoveRole(RoleGrant),
    SignIn {
        password_matches: bool,
        session_id: SessionId,
        refresh: SecretHash,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    },
    Refresh {
        session_id: SessionId,
        presented: SecretHash,
        next: SecretHash,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    },
    SignOut {
        session_id: SessionId,
    },
}

/// What happened to a user. Facts in the log forever: add fields with defaults or add variants;
/// never change the meaning of an existing one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UserEvent {
    UserInvited {
        user_id: UserId,
        email: Email,
        name: Name,
        roles: Vec<RoleGrant>,
        invitation: OneTime,
    },
    InvitationReissued {
        user_id: UserId,
        invitation: OneTime,
    },
    InvitationAccepted {
        user_id: UserId,
        password_hash: PasswordHash,
    },
    PasswordChanged {
        user_id: UserId,
        password_hash: PasswordHash,
    },
    PasswordResetIssued {
        user_id: UserId,
        reset: OneTime,
    },
    PasswordReset {
        user_id: UserId,
        password_hash: PasswordHash,
    },
    UserDisabled {
        user_id: UserId,
    },
    UserEnabled {
        user_id: UserId,
    },
    RoleAssigned {
        user_id: UserId,
        grant: RoleGrant,
    },
    RoleRemoved {
        user_id: UserId,
        grant: RoleGrant,
    },
    SignedIn {
        session_id: SessionId,
        refresh_hash: SecretHash,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    },
    SignInFailed {
        reason: SignInFailure,
        /// Consecutive failures, this one included (a refusal while locked does not count).
        failures: u32,
        at: DateTime<Utc>,
    },
    AccountLocked {
        until: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    SessionRefreshed {
        session_id: SessionId,
        refresh_hash: SecretHash,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    },
    SignedOut {
        session_id: SessionId,
    },
    SessionRevoked {
        session_id: SessionId,
        reason: RevocationReason,
    },
}

/// The event types after which every access token issued earlier is refused: the user's
/// password, roles or standing changed ([`UserEvent::outdates_tokens`]). The API asks the log for
/// these on every request.
pub const OUTDATING_EVENTS: &[&str] = &[
    "PasswordChanged",
    "PasswordReset",
    "UserDisabled",
    "RoleAssigned",
    "RoleRemoved",
];

/// The event types that end one session ([`UserEvent::ended_session`]).
pub const SESSION_ENDING_EVENTS: &[&str] = &["SignedOut", "SessionRevoked"];

impl UserEvent {
    /// True when the event ends every access token issued before it (see [`OUTDATING_EVENTS`]).
    /// Ending one session is [`Self::ended_session`].
    pub fn outdates_tokens(&self) -> bool {
        OUTDATING_EVENTS.contains(&self.event_type().as_str())
    }

    /// The session the event ends, if it ends exactly one.
    pub fn ended_session(&self) -> Option<SessionId> {
        match self {
            Self::SignedOut { session_id } | Self::SessionRevoked { session_id, .. } => {
                Some(*session_id)
            }
            _ => None,
        }
    }
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        match self {
            Self::UserInvited { .. } => "UserInvited",
            Self::InvitationReissued { .. } => "InvitationReissued",
            Self::InvitationAccepted { .. } => "InvitationAccepted",
            Self::PasswordChanged { .. } => "PasswordChanged",
            Self::PasswordResetIssued { .. } => "PasswordResetIssued",
            Self::PasswordReset { .. } => "PasswordReset",
            Self::UserDisabled { .. } => "UserDisabled",
            Self::UserEnabled { .. } => "UserEnabled",
            Self::RoleAssigned { .. } => "RoleAssigned",
            Self::RoleRemoved { .. } => "RoleRemoved",
            Self::SignedIn { .. } => "SignedIn",
            Self::SignInFailed { .. } => "SignInFailed",
            Self::AccountLocked { .. } => "AccountLocked",
            Self::SessionRefreshed { .. } => "SessionRefreshed",
            Self::SignedOut { .. } => "SignedOut",
            Self::SessionRevoked { .. } => "SessionRevoked",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UserError {
    #[error("user not found")]
    NotFound,
    #[error("the user already exists")]
    AlreadyExists,
    #[error(
        "a role is held in the whole tenant, in one organization or in one project, not in both"
    )]
    InvalidScope,
    #[error("the invitation is not valid (wrong, used or expired)")]
    InvitationInvalid,
    #[error("the user has already accepted the invitation")]
    AlreadyActive,
    #[error("the user is not active (invited but not signed up, or disabled)")]
    NotActive,
    #[error("the user is already disabled")]
    AlreadyDisabled,
    #[error("the user is not disabled")]
    NotDisabled,
    #[error("the user already holds the role {0}")]
    RoleAlreadyAssigned(RoleGrant),
    #[error("the user does not hold the role {0}")]
    RoleNotAssigned(RoleGrant),
    #[error("the reset token is not valid (wrong, used or expired)")]
    ResetInvalid,
    /// Unknown, expired or ended session, or a refresh token that was never issued.
    #[error("the session is not valid; sign in again")]
    SessionInvalid,
}

impl User {
    pub fn user_id(&self) -> Option<UserId> {
        self.profile.as_ref().map(|profile| profile.user_id)
    }

    pub fn email(&self) -> Option<&Email> {
        self.profile.as_ref().map(|profile| &profile.email)
    }

    pub fn name(&self) -> Option<&Name> {
        self.profile.as_ref().map(|profile| &profile.name)
    }

    pub fn status(&self) -> Option<UserStatus> {
        self.profile.as_ref().map(|profile| profile.status)
    }

    pub fn roles(&self) -> &BTreeSet<RoleGrant> {
        &self.roles
    }

    /// The roles the user holds in the whole tenant (scoped grants are not among them).
    pub fn tenant_roles(&self) -> BTreeSet<Role> {
        self.roles
            .iter()
            .filter(|grant| !grant.is_scoped())
            .map(|grant| grant.role)
            .collect()
    }

    /// The password hash to check a sign-in against, if the user has one.
    pub fn password_hash(&self) -> Option<&PasswordHash> {
        self.password_hash.as_ref()
    }

    pub fn locked_until(&self) -> Option<DateTime<Utc>> {
        self.locked_until
    }

    /// The sessions that have not expired by `now`, with their expiry.
    pub fn sessions(&self, now: DateTime<Utc>) -> impl Iterator<Item = (SessionId, DateTime<Utc>)> {
        self.sessions
            .iter()
            .filter(move |(_, session)| session.expires_at > now)
            .map(|(id, session)| (*id, session.expires_at))
    }

    fn active(&self) -> Result<&Profile, UserError> {
        match &self.profile {
            None => Err(UserError::NotFound),
            Some(profile) if profile.status == UserStatus::Active => Ok(profile),
            Some(_) => Err(UserError::NotActive),
        }
    }

    fn existing(&self) -> Result<&Profile, UserError> {
        self.profile.as_ref().ok_or(UserError::NotFound)
    }

    /// Why a sign-in with a password that did (or did not) match is refused at `now`, if it is.
    pub fn sign_in_refusal(
        &self,
        password_matches: bool,
        now: DateTime<Utc>,
    ) -> Option<SignInFailure> {
        if self.locked_until.is_some_and(|until| now < until) {
            return Some(SignInFailure::Locked);
        }
        let Some(profile) = &self.profile else {
            return Some(SignInFailure::UnknownUser);
        };
        if !password_matches {
            return Some(SignInFailure::WrongPassword);
        }
        match profile.status {
            UserStatus::Active => None,
            UserStatus::Invited => Some(SignInFailure::NotActivated),
            UserStatus::Disabled => Some(SignInFailure::Disabled),
        }
    }

    /// How long the next lock lasts.
    fn next_lock(&self) -> Duration {
        let doublings = self.lockouts.min(16);
        Duration::seconds((FIRST_LOCK_SECS << doublings).min(MAX_LOCK_SECS))
    }

    /// The events `command` produces, or why it is refused. Deterministic: the write side calls
    /// it to learn a command's effect, then runs the command at the same version.
    pub fn decide(&self, command: UserCommand) -> Result<Vec<UserEvent>, UserError> {
        use UserCommand as C;
        use UserEvent as E;
        match command {
            C::Invite {
                user_id,
                email,
                name,
                roles,
                invitation,
            } => {
                if self.profile.is_some() {
                    return Err(UserError::AlreadyExists);
                }
                if roles
                    .iter()
                    .any(|grant| grant.organization_id.is_some() && grant.project_id.is_some())
                {
                    return Err(UserError::InvalidScope);
                }
                let roles: BTreeSet<RoleGrant> = roles.into_iter().collect();
                Ok(vec![E::UserInvited {
                    user_id,
                    email,
                    name,
                    roles: roles.into_iter().collect(),
                    invitation,
                }])
            }
            C::ReissueInvitation { invitation } => {
                let profile = self.existing()?;
                if profile.status != UserStatus::Invited {
                    return Err(UserError::AlreadyActive);
                }
                Ok(vec![E::InvitationReissued {
                    user_id: profile.user_id,
                    invitation,
                }])
            }
            C::AcceptInvitation {
                invitation,
                password,
                now,
            } => {
                let profile = self.existing()?;
                let valid = profile.status == UserStatus::Invited
                    && self
                        .invitation
                        .as_ref()
                        .is_some_and(|pending| pending.accepts(&invitation, now));
                if !valid {
                    return Err(UserError::InvitationInvalid);
                }
                Ok(vec![E::InvitationAccepted {
                    user_id: profile.user_id,
                    password_hash: password,
                }])
            }
            C::ChangePassword { password } => Ok(vec![E::PasswordChanged {
                user_id: self.active()?.user_id,
                password_hash: password,
            }]),
            C::IssuePasswordReset { reset } => Ok(vec![E::PasswordResetIssued {
                user_id: self.active()?.user_id,
                reset,
            }]),
            C::ResetPassword {
                reset,
                password,
                now,
            } => {
                let profile = self.active().map_err(|_| UserError::ResetInvalid)?;
                if !self
                    .reset
                    .as_ref()
                    .is_some_and(|pending| pending.accepts(&reset, now))
                {
                    return Err(UserError::ResetInvalid);
                }
                Ok(vec![E::PasswordReset {
                    user_id: profile.user_id,
                    password_hash: password,
                }])
            }
            C::Disable => {
                let profile = self.existing()?;
                if profile.status == UserStatus::Disabled {
                    return Err(UserError::AlreadyDisabled);
                }
                Ok(vec![E::UserDisabled {
                    user_id: profile.user_id,
                }])
            }
            C::Enable => {
                let profile = self.existing()?;
                if profile.status != UserStatus::Disabled {
                    return Err(UserError::NotDisabled);
                }
                Ok(vec![E::UserEnabled {
                    user_id: profile.user_id,
                }])
            }
            C::AssignRole(grant) => {
                let profile = self.existing()?;
                if grant.organization_id.is_some() && grant.project_id.is_some() {
                    return Err(UserError::InvalidScope);
                }
                if self.roles.contains(&grant) {
                    return Err(UserError::RoleAlreadyAssigned(grant));
                }
                Ok(vec![E::RoleAssigned {
                    user_id: profile.user_id,
                    grant,
                }])
            }
            C::RemoveRole(grant) => {
                let profile = self.existing()?;
                if !self.roles.contains(&grant) {
                    return Err(UserError::RoleNotAssigned(grant));
                }
                Ok(vec![E::RoleRemoved {
                    user_id: profile.user_id,
                    grant,
                }])
            }
            C::SignIn {
                password_matches,
                session_id,
                refresh,
                now,
                expires_at,
            } => Ok(match self.sign_in_refusal(password_matches, now) {
                None => vec![E::SignedIn {
                    session_id,
                    refresh_hash: refresh,
                    at: now,
                    expires_at,
                }],
                Some(SignInFailure::Locked) => vec![E::SignInFailed {
                    reason: SignInFailure::Locked,
                    failures: self.failures,
                    at: now,
                }],
                Some(reason) => {
                    let failures = self.failures + 1;
                    let mut events = vec![E::SignInFailed {
                        reason,
                        failures,
                        at: now,
                    }];
                    if failures >= LOCK_AFTER_FAILURES {
                        events.push(E::AccountLocked {
                            until: now + self.next_lock(),
                            at: now,
                        });
                    }
                    events
                }
            }),
            C::Refresh {
                session_id,
                presented,
                next,
                now,
                expires_at,
            } => {
                self.active().map_err(|_| UserError::SessionInvalid)?;
                let session = self
                    .sessions
                    .get(&session_id)
                    .filter(|session| now < session.expires_at)
                    .ok_or(UserError::SessionInvalid)?;
                if session.refresh == presented {
                    Ok(vec![E::SessionRefreshed {
                        session_id,
                        refresh_hash: next,
                        at: now,
                        expires_at,
                    }])
                } else if session.used.contains(&presented) {
                    Ok(vec![E::SessionRevoked {
                        session_id,
                        reason: RevocationReason::RefreshTokenReused,
                    }])
                } else {
                    Err(UserError::SessionInvalid)
                }
            }
            C::SignOut { session_id } => Ok(if self.sessions.contains_key(&session_id) {
                vec![E::SignedOut { session_id }]
            } else {
                Vec::new()
            }),
        }
    }

    fn set_status(&mut self, status: UserStatus) {
        if let Some(profile) = &mut self.profile {
            profile.status = status;
        }
    }
}

impl Aggregate for User {
    const TYPE: &'static str = "user";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;
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
        use UserEvent as E;
        match event {
            E::UserInvited {
                user_id,
                email,
                name,
                roles,
                invitation,
            } => {
                self.profile = Some(Profile {
                    user_id,
                    email,
                    name,
                    status: UserStatus::Invited,
                });
                self.roles = roles.into_iter().collect();
                self.invitation = Some(invitation);
            }
            E::InvitationReissued { invitation, .. } => self.invitation = Some(invitation),
            E::InvitationAccepted { password_hash, .. } => {
                self.password_hash = Some(password_hash);
                self.invitation = None;
                self.set_status(UserStatus::Active);
            }
            E::PasswordChanged { password_hash, .. } => {
                self.password_hash = Some(password_hash);
                self.sessions.clear();
            }
            E::PasswordResetIssued { reset, .. } => self.reset = Some(reset),
            E::PasswordReset { password_hash, .. } => {
                self.password_hash = Some(password_hash);
                self.reset = None;
                self.sessions.clear();
                self.failures = 0;
                self.lockouts = 0;
                self.locked_until = None;
            }
            E::UserDisabled { .. } => {
                self.set_status(UserStatus::Disabled);
                self.sessions.clear();
            }
            E::UserEnabled { .. } => {
                let status = if self.password_hash.is_some() {
                    UserStatus::Active
                } else {
                    UserStatus::Invited
                };
                self.set_status(status);
            }
            E::RoleAssigned { grant, .. } => {
                self.roles.insert(grant);
            }
            E::RoleRemoved { grant, .. } => {
                self.roles.remove(&grant);
            }
            E::SignedIn {
                session_id,
                refresh_hash,
                at,
                expires_at,
            } => {
                self.sessions.retain(|_, session| session.expires_at > at);
                self.sessions.insert(
                    session_id,
                    Session {
                        refresh: refresh_hash,
                        used: BTreeSet::new(),
                        expires_at,
                    },
                );
                self.failures = 0;
                self.lockouts = 0;
                self.locked_until = None;
            }
            E::SignInFailed { failures, .. } => self.failures = failures,
            E::AccountLocked { until, .. } => {
                self.locked_until = Some(until);
                self.lockouts += 1;
                self.failures = 0;
            }
            E::SessionRefreshed {
                session_id,
                refresh_hash,
                expires_at,
                ..
            } => {
                if let Some(session) = self.sessions.get_mut(&session_id) {
                    let used = std::mem::replace(&mut session.refresh, refresh_hash);
                    session.used.insert(used);
                    session.expires_at = expires_at;
                }
            }
            E::SignedOut { session_id } | E::SessionRevoked { session_id, .. } => {
                self.sessions.remove(&session_id);
            }
        }
    }
}

impl UniqueValues for User {
    fn unique_values(event: &UserEvent) -> Vec<UniqueValue> {
        match event {
            UserEvent::UserInvited { email, .. } => vec![UniqueValue {
                scope: EMAIL_SCOPE,
                value: email.as_str().to_owned(),
            }],
            _ => Vec::new(),
        }
    }
}
