//! The event store: one transaction per command, under our control (design.md D2).

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row, Transaction};
use tokio::sync::watch;
use tracing::instrument;
use uuid::Uuid;
use vextrus_domain::{TenantId, UniqueValues};

use crate::codec;
use crate::error::ExecuteError;
use crate::log::{RECORDED_EVENT_COLUMNS, RecordedEvent};
use crate::metadata::{CommandId, CommandMetadata, GlobalPosition, Version};
use crate::tenant;

/// What executing a command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandOutcome {
    /// The stream's version after the command.
    pub version: Version,
    /// Log position of the command's last event; `None` when it changed nothing. A query can wait
    /// for projections to pass it (read-your-writes, design.md D9).
    pub last_position: Option<GlobalPosition>,
    /// How many events the command appended.
    pub event_count: u32,
    /// True when this command id had been executed before: this is the first outcome, returned
    /// again, and nothing was written this time.
    pub repeated: bool,
}

/// An event as recorded in the log; the same shape the log reader returns.
pub type StoredEvent = RecordedEvent;

/// Executes commands against aggregates stored in the `events` table.
#[derive(Debug, Clone)]
pub struct EventStore {
    pool: PgPool,
    /// Counts commits that appended events; log tails in this process watch it.
    appended: watch::Sender<u64>,
}

