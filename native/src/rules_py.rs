//! `rules::decide` over plain Python data, for the tests that hold it to
//! `bestand.identity.rules.decide`.

use foldhash::{HashMap, HashMapExt, HashSet};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::rules::{decide, KindPolicy, Link, LogEntry, Policy, View, STRENGTH};

/// The strings of a list, tuple, set or frozenset (a str is no collection of tokens here).
fn strings(value: &Bound<'_, PyAny>) -> PyResult<HashSet<String>> {
    if value.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err("a collection of strings, not a str"));
    }
    value.try_iter()?.map(|item| item?.extract::<String>()).collect()
}

fn item<'py>(dict: &Bound<'py, PyDict>, key: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
    dict.get_item(key)
}

/// Python raises `ValueError` for a token of no kind before deciding anything.
fn kind_letter(token: &str, policy: &Policy) -> PyResult<u8> {
    match token.as_bytes().first() {
        Some(&letter) if STRENGTH.as_bytes().contains(&letter) && policy.kinds.contains_key(&letter) => Ok(letter),
        _ => Err(PyValueError::new_err(format!("{token:?} is not a kind:hash token"))),
    }
}

fn view_from(data: &Bound<'_, PyDict>, policy: &Policy) -> PyResult<View> {
    let mut view = View::default();
    if let Some(owners) = item(data, "owners")? {
        view.owners = owners.extract()?;
    }
    if let Some(junk) = item(data, "junk")? {
        view.junk = strings(&junk)?;
    }
    if let Some(met) = item(data, "met")? {
        for (token, persons) in met.downcast::<PyDict>()?.iter() {
            view.met.insert(token.extract()?, strings(&persons)?);
        }
    }
    if let Some(counts) = item(data, "kind_counts")? {
        for (person, kinds) in counts.downcast::<PyDict>()?.iter() {
            let mut by_letter = HashMap::new();
            for (kind, n) in kinds.downcast::<PyDict>()?.iter() {
                let kind: String = kind.extract()?;
                if kind.len() != 1 {
                    return Err(PyValueError::new_err(format!("{kind:?} is not a kind letter")));
                }
                by_letter.insert(kind_letter(&kind, policy)?, n.extract::<i64>()?);
            }
            view.kind_counts.insert(person.extract()?, by_letter);
        }
    }
    if let Some(versions) = item(data, "versions")? {
        view.versions = versions.extract()?;
    }
    if let Some(names) = item(data, "names")? {
        for (person, tokens) in names.downcast::<PyDict>()?.iter() {
            view.names.insert(person.extract()?, strings(&tokens)?);
        }
    }
    if let Some(claims) = item(data, "claims")? {
        for (token, at) in claims.downcast::<PyDict>()?.iter() {
            view.claims.insert(token.extract()?, at.extract()?);
        }
    }
    Ok(view)
}

fn policy_from(data: &Bound<'_, PyDict>) -> PyResult<Policy> {
    let mut kinds = HashMap::new();
    for (letter, fields) in data.iter() {
        let letter: String = letter.extract()?;
        let (link, max_persons, max_per_person): (String, i64, Option<i64>) = fields.extract()?;
        let link = match link.as_str() {
            "strong" => Link::Strong,
            "weak" => Link::Weak,
            "never" => Link::Never,
            other => return Err(PyValueError::new_err(format!("unknown link {other:?}"))),
        };
        match letter.as_bytes() {
            [b] if STRENGTH.as_bytes().contains(b) => {
                kinds.insert(*b, KindPolicy { link, max_persons, max_per_person });
            }
            _ => return Err(PyValueError::new_err(format!("{letter:?} is not a kind letter"))),
        }
    }
    if let Some(missing) = STRENGTH.bytes().find(|b| !kinds.contains_key(b)) {
        return Err(PyValueError::new_err(format!("no policy for kind {:?}", missing as char)));
    }
    Ok(Policy { kinds })
}

fn pairs<'py>(py: Python<'py>, pairs: &[(String, String)]) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, pairs.iter().map(|(a, b)| vec![a, b]))
}

fn entry_dict<'py>(py: Python<'py>, entry: &LogEntry) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("kind", entry.kind)?;
    out.set_item("tokens", &entry.tokens)?;
    out.set_item("rule", &entry.rule)?;
    out.set_item("via", &entry.via)?;
    out.set_item("other", &entry.other)?;
    Ok(out)
}

/// The compiled `decide` over plain data (see `bestand_native.pyi`): the decision as a dict,
/// with how often the new person's id was asked for; `{"unattributable", "junk"}` when no
/// identifier names a person.
#[pyfunction]
#[pyo3(signature = (tokens, view, policy, candidate, pattern_junk=Vec::new(), at=0))]
pub fn decide_for_test<'py>(
    py: Python<'py>,
    tokens: Vec<String>,
    view: &Bound<'py, PyDict>,
    policy: &Bound<'py, PyDict>,
    candidate: String,
    pattern_junk: Vec<(String, String)>,
    at: i64,
) -> PyResult<Bound<'py, PyDict>> {
    let policy = policy_from(policy)?;
    for token in &tokens {
        kind_letter(token, &policy)?;
    }
    let view = view_from(view, &policy)?;
    let mut asked = 0_usize;
    let mut new_person = || {
        asked += 1;
        candidate.clone()
    };
    let result = decide(&tokens, &view, &policy, &mut new_person, &pattern_junk, at);
    let out = PyDict::new(py);
    match result {
        Ok(d) => {
            out.set_item("person", &d.person)?;
            out.set_item("absorbed", &d.absorbed)?;
            out.set_item("attach", &d.attach)?;
            out.set_item("describe", &d.describe)?;
            out.set_item("met", pairs(py, &d.met)?)?;
            out.set_item("junk", pairs(py, &d.junk)?)?;
            let log: Vec<Bound<'py, PyDict>> = d.log.iter().map(|e| entry_dict(py, e)).collect::<PyResult<_>>()?;
            out.set_item("log", log)?;
            out.set_item("identifiers", &d.identifiers)?;
            out.set_item("ignored", &d.ignored)?;
            out.set_item("is_new", d.is_new)?;
            out.set_item("moved", pairs(py, &d.moved)?)?;
            let claims: Vec<(String, i64)> = d.claims.clone();
            out.set_item("claims", PyList::new(py, claims.iter().map(|(t, at)| (t, at)))?)?;
        }
        Err(u) => {
            out.set_item("unattributable", &u.message)?;
            out.set_item("junk", pairs(py, &u.junk)?)?;
        }
    }
    out.set_item("candidate_asked", asked)?;
    Ok(out)
}
