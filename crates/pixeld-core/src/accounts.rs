//! Sign-up, email verification, sign-in (with its 2FA step), password reset, and changes of
//! email and password.

use time::Duration;
use uuid::Uuid;

use crate::email::EmailAddress;
use crate::mail::Message;
use crate::sessions::{ClientInfo, NewSession};
use crate::store::{OneTimeToken, Org, Purpose, User};
use crate::{Error, Pixeld, Result, password, secret};

/// How long an email verification link works.
pub const VERIFY_EMAIL_TTL: Duration = Duration::hours(24);
/// How long a password reset link works.
pub const RESET_PASSWORD_TTL: Duration = Duration::hours(1);
/// How long an email change link works.
pub const CHANGE_EMAIL_TTL: Duration = Duration::hours(24);
/// How long the second sign-in step waits for a code.
pub const SIGN_IN_2FA_TTL: Duration = Duration::minutes(5);
/// Longest display name.
pub const MAX_NAME_LEN: usize = 100;

/// What a new user sends.
#[derive(Debug, Clone)]
pub struct SignUp {
    /// Email address.
    pub email: String,
    /// Chosen password.
    pub password: String,
    /// Display name; defaults to the part of the email before `@`.
    pub name: Option<String>,
    /// The user confirmed they are at least [`crate::Settings::minimum_age`] (required for
    /// self-service sign-up).
    pub age_confirmed: bool,
    /// Opted in to marketing email (off unless ticked).
    pub marketing_emails: bool,
}

/// What signing in with a correct password gives.
#[derive(Debug)]
pub enum SignIn {
    /// Signed in.
    Done(NewSession),
    /// 2FA is on: send a code with this challenge to finish.
    NeedsSecondFactor {
        /// Single-use challenge for [`Pixeld::sign_in_second_factor`].
        challenge: String,
    },
}