impl EventStore {
    /// `pool` should run as `vextrus_writer` ([`crate::pool_options_for_role`]).
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            appended: watch::Sender::new(0),
        }
    }

    /// Changes after every commit that appended events, so in-process log tails wake at once
    /// instead of waiting for their next poll (see [`crate::LogReader::with_wakeup`]).
    pub fn append_signal(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// Loads the stream, lets the aggregate handle `command`, and appends what it decides, all in
    /// one transaction scoped to `tenant`.
    ///
    /// With `expected_version`, the command runs only if the stream is exactly at that version.
    /// Without it, a concurrent append between load and insert is still caught (the primary key)
    /// and reported as [`ExecuteError::Conflict`]; callers may reload and retry.
    #[instrument(
        name = "execute_command",
        skip_all,
        fields(
            tenant_id = %tenant,
            aggregate_type = A::TYPE,
            aggregate_id = aggregate_id,
            command_id = %metadata.command_id,
            correlation_id = %metadata.correlation_id,
        ),
        err(level = tracing::Level::DEBUG)
    )]
    pub async fn execute<A>(
        &self,
        tenant: TenantId,
        aggregate_id: &str,
        command: A::Command,
        services: &A::Services,
        metadata: &CommandMetadata,
        expected_version: Option<Version>,
    ) -> Result<CommandOutcome, ExecuteError<A::Error>>
    where
        A: UniqueValues,
        A::Command: Send,
        A::Error: 'static,
    {
        let mut tx = tenant::begin(&self.pool, tenant).await?;

        if let Some(recorded) = recorded_command(&mut tx, metadata.command_id).await? {
            tx.rollback().await?;
            return recorded.into_repeat(metadata.command_id, A::TYPE, aggregate_id);
        }

        let history = load_stream_rows(&mut tx, tenant, A::TYPE, aggregate_id).await?;
        let current = history
            .last()
            .map_or(Version::NONE, |event| Version::new(event.sequence));
        if expected_version.is_some_and(|expected| expected != current) {
            let conflict = ExecuteError::Conflict {
                current,
                expected: expected_version,
            };
            return refuse_unless_repeated(
                tx,
                metadata.command_id,
                A::TYPE,
                aggregate_id,
                conflict,
            )
            .await;
        }

        let mut aggregate = A::default();
        for event in history {
            aggregate.apply(event.decode().map_err(|source| ExecuteError::Decode {
                position: event.global_position,
                source,
            })?);
        }
        let sink = EventSink::<A>::default();
        if let Err(rejection) = aggregate.handle(command, services, &sink).await {
            let rejection = ExecuteError::Rejected(rejection);
            return refuse_unless_repeated(
                tx,
                metadata.command_id,
                A::TYPE,
                aggregate_id,
                rejection,
            )
            .await;
        }
        let new_events = sink.collect().await;

        let append = Append::build::<A>(tenant, aggregate_id, current, &new_events, metadata)?;
        match append.run(&mut tx).await {
            Ok(last_position) => {
                tx.commit().await?;
                if last_position.is_some() {
                    self.appended
                        .send_modify(|commits| *commits = commits.wrapping_add(1));
                }
                Ok(CommandOutcome {
                    version: append.version_after(),
                    last_position,
                    event_count: append.event_count(),
                    repeated: false,
                })
            }
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                let constraint = error.constraint().unwrap_or_default().to_owned();
                tx.rollback().await?;
                self.explain_unique_violation(
                    tenant,
                    aggregate_id,
                    &constraint,
                    &append,
                    metadata,
                    expected_version,
                )
                .await
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Every event of one stream of `tenant`, in order. A stream of another tenant is empty.
    pub async fn load_stream(
        &self,
        tenant: TenantId,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let mut tx = tenant::begin(&self.pool, tenant).await?;
        let events = load_stream_rows(&mut tx, tenant, aggregate_type, aggregate_id).await?;
        tx.commit().await?;
        Ok(events)
    }

    /// The current state and version of one aggregate of `tenant`.
    pub async fn load_aggregate<A: Aggregate<Error: 'static>>(
        &self,
        tenant: TenantId,
        aggregate_id: &str,
    ) -> Result<(A, Version), ExecuteError<A::Error>> {
        let history = self.load_stream(tenant, A::TYPE, aggregate_id).await?;
        let version = history
            .last()
            .map_or(Version::NONE, |event| Version::new(event.sequence));
        let mut aggregate = A::default();
        for event in history {
            aggregate.apply(event.decode().map_err(|source| ExecuteError::Decode {
                position: event.global_position,
                source,
            })?);
        }
        Ok((aggregate, version))
    }

    /// A unique violation aborted the append; says which rule it was. The command id is checked
    /// first, because a concurrent repeat of the same command collides on the stream too.
    async fn explain_unique_violation<E: std::error::Error + 'static>(
        &self,
        tenant: TenantId,
        aggregate_id: &str,
        constraint: &str,
        append: &Append,
        metadata: &CommandMetadata,
        expected_version: Option<Version>,
    ) -> Result<CommandOutcome, ExecuteError<E>> {
        let mut tx = tenant::begin(&self.pool, tenant).await?;
        let explanation = if let Some(recorded) =
            recorded_command(&mut tx, metadata.command_id).await?
        {
            recorded.into_repeat(metadata.command_id, &append.aggregate_type, aggregate_id)
        } else if constraint == "unique_values_pkey" {
            let taken = sqlx::query(
                "select scope, value from unique_values
                 where tenant_id = $1 and (scope, value) in (select * from unnest($2::text[], $3::text[]))
                 limit 1",
            )
            .bind(tenant.as_uuid())
            .bind(&append.claim_scopes)
            .bind(&append.claim_values)
            .fetch_optional(&mut *tx)
            .await?;
            Err(match taken {
                Some(row) => ExecuteError::ValueTaken {
                    scope: row.try_get("scope")?,
                    value: row.try_get("value")?,
                },
                None => ExecuteError::Conflict {
                    current: append.version_before,
                    expected: expected_version,
                },
            })
        } else if constraint == "events_pkey" {
            let current: Option<i64> = sqlx::query_scalar(
                "select max(sequence) from events where tenant_id = $1 and aggregate_type = $2 and aggregate_id = $3",
            )
            .bind(tenant.as_uuid())
            .bind(&append.aggregate_type)
            .bind(aggregate_id)
            .fetch_one(&mut *tx)
            .await?;
            Err(ExecuteError::Conflict {
                current: Version::new(current.unwrap_or(0)),
                expected: expected_version,
            })
        } else {
            Err(ExecuteError::Database(sqlx::Error::Protocol(format!(
                "unexpected unique violation on constraint {constraint:?}"
            ))))
        };
        tx.rollback().await?;
        explanation
    }
}

