//! Configuration: defaults in code, then an optional TOML file, then `PIXELD_*` environment
//! variables (nested keys with `__`, e.g. `PIXELD_RATE_LIMIT__SIGN_IN_PER_MINUTE=5`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Everything `pixeld serve` can be told.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Folder for the SQLite file, objects and the email outbox (`PIXELD_DATA`).
    pub data: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Public base URL used in emailed links and for the CSRF origin check. Defaults to
    /// `http://{listen}`. A `https://` URL turns on `Secure` cookies.
    pub public_url: Option<String>,
    /// `sqlite://…` or `postgres://…`. Defaults to `sqlite://{data}/pixeld.db`.
    pub database_url: Option<String>,
    /// Trust `X-Forwarded-For` for the client IP (only behind a proxy you run).
    pub trust_proxy_headers: bool,
    /// Largest accepted request body for JSON endpoints, in bytes.
    pub max_body_bytes: usize,
    /// Seconds a request may take before it is answered with 503.
    pub request_timeout_secs: u64,
    /// Milliseconds an authenticated API token is remembered in memory (0: never). Revoking a
    /// token or changing a member takes effect at once on the node that did it, and within this
    /// time on other nodes.
    pub auth_cache_ms: u64,
    /// Sessions.
    pub session: SessionConfig,
    /// Rate limits.
    pub rate_limit: RateLimitConfig,
    /// Outgoing email.
    pub mail: MailConfig,
    /// Uploaded images.
    pub images: ImagesConfig,
    /// Object storage for uploads and outputs.
    pub objects: ObjectsConfig,
    /// Fetching images by URL.
    pub fetch: FetchConfig,
    /// The retention sweeper.
    pub retention: RetentionConfig,
    /// The API request log.
    pub usage: UsageConfig,
    /// Who runs this instance, for the privacy page.
    pub privacy: PrivacyConfig,
    /// Background workers (asynchronous renders, webhook deliveries).
    pub jobs: JobsConfig,
    /// Credits: prices of metered work and the free plan.
    pub credits: CreditsConfig,
    /// Payment providers for buying credit packs (none by default).
    pub payments: PaymentsConfig,
    /// AI providers (none by default).
    pub ai: AiConfig,
    /// The seller and tax printed on invoices and receipts.
    pub invoices: InvoicesConfig,
    /// Country database (MMDB with `country_code`) for suggesting the pricing currency; by
    /// default the one `scripts/setup` installs under `.tools/geoip/`.
    pub geoip_database: Option<PathBuf>,
}

/// What invoices print. Prices include the tax at `tax_rate_percent`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct InvoicesConfig {
    /// The seller's legal name.
    pub seller_name: String,
    /// The seller's address, one line per entry.
    pub seller_address: Vec<String>,
    /// The seller's country (ISO 3166-1 alpha-2).
    pub seller_country: Option<String>,
    /// The seller's VAT/GST number.
    pub seller_tax_id: Option<String>,
    /// A contact address printed on invoices.
    pub seller_email: Option<String>,
    /// Printed before the number: `INV` gives `INV-000001`.
    pub prefix: String,
    /// The tax the prices include (`VAT`, `GST`); empty for none.
    pub tax_name: String,
    /// Its rate in percent (e.g. 20 or 18); 0 for none.
    pub tax_rate_percent: f64,
}

impl Default for InvoicesConfig {
    fn default() -> Self {
        Self {
            seller_name: "pixeld".into(),
            seller_address: Vec::new(),
            seller_country: None,
            seller_tax_id: None,
            seller_email: None,
            prefix: "INV".into(),
            tax_name: String::new(),
            tax_rate_percent: 0.0,
        }
    }
}

/// Payment providers. Card data never reaches pixeld: buyers pay on Stripe's hosted page or in
/// Razorpay's widget, and the provider's signed webhooks (`/v1/payments/{provider}/webhook`)
/// add the credits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentsConfig {
    /// Stripe (Checkout, Customer Portal, webhooks).
    pub stripe: Option<StripeConfig>,
    /// Razorpay (orders, Checkout.js, webhooks).
    pub razorpay: Option<RazorpayConfig>,
    /// Hosts besides this site's that `success_url`, `cancel_url` and `return_url` may name
    /// (https only), e.g. your own web shop.
    pub redirect_hosts: Vec<String>,
}

