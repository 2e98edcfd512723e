//! `Idempotency-Key` for every POST: the same key with the same request replays the stored
//! response; with a different request it is refused. Keys are scoped to the caller.

use sha2::{Digest, Sha256};

/// Stored responses are kept this long.
pub const KEEP_FOR: time::Duration = time::Duration::hours(24);
/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 255;

/// Checks a key's shape: 1..=255 visible ASCII characters.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic())
}

/// The fingerprint of a request: method, path with query, and body.
pub fn request_digest(method: &str, path_and_query: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(path_and_query.as_bytes());
    h.update([0]);
    h.update(body);
    hex::encode(h.finalize())
}

/// Who a key belongs to: a digest of the credential (or of the client address for anonymous
/// calls), so two callers can never collide or see each other's responses.
pub fn caller_digest(credential: &str) -> String {
    crate::secret::digest(credential)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_digests() {
        assert!(valid_key("order-123"));
        assert!(!valid_key(""));
        assert!(!valid_key("has space"));
        assert!(!valid_key(&"k".repeat(256)));
        assert_eq!(
            request_digest("POST", "/a", b"{}"),
            request_digest("POST", "/a", b"{}")
        );
        assert_ne!(
            request_digest("POST", "/a", b"{}"),
            request_digest("POST", "/a", b"{ }")
        );
    }
}
