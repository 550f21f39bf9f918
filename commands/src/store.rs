//! The event store: transactions under our control (design.md D2); concurrent commands share
//! one through group commit (`batch.rs`), each decided, checked and refused alone.

use std::sync::{Arc, OnceLock};

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row, Transaction};
use tokio::sync::watch;
use tracing::instrument;
use uuid::Uuid;
use vextrus_domain::{TenantId, UniqueValues};

use crate::batch::{AppendFailure, Batcher};
use crate::cache::StreamCaches;
use crate::codec::{self, CodecError};
use crate::error::ExecuteError;
use crate::log::{RECORDED_EVENT_COLUMNS, RecordedEvent};
use crate::metadata::{CommandId, CommandMetadata, GlobalPosition, Version};
use crate::tenant;

/// Commands [`EventStore::execute`] decided on a kept stream state (`outcome="hit"`), decided
/// again from the stored stream after the kept state gave a refusal, a conflict or nothing to do
/// (`"rechecked"`), or decided from the stored stream because no state was kept (`"miss"`).
pub const STREAM_CACHE: &str = "vextrus_stream_cache_total";

/// A stream a decision read, at the version it saw (design.md D12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRead {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub version: Version,
    /// True when the command appends to this stream too (a [`Companion`]): its lock is then
    /// taken exclusively.
    pub written: bool,
}

impl StreamRead {
    /// Stream `aggregate_id` of `A`, seen at `version`.
    pub fn of<A: Aggregate>(aggregate_id: impl ToString, version: Version) -> Self {
        Self {
            aggregate_type: A::TYPE,
            aggregate_id: aggregate_id.to_string(),
            version,
            written: false,
        }
    }
}

/// Events of a second stream that a command appends in the same transaction as its own, e.g. the
/// ledger's note that an account got its first posting, appended with that posting.
#[derive(Debug, Clone)]
pub struct Companion {
    aggregate_type: &'static str,
    aggregate_id: String,
    version_before: Version,
    events: Vec<(String, String, Value)>,
}

impl Companion {
    /// `events` of stream `aggregate_id` of `B`, which must be at `version_before`.
    pub fn new<B: Aggregate>(
        aggregate_id: impl ToString,
        version_before: Version,
        events: &[B::Event],
    ) -> Result<Self, CodecError> {
        use cqrs_es::DomainEvent;
        let events = events
            .iter()
            .map(|event| {
                let (event_type, payload) = codec::encode(event)?;
                Ok((event_type, event.event_version(), payload))
            })
            .collect::<Result<_, CodecError>>()?;
        Ok(Self {
            aggregate_type: B::TYPE,
            aggregate_id: aggregate_id.to_string(),
            version_before,
            events,
        })
    }

    fn into_append(self, tenant: TenantId, metadata: &CommandMetadata) -> Append {
        let mut append = Append::empty(
            tenant,
            self.aggregate_type,
            &self.aggregate_id,
            self.version_before,
            metadata,
        );
        // The command's outcome is recorded once, with its own stream.
        append.record_command = false;
        for (offset, (event_type, event_version, payload)) in (1..).zip(self.events) {
            append.sequences.push(self.version_before.get() + offset);
            append.event_types.push(event_type);
            append.event_versions.push(event_version);
            append.payloads.push(payload);
        }
        append
    }
}

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

/// Executes commands against aggregates stored in the `events` table.
#[derive(Debug, Clone)]
pub struct EventStore {
    pool: PgPool,
    /// Counts commits that appended events; log tails in this process watch it.
    appended: watch::Sender<u64>,
    /// Group commit (see [`Batcher`]); its workers start with the first append.
    batcher: Arc<OnceLock<Batcher>>,
    /// The state each stream was left in by the last command this store appended to it.
    stream_caches: Arc<StreamCaches>,
}

