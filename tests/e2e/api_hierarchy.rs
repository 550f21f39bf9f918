//! The hierarchy over HTTP: commands, read-your-writes queries, pagination, concurrency and
//! idempotency, against the real server and PostgreSQL.

use reqwest::Method;
use serde_json::{Value, json};

use crate::http::*;

#[tokio::test]
async fn a_hierarchy_built_over_http_reads_back_as_a_tree() {
    let app = spawn_app().await;
    let admin = app.caller(&["admin"]);
    let h = admin.create_hierarchy("MBL").await;
    let org = &h.org;
    let second_project = admin
        .post(
            &format!("/v1/organizations/{org}/projects"),
            json!({"division_id": h.division, "name": "Karnaphuli Tunnel", "code": "KT"}),
        )
        .await
        .expect(201)
        .id();
    let moved = admin
        .post(
            &format!("/v1/organizations/{org}/sites/{}/move", h.site),
            json!({"to_project_id": second_project}),
        )
        .await
        .expect(200);
    let renamed = admin
        .patch(
            &format!("/v1/organizations/{org}/divisions/{}", h.division),
            json!({"name": "Dhaka Metro"}),
        )
        .await
        .expect(200);
    assert!(renamed.position() > moved.position());
    assert_eq!(renamed.body["version"], 7);
    assert_eq!(renamed.header("etag"), Some("\"7\""));

    let tree = admin
        .get(&format!(
            "/v1/organizations/{org}/tree?min_position={}",
            renamed.position()
        ))
        .await
        .expect(200);
    assert_eq!(tree.header("etag"), Some("\"7\""));
    let t = &tree.body;
    assert_eq!(t["organization"]["code"], "MBL");
    assert_eq!(t["organization"]["bin"], "002871821-0101");
    assert_eq!(t["organization"]["created_by"], "e2e-user");
    let division = &t["divisions"][0];
    assert_eq!(division["division"]["name"], "Dhaka Metro");
    let projects: Vec<(&str, usize)> = division["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["project"]["path"].as_str().unwrap(),
                p["sites"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(projects, [("MBL/DHK/KT", 1), ("MBL/DHK/PADMA", 0)]);
    let site = &division["projects"][0]["sites"][0];
    assert_eq!(site["path"], "MBL/DHK/KT/S1");
    assert_eq!(site["project_id"], second_project.as_str());

    // Each unit on its own route, with the organization's version as ETag.
    for (route, id) in [
        ("divisions", &h.division),
        ("projects", &h.project),
        ("sites", &h.site),
    ] {
        let unit = admin
            .get(&format!("/v1/organizations/{org}/{route}/{id}"))
            .await
            .expect(200);
        assert_eq!(unit.body["id"], id.as_str());
        assert_eq!(unit.header("etag"), Some("\"7\""));
    }
    let one = admin
        .get(&format!("/v1/organizations/{org}"))
        .await
        .expect(200);
    assert_eq!(one.body["version"], 7);
    app.shutdown().await;
}

#[tokio::test]
async fn lists_page_in_path_order_with_filters() {
    let app = spawn_app().await;
    let admin = app.caller(&["admin"]);
    let h = admin.create_hierarchy("MBL").await;
    let org = &h.org;
    let mut last = 0;
    for code in ["S5", "S3", "S2", "S4"] {
        last = admin
            .post(
                &format!("/v1/organizations/{org}/sites"),
                json!({"project_id": h.project, "name": code, "code": code}),
            )
            .await
            .expect(201)
            .position();
    }
    let archived = admin
        .post(
            &format!("/v1/organizations/{org}/sites/{}/archive", h.site),
            json!({}),
        )
        .await
        .expect(200)
        .position();
    assert!(archived > last);

    let mut paths = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/v1/organizations/{org}/sites?limit=2&min_position={archived}");
        if let Some(cursor) = &after {
            path.push_str(&format!("&after={cursor}"));
        }
        let page = admin.get(&path).await.expect(200);
        pages += 1;
        for item in page.body["items"].as_array().unwrap() {
            paths.push(item["path"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(cursor) => after = Some(cursor.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = ["S1", "S2", "S3", "S4", "S5"]
        .iter()
        .map(|c| format!("MBL/DHK/PADMA/{c}"))
        .collect();
    assert_eq!(paths, expected);

    let active = admin
        .get(&format!(
            "/v1/organizations/{org}/sites?status=active&project_id={}",
            h.project
        ))
        .await
        .expect(200);
    assert_eq!(active.body["items"].as_array().unwrap().len(), 4);
    let by_code = admin
        .get(&format!("/v1/organizations/{org}/sites?code=s3"))
        .await
        .expect(200);
    assert_eq!(by_code.body["items"][0]["code"], "S3");
    let orgs = admin
        .get("/v1/organizations?status=active")
        .await
        .expect(200);
    assert_eq!(orgs.body["items"].as_array().unwrap().len(), 1);

    for (query, param) in [
        ("limit=0", "limit"),
        ("after=garbage", "after"),
        ("code=a%20b", "code"),
    ] {
        let refused = admin
            .get(&format!("/v1/organizations/{org}/sites?{query}"))
            .await
            .expect(422);
        assert_eq!(refused.problem(), "invalid-input");
        assert_eq!(refused.body["invalid-params"][0]["name"], param);
    }
    // A filter the list does not take is an unknown parameter, like any other.
    let refused = admin
        .get(&format!(
            "/v1/organizations/{org}/divisions?project_id={}",
            h.project
        ))
        .await
        .expect(400);
    assert_eq!(refused.problem(), "malformed-request");
    assert_eq!(
        admin
            .get("/v1/organizations?colour=red")
            .await
            .expect(400)
            .problem(),
        "malformed-request"
    );
}

#[tokio::test]
async fn the_same_ids_under_two_tenants_are_two_separate_organizations() {
    let app = spawn_app().await;
    let (a, b) = (app.caller(&["admin"]), app.caller(&["admin"]));
    async fn create(caller: &Caller<'_>, name: &str) -> Reply {
        let mut body = organization_body("MBL");
        body["name"] = name.into();
        let request = caller
            .request(Method::POST, "/v1/organizations")
            .header("Idempotency-Key", "first-org")
            .json(&body);
        caller.send(request).await
    }
    let in_a = create(&a, "Alpha Builders").await.expect(201);
    let in_b = create(&b, "Beta Builders").await.expect(201);
    // One key, one derived id; the tenants keep their own organization under it.
    assert_eq!(in_a.id(), in_b.id());
    let org = in_a.id();
    let read_a = a
        .get(&format!(
            "/v1/organizations/{org}?min_position={}",
            in_a.position()
        ))
        .await
        .expect(200);
    let read_b = b
        .get(&format!(
            "/v1/organizations/{org}?min_position={}",
            in_b.position()
        ))
        .await
        .expect(200);
    assert_eq!(read_a.body["name"], "Alpha Builders");
    assert_eq!(read_b.body["name"], "Beta Builders");
    assert_eq!(
        a.get("/v1/organizations").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn concurrent_renames_with_the_same_if_match_let_exactly_one_win() {
    let app = spawn_app().await;
    let admin = app.caller(&["admin"]);
    let created = admin.create_organization("MBL").await;
    let org = created.id();
    let etag = created.header("etag").unwrap().to_owned();
    let renames = crate::support::race(8, |n| {
        let request = admin
            .request(Method::PATCH, &format!("/v1/organizations/{org}"))
            .header("If-Match", etag.clone())
            .json(&json!({"name": format!("Name {n}")}));
        async move { Reply::from(request.send().await.unwrap()).await }
    })
    .await;
    let (won, lost): (Vec<_>, Vec<_>) = renames.into_iter().partition(|reply| reply.status == 200);
    assert_eq!(won.len(), 1, "{won:?}");
    assert_eq!(lost.len(), 7);
    for reply in &lost {
        assert_eq!(reply.status, 409, "{reply:?}");
        assert_eq!(reply.problem(), "version-conflict");
        assert_eq!(reply.body["current_version"], 2);
    }
    assert_eq!(app.event_count().await, 2);

    // A stale If-Match is refused; without one, the rename just happens.
    let stale = admin
        .send(
            admin
                .request(Method::PATCH, &format!("/v1/organizations/{org}"))
                .header("If-Match", etag)
                .json(&json!({"name": "Late"})),
        )
        .await
        .expect(409);
    assert_eq!(stale.problem(), "version-conflict");
    admin
        .patch(&format!("/v1/organizations/{org}"), json!({"name": "Late"}))
        .await
        .expect(200);
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_same_response_and_writes_nothing() {
    let app = spawn_app().await;
    let admin = app.caller(&["admin"]);
    let send = |path: String, body: Value| {
        admin.send(
            admin
                .request(Method::POST, &path)
                .header("Idempotency-Key", "k-42")
                .json(&body),
        )
    };
    let first = send("/v1/organizations".into(), organization_body("MBL"))
        .await
        .expect(201);
    let events = app.event_count().await;
    let again = send("/v1/organizations".into(), organization_body("MBL"))
        .await
        .expect(201);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(first.header("idempotent-replayed"), None);
    assert_eq!(app.event_count().await, events);

    // The same key on another kind of request is another command.
    let org = first.id();
    let division = send(
        format!("/v1/organizations/{org}/divisions"),
        json!({"name": "Dhaka", "code": "DHK"}),
    )
    .await
    .expect(201);
    let repeat = send(
        format!("/v1/organizations/{org}/divisions"),
        json!({"name": "Dhaka", "code": "DHK"}),
    )
    .await
    .expect(201);
    assert_eq!(repeat.body, division.body);
    assert_eq!(app.event_count().await, events + 1);

    // ... and on another organization it is refused, not silently answered.
    let other = admin.create_organization("OTHER").await.id();
    let reused = send(
        format!("/v1/organizations/{other}/divisions"),
        json!({"name": "Dhaka", "code": "DHK"}),
    )
    .await
    .expect(409);
    assert_eq!(reused.problem(), "idempotency-key-reused");
}

#[tokio::test]
async fn business_rules_of_the_current_state_answer_409_with_their_own_type() {
    let app = spawn_app().await;
    let admin = app.caller(&["admin"]);
    let h = admin.create_hierarchy("MBL").await;
    let org = &h.org;
    let events = app.event_count().await;

    let taken = admin
        .post("/v1/organizations", organization_body("mbl"))
        .await
        .expect(409);
    assert_eq!(taken.problem(), "duplicate-code");
    let duplicate = admin
        .post(
            &format!("/v1/organizations/{org}/divisions"),
            json!({"name": "Again", "code": "dhk"}),
        )
        .await
        .expect(409);
    assert_eq!(duplicate.problem(), "duplicate-code");
    let busy = admin
        .post(
            &format!("/v1/organizations/{org}/projects/{}/archive", h.project),
            json!({}),
        )
        .await
        .expect(409);
    assert_eq!(busy.problem(), "has-active-children");
    let same_project = admin
        .post(
            &format!("/v1/organizations/{org}/sites/{}/move", h.site),
            json!({"to_project_id": h.project}),
        )
        .await
        .expect(409);
    assert_eq!(same_project.problem(), "site-already-in-project");
    assert_eq!(app.event_count().await, events);

    admin
        .post(
            &format!("/v1/organizations/{org}/sites/{}/archive", h.site),
            json!({}),
        )
        .await
        .expect(200);
    let archived = admin
        .patch(
            &format!("/v1/organizations/{org}/sites/{}", h.site),
            json!({"name": "Renamed"}),
        )
        .await
        .expect(409);
    assert_eq!(archived.problem(), "unit-archived");
}
