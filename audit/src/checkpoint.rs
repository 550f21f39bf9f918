//! Signed checkpoints (`vextrus audit checkpoint`): for each tenant, a statement of the log up to
//! a position (how many events, how many streams, and a SHA-256 digest of every stream's head
//! hash), signed with Ed25519. The hash chain makes every event depend on all before it in its
//! stream, so the digest of the heads pins the whole log up to the position: someone who alters an
//! event and recomputes the chain after it changes a head, and cannot sign the new statement
//! without the key.
//!
//! The signed text is stored with the signature, so anyone holding the public key can check it
//! with standard tools (README, "Auditing"), and recompute the digest with one SQL query.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{SecondsFormat, SubsecRound, Utc};
use futures_util::TryStreamExt;
use ring::digest::{Context, SHA256};
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;
use vextrus_commands::LogPosition;
use vextrus_domain::TenantId;

use crate::chain::{hex, unhex};

/// The first line of every signed checkpoint statement.
const STATEMENT_HEADER: &str = "vextrus-audit-checkpoint-v1";

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), followed by the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the audit signing key must be an Ed25519 private key in PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), \
         as `vextrus audit keygen` or `openssl genpkey -algorithm ed25519` write it"
    )]
    NotPem,
    #[error("the audit signing key is not a valid Ed25519 PKCS#8 key: {0}")]
    Rejected(String),
    #[error(
        "the public key must be an Ed25519 public key in PEM (`-----BEGIN PUBLIC KEY-----`), as `vextrus audit public-key` prints it"
    )]
    NotPublicKeyPem,
    #[error("generating a key failed")]
    Generate,
}

/// The key checkpoints are signed with (`VEXTRUS_AUDIT_KEY` / `VEXTRUS_AUDIT_KEY_FILE`).
pub struct SigningKey(Ed25519KeyPair);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(public {})", hex(self.public_key()))
    }
}

impl SigningKey {
    /// Reads a PKCS#8 PEM private key (v1, as OpenSSL writes it, or v2).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let der = pem_body(pem, "PRIVATE KEY").ok_or(KeyError::NotPem)?;
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map(Self)
            .map_err(|error| KeyError::Rejected(error.to_string()))
    }

    /// A new random key, as PKCS#8 PEM.
    pub fn generate_pem() -> Result<String, KeyError> {
        let document =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Generate)?;
        Ok(pem("PRIVATE KEY", document.as_ref()))
    }

    /// The raw 32-byte public key.
    pub fn public_key(&self) -> &[u8] {
        self.0.public_key().as_ref()
    }

    /// The public key as SubjectPublicKeyInfo PEM, the form OpenSSL reads.
    pub fn public_key_pem(&self) -> String {
        public_key_pem(self.public_key())
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.0.sign(message).as_ref().to_vec()
    }
}

/// The SubjectPublicKeyInfo PEM of a raw Ed25519 public key.
pub fn public_key_pem(public_key: &[u8]) -> String {
    let mut der = ED25519_SPKI_PREFIX.to_vec();
    der.extend_from_slice(public_key);
    pem("PUBLIC KEY", &der)
}

/// The raw Ed25519 public key in a SubjectPublicKeyInfo PEM.
pub fn parse_public_key_pem(text: &str) -> Result<Vec<u8>, KeyError> {
    let der = pem_body(text, "PUBLIC KEY").ok_or(KeyError::NotPublicKeyPem)?;
    match der.strip_prefix(ED25519_SPKI_PREFIX.as_slice()) {
        Some(key) if key.len() == 32 => Ok(key.to_vec()),
        _ => Err(KeyError::NotPublicKeyPem),
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let body: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(body).ok()
}

/// What a checkpoint states about one tenant's log. Its [`message`](Self::message) is what is
/// signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    pub tenant_id: Uuid,
    /// Every event at or before this position, in commit order.
    pub position: LogPosition,
    pub events: i64,
    pub streams: i64,
    /// SHA-256 over the heads, see [`Heads`].
    pub heads_sha256: String,
    /// RFC 3339, UTC, microseconds.
    pub created_at: String,
}

impl Statement {
    /// The signed text: one `key: value` line per field after a header line, each ending in `\n`.
    pub fn message(&self) -> String {
        format!(
            "{STATEMENT_HEADER}\ntenant_id: {}\nposition: {}/{}\nevents: {}\nstreams: {}\nheads_sha256: {}\ncreated_at: {}\n",
            self.tenant_id,
            self.position.transaction_id,
            self.position.global_position,
            self.events,
            self.streams,
            self.heads_sha256,
            self.created_at,
        )
    }

