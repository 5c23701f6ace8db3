//! A batch's identity-graph half, compiled: what `bestand.store.identity_graph.IdentityGraph`
//! does between its round trips (the read's reply parsed into an overlay, every event decided
//! in order against it, the apply script's plans and receipts written as JSON), for a whole
//! batch. Python keeps the I/O: it sends the calls this module prepares and hands the replies
//! back. The Python module stays the reference; the tests hold this one to its Redis writes
//! and answers, byte by byte.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::packed::{Packed, PackedCall};

use crate::overlay::{Guard, Overlay, PersonFacts};
use crate::rules::{decide, name_of, Decision, KindPolicy, Link, LogEntry, Policy, View};
use crate::{text as json_text, text_of};

/// Identifiers one read script covers (`_READ_CHUNK`).
const READ_CHUNK: usize = 1024;
/// Decisions one apply script applies (`_APPLY_CHUNK`).
const APPLY_CHUNK: usize = 256;
/// Persons (and identifiers) a resolver remembers the graph facts (owners) of, per generation.
const REMEMBERED: usize = 50_000;

/// Graph facts of persons, and whom identifiers belong to, as earlier batches read them or
/// left them once all their decisions were written (the overlay then is what the graph holds).
/// A read names the persons it expects with the versions held, and the script leaves out the
/// facts of those still at that version: every change of a person's facts, by any worker,
/// raises its version. The same persons come back batch after batch. Two generations, as the
/// keyer's cache: when the young one is full it becomes the old one.
#[derive(Default)]
struct Remembered {
    facts: HashMap<String, PersonFacts>,
    older_facts: HashMap<String, PersonFacts>,
    owners: HashMap<String, String>,
    older_owners: HashMap<String, String>,
}

impl Remembered {
    fn facts(&self, person: &str) -> Option<&PersonFacts> {
        self.facts.get(person).or_else(|| self.older_facts.get(person))
    }

    fn owner(&self, token: &str) -> Option<&String> {
        self.owners.get(token).or_else(|| self.older_owners.get(token))
    }

    fn keep_facts(&mut self, person: String, facts: PersonFacts) {
        if self.facts.len() >= REMEMBERED && !self.facts.contains_key(&person) {
            self.older_facts = std::mem::take(&mut self.facts);
        }
        self.facts.insert(person, facts);
    }

    fn keep_owner(&mut self, token: String, owner: String) {
        if self.owners.len() >= REMEMBERED && !self.owners.contains_key(&token) {
            self.older_owners = std::mem::take(&mut self.owners);
        }
        self.owners.insert(token, owner);
    }
}

/// What one event of a batch resolved to.
#[derive(Clone)]
enum Answer {
    /// its person, the persons it absorbed, its identifiers that are the person's now, the
    /// junk it flagged and those identifiers' former owners, the cookies and device ids it
    /// took over with their former holders
    Decided {
        person: String,
        absorbed: Vec<String>,
        identifiers: Vec<String>,
        junk: Vec<(String, String)>,
        owners: Vec<(String, String)>,
        moved: Vec<(String, String)>,
    },
    /// no identifier can name a person: why, and the junk it flagged even so
    Refused { message: String, junk: Vec<(String, String)>, owners: Vec<(String, String)> },
    /// every identifier belongs to a person erased after the event happened
    Erased,
}

/// One event to resolve (`Resolution`).
struct Item {
    tokens: Vec<String>,
    candidate: Py<PyAny>,
    event_id: String,
    receipt: String,
    at: i64,
    pattern_junk: Vec<(String, String)>,
}

/// Characters of an identifier's hash that name its graph bucket (`keys.BUCKET_CHARS`).
pub const BUCKET_CHARS: usize = 3;

/// The characters of a token (`kind:hash`) that name its graph bucket (`Keys.identifier`).
pub fn bucket(token: &str) -> &str {
    let end = (2 + BUCKET_CHARS).min(token.len());
    token.get(2.min(end)..end).unwrap_or("")
}

/// Resolves batches under one key prefix and identity policy.
#[pyclass(module = "bestand_native")]
pub struct Resolver {
    identifier_prefix: String,
    /// `Keys.graph_schema`, the scripts' first argument
    schema: Vec<u8>,
    /// explain entries kept per person
    max_log: i64,
    policy: Policy,
    describing: String,
    receipt_ttl: i64,
    /// `bestand.store.keys.receipt_suffix`, for event ids too long to be a key as they are
    receipt_suffix: Py<PyAny>,
    remembered: Remembered,
    /// new persons and links leave the plans' logs, for the explain topic (`links`)
    links_out: bool,
}

