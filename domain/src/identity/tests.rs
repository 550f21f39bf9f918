//! Given events, when a command, then events or an error: the rules of a user.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::user::{FIRST_LOCK_SECS, LOCK_AFTER_FAILURES, MAX_LOCK_SECS};
use super::*;
use crate::ids::{ProjectId, SessionId, UserId};
use crate::unique::{UniqueValue, UniqueValues};
use crate::values::Name;

type Framework = TestFramework<User>;

fn framework() -> Framework {
    TestFramework::with(())
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap()
}

fn secret(s: &str) -> SecretHash {
    SecretHash::new(s.to_owned())
}

fn hash(s: &str) -> PasswordHash {
    PasswordHash::new(format!("$argon2id$v=19$m=19456,t=2,p=1${s}"))
}

struct Alice {
    id: UserId,
    session: SessionId,
}

impl Alice {
    fn new() -> Self {
        Self {
            id: UserId::new(),
            session: SessionId::new(),
        }
    }

    fn invited(&self) -> UserEvent {
        UserEvent::UserInvited {
            user_id: self.id,
            email: Email::parse("alice@meghna.com.bd").unwrap(),
            name: Name::parse("Alice Rahman").unwrap(),
            roles: vec![RoleGrant::tenant_wide(Role::Accountant)],
            invitation: OneTime {
                hash: secret("invite"),
                expires_at: t0() + Duration::days(7),
            },
        }
    }

    fn accepted(&self) -> UserEvent {
        UserEvent::InvitationAccepted {
            user_id: self.id,
            password_hash: hash("one"),
        }
    }

    fn active(&self) -> Vec<UserEvent> {
        vec![self.invited(), self.accepted()]
    }

    fn signed_in(&self) -> UserEvent {
        UserEvent::SignedIn {
            session_id: self.session,
            refresh_hash: secret("r1"),
            at: t0(),
            expires_at: t0() + Duration::days(14),
        }
    }

    fn sign_in(&self, password_matches: bool, now: DateTime<Utc>) -> UserCommand {
        UserCommand::SignIn {
            password_matches,
            session_id: self.session,
            refresh: secret("r1"),
            now,
            expires_at: now + Duration::days(14),
        }
    }

    fn refresh(&self, presented: &str, next: &str, now: DateTime<Utc>) -> UserCommand {
        UserCommand::Refresh {
            session_id: self.session,
            presented: secret(presented),
            next: secret(next),
            now,
            expires_at: now + Duration::days(14),
        }
    }
}

fn failed(reason: SignInFailure, failures: u32, at: DateTime<Utc>) -> UserEvent {
    UserEvent::SignInFailed {
        reason,
        failures,
        at,
    }
}

/// Failed sign-ins with a wrong password at `at`, enough to lock for `lock_secs`.
fn failures_until_locked(at: DateTime<Utc>, lock_secs: i64) -> Vec<UserEvent> {
    let mut events: Vec<UserEvent> = (1..=LOCK_AFTER_FAILURES)
        .map(|n| failed(SignInFailure::WrongPassword, n, at))
        .collect();
    events.push(UserEvent::AccountLocked {
        until: at + Duration::seconds(lock_secs),
        at,
    });
    events
}

#[test]
fn an_invitation_claims_the_address_and_is_accepted_once_before_it_expires() {
    let alice = Alice::new();
    assert_eq!(
        User::unique_values(&alice.invited()),
        vec![UniqueValue {
            scope: "user.email",
            value: "alice@meghna.com.bd".into()
        }]
    );
    let accept = |invitation: &str, now| UserCommand::AcceptInvitation {
        invitation: secret(invitation),
        password: hash("one"),
        now,
    };
    framework()
        .given(vec![alice.invited()])
        .when(accept("invite", t0() + Duration::days(1)))
        .then_expect_events(vec![alice.accepted()]);
    framework()
        .given(vec![alice.invited()])
        .when(accept("guess", t0()))
        .then_expect_error(UserError::InvitationInvalid);
    framework()
        .given(vec![alice.invited()])
        .when(accept("invite", t0() + Duration::days(7)))
        .then_expect_error(UserError::InvitationInvalid);
    framework()
        .given(alice.active())
        .when(accept("invite", t0()))
        .then_expect_error(UserError::InvitationInvalid);
}

