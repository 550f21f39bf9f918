//! Identity and access through the real API: a tenant registered by the platform operator, its
//! administrator signing in with a password, inviting colleagues with roles; tokens refused at
//! once after a role change, a sign-out, a reused refresh token, a disable, a password change or
//! a suspension; lockout that answers the same for every refusal; the JWKS and key rotation.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;
use vextrus::database;
use vextrus::server::{Server, ServerConfig};
use vextrus::tenants;
use vextrus_api::{LimitSetting, SigningKeys};
use vextrus_commands::{DbRole, EventStore};
use vextrus_domain::TenantId;

use crate::http::*;

const PASSWORD: &str = "mawa bridge at dawn 2026";

/// A server with these signing keys, whose sign-in limit does not get in the tests' way (the
/// limits have a test of their own).
async fn app_with_keys(keys: &[Vec<u8>]) -> TestApp {
    let keys = SigningKeys::from_pkcs8(keys).unwrap();
    spawn_app_with(|config| {
        config.api.signing_keys = keys;
        config.api.rate_limits.auth = limit("1000/min");
    })
    .await
}

fn limit(text: &str) -> Option<vextrus_api::rate_limit::RateLimit> {
    text.parse::<LimitSetting>().unwrap().0
}

async fn store(app: &TestApp) -> EventStore {
    EventStore::new(
        database::role_pool(&app.db.options, DbRole::Writer, 2)
            .await
            .unwrap(),
    )
}

/// A signed-in user: their tokens.
struct Session<'a> {
    app: &'a TestApp,
    access: String,
    refresh: String,
    body: Value,
}

impl Session<'_> {
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(&self.access)
    }

    async fn get(&self, path: &str) -> Reply {
        Reply::from(self.request(Method::GET, path).send().await.unwrap()).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        Reply::from(
            self.request(Method::POST, path)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}

async fn post(app: &TestApp, path: &str, body: Value) -> Reply {
    Reply::from(
        app.client
            .post(app.url(path))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn login(app: &TestApp, tenant: &str, email: &str, password: &str) -> Reply {
    post(
        app,
        "/v1/auth/login",
        json!({"tenant": tenant, "email": email, "password": password}),
    )
    .await
}

async fn signed_in<'a>(app: &'a TestApp, tenant: &str, email: &str) -> Session<'a> {
    let reply = login(app, tenant, email, PASSWORD).await.expect(200);
    session(app, reply)
}

fn session(app: &TestApp, reply: Reply) -> Session<'_> {
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    Session {
        app,
        access: reply.body["access_token"].as_str().unwrap().to_owned(),
        refresh: reply.body["refresh_token"].as_str().unwrap().to_owned(),
        body: reply.body,
    }
}

async fn refresh(app: &TestApp, refresh_token: &str) -> Reply {
    post(
        app,
        "/v1/auth/refresh",
        json!({"refresh_token": refresh_token}),
    )
    .await
}

/// Registers tenant `slug` and accepts its administrator's invitation with [`PASSWORD`].
async fn tenant_with_admin(app: &TestApp, slug: &str) -> (TenantId, String) {
    let email = format!("admin@{slug}.example.com");
    let registered = tenants::register(&store(app).await, "Meghna Builders", slug, &email, "Admin")
        .await
        .unwrap();
    post(
        app,
        "/v1/auth/invitation/accept",
        json!({"invitation": registered.invitation.token, "password": PASSWORD}),
    )
    .await
    .expect(200);
    (registered.tenant, email)
}

