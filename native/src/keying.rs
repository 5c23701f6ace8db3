//! The stored form of an identifier, compiled: `bestand.identity.hashing.keyed_hash` of the
//! SHA-256 of its normalized value. A history's identifiers are mostly new to the worker (the
//! million-event shop keys 889,000 distinct values), so each pays this once: about 5 µs in
//! Python, under one here.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use pyo3::prelude::*;
use sha2::{Digest, Sha256};

/// Bytes of the HMAC kept (`KEY_BYTES`: 96 bits, 16 base64url characters).
const KEY_BYTES: usize = 12;

/// `HMAC-SHA256(secret, kind || SHA-256(normalized))`, its first 16 bytes in base64url
/// without padding.
pub fn keyed(secret: &[u8], kind: &str, normalized: &str) -> String {
    let digest = Sha256::digest(normalized.as_bytes());
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(kind.as_bytes());
    mac.update(&digest);
    let full = mac.finalize().into_bytes();
    URL_SAFE_NO_PAD.encode(&full[..KEY_BYTES])
}

/// The keyed hash of a normalized identifier of one kind (its letter).
#[pyfunction]
pub fn keyed_hash_of(secret: &[u8], kind: &str, normalized: &str) -> String {
    keyed(secret, kind, normalized)
}