#[test]
fn a_user_is_invited_once_and_a_role_has_one_scope() {
    let alice = Alice::new();
    let UserEvent::UserInvited {
        user_id,
        email,
        name,
        roles,
        invitation,
    } = alice.invited()
    else {
        unreachable!()
    };
    let invite = UserCommand::Invite {
        user_id,
        email,
        name,
        roles,
        invitation,
    };
    framework()
        .given(vec![alice.invited()])
        .when(invite.clone())
        .then_expect_error(UserError::AlreadyExists);
    let UserCommand::Invite {
        user_id,
        email,
        name,
        invitation,
        ..
    } = invite
    else {
        unreachable!()
    };
    let both = RoleGrant {
        role: Role::SiteEngineer,
        organization_id: Some(crate::ids::OrganizationId::new()),
        project_id: Some(ProjectId::new()),
    };
    framework()
        .given_no_previous_events()
        .when(UserCommand::Invite {
            user_id,
            email,
            name,
            roles: vec![both],
            invitation,
        })
        .then_expect_error(UserError::InvalidScope);
}

#[test]
fn roles_are_assigned_and_removed_once_each_and_outdate_tokens() {
    let alice = Alice::new();
    let engineer = RoleGrant {
        role: Role::SiteEngineer,
        organization_id: None,
        project_id: Some(ProjectId::new()),
    };
    let assigned = UserEvent::RoleAssigned {
        user_id: alice.id,
        grant: engineer,
    };
    assert!(assigned.outdates_tokens());
    framework()
        .given(alice.active())
        .when(UserCommand::AssignRole(engineer))
        .then_expect_events(vec![assigned.clone()]);
    let mut given = alice.active();
    given.push(assigned);
    framework()
        .given(given.clone())
        .when(UserCommand::AssignRole(engineer))
        .then_expect_error(UserError::RoleAlreadyAssigned(engineer));
    framework()
        .given(given)
        .when(UserCommand::RemoveRole(engineer))
        .then_expect_events(vec![UserEvent::RoleRemoved {
            user_id: alice.id,
            grant: engineer,
        }]);
    framework()
        .given(alice.active())
        .when(UserCommand::RemoveRole(engineer))
        .then_expect_error(UserError::RoleNotAssigned(engineer));
}

#[test]
fn the_right_password_signs_in_and_a_wrong_one_is_recorded() {
    let alice = Alice::new();
    framework()
        .given(alice.active())
        .when(alice.sign_in(true, t0()))
        .then_expect_events(vec![alice.signed_in()]);
    framework()
        .given(alice.active())
        .when(alice.sign_in(false, t0()))
        .then_expect_events(vec![failed(SignInFailure::WrongPassword, 1, t0())]);
    framework()
        .given(vec![alice.invited()])
        .when(alice.sign_in(true, t0()))
        .then_expect_events(vec![failed(SignInFailure::NotActivated, 1, t0())]);
    let mut disabled = alice.active();
    disabled.push(UserEvent::UserDisabled { user_id: alice.id });
    framework()
        .given(disabled)
        .when(alice.sign_in(true, t0()))
        .then_expect_events(vec![failed(SignInFailure::Disabled, 1, t0())]);
}

