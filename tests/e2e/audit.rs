//! The audit API: history, activity, correlation and search return exactly what was written
//! through the API with complete metadata; exports stream; no auditor sees another tenant.

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;
use vextrus::testkit::TestDatabase;
use vextrus_api::{Claims, JwtKeys};

use crate::http::*;
use crate::support::settle;

/// Every item of a paged audit list, fetched `limit` at a time.
async fn all_pages(caller: &Caller<'_>, path: &str, limit: u32) -> Vec<Value> {
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    let separator = if path.contains('?') { '&' } else { '?' };
    loop {
        let mut url = format!("{path}{separator}limit={limit}");
        if let Some(cursor) = &after {
            url.push_str(&format!("&after={cursor}"));
        }
        let page = caller.get(&url).await.expect(200);
        let batch = page.body["items"].as_array().unwrap().clone();
        assert!(batch.len() <= limit as usize);
        items.extend(batch);
        match page.body["next_cursor"].as_str() {
            Some(cursor) => after = Some(cursor.to_owned()),
            None => return items,
        }
    }
}

fn positions(items: &[Value]) -> Vec<i64> {
    items
        .iter()
        .map(|item| item["position"].as_i64().unwrap())
        .collect()
}

/// The positions of `tenant`'s events in commit order, as the owner sees them.
async fn written(app: &TestApp, tenant: Uuid, filter: &str) -> Vec<i64> {
    sqlx::query_scalar(&format!(
        "select global_position from events where tenant_id = $1 {filter}
         order by transaction_id, global_position"
    ))
    .bind(tenant)
    .fetch_all(&app.owner)
    .await
    .unwrap()
}