    /// Reads a signed text back; `None` unless it is exactly what [`message`](Self::message)
    /// writes.
    pub fn parse(message: &str) -> Option<Self> {
        let mut lines = message.strip_suffix('\n')?.split('\n');
        if lines.next()? != STATEMENT_HEADER {
            return None;
        }
        let mut field = |name: &str| {
            lines
                .next()
                .and_then(|line| line.strip_prefix(name))
                .and_then(|rest| rest.strip_prefix(": "))
                .map(str::to_owned)
        };
        let tenant_id = Uuid::parse_str(&field("tenant_id")?).ok()?;
        let position = field("position")?;
        let (transaction_id, global_position) = position.split_once('/')?;
        let statement = Self {
            tenant_id,
            position: LogPosition {
                transaction_id: transaction_id.parse().ok()?,
                global_position: global_position.parse().ok()?,
            },
            events: field("events")?.parse().ok()?,
            streams: field("streams")?.parse().ok()?,
            heads_sha256: field("heads_sha256")?,
            created_at: field("created_at")?,
        };
        (lines.next().is_none() && statement.message() == message).then_some(statement)
    }
}

/// The heads of one tenant's streams at a position: each stream's last event at or before it.
/// Their digest is SHA-256 over the lines `<aggregate_type>\t<aggregate_id>\t<sequence>\t<hex
/// hash>\n`, sorted bytewise (`collate "C"`), which `psql -At -F $'\t' … | sha256sum` reproduces.
struct Heads {
    events: i64,
    streams: i64,
    sha256: String,
}

/// The SQL that lists the heads in digest order; also in the README for external auditors.
const HEADS_SQL: &str = "select aggregate_type, aggregate_id, sequence, encode(hash, 'hex') as hash
     from (select distinct on (aggregate_type, aggregate_id) aggregate_type, aggregate_id, sequence, hash
           from events
           where tenant_id = $1 and (transaction_id, global_position) <= ($2::text::xid8, $3)
           order by aggregate_type, aggregate_id, sequence desc) heads
     order by aggregate_type collate \"C\", aggregate_id collate \"C\"";

async fn heads(
    conn: &mut PgConnection,
    tenant: Uuid,
    position: LogPosition,
) -> Result<Heads, sqlx::Error> {
    let mut digest = Context::new(&SHA256);
    let mut streams = 0;
    {
        let mut rows = sqlx::query(HEADS_SQL)
            .bind(tenant)
            .bind(position.transaction_id.to_string())
            .bind(position.global_position)
            .fetch(&mut *conn);
        while let Some(row) = rows.try_next().await? {
            let aggregate_type: String = row.try_get("aggregate_type")?;
            let aggregate_id: String = row.try_get("aggregate_id")?;
            let sequence: i64 = row.try_get("sequence")?;
            let hash: String = row.try_get("hash")?;
            digest.update(
                format!("{aggregate_type}\t{aggregate_id}\t{sequence}\t{hash}\n").as_bytes(),
            );
            streams += 1;
        }
    }
    let events: i64 = sqlx::query_scalar(
        "select count(*) from events
         where tenant_id = $1 and (transaction_id, global_position) <= ($2::text::xid8, $3)",
    )
    .bind(tenant)
    .bind(position.transaction_id.to_string())
    .bind(position.global_position)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Heads {
        events,
        streams,
        sha256: hex(digest.finish().as_ref()),
    })
}

/// A recorded checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Checkpoint {
    pub checkpoint_id: i64,
    pub statement: Statement,
    /// The exact signed text.
    pub message: String,
    /// Ed25519 signature over `message`, base64.
    pub signature: String,
    /// The signer's public key, SubjectPublicKeyInfo PEM.
    pub public_key: String,
}

