//! The client address recorded with every command: the TCP peer, unless the peer is a proxy the
//! operator trusts (`VEXTRUS_TRUSTED_PROXIES`), in which case `X-Forwarded-For` is followed from
//! the right, past every trusted proxy, to the first address that is not one. Nothing is taken
//! from the header when the peer is not trusted, so a client cannot choose what is recorded.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;

pub const FORWARDED_FOR_HEADER: &str = "x-forwarded-for";

/// An IP network: `10.0.0.0/8`, `fd00::/8`, or a single address (`127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    address: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or network (e.g. 10.0.0.0/8, 127.0.0.1, fd00::/8)")]
pub struct InvalidNetwork(String);

impl FromStr for IpNetwork {
    type Err = InvalidNetwork;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidNetwork(text.to_owned());
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let address: IpAddr = address.parse().map_err(|_| invalid())?;
        let address = address.to_canonical();
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|prefix| *prefix <= bits)
                .ok_or_else(invalid)?,
            None => bits,
        };
        Ok(Self { address, prefix })
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl IpNetwork {
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.address, address.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

/// The address to record for a request from `peer` with `headers`.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNetwork]) -> IpAddr {
    let is_trusted = |address: IpAddr| trusted.iter().any(|network| network.contains(address));
    let mut address = peer.to_canonical();
    if !is_trusted(address) {
        return address;
    }
    // Several headers are one list, in order; the right-most entry is the nearest hop.
    let hops: Vec<&str> = headers
        .get_all(FORWARDED_FOR_HEADER)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    for hop in hops.into_iter().rev() {
        let Ok(hop) = hop.trim().parse::<IpAddr>() else {
            // Garbage from beyond the trusted proxies: keep the last address a proxy vouched for.
            break;
        };
        address = hop.to_canonical();
        if !is_trusted(address) {
            break;
        }
    }
    address
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn networks(list: &[&str]) -> Vec<IpNetwork> {
        list.iter().map(|text| text.parse().unwrap()).collect()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(FORWARDED_FOR_HEADER, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_parse_and_contain() {
        let private = "10.0.0.0/8".parse::<IpNetwork>().unwrap();
        assert!(private.contains(ip("10.1.2.3")));
        assert!(private.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped IPv6");
        assert!(!private.contains(ip("11.0.0.1")));
        assert!(!private.contains(ip("fd00::1")));
        let single = "127.0.0.1".parse::<IpNetwork>().unwrap();
        assert!(single.contains(ip("127.0.0.1")) && !single.contains(ip("127.0.0.2")));
        let v6 = "fd00::/8".parse::<IpNetwork>().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(
            "0.0.0.0/0"
                .parse::<IpNetwork>()
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        for bad in ["", "10.0.0.0/33", "10.0.0.0/x", "example.com", "::/129"] {
            assert!(bad.parse::<IpNetwork>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_header_counts_only_behind_a_trusted_proxy() {
        let trusted = networks(&["10.0.0.0/8"]);
        let headers = forwarded(&["203.0.113.7, 10.0.0.5"]);
        // An untrusted peer: the header is ignored.
        assert_eq!(
            client_address(ip("198.51.100.1"), &headers, &trusted),
            ip("198.51.100.1")
        );
        // Behind two trusted proxies, the first untrusted hop from the right.
        assert_eq!(
            client_address(ip("10.0.0.9"), &headers, &trusted),
            ip("203.0.113.7")
        );
        // A client's own claim to the left of its real address is not believed.
        let spoofed = forwarded(&["1.1.1.1", "203.0.113.7"]);
        assert_eq!(
            client_address(ip("10.0.0.9"), &spoofed, &trusted),
            ip("203.0.113.7")
        );
        // No header, or garbage in it: the last address a trusted proxy vouched for.
        assert_eq!(
            client_address(ip("10.0.0.9"), &HeaderMap::new(), &trusted),
            ip("10.0.0.9")
        );
        assert_eq!(
            client_address(
                ip("10.0.0.9"),
                &forwarded(&["nonsense, 10.0.0.5"]),
                &trusted
            ),
            ip("10.0.0.5")
        );
        // Nothing trusted (the default): always the peer.
        assert_eq!(
            client_address(ip("10.0.0.9"), &headers, &[]),
            ip("10.0.0.9")
        );
    }
}