impl EventStore {
    /// `pool` should run as `vextrus_writer` ([`crate::pool_options_for_role`]).
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            appended: watch::Sender::new(0),
            batcher: Arc::new(OnceLock::new()),
            stream_caches: Arc::new(StreamCaches::default()),
        }
    }

    /// The store's pool (as `vextrus_writer`): for the API's few writes that are not events
    /// (when an API key was last used).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Changes after every commit that appended events, so in-process log tails wake at once
    /// instead of waiting for their next poll (see [`crate::LogReader::with_wakeup`]).
    pub fn append_signal(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// Loads the stream, lets the aggregate handle `command`, and appends what it decides for
    /// `tenant`, in two round trips (see `migrations/0004_store_functions.sql`):
    ///
    /// 1. one snapshot: the command id's recorded outcome (a repeat returns it at once) and the
    ///    stream's events;
    /// 2. one committed call: the new events in one multi-row INSERT, their unique claims and, for
    ///    an idempotent command ([`CommandMetadata::is_idempotent`]), its outcome.
    ///
    /// The first step is skipped when this store decided the stream's last command itself: it
    /// keeps the state each command left (a [`StreamCache`](crate::StreamCache) per aggregate
    /// type; not after a creation, `Some(Version::NONE)`) and decides on that. Another process
    /// may have appended since, so a decision on the kept state that conflicts, is refused or
    /// changes nothing is taken again from the stream as stored (step 1) before it is answered;
    /// one that appends is safe, since the append checks the version.
    ///
    /// With `expected_version`, the command runs only if the stream is exactly at that version.
    /// `Some(Version::NONE)` declares a new stream (a creation under a freshly generated id): it
    /// skips the load, and the append is refused if the stream exists after all. Without an
    /// expected version, a concurrent append between load and insert is still caught by the
    /// primary key and reported as [`ExecuteError::Conflict`]; callers may reload and retry.
    #[instrument(
        name = "execute_command",
        skip_all,
        fields(
            tenant_id = %tenant,
            aggregate_type = A::TYPE,
            aggregate_id = aggregate_id,
            command_id = %metadata.command_id(),
            correlation_id = %metadata.correlation_id,
            reads = 0,
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
        A: UniqueValues + Clone + 'static,
        A::Command: Clone + Send,
        A::Error: 'static,
    {
        let cache = self.stream_caches.of::<A>();
        let keep = |appended: Appended<A>, version: Version| {
            cache.put(tenant, aggregate_id, Arc::new(appended.state()), version);
        };
        let kept = cache.cached(tenant, aggregate_id).filter(|(_, version)| {
            expected_version.is_none_or(|expected| expected == *version)
                && expected_version != Some(Version::NONE)
        });
        if let Some((state, version)) = kept {
            let decided = self
                .decide_and_append::<A>(
                    tenant,
                    aggregate_id,
                    A::clone(&state),
                    version,
                    command.clone(),
                    services,
                    metadata,
                    expected_version,
                    &[],
                    |_| Ok(Vec::new()),
                )
                .await;
            match decided {
                // Perhaps decided on a state that another process has moved on from.
                Err(ExecuteError::Rejected(_) | ExecuteError::Conflict { .. }) => {}
                Ok((outcome, _)) if outcome.event_count == 0 && !metadata.is_idempotent() => {}
                Ok((outcome, appended)) => {
                    metrics::counter!(STREAM_CACHE, "outcome" => "hit").increment(1);
                    if let Some(appended) = appended {
                        keep(appended, outcome.version);
                    }
                    return Ok(outcome);
                }
                Err(error) => return Err(error),
            }
            metrics::counter!(STREAM_CACHE, "outcome" => "rechecked").increment(1);
            cache.forget(tenant, aggregate_id);
        } else {
            metrics::counter!(STREAM_CACHE, "outcome" => "miss").increment(1);
        }
        let (outcome, appended) = self
            .load_and_decide::<A>(
                tenant,
                aggregate_id,
                command,
                services,
                metadata,
                expected_version,
                &[],
                |_| Ok(Vec::new()),
            )
            .await?;
        // A stream is kept from its second command on: most streams created (a journal entry,
        // an invoice) are seldom commanded again.
        if let Some(appended) = appended.filter(|_| expected_version != Some(Version::NONE)) {
            keep(appended, outcome.version);
        }
        Ok(outcome)
    }

    /// [`EventStore::execute`] for a decision that read other streams (design.md D12): the
    /// command appends only if every stream of `reads` is still at the version the decision saw,
    /// else [`ExecuteError::StaleRead`] names the one that moved (reload it and decide again).
    /// `companions` may add the events of more streams, decided from the command's own events,
    /// to the same transaction (each one's version is checked as well; each must also be in
    /// `reads`). Always loads the command's stream.
    #[allow(clippy::too_many_arguments)]
    #[instrument(
        name = "execute_command",
        skip_all,
        fields(
            tenant_id = %tenant,
            aggregate_type = A::TYPE,
            aggregate_id = aggregate_id,
            command_id = %metadata.command_id(),
            correlation_id = %metadata.correlation_id,
            reads = reads.len(),
        ),
        err(level = tracing::Level::DEBUG)
    )]
    pub async fn execute_reading<A>(
        &self,
        tenant: TenantId,
        aggregate_id: &str,
        command: A::Command,
        services: &A::Services,
        metadata: &CommandMetadata,
        expected_version: Option<Version>,
        reads: &[StreamRead],
        companions: impl FnOnce(&[A::Event]) -> Result<Vec<Companion>, ExecuteError<A::Error>>,
    ) -> Result<CommandOutcome, ExecuteError<A::Error>>
    where
        A: UniqueValues,
        A::Command: Send,
        A::Error: 'static,
    {
        self.load_and_decide::<A>(
            tenant,
            aggregate_id,
            command,
            services,
            metadata,
            expected_version,
            reads,
            companions,
        )
        .await
        .map(|(outcome, _)| outcome)
    }

    /// Step 1 (unless the stream is declared new), then the decision and the append; the
    /// outcome and, when the command appended, what it appended to what.
    #[allow(clippy::too_many_arguments)]
    async fn load_and_decide<A>(
        &self,
        tenant: TenantId,
        aggregate_id: &str,
        command: A::Command,
        services: &A::Services,
        metadata: &CommandMetadata,
        expected_version: Option<Version>,
        reads: &[StreamRead],
        companions: impl FnOnce(&[A::Event]) -> Result<Vec<Companion>, ExecuteError<A::Error>>,
    ) -> Result<(CommandOutcome, Option<Appended<A>>), ExecuteError<A::Error>>
    where
        A: UniqueValues,
        A::Command: Send,
        A::Error: 'static,
    {
        let loaded = if expected_version == Some(Version::NONE) {
            LoadedStream::default()
        } else {
            let loaded = self
                .load_for_command(tenant, metadata, A::TYPE, aggregate_id)
                .await?;
            if let Some(recorded) = loaded.recorded_command {
                return recorded
                    .into_repeat(metadata.command_id(), A::TYPE, aggregate_id)
                    .map(|outcome| (outcome, None));
            }
            loaded
        };
        let current = loaded.version();
        if expected_version.is_some_and(|expected| expected != current) {
            return Err(ExecuteError::Conflict {
                current,
                expected: expected_version,
            });
        }

        let mut aggregate = A::default();
        for event in loaded.events {
            let position = GlobalPosition::new(event.global_position);
            aggregate.apply(
                codec::decode(&event.event_type, &event.payload)
                    .map_err(|source| ExecuteError::Decode { position, source })?,
            );
        }
        self.decide_and_append(
            tenant,
            aggregate_id,
            aggregate,
            current,
            command,
            services,
            metadata,
            expected_version,
            reads,
            companions,
        )
        .await
    }

    /// The answer to a command refused by `rejection`. A stream assumed new without looking
    /// (`Some(Version::NONE)`) is looked at first: if it is not new, the caller's premise failed
    /// (a conflict, or a repeat of this very command, which gets its first outcome back), not
    /// the business rule.
    async fn refused<A: Aggregate>(
        &self,
        tenant: TenantId,
        aggregate_id: &str,
        metadata: &CommandMetadata,
        expected_version: Option<Version>,
        rejection: A::Error,
    ) -> Result<(CommandOutcome, Option<Appended<A>>), ExecuteError<A::Error>>
    where
        A::Error: 'static,
    {
        if expected_version != Some(Version::NONE) {
            return Err(ExecuteError::Rejected(rejection));
        }
        let loaded = self
            .load_for_command(tenant, metadata, A::TYPE, aggregate_id)
            .await?;
        match loaded.recorded_command {
            Some(recorded) => recorded
                .into_repeat(metadata.command_id(), A::TYPE, aggregate_id)
                .map(|outcome| (outcome, None)),
            None if loaded.version() != Version::NONE => Err(ExecuteError::Conflict {
                current: loaded.version(),
                expected: expected_version,
            }),
            None => Err(ExecuteError::Rejected(rejection)),
        }
    }

    /// The decision on `aggregate` (the stream at `current`) and its append; the outcome and,
    /// when the command appended, the aggregate and its new events (folded only by a caller that
    /// keeps the state).
    #[allow(clippy::too_many_arguments)]
    async fn decide_and_append<A>(
        &self,
        tenant: TenantId,
        aggregate_id: &str,
        mut aggregate: A,
        current: Version,
        command: A::Command,
        services: &A::Services,
        metadata: &CommandMetadata,
        expected_version: Option<Version>,
        reads: &[StreamRead],
        companions: impl FnOnce(&[A::Event]) -> Result<Vec<Companion>, ExecuteError<A::Error>>,
    ) -> Result<(CommandOutcome, Option<Appended<A>>), ExecuteError<A::Error>>
    where
        A: UniqueValues,
        A::Command: Send,
        A::Error: 'static,
    {
        let sink = EventSink::<A>::default();
        if let Err(rejection) = aggregate.handle(command, services, &sink).await {
            return self
                .refused::<A>(tenant, aggregate_id, metadata, expected_version, rejection)
                .await;
        }
        let new_events = sink.collect().await;

        if new_events.is_empty() && !metadata.is_idempotent() {
            // Nothing to write and nothing to remember.
            let outcome = CommandOutcome {
                version: current,
                last_position: None,
                event_count: 0,
                repeated: false,
            };
            return Ok((outcome, None));
        }
        let append = Append::build::<A>(tenant, aggregate_id, current, &new_events, metadata)?;
        let companions: Vec<Append> = match companions(&new_events) {
            Ok(companions) => companions,
            // A rule checked on the events decided (a budget, a locked VAT month).
            Err(ExecuteError::Rejected(rejection)) => {
                return self
                    .refused::<A>(tenant, aggregate_id, metadata, expected_version, rejection)
                    .await;
            }
            Err(error) => return Err(error),
        }
        .into_iter()
        .map(|companion| companion.into_append(tenant, metadata))
        .collect();
        let check = Reads::of(reads, &companions);
        let (version, event_count) = (append.version_after(), append.event_count());
        let claims = (append.claim_scopes.clone(), append.claim_values.clone());
        let mut appends = vec![append];
        appends.extend(companions);
        match self.batcher().append(appends, check).await {
            Ok(last_position) => {
                if last_position.is_some() {
                    self.appended
                        .send_modify(|commits| *commits = commits.wrapping_add(1));
                }
                let outcome = CommandOutcome {
                    version,
                    last_position: last_position.map(GlobalPosition::new),
                    event_count,
                    repeated: false,
                };
                Ok((
                    outcome,
                    Some(Appended {
                        before: aggregate,
                        events: new_events,
                    }),
                ))
            }
            Err(AppendFailure::StaleRead {
                aggregate_type,
                aggregate_id,
            }) => Err(ExecuteError::StaleRead {
                aggregate_type,
                aggregate_id,
            }),
            Err(AppendFailure::Unique { constraint }) => self
                .explain_unique_violation(
                    tenant,
                    A::TYPE,
                    aggregate_id,
                    &constraint,
                    &claims,
                    metadata,
                    expected_version,
                )
                .await
                .map(|outcome| (outcome, None)),
            Err(AppendFailure::Database(error)) => Err(error.into()),
        }
    }

    /// The queue that appends concurrent commands together, started with the first append.
    fn batcher(&self) -> &Batcher {
        self.batcher
            .get_or_init(|| Batcher::start(self.pool.clone()))
    }

    /// The recorded outcome of an idempotent command and the stream's events, in one snapshot
    /// (`vextrus_load_stream_rows`: the outcome's row first, if any, then the events in order).
    async fn load_for_command(
        &self,
        tenant: TenantId,
        metadata: &CommandMetadata,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<LoadedStream, sqlx::Error> {
        let rows = sqlx::query(
            "select sequence, event_type, payload, global_position, recorded_aggregate_type,
                    recorded_aggregate_id, recorded_stream_version, recorded_last_position,
                    recorded_event_count
             from vextrus_load_stream_rows($1, $2, $3, $4)",
        )
        .bind(tenant.as_uuid())
        .bind(
            metadata
                .is_idempotent()
                .then_some(metadata.command_id().as_uuid()),
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(&self.pool)
        .await?;
        let mut loaded = LoadedStream {
            recorded_command: None,
            events: Vec::with_capacity(rows.len()),
        };
        for row in &rows {
            // Columns by position, in the select list's order; an event's row has a sequence.
            match row.try_get::<Option<i64>, _>(0)? {
                Some(sequence) => loaded.events.push(LoadedEvent {
                    sequence,
                    event_type: row.try_get(1)?,
                    payload: row.try_get(2)?,
                    global_position: row.try_get(3)?,
                }),
                None => loaded.recorded_command = Some(RecordedCommand::from_row(row)?),
            }
        }
        Ok(loaded)
    }

    /// Every event of one stream of `tenant`, in order, with all it records. A stream of another
    /// tenant is empty.
    #[instrument(level = "debug", skip(self), err(level = tracing::Level::DEBUG))]
    pub async fn load_stream(
        &self,
        tenant: TenantId,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<RecordedEvent>, sqlx::Error> {
        let mut tx = tenant::begin(&self.pool, tenant).await?;
        let events = load_stream_rows(&mut tx, tenant, aggregate_type, aggregate_id).await?;
        tx.commit().await?;
        Ok(events)
    }

    /// The stream that claimed `value` in `scope` for `tenant` ([`UniqueValues`]), if any: how
    /// a sign-in finds a tenant by its slug and a user by their address, consistently with the
    /// log (a claim commits with the events that make it).
    pub async fn claimant(
        &self,
        tenant: TenantId,
        scope: &str,
        value: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        let mut tx = tenant::begin(&self.pool, tenant).await?;
        let claimant = sqlx::query_scalar(
            "select aggregate_id from unique_values
             where tenant_id = $1 and scope = $2 and value = $3",
        )
        .bind(tenant.as_uuid())
        .bind(scope)
        .bind(value)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(claimant)
    }

    /// The events of one stream of `tenant` after `version`, in order.
    pub async fn load_stream_after(
        &self,
        tenant: TenantId,
        aggregate_type: &str,
        aggregate_id: &str,
        version: Version,
    ) -> Result<Vec<RecordedEvent>, sqlx::Error> {
        let mut tx = tenant::begin(&self.pool, tenant).await?;
        let events = sqlx::query(&format!(
            "select {RECORDED_EVENT_COLUMNS} from events
             where tenant_id = $1 and aggregate_type = $2 and aggregate_id = $3 and sequence > $4
             order by sequence"
        ))
        .bind(tenant.as_uuid())
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(version.get())
        .try_map(|row: PgRow| RecordedEvent::from_row(&row))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(events)
    }

    /// The current state and version of one aggregate of `tenant`.
    pub async fn load_aggregate<A: Aggregate<Error: 'static>>(
        &self,
        tenant: TenantId,
        aggregate_id: &str,
    ) -> Result<(A, Version), ExecuteError<A::Error>> {
        Ok(self.fold::<A>(tenant, aggregate_id).await?)
    }

    /// Stream `aggregate_id` of `A` folded into its state, and its version.
    pub async fn fold<A: Aggregate>(
        &self,
        tenant: TenantId,
        aggregate_id: &str,
    ) -> Result<(A, Version), crate::error::CacheError> {
        let history = self.load_stream(tenant, A::TYPE, aggregate_id).await?;
        let version = history
            .last()
            .map_or(Version::NONE, |event| Version::new(event.sequence));
        let mut aggregate = A::default();
        for event in history {
            aggregate.apply(
                event
                    .decode()
                    .map_err(|source| crate::error::CacheError::Decode {
                        position: event.global_position,
                        source,
                    })?,
            );
        }
        Ok((aggregate, version))
    }

    /// A unique violation refused the append; says which rule it was. The command id is checked
    /// first, because a concurrent repeat of the same command collides on the stream too.
    #[allow(clippy::too_many_arguments)]
    async fn explain_unique_violation<E: std::error::Error + 'static>(
        &self,
        tenant: TenantId,
        aggregate_type: &str,
        aggregate_id: &str,
        constraint: &str,
        (claim_scopes, claim_values): &(Vec<String>, Vec<String>),
        metadata: &CommandMetadata,
        expected_version: Option<Version>,
    ) -> Result<CommandOutcome, ExecuteError<E>> {
        let loaded = self
            .load_for_command(tenant, metadata, aggregate_type, aggregate_id)
            .await?;
        if let Some(recorded) = loaded.recorded_command {
            return recorded.into_repeat(metadata.command_id(), aggregate_type, aggregate_id);
        }
        match constraint {
            "events_pkey" => Err(ExecuteError::Conflict {
                current: loaded.version(),
                expected: expected_version,
            }),
            "unique_values_pkey" => {
                let mut tx = tenant::begin(&self.pool, tenant).await?;
                let taken: Option<(String, String)> = sqlx::query_as(
                    "select scope, value from unique_values
                     where tenant_id = $1 and (scope, value) in (select * from unnest($2::text[], $3::text[]))
                     limit 1",
                )
                .bind(tenant.as_uuid())
                .bind(claim_scopes)
                .bind(claim_values)
                .fetch_optional(&mut *tx)
                .await?;
                tx.rollback().await?;
                Err(match taken {
                    Some((scope, value)) => ExecuteError::ValueTaken { scope, value },
                    // A violation means a committed claim, and claims are never released, so the
                    // row is there; should it not be, a conflict is the safe, retryable answer.
                    None => ExecuteError::Conflict {
                        current: loaded.version(),
                        expected: expected_version,
                    },
                })
            }
            _ => Err(ExecuteError::Database(sqlx::Error::Protocol(format!(
                "unexpected unique violation of {constraint}"
            )))),
        }
    }
}

