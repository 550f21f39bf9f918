//! Crash trials: `vextrus serve --embedded-kafka` killed with SIGKILL again and again under load.
//! Its broker lives in the process, so each kill loses what the broker held and no worker had
//! applied; the workers' check against the log must bring it back. In the end every acknowledged
//! command is in the read models, and each read model equals a rebuild from the log.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use uuid::Uuid;
use vextrus::server::Fanout;
use vextrus_api::{Claims, JwtKeys};
use vextrus_commands::{DbRole, LogReader};
use vextrus_projections::Projection;
use vextrus_projections::activity::AuditActivity;
use vextrus_projections::finance::GeneralLedger;
use vextrus_projections::organization::OrganizationHierarchy;
use vextrus_replay::{Outcome, Replay, ReplayOptions};

use crate::cli::{Served, scratch_dir, serve_with};
use crate::http::{TestApp, organization_body, spawn_app_with};

const SECRET: &str = "crash trials sign their tokens with this secret";
const CLIENTS: usize = 4;
const KILLS: usize = 4;

/// A port nothing listens on now, so that every restart serves at the same address.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn start(dir: &std::path::Path, app: &TestApp, port: u16) -> Served {
    let served = tokio::task::spawn_blocking({
        let (dir, url) = (dir.to_owned(), app.db.url.clone());
        move || {
            serve_with(&dir, |command| {
                command
                    .arg("--embedded-kafka")
                    .env("DATABASE_URL", url)
                    .env("VEXTRUS_JWT_SECRET", SECRET)
                    .env("VEXTRUS_LISTEN", format!("127.0.0.1:{port}"));
            })
        }
    })
    .await
    .unwrap();
    served.wait_until_ready(&reqwest::Client::new()).await;
    served
}

/// One client: creates organizations, each retried with its `Idempotency-Key` until the server
/// acknowledges it, until `stop`; returns the acknowledged ids.
async fn client(base: String, token: String, number: usize, stop: Arc<AtomicBool>) -> Vec<Uuid> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut acknowledged = Vec::new();
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let key = format!("crash-{number}-{n}");
        let body = organization_body(&format!("C{number}N{n}"));
        loop {
            let sent = http
                .post(format!("{base}/v1/organizations"))
                .bearer_auth(&token)
                .header("Idempotency-Key", &key)
                .json(&body)
                .send()
                .await;
            let Ok(response) = sent else {
                // The server is down (killed): try again until it is back.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let status = response.status().as_u16();
            match status {
                200 | 201 => {
                    let answer: serde_json::Value = response.json().await.unwrap();
                    acknowledged.push(Uuid::parse_str(answer["id"].as_str().unwrap()).unwrap());
                    break;
                }
                // Racing its own earlier attempt, or the server going down or starting.
                409 | 429 | 500..=599 => tokio::time::sleep(Duration::from_millis(100)).await,
                _ => panic!(
                    "{key}: {status} {}",
                    response.text().await.unwrap_or_default()
                ),
            }
        }
    }
    acknowledged
}

/// How each live read model differs from a rebuild from the log: `table: +added -removed ~changed`
/// for every table that differs.
async fn differences_from_a_rebuild(app: &TestApp) -> Vec<String> {
    async fn of<P: Projection>(app: &TestApp, projection: P) -> Vec<String> {
        let reader = LogReader::new(app.db.role_pool(DbRole::Projector, 2).await.unwrap());
        let options = ReplayOptions {
            dry_run: true,
            ..ReplayOptions::default()
        };
        let summary = Replay::new(projection, app.owner.clone(), reader, options)
            .run(|_| {})
            .await
            .unwrap();
        let Outcome::DryRun { differences } = summary.outcome else {
            panic!("a dry run swapped")
        };
        differences
            .into_iter()
            .filter(|d| d.added + d.removed + d.changed > 0)
            .map(|d| format!("{}: +{} -{} ~{}", d.table, d.added, d.removed, d.changed))
            .collect()
    }
    let mut all = of(app, OrganizationHierarchy).await;
    all.extend(of(app, GeneralLedger).await);
    all.extend(of(app, AuditActivity).await);
    all
}

#[tokio::test]
async fn the_all_in_one_kafka_shape_killed_under_load_ends_with_every_acknowledged_command() {
    let app = spawn_app_with(|config| config.fanout = Fanout::Elsewhere).await;
    let dir = scratch_dir("crash");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let tenant = Uuid::now_v7();
    let token = JwtKeys::from_secret(SECRET.as_bytes())
        .unwrap()
        .sign(&Claims {
            sub: "crash-trial".into(),
            tenant,
            roles: vec!["admin".into()],
            exp: chrono::Utc::now().timestamp() + 3600,
            iat: None,
        })
        .unwrap();

    let mut served = start(&dir, &app, port).await;
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|number| {
            tokio::spawn(client(
                base.clone(),
                token.clone(),
                number,
                Arc::clone(&stop),
            ))
        })
        .collect();
    for round in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(1200 + 300 * round as u64)).await;
        served.child.kill().unwrap(); // SIGKILL
        served.child.wait().unwrap();
        served = start(&dir, &app, port).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for client in clients {
        acknowledged.extend(client.await.unwrap());
    }
    assert!(acknowledged.len() > 50, "{} commands", acknowledged.len());

    // Every acknowledged organization reaches the read model: what the killed brokers lost is
    // applied from the log once the workers find it missing.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let held: i64 = sqlx::query_scalar(
            "select count(*) from org_organizations where organization_id = any($1)",
        )
        .bind(&acknowledged)
        .fetch_one(&app.owner)
        .await
        .unwrap();
        if held == acknowledged.len() as i64 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{held} of {} acknowledged organizations in the read model after {KILLS} kills",
            acknowledged.len(),
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And the status says so once the workers have checked.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let reports = vextrus_replay::projection_reports(&app.owner)
            .await
            .unwrap();
        if reports.iter().all(|report| report.lag_events == 0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{reports:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(served.stop().await.success());
    assert_eq!(differences_from_a_rebuild(&app).await, Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&dir);
}