/// `admin` invites `email` with `roles`; the invitee accepts with [`PASSWORD`].
async fn colleague(admin: &Session<'_>, email: &str, roles: Value) -> String {
    let invited = admin
        .post(
            "/v1/users",
            json!({"email": email, "name": "A colleague", "roles": roles}),
        )
        .await
        .expect(201);
    assert!(invited.header("location").is_some());
    post(
        admin.app,
        "/v1/auth/invitation/accept",
        json!({"invitation": invited.body["invitation"], "password": PASSWORD}),
    )
    .await
    .expect(200);
    invited.body["user_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_administrator_signs_in_invites_colleagues_and_changes_take_effect_at_once() {
    let app = app_with_keys(&[SigningKeys::generate_pkcs8().unwrap()]).await;
    let registered = tenants::register(
        &store(&app).await,
        "Meghna Builders",
        "meghna",
        "Admin@Meghna.example.com",
        "Rahim Uddin",
    )
    .await
    .unwrap();
    let invitation = registered.invitation.token.clone();

    // The password policy, then the invitation works once.
    for (password, reason) in [
        ("short", "at least 12"),
        ("qwerty123456", "most common"),
        ("QWERTY123456", "most common"),
    ] {
        let reply = post(
            &app,
            "/v1/auth/invitation/accept",
            json!({"invitation": invitation, "password": password}),
        )
        .await
        .expect(422);
        let said = reply.body["invalid-params"][0]["reason"].as_str().unwrap();
        assert!(said.contains(reason), "{said}");
    }
    let accept = json!({"invitation": invitation, "password": PASSWORD});
    post(&app, "/v1/auth/invitation/accept", accept.clone())
        .await
        .expect(200);
    post(&app, "/v1/auth/invitation/accept", accept)
        .await
        .expect(401);

    // Sign in (the address in any case); the token is EdDSA with a kid the JWKS publishes.
    let admin = signed_in(&app, "MEGHNA", "admin@meghna.example.com").await;
    assert_eq!(admin.body["expires_in"], 900);
    let header = jsonwebtoken::decode_header(&admin.access).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let jwks = Reply::from(
        app.client
            .get(app.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(200);
    assert_eq!(jwks.body["keys"][0]["kid"].as_str(), header.kid.as_deref());
    let me = admin.get("/v1/auth/me").await.expect(200);
    assert_eq!(me.body["roles"], json!(["admin"]));
    assert_eq!(
        me.body["tenant_id"],
        registered.tenant.as_uuid().to_string()
    );
    assert!(
        me.body["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("manage-users"))
    );
    // The admin's token works on the business routes.
    admin
        .post("/v1/organizations", organization_body("MBL"))
        .await
        .expect(201);

    // Colleagues: an address is unique in any case.
    let bob_id = colleague(
        &admin,
        "bob@meghna.example.com",
        json!([{"role": "accountant"}]),
    )
    .await;
    let taken = admin
        .post(
            "/v1/users",
            json!({"email": "BOB@meghna.example.com", "name": "Bob again", "roles": []}),
        )
        .await
        .expect(409);
    assert!(taken.body["detail"].as_str().unwrap().contains("taken"));
    let bad = admin
        .post(
            "/v1/users",
            json!({"email": "not an address", "name": " ", "roles": [{"role": "astronaut"}]}),
        )
        .await
        .expect(422);
    let names: Vec<&str> = bad.body["invalid-params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|param| param["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["email", "name", "roles[0]"]);

    let bob = signed_in(&app, "meghna", "bob@meghna.example.com").await;
    let refused = bob
        .post("/v1/organizations", organization_body("BOB"))
        .await
        .expect(403);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("manage-organizations")
    );
    bob.post("/v1/users", json!({"email": "x@y.com", "name": "X"}))
        .await
        .expect(403);
    let own = bob.get(&format!("/v1/users/{bob_id}")).await.expect(200);
    assert_eq!(own.body["email"], "bob@meghna.example.com");
    assert_eq!(own.body["status"], "active");
    assert_eq!(own.body["active_sessions"], 1);
    bob.get(&format!(
        "/v1/users/{}",
        me.body["user_id"].as_str().unwrap()
    ))
    .await
    .expect(403);

    // A role change outdates bob's token at once; a refresh carries the new role.
    admin
        .post(
            &format!("/v1/users/{bob_id}/roles"),
            json!({"role": "project-manager"}),
        )
        .await
        .expect(200);
    let outdated = bob.get("/v1/auth/me").await.expect(401);
    assert!(
        outdated.body["detail"]
            .as_str()
            .unwrap()
            .contains("outdated")
    );
    let renewed = session(&app, refresh(&app, &bob.refresh).await.expect(200));
    let me = renewed.get("/v1/auth/me").await.expect(200);
    assert_eq!(me.body["roles"], json!(["accountant", "project-manager"]));

    // The exchanged refresh token, presented again, ends the whole session.
    let reused = refresh(&app, &bob.refresh).await.expect(401);
    assert!(
        reused.body["detail"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    refresh(&app, &renewed.refresh).await.expect(401);
    renewed.get("/v1/auth/me").await.expect(401);

    // Sign-out ends one session, not the others.
    let first = signed_in(&app, "meghna", "bob@meghna.example.com").await;
    let second = signed_in(&app, "meghna", "bob@meghna.example.com").await;
    Reply::from(
        first
            .request(Method::POST, "/v1/auth/logout")
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(204);
    first.get("/v1/auth/me").await.expect(401);
    refresh(&app, &first.refresh).await.expect(401);
    second.get("/v1/auth/me").await.expect(200);
    // Concurrent requests' checks are asked of the log together; each token keeps its own answer.
    let together = futures_util::future::join_all((0..24).map(|n| {
        let (session, ended) = if n % 2 == 0 {
            (&first, true)
        } else {
            (&second, false)
        };
        async move { (ended, session.get("/v1/auth/me").await.status) }
    }))
    .await;
    for (ended, status) in together {
        assert_eq!(status, if ended { 401 } else { 200 });
    }

    // A password change ends every session; the new password signs in.
    let new_password = "padma river at dusk 2026";
    second
        .post(
            "/v1/auth/password",
            json!({"current_password": "wrong password!", "new_password": new_password}),
        )
        .await
        .expect(422);
    second
        .post(
            "/v1/auth/password",
            json!({"current_password": PASSWORD, "new_password": new_password}),
        )
        .await
        .expect(200);
    second.get("/v1/auth/me").await.expect(401);
    login(&app, "meghna", "bob@meghna.example.com", PASSWORD)
        .await
        .expect(401);
    let third = session(
        &app,
        login(&app, "meghna", "bob@meghna.example.com", new_password)
            .await
            .expect(200),
    );

    // A disable ends his sessions and refuses sign-in; enabling lets him back.
    admin
        .post(&format!("/v1/users/{bob_id}/disable"), json!({}))
        .await
        .expect(200);
    third.get("/v1/auth/me").await.expect(401);
    refresh(&app, &third.refresh).await.expect(401);
    login(&app, "meghna", "bob@meghna.example.com", new_password)
        .await
        .expect(401);
    admin
        .post(&format!("/v1/users/{bob_id}/disable"), json!({}))
        .await
        .expect(409);
    admin
        .post(&format!("/v1/users/{bob_id}/enable"), json!({}))
        .await
        .expect(200);
    login(&app, "meghna", "bob@meghna.example.com", new_password)
        .await
        .expect(200);

    // A password reset issued by the admin works once.
    let reset = admin
        .post(&format!("/v1/users/{bob_id}/password-reset"), json!({}))
        .await
        .expect(200);
    let reset_body = json!({"reset": reset.body["reset"], "password": "jamuna at noon 2026"});
    post(&app, "/v1/auth/password-reset", reset_body.clone())
        .await
        .expect(200);
    post(&app, "/v1/auth/password-reset", reset_body)
        .await
        .expect(401);
    login(
        &app,
        "meghna",
        "bob@meghna.example.com",
        "jamuna at noon 2026",
    )
    .await
    .expect(200);

    // A suspension refuses the tenant's tokens and sign-ins at once; resuming restores them.
    let operator = store(&app).await;
    tenants::set_suspended(&operator, registered.tenant, true, "unpaid invoice")
        .await
        .unwrap();
    let suspended = admin.get("/v1/auth/me").await.expect(401);
    assert!(
        suspended.body["detail"]
            .as_str()
            .unwrap()
            .contains("suspended")
    );
    login(&app, "meghna", "admin@meghna.example.com", PASSWORD)
        .await
        .expect(401);
    refresh(&app, &admin.refresh).await.expect(401);
    tenants::set_suspended(&operator, registered.tenant, false, "paid")
        .await
        .unwrap();
    admin.get("/v1/auth/me").await.expect(200);

    // The audit trail shows bob's story, without his password hashes.
    let history = admin
        .get(&format!("/v1/audit/streams/user/{bob_id}/events?limit=100"))
        .await
        .expect(200);
    let items = history.body["items"].as_array().unwrap();
    let types: Vec<&str> = items
        .iter()
        .map(|item| item["event_type"].as_str().unwrap())
        .collect();
    for expected in [
        "UserInvited",
        "InvitationAccepted",
        "SignedIn",
        "RoleAssigned",
        "SessionRefreshed",
        "SessionRevoked",
        "SignedOut",
        "PasswordChanged",
        "UserDisabled",
        "UserEnabled",
        "PasswordResetIssued",
        "PasswordReset",
    ] {
        assert!(types.contains(&expected), "{expected} in {types:?}");
    }
    let text = history.body.to_string();
    assert!(
        !text.contains("$argon2id"),
        "a password hash leaked: {text}"
    );
    assert!(text.contains("[redacted]"));
    app.shutdown().await;
}

#[tokio::test]
async fn every_refused_sign_in_reads_the_same_and_repeated_failures_lock() {
    let app = app_with_keys(&[SigningKeys::generate_pkcs8().unwrap()]).await;
    let (_, email) = tenant_with_admin(&app, "padma").await;

    let wrong = login(&app, "padma", &email, "not the password")
        .await
        .expect(401);
    let unknown = login(&app, "padma", "nobody@padma.example.com", PASSWORD)
        .await
        .expect(401);
    let no_tenant = login(&app, "no-such-tenant", &email, PASSWORD)
        .await
        .expect(401);
    for other in [&unknown, &no_tenant] {
        assert_eq!(other.body, wrong.body);
    }

    // Four more failures lock the account: then even the right password is refused, with the
    // same answer.
    for _ in 0..4 {
        login(&app, "padma", &email, "not the password")
            .await
            .expect(401);
    }
    let locked = login(&app, "padma", &email, PASSWORD).await.expect(401);
    assert_eq!(locked.body, wrong.body);

    // An unknown address locks the same way: a guesser cannot tell it from an account.
    for _ in 0..4 {
        login(&app, "padma", "nobody@padma.example.com", PASSWORD)
            .await
            .expect(401);
    }
    let recorded: Vec<(String, i64)> = sqlx::query_as(
        "select event_type, count(*) from events
         where aggregate_type = 'user' and event_type in ('SignInFailed', 'AccountLocked')
         group by event_type order by event_type",
    )
    .fetch_all(&app.owner)
    .await
    .unwrap();
    // Padma's admin: 5 wrong + 1 while locked; the unknown address: 5, locked by the fifth.
    assert_eq!(
        recorded,
        [
            ("AccountLocked".to_owned(), 2),
            ("SignInFailed".to_owned(), 11)
        ]
    );

    // Every refusal costs one Argon2id verification: an unknown address is not answered faster
    // than a wrong password (without the dummy hash it would be fifty times faster).
    // The two kinds of attempt take turns, so that the other tests running meanwhile slow both
    // alike (all of one kind, then all of the other, once gave 40 ms against 85 ms).
    async fn refused_in(app: &TestApp, email: &str) -> Duration {
        let started = Instant::now();
        login(app, "padma", email, "still not it").await.expect(401);
        started.elapsed()
    }
    let (mut known, mut nobody) = (Vec::new(), Vec::new());
    for _ in 0..9 {
        known.push(refused_in(&app, &email).await);
        nobody.push(refused_in(&app, "someone-else@padma.example.com").await);
    }
    known.sort();
    nobody.sort();
    let (known, nobody) = (known[4], nobody[4]);
    let ratio = nobody.as_secs_f64() / known.as_secs_f64();
    assert!(
        (0.5..2.0).contains(&ratio),
        "unknown {nobody:?} against known {known:?}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn rotation_logs_nobody_out_and_forged_or_unknown_key_tokens_are_refused() {
    let old_key = SigningKeys::generate_pkcs8().unwrap();
    let new_key = SigningKeys::generate_pkcs8().unwrap();
    let app = app_with_keys(std::slice::from_ref(&old_key)).await;
    let (tenant, email) = tenant_with_admin(&app, "jamuna").await;
    let before = signed_in(&app, "jamuna", &email).await;

    // A server started after `vextrus keys rotate`, on the same database: both keys.
    let rotated = SigningKeys::from_pkcs8(&[old_key, new_key]).unwrap();
    let mut config = ServerConfig::new(app.keys.clone());
    config.max_connections = 4;
    config.api.signing_keys = rotated.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::start(&app.db.options, listener, config)
        .await
        .unwrap();
    let after = format!("http://{}", server.local_addr());
    let get_me = |base: String, token: String| {
        let client = app.client.clone();
        async move {
            Reply::from(
                client
                    .get(format!("{base}/v1/auth/me"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    // The token signed before the rotation still works, and so does its refresh token.
    get_me(after.clone(), before.access.clone())
        .await
        .expect(200);
    let refreshed = Reply::from(
        app.client
            .post(format!("{after}/v1/auth/refresh"))
            .json(&json!({"refresh_token": before.refresh}))
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(200);
    let new_token = refreshed.body["access_token"].as_str().unwrap().to_owned();
    let kid = jsonwebtoken::decode_header(&new_token).unwrap().kid;
    assert_eq!(
        kid.as_deref(),
        Some(rotated.kids()[1].as_str()),
        "the new key signs"
    );
    // A server that does not hold the new key refuses its tokens, saying why.
    let unknown = get_me(app.base.clone(), new_token.clone())
        .await
        .expect(401);
    assert!(unknown.body["detail"].as_str().unwrap().contains("kid"));
    get_me(after.clone(), new_token.clone()).await.expect(200);

    // Forgeries: alg none, a changed tenant, a key the server never had.
    use base64::Engine;
    let b64 =
        |value: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    let parts: Vec<&str> = new_token.split('.').collect();
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        parts[1]
    );
    let mut other_tenant = payload.clone();
    other_tenant["tenant"] = json!(Uuid::now_v7());
    let altered = format!("{}.{}.{}", parts[0], b64(&other_tenant), parts[2]);
    let stranger = SigningKeys::from_pkcs8(&[SigningKeys::generate_pkcs8().unwrap()]).unwrap();
    let claims: vextrus_api::keys::SessionClaims = serde_json::from_value(payload).unwrap();
    let foreign = stranger.sign(&claims).unwrap();
    for (case, token) in [
        ("alg none", none),
        ("altered", altered),
        ("foreign key", foreign),
    ] {
        let reply = get_me(after.clone(), token).await;
        assert_eq!(reply.status, 401, "{case}: {reply:?}");
        assert_eq!(reply.problem(), "unauthenticated", "{case}");
    }
    // Development tokens (HS256, VEXTRUS_JWT_SECRET) keep working, and a suspension refuses
    // them too.
    let developer = app.caller_for(tenant.as_uuid(), &["viewer"]);
    developer.get("/v1/auth/me").await.expect(200);
    tenants::set_suspended(&store(&app).await, tenant, true, "audit")
        .await
        .unwrap();
    developer.get("/v1/auth/me").await.expect(401);
    server.shutdown().await.unwrap();
    app.shutdown().await;
}

/// The limits answer 429 with `Retry-After`, per address on the sign-in routes and per tenant
/// on authenticated ones, and one tenant's burst leaves another's untouched.
#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let keys = SigningKeys::from_pkcs8(&[SigningKeys::generate_pkcs8().unwrap()]).unwrap();
    let app = spawn_app_with(|config| {
        config.api.signing_keys = keys;
        config.api.rate_limits.auth = limit("5/min");
        config.api.rate_limits.tenant = limit("20/min");
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let reply = login(&app, "nobody", "someone@example.com", "a long password").await;
        if reply.status == 429 {
            assert_eq!(reply.problem(), "too-many-requests");
            let wait: u64 = reply.header("retry-after").unwrap().parse().unwrap();
            assert!((1..=60).contains(&wait), "{wait}");
            assert!(reply.header("x-request-id").is_some());
        }
        statuses.push(reply.status);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429]);
    // Other routes keep their own (larger) budget.
    app.client
        .get(app.url("/health/live"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();

    let busy = app.caller(&["viewer"]);
    let quiet = app.caller(&["viewer"]);
    let mut answered = Vec::new();
    for _ in 0..22 {
        answered.push(busy.get("/v1/organizations").await.status);
    }
    assert_eq!(answered.iter().filter(|status| **status == 200).count(), 20);
    assert_eq!(answered[20..], [429, 429]);
    quiet.get("/v1/organizations").await.expect(200);
    app.shutdown().await;
}

/// An API key works as a bearer token and as `X-API-Key`, with its roles only; its list entry
/// shows a prefix and its last use, never the secret; a revocation or a suspension refuses it on
/// the next request.
#[tokio::test]
async fn api_keys_authenticate_machine_clients_until_revoked() {
    let app = app_with_keys(&[SigningKeys::generate_pkcs8().unwrap()]).await;
    let (tenant, email) = tenant_with_admin(&app, "karnaphuli").await;
    let admin = signed_in(&app, "karnaphuli", &email).await;
    let created = admin
        .post(
            "/v1/api-keys",
            json!({"name": "Tally sync", "roles": ["accountant", "viewer"], "expires_in_days": 30}),
        )
        .await
        .expect(201);
    let key = created.body["key"].as_str().unwrap().to_owned();
    let key_id = created.body["key_id"].as_str().unwrap().to_owned();
    let prefix = created.body["prefix"].as_str().unwrap().to_owned();
    assert!(key.starts_with(&prefix) && prefix.starts_with("vx_"));
    assert!(created.body["expires_at"].is_string());

    let bearer = |path: &str| app.client.get(app.url(path)).bearer_auth(&key).send();
    let as_header = |path: &str| {
        app.client
            .get(app.url(path))
            .header("x-api-key", &key)
            .send()
    };
    let me = Reply::from(bearer("/v1/auth/me").await.unwrap())
        .await
        .expect(200);
    assert_eq!(me.body["roles"], json!(["accountant", "viewer"]));
    assert_eq!(me.body["subject"], format!("api-key:{key_id}"));
    Reply::from(as_header("/v1/organizations").await.unwrap())
        .await
        .expect(200);
    // Its roles only.
    let refused = Reply::from(
        app.client
            .post(app.url("/v1/organizations"))
            .bearer_auth(&key)
            .json(&organization_body("KEY"))
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(403);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("manage-organizations")
    );
    // A wrong secret, a malformed key.
    let wrong = format!(
        "{}{}",
        &key[..key.len() - 1],
        if key.ends_with('A') { "B" } else { "A" }
    );
    for bad in [wrong.as_str(), "vx_nonsense"] {
        let reply = Reply::from(
            app.client
                .get(app.url("/v1/auth/me"))
                .bearer_auth(bad)
                .send()
                .await
                .unwrap(),
        )
        .await
        .expect(401);
        assert_eq!(reply.body["detail"], "the API key is not valid");
    }

    // Listed with its prefix and last use, never its secret.
    let deadline = Instant::now() + Duration::from_secs(10);
    let listed = loop {
        let list = admin.get("/v1/api-keys").await.expect(200);
        if list.body["items"][0]["last_used_at"].is_string() || Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let item = &listed.body["items"][0];
    assert_eq!(item["prefix"], prefix);
    assert_eq!(item["name"], "Tally sync");
    assert_eq!(item["roles"], json!(["accountant", "viewer"]));
    assert!(item["last_used_at"].is_string(), "{listed:?}");
    assert!(item["revoked_at"].is_null());
    assert!(
        !listed.body.to_string().contains(&key[key.len() - 43..]),
        "the secret is never listed"
    );

    // A suspension refuses the key at once, and so does a revocation.
    let operator = store(&app).await;
    tenants::set_suspended(&operator, tenant, true, "audit")
        .await
        .unwrap();
    Reply::from(bearer("/v1/auth/me").await.unwrap())
        .await
        .expect(401);
    tenants::set_suspended(&operator, tenant, false, "done")
        .await
        .unwrap();
    Reply::from(bearer("/v1/auth/me").await.unwrap())
        .await
        .expect(200);
    admin
        .post(&format!("/v1/api-keys/{key_id}/revoke"), json!({}))
        .await
        .expect(200);
    let revoked = Reply::from(bearer("/v1/auth/me").await.unwrap())
        .await
        .expect(401);
    assert_eq!(revoked.body["detail"], "the API key was revoked");
    admin
        .post(&format!("/v1/api-keys/{key_id}/revoke"), json!({}))
        .await
        .expect(409);
    let list = admin.get("/v1/api-keys").await.expect(200);
    assert!(list.body["items"][0]["revoked_at"].is_string());
    // Only administrators manage keys.
    let viewer_key = admin
        .post(
            "/v1/api-keys",
            json!({"name": "Reports", "roles": ["viewer"]}),
        )
        .await
        .expect(201);
    let viewer_key = viewer_key.body["key"].as_str().unwrap().to_owned();
    let reply = Reply::from(
        app.client
            .get(app.url("/v1/api-keys"))
            .bearer_auth(&viewer_key)
            .send()
            .await
            .unwrap(),
    )
    .await
    .expect(403);
    assert_eq!(reply.problem(), "forbidden");
    app.shutdown().await;
}

/// A tenant's own identity provider (an OpenID Connect issuer whose JWKS this test serves): its
/// tokens are accepted with the roles its claims map to, and refused when they name another
/// audience, have expired, were signed by a key it does not publish or with a symmetric
/// algorithm, or when the tenant is suspended.
#[tokio::test]
async fn an_identity_providers_tokens_map_to_users_and_roles() {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use vextrus_api::OidcProviders;
    use vextrus_api::identity::oidc::ProviderConfig;

    let rng = ring::rand::SystemRandom::new();
    let key_pair = |_: ()| {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        (pkcs8.as_ref().to_vec(), pair.public_key().as_ref().to_vec())
    };
    let (published_key, point) = key_pair(());
    let (other_key, _) = key_pair(());
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    // An uncompressed P-256 point: 0x04, then x and y.
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        "kid": "idp-1", "alg": "ES256", "use": "sig"
    }]});
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let idp = format!("http://{}", listener.local_addr().unwrap());
    let certs = axum::Router::new().route(
        "/certs",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, certs).await.unwrap() });

    let issuer = format!("{idp}/realms/meghna");
    let registered_tenant = TenantId::new();
    // A second provider, whose keys cannot be fetched (nothing listens on its port).
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let unreachable = format!("http://{}/certs", closed.local_addr().unwrap());
    drop(closed);
    let providers = OidcProviders::new(vec![
        ProviderConfig {
            tenant: registered_tenant.as_uuid(),
            issuer: issuer.clone(),
            audience: "vextrus".into(),
            jwks_url: format!("{idp}/certs"),
            roles_claim: "realm_access.roles".into(),
            role_map: [("erp-accountant".to_owned(), "accountant".to_owned())].into(),
            subject_claim: "preferred_username".into(),
        },
        ProviderConfig {
            tenant: TenantId::new().as_uuid(),
            issuer: "https://down.example/realms/x".into(),
            audience: "vextrus".into(),
            jwks_url: unreachable,
            roles_claim: "roles".into(),
            role_map: Default::default(),
            subject_claim: "sub".into(),
        },
    ])
    .unwrap();
    let app = spawn_app_with(|config| config.api.oidc = providers).await;

    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": issuer, "aud": "vextrus", "sub": "f:3e1c:karim", "preferred_username": "karim",
        "realm_access": {"roles": ["erp-accountant", "offline_access"]},
        "iat": now, "exp": now + 300
    });
    let sign = |claims: &Value, key: &[u8], kid: &str| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(
            &header,
            claims,
            &jsonwebtoken::EncodingKey::from_ec_der(key),
        )
        .unwrap()
    };
    let me = |token: String| {
        let request = app.client.get(app.url("/v1/auth/me")).bearer_auth(token);
        async move { Reply::from(request.send().await.unwrap()).await }
    };

    let token = sign(&claims, &published_key, "idp-1");
    let reply = me(token.clone()).await.expect(200);
    assert_eq!(reply.body["subject"], "oidc:karim");
    assert_eq!(reply.body["roles"], json!(["accountant"]));
    assert_eq!(
        reply.body["tenant_id"],
        registered_tenant.as_uuid().to_string()
    );
    let caller = Caller {
        app: &app,
        tenant: registered_tenant.as_uuid(),
        token,
    };
    caller.get("/v1/organizations").await.expect(200);
    caller
        .post("/v1/organizations", organization_body("IDP"))
        .await
        .expect(403);

    let mut other_audience = claims.clone();
    other_audience["aud"] = json!("another-app");
    let mut expired = claims.clone();
    expired["exp"] = json!(now - 60);
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    for (case, token, says) in [
        (
            "another audience",
            sign(&other_audience, &published_key, "idp-1"),
            "audience",
        ),
        (
            "expired",
            sign(&expired, &published_key, "idp-1"),
            "expired",
        ),
        (
            "an unpublished key",
            sign(&claims, &other_key, "idp-1"),
            "signature",
        ),
        ("an unknown kid", sign(&claims, &other_key, "idp-2"), "kid"),
        ("HS256", hs256, "not accepted"),
    ] {
        let reply = me(token).await;
        assert_eq!(reply.status, 401, "{case}: {reply:?}");
        assert!(
            reply.body["detail"].as_str().unwrap().contains(says),
            "{case}: {reply:?}"
        );
    }

    // A provider whose keys cannot be fetched: 503 with Retry-After, not a refusal of the user.
    let mut elsewhere = claims.clone();
    elsewhere["iss"] = json!("https://down.example/realms/x");
    let down = me(sign(&elsewhere, &published_key, "idp-1"))
        .await
        .expect(503);
    assert!(down.header("retry-after").is_some());
    assert!(
        down.body["detail"]
            .as_str()
            .unwrap()
            .contains("cannot be fetched")
    );

    // A suspension refuses the provider's tokens too (the tenant registered under the id the
    // provider was configured with).
    use vextrus_domain::identity::{Slug, Tenant, TenantCommand};
    let operator = store(&app).await;
    let metadata = vextrus_commands::CommandMetadata::new(
        vextrus_commands::ActorId::parse(tenants::PLATFORM_OPERATOR).unwrap(),
    );
    operator
        .execute::<Tenant>(
            TenantId::PLATFORM,
            &registered_tenant.as_uuid().to_string(),
            TenantCommand::Register {
                tenant_id: registered_tenant,
                name: vextrus_domain::values::Name::parse("Meghna IdP").unwrap(),
                slug: Slug::parse("meghna-idp").unwrap(),
            },
            &(),
            &metadata,
            None,
        )
        .await
        .unwrap();
    tenants::set_suspended(&operator, registered_tenant, true, "audit")
        .await
        .unwrap();
    let suspended = me(sign(&claims, &published_key, "idp-1")).await.expect(401);
    assert!(
        suspended.body["detail"]
            .as_str()
            .unwrap()
            .contains("suspended")
    );
    app.shutdown().await;
}