/// What a command appended to its stream: the state it was decided on and the new events.
struct Appended<A: Aggregate> {
    before: A,
    events: Vec<A::Event>,
}

impl<A: Aggregate> Appended<A> {
    /// The stream's state after the command.
    fn state(self) -> A {
        let mut state = self.before;
        for event in self.events {
            state.apply(event);
        }
        state
    }
}

/// The outcome recorded for a command id in `commands`.
#[derive(Debug)]
struct RecordedCommand {
    aggregate_type: String,
    aggregate_id: String,
    outcome: CommandOutcome,
}

impl RecordedCommand {
    /// The outcome's row of `vextrus_load_stream_rows` (columns 4 to 8).
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let event_count: i32 = row.try_get(8)?;
        Ok(Self {
            aggregate_type: row.try_get(4)?,
            aggregate_id: row.try_get(5)?,
            outcome: CommandOutcome {
                version: Version::new(row.try_get(6)?),
                last_position: row.try_get::<Option<i64>, _>(7)?.map(GlobalPosition::new),
                event_count: u32::try_from(event_count).map_err(|error| {
                    sqlx::Error::ColumnDecode {
                        index: "recorded_event_count".to_owned(),
                        source: Box::new(error),
                    }
                })?,
                repeated: true,
            },
        })
    }

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

