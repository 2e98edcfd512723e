//! `pixeld`: the command line. Argument handling only; the work is in the library crates.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use pixeld_server::config::Config;

/// mimalloc for the whole process, the C codecs' malloc included (workspace `Cargo.toml`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod optimize;
mod render;

#[derive(Parser)]
#[command(
    name = "pixeld",
    version,
    about = "pixeld: a self-hosted image platform in one binary"
)]
struct Cli {
    /// Configuration file (TOML). Environment variables `PIXELD_*` override it.
    #[arg(long, global = true, env = "PIXELD_CONFIG")]
    config: Option<PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (SQLite and ./data by default; no configuration needed).
    Serve(ServeArgs),
    /// Work the background queue (asynchronous renders, webhook deliveries) without serving
    /// HTTP; run as many as you like, on any node sharing the database.
    Worker(WorkerArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Operator tasks: users and instance administrators.
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Optimize image files on all cores (resize, convert, compress, strip metadata).
    Optimize(Box<optimize::OptimizeArgs>),
    /// Analyse image files and print JSON (format, size, EXIF summary, hashes, colours).
    Analyze(optimize::AnalyzeArgs),
    /// Ask the configured AI vision provider (`[ai.vision]`) for alt text and tags of image
    /// files; prints JSON. The provider gets a small copy without metadata.
    Describe(optimize::DescribeArgs),
    /// Render a template to an image: with `--data`, or every row of a `--csv` on all cores.
    Render(Box<render::RenderArgs>),
    /// Data retention.
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (overrides `listen`).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
}

#[derive(Args)]
struct WorkerArgs {
    /// Jobs run at once (overrides `jobs.workers`; default: the configured value, at least 1).
    #[arg(long)]
    concurrency: Option<usize>,
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Delete everything past its retention window now (uploads, outputs, logs) and print what
    /// was removed. Safe to run on several nodes at once.
    Run,
    /// Print the retention classes in force (the compiled-in privacy.toml with the operator's
    /// `retention.privacy_file` applied).
    Show,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Load the configuration, report every problem, and print the effective values.
    Check,
}

fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("PIXELD_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = || Config::load(cli.config.as_deref());
    match cli.command {
        Command::Config {
            command: ConfigCommand::Check,
        } => match config() {
            Ok(c) => {
                println!("configuration is valid");
                println!("  data:          {}", c.data.display());
                println!("  listen:        {}", c.listen);
                println!("  public_url:    {}", c.public_url());
                println!(
                    "  database_url:  {}",
                    pixeld_store::redact(&c.database_url())
                );
                println!(
                    "  mail:          {}",
                    c.mail
                        .smtp_url
                        .as_deref()
                        .map(pixeld_store::redact)
                        .unwrap_or_else(|| format!("outbox {}", c.outbox_dir().display()))
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::from(2))
            }
        },
        Command::Migrate => {
            let c = config()?;
            std::fs::create_dir_all(&c.data)
                .with_context(|| format!("creating {}", c.data.display()))?;
            let store = pixeld_store::open(&c.database_url(), true).await?;
            println!("migrations applied ({})", store.backend());
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            let mut c = config()?;
            if let Some(l) = args.listen {
                c.listen = l;
            }
            // Signal handlers first: a SIGTERM during start-up still shuts down cleanly.
            let shutdown = pixeld_server::shutdown_signal();
            let listener = tokio::net::TcpListener::bind(c.listen)
                .await
                .with_context(|| format!("cannot listen on {}", c.listen))?;
            let (st, _) = pixeld_server::build(c.clone()).await?;
            // Fonts are parsed in the background now, not by the first render.
            let app = st.app.clone();
            tokio::spawn(async move {
                if let Err(e) = app.warm_renderer().await {
                    tracing::warn!(error = %e, "could not load the bundled fonts");
                }
            });
            let url = c.public_url();
            tracing::info!(database = st.app.store.backend(), data = %c.data.display(), "pixeld is ready");
            println!("pixeld is listening on {url}  (API reference: {url}/docs)");
            pixeld_server::serve_on(listener, st, shutdown).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker(args) => {
            let mut c = config()?;
            c.jobs.workers = args.concurrency.unwrap_or(c.jobs.workers).max(1);
            let shutdown = pixeld_server::shutdown_signal();
            let st = pixeld_server::state(
                c.clone(),
                std::sync::Arc::new(pixeld_core::clock::SystemClock),
            )
            .await?;
            println!(
                "pixeld worker: {} at once on {}",
                c.jobs.workers,
                st.app.store.backend()
            );
            let (stop, workers) = pixeld_server::spawn_workers(&st);
            shutdown.await;
            tracing::info!("stopping: finishing the jobs in hand");
            let _ = stop.send(true);
            for w in workers {
                let _ = w.await;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin { command } => admin::run(config()?, command).await,
        Command::Optimize(args) => tokio::task::block_in_place(|| optimize::optimize(*args)),
        Command::Analyze(args) => tokio::task::block_in_place(|| optimize::analyze(args)),
        Command::Describe(args) => optimize::describe(&config()?, args).await,
        Command::Render(args) => tokio::task::block_in_place(|| render::render(*args)),
        Command::Retention {
            command: RetentionCommand::Run,
        } => {
            let st = pixeld_server::state(
                config()?,
                std::sync::Arc::new(pixeld_core::clock::SystemClock),
            )
            .await?;
            let report = st.app.sweep().await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Retention {
            command: RetentionCommand::Show,
        } => {
            let r = config()?
                .retention_classes()
                .map_err(|e| anyhow::anyhow!(e))?;
            println!("policy version {}", r.policy_version);
            for c in r.classes() {
                let keep = c
                    .keep
                    .map(|w| w.human())
                    .unwrap_or_else(|| "while the account exists".into());
                let ip = c
                    .truncate_ip_after
                    .map(|w| format!(" (IP cut to its network after {})", w.human()))
                    .unwrap_or_default();
                println!("{:<20} {keep}{ip}", c.id.as_str());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
