//! pixeld's domain: accounts, sessions, two-factor sign-in, API tokens and organisations.
//!
//! Everything here is plain Rust over the [`store::Store`] trait, a [`clock::Clock`] and a
//! [`mail::Mailer`]; it never sees SQL or HTTP. The HTTP server and the CLI call the use cases
//! on [`Pixeld`], and the two storage backends in `pixeld-store` implement [`store::Store`].

pub mod accounts;
pub mod analytics;
pub mod billing;
pub mod clock;
pub mod consent;
pub mod credits;
pub mod describe;
pub mod email;
pub mod error;
pub mod export;
pub mod fonts;
pub mod idempotency;
pub mod images;
pub mod invoices;
pub mod jobs;
pub mod ledger;
pub mod mail;
pub mod objects;
pub mod operators;
pub mod orgs;
pub mod page;
pub mod password;
pub mod plans;
pub mod principal;
pub mod privacy;
pub mod render_jobs;
pub mod retention;
pub mod rights;
pub mod roles;
pub mod secret;
pub mod sessions;
pub mod store;
pub mod support;
pub mod templates;
pub mod tokens;
pub mod twofactor;
pub mod usage;
pub mod webhooks;

use std::sync::Arc;

pub use error::{Error, Result};

/// Settings the use cases need; the server fills them from its configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Public base URL used in links sent by email (no trailing slash).
    pub public_url: String,
    /// A session ends after this long without a request.
    pub session_idle: time::Duration,
    /// A session ends this long after sign-in, however active.
    pub session_absolute: time::Duration,
    /// Name shown in authenticator apps for TOTP entries.
    pub totp_issuer: String,
    /// Argon2 parameters for password hashing.
    pub password_hashing: password::HashingCost,
    /// Image retention and limits.
    pub images: images::ImageSettings,
    /// How long an authenticated API token is remembered in memory (zero: never). Revocations,
    /// role changes and removals made through this process take effect at once; those made by
    /// another node or process within this time.
    pub auth_cache_ttl: std::time::Duration,
    /// Prices, the free plan and reservations.
    pub credits: credits::CreditSettings,
    /// Credit packs on sale.
    pub packs: Vec<billing::Pack>,
    /// Paid plans on sale (Stripe subscriptions).
    pub plans: Vec<plans::Plan>,
    /// The currency buyers from each country see first.
    pub currency_by_country: std::collections::BTreeMap<String, String>,
    /// The currency everyone else sees first.
    pub default_currency: String,
    /// Hosts besides this site's that checkouts may send buyers back to (https).
    pub redirect_hosts: Vec<String>,
    /// The seller and tax printed on invoices.
    pub invoices: invoices::InvoiceSettings,
    /// The retention classes (from `privacy.toml`).
    pub retention: privacy::Retention,
    /// Users must be at least this old (confirmed at sign-up).
    pub minimum_age: u8,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".into(),
            session_idle: time::Duration::days(7),
            session_absolute: time::Duration::days(30),
            totp_issuer: "pixeld".into(),
            password_hashing: password::HashingCost::Owasp,
            images: images::ImageSettings::default(),
            auth_cache_ttl: std::time::Duration::from_secs(1),
            credits: credits::CreditSettings::default(),
            packs: billing::default_packs(),
            plans: Vec::new(),
            currency_by_country: billing::default_currency_by_country(),
            default_currency: "usd".into(),
            redirect_hosts: Vec::new(),
            invoices: invoices::InvoiceSettings {
                seller: invoices::Party {
                    name: "pixeld".into(),
                    ..invoices::Party::default()
                },
                prefix: "INV".into(),
                tax_name: String::new(),
                tax_rate_bps: 0,
            },
            retention: privacy::Retention::default(),
            minimum_age: 16,
        }
    }
}

