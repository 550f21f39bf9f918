//! The tenant context of a request (design.md D7), and the one way the API reads read models.
//!
//! The tenant is the verified token's. `X-Tenant-ID`, when sent, must equal it (else 403).
//! `X-Project-ID` and `X-Site-ID`, when sent, must name a project and a site of the tenant (else
//! 404, the same answer as for any id the tenant cannot see) and, when both are sent, the site
//! must belong to the project (else 422). The validated context travels into the audit metadata
//! of every command the request issues.
//!
//! The context also knows where in the tenant the request acts, from its path (`organization_id`
//! and `project_id`): its [`Scope`]. A role held in one organization or project counts only there
//! ([`Principal::allows`]); [`RequestContext::read`] refuses a caller who may not read the whole of
//! the request's scope, and [`RequestContext::read_filtered`] hands the hierarchy's queries what
//! the caller may see of it.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;
use vextrus_commands::{ActorId, CommandMetadata, tenant};
use vextrus_domain::TenantId;
use vextrus_domain::ids::{OrganizationId, ProjectId, SiteId};

use crate::auth::{Permission, Principal, Readable, Scope};
use crate::client_address::client_address;
use crate::error::ApiError;
use crate::state::AppState;

pub const TENANT_HEADER: &str = "x-tenant-id";
pub const PROJECT_HEADER: &str = "x-project-id";
pub const SITE_HEADER: &str = "x-site-id";
pub const CORRELATION_HEADER: &str = "x-correlation-id";
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Where a request comes from, signed in or not: what the audit metadata of its commands records
/// besides the actor.
#[derive(Debug, Clone, Default)]
pub struct RequestOrigin {
    /// `X-Request-ID` (generated when the client sent none).
    pub request_id: Option<String>,
    /// `X-Correlation-ID`: ties this request to the user action that caused it.
    pub correlation_id: Option<Uuid>,
    /// The peer address of the connection, or the client behind trusted proxies
    /// ([`crate::client_address`]).
    pub client_address: Option<IpAddr>,
    /// The `User-Agent` header, cut to [`MAX_USER_AGENT_LEN`] bytes.
    pub user_agent: Option<String>,
}

impl RequestOrigin {
    /// Audit metadata for a command `actor` issues from this origin (see
    /// [`RequestContext::command_metadata`] for the idempotency key).
    pub fn command_metadata(
        &self,
        actor: ActorId,
        actor_roles: Vec<String>,
        idempotency_key: Option<(&str, &str)>,
    ) -> CommandMetadata {
        let mut metadata = CommandMetadata::new(actor);
        metadata.actor_roles = actor_roles;
        if let Some((operation, key)) = idempotency_key {
            metadata = metadata.with_idempotency_key(operation, key);
        }
        if let Some(correlation_id) = self.correlation_id {
            metadata = metadata.with_correlation_id(correlation_id);
        }
        if let Some(request_id) = &self.request_id {
            metadata = metadata.with_request_id(request_id.clone());
        }
        metadata.client_address = self.client_address;
        metadata.user_agent = self.user_agent.clone();
        vextrus_commands::trace::record_current(&mut metadata);
        let span = tracing::Span::current();
        span.record("command_id", tracing::field::display(metadata.command_id()));
        span.record(
            "correlation_id",
            tracing::field::display(metadata.correlation_id),
        );
        metadata
    }
}

impl FromRequestParts<AppState> for RequestOrigin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Self {
            request_id: request_id(&parts.headers)?,
            correlation_id: uuid_header(&parts.headers, CORRELATION_HEADER)?,
            client_address: parts.extensions.get::<ConnectInfo<SocketAddr>>().map(
                |ConnectInfo(peer)| {
                    client_address(peer.ip(), &parts.headers, &state.settings().trusted_proxies)
                },
            ),
            user_agent: user_agent(&parts.headers),
        })
    }
}

/// Who is asking, for which tenant, in which project or site.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub principal: Principal,
    pub tenant: TenantId,
    /// Where the request acts, from its path: the organization of `/v1/organizations/{id}/…`
    /// (and the project of `…/projects/{id}`), else the whole tenant.
    pub scope: Scope,
    /// `X-Project-ID`: the project the caller says it works in (recorded with its commands).
    pub project: Option<ProjectId>,
    pub site: Option<SiteId>,
    pub origin: RequestOrigin,
}