/// A caller of `tenant` whose token names `subject`.
fn at(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[tokio::test]
async fn history_activity_correlation_and_search_return_exactly_what_was_written() {
    let app = spawn_app().await;
    let admin = app.caller(&["admin", "project-manager"]);
    let tenant = admin.tenant;
    let auditor = app.caller_for(tenant, &["auditor"]);
    let correlation = Uuid::now_v7();

    let created = admin
        .send(
            admin
                .request(Method::POST, "/v1/organizations")
                .header("X-Correlation-ID", correlation.to_string())
                .header("Idempotency-Key", "create-mbl")
                .header("X-Request-ID", "req-create")
                .header("User-Agent", "audit-e2e/1.0")
                .json(&organization_body("MBL")),
        )
        .await
        .expect(201);
    let org = created.id();
    let division = admin
        .send(
            admin
                .request(Method::POST, &format!("/v1/organizations/{org}/divisions"))
                .header("X-Correlation-ID", correlation.to_string())
                .json(&json!({"name": "Dhaka", "code": "DHK"})),
        )
        .await
        .expect(201)
        .id();
    let project = admin
        .post(
            &format!("/v1/organizations/{org}/projects"),
            json!({"division_id": division, "name": "Padma", "code": "PADMA"}),
        )
        .await
        .expect(201)
        .id();
    let site = admin
        .post(
            &format!("/v1/organizations/{org}/sites"),
            json!({"project_id": project, "name": "Mawa", "code": "S1"}),
        )
        .await
        .expect(201);
    // X-Project-ID and X-Site-ID are checked against the read model: let it catch up.
    admin.tree_after(&org, site.position()).await.expect(200);
    let site = site.id();
    let renamed = admin
        .send(
            admin
                .request(
                    Method::PATCH,
                    &format!("/v1/organizations/{org}/sites/{site}"),
                )
                .header("X-Project-ID", &project)
                .header("X-Site-ID", &site)
                .json(&json!({"name": "Mawa Ghat"})),
        )
        .await
        .expect(200);
    let second = caller_as(&app, tenant, "second-user", &["project-manager"]);
    second
        .patch(
            &format!("/v1/organizations/{org}/divisions/{division}"),
            json!({"name": "Dhaka North"}),
        )
        .await
        .expect(200);
    settle(&app.owner).await;
    let everything = written(&app, tenant, "").await;
    assert_eq!(everything.len(), 6);

    // An entity's history: every event, in order, a page of two at a time.
    let history = all_pages(
        &auditor,
        &format!("/v1/audit/streams/organization/{org}/events"),
        2,
    )
    .await;
    assert_eq!(positions(&history), everything);
    let sequences: Vec<i64> = history
        .iter()
        .map(|item| item["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(sequences, [1, 2, 3, 4, 5, 6]);
    let first = &history[0];
    assert_eq!(first["event_type"], "OrganizationCreated");
    assert_eq!(first["data"]["name"], "Meghna Builders Ltd");
    assert_eq!(first["tenant_id"], tenant.to_string());
    assert_eq!(first["actor"], "e2e-user");
    assert_eq!(first["actor_roles"], json!(["admin", "project-manager"]));
    assert_eq!(first["idempotency_key"], "create-mbl");
    assert_eq!(first["correlation_id"], correlation.to_string());
    assert_eq!(first["request_id"], "req-create");
    assert_eq!(first["client_address"], "127.0.0.1");
    assert_eq!(first["user_agent"], "audit-e2e/1.0");
    assert!(first["command_id"].as_str().is_some());
    assert!(first["recorded_at"].as_str().is_some());
    assert_eq!(first["hash"].as_str().unwrap().len(), 64);
    assert_eq!(
        first["hash_version"], 2,
        "appended with migration 0029's definition"
    );
    assert_eq!(first["change"]["/profile"]["before"], Value::Null);
    assert_eq!(
        first["change"]["/profile"]["after"]["name"],
        "Meghna Builders Ltd"
    );
    let rename = history
        .iter()
        .find(|item| item["position"] == renamed.position())
        .unwrap();
    assert_eq!(rename["event_type"], "SiteRenamed");
    assert_eq!(rename["project_id"], project.as_str());
    assert_eq!(rename["site_id"], site.as_str());
    assert_eq!(rename["idempotency_key"], Value::Null);
    // The change is computed on every page, also past the first.
    assert_eq!(
        rename["change"],
        json!({format!("/sites/{site}/name"): {"before": "Mawa", "after": "Mawa Ghat"}})
    );
    // A stream that does not exist has an empty history.
    let none = auditor
        .get(&format!(
            "/v1/audit/streams/organization/{}/events",
            Uuid::now_v7()
        ))
        .await
        .expect(200);
    assert_eq!(none.body["items"], json!([]));

    // A user's activity, in commit order, within a time range.
    let mine = all_pages(&auditor, "/v1/audit/users/e2e-user/events", 4).await;
    assert_eq!(
        positions(&mine),
        written(&app, tenant, "and actor = 'e2e-user'").await
    );
    assert_eq!(mine.len(), 5);
    let theirs = all_pages(&auditor, "/v1/audit/users/second-user/events", 10).await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["event_type"], "DivisionRenamed");
    assert_eq!(theirs[0]["actor_roles"], json!(["project-manager"]));
    let first_at: DateTime<Utc> = first["recorded_at"].as_str().unwrap().parse().unwrap();
    let before_first = all_pages(
        &auditor,
        &format!("/v1/audit/users/e2e-user/events?to={}", at(first_at)),
        10,
    )
    .await;
    assert!(before_first.is_empty(), "`to` is exclusive");
    let from_first = all_pages(
        &auditor,
        &format!("/v1/audit/users/e2e-user/events?from={}", at(first_at)),
        10,
    )
    .await;
    assert_eq!(from_first.len(), 5);
    let future = all_pages(
        &auditor,
        &format!(
            "/v1/audit/users/e2e-user/events?from={}",
            at(Utc::now() + chrono::Duration::hours(1))
        ),
        10,
    )
    .await;
    assert!(future.is_empty());

    // Everything one user action caused.
    let correlated = all_pages(
        &auditor,
        &format!("/v1/audit/correlations/{correlation}/events"),
        1,
    )
    .await;
    assert_eq!(
        positions(&correlated),
        written(
            &app,
            tenant,
            &format!("and correlation_id = '{correlation}'")
        )
        .await
    );
    assert_eq!(correlated.len(), 2);

    // Tenant-wide search by event type and aggregate type.
    let renames = all_pages(&auditor, "/v1/audit/events?event_type=SiteRenamed", 10).await;
    assert_eq!(positions(&renames), [renamed.position()]);
    let organization = all_pages(&auditor, "/v1/audit/events?aggregate_type=organization", 3).await;
    assert_eq!(positions(&organization), everything);
    let nothing = all_pages(&auditor, "/v1/audit/events?aggregate_type=invoice", 3).await;
    assert!(nothing.is_empty());

    // Exports carry the same events.
    let ndjson = auditor
        .send(auditor.request(Method::GET, "/v1/audit/events?format=ndjson"))
        .await;
    assert_eq!(ndjson.status, 200);
    assert_eq!(ndjson.header("content-type"), Some("application/x-ndjson"));
    let text = auditor
        .request(Method::GET, "/v1/audit/events?format=ndjson")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exported: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(positions(&exported), everything);
    let csv = auditor
        .request(
            Method::GET,
            &format!("/v1/audit/correlations/{correlation}/events?format=csv"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        csv.headers()["content-type"].to_str().unwrap(),
        "text/csv; charset=utf-8"
    );
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.split("\r\n").filter(|line| !line.is_empty()).collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("position,recorded_at,tenant_id,"));
    assert!(lines[0].ends_with(",hash,hash_version"), "{}", lines[0]);
    assert!(lines[1].starts_with(&format!("{},", correlated[0]["position"])));
    assert!(lines[1].ends_with(",2"), "{}", lines[1]);
    assert!(lines[1].contains("audit-e2e/1.0"));
}

#[tokio::test]
async fn an_auditor_sees_nothing_of_another_tenant_through_any_route_or_filter() {
    let app = spawn_app().await;
    let admin_b = app.caller(&["admin"]);
    let correlation_b = Uuid::now_v7();
    let org_b = admin_b
        .send(
            admin_b
                .request(Method::POST, "/v1/organizations")
                .header("X-Correlation-ID", correlation_b.to_string())
                .json(&organization_body("BBB")),
        )
        .await
        .expect(201)
        .id();
    admin_b.create_hierarchy("BB2").await;
    let admin_a = app.caller(&["admin"]);
    let org_a = admin_a.create_organization("AAA").await.id();
    settle(&app.owner).await;
    let key =
        vextrus_audit::SigningKey::from_pem(&vextrus_audit::SigningKey::generate_pem().unwrap())
            .unwrap();
    let checkpoints = vextrus_audit::create_checkpoints(&app.owner, &key, None)
        .await
        .unwrap();
    assert_eq!(checkpoints.len(), 2);

    let auditor_a = app.caller_for(admin_a.tenant, &["auditor"]);
    let a_events = written(&app, admin_a.tenant, "").await;
    let tenant_b = admin_b.tenant.to_string();
    let check = |items: &[Value]| {
        for item in items {
            assert_eq!(item["tenant_id"], admin_a.tenant.to_string(), "{item}");
        }
    };
    // B's stream and B's correlation are empty for A, like ids that do not exist.
    for path in [
        format!("/v1/audit/streams/organization/{org_b}/events"),
        format!("/v1/audit/correlations/{correlation_b}/events"),
    ] {
        assert!(all_pages(&auditor_a, &path, 50).await.is_empty(), "{path}");
    }
    // Both tenants' users are called `e2e-user`: A sees its own only.
    let activity = all_pages(&auditor_a, "/v1/audit/users/e2e-user/events", 50).await;
    check(&activity);
    assert_eq!(positions(&activity), a_events);
    for filter in [
        "",
        "?aggregate_type=organization",
        "?event_type=SiteCreated",
    ] {
        let found = all_pages(&auditor_a, &format!("/v1/audit/events{filter}"), 50).await;
        check(&found);
    }
    let own = all_pages(
        &auditor_a,
        &format!("/v1/audit/streams/organization/{org_a}/events"),
        50,
    )
    .await;
    assert_eq!(positions(&own), a_events);
    // Exports.
    for format in ["ndjson", "csv"] {
        let body = auditor_a
            .request(Method::GET, &format!("/v1/audit/events?format={format}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.contains(&admin_a.tenant.to_string()));
        assert!(!body.contains(&tenant_b), "{format} export leaks tenant B");
        assert!(
            !body.contains(&org_b),
            "{format} export leaks B's organization"
        );
    }
    // Checkpoints.
    let listed = auditor_a.get("/v1/audit/checkpoints").await.expect(200);
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["tenant_id"], admin_a.tenant.to_string());
    // Naming B's tenant in the header does not switch tenants.
    let refused = auditor_a
        .send(
            auditor_a
                .request(Method::GET, "/v1/audit/events")
                .header("X-Tenant-ID", &tenant_b),
        )
        .await
        .expect(403);
    assert_eq!(refused.problem(), "forbidden");
}

#[tokio::test]
async fn only_auditors_and_admins_read_the_trail_and_bad_parameters_are_refused() {
    let app = spawn_app().await;
    let admin = app.caller(&["admin"]);
    let org = admin.create_organization("MBL").await.id();
    for roles in [&["viewer"][..], &["project-manager"], &["operator"]] {
        let caller = app.caller_for(admin.tenant, roles);
        for path in [
            "/v1/audit/events".to_owned(),
            format!("/v1/audit/streams/organization/{org}/events"),
            "/v1/audit/checkpoints".to_owned(),
        ] {
            let reply = caller.get(&path).await.expect(403);
            assert_eq!(reply.problem(), "forbidden", "{roles:?} {path}");
        }
    }
    let anonymous = app
        .client
        .get(app.url("/v1/audit/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    admin.get("/v1/audit/events").await.expect(200);

    let auditor = app.caller_for(admin.tenant, &["auditor"]);
    let stream_path = format!("/v1/audit/streams/organization/{org}/events");
    let history = auditor
        .get(&format!("{stream_path}?limit=1"))
        .await
        .expect(200);
    assert!(history.body["next_cursor"].is_null(), "one event, one page");
    let stream_cursor = {
        let created = admin
            .patch(
                &format!("/v1/organizations/{org}"),
                json!({"name": "Meghna Two"}),
            )
            .await
            .expect(200);
        assert!(created.position() > 0);
        auditor
            .get(&format!("{stream_path}?limit=1"))
            .await
            .expect(200)
            .body["next_cursor"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for (path, status, kind) in [
        (
            "/v1/audit/events?after=garbage".to_owned(),
            422,
            "invalid-input",
        ),
        (
            format!("/v1/audit/events?after={stream_cursor}"),
            422,
            "invalid-input",
        ),
        (
            "/v1/audit/events?from=yesterday".to_owned(),
            422,
            "invalid-input",
        ),
        ("/v1/audit/events?limit=0".to_owned(), 422, "invalid-input"),
        (
            "/v1/audit/events?limit=1001".to_owned(),
            422,
            "invalid-input",
        ),
        (
            "/v1/audit/events?aggregate_type=Organization!".to_owned(),
            422,
            "invalid-input",
        ),
        // A filter a list does not take is an unknown parameter.
        (
            format!("{stream_path}?from=2026-11-22T10:00:00Z"),
            400,
            "malformed-request",
        ),
        (
            "/v1/audit/users/x/events?event_type=SiteRenamed".to_owned(),
            400,
            "malformed-request",
        ),
        (
            "/v1/audit/streams/Organization/x/events".to_owned(),
            404,
            "not-found",
        ),
        (
            "/v1/audit/events?format=xml".to_owned(),
            400,
            "malformed-request",
        ),
        (
            "/v1/audit/events?colour=red".to_owned(),
            400,
            "malformed-request",
        ),
        (
            "/v1/audit/correlations/not-a-uuid/events".to_owned(),
            404,
            "not-found",
        ),
        (
            "/v1/audit/checkpoints?after=x".to_owned(),
            422,
            "invalid-input",
        ),
    ] {
        let reply = auditor.get(&path).await;
        assert_eq!(
            (reply.status, reply.problem()),
            (status, kind),
            "{path}: {reply:?}"
        );
    }
    // A window that holds no instant finds nothing; it is not an error.
    let empty = auditor
        .get("/v1/audit/events?from=2026-11-22T10:00:00Z&to=2026-11-22T09:00:00Z")
        .await
        .expect(200);
    assert_eq!(empty.body["items"], json!([]));
    // An export's `limit` caps it. (A stream's history, in sequence order, is not held back by
    // other databases' transactions in the cluster, as the commit-order lists are.)
    let auditor = &auditor;
    let stream_path = &stream_path;
    let lines = |query: &'static str| async move {
        let response = auditor
            .request(reqwest::Method::GET, &format!("{stream_path}?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{query}");
        response.text().await.unwrap().lines().count()
    };
    assert_eq!(lines("format=ndjson&limit=1").await, 1);
    assert_eq!(lines("format=ndjson").await, 2, "created and renamed");
    assert_eq!(lines("format=csv&limit=1").await, 2, "a header and one row");
}

/// Peak resident memory of process `pid`, in KiB (`VmHWM`), and the current one (`VmRSS`).
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[tokio::test]
async fn a_large_export_streams_in_bounded_memory() {
    const EVENTS: i64 = 40_000;
    let db = TestDatabase::new().await.unwrap();
    let owner = db.owner_pool().await.unwrap();
    let tenant = Uuid::now_v7();
    // About 2.6 KB per event: roughly 100 MB of NDJSON, in 400 streams of 100 events. Written
    // a thousand at a time: one long transaction would hold back the commit-order watermark of
    // every database in the cluster, and so stall the other tests' read models and trails.
    const BATCH: i64 = 1_000;
    for first in (0..EVENTS).step_by(BATCH as usize) {
        sqlx::query(
            "insert into events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version,
                                 payload, actor, command_id, correlation_id)
             select $1, 'bulk', 'stream-' || (n / 100), n % 100 + 1, 'Loaded', '1',
                    jsonb_build_object('n', n, 'filler', repeat('x', 2500)), 'bulk-loader',
                    gen_random_uuid(), gen_random_uuid()
             from generate_series($2, $3 - 1) as n
             order by n",
        )
        .bind(tenant)
        .bind(first)
        .bind(first + BATCH)
        .execute(&owner)
        .await
        .unwrap();
    }
    settle(&owner).await;

    // A server process of its own, so its memory is the export's alone.
    let dir = std::env::temp_dir().join(format!("vextrus-export-{}", Uuid::now_v7().simple()));
    let served = crate::cli::serve_with(&dir, |serve| {
        serve
            .env("DATABASE_URL", &db.url)
            .env("VEXTRUS_JWT_SECRET", std::str::from_utf8(SECRET).unwrap());
    });

    let keys = JwtKeys::from_secret(SECRET).unwrap();
    let token = keys
        .sign(&Claims {
            sub: "auditor-1".into(),
            tenant,
            roles: vec!["auditor".into()],
            exp: Utc::now().timestamp() + 600,
            iat: None,
        })
        .unwrap();
    let base = served.base.clone();
    let client = reqwest::Client::new();
    // Warm up: one page through the same code path.
    let warm = client
        .get(format!("{base}/v1/audit/events?limit=1000"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), 200);
    warm.bytes().await.unwrap();
    let (_, rss_before) = memory_kib(served.child.id());

    let mut response = client
        .get(format!("{base}/v1/audit/events?format=ndjson"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (mut bytes, mut newlines, mut peak_rss) = (0usize, 0usize, rss_before);
    let mut last_line = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        bytes += chunk.len();
        newlines += chunk.iter().filter(|b| **b == b'\n').count();
        if let Some(end) = chunk.iter().rposition(|b| *b == b'\n') {
            let start = chunk[..end]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |s| s + 1);
            if start > 0 {
                last_line = chunk[start..end].to_vec();
            }
        }
        peak_rss = peak_rss.max(memory_kib(served.child.id()).1);
    }
    // Dropping the server stops it.
    drop(served);
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!(newlines, EVENTS as usize, "every event exported once");
    assert!(bytes > 100_000_000, "the export is large: {bytes} bytes");
    if let Ok(last) = serde_json::from_slice::<Value>(&last_line) {
        assert_eq!(last["data"]["n"], EVENTS - 1);
    }
    let growth_mib = (peak_rss.saturating_sub(rss_before)) / 1024;
    println!(
        "exported {} MB; server RSS {} MiB before, peak {} MiB during",
        bytes / 1_000_000,
        rss_before / 1024,
        peak_rss / 1024
    );
    assert!(
        growth_mib < 48,
        "the server's memory grew by {growth_mib} MiB while exporting {} MB",
        bytes / 1_000_000
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_address_is_recorded() {
    // The test client connects from 127.0.0.1: as a trusted proxy, its X-Forwarded-For counts.
    let app = spawn_app_with(|config| {
        config.api.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let admin = app.caller(&["admin"]);
    let created = admin
        .send(
            admin
                .request(Method::POST, "/v1/organizations")
                .header("X-Forwarded-For", "198.51.100.23, 127.0.0.1")
                .json(&organization_body("MBL")),
        )
        .await
        .expect(201);
    let org = created.id();
    let history = admin
        .get(&format!("/v1/audit/streams/organization/{org}/events"))
        .await
        .expect(200);
    assert_eq!(history.body["items"][0]["client_address"], "198.51.100.23");

    // Without trusted proxies (the default) the header is ignored: the peer is recorded.
    let plain = spawn_app().await;
    let admin = plain.caller(&["admin"]);
    let org = admin
        .send(
            admin
                .request(Method::POST, "/v1/organizations")
                .header("X-Forwarded-For", "198.51.100.23")
                .json(&organization_body("MBL")),
        )
        .await
        .expect(201)
        .id();
    let history = admin
        .get(&format!("/v1/audit/streams/organization/{org}/events"))
        .await
        .expect(200);
    assert_eq!(history.body["items"][0]["client_address"], "127.0.0.1");
}