/// Rolls back and returns `refusal`, unless the same command id committed while this execution
/// ran: each statement reads the latest commits, so a concurrent first run can land between the
/// command-id check and the stream load, and the stream then already shows its effect. The
/// caller gets the first outcome, as for any repeat.
async fn refuse_unless_repeated<E: std::error::Error + 'static>(
    mut tx: Transaction<'static, Postgres>,
    command_id: CommandId,
    aggregate_type: &str,
    aggregate_id: &str,
    refusal: ExecuteError<E>,
) -> Result<CommandOutcome, ExecuteError<E>> {
    let recorded = recorded_command(&mut tx, command_id).await?;
    tx.rollback().await?;
    match recorded {
        Some(recorded) => recorded.into_repeat(command_id, aggregate_type, aggregate_id),
        None => Err(refusal),
    }
}

/// The outcome recorded for a command id in `commands`.
struct RecordedCommand {
    aggregate_type: String,
    aggregate_id: String,
    outcome: CommandOutcome,
}

impl RecordedCommand {
    fn into_repeat<E: std::error::Error + 'static>(
        self,
        command_id: CommandId,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<CommandOutcome, ExecuteError<E>> {
        if self.aggregate_type == aggregate_type && self.aggregate_id == aggregate_id {
            tracing::debug!("repeated command: returning its first outcome");
            Ok(self.outcome)
        } else {
            Err(ExecuteError::CommandIdReused {
                command_id,
                aggregate_type: self.aggregate_type,
                aggregate_id: self.aggregate_id,
            })
        }
    }
}

async fn recorded_command(
    tx: &mut Transaction<'static, Postgres>,
    command_id: CommandId,
) -> Result<Option<RecordedCommand>, sqlx::Error> {
    let row = sqlx::query(
        "select aggregate_type, aggregate_id, stream_version, last_position, event_count
         from commands where tenant_id = vextrus_current_tenant() and command_id = $1",
    )
    .bind(command_id.as_uuid())
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|row: PgRow| {
        let event_count: i32 = row.try_get("event_count")?;
        Ok(RecordedCommand {
            aggregate_type: row.try_get("aggregate_type")?,
            aggregate_id: row.try_get("aggregate_id")?,
            outcome: CommandOutcome {
                version: Version::new(row.try_get("stream_version")?),
                last_position: row
                    .try_get::<Option<i64>, _>("last_position")?
                    .map(GlobalPosition::new),
                event_count: u32::try_from(event_count).unwrap_or(0),
                repeated: true,
            },
        })
    })
    .transpose()
}

async fn load_stream_rows(
    tx: &mut Transaction<'static, Postgres>,
    tenant: TenantId,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    sqlx::query(&format!(
        "select {RECORDED_EVENT_COLUMNS} from events
         where tenant_id = $1 and aggregate_type = $2 and aggregate_id = $3
         order by sequence"
    ))
    .bind(tenant.as_uuid())
    .bind(aggregate_type)
    .bind(aggregate_id)
    .try_map(|row: PgRow| RecordedEvent::from_row(&row))
    .fetch_all(&mut **tx)
    .await
}

/// The new events of one command, laid out as the columns of one multi-row INSERT.
struct Append {
    tenant: Uuid,
    aggregate_type: String,
    aggregate_id: String,
    version_before: Version,
    sequences: Vec<i64>,
    event_types: Vec<String>,
    event_versions: Vec<String>,
    payloads: Vec<Value>,
    claim_scopes: Vec<String>,
    claim_values: Vec<String>,
    actor: String,
    command_id: Uuid,
    correlation_id: Uuid,
    causation_id: Option<Uuid>,
    request_id: Option<String>,
    request_metadata: Value,
}

