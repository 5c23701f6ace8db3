//! `bestand.identity.keyed.IdentityKeyer.key_tokens`, compiled: an event's raw identifiers
//! to the tokens of their keyed forms, with what was junk or refused and why.
//!
//! Keying is the worker's largest piece of Python per event: about five identifiers each, and
//! most values of a history are new to the worker (the million-event shop keys 850,000
//! distinct values; no cache of a sane size keeps them). The outcome of every value is kept
//! here in two generations, as the Python keyer does. A new value of a plain kind that is
//! printable ASCII is normalized, checked and keyed here; anything else (phone numbers, which
//! need the numbering plans of `phonenumbers`, SHA-256 digests, any other character, and the
//! e-mail junk patterns, which are Python regular expressions from settings) is asked of the
//! Python keyer. The tests hold both to the same outcome for every value they try.

use foldhash::{HashMap, HashMapExt, HashSet};

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use crate::keying::keyed;

/// Put in front of a refused value before it is keyed (`keyed._REFUSED`).
const REFUSED: &str = "\x1frefused\x1f";
/// Characters wrapping a placeholder value (`junk._WRAPPING`).
const WRAPPING: &str = "()[]{}<>\"'`";

/// What keying one raw value gave: nothing (a placeholder dropped without a word), or the
/// token of its keyed form, with why it is junk or why it was refused.
#[derive(Default)]
struct Outcome {
    token: Option<Py<PyString>>,
    junk: Option<Py<PyString>>,
    refused: Option<Py<PyString>>,
}

impl Outcome {
    fn clone_ref(&self, py: Python<'_>) -> Outcome {
        Outcome {
            token: self.token.as_ref().map(|t| t.clone_ref(py)),
            junk: self.junk.as_ref().map(|t| t.clone_ref(py)),
            refused: self.refused.as_ref().map(|t| t.clone_ref(py)),
        }
    }
}

/// The rules a plain identifier's value is normalized and checked by, given by Python so
/// that both keyers read one list.
struct Rules {
    junk_values: HashSet<String>,
    gmail_domains: HashSet<String>,
    aliases: HashMap<String, String>,
}

/// Only printable ASCII is handled here: there Python's `strip`, `lower`, `casefold`, `\s`
/// and `\W` mean what their ASCII counterparts do.
fn printable_ascii(value: &str) -> bool {
    value.bytes().all(|b| (0x20..0x7f).contains(&b))
}

fn is_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

impl Rules {
    /// `junk.junk_value_reason` of a printable ASCII value.
    fn value_reason(&self, raw: &str) -> Option<String> {
        let value = raw.trim_matches(' ').to_ascii_lowercase();
        if value.is_empty() {
            return Some("empty value".to_owned());
        }
        let core = value.trim_matches(|c| WRAPPING.contains(c)).trim_matches(' ');
        if self.junk_values.contains(core) {
            return Some(format!("placeholder value '{core}'"));
        }
        if value.chars().all(|c| !is_alnum(c)) {
            return Some("only punctuation".to_owned());
        }
        if value.contains('0') && value.chars().all(|c| c == '0' || !is_alnum(c)) {
            return Some("only zeros".to_owned());
        }
        if value.chars().all(|c| c == 'x') {
            return Some("only the letter x".to_owned());
        }
        None
    }

    /// `normalize.normalize_token`.
    fn token(raw: &str) -> Result<String, String> {
        let value = raw.trim_matches(' ');
        if value.is_empty() {
            return Err("an identifier cannot be empty".to_owned());
        }
        Ok(value.to_owned())
    }

    /// `normalize.normalize_device_id`.
    fn device(raw: &str) -> Result<String, String> {
        let value = Self::token(raw)?.to_ascii_lowercase();
        if value.chars().all(|c| c == '-' || c == '0') {
            return Err("the all-zero advertising id names no device (limit ad tracking)".to_owned());
        }
        Ok(value)
    }

    /// `normalize.normalize_loyalty_card`.
    fn loyalty(raw: &str) -> Result<String, String> {
        let value: String =
            raw.chars().filter(|&c| c != ' ' && c != '-').collect::<String>().to_ascii_uppercase();
        if value.is_empty() {
            return Err("a loyalty card number cannot be empty".to_owned());
        }
        Ok(value)
    }

