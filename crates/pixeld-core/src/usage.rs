//! The API request (usage) log: one row per request, written in batches off the request path,
//! with daily totals per route that outlive the rows and a latency histogram per route for
//! operators.
//!
//! A request only pushes its row into an in-memory buffer ([`Pixeld::record_usage`]); a writer
//! task ([`Pixeld::run_usage_writer`]) flushes the buffer every second (or sooner when it
//! fills) in one transaction. A crash loses at most the last second of rows, never a request.
//!
//! Retention ([`crate::privacy`]): the IP address is cut to its network after
//! `request_logs.truncate_ip_after` and rows are deleted after `request_logs.keep`; the daily
//! totals carry no IP, user agent or user and stay while the organisation exists.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::page::{Page, PageRequest};
use crate::principal::Principal;
use crate::roles::Permission;
use crate::tokens::Scope;
use crate::{Error, Pixeld, Result};

/// Rows a buffer may hold before writes are considered failing and the oldest are dropped.
pub const MAX_BUFFERED: usize = 100_000;
/// A buffer this full is flushed at once instead of at the next tick.
pub const FLUSH_AT: usize = 2_000;
/// Rows written per statement.
pub const ROWS_PER_STATEMENT: usize = 500;
/// Latency histogram buckets: four per doubling of microseconds (each about 19 % wide).
pub const LATENCY_BUCKETS: i32 = 120;
/// The longest span one query of daily totals or metrics may cover.
pub const MAX_DAYS: i64 = 400;

/// One API request as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageEvent {
    /// UUIDv7 (orders the log).
    pub id: Uuid,
    /// When the request arrived.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The organisation it acted in, when authenticated.
    pub org_id: Option<Uuid>,
    /// The user, when authenticated.
    pub user_id: Option<Uuid>,
    /// The API token's id (never its secret), when one was used.
    pub token_id: Option<Uuid>,
    /// HTTP method.
    pub method: String,
    /// The route template (`/v1/images/{id}`), not the path, so ids in paths are not repeated.
    pub route: String,
    /// Response status.
    pub status: u16,
    /// Time in the server, microseconds.
    pub latency_us: i64,
    /// Request body bytes.
    pub bytes_in: i64,
    /// Response body bytes (when known up front).
    pub bytes_out: i64,
    /// Credits the request spent (or held for queued work).
    pub credits: i64,
    /// The client's address; cleared after the truncation window.
    pub ip: Option<String>,
    /// The client's network (/24 or /48), kept until the row is deleted.
    pub ip_network: Option<String>,
    /// ISO country code from the GeoIP database at write time.
    pub country: Option<String>,
    /// The `User-Agent` header (at most 256 characters).
    pub user_agent: Option<String>,
}

/// Which rows to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageFilter {
    /// At or after.
    pub since: Option<OffsetDateTime>,
    /// Before.
    pub until: Option<OffsetDateTime>,
    /// Only this route template.
    pub route: Option<String>,
    /// Only this status, or with `status_class`, this class (`4` for 4xx).
    pub status: Option<u16>,
    /// Only statuses in this hundred (1–5).
    pub status_class: Option<u16>,
    /// Only requests made with this token.
    pub token_id: Option<Uuid>,
    /// Newest first (a log read from the top); the cursor then pages back in time.
    pub newest_first: bool,
}

/// Totals of one day and route for an organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DailyUsage {
    /// UTC day.
    pub day: Date,
    /// Route template (with the method: `POST /v1/renders`).
    pub route: String,
    /// Requests.
    pub requests: i64,
    /// Requests answered 4xx or 5xx.
    pub errors: i64,
    /// Request bytes.
    pub bytes_in: i64,
    /// Response bytes.
    pub bytes_out: i64,
    /// Credits spent.
    pub credits: i64,
    /// Sum of latencies, microseconds (mean = this ÷ requests).
    pub latency_us: i64,
}

/// A change to one organisation's daily totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyDelta {
    /// The organisation.
    pub org_id: Uuid,
    /// The totals to add.
    pub usage: DailyUsage,
}

