//! `vextrus keys`: the Ed25519 keys that sign access tokens.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use vextrus::signing_keys;

/// Where the signing keys live.
#[derive(Debug, Clone, Args)]
pub struct SigningKeysArgs {
    /// Directory of the Ed25519 keys (PKCS#8, `*.pem` or `*.der`) that sign access tokens; the
    /// file that sorts last signs, all verify. Default: `<data dir>/signing-keys`, with a key
    /// generated on first start. Every API process must see the same keys.
    #[arg(long, env = "VEXTRUS_SIGNING_KEYS_DIR")]
    signing_keys_dir: Option<PathBuf>,
}

impl SigningKeysArgs {
    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        self.signing_keys_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("signing-keys"))
    }
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new signing key: it signs from the next start of `vextrus serve`, and tokens signed
    /// by the older keys stay valid. Remove an old key's file once the access-token lifetime has
    /// passed.
    Rotate(SigningKeysArgs),
    /// The keys, in order (the last signs), with their key ids (`kid`).
    List(SigningKeysArgs),
}

impl KeysCommand {
    pub fn run(&self, data_dir: &Path) -> anyhow::Result<()> {
        match self {
            Self::Rotate(args) => {
                let dir = args.dir(data_dir);
                let path = signing_keys::add_key(&dir).context("adding a signing key")?;
                let keys = signing_keys::load(&dir).context("reading the signing keys")?;
                println!("added {}", path.display());
                println!(
                    "kid {} signs from the next start; {} key(s) verify",
                    keys.kids().last().map_or("?", String::as_str),
                    keys.kids().len()
                );
                Ok(())
            }
            Self::List(args) => {
                let dir = args.dir(data_dir);
                let files = signing_keys::key_files(&dir).context("listing the signing keys")?;
                let keys = signing_keys::load(&dir).context("reading the signing keys")?;
                if files.is_empty() {
                    println!("no signing keys in {}", dir.display());
                }
                for (index, (file, kid)) in files.iter().zip(keys.kids()).enumerate() {
                    let role = if index + 1 == files.len() {
                        "signs"
                    } else {
                        "verifies"
                    };
                    println!("{kid}  {role:8}  {}", file.display());
                }
                Ok(())
            }
        }
    }
}
