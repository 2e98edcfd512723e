//! Buying credits: packs with prices per currency, orders paid through a provider's hosted
//! checkout (Stripe) or widget (Razorpay), and the provider webhooks that fulfil and refund
//! them. Card data never reaches pixeld.
//!
//! An order is fulfilled by one ledger grant whose business key is the order id, so the
//! checkout webhook, its redeliveries and Razorpay's client-side confirmation together add the
//! credits exactly once. Webhooks are de-duplicated by the provider's event id; an event that
//! cannot be applied yet (a refund of an order whose payment has not arrived) is answered with
//! a conflict so the provider delivers it again later.

use std::collections::BTreeMap;
use std::sync::Arc;

use pixeld_payments::{
    Checkout, CheckoutItem, CheckoutRequest, EventKind, PaymentError, PaymentEvent,
    PaymentProvider, Razorpay, WebhookError,
};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ledger::{Debit, EntryKind, GrantSource, LedgerEntry};
use crate::page::{Page, PageRequest};
use crate::principal::Principal;
use crate::roles::Permission;
use crate::tokens::Scope;
use crate::{Error, Pixeld, Result};

/// A credit pack on sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pack {
    /// Stable id, e.g. `credits-1000`.
    pub id: String,
    /// Name shown to buyers.
    pub name: String,
    /// Credits it adds (purchased credits do not expire).
    pub credits: i64,
    /// Price per currency in minor units, keyed by lowercase ISO 4217 code (`usd`, `inr`).
    pub prices: BTreeMap<String, i64>,
}

/// The packs sold when the configuration names none.
pub fn default_packs() -> Vec<Pack> {
    let pack = |credits: i64, usd: i64, eur: i64, gbp: i64, inr: i64| Pack {
        id: format!("credits-{credits}"),
        name: format!("{credits} credits"),
        credits,
        prices: BTreeMap::from([
            ("usd".to_owned(), usd),
            ("eur".to_owned(), eur),
            ("gbp".to_owned(), gbp),
            ("inr".to_owned(), inr),
        ]),
    };
    vec![
        pack(1_000, 1_000, 900, 800, 80_000),
        pack(5_000, 4_000, 3_600, 3_200, 320_000),
    ]
}

/// How long provider events are remembered for de-duplication (providers retry for up to 3 days).
pub const KEEP_PAYMENT_EVENTS: time::Duration = time::Duration::days(30);

/// How long orders and invoices are kept: financial records, 7 years.
pub const KEEP_FINANCIAL_RECORDS: time::Duration = time::Duration::days(7 * 365 + 2);

/// Which currency buyers from a country see first (ISO 3166-1 alpha-2 → lowercase ISO 4217):
/// rupees in India, pounds in the UK, euros in the euro area; everyone else gets the default.
pub fn default_currency_by_country() -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = [
        "AT", "BE", "HR", "CY", "EE", "FI", "FR", "DE", "GR", "IE", "IT", "LV", "LT", "LU", "MT",
        "NL", "PT", "SK", "SI", "ES",
    ]
    .into_iter()
    .map(|c| (c.to_owned(), "eur".to_owned()))
    .collect();
    m.insert("IN".into(), "inr".into());
    m.insert("GB".into(), "gbp".into());
    m
}

/// The payment providers this instance is set up with.
#[derive(Default, Clone)]
pub struct Providers {
    /// Stripe, when configured.
    pub stripe: Option<Arc<dyn PaymentProvider>>,
    /// Razorpay, when configured (kept concrete for its payment-signature check).
    pub razorpay: Option<Arc<Razorpay>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("stripe", &self.stripe.is_some())
            .field("razorpay", &self.razorpay.is_some())
            .finish()
    }
}

impl Providers {
    fn get(&self, name: &str) -> Option<Arc<dyn PaymentProvider>> {
        match name {
            "stripe" => self.stripe.clone(),
            "razorpay" => self.razorpay.clone().map(|r| r as Arc<dyn PaymentProvider>),
            _ => None,
        }
    }

    /// The names of the configured providers.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.stripe.is_some() {
            v.push("stripe");
        }
        if self.razorpay.is_some() {
            v.push("razorpay");
        }
        v
    }
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Waiting for the payment.
    Open,
    /// Paid; its credits were added (a partial refund keeps it paid).
    Paid,
    /// Refunded in full.
    Refunded,
    /// The provider refused to open the checkout.
    Failed,
}

