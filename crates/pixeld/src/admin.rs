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
