//! `vextrus bench http`: commands per second and latency through the real server, next to the
//! store alone, in one run.
//!
//! - `store`: [`EventStore::execute`] creating organizations (the same command, validation and
//!   unique-code claim as the API's `POST /v1/organizations`), N clients back to back, on a
//!   database of its own with nothing else running: what the write path allows.
//! - `http`: `vextrus serve` started as a child process of this binary on another fresh database
//!   of the same PostgreSQL server (its projections running, as in production; rate limits on but
//!   out of reach), and N keep-alive HTTP/1.1 connections, each sending
//!   `POST /v1/organizations` back to back with a bearer token.
//!
//! Every cell counts what it created afterwards and fails if the log holds fewer organizations
//! than it reported, and any answer but 201 fails the bench. The generator's own CPU (this
//! process) and the server's CPU and resident memory (from `/proc`) are printed per cell. It ends
//! with `http ratio: http/store=… (16 connections)`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use tokio::process::{Child, Command};
use uuid::Uuid;
use vextrus::database;
use vextrus::postgres::PrivatePostgres;
use vextrus_api::{Claims, JwtKeys};
use vextrus_commands::{ActorId, CommandMetadata, DbRole, EventStore, Version};
use vextrus_domain::TenantId;
use vextrus_domain::ids::OrganizationId;
use vextrus_domain::organization::{NewOrganization, Organization, OrganizationCommand};
use vextrus_domain::values::{Bin, Code, CurrencyCode, FiscalYearStart, Name, Tin};

use super::bench::percentile_ms;

#[derive(Debug, Args)]
pub struct HttpBenchArgs {
    /// Measured seconds per cell.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Concurrent connections (and store clients) to measure; the ratio is taken at 16.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64])]
    connections: Vec<usize>,
}

/// The connection count the ratio line compares at.
const RATIO_AT: usize = 16;

/// The secret the child server verifies the bench's bearer token with.
const BENCH_SECRET: &str = "vextrus-bench-http-secret-of-32-bytes-or-more";

/// What one cell measured.
struct Cell {
    commands: u64,
    seconds: f64,
    latencies: Vec<Duration>,
    /// CPU seconds of this process (the load generator, or the store's client side).
    generator_cpu: f64,
    /// CPU seconds of the server process, and its resident memory afterwards (HTTP cells).
    server: Option<(f64, u64)>,
}

impl Cell {
    fn rate(&self) -> f64 {
        self.commands as f64 / self.seconds
    }

    fn print(&self, system: &str, clients: usize) {
        let mut latencies = self.latencies.clone();
        let mut p = |q: f64| percentile_ms(&mut latencies, q);
        let server = match self.server {
            Some((cpu, rss)) => format!(
                ", server CPU {:.2} cores, server RSS {} MB",
                cpu / self.seconds,
                rss / (1024 * 1024)
            ),
            None => String::new(),
        };
        println!(
            "{system:>6} {clients:>3} clients: {:>8.0} commands/s, p50 {:.2} ms, p99 {:.2} ms, \
             generator CPU {:.2} cores{server}",
            self.rate(),
            p(0.50),
            p(0.99),
            self.generator_cpu / self.seconds,
        );
    }
}

pub async fn http(args: HttpBenchArgs, external: Option<PgConnectOptions>) -> anyhow::Result<()> {
    if !(args.seconds > 0.0 && args.seconds <= 3600.0) {
        bail!("--seconds must be in (0, 3600]");
    }
    if args.connections.is_empty() || args.connections.iter().any(|&n| n == 0 || n > 1024) {
        bail!("--connections must list counts between 1 and 1024");
    }
    let (admin, cluster) = super::bench::bench_server(external).await?;
    let result = run(&args, &admin, cluster.as_ref()).await;
    super::stop(cluster).await;
    result
}

async fn run(
    args: &HttpBenchArgs,
    admin: &PgConnectOptions,
    cluster: Option<&PrivatePostgres>,
) -> anyhow::Result<()> {
    println!(
        "http: POST /v1/organizations for {} s per cell at {:?} connections",
        args.seconds, args.connections
    );
    let store_db = super::bench::fresh_database(admin, "vextrus_http_store").await?;
    let store_options = admin.clone().database(&store_db);
    database::migrate(&store_options).await?;
    let http_db = super::bench::fresh_database(admin, "vextrus_http_api").await?;
    let http_options = admin.clone().database(&http_db);
    let url = match cluster {
        Some(cluster) => cluster.url(&http_db),
        None => http_options.to_url_lossy().to_string(),
    };
    let server = ChildServer::start(&url).await?;
    let result = measure(args, &store_options, &http_options, &server).await;
    server.stop().await;
    let (store, http) = result?;
    let (Some(store), Some(http)) = (store, http) else {
        println!("http ratio: not measured (--connections does not include {RATIO_AT})");
        return Ok(());
    };
    println!(
        "http ratio: http/store={:.2} ({RATIO_AT} connections)",
        http / store
    );
    Ok(())
}

