//! A private PostgreSQL cluster started from the installed server binaries (design.md D10).
//!
//! `vextrus serve` with no `DATABASE_URL` keeps one under its data directory; the test suite and
//! the benchmarks start a throwaway one. The cluster listens only on a Unix socket in a private
//! directory, so it never competes for a TCP port and nothing outside this machine can reach it.
//!
//! PostgreSQL refuses to run as root. When we are root (CI, containers), the server runs as the
//! `postgres` system user that Debian's server package creates, via `runuser`. That user must be
//! able to enter the cluster's directory; below a private folder (root's 0700 home, a
//! `mktemp -d` folder) it cannot, and we never loosen folders that are not ours. There the cluster
//! moves to [`SHARED_CLUSTERS`] and the data directory keeps a symbolic link to it, so later runs
//! from the same folder find the same data.
//!
//! A watchdog process (`setsid sh`) outlives us. It holds the read end of a pipe whose write end
//! only we hold, so it wakes when our process ends, however it ends; it then stops the very
//! postmaster it was started for (never a later server on the same directory) and, for a throwaway
//! cluster, removes its files. No server is left running behind.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;

/// The superuser created by `initdb`; owns the databases it creates.
pub const SUPERUSER: &str = "vextrus";
/// Names the socket file (`.s.PGSQL.5432`); no TCP port is opened.
const PORT: u16 = 5432;
/// Where a cluster lives when we are root and the `postgres` user cannot enter the data
/// directory.
pub const SHARED_CLUSTERS: &str = "/var/lib/vextrus";

