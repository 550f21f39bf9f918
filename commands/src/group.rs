//! What the database calls of concurrent requests grouped into one need: a queue's waiting jobs
//! taken together ([`take_waiting`]) and a connection a worker keeps from one call to the next
//! ([`HeldConnection`]). The store's group commit (the append batcher) and the API's access
//! checks are built on them.

use std::collections::VecDeque;

use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;

/// Moves what waits in `receiver` to `held`, until `held` holds `max` jobs or nothing waits.
pub fn take_waiting<J>(
    receiver: &mut mpsc::UnboundedReceiver<J>,
    held: &mut VecDeque<J>,
    max: usize,
) {
    while held.len() < max {
        match receiver.try_recv() {
            Ok(job) => held.push_back(job),
            Err(_) => break,
        }
    }
}

/// A worker's connection, kept from one call to the next (no pool round trip per call) and
/// replaced after an error. It is taken out of the pool (detached), so a worker never holds a
/// connection the pool's other users wait for: each worker opens one more connection than the
/// pool's size.
#[derive(Debug)]
pub struct HeldConnection {
    pool: PgPool,
    held: Option<PgConnection>,
}

impl HeldConnection {
    pub fn new(pool: PgPool) -> Self {
        Self { pool, held: None }
    }

    /// The held connection, or a fresh one from the pool.
    pub async fn get(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        let held = match self.held.take() {
            Some(held) => held,
            None => self.pool.acquire().await?.detach(),
        };
        Ok(self.held.insert(held))
    }

    /// Lets the connection go after a failed call (it may be broken): the next call takes a
    /// fresh one.
    pub fn discard(&mut self) {
        self.held = None;
    }
}
