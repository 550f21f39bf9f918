//! Group commit: the appends of concurrent commands, sent to PostgreSQL together.
//!
//! A command's append waits in a queue; a few workers each take whatever is waiting (up to
//! [`MAX_BATCH`] commands) and append it in one call of `vextrus_append_batch`, one transaction
//! for all of them. A lone command goes alone through `vextrus_append`, so an idle server adds
//! no latency; a busy one pays the call, the plans and the commit once per batch instead of once
//! per command. Each command keeps its own outcome: a stale read or a conflict refuses that
//! command only (the database checks them all before it writes any).

use std::sync::Arc;

use serde_json::Value;
use sqlx::postgres::PgDatabaseError;
use sqlx::{PgPool, Row};
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use crate::store::{Append, Reads};

/// Most commands in one batch: one statement appends them all, so the bound keeps a batch's
/// latency and its arrays small.
const MAX_BATCH: usize = 32;
/// Workers appending batches at once: enough to keep both cores of a small server busy while
/// one batch commits.
const WORKERS: usize = 3;
/// The SQLSTATE of a stale read (see `migrations/0016_append_with_read_set.sql`).
pub(crate) const STALE_READ: &str = "VX409";

/// Why an append did not happen.
#[derive(Debug)]
pub(crate) enum AppendFailure {
    /// A stream of the read set moved since the decision read it.
    StaleRead {
        aggregate_type: String,
        aggregate_id: String,
    },
    /// The command's stream moved (`events_pkey`), its command id is recorded already
    /// (`commands_pkey`) or a value it claims is taken (`unique_values_pkey`).
    Unique {
        constraint: String,
    },
    Database(sqlx::Error),
}

impl From<sqlx::Error> for AppendFailure {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(database) = &error {
            if database.code().as_deref() == Some(STALE_READ) {
                let pg = database.try_downcast_ref::<PgDatabaseError>();
                return Self::StaleRead {
                    aggregate_type: pg
                        .and_then(PgDatabaseError::detail)
                        .unwrap_or_default()
                        .to_owned(),
                    aggregate_id: pg
                        .and_then(PgDatabaseError::hint)
                        .unwrap_or_default()
                        .to_owned(),
                };
            }
            if database.is_unique_violation() {
                return Self::Unique {
                    constraint: database.constraint().unwrap_or_default().to_owned(),
                };
            }
        }
        Self::Database(error)
    }
}

/// One command's appends: its own stream's, then a companion stream's (all or nothing).
struct Job {
    appends: Vec<Append>,
    reads: Reads,
    done: oneshot::Sender<Result<Option<i64>, AppendFailure>>,
}

/// The queue and its workers; they stop when the last handle is dropped.
#[derive(Debug)]
pub(crate) struct Batcher {
    queue: mpsc::UnboundedSender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("appends", &self.appends.len())
            .finish()
    }
}

impl Batcher {
    /// Starts the workers on the current Tokio runtime.
    pub(crate) fn start(pool: PgPool) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..WORKERS {
            let (pool, receiver) = (pool.clone(), Arc::clone(&receiver));
            tokio::spawn(async move {
                loop {
                    let jobs = {
                        let mut receiver = receiver.lock().await;
                        let Some(first) = receiver.recv().await else {
                            return;
                        };
                        let mut jobs = vec![first];
                        while jobs.len() < MAX_BATCH {
                            match receiver.try_recv() {
                                Ok(job) => jobs.push(job),
                                Err(_) => break,
                            }
                        }
                        jobs
                    };
                    run(&pool, jobs).await;
                }
            });
        }
        Self { queue }
    }

    /// Appends `appends` (a command's own stream, then its companion's) after checking `reads`;
    /// the position of the command's last event, if it appended any.
    pub(crate) async fn append(
        &self,
        appends: Vec<Append>,
        reads: Reads,
    ) -> Result<Option<i64>, AppendFailure> {
        let (done, outcome) = oneshot::channel();
        self.queue
            .send(Job {
                appends,
                reads,
                done,
            })
            .map_err(|_| AppendFailure::Database(sqlx::Error::PoolClosed))?;
        outcome
            .await
            .map_err(|_| AppendFailure::Database(sqlx::Error::WorkerCrashed))?
    }
}