/// The store cell and the HTTP cell at each connection count, alternating; the rates at
/// [`RATIO_AT`].
async fn measure(
    args: &HttpBenchArgs,
    store_options: &PgConnectOptions,
    http_options: &PgConnectOptions,
    server: &ChildServer,
) -> anyhow::Result<(Option<f64>, Option<f64>)> {
    let writer = database::role_pool(store_options, DbRole::Writer, 16).await?;
    let store = EventStore::new(writer);
    let codes = Arc::new(AtomicU64::new(0));
    let tenant = TenantId::new();
    let keys = JwtKeys::from_secret(BENCH_SECRET.as_bytes())
        .map_err(|error| anyhow::anyhow!("the bench's secret: {error}"))?;
    let now = chrono::Utc::now().timestamp();
    let token = keys
        .sign(&Claims {
            sub: "bench-http".into(),
            tenant: tenant.as_uuid(),
            roles: vec!["admin".into()],
            exp: now + 24 * 3600,
            iat: Some(now),
        })
        .map_err(|error| anyhow::anyhow!("signing the bench's token: {error}"))?;
    let (mut store_at, mut http_at) = (None, None);
    let (mut stored, mut served) = (0u64, 0u64);
    for &clients in &args.connections {
        let cell = store_cell(&store, tenant, clients, args.seconds, &codes).await?;
        stored += cell.commands;
        cell.print("store", clients);
        if clients == RATIO_AT {
            store_at = Some(cell.rate());
        }
        let cell = http_cell(server, &token, clients, args.seconds, &codes).await?;
        served += cell.commands;
        cell.print("http", clients);
        if clients == RATIO_AT {
            http_at = Some(cell.rate());
        }
    }
    for (options, reported, system) in [
        (store_options, stored, "store"),
        (http_options, served, "http"),
    ] {
        let created = organizations_created(options).await?;
        if created < reported {
            bail!("{system}: the log holds {created} organizations, {reported} were reported");
        }
    }
    Ok((store_at, http_at))
}

/// A new organization's command, under a code no other command of the run uses.
fn new_organization(codes: &AtomicU64) -> anyhow::Result<(OrganizationId, OrganizationCommand)> {
    let organization = OrganizationId::new();
    let code = format!("H{:X}", codes.fetch_add(1, Ordering::Relaxed));
    let command = OrganizationCommand::CreateOrganization(NewOrganization {
        organization_id: organization,
        name: Name::parse("Bench Builders Ltd")?,
        code: Code::parse(&code)?,
        bin: Bin::parse("0028718210101")?,
        tin: Tin::parse("123456789012")?,
        base_currency: CurrencyCode::bdt(),
        fiscal_year_start: FiscalYearStart::default(),
    });
    Ok((organization, command))
}