/// Records a signed checkpoint for `tenant`, or for every tenant with events, at the log's
/// watermark (every event committed before the oldest running transaction). `pool` must see every
/// event (the owner). Tenants without events get none.
pub async fn create_checkpoints(
    pool: &PgPool,
    key: &SigningKey,
    tenant: Option<TenantId>,
) -> Result<Vec<Checkpoint>, sqlx::Error> {
    // Microseconds, as the statement states it and the column stores it.
    let now = Utc::now().trunc_subsecs(6);
    let created_at = now.to_rfc3339_opts(SecondsFormat::Micros, true);
    let mut statements = Vec::new();
    {
        // One snapshot: every transaction below its xmin is finished and visible in it.
        let mut tx = pool.begin().await?;
        sqlx::query("set transaction isolation level repeatable read, read only")
            .execute(&mut *tx)
            .await?;
        let tenants: Vec<Uuid> = match tenant {
            Some(tenant) => vec![tenant.as_uuid()],
            None => {
                sqlx::query_scalar("select distinct tenant_id from events order by tenant_id")
                    .fetch_all(&mut *tx)
                    .await?
            }
        };
        for tenant_id in tenants {
            let last: Option<(String, i64)> = sqlx::query_as(
                "select transaction_id::text, global_position from events
                 where tenant_id = $1 and transaction_id < pg_snapshot_xmin(pg_current_snapshot())
                 order by transaction_id desc, global_position desc
                 limit 1",
            )
            .bind(tenant_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((transaction_id, global_position)) = last else {
                continue;
            };
            let position = LogPosition {
                transaction_id: transaction_id
                    .parse()
                    .map_err(|error| sqlx::Error::Decode(Box::new(error)))?,
                global_position,
            };
            let heads = heads(&mut tx, tenant_id, position).await?;
            statements.push(Statement {
                tenant_id,
                position,
                events: heads.events,
                streams: heads.streams,
                heads_sha256: heads.sha256,
                created_at: created_at.clone(),
            });
        }
        tx.commit().await?;
    }
    let mut tx = pool.begin().await?;
    let mut checkpoints = Vec::with_capacity(statements.len());
    for statement in statements {
        let message = statement.message();
        let signature = key.sign(message.as_bytes());
        let checkpoint_id: i64 = sqlx::query_scalar(
            "insert into audit_checkpoints (tenant_id, transaction_id, global_position, event_count, stream_count,
                                            heads_digest, created_at, public_key, message, signature)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             returning checkpoint_id",
        )
        .bind(statement.tenant_id)
        .bind(i64::try_from(statement.position.transaction_id).unwrap_or(i64::MAX))
        .bind(statement.position.global_position)
        .bind(statement.events)
        .bind(statement.streams)
        .bind(unhex(&statement.heads_sha256).unwrap_or_default())
        .bind(now)
        .bind(key.public_key())
        .bind(&message)
        .bind(&signature)
        .fetch_one(&mut *tx)
        .await?;
        checkpoints.push(Checkpoint {
            checkpoint_id,
            statement,
            message,
            signature: STANDARD.encode(&signature),
            public_key: key.public_key_pem(),
        });
    }
    tx.commit().await?;
    Ok(checkpoints)
}

/// What checking one checkpoint found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CheckpointOutcome {
    /// Signed by the trusted key, and the log up to its position is as it states.
    Valid,
    /// The signature does not verify against the key it names, or the text is not a statement.
    BadSignature,
    /// Validly signed, but not by the trusted key.
    UntrustedKey { public_key: String },
    /// Validly signed, but the log up to its position is no longer what it states.
    LogChanged {
        events_then: i64,
        events_now: i64,
        streams_then: i64,
        streams_now: i64,
        heads_match: bool,
    },
}

/// One checked checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointCheck {
    pub checkpoint_id: i64,
    pub tenant_id: Uuid,
    pub position: LogPosition,
    pub created_at: String,
    #[serde(flatten)]
    pub outcome: CheckpointOutcome,
}

impl CheckpointCheck {
    pub fn is_valid(&self) -> bool {
        self.outcome == CheckpointOutcome::Valid
    }
}

impl fmt::Display for CheckpointCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "checkpoint {} (tenant {}, position {}/{}, {}): ",
            self.checkpoint_id,
            self.tenant_id,
            self.position.transaction_id,
            self.position.global_position,
            self.created_at
        )?;
        match &self.outcome {
            CheckpointOutcome::Valid => f.write_str("valid"),
            CheckpointOutcome::BadSignature => f.write_str("SIGNATURE INVALID"),
            CheckpointOutcome::UntrustedKey { public_key } => {
                write!(f, "SIGNED BY AN UNTRUSTED KEY {public_key}")
            }
            CheckpointOutcome::LogChanged {
                events_then,
                events_now,
                streams_then,
                streams_now,
                heads_match,
            } => write!(
                f,
                "LOG CHANGED before this position: {events_then} events in {streams_then} streams then, \
                 {events_now} in {streams_now} now; stream heads {}",
                if *heads_match { "match" } else { "differ" }
            ),
        }
    }
}

