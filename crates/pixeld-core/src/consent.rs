//! Consent, restriction, objection and rectification.
//!
//! - **Consent** is an append-only history per purpose (timestamp, source, policy version); the
//!   latest record is in force. Marketing email is off unless given; AI training is off unless
//!   given, and no code path sends a user's uploads, prompts or outputs anywhere for training.
//!   A marketing email's unsubscribe link withdraws consent in one click without signing in.
//! - **Restriction** keeps the data but stops every non-essential use of it (marketing,
//!   analytics, AI providers); **objections** stop one purpose each.
//! - **Rectification**: the profile (name, phone, company, address, tax id) is editable, and
//!   every change is audited by the fields it touched (not their old values).

use time::OffsetDateTime;
use uuid::Uuid;

use crate::principal::Principal;
use crate::rights::{DataRequest, RequestKind, RequestStatus};
use crate::tokens::Scope;
use crate::{Error, Pixeld, Result};

/// What a consent is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentPurpose {
    /// News and offers by email (never needed for the service).
    MarketingEmail,
    /// Using one's uploads, prompts or outputs to train AI models.
    AiTraining,
    /// The user confirmed they are at least the minimum age (at sign-up).
    AgeConfirmation,
}

impl ConsentPurpose {
    /// Purposes a user can give or withdraw.
    pub const CHOOSABLE: [ConsentPurpose; 2] =
        [ConsentPurpose::MarketingEmail, ConsentPurpose::AiTraining];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentPurpose::MarketingEmail => "marketing_email",
            ConsentPurpose::AiTraining => "ai_training",
            ConsentPurpose::AgeConfirmation => "age_confirmation",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "marketing_email" => ConsentPurpose::MarketingEmail,
            "ai_training" => ConsentPurpose::AiTraining,
            "age_confirmation" => ConsentPurpose::AgeConfirmation,
            _ => return None,
        })
    }
}

/// One consent decision as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    /// UUIDv7.
    pub id: Uuid,
    /// Whose.
    pub user_id: Uuid,
    /// For what.
    pub purpose: ConsentPurpose,
    /// Given (true) or withdrawn (false).
    pub granted: bool,
    /// Where: `signup`, `settings`, `api`, `unsubscribe_link`.
    pub source: String,
    /// The privacy policy version in force then.
    pub policy_version: String,
    /// When.
    pub recorded_at: OffsetDateTime,
}

/// A processing purpose one can object to (or that restriction stops).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Objection {
    /// Marketing email.
    Marketing,
    /// Counting page views and feature use.
    Analytics,
    /// Sending data to AI providers (generation, vision metadata, studio).
    AiProviders,
}

impl Objection {
    /// Every purpose.
    pub const ALL: [Objection; 3] = [
        Objection::Marketing,
        Objection::Analytics,
        Objection::AiProviders,
    ];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Objection::Marketing => "marketing",
            Objection::Analytics => "analytics",
            Objection::AiProviders => "ai_providers",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Self> {
        Objection::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// A user's restriction switch and objections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessingChoices {
    /// Keep the data, stop every non-essential use.
    pub restricted: bool,
    /// Purposes objected to.
    pub objections: Vec<Objection>,
    /// When last changed.
    pub updated_at: Option<OffsetDateTime>,
}

impl ProcessingChoices {
    /// Whether data may be used for `purpose`.
    pub fn allows(&self, purpose: Objection) -> bool {
        !self.restricted && !self.objections.contains(&purpose)
    }
}

/// The editable profile beside the account's name and email.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    /// Phone number.
    pub phone: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Address lines.
    #[serde(default)]
    pub address: Vec<String>,
    /// Tax id.
    pub tax_id: Option<String>,
}

/// A change to the profile: `None` leaves a field as it is, `Some("")` clears it.
#[derive(Debug, Clone, Default)]
pub struct ProfileUpdate {
    /// Display name.
    pub name: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Address lines (an empty list clears them).
    pub address: Option<Vec<String>>,
    /// Tax id.
    pub tax_id: Option<String>,
}

/// An audited profile change: which fields, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileChange {
    /// UUIDv7.
    pub id: Uuid,
    /// Whose.
    pub user_id: Uuid,
    /// The fields changed.
    pub fields: Vec<String>,
    /// When.
    pub changed_at: OffsetDateTime,
}

fn text_field(field: &str, v: &str, max: usize) -> Result<Option<String>> {
    let v = v.trim();
    if v.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok((!v.is_empty()).then(|| v.to_string()))
}

fn phone(v: &str) -> Result<Option<String>> {
    let v = text_field("phone", v, 32)?;
    if let Some(p) = &v {
        let digits = p.chars().filter(char::is_ascii_digit).count();
        if !(5..=15).contains(&digits)
            || !p
                .chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        {
            return Err(Error::invalid(
                "phone",
                "must be a phone number: digits, spaces and + - ( ) . only, 5 to 15 digits",
            ));
        }
    }
    Ok(v)
}

