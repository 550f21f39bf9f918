//! Roles as data, held to the README: the README's role table equals the built-in table, and
//! every operation of `/openapi.json`, called by a signed-in user of each role (and one with no
//! role), answers 403 exactly when the README says the role lacks the operation's permission
//! (`x-permission`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use vextrus::tenants;
use vextrus_api::{Permission, RateLimits, Role, SigningKeys};
use vextrus_commands::{DbRole, EventStore};

use crate::http::*;
use crate::openapi::{Generator, document, operations, request};

const PASSWORD: &str = "roles walk password 2026";

/// The README's role table: role → the permissions it marks with ✓.
fn readme_roles() -> BTreeMap<String, BTreeSet<String>> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let mut lines = readme
        .lines()
        .skip_while(|line| !line.starts_with("| role | read |"));
    let header: Vec<String> = lines
        .next()
        .expect("the README has a role table")
        .split('|')
        .map(|cell| cell.trim().to_owned())
        .collect();
    let mut table = BTreeMap::new();
    for line in lines.skip(1).take_while(|line| line.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let role = cells[1].trim_matches('`').to_owned();
        let granted = cells
            .iter()
            .enumerate()
            .filter(|(_, cell)| **cell == "✓")
            .map(|(index, _)| header[index].clone())
            .collect();
        table.insert(role, granted);
    }
    table
}

#[test]
fn the_readme_role_table_is_the_built_in_one() {
    let built_in: BTreeMap<String, BTreeSet<String>> = Role::ALL
        .iter()
        .map(|role| {
            (
                role.as_str().to_owned(),
                role.permissions()
                    .iter()
                    .map(|permission| permission.as_str().to_owned())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(readme_roles(), built_in);
    let header_permissions: BTreeSet<String> = readme_roles().into_values().flatten().collect();
    let all: BTreeSet<String> = Permission::ALL
        .iter()
        .map(|permission| permission.as_str().to_owned())
        .collect();
    assert_eq!(header_permissions, all, "every permission is a column");
}

#[tokio::test]
async fn every_operation_answers_403_exactly_when_the_readme_denies_the_role() {
    let keys = SigningKeys::from_pkcs8(&[SigningKeys::generate_pkcs8().unwrap()]).unwrap();
    let app = spawn_app_with(|config| {
        config.api.signing_keys = keys;
        config.api.rate_limits = RateLimits::off();
    })
    .await;
    let store = EventStore::new(
        vextrus::database::role_pool(&app.db.options, DbRole::Writer, 2)
            .await
            .unwrap(),
    );
    let registered =
        tenants::register(&store, "Roles Ltd", "roles", "admin@roles.example", "Admin")
            .await
            .unwrap();
    let post = |path: &str, token: Option<&str>, body: serde_json::Value| {
        let mut request = app.client.post(app.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { Reply::from(request.send().await.unwrap()).await }
    };
    post(
        "/v1/auth/invitation/accept",
        None,
        json!({"invitation": registered.invitation.token, "password": PASSWORD}),
    )
    .await
    .expect(200);
    let sign_in = |email: String| {
        let post = &post;
        async move {
            let reply = post(
                "/v1/auth/login",
                None,
                json!({"tenant": "roles", "email": email, "password": PASSWORD}),
            )
            .await
            .expect(200);
            reply.body["access_token"].as_str().unwrap().to_owned()
        }
    };
    let admin = sign_in("admin@roles.example".into()).await;
    let tenant = registered.tenant.as_uuid();
    let admin_caller = Caller {
        app: &app,
        tenant,
        token: admin.clone(),
    };
    let hierarchy = admin_caller.create_hierarchy("ROLES").await;

    // One signed-in user per role, and one with none.
    let mut tokens: Vec<(Option<Role>, String)> = Vec::new();
    for role in Role::ALL.into_iter().map(Some).chain([None]) {
        let name = role.map_or("nobody", Role::as_str);
        let email = format!("role-{name}@roles.example");
        let roles = match role {
            Some(role) => json!([{"role": role.as_str()}]),
            None => json!([]),
        };
        let invited = post(
            "/v1/users",
            Some(&admin),
            json!({"email": email, "name": name, "roles": roles}),
        )
        .await
        .expect(201);
        post(
            "/v1/auth/invitation/accept",
            None,
            json!({"invitation": invited.body["invitation"], "password": PASSWORD}),
        )
        .await
        .expect(200);
        tokens.push((role, sign_in(email).await));
    }

    let doc = document(&app).await;
    let table = readme_roles();
    let mut known = BTreeMap::new();
    known.insert("organization_id", hierarchy.org.clone());
    known.insert("division_id", hierarchy.division.clone());
    known.insert("project_id", hierarchy.project.clone());
    known.insert("site_id", hierarchy.site.clone());
    let mut generator = Generator::new(&doc, known, hierarchy.position);
    // Signing out ends the session the walk uses: last.
    let mut walk: Vec<_> = operations(&doc)
        .into_iter()
        .filter(|(_, _, operation)| operation["security"].is_array())
        .collect();
    walk.sort_by_key(|(_, path, _)| path == "/v1/auth/logout");
    let mut checked = 0;
    let mut refused = 0;
    for (method, path, operation) in &walk {
        let permission = operation["x-permission"].as_str();
        if path.starts_with("/v1/")
            && !matches!(
                path.as_str(),
                "/v1/auth/me" | "/v1/auth/logout" | "/v1/auth/password"
            )
        {
            assert!(
                permission.is_some(),
                "{method} {path} declares no x-permission"
            );
        }
        for (role, token) in &tokens {
            let caller = Caller {
                app: &app,
                tenant,
                token: token.clone(),
            };
            let (builder, shown) = request(&mut generator, &caller, method, path, operation);
            let status = builder.send().await.unwrap().status().as_u16();
            let allowed = match (permission, role) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(permission), Some(role)) => table[role.as_str()].contains(permission),
            };
            let who = role.map_or("no role", Role::as_str);
            if allowed {
                assert_ne!(status, 403, "{who}: {shown}");
                assert_ne!(status, 401, "{who}: {shown}");
            } else {
                assert_eq!(status, 403, "{who} must be refused: {shown}");
                refused += 1;
            }
            checked += 1;
        }
    }
    assert!(walk.len() >= 60, "{} operations", walk.len());
    assert_eq!(checked, walk.len() * tokens.len());
    assert!(refused > 200, "{refused} refusals");
    app.shutdown().await;
}