/// The dependencies the application is built from.
pub struct Parts {
    /// Where rows are kept.
    pub store: Arc<dyn store::Store>,
    /// The source of "now".
    pub clock: Arc<dyn clock::Clock>,
    /// Outgoing email.
    pub mailer: Arc<dyn mail::Mailer>,
    /// Object storage.
    pub blobs: Arc<dyn objects::BlobStore>,
    /// URL fetching.
    pub fetcher: Arc<dyn objects::Fetcher>,
}

/// The application: storage, time, mail and settings, with every use case as a method.
#[derive(Clone)]
pub struct Pixeld {
    /// Where everything is kept.
    pub store: Arc<dyn store::Store>,
    /// The source of "now" (a manual clock in tests).
    pub clock: Arc<dyn clock::Clock>,
    /// Outgoing email.
    pub mailer: Arc<dyn mail::Mailer>,
    /// Object storage.
    pub blobs: Arc<dyn objects::BlobStore>,
    /// SSRF-safe URL fetching.
    pub fetcher: Arc<dyn objects::Fetcher>,
    /// Tunables.
    pub settings: Arc<Settings>,
    /// Recently authenticated API tokens (see [`tokens::AuthCache`]).
    pub auth_cache: Arc<tokens::AuthCache>,
    /// The renderer, the render cache and renders in flight.
    pub renders: Arc<templates::RenderService>,
    /// Payment providers (none until configured).
    pub payments: Arc<billing::Providers>,
    /// AI providers (none until configured).
    pub ai: Arc<describe::AiProviders>,
    /// Free-plan grants this process has made.
    pub credits: Arc<credits::CreditState>,
    /// Signalled when this process queues a job, so an idle worker starts at once.
    pub jobs_ready: Arc<tokio::sync::Notify>,
    /// Request-log rows waiting for the usage writer.
    pub usage: Arc<usage::UsageBuffer>,
    /// Instance keys already read from the store (they never change once written).
    pub(crate) instance_keys:
        Arc<std::sync::Mutex<std::collections::HashMap<&'static str, Vec<u8>>>>,
    /// Today's analytics salt (only today's: older salts must not outlive their 48 hours).
    pub(crate) analytics_salt: Arc<std::sync::Mutex<Option<(String, String)>>>,
}

impl Pixeld {
    /// Assembles the application from its parts.
    pub fn new(parts: Parts, settings: Settings) -> Self {
        let Parts {
            store,
            clock,
            mailer,
            blobs,
            fetcher,
        } = parts;
        Self {
            store,
            clock,
            mailer,
            blobs,
            fetcher,
            auth_cache: Arc::new(tokens::AuthCache::new(settings.auth_cache_ttl)),
            renders: Arc::default(),
            credits: Arc::default(),
            payments: Arc::default(),
            ai: Arc::default(),
            jobs_ready: Arc::default(),
            usage: Arc::default(),
            instance_keys: Arc::default(),
            analytics_salt: Arc::default(),
            settings: Arc::new(settings),
        }
    }

    /// The same application with these payment providers.
    pub fn with_payments(mut self, providers: billing::Providers) -> Self {
        self.payments = Arc::new(providers);
        self
    }

    /// The same application with these AI providers.
    pub fn with_ai(mut self, providers: describe::AiProviders) -> Self {
        self.ai = Arc::new(providers);
        self
    }

    /// The instance key called `name` (e.g. the one signing unsubscribe links): created on
    /// first use, agreed on by every node through the store, then remembered by this process.
    pub(crate) async fn instance_key(&self, name: &'static str) -> Result<Vec<u8>> {
        if let Some(k) = self
            .instance_keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(k.clone());
        }
        let candidate = secret::random_base62(48);
        let key = self
            .store
            .instance_key(name, &candidate, self.now())
            .await?
            .into_bytes();
        self.instance_keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, key.clone());
        Ok(key)
    }

    /// The current time, truncated to microseconds so it survives a database round trip.
    pub fn now(&self) -> time::OffsetDateTime {
        clock::truncate(self.clock.now())
    }
}
