//! Plans: the free plan's monthly credits (see `credits`) and paid plans sold as Stripe
//! subscriptions, whose every paid period grants the plan's credits until the period ends.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::principal::Principal;
use crate::roles::Permission;
use crate::tokens::Scope;
use crate::{Pixeld, Result};

/// A paid plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Stable id, e.g. `pro`.
    pub id: String,
    /// Name shown to buyers.
    pub name: String,
    /// Credits each paid month adds; they expire when the period ends.
    pub monthly_credits: i64,
    /// Monthly price per currency in minor units, keyed by lowercase ISO 4217 code.
    pub prices: BTreeMap<String, i64>,
    /// The Stripe price (`price_…`, recurring monthly) for each currency in `prices`.
    #[serde(default)]
    pub stripe_prices: BTreeMap<String, String>,
    /// What the plan includes, as shown on the pricing page.
    #[serde(default)]
    pub features: Vec<String>,
}

/// An organisation's subscription to a paid plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// UUIDv7.
    pub id: Uuid,
    /// The subscribing organisation.
    pub org_id: Uuid,
    /// `stripe`.
    pub provider: String,
    /// The plan.
    pub plan_id: String,
    /// The provider's status (`active`, `trialing`, `past_due`, `canceled`, …).
    pub status: String,
    /// The provider's subscription id (`sub_…`).
    pub provider_ref: String,
    /// The provider's customer id.
    pub customer_ref: Option<String>,
    /// When the paid period ends.
    pub current_period_end: Option<OffsetDateTime>,
    /// Ends at the period's end instead of renewing.
    pub cancel_at_period_end: bool,
    /// The provider's time (Unix seconds) of the last event applied, so an older event that
    /// arrives late does not undo a newer one.
    pub last_event_at: i64,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

impl Subscription {
    /// Whether it gives the plan now.
    pub fn is_live(&self) -> bool {
        matches!(self.status.as_str(), "active" | "trialing" | "past_due")
    }
}

/// The plan an organisation is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentPlan {
    /// `free` or a paid plan's id.
    pub plan_id: String,
    /// Credits it adds each month.
    pub monthly_credits: i64,
    /// The subscription behind a paid plan.
    pub subscription: Option<Subscription>,
}

impl Pixeld {
    /// The paid plans on sale.
    pub fn plans(&self) -> &[Plan] {
        &self.settings.plans
    }

    /// The plan of the caller's organisation.
    pub async fn current_plan(&self, p: &Principal) -> Result<CurrentPlan> {
        p.require(Scope::BillingRead, Permission::BillingRead)?;
        let sub = self.store.live_subscription(p.org_id).await?;
        Ok(match sub {
            Some(s) => CurrentPlan {
                monthly_credits: self
                    .settings
                    .plans
                    .iter()
                    .find(|k| k.id == s.plan_id)
                    .map_or(0, |k| k.monthly_credits),
                plan_id: s.plan_id.clone(),
                subscription: Some(s),
            },
            None => CurrentPlan {
                plan_id: "free".into(),
                monthly_credits: self.settings.credits.free_monthly,
                subscription: None,
            },
        })
    }
}
