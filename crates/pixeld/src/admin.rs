//! `pixeld admin`: operator tasks that work without a running server.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use pixeld_core::clock::SystemClock;
use pixeld_core::page::PageRequest;
use pixeld_server::config::Config;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create a user with a verified address (no email is sent).
    CreateUser {
        /// Email address.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Password; read from PIXELD_ADMIN_PASSWORD if omitted (avoid passing secrets as arguments).
        #[arg(long, env = "PIXELD_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
        /// Make the user an instance administrator.
        #[arg(long)]
        admin: bool,
    },
    /// Make a user an instance administrator.
    Promote {
        /// Email address.
        email: String,
    },
    /// Take instance administration away from a user.
    Demote {
        /// Email address.
        email: String,
    },
    /// List users.
    ListUsers {
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: they cannot sign in and their sessions and tokens stop working.
    DisableUser {
        /// Email address.
        email: String,
    },
    /// Re-enable a disabled user.
    EnableUser {
        /// Email address.
        email: String,
    },
    /// An organisation's credits: grant, adjust, see the balance. Every change is a ledger entry
    /// that names the operator and the reason.
    Credits {
        #[command(subcommand)]
        command: CreditsCommand,
    },
}

/// Which organisation: by id, or a user's personal organisation by their email address.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
pub struct OrgArg {
    /// Organisation id.
    #[arg(long)]
    org: Option<uuid::Uuid>,
    /// The personal organisation of the user with this email address.
    #[arg(long)]
    user: Option<String>,
}

#[derive(Subcommand)]
pub enum CreditsCommand {
    /// Add credits (a promotion, a goodwill grant, a manual purchase).
    Grant {
        #[command(flatten)]
        target: OrgArg,
        /// Credits to add.
        #[arg(long)]
        amount: i64,
        /// Why (kept in the ledger).
        #[arg(long)]
        reason: String,
        /// `admin` (default), `promo`, `purchase` or `plan`.
        #[arg(long, default_value = "admin")]
        source: String,
        /// When the credits expire (RFC 3339, e.g. 2027-01-01T00:00:00Z); never by default.
        #[arg(long)]
        expires: Option<String>,
        /// A key that makes a repeated command do nothing (default: a new one each time).
        #[arg(long)]
        key: Option<String>,
        /// The instance administrator doing this (their email address), for the audit trail.
        #[arg(long = "by")]
        by: String,
    },
    /// Correct a balance by a positive or negative amount.
    Adjust {
        #[command(flatten)]
        target: OrgArg,
        /// Credits to add (positive) or take (negative).
        #[arg(long, allow_negative_numbers = true)]
        amount: i64,
        /// Why (kept in the ledger).
        #[arg(long)]
        reason: String,
        /// A key that makes a repeated command do nothing.
        #[arg(long)]
        key: Option<String>,
        /// The instance administrator doing this (their email address), for the audit trail.
        #[arg(long = "by")]
        by: String,
    },
    /// Show the balance, credits held by work in progress, and whether the ledger adds up.
    Balance {
        #[command(flatten)]
        target: OrgArg,
    },
}

