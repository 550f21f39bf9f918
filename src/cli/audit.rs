//! `vextrus audit …`: tamper evidence for the event log. `verify` recomputes every hash chain and
//! checks every signed checkpoint; `checkpoint` signs the log's current state per tenant;
//! `keygen` and `public-key` manage the Ed25519 key checkpoints are signed with.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use sqlx::PgPool;
use vextrus_audit::checkpoint::parse_public_key_pem;
use vextrus_audit::{SigningKey, create_checkpoints, verify_chains, verify_checkpoints};
use vextrus_domain::TenantId;

use super::{DatabaseArgs, stop};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every event's hash chain and check every signed checkpoint; exit 1 and name
    /// each altered, moved or removed event if the log was tampered with.
    Verify(VerifyArgs),
    /// Record a signed checkpoint per tenant: the log's event count, stream count and a digest
    /// of every stream's head hash at the current position.
    Checkpoint(CheckpointArgs),
    /// Write a new Ed25519 signing key (PKCS#8 PEM) for checkpoints.
    Keygen {
        /// Where to write the private key (created with mode 0600; refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the public key of the configured signing key (PEM), to hand to auditors.
    PublicKey(KeyArgs),
}

/// The signing key (design.md D10: the secret itself, or a file holding it).
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The Ed25519 private key for checkpoints, PKCS#8 PEM.
    #[arg(long, env = "VEXTRUS_AUDIT_KEY", hide_env_values = true)]
    audit_key: Option<String>,

    /// A file holding the Ed25519 private key for checkpoints, PKCS#8 PEM.
    #[arg(long, env = "VEXTRUS_AUDIT_KEY_FILE", conflicts_with = "audit_key")]
    audit_key_file: Option<PathBuf>,
}

impl KeyArgs {
    /// The configured key, if any; a configured key that cannot be read is an error.
    fn load(&self) -> anyhow::Result<Option<SigningKey>> {
        let (pem, variable) = match (&self.audit_key, &self.audit_key_file) {
            (Some(pem), _) => (pem.clone(), "VEXTRUS_AUDIT_KEY"),
            (None, Some(file)) => (
                std::fs::read_to_string(file).with_context(|| {
                    format!("VEXTRUS_AUDIT_KEY_FILE: cannot read {}", file.display())
                })?,
                "VEXTRUS_AUDIT_KEY_FILE",
            ),
            (None, None) => return Ok(None),
        };
        SigningKey::from_pem(&pem)
            .map(Some)
            .with_context(|| variable.to_owned())
    }

    fn require(&self) -> anyhow::Result<SigningKey> {
        self.load()?.context(
            "no signing key: set VEXTRUS_AUDIT_KEY_FILE (or VEXTRUS_AUDIT_KEY) to an Ed25519 PKCS#8 PEM key; \
             `vextrus audit keygen --out audit-key.pem` writes one",
        )
    }
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Verify only this tenant's log and checkpoints.
    #[arg(long)]
    tenant: Option<uuid::Uuid>,

    /// The public key checkpoints must be signed with (PEM file, as `audit public-key` prints
    /// it). Defaults to the configured signing key's; without either, each checkpoint is checked
    /// against the key stored beside it, and the report says so.
    #[arg(long)]
    public_key: Option<PathBuf>,

    /// Print the report as JSON.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct CheckpointArgs {
    /// Checkpoint only this tenant.
    #[arg(long)]
    tenant: Option<uuid::Uuid>,

    #[command(flatten)]
    key: KeyArgs,
}

impl AuditCommand {
    pub async fn run(self, database: &DatabaseArgs) -> anyhow::Result<()> {
        match self {
            Self::Keygen { out } => keygen(&out),
            Self::PublicKey(key) => {
                print!("{}", key.require()?.public_key_pem());
                Ok(())
            }
            Self::Verify(args) => {
                let trusted = match &args.public_key {
                    Some(file) => {
                        let pem = std::fs::read_to_string(file).with_context(|| {
                            format!("--public-key: cannot read {}", file.display())
                        })?;
                        Some(parse_public_key_pem(&pem).context("--public-key")?)
                    }
                    None => args.key.load()?.map(|key| key.public_key().to_vec()),
                };
                let (owner, cluster) = owner_pool(database).await?;
                let result = verify(&owner, &args, trusted.as_deref()).await;
                stop(cluster).await;
                result
            }
            Self::Checkpoint(args) => {
                let key = args.key.require()?;
                let (owner, cluster) = owner_pool(database).await?;
                let result = checkpoint(&owner, &key, args.tenant.map(TenantId::from_uuid)).await;
                stop(cluster).await;
                result
            }
        }
    }
}