async fn run(pool: &PgPool, jobs: Vec<Job>) {
    if jobs.len() > 1 {
        match append_batch(pool, &jobs).await {
            Ok(outcomes) => {
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    // The caller may have gone (a cancelled request): its command committed.
                    let _ = job.done.send(outcome);
                }
                return;
            }
            // The batch as a whole failed (a lost connection, say): each command alone, so each
            // gets its own answer.
            Err(error) => tracing::debug!(%error, "batch append failed; appending alone"),
        }
    }
    for job in jobs {
        let outcome = append_alone(pool, &job.appends, &job.reads).await;
        let _ = job.done.send(outcome);
    }
}

/// One command through `vextrus_append`, in one transaction with its companion if it has one.
async fn append_alone(
    pool: &PgPool,
    appends: &[Append],
    reads: &Reads,
) -> Result<Option<i64>, AppendFailure> {
    let Some((own, companions)) = appends.split_first() else {
        return Ok(None);
    };
    if companions.is_empty() {
        return Ok(own.call(reads).fetch_one(pool).await?);
    }
    let mut tx = pool.begin().await?;
    let last: Option<i64> = own.call(reads).fetch_one(&mut *tx).await?;
    for companion in companions {
        let _: Option<i64> = companion
            .call(&Reads::default())
            .fetch_one(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(last)
}

/// The columns of `vextrus_append_batch`.
#[derive(Default)]
struct Columns {
    tenants: Vec<Uuid>,
    aggregate_types: Vec<String>,
    aggregate_ids: Vec<String>,
    versions_before: Vec<i64>,
    groups: Vec<i32>,
    actors: Vec<String>,
    actor_roles: Vec<Value>,
    command_ids: Vec<Uuid>,
    idempotency_keys: Vec<Option<String>>,
    correlation_ids: Vec<Uuid>,
    causation_ids: Vec<Option<Uuid>>,
    request_ids: Vec<Option<String>>,
    client_addresses: Vec<Option<String>>,
    user_agents: Vec<Option<String>>,
    project_ids: Vec<Option<Uuid>>,
    site_ids: Vec<Option<Uuid>>,
    request_metadata: Vec<Value>,
    record_commands: Vec<bool>,
    event_commands: Vec<i32>,
    event_types: Vec<String>,
    event_versions: Vec<String>,
    payloads: Vec<Value>,
    claim_commands: Vec<i32>,
    claim_scopes: Vec<String>,
    claim_values: Vec<String>,
    read_commands: Vec<i32>,
    read_types: Vec<String>,
    read_ids: Vec<String>,
    read_versions: Vec<i64>,
    read_exclusive: Vec<bool>,
}

/// Every job in one call; the outcome of each job's own stream, in job order.
async fn append_batch(
    pool: &PgPool,
    jobs: &[Job],
) -> Result<Vec<Result<Option<i64>, AppendFailure>>, sqlx::Error> {
    let mut columns = Columns::default();
    // The command index (from 1) of each job's own append.
    let mut owners = Vec::with_capacity(jobs.len());
    for (group, job) in (1..).zip(jobs) {
        for (index, append) in job.appends.iter().enumerate() {
            let command = i32::try_from(columns.tenants.len() + 1).unwrap_or(i32::MAX);
            if index == 0 {
                owners.push(command);
                for read in 0..job.reads.types.len() {
                    columns.read_commands.push(command);
                    columns.read_types.push(job.reads.types[read].to_owned());
                    columns.read_ids.push(job.reads.ids[read].clone());
                    columns.read_versions.push(job.reads.versions[read]);
                    columns.read_exclusive.push(job.reads.exclusive[read]);
                }
            }
            append.push_columns(command, group, &mut columns);
        }
    }
    let rows = sqlx::query(
        "select command, last_position, error_code, error_constraint, error_detail, error_hint
         from vextrus_append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                                   $13::text[]::inet[], $14, $15, $16, $17, $18, $19, $20, $21, $22,
                                   $23, $24, $25, $26, $27, $28, $29, $30)",
    )
    .bind(&columns.tenants)
    .bind(&columns.aggregate_types)
    .bind(&columns.aggregate_ids)
    .bind(&columns.versions_before)
    .bind(&columns.groups)
    .bind(&columns.actors)
    .bind(&columns.actor_roles)
    .bind(&columns.command_ids)
    .bind(&columns.idempotency_keys)
    .bind(&columns.correlation_ids)
    .bind(&columns.causation_ids)
    .bind(&columns.request_ids)
    .bind(&columns.client_addresses)
    .bind(&columns.user_agents)
    .bind(&columns.project_ids)
    .bind(&columns.site_ids)
    .bind(&columns.request_metadata)
    .bind(&columns.record_commands)
    .bind(&columns.event_commands)
    .bind(&columns.event_types)
    .bind(&columns.event_versions)
    .bind(&columns.payloads)
    .bind(&columns.claim_commands)
    .bind(&columns.claim_scopes)
    .bind(&columns.claim_values)
    .bind(&columns.read_commands)
    .bind(&columns.read_types)
    .bind(&columns.read_ids)
    .bind(&columns.read_versions)
    .bind(&columns.read_exclusive)
    .fetch_all(pool)
    .await?;
    let mut outcomes = Vec::with_capacity(owners.len());
    for owner in owners {
        let row = rows
            .iter()
            .find(|row| row.try_get::<i64, _>("command").ok() == Some(i64::from(owner)))
            .ok_or_else(|| sqlx::Error::Protocol(format!("no outcome for command {owner}")))?;
        let code: Option<String> = row.try_get("error_code")?;
        outcomes.push(match code.as_deref() {
            None => Ok(row.try_get::<Option<i64>, _>("last_position")?),
            Some(STALE_READ) => Err(AppendFailure::StaleRead {
                aggregate_type: row
                    .try_get::<Option<String>, _>("error_detail")?
                    .unwrap_or_default(),
                aggregate_id: row
                    .try_get::<Option<String>, _>("error_hint")?
                    .unwrap_or_default(),
            }),
            Some(_) => Err(AppendFailure::Unique {
                constraint: row
                    .try_get::<Option<String>, _>("error_constraint")?
                    .unwrap_or_default(),
            }),
        });
    }
    Ok(outcomes)
}

impl Append {
    /// This append's rows of the batch's columns, as command `command` of group `group`.
    fn push_columns(&self, command: i32, group: i32, columns: &mut Columns) {
        columns.tenants.push(self.tenant);
        columns.aggregate_types.push(self.aggregate_type.clone());
        columns.aggregate_ids.push(self.aggregate_id.clone());
        columns.versions_before.push(self.version_before.get());
        columns.groups.push(group);
        columns.actors.push(self.actor.clone());
        columns
            .actor_roles
            .push(Value::from(self.actor_roles.clone()));
        columns.command_ids.push(self.command_id);
        columns.idempotency_keys.push(self.idempotency_key.clone());
        columns.correlation_ids.push(self.correlation_id);
        columns.causation_ids.push(self.causation_id);
        columns.request_ids.push(self.request_id.clone());
        columns.client_addresses.push(self.client_address.clone());
        columns.user_agents.push(self.user_agent.clone());
        columns.project_ids.push(self.project_id);
        columns.site_ids.push(self.site_id);
        columns.request_metadata.push(self.request_metadata.clone());
        columns.record_commands.push(self.record_command);
        for ((event_type, event_version), payload) in self
            .event_types
            .iter()
            .zip(&self.event_versions)
            .zip(&self.payloads)
        {
            columns.event_commands.push(command);
            columns.event_types.push(event_type.clone());
            columns.event_versions.push(event_version.clone());
            columns.payloads.push(payload.clone());
        }
        for (scope, value) in self.claim_scopes.iter().zip(&self.claim_values) {
            columns.claim_commands.push(command);
            columns.claim_scopes.push(scope.clone());
            columns.claim_values.push(value.clone());
        }
    }
}
