//! The command kit: what every command route shares, so that a route is the rule it serves and
//! little else (read-model-layer.md, "Commands").
//!
//! - [`Command`] extracts a request's tenant context, `Idempotency-Key` and `If-Match` as one
//!   argument; [`Command::require`] checks the caller's roles and [`Command::named`] starts the
//!   command it issues.
//! - [`Issue`] runs that command on a stream of any aggregate: at the `If-Match` version when the
//!   client sent one, else absorbing a lost race. Store and domain errors become problems through
//!   the one `From<ExecuteError<E>>` for every aggregate error that is a
//!   [`DomainProblem`](crate::error::DomainProblem).
//! - [`Accepted`] is the answer: 200 or 201 with [`CommandAccepted`], `ETag`, the `Location` of
//!   what a creation made and `Idempotent-Replayed`; [`Created`] documents a creation's 201.
//! - [`Fields`] gathers every bad field of a body into one 422.
//! - [`DocumentedRoutes`] routes a handler at the path and method of its `#[utoipa::path]`, so
//!   each route's path is written once.

use std::collections::BTreeMap;
use std::fmt::Display;

use axum::Json;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::path::HttpMethod;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use uuid::Uuid;
use vextrus_commands::{CommandMetadata, CommandOutcome, ExecuteError, Version};
use vextrus_domain::ids::{OrganizationId, ProjectId, SiteId};
use vextrus_domain::organization::Organization;
use vextrus_domain::{TenantId, UniqueValues};

use crate::auth::{Permission, Scope};
use crate::context::RequestContext;
use crate::error::{ApiError, DomainProblem, InvalidParam};
use crate::extract::{IdempotencyKey, IfMatch, etag};
use crate::metrics::{self, CommandOutcomeLabel};
use crate::state::AppState;

/// Namespace of the ids a creation derives from an idempotency key (UUID v5 of the command id).
/// Changing it would give a retry after an upgrade another id than the first attempt's.
const KEYED_ID_NAMESPACE: Uuid = Uuid::from_u128(0x0b4e_61c3_27d8_4f0a_9e52_73c1_d08a_4b96);

/// How often a command without `If-Match` is retried when a concurrent command wins the race:
/// the client did not ask for optimistic concurrency, so a lost race is ours to absorb.
const CONFLICT_RETRIES: u32 = 3;

/// The `Idempotent-Replayed` response header.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// A command request: who asks and for which tenant ([`RequestContext`]), its
/// `Idempotency-Key` and its `If-Match`, read in that order. Handlers take it first, before the
/// path and the body, so an unauthenticated request is refused before anything else is read.
pub struct Command {
    state: AppState,
    context: RequestContext,
    idempotency_key: Option<String>,
    if_match: Option<Version>,
}

impl FromRequestParts<AppState> for Command {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let context = RequestContext::from_request_parts(parts, state).await?;
        let IdempotencyKey(idempotency_key) =
            IdempotencyKey::from_request_parts(parts, state).await?;
        let IfMatch(if_match) = IfMatch::from_request_parts(parts, state).await?;
        Ok(Self {
            state: state.clone(),
            context,
            idempotency_key,
            if_match,
        })
    }
}