pub async fn run(config: Config, cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    let app = pixeld_server::state(config, Arc::new(SystemClock))
        .await?
        .app;
    let find = |email: String| {
        let app = app.clone();
        async move {
            match app.store.user_by_email(email.trim()).await? {
                Some(u) => Ok(u),
                None => Err(anyhow::anyhow!("no user with the email address {email}")),
            }
        }
    };
    match cmd {
        AdminCommand::CreateUser {
            email,
            name,
            password,
            admin,
        } => {
            let user = match app
                .create_user_verified(&email, &password, name.as_deref())
                .await
            {
                Ok(u) => u,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            if admin {
                app.store.set_admin(user.id, true).await?;
            }
            println!(
                "created {} ({}){}",
                user.email,
                user.id,
                if admin {
                    ", instance administrator"
                } else {
                    ""
                }
            );
        }
        AdminCommand::Promote { email } => {
            let u = find(email).await?;
            app.store.set_admin(u.id, true).await?;
            println!("{} is now an instance administrator", u.email);
        }
        AdminCommand::Demote { email } => {
            let u = find(email).await?;
            app.store.set_admin(u.id, false).await?;
            println!("{} is no longer an instance administrator", u.email);
        }
        AdminCommand::DisableUser { email } => {
            let u = find(email).await?;
            app.store.set_disabled(u.id, Some(app.now())).await?;
            let ended = app.store.delete_other_sessions(u.id, None).await?;
            println!(
                "{} is disabled ({ended} sessions ended; tokens refused from now on)",
                u.email
            );
        }
        AdminCommand::EnableUser { email } => {
            let u = find(email).await?;
            app.store.set_disabled(u.id, None).await?;
            println!("{} is enabled", u.email);
        }
        AdminCommand::Credits { command } => return credits(&app, command).await,
        AdminCommand::ListUsers { json } => {
            let mut page = PageRequest {
                after: None,
                limit: 100,
            };
            if !json {
                println!(
                    "{:<36}  {:<32}  {:<8}  {:<5}  {:<8}  created",
                    "id", "email", "verified", "admin", "disabled"
                );
            }
            loop {
                let rows = app.store.list_users(page).await?;
                let p = page.finish(rows, |u| u.id);
                for u in &p.items {
                    if json {
                        println!(
                            "{}",
                            serde_json::json!({
                                "id": u.id, "email": u.email, "name": u.name,
                                "email_verified": u.email_verified_at.is_some(), "is_admin": u.is_admin,
                                "disabled": u.disabled_at.is_some(), "two_factor": u.totp_secret.is_some(),
                                "created_at": u.created_at.to_string(),
                            })
                        );
                    } else {
                        println!(
                            "{:<36}  {:<32}  {:<8}  {:<5}  {:<8}  {}",
                            u.id,
                            u.email,
                            u.email_verified_at.is_some(),
                            u.is_admin,
                            u.disabled_at.is_some(),
                            u.created_at.date()
                        );
                    }
                }
                match p.next_cursor {
                    Some(c) => page = PageRequest::parse(Some(&c), Some(100))?,
                    None => break,
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn org_of(app: &pixeld_core::Pixeld, t: &OrgArg) -> anyhow::Result<uuid::Uuid> {
    if let Some(id) = t.org {
        return match app.store.org_by_id(id).await? {
            Some(o) => Ok(o.id),
            None => Err(anyhow::anyhow!("no organisation with the id {id}")),
        };
    }
    let email = t.user.as_deref().unwrap_or_default().trim();
    match app.store.user_by_email(email).await? {
        Some(u) => Ok(u.personal_org_id),
        None => Err(anyhow::anyhow!("no user with the email address {email}")),
    }
}

async fn operator(
    app: &pixeld_core::Pixeld,
    email: &str,
) -> anyhow::Result<pixeld_core::store::User> {
    match app.store.user_by_email(email.trim()).await? {
        Some(u) if u.is_admin => Ok(u),
        Some(_) => Err(anyhow::anyhow!(
            "{email} is not an instance administrator (pixeld admin promote {email})"
        )),
        None => Err(anyhow::anyhow!("no user with the email address {email}")),
    }
}

fn print_entry(done: &pixeld_core::ledger::Applied<pixeld_core::ledger::LedgerEntry>) {
    let e = match done {
        pixeld_core::ledger::Applied::New(e) => e,
        pixeld_core::ledger::Applied::Replayed(e) => {
            println!("already done with this --key; nothing changed");
            e
        }
    };
    println!(
        "{} {:+} credits (entry {}); balance now {}",
        e.kind, e.amount, e.id, e.balance_after
    );
}

async fn credits(app: &pixeld_core::Pixeld, cmd: CreditsCommand) -> anyhow::Result<ExitCode> {
    let result = match cmd {
        CreditsCommand::Grant {
            target,
            amount,
            reason,
            source,
            expires,
            key,
            by,
        } => {
            let org = org_of(app, &target).await?;
            let actor = operator(app, &by).await?;
            let Some(source) = pixeld_core::ledger::GrantSource::parse(&source) else {
                eprintln!("error: --source must be admin, promo, purchase or plan");
                return Ok(ExitCode::from(2));
            };
            let expires = match expires.as_deref().map(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            }) {
                None => None,
                Some(Ok(t)) => Some(t),
                Some(Err(_)) => {
                    eprintln!(
                        "error: --expires must be an RFC 3339 time like 2027-01-01T00:00:00Z"
                    );
                    return Ok(ExitCode::from(2));
                }
            };
            app.admin_grant_credits(
                &actor,
                org,
                amount,
                source,
                &reason,
                expires,
                key.as_deref(),
            )
            .await
        }
        CreditsCommand::Adjust {
            target,
            amount,
            reason,
            key,
            by,
        } => {
            let org = org_of(app, &target).await?;
            let actor = operator(app, &by).await?;
            app.admin_adjust_credits(&actor, org, amount, &reason, key.as_deref())
                .await
        }
        CreditsCommand::Balance { target } => {
            let org = org_of(app, &target).await?;
            let t = app.credit_totals(org).await?;
            println!(
                "organisation {org}: {} credits available, {} held by work in progress",
                t.balance, t.held
            );
            if t.consistent() {
                println!("ledger consistent: balance = sum of entries = credits left in lots");
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!(
                "ledger INCONSISTENT: balance {}, sum of entries {}, credits in lots {}",
                t.balance, t.entries, t.lots
            );
            return Ok(ExitCode::from(1));
        }
    };
    match result {
        Ok(done) => {
            print_entry(&done);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(2))
        }
    }
}