#[test]
fn repeated_failures_lock_for_a_growing_delay_and_a_lock_holds_even_the_right_password() {
    let alice = Alice::new();
    let mut given = alice.active();
    given.extend((1..LOCK_AFTER_FAILURES).map(|n| failed(SignInFailure::WrongPassword, n, t0())));
    framework()
        .given(given)
        .when(alice.sign_in(false, t0()))
        .then_expect_events(vec![
            failed(SignInFailure::WrongPassword, LOCK_AFTER_FAILURES, t0()),
            UserEvent::AccountLocked {
                until: t0() + Duration::seconds(FIRST_LOCK_SECS),
                at: t0(),
            },
        ]);

    let mut locked = alice.active();
    locked.extend(failures_until_locked(t0(), FIRST_LOCK_SECS));
    let during = t0() + Duration::seconds(FIRST_LOCK_SECS - 1);
    framework()
        .given(locked.clone())
        .when(alice.sign_in(true, during))
        .then_expect_events(vec![failed(SignInFailure::Locked, 0, during)]);

    // After the lock, five more failures lock for twice as long.
    let after = t0() + Duration::seconds(FIRST_LOCK_SECS);
    let mut again = locked.clone();
    again.extend((1..LOCK_AFTER_FAILURES).map(|n| failed(SignInFailure::WrongPassword, n, after)));
    framework()
        .given(again)
        .when(alice.sign_in(false, after))
        .then_expect_events(vec![
            failed(SignInFailure::WrongPassword, LOCK_AFTER_FAILURES, after),
            UserEvent::AccountLocked {
                until: after + Duration::seconds(2 * FIRST_LOCK_SECS),
                at: after,
            },
        ]);

    // The right password after the lock signs in, and resets the delay.
    let mut user = User::default();
    for event in locked {
        cqrs_es::Aggregate::apply(&mut user, event);
    }
    assert!(user.sign_in_refusal(true, during).is_some());
    assert_eq!(user.sign_in_refusal(true, after), None);
}

#[test]
fn the_lock_never_exceeds_an_hour() {
    let alice = Alice::new();
    let mut user = User::default();
    for event in alice.active() {
        cqrs_es::Aggregate::apply(&mut user, event);
    }
    let mut now = t0();
    for _ in 0..20 {
        for _ in 0..LOCK_AFTER_FAILURES {
            for event in user.decide(alice.sign_in(false, now)).unwrap() {
                cqrs_es::Aggregate::apply(&mut user, event);
            }
        }
        let until = user.locked_until().unwrap();
        assert!(until - now <= Duration::seconds(MAX_LOCK_SECS));
        now = until;
    }
    assert_eq!(
        user.locked_until().unwrap() - (now - Duration::seconds(MAX_LOCK_SECS)),
        Duration::seconds(MAX_LOCK_SECS)
    );
}

#[test]
fn an_unknown_address_fails_and_locks_like_an_account() {
    let alice = Alice::new();
    framework()
        .given_no_previous_events()
        .when(alice.sign_in(true, t0()))
        .then_expect_events(vec![failed(SignInFailure::UnknownUser, 1, t0())]);
    let given: Vec<UserEvent> = (1..LOCK_AFTER_FAILURES)
        .map(|n| failed(SignInFailure::UnknownUser, n, t0()))
        .collect();
    framework()
        .given(given)
        .when(alice.sign_in(false, t0()))
        .then_expect_events(vec![
            failed(SignInFailure::UnknownUser, LOCK_AFTER_FAILURES, t0()),
            UserEvent::AccountLocked {
                until: t0() + Duration::seconds(FIRST_LOCK_SECS),
                at: t0(),
            },
        ]);
}

#[test]
fn a_refresh_token_is_exchanged_once_and_its_reuse_ends_the_session() {
    let alice = Alice::new();
    let mut given = alice.active();
    given.push(alice.signed_in());
    let later = t0() + Duration::minutes(20);
    let refreshed = UserEvent::SessionRefreshed {
        session_id: alice.session,
        refresh_hash: secret("r2"),
        at: later,
        expires_at: later + Duration::days(14),
    };
    framework()
        .given(given.clone())
        .when(alice.refresh("r1", "r2", later))
        .then_expect_events(vec![refreshed.clone()]);
    framework()
        .given(given.clone())
        .when(alice.refresh("never-issued", "r2", later))
        .then_expect_error(UserError::SessionInvalid);

    given.push(refreshed);
    let revoked = UserEvent::SessionRevoked {
        session_id: alice.session,
        reason: RevocationReason::RefreshTokenReused,
    };
    assert_eq!(revoked.ended_session(), Some(alice.session));
    framework()
        .given(given.clone())
        .when(alice.refresh("r1", "r3", later))
        .then_expect_events(vec![revoked.clone()]);
    // After the reuse, even the newest token is refused.
    given.push(revoked);
    framework()
        .given(given)
        .when(alice.refresh("r2", "r3", later))
        .then_expect_error(UserError::SessionInvalid);
}