impl Pixeld {
    /// Records a consent decision now, under the policy version in force.
    pub async fn record_consent(
        &self,
        user_id: Uuid,
        purpose: ConsentPurpose,
        granted: bool,
        source: &str,
    ) -> Result<ConsentRecord> {
        let r = ConsentRecord {
            id: Uuid::now_v7(),
            user_id,
            purpose,
            granted,
            source: source.into(),
            policy_version: self.settings.retention.policy_version.clone(),
            recorded_at: self.now(),
        };
        self.store.insert_consent(&r).await?;
        tracing::info!(user_id = %user_id, purpose = purpose.as_str(), granted, source, "consent recorded");
        Ok(r)
    }

    /// Every consent decision of the caller, oldest first.
    pub async fn consents(&self, p: &Principal) -> Result<Vec<ConsentRecord>> {
        p.require_scope(Scope::AccountRead)?;
        Ok(self.store.consents_of(p.user.id).await?)
    }

    /// Whether `purpose` is consented to now (the latest decision; none means no).
    pub async fn has_consent(&self, user_id: Uuid, purpose: ConsentPurpose) -> Result<bool> {
        Ok(self
            .store
            .consents_of(user_id)
            .await?
            .iter()
            .rev()
            .find(|c| c.purpose == purpose)
            .is_some_and(|c| c.granted))
    }

    /// Gives or withdraws a consent from the caller's settings.
    pub async fn set_consent(
        &self,
        p: &Principal,
        purpose: ConsentPurpose,
        granted: bool,
    ) -> Result<ConsentRecord> {
        p.require_scope(Scope::AccountWrite)?;
        if !ConsentPurpose::CHOOSABLE.contains(&purpose) {
            return Err(Error::invalid("purpose", "is not a consent you can change"));
        }
        let source = match p.credential {
            crate::principal::Credential::Session { .. } => "settings",
            crate::principal::Credential::Token { .. } => "api",
        };
        self.record_consent(p.user.id, purpose, granted, source)
            .await
    }

    /// Whether marketing email may be sent to the user: consent given, not restricted, not
    /// objected to.
    pub async fn may_send_marketing(&self, user_id: Uuid) -> Result<bool> {
        let choices = self.store.processing_choices(user_id).await?;
        Ok(choices.allows(Objection::Marketing)
            && self
                .has_consent(user_id, ConsentPurpose::MarketingEmail)
                .await?)
    }

    /// Whether the user's data may go to AI providers (restriction and objection stop it).
    pub async fn may_use_ai_providers(&self, user_id: Uuid) -> Result<bool> {
        Ok(self
            .store
            .processing_choices(user_id)
            .await?
            .allows(Objection::AiProviders))
    }

    fn unsubscribe_sig(key: &[u8], user_id: Uuid) -> String {
        let mac =
            crate::secret::hmac_sha256(key, &[b"unsubscribe:marketing_email:", user_id.as_bytes()]);
        hex::encode(&mac[..16])
    }

    /// The one-click link that withdraws the user's marketing consent without signing in (put
    /// it in every marketing email and its `List-Unsubscribe` header).
    pub async fn unsubscribe_link(&self, user_id: Uuid) -> Result<String> {
        let key = self.instance_key("unsubscribe").await?;
        Ok(format!(
            "{}/unsubscribe?u={}&sig={}",
            self.settings.public_url,
            user_id,
            Self::unsubscribe_sig(&key, user_id)
        ))
    }

    /// Withdraws marketing consent for the link's user, if the signature matches.
    pub async fn unsubscribe(&self, user_id: Uuid, sig: &str) -> Result<()> {
        let key = self.instance_key("unsubscribe").await?;
        let expected = Self::unsubscribe_sig(&key, user_id);
        if !crate::secret::constant_time_eq(sig.as_bytes(), expected.as_bytes()) {
            return Err(Error::InvalidToken);
        }
        if self.store.user_by_id(user_id).await?.is_none() {
            // An erased account: nothing left to unsubscribe, and nothing to tell.
            return Ok(());
        }
        self.record_consent(
            user_id,
            ConsentPurpose::MarketingEmail,
            false,
            "unsubscribe_link",
        )
        .await?;
        Ok(())
    }

    /// The caller's restriction switch and objections.
    pub async fn processing_choices(&self, p: &Principal) -> Result<ProcessingChoices> {
        p.require_scope(Scope::AccountRead)?;
        Ok(self.store.processing_choices(p.user.id).await?)
    }