#[pymethods]
impl Resolver {
    /// `policy`: kind letter -> (link, max_persons, max_per_person or None); `links_out`:
    /// the explain entries of new persons and links are handed out (`GraphBatch.links`)
    /// instead of written to the graph's logs.
    #[new]
    #[pyo3(signature = (identifier_prefix, schema, max_log, policy, describing, receipt_ttl, links_out=false))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        py: Python<'_>,
        identifier_prefix: String,
        schema: Vec<u8>,
        max_log: i64,
        policy: HashMap<String, (String, i64, Option<i64>)>,
        describing: String,
        receipt_ttl: i64,
        links_out: bool,
    ) -> PyResult<Self> {
        let mut kinds = HashMap::new();
        for (letter, (link, max_persons, max_per_person)) in policy {
            let link = match link.as_str() {
                "strong" => Link::Strong,
                "weak" => Link::Weak,
                "never" => Link::Never,
                other => return Err(PyValueError::new_err(format!("unknown link {other:?}"))),
            };
            let key = *letter.as_bytes().first().ok_or_else(|| PyValueError::new_err("empty kind"))?;
            kinds.insert(key, KindPolicy { link, max_persons, max_per_person });
        }
        Ok(Resolver {
            identifier_prefix,
            schema,
            max_log,
            policy: Policy { kinds },
            describing,
            receipt_ttl,
            receipt_suffix: py.import("bestand.store.keys")?.getattr("receipt_suffix")?.unbind(),
            remembered: Remembered::default(),
            links_out,
        })
    }

    /// Begin a batch of `Resolution`s.
    fn begin(slf: &Bound<'_, Self>, batch: &Bound<'_, PyList>) -> PyResult<GraphBatch> {
        let py = slf.py();
        let this = slf.borrow();
        let suffix = this.receipt_suffix.bind(py);
        let mut items = Vec::with_capacity(batch.len());
        for obj in batch.iter() {
            let tokens: Vec<String> = obj.getattr(intern!(py, "tokens"))?.extract()?;
            let event_id: String = obj.getattr(intern!(py, "event_id"))?.extract()?;
            let receipt = if event_id.chars().count() > 64 {
                suffix.call1((event_id.as_str(),))?.extract()?
            } else {
                event_id.clone()
            };
            let pattern_junk: Vec<(String, String)> =
                obj.getattr(intern!(py, "pattern_junk"))?.extract()?;
            items.push(Item {
                tokens,
                candidate: obj.getattr(intern!(py, "candidate"))?.unbind(),
                event_id,
                receipt,
                at: obj.getattr(intern!(py, "at"))?.extract()?,
                pattern_junk,
            });
        }
        Ok(GraphBatch {
            resolver: slf.clone().unbind(),
            items,
            pending: 0,
            results: Vec::new(),
            round: None,
        })
    }
}

/// A plan to apply: the event's position in the round, its identifiers, the plan (JSON), and
/// the explain entries it leaves to the explain topic (person, event id, stored entries).
type Plan = (usize, Vec<String>, Vec<u8>, Option<Links>);

/// A person's explain entries of one event, for the explain topic: (person, event id, entries).
type Links = (String, String, Vec<String>);

/// Explain entries that go to the explain topic when the resolver hands links out.
fn in_topic(entry: &LogEntry) -> bool {
    matches!(entry.kind, "new" | "link")
}

/// The new-person and link entries of a decision, as the explain topic takes them.
fn links_of(decision: &Decision, item: &Item) -> Option<Links> {
    let entries: Vec<String> =
        decision.log.iter().filter(|e| in_topic(e)).map(|e| log_stored(e, &item.event_id, item.at)).collect();
    (!entries.is_empty()).then(|| (decision.person.clone(), item.event_id.clone(), entries))
}

/// What one round read and decided.
struct Round {
    /// the identifiers of each read call (a share of the batch's, `tokens[i::chunks]`)
    parts: Vec<Vec<String>>,
    answers: Vec<Answer>,
    /// (position in the round, the plan's tokens) of each plan, in order
    plans: Vec<(usize, Vec<String>)>,
    /// the explain topic's entries of each plan (`links_out`), in the plans' order
    links: Vec<Option<Links>>,
    /// the facts the read calls said they hold, by person
    held: HashMap<String, PersonFacts>,
    /// owners and facts as the graph holds them once every plan is applied
    after: Option<(HashMap<String, String>, HashMap<String, PersonFacts>)>,
}

/// One batch on its way through rounds of read, decide and apply.
#[pyclass(module = "bestand_native", unsendable)]
pub struct GraphBatch {
    resolver: Py<Resolver>,
    items: Vec<Item>,
    /// the first event not resolved yet
    pending: usize,
    results: Vec<Answer>,
    round: Option<Round>,
}

