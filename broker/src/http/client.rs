//! Who the client is: the peer address, unless the peer is a trusted proxy
//! (`broker.trusted_proxies`), in which case the right-most `X-Forwarded-For` entry that is not
//! a trusted proxy. IPv6 clients are keyed by their /64, since one host holds a whole /64.

use std::net::{IpAddr, Ipv6Addr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Resolves client addresses.
#[derive(Debug, Clone, Default)]
pub struct ClientAddresses {
    trusted: Vec<IpNet>,
}

impl ClientAddresses {
    pub fn new(trusted: Vec<IpNet>) -> Self {
        Self { trusted }
    }

    fn is_trusted(&self, address: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&address))
    }

    /// The client of a request that arrived from `peer`, as the key failures are counted by.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        key(self.resolve(peer, headers))
    }

    fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut nearest = peer;
        for entry in entries.iter().rev() {
            // Anything unreadable is the client's own making: the last proxy's word stands.
            let Ok(address) = entry.parse::<IpAddr>() else {
                return nearest;
            };
            if !self.is_trusted(address) {
                return address;
            }
            nearest = address;
        }
        nearest
    }
}

/// IPv4 addresses as they are; IPv6 addresses cut to their /64.
fn key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn forwarded(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static(value));
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_trusted_proxies_speak_for_clients() {
        let none = ClientAddresses::default();
        let spoofed = forwarded("1.2.3.4");
        assert_eq!(none.client(ip("10.0.0.9"), &spoofed), ip("10.0.0.9"));
        let proxies = ClientAddresses::new(vec!["10.0.0.0/8".parse().unwrap()]);
        assert_eq!(proxies.client(ip("10.0.0.9"), &spoofed), ip("1.2.3.4"));
        // The client put a fake entry first; the proxies appended the real one.
        let chain = forwarded("6.6.6.6, 1.2.3.4, 10.0.0.7");
        assert_eq!(proxies.client(ip("10.0.0.9"), &chain), ip("1.2.3.4"));
        assert_eq!(proxies.client(ip("192.0.2.1"), &chain), ip("192.0.2.1"));
        let garbage = forwarded("1.2.3.4, not-an-ip");
        assert_eq!(proxies.client(ip("10.0.0.9"), &garbage), ip("10.0.0.9"));
        assert_eq!(
            proxies.client(ip("10.0.0.9"), &HeaderMap::new()),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let none = ClientAddresses::default();
        let a = none.client(ip("2001:db8:1:2:aaaa::1"), &HeaderMap::new());
        let b = none.client(ip("2001:db8:1:2:bbbb::2"), &HeaderMap::new());
        assert_eq!(a, b);
        assert_eq!(a, ip("2001:db8:1:2::"));
        assert_eq!(
            none.client(ip("::ffff:1.2.3.4"), &HeaderMap::new()),
            ip("1.2.3.4")
        );
    }
}
