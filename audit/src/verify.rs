//! `vextrus audit verify`: walks every stream in order, recomputes each event's hash from its
//! content, its metadata and the predecessor hash stored with it, checks that this predecessor
//! hash is the stored hash of the event before it, and reports every event that does not match
//! (altered), every link that does not hold (unlinked) and every gap where events were removed.
//!
//! What the chain alone cannot see: the *last* events of a stream removed, or a whole stream
//! rewritten with freshly computed hashes. Signed checkpoints ([`crate::checkpoint`]) cover those
//! up to their position.

use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;
use vextrus_domain::TenantId;

use crate::chain::{CHAIN_COLUMNS, ChainRow, EventHash};

/// What was found wrong with one event or stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Tampering {
    /// The stored hash does not match the event's content and metadata: this event (or its
    /// hash) was changed, or moved to another place in its stream.
    Altered,
    /// The event is intact, but the event before it is not the one it was chained to: that one
    /// was replaced, moved, or rewritten with a recomputed hash.
    Unlinked,
    /// Sequences `first..=last` of the stream are missing before this event: they were removed.
    Missing { first: i64, last: i64 },
}

/// One finding, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub tenant_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The event the finding is reported at (for [`Tampering::Missing`], the first event after
    /// the gap).
    pub sequence: i64,
    pub global_position: i64,
    #[serde(flatten)]
    pub tampering: Tampering,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stream = format!(
            "tenant {} stream {}/{}",
            self.tenant_id, self.aggregate_type, self.aggregate_id
        );
        match &self.tampering {
            Tampering::Altered => write!(
                f,
                "ALTERED  position {} ({stream} sequence {}): content, metadata or order differ from its hash",
                self.global_position, self.sequence
            ),
            Tampering::Unlinked => write!(
                f,
                "UNLINKED position {} ({stream} sequence {}): the event before it is not the one it was chained to",
                self.global_position, self.sequence
            ),
            Tampering::Missing { first, last } => write!(
                f,
                "MISSING  {stream} sequence {first}..={last}: removed (the chain breaks before position {}, sequence {})",
                self.global_position, self.sequence
            ),
        }
    }
}

/// The outcome of one verification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub tenants: u64,
    pub streams: u64,
    pub events: u64,
    pub findings: Vec<Finding>,
}

impl ChainReport {
    pub fn is_intact(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Where the walk is: the stream it is in and the last event it saw there.
struct Walk {
    tenant: Option<Uuid>,
    stream: Option<(String, String)>,
    last_sequence: i64,
    last_hash: Option<EventHash>,
}

/// Recomputes every chain (of `tenant`, or of all tenants) and reports what does not match.
/// `pool` must see every event: the owner, or any role without row-level security on `events`.
/// Reads in primary-key order, one row at a time, so memory stays flat at any log size;
/// `on_progress` is called with the number of events checked so far, every 10,000 events.
pub async fn verify_chains(
    pool: &PgPool,
    tenant: Option<TenantId>,
    mut on_progress: impl FnMut(u64),
) -> Result<ChainReport, sqlx::Error> {
    let sql = format!(
        "select {CHAIN_COLUMNS} from events
         where ($1::uuid is null or tenant_id = $1)
         order by tenant_id, aggregate_type, aggregate_id, sequence"
    );
    let mut rows = sqlx::query_as::<_, ChainRow>(&sql)
        .bind(tenant.map(|tenant| tenant.as_uuid()))
        .fetch(pool);
    let mut report = ChainReport::default();
    let mut walk = Walk {
        tenant: None,
        stream: None,
        last_sequence: 0,
        last_hash: None,
    };
    while let Some(row) = rows.try_next().await? {
        check(&mut report, &mut walk, &row);
        if report.events % 10_000 == 0 {
            on_progress(report.events);
        }
    }
    on_progress(report.events);
    Ok(report)
}

/// Checks one event against the walk so far, and moves the walk on.
fn check(report: &mut ChainReport, walk: &mut Walk, row: &ChainRow) {
    report.events += 1;
    if walk.tenant != Some(row.tenant_id) {
        walk.tenant = Some(row.tenant_id);
        walk.stream = None;
        report.tenants += 1;
    }
    let same_stream = walk
        .stream
        .as_ref()
        .is_some_and(|(kind, id)| *kind == row.aggregate_type && *id == row.aggregate_id);
    if !same_stream {
        walk.stream = Some((row.aggregate_type.clone(), row.aggregate_id.clone()));
        walk.last_sequence = 0;
        walk.last_hash = None;
        report.streams += 1;
    }
    let finding = |tampering| Finding {
        tenant_id: row.tenant_id,
        aggregate_type: row.aggregate_type.clone(),
        aggregate_id: row.aggregate_id.clone(),
        sequence: row.sequence,
        global_position: row.global_position,
        tampering,
    };
    if row.sequence > walk.last_sequence + 1 {
        // The link to the missing event cannot be checked; the gap is the finding.
        report.findings.push(finding(Tampering::Missing {
            first: walk.last_sequence + 1,
            last: row.sequence - 1,
        }));
    } else if row
        .stored_hash()
        .is_none_or(|stored| Some(stored) != row.expected_hash(row.previous_hash.as_deref()))
    {
        report.findings.push(finding(Tampering::Altered));
    } else if row.previous_hash.as_deref() != walk.last_hash.as_ref().map(|hash| hash.as_slice()) {
        report.findings.push(finding(Tampering::Unlinked));
    }
    walk.last_sequence = row.sequence;
    // The next link is checked against what is stored, so one altered event is reported once,
    // not with everything after it.
    walk.last_hash = row.stored_hash();
}
