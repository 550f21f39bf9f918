//! The `vextrus` binary itself: `serve` with its private PostgreSQL, `token`, and configuration
//! checks at start.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

const BINARY: &str = env!("CARGO_BIN_EXE_vextrus");

/// The binary with a clean environment, on `data_dir`.
pub fn vextrus(data_dir: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env_remove("DATABASE_URL")
        .env_remove("DATABASE_URL_FILE")
        .env_remove("VEXTRUS_JWT_SECRET")
        .env_remove("VEXTRUS_JWT_SECRET_FILE")
        .env("VEXTRUS_DATA_DIR", data_dir)
        .env("VEXTRUS_LOG", "warn");
    command
}

/// The standard output of `command`, which must succeed (else the test fails with what it
/// printed).
pub fn succeeded(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{command:?} cannot start: {error}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// An admin token for `tenant` from `vextrus token`, run as `command` (the binary on some data
/// directory).
fn minted_token(mut command: Command, tenant: &str, subject: &str) -> String {
    command.args([
        "token",
        "--tenant",
        tenant,
        "--subject",
        subject,
        "--roles",
        "admin",
    ]);
    succeeded(&mut command).trim().to_owned()
}

pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("vextrus-{name}-{}", uuid::Uuid::now_v7().simple()))
}

#[test]
fn serve_refuses_bad_configuration_and_names_the_variable() {
    let dir = scratch_dir("config");
    for (variable, value) in [
        ("VEXTRUS_LISTEN", "not-an-address"),
        ("VEXTRUS_JWT_SECRET", "too short"),
        ("DATABASE_URL", "mysql://localhost/x"),
        ("VEXTRUS_TRUSTED_PROXIES", "10.0.0.0/8,not-a-network"),
    ] {
        let output = vextrus(&dir)
            .arg("serve")
            .env(variable, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{variable}: {stderr}");
        assert!(
            stderr.contains(variable),
            "{variable} not named in: {stderr}"
        );
    }
    assert!(!dir.join("pg").exists(), "nothing was started");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `vextrus serve` process and the address it printed.
pub struct Served {
    pub child: Child,
    pub base: String,
    /// What it printed after its address.
    printed: Arc<Mutex<String>>,
}

fn serve(dir: &Path) -> Served {
    serve_with(dir, |_| {})
}

/// `vextrus serve` on a free port, with `configure` adding to its environment; waits until it
/// prints its address.
pub fn serve_with(dir: &Path, configure: impl FnOnce(&mut Command)) -> Served {
    let mut command = vextrus(dir);
    command.arg("serve").env("VEXTRUS_LISTEN", "127.0.0.1:0");
    configure(&mut command);
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            line.strip_prefix("Vextrus is listening on ")
                .map(|url| url.trim().to_owned())
        })
        .expect("serve exited without printing its address");
    // Keep reading, as a terminal would, until the process ends.
    let printed = Arc::new(Mutex::new(String::new()));
    std::thread::spawn({
        let printed = Arc::clone(&printed);
        move || {
            for line in lines.map_while(Result::ok) {
                let mut printed = printed.lock().unwrap();
                printed.push_str(&line);
                printed.push('\n');
            }
        }
    });
    Served {
        child,
        base,
        printed,
    }
}

impl Served {
    /// [`Self::terminate`] off the async runtime.
    pub async fn stop(self) -> std::process::ExitStatus {
        tokio::task::spawn_blocking(move || self.terminate())
            .await
            .unwrap()
    }

    /// What it has printed since its address, once that holds `marker` (or after 10 s).
    fn printed_once(&self, marker: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let printed = self.printed.lock().unwrap().clone();
            if printed.contains(marker) || std::time::Instant::now() > deadline {
                return printed;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything the process writes to standard error (spawned with `Stdio::piped()` for it),
    /// collected until it exits.
    pub fn read_stderr(&mut self) -> std::thread::JoinHandle<String> {
        let mut stderr = self.child.stderr.take().expect("standard error is piped");
        std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
            text
        })
    }

    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        self.child.wait().unwrap()
    }

    /// Polls `/health/ready` until it answers 200 (projections start after the listener).
    pub async fn wait_until_ready(&self, client: &reqwest::Client) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let response = client
                .get(format!("{}/health/ready", self.base))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            if status == 200 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not ready after 60 s: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A test that fails midway must not leave its server running.