/// Requests of one route and day that fell in one latency bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyCount {
    /// UTC day.
    pub day: Date,
    /// Method and route template.
    pub route: String,
    /// Bucket (see [`bucket_of`]).
    pub bucket: i32,
    /// Requests.
    pub count: i64,
}

/// Latency percentiles of one route, for operators.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteMetrics {
    /// Method and route template.
    pub route: String,
    /// Requests in the period.
    pub requests: i64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile, milliseconds.
    pub p95_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
}

/// The bucket of a latency: `floor(4·log2(µs))`, clamped to `0..LATENCY_BUCKETS`.
pub fn bucket_of(latency_us: i64) -> i32 {
    if latency_us <= 1 {
        return 0;
    }
    (((latency_us as f64).log2() * 4.0).floor() as i32).clamp(0, LATENCY_BUCKETS - 1)
}

/// The latency a bucket stands for: its geometric middle, in milliseconds.
pub fn bucket_ms(bucket: i32) -> f64 {
    2f64.powf((f64::from(bucket) + 0.5) / 4.0) / 1000.0
}

/// Percentiles from bucket counts (`(bucket, count)` in any order).
pub fn percentiles(counts: &[(i32, i64)], qs: &[f64]) -> Vec<f64> {
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    let total: i64 = sorted.iter().map(|(_, c)| c).sum();
    qs.iter()
        .map(|q| {
            if total == 0 {
                return 0.0;
            }
            let rank = ((q * total as f64).ceil() as i64).max(1);
            let mut seen = 0;
            for (b, c) in &sorted {
                seen += c;
                if seen >= rank {
                    return (bucket_ms(*b) * 1000.0).round() / 1000.0;
                }
            }
            bucket_ms(sorted.last().map(|(b, _)| *b).unwrap_or(0))
        })
        .collect()
}

tokio::task_local! {
    static CHARGED: Cell<i64>;
}

/// Runs a request with a credit counter; returns its output and the credits it spent.
pub async fn metered<F: std::future::Future>(f: F) -> (F::Output, i64) {
    CHARGED
        .scope(Cell::new(0), async move {
            let out = f.await;
            (out, CHARGED.with(Cell::get))
        })
        .await
}

/// Counts credits against the request being handled (nothing outside one).
pub(crate) fn note_charge(amount: i64) {
    let _ = CHARGED.try_with(|c| c.set(c.get() + amount));
}

/// The in-memory buffer between requests and the writer.
#[derive(Debug, Default)]
pub struct UsageBuffer {
    rows: Mutex<Vec<UsageEvent>>,
    ready: tokio::sync::Notify,
}

impl UsageBuffer {
    fn push(&self, e: UsageEvent) {
        let len = {
            let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
            if rows.len() >= MAX_BUFFERED {
                rows.remove(0);
                metrics_dropped();
            }
            rows.push(e);
            rows.len()
        };
        if len == FLUSH_AT {
            self.ready.notify_one();
        }
    }

