//! Password hashing: Argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane; the README says
//! so), on tokio's blocking threads so that a hash never stalls the requests beside it.
//!
//! A sign-in for an address with no password (unknown user, invitation not accepted) checks the
//! password against a hash of a random secret made at start-up, so every sign-in costs one
//! Argon2id verification and none answers faster than another.

use std::sync::LazyLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use vextrus_domain::identity::{NewPassword, PasswordHash};

use crate::error::ApiError;

/// Memory in KiB, passes and lanes (OWASP Password Storage Cheat Sheet, Argon2id, first option).
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const PASSES: u32 = 2;
pub const LANES: u32 = 1;

fn argon2() -> Result<Argon2<'static>, ApiError> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None)
        .map_err(|error| ApiError::Internal(format!("Argon2 parameters: {error}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_now(password: &str) -> Result<PasswordHash, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| PasswordHash::new(hash.to_string()))
        .map_err(|error| ApiError::Internal(format!("hashing a password: {error}")))
}

/// What unknown users' sign-ins are checked against: the hash of a random secret.
static DUMMY: LazyLock<Option<PasswordHash>> = LazyLock::new(|| {
    let secret = format!("{}{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    hash_now(&secret).ok()
});

/// The Argon2id hash of `password`, with a fresh salt.
pub async fn hash(password: NewPassword) -> Result<PasswordHash, ApiError> {
    tokio::task::spawn_blocking(move || hash_now(password.expose()))
        .await
        .map_err(|error| ApiError::Internal(format!("the hashing task failed: {error}")))?
}

/// Whether `password` matches `hash`; with no hash, checks against a dummy (and answers false)
/// so the answer takes as long.
pub async fn verify(password: String, hash: Option<PasswordHash>) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let Some(stored) = hash.or_else(|| DUMMY.clone()) else {
            return Ok(false);
        };
        let parsed = argon2::password_hash::PasswordHash::new(stored.as_str())
            .map_err(|error| ApiError::Internal(format!("a stored password hash: {error}")))?;
        let matches = argon2()?
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(known && matches)
    })
    .await
    .map_err(|error| ApiError::Internal(format!("the verifying task failed: {error}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let password = NewPassword::parse("correct horse battery staple").unwrap();
        let hash = super::hash(password).await.unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            verify("correct horse battery staple".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify("correct horse battery stapler".into(), Some(hash))
                .await
                .unwrap()
        );
        assert!(!verify("anything at all".into(), None).await.unwrap());
    }
}
