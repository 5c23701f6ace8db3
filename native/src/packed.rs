//! Script calls written straight in the Redis protocol (RESP): a batch's calls carry
//! thousands of keys and arguments, and handing each to Python as an object, for redis-py
//! and hiredis to pack again, cost more than writing the bytes here once.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// A packed call as Python gets it: (elements after `EVALSHA <sha>`, their bytes).
pub(crate) type PackedCall<'py> = (usize, Bound<'py, PyBytes>);

/// One script call from its number of keys on (keys, then arguments), in the Redis protocol.
/// `bestand.store.scripts.Script.command` puts `*<n>`, `EVALSHA` and the script's SHA-1 in
/// front: the call has `count` elements after those two.
pub(crate) struct Packed {
    count: usize,
    body: Vec<u8>,
}

impl Packed {
    /// A call with `keys` keys (added next, before the arguments).
    pub(crate) fn new(keys: usize, capacity: usize) -> Self {
        let mut packed = Packed { count: 0, body: Vec::with_capacity(capacity) };
        packed.int(keys as i64);
        packed
    }

    /// One element: a key or an argument.
    pub(crate) fn arg(&mut self, value: &[u8]) {
        self.arg2(value, b"");
    }

    /// One element made of two parts (a key prefix and an id), without joining them first.
    pub(crate) fn arg2(&mut self, first: &[u8], second: &[u8]) {
        self.count += 1;
        self.body.push(b'$');
        self.body.extend_from_slice((first.len() + second.len()).to_string().as_bytes());
        self.body.extend_from_slice(b"\r\n");
        self.body.extend_from_slice(first);
        self.body.extend_from_slice(second);
        self.body.extend_from_slice(b"\r\n");
    }

    /// A number, as Redis takes numbers: its decimal text.
    pub(crate) fn int(&mut self, n: i64) {
        self.arg(n.to_string().as_bytes());
    }

    /// (elements after `EVALSHA <sha>`, their bytes) for Python.
    pub(crate) fn into_py(self, py: Python<'_>) -> PackedCall<'_> {
        (self.count, PyBytes::new(py, &self.body))
    }
}
