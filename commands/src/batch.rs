//! Group commit: the appends of concurrent commands, sent to PostgreSQL together.
//!
//! A command's append waits in a queue; a few workers each take whatever is waiting (up to
//! [`MAX_BATCH`] commands) and append it in one call of `vextrus_append`, one transaction for all
//! of them (`migrations/0019_append_in_steps.sql`). A lone command is a batch of one, so an idle
//! server adds no latency; a busy one pays the call and the commit once per batch instead of once
//! per command. Each command keeps its own outcome: a stale read or a conflict refuses that
//! command only (the database checks them all before it writes any).
//!
//! A batch never holds two commands that touch the same stream (one writing what the other reads
//! or writes), the same recorded command id or the same claimed value: such a command waits for
//! the worker's next batch, so it is checked against what the first one committed, exactly as if
//! each had been appended alone, one after the other.

use std::collections::{HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use serde_json::Value;
use sqlx::{PgPool, Row};
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use crate::group::{HeldConnection, take_waiting};
use crate::store::{Append, Reads};

/// Most commands in one batch: one statement appends them all, so the bound keeps a batch's
/// latency and its arrays small.
const MAX_BATCH: usize = 32;
/// Workers appending batches at once, each on a connection of its own. Measured with `vextrus
/// bench ledger` on the 2-core machine (16 clients): two workers posted 3,740 entries/s, three
/// 3,077 in the same hour; more workers make smaller batches, and each call has a fixed cost
/// (its statements' start-up, PL/pgSQL, the commit) that a bigger batch shares.
const WORKERS: usize = 2;
/// The SQLSTATE of a stale read (see `migrations/0019_append_in_steps.sql`).
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
        // `vextrus_append` answers stale reads and conflicts in its rows; only a primary key can
        // still raise one (a call that broke the batch rules, or a row the owner inserted).
        if let sqlx::Error::Database(database) = &error {
            if database.is_unique_violation() {
                return Self::Unique {
                    constraint: database.constraint().unwrap_or_default().to_owned(),
                };
            }
        }
        Self::Database(error)
    }
}

/// One command's appends: its own stream's, then its companion streams' (all or nothing).
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

impl Job {
    /// What the job touches, for telling whether two jobs may share a batch.
    fn footprint(&self) -> Footprint {
        let key = |parts: &dyn Fn(&mut DefaultHasher)| {
            let mut hasher = DefaultHasher::new();
            parts(&mut hasher);
            hasher.finish()
        };
        let mut footprint = Footprint::default();
        let Some(own) = self.appends.first() else {
            return footprint;
        };
        for append in &self.appends {
            footprint.writes.insert(key(&|h| {
                (append.tenant, &append.aggregate_type, &append.aggregate_id).hash(h);
            }));
            for (scope, value) in append.claim_scopes.iter().zip(&append.claim_values) {
                footprint.exclusive.insert(key(&|h| {
                    ("claim", append.tenant, scope, value).hash(h);
                }));
            }
            if append.record_command {
                footprint.exclusive.insert(key(&|h| {
                    ("command", append.tenant, append.command_id).hash(h);
                }));
            }
        }
        for (aggregate_type, aggregate_id) in self.reads.types.iter().zip(&self.reads.ids) {
            footprint.reads.insert(key(&|h| {
                (own.tenant, aggregate_type, aggregate_id).hash(h);
            }));
        }
        footprint
    }
}

/// Hashes of the streams a job writes and reads, and of its claimed values and recorded command
/// ids (a collision only makes a job wait for the next batch).
#[derive(Default)]
struct Footprint {
    writes: HashSet<u64>,
    reads: HashSet<u64>,
    exclusive: HashSet<u64>,
}

impl Footprint {
    /// Whether a job with this footprint may join a batch with `batch`'s.
    fn fits(&self, batch: &Self) -> bool {
        self.writes.is_disjoint(&batch.writes)
            && self.writes.is_disjoint(&batch.reads)
            && self.reads.is_disjoint(&batch.writes)
            && self.exclusive.is_disjoint(&batch.exclusive)
    }

