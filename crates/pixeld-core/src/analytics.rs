//! Cookieless analytics for the website and dashboard: page views and feature events, counted
//! without cookies or any stored identifier.
//!
//! A visitor is `SHA-256(daily salt, site, IP address, user agent)`, cut to 16 bytes. The salt is
//! random, changes every UTC day and is deleted after 48 hours (the `analytics_salts` class), so
//! the same person is a different visitor every day and nobody — operators included — can link
//! the days or recover an address. Only the hash, the page or event name, the referrer's host,
//! the approximate country and a device class are kept, and raw events are pruned after 30 days
//! (`analytics_events`). Reports are aggregates only. `DNT: 1`, `Sec-GPC: 1`, a user's objection
//! to analytics and the restriction switch all mean: not counted.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::consent::Objection;
use crate::principal::Principal;
use crate::tokens::Scope;
use crate::{Error, Pixeld, Result};

/// Sites that count.
pub const SITES: [&str; 2] = ["website", "dashboard"];
/// The longest page or event name kept.
pub const MAX_NAME: usize = 200;

/// One event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyticsEvent {
    /// UUIDv7.
    pub id: Uuid,
    /// When.
    pub at: OffsetDateTime,
    /// `website` or `dashboard`.
    pub site: String,
    /// `pageview` or `event`.
    pub kind: String,
    /// The page path (no query string) or the event name.
    pub name: String,
    /// The referrer's host, when another site.
    pub referrer: Option<String>,
    /// ISO country code.
    pub country: Option<String>,
    /// `desktop`, `mobile`, `tablet` or `bot`.
    pub device: String,
    /// The day's visitor hash (hex).
    pub visitor: String,
}

/// What a page or script reports.
#[derive(Debug, Clone)]
pub struct Hit {
    /// `website` or `dashboard`.
    pub site: String,
    /// `pageview` or `event`.
    pub kind: String,
    /// Page path or event name.
    pub name: String,
    /// The `Referer` (a URL), if any.
    pub referrer: Option<String>,
}

/// Where a hit came from (never stored as such).
#[derive(Debug, Clone, Default)]
pub struct HitSource {
    /// The client address.
    pub ip: Option<String>,
    /// The `User-Agent`.
    pub user_agent: Option<String>,
    /// The approximate country.
    pub country: Option<String>,
    /// `DNT: 1` or `Sec-GPC: 1` was sent.
    pub do_not_track: bool,
    /// The signed-in user, if the request carried a session.
    pub user_id: Option<Uuid>,
    /// This site's own host, so internal referrers are not counted as referrers.
    pub own_host: Option<String>,
}

/// A count of views and visitors under one key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Count {
    /// The page, referrer, country or device.
    pub key: String,
    /// Hits.
    pub views: i64,
    /// Distinct visitors, summed over days (the same person on two days counts twice, by design).
    pub visitors: i64,
}

/// The aggregate report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Page views.
    pub views: i64,
    /// Feature events.
    pub events: i64,
    /// Distinct visitors per day, summed.
    pub visitors: i64,
    /// Pages by views.
    pub top_pages: Vec<Count>,
    /// Feature events by count.
    pub top_events: Vec<Count>,
    /// Referring hosts.
    pub referrers: Vec<Count>,
    /// Countries.
    pub countries: Vec<Count>,
    /// Device classes.
    pub devices: Vec<Count>,
}

/// `desktop`, `mobile`, `tablet` or `bot` from a user agent.
pub fn device_of(ua: &str) -> &'static str {
    let l = ua.to_ascii_lowercase();
    if l.is_empty()
        || [
            "bot", "crawler", "spider", "curl", "wget", "python", "headless",
        ]
        .iter()
        .any(|b| l.contains(b))
    {
        "bot"
    } else if l.contains("ipad") || l.contains("tablet") {
        "tablet"
    } else if l.contains("mobi") || l.contains("android") || l.contains("iphone") {
        "mobile"
    } else {
        "desktop"
    }
}

fn day_text(d: Date) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    d.format(f).unwrap_or_default()
}

/// Counts by key, with distinct visitors per day summed.
fn count_by(
    events: &[&AnalyticsEvent],
    key: impl Fn(&AnalyticsEvent) -> Option<String>,
) -> Vec<Count> {
    let mut views: BTreeMap<String, i64> = BTreeMap::new();
    let mut visitors: BTreeMap<String, std::collections::BTreeSet<(Date, &str)>> = BTreeMap::new();
    for e in events {
        let Some(k) = key(e) else { continue };
        *views.entry(k.clone()).or_default() += 1;
        visitors
            .entry(k)
            .or_default()
            .insert((e.at.date(), e.visitor.as_str()));
    }
    let mut out: Vec<Count> = views
        .into_iter()
        .map(|(k, v)| Count {
            visitors: visitors.get(&k).map_or(0, |s| s.len() as i64),
            key: k,
            views: v,
        })
        .collect();
    out.sort_by(|a, b| b.views.cmp(&a.views).then(a.key.cmp(&b.key)));
    out.truncate(20);
    out
}

