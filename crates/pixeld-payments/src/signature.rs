//! HMAC-SHA256, which both providers sign with, and the constant-time comparison.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

/// HMAC-SHA256 of the concatenated `parts` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    let mut out = [0; 32];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// Whether a hex signature equals `expected`, without leaking where they differ.
pub(crate) fn hex_matches(expected: &[u8; 32], candidate_hex: &str) -> Choice {
    match hex::decode(candidate_hex.trim()) {
        Ok(candidate) if candidate.len() == expected.len() => expected.ct_eq(&candidate[..]),
        _ => Choice::from(0),
    }
}
