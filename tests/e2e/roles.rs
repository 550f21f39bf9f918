//! Roles as data, held to the README: the README's role table equals the built-in table, and
//! every operation of `/openapi.json`, called by a signed-in user of each role (and one with no
//! role), answers 403 exactly when the README says the role lacks the operation's permission
//! (`x-permission`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use uuid::Uuid;
use vextrus::tenants;
use vextrus_api::{Permission, RateLimits, Role, SigningKeys};
use vextrus_commands::{DbRole, EventStore};

use crate::api_finance::Books;
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

/// A registered tenant whose administrator has signed in, to sign in more users with roles.
struct SignedInTenant<'a> {
    app: &'a TestApp,
    slug: &'static str,
    tenant: Uuid,
    admin: String,
}

impl<'a> SignedInTenant<'a> {
    async fn register(app: &'a TestApp, slug: &'static str) -> Self {
        let store = EventStore::new(
            vextrus::database::role_pool(&app.db.options, DbRole::Writer, 2)
                .await
                .unwrap(),
        );
        let admin_email = format!("admin@{slug}.example");
        let registered = tenants::register(&store, "Roles Ltd", slug, &admin_email, "Admin")
            .await
            .unwrap();
        let mut tenant = Self {
            app,
            slug,
            tenant: registered.tenant.as_uuid(),
            admin: String::new(),
        };
        tenant
            .post(
                "/v1/auth/invitation/accept",
                None,
                json!({"invitation": registered.invitation.token, "password": PASSWORD}),
            )
            .await
            .expect(200);
        tenant.admin = tenant.sign_in(&admin_email).await;
        tenant
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        let mut request = self.app.client.post(self.app.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Reply::from(request.send().await.unwrap()).await
    }

    async fn sign_in(&self, email: &str) -> String {
        let reply = self
            .post(
                "/v1/auth/login",
                None,
                json!({"tenant": self.slug, "email": email, "password": PASSWORD}),
            )
            .await
            .expect(200);
        reply.body["access_token"].as_str().unwrap().to_owned()
    }

    /// Invites `email` with `roles` (a JSON array of role grants), accepts the invitation and
    /// signs in: the user's access token.
    async fn user(&self, email: &str, roles: Value) -> String {
        let invited = self
            .post(
                "/v1/users",
                Some(&self.admin),
                json!({"email": email, "name": email, "roles": roles}),
            )
            .await
            .expect(201);
        self.post(
            "/v1/auth/invitation/accept",
            None,
            json!({"invitation": invited.body["invitation"], "password": PASSWORD}),
        )
        .await
        .expect(200);
        self.sign_in(email).await
    }

    fn caller(&self, token: &str) -> Caller<'a> {
        Caller {
            app: self.app,
            tenant: self.tenant,
            token: token.to_owned(),
        }
    }
}