impl Append {
    fn build<A: UniqueValues>(
        tenant: TenantId,
        aggregate_id: &str,
        version_before: Version,
        events: &[A::Event],
        metadata: &CommandMetadata,
    ) -> Result<Self, ExecuteError<A::Error>> {
        use cqrs_es::DomainEvent;

        let mut append = Self {
            tenant: tenant.as_uuid(),
            aggregate_type: A::TYPE.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            version_before,
            sequences: Vec::with_capacity(events.len()),
            event_types: Vec::with_capacity(events.len()),
            event_versions: Vec::with_capacity(events.len()),
            payloads: Vec::with_capacity(events.len()),
            claim_scopes: Vec::new(),
            claim_values: Vec::new(),
            actor: metadata.actor.as_str().to_owned(),
            command_id: metadata.command_id.as_uuid(),
            correlation_id: metadata.correlation_id,
            causation_id: metadata.causation_id,
            request_id: metadata.request_id.clone(),
            request_metadata: Value::Object(metadata.request_metadata.clone()),
        };
        for (offset, event) in (1..).zip(events) {
            let (event_type, payload) =
                codec::encode(event).map_err(|error| ExecuteError::Encode(error.to_string()))?;
            append.sequences.push(version_before.get() + offset);
            append.event_types.push(event_type);
            append.event_versions.push(event.event_version());
            append.payloads.push(payload);
            for claim in A::unique_values(event) {
                append.claim_scopes.push(claim.scope.to_owned());
                append.claim_values.push(claim.value);
            }
        }
        Ok(append)
    }

    fn event_count(&self) -> u32 {
        u32::try_from(self.sequences.len()).unwrap_or(u32::MAX)
    }

    fn version_after(&self) -> Version {
        Version::new(self.version_before.get() + i64::from(self.event_count()))
    }

    /// One statement: the events, their unique claims and the command's outcome. Returns the
    /// position of the last event, if any.
    async fn run(
        &self,
        tx: &mut Transaction<'static, Postgres>,
    ) -> Result<Option<GlobalPosition>, sqlx::Error> {
        let last_position: Option<i64> = sqlx::query_scalar(
            "with appended as (
                 insert into events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version,
                                     payload, actor, command_id, correlation_id, causation_id, request_id, request_metadata)
                 select $1, $2, $3, e.sequence, e.event_type, e.event_version, e.payload, $7, $8, $9, $10, $11, $12
                 from unnest($4::bigint[], $5::text[], $6::text[], $13::jsonb[])
                      as e(sequence, event_type, event_version, payload)
                 returning global_position
             ),
             claimed as (
                 insert into unique_values (tenant_id, scope, value, aggregate_type, aggregate_id)
                 select $1, c.scope, c.value, $2, $3 from unnest($14::text[], $15::text[]) as c(scope, value)
             )
             insert into commands (tenant_id, command_id, aggregate_type, aggregate_id, stream_version, last_position, event_count)
             select $1, $8, $2, $3, $16, max(global_position), count(*) from appended
             returning last_position",
        )
        .bind(self.tenant)
        .bind(&self.aggregate_type)
        .bind(&self.aggregate_id)
        .bind(&self.sequences)
        .bind(&self.event_types)
        .bind(&self.event_versions)
        .bind(&self.actor)
        .bind(self.command_id)
        .bind(self.correlation_id)
        .bind(self.causation_id)
        .bind(&self.request_id)
        .bind(&self.request_metadata)
        .bind(&self.payloads)
        .bind(&self.claim_scopes)
        .bind(&self.claim_values)
        .bind(self.version_after().get())
        .fetch_one(&mut **tx)
        .await?;
        Ok(last_position.map(GlobalPosition::new))
    }
}
