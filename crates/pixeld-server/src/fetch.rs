//! SSRF-safe fetching of user-supplied URLs: only http(s); every address a host resolves to is
//! checked before connecting (loopback, private, link-local, cloud metadata, CGNAT, multicast
//! and other special ranges are refused unless allow-listed); at most three redirects, each
//! checked the same way; capped in time and bytes.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ipnet::IpNet;
use pixeld_core::Error;
use pixeld_core::objects::{Fetched, Fetcher, Posted};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::config::FetchConfig;

/// Ranges never fetched from unless allow-listed.
const FORBIDDEN: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "::1/128",
    "64:ff9b::/96",
    "100::/64",
    "2001::/32",
    "2001:db8::/32",
    "2002::/16",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

#[derive(Debug, Clone)]
struct Policy {
    forbidden: Arc<Vec<IpNet>>,
    allowed: Arc<Vec<IpNet>>,
}

impl Policy {
    fn permits(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped IPv6 address is judged as the IPv4 address it carries.
        let ip = match ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        self.allowed.iter().any(|n| n.contains(&ip))
            || !self.forbidden.iter().any(|n| n.contains(&ip))
    }
}

#[derive(Debug, Clone)]
struct GuardedResolver(Policy);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(format!("{host} does not resolve").into());
            }
            // Refuse if any address is forbidden: a name that mixes public and private
            // addresses is an attack, not a mistake.
            if let Some(bad) = addrs.iter().find(|a| !policy.permits(a.ip())) {
                return Err(format!(
                    "{host} resolves to {}, a private or reserved address",
                    bad.ip()
                )
                .into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The [`Fetcher`] used by the server.
pub struct SafeFetcher {
    client: reqwest::Client,
    policy: Policy,
    max_redirects: usize,
}

impl SafeFetcher {
    /// Builds the client from the configuration.
    pub fn new(c: &FetchConfig) -> anyhow::Result<Self> {
        // reqwest is built without a bundled TLS provider; make sure ring is the one in use.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let parse = |list: &[String]| -> anyhow::Result<Vec<IpNet>> {
            list.iter()
                .map(|s| {
                    s.parse::<IpNet>()
                        .map_err(|e| anyhow::anyhow!("network `{s}`: {e}"))
                })
                .collect()
        };
        let policy = Policy {
            forbidden: Arc::new(parse(
                &FORBIDDEN.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )?),
            allowed: Arc::new(parse(&c.allow_networks)?),
        };
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver(policy.clone())))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(c.timeout_secs))
            .connect_timeout(Duration::from_secs(c.timeout_secs.min(10)))
            .user_agent(concat!("pixeld/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .build()?;
        Ok(Self {
            client,
            policy,
            max_redirects: c.max_redirects,
        })
    }

    fn check_url(&self, url: &url::Url) -> Result<(), Error> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::Fetch(format!(
                "only http and https URLs can be fetched, not {}:",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::Fetch("URLs with credentials are not fetched".into()));
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(Error::Fetch("the URL has no host".into())),
        };
        // Literal addresses never reach the resolver, so they are checked here.
        if let Some(ip) = ip
            && !self.policy.permits(ip)
        {
            return Err(Error::Fetch(format!(
                "{ip} is a private or reserved address"
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl Fetcher for SafeFetcher {
    async fn fetch(&self, url: &str, max_bytes: u64) -> pixeld_core::Result<Fetched> {
        let mut current = url::Url::parse(url)
            .map_err(|e| Error::invalid("url", format!("is not a URL: {e}")))?;
        for hop in 0..=self.max_redirects {
            self.check_url(&current)?;
            let resp = self
                .client
                .get(current.clone())
                .send()
                .await
                .map_err(|e| Error::Fetch(describe(&e)))?;
            let status = resp.status();
            if status.is_redirection() {
                if hop == self.max_redirects {
                    return Err(Error::Fetch(format!(
                        "more than {} redirects",
                        self.max_redirects
                    )));
                }
                let location = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| Error::Fetch(format!("{status} without a Location")))?;
                current = current
                    .join(location)
                    .map_err(|e| Error::Fetch(format!("bad redirect target: {e}")))?;
                continue;
            }
            if !status.is_success() {
                return Err(Error::Fetch(format!("the server answered {status}")));
            }
            if resp.content_length().is_some_and(|n| n > max_bytes) {
                return Err(Error::Fetch(format!(
                    "the image is larger than {max_bytes} bytes"
                )));
            }
            let final_url = resp.url().to_string();
            let mut resp = resp;
            let mut bytes = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| Error::Fetch(describe(&e)))? {
                if (bytes.len() + chunk.len()) as u64 > max_bytes {
                    return Err(Error::Fetch(format!(
                        "the image is larger than {max_bytes} bytes"
                    )));
                }
                bytes.extend_from_slice(&chunk);
            }
            return Ok(Fetched { bytes, final_url });
        }
        Err(Error::Fetch(format!(
            "more than {} redirects",
            self.max_redirects
        )))
    }

    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> pixeld_core::Result<Posted> {
        let url = url::Url::parse(url).map_err(|e| Error::Fetch(format!("not a URL: {e}")))?;
        self.check_url(&url)?;
        let mut req = self.client.post(url).timeout(timeout).body(body);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let mut resp = req.send().await.map_err(|e| Error::Fetch(describe(&e)))?;
        let status = resp.status().as_u16();
        // Only the start of the answer is kept; the rest is not read.
        let mut head = Vec::new();
        while head.len() < 1024 {
            match resp.chunk().await {
                Ok(Some(c)) => head.extend_from_slice(&c),
                _ => break,
            }
        }
        head.truncate(1024);
        Ok(Posted {
            status,
            excerpt: String::from_utf8_lossy(&head).into_owned(),
        })
    }
}

fn describe(e: &reqwest::Error) -> String {
    // The innermost cause says what happened (e.g. our resolver's refusal).
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = s.to_string();
        src = s.source();
    }
    if e.is_timeout() {
        "the fetch timed out".into()
    } else {
        format!("could not fetch the URL: {msg}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetcher(allow: &[&str]) -> SafeFetcher {
        SafeFetcher::new(&FetchConfig {
            allow_networks: allow.iter().map(|s| s.to_string()).collect(),
            ..FetchConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn private_and_special_addresses_are_refused_unless_allow_listed() {
        let f = fetcher(&[]);
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!f.policy.permits(ip.parse().unwrap()), "{ip} permitted");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(f.policy.permits(ip.parse().unwrap()), "{ip} refused");
        }
        let f = fetcher(&["127.0.0.1/32"]);
        assert!(f.policy.permits("127.0.0.1".parse().unwrap()));
        assert!(!f.policy.permits("127.0.0.2".parse().unwrap()));
    }

    #[test]
    fn only_plain_http_urls_without_credentials_pass_the_url_check() {
        let f = fetcher(&[]);
        let check = |u: &str| f.check_url(&url::Url::parse(u).unwrap());
        assert!(check("https://example.com/a.jpg").is_ok());
        assert!(check("file:///etc/passwd").is_err());
        assert!(check("ftp://example.com/a.jpg").is_err());
        assert!(check("http://user:pw@example.com/").is_err());
        assert!(check("http://[::1]:8080/").is_err());
        assert!(check("http://169.254.169.254/latest/meta-data/").is_err());
    }
}