    fn take(&self) -> Vec<UsageEvent> {
        std::mem::take(&mut *self.rows.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn put_back(&self, mut failed: Vec<UsageEvent>) {
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        failed.append(&mut rows);
        let excess = failed.len().saturating_sub(MAX_BUFFERED);
        if excess > 0 {
            failed.drain(..excess);
            tracing::warn!(
                dropped = excess,
                "usage log: writes keep failing; dropped the oldest rows"
            );
        }
        *rows = failed;
    }
}

fn metrics_dropped() {
    tracing::warn!("usage log buffer full: dropped the oldest row");
}

/// Totals and histogram counts for a batch.
fn aggregate(rows: &[UsageEvent]) -> (Vec<DailyDelta>, Vec<LatencyCount>) {
    let mut daily: BTreeMap<(Uuid, Date, String), DailyUsage> = BTreeMap::new();
    let mut latency: BTreeMap<(Date, String, i32), i64> = BTreeMap::new();
    for e in rows {
        let day = e.at.date();
        let route = format!("{} {}", e.method, e.route);
        if let Some(org) = e.org_id {
            let d = daily
                .entry((org, day, route.clone()))
                .or_insert_with(|| DailyUsage {
                    day,
                    route: route.clone(),
                    requests: 0,
                    errors: 0,
                    bytes_in: 0,
                    bytes_out: 0,
                    credits: 0,
                    latency_us: 0,
                });
            d.requests += 1;
            d.errors += i64::from(e.status >= 400);
            d.bytes_in += e.bytes_in;
            d.bytes_out += e.bytes_out;
            d.credits += e.credits;
            d.latency_us += e.latency_us;
        }
        *latency
            .entry((day, route, bucket_of(e.latency_us)))
            .or_default() += 1;
    }
    (
        daily
            .into_iter()
            .map(|((org_id, _, _), usage)| DailyDelta { org_id, usage })
            .collect(),
        latency
            .into_iter()
            .map(|((day, route, bucket), count)| LatencyCount {
                day,
                route,
                bucket,
                count,
            })
            .collect(),
    )
}

fn check_days(from: Date, to: Date) -> Result<()> {
    if to < from {
        return Err(Error::invalid("until", "must not be before since"));
    }
    if (to - from).whole_days() > MAX_DAYS {
        return Err(Error::invalid(
            "until",
            format!("a query covers at most {MAX_DAYS} days"),
        ));
    }
    Ok(())
}

impl Pixeld {
    /// Logs one request (cheap: the row is written by the usage writer).
    pub fn record_usage(&self, e: UsageEvent) {
        self.usage.push(e);
    }

    /// Writes every buffered row now; returns how many. On failure the rows stay buffered for
    /// the next attempt.
    pub async fn flush_usage(&self) -> Result<usize> {
        let rows = self.usage.take();
        if rows.is_empty() {
            return Ok(0);
        }
        let (daily, latency) = aggregate(&rows);
        match self.store.insert_usage(&rows, &daily, &latency).await {
            Ok(()) => Ok(rows.len()),
            Err(e) => {
                self.usage.put_back(rows);
                Err(e.into())
            }
        }
    }

    /// Flushes the usage log every `every`, or at once when the buffer fills, until `stop`
    /// turns true; then flushes what is left.
    pub async fn run_usage_writer(
        &self,
        every: std::time::Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = self.usage.ready.notified() => {}
                _ = stop.changed() => {}
            }
            if let Err(e) = self.flush_usage().await {
                tracing::warn!(error = %e, "usage log: write failed; retrying");
            }
            if *stop.borrow() {
                break;
            }
        }
        let _ = self.flush_usage().await;
    }

    /// The organisation's request log, oldest first.
    pub async fn usage_events(
        &self,
        p: &Principal,
        filter: &UsageFilter,
        page: PageRequest,
    ) -> Result<Page<UsageEvent>> {
        p.require(Scope::BillingRead, Permission::BillingRead)?;
        if let Some(c) = filter.status_class
            && !(1..=5).contains(&c)
        {
            return Err(Error::invalid("status_class", "must be 1 to 5"));
        }
        let rows = self.store.usage_events(p.org_id, filter, page).await?;
        Ok(page.finish(rows, |e| e.id))
    }