fn validate_name(name: Option<&str>, email: &EmailAddress) -> Result<String> {
    let name = match name.map(str::trim) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => email
            .as_str()
            .split('@')
            .next()
            .unwrap_or_default()
            .to_string(),
    };
    if name.chars().count() > MAX_NAME_LEN {
        return Err(Error::invalid(
            "name",
            format!("must be at most {MAX_NAME_LEN} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(name)
}

impl Pixeld {
    /// Creates an account and its personal organisation, and emails a verification link.
    pub async fn sign_up(&self, input: SignUp) -> Result<User> {
        let user = self.create_account(&input, true).await?;
        self.record_consent(
            user.id,
            crate::consent::ConsentPurpose::AgeConfirmation,
            true,
            "signup",
        )
        .await?;
        if input.marketing_emails {
            self.record_consent(
                user.id,
                crate::consent::ConsentPurpose::MarketingEmail,
                true,
                "signup",
            )
            .await?;
        }
        self.send_verification(&user).await?;
        tracing::info!(user_id = %user.id, "account created");
        Ok(user)
    }

    /// Creates an account from the operator CLI: verified at once, no email sent.
    pub async fn create_user_verified(
        &self,
        email: &str,
        password: &str,
        name: Option<&str>,
    ) -> Result<User> {
        let input = SignUp {
            email: email.into(),
            password: password.into(),
            name: name.map(Into::into),
            age_confirmed: false,
            marketing_emails: false,
        };
        let user = self.create_account(&input, false).await?;
        self.store.set_email_verified(user.id, self.now()).await?;
        self.store.user_by_id(user.id).await?.ok_or(Error::NotFound)
    }

    async fn create_account(&self, input: &SignUp, require_age: bool) -> Result<User> {
        // Collect every problem at once, so a form can show them all.
        let mut problems = Vec::new();
        if require_age && !input.age_confirmed {
            push(
                &mut problems,
                Error::invalid(
                    "age_confirmed",
                    format!(
                        "confirm that you are at least {} years old to use pixeld",
                        self.settings.minimum_age
                    ),
                ),
            );
        }
        let email = EmailAddress::parse(&input.email)
            .map_err(|e| push(&mut problems, e))
            .ok();
        if let Err(e) = password::check_new(&input.password, email.as_ref().map(|e| e.as_str())) {
            push(&mut problems, e);
        }
        let name = email.as_ref().and_then(|em| {
            validate_name(input.name.as_deref(), em)
                .map_err(|e| push(&mut problems, e))
                .ok()
        });
        let (Some(email), Some(name), true) = (email, name, problems.is_empty()) else {
            return Err(Error::Invalid(problems));
        };
        let hash = self.hash_password(input.password.clone()).await?;
        let now = self.now();
        let org = Org {
            id: Uuid::now_v7(),
            name: format!("{name}'s workspace"),
            personal: true,
            created_at: now,
        };
        let user = User {
            id: Uuid::now_v7(),
            email: email.as_str().to_string(),
            name,
            password_hash: hash,
            email_verified_at: None,
            is_admin: false,
            disabled_at: None,
            totp_secret: None,
            totp_pending_secret: None,
            totp_last_step: None,
            personal_org_id: org.id,
            created_at: now,
        };
        self.store
            .create_user(&user, &org)
            .await
            .map_err(email_taken)?;
        Ok(user)
    }

    /// Sends a new verification link if the address belongs to an unverified account. Answers
    /// the same for every well-formed address, so it cannot be used to probe for accounts; a
    /// malformed one is refused (that reveals nothing and points out a typo).
    pub async fn resend_verification(&self, email: &str) -> Result<()> {
        let email = EmailAddress::parse(email)?;
        if let Some(user) = self.store.user_by_email(email.as_str()).await?
            && user.email_verified_at.is_none()
        {
            self.send_verification(&user).await?;
        }
        Ok(())
    }

    async fn send_verification(&self, user: &User) -> Result<()> {
        let now = self.now();
        self.store
            .invalidate_one_time_tokens(user.id, Purpose::VerifyEmail, now)
            .await?;
        let token = self
            .issue_one_time(
                user.id,
                Purpose::VerifyEmail,
                String::new(),
                VERIFY_EMAIL_TTL,
            )
            .await?;
        let link = format!("{}/verify-email?token={token}", self.settings.public_url);
        self.mailer
            .send(Message {
                to: user.email.clone(),
                subject: "Confirm your email address for pixeld".into(),
                body: format!(
                    "Hello {},\n\nconfirm your email address by opening this link within 24 hours:\n\n{link}\n\n\
                     Or send the token with POST /v1/auth/verify-email: {token}\n\n\
                     If you did not sign up for pixeld, ignore this message.\n",
                    user.name
                ),
                attachments: Vec::new(),
            })
            .await
    }

    /// Confirms an email address with the token from the verification link.
    pub async fn verify_email(&self, token: &str) -> Result<User> {
        let t = self.consume_one_time(token, Purpose::VerifyEmail).await?;
        self.store.set_email_verified(t.user_id, self.now()).await?;
        self.store
            .user_by_id(t.user_id)
            .await?
            .ok_or(Error::InvalidToken)
    }

    /// First sign-in step: checks email and password.
    pub async fn sign_in(&self, email: &str, password: &str, client: ClientInfo) -> Result<SignIn> {
        let user = match EmailAddress::parse(email) {
            Ok(e) => self.store.user_by_email(e.as_str()).await?,
            Err(_) => None,
        };
        // Hash even for unknown accounts so the answer takes as long either way.
        let phc = user.as_ref().map_or_else(
            || password::dummy_hash().to_string(),
            |u| u.password_hash.clone(),
        );
        let ok = self.verify_password(password.to_string(), phc).await?;
        let user = match user {
            Some(u) if ok => u,
            _ => return Err(Error::BadCredentials),
        };
        if user.disabled_at.is_some() {
            return Err(Error::AccountDisabled);
        }
        if user.email_verified_at.is_none() {
            return Err(Error::EmailNotVerified);
        }
        if user.totp_secret.is_some() {
            let challenge = self
                .issue_one_time(user.id, Purpose::SignIn2fa, String::new(), SIGN_IN_2FA_TTL)
                .await?;
            return Ok(SignIn::NeedsSecondFactor { challenge });
        }
        Ok(SignIn::Done(self.start_session(&user, client).await?))
    }

    /// Second sign-in step: a TOTP code or a recovery code for the challenge.
    pub async fn sign_in_second_factor(
        &self,
        challenge: &str,
        code: &str,
        client: ClientInfo,
    ) -> Result<NewSession> {
        let t = self.consume_one_time(challenge, Purpose::SignIn2fa).await?;
        let user = self
            .store
            .user_by_id(t.user_id)
            .await?
            .ok_or(Error::InvalidToken)?;
        if user.disabled_at.is_some() {
            return Err(Error::AccountDisabled);
        }
        if !self.check_second_factor(&user, code).await? {
            return Err(Error::BadCredentials);
        }
        self.start_session(&user, client).await
    }

    /// Emails a single-use reset link valid for one hour, if the account exists. Answers the
    /// same for every well-formed address, known or not; a malformed one is refused.
    pub async fn request_password_reset(&self, email: &str) -> Result<()> {
        let email = EmailAddress::parse(email)?;
        let Some(user) = self.store.user_by_email(email.as_str()).await? else {
            return Ok(());
        };
        let now = self.now();
        self.store
            .invalidate_one_time_tokens(user.id, Purpose::ResetPassword, now)
            .await?;
        let token = self
            .issue_one_time(
                user.id,
                Purpose::ResetPassword,
                String::new(),
                RESET_PASSWORD_TTL,
            )
            .await?;
        let link = format!("{}/reset-password?token={token}", self.settings.public_url);
        self.mailer
            .send(Message {
                to: user.email.clone(),
                subject: "Reset your pixeld password".into(),
                body: format!(
                    "Hello {},\n\nsomeone asked to reset the password of this account. The link works once, \
                     within one hour:\n\n{link}\n\nOr send the token with POST /v1/auth/password-reset/confirm: {token}\n\n\
                     If it was not you, ignore this message; your password is unchanged.\n",
                    user.name
                ),
                attachments: Vec::new(),
            })
            .await
    }

    /// Sets a new password with a reset token, and signs out every session.
    pub async fn reset_password(&self, token: &str, new_password: &str) -> Result<()> {
        // Check the password before spending the token, so a rejected password can be retried.
        password::check_new(new_password, None)?;
        let t = self.consume_one_time(token, Purpose::ResetPassword).await?;
        let user = self
            .store
            .user_by_id(t.user_id)
            .await?
            .ok_or(Error::InvalidToken)?;
        password::check_new(new_password, Some(&user.email))?;
        let hash = self.hash_password(new_password.to_string()).await?;
        self.store.set_password_hash(user.id, &hash).await?;
        // A reset link also proves control of the address.
        if user.email_verified_at.is_none() {
            self.store.set_email_verified(user.id, self.now()).await?;
        }
        self.store.delete_other_sessions(user.id, None).await?;
        tracing::info!(user_id = %user.id, "password reset");
        Ok(())
    }

    /// Changes the password after re-checking the current one; other sessions are signed out.
    pub async fn change_password(
        &self,
        user: &User,
        current: &str,
        new_password: &str,
        keep_session: Option<Uuid>,
    ) -> Result<()> {
        self.reauthenticate(user, current).await?;
        password::check_new(new_password, Some(&user.email))?;
        if password::verify(new_password, &user.password_hash) {
            return Err(Error::invalid(
                "new_password",
                "must differ from the current password",
            ));
        }
        let hash = self.hash_password(new_password.to_string()).await?;
        self.store.set_password_hash(user.id, &hash).await?;
        self.store
            .delete_other_sessions(user.id, keep_session)
            .await?;
        Ok(())
    }

    /// Starts an email change after re-checking the password: a link goes to the new address,
    /// a notice to the old one. The address changes only when the link is opened.
    pub async fn request_email_change(
        &self,
        user: &User,
        current_password: &str,
        new_email: &str,
    ) -> Result<()> {
        self.reauthenticate(user, current_password).await?;
        let new_email = EmailAddress::parse(new_email)?;
        if new_email.as_str() == user.email {
            return Err(Error::invalid("email", "is already your address"));
        }
        if self
            .store
            .user_by_email(new_email.as_str())
            .await?
            .is_some()
        {
            return Err(Error::Conflict(
                "an account with this email address already exists".into(),
            ));
        }
        let now = self.now();
        self.store
            .invalidate_one_time_tokens(user.id, Purpose::ChangeEmail, now)
            .await?;
        let token = self
            .issue_one_time(
                user.id,
                Purpose::ChangeEmail,
                new_email.to_string(),
                CHANGE_EMAIL_TTL,
            )
            .await?;
        let link = format!("{}/confirm-email?token={token}", self.settings.public_url);
        self.mailer
            .send(Message {
                to: new_email.to_string(),
                subject: "Confirm your new email address for pixeld".into(),
                body: format!(
                    "Hello {},\n\nconfirm that this is your new address by opening this link within 24 hours:\n\n{link}\n\n\
                     Or send the token with POST /v1/account/email/confirm: {token}\n",
                    user.name
                ),
                attachments: Vec::new(),
            })
            .await?;
        self.mailer
            .send(Message {
                to: user.email.clone(),
                subject: "Your pixeld email address is being changed".into(),
                body: format!(
                    "Hello {},\n\nsomeone signed in to your account asked to change its address to {new_email}. \
                     If it was not you, reset your password now.\n",
                    user.name
                ),
                attachments: Vec::new(),
            })
            .await
    }

    /// Completes an email change with the token from the link.
    pub async fn confirm_email_change(&self, token: &str) -> Result<User> {
        let t = self.consume_one_time(token, Purpose::ChangeEmail).await?;
        self.store
            .set_email(t.user_id, &t.data, self.now())
            .await
            .map_err(email_taken)?;
        self.store
            .user_by_id(t.user_id)
            .await?
            .ok_or(Error::InvalidToken)
    }

    /// Checks the current password of a signed-in user before a sensitive change.
    pub async fn reauthenticate(&self, user: &User, password: &str) -> Result<()> {
        if self
            .verify_password(password.to_string(), user.password_hash.clone())
            .await?
        {
            Ok(())
        } else {
            Err(Error::invalid("current_password", "is not correct"))
        }
    }

    pub(crate) async fn issue_one_time(
        &self,
        user_id: Uuid,
        purpose: Purpose,
        data: String,
        ttl: Duration,
    ) -> Result<String> {
        let token = secret::random_base62(32);
        let now = self.now();
        self.store
            .create_one_time_token(&OneTimeToken {
                digest: secret::digest(&token),
                purpose,
                user_id,
                data,
                created_at: now,
                expires_at: now + ttl,
            })
            .await?;
        Ok(token)
    }

    pub(crate) async fn consume_one_time(
        &self,
        token: &str,
        purpose: Purpose,
    ) -> Result<OneTimeToken> {
        if token.is_empty() || token.len() > 128 {
            return Err(Error::InvalidToken);
        }
        self.store
            .consume_one_time_token(&secret::digest(token), purpose, self.now())
            .await?
            .ok_or(Error::InvalidToken)
    }

    async fn hash_password(&self, password: String) -> Result<String> {
        let cost = self.settings.password_hashing;
        // argon2 takes tens of milliseconds of CPU: keep it off the async workers.
        tokio::task::spawn_blocking(move || password::hash(&password, cost))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
    }

    async fn verify_password(&self, password: String, phc: String) -> Result<bool> {
        tokio::task::spawn_blocking(move || password::verify(&password, &phc))
            .await
            .map_err(|e| Error::Internal(e.to_string()))
    }
}

fn email_taken(e: crate::store::StoreError) -> Error {
    match e {
        crate::store::StoreError::Conflict(_) => {
            Error::Conflict("an account with this email address already exists".into())
        }
        e => e.into(),
    }
}

fn push(problems: &mut Vec<crate::error::FieldError>, e: Error) {
    if let Error::Invalid(mut v) = e {
        problems.append(&mut v);
    }
}
