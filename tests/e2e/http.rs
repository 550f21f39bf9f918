//! Fixtures for driving the real server over HTTP: [`spawn_app`] starts `vextrus serve`'s
//! [`Server`] on port 0 against a fresh database, and a [`Caller`] sends requests as one
//! tenant's user.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;
use vextrus::server::{Server, ServerConfig};
use vextrus::testkit::TestDatabase;
use vextrus_api::{Claims, JwtKeys};

pub const SECRET: &[u8] = b"an e2e test secret of at least 32 bytes";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub keys: JwtKeys,
    /// The table owner, for checks the application roles may not make.
    pub owner: PgPool,
    pub db: TestDatabase,
    server: Server,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut ServerConfig)) -> TestApp {
    let db = TestDatabase::new().await.expect("a fresh test database");
    let keys = JwtKeys::from_secret(SECRET).unwrap();
    let mut config = ServerConfig::new(keys.clone());
    config.max_connections = 8;
    configure(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::start(&db.options, listener, config).await.unwrap();
    TestApp {
        base: format!("http://{}", server.local_addr()),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        keys,
        owner: db.owner_pool().await.unwrap(),
        db,
        server,
    }
}

pub fn claims(tenant: Uuid, roles: &[&str]) -> Claims {
    Claims {
        sub: "e2e-user".into(),
        tenant,
        roles: roles.iter().map(|role| role.to_string()).collect(),
        exp: chrono::Utc::now().timestamp() + 600,
        iat: None,
    }
}

/// A user called `subject` of `tenant` with `roles`.
pub fn caller_as<'a>(app: &'a TestApp, tenant: Uuid, subject: &str, roles: &[&str]) -> Caller<'a> {
    let mut claims = claims(tenant, roles);
    claims.sub = subject.into();
    Caller {
        app,
        tenant,
        token: app.keys.sign(&claims).unwrap(),
    }
}

impl TestApp {
    /// A user of a new tenant with `roles`.
    pub fn caller(&self, roles: &[&str]) -> Caller<'_> {
        self.caller_for(Uuid::now_v7(), roles)
    }

    pub fn caller_for(&self, tenant: Uuid, roles: &[&str]) -> Caller<'_> {
        Caller {
            app: self,
            tenant,
            token: self.keys.sign(&claims(tenant, roles)).unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn event_count(&self) -> i64 {
        crate::support::event_count(&self.owner).await
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await.unwrap();
    }
}

/// One tenant's authenticated user.
pub struct Caller<'a> {
    pub app: &'a TestApp,
    pub tenant: Uuid,
    pub token: String,
}

/// A response, its body parsed as JSON (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        Self {
            status,
            headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The `<kind>` of a problem's `type`, after checking the body is problem+json.
    pub fn problem(&self) -> &str {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "not a problem: {self:?}"
        );
        assert_eq!(self.body["status"], self.status, "{self:?}");
        self.body["type"]
            .as_str()
            .and_then(|t| t.strip_prefix("urn:vextrus:problem:"))
            .unwrap_or_else(|| panic!("no problem type: {self:?}"))
    }

    pub fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id: {self:?}"))
            .to_owned()
    }

    pub fn position(&self) -> i64 {
        self.body["position"]
            .as_i64()
            .unwrap_or_else(|| panic!("no position: {self:?}"))
    }

    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status, status, "{self:?}");
        self
    }
}

impl Caller<'_> {
    /// A request with this caller's bearer token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(&self.token)
    }

    pub async fn send(&self, request: RequestBuilder) -> Reply {
        Reply::from(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.request(Method::GET, path)).await
    }

    /// The tree of `organization`, once the read model has passed log position `position`.
    pub async fn tree_after(&self, organization: &str, position: i64) -> Reply {
        self.get(&format!(
            "/v1/organizations/{organization}/tree?min_position={position}"
        ))
        .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.request(Method::POST, path).json(&body))
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(self.request(Method::PATCH, path).json(&body))
            .await
    }

    pub async fn create_organization(&self, code: &str) -> Reply {
        self.post("/v1/organizations", organization_body(code))
            .await
            .expect(201)
    }

    /// Creates an organization with one division, project and site; their ids and the position
    /// of the last event.
    pub async fn create_hierarchy(&self, code: &str) -> Hierarchy {
        let org = self.create_organization(code).await.id();
        let division = self
            .post(
                &format!("/v1/organizations/{org}/divisions"),
                json!({"name": "Dhaka", "code": "DHK"}),
            )
            .await
            .expect(201)
            .id();
        let project = self
            .post(
                &format!("/v1/organizations/{org}/projects"),
                json!({"division_id": division, "name": "Padma", "code": "PADMA"}),
            )
            .await
            .expect(201)
            .id();
        let site = self
            .post(
                &format!("/v1/organizations/{org}/sites"),
                json!({"project_id": project, "name": "Mawa", "code": "S1"}),
            )
            .await
            .expect(201);
        Hierarchy {
            position: site.position(),
            site: site.id(),
            org,
            division,
            project,
        }
    }
}

pub struct Hierarchy {
    pub org: String,
    pub division: String,
    pub project: String,
    pub site: String,
    /// Log position of the last event.
    pub position: i64,
}

pub fn organization_body(code: &str) -> Value {
    json!({
        "name": "Meghna Builders Ltd",
        "code": code,
        "bin": "002871821-0101",
        "tin": "123456789012"
    })
}