#[test]
fn sessions_end_on_expiry_sign_out_password_change_and_disable() {
    let alice = Alice::new();
    let mut signed_in = alice.active();
    signed_in.push(alice.signed_in());
    framework()
        .given(signed_in.clone())
        .when(alice.refresh("r1", "r2", t0() + Duration::days(14)))
        .then_expect_error(UserError::SessionInvalid);
    framework()
        .given(signed_in.clone())
        .when(UserCommand::SignOut {
            session_id: alice.session,
        })
        .then_expect_events(vec![UserEvent::SignedOut {
            session_id: alice.session,
        }]);
    let ending = [
        UserEvent::SignedOut {
            session_id: alice.session,
        },
        UserEvent::PasswordChanged {
            user_id: alice.id,
            password_hash: hash("two"),
        },
        UserEvent::UserDisabled { user_id: alice.id },
    ];
    for event in ending {
        let mut given = signed_in.clone();
        given.push(event);
        framework()
            .given(given)
            .when(alice.refresh("r1", "r2", t0()))
            .then_expect_error(UserError::SessionInvalid);
    }
    // Signing out of a session that already ended records nothing.
    framework()
        .given(alice.active())
        .when(UserCommand::SignOut {
            session_id: alice.session,
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_password_reset_works_once_before_it_expires_and_unlocks() {
    let alice = Alice::new();
    let mut given = alice.active();
    given.extend(failures_until_locked(t0(), FIRST_LOCK_SECS));
    given.push(UserEvent::PasswordResetIssued {
        user_id: alice.id,
        reset: OneTime {
            hash: secret("reset"),
            expires_at: t0() + Duration::hours(1),
        },
    });
    let reset = |token: &str, now| UserCommand::ResetPassword {
        reset: secret(token),
        password: hash("two"),
        now,
    };
    let done = UserEvent::PasswordReset {
        user_id: alice.id,
        password_hash: hash("two"),
    };
    assert!(done.outdates_tokens());
    framework()
        .given(given.clone())
        .when(reset("reset", t0()))
        .then_expect_events(vec![done.clone()]);
    framework()
        .given(given.clone())
        .when(reset("reset", t0() + Duration::hours(1)))
        .then_expect_error(UserError::ResetInvalid);
    let mut user = User::default();
    for event in given.into_iter().chain([done]) {
        cqrs_es::Aggregate::apply(&mut user, event);
    }
    assert_eq!(user.sign_in_refusal(true, t0()), None, "the reset unlocks");
}

#[test]
fn disable_and_enable_alternate() {
    let alice = Alice::new();
    let disabled = UserEvent::UserDisabled { user_id: alice.id };
    assert!(disabled.outdates_tokens());
    framework()
        .given(alice.active())
        .when(UserCommand::Disable)
        .then_expect_events(vec![disabled.clone()]);
    framework()
        .given(alice.active())
        .when(UserCommand::Enable)
        .then_expect_error(UserError::NotDisabled);
    let mut given = alice.active();
    given.push(disabled);
    framework()
        .given(given.clone())
        .when(UserCommand::Disable)
        .then_expect_error(UserError::AlreadyDisabled);
    framework()
        .given(given.clone())
        .when(UserCommand::ChangePassword {
            password: hash("x"),
        })
        .then_expect_error(UserError::NotActive);
    framework()
        .given(given)
        .when(UserCommand::Enable)
        .then_expect_events(vec![UserEvent::UserEnabled { user_id: alice.id }]);
}

#[test]
fn the_session_ending_event_names_are_the_events_own() {
    let session_id = SessionId::new();
    let ending = [
        UserEvent::SignedOut { session_id },
        UserEvent::SessionRevoked {
            session_id,
            reason: RevocationReason::RefreshTokenReused,
        },
    ];
    let names: Vec<String> = ending
        .iter()
        .map(cqrs_es::DomainEvent::event_type)
        .collect();
    assert_eq!(names, SESSION_ENDING_EVENTS);
    assert!(
        ending
            .iter()
            .all(|event| event.ended_session() == Some(session_id))
    );
    let signed_in = UserEvent::SignedIn {
        session_id,
        refresh_hash: secret("r"),
        at: t0(),
        expires_at: t0(),
    };
    assert_eq!(signed_in.ended_session(), None);
    assert!(!signed_in.outdates_tokens());
}
