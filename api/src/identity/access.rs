//! Does a verified token still stand? Asked of the log on every request ([`check`]), so that a
//! suspension, a disable, a password change, a role change or a sign-out takes effect at once in
//! every API process (migration 0021, `vextrus_access_check`).
//!
//! The requests that arrive while a check is running are asked together in the next one
//! ([`AccessChecks`]): one query per group, `vextrus_access_check` once per distinct token in
//! it. Every answer still comes from a query that started after its request arrived; a busy API
//! just asks the log once per group instead of once per request (`vextrus bench http`, README
//! "Through the HTTP server").

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use sqlx::{PgPool, Row};
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;
use vextrus_commands::group::{HeldConnection, take_waiting};
use vextrus_domain::identity::{
    OUTDATING_EVENTS, SESSION_ENDING_EVENTS, STATUS_EVENTS, SUSPENDED_EVENT,
};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// Refuses `principal` when its tenant is suspended, or (for a sign-in token) its session has
/// ended or the user's password, roles or standing changed since the token was issued.
pub async fn check(state: &AppState, principal: &Principal) -> Result<(), ApiError> {
    let verdict = state.access_checks().ask(Asked::of(principal)).await?;
    if verdict.tenant_event.as_deref() == Some(SUSPENDED_EVENT) {
        return Err(ApiError::Unauthenticated(
            "the tenant is suspended; its tokens and keys are refused until it is resumed".into(),
        ));
    }
    if verdict.ended {
        return Err(ApiError::Unauthenticated(
            "the session has ended; sign in again".into(),
        ));
    }
    if verdict.outdated {
        return Err(ApiError::Unauthenticated(
            "the token is outdated: the user's password, roles or standing changed since it was \
             issued; refresh it (POST /v1/auth/refresh) or sign in again"
                .into(),
        ));
    }
    Ok(())
}

/// Most checks in one query.
const MAX_GROUP: usize = 64;
/// Groups asked at once, each on a connection of its own: while one runs, the next gathers.
const WORKERS: usize = 2;

/// What a check asks of the log: the tenant, and for a sign-in token its user, the user's stream
/// version when it was issued and its session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Asked {
    tenant: Uuid,
    user: Option<String>,
    since: i64,
    session: Option<String>,
}

impl Asked {
    fn of(principal: &Principal) -> Self {
        let session = principal.session;
        Self {
            tenant: principal.tenant.as_uuid(),
            user: session.map(|session| session.user.as_uuid().to_string()),
            since: session.map_or(0, |session| session.version),
            session: session.map(|session| session.session.as_uuid().to_string()),
        }
    }
}

/// The log's answer for one [`Asked`].
#[derive(Debug, Clone)]
struct Verdict {
    /// The tenant's latest suspension or resumption, if any.
    tenant_event: Option<String>,
    outdated: bool,
    ended: bool,
}

struct Pending {
    asked: Asked,
    answer: oneshot::Sender<Result<Verdict, Arc<sqlx::Error>>>,
}

/// The queue of checks and its workers; they stop when the last handle is dropped.
#[derive(Debug)]
pub struct AccessChecks {
    queue: mpsc::UnboundedSender<Pending>,
}

impl AccessChecks {
    /// Starts the workers on the current Tokio runtime; they ask on `read_pool`'s connections
    /// (`vextrus_reader`, which may call `vextrus_access_check`).
    pub fn start(read_pool: PgPool) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel::<Pending>();
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..WORKERS {
            let receiver = Arc::clone(&receiver);
            let mut connection = HeldConnection::new(read_pool.clone());
            tokio::spawn(async move {
                loop {
                    let mut group = VecDeque::new();
                    {
                        // Waits for work holding the queue; the other worker meanwhile asks.
                        let mut receiver = receiver.lock().await;
                        let Some(first) = receiver.recv().await else {
                            return;
                        };
                        group.push_back(first);
                        take_waiting(&mut receiver, &mut group, MAX_GROUP);
                    }
                    answer(&mut connection, group).await;
                }
            });
        }
        Self { queue }
    }

    async fn ask(&self, asked: Asked) -> Result<Verdict, ApiError> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Pending { asked, answer })
            .map_err(|_| ApiError::database(sqlx::Error::PoolClosed))?;
        match answered.await {
            Ok(Ok(verdict)) => Ok(verdict),
            Ok(Err(error)) => Err(ApiError::database_ref(&error)),
            Err(_) => Err(ApiError::database(sqlx::Error::WorkerCrashed)),
        }
    }
}

/// Asks the log about every distinct token of `group` in one query and answers each request.
async fn answer(connection: &mut HeldConnection, group: VecDeque<Pending>) {
    let mut distinct: Vec<Asked> = Vec::new();
    let mut index: HashMap<Asked, usize> = HashMap::new();
    let at: Vec<usize> = group
        .iter()
        .map(|pending| {
            *index.entry(pending.asked.clone()).or_insert_with(|| {
                distinct.push(pending.asked.clone());
                distinct.len() - 1
            })
        })
        .collect();
    let verdicts = match ask_log(connection, &distinct).await {
        Ok(verdicts) => Ok(verdicts),
        Err(error) => {
            // The connection may be broken: the next group takes a fresh one from the pool.
            connection.discard();
            Err(Arc::new(error))
        }
    };
    for (pending, at) in group.into_iter().zip(at) {
        let answer = match &verdicts {
            Ok(verdicts) => verdicts.get(at).cloned().ok_or_else(|| {
                Arc::new(sqlx::Error::Protocol(
                    "no access verdict for a token".into(),
                ))
            }),
            Err(error) => Err(Arc::clone(error)),
        };
        // The request may have gone (a cancelled request): nothing to answer.
        let _ = pending.answer.send(answer);
    }
}

/// One `vextrus_access_check` per entry of `asked`, in one query; the verdicts in its order.
async fn ask_log(
    connection: &mut HeldConnection,
    asked: &[Asked],
) -> Result<Vec<Verdict>, sqlx::Error> {
    let tenants: Vec<Uuid> = asked.iter().map(|asked| asked.tenant).collect();
    let users: Vec<Option<&str>> = asked.iter().map(|asked| asked.user.as_deref()).collect();
    let since: Vec<i64> = asked.iter().map(|asked| asked.since).collect();
    let sessions: Vec<Option<&str>> = asked.iter().map(|asked| asked.session.as_deref()).collect();
    let rows = sqlx::query(
        "select c.n, r.tenant_event, r.outdated, r.ended
         from unnest($1::uuid[], $2::text[], $3::int8[], $4::text[])
              with ordinality as c(tenant, user_id, since, session, n)
         cross join lateral vextrus_access_check(
             c.tenant, c.user_id, c.since, c.session, $5, $6, $7) as r
         order by c.n",
    )
    .bind(&tenants)
    .bind(&users)
    .bind(&since)
    .bind(&sessions)
    .bind(STATUS_EVENTS)
    .bind(OUTDATING_EVENTS)
    .bind(SESSION_ENDING_EVENTS)
    .fetch_all(connection.get().await?)
    .await?;
    if rows.len() != asked.len() {
        return Err(sqlx::Error::Protocol(format!(
            "{} access verdicts for {} tokens",
            rows.len(),
            asked.len()
        )));
    }
    rows.iter()
        .map(|row| {
            Ok(Verdict {
                tenant_event: row.try_get("tenant_event")?,
                outdated: row.try_get("outdated")?,
                ended: row.try_get("ended")?,
            })
        })
        .collect()
}
