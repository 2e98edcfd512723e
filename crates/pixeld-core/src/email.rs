//! Email addresses, parsed once at the edge so an invalid one cannot exist past it.

use std::fmt;

/// A syntactically valid email address with a lower-cased domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Checks the shape (one `@`, a non-empty local part, a dotted domain, no spaces or control
    /// characters, at most 254 bytes) and normalises the domain to lower case.
    pub fn parse(input: &str) -> crate::Result<Self> {
        let s = input.trim();
        let bad = |m: &str| crate::Error::invalid("email", m);
        if s.is_empty() {
            return Err(bad("is required"));
        }
        if s.len() > 254 {
            return Err(bad("is longer than 254 characters"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("must not contain spaces"));
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(|| bad("must contain @"))?;
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err(bad("has an invalid part before @"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(bad("has an invalid domain"));
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps a value read back from storage, which was validated when written.
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::EmailAddress;

    #[test]
    fn addresses_are_normalised_and_nonsense_is_refused() {
        assert_eq!(
            EmailAddress::parse(" Ada@Example.COM ").unwrap().as_str(),
            "Ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "ada@-x.com",
            "ada@ex..com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
