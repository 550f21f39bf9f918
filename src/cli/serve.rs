//! `vextrus serve` (the whole system in one process) and `vextrus token` (a signed bearer token
//! for a first user), with the signing secret they share.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use uuid::Uuid;
use vextrus::database;
use vextrus::demo::{Demo, DemoPositions};
use vextrus::server::{Fanout, Server, ServerConfig};
use vextrus_api::client_address::IpNetwork;
use vextrus_api::{
    ApiSettings, Claims, DEFAULT_ISSUER, JwtKeys, Lifetimes, LimitSetting, OidcProviders,
    RateLimits, Role,
};
use vextrus_commands::AGGREGATE_TYPES;
use vextrus_commands::{DbRole, EventStore};
use vextrus_fanout::EmbeddedKafka;
use vextrus_projections::Projection;
use vextrus_projections::finance::GeneralLedger;
use vextrus_projections::organization::OrganizationHierarchy;

use super::DatabaseArgs;
use super::kafka::KafkaArgs;
use super::keys::SigningKeysArgs;

/// Where the token signing secret comes from.
#[derive(Debug, Args)]
pub struct JwtArgs {
    /// HS256 secret for bearer tokens, at least 32 bytes. When neither this nor the file is set,
    /// a random secret is generated once and kept in `<data-dir>/jwt-secret`.
    #[arg(long, env = "VEXTRUS_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,

    /// A file holding the HS256 secret (for secrets mounted as files).
    #[arg(long, env = "VEXTRUS_JWT_SECRET_FILE", conflicts_with = "jwt_secret")]
    jwt_secret_file: Option<PathBuf>,
}

/// The file under the data directory that holds a generated development secret.
const GENERATED_SECRET_FILE: &str = "jwt-secret";

impl JwtArgs {
    /// The configured keys; with nothing configured, the data directory's generated secret
    /// (created on first use, readable only by its owner).
    fn keys(&self, data_dir: &Path) -> anyhow::Result<JwtKeys> {
        let (secret, variable) = match (&self.jwt_secret, &self.jwt_secret_file) {
            (Some(secret), _) => (secret.clone(), "VEXTRUS_JWT_SECRET".to_owned()),
            (None, Some(file)) => (
                std::fs::read_to_string(file)
                    .with_context(|| {
                        format!("VEXTRUS_JWT_SECRET_FILE: cannot read {}", file.display())
                    })?
                    .trim()
                    .to_owned(),
                "VEXTRUS_JWT_SECRET_FILE".to_owned(),
            ),
            (None, None) => {
                let file = data_dir.join(GENERATED_SECRET_FILE);
                (
                    generated_secret(&file)?,
                    format!("the generated secret in {}", file.display()),
                )
            }
        };
        JwtKeys::from_secret(secret.as_bytes()).with_context(|| variable.to_string())
    }
}