impl OrderStatus {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Open => "open",
            OrderStatus::Paid => "paid",
            OrderStatus::Refunded => "refunded",
            OrderStatus::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            OrderStatus::Open,
            OrderStatus::Paid,
            OrderStatus::Refunded,
            OrderStatus::Failed,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// A purchase. Financial record: kept for 7 years.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// UUIDv7; also the provider-side idempotency key.
    pub id: Uuid,
    /// The buying organisation.
    pub org_id: Uuid,
    /// The member who started it.
    pub created_by: Option<Uuid>,
    /// `stripe` or `razorpay`.
    pub provider: String,
    /// `pack`.
    pub item_kind: String,
    /// The pack id.
    pub item_id: String,
    /// Credits it adds when paid.
    pub credits: i64,
    /// Price in minor units.
    pub amount_minor: i64,
    /// Lowercase ISO 4217.
    pub currency: String,
    /// Where it stands.
    pub status: OrderStatus,
    /// The provider's checkout id (Stripe session `cs_…`, Razorpay order `order_…`).
    pub provider_ref: Option<String>,
    /// The provider's payment id (Stripe `pi_…`, Razorpay `pay_…`), once paid.
    pub payment_ref: Option<String>,
    /// The provider's customer id (Stripe `cus_…`), once known.
    pub customer_ref: Option<String>,
    /// Refunded so far, in minor units.
    pub refunded_minor: i64,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Paid.
    pub paid_at: Option<OffsetDateTime>,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// What a buyer asks for.
#[derive(Debug, Clone, Default)]
pub struct CheckoutInput {
    /// The pack id (empty when buying a plan).
    pub pack: String,
    /// A paid plan's id, to subscribe (through Stripe).
    pub plan: Option<String>,
    /// Lowercase or uppercase ISO 4217; the pack's first price when absent.
    pub currency: Option<String>,
    /// `stripe` or `razorpay`; by default Razorpay for INR when configured, else Stripe.
    pub provider: Option<String>,
    /// Where Stripe sends the buyer after paying (default: this site's billing page).
    pub success_url: Option<String>,
    /// Where Stripe sends a buyer who gives up.
    pub cancel_url: Option<String>,
    /// The buyer's approximate country (from the client IP), used when no currency is given.
    pub country: Option<String>,
    /// The currency the visitor chose for the pricing page, used when the item is priced in it.
    pub preferred_currency: Option<String>,
    /// Send the buyer to a page the provider hosts (Stripe Checkout, a Razorpay Payment Link)
    /// rather than opening Razorpay's Checkout.js in ours.
    pub hosted: bool,
}

fn provider_error(e: PaymentError) -> Error {
    tracing::warn!(error = %e, "payment provider call failed");
    Error::Payment(e.to_string())
}

fn webhook_error(e: WebhookError) -> Error {
    match e {
        WebhookError::BadSignature(m) => Error::BadSignature(m),
        WebhookError::StaleTimestamp => {
            Error::BadSignature("the signed timestamp is outside the tolerance".into())
        }
        WebhookError::Malformed(m) => Error::invalid("body", m),
    }
}

/// A URL the provider may send the buyer to: on this site, or on a host the operator allows.
fn check_redirect(field: &str, url: &str, public_url: &str, allowed: &[String]) -> Result<()> {
    let ours = url::Url::parse(public_url).ok();
    let Ok(u) = url::Url::parse(url) else {
        return Err(Error::invalid(field, "must be an absolute http(s) URL"));
    };
    let host = u.host_str().unwrap_or_default().to_ascii_lowercase();
    let own = ours
        .as_ref()
        .is_some_and(|o| o.host_str() == Some(host.as_str()) && o.scheme() == u.scheme());
    let listed = u.scheme() == "https" && allowed.iter().any(|a| a.eq_ignore_ascii_case(&host));
    if own || listed {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            "must be on this site or on a host in payments.redirect_hosts (https)",
        ))
    }
}

impl Pixeld {
    /// The currency to show a buyer from `country` first: the country's own if every pack is
    /// priced in it, else the default currency if priced, else the first price of the packs.
    pub fn suggest_currency(&self, country: Option<&str>) -> String {
        let priced = |c: &str| {
            !self.settings.packs.is_empty()
                && self.settings.packs.iter().all(|p| p.prices.contains_key(c))
        };
        let by_country = country
            .and_then(|c| {
                self.settings
                    .currency_by_country
                    .get(&c.to_ascii_uppercase())
            })
            .filter(|c| priced(c));
        if let Some(c) = by_country {
            return c.clone();
        }
        if priced(&self.settings.default_currency) {
            return self.settings.default_currency.clone();
        }
        self.settings
            .packs
            .first()
            .and_then(|p| p.prices.keys().next().cloned())
            .unwrap_or_else(|| self.settings.default_currency.clone())
    }

    /// The packs on sale.
    pub fn packs(&self) -> &[Pack] {
        &self.settings.packs
    }

