//! Authentication, roles and tenant isolation over HTTP.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;
use vextrus_api::JwtKeys;

use crate::http::*;

#[tokio::test]
async fn every_kind_of_bad_token_gets_401() {
    let app = spawn_app().await;
    let tenant = Uuid::now_v7();
    let expired = {
        let mut claims = claims(tenant, &["admin"]);
        claims.exp = chrono::Utc::now().timestamp() - 3600;
        app.keys.sign(&claims).unwrap()
    };
    let wrong_key = JwtKeys::from_secret(b"another secret that is 32 bytes long!!")
        .unwrap()
        .sign(&claims(tenant, &["admin"]))
        .unwrap();
    let alg_none = {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(tenant, &["admin"])).unwrap());
        format!("{header}.{payload}.")
    };
    let no_tenant = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "e2e-user", "roles": ["admin"], "exp": chrono::Utc::now().timestamp() + 600}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    // Signed with the right key, but `nbf` ten minutes ahead, or expired ten seconds ago (beyond
    // the documented leeway of five).
    let signed = |extra: Value| {
        let mut body = json!({"sub": "e2e-user", "tenant": tenant, "roles": ["admin"],
                              "exp": chrono::Utc::now().timestamp() + 600});
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &body,
            &jsonwebtoken::EncodingKey::from_secret(SECRET),
        )
        .unwrap()
    };
    let not_yet_valid = signed(json!({"nbf": chrono::Utc::now().timestamp() + 600}));
    let just_expired = signed(json!({"exp": chrono::Utc::now().timestamp() - 10}));
    let valid = app.keys.sign(&claims(tenant, &["admin"])).unwrap();
    let tampered = {
        let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
        let mut other = claims(Uuid::now_v7(), &["admin"]);
        other.exp = chrono::Utc::now().timestamp() + 600;
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
        parts.join(".")
    };
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no header", None),
        ("basic scheme", Some("Basic dXNlcjpwYXNz".into())),
        ("empty bearer", Some("Bearer ".into())),
        ("malformed", Some("Bearer not.a.jwt".into())),
        ("expired", Some(format!("Bearer {expired}"))),
        ("not valid yet", Some(format!("Bearer {not_yet_valid}"))),
        ("expired 10 s ago", Some(format!("Bearer {just_expired}"))),
        ("wrong key", Some(format!("Bearer {wrong_key}"))),
        ("alg none", Some(format!("Bearer {alg_none}"))),
        ("missing tenant", Some(format!("Bearer {no_tenant}"))),
        ("tampered payload", Some(format!("Bearer {tampered}"))),
    ];
    let events = app.event_count().await;
    for (case, authorization) in cases {
        for (method, path) in [
            (Method::GET, "/v1/organizations"),
            (Method::POST, "/v1/organizations"),
        ] {
            let mut request = app
                .client
                .request(method, app.url(path))
                .json(&organization_body("MBL"));
            if let Some(value) = &authorization {
                request = request.header("Authorization", value);
            }
            let reply = Reply::from(request.send().await.unwrap()).await;
            assert_eq!(reply.status, 401, "{case}: {reply:?}");
            assert_eq!(reply.problem(), "unauthenticated", "{case}");
            assert!(
                reply
                    .header("www-authenticate")
                    .unwrap()
                    .starts_with("Bearer"),
                "{case}"
            );
        }
    }
    assert_eq!(app.event_count().await, events);
    let ok = app
        .client
        .get(app.url("/v1/organizations"))
        .bearer_auth(valid)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn an_x_tenant_id_other_than_the_tokens_is_403() {
    let app = spawn_app().await;
    let admin = app.caller(&["admin"]);
    let with_tenant = |value: String| {
        admin
            .request(Method::GET, "/v1/organizations")
            .header("X-Tenant-ID", value)
    };
    admin
        .send(with_tenant(admin.tenant.to_string()))
        .await
        .expect(200);
    let other = admin
        .send(with_tenant(Uuid::now_v7().to_string()))
        .await
        .expect(403);
    assert_eq!(other.problem(), "forbidden");
    let garbage = admin.send(with_tenant("acme".into())).await.expect(400);
    assert_eq!(garbage.problem(), "malformed-request");
    let command = admin
        .send(
            admin
                .request(Method::POST, "/v1/organizations")
                .header("X-Tenant-ID", Uuid::now_v7().to_string())
                .json(&organization_body("MBL")),
        )
        .await
        .expect(403);
    assert_eq!(command.problem(), "forbidden");
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn roles_gate_commands_and_every_role_may_read() {
    let app = spawn_app().await;
    let tenant = Uuid::now_v7();
    let (admin, manager, viewer) = (
        app.caller_for(tenant, &["admin"]),
        app.caller_for(tenant, &["project-manager"]),
        app.caller_for(tenant, &["viewer"]),
    );
    let refused = viewer
        .post("/v1/organizations", organization_body("MBL"))
        .await
        .expect(403);
    assert_eq!(refused.problem(), "forbidden");
    assert!(refused.body["detail"].as_str().unwrap().contains("admin"));
    manager
        .post("/v1/organizations", organization_body("MBL"))
        .await
        .expect(403);
    let org = admin.create_organization("MBL").await.id();
    manager
        .patch(&format!("/v1/organizations/{org}"), json!({"name": "X"}))
        .await
        .expect(403);
    let division = manager
        .post(
            &format!("/v1/organizations/{org}/divisions"),
            json!({"name": "Dhaka", "code": "DHK"}),
        )
        .await
        .expect(201);
    viewer
        .post(
            &format!("/v1/organizations/{org}/divisions"),
            json!({"name": "Ctg", "code": "CTG"}),
        )
        .await
        .expect(403);
    let read = viewer
        .get(&format!(
            "/v1/organizations/{org}/divisions?min_position={}",
            division.position()
        ))
        .await
        .expect(200);
    assert_eq!(read.body["items"].as_array().unwrap().len(), 1);
    // A caller with no role holds no permission, not even `read`.
    let no_roles = app.caller_for(tenant, &[]);
    let refused = no_roles
        .get(&format!("/v1/organizations/{org}"))
        .await
        .expect(403);
    assert!(refused.body["detail"].as_str().unwrap().contains("read"));
}

/// Replaces `id` in a reply's body so two 404s about different ids can be compared.
fn normalized(reply: &Reply, id: &str) -> Value {
    serde_json::from_str(&reply.body.to_string().replace(id, "<id>")).unwrap()
}

#[tokio::test]
async fn another_tenants_ids_answer_exactly_like_missing_ones() {
    let app = spawn_app().await;
    let owner = app.caller(&["admin"]);
    let theirs = owner.create_hierarchy("MBL").await;
    let intruder = app.caller(&["admin"]);
    let mine = intruder.create_hierarchy("OWN").await;
    // Let both read models catch up, so a 404 cannot be explained by lag.
    owner
        .get(&format!(
            "/v1/organizations?min_position={}",
            theirs.position
        ))
        .await
        .expect(200);
    intruder
        .get(&format!("/v1/organizations?min_position={}", mine.position))
        .await
        .expect(200);
    let events = app.event_count().await;

    let missing = Uuid::now_v7().to_string();
    // (method, path template, body); {org} and {unit} are filled with foreign or missing ids.
    let routes: Vec<(Method, &str, &str, Value)> = vec![
        (Method::GET, "/v1/organizations/{org}", "org", Value::Null),
        (
            Method::GET,
            "/v1/organizations/{org}/tree",
            "org",
            Value::Null,
        ),
        (
            Method::GET,
            "/v1/organizations/{org}/divisions",
            "org",
            Value::Null,
        ),
        (
            Method::GET,
            "/v1/organizations/{org}/projects",
            "org",
            Value::Null,
        ),
        (
            Method::GET,
            "/v1/organizations/{org}/sites",
            "org",
            Value::Null,
        ),
        (
            Method::GET,
            "/v1/organizations/{mine}/divisions/{unit}",
            "division",
            Value::Null,
        ),
        (
            Method::GET,
            "/v1/organizations/{mine}/projects/{unit}",
            "project",
            Value::Null,
        ),
        (
            Method::GET,
            "/v1/organizations/{mine}/sites/{unit}",
            "site",
            Value::Null,
        ),
        (
            Method::GET,
            "/v1/organizations/{org}/divisions/{unit}",
            "division",
            Value::Null,
        ),
        (
            Method::PATCH,
            "/v1/organizations/{org}",
            "org",
            json!({"name": "Mine now"}),
        ),
        (
            Method::POST,
            "/v1/organizations/{org}/archive",
            "org",
            Value::Null,
        ),
        (
            Method::POST,
            "/v1/organizations/{org}/divisions",
            "org",
            json!({"name": "D", "code": "D"}),
        ),
        (
            Method::PATCH,
            "/v1/organizations/{mine}/divisions/{unit}",
            "division",
            json!({"name": "D"}),
        ),
        (
            Method::POST,
            "/v1/organizations/{mine}/divisions/{unit}/archive",
            "division",
            Value::Null,
        ),
        (
            Method::PATCH,
            "/v1/organizations/{mine}/projects/{unit}",
            "project",
            json!({"name": "P"}),
        ),
        (
            Method::POST,
            "/v1/organizations/{mine}/projects/{unit}/archive",
            "project",
            Value::Null,
        ),
        (
            Method::PATCH,
            "/v1/organizations/{mine}/sites/{unit}",
            "site",
            json!({"name": "S"}),
        ),
        (
            Method::POST,
            "/v1/organizations/{mine}/sites/{unit}/archive",
            "site",
            Value::Null,
        ),
        (
            Method::POST,
            "/v1/organizations/{mine}/sites/{unit}/move",
            "site",
            json!({"to_project_id": mine.project}),
        ),
        (
            Method::PATCH,
            "/v1/organizations/{org}/sites/{unit}",
            "site",
            json!({"name": "S"}),
        ),
    ];
    for (method, template, kind, body) in routes {
        let foreign_id = match kind {
            "org" => &theirs.org,
            "division" => &theirs.division,
            "project" => &theirs.project,
            _ => &theirs.site,
        };
        let call = |org: &str, unit: &str| {
            let path = template
                .replace("{org}", org)
                .replace("{mine}", &mine.org)
                .replace("{unit}", unit);
            let mut request = intruder.request(method.clone(), &path);
            if !body.is_null() {
                request = request.json(&body);
            }
            intruder.send(request)
        };
        let (foreign, absent) = if kind == "org" {
            (call(foreign_id, "").await, call(&missing, "").await)
        } else {
            (
                call(&theirs.org, foreign_id).await,
                call(&theirs.org, &missing).await,
            )
        };
        // For unit routes under the intruder's own organization, {org} is unused.
        assert_eq!(foreign.status, 404, "{method} {template}: {foreign:?}");
        assert_eq!(foreign.problem(), "not-found");
        assert_eq!(
            normalized(&foreign, foreign_id),
            normalized(&absent, &missing),
            "{method} {template}"
        );
    }
    assert_eq!(app.event_count().await, events);
    // The project of another tenant is no better a move target than a missing one.
    let moved = intruder
        .post(
            &format!("/v1/organizations/{}/sites/{}/move", mine.org, mine.site),
            json!({"to_project_id": theirs.project}),
        )
        .await
        .expect(404);
    assert_eq!(moved.problem(), "not-found");
}

#[tokio::test]
async fn project_and_site_headers_must_name_units_of_the_tenant_that_belong_together() {
    let app = spawn_app().await;
    let admin = app.caller(&["admin"]);
    let h = admin.create_hierarchy("MBL").await;
    let other_project = admin
        .post(
            &format!("/v1/organizations/{}/projects", h.org),
            json!({"division_id": h.division, "name": "KT", "code": "KT"}),
        )
        .await
        .expect(201);
    admin
        .get(&format!(
            "/v1/organizations?min_position={}",
            other_project.position()
        ))
        .await
        .expect(200);
    let foreign = app.caller(&["admin"]).create_hierarchy("FOREIGN").await;

    let with = |project: &str, site: Option<&str>| {
        let mut request = admin
            .request(Method::GET, "/v1/organizations")
            .header("X-Project-ID", project);
        if let Some(site) = site {
            request = request.header("X-Site-ID", site);
        }
        admin.send(request)
    };
    with(&h.project, Some(&h.site)).await.expect(200);
    assert_eq!(
        with(&Uuid::now_v7().to_string(), None)
            .await
            .expect(404)
            .problem(),
        "not-found"
    );
    assert_eq!(
        with(&foreign.project, None).await.expect(404).problem(),
        "not-found"
    );
    assert_eq!(
        with(&h.project, Some(&foreign.site))
            .await
            .expect(404)
            .problem(),
        "not-found"
    );
    let mismatch = with(&other_project.id(), Some(&h.site)).await.expect(409);
    assert_eq!(mismatch.problem(), "context-mismatch");
    assert_eq!(
        with("p-1", None).await.expect(400).problem(),
        "malformed-request"
    );

    // A valid context is recorded with the command, for auditors.
    let renamed = admin
        .send(
            admin
                .request(
                    Method::PATCH,
                    &format!("/v1/organizations/{}/sites/{}", h.org, h.site),
                )
                .header("X-Project-ID", &h.project)
                .header("X-Site-ID", &h.site)
                .header("X-Request-ID", "req-audit-1")
                .json(&json!({"name": "Mawa Ghat"})),
        )
        .await
        .expect(200);
    assert_eq!(renamed.header("x-request-id"), Some("req-audit-1"));
    let (project, site, request_id): (Option<String>, Option<String>, Option<String>) =
        sqlx::query_as(
            "select project_id::text, site_id::text, request_id from events where global_position = $1",
        )
        .bind(renamed.position())
        .fetch_one(&app.owner)
        .await
        .unwrap();
    assert_eq!(site.as_deref(), Some(h.site.as_str()));
    assert_eq!(project.as_deref(), Some(h.project.as_str()));
    assert_eq!(request_id.as_deref(), Some("req-audit-1"));
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_hsts_only_over_https() {
    let app = spawn_app().await;
    let admin = app.caller(&["admin"]);
    let responses = [
        admin
            .request(Method::GET, "/v1/organizations")
            .send()
            .await
            .unwrap(),
        admin
            .request(Method::GET, "/v1/nothing-here")
            .send()
            .await
            .unwrap(),
        app.client
            .get(app.url("/v1/organizations"))
            .send()
            .await
            .unwrap(),
        app.client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap(),
        app.client
            .get(app.url("/health/live"))
            .send()
            .await
            .unwrap(),
    ];
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses, [200, 404, 401, 200, 200]);
    for response in &responses {
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(
            headers["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'"
        );
        assert!(headers.get("strict-transport-security").is_none());
    }
    let https = spawn_app_with(|config| config.api.hsts = true).await;
    let response = https
        .client
        .get(https.url("/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
}
