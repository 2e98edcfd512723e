//! Password rules and hashing: argon2id with OWASP parameters, a length window and a bundled
//! list of common passwords.

use std::collections::HashSet;
use std::sync::LazyLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shortest accepted password, in characters.
pub const MIN_LEN: usize = 8;
/// Longest accepted password, in characters (long enough for passphrases, short enough that
/// hashing cost stays bounded).
pub const MAX_LEN: usize = 128;

static COMMON: LazyLock<HashSet<String>> = LazyLock::new(|| {
    include_str!("../data/common-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_lowercase)
        .collect()
});

/// How expensive hashing is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashingCost {
    /// OWASP's recommendation for argon2id: 19 MiB, 2 passes, 1 lane.
    Owasp,
}

impl HashingCost {
    fn hasher(self) -> Argon2<'static> {
        let params = match self {
            HashingCost::Owasp => Params::new(19 * 1024, 2, 1, None),
        }
        .expect("static argon2 parameters are valid");
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }
}

/// Checks a new password against the rules; returns every problem found.
pub fn check_new(password: &str, email: Option<&str>) -> crate::Result<()> {
    let n = password.chars().count();
    let bad = |m: String| Err(crate::Error::invalid("password", m));
    if n < MIN_LEN {
        return bad(format!("must be at least {MIN_LEN} characters"));
    }
    if n > MAX_LEN {
        return bad(format!("must be at most {MAX_LEN} characters"));
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower) {
        return bad("is too common; choose one that is not on lists of leaked passwords".into());
    }
    if let Some(local) = email.and_then(|e| e.split('@').next())
        && local.len() >= 4
        && lower == local.to_lowercase()
    {
        return bad("must not be your email address".into());
    }
    Ok(())
}

/// Hashes a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) with a random salt.
pub fn hash(password: &str, cost: HashingCost) -> crate::Result<String> {
    let salt: [u8; 16] = rand::random();
    cost.hasher()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| crate::Error::Internal(format!("password hashing failed: {e}")))
}

/// Checks a password against a stored PHC hash, in constant time with respect to the hash.
pub fn verify(password: &str, phc: &str) -> bool {
    // The parameters are read from the PHC string, so old hashes keep verifying if the cost
    // changes later.
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// A hash of a random password, used to spend the same time when an account does not exist, so
/// sign-in timing does not reveal which emails are registered.
pub fn dummy_hash() -> &'static str {
    static DUMMY: LazyLock<String> = LazyLock::new(|| {
        hash(&crate::secret::random_base62(24), HashingCost::Owasp).expect("hashing works")
    });
    &DUMMY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_outside_the_rules_are_refused() {
        assert!(check_new("short", None).is_err());
        assert!(check_new(&"x".repeat(129), None).is_err());
        assert!(check_new("Password123", None).is_err());
        assert!(check_new("ada.lovelace", Some("ada.lovelace@example.com")).is_err());
        assert!(check_new("correct horse battery staple", None).is_ok());
    }

    #[test]
    fn a_hash_verifies_only_its_password_and_uses_argon2id_owasp_parameters() {
        let h = hash("correct horse", HashingCost::Owasp).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse", &h));
        assert!(!verify("correct horsf", &h));
        assert!(!verify("correct horse", "not a hash"));
    }
}