/// A person's facts hash (`HGETALL`, flat): version, identifiers (counted by kind: what the
/// rules read), describing tokens, claims (`@` + token: the time claimed). A field of one
/// letter but `v` is a count earlier layouts kept: left out.
fn facts_of(flat: &[&str]) -> PyResult<PersonFacts> {
    if flat.len() % 2 != 0 {
        return Err(PyValueError::new_err("bad facts"));
    }
    let mut facts = PersonFacts::default();
    for pair in flat.chunks_exact(2) {
        let (field, value) = (pair[0], pair[1]);
        if let Some(token) = field.strip_prefix('@') {
            let at: i64 = value.parse().map_err(|_| PyValueError::new_err("bad claim"))?;
            facts.claims.insert(token.to_owned(), at);
        } else if field.len() > 1 {
            if value.is_empty() {
                *facts.counts.entry(field.as_bytes()[0]).or_insert(0) += 1;
            } else {
                facts.described.insert(field.to_owned());
            }
        } else if field == "v" {
            facts.version = value.parse().map_err(|_| PyValueError::new_err("bad version"))?;
        }
    }
    Ok(facts)
}

/// One identifier's row of a `graph_read` reply.
struct TokenRow<'a> {
    /// its position in the read call's identifiers (from 0)
    index: usize,
    owner: &'a str,
    junk: bool,
    erased: &'a str,
    met: Vec<&'a str>,
}

/// A `graph_read` reply, split (the format is in the script's header; positions from 0).
struct GraphRead<'a> {
    tokens: Vec<TokenRow<'a>>,
    persons: Vec<(&'a str, Vec<&'a str>)>,
    receipts: Vec<(usize, &'a str)>,
    /// cookies that moved: their holders by claim time, oldest first
    claims: Vec<(usize, Vec<(i64, &'a str)>)>,
}

impl<'a> GraphRead<'a> {
    fn parse(reply: &'a str) -> PyResult<Self> {
        let bad = || PyValueError::new_err("bad graph read reply");
        let mut sections = reply.split('\x1d');
        let (Some(token_rows), Some(person_rows), Some(receipt_rows), Some(claim_rows), None) =
            (sections.next(), sections.next(), sections.next(), sections.next(), sections.next())
        else {
            return Err(bad());
        };
        let rows = |section: &'a str| section.split('\x1e').filter(|row| !row.is_empty());
        let position = |field: Option<&str>| -> PyResult<usize> {
            let n: usize = field.and_then(|f| f.parse().ok()).ok_or_else(bad)?;
            n.checked_sub(1).ok_or_else(bad)
        };
        let mut tokens = Vec::new();
        for row in rows(token_rows) {
            let mut fields = row.split('\x1f');
            let index = position(fields.next())?;
            let (Some(owner), Some(junk), Some(erased)) = (fields.next(), fields.next(), fields.next()) else {
                return Err(bad());
            };
            tokens.push(TokenRow { index, owner, junk: junk == "1", erased, met: fields.collect() });
        }
        let mut persons = Vec::new();
        for row in rows(person_rows) {
            let mut fields = row.split('\x1f');
            let person = fields.next().ok_or_else(bad)?;
            persons.push((person, fields.collect()));
        }
        let mut receipts = Vec::new();
        for row in rows(receipt_rows) {
            let (j, body) = row.split_once('\x1f').ok_or_else(bad)?;
            receipts.push((position(Some(j))?, body));
        }
        let mut claims = Vec::new();
        for row in rows(claim_rows) {
            let mut fields = row.split('\x1f');
            let index = position(fields.next())?;
            let mut held = Vec::new();
            for entry in fields {
                let (time, person) = entry.split_once(':').ok_or_else(bad)?;
                held.push((time.parse().map_err(|_| bad())?, person));
            }
            claims.push((index, held));
        }
        Ok(GraphRead { tokens, persons, receipts, claims })
    }
}

/// The answer a receipt recorded (`_from_receipt`).
fn from_receipt(body: &str) -> PyResult<Answer> {
    let data: serde_json::Value =
        serde_json::from_str(body).map_err(|e| PyValueError::new_err(format!("bad receipt: {e}")))?;
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array().map_or(Vec::new(), |a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
    };
    let junk: Vec<(String, String)> = data["junk"]
        .as_array()
        .map_or(Vec::new(), |a| {
            a.iter()
                .filter_map(|pair| {
                    let pair = pair.as_array()?;
                    Some((pair.first()?.as_str()?.to_owned(), pair.get(1)?.as_str()?.to_owned()))
                })
                .collect()
        });
    let owners: Vec<(String, String)> = data["owners"]
        .as_object()
        .map_or(Vec::new(), |o| o.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect());
    if let Some(message) = data["unattributable"].as_str() {
        return Ok(Answer::Refused { message: message.to_owned(), junk, owners });
    }
    let moved: Vec<(String, String)> = data["moved"].as_array().map_or(Vec::new(), |a| {
        a.iter()
            .filter_map(|pair| {
                let pair = pair.as_array()?;
                Some((pair.first()?.as_str()?.to_owned(), pair.get(1)?.as_str()?.to_owned()))
            })
            .collect()
    });
    Ok(Answer::Decided {
        person: data["person"].as_str().unwrap_or_default().to_owned(),
        absorbed: strings(&data["absorbed"]),
        identifiers: strings(&data["identifiers"]),
        junk,
        owners,
        moved,
    })
}

/// The decision that would write nothing new (a known visitor's next click).
fn changes_nothing(decision: &Decision, view: &View) -> bool {
    if !decision.attach.is_empty()
        || !decision.absorbed.is_empty()
        || !decision.junk.is_empty()
        || !decision.log.is_empty()
        || !decision.claims.is_empty()
    {
        return false;
    }
    if decision.met.iter().any(|(token, person)| !view.met.get(token).is_some_and(|m| m.contains(person))) {
        return false;
    }
    let names = view.names.get(&decision.person);
    decision.describe.iter().all(|t| names.is_some_and(|n| n.contains(t)))
}

/// What an event that names nobody still changes: its junk flagged in the name of the first
/// flagged identifier's owner (None when no owner is left to tell).
fn flag_decision(junk: &[(String, String)], view: &View) -> Option<Decision> {
    let owner = junk.iter().find_map(|(t, _)| view.owners.get(t))?;
    Some(Decision {
        person: owner.clone(),
        absorbed: Vec::new(),
        attach: Vec::new(),
        describe: Vec::new(),
        met: Vec::new(),
        junk: junk.to_vec(),
        log: junk
            .iter()
            .map(|(t, why)| LogEntry { kind: "junk", tokens: vec![t.clone()], rule: why.clone(), via: None, other: None })
            .collect(),
        identifiers: Vec::new(),
        ignored: Vec::new(),
        is_new: false,
        moved: Vec::new(),
        claims: Vec::new(),
    })
}

/// Former owners of junk identifiers, in the order the junk is named.
fn junk_owners(junk: &[(String, String)], view: &View) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (token, _) in junk {
        if let Some(owner) = view.owners.get(token) {
            if !out.iter().any(|(t, _)| t == token) {
                out.push((token.clone(), owner.clone()));
            }
        }
    }
    out
}

fn json_texts(out: &mut Vec<u8>, values: &[String]) {
    out.push(b'[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_text(out, v);
    }
    out.push(b']');
}

fn json_pairs(out: &mut Vec<u8>, pairs: &[(String, String)]) {
    out.push(b'[');
    for (i, (a, b)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        json_text(out, a);
        out.push(b',');
        json_text(out, b);
        out.push(b']');
    }
    out.push(b']');
}

/// An object of string values, keys in the order given (later duplicates keep the first place
/// and take the last value, as a Python dict does).
fn json_object(out: &mut Vec<u8>, pairs: &[(String, String)]) {
    out.push(b'{');
    let mut written: Vec<(&str, &str)> = Vec::new();
    for (k, v) in pairs {
        if let Some(slot) = written.iter_mut().find(|(key, _)| *key == k) {
            slot.1 = v;
        } else {
            written.push((k, v));
        }
    }
    for (i, (k, v)) in written.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_text(out, k);
        out.push(b':');
        json_text(out, v);
    }
    out.push(b'}');
}