impl Drop for Served {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test]
async fn serve_runs_on_a_private_postgres_that_keeps_data_across_restarts() {
    let dir = scratch_dir("serve");
    let served = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || serve(&dir)
    })
    .await
    .unwrap();
    let tenant = uuid::Uuid::now_v7().to_string();
    let token = minted_token(vextrus(&dir), &tenant, "cli-test");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    let created: serde_json::Value = client
        .post(format!("{}/v1/organizations", served.base))
        .bearer_auth(&token)
        .json(&json!({"name": "Meghna Builders Ltd", "code": "MBL", "bin": "0028718210101", "tin": "123456789012"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org = created["id"].as_str().expect("an id").to_owned();
    let tree = client
        .get(format!(
            "{}/v1/organizations/{org}/tree?min_position={}",
            served.base, created["position"]
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(tree.status(), 200);

    let status = served.stop().await;
    assert!(status.success(), "serve exited with {status}");
    assert!(
        dir.join("pg/cluster/PG_VERSION").exists(),
        "the cluster is kept"
    );
    assert!(
        !dir.join("pg/cluster/postmaster.pid").exists(),
        "PostgreSQL was stopped"
    );

    // Started again on the same data directory, the organization is still there.
    let served = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || serve(&dir)
    })
    .await
    .unwrap();
    let again = client
        .get(format!("{}/v1/organizations/{org}", served.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let body: serde_json::Value = again.json().await.unwrap();
    assert_eq!(body["code"], "MBL");
    let status = served.stop().await;
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The README's first command as a fresh machine's root user runs it: from a folder of mode 0700
/// (root's home, `mktemp -d`), which the `postgres` user that runs the server cannot enter.
#[tokio::test]
async fn serve_as_root_from_a_private_folder_keeps_its_data_across_restarts() {
    use std::os::unix::fs::PermissionsExt;
    if !std::fs::metadata("/proc/self")
        .is_ok_and(|meta| std::os::unix::fs::MetadataExt::uid(&meta) == 0)
    {
        eprintln!("not root: the server runs as this user, nothing to relocate");
        return;
    }
    let folder = scratch_dir("private-home");
    std::fs::create_dir(&folder).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
    // As a user runs it: from the folder, with the default data directory (`.vextrus`).
    fn from_folder(command: &mut Command, folder: &Path) {
        command.env_remove("VEXTRUS_DATA_DIR").current_dir(folder);
    }
    let start = || {
        let folder = folder.clone();
        tokio::task::spawn_blocking(move || {
            serve_with(&folder, |command| from_folder(command, &folder))
        })
    };

    let served = start().await.unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    served.wait_until_ready(&client).await;
    let tenant = uuid::Uuid::now_v7().to_string();
    let mut token = vextrus(&folder);
    from_folder(&mut token, &folder);
    let token = minted_token(token, &tenant, "root");
    let created = client
        .post(format!("{}/v1/organizations", served.base))
        .bearer_auth(&token)
        .json(&json!({"name": "Meghna Builders Ltd", "code": "MBL", "bin": "0028718210101", "tin": "123456789012"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let org = created.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = served.stop().await;
    assert!(status.success(), "serve exited with {status}");

    // The folder was not loosened; the cluster lives in the shared folder, linked from it.
    let mode = std::fs::metadata(&folder).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let link = folder.join(".vextrus/pg");
    let cluster = std::fs::read_link(&link).expect(".vextrus/pg links to the cluster");
    assert!(
        cluster.starts_with(vextrus::postgres::SHARED_CLUSTERS),
        "{}",
        cluster.display()
    );
    assert!(cluster.join("cluster/PG_VERSION").exists());

    let served = start().await.unwrap();
    served.wait_until_ready(&client).await;
    let again = client
        .get(format!("{}/v1/organizations/{org}", served.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200, "the organization was kept");
    let status = served.stop().await;
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&cluster);
    let _ = std::fs::remove_dir_all(&folder);
}

/// `serve --demo` loads a sample tenant and prints a token and requests to try; a second start
/// with `--demo` adds nothing.
#[tokio::test]
async fn serve_demo_loads_a_sample_tenant_once_and_prints_how_to_look_around() {
    let dir = scratch_dir("demo");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut counts = Vec::new();
    for run in 0..2 {
        let served = tokio::task::spawn_blocking({
            let dir = dir.clone();
            move || {
                serve_with(&dir, |command| {
                    command.arg("--demo");
                })
            }
        })
        .await
        .unwrap();
        served.wait_until_ready(&client).await;
        let printed = served.printed_once("/v1/auth/login");
        let token = printed
            .lines()
            .find_map(|line| line.trim().strip_prefix("TOKEN="))
            .unwrap_or_else(|| panic!("no token printed:\n{printed}"))
            .to_owned();
        let curls: Vec<&str> = printed
            .lines()
            .filter(|line| line.trim().starts_with("curl -s "))
            .collect();
        assert_eq!(curls.len(), 5, "{printed}");
        if run == 1 {
            assert!(printed.contains("already loaded"), "{printed}");
        }
        // The printed requests work as printed.
        let mut answers = Vec::new();
        for curl in &curls {
            let url = curl.split_whitespace().nth(2).unwrap().trim_matches('"');
            let answer = client.get(url).bearer_auth(&token).send().await.unwrap();
            assert_eq!(answer.status(), 200, "{url}");
            answers.push(answer.json::<serde_json::Value>().await.unwrap());
        }
        let [organizations, tree, trial_balance, history, _activity] = &answers[..] else {
            unreachable!()
        };

        // The sample ledger: this fiscal year's trial balance balances and is not empty.
        assert_eq!(trial_balance["balanced"], true, "{trial_balance}");
        assert_ne!(trial_balance["totals"]["debit"], "0.00", "{trial_balance}");
        // The activity counters catch up with the demo's events (every stream of the tenant).
        let activity_url = curls[4]
            .split_whitespace()
            .nth(2)
            .unwrap()
            .trim_matches('"');
        let search_url = activity_url
            .split('?')
            .next()
            .unwrap()
            .replace("/v1/audit/activity", "/v1/audit/events?limit=1000");
        let all_events: serde_json::Value = client
            .get(&search_url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let all_events = all_events["items"].as_array().unwrap().len();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let activity: serde_json::Value = client
                .get(activity_url)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if activity["totals"]["events"] == all_events {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{activity}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(organizations["items"][0]["name"], "Meghna Builders Ltd");
        assert_eq!(organizations["items"].as_array().unwrap().len(), 1);
        let divisions = tree["divisions"].as_array().unwrap();
        let projects: Vec<&serde_json::Value> = divisions
            .iter()
            .flat_map(|division| division["projects"].as_array().unwrap())
            .collect();
        let sites: usize = projects
            .iter()
            .map(|project| project["sites"].as_array().unwrap().len())
            .sum();
        counts.push((
            divisions.len(),
            projects.len(),
            sites,
            history["items"].as_array().unwrap().len(),
            all_events,
        ));
        // The printed sign-in works too (on the second run, after counting: a sign-in is an
        // event): the administrator's token holds the admin role.
        if run == 1 {
            let login = printed
                .lines()
                .find(|line| line.contains("/v1/auth/login"))
                .unwrap_or_else(|| panic!("no sign-in printed:\n{printed}"));
            let url = login.split_whitespace().nth(3).unwrap();
            let body = login.split("-d '").nth(1).unwrap().trim_end_matches('\'');
            let signed_in: serde_json::Value = client
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_owned())
                .send()
                .await
                .unwrap()
                .error_for_status()
                .unwrap()
                .json()
                .await
                .unwrap();
            let me: serde_json::Value = client
                .get(url.replace("/login", "/me"))
                .bearer_auth(signed_in["access_token"].as_str().unwrap())
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(me["roles"], serde_json::json!(["admin"]), "{me}");
        }
        let status = served.stop().await;
        assert!(status.success());
    }
    assert_eq!(counts[0], counts[1], "the second load added nothing");
    let (divisions, projects, sites, events, _) = counts[0];
    assert!(divisions >= 3 && projects >= 5 && sites >= 8, "{counts:?}");
    assert_eq!(events, 1 + divisions + projects + sites + 1, "one rename");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Logs off a terminal carry no colour codes; `VEXTRUS_LOG_FORMAT=json` writes one JSON object per
/// line with the request span's ids.
#[tokio::test]
async fn logs_are_plain_off_a_terminal_and_json_when_asked() {
    let client = reqwest::Client::new();
    for format in ["text", "json"] {
        let dir = scratch_dir("logs");
        let mut served = tokio::task::spawn_blocking({
            let dir = dir.clone();
            move || {
                serve_with(&dir, |command| {
                    command
                        .env("VEXTRUS_LOG", "info,sqlx=warn")
                        .env("VEXTRUS_LOG_FORMAT", format)
                        .stderr(Stdio::piped());
                })
            }
        })
        .await
        .unwrap();
        let logs = served.read_stderr();
        served.wait_until_ready(&client).await;
        let tenant = uuid::Uuid::now_v7().to_string();
        let token = minted_token(vextrus(&dir), &tenant, "logs@example.com");
        let correlation = uuid::Uuid::now_v7().to_string();
        let answer = client
            .get(format!("{}/v1/organizations", served.base))
            .bearer_auth(&token)
            .header("X-Correlation-ID", &correlation)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert!(served.stop().await.success());
        let logs = logs.join().unwrap();
        assert!(!logs.contains('\u{1b}'), "escape sequences in:\n{logs}");
        if format == "json" {
            let lines: Vec<serde_json::Value> = logs
                .lines()
                .filter(|line| !line.trim().is_empty())
                .map(|line| {
                    serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"))
                })
                .collect();
            for line in &lines {
                for field in ["timestamp", "level", "target"] {
                    assert!(line.get(field).is_some(), "no {field}: {line}");
                }
            }
            assert!(
                lines
                    .iter()
                    .any(|line| line["span"]["tenant_id"] == tenant.as_str()
                        && line["span"]["request_id"].is_string()
                        && line["message"].is_string()),
                "no request line with the tenant:\n{logs}"
            );
        } else {
            assert!(logs.contains(&tenant), "{logs}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