    /// `normalize.normalize_payment_fingerprint`.
    fn payment(&self, raw: &str) -> Result<String, String> {
        let value = raw.trim_matches(' ');
        if value.is_empty() {
            return Err("a payment fingerprint cannot be empty".to_owned());
        }
        if let Some(reason) = self.value_reason(value) {
            return Err(format!("not a payment fingerprint: {reason}"));
        }
        Ok(value.to_owned())
    }

    /// `normalize.normalize_email` (alias domains folded).
    fn email(&self, raw: &str) -> Result<String, String> {
        let value: String = raw.chars().filter(|&c| c != ' ').collect::<String>().to_ascii_lowercase();
        if value.matches('@').count() != 1 {
            return Err("an e-mail address needs exactly one '@'".to_owned());
        }
        let (local, domain) = value.split_once('@').expect("one '@'");
        if local.is_empty() || domain.is_empty() {
            return Err("an e-mail address needs a local part and a domain".to_owned());
        }
        if !mail_domain(domain) {
            return Err(format!("'{domain}' is not a valid e-mail domain"));
        }
        let mut local = local.to_owned();
        if self.gmail_domains.contains(domain) {
            local = local.split('+').next().unwrap_or("").replace('.', "");
            if local.is_empty() {
                return Err("the Gmail local part is empty after normalization".to_owned());
            }
        }
        let domain = self.aliases.get(domain).map_or(domain, String::as_str);
        Ok(format!("{local}@{domain}"))
    }

    /// The normalized form of a printable ASCII value of a kind other than phone.
    fn normalize(&self, kind: &str, raw: &str) -> Result<String, String> {
        match kind {
            "e" => self.email(raw),
            "d" => Self::device(raw),
            "l" => Self::loyalty(raw),
            "f" => self.payment(raw),
            _ => Self::token(raw),
        }
    }
}

/// `normalize._EMAIL_DOMAIN` of a lowercased domain: two labels or more of letters, digits and
/// inner hyphens.
fn mail_domain(domain: &str) -> bool {
    let mut labels = 0;
    for label in domain.split('.') {
        let ok = !label.is_empty()
            && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return false;
        }
        labels += 1;
    }
    labels >= 2
}

/// The keyer: the secret, the rules, the Python keyer for what is not handled here, and the
/// outcomes of the values seen lately.
#[pyclass(module = "bestand_native", unsendable)]
pub struct Keyer {
    secret: Vec<u8>,
    rules: Rules,
    /// `(kind, value, is_sha256) -> (token | None, junk reason | None, refused reason | None)`
    fallback: PyObject,
    /// `normalized e-mail -> junk reason | None`
    email_reason: PyObject,
    cache: HashMap<String, Outcome>,
    older: HashMap<String, Outcome>,
    cache_size: usize,
    /// Where the cache key of the value at hand is built.
    key: String,
}

impl Keyer {
    fn outcome(&mut self, py: Python<'_>, kind_obj: &Bound<'_, PyAny>, kind: &str, value: &str, sha: bool) -> PyResult<Outcome> {
        self.key.clear();
        self.key.push_str(kind);
        self.key.push(if sha { '1' } else { '0' });
        self.key.push_str(value);
        if let Some(found) = self.cache.get(self.key.as_str()) {
            return Ok(found.clone_ref(py));
        }
        let outcome = match self.older.remove(self.key.as_str()) {
            Some(outcome) => outcome,
            None => self.new_outcome(py, kind_obj, kind, value, sha)?,
        };
        if self.cache.len() >= self.cache_size {
            self.older = std::mem::take(&mut self.cache);
        }
        let kept = outcome.clone_ref(py);
        self.cache.insert(self.key.clone(), outcome);
        Ok(kept)
    }

    fn ask_python(&self, py: Python<'_>, kind: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>, sha: bool) -> PyResult<Outcome> {
        let (token, junk, refused): (Option<Py<PyString>>, Option<Py<PyString>>, Option<Py<PyString>>) =
            self.fallback.call1(py, (kind, value, sha))?.extract(py)?;
        Ok(Outcome { token, junk, refused })
    }