/// AI providers. Nothing is sent to one unless it is configured here, and never for a user who
/// restricted processing or objected to AI providers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AiConfig {
    /// Image descriptions (alt text and tags) from a vision model behind an OpenAI-compatible
    /// Chat Completions endpoint: OpenAI, or your own Ollama / vLLM / llama.cpp server.
    pub vision: Option<VisionConfig>,
}

/// A vision model behind an OpenAI-compatible endpoint.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VisionConfig {
    /// Base URL including the version: `https://api.openai.com/v1`, or
    /// `http://127.0.0.1:11434/v1` for a local Ollama.
    pub api_base: String,
    /// Bearer key (`sk-…`); leave out for local servers that take none.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Model name, e.g. `gpt-4o-mini` or `llava:13b`.
    pub model: String,
    /// Seconds one description may take.
    #[serde(default = "vision_timeout")]
    pub timeout_secs: u64,
}

fn vision_timeout() -> u64 {
    60
}

// The key stays out of logs and `config check` output.
impl std::fmt::Debug for VisionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VisionConfig")
            .field("api_base", &self.api_base)
            .field("model", &self.model)
            .field("timeout_secs", &self.timeout_secs)
            .finish_non_exhaustive()
    }
}

/// Stripe credentials.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StripeConfig {
    /// Secret key `sk_…` (or a restricted key with Checkout and Portal write access).
    pub secret_key: String,
    /// The webhook endpoint's signing secret `whsec_…`.
    pub webhook_secret: String,
    /// API root (for tests and proxies).
    #[serde(default = "stripe_api")]
    pub api_base: String,
}

fn stripe_api() -> String {
    "https://api.stripe.com".into()
}

/// Razorpay credentials.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RazorpayConfig {
    /// Key id `rzp_…`.
    pub key_id: String,
    /// Key secret.
    pub key_secret: String,
    /// The webhook secret set in the Razorpay dashboard.
    pub webhook_secret: String,
    /// API root (for tests and proxies).
    #[serde(default = "razorpay_api")]
    pub api_base: String,
}

fn razorpay_api() -> String {
    "https://api.razorpay.com".into()
}

// Secrets stay out of logs and `config check` output.
impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RazorpayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RazorpayConfig")
            .field("key_id", &self.key_id)
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

/// Credits. Metered work (renders, previews, image transforms, upload analysis, generation,
/// product studio) reserves its price before it runs and settles after; cache hits are free.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CreditsConfig {
    /// Whether metered work costs credits (false: everything is free and nothing is recorded).
    pub metering: bool,
    /// Credits every organisation gets each calendar month (UTC) on the free plan; they
    /// expire when the month ends.
    pub free_monthly: i64,
    /// Seconds after which a reservation still held is treated as abandoned (its process
    /// died) and released by the sweeper. Must exceed `request_timeout_secs`.
    pub reservation_timeout_secs: u64,
    /// Credits per operation.
    pub prices: pixeld_core::credits::Prices,
    /// Credit packs on sale (`[[credits.packs]]` with `id`, `name`, `credits` and
    /// `prices = { usd = 1000, inr = 80000 }` in minor units).
    pub packs: Vec<pixeld_core::billing::Pack>,
    /// Paid plans sold as Stripe subscriptions (`[[credits.plans]]` with `id`, `name`,
    /// `monthly_credits`, `prices = { usd = 1900 }`, `stripe_prices = { usd = "price_…" }`,
    /// `features = […]`); none by default.
    pub plans: Vec<pixeld_core::plans::Plan>,
    /// The currency shown first to buyers from a country (`{ IN = "inr", GB = "gbp", … }`).
    pub currency_by_country: std::collections::BTreeMap<String, String>,
    /// The currency shown first to everyone else.
    pub default_currency: String,
}

impl Default for CreditsConfig {
    fn default() -> Self {
        let d = pixeld_core::credits::CreditSettings::default();
        Self {
            metering: d.metering,
            free_monthly: d.free_monthly,
            reservation_timeout_secs: d.reservation_timeout.whole_seconds() as u64,
            prices: d.prices,
            packs: pixeld_core::billing::default_packs(),
            plans: Vec::new(),
            currency_by_country: pixeld_core::billing::default_currency_by_country(),
            default_currency: "usd".into(),
        }
    }
}

/// Background workers. Every node that runs `serve` or `worker` works the shared queue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Jobs run at once by this process (0: none; run `pixeld worker` elsewhere).
    pub workers: usize,
    /// Milliseconds between looks at the queue when idle (jobs queued by this process start
    /// at once; this bounds the wait for jobs from other nodes and for retries).
    pub poll_ms: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            poll_ms: 1000,
        }
    }
}

