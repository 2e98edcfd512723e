//! Two-factor sign-in with TOTP (RFC 6238, 6 digits, 30 s, SHA-1 as authenticator apps expect)
//! and ten single-use recovery codes stored as digests. A time step, once used, is refused.

use totp_rs::{Algorithm, Secret, Totp};
use uuid::Uuid;

use crate::store::User;
use crate::{Error, Pixeld, Result, secret};

/// How many recovery codes a user gets.
pub const RECOVERY_CODES: usize = 10;

/// What the user needs to add pixeld to an authenticator app.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// Base32 secret, for manual entry.
    pub secret: String,
    /// `otpauth://` URL.
    pub otpauth_url: String,
    /// The URL as a QR code, `data:image/svg+xml;base64,…`.
    pub qr_svg_data_uri: String,
}

fn totp(secret_b32: &str, issuer: &str, account: &str) -> Result<Totp> {
    let secret = Secret::try_from_base32(secret_b32)
        .map_err(|e| Error::Internal(format!("bad TOTP secret: {e}")))?;
    totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .with_issuer(Some(issuer))
        .with_account_name(account)
        .build()
        .map_err(|e| Error::Internal(format!("TOTP: {e}")))
}

fn qr_svg_data_uri(text: &str) -> Result<String> {
    use base64::Engine as _;
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| Error::Internal(e.to_string()))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    Ok(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    ))
}

/// Recovery codes look like `k7m2-qx9p-4t` (lower-case, no look-alike characters).
fn new_recovery_code() -> String {
    const ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
    use rand::Rng;
    let mut rng = rand::rng();
    let raw: String = (0..10)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{}-{}-{}", &raw[..4], &raw[4..8], &raw[8..])
}

fn normalise_recovery_code(code: &str) -> String {
    let raw: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if raw.len() == 10 {
        format!("{}-{}-{}", &raw[..4], &raw[4..8], &raw[8..])
    } else {
        raw
    }
}

impl Pixeld {
    fn unix_now(&self) -> u64 {
        u64::try_from(self.now().unix_timestamp()).unwrap_or(0)
    }

    /// Starts TOTP enrolment: a new secret is proposed and kept pending until confirmed.
    pub async fn begin_totp_enrolment(&self, user: &User) -> Result<Enrolment> {
        if user.totp_secret.is_some() {
            return Err(Error::State(
                "two-factor authentication is already on; disable it first".into(),
            ));
        }
        let bytes: [u8; 20] = rand::random();
        let secret_b32 = Secret::from(bytes).to_base32();
        let t = totp(&secret_b32, &self.settings.totp_issuer, &user.email)?;
        let url = t.to_url().map_err(|e| Error::Internal(e.to_string()))?;
        self.store
            .set_totp_pending(user.id, Some(&secret_b32))
            .await?;
        Ok(Enrolment {
            qr_svg_data_uri: qr_svg_data_uri(&url)?,
            otpauth_url: url,
            secret: secret_b32,
        })
    }

    /// The enrolment started and not yet confirmed, if any (to show the same QR code again after
    /// a mistyped code).
    pub async fn pending_totp_enrolment(&self, user_id: Uuid) -> Result<Option<Enrolment>> {
        let Some(user) = self.store.user_by_id(user_id).await? else {
            return Ok(None);
        };
        let Some(secret_b32) = user.totp_pending_secret else {
            return Ok(None);
        };
        let t = totp(&secret_b32, &self.settings.totp_issuer, &user.email)?;
        let url = t.to_url().map_err(|e| Error::Internal(e.to_string()))?;
        Ok(Some(Enrolment {
            qr_svg_data_uri: qr_svg_data_uri(&url)?,
            otpauth_url: url,
            secret: secret_b32,
        }))
    }

    /// Confirms enrolment with a code from the app; turns 2FA on and returns the recovery codes,
    /// which are shown once.
    pub async fn confirm_totp_enrolment(&self, user: &User, code: &str) -> Result<Vec<String>> {
        if user.totp_secret.is_some() {
            return Err(Error::State(
                "two-factor authentication is already on".into(),
            ));
        }
        let pending = user.totp_pending_secret.as_deref().ok_or_else(|| {
            Error::State("start enrolment first (POST /v1/account/2fa/totp)".into())
        })?;
        let t = totp(pending, &self.settings.totp_issuer, &user.email)?;
        let step = t.check(code.trim(), self.unix_now()).ok_or_else(|| {
            Error::invalid("code", "is not the current code of your authenticator")
        })?;
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
        let digests: Vec<String> = codes.iter().map(|c| secret::digest(c)).collect();
        self.store
            .enable_totp(user.id, pending, step as i64, &digests)
            .await?;
        tracing::info!(user_id = %user.id, "two-factor authentication enabled");
        Ok(codes)
    }

    /// Checks a TOTP code (each time step accepted once) or a recovery code (each used once).
    pub async fn check_second_factor(&self, user: &User, code: &str) -> Result<bool> {
        let Some(secret_b32) = user.totp_secret.as_deref() else {
            return Ok(false);
        };
        let code = code.trim();
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            let t = totp(secret_b32, &self.settings.totp_issuer, &user.email)?;
            return match t.check(code, self.unix_now()) {
                Some(step) => Ok(self.store.advance_totp_step(user.id, step as i64).await?),
                None => Ok(false),
            };
        }
        let normalised = normalise_recovery_code(code);
        Ok(self
            .store
            .use_recovery_code(user.id, &secret::digest(&normalised), self.now())
            .await?)
    }

    /// Turns 2FA off; needs a current code.
    pub async fn disable_totp(&self, user: &User, code: &str) -> Result<()> {
        if user.totp_secret.is_none() {
            return Err(Error::State("two-factor authentication is not on".into()));
        }
        if !self.check_second_factor(user, code).await? {
            return Err(Error::invalid("code", "is not a valid current code"));
        }
        self.store.disable_totp(user.id).await?;
        tracing::info!(user_id = %user.id, "two-factor authentication disabled");
        Ok(())
    }

    /// Replaces the recovery codes; needs a current code.
    pub async fn regenerate_recovery_codes(&self, user: &User, code: &str) -> Result<Vec<String>> {
        if user.totp_secret.is_none() {
            return Err(Error::State("two-factor authentication is not on".into()));
        }
        if !self.check_second_factor(user, code).await? {
            return Err(Error::invalid("code", "is not a valid current code"));
        }
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
        let digests: Vec<String> = codes.iter().map(|c| secret::digest(c)).collect();
        self.store.replace_recovery_codes(user.id, &digests).await?;
        Ok(codes)
    }

    /// How many recovery codes remain unused.
    pub async fn recovery_codes_left(&self, user_id: Uuid) -> Result<i64> {
        Ok(self.store.recovery_codes_left(user_id).await?)
    }
}

/// The current code for a base32 secret at a Unix time: what an authenticator app shows. Used by
/// the CLI and by tests that play the user's phone.
pub fn code_at(secret_b32: &str, unix_time: u64) -> Result<String> {
    Ok(totp(secret_b32, "pixeld", "user")?
        .generate(unix_time)
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_forgiving_about_case_and_dashes() {
        let c = new_recovery_code();
        assert_eq!(c.len(), 12);
        assert_eq!(
            normalise_recovery_code(&c.to_uppercase().replace('-', " ")),
            c
        );
    }
}
