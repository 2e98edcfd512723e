//! pixeld's HTTP API: axum routers (one per feature), extractors for who is calling,
//! problem+json errors, rate limits, CSRF protection, idempotency and OpenAPI.
//!
//! [`build`] assembles everything from a [`config::Config`]; [`serve`] runs it until a shutdown
//! signal. Handlers never see SQL: they call use cases on [`pixeld_core::Pixeld`].

pub mod config;
pub mod extract;
pub mod fetch;
pub mod geo;
pub mod mailer;
pub mod middleware;
pub mod objects;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod web;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use pixeld_core::clock::{Clock, SystemClock};
use pixeld_core::mail::Mailer;
use pixeld_core::{Pixeld, Settings};
use tower_http::catch_panic::CatchPanicLayer;

use crate::config::Config;
use crate::problem::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The use cases.
    pub app: Pixeld,
    /// The configuration in force.
    pub config: Arc<Config>,
    /// Rate limiters.
    pub limiters: middleware::SharedLimiters,
    /// Prometheus renderer.
    pub metrics: PrometheusHandle,
    /// Country of a client address (pricing currency).
    pub geo: Arc<geo::GeoIp>,
    /// The landing page's recent demo renders.
    pub demo: Arc<web::DemoCache>,
}

impl FromRef<AppState> for () {
    fn from_ref(_: &AppState) {}
}

/// The process-wide Prometheus recorder (installed once, shared by every server in a process).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ])
                .expect("valid buckets")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by an embedding program); then
            // our metrics go there and /metrics shows what this recorder saw.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The core settings implied by the configuration.
pub fn settings(config: &Config) -> Settings {
    // `state` refuses an invalid file before this runs; a caller that skipped that check gets
    // the compiled-in classes.
    let retention = config.retention_classes().unwrap_or_else(|e| {
        tracing::error!(error = %e, "using the compiled-in retention classes");
        pixeld_core::privacy::Retention::default()
    });
    Settings {
        public_url: config.public_url(),
        session_idle: time::Duration::minutes(config.session.idle_minutes),
        session_absolute: time::Duration::hours(config.session.absolute_hours),
        auth_cache_ttl: Duration::from_millis(config.auth_cache_ms),
        images: pixeld_core::images::ImageSettings {
            limits: pixeld_imaging::Limits {
                max_input_bytes: config.images.max_upload_bytes,
                max_pixels: config.images.max_pixels,
                max_dimension: config.images.max_dimension,
            },
        },
        credits: pixeld_core::credits::CreditSettings {
            metering: config.credits.metering,
            prices: config.credits.prices,
            free_monthly: config.credits.free_monthly,
            reservation_timeout: time::Duration::seconds(
                config.credits.reservation_timeout_secs as i64,
            ),
        },
        packs: config.credits.packs.clone(),
        plans: config.credits.plans.clone(),
        currency_by_country: config.credits.currency_by_country.clone(),
        default_currency: config.credits.default_currency.clone(),
        redirect_hosts: config.payments.redirect_hosts.clone(),
        invoices: config.invoice_settings(),
        retention,
        minimum_age: config.privacy.minimum_age,
        ..Settings::default()
    }
}

/// The payment providers named in the configuration, over one HTTP client.
pub fn payment_providers(config: &Config) -> anyhow::Result<pixeld_core::billing::Providers> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut providers = pixeld_core::billing::Providers::default();
    if let Some(s) = &config.payments.stripe {
        let mut c = pixeld_payments::StripeConfig::new(&s.secret_key, &s.webhook_secret);
        c.api_base = s.api_base.clone();
        providers.stripe = Some(Arc::new(pixeld_payments::Stripe::new(c, http.clone())));
    }
    if let Some(r) = &config.payments.razorpay {
        let mut c =
            pixeld_payments::RazorpayConfig::new(&r.key_id, &r.key_secret, &r.webhook_secret);
        c.api_base = r.api_base.clone();
        providers.razorpay = Some(Arc::new(pixeld_payments::Razorpay::new(c, http)));
    }
    Ok(providers)
}

/// The AI providers named in the configuration.
pub fn ai_providers(config: &Config) -> anyhow::Result<pixeld_core::describe::AiProviders> {
    let mut providers = pixeld_core::describe::AiProviders::default();
    if let Some(v) = &config.ai.vision {
        // The same TLS crypto provider as every other client (callers outside `state` too).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(v.timeout_secs))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        providers.vision = Some(Arc::new(pixeld_ai::OpenAiVision::new(
            pixeld_ai::VisionConfig {
                api_base: v.api_base.clone(),
                api_key: v.api_key.clone(),
                model: v.model.clone(),
            },
            http,
        )));
    }
    Ok(providers)
}