/// Checks every checkpoint (of `tenant`, or all): the signature, against `trusted_key` (raw
/// Ed25519 public key) or, when none is given, against the key stored with it; then that the log
/// up to its position is still what it states. `pool` must see every event (the owner).
pub async fn verify_checkpoints(
    pool: &PgPool,
    tenant: Option<TenantId>,
    trusted_key: Option<&[u8]>,
) -> Result<Vec<CheckpointCheck>, sqlx::Error> {
    let rows = sqlx::query(
        "select checkpoint_id, tenant_id, message, signature, public_key from audit_checkpoints
         where ($1::uuid is null or tenant_id = $1)
         order by tenant_id, checkpoint_id",
    )
    .bind(tenant.map(|tenant| tenant.as_uuid()))
    .fetch_all(pool)
    .await?;
    let mut conn = pool.acquire().await?;
    let mut checks = Vec::with_capacity(rows.len());
    for row in rows {
        let checkpoint_id: i64 = row.try_get("checkpoint_id")?;
        let stored_tenant: Uuid = row.try_get("tenant_id")?;
        let message: String = row.try_get("message")?;
        let signature: Vec<u8> = row.try_get("signature")?;
        let public_key: Vec<u8> = row.try_get("public_key")?;
        let statement = Statement::parse(&message);
        let signed = UnparsedPublicKey::new(&ED25519, &public_key)
            .verify(message.as_bytes(), &signature)
            .is_ok();
        let (tenant_id, position, created_at) = statement.as_ref().map_or(
            (stored_tenant, LogPosition::START, String::new()),
            |statement| {
                (
                    statement.tenant_id,
                    statement.position,
                    statement.created_at.clone(),
                )
            },
        );
        let outcome = match statement {
            Some(statement)
                if signed && public_key.len() == 32 && statement.tenant_id == stored_tenant =>
            {
                if trusted_key.is_some_and(|trusted| trusted != public_key.as_slice()) {
                    CheckpointOutcome::UntrustedKey {
                        public_key: hex(&public_key),
                    }
                } else {
                    let now = heads(&mut conn, statement.tenant_id, statement.position).await?;
                    let heads_match = now.sha256 == statement.heads_sha256;
                    if heads_match
                        && now.events == statement.events
                        && now.streams == statement.streams
                    {
                        CheckpointOutcome::Valid
                    } else {
                        CheckpointOutcome::LogChanged {
                            events_then: statement.events,
                            events_now: now.events,
                            streams_then: statement.streams,
                            streams_now: now.streams,
                            heads_match,
                        }
                    }
                }
            }
            _ => CheckpointOutcome::BadSignature,
        };
        checks.push(CheckpointCheck {
            checkpoint_id,
            tenant_id,
            position,
            created_at,
            outcome,
        });
    }
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement() -> Statement {
        Statement {
            tenant_id: Uuid::nil(),
            position: LogPosition {
                transaction_id: 750,
                global_position: 12,
            },
            events: 12,
            streams: 3,
            heads_sha256: "ab".repeat(32),
            created_at: "2026-11-22T10:00:00.000001Z".into(),
        }
    }

    #[test]
    fn statements_round_trip_through_their_message_and_nothing_else_parses() {
        let message = statement().message();
        assert_eq!(Statement::parse(&message), Some(statement()));
        assert_eq!(
            Statement::parse(&message.replace("events: 12", "events: 13")).map(|s| s.events),
            Some(13)
        );
        assert_eq!(Statement::parse(&format!("{message}extra\n")), None);
        assert_eq!(
            Statement::parse(&message.replace("position: 750/12", "position: x")),
            None
        );
        assert_eq!(Statement::parse(message.trim_end()), None);
    }

    #[test]
    fn a_generated_key_signs_and_its_public_pem_verifies() {
        let key = SigningKey::from_pem(&SigningKey::generate_pem().unwrap()).unwrap();
        let public = parse_public_key_pem(&key.public_key_pem()).unwrap();
        assert_eq!(public, key.public_key());
        let signature = key.sign(b"hello");
        let verifier = UnparsedPublicKey::new(&ED25519, &public);
        assert!(verifier.verify(b"hello", &signature).is_ok());
        assert!(verifier.verify(b"hellp", &signature).is_err());
    }

    #[test]
    fn an_openssl_pkcs8_v1_key_is_accepted() {
        // `openssl genpkey -algorithm ed25519` output (a test key, used nowhere else).
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA3gE/6Rgrkc1DV9qBxt61xqkqdjA4yfYc53yCBszDgK\n-----END PRIVATE KEY-----\n";
        let key = SigningKey::from_pem(pem).unwrap();
        assert_eq!(key.public_key().len(), 32);
        assert!(SigningKey::from_pem("not a key").is_err());
        assert!(parse_public_key_pem(pem).is_err());
    }
}