/// Uploaded images: limits and how long they are kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ImagesConfig {
    /// Largest upload, in bytes.
    pub max_upload_bytes: u64,
    /// Largest image, in pixels (width × height).
    pub max_pixels: u64,
    /// Largest width or height.
    pub max_dimension: u32,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        Self {
            max_upload_bytes: 32 * 1024 * 1024,
            max_pixels: 50_000_000,
            max_dimension: 16_384,
        }
    }
}

/// Where objects live.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ObjectsConfig {
    /// A local folder (default `{data}/objects`).
    Local {
        /// The folder.
        path: Option<PathBuf>,
    },
    /// An S3-compatible bucket. Credentials also come from the usual `AWS_*` variables.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Region.
        #[serde(default = "default_region")]
        region: String,
        /// Endpoint for S3-compatible servers (MinIO, moto, R2…).
        endpoint: Option<String>,
        /// Access key id.
        access_key_id: Option<String>,
        /// Secret access key.
        secret_access_key: Option<String>,
        /// Allow a plain-http endpoint (local test servers).
        #[serde(default)]
        allow_http: bool,
    },
}

fn default_region() -> String {
    "us-east-1".into()
}

impl Default for ObjectsConfig {
    fn default() -> Self {
        ObjectsConfig::Local { path: None }
    }
}

/// Fetching user-supplied URLs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FetchConfig {
    /// Networks (CIDR) that may be fetched even though they are private or reserved, e.g. an
    /// internal asset server. Empty by default.
    pub allow_networks: Vec<String>,
    /// Seconds a fetch may take.
    pub timeout_secs: u64,
    /// Redirects followed at most.
    pub max_redirects: usize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self {
            allow_networks: Vec::new(),
            timeout_secs: 15,
            max_redirects: 3,
        }
    }
}

/// The retention sweeper inside `serve`, and the retention classes it enforces.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Seconds between sweeps (0 turns the in-server sweeper off; run `pixeld retention run`
    /// from cron instead).
    pub sweep_interval_secs: u64,
    /// An operator's `privacy.toml`: the classes it declares replace the compiled-in ones (the
    /// rest stay). `/privacy` prints whatever is in force.
    pub privacy_file: Option<PathBuf>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            sweep_interval_secs: 300,
            privacy_file: None,
        }
    }
}

/// Who is responsible for the data on this instance (printed on `/privacy`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// The organisation or person running the instance (the controller).
    pub controller: Option<String>,
    /// Where privacy questions and requests go (an email address or URL).
    pub contact: Option<String>,
    /// The minimum age of users.
    pub minimum_age: u8,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self {
            controller: None,
            contact: None,
            minimum_age: 16,
        }
    }
}

/// The API request (usage) log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UsageConfig {
    /// Log every API request (what users see under `/v1/usage`).
    pub enabled: bool,
    /// Milliseconds between batched writes of the log.
    pub flush_ms: u64,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            flush_ms: 1000,
        }
    }
}

/// Session lifetimes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// A session ends after this many minutes without a request.
    pub idle_minutes: i64,
    /// A session ends this many hours after sign-in, however active.
    pub absolute_hours: i64,
}

/// Requests per minute, with bursts up to the same number.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Per client IP, all requests.
    pub per_ip_per_minute: u32,
    /// Per API token (or session), all requests.
    pub per_credential_per_minute: u32,
    /// Per client IP on sign-in, sign-up, verification and password reset.
    pub sign_in_per_minute: u32,
    /// Per client IP on the landing page's live demo render (no account, no credits).
    pub demo_per_minute: u32,
}

/// Where email goes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// `From:` address.
    pub from: String,
    /// `smtp://user:pass@host:port` (STARTTLS with `?tls=required`), `smtps://…` for implicit
    /// TLS. When absent, messages are written as `.eml` files to `{data}/outbox/`.
    pub smtp_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data: PathBuf::from("data"),
            listen: "127.0.0.1:8080".parse().expect("valid default address"),
            public_url: None,
            database_url: None,
            trust_proxy_headers: false,
            max_body_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            auth_cache_ms: 1000,
            session: SessionConfig::default(),
            rate_limit: RateLimitConfig::default(),
            mail: MailConfig::default(),
            images: ImagesConfig::default(),
            objects: ObjectsConfig::default(),
            fetch: FetchConfig::default(),
            retention: RetentionConfig::default(),
            usage: UsageConfig::default(),
            privacy: PrivacyConfig::default(),
            jobs: JobsConfig::default(),
            credits: CreditsConfig::default(),
            payments: PaymentsConfig::default(),
            ai: AiConfig::default(),
            invoices: InvoicesConfig::default(),
            geoip_database: None,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_minutes: 7 * 24 * 60,
            absolute_hours: 30 * 24,
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_ip_per_minute: 1200,
            per_credential_per_minute: 600,
            sign_in_per_minute: 10,
            demo_per_minute: 30,
        }
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            from: "pixeld <no-reply@localhost>".into(),
            smtp_url: None,
        }
    }
}