    /// Sets the restriction switch and objections; recorded as a completed request.
    pub async fn set_processing_choices(
        &self,
        p: &Principal,
        restricted: bool,
        mut objections: Vec<Objection>,
    ) -> Result<ProcessingChoices> {
        p.require_scope(Scope::AccountWrite)?;
        objections.sort_unstable();
        objections.dedup();
        let before = self.store.processing_choices(p.user.id).await?;
        let now = self.now();
        let choices = ProcessingChoices {
            restricted,
            objections,
            updated_at: Some(now),
        };
        self.store
            .set_processing_choices(p.user.id, &choices)
            .await?;
        let record = |kind, detail: String| {
            let mut r = DataRequest::open(p.user.id, kind, detail, now);
            r.status = RequestStatus::Completed;
            r.completed_at = Some(now);
            r
        };
        if before.restricted != restricted {
            let r = record(
                RequestKind::Restriction,
                format!(
                    "restrict processing {}",
                    if restricted { "on" } else { "off" }
                ),
            );
            self.store.create_data_request(&r).await?;
        }
        if before.objections != choices.objections {
            let names: Vec<&str> = choices.objections.iter().map(|o| o.as_str()).collect();
            let r = record(
                RequestKind::Objection,
                format!(
                    "objections now: {}",
                    if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    }
                ),
            );
            self.store.create_data_request(&r).await?;
        }
        tracing::info!(user_id = %p.user.id, restricted, "processing choices changed");
        Ok(choices)
    }

    /// The caller's profile.
    pub async fn profile(&self, p: &Principal) -> Result<Profile> {
        p.require_scope(Scope::AccountRead)?;
        Ok(self.store.profile(p.user.id).await?.unwrap_or_default())
    }

    /// Changes the caller's profile; audits which fields changed and records a rectification.
    pub async fn update_profile(
        &self,
        p: &Principal,
        u: ProfileUpdate,
    ) -> Result<(crate::store::User, Profile)> {
        p.require_scope(Scope::AccountWrite)?;
        let mut problems = Vec::new();
        let mut profile = self.store.profile(p.user.id).await?.unwrap_or_default();
        let before = profile.clone();
        let mut fields = Vec::new();
        let mut name = None;
        if let Some(n) = &u.name {
            match text_field("name", n, crate::accounts::MAX_NAME_LEN) {
                Ok(Some(n)) if n != p.user.name => name = Some(n),
                Ok(Some(_)) => {}
                Ok(None) => problems.push(crate::error::FieldError {
                    field: "name".into(),
                    message: "must not be empty".into(),
                }),
                Err(Error::Invalid(mut v)) => problems.append(&mut v),
                Err(e) => return Err(e),
            }
        }
        let mut set = |r: Result<Option<String>>, slot: &mut Option<String>| match r {
            Ok(v) => *slot = v,
            Err(Error::Invalid(mut v)) => problems.append(&mut v),
            Err(_) => {}
        };
        if let Some(v) = &u.phone {
            set(phone(v), &mut profile.phone);
        }
        if let Some(v) = &u.company {
            set(text_field("company", v, 200), &mut profile.company);
        }
        if let Some(v) = &u.tax_id {
            set(text_field("tax_id", v, 64), &mut profile.tax_id);
        }
        if let Some(lines) = &u.address {
            if lines.len() > 6 {
                problems.push(crate::error::FieldError {
                    field: "address".into(),
                    message: "must have at most 6 lines".into(),
                });
            } else {
                let mut out = Vec::new();
                for l in lines {
                    match text_field("address", l, 200) {
                        Ok(Some(l)) => out.push(l),
                        Ok(None) => {}
                        Err(Error::Invalid(mut v)) => problems.append(&mut v),
                        Err(e) => return Err(e),
                    }
                }
                profile.address = out;
            }
        }
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        if name.is_some() {
            fields.push("name".to_string());
        }
        for (f, changed) in [
            ("phone", before.phone != profile.phone),
            ("company", before.company != profile.company),
            ("address", before.address != profile.address),
            ("tax_id", before.tax_id != profile.tax_id),
        ] {
            if changed {
                fields.push(f.into());
            }
        }
        if fields.is_empty() {
            return Ok((p.user.clone(), profile));
        }
        let now = self.now();
        let change = ProfileChange {
            id: Uuid::now_v7(),
            user_id: p.user.id,
            fields: fields.clone(),
            changed_at: now,
        };
        self.store
            .update_profile(p.user.id, name.as_deref(), &profile, &change)
            .await?;
        let mut r = DataRequest::open(
            p.user.id,
            RequestKind::Rectification,
            format!("profile changed: {}", fields.join(", ")),
            now,
        );
        r.status = RequestStatus::Completed;
        r.completed_at = Some(now);
        self.store.create_data_request(&r).await?;
        self.auth_cache.clear();
        tracing::info!(user_id = %p.user.id, fields = fields.join(","), "profile changed");
        let user = self
            .store
            .user_by_id(p.user.id)
            .await?
            .ok_or(Error::NotFound)?;
        Ok((user, profile))
    }

    /// The audit of the caller's profile changes, oldest first.
    pub async fn profile_changes(&self, p: &Principal) -> Result<Vec<ProfileChange>> {
        p.require_scope(Scope::AccountRead)?;
        Ok(self.store.profile_changes(p.user.id).await?)
    }
}