    fn new_outcome(&self, py: Python<'_>, kind_obj: &Bound<'_, PyAny>, kind: &str, value: &str, sha: bool) -> PyResult<Outcome> {
        if sha || kind == "p" || !printable_ascii(value) {
            return self.ask_python(py, kind_obj, &PyString::new(py, value), sha);
        }
        let text = |s: String| Some(PyString::new(py, &s).unbind());
        Ok(match self.rules.normalize(kind, value) {
            Ok(normalized) => {
                let token = format!("{kind}:{}", keyed(&self.secret, kind, &normalized));
                let mut junk = self.rules.value_reason(value);
                if junk.is_none() && kind == "e" {
                    junk = self.email_reason.call1(py, (normalized.as_str(),))?.extract(py)?;
                }
                Outcome { token: text(token), junk: junk.and_then(text), refused: None }
            }
            Err(why) => {
                if self.rules.value_reason(value).is_some() {
                    Outcome::default()
                } else {
                    let kept = format!("{REFUSED}{}", value.trim_matches(' '));
                    let token = format!("{kind}:{}", keyed(&self.secret, kind, &kept));
                    Outcome { token: text(token), junk: None, refused: text(why) }
                }
            }
        })
    }
}

#[pymethods]
impl Keyer {
    #[new]
    #[pyo3(signature = (secret, fallback, email_reason, junk_values, gmail_domains, aliases, cache_size=100_000))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        secret: Vec<u8>,
        fallback: PyObject,
        email_reason: PyObject,
        junk_values: Vec<String>,
        gmail_domains: Vec<String>,
        aliases: std::collections::HashMap<String, String>,
        cache_size: usize,
    ) -> Self {
        Keyer {
            secret,
            rules: Rules {
                junk_values: junk_values.into_iter().collect(),
                gmail_domains: gmail_domains.into_iter().collect(),
                aliases: aliases.into_iter().collect(),
            },
            fallback,
            email_reason,
            cache: HashMap::new(),
            older: HashMap::new(),
            cache_size: cache_size.max(1),
            key: String::new(),
        }
    }

    /// `(tokens, rejected, junk, refused)` of an event's `(kind, value, is_sha256)`
    /// identifiers: the tokens to link by, in order and without repeats; `(kind, why)` of
    /// each refused value; `(token, why)` of each junk and each refused value, once each.
    fn key_tokens<'py>(&mut self, py: Python<'py>, raw: &Bound<'py, PyList>) -> PyResult<Bound<'py, PyTuple>> {
        let tokens = PyList::empty(py);
        let rejected = PyList::empty(py);
        let junk = PyList::empty(py);
        let refused = PyList::empty(py);
        let mut seen: Vec<Py<PyString>> = Vec::new();
        let mut flagged: Vec<Py<PyString>> = Vec::new();
        let mut thrown: Vec<Py<PyString>> = Vec::new();
        let same = |list: &Vec<Py<PyString>>, token: &Py<PyString>| -> PyResult<bool> {
            for known in list {
                if known.bind(py).as_any().eq(token.bind(py))? {
                    return Ok(true);
                }
            }
            Ok(false)
        };
        for item in raw.iter() {
            let item = item.downcast_into::<PyTuple>()?;
            let kind_obj = item.get_item(0)?;
            let kind_str = kind_obj.downcast::<PyString>()?.to_cow()?.into_owned();
            let value_obj = item.get_item(1)?;
            let sha = item.get_item(2)?.is_truthy()?;
            let outcome = match value_obj.downcast::<PyString>()?.to_str() {
                Ok(value) => self.outcome(py, &kind_obj, &kind_str, value, sha)?,
                // Not UTF-8 (a lone surrogate): the Python keyer says why, uncached.
                Err(_) => self.ask_python(py, &kind_obj, &value_obj, sha)?,
            };
            let Some(token) = outcome.token else { continue };
            if let Some(why) = outcome.refused {
                rejected.append((&kind_obj, why.clone_ref(py)))?;
                if !same(&thrown, &token)? {
                    refused.append((token.clone_ref(py), why))?;
                    thrown.push(token);
                }
                continue;
            }
            if let Some(why) = outcome.junk {
                if !same(&flagged, &token)? {
                    junk.append((token.clone_ref(py), why))?;
                    flagged.push(token);
                }
            } else if !same(&seen, &token)? {
                tokens.append(token.clone_ref(py))?;
                seen.push(token);
            }
        }
        PyTuple::new(py, [tokens.into_any(), rejected.into_any(), junk.into_any(), refused.into_any()])
    }

    /// Outcomes kept (both generations), for the tests.
    fn cached(&self) -> usize {
        self.cache.len() + self.older.len()
    }
}