/// `PIXELD_*` variables that are not configuration keys (read by the CLI, logging or tests), so
/// the strict configuration parser must not see them; `PIXELD_TEST_*` are skipped as well.
const NOT_CONFIG: &[&str] = &["CONFIG", "ADMIN_PASSWORD", "LOG"];

/// A configuration that cannot be used, with every reason.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    /// Loads defaults, then `file` (if given), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            if !f.exists() {
                return Err(ConfigError(vec![format!(
                    "config file {} does not exist",
                    f.display()
                )]));
            }
            fig = fig.merge(Toml::file(f));
        }
        // PIXELD_DATA is the documented short form; the rest follow the nested naming.
        fig = fig.merge(
            Env::prefixed("PIXELD_")
                .split("__")
                .ignore(NOT_CONFIG)
                .filter(|k| !k.as_str().to_ascii_lowercase().starts_with("test_")),
        );
        let config: Config = fig
            .extract()
            .map_err(|e| ConfigError(e.into_iter().map(|e| e.to_string()).collect()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        if let Some(u) = &self.public_url {
            match url::Url::parse(u) {
                Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => {}
                _ => errors.push(format!(
                    "public_url `{u}` must be an absolute http:// or https:// URL"
                )),
            }
        }
        if let Some(db) = &self.database_url
            && !(db.starts_with("sqlite:")
                || db.starts_with("postgres:")
                || db.starts_with("postgresql:"))
        {
            errors.push(format!(
                "database_url `{}` must start with sqlite: or postgres:",
                pixeld_store::redact(db)
            ));
        }
        if let Some(smtp) = &self.mail.smtp_url
            && !(smtp.starts_with("smtp://") || smtp.starts_with("smtps://"))
        {
            errors.push("mail.smtp_url must start with smtp:// or smtps://".into());
        }
        if self.session.idle_minutes < 1 {
            errors.push("session.idle_minutes must be at least 1".into());
        }
        if self.jobs.workers > 64 {
            errors.push("jobs.workers must be at most 64".into());
        }
        if !(10..=60_000).contains(&self.jobs.poll_ms) {
            errors.push("jobs.poll_ms must be between 10 and 60000".into());
        }
        if self.session.absolute_hours < 1 {
            errors.push("session.absolute_hours must be at least 1".into());
        }
        for (name, v) in [
            (
                "rate_limit.per_ip_per_minute",
                self.rate_limit.per_ip_per_minute,
            ),
            (
                "rate_limit.per_credential_per_minute",
                self.rate_limit.per_credential_per_minute,
            ),
            (
                "rate_limit.sign_in_per_minute",
                self.rate_limit.sign_in_per_minute,
            ),
            (
                "rate_limit.demo_per_minute",
                self.rate_limit.demo_per_minute,
            ),
        ] {
            if v == 0 {
                errors.push(format!("{name} must be at least 1"));
            }
        }
        if self.max_body_bytes < 1024 {
            errors.push("max_body_bytes must be at least 1024".into());
        }
        if self.auth_cache_ms > 60_000 {
            errors.push(
                "auth_cache_ms must be at most 60000 (revocations must not wait longer)".into(),
            );
        }
        if self.request_timeout_secs == 0 {
            errors.push("request_timeout_secs must be at least 1".into());
        }
        if let Err(e) = self.retention_classes() {
            errors.push(e);
        }
        if !(13..=21).contains(&self.privacy.minimum_age) {
            errors.push("privacy.minimum_age must be between 13 and 21".into());
        }
        if self.usage.flush_ms == 0 || self.usage.flush_ms > 60_000 {
            errors.push("usage.flush_ms must be between 1 and 60000".into());
        }
        if self.images.max_upload_bytes < 1024 {
            errors.push("images.max_upload_bytes must be at least 1024".into());
        }
        if self.images.max_pixels < 1 || self.images.max_dimension < 1 {
            errors.push("images.max_pixels and images.max_dimension must be at least 1".into());
        }
        for n in &self.fetch.allow_networks {
            if n.parse::<ipnet::IpNet>().is_err() {
                errors.push(format!(
                    "fetch.allow_networks: `{n}` is not a network like 10.0.0.0/8"
                ));
            }
        }
        if let Some(v) = &self.ai.vision {
            match url::Url::parse(&v.api_base) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => errors.push(format!(
                    "ai.vision.api_base must be an http(s) URL such as https://api.openai.com/v1, not {:?}",
                    v.api_base
                )),
            }
            if v.model.trim().is_empty() {
                errors.push("ai.vision.model must name a model, e.g. gpt-4o-mini".into());
            }
            if !(1..=600).contains(&v.timeout_secs) {
                errors.push("ai.vision.timeout_secs must be between 1 and 600".into());
            }
        }
        if self.fetch.timeout_secs == 0 {
            errors.push("fetch.timeout_secs must be at least 1".into());
        }
        let p = &self.credits.prices;
        for (name, v) in [
            ("render", p.render),
            ("preview", p.preview),
            ("optimize", p.optimize),
            ("analyze", p.analyze),
            ("describe", p.describe),
            ("generate", p.generate),
            ("studio", p.studio),
        ] {
            if !(0..=1_000_000).contains(&v) {
                errors.push(format!(
                    "credits.prices.{name} must be between 0 and 1000000"
                ));
            }
        }
        if !(0..=pixeld_core::credits::MAX_ADJUSTMENT).contains(&self.credits.free_monthly) {
            errors.push("credits.free_monthly must be between 0 and 1000000000".into());
        }
        if self.credits.reservation_timeout_secs <= self.request_timeout_secs
            || self.credits.reservation_timeout_secs > 7 * 24 * 3600
        {
            errors.push(
                "credits.reservation_timeout_secs must be longer than request_timeout_secs and at most 604800 (7 days)"
                    .into(),
            );
        }
        let mut ids = std::collections::HashSet::new();
        for pack in &self.credits.packs {
            if pack.id.is_empty()
                || !pack
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                errors.push(format!(
                    "credits.packs: id `{}` must be letters, digits, - or _",
                    pack.id
                ));
            }
            if !ids.insert(pack.id.as_str()) {
                errors.push(format!("credits.packs: id `{}` is used twice", pack.id));
            }
            if !(1..=pixeld_core::credits::MAX_ADJUSTMENT).contains(&pack.credits) {
                errors.push(format!(
                    "credits.packs.{}: credits must be between 1 and 1000000000",
                    pack.id
                ));
            }
            if pack.prices.is_empty() {
                errors.push(format!(
                    "credits.packs.{}: needs at least one price",
                    pack.id
                ));
            }
            for (cur, amount) in &pack.prices {
                if cur.len() != 3 || !cur.chars().all(|c| c.is_ascii_lowercase()) {
                    errors.push(format!(
                        "credits.packs.{}: `{cur}` is not a lowercase ISO 4217 code like usd",
                        pack.id
                    ));
                }
                if *amount < 1 {
                    errors.push(format!(
                        "credits.packs.{}: the {cur} price must be at least 1",
                        pack.id
                    ));
                }
            }
        }
        let iso = |c: &str| c.len() == 3 && c.chars().all(|x| x.is_ascii_lowercase());
        if !iso(&self.credits.default_currency) {
            errors
                .push("credits.default_currency must be a lowercase ISO 4217 code like usd".into());
        }
        for (country, cur) in &self.credits.currency_by_country {
            if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) || !iso(cur) {
                errors.push(format!(
                    "credits.currency_by_country: `{country} = {cur}` must map an ISO country (IN) to a currency (inr)"
                ));
            }
        }
        if !(0.0..=100.0).contains(&self.invoices.tax_rate_percent) {
            errors.push("invoices.tax_rate_percent must be between 0 and 100".into());
        }
        if self.invoices.prefix.len() > 16
            || !self
                .invoices
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            errors.push("invoices.prefix must be at most 16 letters, digits or -".into());
        }
        if let Err(e) = self.invoice_settings().seller.validated() {
            errors.push(format!("invoices.seller_*: {e}"));
        }
        for plan in &self.credits.plans {
            if plan.id == "free"
                || plan.id.is_empty()
                || ids.contains(plan.id.as_str())
                || !plan
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                errors.push(format!(
                    "credits.plans: id `{}` must be unique letters, digits, - or _ (and not `free`)",
                    plan.id
                ));
            }
            if !(1..=pixeld_core::credits::MAX_ADJUSTMENT).contains(&plan.monthly_credits) {
                errors.push(format!(
                    "credits.plans.{}: monthly_credits must be at least 1",
                    plan.id
                ));
            }
            if plan.prices.is_empty() {
                errors.push(format!(
                    "credits.plans.{}: needs at least one price",
                    plan.id
                ));
            }
            for cur in plan.prices.keys() {
                if !plan
                    .stripe_prices
                    .get(cur)
                    .is_some_and(|p| p.starts_with("price_"))
                {
                    errors.push(format!(
                        "credits.plans.{}: stripe_prices.{cur} must name the Stripe price (price_…) for the {cur} price",
                        plan.id
                    ));
                }
            }
        }
        if !self.credits.plans.is_empty() && self.payments.stripe.is_none() {
            errors.push("credits.plans are sold through Stripe: configure payments.stripe".into());
        }
        if let Some(s) = &self.payments.stripe {
            if !s.secret_key.starts_with("sk_") && !s.secret_key.starts_with("rk_") {
                errors.push("payments.stripe.secret_key must be a secret key (sk_…) or restricted key (rk_…)".into());
            }
            if !s.webhook_secret.starts_with("whsec_") {
                errors.push("payments.stripe.webhook_secret must be the endpoint's signing secret (whsec_…)".into());
            }
        }
        if let Some(r) = &self.payments.razorpay
            && (r.key_id.trim().is_empty()
                || r.key_secret.trim().is_empty()
                || r.webhook_secret.trim().is_empty())
        {
            errors.push("payments.razorpay needs key_id, key_secret and webhook_secret".into());
        }
        if let ObjectsConfig::S3 { bucket, .. } = &self.objects
            && bucket.trim().is_empty()
        {
            errors.push("objects.bucket must name a bucket".into());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(errors))
        }
    }

    /// The invoice settings the core uses.
    pub fn invoice_settings(&self) -> pixeld_core::invoices::InvoiceSettings {
        let i = &self.invoices;
        pixeld_core::invoices::InvoiceSettings {
            seller: pixeld_core::invoices::Party {
                name: i.seller_name.clone(),
                address: i.seller_address.clone(),
                country: i.seller_country.clone(),
                tax_id: i.seller_tax_id.clone(),
                email: i.seller_email.clone(),
            },
            prefix: i.prefix.clone(),
            tax_name: i.tax_name.clone(),
            tax_rate_bps: (i.tax_rate_percent * 100.0).round() as u32,
        }
    }

    /// The largest request body any route accepts (uploads included).
    pub fn max_request_bytes(&self) -> usize {
        self.max_body_bytes
            .max(self.images.max_upload_bytes as usize)
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}/pixeld.db", self.data.display()))
    }

    /// The public URL in force, without a trailing slash.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_string()
    }

    /// Whether cookies get the `Secure` attribute.
    pub fn secure_cookies(&self) -> bool {
        self.public_url().starts_with("https://")
    }

    /// Where `.eml` files go when no SMTP server is configured.
    pub fn outbox_dir(&self) -> PathBuf {
        self.data.join("outbox")
    }

    /// The retention classes in force: the compiled-in `privacy.toml`, with the operator's
    /// `retention.privacy_file` replacing the classes it declares.
    pub fn retention_classes(&self) -> Result<pixeld_core::privacy::Retention, String> {
        match &self.retention.privacy_file {
            None => Ok(pixeld_core::privacy::Retention::default()),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("retention.privacy_file {}: {e}", path.display()))?;
                pixeld_core::privacy::Retention::with_overrides(&text)
                    .map_err(|e| format!("retention.privacy_file {}: {e}", path.display()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_file_and_bad_values_are_all_reported() {
        let c = Config::default();
        assert!(c.validate().is_ok());
        assert_eq!(c.database_url(), "sqlite://data/pixeld.db");
        assert_eq!(c.public_url(), "http://127.0.0.1:8080");
        let bad = Config {
            public_url: Some("ftp://x".into()),
            database_url: Some("mysql://root:pw@x/db".into()),
            session: SessionConfig {
                idle_minutes: 0,
                absolute_hours: 1,
            },
            ..Config::default()
        };
        let e = bad.validate().unwrap_err();
        assert_eq!(e.0.len(), 3, "{e}");
        assert!(
            !e.to_string().contains(":pw@"),
            "passwords are redacted: {e}"
        );
    }
}