pub(super) async fn owner_pool(
    database: &DatabaseArgs,
) -> anyhow::Result<(PgPool, Option<vextrus::postgres::PrivatePostgres>)> {
    let (options, cluster) = database.open_for_operator().await?;
    match PgPool::connect_with(options).await {
        Ok(pool) => Ok((pool, cluster)),
        Err(error) => {
            stop(cluster).await;
            Err(error).context("connecting to the database")
        }
    }
}

fn keygen(out: &PathBuf) -> anyhow::Result<()> {
    let pem = SigningKey::generate_pem()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(out)
        .with_context(|| format!("cannot create {} (it must not exist yet)", out.display()))?;
    file.write_all(pem.as_bytes())?;
    let key = SigningKey::from_pem(&pem)?;
    eprintln!(
        "wrote a new Ed25519 signing key to {}; set VEXTRUS_AUDIT_KEY_FILE to it. Its public key, for auditors:",
        out.display()
    );
    print!("{}", key.public_key_pem());
    Ok(())
}

async fn verify(owner: &PgPool, args: &VerifyArgs, trusted: Option<&[u8]>) -> anyhow::Result<()> {
    let tenant = args.tenant.map(TenantId::from_uuid);
    let terminal = std::io::stderr().is_terminal();
    let chains = verify_chains(owner, tenant, |events| {
        if terminal && events > 0 {
            eprint!("\rchecked {events} events");
        }
    })
    .await
    .context("reading the log")?;
    if terminal {
        eprintln!();
    }
    let checkpoints = verify_checkpoints(owner, tenant, trusted)
        .await
        .context("checking checkpoints")?;
    let intact = chains.is_intact() && checkpoints.iter().all(|check| check.is_valid());
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "intact": intact,
                "tenants": chains.tenants,
                "streams": chains.streams,
                "events": chains.events,
                "findings": chains.findings,
                "checkpoints": checkpoints,
                "trusted_key": trusted.is_some(),
            }))?
        );
    } else {
        println!(
            "checked {} events in {} streams of {} tenants",
            chains.events, chains.streams, chains.tenants
        );
        for finding in &chains.findings {
            println!("{finding}");
        }
        if trusted.is_none() && !checkpoints.is_empty() {
            println!(
                "note: no trusted public key given (--public-key or the configured signing key): \
                 checkpoints are checked against the key stored with them"
            );
        }
        for check in &checkpoints {
            println!("{check}");
        }
        println!(
            "{}",
            if intact {
                format!(
                    "log intact: every hash chain holds and {} checkpoint(s) verify",
                    checkpoints.len()
                )
            } else {
                format!(
                    "LOG TAMPERED: {} event finding(s), {} checkpoint(s) failing",
                    chains.findings.len(),
                    checkpoints.iter().filter(|check| !check.is_valid()).count()
                )
            }
        );
    }
    if !intact {
        bail!("the event log failed verification");
    }
    Ok(())
}

async fn checkpoint(
    owner: &PgPool,
    key: &SigningKey,
    tenant: Option<TenantId>,
) -> anyhow::Result<()> {
    let checkpoints = create_checkpoints(owner, key, tenant)
        .await
        .context("recording checkpoints")?;
    for checkpoint in &checkpoints {
        let statement = &checkpoint.statement;
        println!(
            "checkpoint {}: tenant {} at position {}/{}: {} events in {} streams, heads {}",
            checkpoint.checkpoint_id,
            statement.tenant_id,
            statement.position.transaction_id,
            statement.position.global_position,
            statement.events,
            statement.streams,
            statement.heads_sha256
        );
    }
    println!(
        "{} checkpoint(s) signed by key {}",
        checkpoints.len(),
        vextrus_audit::chain::hex(key.public_key())
    );
    Ok(())
}