impl Command {
    /// Who asks, for which tenant, in which project or site.
    pub fn context(&self) -> &RequestContext {
        &self.context
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Passes when one of the caller's roles grants `permission` where the request acts (its
    /// path's [`Scope`]); else 403 naming the `action`, the permission, the scope and the roles
    /// that grant it.
    pub fn require(&self, permission: Permission, action: &str) -> Result<(), ApiError> {
        self.context
            .principal
            .require_in(permission, self.context.scope, action)
    }

    /// As [`require`](Self::require), in `project` of the request's organization: for a command
    /// whose project is in its body (creating a site, the project a site moves to).
    pub fn require_in_project(
        &self,
        permission: Permission,
        project: ProjectId,
        action: &str,
    ) -> Result<(), ApiError> {
        let scope = match self.context.scope {
            Scope::Organization(organization) | Scope::Project { organization, .. } => {
                Scope::Project {
                    organization,
                    project,
                }
            }
            Scope::Tenant => Scope::Tenant,
        };
        self.context.principal.require_in(permission, scope, action)
    }

    /// As [`require`](Self::require), in the project `site` belongs to. The project is looked
    /// up in the organization's stream, not in a read model that may lag, and only for a caller
    /// whose roles in the organization do not suffice.
    pub async fn require_for_site(
        &self,
        permission: Permission,
        site: SiteId,
        action: &str,
    ) -> Result<(), ApiError> {
        let principal = &self.context.principal;
        let Scope::Organization(organization) = self.context.scope else {
            return self.require(permission, action);
        };
        let scoped_here = principal
            .scoped_roles
            .iter()
            .any(|grant| grant.project_id.is_some() && grant.role.grants(permission));
        if principal.allows(permission, self.context.scope) || !scoped_here {
            return self.require(permission, action);
        }
        let (state, _) = self
            .state
            .store()
            .load_aggregate::<Organization>(self.context.tenant, &organization.to_string())
            .await?;
        match state.site(site) {
            Some((project, _)) => self.require_in_project(permission, project, action),
            None => self.require(permission, action),
        }
    }

    /// The command this request issues, as `operation` (e.g. `create-division`): its audit
    /// metadata is fixed here. With an `Idempotency-Key`, the command id is derived from the key
    /// and `operation`, so one key names one kind of request; renaming an operation would make a
    /// retry across the upgrade a new command.
    pub fn named(self, operation: &str) -> Issue {
        let metadata = self
            .context
            .command_metadata(self.idempotency_key.as_deref(), operation);
        Issue {
            state: self.state,
            tenant: self.context.tenant,
            operation: operation.to_owned(),
            metadata,
            expected: self.if_match,
        }
    }
}

/// A named command, ready to run on a stream.
pub struct Issue {
    state: AppState,
    tenant: TenantId,
    /// What the command is (`create-division`), for metrics.
    operation: String,
    metadata: CommandMetadata,
    /// The version the stream must be at (`If-Match`), or none: decided on the latest state.
    expected: Option<Version>,
}

impl Issue {
    /// The id of what a creation makes: derived from the idempotency key when there is one, so a
    /// retry names the same resource; else fresh and time-ordered.
    pub fn new_id(&self) -> Uuid {
        new_id(&self.metadata)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// The version `If-Match` asked for, if any.
    pub fn expected(&self) -> Option<Version> {
        self.expected
    }

    /// Runs only at `version` unless the client's `If-Match` already asked for one: for a
    /// decision that read the stream itself first (year-end closing).
    pub fn at_version(mut self, version: Version) -> Self {
        self.expected = self.expected.or(Some(version));
        self
    }

    /// The command's audit metadata.
    pub fn metadata(&self) -> &CommandMetadata {
        &self.metadata
    }

    /// Requires the stream not to exist yet, whatever `If-Match` said: the command creates the
    /// stream itself (an organization, a journal entry).
    pub fn on_new_stream(mut self) -> Self {
        self.expected = Some(Version::NONE);
        self
    }

    /// Runs `command` on the stream `stream` of aggregate `A`. A version conflict is retried (up
    /// to three times) when no version was required, and answered with 409 when one was. The
    /// aggregate's refusals answer as its [`DomainProblem`]; the store's read the same for every
    /// aggregate.
    pub async fn run<A>(
        self,
        stream: impl Display,
        command: A::Command,
    ) -> Result<CommandOutcome, ApiError>
    where
        A: UniqueValues<Services = ()> + Clone + 'static,
        A::Command: Clone + Send,
        A::Error: DomainProblem,
    {
        let stream = stream.to_string();
        let started = std::time::Instant::now();
        let mut retries = 0;
        let result = loop {
            let result = self
                .state
                .store()
                .execute::<A>(
                    self.tenant,
                    &stream,
                    command.clone(),
                    &(),
                    &self.metadata,
                    self.expected,
                )
                .await;
            match result {
                Err(ExecuteError::Conflict { .. })
                    if self.expected.is_none() && retries < CONFLICT_RETRIES =>
                {
                    retries += 1;
                }
                other => break other,
            }
        };
        self.record::<A, _>(&result, started);
        Ok(result?)
    }

    /// Counts a command of aggregate `A` that started at `started` in the metrics, by outcome:
    /// [`Issue::run`] does it for its commands, a route that executes through a store method of
    /// its own (postings, documents) calls it with that method's result.
    pub fn record<A: cqrs_es::Aggregate, E: std::error::Error + 'static>(
        &self,
        result: &Result<CommandOutcome, ExecuteError<E>>,
        started: std::time::Instant,
    ) {
        let (outcome, events) = match result {
            Ok(outcome) if outcome.repeated => (CommandOutcomeLabel::IdempotentReplay, 0),
            Ok(outcome) => (CommandOutcomeLabel::Accepted, outcome.event_count),
            Err(ExecuteError::Conflict { .. }) => (CommandOutcomeLabel::Conflict, 0),
            Err(
                ExecuteError::Rejected(_)
                | ExecuteError::ValueTaken { .. }
                | ExecuteError::CommandIdReused { .. }
                | ExecuteError::StaleRead { .. },
            ) => (CommandOutcomeLabel::Refused, 0),
            Err(_) => (CommandOutcomeLabel::Error, 0),
        };
        metrics::record_command(A::TYPE, &self.operation, outcome, started.elapsed(), events);
    }
}

/// See [`Issue::new_id`].
fn new_id(metadata: &CommandMetadata) -> Uuid {
    if metadata.is_idempotent() {
        Uuid::new_v5(
            &KEYED_ID_NAMESPACE,
            metadata.command_id().as_uuid().as_bytes(),
        )
    } else {
        Uuid::now_v7()
    }
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommandAccepted {
    /// The unit the command created or changed.
    pub id: Uuid,
    pub organization_id: Uuid,
    /// The version after the command of the stream it changed, its new ETag for `If-Match`: the
    /// organization's for hierarchy commands, the ledger's for chart and calendar commands, the
    /// entry's for postings and reversals.
    pub version: i64,
    /// Log position of the command's last event, for `min_position`; null when nothing changed.
    pub position: Option<i64>,
}

/// The answer to an accepted command: 200 (changed) or 201 (created) with a [`CommandAccepted`]
/// body, the new version as `ETag`, the `Location` of what a creation made, and
/// `Idempotent-Replayed: true` when this is the first outcome of a repeated `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    status: StatusCode,
    body: CommandAccepted,
    repeated: bool,
    location: Option<String>,
}

impl Accepted {
    /// 200: the command changed `id` (or found it already so) in `organization`.
    pub fn changed(
        outcome: CommandOutcome,
        id: impl Into<Uuid>,
        organization: OrganizationId,
    ) -> Self {
        Self {
            status: StatusCode::OK,
            body: CommandAccepted {
                id: id.into(),
                organization_id: organization.as_uuid(),
                version: outcome.version.get(),
                position: outcome.last_position.map(|position| position.get()),
            },
            repeated: outcome.repeated,
            location: None,
        }
    }

