//! The retention classes: what pixeld keeps, for how long, and what happens then.
//!
//! They are declared once, in `data/privacy.toml` (compiled in; an operator may replace it),
//! and read into a [`Retention`]. The sweeper takes every window from here and `/privacy`
//! prints every window from here, so the page and the behaviour cannot disagree.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::Duration;

/// The compiled-in declaration.
pub const DEFAULT_PRIVACY_TOML: &str = include_str!("../data/privacy.toml");

/// Every data class the sweeper knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataClass {
    /// The account itself (kept while it exists).
    Account,
    /// Accounts whose owner asked for deletion (the grace period).
    DeletedAccounts,
    /// Uploaded images and their outputs.
    Uploads,
    /// Image processing log rows.
    ProcessingLogs,
    /// The API request (usage) log.
    RequestLogs,
    /// Sign-in sessions (deleted when they end).
    Sessions,
    /// Tokens behind emailed links.
    OneTimeTokens,
    /// Copies of outgoing email in the outbox folder.
    EmailOutbox,
    /// Rendered images kept for repeated renders.
    RenderCache,
    /// Outcomes of async renders.
    RenderJobs,
    /// The webhook delivery log.
    WebhookDeliveries,
    /// Finished job-queue entries.
    Jobs,
    /// Stored `Idempotency-Key` answers.
    IdempotencyKeys,
    /// Events received from payment providers.
    PaymentEvents,
    /// Orders, invoices and ledger entries.
    FinancialRecords,
    /// Data exports made for their owner.
    Exports,
    /// Raw cookieless analytics events.
    AnalyticsEvents,
    /// The daily salts of the analytics visitor hash.
    AnalyticsSalts,
    /// Support requests and their messages.
    Support,
}

impl DataClass {
    /// Every class, in the order `privacy.toml` lists them.
    pub const ALL: [DataClass; 19] = [
        DataClass::Account,
        DataClass::DeletedAccounts,
        DataClass::Uploads,
        DataClass::ProcessingLogs,
        DataClass::RequestLogs,
        DataClass::Sessions,
        DataClass::OneTimeTokens,
        DataClass::EmailOutbox,
        DataClass::RenderCache,
        DataClass::RenderJobs,
        DataClass::WebhookDeliveries,
        DataClass::Jobs,
        DataClass::IdempotencyKeys,
        DataClass::PaymentEvents,
        DataClass::FinancialRecords,
        DataClass::Exports,
        DataClass::AnalyticsEvents,
        DataClass::AnalyticsSalts,
        DataClass::Support,
    ];

    /// The id used in `privacy.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            DataClass::Account => "account",
            DataClass::DeletedAccounts => "deleted_accounts",
            DataClass::Uploads => "uploads",
            DataClass::ProcessingLogs => "processing_logs",
            DataClass::RequestLogs => "request_logs",
            DataClass::Sessions => "sessions",
            DataClass::OneTimeTokens => "one_time_tokens",
            DataClass::EmailOutbox => "email_outbox",
            DataClass::RenderCache => "render_cache",
            DataClass::RenderJobs => "render_jobs",
            DataClass::WebhookDeliveries => "webhook_deliveries",
            DataClass::Jobs => "jobs",
            DataClass::IdempotencyKeys => "idempotency_keys",
            DataClass::PaymentEvents => "payment_events",
            DataClass::FinancialRecords => "financial_records",
            DataClass::Exports => "exports",
            DataClass::AnalyticsEvents => "analytics_events",
            DataClass::AnalyticsSalts => "analytics_salts",
            DataClass::Support => "support",
        }
    }

    /// Classes whose rows must have a window (the sweeper deletes by age).
    fn needs_window(self) -> bool {
        !matches!(self, DataClass::Account | DataClass::Sessions)
    }
}

/// A length of time as written in `privacy.toml`: a whole number and `h`, `d` or `y`
/// (365.25 days, rounded up to whole days, so 7 y is 2557 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The number.
    pub count: i64,
    /// `h`, `d` or `y`.
    pub unit: char,
}

