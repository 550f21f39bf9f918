//! The state of streams kept in memory: those that decisions read often (an organization's ledger
//! and hierarchy, read by every posting), so that a posting costs one round trip, and, through
//! [`StreamCaches`], each stream [`EventStore::execute`] last appended to, so that its next
//! command is decided without loading it.
//!
//! A cached state may be stale: another process may have appended since. That is safe because a
//! decision on it appends with the version it saw (design.md D12), and a stale version is refused
//! ([`ExecuteError::StaleRead`](crate::ExecuteError::StaleRead) or a conflict); the caller then [`refresh`](StreamCache::refresh)es
//! and decides again. A refusal decided on cached state should be checked the same way before it
//! is reported (refresh, decide again), since a refusal writes nothing that could be refused.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use cqrs_es::Aggregate;
use vextrus_domain::TenantId;

use crate::error::CacheError;
use crate::metadata::Version;
use crate::store::EventStore;

/// How many streams one cache holds before it starts over. A cache is per aggregate type; an
/// entry is a stream's folded state (a chart of a few thousand accounts at most).
const CAPACITY: usize = 10_000;

/// A stream's folded state and the version it is at.
type Folded<A> = (Arc<A>, Version);

/// Folded states of streams of `A`, by tenant and stream id, with their versions.
#[derive(Debug)]
pub struct StreamCache<A> {
    entries: Mutex<HashMap<(TenantId, String), Folded<A>>>,
}

impl<A> Default for StreamCache<A> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<A: Aggregate + Clone> StreamCache<A> {
    /// The cached state of stream `id`, or the stream loaded now.
    pub async fn get(
        &self,
        store: &EventStore,
        tenant: TenantId,
        id: &str,
    ) -> Result<Folded<A>, CacheError> {
        if let Some(cached) = self.cached(tenant, id) {
            return Ok(cached);
        }
        self.refresh(store, tenant, id).await
    }

    /// The stream brought up to date: the events after the cached version applied to it.
    pub async fn refresh(
        &self,
        store: &EventStore,
        tenant: TenantId,
        id: &str,
    ) -> Result<Folded<A>, CacheError> {
        let (state, version) = self
            .cached(tenant, id)
            .unwrap_or_else(|| (Arc::new(A::default()), Version::NONE));
        let newer = store
            .load_stream_after(tenant, A::TYPE, id, version)
            .await?;
        if newer.is_empty() {
            self.put(tenant, id, state.clone(), version);
            return Ok((state, version));
        }
        let mut state = A::clone(&state);
        let mut version = version;
        for event in newer {
            state.apply(event.decode().map_err(|source| CacheError::Decode {
                position: event.global_position,
                source,
            })?);
            version = Version::new(event.sequence);
        }
        let state = Arc::new(state);
        self.put(tenant, id, state.clone(), version);
        Ok((state, version))
    }

    /// Records that stream `id` is at `version` with `state` (after a successful append).
    pub fn put(&self, tenant: TenantId, id: &str, state: Arc<A>, version: Version) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CAPACITY && !entries.contains_key(&(tenant, id.to_owned())) {
            entries.clear();
        }
        let entry = entries
            .entry((tenant, id.to_owned()))
            .or_insert_with(|| (state.clone(), version));
        // Never go back: a slower writer must not replace a newer state.
        if version >= entry.1 {
            *entry = (state, version);
        }
    }

    /// The cached state of stream `id`, if there is one; never loads.
    pub(crate) fn cached(&self, tenant: TenantId, id: &str) -> Option<Folded<A>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(&(tenant, id.to_owned())).cloned()
    }

    /// Drops stream `id`'s state: it turned out stale.
    pub(crate) fn forget(&self, tenant: TenantId, id: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.remove(&(tenant, id.to_owned()));
    }
}

/// One [`StreamCache`] per aggregate type, created on first use: the states of the streams an
/// [`EventStore`] last decided commands on.
#[derive(Default)]
pub(crate) struct StreamCaches {
    by_type: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl StreamCaches {
    /// The cache of `A`'s streams.
    pub(crate) fn of<A: Aggregate + Clone + 'static>(&self) -> Arc<StreamCache<A>> {
        let mut by_type = self.by_type.lock().unwrap_or_else(PoisonError::into_inner);
        let cache = by_type
            .entry(TypeId::of::<A>())
            .or_insert_with(|| Arc::new(StreamCache::<A>::default()));
        // The entry for A's TypeId is only ever a StreamCache<A>; a fresh one would merely be
        // empty.
        Arc::clone(cache)
            .downcast::<StreamCache<A>>()
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for StreamCaches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let types = self
            .by_type
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("StreamCaches")
            .field("types", &types)
            .finish()
    }
}