    /// 201: the command created `id` in `organization`, to be read at `location` (see
    /// [`location`]).
    pub fn created(
        outcome: CommandOutcome,
        id: impl Into<Uuid>,
        organization: OrganizationId,
        location: String,
    ) -> Self {
        Self {
            status: StatusCode::CREATED,
            location: Some(location),
            ..Self::changed(outcome, id, organization)
        }
    }
}

impl IntoResponse for Accepted {
    fn into_response(self) -> Response {
        let version = Version::new(self.body.version);
        let mut response = (self.status, Json(self.body)).into_response();
        answer_headers(
            response.headers_mut(),
            version,
            self.location.as_deref(),
            self.repeated,
        );
        response
    }
}

/// The headers of every accepted command's answer, whatever its body: the stream's new
/// `version` as `ETag`, the `Location` of what it created, and `Idempotent-Replayed` when it
/// repeats a first outcome.
pub fn answer_headers(
    headers: &mut HeaderMap,
    version: Version,
    location: Option<&str>,
    repeated: bool,
) {
    if let Ok(value) = HeaderValue::from_str(&etag(version)) {
        headers.insert(header::ETAG, value);
    }
    if let Some(value) = location.and_then(|location| HeaderValue::from_str(location).ok()) {
        headers.insert(header::LOCATION, value);
    }
    if repeated {
        headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
}

/// The path of a documented route with its path parameters filled with `ids`, in order: the
/// `Location` of what a creation made, e.g. `location(__path_get_division, &[org, division])`.
/// `route` is the struct `#[utoipa::path]` generates beside a handler (`__path_<handler>`), so
/// the path is the one the route is served and documented at.
pub fn location<R: utoipa::Path>(_route: R, ids: &[Uuid]) -> String {
    fill_path(&R::path(), ids)
}

/// `template` with each `{parameter}` segment replaced by the next of `ids`.
fn fill_path(template: &str, ids: &[Uuid]) -> String {
    let mut ids = ids.iter();
    template
        .split('/')
        .map(|segment| {
            let is_parameter = segment.starts_with('{') && segment.ends_with('}');
            match is_parameter.then(|| ids.next()).flatten() {
                Some(id) => id.to_string(),
                None => segment.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Documents a creation's 201: the [`CommandAccepted`] body and the headers [`Accepted`] sends.
pub struct Created;

impl utoipa::IntoResponses for Created {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
        use utoipa::openapi::header::HeaderBuilder;
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let text = |description: &str| {
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some(description))
                .build()
        };
        let created = ResponseBuilder::new()
            .description("Created")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("CommandAccepted")))
                    .build(),
            )
            .header(
                "ETag",
                text("The version after the command, e.g. `\"3\"`: send it as `If-Match`."),
            )
            .header("Location", text("Where what was created is read."))
            .header(
                "Idempotent-Replayed",
                text(
                    "`true` when this is the first response to a repeated `Idempotency-Key`, \
                     returned again; nothing changed.",
                ),
            );
        ResponsesBuilder::new()
            .response("201", created)
            .build()
            .responses
    }
}

/// Collects field errors so that one response names every bad field.
#[derive(Debug, Default)]
pub struct Fields(Vec<InvalidParam>);

impl Fields {
    /// The parsed value, or `None` with `name`'s error noted.
    pub fn take<T, E: ToString>(&mut self, name: &str, parsed: Result<T, E>) -> Option<T> {
        parsed
            .map_err(|error| self.0.push(InvalidParam::new(name, error)))
            .ok()
    }