impl Pixeld {
    /// The salt of `day`: remembered for the day it is (so a hit costs no extra write), agreed
    /// on by every node through the store; a new day replaces it in memory.
    async fn salt_of(&self, day: &str, now: OffsetDateTime) -> Result<String> {
        if let Some((d, salt)) = &*self
            .analytics_salt
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            && d == day
        {
            return Ok(salt.clone());
        }
        let salt = self
            .store
            .analytics_salt(day, &crate::secret::random_base62(43), now)
            .await?;
        *self
            .analytics_salt
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some((day.to_string(), salt.clone()));
        Ok(salt)
    }

    /// Counts one hit, unless the visitor asked not to be counted. Returns whether it counted.
    pub async fn record_hit(&self, hit: Hit, src: HitSource) -> Result<bool> {
        if !SITES.contains(&hit.site.as_str()) {
            return Err(Error::invalid("site", "must be website or dashboard"));
        }
        if !matches!(hit.kind.as_str(), "pageview" | "event") {
            return Err(Error::invalid("kind", "must be pageview or event"));
        }
        let name = hit.name.trim();
        // Control characters are refused wherever they are: trimming would otherwise pass a
        // trailing form feed or tab that the documented pattern forbids.
        if name.is_empty()
            || name.chars().count() > MAX_NAME
            || hit.name.chars().any(char::is_control)
        {
            return Err(Error::invalid(
                "name",
                format!("must be 1 to {MAX_NAME} characters without control characters"),
            ));
        }
        if src.do_not_track {
            return Ok(false);
        }
        if let Some(u) = src.user_id
            && !self
                .store
                .processing_choices(u)
                .await?
                .allows(Objection::Analytics)
        {
            return Ok(false);
        }
        // A page path without its query string or fragment (they may carry tokens or emails).
        let name = if hit.kind == "pageview" {
            name.split(['?', '#']).next().unwrap_or(name).to_string()
        } else {
            name.to_string()
        };
        let referrer = hit
            .referrer
            .as_deref()
            .and_then(|r| url::Url::parse(r).ok())
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .filter(|h| Some(h.as_str()) != src.own_host.as_deref());
        let now = self.now();
        let day = day_text(now.date());
        let salt = self.salt_of(&day, now).await?;
        let ua = src.user_agent.unwrap_or_default();
        let mut h = Sha256::new();
        for part in [
            salt.as_str(),
            hit.site.as_str(),
            src.ip.as_deref().unwrap_or(""),
            ua.as_str(),
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        let visitor = hex::encode(&h.finalize()[..16]);
        let e = AnalyticsEvent {
            id: Uuid::now_v7(),
            at: now,
            site: hit.site,
            kind: hit.kind,
            name,
            referrer,
            country: src.country,
            device: device_of(&ua).into(),
            visitor,
        };
        self.store.insert_analytics_event(&e).await?;
        Ok(true)
    }

    /// The aggregate report of `site` for days `from` to `to` (instance administrators).
    pub async fn analytics_report(
        &self,
        p: &Principal,
        site: &str,
        from: Date,
        to: Date,
    ) -> Result<Report> {
        p.require_scope(Scope::Admin)?;
        if !SITES.contains(&site) {
            return Err(Error::invalid("site", "must be website or dashboard"));
        }
        if to < from || (to - from).whole_days() > 31 {
            return Err(Error::invalid(
                "until",
                "must be on or after since, at most 31 days later (raw events are kept 30 days)",
            ));
        }
        let rows = self
            .store
            .analytics_events(site, &day_text(from), &day_text(to))
            .await?;
        let all: Vec<&AnalyticsEvent> = rows.iter().filter(|e| e.device != "bot").collect();
        let views: Vec<&AnalyticsEvent> = all
            .iter()
            .copied()
            .filter(|e| e.kind == "pageview")
            .collect();
        let events: Vec<&AnalyticsEvent> =
            all.iter().copied().filter(|e| e.kind == "event").collect();
        let visitors: std::collections::BTreeSet<(Date, &str)> = all
            .iter()
            .map(|e| (e.at.date(), e.visitor.as_str()))
            .collect();
        Ok(Report {
            views: views.len() as i64,
            events: events.len() as i64,
            visitors: visitors.len() as i64,
            top_pages: count_by(&views, |e| Some(e.name.clone())),
            top_events: count_by(&events, |e| Some(e.name.clone())),
            referrers: count_by(&views, |e| e.referrer.clone()),
            countries: count_by(&all, |e| e.country.clone()),
            devices: count_by(&all, |e| Some(e.device.clone())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_classed_from_the_user_agent() {
        assert_eq!(
            device_of("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"),
            "desktop"
        );
        assert_eq!(
            device_of("Mozilla/5.0 (iPhone; CPU iPhone OS 18_0) Mobile/15E148"),
            "mobile"
        );
        assert_eq!(device_of("Mozilla/5.0 (iPad; CPU OS 18_0)"), "tablet");
        assert_eq!(device_of("Googlebot/2.1"), "bot");
        assert_eq!(device_of(""), "bot");
    }
}