/// Opens storage (running migrations), object storage, the mailer, and builds the state.
pub async fn state(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
    // One TLS crypto provider for every client (SMTP, URL fetches, S3).
    let _ = rustls::crypto::ring::default_provider().install_default();
    config.retention_classes().map_err(|e| anyhow::anyhow!(e))?;
    std::fs::create_dir_all(&config.data).map_err(|e| {
        anyhow::anyhow!(
            "cannot create the data folder {}: {e}",
            config.data.display()
        )
    })?;
    let store = pixeld_store::open(&config.database_url(), true).await?;
    let mailer: Arc<dyn Mailer> = Arc::new(mailer::LettreMailer::new(
        &config.mail,
        config.outbox_dir(),
    )?);
    let blobs = Arc::new(objects::Objects::open(&config)?);
    let fetcher = Arc::new(fetch::SafeFetcher::new(&config.fetch)?);
    let app = Pixeld::new(
        pixeld_core::Parts {
            store,
            clock,
            mailer,
            blobs,
            fetcher,
        },
        settings(&config),
    )
    .with_payments(payment_providers(&config)?)
    .with_ai(ai_providers(&config)?);
    let geo = Arc::new(geo::GeoIp::from_config(config.geoip_database.as_deref())?);
    Ok(AppState {
        app,
        geo,
        limiters: Arc::new(middleware::Limiters::new(&config.rate_limit)),
        config: Arc::new(config),
        metrics: metrics_handle(),
        demo: Arc::default(),
    })
}

/// The whole HTTP application.
pub fn router(st: AppState) -> Router {
    let api = Router::new()
        .merge(routes::system::router())
        .merge(routes::auth::router())
        .merge(routes::account::router())
        .merge(routes::tokens::router())
        .merge(routes::orgs::router())
        .merge(routes::images::router(
            st.config.images.max_upload_bytes as usize,
        ))
        .merge(routes::templates::router())
        .merge(routes::webhooks::router())
        .merge(routes::fonts::router())
        .merge(routes::billing::router())
        .merge(routes::usage::router())
        .merge(routes::rights::router())
        .merge(routes::support::router())
        .merge(routes::privacy::router())
        .merge(routes::analytics::router())
        .merge(routes::pages::router())
        .merge(web::router(st.config.images.max_upload_bytes as usize))
        .route_layer(axum::middleware::from_fn(middleware::record_route))
        .fallback(web::not_found)
        .method_not_allowed_fallback(|| async {
            ApiError::new("method-not-allowed", "this route does not take that method")
        });
    let timeout = Duration::from_secs(st.config.request_timeout_secs);
    api.layer(axum::middleware::from_fn_with_state(
        st.clone(),
        middleware::idempotency,
    ))
    .layer(axum::middleware::from_fn_with_state(
        st.clone(),
        middleware::csrf,
    ))
    .layer(axum::middleware::from_fn_with_state(
        st.clone(),
        middleware::rate_limit,
    ))
    .layer(axum::extract::DefaultBodyLimit::max(
        st.config.max_body_bytes,
    ))
    .layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        timeout,
    ))
    .layer(CatchPanicLayer::custom(|_| {
        axum::response::IntoResponse::into_response(ApiError::new(
            "internal",
            "the server hit a bug; quote the request_id",
        ))
    }))
    .layer(axum::middleware::from_fn_with_state(
        st.clone(),
        middleware::usage,
    ))
    .layer(axum::middleware::from_fn(middleware::edge))
    .with_state(st)
}

/// Builds the state with the system clock and the router.
pub async fn build(config: Config) -> anyhow::Result<(AppState, Router)> {
    let st = state(config, Arc::new(SystemClock)).await?;
    Ok((st.clone(), router(st)))
}

/// Serves on an already-bound listener until `shutdown` resolves, then drains in-flight
/// requests.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    st: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let limiters = st.limiters.clone();
    let pruner = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            limiters.prune();
        }
    });
    let sweeper = (st.config.retention.sweep_interval_secs > 0).then(|| {
        let app = st.app.clone();
        let every = Duration::from_secs(st.config.retention.sweep_interval_secs);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = app.sweep().await {
                    tracing::warn!(error = %e, "retention sweep failed; retrying next interval");
                }
            }
        })
    });
    let (stop_workers, workers) = spawn_workers(&st);
    let usage_writer = {
        let app = st.app.clone();
        let every = Duration::from_millis(st.config.usage.flush_ms);
        let stop = stop_workers.subscribe();
        tokio::spawn(async move { app.run_usage_writer(every, stop).await })
    };
    let app = router(st).into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    // Jobs that have started finish; the rest stay queued for the next start or another node.
    let _ = stop_workers.send(true);
    for w in workers {
        let _ = w.await;
    }
    // The last requests' usage rows are written before the process ends.
    let _ = usage_writer.await;
    pruner.abort();
    if let Some(s) = sweeper {
        s.abort();
    }
    result.map_err(Into::into)
}

/// Starts `jobs.workers` workers on the shared queue; send `true` to stop them.
pub fn spawn_workers(
    st: &AppState,
) -> (
    tokio::sync::watch::Sender<bool>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let poll = Duration::from_millis(st.config.jobs.poll_ms);
    let workers = (0..st.config.jobs.workers)
        .map(|_| {
            let app = st.app.clone();
            let rx = rx.clone();
            tokio::spawn(async move { app.work(poll, rx).await })
        })
        .collect();
    (tx, workers)
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled, so a signal that arrives during start-up is not lost (and does not
/// kill the process without a clean shutdown).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        #[cfg(unix)]
        {
            let term = async {
                match term.as_mut() {
                    Some(s) => drop(s.recv().await),
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match int.as_mut() {
                    Some(s) => drop(s.recv().await),
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! { _ = term => {}, _ = int => {} }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down: finishing in-flight requests");
    }
}
