//! The retention sweeper: enforces every class of [`crate::privacy::Retention`] on database rows
//! and stored objects.
//!
//! It is idempotent and safe on several nodes at once: every step deletes by age, a second node
//! finds nothing left to do, and deleting an object that is already gone is not an error. It
//! logs what it removed as counts, never content.

use crate::privacy::DataClass;
use crate::{Pixeld, Result};

/// What one sweep removed (counts, never content).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    /// Expired uploads removed (rows and objects).
    pub images: u64,
    /// Their derived outputs removed.
    pub variants: u64,
    /// Processing log rows past their retention.
    pub processing_logs: u64,
    /// Idempotency keys past their window.
    pub idempotency_keys: u64,
    /// Cached renders past their age bound.
    pub cached_renders: u64,
    /// Asynchronous render records past their window.
    pub render_jobs: u64,
    /// Webhook deliveries (with their attempts) past their window.
    pub webhook_deliveries: u64,
    /// Finished background jobs past their window.
    pub jobs: u64,
    /// Credit lots that reached their expiry.
    pub expired_credit_lots: u64,
    /// Reservations abandoned by a process that died, released.
    pub released_reservations: u64,
    /// Payment provider events past their window (kept only to recognise redeliveries).
    pub payment_events: u64,
    /// Orders and invoices past the window financial records are kept.
    pub financial_records: u64,
    /// Request-log rows whose IP address was cut to its network.
    pub request_log_ips_truncated: u64,
    /// Request-log rows past their window.
    pub request_logs: u64,
    /// Sessions that had ended.
    pub sessions: u64,
    /// Emailed-link tokens past their window.
    pub one_time_tokens: u64,
    /// Outbox copies of sent email past their window.
    pub outbox_messages: u64,
    /// Accounts purged at the end of their deletion grace period.
    pub deleted_accounts: u64,
    /// Data exports past their window (files and records).
    pub exports: u64,
    /// Raw analytics events past their window.
    pub analytics_events: u64,
    /// Analytics salts past their window.
    pub analytics_salts: u64,
    /// Support requests (with their messages) quiet for longer than their window.
    pub support_requests: u64,
}

impl Pixeld {
    /// Enforces every retention class once and reports what it removed.
    pub async fn sweep(&self) -> Result<SweepReport> {
        // Rows still waiting in this process's request-log buffer are written first, so the
        // request-log steps below see them.
        self.flush_usage().await?;
        let now = self.now();
        let r = &self.settings.retention;
        let mut report = SweepReport {
            // First, so the rows and objects of purged accounts are not counted twice below.
            deleted_accounts: self.purge_due_accounts().await?,
            ..SweepReport::default()
        };
        loop {
            let batch = self.store.expired_images(now, 200).await?;
            if batch.is_empty() {
                break;
            }
            for (img, variants) in batch {
                for v in &variants {
                    self.blobs.delete(&v.object_key).await?;
                }
                self.blobs.delete(&img.object_key).await?;
                if self.store.delete_image(img.org_id, img.id).await?.is_some() {
                    report.images += 1;
                    report.variants += variants.len() as u64;
                }
            }
        }
        report.processing_logs = self
            .store
            .purge_processing_logs(now - r.window(DataClass::ProcessingLogs))
            .await?;
        report.idempotency_keys = self
            .store
            .idempotency_purge(now - r.window(DataClass::IdempotencyKeys))
            .await?;
        loop {
            let stale = self
                .store
                .stale_render_cache(now - r.window(DataClass::RenderCache), 200)
                .await?;
            if stale.is_empty() {
                break;
            }
            for e in &stale {
                self.blobs.delete(&e.object_key).await?;
            }
            let keys: Vec<String> = stale.into_iter().map(|e| e.cache_key).collect();
            report.cached_renders += self.store.delete_render_cache(&keys).await?;
            self.renders.forget(&keys);
        }
        report.render_jobs = self
            .store
            .purge_render_jobs(now - r.window(DataClass::RenderJobs))
            .await?;
        report.webhook_deliveries = self
            .store
            .purge_webhook_deliveries(now - r.window(DataClass::WebhookDeliveries))
            .await?;
        report.jobs = self
            .store
            .purge_jobs(now - r.window(DataClass::Jobs))
            .await?;
        (report.expired_credit_lots, report.released_reservations) = self.sweep_credits().await?;
        report.payment_events = self
            .store
            .purge_payment_events(now - r.window(DataClass::PaymentEvents))
            .await?;
        report.financial_records = self
            .store
            .purge_financial_records(now - r.window(DataClass::FinancialRecords))
            .await?;
        report.request_log_ips_truncated = self
            .store
            .truncate_usage_ips(now - r.ip_truncation())
            .await?;
        report.request_logs = self
            .store
            .purge_usage(now - r.window(DataClass::RequestLogs))
            .await?;
        report.sessions = self
            .store
            .purge_ended_sessions(now, now - self.settings.session_idle)
            .await?;
        report.one_time_tokens = self
            .store
            .purge_one_time_tokens(now - r.window(DataClass::OneTimeTokens))
            .await?;
        report.outbox_messages = self
            .mailer
            .purge_copies(now - r.window(DataClass::EmailOutbox))
            .await?;
        report.exports = self
            .purge_exports(now - r.window(DataClass::Exports))
            .await?;
        report.analytics_events = self
            .store
            .purge_analytics_events(now - r.window(DataClass::AnalyticsEvents))
            .await?;
        report.analytics_salts = self
            .store
            .purge_analytics_salts(now - r.window(DataClass::AnalyticsSalts))
            .await?;
        report.support_requests = self
            .store
            .purge_support_tickets(now - r.window(DataClass::Support))
            .await?;
        {
            // A remembered salt of an earlier day goes too, even if no hit came since.
            let today = now.date().to_string();
            let mut cached = self
                .analytics_salt
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if cached.as_ref().is_some_and(|(d, _)| *d != today) {
                *cached = None;
            }
        }
        if report != SweepReport::default() {
            tracing::info!(
                images = report.images,
                variants = report.variants,
                processing_logs = report.processing_logs,
                idempotency_keys = report.idempotency_keys,
                cached_renders = report.cached_renders,
                render_jobs = report.render_jobs,
                webhook_deliveries = report.webhook_deliveries,
                jobs = report.jobs,
                expired_credit_lots = report.expired_credit_lots,
                released_reservations = report.released_reservations,
                payment_events = report.payment_events,
                financial_records = report.financial_records,
                request_log_ips_truncated = report.request_log_ips_truncated,
                request_logs = report.request_logs,
                sessions = report.sessions,
                one_time_tokens = report.one_time_tokens,
                outbox_messages = report.outbox_messages,
                deleted_accounts = report.deleted_accounts,
                exports = report.exports,
                analytics_events = report.analytics_events,
                analytics_salts = report.analytics_salts,
                support_requests = report.support_requests,
                "retention sweep"
            );
        }
        Ok(report)
    }
}