#[tokio::test]
async fn every_operation_answers_403_exactly_when_the_readme_denies_the_role() {
    let keys = SigningKeys::from_pkcs8(&[SigningKeys::generate_pkcs8().unwrap()]).unwrap();
    let app = spawn_app_with(|config| {
        config.api.signing_keys = keys;
        config.api.rate_limits = RateLimits::off();
    })
    .await;
    let roles_tenant = SignedInTenant::register(&app, "roles").await;
    let tenant = roles_tenant.tenant;
    let admin_caller = roles_tenant.caller(&roles_tenant.admin);
    let hierarchy = admin_caller.create_hierarchy("ROLES").await;

    // One signed-in user per role, and one with none.
    let mut tokens: Vec<(Option<Role>, String)> = Vec::new();
    for role in Role::ALL.into_iter().map(Some).chain([None]) {
        let name = role.map_or("nobody", Role::as_str);
        let roles = match role {
            Some(role) => json!([{"role": role.as_str()}]),
            None => json!([]),
        };
        let token = roles_tenant
            .user(&format!("role-{name}@roles.example"), roles)
            .await;
        tokens.push((role, token));
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

/// The ids of the units a list answer holds.
fn ids(reply: &Reply) -> BTreeSet<String> {
    reply.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {reply:?}"))
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

fn set<const N: usize>(items: [&str; N]) -> BTreeSet<String> {
    items.into_iter().map(str::to_owned).collect()
}

#[tokio::test]
async fn a_scoped_role_counts_only_in_its_organization_or_project() {
    let keys = SigningKeys::from_pkcs8(&[SigningKeys::generate_pkcs8().unwrap()]).unwrap();
    let app = spawn_app_with(|config| {
        config.api.signing_keys = keys;
        config.api.rate_limits = RateLimits::off();
    })
    .await;
    let tenant = SignedInTenant::register(&app, "scoped").await;
    // Organization A with projects P1 (site S1) and P2 (site S2), each with books; and B.
    let a = Books::open_as(tenant.caller(&tenant.admin), "SCA").await;
    let b = Books::open_as(tenant.caller(&tenant.admin), "SCB").await;
    let in_project = |role: &str| json!([{"role": role, "scope": {"project_id": a.project}}]);
    let engineer = tenant.caller(
        &tenant
            .user("engineer@scoped.example", in_project("site-engineer"))
            .await,
    );
    let manager = tenant.caller(
        &tenant
            .user("manager@scoped.example", in_project("project-manager"))
            .await,
    );
    let accountant = tenant.caller(
        &tenant
            .user(
                "accountant@scoped.example",
                json!([{"role": "accountant", "scope": {"organization_id": a.org}}]),
            )
            .await,
    );
    let last = tenant
        .caller(&tenant.admin)
        .post(
            &a.path("sites"),
            json!({"project_id": a.other_project, "name": "Tongi", "code": "S3"}),
        )
        .await
        .expect(201);
    let fresh = format!("min_position={}", last.position());
    let org_a = a.org.as_str();

    // The site engineer sees its project, its site, and the organization and division above them.
    let me = engineer.get("/v1/auth/me").await.expect(200);
    assert_eq!(me.body["roles"], json!([]), "{me:?}");
    assert_eq!(
        me.body["scoped_roles"],
        json!([{"role": "site-engineer", "scope": {"project_id": a.project}}])
    );
    let organizations = engineer
        .get(&format!("/v1/organizations?{fresh}"))
        .await
        .expect(200);
    assert_eq!(ids(&organizations), set([org_a]));
    let projects = engineer.get(&a.path("projects")).await.expect(200);
    assert_eq!(ids(&projects), set([a.project.as_str()]));
    let sites = engineer.get(&a.path("sites")).await.expect(200);
    assert_eq!(ids(&sites), set([a.site.as_str()]));
    let divisions = engineer.get(&a.path("divisions")).await.expect(200);
    assert_eq!(ids(&divisions).len(), 1);
    let tree = engineer.get(&a.path("tree")).await.expect(200);
    let tree_projects = tree.body["divisions"][0]["projects"].as_array().unwrap();
    assert_eq!(tree_projects.len(), 1, "{tree:?}");
    assert_eq!(tree_projects[0]["project"]["id"], json!(a.project));
    assert_eq!(tree_projects[0]["sites"].as_array().unwrap().len(), 1);
    engineer
        .get(&a.path(&format!("projects/{}", a.project)))
        .await
        .expect(200);
    engineer
        .get(&a.path(&format!("sites/{}", a.site)))
        .await
        .expect(200);
    // Other projects, their sites and other organizations are not there for it.
    engineer
        .get(&a.path(&format!("projects/{}", a.other_project)))
        .await
        .expect(404);
    engineer
        .get(&a.path(&format!("sites/{}", a.other_site)))
        .await
        .expect(404);
    engineer.get(&b.path("tree")).await.expect(404);
    engineer
        .get(&format!("/v1/organizations/{}", b.org))
        .await
        .expect(404);
    // The books are the organization's: a project's role does not open them.
    for path in [
        "accounts",
        "trial-balance?from=2025-07-01&to=2026-06-30",
        "journal-entries",
    ] {
        engineer.get(&a.path(path)).await.expect(403);
    }
    engineer.get("/v1/audit/events").await.expect(403);
    // Reading is all a site engineer does.
    engineer
        .post(
            &a.path("sites"),
            json!({"project_id": a.project, "name": "Jetty", "code": "S9"}),
        )
        .await
        .expect(403);

    // The project manager manages its project and that project's sites, nothing else.
    manager
        .post(
            &a.path("sites"),
            json!({"project_id": a.project, "name": "Jetty", "code": "S4"}),
        )
        .await
        .expect(201);
    manager
        .post(
            &a.path("sites"),
            json!({"project_id": a.other_project, "name": "Depot", "code": "S5"}),
        )
        .await
        .expect(403);
    let rename = json!({"name": "Padma Bridge"});
    manager
        .patch(&a.path(&format!("projects/{}", a.project)), rename.clone())
        .await
        .expect(200);
    manager
        .patch(
            &a.path(&format!("projects/{}", a.other_project)),
            rename.clone(),
        )
        .await
        .expect(403);
    manager
        .patch(
            &a.path(&format!("sites/{}", a.site)),
            json!({"name": "Mawa Ghat"}),
        )
        .await
        .expect(200);
    manager
        .patch(
            &a.path(&format!("sites/{}", a.other_site)),
            json!({"name": "Mine"}),
        )
        .await
        .expect(403);
    // Moving a site needs the role in both projects.
    manager
        .post(
            &a.path(&format!("sites/{}/move", a.site)),
            json!({"to_project_id": a.other_project}),
        )
        .await
        .expect(403);
    manager
        .post(
            &a.path(&format!("sites/{}/move", a.other_site)),
            json!({"to_project_id": a.project}),
        )
        .await
        .expect(403);
    manager
        .post(
            &a.path("projects"),
            json!({"division_id": ids(&divisions).pop_first().unwrap(), "name": "New", "code": "P9"}),
        )
        .await
        .expect(403);
    manager
        .patch(&format!("/v1/organizations/{org_a}"), rename.clone())
        .await
        .expect(403);

    // The accountant of organization A posts and reads A's books, and B's are closed to it.
    let posted = accountant
        .post(&a.path("journal-entries"), a.rent("2025-08-10"))
        .await
        .expect(201);
    let balance = accountant
        .get(&a.path(&format!(
            "trial-balance?from=2025-07-01&to=2026-06-30&min_position={}",
            posted.position()
        )))
        .await
        .expect(200);
    assert_eq!(balance.body["totals"]["debit"], "50000.00", "{balance:?}");
    accountant
        .post(&b.path("journal-entries"), b.rent("2025-08-10"))
        .await
        .expect(403);
    accountant
        .get(&b.path("trial-balance?from=2025-07-01&to=2026-06-30"))
        .await
        .expect(403);
    let organizations = accountant.get("/v1/organizations").await.expect(200);
    assert_eq!(ids(&organizations), set([org_a]));
    let all_projects = accountant.get(&a.path("projects")).await.expect(200);
    assert_eq!(
        ids(&all_projects),
        set([a.project.as_str(), a.other_project.as_str()])
    );
    // Its role is an accountant's: no chart changes, not even in A; nothing tenant-wide.
    accountant
        .post(&a.path("accounts/standard-chart"), json!({}))
        .await
        .expect(403);
    accountant
        .post("/v1/organizations", crate::http::organization_body("SCC"))
        .await
        .expect(403);
    accountant.get("/v1/api-keys").await.expect(403);
    app.shutdown().await;
}