/// The rule an entry of this kind and these identifiers has when the rules made it without
/// anything else to say (`bestand.identity.entries.derived_rule`).
fn derived_rule(kind: &str, tokens: &[String], via: Option<&str>) -> Option<String> {
    match (kind, tokens.first(), via) {
        ("new", Some(first), _) => Some(format!("new person from {}", name_of(first))),
        ("link", _, Some(via)) if !via.is_empty() => Some(format!("seen with {}", name_of(via))),
        _ => None,
    }
}

/// An explain entry as the log stores it (`bestand.identity.entries.stored_entry`): fields
/// split by \x1f, a rule the kind and identifiers say already left empty; as JSON where the
/// fields cannot be split that way.
fn log_stored(entry: &LogEntry, event_id: &str, at: i64) -> String {
    const SEP: char = '\x1f';
    // What splits the entries of a short log kept as one string (`keys.py`).
    const LOG_SEP: char = '\x1e';
    let letter = match entry.kind {
        "new" => "n",
        "link" => "l",
        "merge" => "m",
        "move" => "v",
        "refused" => "r",
        "junk" => "j",
        _ => return log_json(entry, event_id, at),
    };
    let derived = derived_rule(entry.kind, &entry.tokens, entry.via.as_deref());
    let via = entry.via.as_deref().unwrap_or("");
    let other = entry.other.as_deref().unwrap_or("");
    if entry.via.as_deref() == Some("")
        || entry.other.as_deref() == Some("")
        || (entry.rule.is_empty() && derived.is_some())
        || [event_id, entry.rule.as_str(), via, other].iter().any(|f| f.contains(SEP) || f.contains(LOG_SEP))
        || entry.tokens.iter().any(|t| t.contains(SEP) || t.contains(LOG_SEP))
    {
        return log_json(entry, event_id, at);
    }
    let rule = if derived.as_deref() == Some(entry.rule.as_str()) { "" } else { entry.rule.as_str() };
    let mut out = String::with_capacity(96);
    for (i, field) in [letter, &at.to_string(), event_id, rule, via, other].iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        out.push_str(field);
    }
    for token in &entry.tokens {
        out.push(SEP);
        out.push_str(token);
    }
    out
}

