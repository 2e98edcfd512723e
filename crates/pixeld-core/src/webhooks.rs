//! Webhooks: events POSTed to the caller's URL, signed, retried, logged.
//!
//! Every delivery is signed with each live webhook secret of the organisation, Stripe-style:
//! `Pixeld-Signature: t={unix seconds},v1={hex HMAC-SHA256 of "{t}.{body}"}[,v1=…]`, so a
//! receiver checks the timestamp (reject old ones: replays) and any `v1` against its secret;
//! during a rotation both secrets sign. A delivery succeeds on a 2xx answer within
//! [`TIMEOUT`]; otherwise it is tried again after each of [`BACKOFF`] (about 31 hours in all),
//! then marked failed. `410 Gone` stops the retries at once. Every attempt is kept in the
//! delivery log for [`KEEP_DELIVERIES`].

use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::jobs::Outcome;
use crate::page::{Page, PageRequest};
use crate::principal::Principal;
use crate::roles::Permission;
use crate::store::{Job, SigningKey, WebhookAttempt, WebhookDelivery};
use crate::tokens::Scope;
use crate::{Error, Pixeld, Result};

/// Waits before the 2nd, 3rd… attempt; after the last one fails the delivery is marked failed.
pub const BACKOFF: [time::Duration; 6] = [
    time::Duration::seconds(30),
    time::Duration::minutes(2),
    time::Duration::minutes(10),
    time::Duration::hours(1),
    time::Duration::hours(6),
    time::Duration::hours(24),
];

/// How long a receiver has to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Deliveries and their attempts are deleted this long after they were created.
pub const KEEP_DELIVERIES: time::Duration = time::Duration::days(30);

/// Longest webhook URL accepted.
pub const MAX_URL_BYTES: usize = 2048;

/// The `Pixeld-Signature` header value for `body` sent at unix time `t`, signed with every
/// secret given.
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a str>,
    t: i64,
    body: &[u8],
) -> String {
    let mut out = format!("t={t}");
    for secret in secrets {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        out.push_str(",v1=");
        out.push_str(&hex::encode(mac.finalize().into_bytes()));
    }
    out
}

#[derive(Serialize, Deserialize)]
struct WebhookPayload {
    delivery: Uuid,
}

impl Pixeld {
    /// Creates a webhook secret (the organisation's first, or a second one for a rotation).
    pub async fn create_webhook_secret(&self, p: &Principal) -> Result<SigningKey> {
        p.require(Scope::AccountWrite, Permission::OrgManage)?;
        self.new_webhook_secret(p.org_id).await
    }

    async fn new_webhook_secret(&self, org: Uuid) -> Result<SigningKey> {
        let raw: [u8; 32] = rand::random();
        let key = SigningKey {
            id: Uuid::now_v7(),
            org_id: org,
            secret: format!("whsec_{}", hex::encode(raw)),
            created_at: self.now(),
            revoked_at: None,
        };
        self.store.create_webhook_secret(&key).await?;
        Ok(key)
    }

    /// The organisation's webhook secrets, newest first.
    pub async fn webhook_secrets(&self, p: &Principal) -> Result<Vec<SigningKey>> {
        p.require(Scope::AccountRead, Permission::OrgManage)?;
        Ok(self.store.list_webhook_secrets(p.org_id).await?)
    }

