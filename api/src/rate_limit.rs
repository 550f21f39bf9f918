//! Request rate limits: per client address on every route, a stricter one per address on the
//! routes that take a password or a one-time secret, and per tenant for authenticated requests.
//!
//! Each is a token bucket (`governor`; the address limits through `tower_governor`): "100/s"
//! admits a burst of 100 and refills one every 10 ms. A refused request gets 429 problem+json
//! with `Retry-After`. The client address is the one recorded with commands
//! ([`crate::client_address`]: the peer, or `X-Forwarded-For` behind trusted proxies), so a
//! proxy in front does not put every user in one bucket. Counters live in the process: with
//! several API processes behind a balancer, each enforces its own share.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::IntoResponse;
use governor::clock::{Clock, DefaultClock, QuantaInstant};
use governor::middleware::NoOpMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tower_governor::GovernorError;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::KeyExtractor;
use uuid::Uuid;

use crate::client_address::{IpNetwork, client_address};
use crate::error::ApiError;

/// One limit: `count` requests per `period`, in bursts of up to `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: NonZeroU32,
    pub period: Duration,
}

impl RateLimit {
    /// The time one request's token takes to come back.
    fn interval(&self) -> Duration {
        self.period / self.count.get()
    }

    fn quota(&self) -> Option<Quota> {
        Quota::with_period(self.interval()).map(|quota| quota.allow_burst(self.count))
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.period.as_secs() {
            1 => "s",
            60 => "min",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// A limit as configured: `<count>/s`, `<count>/min` or `<count>/h`, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSetting(pub Option<RateLimit>);

impl FromStr for LimitSetting {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.trim() == "off" {
            return Ok(Self(None));
        }
        let invalid =
            || format!("{text:?} is not a rate limit such as 100/s, 20/min, 500/h or off");
        let (count, unit) = text.trim().split_once('/').ok_or_else(invalid)?;
        let count: NonZeroU32 = count.trim().parse().map_err(|_| invalid())?;
        let period = match unit.trim() {
            "s" => Duration::from_secs(1),
            "min" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(invalid()),
        };
        if count.get() > 1_000_000 {
            return Err(invalid());
        }
        Ok(Self(Some(RateLimit { count, period })))
    }
}

/// The three limits; `None` turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Every request, per client address.
    pub client: Option<RateLimit>,
    /// Sign-in, refresh, invitations, password changes and resets, per client address (on top of
    /// the first).
    pub auth: Option<RateLimit>,
    /// Authenticated requests, per tenant.
    pub tenant: Option<RateLimit>,
}

impl RateLimits {
    pub const DEFAULT_CLIENT: &str = "200/s";
    pub const DEFAULT_AUTH: &str = "30/min";
    pub const DEFAULT_TENANT: &str = "500/s";

    /// No limits (benchmarks that drive the API in process).
    pub fn off() -> Self {
        Self {
            client: None,
            auth: None,
            tenant: None,
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        let parse = |text: &str| text.parse::<LimitSetting>().ok().and_then(|limit| limit.0);
        Self {
            client: parse(Self::DEFAULT_CLIENT),
            auth: parse(Self::DEFAULT_AUTH),
            tenant: parse(Self::DEFAULT_TENANT),
        }
    }
}

/// The key of the address limits: the client address as the audit trail records it.
#[derive(Debug, Clone)]
pub struct ClientKey {
    trusted_proxies: Arc<Vec<IpNetwork>>,
}

impl KeyExtractor for ClientKey {
    type Key = IpAddr;

