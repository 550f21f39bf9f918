//! The value types of identity: tenant slugs, e-mail addresses, the password policy, and the
//! hashes that stand in the log for secrets (passwords, invitations, refresh tokens).

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why an identity value was refused, worded for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdentityValueError {
    #[error(
        "a slug is 3 to 40 characters: lower-case letters a-z, digits and '-', starting and ending with a letter or digit"
    )]
    InvalidSlug,
    #[error("must be an e-mail address such as name@example.com (at most 254 characters)")]
    InvalidEmail,
    #[error("must be at least {min} characters long")]
    PasswordTooShort { min: usize },
    #[error("must be at most {max} characters long")]
    PasswordTooLong { max: usize },
    #[error("is one of the 10,000 most common passwords; choose another")]
    CommonPassword,
}

/// A tenant's short name in URLs and at sign-in (`meghna-builders`): unique among all tenants.
/// Stored in lower case, so `Meghna` and `meghna` are the same slug.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    pub const PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9-]{1,38}[A-Za-z0-9]$";

    pub fn parse(input: &str) -> Result<Self, IdentityValueError> {
        let slug = input.to_ascii_lowercase();
        let bytes = slug.as_bytes();
        let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let valid = (3..=40).contains(&bytes.len())
            && edge(bytes.first())
            && edge(bytes.last())
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if valid {
            Ok(Self(slug))
        } else {
            Err(IdentityValueError::InvalidSlug)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An e-mail address, stored in lower case: a tenant's users are unique by address, whatever
/// its case. Checked for shape only (one `@`, a dotted domain, no white space); whether it
/// receives mail is the inviter's business.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(input: &str) -> Result<Self, IdentityValueError> {
        let email = input.to_lowercase();
        let shaped = || -> Option<()> {
            if email.len() > Self::MAX_LEN
                || email.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return None;
            }
            let (local, domain) = email.split_once('@')?;
            let labels: Vec<&str> = domain.split('.').collect();
            let fine = !local.is_empty()
                && local.len() <= 64
                && !domain.contains('@')
                && labels.len() >= 2
                && labels.iter().all(|label| {
                    !label.is_empty() && !label.starts_with('-') && !label.ends_with('-')
                });
            fine.then_some(())
        };
        match shaped() {
            Some(()) => Ok(Self(email)),
            None => Err(IdentityValueError::InvalidEmail),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The 10,000 most common passwords (OWASP SecLists, `10-million-password-list-top-10000`,
/// CC BY-SA 3.0), compared in lower case.
const COMMON_PASSWORDS_LIST: &str = include_str!("common_passwords.txt");

static COMMON_PASSWORDS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    COMMON_PASSWORDS_LIST
        .lines()
        .map(str::to_lowercase)
        .collect()
});

/// A password someone chose, before it is hashed: it passed the policy. Never stored, never
/// logged, never printed (`Debug` hides it).
#[derive(Clone, PartialEq, Eq)]
pub struct NewPassword(String);

impl NewPassword {
    /// The shortest password accepted, in characters.
    pub const MIN_LEN: usize = 12;
    /// The longest, in characters: hashing cost must not be the caller's to choose.
    pub const MAX_LEN: usize = 256;

    pub fn parse(input: &str) -> Result<Self, IdentityValueError> {
        let length = input.chars().count();
        if length < Self::MIN_LEN {
            return Err(IdentityValueError::PasswordTooShort { min: Self::MIN_LEN });
        }
        if length > Self::MAX_LEN {
            return Err(IdentityValueError::PasswordTooLong { max: Self::MAX_LEN });
        }
        if COMMON_PASSWORDS.contains(input.to_lowercase().as_str()) {
            return Err(IdentityValueError::CommonPassword);
        }
        Ok(Self(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(..)")
    }
}

/// A password hash in the PHC string format (`$argon2id$v=19$m=…`). The write side hashes; the
/// domain only keeps it. Shown to nobody: `Debug` hides it and the audit API redacts it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn new(phc: String) -> Self {
        Self(phc)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

/// The SHA-256 (hex) of a random one-time secret: an invitation, a password reset or a refresh
/// token. The secret goes to its holder once; the log keeps only this.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretHash(String);

impl SecretHash {
    pub fn new(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use regex::Regex;

    #[test]
    fn slugs_are_lower_case_letters_digits_and_inner_hyphens() {
        assert_eq!(
            Slug::parse("Meghna-Builders").unwrap().as_str(),
            "meghna-builders"
        );
        for bad in [
            "ab",
            "-abc",
            "abc-",
            "a b c",
            "ábc",
            &"a".repeat(41),
            "a_bc",
        ] {
            assert_eq!(
                Slug::parse(bad),
                Err(IdentityValueError::InvalidSlug),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn the_slug_pattern_agrees_with_parse(input in "[A-Za-z0-9_ -]{0,44}") {
            let pattern = Regex::new(Slug::PATTERN).unwrap();
            prop_assert_eq!(pattern.is_match(&input), Slug::parse(&input).is_ok());
        }
    }

    #[test]
    fn emails_are_case_insensitive_and_shaped() {
        assert_eq!(
            Email::parse("Rahim.Uddin@Meghna.COM.bd").unwrap().as_str(),
            "rahim.uddin@meghna.com.bd"
        );
        for bad in [
            "",
            "rahim",
            "rahim@",
            "@meghna.com",
            "rahim@meghna",
            "rahim@@meghna.com",
            "ra him@meghna.com",
            "rahim@meghna..com",
            "rahim@-meghna.com",
        ] {
            assert_eq!(
                Email::parse(bad),
                Err(IdentityValueError::InvalidEmail),
                "{bad}"
            );
        }
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(190));
        assert_eq!(Email::parse(&long), Err(IdentityValueError::InvalidEmail));
    }

    #[test]
    fn the_password_policy_counts_characters_and_refuses_common_ones() {
        assert_eq!(
            NewPassword::parse("short"),
            Err(IdentityValueError::PasswordTooShort { min: 12 })
        );
        // Twelve characters, counted as characters (Bangla letters are 3 bytes each).
        assert!(NewPassword::parse("আমার-গোপন-কথা").is_ok());
        assert_eq!(
            NewPassword::parse(&"x".repeat(257)),
            Err(IdentityValueError::PasswordTooLong { max: 256 })
        );
        // In the list, in any case.
        for common in ["qwerty123456", "1qaz2wsx3edc", "QWERTY123456"] {
            assert_eq!(
                NewPassword::parse(common),
                Err(IdentityValueError::CommonPassword),
                "{common}"
            );
        }
        assert!(NewPassword::parse("correct horse battery staple").is_ok());
        assert_eq!(
            format!("{:?}", NewPassword::parse("a long secret phrase").unwrap()),
            "NewPassword(..)"
        );
    }

    #[test]
    fn the_list_holds_ten_thousand_passwords() {
        assert_eq!(COMMON_PASSWORDS_LIST.lines().count(), 10_000);
        assert!(COMMON_PASSWORDS.contains("password"));
    }
}