    /// Stops signing with a secret. The last live secret cannot be revoked while webhooks may
    /// still be sent: create the new one first.
    pub async fn revoke_webhook_secret(&self, p: &Principal, id: Uuid) -> Result<()> {
        p.require(Scope::AccountWrite, Permission::OrgManage)?;
        let keys = self.store.list_webhook_secrets(p.org_id).await?;
        let live: Vec<_> = keys.iter().filter(|k| k.revoked_at.is_none()).collect();
        if !keys.iter().any(|k| k.id == id) {
            return Err(Error::NotFound);
        }
        if live.len() == 1 && live[0].id == id {
            return Err(Error::State(
                "this is the only live webhook secret; create its replacement first".into(),
            ));
        }
        if self
            .store
            .revoke_webhook_secret(p.org_id, id, self.now())
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    /// Makes sure the organisation has a webhook secret before anything is sent.
    pub(crate) async fn ensure_webhook_secret(&self, org: Uuid) -> Result<()> {
        let keys = self.store.list_webhook_secrets(org).await?;
        if !keys.iter().any(|k| k.revoked_at.is_none()) {
            self.new_webhook_secret(org).await?;
        }
        Ok(())
    }

    /// Checks a webhook URL given by a caller.
    pub(crate) fn check_webhook_url(&self, url: &str) -> Result<()> {
        if url.len() > MAX_URL_BYTES {
            return Err(Error::invalid(
                "webhook_url",
                format!("is longer than {MAX_URL_BYTES} bytes"),
            ));
        }
        self.fetcher.check_target(url).map_err(|e| match e {
            Error::Invalid(mut f) => {
                for e in &mut f {
                    e.field = "webhook_url".into();
                }
                Error::Invalid(f)
            }
            e => e,
        })
    }

    /// Queues `event` with `data` for `url`; the body is
    /// `{"id", "type", "created_at", "data"}` where `id` is the delivery (event) id.
    pub(crate) async fn queue_webhook(
        &self,
        org: Uuid,
        event: &str,
        url: &str,
        data: Value,
    ) -> Result<WebhookDelivery> {
        self.ensure_webhook_secret(org).await?;
        let now = self.now();
        let id = Uuid::now_v7();
        let body = json!({
            "id": id,
            "type": event,
            "created_at": now.format(&time::format_description::well_known::Rfc3339)
                .map_err(|e| Error::Internal(e.to_string()))?,
            "data": data,
        });
        let d = WebhookDelivery {
            id,
            org_id: org,
            event: event.into(),
            url: url.into(),
            payload: body.to_string(),
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: Some(now),
            last_status: None,
            last_error: None,
            created_at: now,
            delivered_at: None,
        };
        let job = self.new_job("webhook", org, json!(WebhookPayload { delivery: id }), now);
        self.store.create_webhook_delivery(&d, &job).await?;
        self.wake_worker();
        Ok(d)
    }

    /// One attempt at a delivery.
    pub(crate) async fn run_webhook_job(&self, job: &Job) -> Result<Outcome> {
        let WebhookPayload { delivery } = Self::payload(job)?;
        let Some(mut d) = self.store.webhook_delivery(None, delivery).await? else {
            // Deleted by the sweeper (or with its organisation): nothing to send.
            return Ok(Outcome::Done);
        };
        if d.status != "pending" {
            return Ok(Outcome::Done);
        }
        let secrets: Vec<String> = self
            .store
            .list_webhook_secrets(d.org_id)
            .await?
            .into_iter()
            .filter(|k| k.revoked_at.is_none())
            .map(|k| k.secret)
            .collect();
        let now = self.now();
        let body = d.payload.clone().into_bytes();
        let headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            (
                "user-agent".to_owned(),
                concat!("pixeld-webhooks/", env!("CARGO_PKG_VERSION")).to_owned(),
            ),
            ("pixeld-event".to_owned(), d.event.clone()),
            ("pixeld-delivery".to_owned(), d.id.to_string()),
            (
                "pixeld-signature".to_owned(),
                signature_header(
                    secrets.iter().map(String::as_str),
                    now.unix_timestamp(),
                    &body,
                ),
            ),
        ];
        let started = Instant::now();
        let answer = self.fetcher.post(&d.url, &headers, body, TIMEOUT).await;
        let ms = started.elapsed().as_millis() as i64;
        d.attempts += 1;
        let mut attempt = WebhookAttempt {
            id: Uuid::now_v7(),
            delivery_id: d.id,
            attempt: d.attempts,
            at: now,
            status_code: None,
            error: None,
            response_excerpt: None,
            ms,
        };
        let (ok, give_up) = match answer {
            Ok(posted) => {
                attempt.status_code = Some(i32::from(posted.status));
                attempt.response_excerpt = Some(posted.excerpt);
                let ok = (200..300).contains(&posted.status);
                if !ok {
                    attempt.error = Some(format!("the receiver answered {}", posted.status));
                }
                (ok, posted.status == 410)
            }
            Err(Error::Fetch(m)) => {
                attempt.error = Some(m);
                (false, false)
            }
            Err(e) => return Err(e),
        };
        d.last_status = attempt.status_code;
        d.last_error = attempt.error.clone();
        let wait = BACKOFF.get(d.attempts as usize - 1).copied();
        let outcome = if ok {
            d.status = "delivered".into();
            d.delivered_at = Some(now);
            d.next_attempt_at = None;
            Outcome::Done
        } else if let (Some(wait), false) = (wait, give_up) {
            d.next_attempt_at = Some(now + wait);
            Outcome::Retry(now + wait, attempt.error.clone().unwrap_or_default())
        } else {
            d.status = "failed".into();
            d.next_attempt_at = None;
            Outcome::Failed(attempt.error.clone().unwrap_or_default())
        };
        self.store.record_webhook_attempt(&d, &attempt).await?;
        Ok(outcome)
    }