fn generated_secret(file: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(file) {
        Ok(secret) => return Ok(secret.trim().to_owned()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).with_context(|| format!("reading {}", file.display())),
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Two v4 UUIDs: 244 bits from the operating system's random source, as 64 hex characters.
    let secret = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(file)
            .with_context(|| format!("creating {}", file.display()))?;
        out.write_all(secret.as_bytes())?;
    }
    tracing::warn!(
        file = %file.display(),
        "no VEXTRUS_JWT_SECRET configured: generated a signing secret for local use"
    );
    Ok(secret)
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address the HTTP API listens on.
    #[arg(long, env = "VEXTRUS_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "VEXTRUS_BODY_LIMIT", default_value_t = 2 * 1024 * 1024)]
    body_limit: usize,

    /// How long a query with `min_position` waits for its read model, in milliseconds.
    #[arg(long, env = "VEXTRUS_READ_WAIT_MS", default_value_t = 5000)]
    read_wait_ms: u64,

    /// Comma-separated proxies (addresses or networks, e.g. `10.0.0.0/8,127.0.0.1`) whose
    /// `X-Forwarded-For` names the client address recorded with commands. None by default: the
    /// TCP peer is recorded.
    #[arg(long, env = "VEXTRUS_TRUSTED_PROXIES")]
    trusted_proxies: Option<String>,

    /// The URL clients reach the API at (e.g. `https://erp.example.com`); an https URL turns on
    /// `Strict-Transport-Security`.
    #[arg(long, env = "VEXTRUS_PUBLIC_URL")]
    public_url: Option<String>,

    /// Run the Kafka path in this process against librdkafka's in-process mock cluster: the
    /// relay and the projection workers, with no broker to install.
    #[arg(long, conflicts_with = "kafka_brokers")]
    embedded_kafka: bool,

    /// Load a sample tenant (a construction company with divisions, projects and sites) and
    /// print a token and requests to look around with. Loading it again adds nothing.
    #[arg(long, env = "VEXTRUS_DEMO")]
    demo: bool,

    /// Requests per client address, on every route: `<n>/s`, `<n>/min`, `<n>/h` or `off`.
    #[arg(long, env = "VEXTRUS_RATE_LIMIT_CLIENT", default_value = RateLimits::DEFAULT_CLIENT)]
    rate_limit_client: LimitSetting,

    /// Requests per client address to sign-in, refresh, invitation, password change and reset
    /// (on top of the client limit).
    #[arg(long, env = "VEXTRUS_RATE_LIMIT_AUTH", default_value = RateLimits::DEFAULT_AUTH)]
    rate_limit_auth: LimitSetting,

    /// Authenticated requests per tenant.
    #[arg(long, env = "VEXTRUS_RATE_LIMIT_TENANT", default_value = RateLimits::DEFAULT_TENANT)]
    rate_limit_tenant: LimitSetting,

    /// Tenants' external identity providers: a JSON list of
    /// `{"tenant", "issuer", "audience", "jwks_url", "roles_claim", "role_map", "subject_claim"}`.
    #[arg(long, env = "VEXTRUS_OIDC_PROVIDERS", hide_env_values = true)]
    oidc_providers: Option<String>,

    /// A file holding that list (instead of `VEXTRUS_OIDC_PROVIDERS`).
    #[arg(
        long,
        env = "VEXTRUS_OIDC_PROVIDERS_FILE",
        conflicts_with = "oidc_providers"
    )]
    oidc_providers_file: Option<PathBuf>,

    /// Lifetime of the access tokens sign-in issues, in seconds.
    #[arg(long, env = "VEXTRUS_ACCESS_TOKEN_TTL_SECS", default_value_t = 900)]
    access_token_ttl_secs: u64,

    #[command(flatten)]
    kafka: KafkaArgs,

    #[command(flatten)]
    jwt: JwtArgs,

    #[command(flatten)]
    signing_keys: SigningKeysArgs,
}

