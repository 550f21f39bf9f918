//! The directory of Ed25519 keys that sign access tokens (`VEXTRUS_SIGNING_KEYS_DIR`, by default
//! `<data dir>/signing-keys`): one PKCS#8 file per key (`*.pem` or `*.der`), read in file-name
//! order; the last signs, all verify. `vextrus keys rotate` writes a new key named by the time,
//! so it sorts last; remove an old file once the access-token lifetime has passed since the
//! rotation. Every API process must see the same directory (a shared mount or a secret).

use std::io::Write;
use std::path::{Path, PathBuf};

use vextrus_api::SigningKeys;

#[derive(Debug, thiserror::Error)]
pub enum KeyDirError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Key {
        path: PathBuf,
        #[source]
        source: vextrus_api::keys::KeyError,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyDirError + '_ {
    move |source| KeyDirError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The key files of `dir`, in the order they are used (the last signs).
pub fn key_files(dir: &Path) -> Result<Vec<PathBuf>, KeyDirError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(io(dir)(error)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(io(dir))?.path();
        let is_key = path
            .extension()
            .and_then(|extension| extension.to_str())
            .is_some_and(|extension| extension == "pem" || extension == "der");
        if is_key {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The keys of `dir`.
pub fn load(dir: &Path) -> Result<SigningKeys, KeyDirError> {
    let mut ders = Vec::new();
    for path in key_files(dir)? {
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let der = SigningKeys::der_from_file(&bytes).map_err(|source| KeyDirError::Key {
            path: path.clone(),
            source,
        })?;
        // Refuse a bad file by name, rather than the whole set.
        SigningKeys::from_pkcs8(std::slice::from_ref(&der)).map_err(|source| KeyDirError::Key {
            path: path.clone(),
            source,
        })?;
        ders.push(der);
    }
    SigningKeys::from_pkcs8(&ders).map_err(|source| KeyDirError::Key {
        path: dir.to_owned(),
        source,
    })
}

/// Writes a new key into `dir` (created if needed, the file readable by its owner only); it
/// signs from the next start. Returns its path.
pub fn add_key(dir: &Path) -> Result<PathBuf, KeyDirError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let der = SigningKeys::generate_pkcs8().map_err(|source| KeyDirError::Key {
        path: dir.to_owned(),
        source,
    })?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
    let path = dir.join(format!("{stamp}.pem"));
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io(&path))?;
    file.write_all(SigningKeys::pem(&der).as_bytes())
        .map_err(io(&path))?;
    Ok(path)
}

/// The keys of `dir`, creating a first one when there is none.
pub fn load_or_create(dir: &Path) -> Result<SigningKeys, KeyDirError> {
    if key_files(dir)?.is_empty() {
        let path = add_key(dir)?;
        tracing::info!(key = %path.display(), "no signing key yet: generated one for access tokens");
    }
    load(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_key_signs_and_the_old_one_still_counts() {
        let dir = std::env::temp_dir().join(format!("vextrus-keys-{}", uuid::Uuid::new_v4()));
        let first = load_or_create(&dir).unwrap();
        assert_eq!(first.kids().len(), 1);
        assert_eq!(load_or_create(&dir).unwrap().kids(), first.kids(), "kept");
        add_key(&dir).unwrap();
        let rotated = load(&dir).unwrap();
        assert_eq!(rotated.kids().len(), 2);
        assert_eq!(rotated.kids()[0], first.kids()[0], "the old key first");
        std::fs::write(
            dir.join("broken.pem"),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let error = load(&dir).unwrap_err().to_string();
        assert!(error.contains("broken.pem"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