    fn add(&mut self, other: Self) {
        self.writes.extend(other.writes);
        self.reads.extend(other.reads);
        self.exclusive.extend(other.exclusive);
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
                let mut connection = HeldConnection::new(pool);
                // Jobs held back from this worker's last batch: they go first in its next.
                let mut held = VecDeque::new();
                loop {
                    if held.is_empty() {
                        // Waits for work holding the queue; the other workers meanwhile run
                        // their batches (or wait for this lock).
                        let mut receiver = receiver.lock().await;
                        let Some(first) = receiver.recv().await else {
                            return;
                        };
                        held.push_back(first);
                        take_waiting(&mut receiver, &mut held, MAX_BATCH);
                    } else if let Ok(mut receiver) = receiver.try_lock() {
                        // Never waits for the queue with jobs in hand: the worker holding it
                        // may be waiting for work that only these jobs' answers will bring.
                        take_waiting(&mut receiver, &mut held, MAX_BATCH);
                    }
                    let jobs = batch_from(&mut held);
                    run(&mut connection, jobs).await;
                    // Let the commands just answered run first: their next appends join the
                    // next batch instead of waiting for the one after it.
                    tokio::task::yield_now().await;
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

/// The next batch out of `waiting`, in order: every job that touches nothing an earlier job of
/// the batch touches, up to [`MAX_BATCH`]; the others stay in `waiting`, in order.
fn batch_from(waiting: &mut VecDeque<Job>) -> Vec<Job> {
    let mut batch = Vec::new();
    let mut touched = Footprint::default();
    let mut rest = VecDeque::new();
    while let Some(job) = waiting.pop_front() {
        if batch.len() == MAX_BATCH {
            rest.push_back(job);
            continue;
        }
        let footprint = job.footprint();
        if footprint.fits(&touched) {
            touched.add(footprint);
            batch.push(job);
        } else {
            rest.push_back(job);
        }
    }
    *waiting = rest;
    batch
}

async fn run(connection: &mut HeldConnection, jobs: Vec<Job>) {
    if jobs.len() > 1 {
        match append(connection, &jobs).await {
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
        let outcome = match append(connection, std::slice::from_ref(&job)).await {
            Ok(mut outcomes) => outcomes.pop().unwrap_or_else(|| {
                Err(AppendFailure::Database(sqlx::Error::Protocol(
                    "no outcome for the command".to_owned(),
                )))
            }),
            Err(error) => Err(error.into()),
        };
        let _ = job.done.send(outcome);
    }
}

/// The columns of `vextrus_append`.
#[derive(Default)]
struct Columns {
    tenants: Vec<Uuid>,
    aggregate_types: Vec<String>,
    aggregate_ids: Vec<String>,
    versions_before: Vec<i64>,
    groups: Vec<i32>,
    actors: Vec<String>,
    actor_roles: Vec<String>,
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

/// Every job in one call of `vextrus_append`; the outcome of each job's own stream, in job order.
async fn append(
    connection: &mut HeldConnection,
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
         from vextrus_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
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
    .fetch_all(connection.get().await?)
    .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(error) => {
            connection.discard();
            return Err(error);
        }
    };
    let mut outcomes = Vec::with_capacity(owners.len());
    for (owner, job) in owners.into_iter().zip(jobs) {
        let row = rows
            .iter()
            .find(|row| row.try_get::<i32, _>("command").ok() == Some(owner))
            .ok_or_else(|| sqlx::Error::Protocol(format!("no outcome for command {owner}")))?;
        let code: Option<String> = row.try_get("error_code")?;
        outcomes.push(match code.as_deref() {
            // The job's appends are numbered from its own on; the last of all their events is
            // the one a reader must wait for to see the whole command.
            None => {
                let last = i32::try_from(job.appends.len()).unwrap_or(i32::MAX);
                let mut position: Option<i64> = None;
                for row in &rows {
                    let command: i32 = row.try_get("command")?;
                    if (owner..owner.saturating_add(last)).contains(&command) {
                        position = position.max(row.try_get::<Option<i64>, _>("last_position")?);
                    }
                }
                Ok(position)
            }
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
        columns.actor_roles.push(text_array(&self.actor_roles));
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

/// `values` as the text of a PostgreSQL `text[]` (each element quoted), which the append call
/// casts back: an array of arrays cannot be ragged, so each command's roles travel as one text.
fn text_array(values: &[String]) -> String {
    let mut text = String::from("{");
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        text.push('"');
        for character in value.chars() {
            if matches!(character, '"' | '\\') {
                text.push('\\');
            }
            text.push(character);
        }
        text.push('"');
    }
    text.push('}');
    text
}

#[cfg(test)]
mod tests {
    use vextrus_domain::TenantId;

    use super::*;
    use crate::metadata::{ActorId, CommandMetadata, Version};

    fn job(
        tenant: TenantId,
        writes: &[&str],
        reads: &[&'static str],
        claims: &[&str],
        metadata: &CommandMetadata,
    ) -> Job {
        let appends = writes
            .iter()
            .map(|id| {
                let mut append = Append::empty(tenant, "organization", id, Version::NONE, metadata);
                for claim in claims {
                    append.claim_scopes.push("organization.code".to_owned());
                    append.claim_values.push((*claim).to_owned());
                }
                append
            })
            .collect();
        let reads = Reads {
            types: reads.iter().map(|_| "organization").collect(),
            ids: reads.iter().map(|id| (*id).to_owned()).collect(),
            versions: reads.iter().map(|_| 1).collect(),
            exclusive: reads.iter().map(|_| false).collect(),
        };
        let (done, _) = oneshot::channel();
        Job {
            appends,
            reads,
            done,
        }
    }

    fn ids(batch: &[Job]) -> Vec<String> {
        batch
            .iter()
            .map(|job| job.appends[0].aggregate_id.clone())
            .collect()
    }

    #[test]
    fn a_batch_holds_back_what_touches_a_stream_value_or_command_of_an_earlier_job() {
        let tenant = TenantId::new();
        let other_tenant = TenantId::new();
        let plain = CommandMetadata::new(ActorId::parse("tester").unwrap());
        let keyed = plain.clone().with_idempotency_key("test", "same-key");
        let mut waiting: VecDeque<Job> = [
            job(tenant, &["a"], &["L"], &[], &plain),
            // Reads what another reads: fine.
            job(tenant, &["b"], &["L"], &[], &plain),
            // Writes what "a" wrote.
            job(tenant, &["a"], &[], &[], &plain),
            // Writes what "a" and "b" read.
            job(tenant, &["c", "L"], &[], &[], &plain),
            // The same stream id in another tenant: another stream.
            job(other_tenant, &["a"], &[], &[], &plain),
            // Reads what "e" writes... after it: "e" is not in the batch yet, so "d" goes.
            job(tenant, &["d"], &["e"], &["X"], &keyed),
            // Writes what "d" read.
            job(tenant, &["e"], &[], &[], &plain),
            // Claims the value "d" claims.
            job(tenant, &["f"], &[], &["X"], &plain),
            // The same idempotency key (command id) as "d".
            job(tenant, &["g"], &[], &[], &keyed),
        ]
        .into();
        let first = batch_from(&mut waiting);
        assert_eq!(ids(&first), ["a", "b", "a", "d"]);
        assert_eq!(first[2].appends[0].tenant, other_tenant.as_uuid());
        let second = batch_from(&mut waiting);
        assert_eq!(ids(&second), ["a", "c", "e", "f", "g"]);
        assert!(waiting.is_empty());
    }

    #[test]
    fn a_batch_is_bounded_and_keeps_the_order_of_what_waits() {
        let tenant = TenantId::new();
        let metadata = CommandMetadata::new(ActorId::parse("tester").unwrap());
        let names: Vec<String> = (0..MAX_BATCH + 3).map(|n| format!("s{n}")).collect();
        let mut waiting: VecDeque<Job> = names
            .iter()
            .map(|name| job(tenant, &[name.as_str()], &[], &[], &metadata))
            .collect();
        let first = batch_from(&mut waiting);
        assert_eq!(ids(&first), names[..MAX_BATCH]);
        assert_eq!(ids(&batch_from(&mut waiting)), names[MAX_BATCH..]);
    }

    #[test]
    fn roles_travel_as_the_text_of_a_postgres_array() {
        assert_eq!(text_array(&[]), "{}");
        assert_eq!(
            text_array(&["accountant".to_owned(), "a \"b\" \\c".to_owned()]),
            r#"{"accountant","a \"b\" \\c"}"#
        );
    }
}