impl ServeArgs {
    pub async fn run(
        &self,
        database: &DatabaseArgs,
        metrics_listen: Option<SocketAddr>,
    ) -> anyhow::Result<()> {
        // Configuration first, so a bad variable fails before anything is started.
        let listen: SocketAddr = self.listen.parse().with_context(|| {
            format!(
                "VEXTRUS_LISTEN (--listen) must be an address like 127.0.0.1:8080, not {:?}",
                self.listen
            )
        })?;
        if self.body_limit < 1024 {
            bail!("VEXTRUS_BODY_LIMIT (--body-limit) must be at least 1024 bytes");
        }
        let keys = self.jwt.keys(&database.data_dir)?;
        let mut config = ServerConfig::new(keys.clone());
        config.metrics_listen = metrics_listen;
        let trusted_proxies = self
            .trusted_proxies
            .iter()
            .flat_map(|list| list.split(','))
            .filter(|entry| !entry.trim().is_empty())
            .map(|entry| entry.parse::<IpNetwork>())
            .collect::<Result<Vec<_>, _>>()
            .context("VEXTRUS_TRUSTED_PROXIES (--trusted-proxies)")?;
        let hsts = match self.public_url.as_deref() {
            None => false,
            Some(url) if url.starts_with("https://") && url.len() > "https://".len() => true,
            Some(url) if url.starts_with("http://") && url.len() > "http://".len() => false,
            Some(url) => bail!(
                "VEXTRUS_PUBLIC_URL (--public-url) must be an http:// or https:// URL, not {url:?}"
            ),
        };
        if !(60..=86_400).contains(&self.access_token_ttl_secs) {
            bail!("VEXTRUS_ACCESS_TOKEN_TTL_SECS (--access-token-ttl-secs) must be 60 to 86400");
        }
        let oidc = match (&self.oidc_providers, &self.oidc_providers_file) {
            (Some(json), _) => OidcProviders::from_json(json).context("VEXTRUS_OIDC_PROVIDERS")?,
            (None, Some(file)) => {
                let json = std::fs::read_to_string(file).with_context(|| {
                    format!(
                        "VEXTRUS_OIDC_PROVIDERS_FILE: cannot read {}",
                        file.display()
                    )
                })?;
                OidcProviders::from_json(&json).context("VEXTRUS_OIDC_PROVIDERS_FILE")?
            }
            (None, None) => OidcProviders::default(),
        };
        let keys_dir = self.signing_keys.dir(&database.data_dir);
        let signing_keys = vextrus::signing_keys::load_or_create(&keys_dir)
            .context("VEXTRUS_SIGNING_KEYS_DIR: the access-token signing keys")?;
        config.api = ApiSettings {
            body_limit: self.body_limit,
            hsts,
            signing_keys,
            issuer: self
                .public_url
                .clone()
                .unwrap_or_else(|| DEFAULT_ISSUER.to_owned()),
            lifetimes: Lifetimes {
                access: Duration::from_secs(self.access_token_ttl_secs),
                ..Lifetimes::default()
            },
            rate_limits: RateLimits {
                client: self.rate_limit_client.0,
                auth: self.rate_limit_auth.0,
                tenant: self.rate_limit_tenant.0,
            },
            oidc,
            read_wait: Duration::from_millis(self.read_wait_ms),
            trusted_proxies,
            ..ApiSettings::default()
        };

        // Fan-out: in-process by default; KAFKA_BROKERS: this process serves the API and relay
        // and workers run elsewhere; --embedded-kafka: all of it here, on a mock cluster.
        let mut embedded = None;
        if self.embedded_kafka {
            let kafka = EmbeddedKafka::start(1).context("starting the embedded Kafka cluster")?;
            let kafka_config = self.kafka.config(kafka.bootstrap_servers())?;
            for aggregate_type in AGGREGATE_TYPES {
                kafka.create_topic(&kafka_config.topic(aggregate_type), kafka_config.partitions)?;
            }
            tracing::info!(
                brokers = kafka.bootstrap_servers(),
                "embedded Kafka (librdkafka mock cluster) is running"
            );
            config.fanout = Fanout::Kafka(kafka_config);
            embedded = Some(kafka);
        } else if let Some(brokers) = &self.kafka.kafka_brokers {
            self.kafka.config(brokers)?;
            tracing::info!(%brokers, "KAFKA_BROKERS is set: serving the API; run `vextrus relay` and `vextrus project` for the projections");
            config.fanout = Fanout::Elsewhere;
        }

        let (options, cluster) = database.open().await?;
        let result = async {
            database::migrate(&options)
                .await
                .context("applying migrations")?;
            if embedded.is_some() {
                // The embedded brokers start empty: send again what the workers had not applied.
                let projector = database::role_pool(&options, DbRole::Projector, 1).await?;
                vextrus_fanout::rewind_for_empty_brokers(&projector, vextrus_fanout::MAIN_RELAY)
                    .await
                    .context("rewinding the relay for the embedded brokers")?;
                projector.close().await;
            }
            let demo = match self.demo {
                true => Some(load_demo(&options).await?),
                false => None,
            };
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("VEXTRUS_LISTEN: cannot listen on {listen}"))?;
            let server = Server::start(&options, listener, config).await?;
            print_welcome(server.local_addr());
            if let Some(demo) = &demo {
                print_demo(server.local_addr(), demo, &keys)?;
            }
            server.run_until(shutdown_signal()).await?;
            tracing::info!("stopped");
            anyhow::Ok(())
        }
        .await;
        drop(embedded);
        super::stop(cluster).await;
        result
    }
}

/// Tells the user where to go next. Written so that a closed standard output (a log shipper gone,
/// a pipe whose reader stopped) never takes the server down.
fn print_welcome(addr: SocketAddr) {
    use std::io::Write;
    let welcome = [
        format!("Vextrus is listening on http://{addr}"),
        format!("  OpenAPI:   http://{addr}/openapi.json"),
        format!("  Readiness: http://{addr}/health/ready"),
        "Mint a token (same data directory and secret):".to_owned(),
        "  vextrus token --tenant $(cat /proc/sys/kernel/random/uuid) --subject you@example.com --roles admin".to_owned(),
        "Stop with Ctrl-C.\n".to_owned(),
    ]
    .join("\n");
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout
        .write_all(welcome.as_bytes())
        .and_then(|()| stdout.flush())
    {
        tracing::warn!(%error, "cannot write to standard output");
    }
}

/// The sample tenant, written as the application's writer role would.
async fn load_demo(options: &sqlx::postgres::PgConnectOptions) -> anyhow::Result<Demo> {
    let writer = database::role_pool(options, DbRole::Writer, 2).await?;
    let mut demo = vextrus::demo::load(&EventStore::new(writer.clone()))
        .await
        .context("loading the demo tenant")?;
    // The printed requests wait for their read models to hold the tenant's last event of the
    // types they read, so they work as printed even while the projections are still catching up
    // after the start.
    let mut tx = vextrus_commands::tenant::begin(&writer, demo.tenant).await?;
    demo.positions = sqlx::query_as(
        "select coalesce(max(global_position) filter (where aggregate_type = any($1)), 0) as hierarchy,
                coalesce(max(global_position) filter (where aggregate_type = any($2)), 0) as ledger,
                coalesce(max(global_position), 0) as last
           from events",
    )
    .bind(OrganizationHierarchy::AGGREGATE_TYPES)
    .bind(GeneralLedger::AGGREGATE_TYPES)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    writer.close().await;
    tracing::info!(
        tenant = %demo.tenant,
        events_written = demo.events_written,
        "demo tenant loaded"
    );
    Ok(demo)
}