async fn store_cell(
    store: &EventStore,
    tenant: TenantId,
    clients: usize,
    seconds: f64,
    codes: &Arc<AtomicU64>,
) -> anyhow::Result<Cell> {
    let actor = ActorId::parse("bench-http").map_err(|_| anyhow::anyhow!("actor"))?;
    let cpu = ProcessCpu::of_self()?;
    let began = Instant::now();
    let until = began + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (store, actor, codes) = (store.clone(), actor.clone(), Arc::clone(codes));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < until {
                let (organization, command) = new_organization(&codes)?;
                let sent = Instant::now();
                store
                    .execute::<Organization>(
                        tenant,
                        &organization.to_string(),
                        command,
                        &(),
                        &CommandMetadata::new(actor.clone()),
                        Some(Version::NONE),
                    )
                    .await?;
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    collect(tasks, began, cpu, None).await
}

/// Joins a cell's clients into its figures.
async fn collect(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Vec<Duration>>>>,
    began: Instant,
    cpu: ProcessCpu,
    server: Option<(&ChildServer, ProcessCpu)>,
) -> anyhow::Result<Cell> {
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let seconds = began.elapsed().as_secs_f64();
    let server = match server {
        Some((child, before)) => Some((before.elapsed()?, child.resident_bytes()?)),
        None => None,
    };
    Ok(Cell {
        commands: latencies.len() as u64,
        seconds,
        latencies,
        generator_cpu: cpu.elapsed()?,
        server,
    })
}

async fn http_cell(
    server: &ChildServer,
    token: &str,
    connections: usize,
    seconds: f64,
    codes: &Arc<AtomicU64>,
) -> anyhow::Result<Cell> {
    let cpu = ProcessCpu::of_self()?;
    let server_cpu = ProcessCpu::of(server.pid)?;
    let began = Instant::now();
    let until = began + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (address, codes) = (server.address, Arc::clone(codes));
        let authorization = format!("Bearer {token}");
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(address).await?;
            stream.set_nodelay(true)?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            let mut latencies = Vec::new();
            while Instant::now() < until {
                let code = format!("H{:X}", codes.fetch_add(1, Ordering::Relaxed));
                let body = format!(
                    r#"{{"name":"Bench Builders Ltd","code":"{code}","bin":"002871821-0101","tin":"123456789012"}}"#
                );
                let request = hyper::Request::post("/v1/organizations")
                    .header("host", address.to_string())
                    .header("authorization", authorization.as_str())
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))?;
                let sent = Instant::now();
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                if status != hyper::StatusCode::CREATED {
                    bail!(
                        "POST /v1/organizations answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    collect(tasks, began, cpu, Some((server, server_cpu))).await
}

/// Organizations created in a database's log.
async fn organizations_created(options: &PgConnectOptions) -> anyhow::Result<u64> {
    let mut conn = sqlx::PgConnection::connect_with(options).await?;
    let count: i64 =
        sqlx::query_scalar("select count(*) from events where event_type = 'OrganizationCreated'")
            .fetch_one(&mut conn)
            .await?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// CPU time used by a process since a starting point, from `/proc/<pid>/stat`.
struct ProcessCpu {
    pid: Option<u32>,
    at_start: f64,
}

impl ProcessCpu {
    fn of_self() -> anyhow::Result<Self> {
        Ok(Self {
            pid: None,
            at_start: cpu_seconds(None)?,
        })
    }

    fn of(pid: u32) -> anyhow::Result<Self> {
        Ok(Self {
            pid: Some(pid),
            at_start: cpu_seconds(Some(pid))?,
        })
    }

    fn elapsed(&self) -> anyhow::Result<f64> {
        Ok(cpu_seconds(self.pid)? - self.at_start)
    }
}

/// User plus system CPU seconds of a process (this one when `None`). `/proc` counts them in
/// clock ticks of USER_HZ, which Linux fixes at 100 per second for user space on every
/// architecture it reports to.
fn cpu_seconds(pid: Option<u32>) -> anyhow::Result<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name is in parentheses and may hold spaces: count fields after its end.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // Fields 14 and 15 (utime, stime) of proc(5) are the 12th and 13th after the name.
    let ticks = |index: usize| -> anyhow::Result<f64> {
        let field = fields
            .get(index)
            .with_context(|| format!("{path}: too few fields"))?;
        Ok(field.parse::<u64>().with_context(|| path.clone())? as f64)
    };
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// `vextrus serve` as a child process, on a port of its own.
struct ChildServer {
    child: Child,
    pid: u32,
    address: SocketAddr,
    data_dir: PathBuf,
}

impl ChildServer {
    async fn start(database_url: &str) -> anyhow::Result<Self> {
        let address = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
            probe.local_addr()?
        };
        let data_dir =
            std::env::temp_dir().join(format!("vextrus-bench-http-{}", Uuid::now_v7().simple()));
        std::fs::create_dir_all(&data_dir)?;
        let log = std::fs::File::create(data_dir.join("serve.log"))?;
        let mut child = Command::new(std::env::current_exe()?)
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("VEXTRUS_LISTEN", address.to_string())
            .env("VEXTRUS_DATA_DIR", &data_dir)
            .env("VEXTRUS_JWT_SECRET", BENCH_SECRET)
            // On, as in production, but out of the load's reach.
            .env("VEXTRUS_RATE_LIMIT_CLIENT", "1000000/s")
            .env("VEXTRUS_RATE_LIMIT_TENANT", "1000000/s")
            .env_remove("KAFKA_BROKERS")
            .env_remove("VEXTRUS_DEMO")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting `vextrus serve`")?;
        let pid = child.id().context("the server exited at once")?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(data_dir.join("serve.log")).unwrap_or_default();
                bail!("`vextrus serve` exited with {status}:\n{log}");
            }
            if ready(address).await {
                break;
            }
            if Instant::now() > deadline {
                bail!("`vextrus serve` was not ready within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            child,
            pid,
            address,
            data_dir,
        })
    }

    /// The server's resident memory now, from `/proc/<pid>/status`.
    fn resident_bytes(&self) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/status", self.pid);
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let kilobytes = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .with_context(|| format!("{path}: no VmRSS"))?;
        Ok(kilobytes * 1024)
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Whether the server answers `GET /health/ready` with 200.
async fn ready(address: SocketAddr) -> bool {
    let Ok(stream) = tokio::net::TcpStream::connect(address).await else {
        return false;
    };
    let Ok((mut sender, connection)) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        return false;
    };
    tokio::spawn(connection);
    let Ok(request) = hyper::Request::get("/health/ready")
        .header("host", address.to_string())
        .body(Full::new(Bytes::new()))
    else {
        return false;
    };
    matches!(
        sender.send_request(request).await,
        Ok(response) if response.status() == hyper::StatusCode::OK
    )
}
