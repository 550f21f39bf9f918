//! External identity providers: a tenant whose company runs Keycloak, Entra ID or another OpenID
//! Connect issuer can have its users call the API with that issuer's access tokens.
//!
//! Each provider is configured for one tenant (`VEXTRUS_OIDC_PROVIDERS`): the issuer (`iss`), the
//! audience the tokens must name (`aud`), the JWKS URL, where the roles are in the token (a
//! dotted claim path such as `realm_access.roles`), how the provider's role names map to ours,
//! and which claim names the user. A token is routed to a provider by its `iss`; its signature
//! is checked with the provider's published key named by `kid` (RS*, PS*, ES256/384 or EdDSA;
//! never a symmetric key, never `none`), then `aud`, `exp` and `nbf` (with the usual leeway).
//! Keys are fetched on first use and cached for ten minutes; a `kid` not in the cache refetches.
//! Fetches are tried at most once every 30 seconds per provider, so a key rotation at the
//! provider is picked up at once, a flood of made-up `kid`s costs one fetch, and a provider that
//! cannot be reached costs one timeout per 30 s (its last keys keep working meanwhile).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;
use uuid::Uuid;
use vextrus_commands::ActorId;
use vextrus_domain::TenantId;
use vextrus_domain::identity::Role;

use crate::auth::{LEEWAY_SECS, Principal};
use crate::error::ApiError;

/// How long fetched keys are used before they are fetched again.
const KEYS_FRESH_FOR: Duration = Duration::from_secs(600);
/// The least time between two fetches of one provider's keys.
const REFETCH_AFTER: Duration = Duration::from_secs(30);
/// How long a JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// One provider, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The tenant whose users the provider signs in.
    pub tenant: Uuid,
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// The `aud` its tokens must name (e.g. the client id registered for Vextrus).
    pub audience: String,
    /// Where its public keys are published (`…/protocol/openid-connect/certs` on Keycloak).
    pub jwks_url: String,
    /// The claim that lists the user's roles, as a dotted path (`roles`, `realm_access.roles`).
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// The provider's role names mapped to ours; names not in the map are taken as they are
    /// when they are one of our roles, else ignored.
    #[serde(default)]
    pub role_map: BTreeMap<String, String>,
    /// The claim that names the user in the audit trail (`sub`, `preferred_username`, `email`).
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
}

fn default_roles_claim() -> String {
    "roles".into()
}

fn default_subject_claim() -> String {
    "sub".into()
}

#[derive(Debug, thiserror::Error)]
pub enum OidcConfigError {
    #[error("not a JSON list of providers: {0}")]
    Json(#[from] serde_json::Error),
    #[error("provider {issuer}: the JWKS URL must be http:// or https://")]
    JwksUrl { issuer: String },
    #[error("provider {issuer}: role {role:?} in role_map is not one of ours")]
    UnknownRole { issuer: String, role: String },
    #[error("two providers have the issuer {0}")]
    DuplicateIssuer(String),
}

/// The configured providers and their key caches. Cheap to clone.
#[derive(Clone, Default)]
pub struct OidcProviders(Arc<HashMap<String, Provider>>);

impl fmt::Debug for OidcProviders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

struct Provider {
    config: ProviderConfig,
    role_map: BTreeMap<String, Role>,
    keys: Mutex<KeyCache>,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    /// The last successful fetch.
    fetched: Option<Instant>,
    /// The last attempt, successful or not: at most one every [`REFETCH_AFTER`], so an
    /// unreachable provider costs one timeout per 30 s, not one per request.
    attempted: Option<Instant>,
}

impl OidcProviders {
    /// The providers of a JSON list of [`ProviderConfig`]s.
    pub fn from_json(text: &str) -> Result<Self, OidcConfigError> {
        let configs: Vec<ProviderConfig> = serde_json::from_str(text)?;
        Self::new(configs)
    }