    /// What `build` makes of the parsed values when every field was valid; else 422 naming every
    /// bad field.
    pub fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, ApiError> {
        match build() {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(ApiError::invalid_input(self.0)),
        }
    }
}

/// Routes a handler at the path and methods its `#[utoipa::path]` documents, so a route's path
/// is written once and the document cannot name a path the router does not serve.
pub trait DocumentedRoutes<S> {
    /// Adds `handler` at the path and methods of `route`, the struct `#[utoipa::path]`
    /// generates beside it (`__path_<handler>`, as utoipa-axum's `routes!` uses it). Handlers
    /// documented at one path share it, each on its own method.
    fn documented<R, H, T>(self, route: R, handler: H) -> Self
    where
        R: utoipa::Path,
        H: Handler<T, S>,
        T: 'static;
}

impl<S: Clone + Send + Sync + 'static> DocumentedRoutes<S> for Router<S> {
    fn documented<R, H, T>(self, _route: R, handler: H) -> Self
    where
        R: utoipa::Path,
        H: Handler<T, S>,
        T: 'static,
    {
        // `#[utoipa::path]` refuses to compile without a method, so there is always one.
        match R::methods()
            .into_iter()
            .map(method_filter)
            .reduce(MethodFilter::or)
        {
            Some(methods) => self.route(&R::path(), on(methods, handler)),
            None => self,
        }
    }
}

fn method_filter(method: HttpMethod) -> MethodFilter {
    match method {
        HttpMethod::Get => MethodFilter::GET,
        HttpMethod::Post => MethodFilter::POST,
        HttpMethod::Put => MethodFilter::PUT,
        HttpMethod::Delete => MethodFilter::DELETE,
        HttpMethod::Options => MethodFilter::OPTIONS,
        HttpMethod::Head => MethodFilter::HEAD,
        HttpMethod::Patch => MethodFilter::PATCH,
        HttpMethod::Trace => MethodFilter::TRACE,
    }
}

#[cfg(test)]
mod tests {
    use vextrus_commands::{ActorId, GlobalPosition};

    use super::*;

