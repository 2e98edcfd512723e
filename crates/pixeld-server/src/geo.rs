//! Approximate location: the country of a client IP address, from the MMDB of the npm package
//! `@ip-location-db/geo-whois-asn-country-mmdb` (CC0/CC BY 4.0, installed by `scripts/setup`).
//! Used to suggest the pricing currency; the address itself is not kept for this.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Where `scripts/setup` puts the country database, relative to the checkout.
pub const SETUP_PATH: &str = ".tools/geoip/node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb";

/// A country lookup; without a database every answer is "unknown".
pub struct GeoIp {
    reader: Option<maxminddb::Reader<Vec<u8>>>,
    source: Option<PathBuf>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("source", &self.source)
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct Record<'a> {
    country_code: &'a str,
}

impl GeoIp {
    /// No database: every lookup is unknown.
    pub fn none() -> Self {
        Self {
            reader: None,
            source: None,
        }
    }

    /// Opens the database at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let reader = maxminddb::Reader::open_readfile(path).map_err(|e| {
            anyhow::anyhow!("cannot read the GeoIP database {}: {e}", path.display())
        })?;
        Ok(Self {
            reader: Some(reader),
            source: Some(path.to_path_buf()),
        })
    }

    /// The configured database, else the one `scripts/setup` installs next to the working
    /// directory, else none (with a warning: currencies then follow the packs' first price).
    pub fn from_config(configured: Option<&Path>) -> anyhow::Result<Self> {
        if let Some(p) = configured {
            return Self::open(p);
        }
        let local = Path::new(SETUP_PATH);
        if local.exists() {
            return Self::open(local);
        }
        tracing::warn!(
            "no GeoIP database (run scripts/setup or set geoip_database): pricing currency is not suggested by country"
        );
        Ok(Self::none())
    }

    /// Whether a database is loaded.
    pub fn is_loaded(&self) -> bool {
        self.reader.is_some()
    }

    /// The ISO 3166-1 alpha-2 country of `ip`, when known.
    pub fn country(&self, ip: IpAddr) -> Option<String> {
        let reader = self.reader.as_ref()?;
        let found = reader.lookup(ip).ok()?;
        let rec: Record<'_> = found.decode().ok()??;
        let cc = rec.country_code.trim().to_ascii_uppercase();
        (cc.len() == 2 && cc.chars().all(|c| c.is_ascii_uppercase())).then_some(cc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The database `scripts/setup` installs; under CI its absence is a failure.
    fn installed() -> Option<GeoIp> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(SETUP_PATH);
        if !path.exists() {
            assert!(
                std::env::var("CI").is_err(),
                "{} is missing: scripts/setup installs it",
                path.display()
            );
            eprintln!("skipping: no GeoIP database (run scripts/setup)");
            return None;
        }
        Some(GeoIp::open(&path).unwrap())
    }

    #[test]
    fn addresses_resolve_to_their_registry_country() {
        let Some(geo) = installed() else { return };
        for (ip, want) in [
            ("8.8.8.8", "US"),
            ("49.44.0.1", "IN"),
            ("2a00:1450:4001::1", "IE"),
        ] {
            assert_eq!(
                geo.country(ip.parse().unwrap()).as_deref(),
                Some(want),
                "{ip}"
            );
        }
        assert_eq!(
            geo.country("127.0.0.1".parse().unwrap()),
            None,
            "loopback has no country"
        );
        assert_eq!(GeoIp::none().country("8.8.8.8".parse().unwrap()), None);
    }
}