impl Window {
    /// Parses `24h`, `90d`, `7y`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (n, unit) = s.split_at(s.len().saturating_sub(1));
        let unit = unit.chars().next().unwrap_or(' ');
        let count: i64 = n
            .parse()
            .map_err(|_| format!("`{s}` is not a number followed by h, d or y"))?;
        if !matches!(unit, 'h' | 'd' | 'y') {
            return Err(format!("`{s}`: the unit must be h, d or y"));
        }
        if !(1..=100_000).contains(&count) {
            return Err(format!("`{s}`: must be at least 1 and at most 100000"));
        }
        Ok(Self { count, unit })
    }

    /// The window as a duration.
    pub fn duration(self) -> Duration {
        match self.unit {
            'h' => Duration::hours(self.count),
            'd' => Duration::days(self.count),
            // 365.25 days a year, rounded up to whole days: 7 y is 2557 days.
            _ => Duration::days((self.count * 36_525 + 99) / 100),
        }
    }

    /// For people: "24 hours", "90 days", "7 years".
    pub fn human(self) -> String {
        let word = match (self.unit, self.count) {
            ('h', 1) => "hour",
            ('h', _) => "hours",
            ('d', 1) => "day",
            ('d', _) => "days",
            (_, 1) => "year",
            _ => "years",
        };
        format!("{} {word}", self.count)
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.count, self.unit)
    }
}

impl Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Window::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One class as declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassPolicy {
    /// Which class.
    pub id: DataClass,
    /// Its name, for people.
    pub name: String,
    /// What it holds.
    pub what: String,
    /// Why it is kept.
    pub why: String,
    /// How long (absent: while the account exists).
    #[serde(default)]
    pub keep: Option<Window>,
    /// Request logs only: when the IP address is cut to its network.
    #[serde(default)]
    pub truncate_ip_after: Option<Window>,
    /// What happens when the window ends.
    pub then: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    policy_version: String,
    #[serde(default, rename = "class")]
    classes: Vec<ClassPolicy>,
}

/// The retention classes in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Retention {
    /// The policy's version (printed on `/privacy`, recorded with consents).
    pub policy_version: String,
    classes: BTreeMap<DataClass, ClassPolicy>,
}

impl Default for Retention {
    fn default() -> Self {
        Self::parse(DEFAULT_PRIVACY_TOML).expect("the compiled-in privacy.toml is valid")
    }
}

