//! The HTTP client deliveries are sent with: no redirects followed, no proxy from the
//! environment, and an address guard. A name is resolved by the guard, which hands the
//! connector only addresses the [`AddressPolicy`] permits, so what is checked is what is
//! connected to (DNS rebinding cannot slip a private address in later); a literal address in
//! the URL is checked before the request is made.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::address_policy::AddressPolicy;

/// Resolves names, keeping only permitted addresses.
#[derive(Debug)]
struct GuardedResolver {
    policy: AddressPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| policy.permits(a.ip()))
                .collect();
            if permitted.is_empty() {
                let shown: Vec<String> = found.iter().map(|a| a.ip().to_string()).collect();
                return Err(format!(
                    "refused: {host} resolves only to addresses deliveries may not reach ({})",
                    shown.join(", ")
                )
                .into());
            }
            let addrs: Addrs = Box::new(permitted.into_iter());
            Ok(addrs)
        })
    }
}

/// The delivery client.
pub fn build(policy: AddressPolicy) -> reqwest::Result<reqwest::Client> {
    // reqwest is built without a default TLS provider in this workspace.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .pool_max_idle_per_host(16)
        // Endpoints' answers are read only as a bounded excerpt: never decompressed.
        .no_zstd()
        .user_agent(concat!("brokkr-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Refuses a URL whose host is a literal address the policy does not permit (names are
/// checked by the resolver).
pub fn check_literal(policy: &AddressPolicy, url: &reqwest::Url) -> Result<(), String> {
    let host = url.host_str().unwrap_or_default();
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    match literal.parse::<IpAddr>() {
        Ok(ip) if !policy.permits(ip) => Err(format!(
            "refused: {ip} is an address deliveries may not reach (loopback, private, link-local \
             or otherwise internal; see webhooks.allowed_cidrs)"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_internal_addresses_are_refused() {
        let policy = AddressPolicy::default();
        for url in [
            "http://127.0.0.1:8080/x",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data",
            "http://10.0.0.1/",
        ] {
            let parsed = reqwest::Url::parse(url).unwrap();
            assert!(check_literal(&policy, &parsed).is_err(), "{url}");
        }
        let public = reqwest::Url::parse("https://93.184.216.34/hook").unwrap();
        assert!(check_literal(&policy, &public).is_ok());
        let name = reqwest::Url::parse("https://hooks.example.com/").unwrap();
        assert!(
            check_literal(&policy, &name).is_ok(),
            "names are checked when resolved"
        );
    }

    #[tokio::test]
    async fn names_resolving_to_internal_addresses_are_refused() {
        let resolver = GuardedResolver {
            policy: AddressPolicy::default(),
        };
        let err = resolver
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .expect("localhost is loopback");
        assert!(err.to_string().contains("refused"), "{err}");
        let open = GuardedResolver {
            policy: AddressPolicy::new(vec![
                "127.0.0.0/8".parse().unwrap(),
                "::1/128".parse().unwrap(),
            ]),
        };
        let found: Vec<SocketAddr> = open
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(found.iter().all(|a| a.ip().is_loopback()) && !found.is_empty());
    }
}