    pub fn new(configs: Vec<ProviderConfig>) -> Result<Self, OidcConfigError> {
        let mut providers = HashMap::new();
        for config in configs {
            if !(config.jwks_url.starts_with("http://") || config.jwks_url.starts_with("https://"))
            {
                return Err(OidcConfigError::JwksUrl {
                    issuer: config.issuer,
                });
            }
            let mut role_map = BTreeMap::new();
            for (theirs, ours) in &config.role_map {
                let role = ours
                    .parse::<Role>()
                    .map_err(|_| OidcConfigError::UnknownRole {
                        issuer: config.issuer.clone(),
                        role: ours.clone(),
                    })?;
                role_map.insert(theirs.clone(), role);
            }
            let issuer = config.issuer.clone();
            let provider = Provider {
                config,
                role_map,
                keys: Mutex::default(),
            };
            if providers.insert(issuer.clone(), provider).is_some() {
                return Err(OidcConfigError::DuplicateIssuer(issuer));
            }
        }
        Ok(Self(Arc::new(providers)))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The caller `token` proves if its `iss` is a configured provider's; `None` when it is not
    /// (another kind of token).
    pub async fn verify(&self, token: &str) -> Option<Result<Principal, ApiError>> {
        if self.0.is_empty() {
            return None;
        }
        let provider = self.0.get(&unverified_issuer(token)?)?;
        Some(provider.verify(token).await)
    }
}

/// The `iss` a token claims, before anything is verified: only to pick the provider whose key
/// must then verify it.
fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims["iss"].as_str().map(str::to_owned)
}

fn refused(reason: impl Into<String>) -> ApiError {
    ApiError::Unauthenticated(reason.into())
}

/// The algorithms a provider's keys may use: asymmetric only.
fn allowed(algorithm: Algorithm) -> bool {
    matches!(
        algorithm,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
            | Algorithm::ES256
            | Algorithm::ES384
            | Algorithm::EdDSA
    )
}

impl Provider {
    async fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| refused("the token is malformed"))?;
        if !allowed(header.alg) {
            return Err(refused(format!(
                "{:?} tokens are not accepted from an identity provider",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| refused("the token names no signing key (kid)"))?;
        let (key, algorithm) = self.key(&kid).await?;
        if algorithm != header.alg {
            return Err(refused("the token's alg is not its key's"));
        }
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_audience(&[&self.config.audience]);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|error| {
                refused(match error.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired",
                    ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)",
                    ErrorKind::InvalidSignature => "the token's signature is not valid",
                    ErrorKind::InvalidAudience => "the token is meant for another audience (aud)",
                    ErrorKind::InvalidIssuer => "the token was issued by another issuer (iss)",
                    ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim",
                    _ => "the token is malformed",
                })
            })?;
        let subject = claim(&claims, &self.config.subject_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| {
                refused(format!(
                    "the token has no {} claim to name the user",
                    self.config.subject_claim
                ))
            })?;
        let subject = ActorId::parse(&format!("oidc:{subject}"))
            .map_err(|_| refused("the token's user claim is not a valid name"))?;
        let roles = claim(&claims, &self.config.roles_claim)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(|name| {
                self.role_map
                    .get(name)
                    .copied()
                    .or_else(|| name.parse::<Role>().ok())
            })
            .collect();
        Ok(Principal {
            subject,
            tenant: TenantId::from_uuid(self.config.tenant),
            roles,
            scoped_roles: BTreeSet::new(),
            session: None,
        })
    }

    /// The key called `kid`, from the cache or a fresh fetch.
    async fn key(&self, kid: &str) -> Result<(DecodingKey, Algorithm), ApiError> {
        let mut cache = self.keys.lock().await;
        let stale = cache
            .fetched
            .is_none_or(|fetched| fetched.elapsed() > KEYS_FRESH_FOR);
        let may_try = cache
            .attempted
            .is_none_or(|attempted| attempted.elapsed() > REFETCH_AFTER);
        if may_try && (stale || !cache.keys.contains_key(kid)) {
            cache.attempted = Some(Instant::now());
            match self.fetch().await {
                Ok(keys) => {
                    cache.keys = keys;
                    cache.fetched = Some(Instant::now());
                }
                Err(error) => {
                    tracing::warn!(issuer = %self.config.issuer, %error, "fetching the identity provider's keys");
                    if cache.keys.is_empty() {
                        return Err(ApiError::Unavailable(
                            "the identity provider's keys cannot be fetched now".into(),
                        ));
                    }
                }
            }
        }
        cache.keys.get(kid).cloned().ok_or_else(|| {
            refused("the token was signed with a key its issuer does not publish (kid)")
        })
    }

    /// The provider's usable keys by kid.
    async fn fetch(&self) -> Result<HashMap<String, (DecodingKey, Algorithm)>, String> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|error| error.to_string())?;
        let set: JwkSet = client
            .get(&self.config.jwks_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| error.to_string())?
            .json()
            .await
            .map_err(|error| error.to_string())?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
                (AlgorithmParameters::OctetKey(_), _) => continue,
                (_, Some(algorithm)) => match algorithm.to_string().parse::<Algorithm>() {
                    Ok(algorithm) => algorithm,
                    Err(_) => continue,
                },
                (AlgorithmParameters::RSA(_), None) => Algorithm::RS256,
                (AlgorithmParameters::EllipticCurve(params), None) => match params.curve {
                    jsonwebtoken::jwk::EllipticCurve::P256 => Algorithm::ES256,
                    jsonwebtoken::jwk::EllipticCurve::P384 => Algorithm::ES384,
                    _ => continue,
                },
                (AlgorithmParameters::OctetKeyPair(_), None) => Algorithm::EdDSA,
            };
            if !allowed(algorithm) {
                continue;
            }
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, (key, algorithm));
            }
        }
        Ok(keys)
    }
}