/// An explain entry as the log stores it, for the tests that hold it to
/// `bestand.identity.entries.stored_entry`.
#[pyfunction]
#[pyo3(signature = (kind, tokens, rule, via, other, event_id, at))]
pub fn stored_entry_for_test(
    kind: &str,
    tokens: Vec<String>,
    rule: String,
    via: Option<String>,
    other: Option<String>,
    event_id: &str,
    at: i64,
) -> PyResult<String> {
    let kind: &'static str = match kind {
        "new" => "new",
        "link" => "link",
        "merge" => "merge",
        "move" => "move",
        "refused" => "refused",
        "junk" => "junk",
        _ => return Err(PyValueError::new_err(format!("no entry kind {kind:?}"))),
    };
    Ok(log_stored(&LogEntry { kind, tokens, rule, via, other }, event_id, at))
}

/// An explain entry as JSON (`LogEntry.to_json`, written as orjson writes it).
fn log_json(entry: &LogEntry, event_id: &str, at: i64) -> String {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"{\"k\":");
    json_text(&mut out, entry.kind);
    out.extend_from_slice(b",\"e\":");
    json_text(&mut out, event_id);
    out.extend_from_slice(format!(",\"at\":{at},\"t\":").as_bytes());
    json_texts(&mut out, &entry.tokens);
    out.extend_from_slice(b",\"r\":");
    json_text(&mut out, &entry.rule);
    if let Some(via) = &entry.via {
        out.extend_from_slice(b",\"via\":");
        json_text(&mut out, via);
    }
    if let Some(other) = &entry.other {
        out.extend_from_slice(b",\"o\":");
        json_text(&mut out, other);
    }
    out.push(b'}');
    String::from_utf8(out).expect("JSON of strings is UTF-8")
}

/// What a redelivered event needs to give the same answer again (`_receipt`).
fn receipt_json(decision: &Decision, view: &View, unattributable: Option<&str>) -> String {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"person\":");
    json_text(&mut out, &decision.person);
    out.extend_from_slice(b",\"absorbed\":");
    json_texts(&mut out, &decision.absorbed);
    out.extend_from_slice(b",\"identifiers\":");
    json_texts(&mut out, &decision.identifiers);
    out.extend_from_slice(b",\"junk\":");
    json_pairs(&mut out, &decision.junk);
    out.extend_from_slice(b",\"owners\":");
    json_object(&mut out, &junk_owners(&decision.junk, view));
    out.extend_from_slice(b",\"unattributable\":");
    match unattributable {
        Some(message) => json_text(&mut out, message),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"moved\":");
    json_pairs(&mut out, &decision.moved);
    out.push(b'}');
    String::from_utf8(out).expect("JSON of strings is UTF-8")
}

/// The apply script's plan of one decision (`_plan`).
fn plan_json(
    guard: &Guard,
    decision: &Decision,
    view: &View,
    item: &Item,
    receipt_ttl: i64,
    unattributable: Option<&str>,
    links_out: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"{\"owners\":");
    json_object(&mut out, &guard.owners);
    out.extend_from_slice(b",\"junk\":{");
    let mut seen: HashSet<&str> = HashSet::new();
    let mut first = true;
    for token in &guard.unflagged {
        if seen.insert(token) {
            if !first {
                out.push(b',');
            }
            first = false;
            json_text(&mut out, token);
            out.extend_from_slice(b":\"\"");
        }
    }
    out.extend_from_slice(b"},\"versions\":{");
    for (i, (person, version)) in guard.versions.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_text(&mut out, person);
        out.extend_from_slice(format!(":{version}").as_bytes());
    }
    out.extend_from_slice(b"},\"person\":");
    json_text(&mut out, &decision.person);
    out.extend_from_slice(b",\"absorbed\":");
    json_texts(&mut out, &decision.absorbed);
    out.extend_from_slice(b",\"attach\":");
    json_texts(&mut out, &decision.attach);
    out.extend_from_slice(b",\"describe\":");
    json_texts(&mut out, &decision.describe);
    out.extend_from_slice(b",\"met\":");
    json_pairs(&mut out, &decision.met);
    out.extend_from_slice(b",\"flag\":");
    json_pairs(&mut out, &decision.junk);
    out.extend_from_slice(b",\"log\":[");
    for (i, entry) in decision.log.iter().filter(|e| !(links_out && in_topic(e))).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_text(&mut out, &log_stored(entry, &item.event_id, item.at));
    }
    out.push(b']');
    if !decision.moved.is_empty() {
        // The former holder's log gets the move's entry too.
        out.extend_from_slice(b",\"move\":[");
        for (i, (token, former)) in decision.moved.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'[');
            json_text(&mut out, token);
            out.push(b',');
            json_text(&mut out, former);
            out.push(b',');
            let entry = decision.log.iter().rev().find(|e| e.kind == "move" && e.tokens.first() == Some(token));
            let text = entry.map(|e| log_stored(e, &item.event_id, item.at)).unwrap_or_default();
            json_text(&mut out, &text);
            let claimed = decision.claims.iter().find(|(t, _)| t == token).map_or(0, |(_, at)| *at);
            out.extend_from_slice(format!(",{claimed}]").as_bytes());
        }
        out.push(b']');
    }
    if !decision.claims.is_empty() {
        out.extend_from_slice(b",\"claim\":[");
        for (i, (token, at)) in decision.claims.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json_text(&mut out, &format!("@{token}"));
            out.extend_from_slice(format!(",{at}").as_bytes());
        }
        out.push(b']');
    }
    if decision.log.iter().any(|e| !matches!(e.kind, "new" | "link" | "merge" | "move")) {
        out.extend_from_slice(b",\"repeats\":1");
    }
    if !decision.absorbed.is_empty() || !decision.junk.is_empty() || !decision.moved.is_empty() {
        out.extend_from_slice(b",\"receipt\":{\"event\":");
        json_text(&mut out, &item.receipt);
        out.extend_from_slice(format!(",\"ttl\":{receipt_ttl},\"body\":").as_bytes());
        json_text(&mut out, &receipt_json(decision, view, unattributable));
        out.push(b'}');
    }
    out.push(b'}');
    out
}