    /// The same rows as CSV (every page, RFC 4180, formula-safe), at most
    /// [`crate::credits::MAX_EXPORT_ROWS`] rows.
    pub async fn usage_csv(&self, p: &Principal, filter: &UsageFilter) -> Result<String> {
        let max = crate::credits::MAX_EXPORT_ROWS;
        let mut count = 0;
        let mut out = String::from(
            "id,at,method,route,status,latency_ms,bytes_in,bytes_out,credits,token_id,user_id,ip,country,user_agent\r\n",
        );
        let mut page = PageRequest::parse(None, Some(crate::page::MAX_LIMIT))?;
        loop {
            let got = self.usage_events(p, filter, page).await?;
            for e in &got.items {
                if count == max {
                    return Err(Error::invalid(
                        "until",
                        format!("more than {max} requests: export a shorter period"),
                    ));
                }
                count += 1;
                let at =
                    e.at.format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default();
                let fields = [
                    e.id.to_string(),
                    at,
                    e.method.clone(),
                    e.route.clone(),
                    e.status.to_string(),
                    format!("{:.3}", e.latency_us as f64 / 1000.0),
                    e.bytes_in.to_string(),
                    e.bytes_out.to_string(),
                    e.credits.to_string(),
                    e.token_id.map(|t| t.to_string()).unwrap_or_default(),
                    e.user_id.map(|t| t.to_string()).unwrap_or_default(),
                    e.ip.clone()
                        .or_else(|| e.ip_network.clone())
                        .unwrap_or_default(),
                    e.country.clone().unwrap_or_default(),
                    e.user_agent.clone().unwrap_or_default(),
                ];
                let line: Vec<String> = fields
                    .iter()
                    .map(|f| crate::credits::csv_field(f))
                    .collect();
                out.push_str(&line.join(","));
                out.push_str("\r\n");
            }
            match got.next_cursor {
                Some(c) => page = PageRequest::parse(Some(&c), Some(crate::page::MAX_LIMIT))?,
                None => break,
            }
        }
        Ok(out)
    }

    /// The organisation's daily totals per route, `from` to `to` inclusive.
    pub async fn usage_daily(
        &self,
        p: &Principal,
        from: Date,
        to: Date,
    ) -> Result<Vec<DailyUsage>> {
        p.require(Scope::BillingRead, Permission::BillingRead)?;
        check_days(from, to)?;
        Ok(self.store.usage_daily(p.org_id, from, to).await?)
    }

    /// Latency percentiles per route over every organisation, `from` to `to` inclusive
    /// (instance administrators).
    pub async fn route_metrics(
        &self,
        p: &Principal,
        from: Date,
        to: Date,
    ) -> Result<Vec<RouteMetrics>> {
        p.require_scope(Scope::Admin)?;
        check_days(from, to)?;
        let counts = self.store.route_latency(from, to).await?;
        let mut by_route: BTreeMap<String, Vec<(i32, i64)>> = BTreeMap::new();
        for c in counts {
            by_route
                .entry(c.route)
                .or_default()
                .push((c.bucket, c.count));
        }
        Ok(by_route
            .into_iter()
            .map(|(route, counts)| {
                let q = percentiles(&counts, &[0.5, 0.95, 0.99]);
                RouteMetrics {
                    route,
                    requests: counts.iter().map(|(_, c)| c).sum(),
                    p50_ms: q[0],
                    p95_ms: q[1],
                    p99_ms: q[2],
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_about_a_fifth_wide_and_percentiles_land_in_them() {
        for us in [50, 1_000, 7_500, 250_000, 3_000_000] {
            let ms = bucket_ms(bucket_of(us));
            let actual = us as f64 / 1000.0;
            assert!((ms / actual - 1.0).abs() < 0.2, "{us} µs -> {ms} ms");
        }
        // 90 fast requests and 10 slow ones: the median is fast, p95/p99 are slow.
        let counts = [(bucket_of(1_000), 90), (bucket_of(100_000), 10)];
        let q = percentiles(&counts, &[0.5, 0.95, 0.99]);
        assert!((q[0] - 1.0).abs() < 0.2, "{q:?}");
        assert!((q[1] - 100.0).abs() < 20.0, "{q:?}");
        assert!((q[2] - 100.0).abs() < 20.0, "{q:?}");
        assert_eq!(percentiles(&[], &[0.5]), vec![0.0]);
    }

    #[tokio::test]
    async fn credits_are_counted_only_inside_the_request() {
        note_charge(5);
        let ((), n) = metered(async {
            note_charge(2);
            tokio::task::yield_now().await;
            note_charge(3);
        })
        .await;
        assert_eq!(n, 5);
    }
}