    /// The organisation's webhook deliveries, oldest first.
    pub async fn webhook_deliveries(
        &self,
        p: &Principal,
        page: PageRequest,
    ) -> Result<Page<WebhookDelivery>> {
        p.require(Scope::Render, Permission::ContentRead)?;
        let rows = self.store.list_webhook_deliveries(p.org_id, page).await?;
        Ok(page.finish(rows, |d| d.id))
    }

    /// One delivery and every attempt at it.
    pub async fn webhook_delivery(
        &self,
        p: &Principal,
        id: Uuid,
    ) -> Result<(WebhookDelivery, Vec<WebhookAttempt>)> {
        p.require(Scope::Render, Permission::ContentRead)?;
        let d = self
            .store
            .webhook_delivery(Some(p.org_id), id)
            .await?
            .ok_or(Error::NotFound)?;
        let attempts = self.store.webhook_attempts(id).await?;
        Ok((d, attempts))
    }

    /// Sends a delivery again now (the same event id and body, freshly signed), whatever its
    /// state; a pending one is refused (it is already on its way).
    pub async fn redeliver_webhook(&self, p: &Principal, id: Uuid) -> Result<WebhookDelivery> {
        p.require(Scope::Render, Permission::ContentWrite)?;
        let mut d = self
            .store
            .webhook_delivery(Some(p.org_id), id)
            .await?
            .ok_or(Error::NotFound)?;
        if d.status == "pending" {
            return Err(Error::State(
                "this delivery is still pending; its next attempt is scheduled".into(),
            ));
        }
        let now = self.now();
        d.status = "pending".into();
        d.next_attempt_at = Some(now);
        d.delivered_at = None;
        let job = self.new_job(
            "webhook",
            d.org_id,
            json!(WebhookPayload { delivery: d.id }),
            now,
        );
        self.store.requeue_webhook_delivery(&d, &job).await?;
        self.wake_worker();
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_an_independent_hmac_and_lists_every_secret() {
        // RFC 4231-style check: HMAC-SHA256("key", "1700000000.{}") computed independently.
        let h = signature_header(["key"], 1_700_000_000, b"{}");
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"1700000000.{}");
        let want = hex::encode(mac.finalize().into_bytes());
        assert_eq!(h, format!("t=1700000000,v1={want}"));
        let two = signature_header(["key", "other"], 1_700_000_000, b"{}");
        assert_eq!(two.matches(",v1=").count(), 2);
        assert!(two.starts_with(&h));
    }

    #[test]
    fn backoff_spans_about_a_day_and_a_half() {
        let total: time::Duration = BACKOFF.iter().copied().sum();
        assert!(total > time::Duration::hours(30) && total < time::Duration::hours(32));
    }
}