/// The demo tenant's token (a week long, every role) and five requests to start with.
fn print_demo(addr: SocketAddr, demo: &Demo, keys: &JwtKeys) -> anyhow::Result<()> {
    use std::io::Write;
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: vextrus::demo::DEMO_USER.to_owned(),
        tenant: demo.tenant.as_uuid(),
        roles: Role::ALL
            .iter()
            .map(|role| role.as_str().to_owned())
            .collect(),
        exp: now + 7 * 24 * 3600,
        iat: Some(now),
    };
    let token = keys.sign(&claims).context("signing the demo token")?;
    let org = demo.organization;
    let DemoPositions {
        hierarchy,
        ledger,
        last,
    } = demo.positions;
    let text = [
        format!(
            "Demo tenant {}: {} with {} divisions, {} projects, {} sites, {} journal entries, {} invoices and bills and {} payments ({}).",
            demo.tenant,
            demo.organization_name,
            demo.divisions,
            demo.projects,
            demo.sites,
            demo.entries,
            demo.documents,
            demo.payments,
            match demo.events_written {
                0 => "already loaded".to_owned(),
                written => format!("{written} events written"),
            }
        ),
        "Look around (the token is valid for a week and holds every role):".to_owned(),
        format!("  TOKEN={token}"),
        format!(
            "  curl -s \"http://{addr}/v1/organizations?min_position={hierarchy}\" -H \"Authorization: Bearer $TOKEN\""
        ),
        format!(
            "  curl -s \"http://{addr}/v1/organizations/{org}/tree?min_position={hierarchy}\" -H \"Authorization: Bearer $TOKEN\""
        ),
        format!(
            "  curl -s \"http://{addr}/v1/organizations/{org}/trial-balance?from=2026-07-01&to=2027-06-30&min_position={ledger}\" -H \"Authorization: Bearer $TOKEN\""
        ),
        format!(
            "  curl -s http://{addr}/v1/audit/streams/organization/{org}/events -H \"Authorization: Bearer $TOKEN\""
        ),
        format!(
            "  curl -s \"http://{addr}/v1/audit/activity?min_position={last}\" -H \"Authorization: Bearer $TOKEN\""
        ),
        "Or sign in as its administrator (an access token for 15 minutes and a refresh token):".to_owned(),
        format!(
            "  curl -X POST http://{addr}/v1/auth/login -H 'content-type: application/json' -d '{{\"tenant\": \"{}\", \"email\": \"{}\", \"password\": \"{}\"}}'\n",
            vextrus::demo::DEMO_SLUG,
            vextrus::demo::DEMO_ADMIN_EMAIL,
            vextrus::demo::DEMO_ADMIN_PASSWORD
        ),
    ]
    .join("\n");
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        tracing::warn!(%error, "cannot write to standard output");
    }
    Ok(())
}

/// SIGINT (Ctrl-C) or SIGTERM.
pub(super) async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => drop(signal.recv().await),
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight and projection batches");
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The tenant the token may act for (a UUID).
    #[arg(long)]
    tenant: Uuid,

    /// Who the token identifies: recorded as the actor of every command.
    #[arg(long)]
    subject: String,

    /// Comma-separated roles: admin, finance-manager, accountant, project-manager,
    /// site-engineer, auditor, operator, viewer.
    #[arg(long, value_delimiter = ',', default_value = "viewer")]
    roles: Vec<Role>,

    /// Validity in hours.
    #[arg(long, default_value_t = 24)]
    ttl_hours: u32,

    #[command(flatten)]
    jwt: JwtArgs,
}

impl TokenArgs {
    pub fn run(&self, data_dir: &Path) -> anyhow::Result<()> {
        if vextrus_commands::ActorId::parse(&self.subject).is_err() {
            bail!("--subject must be 1 to 200 characters without control characters");
        }
        if self.ttl_hours == 0 {
            bail!("--ttl-hours must be at least 1");
        }
        let keys = self.jwt.keys(data_dir)?;
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: self.subject.clone(),
            tenant: self.tenant,
            roles: self
                .roles
                .iter()
                .map(|role| role.as_str().to_owned())
                .collect(),
            exp: now + i64::from(self.ttl_hours) * 3600,
            iat: Some(now),
        };
        println!("{}", keys.sign(&claims).context("signing the token")?);
        Ok(())
    }
}