    /// Opens a checkout for a pack or a plan: writes the order, then asks the provider for a
    /// hosted page (Stripe) or widget options (Razorpay, packs only). Owners only
    /// (`billing:write`).
    pub async fn checkout(&self, p: &Principal, input: CheckoutInput) -> Result<(Order, Checkout)> {
        p.require(Scope::BillingWrite, Permission::BillingManage)?;
        let on_sale = |ids: Vec<&str>| {
            if ids.is_empty() {
                "none is on sale here".to_string()
            } else {
                format!("on sale: {}", ids.join(", "))
            }
        };
        let (kind, id, name, credits, prices, stripe_prices) =
            match (&input.plan, input.pack.as_str()) {
                (Some(_), pack) if !pack.is_empty() => {
                    return Err(Error::invalid("plan", "name a pack or a plan, not both"));
                }
                (Some(plan), _) => {
                    let k = self
                        .settings
                        .plans
                        .iter()
                        .find(|k| &k.id == plan)
                        .ok_or_else(|| {
                            Error::invalid(
                                "plan",
                                format!(
                                    "no such plan; {}",
                                    on_sale(
                                        self.settings.plans.iter().map(|k| k.id.as_str()).collect()
                                    )
                                ),
                            )
                        })?;
                    (
                        "plan",
                        k.id.clone(),
                        k.name.clone(),
                        0,
                        &k.prices,
                        Some(&k.stripe_prices),
                    )
                }
                (None, pack) => {
                    let k = self
                        .settings
                        .packs
                        .iter()
                        .find(|k| k.id == pack)
                        .ok_or_else(|| {
                            Error::invalid(
                                "pack",
                                format!(
                                    "no such pack; {}",
                                    on_sale(
                                        self.settings.packs.iter().map(|k| k.id.as_str()).collect()
                                    )
                                ),
                            )
                        })?;
                    (
                        "pack",
                        k.id.clone(),
                        k.name.clone(),
                        k.credits,
                        &k.prices,
                        None,
                    )
                }
            };
        let preferred = input
            .preferred_currency
            .as_deref()
            .map(str::to_ascii_lowercase)
            .filter(|c| prices.contains_key(c));
        let currency = match (&input.currency, preferred) {
            (Some(c), _) => c.trim().to_ascii_lowercase(),
            (None, Some(c)) => c,
            (None, None) => {
                let suggested = self.suggest_currency(input.country.as_deref());
                if prices.contains_key(&suggested) {
                    suggested
                } else {
                    prices
                        .keys()
                        .next()
                        .cloned()
                        .ok_or_else(|| Error::Internal(format!("{kind} {id} has no price")))?
                }
            }
        };
        let amount = *prices.get(&currency).ok_or_else(|| {
            Error::invalid(
                "currency",
                format!(
                    "this {kind} is sold in {}",
                    prices.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        let provider_name = match input.provider.as_deref() {
            Some(name) => name.to_owned(),
            None if kind == "pack" && currency == "inr" && self.payments.razorpay.is_some() => {
                "razorpay".into()
            }
            None if self.payments.stripe.is_some() => "stripe".into(),
            None if kind == "pack" && self.payments.razorpay.is_some() => "razorpay".into(),
            None => {
                return Err(Error::State(format!(
                    "no payment provider that sells {kind}s is configured on this instance"
                )));
            }
        };
        if kind == "plan" && provider_name != "stripe" {
            return Err(Error::invalid("provider", "plans are sold through Stripe"));
        }
        if kind == "plan" && self.store.live_subscription(p.org_id).await?.is_some() {
            return Err(Error::State(
                "this organisation already has a paid plan: change it in the customer portal"
                    .into(),
            ));
        }
        let provider = self.payments.get(&provider_name).ok_or_else(|| {
            Error::invalid(
                "provider",
                format!(
                    "not configured here; available: {}",
                    self.payments.names().join(", ")
                ),
            )
        })?;
        let item = match stripe_prices {
            None => CheckoutItem::Pack {
                credits,
                name: name.clone(),
            },
            Some(sp) => CheckoutItem::Subscription {
                plan_id: id.clone(),
                provider_price_id: sp.get(&currency).cloned().ok_or_else(|| {
                    Error::Internal(format!("plan {id} has no Stripe price for {currency}"))
                })?,
            },
        };
        let base = &self.settings.public_url;
        let order_id = Uuid::now_v7();
        let success = input
            .success_url
            .unwrap_or_else(|| format!("{base}/billing?order={order_id}&status=paid"));
        let cancel = input
            .cancel_url
            .unwrap_or_else(|| format!("{base}/billing?order={order_id}&status=cancelled"));
        let allowed = &self.settings.redirect_hosts;
        check_redirect("success_url", &success, base, allowed)?;
        check_redirect("cancel_url", &cancel, base, allowed)?;
        let now = self.now();
        let mut order = Order {
            id: order_id,
            org_id: p.org_id,
            created_by: Some(p.user.id),
            provider: provider_name,
            item_kind: kind.into(),
            item_id: id,
            credits,
            amount_minor: amount,
            currency: currency.clone(),
            status: OrderStatus::Open,
            provider_ref: None,
            payment_ref: None,
            customer_ref: None,
            refunded_minor: 0,
            created_at: now,
            paid_at: None,
            updated_at: now,
        };
        self.store.create_order(&order).await?;
        let customer_ref = match order.provider.as_str() {
            "stripe" => self.store.latest_customer_ref(p.org_id, "stripe").await?,
            _ => None,
        };
        let req = CheckoutRequest {
            order_id,
            org_id: p.org_id,
            item,
            amount_minor: amount,
            currency,
            customer_email: Some(p.user.email.clone()),
            customer_ref,
            success_url: success,
            cancel_url: cancel,
        };
        let opened = match (&self.payments.razorpay, order.provider.as_str()) {
            (Some(r), "razorpay") if input.hosted => r.create_payment_link(&req).await,
            _ => provider.create_checkout(&req).await,
        };
        match opened {
            Ok(c) => {
                self.store
                    .set_order_checkout(
                        order_id,
                        Some(&c.provider_ref),
                        OrderStatus::Open,
                        self.now(),
                    )
                    .await?;
                order.provider_ref = Some(c.provider_ref.clone());
                Ok((order, c))
            }
            Err(e) => {
                self.store
                    .set_order_checkout(order_id, None, OrderStatus::Failed, self.now())
                    .await?;
                Err(provider_error(e))
            }
        }
    }

    /// The organisation's orders, oldest first.
    pub async fn orders(&self, p: &Principal, page: PageRequest) -> Result<Page<Order>> {
        p.require(Scope::BillingRead, Permission::BillingRead)?;
        let rows = self.store.list_orders(p.org_id, page).await?;
        Ok(page.finish(rows, |o| o.id))
    }

    /// One order of the organisation.
    pub async fn order(&self, p: &Principal, id: Uuid) -> Result<Order> {
        p.require(Scope::BillingRead, Permission::BillingRead)?;
        self.store
            .order_in_org(p.org_id, id)
            .await?
            .ok_or(Error::NotFound)
    }

    /// An order of the caller's organisation paid through Razorpay, with the Razorpay client
    /// that checks its signatures (owners only).
    async fn razorpay_order(&self, p: &Principal, id: Uuid) -> Result<(Order, Arc<Razorpay>)> {
        p.require(Scope::BillingWrite, Permission::BillingManage)?;
        let order = self
            .store
            .order_in_org(p.org_id, id)
            .await?
            .ok_or(Error::NotFound)?;
        let razorpay = self
            .payments
            .razorpay
            .clone()
            .filter(|_| order.provider == "razorpay")
            .ok_or_else(|| Error::State("this order is not paid through Razorpay".into()))?;
        Ok((order, razorpay))
    }

    /// Razorpay Checkout.js hands the buyer's browser a payment id and a signature; checked
    /// here, they fulfil the order at once (the `payment.captured` webhook does the same, once).
    pub async fn confirm_razorpay_payment(
        &self,
        p: &Principal,
        id: Uuid,
        razorpay_order_id: &str,
        razorpay_payment_id: &str,
        signature: &str,
    ) -> Result<Order> {
        let (order, razorpay) = self.razorpay_order(p, id).await?;
        if order.provider_ref.as_deref() != Some(razorpay_order_id)
            || !razorpay.verify_payment_signature(razorpay_order_id, razorpay_payment_id, signature)
        {
            return Err(Error::BadSignature(
                "the payment signature does not match this order".into(),
            ));
        }
        self.fulfil(&order, Some(razorpay_payment_id), None, None)
            .await?;
        self.store
            .order_in_org(p.org_id, id)
            .await?
            .ok_or(Error::NotFound)
    }

    /// The buyer is back from a Razorpay Payment Link with the signed callback query; checked
    /// here, it fulfils the order at once (the `payment_link.paid` webhook does the same, once).
    /// `reference_id` is our order id, as the link was opened with.
    pub async fn confirm_razorpay_link(
        &self,
        p: &Principal,
        link_id: &str,
        reference_id: &str,
        status: &str,
        payment_id: &str,
        signature: &str,
    ) -> Result<Order> {
        let bad = || Error::BadSignature("the payment signature does not match this order".into());
        let id = Uuid::parse_str(reference_id).map_err(|_| bad())?;
        let (order, razorpay) = self.razorpay_order(p, id).await?;
        if order.provider_ref.as_deref() != Some(link_id)
            || !razorpay.verify_payment_link_signature(
                link_id,
                reference_id,
                status,
                payment_id,
                signature,
            )
        {
            return Err(bad());
        }
        if status != "paid" {
            return Err(Error::State(format!(
                "the payment link is {status}, not paid"
            )));
        }
        self.fulfil(&order, Some(payment_id), None, None).await?;
        self.store
            .order_in_org(p.org_id, id)
            .await?
            .ok_or(Error::NotFound)
    }

    /// A Stripe customer-portal link for the organisation (invoices, payment methods).
    pub async fn billing_portal(
        &self,
        p: &Principal,
        return_url: Option<String>,
    ) -> Result<String> {
        p.require(Scope::BillingWrite, Permission::BillingManage)?;
        let stripe = self
            .payments
            .stripe
            .clone()
            .ok_or_else(|| Error::State("Stripe is not configured on this instance".into()))?;
        let customer = self
            .store
            .latest_customer_ref(p.org_id, "stripe")
            .await?
            .ok_or_else(|| {
                Error::State("no Stripe purchase yet: the portal opens after the first one".into())
            })?;
        let back = return_url.unwrap_or_else(|| format!("{}/billing", self.settings.public_url));
        check_redirect(
            "return_url",
            &back,
            &self.settings.public_url,
            &self.settings.redirect_hosts,
        )?;
        stripe
            .portal_url(&customer, &back)
            .await
            .map_err(provider_error)
    }

    /// A provider's webhook: verified, de-duplicated by event id, applied idempotently.
    /// Returns what was done, for the log and the answer.
    pub async fn payment_webhook(
        &self,
        provider: &str,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<String> {
        let Some(p) = self.payments.get(provider) else {
            return Err(Error::NotFound);
        };
        let now = self.now();
        let event = p.parse_webhook(headers, body, now).map_err(webhook_error)?;
        if let Some(outcome) = self.store.payment_event(provider, &event.id).await? {
            return Ok(format!("duplicate of an event already handled ({outcome})"));
        }
        let outcome = self.apply_payment_event(provider, &event).await?;
        tracing::info!(provider, event = %event.id, kind = %event.event_type, outcome, "payment event");
        self.store
            .record_payment_event(provider, &event.id, &event.event_type, &outcome, now)
            .await?;
        Ok(outcome)
    }

    async fn apply_payment_event(&self, provider: &str, ev: &PaymentEvent) -> Result<String> {
        match &ev.kind {
            EventKind::CheckoutCompleted {
                order_id,
                provider_ref,
                customer_ref,
                subscription_ref,
                payment_ref,
                amount_minor,
                currency,
                paid,
            } => {
                // The session id is the provider's own; metadata only cross-checks it.
                let order = self
                    .store
                    .order_by_provider_ref(provider, provider_ref)
                    .await?
                    .filter(|o| order_id.is_none_or(|id| id == o.id));
                let Some(order) = order else {
                    return Ok("ignored: not an order of this instance".into());
                };
                if !paid {
                    return Ok("waiting: checkout completed, payment still pending".into());
                }
                if order.item_kind == "plan" {
                    return self
                        .subscribed(&order, subscription_ref.as_deref(), customer_ref.as_deref())
                        .await;
                }
                self.paid_event(
                    &order,
                    *amount_minor,
                    currency.as_deref(),
                    payment_ref.as_deref(),
                    customer_ref.as_deref(),
                )
                .await
            }
            EventKind::PaymentCaptured {
                order_ref,
                payment_ref,
                amount_minor,
                currency,
                order_id,
            } => {
                // `order_id` is Razorpay's own field; the notes come from the buyer's browser
                // and only cross-check it.
                let order = match order_ref {
                    Some(r) => self.store.order_by_provider_ref(provider, r).await?,
                    None => None,
                }
                .filter(|o| order_id.is_none_or(|id| id == o.id));
                let Some(order) = order else {
                    return Ok("ignored: not an order of this instance".into());
                };
                self.paid_event(
                    &order,
                    Some(*amount_minor),
                    Some(currency),
                    Some(payment_ref),
                    None,
                )
                .await
            }
            EventKind::ChargeRefunded {
                payment_ref,
                amount_refunded_minor,
                ..
            } => {
                let Some(payment_ref) = payment_ref else {
                    return Ok("ignored: refund of a charge without a payment intent".into());
                };
                self.refund_event(
                    provider,
                    payment_ref,
                    RefundAmount::Total(*amount_refunded_minor),
                    ev.created,
                )
                .await
            }
            EventKind::RefundProcessed {
                payment_ref,
                refund_ref,
                amount_minor,
                ..
            } => {
                self.refund_event(
                    provider,
                    payment_ref,
                    RefundAmount::One {
                        refund_ref,
                        amount: *amount_minor,
                    },
                    ev.created,
                )
                .await
            }
            EventKind::InvoicePaid {
                invoice_ref,
                customer_ref,
                subscription_ref,
                amount_minor,
                currency,
                period_end,
                price_ref,
                ..
            } => {
                let Some(sub_ref) = subscription_ref else {
                    return Ok("ignored: an invoice that is not for a subscription".into());
                };
                self.period_paid(
                    provider,
                    PeriodPaid {
                        invoice_ref,
                        customer_ref,
                        subscription_ref: sub_ref,
                        amount_minor: *amount_minor,
                        currency,
                        period_end: *period_end,
                        price_ref: price_ref.as_deref(),
                    },
                )
                .await
            }
            EventKind::SubscriptionUpdated {
                subscription_ref,
                status,
                price_ref,
                current_period_end,
                cancel_at_period_end,
                ..
            } => {
                let Some(mut sub) = self
                    .store
                    .subscription_by_ref(provider, subscription_ref)
                    .await?
                else {
                    return Err(Error::State(format!(
                        "subscription {subscription_ref} is not known yet; deliver this again later"
                    )));
                };
                if ev.created.is_some_and(|t| t < sub.last_event_at) {
                    return Ok(format!(
                        "ignored: older than the last change of {subscription_ref}"
                    ));
                }
                sub.last_event_at = ev.created.unwrap_or(sub.last_event_at);
                if let Some(plan) = price_ref.as_deref().and_then(|p| self.plan_by_price(p)) {
                    sub.plan_id = plan.id.clone();
                }
                sub.status = status.clone();
                sub.current_period_end = current_period_end.and_then(unix);
                sub.cancel_at_period_end = *cancel_at_period_end;
                sub.updated_at = self.now();
                self.store.upsert_subscription(&sub).await?;
                Ok(format!(
                    "subscription {subscription_ref}: {status}, plan {}",
                    sub.plan_id
                ))
            }
            EventKind::SubscriptionDeleted {
                subscription_ref, ..
            } => {
                let Some(mut sub) = self
                    .store
                    .subscription_by_ref(provider, subscription_ref)
                    .await?
                else {
                    return Ok(format!(
                        "ignored: subscription {subscription_ref} is not ours"
                    ));
                };
                if ev.created.is_some_and(|t| t < sub.last_event_at) {
                    return Ok(format!(
                        "ignored: older than the last change of {subscription_ref}"
                    ));
                }
                sub.last_event_at = ev.created.unwrap_or(sub.last_event_at);
                sub.status = "canceled".into();
                sub.updated_at = self.now();
                self.store.upsert_subscription(&sub).await?;
                Ok(format!("subscription {subscription_ref} ended"))
            }

            EventKind::Other => Ok(format!("acknowledged: {} is not handled", ev.event_type)),
        }
    }

    async fn paid_event(
        &self,
        order: &Order,
        amount: Option<i64>,
        currency: Option<&str>,
        payment_ref: Option<&str>,
        customer_ref: Option<&str>,
    ) -> Result<String> {
        let currency_ok = currency.is_none_or(|c| c.eq_ignore_ascii_case(&order.currency));
        if amount.is_some_and(|a| a != order.amount_minor) || !currency_ok {
            tracing::error!(order = %order.id, ?amount, ?currency, "paid amount differs from the order; credits not added");
            return Ok(format!(
                "refused: paid {} {} for an order of {} {}",
                amount.unwrap_or_default(),
                currency.unwrap_or_default(),
                order.amount_minor,
                order.currency
            ));
        }
        self.fulfil(order, payment_ref, customer_ref, None).await?;
        Ok(format!(
            "fulfilled order {}: +{} credits",
            order.id, order.credits
        ))
    }

    /// Adds an order's credits (once, by the order's business key) and marks it paid.
    async fn fulfil(
        &self,
        order: &Order,
        payment_ref: Option<&str>,
        customer_ref: Option<&str>,
        expires_at: Option<OffsetDateTime>,
    ) -> Result<()> {
        let now = self.now();
        let mut e = LedgerEntry::new(
            order.org_id,
            EntryKind::Grant,
            format!("order:{}", order.id),
            now,
        );
        e.amount = order.credits;
        // A plan period's credits expire with the period.
        e.expires_at = expires_at.filter(|t| *t > now);
        e.source = Some(
            if order.item_kind == "plan" {
                GrantSource::Plan
            } else {
                GrantSource::Purchase
            }
            .as_str()
            .into(),
        );
        e.reason = Some(format!("order {} ({})", order.id, order.item_id));
        e.actor_id = order.created_by;
        self.store.ledger_credit(&e).await?;
        self.store
            .mark_order_paid(order.id, payment_ref, customer_ref, now)
            .await?;
        // The invoice is the receipt; a retried fulfilment finds the one issued before and does
        // not email it again.
        let paid = self
            .store
            .order_by_id(order.id)
            .await?
            .ok_or(Error::NotFound)?;
        if let crate::ledger::Applied::New(inv) = self.issue_invoice(&paid).await?
            && let Err(e) = self.send_receipt(&inv, &paid).await
        {
            tracing::warn!(invoice = %inv.id, error = %e, "could not email the receipt; it stays downloadable");
        }
        Ok(())
    }

    async fn refund_event(
        &self,
        provider: &str,
        payment_ref: &str,
        refund: RefundAmount<'_>,
        created: Option<i64>,
    ) -> Result<String> {
        let Some(mut order) = self
            .store
            .order_by_payment_ref(provider, payment_ref)
            .await?
        else {
            // The payment event may still be on its way: ask the provider to deliver again,
            // for an hour; after that it is a payment this instance does not know.
            let fresh = created.is_none_or(|t| self.now().unix_timestamp() - t < 3600);
            if fresh {
                return Err(Error::State(format!(
                    "no paid order for payment {payment_ref} yet; deliver this refund again later"
                )));
            }
            return Ok(format!("ignored: no order was paid by {payment_ref}"));
        };
        let key_suffix = match refund {
            RefundAmount::Total(t) => t.to_string(),
            RefundAmount::One { refund_ref, .. } => refund_ref.to_owned(),
        };
        let key = format!("refund:{}:{key_suffix}", order.id);
        if self
            .store
            .ledger_entry_by_key(order.org_id, &key)
            .await?
            .is_some()
        {
            return Ok(format!("refund {key_suffix} already applied"));
        }
        // Claim the step from the refunded total seen to the new one with a conditional update:
        // of two concurrent refunds one claims and the other reads again, so credits are taken
        // for each refunded cent once.
        let (before, total) = loop {
            let total = match refund {
                RefundAmount::Total(t) => t,
                RefundAmount::One { amount, .. } => order.refunded_minor + amount,
            }
            .clamp(0, order.amount_minor);
            if total <= order.refunded_minor {
                return Ok("nothing new refunded".into());
            }
            let status = if total >= order.amount_minor {
                OrderStatus::Refunded
            } else {
                OrderStatus::Paid
            };
            if self
                .store
                .claim_order_refund(order.id, order.refunded_minor, total, status, self.now())
                .await?
            {
                break (order.refunded_minor, total);
            }
            order = self
                .store
                .order_by_id(order.id)
                .await?
                .ok_or(Error::NotFound)?;
        };
        // Credits in proportion to the money given back; the whole pack for a full refund.
        let share = |minor: i64| {
            if minor >= order.amount_minor {
                order.credits
            } else {
                (i128::from(order.credits) * i128::from(minor)
                    / i128::from(order.amount_minor.max(1))) as i64
            }
        };
        let owed = share(total) - share(before);
        let mut taken = 0;
        for _ in 0..3 {
            let balance = self.store.ledger_balance(order.org_id).await?;
            let take = owed.min(balance);
            if take <= 0 {
                break;
            }
            let now = self.now();
            let mut e = LedgerEntry::new(order.org_id, EntryKind::Adjust, key.clone(), now);
            e.amount = -take;
            e.source = Some("payment-refund".into());
            e.reason = Some(format!(
                "refund of order {}: {} of {} {} refunded",
                order.id, total, order.amount_minor, order.currency
            ));
            match self.store.ledger_debit(&e, now).await? {
                Debit::Done(_) => {
                    taken = take;
                    break;
                }
                // Spent meanwhile: try again with what is left.
                Debit::Insufficient { .. } => continue,
            }
        }
        if taken < owed {
            tracing::warn!(order = %order.id, owed, taken, "refunded credits were already spent");
        }
        Ok(format!(
            "refunded {total} {} of order {}: -{taken} credits ({} already spent)",
            order.currency,
            order.id,
            owed - taken
        ))
    }
}

/// What a paid subscription period carries.
struct PeriodPaid<'a> {
    invoice_ref: &'a str,
    customer_ref: &'a str,
    subscription_ref: &'a str,
    amount_minor: i64,
    currency: &'a str,
    period_end: Option<i64>,
    price_ref: Option<&'a str>,
}

fn unix(t: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t).ok()
}

impl Pixeld {
    fn plan_by_price(&self, price: &str) -> Option<&crate::plans::Plan> {
        self.settings
            .plans
            .iter()
            .find(|k| k.stripe_prices.values().any(|v| v == price))
    }

    /// A subscription checkout completed: the subscription is recorded; its credits come with
    /// each paid invoice.
    async fn subscribed(
        &self,
        order: &Order,
        subscription_ref: Option<&str>,
        customer_ref: Option<&str>,
    ) -> Result<String> {
        let Some(sub_ref) = subscription_ref else {
            return Ok("ignored: a plan checkout without a subscription".into());
        };
        let now = self.now();
        if self
            .store
            .subscription_by_ref(&order.provider, sub_ref)
            .await?
            .is_none()
        {
            self.store
                .upsert_subscription(&crate::plans::Subscription {
                    id: Uuid::now_v7(),
                    org_id: order.org_id,
                    provider: order.provider.clone(),
                    plan_id: order.item_id.clone(),
                    status: "active".into(),
                    provider_ref: sub_ref.to_owned(),
                    customer_ref: customer_ref.map(str::to_owned),
                    current_period_end: None,
                    cancel_at_period_end: false,
                    last_event_at: 0,
                    created_at: now,
                    updated_at: now,
                })
                .await?;
        }
        self.store
            .mark_order_paid(order.id, None, customer_ref, now)
            .await?;
        Ok(format!("subscribed to {} ({sub_ref})", order.item_id))
    }

    /// A subscription period was paid: recorded as an order of its own, whose credits expire
    /// with the period, with its invoice.
    async fn period_paid(&self, provider: &str, e: PeriodPaid<'_>) -> Result<String> {
        let Some(sub) = self
            .store
            .subscription_by_ref(provider, e.subscription_ref)
            .await?
        else {
            // Stripe may send the first invoice before the checkout's completion.
            return Err(Error::State(format!(
                "subscription {} is not known yet; deliver this invoice again later",
                e.subscription_ref
            )));
        };
        let plan = e
            .price_ref
            .and_then(|p| self.plan_by_price(p))
            .or_else(|| self.settings.plans.iter().find(|k| k.id == sub.plan_id));
        let Some(plan) = plan else {
            tracing::error!(subscription = %sub.provider_ref, plan = %sub.plan_id, "paid invoice for a plan that is not configured");
            return Ok(format!("refused: plan {} is not configured", sub.plan_id));
        };
        let order = match self
            .store
            .order_by_provider_ref(provider, e.invoice_ref)
            .await?
        {
            Some(o) => o,
            None => {
                let now = self.now();
                let o = Order {
                    id: Uuid::now_v7(),
                    org_id: sub.org_id,
                    created_by: None,
                    provider: provider.to_owned(),
                    item_kind: "plan".into(),
                    item_id: plan.id.clone(),
                    credits: plan.monthly_credits,
                    amount_minor: e.amount_minor,
                    currency: e.currency.to_ascii_lowercase(),
                    status: OrderStatus::Open,
                    provider_ref: Some(e.invoice_ref.to_owned()),
                    payment_ref: None,
                    customer_ref: Some(e.customer_ref.to_owned()),
                    refunded_minor: 0,
                    created_at: now,
                    paid_at: None,
                    updated_at: now,
                };
                match self.store.create_order(&o).await {
                    Ok(()) => o,
                    // A concurrent delivery of the same invoice wrote it first.
                    Err(crate::store::StoreError::Conflict(_)) => self
                        .store
                        .order_by_provider_ref(provider, e.invoice_ref)
                        .await?
                        .ok_or(Error::NotFound)?,
                    Err(err) => return Err(err.into()),
                }
            }
        };
        let price = plan.prices.get(&e.currency.to_ascii_lowercase()).copied();
        if price != Some(e.amount_minor) {
            // Prorations, trials and coupons bill other amounts: they add no month of credits.
            return Ok(format!(
                "acknowledged: {} {} is not the {} plan's monthly price",
                e.amount_minor, e.currency, plan.id
            ));
        }
        let ends = e
            .period_end
            .and_then(unix)
            .unwrap_or_else(|| self.now() + time::Duration::days(31));
        if ends <= self.now() {
            return Ok(format!(
                "acknowledged: the period paid by {} is already over",
                e.invoice_ref
            ));
        }
        self.fulfil(
            &order,
            Some(e.invoice_ref),
            Some(e.customer_ref),
            Some(ends),
        )
        .await?;
        Ok(format!(
            "plan {} paid until {ends}: +{} credits",
            plan.id, plan.monthly_credits
        ))
    }
}

enum RefundAmount<'a> {
    /// The charge's refunded total so far (Stripe `charge.refunded`).
    Total(i64),
    /// One refund (Razorpay `refund.processed`).
    One { refund_ref: &'a str, amount: i64 },
}