impl GraphBatch {
    /// Decide every pending event against the read's overlay; the plans to apply.
    fn decide_all(
        &mut self,
        py: Python<'_>,
        mut overlay: Overlay,
        erased: HashMap<String, i64>,
        mut receipts: Vec<Option<Answer>>,
    ) -> PyResult<(Vec<Answer>, Vec<Plan>, Overlay)> {
        let resolver = self.resolver.borrow(py);
        let policy = &resolver.policy;
        let mut answers = Vec::with_capacity(self.items.len() - self.pending);
        let mut plans = Vec::new();
        for (position, item) in self.items[self.pending..].iter().enumerate() {
            if let Some(answer) = receipts[position].take() {
                answers.push(answer);
                continue;
            }
            let mut tokens = item.tokens.clone();
            if !erased.is_empty() {
                tokens.retain(|t| erased.get(t).copied().unwrap_or(-1) < item.at);
                if tokens.is_empty() {
                    answers.push(Answer::Erased);
                    continue;
                }
            }
            let view = overlay.view(&tokens, Some(item.at));
            let mut failed: Option<PyErr> = None;
            let candidate = item.candidate.bind(py);
            let mut ask = || -> String {
                if candidate.is_instance_of::<PyString>() {
                    return candidate.extract().unwrap_or_default();
                }
                match candidate.call0().and_then(|id| id.extract::<String>()) {
                    Ok(id) => id,
                    Err(e) => {
                        failed = Some(e);
                        String::new()
                    }
                }
            };
            let outcome = decide(&tokens, &view, policy, &mut ask, &item.pattern_junk, item.at);
            if let Some(e) = failed {
                return Err(e);
            }
            match outcome {
                Err(refusal) => {
                    answers.push(Answer::Refused {
                        message: refusal.message.clone(),
                        junk: refusal.junk.clone(),
                        owners: junk_owners(&refusal.junk, &view),
                    });
                    if let Some(flag) = flag_decision(&refusal.junk, &view) {
                        let guard = overlay.guard(&tokens, &view);
                        let plan = plan_json(
                            &guard,
                            &flag,
                            &view,
                            item,
                            resolver.receipt_ttl,
                            Some(&refusal.message),
                            resolver.links_out,
                        );
                        let links = if resolver.links_out { links_of(&flag, item) } else { None };
                        plans.push((position, tokens, plan, links));
                        overlay.apply(&flag);
                    }
                }
                Ok(decision) => {
                    answers.push(Answer::Decided {
                        person: decision.person.clone(),
                        absorbed: decision.absorbed.clone(),
                        identifiers: decision.identifiers.clone(),
                        junk: decision.junk.clone(),
                        owners: junk_owners(&decision.junk, &view),
                        moved: decision.moved.clone(),
                    });
                    if !changes_nothing(&decision, &view) {
                        let guard = overlay.guard(&tokens, &view);
                        let plan =
                            plan_json(&guard, &decision, &view, item, resolver.receipt_ttl, None, resolver.links_out);
                        let links = if resolver.links_out { links_of(&decision, item) } else { None };
                        plans.push((position, tokens, plan, links));
                        overlay.apply(&decision);
                    }
                }
            }
        }
        Ok((answers, plans, overlay))
    }
}