/// The value at a dotted path of `claims` (`realm_access.roles`).
fn claim<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(claims, |value, name| value.get(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_are_checked_when_configured() {
        let tenant = Uuid::now_v7();
        let good = format!(
            r#"[{{"tenant": "{tenant}", "issuer": "https://kc.example/realms/meghna",
                 "audience": "vextrus", "jwks_url": "https://kc.example/certs",
                 "roles_claim": "realm_access.roles", "role_map": {{"erp-accountant": "accountant"}}}}]"#
        );
        let providers = OidcProviders::from_json(&good).unwrap();
        assert!(!providers.is_empty());
        let unknown_role = good.replace("\"accountant\"", "\"astronaut\"");
        assert!(matches!(
            OidcProviders::from_json(&unknown_role),
            Err(OidcConfigError::UnknownRole { .. })
        ));
        let bad_url = good.replace("https://kc.example/certs", "ftp://kc.example/certs");
        assert!(matches!(
            OidcProviders::from_json(&bad_url),
            Err(OidcConfigError::JwksUrl { .. })
        ));
        let twice = format!("[{0}, {0}]", &good[1..good.len() - 1]);
        assert!(matches!(
            OidcProviders::from_json(&twice),
            Err(OidcConfigError::DuplicateIssuer(_))
        ));
        assert!(OidcProviders::from_json(r#"[{"issuer": "x"}]"#).is_err());
    }

    #[test]
    fn claims_are_found_by_dotted_path_and_issuers_peeked() {
        let claims = serde_json::json!({"realm_access": {"roles": ["a", "b"]}, "sub": "x"});
        assert_eq!(
            claim(&claims, "realm_access.roles"),
            Some(&serde_json::json!(["a", "b"]))
        );
        assert_eq!(claim(&claims, "nope.roles"), None);
        let payload = URL_SAFE_NO_PAD.encode(r#"{"iss":"https://kc.example/realms/x"}"#);
        assert_eq!(
            unverified_issuer(&format!("e30.{payload}.sig")).as_deref(),
            Some("https://kc.example/realms/x")
        );
        assert_eq!(unverified_issuer("garbage"), None);
    }
}
