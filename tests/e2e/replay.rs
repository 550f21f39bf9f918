//! Replay (design.md D6) against the real server: rebuilt tables equal the live-built ones, one
//! tenant's replay touches no other tenant, a dry run swaps nothing, replay under live traffic
//! ends consistent, an interrupted replay leaves the live tables alone, two replays cannot run at
//! once, and a version change rebuilds.

use std::time::Duration;

use serde_json::json;
use vextrus_commands::{DbRole, LogReader};
use vextrus_domain::TenantId;
use vextrus_projections::organization::OrganizationHierarchy;
use vextrus_replay::{
    Outcome, Replay, ReplayError, ReplayOptions, Summary, TableDiff, rebuild_if_outdated,
};

use crate::http::*;
use crate::kafka::drive_commands;
use crate::support::dump_read_models;

async fn replay(app: &TestApp, options: ReplayOptions) -> Result<Summary, ReplayError> {
    let projector = app.db.role_pool(DbRole::Projector, 2).await.unwrap();
    Replay::new(
        OrganizationHierarchy,
        app.owner.clone(),
        LogReader::new(projector),
        options,
    )
    .run(|_| {})
    .await
}

/// Waits until the runner has applied every event in the log.
async fn until_caught_up(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let caught_up: bool = sqlx::query_scalar(
            "select coalesce((select global_position from projection_checkpoints
                              where projection = 'organization_hierarchy'), 0)
                    >= (select coalesce(max(global_position), 0) from events)",
        )
        .fetch_one(&app.owner)
        .await
        .unwrap();
        if caught_up {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the runner lags");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Tenants of the organizations in the read model, in order.
async fn tenants(app: &TestApp) -> Vec<uuid::Uuid> {
    sqlx::query_scalar("select distinct tenant_id from org_organizations order by 1")
        .fetch_all(&app.owner)
        .await
        .unwrap()
}

/// Changes one organization's name behind the projection's back (the superuser may).
async fn corrupt(app: &TestApp, tenant: uuid::Uuid) {
    sqlx::query("update org_organizations set name = 'CORRUPTED' where tenant_id = $1")
        .bind(tenant)
        .execute(&app.owner)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_full_replay_rebuilds_exactly_the_live_tables_and_the_runner_goes_on_from_it() {
    let app = spawn_app().await;
    drive_commands(&app, 3).await;
    until_caught_up(&app).await;
    let live = dump_read_models(&app.owner).await;
    corrupt(&app, tenants(&app).await[0]).await;

    let summary = replay(
        &app,
        ReplayOptions {
            page_size: 7,
            ..ReplayOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(summary.events, app.event_count().await as u64);
    assert!(matches!(summary.outcome, Outcome::Swapped { .. }));
    assert_eq!(
        dump_read_models(&app.owner).await,
        live,
        "rebuilt = built live"
    );

    // The swapped-in tables are protected like the old ones.
    let (forced, policies): (bool, i64) = sqlx::query_as(
        "select relforcerowsecurity, (select count(*) from pg_policies where tablename = 'org_sites')
         from pg_class where oid = 'public.org_sites'::regclass",
    )
    .fetch_one(&app.owner)
    .await
    .unwrap();
    assert!(forced);
    assert_eq!(policies, 1);
    let stranger = app.caller(&["viewer"]);
    let seen = stranger.get("/v1/organizations").await.expect(200);
    assert_eq!(seen.body["items"], json!([]), "another tenant sees nothing");

    // The runner reloads its checkpoint and goes on into the new tables.
    let admin = app.caller(&["admin"]);
    let later = admin.create_hierarchy("LATER").await;
    let tree = admin
        .tree_after(&later.org, later.position)
        .await
        .expect(200);
    assert_eq!(tree.body["organization"]["code"], "LATER");
    let generation: i64 = sqlx::query_scalar(
        "select generation from projection_checkpoints where projection = 'organization_hierarchy'",
    )
    .fetch_one(&app.owner)
    .await
    .unwrap();
    assert_eq!(generation, 1);
    app.shutdown().await;
}

#[tokio::test]
async fn a_tenant_replay_changes_only_that_tenant() {
    let app = spawn_app().await;
    drive_commands(&app, 3).await;
    until_caught_up(&app).await;
    let live = dump_read_models(&app.owner).await;
    let tenants = tenants(&app).await;
    corrupt(&app, tenants[0]).await;
    corrupt(&app, tenants[1]).await;
    let corrupted = dump_read_models(&app.owner).await;

    replay(
        &app,
        ReplayOptions {
            tenant: Some(TenantId::from_uuid(tenants[0])),
            ..ReplayOptions::default()
        },
    )
    .await
    .unwrap();
    let after = dump_read_models(&app.owner).await;
    let rows_of = |dump: &[String], tenant: uuid::Uuid| -> Vec<serde_json::Value> {
        dump.iter()
            .flat_map(|table| serde_json::from_str::<Vec<serde_json::Value>>(table).unwrap())
            .filter(|row| row["tenant_id"] == tenant.to_string())
            .collect()
    };
    assert_eq!(
        rows_of(&after, tenants[0]),
        rows_of(&live, tenants[0]),
        "rebuilt"
    );
    for other in &tenants[1..] {
        assert_eq!(
            rows_of(&after, *other),
            rows_of(&corrupted, *other),
            "untouched, corruption included"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_dry_run_reports_the_differences_and_swaps_nothing() {
    let app = spawn_app().await;
    drive_commands(&app, 2).await;
    until_caught_up(&app).await;
    corrupt(&app, tenants(&app).await[1]).await;
    sqlx::query("delete from org_sites where tenant_id = $1")
        .bind(tenants(&app).await[0])
        .execute(&app.owner)
        .await
        .unwrap();
    let before = dump_read_models(&app.owner).await;

    let summary = replay(
        &app,
        ReplayOptions {
            dry_run: true,
            ..ReplayOptions::default()
        },
    )
    .await
    .unwrap();
    let Outcome::DryRun { differences } = summary.outcome else {
        panic!("a dry run swaps nothing")
    };
    let of = |table: &str| {
        differences
            .iter()
            .find(|d| d.table == table)
            .unwrap()
            .clone()
    };
    assert_eq!(
        of("org_organizations"),
        TableDiff {
            table: "org_organizations",
            added: 0,
            removed: 0,
            changed: 1
        }
    );
    assert_eq!(of("org_sites").added, 1, "{differences:?}");
    assert_eq!(of("org_divisions").changed, 0);
    assert_eq!(dump_read_models(&app.owner).await, before, "live untouched");
    app.shutdown().await;
}

#[tokio::test]
async fn replay_while_commands_arrive_ends_consistent_with_the_log() {
    let app = spawn_app().await;
    drive_commands(&app, 2).await;
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let traffic = async {
        let admin = app.caller(&["admin"]);
        let h = admin.create_hierarchy("BUSY").await;
        let mut n = 0;
        loop {
            if stopped.try_recv().is_ok() {
                break;
            }
            admin
                .patch(
                    &format!("/v1/organizations/{}", h.org),
                    json!({"name": format!("Busy {n}")}),
                )
                .await
                .expect(200);
            n += 1;
        }
        n
    };
    let replayed = async {
        let summary = replay(
            &app,
            ReplayOptions {
                page_size: 3,
                ..ReplayOptions::default()
            },
        )
        .await
        .unwrap();
        let _ = stop.send(());
        summary
    };
    let (renames, summary) = tokio::join!(traffic, replayed);
    assert!(renames > 0, "commands kept arriving");
    assert!(matches!(summary.outcome, Outcome::Swapped { .. }));
    until_caught_up(&app).await;
    let after = dump_read_models(&app.owner).await;
    // A second, quiet replay builds the reference from the whole log.
    replay(&app, ReplayOptions::default()).await.unwrap();
    assert_eq!(after, dump_read_models(&app.owner).await);
    app.shutdown().await;
}

#[tokio::test]
async fn an_interrupted_replay_leaves_the_live_tables_alone_and_can_run_again() {
    let app = spawn_app().await;
    drive_commands(&app, 3).await;
    until_caught_up(&app).await;
    corrupt(&app, tenants(&app).await[0]).await;
    let before = dump_read_models(&app.owner).await;

    // Slow enough to be interrupted mid-way: 20 events/s, one per page.
    let slow = replay(
        &app,
        ReplayOptions {
            page_size: 1,
            max_rate: Some(20),
            ..ReplayOptions::default()
        },
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(500), slow)
            .await
            .is_err(),
        "still running when interrupted"
    );
    assert_eq!(dump_read_models(&app.owner).await, before, "live untouched");
    let shadow_prepared: bool =
        sqlx::query_scalar("select to_regclass('vextrus_replay.org_divisions') is not null")
            .fetch_one(&app.owner)
            .await
            .unwrap();
    assert!(shadow_prepared, "it had started building");

    replay(&app, ReplayOptions::default()).await.unwrap();
    let rebuilt = dump_read_models(&app.owner).await;
    assert_ne!(rebuilt, before, "the rerun repaired the corruption");
    app.shutdown().await;
}

#[tokio::test]
async fn two_replays_of_one_projection_cannot_run_at_once() {
    let app = spawn_app().await;
    drive_commands(&app, 2).await;
    until_caught_up(&app).await;
    let first = replay(
        &app,
        ReplayOptions {
            page_size: 1,
            max_rate: Some(10),
            ..ReplayOptions::default()
        },
    );
    let second = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        replay(&app, ReplayOptions::default()).await
    };
    let (first, second) = tokio::join!(first, second);
    assert!(
        matches!(
            second,
            Err(ReplayError::AlreadyRunning("organization_hierarchy"))
        ),
        "{second:?}"
    );
    first.unwrap();
    // Once the first is done, another may run.
    replay(&app, ReplayOptions::default()).await.unwrap();
    app.shutdown().await;
}

#[tokio::test]
async fn a_version_change_rebuilds_the_projection_to_what_a_fresh_build_gives() {
    let app = spawn_app().await;
    drive_commands(&app, 2).await;
    until_caught_up(&app).await;
    let fresh = dump_read_models(&app.owner).await;
    // As if the tables were built by version 0 of the projection, with different output.
    corrupt(&app, tenants(&app).await[0]).await;
    sqlx::query(
        "update projection_checkpoints set version = 0 where projection = 'organization_hierarchy'",
    )
    .execute(&app.owner)
    .await
    .unwrap();

    let projector = app.db.role_pool(DbRole::Projector, 2).await.unwrap();
    let rebuilt = rebuild_if_outdated(
        OrganizationHierarchy,
        app.owner.clone(),
        LogReader::new(projector.clone()),
        |_| {},
    )
    .await
    .unwrap();
    assert!(rebuilt.is_some(), "version 0 is outdated");
    assert_eq!(dump_read_models(&app.owner).await, fresh);
    let (version, reason): (i32, String) = sqlx::query_as(
        "select c.version, r.reason from projection_checkpoints c, projection_replays r
         where c.projection = 'organization_hierarchy' and r.projection = c.projection",
    )
    .fetch_one(&app.owner)
    .await
    .unwrap();
    assert_eq!((version, reason.as_str()), (1, "version"));
    // Current now: nothing to do.
    let again = rebuild_if_outdated(
        OrganizationHierarchy,
        app.owner.clone(),
        LogReader::new(projector),
        |_| {},
    )
    .await
    .unwrap();
    assert!(again.is_none());
    app.shutdown().await;
}

/// Polls `/health/ready` of `base` until the organization projection is in `state` and every
/// other projection has started (a server just started reports those as `starting`, not ready,
/// for a moment); the status.
async fn until_projection_state(base: &str, state: &str) -> (u16, serde_json::Value) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let response = reqwest::get(format!("{base}/health/ready")).await.unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        let others_started = body["projections"]
            .as_array()
            .is_some_and(|all| all.iter().skip(1).all(|p| p["state"] != "starting"));
        if body["projections"][0]["state"] == state && others_started {
            return (status, body);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {state}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_server_rebuilding_a_new_version_is_ready_while_the_old_version_serves() {
    let app = spawn_app().await;
    drive_commands(&app, 1).await;
    until_caught_up(&app).await;
    let fresh = dump_read_models(&app.owner).await;
    sqlx::query(
        "update projection_checkpoints set version = 0 where projection = 'organization_hierarchy'",
    )
    .execute(&app.owner)
    .await
    .unwrap();
    // Another process's rebuild, as far as the replay lock says.
    let mut other = app.owner.acquire().await.unwrap().detach();
    sqlx::query(
        "select pg_advisory_lock(hashtextextended('vextrus.replay/organization_hierarchy', 0))",
    )
    .execute(&mut other)
    .await
    .unwrap();

    // A second server on the same database (a rolling deploy of the new version).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = vextrus::server::ServerConfig::new(app.keys.clone());
    let second = vextrus::server::Server::start(&app.db.options, listener, config)
        .await
        .unwrap();
    let base = format!("http://{}", second.local_addr());
    let (status, body) = until_projection_state(&base, "rebuilding").await;
    assert_eq!(status, 200, "the previous version serves: {body}");
    assert!(body["ready"].as_bool().unwrap());
    let detail = body["projections"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("rebuilding after a version change"),
        "{detail}"
    );

    sqlx::Connection::close(other).await.unwrap();
    let (status, _) = until_projection_state(&base, "running").await;
    assert_eq!(status, 200);
    assert_eq!(dump_read_models(&app.owner).await, fresh);
    let version: i32 = sqlx::query_scalar(
        "select version from projection_checkpoints where projection = 'organization_hierarchy'",
    )
    .fetch_one(&app.owner)
    .await
    .unwrap();
    assert_eq!(version, 1);
    second.shutdown().await.unwrap();
    app.shutdown().await;
}

#[tokio::test]
async fn operators_see_the_projections_status_and_others_do_not() {
    let app = spawn_app().await;
    drive_commands(&app, 1).await;
    until_caught_up(&app).await;
    replay(&app, ReplayOptions::default()).await.unwrap();
    let status = app
        .caller(&["operator"])
        .get("/v1/ops/projections")
        .await
        .expect(200);
    let report = &status.body[0];
    assert_eq!(report["name"], "organization_hierarchy");
    assert_eq!(report["version"], 1);
    assert_eq!(report["fed_by"], "log");
    assert_eq!(report["state"], "running");
    assert_eq!(report["lag_events"], 0);
    assert_eq!(report["last_replay"]["state"], "finished");
    assert_eq!(
        report["last_replay"]["events_done"],
        app.event_count().await
    );
    app.caller(&["accountant", "auditor"])
        .get("/v1/ops/projections")
        .await
        .expect(403);

    // The same from the command line.
    let output = crate::cli::succeeded(
        crate::cli::vextrus(&std::env::temp_dir())
            .env("DATABASE_URL", &app.db.url)
            .args(["projections", "status", "--json"]),
    );
    let printed: serde_json::Value = serde_json::from_str(&output).unwrap();
    assert_eq!(printed[0]["name"], "organization_hierarchy");
    assert_eq!(printed[0]["state"], "running");
    app.shutdown().await;
}