#[pymethods]
impl GraphBatch {
    /// The read calls of the next round, packed (`Packed`) calls of `graph_read`; None once
    /// every event is resolved.
    fn read<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Vec<PackedCall<'py>>>> {
        if self.pending >= self.items.len() {
            return Ok(None);
        }
        let resolver = self.resolver.borrow(py);
        let pending = &self.items[self.pending..];
        let mut seen: HashSet<&str> = HashSet::new();
        let mut tokens: Vec<&str> = Vec::new();
        for item in pending {
            for t in &item.tokens {
                if seen.insert(t) {
                    tokens.push(t);
                }
            }
        }
        let chunks = tokens.len().div_ceil(READ_CHUNK).max(1);
        let mut calls = Vec::with_capacity(chunks);
        let mut parts = Vec::with_capacity(chunks);
        let prefix = resolver.identifier_prefix.as_bytes();
        let mut held: HashMap<String, PersonFacts> = HashMap::new();
        for i in 0..chunks {
            let part: Vec<String> = tokens.iter().skip(i).step_by(chunks).map(|t| (*t).to_owned()).collect();
            let mut expected: Vec<(&str, i64)> = Vec::new();
            let mut named: HashSet<&str> = HashSet::new();
            for t in &part {
                let Some(owner) = resolver.remembered.owner(t) else { continue };
                let Some(facts) = resolver.remembered.facts(owner) else { continue };
                if named.insert(owner.as_str()) {
                    expected.push((owner.as_str(), facts.version));
                    held.entry(owner.clone()).or_insert_with(|| facts.clone());
                }
            }
            let mut call = Packed::new(part.len(), part.len() * 96 + expected.len() * 48 + 512);
            for t in &part {
                call.arg2(prefix, bucket(t).as_bytes());
            }
            call.arg(&resolver.schema);
            call.int(part.len() as i64);
            for t in &part {
                call.arg(t.as_bytes());
            }
            call.int(expected.len() as i64);
            for (person, version) in &expected {
                call.arg(person.as_bytes());
                call.int(*version);
            }
            for item in pending.iter().skip(i).step_by(chunks) {
                call.arg(item.receipt.as_bytes());
            }
            calls.push(call.into_py(py));
            parts.push(part);
        }
        self.round =
            Some(Round { parts, answers: Vec::new(), plans: Vec::new(), links: Vec::new(), held, after: None });
        Ok(Some(calls))
    }

    /// Decide the round's events on the read's replies; the apply calls, packed (`Packed`)
    /// calls of `graph_apply` under the round's stop id.
    fn decide<'py>(
        &mut self,
        py: Python<'py>,
        replies: &Bound<'py, PyList>,
        stop: &str,
    ) -> PyResult<Vec<PackedCall<'py>>> {
        let mut round = self.round.take().ok_or_else(|| PyValueError::new_err("decide before read"))?;
        let chunks = round.parts.len();
        let mut resolver_mut = self.resolver.borrow_mut(py);
        let remembered = &mut resolver_mut.remembered;
        let mut owners: HashMap<String, String> = HashMap::new();
        let mut junk: HashSet<String> = HashSet::new();
        let mut met: HashMap<String, HashSet<String>> = HashMap::new();
        let mut erased: HashMap<String, i64> = HashMap::new();
        let mut persons: HashMap<String, PersonFacts> = HashMap::new();
        let mut history: HashMap<String, Vec<(i64, String)>> = HashMap::new();
        let mut receipts: Vec<Option<Answer>> = vec![None; self.items.len() - self.pending];
        for (chunk, (part, reply)) in round.parts.iter().zip(replies.iter()).enumerate() {
            let reply = text_of(&reply)?;
            let read = GraphRead::parse(&reply)?;
            for row in read.tokens {
                let token = part.get(row.index).ok_or_else(|| PyValueError::new_err("bad graph read row"))?;
                if !row.owner.is_empty() {
                    remembered.keep_owner(token.clone(), row.owner.to_owned());
                    owners.insert(token.clone(), row.owner.to_owned());
                }
                if row.junk {
                    junk.insert(token.clone());
                }
                if !row.met.is_empty() {
                    met.insert(token.clone(), row.met.iter().map(|p| (*p).to_owned()).collect());
                }
                if !row.erased.is_empty() {
                    let at = row.erased.parse().map_err(|_| PyValueError::new_err("bad erasure time"))?;
                    erased.insert(token.clone(), at);
                }
            }
            for (person, flat) in read.persons {
                let facts = if flat == ["="] {
                    round.held.remove(person).or_else(|| persons.get(person).cloned()).ok_or_else(|| {
                        PyValueError::new_err("graph read left out facts it was not told of")
                    })?
                } else {
                    facts_of(&flat)?
                };
                remembered.keep_facts(person.to_owned(), facts.clone());
                persons.insert(person.to_owned(), facts);
            }
            for (offset, body) in read.receipts {
                let slot = receipts
                    .get_mut(chunk + offset * chunks)
                    .ok_or_else(|| PyValueError::new_err("bad receipt row"))?;
                *slot = Some(from_receipt(body)?);
            }
            for (index, held) in read.claims {
                let token = part.get(index).ok_or_else(|| PyValueError::new_err("bad claims row"))?;
                history.insert(token.clone(), held.into_iter().map(|(t, p)| (t, p.to_owned())).collect());
            }
        }
        drop(resolver_mut);
        let describing = self.resolver.borrow(py).describing.clone();
        let overlay = Overlay::new(owners, junk, met, persons, &describing, history);
        let (answers, plans, overlay) = self.decide_all(py, overlay, erased, receipts)?;
        let resolver = self.resolver.borrow(py);
        let prefix = &resolver.identifier_prefix;
        let mut calls = Vec::new();
        for chunk in plans.chunks(APPLY_CHUNK) {
            let mut seen: HashSet<&str> = HashSet::new();
            let mut keys: Vec<&str> = Vec::new();
            for (_, tokens, _, _) in chunk {
                for t in tokens {
                    if seen.insert(bucket(t)) {
                        keys.push(bucket(t));
                    }
                }
            }
            let size: usize = chunk.iter().map(|(_, _, plan, _)| plan.len() + 16).sum();
            let mut call = Packed::new(keys.len(), keys.len() * 80 + size + 512);
            for t in keys {
                call.arg2(prefix.as_bytes(), t.as_bytes());
            }
            call.arg(&resolver.schema);
            call.arg(stop.as_bytes());
            call.int(resolver.max_log);
            call.arg(resolver.describing.as_bytes());
            for (_, _, plan, _) in chunk {
                call.arg(plan);
            }
            calls.push(call.into_py(py));
        }
        drop(resolver);
        let mut kept = Vec::with_capacity(plans.len());
        let mut links = Vec::with_capacity(plans.len());
        for (position, tokens, _, plan_links) in plans {
            kept.push((position, tokens));
            links.push(plan_links);
        }
        self.round = Some(Round {
            parts: Vec::new(),
            answers,
            plans: kept,
            links,
            held: HashMap::new(),
            after: Some(overlay.into_facts()),
        });
        Ok(calls)
    }

    /// The explain topic's entries of this round's plans, as (plan's index in the round,
    /// person, event id, stored entries): send them before the apply calls; those of plans
    /// from the first one not applied on are decided again.
    fn links(&self) -> Vec<(usize, String, String, Vec<String>)> {
        let Some(round) = &self.round else { return Vec::new() };
        round
            .links
            .iter()
            .enumerate()
            .filter_map(|(i, links)| links.as_ref().map(|(p, e, entries)| (i, p.clone(), e.clone(), entries.clone())))
            .collect()
    }

    /// How many plans the apply calls applied; True once the batch is resolved (else the
    /// events from the first plan not applied on are read and decided again).
    fn applied(&mut self, py: Python<'_>, applied: usize) -> PyResult<bool> {
        let mut round = self.round.take().ok_or_else(|| PyValueError::new_err("applied before decide"))?;
        if applied >= round.plans.len() {
            if let Some((owners, persons)) = round.after.take() {
                let mut resolver = self.resolver.borrow_mut(py);
                for (token, owner) in owners {
                    resolver.remembered.keep_owner(token, owner);
                }
                for (person, facts) in persons {
                    resolver.remembered.keep_facts(person, facts);
                }
            }
            self.results.append(&mut round.answers);
            self.pending = self.items.len();
            return Ok(true);
        }
        let stopped_at = round.plans[applied].0;
        round.answers.truncate(stopped_at);
        self.results.append(&mut round.answers);
        self.pending += stopped_at;
        Ok(false)
    }

    /// Every event's answer, in order: (0, person, absorbed, identifiers, junk, owners of the
    /// junk, None, moved) when decided, (1, "", (), (), junk, owners, why, ()) when no
    /// identifier can name a person, (2, "", (), (), (), {}, None, ()) when its persons were
    /// erased since.
    fn answers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        let empty = PyTuple::empty(py);
        for answer in &self.results {
            let row = match answer {
                Answer::Decided { person, absorbed, identifiers, junk, owners, moved } => (
                    0,
                    PyString::new(py, person).into_any(),
                    PyTuple::new(py, absorbed)?.into_any(),
                    PyTuple::new(py, identifiers)?.into_any(),
                    PyTuple::new(py, junk)?.into_any(),
                    owners.iter().cloned().collect::<HashMap<String, String>>().into_pyobject(py)?.into_any(),
                    py.None().into_bound(py),
                    PyTuple::new(py, moved)?.into_any(),
                ),
                Answer::Refused { message, junk, owners } => (
                    1,
                    PyString::new(py, "").into_any(),
                    empty.clone().into_any(),
                    empty.clone().into_any(),
                    PyTuple::new(py, junk)?.into_any(),
                    owners.iter().cloned().collect::<HashMap<String, String>>().into_pyobject(py)?.into_any(),
                    PyString::new(py, message).into_any(),
                    empty.clone().into_any(),
                ),
                Answer::Erased => (
                    2,
                    PyString::new(py, "").into_any(),
                    empty.clone().into_any(),
                    empty.clone().into_any(),
                    empty.clone().into_any(),
                    PyDict::new(py).into_any(),
                    py.None().into_bound(py),
                    empty.clone().into_any(),
                ),
            };
            out.append(row)?;
        }
        Ok(out)
    }
}