impl Retention {
    /// Reads a declaration. Every class must be present (the compiled-in file) — use
    /// [`Retention::with_overrides`] for an operator's file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut classes = BTreeMap::new();
        for c in file.classes {
            let id = c.id;
            if classes.insert(id, c).is_some() {
                return Err(format!("class `{}` is declared twice", id.as_str()));
            }
        }
        for c in DataClass::ALL {
            if !classes.contains_key(&c) {
                return Err(format!("class `{}` is missing", c.as_str()));
            }
        }
        let r = Self {
            policy_version: file.policy_version,
            classes,
        };
        r.validate()?;
        Ok(r)
    }

    /// The compiled-in classes with those declared in `text` replacing theirs.
    pub fn with_overrides(text: &str) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut r = Self {
            policy_version: file.policy_version,
            ..Self::default()
        };
        for c in file.classes {
            r.classes.insert(c.id, c);
        }
        r.validate()?;
        Ok(r)
    }

    fn validate(&self) -> Result<(), String> {
        let mut errors = Vec::new();
        for c in self.classes.values() {
            if c.id.needs_window() && c.keep.is_none() {
                errors.push(format!("class `{}` needs `keep`", c.id.as_str()));
            }
            if c.truncate_ip_after.is_some() && c.id != DataClass::RequestLogs {
                errors.push(format!(
                    "class `{}`: only request_logs has truncate_ip_after",
                    c.id.as_str()
                ));
            }
        }
        if self.window(DataClass::Uploads) > Duration::hours(24) {
            errors.push(
                "class `uploads`: keep must be at most 24h (uploads are deleted within 24 hours)"
                    .into(),
            );
        }
        if self.window(DataClass::DeletedAccounts) > Duration::days(30) {
            errors.push("class `deleted_accounts`: keep must be at most 30d (accounts are deleted within 30 days of the request)".into());
        }
        if self.window(DataClass::AnalyticsSalts) > Duration::hours(48) {
            errors.push("class `analytics_salts`: keep must be at most 48h (a visitor cannot be followed across days)".into());
        }
        let logs = &self.classes[&DataClass::RequestLogs];
        match logs.truncate_ip_after {
            None => errors.push("class `request_logs` needs `truncate_ip_after`".into()),
            Some(t) if Some(t.duration()) > logs.keep.map(Window::duration) => {
                errors.push(
                    "class `request_logs`: truncate_ip_after cannot be longer than keep".into(),
                );
            }
            Some(_) => {}
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// A class as declared.
    pub fn class(&self, c: DataClass) -> &ClassPolicy {
        &self.classes[&c]
    }

    /// Every class, in declaration order.
    pub fn classes(&self) -> impl Iterator<Item = &ClassPolicy> {
        DataClass::ALL.into_iter().map(|c| &self.classes[&c])
    }

    /// How long the class is kept (a class kept while the account exists answers the longest
    /// representable window; the sweeper never asks for those).
    pub fn window(&self, c: DataClass) -> Duration {
        self.classes[&c]
            .keep
            .map(Window::duration)
            .unwrap_or(Duration::MAX)
    }

    /// When request-log IP addresses are cut to their network.
    pub fn ip_truncation(&self) -> Duration {
        self.classes[&DataClass::RequestLogs]
            .truncate_ip_after
            .map(Window::duration)
            .unwrap_or(Duration::days(7))
    }

    /// Shortens (or sets) a class's window, e.g. from the operator's configuration.
    pub fn set_window(&mut self, c: DataClass, w: Window) -> Result<(), String> {
        if let Some(p) = self.classes.get_mut(&c) {
            p.keep = Some(w);
        }
        self.validate()
    }
}

/// An IP address cut to its network: /24 for IPv4, /48 for IPv6 (`None` for text that is not
/// an address).
pub fn truncate_ip(ip: &str) -> Option<String> {
    match ip.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            Some(format!("{}.{}.{}.0/24", o[0], o[1], o[2]))
        }
        std::net::IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                let o = v4.octets();
                return Some(format!("{}.{}.{}.0/24", o[0], o[1], o[2]));
            }
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            Some(format!("{net}/48"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_declaration_parses_and_states_the_promised_windows() {
        let r = Retention::default();
        assert_eq!(r.window(DataClass::Uploads), Duration::hours(24));
        assert_eq!(r.window(DataClass::ProcessingLogs), Duration::days(90));
        assert_eq!(r.window(DataClass::RequestLogs), Duration::days(90));
        assert_eq!(r.ip_truncation(), Duration::days(7));
        assert_eq!(r.window(DataClass::DeletedAccounts), Duration::days(30));
        assert_eq!(r.window(DataClass::FinancialRecords), Duration::days(2557));
        assert_eq!(r.window(DataClass::EmailOutbox), Duration::days(7));
        assert_eq!(r.classes().count(), DataClass::ALL.len());
    }

    #[test]
    fn an_operator_file_replaces_only_the_classes_it_names() {
        let r = Retention::with_overrides(
            "policy_version = \"acme-1\"\n[[class]]\nid = \"request_logs\"\nname = \"Logs\"\n\
             what = \"w\"\nwhy = \"y\"\nkeep = \"30d\"\ntruncate_ip_after = \"1d\"\nthen = \"t\"\n",
        )
        .unwrap();
        assert_eq!(r.policy_version, "acme-1");
        assert_eq!(r.window(DataClass::RequestLogs), Duration::days(30));
        assert_eq!(r.ip_truncation(), Duration::days(1));
        assert_eq!(r.window(DataClass::Uploads), Duration::hours(24));
    }

    #[test]
    fn a_declaration_breaking_a_promise_is_refused() {
        let long_uploads = "policy_version = \"x\"\n[[class]]\nid = \"uploads\"\nname = \"U\"\n\
                            what = \"w\"\nwhy = \"y\"\nkeep = \"2d\"\nthen = \"t\"\n";
        let e = Retention::with_overrides(long_uploads).unwrap_err();
        assert!(e.contains("at most 24h"), "{e}");
        let truncate_late = "policy_version = \"x\"\n[[class]]\nid = \"request_logs\"\nname = \"L\"\n\
                             what = \"w\"\nwhy = \"y\"\nkeep = \"7d\"\ntruncate_ip_after = \"30d\"\nthen = \"t\"\n";
        let e = Retention::with_overrides(truncate_late).unwrap_err();
        assert!(e.contains("cannot be longer"), "{e}");
        assert!(Window::parse("12").is_err());
        assert!(Window::parse("0d").is_err());
        assert!(Window::parse("3w").is_err());
    }

    #[test]
    fn ip_addresses_are_cut_to_slash_24_and_slash_48() {
        assert_eq!(truncate_ip("203.0.113.77").unwrap(), "203.0.113.0/24");
        assert_eq!(
            truncate_ip("2001:db8:abcd:12:1:2:3:4").unwrap(),
            "2001:db8:abcd::/48"
        );
        assert_eq!(
            truncate_ip("::ffff:198.51.100.9").unwrap(),
            "198.51.100.0/24"
        );
        assert_eq!(truncate_ip("not an ip"), None);
    }
}