    fn extract<T>(&self, request: &Request<T>) -> Result<IpAddr, GovernorError> {
        // A router driven in process (no socket) has no peer: one bucket for all of it.
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(peer)| {
                peer.ip()
            });
        Ok(client_address(
            peer,
            request.headers(),
            &self.trusted_proxies,
        ))
    }
}

/// The layer of one address limit.
pub type ClientLimitLayer =
    tower_governor::GovernorLayer<ClientKey, NoOpMiddleware<QuantaInstant>, Body>;

/// The layer enforcing `limit` per client address, refusing with our problem+json.
pub fn client_layer(limit: RateLimit, trusted_proxies: &[IpNetwork]) -> Option<ClientLimitLayer> {
    let config = GovernorConfigBuilder::default()
        .period(limit.interval())
        .burst_size(limit.count.get())
        .key_extractor(ClientKey {
            trusted_proxies: Arc::new(trusted_proxies.to_vec()),
        })
        .finish()?;
    let config = Arc::new(config);
    forget_idle_keys(Arc::downgrade(&config), |config| {
        config.limiter().retain_recent();
    });
    Some(
        tower_governor::GovernorLayer::new(config).error_handler(|error| {
            match error {
                GovernorError::TooManyRequests { wait_time, .. } => ApiError::TooManyRequests {
                    detail: "too many requests from this address; slow down".into(),
                    retry_after_secs: wait_time.max(1),
                },
                other => ApiError::Internal(format!("rate limiting: {other}")),
            }
            .into_response()
        }),
    )
}

/// The per-tenant limit.
#[derive(Debug)]
pub struct TenantLimiter {
    limiter: DefaultKeyedRateLimiter<Uuid>,
}

impl TenantLimiter {
    pub fn new(limit: RateLimit) -> Option<Arc<Self>> {
        let limiter = Arc::new(Self {
            limiter: RateLimiter::keyed(limit.quota()?),
        });
        forget_idle_keys(Arc::downgrade(&limiter), |limiter| {
            limiter.limiter.retain_recent();
        });
        Some(limiter)
    }

    /// Takes one request of `tenant`'s budget, or 429.
    pub fn check(&self, tenant: Uuid) -> Result<(), ApiError> {
        self.limiter.check_key(&tenant).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::TooManyRequests {
                detail: "too many requests for this tenant; slow down".into(),
                retry_after_secs: wait.as_secs().max(1),
            }
        })
    }
}

/// Drops the buckets of keys that have been idle long enough to be full again, once a minute,
/// while `limiter` lives (a long-running server sees many addresses).
fn forget_idle_keys<T: Send + Sync + 'static>(limiter: Weak<T>, retain: fn(&T)) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(limiter) = limiter.upgrade() else {
                return;
            };
            retain(&limiter);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_with_their_unit_and_off() {
        let limit = |text: &str| text.parse::<LimitSetting>().map(|setting| setting.0);
        let hundred = limit("100/s").unwrap().unwrap();
        assert_eq!(hundred.interval(), Duration::from_millis(10));
        assert_eq!(hundred.to_string(), "100/s");
        assert_eq!(
            limit("30/min").unwrap().unwrap().interval(),
            Duration::from_secs(2)
        );
        assert_eq!(limit("off").unwrap(), None);
        for bad in ["", "100", "0/s", "-1/s", "10/day", "x/s", "2000000/s"] {
            assert!(limit(bad).is_err(), "{bad}");
        }
        let defaults = RateLimits::default();
        assert!(defaults.client.is_some() && defaults.auth.is_some() && defaults.tenant.is_some());
    }

    #[tokio::test]
    async fn a_tenant_gets_its_burst_then_429_with_a_wait_and_others_are_untouched() {
        let limit = limit_of("3/min");
        let limiter = TenantLimiter::new(limit).unwrap();
        let (busy, quiet) = (Uuid::now_v7(), Uuid::now_v7());
        for _ in 0..3 {
            limiter.check(busy).unwrap();
        }
        match limiter.check(busy) {
            Err(ApiError::TooManyRequests {
                retry_after_secs, ..
            }) => assert!((1..=20).contains(&retry_after_secs), "{retry_after_secs}"),
            other => panic!("{other:?}"),
        }
        limiter.check(quiet).unwrap();
    }

    fn limit_of(text: &str) -> RateLimit {
        text.parse::<LimitSetting>().unwrap().0.unwrap()
    }
}