    fn outcome(version: i64, repeated: bool) -> CommandOutcome {
        CommandOutcome {
            version: Version::new(version),
            last_position: Some(GlobalPosition::new(40 + version)),
            event_count: 1,
            repeated,
        }
    }

    fn header(response: &Response, name: impl header::AsHeaderName) -> Option<&str> {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    }

    async fn body(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_creation_answers_201_with_etag_location_and_the_body() {
        let (organization, division) = (OrganizationId::new(), Uuid::now_v7());
        let location = format!("/v1/organizations/{organization}/divisions/{division}");
        let response =
            Accepted::created(outcome(3, false), division, organization, location.clone())
                .into_response();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(header(&response, header::ETAG), Some("\"3\""));
        assert_eq!(header(&response, header::LOCATION), Some(location.as_str()));
        assert_eq!(header(&response, IDEMPOTENT_REPLAYED), None);
        assert_eq!(
            body(response).await,
            serde_json::json!({
                "id": division,
                "organization_id": organization,
                "version": 3,
                "position": 43,
            })
        );
    }

    #[tokio::test]
    async fn a_change_answers_200_without_location_and_a_repeat_says_so() {
        let organization = OrganizationId::new();
        let first = Accepted::changed(outcome(5, false), organization, organization);
        let again = Accepted::changed(outcome(5, true), organization, organization);
        let (first, again) = (first.into_response(), again.into_response());
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(header(&first, header::LOCATION), None);
        assert_eq!(header(&first, IDEMPOTENT_REPLAYED), None);
        assert_eq!(again.status(), StatusCode::OK);
        assert_eq!(header(&again, header::ETAG), Some("\"5\""));
        assert_eq!(header(&again, IDEMPOTENT_REPLAYED), Some("true"));
        assert_eq!(body(first).await, body(again).await);
    }

    #[test]
    fn the_documented_creation_body_is_a_schema_of_the_document() {
        use utoipa::OpenApi;
        // `Created` refers to the schema by name; the routes that return it register it.
        let document = crate::openapi::ApiDoc::openapi();
        let schemas = document.components.map(|c| c.schemas).unwrap_or_default();
        assert!(schemas.contains_key("CommandAccepted"));
    }

    #[test]
    fn a_location_fills_the_path_parameters_in_order() {
        let (organization, site) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(
            fill_path(
                "/v1/organizations/{organization_id}/sites/{site_id}",
                &[organization, site]
            ),
            format!("/v1/organizations/{organization}/sites/{site}")
        );
    }

    fn metadata(key: Option<&str>, operation: &str) -> CommandMetadata {
        let metadata = CommandMetadata::new(ActorId::parse("user-1").unwrap());
        match key {
            Some(key) => metadata.with_idempotency_key(operation, key),
            None => metadata,
        }
    }

    #[test]
    fn a_keyed_creation_names_the_same_id_on_every_retry() {
        let id = new_id(&metadata(Some("k-42"), "create-division"));
        assert_eq!(id, new_id(&metadata(Some("k-42"), "create-division")));
        // Pinned: a retry after an upgrade must name what the first attempt created.
        assert_eq!(id.to_string(), "b2312a7a-962e-5d2b-80ad-60e26bb1ce28");
        assert_ne!(id, new_id(&metadata(Some("k-42"), "create-project")));
        let unkeyed = metadata(None, "create-division");
        assert_ne!(new_id(&unkeyed), new_id(&unkeyed));
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let mut fields = Fields::default();
        let name = fields.take("name", Ok::<_, String>("Dhaka"));
        let code = fields.take("code", Err::<&str, _>("too long"));
        let bin = fields.take("bin", Err::<&str, _>("13 digits"));
        let Err(ApiError::InvalidInput { params, .. }) =
            fields.finish(|| Some((name?, code?, bin?)))
        else {
            panic!("expected 422");
        };
        assert_eq!(
            params,
            [
                InvalidParam::new("code", "too long"),
                InvalidParam::new("bin", "13 digits")
            ]
        );
        let mut fields = Fields::default();
        let name = fields.take("name", Ok::<_, String>("Dhaka"));
        assert_eq!(fields.finish(|| name).unwrap(), "Dhaka");
    }
}