#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    #[error(
        "no PostgreSQL server binaries found (initdb, pg_ctl, postgres on PATH or in /usr/lib/postgresql/*/bin); \
         install them with `apt-get install postgresql` (Debian), or set DATABASE_URL to a running server"
    )]
    BinariesNotFound,
    #[error(
        "PostgreSQL refuses to run as root and there is no `postgres` user to run it as; \
         install Debian's postgresql package (it creates one) or run as an ordinary user"
    )]
    NoUnprivilegedUser,
    #[error("path {0} contains a quote character; choose a plainer directory")]
    UnsafePath(PathBuf),
    #[error(
        "a PostgreSQL server is already running on {0} (another vextrus process?); \
         stop it or choose another data directory"
    )]
    AlreadyRunning(PathBuf),
    #[error(
        "the postgres user cannot enter {dir} ({reason}); set VEXTRUS_DATA_DIR to a directory it \
         can reach, such as {SHARED_CLUSTERS}, or set DATABASE_URL"
    )]
    Unreachable { dir: PathBuf, reason: String },
    #[error("{step} failed: {detail}")]
    Step { step: &'static str, detail: String },
    #[error("{step}: {source}")]
    Io {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// How the cluster trades durability for speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// PostgreSQL's defaults: every commit is flushed to disk. For data that must survive and
    /// for benchmarks that must be honest.
    Durable,
    /// No fsync at all: for throwaway test clusters, where a crash loses nothing of value.
    Throwaway,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Where the cluster's files live. Created (with `initdb`) if it holds no cluster yet.
    pub data_dir: PathBuf,
    /// Remove `data_dir` when the cluster stops.
    pub remove_on_stop: bool,
    pub durability: Durability,
    pub max_connections: u32,
}

impl PostgresOptions {
    /// A cluster under a fresh temporary directory, removed when it stops.
    pub fn throwaway(durability: Durability) -> Self {
        let unique = format!(
            "vextrus-pg-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        );
        Self {
            data_dir: std::env::temp_dir().join(unique),
            remove_on_stop: true,
            durability,
            max_connections: 300,
        }
    }

    /// A cluster kept in `data_dir` across runs.
    pub fn persistent(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            remove_on_stop: false,
            durability: Durability::Durable,
            max_connections: 200,
        }
    }
}

/// A running private cluster. Stop it with [`PrivatePostgres::stop`]; if the process ends first,
/// the watchdog stops it.
#[derive(Debug)]
pub struct PrivatePostgres {
    bin_dir: PathBuf,
    cluster_dir: PathBuf,
    socket_dir: PathBuf,
    /// Set when we are root: the server runs as this unprivileged user.
    run_as: Option<ServerUser>,
    remove_on_stop: bool,
    /// Holds `cluster/` and the server log; the postgres user can enter it.
    root_dir: PathBuf,
    /// The link in the data directory when the cluster was moved to [`SHARED_CLUSTERS`].
    link: Option<PathBuf>,
    /// The write end of the watchdog's pipe: closing it (dropping it, or our process ending)
    /// wakes the watchdog.
    watchdog: Option<ChildStdin>,
}

/// The system user that runs the server when we are root.
#[derive(Debug, Clone, Copy)]
struct ServerUser {
    uid: u32,
    gid: u32,
}

impl ServerUser {
    const NAME: &'static str = "postgres";

    /// Whether this user can enter `dir` (search permission on it and every folder above it,
    /// ACLs and groups included: the kernel decides, not our reading of mode bits).
    fn can_enter(self, dir: &Path) -> bool {
        Command::new("runuser")
            .args(["-u", Self::NAME, "--", "test", "-x"])
            .arg(dir)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }
}

/// The directory the server's files go to, for `requested` when we are root, and the link left in
/// `requested` if they had to move: `requested` itself when `user` can enter its parent; else,
/// the first time, a new directory under [`SHARED_CLUSTERS`] that `requested` then links to; and
/// on later runs, wherever the link points.
fn reachable_root(
    requested: &Path,
    user: ServerUser,
) -> Result<(PathBuf, Option<PathBuf>), PostgresError> {
    let io = |step| move |source| PostgresError::Io { step, source };
    if fs::symlink_metadata(requested).is_ok_and(|meta| meta.file_type().is_symlink()) {
        let target =
            fs::canonicalize(requested).map_err(io("following the data directory's link"))?;
        return Ok((target, Some(requested.to_owned())));
    }
    let parent = requested.parent().unwrap_or(Path::new("/"));
    fs::create_dir_all(parent).map_err(io("creating the data directory"))?;
    if user.can_enter(parent) {
        return Ok((requested.to_owned(), None));
    }
    let unreachable = |reason: &str| PostgresError::Unreachable {
        dir: parent.to_owned(),
        reason: reason.to_owned(),
    };
    if requested.exists() {
        return Err(unreachable(
            "a folder above it is private, and it already holds files",
        ));
    }
    let shared = Path::new(SHARED_CLUSTERS);
    fs::create_dir_all(shared).map_err(|_| {
        unreachable(&format!(
            "a folder above it is private, and {SHARED_CLUSTERS} cannot be created"
        ))
    })?;
    if !user.can_enter(shared) {
        return Err(unreachable(&format!(
            "a folder above it is private, and so is {SHARED_CLUSTERS}"
        )));
    }
    let target = shared.join(format!("pg-{}", uuid::Uuid::now_v7().simple()));
    create_private_dir(&target, Some(user))?;
    if let Err(error) = std::os::unix::fs::symlink(&target, requested) {
        let _ = fs::remove_dir(&target);
        if error.kind() == std::io::ErrorKind::AlreadyExists {
            // Another process starting on the same data directory linked it first: use its
            // cluster (and find its server running, if it is).
            return reachable_root(requested, user);
        }
        return Err(io("linking the data directory")(error));
    }
    tracing::info!(
        data_dir = %requested.display(),
        cluster = %target.display(),
        "the postgres user cannot enter the data directory (a folder above it is private): \
         the cluster lives in a shared folder, linked from the data directory"
    );
    Ok((target, Some(requested.to_owned())))
}

impl PrivatePostgres {
    /// Initialises the cluster if needed and starts it; blocks until it accepts connections.
    pub fn start(options: &PostgresOptions) -> Result<Self, PostgresError> {
        let bin_dir = find_server_binaries()?;
        let run_as = if running_as_root() {
            Some(server_user()?)
        } else {
            None
        };
        let (root_dir, link) = match run_as {
            Some(user) => reachable_root(&absolute(&options.data_dir)?, user)?,
            None => (absolute(&options.data_dir)?, None),
        };
        let cluster_dir = root_dir.join("cluster");
        // Unix socket paths are limited to ~107 bytes, so the socket lives in a short temp path.
        let socket_base = match run_as {
            Some(user) => [std::env::temp_dir(), PathBuf::from("/tmp")]
                .into_iter()
                .find(|dir| user.can_enter(dir))
                .ok_or_else(|| PostgresError::Unreachable {
                    dir: std::env::temp_dir(),
                    reason: "for its socket; nor /tmp".to_owned(),
                })?,
            None => std::env::temp_dir(),
        };
        let socket_dir =
            socket_base.join(format!("vextrus-sock-{}", uuid::Uuid::now_v7().simple()));
        for path in [&bin_dir, &cluster_dir, &socket_dir] {
            if path.to_string_lossy().contains(['\'', '"']) {
                return Err(PostgresError::UnsafePath(path.clone()));
            }
        }
        create_private_dir(&root_dir, run_as)?;
        create_private_dir(&socket_dir, run_as)?;

        let mut cluster = Self {
            bin_dir,
            cluster_dir,
            socket_dir,
            run_as,
            remove_on_stop: options.remove_on_stop,
            root_dir,
            link,
            watchdog: None,
        };
        if !cluster.cluster_dir.join("PG_VERSION").exists() {
            cluster.initdb(options.durability)?;
        }
        cluster.wait_for_previous_server()?;
        cluster.pg_ctl_start(options)?;
        cluster.watchdog = Some(cluster.spawn_watchdog()?);
        Ok(cluster)
    }

    /// Connection options for `database` as the superuser.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(PORT)
            .username(SUPERUSER)
            .database(database)
    }

    /// A `postgres://` URL for `database`, for people and tools such as psql.
    pub fn url(&self, database: &str) -> String {
        let host: String = self
            .socket_dir
            .to_string_lossy()
            .chars()
            .map(|c| {
                if c == '/' {
                    "%2F".to_owned()
                } else {
                    c.to_string()
                }
            })
            .collect();
        format!("postgres://{SUPERUSER}@{host}:{PORT}/{database}")
    }

    /// Stops the server (fast shutdown: running transactions are rolled back, data is kept) and
    /// removes a throwaway cluster's files.
    pub fn stop(mut self) -> Result<(), PostgresError> {
        let result = self.pg_ctl(&["stop", "-m", "fast", "-w"], "pg_ctl stop");
        // The watchdog wakes, finds its server gone, and only tidies up.
        drop(self.watchdog.take());
        if self.remove_on_stop {
            let _ = fs::remove_dir_all(&self.root_dir);
            if let Some(link) = &self.link {
                let _ = fs::remove_file(link);
            }
        }
        let _ = fs::remove_dir_all(&self.socket_dir);
        result
    }

    fn initdb(&self, durability: Durability) -> Result<(), PostgresError> {
        let mut args = vec![
            "-D".to_owned(),
            self.cluster_dir.display().to_string(),
            "-U".to_owned(),
            SUPERUSER.to_owned(),
            "--auth=trust".to_owned(),
            "--encoding=UTF8".to_owned(),
            "--locale=C".to_owned(),
        ];
        if durability == Durability::Throwaway {
            args.push("--no-sync".to_owned());
        }
        self.run("initdb", &args, "initdb")
    }

    fn pg_ctl_start(&self, options: &PostgresOptions) -> Result<(), PostgresError> {
        let mut settings = vec![
            "-c listen_addresses=''".to_owned(),
            format!("-c unix_socket_directories='{}'", self.socket_dir.display()),
            format!("-c port={PORT}"),
            format!("-c max_connections={}", options.max_connections),
        ];
        if options.durability == Durability::Throwaway {
            settings.extend(
                [
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    // Tests order commits by their timestamps (the ledger's race test).
                    "-c track_commit_timestamp=on",
                ]
                .map(str::to_owned),
            );
        }
        let log = self.root_dir.join("postgres.log");
        let log = log.display().to_string();
        let settings = settings.join(" ");
        self.pg_ctl(
            &["start", "-w", "-t", "60", "-l", &log, "-o", &settings],
            "pg_ctl start",
        )
    }

    /// A server still running on this directory: a previous process's, about to be stopped by its
    /// watchdog (wait for it), or a live one in use by another process (refuse to touch it).
    fn wait_for_previous_server(&self) -> Result<(), PostgresError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.server_running() {
            if Instant::now() >= deadline {
                return Err(PostgresError::AlreadyRunning(self.cluster_dir.clone()));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    fn server_running(&self) -> bool {
        self.cluster_dir.join("postmaster.pid").exists()
            && self.pg_ctl(&["status"], "pg_ctl status").is_ok()
    }

    fn spawn_watchdog(&self) -> Result<ChildStdin, PostgresError> {
        let pid_file = self.cluster_dir.join("postmaster.pid");
        let postmaster = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|contents| contents.lines().next().map(str::trim).map(str::to_owned))
            .filter(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(PostgresError::Step {
                step: "reading postmaster.pid",
                detail: pid_file.display().to_string(),
            })?;
        let mut cleanup = format!("rm -rf '{}'", self.socket_dir.display());
        if self.remove_on_stop {
            cleanup.push_str(&format!("; rm -rf '{}'", self.root_dir.display()));
            if let Some(link) = &self.link {
                cleanup.push_str(&format!("; rm -f '{}'", link.display()));
            }
        }
        // `read` returns at end of input: when our process is gone. SIGINT is PostgreSQL's fast
        // shutdown. The pid check keeps a later server on the same directory safe.
        let script = format!(
            "read _ignored; \
             if [ \"$(head -n 1 '{pid_file}' 2>/dev/null)\" = '{postmaster}' ]; then \
               kill -INT {postmaster}; while kill -0 {postmaster} 2>/dev/null; do sleep 0.2; done; \
             fi; {cleanup}",
            pid_file = pid_file.display(),
        );
        let mut watchdog = Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| PostgresError::Io {
                step: "starting the PostgreSQL watchdog",
                source,
            })?;
        watchdog.stdin.take().ok_or(PostgresError::Step {
            step: "starting the PostgreSQL watchdog",
            detail: "no pipe to the watchdog".to_owned(),
        })
    }

    fn pg_ctl(&self, args: &[&str], step: &'static str) -> Result<(), PostgresError> {
        let mut full = vec!["-D".to_owned(), self.cluster_dir.display().to_string()];
        full.extend(args.iter().map(|arg| (*arg).to_owned()));
        self.run("pg_ctl", &full, step)
    }

    /// Runs a server binary, as `postgres` when we are root.
    fn run(&self, program: &str, args: &[String], step: &'static str) -> Result<(), PostgresError> {
        let binary = self.bin_dir.join(program);
        let mut command = match self.run_as {
            Some(_) => {
                let mut command = Command::new("runuser");
                command.args(["-u", ServerUser::NAME, "--"]).arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        // The server binaries look up their own path relative to the working directory and
        // return to it; ours may be a folder that `postgres` cannot enter.
        let output = command
            .args(args)
            .current_dir("/")
            .stdin(Stdio::null())
            .output()
            .map_err(|source| PostgresError::Io { step, source })?;
        if output.status.success() {
            return Ok(());
        }
        let mut detail = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if let Ok(log) = fs::read_to_string(self.root_dir.join("postgres.log")) {
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            detail.push_str(&format!(
                "\nserver log (last lines):\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        Err(PostgresError::Step { step, detail })
    }
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: on PATH first, else the newest
/// version under `/usr/lib/postgresql/*/bin` (Debian keeps server binaries off PATH).
pub fn find_server_binaries() -> Result<PathBuf, PostgresError> {
    let has_all = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(dir) = std::env::split_paths(&path).find(|dir| has_all(dir)) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_all(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or(PostgresError::BinariesNotFound)
}

fn running_as_root() -> bool {
    fs::metadata("/proc/self")
        .map(|meta| meta.uid() == 0)
        .unwrap_or(false)
}

/// The `postgres` user, from /etc/passwd.
fn server_user() -> Result<ServerUser, PostgresError> {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            match fields.as_slice() {
                [name, _, uid, gid, ..] if *name == ServerUser::NAME => Some(ServerUser {
                    uid: uid.parse().ok()?,
                    gid: gid.parse().ok()?,
                }),
                _ => None,
            }
        })
        .ok_or(PostgresError::NoUnprivilegedUser)
}

fn absolute(path: &Path) -> Result<PathBuf, PostgresError> {
    std::path::absolute(path).map_err(|source| PostgresError::Io {
        step: "resolving the data directory",
        source,
    })
}

/// Creates `dir` (mode 0700), owned by the server's user when we are root.
fn create_private_dir(dir: &Path, run_as: Option<ServerUser>) -> Result<(), PostgresError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |step| move |source| PostgresError::Io { step, source };
    fs::create_dir_all(dir).map_err(io("creating the data directory"))?;
    if let Some(user) = run_as {
        std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid))
            .map_err(io("handing the data directory to postgres"))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(io("restricting the data directory"))
}