impl RequestContext {
    /// Opens a read-only transaction that sees exactly this request's tenant, for a caller who
    /// may read the whole of the request's [`scope`](Self::scope) (else 403): the one way the
    /// API reads read models (through [`tenant::begin`], as `vextrus_reader`).
    pub async fn read(&self, state: &AppState) -> Result<Transaction<'static, Postgres>, ApiError> {
        self.principal
            .require_in(Permission::Read, self.scope, "reading this")?;
        self.tenant_transaction(state).await
    }

    /// The tenant's read transaction with what the caller may see in it, for queries that show
    /// each caller its part (the hierarchy: a site engineer sees the projects they work on).
    /// The caller's query must apply the [`Readable`].
    pub async fn read_filtered(
        &self,
        state: &AppState,
    ) -> Result<(Transaction<'static, Postgres>, Readable), ApiError> {
        Ok((
            self.tenant_transaction(state).await?,
            self.principal.readable(),
        ))
    }

    /// The tenant's read transaction without a scope check: for what every caller of the tenant
    /// may learn (whether an id exists, how far a projection is).
    pub(crate) async fn tenant_transaction(
        &self,
        state: &AppState,
    ) -> Result<Transaction<'static, Postgres>, ApiError> {
        tenant::begin(state.read_pool(), self.tenant)
            .await
            .map_err(ApiError::database)
    }

    /// Audit metadata for a command issued by this request. With an idempotency key, the command
    /// id is derived from the key and `operation`, so one key names one kind of request.
    pub fn command_metadata(
        &self,
        idempotency_key: Option<&str>,
        operation: &str,
    ) -> CommandMetadata {
        let mut metadata = self.origin.command_metadata(
            self.principal.subject.clone(),
            self.principal.role_names(),
            idempotency_key.map(|key| (operation, key)),
        );
        metadata.project_id = self.project.map(|project| project.as_uuid());
        metadata.site_id = self.site.map(|site| site.as_uuid());
        metadata
    }

    async fn validate_units(&self, state: &AppState) -> Result<(), ApiError> {
        if self.project.is_none() && self.site.is_none() {
            return Ok(());
        }
        let mut tx = self.tenant_transaction(state).await?;
        if let Some(project) = self.project {
            let exists: bool = sqlx::query_scalar(
                "select exists (select from org_projects where project_id = $1)",
            )
            .bind(project.as_uuid())
            .fetch_one(&mut *tx)
            .await
            .map_err(ApiError::database)?;
            if !exists {
                return Err(ApiError::NotFound(format!("project {project} not found")));
            }
        }
        if let Some(site) = self.site {
            let site_project: Option<Uuid> =
                sqlx::query_scalar("select project_id from org_sites where site_id = $1")
                    .bind(site.as_uuid())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(ApiError::database)?;
            let Some(site_project) = site_project else {
                return Err(ApiError::NotFound(format!("site {site} not found")));
            };
            if let Some(project) = self.project.filter(|p| p.as_uuid() != site_project) {
                return Err(ApiError::RuleViolated {
                    rule: "context-mismatch",
                    detail: format!("site {site} does not belong to project {project}"),
                });
            }
        }
        tx.rollback().await.map_err(ApiError::database)
    }
}

impl FromRequestParts<AppState> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = Principal::from_request_parts(parts, state).await?;
        // Every route that touches the tenant's data needs at least `read` somewhere (every role
        // has it; a user with no role has nothing here).
        if !principal.holds_anywhere(Permission::Read) {
            principal.require(Permission::Read, "using the tenant's data")?;
        }
        let scope = path_scope(parts, state).await?;
        let tenant = principal.tenant;
        if let Some(claimed) = uuid_header(&parts.headers, TENANT_HEADER)? {
            if claimed != tenant.as_uuid() {
                return Err(ApiError::Forbidden(
                    "X-Tenant-ID does not match the tenant of the token".into(),
                ));
            }
        }
        tracing::Span::current().record("tenant_id", tracing::field::display(tenant));
        let context = Self {
            tenant,
            scope,
            project: uuid_header(&parts.headers, PROJECT_HEADER)?.map(ProjectId::from_uuid),
            site: uuid_header(&parts.headers, SITE_HEADER)?.map(SiteId::from_uuid),
            origin: RequestOrigin::from_request_parts(parts, state).await?,
            principal,
        };
        context.validate_units(state).await?;
        Ok(context)
    }
}

/// The scope a request's path names: `organization_id` (with `project_id`, a project of it), else
/// the whole tenant. An id that is not a UUID answers 404, as [`crate::extract::PathIds`] does.
async fn path_scope(parts: &mut Parts, state: &AppState) -> Result<Scope, ApiError> {
    let not_found = || ApiError::NotFound("no resource exists at this path".into());
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| not_found())?;
    let id = |name: &str| {
        params
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| Uuid::parse_str(value).map_err(|_| not_found()))
            .transpose()
    };
    Ok(match (id("organization_id")?, id("project_id")?) {
        (Some(organization), Some(project)) => Scope::Project {
            organization: OrganizationId::from_uuid(organization),
            project: ProjectId::from_uuid(project),
        },
        (Some(organization), None) => Scope::Organization(OrganizationId::from_uuid(organization)),
        (None, _) => Scope::Tenant,
    })
}

/// The longest `X-Request-ID` recorded with events.
const MAX_REQUEST_ID_LEN: usize = 200;

fn request_id(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    headers
        .get(REQUEST_ID_HEADER)
        .map(|value| {
            value
                .to_str()
                .ok()
                .filter(|id| {
                    id.len() <= MAX_REQUEST_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic())
                })
                .map(str::to_owned)
                .ok_or_else(|| {
                    ApiError::Malformed(format!(
                        "X-Request-ID must be 1 to {MAX_REQUEST_ID_LEN} visible ASCII characters"
                    ))
                })
        })
        .transpose()
}

/// The longest `User-Agent` recorded with events; longer ones are cut (on a character boundary).
pub const MAX_USER_AGENT_LEN: usize = 512;

/// The `User-Agent`, lossily decoded and cut to [`MAX_USER_AGENT_LEN`]: it is recorded for
/// auditors, never refused.
fn user_agent(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::USER_AGENT)?;
    let text = String::from_utf8_lossy(value.as_bytes());
    let mut end = text.len().min(MAX_USER_AGENT_LEN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(text[..end].to_owned())
}

fn uuid_header(headers: &HeaderMap, name: &str) -> Result<Option<Uuid>, ApiError> {
    headers
        .get(name)
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|text| Uuid::parse_str(text.trim()).ok())
                .ok_or_else(|| ApiError::Malformed(format!("{name} must be a UUID")))
        })
        .transpose()
}