/// An event as `vextrus_load_stream_rows` returns it: what rebuilding the aggregate needs.
#[derive(Debug)]
struct LoadedEvent {
    sequence: i64,
    event_type: String,
    payload: Value,
    global_position: i64,
}

#[derive(Debug, Default)]
struct LoadedStream {
    recorded_command: Option<RecordedCommand>,
    events: Vec<LoadedEvent>,
}

impl LoadedStream {
    fn version(&self) -> Version {
        self.events
            .last()
            .map_or(Version::NONE, |event| Version::new(event.sequence))
    }
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
pub(crate) struct Append {
    pub(crate) tenant: Uuid,
    pub(crate) aggregate_type: String,
    pub(crate) aggregate_id: String,
    pub(crate) version_before: Version,
    pub(crate) sequences: Vec<i64>,
    pub(crate) event_types: Vec<String>,
    pub(crate) event_versions: Vec<String>,
    pub(crate) payloads: Vec<Value>,
    pub(crate) claim_scopes: Vec<String>,
    pub(crate) claim_values: Vec<String>,
    pub(crate) actor: String,
    pub(crate) actor_roles: Vec<String>,
    pub(crate) command_id: Uuid,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) record_command: bool,
    pub(crate) correlation_id: Uuid,
    pub(crate) causation_id: Option<Uuid>,
    pub(crate) request_id: Option<String>,
    pub(crate) client_address: Option<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) project_id: Option<Uuid>,
    pub(crate) site_id: Option<Uuid>,
    pub(crate) request_metadata: Value,
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

        let mut append = Self::empty(tenant, A::TYPE, aggregate_id, version_before, metadata);
        for (offset, event) in (1..).zip(events) {
            let (event_type, payload) = codec::encode(event).map_err(ExecuteError::Encode)?;
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

    pub(crate) fn empty(
        tenant: TenantId,
        aggregate_type: &str,
        aggregate_id: &str,
        version_before: Version,
        metadata: &CommandMetadata,
    ) -> Self {
        Self {
            tenant: tenant.as_uuid(),
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            version_before,
            sequences: Vec::new(),
            event_types: Vec::new(),
            event_versions: Vec::new(),
            payloads: Vec::new(),
            claim_scopes: Vec::new(),
            claim_values: Vec::new(),
            actor: metadata.actor.as_str().to_owned(),
            actor_roles: metadata.actor_roles.clone(),
            command_id: metadata.command_id().as_uuid(),
            idempotency_key: metadata.idempotency_key().map(str::to_owned),
            record_command: metadata.is_idempotent(),
            correlation_id: metadata.correlation_id,
            causation_id: metadata.causation_id,
            request_id: metadata.request_id.clone(),
            client_address: metadata.client_address.map(|address| address.to_string()),
            user_agent: metadata.user_agent.clone(),
            project_id: metadata.project_id,
            site_id: metadata.site_id,
            request_metadata: Value::Object(metadata.request_metadata.clone()),
        }
    }

    fn event_count(&self) -> u32 {
        u32::try_from(self.sequences.len()).unwrap_or(u32::MAX)
    }

    fn version_after(&self) -> Version {
        Version::new(self.version_before.get() + i64::from(self.event_count()))
    }
}

/// A command's read set: the streams its decision read, at the versions it saw.
#[derive(Debug, Default)]
pub(crate) struct Reads {
    pub(crate) types: Vec<&'static str>,
    pub(crate) ids: Vec<String>,
    pub(crate) versions: Vec<i64>,
    pub(crate) exclusive: Vec<bool>,
}

impl Reads {
    /// The read set; the companions' streams, which the command writes, are locked exclusively.
    fn of(reads: &[StreamRead], companions: &[Append]) -> Self {
        let written = |read: &StreamRead| {
            read.written
                || companions.iter().any(|c| {
                    c.aggregate_type == read.aggregate_type && c.aggregate_id == read.aggregate_id
                })
        };
        Self {
            types: reads.iter().map(|read| read.aggregate_type).collect(),
            ids: reads.iter().map(|read| read.aggregate_id.clone()).collect(),
            versions: reads.iter().map(|read| read.version.get()).collect(),
            exclusive: reads.iter().map(written).collect(),
        }
    }
}
