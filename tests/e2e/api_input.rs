//! Bad input, read-your-writes limits, and the operational surface: OpenAPI, health, request
//! ids, unknown routes and graceful shutdown.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use vextrus::server::Fanout;

use crate::http::*;

#[tokio::test]
async fn invalid_bodies_get_a_problem_and_write_nothing() {
    let app = spawn_app_with(|config| config.api.body_limit = 4096).await;
    let admin = app.caller(&["admin"]);
    let org = admin.create_organization("MBL").await.id();
    let events = app.event_count().await;

    let mut bad_bin = organization_body("NEW");
    bad_bin["bin"] = "12345".into();
    let mut everything_wrong = organization_body("bad code!");
    everything_wrong["bin"] = "x".into();
    everything_wrong["tin"] = "1".into();
    everything_wrong["fiscal_year_start"] = "02-29".into();
    let mut wrong_type = organization_body("NEW");
    wrong_type["name"] = json!(42);
    let mut unknown_field = organization_body("NEW");
    unknown_field["colour"] = "red".into();
    let mut oversize = organization_body("NEW");
    oversize["name"] = "x".repeat(10_000).into();

    let json_cases: Vec<(&str, Value, u16, &str, Vec<&str>)> = vec![
        ("bad BIN", bad_bin, 422, "invalid-input", vec!["bin"]),
        (
            "several bad fields",
            everything_wrong,
            422,
            "invalid-input",
            vec!["code", "bin", "tin", "fiscal_year_start"],
        ),
        ("wrong type", wrong_type, 422, "invalid-input", vec![]),
        ("unknown field", unknown_field, 422, "invalid-input", vec![]),
        (
            "missing field",
            json!({"name": "X"}),
            422,
            "invalid-input",
            vec![],
        ),
        ("not an object", json!([1, 2]), 422, "invalid-input", vec![]),
        ("oversize", oversize, 413, "payload-too-large", vec![]),
    ];
    for (case, body, status, kind, params) in json_cases {
        let reply = admin.post("/v1/organizations", body).await;
        assert_eq!(reply.status, status, "{case}: {reply:?}");
        assert_eq!(reply.problem(), kind, "{case}");
        let named: Vec<&str> = reply.body["invalid-params"]
            .as_array()
            .map(|params| params.iter().map(|p| p["name"].as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(named, params, "{case}");
        assert!(!reply.body["detail"].as_str().unwrap().is_empty(), "{case}");
    }
    let unknown = admin
        .post("/v1/organizations", json!({"name": "X", "colour": "red"}))
        .await;
    assert!(
        unknown.body["detail"].as_str().unwrap().contains("colour"),
        "{unknown:?}"
    );

    let raw_cases: Vec<(&str, Option<&str>, &str, u16, &str)> = vec![
        (
            "not JSON",
            Some("application/json"),
            "{name: oops",
            400,
            "malformed-request",
        ),
        ("no content type", None, "{}", 415, "unsupported-media-type"),
        (
            "form content type",
            Some("application/x-www-form-urlencoded"),
            "name=x",
            415,
            "unsupported-media-type",
        ),
    ];
    for (case, content_type, body, status, kind) in raw_cases {
        for path in [
            "/v1/organizations".to_owned(),
            format!("/v1/organizations/{org}/divisions"),
        ] {
            let mut request = admin.request(Method::POST, &path).body(body);
            if let Some(content_type) = content_type {
                request = request.header("Content-Type", content_type);
            }
            let reply = admin.send(request).await;
            assert_eq!(reply.status, status, "{case}: {reply:?}");
            assert_eq!(reply.problem(), kind, "{case}");
        }
    }
    let bad_rename = admin
        .patch(&format!("/v1/organizations/{org}"), json!({"name": " "}))
        .await
        .expect(422);
    assert_eq!(bad_rename.body["invalid-params"][0]["name"], "name");
    let bad_if_match = admin
        .send(
            admin
                .request(Method::PATCH, &format!("/v1/organizations/{org}"))
                .header("If-Match", "yesterday")
                .json(&json!({"name": "X"})),
        )
        .await
        .expect(400);
    assert_eq!(bad_if_match.problem(), "malformed-request");
    let bad_key = admin
        .send(
            admin
                .request(Method::POST, "/v1/organizations")
                .header("Idempotency-Key", "a b")
                .json(&organization_body("NEW")),
        )
        .await
        .expect(400);
    assert_eq!(bad_key.problem(), "malformed-request");
    assert_eq!(app.event_count().await, events);
}

#[tokio::test]
async fn min_position_waits_a_bounded_time_then_answers_503() {
    // No projection runs, so the read model never catches up.
    let app = spawn_app_with(|config| {
        config.fanout = Fanout::Elsewhere;
        config.api.read_wait = Duration::from_millis(300);
    })
    .await;
    let admin = app.caller(&["admin"]);
    let created = admin.create_organization("MBL").await;
    let late = admin
        .get(&format!(
            "/v1/organizations?min_position={}",
            created.position()
        ))
        .await
        .expect(503);
    assert_eq!(late.problem(), "not-caught-up");
    assert_eq!(late.header("retry-after"), Some("1"));
    // Another tenant's position (or one that does not exist) is no event of this tenant, so
    // there is nothing to wait for: the stopped read model answers at once rather than 503,
    // the same as for a position that exists nowhere.
    let other = app.caller(&["admin"]);
    for position in [created.position(), i64::MAX] {
        let unknown = other
            .get(&format!("/v1/organizations?min_position={position}"))
            .await
            .expect(200);
        assert_eq!(unknown.body["items"], json!([]));
    }
    // Without min_position the (empty) read model answers at once.
    let now = admin.get("/v1/organizations").await.expect(200);
    assert_eq!(now.body["items"], json!([]));
    let ready = app
        .client
        .get(app.url("/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "no in-process projections to wait for");
}

#[tokio::test]
async fn graceful_shutdown_finishes_requests_in_flight() {
    let app = spawn_app_with(|config| {
        config.fanout = Fanout::Elsewhere;
        config.api.read_wait = Duration::from_millis(1500);
    })
    .await;
    let admin = app.caller(&["admin"]);
    let created = admin.create_organization("MBL").await;
    let waiting = admin
        .request(
            Method::GET,
            &format!("/v1/organizations?min_position={}", created.position()),
        )
        .send();
    let in_flight = tokio::spawn(async move { Reply::from(waiting.await.unwrap()).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let base = app.base.clone();
    app.shutdown().await;
    // The request in flight got its answer; new connections are refused.
    assert_eq!(in_flight.await.unwrap().status, 503);
    assert!(reqwest::get(format!("{base}/health/live")).await.is_err());
}

#[tokio::test]
async fn openapi_health_request_ids_and_unknown_routes() {
    let app = spawn_app().await;
    let get = |path: &str| app.client.get(app.url(path)).send();

    let doc: Value = get("/openapi.json").await.unwrap().json().await.unwrap();
    let expected = [
        ("post", "/v1/organizations"),
        ("get", "/v1/organizations"),
        ("get", "/v1/organizations/{organization_id}"),
        ("patch", "/v1/organizations/{organization_id}"),
        ("post", "/v1/organizations/{organization_id}/archive"),
        ("get", "/v1/organizations/{organization_id}/tree"),
        ("post", "/v1/organizations/{organization_id}/divisions"),
        ("get", "/v1/organizations/{organization_id}/divisions"),
        (
            "get",
            "/v1/organizations/{organization_id}/divisions/{division_id}",
        ),
        (
            "patch",
            "/v1/organizations/{organization_id}/divisions/{division_id}",
        ),
        (
            "post",
            "/v1/organizations/{organization_id}/divisions/{division_id}/archive",
        ),
        ("post", "/v1/organizations/{organization_id}/projects"),
        ("get", "/v1/organizations/{organization_id}/projects"),
        (
            "get",
            "/v1/organizations/{organization_id}/projects/{project_id}",
        ),
        (
            "patch",
            "/v1/organizations/{organization_id}/projects/{project_id}",
        ),
        (
            "post",
            "/v1/organizations/{organization_id}/projects/{project_id}/archive",
        ),
        ("post", "/v1/organizations/{organization_id}/sites"),
        ("get", "/v1/organizations/{organization_id}/sites"),
        ("get", "/v1/organizations/{organization_id}/sites/{site_id}"),
        (
            "patch",
            "/v1/organizations/{organization_id}/sites/{site_id}",
        ),
        (
            "post",
            "/v1/organizations/{organization_id}/sites/{site_id}/archive",
        ),
        (
            "post",
            "/v1/organizations/{organization_id}/sites/{site_id}/move",
        ),
        // The general ledger.
        ("post", "/v1/organizations/{organization_id}/accounts"),
        ("get", "/v1/organizations/{organization_id}/accounts"),
        (
            "post",
            "/v1/organizations/{organization_id}/accounts/standard-chart",
        ),
        (
            "get",
            "/v1/organizations/{organization_id}/accounts/{account_id}",
        ),
        (
            "patch",
            "/v1/organizations/{organization_id}/accounts/{account_id}",
        ),
        (
            "delete",
            "/v1/organizations/{organization_id}/accounts/{account_id}",
        ),
        (
            "post",
            "/v1/organizations/{organization_id}/accounts/{account_id}/freeze",
        ),
        (
            "post",
            "/v1/organizations/{organization_id}/accounts/{account_id}/unfreeze",
        ),
        (
            "post",
            "/v1/organizations/{organization_id}/accounts/{account_id}/disable",
        ),
        (
            "post",
            "/v1/organizations/{organization_id}/accounts/{account_id}/enable",
        ),
        (
            "get",
            "/v1/organizations/{organization_id}/accounts/{account_id}/ledger",
        ),
        ("get", "/v1/organizations/{organization_id}/ledger"),
        ("put", "/v1/organizations/{organization_id}/ledger/settings"),
        (
            "put",
            "/v1/organizations/{organization_id}/ledger/lock-date",
        ),
        ("post", "/v1/organizations/{organization_id}/fiscal-years"),
        (
            "post",
            "/v1/organizations/{organization_id}/fiscal-years/{start}/close",
        ),
        (
            "post",
            "/v1/organizations/{organization_id}/periods/{period}/close",
        ),
        (
            "post",
            "/v1/organizations/{organization_id}/periods/{period}/reopen",
        ),
        (
            "post",
            "/v1/organizations/{organization_id}/journal-entries",
        ),
        ("get", "/v1/organizations/{organization_id}/journal-entries"),
        (
            "get",
            "/v1/organizations/{organization_id}/journal-entries/{entry_id}",
        ),
        (
            "post",
            "/v1/organizations/{organization_id}/journal-entries/{entry_id}/reverse",
        ),
        ("get", "/v1/organizations/{organization_id}/trial-balance"),
        ("get", "/v1/organizations/{organization_id}/balance-sheet"),
        ("get", "/v1/organizations/{organization_id}/profit-and-loss"),
        ("post", "/v1/auth/login"),
        ("post", "/v1/auth/refresh"),
        ("post", "/v1/auth/logout"),
        ("get", "/v1/auth/me"),
        ("get", "/.well-known/jwks.json"),
        ("post", "/v1/auth/invitation/accept"),
        ("post", "/v1/auth/password-reset"),
        ("post", "/v1/auth/password"),
        ("post", "/v1/users"),
        ("get", "/v1/users/{user_id}"),
        ("post", "/v1/users/{user_id}/invitation"),
        ("post", "/v1/users/{user_id}/password-reset"),
        ("post", "/v1/users/{user_id}/disable"),
        ("post", "/v1/users/{user_id}/enable"),
        ("post", "/v1/users/{user_id}/roles"),
        ("post", "/v1/users/{user_id}/roles/remove"),
        ("post", "/v1/api-keys"),
        ("get", "/v1/api-keys"),
        ("post", "/v1/api-keys/{key_id}/revoke"),
        ("get", "/health/live"),
        ("get", "/health/ready"),
        ("get", "/v1/ops/projections"),
        (
            "get",
            "/v1/audit/streams/{aggregate_type}/{aggregate_id}/events",
        ),
        ("get", "/v1/audit/users/{actor}/events"),
        ("get", "/v1/audit/correlations/{correlation_id}/events"),
        ("get", "/v1/audit/events"),
        ("get", "/v1/audit/checkpoints"),
        ("get", "/v1/audit/activity"),
        ("get", "/openapi.json"),
        ("post", "/v1/organizations/{organization_id}/parties"),
        ("get", "/v1/organizations/{organization_id}/parties"),
        (
            "get",
            "/v1/organizations/{organization_id}/parties/{party_id}",
        ),
        (
            "patch",
            "/v1/organizations/{organization_id}/parties/{party_id}",
        ),
        (
            "post",
            "/v1/organizations/{organization_id}/parties/{party_id}/archive",
        ),
        ("get", "/v1/organizations/{organization_id}/tax-book"),
        (
            "post",
            "/v1/organizations/{organization_id}/tax-book/standard",
        ),
        (
            "put",
            "/v1/organizations/{organization_id}/tax-book/vat-codes/{code}",
        ),
        (
            "put",
            "/v1/organizations/{organization_id}/tax-book/tds-sections/{section}",
        ),
        (
            "put",
            "/v1/organizations/{organization_id}/tax-book/accounts",
        ),
        (
            "put",
            "/v1/organizations/{organization_id}/tax-book/withholding-entity",
        ),
        ("post", "/v1/organizations/{organization_id}/sales-invoices"),
        ("post", "/v1/organizations/{organization_id}/purchase-bills"),
        (
            "post",
            "/v1/organizations/{organization_id}/invoices/{invoice_id}/submit",
        ),
        ("get", "/v1/organizations/{organization_id}/invoices"),
        (
            "get",
            "/v1/organizations/{organization_id}/invoices/{invoice_id}",
        ),
        (
            "get",
            "/v1/organizations/{organization_id}/invoices/{invoice_id}/tax-invoice.pdf",
        ),
        ("get", "/v1/organizations/{organization_id}/vat/sales-book"),
        (
            "get",
            "/v1/organizations/{organization_id}/vat/purchase-book",
        ),
        (
            "get",
            "/v1/organizations/{organization_id}/vat-returns/{month}",
        ),
        (
            "post",
            "/v1/organizations/{organization_id}/vat-returns/{month}/submit",
        ),
        (
            "post",
            "/v1/organizations/{organization_id}/vat-returns/{month}/amendment",
        ),
        ("post", "/v1/organizations/{organization_id}/receipts"),
        ("post", "/v1/organizations/{organization_id}/payments"),
        ("get", "/v1/organizations/{organization_id}/payments"),
        (
            "get",
            "/v1/organizations/{organization_id}/payments/{payment_id}",
        ),
        (
            "post",
            "/v1/organizations/{organization_id}/invoices/{invoice_id}/credit-notes",
        ),
        (
            "post",
            "/v1/organizations/{organization_id}/invoices/{invoice_id}/debit-notes",
        ),
        (
            "post",
            "/v1/organizations/{organization_id}/invoices/{invoice_id}/cancel",
        ),
        ("get", "/v1/organizations/{organization_id}/aging"),
        (
            "post",
            "/v1/organizations/{organization_id}/payments/{payment_id}/allocate",
        ),
        (
            "get",
            "/v1/organizations/{organization_id}/parties/{party_id}/ledger",
        ),
        (
            "get",
            "/v1/organizations/{organization_id}/withholding-register",
        ),
        (
            "get",
            "/v1/organizations/{organization_id}/retention-register",
        ),
        ("post", "/v1/organizations/{organization_id}/budgets"),
        ("get", "/v1/organizations/{organization_id}/budgets"),
        (
            "patch",
            "/v1/organizations/{organization_id}/budgets/{budget_id}",
        ),
    ];
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|ops| ops.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        expected.len(),
        "undocumented or unexpected operations"
    );
    // Sign-in and what redeems a one-time secret take no bearer token.
    let public = [
        "/v1/auth/login",
        "/v1/auth/refresh",
        "/v1/auth/invitation/accept",
        "/v1/auth/password-reset",
    ];
    for (method, path) in expected {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        if public.contains(&path) {
            assert!(operation["security"].is_null(), "{method} {path}");
            assert!(operation["responses"]["401"].is_object(), "{method} {path}");
        } else if path.starts_with("/v1") {
            assert_eq!(
                operation["security"][0]["bearer"],
                json!([]),
                "{method} {path}"
            );
            assert!(operation["responses"]["401"].is_object(), "{method} {path}");
            // Operations routes name no resource that could be missing.
            if !path.starts_with("/v1/ops/") {
                assert!(operation["responses"]["404"].is_object(), "{method} {path}");
            }
        }
    }
    for schema in [
        "Problem",
        "CommandAccepted",
        "OrganizationTree",
        "CreateOrganization",
        "SiteView",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} missing"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    let live = get("/health/live").await.unwrap();
    assert_eq!(live.status(), 200);
    let generated = live.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36, "a UUID request id");
    // Ready once the projection has loaded its checkpoint (503 until then).
    let mut ready = Value::Null;
    for _ in 0..200 {
        let response = get("/health/ready").await.unwrap();
        let status = response.status();
        ready = response.json().await.unwrap();
        assert_eq!(status == 200, ready["ready"] == true, "{ready}");
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["projections"][0]["name"], "organization_hierarchy");
    let echoed = app
        .client
        .get(app.url("/health/live"))
        .header("X-Request-ID", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");

    let admin = app.caller(&["viewer"]);
    let too_long = admin
        .send(
            admin
                .request(Method::GET, "/v1/organizations")
                .header("X-Request-ID", "r".repeat(300)),
        )
        .await
        .expect(400);
    assert_eq!(too_long.problem(), "malformed-request");

    let nowhere = Reply::from(get("/v2/everything").await.unwrap())
        .await
        .expect(404);
    assert_eq!(nowhere.problem(), "not-found");
    let wrong_method = Reply::from(
        app.client
            .delete(app.url("/v1/organizations"))
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(405);
    assert_eq!(wrong_method.problem(), "method-not-allowed");
}

/// After authentication, refusals come in a fixed order: the role first (before any field is
/// looked at), then the headers (before the body is read), then every bad field at once.
#[tokio::test]
async fn refusals_come_in_order_role_then_headers_then_fields() {
    let app = spawn_app().await;
    let manager = app.caller(&["project-manager"]);
    let body = json!({"name": " ", "code": "MBL", "bin": "1", "tin": "2"});
    let reply = manager.post("/v1/organizations", body).await.expect(403);
    assert_eq!(reply.problem(), "forbidden");
    assert_eq!(
        reply.body["detail"],
        "creating an organization requires the permission manage-organizations in the whole tenant \
         (roles: admin)"
    );

    let admin = app.caller_for(manager.tenant, &["admin"]);
    for (header, value) in [("if-match", "yesterday"), ("idempotency-key", "a b")] {
        let request = admin
            .request(
                Method::PATCH,
                &format!("/v1/organizations/{}", Uuid::now_v7()),
            )
            .header(header, value)
            .header("content-type", "application/json")
            .body("not json");
        let reply = admin.send(request).await.expect(400);
        assert_eq!(reply.problem(), "malformed-request", "{header}");
    }

    let body = json!({"name": " ", "code": "no spaces", "bin": "1", "tin": "2"});
    let reply = admin.post("/v1/organizations", body).await.expect(422);
    let names: Vec<&str> = reply.body["invalid-params"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|param| param["name"].as_str())
        .collect();
    assert_eq!(names, ["name", "code", "bin", "tin"]);
    assert_eq!(app.event_count().await, 0);
    app.shutdown().await;
}
