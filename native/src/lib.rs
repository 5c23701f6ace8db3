//! bestand's person-state fold, compiled: what `bestand.store.profiles.ProfileStore` does
//! between its Redis round trips, for a whole batch.
//!
//! The Python modules (`bestand.profile.*`) stay the reference: the tests hold this fold to
//! their results, event by event and byte by byte. Python keeps the I/O: it sends the keys
//! and arguments this module prepares to the scripts and hands their replies back.

use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

pub mod fold;
pub mod reducer;
pub mod state;
pub mod summary;

use fold::{fold_group, groups, Describe, GroupWrite, Loaded, Outcome};
use reducer::{Event, Kind, OrderFacts, Status as OrderStatus};
use state::{dump_state, load_state, PersonState, Rule};
use summary::{Change, LifecycleRules};

/// Rounds of reading redirects before a chain is taken for a loop.
const MAX_REDIRECTS: usize = 32;
/// Groups one write script covers.
const WRITE_CHUNK: usize = 128;

/// The persons a worker last read or wrote, least recently used first out.
struct Remembered {
    size: usize,
    tick: u64,
    persons: HashMap<String, (Loaded, u64)>,
    order: VecDeque<(String, u64)>,
}

impl Remembered {
    fn new(size: usize) -> Self {
        Remembered { size, tick: 0, persons: HashMap::new(), order: VecDeque::new() }
    }

    fn version(&self, person: &str) -> i64 {
        self.persons.get(person).map_or(-1, |(l, _)| l.state.version)
    }

    fn touch(&mut self, person: &str) {
        self.tick += 1;
        if let Some(entry) = self.persons.get_mut(person) {
            entry.1 = self.tick;
            self.order.push_back((person.to_owned(), self.tick));
        }
        self.evict();
    }

    fn get(&mut self, person: &str) -> Option<Loaded> {
        let found = self.persons.get(person).map(|(l, _)| l.clone());
        self.touch(person);
        found
    }

    fn put(&mut self, loaded: Loaded) {
        let person = loaded.state.person_id.clone();
        self.tick += 1;
        self.persons.insert(person.clone(), (loaded, self.tick));
        self.order.push_back((person, self.tick));
        self.evict();
    }

    fn forget(&mut self, person: &str) {
        self.persons.remove(person);
    }

    fn evict(&mut self) {
        while self.persons.len() > self.size || self.order.len() > 4 * self.size.max(16) {
            let Some((person, tick)) = self.order.pop_front() else { break };
            if self.persons.get(&person).is_some_and(|(_, t)| *t == tick) && self.persons.len() > self.size {
                self.persons.remove(&person);
            }
        }
    }
}

/// One batch on its way through rounds of read, fold and write (several may be under way
/// at once, sharing their folder's remembered persons).
#[pyclass(unsendable)]
struct Batch {
    folder: Py<Folder>,
    events: Vec<Event>,
    digests: Vec<String>,
    event_keys: Vec<String>,
    outcomes: Vec<Option<Outcome>>,
    todo: Vec<usize>,
    // The round in hand: positions are indices into `todo`.
    started: bool,
    persons: HashMap<String, Loaded>,
    found: HashMap<usize, String>,
    wanted: Vec<String>,
    asks: Vec<(usize, String, bool)>,
    asked: (Vec<String>, Vec<(usize, String, bool)>),
    redirect_rounds: usize,
    folded: Vec<(Vec<(usize, Outcome)>, GroupWrite)>,
    sent: Vec<Vec<usize>>, // group indices of each write call
}

#[pyclass(unsendable)]
struct Folder {
    rule: Rule,
    prefix: String,
    person_schema: Vec<u8>,
    ttl: i64,
    remembered: Remembered,
}

fn text_of(value: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(bytes) = value.downcast::<PyBytes>() {
        return Ok(String::from_utf8_lossy(bytes.as_bytes()).into_owned());
    }
    value.extract::<String>()
}

fn opt_string(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Option<String>> {
    let value = obj.getattr(name)?;
    if value.is_none() {
        Ok(None)
    } else {
        Ok(Some(value.extract()?))
    }
}

fn event_from(obj: &Bound<'_, PyAny>) -> PyResult<Event> {
    let kind_name: String = obj.getattr("kind")?.extract()?;
    let kind = Kind::parse(&kind_name)
        .ok_or_else(|| PyValueError::new_err(format!("unknown event kind {kind_name:?}")))?;
    let order_obj = obj.getattr("order")?;
    let order = if order_obj.is_none() {
        None
    } else {
        let status: String = order_obj.getattr("status")?.extract()?;
        let status = match status.as_str() {
            "placed" => OrderStatus::Placed,
            "cancelled" => OrderStatus::Cancelled,
            "returned" => OrderStatus::Returned,
            "refunded" => OrderStatus::Refunded,
            other => return Err(PyValueError::new_err(format!("unknown order status {other:?}"))),
        };
        let attribution = order_obj.getattr("attribution")?;
        let (campaign, affiliate) = if attribution.is_none() {
            (None, None)
        } else {
            let campaign = opt_string(&attribution, "campaign")?.filter(|c| !c.is_empty());
            let campaign = match campaign {
                Some(c) => Some(c),
                None => opt_string(&attribution, "utm_campaign")?,
            };
            (campaign, opt_string(&attribution, "affiliate_id")?)
        };
        Some(OrderFacts {
            order_id: order_obj.getattr("order_id")?.extract()?,
            status,
            total_cents: order_obj.getattr("total_cents")?.extract()?,
            returned_cents: order_obj.getattr("returned_cents")?.extract()?,
            currency: opt_string(&order_obj, "currency")?,
            channel: opt_string(&order_obj, "channel")?,
            campaign,
            affiliate,
        })
    };
    let consent_obj = obj.getattr("consent")?;
    let consent = if consent_obj.is_none() {
        None
    } else {
        let dict = consent_obj.downcast::<PyDict>()?;
        let mut pairs = Vec::with_capacity(dict.len());
        for (k, v) in dict.iter() {
            pairs.push((k.str()?.extract::<String>()?, v.extract::<bool>()?));
        }
        Some(pairs)
    };
    Ok(Event {
        event_id: obj.getattr("event_id")?.extract()?,
        at: obj.getattr("at")?.extract()?,
        kind,
        person_id: obj.getattr("person_id")?.extract()?,
        identifiers: obj.getattr("identifiers")?.extract()?,
        absorbed: obj.getattr("absorbed")?.extract()?,
        order,
        email_type: opt_string(obj, "email_type")?,
        consent,
        contact_channel: opt_string(obj, "contact_channel")?,
        category: opt_string(obj, "category")?,
    })
}

fn change_tuple<'py>(py: Python<'py>, c: &Change) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(
        py,
        [
            c.change.clone().into_pyobject(py)?.into_any(),
            c.existing_customer.into_pyobject(py)?.into_any(),
            c.orders_count.into_pyobject(py)?.into_any(),
            c.stage_before.clone().into_pyobject(py)?.into_any(),
            c.stage_after.clone().into_pyobject(py)?.into_any(),
            PyTuple::new(py, &c.absorbed)?.into_any(),
        ],
    )
}

impl Folder {
    fn person_key(&self, person: &str) -> String {
        format!("{}:p:{{{}}}", self.prefix, person)
    }

    fn dedupe_key(&self, person: &str, event_key: &str) -> String {
        format!("{}:d:{{{}}}:{}", self.prefix, person, event_key)
    }

    fn lookup_key(&self, token: &str) -> String {
        format!("{}:l:{}", self.prefix, token)
    }

}

impl Batch {
    /// Begin a round of the batch's events still to do.
    fn start_round(&mut self) {
        let batch = self;
        let round: Vec<&Event> = batch.todo.iter().map(|&i| &batch.events[i]).collect();
        batch.persons.clear();
        batch.found.clear();
        batch.folded.clear();
        batch.sent.clear();
        batch.redirect_rounds = 0;
        let mut seen: HashSet<&str> = HashSet::new();
        batch.wanted = Vec::new();
        for event in &round {
            for p in std::iter::once(&event.person_id).chain(event.absorbed.iter()) {
                if seen.insert(p.as_str()) {
                    batch.wanted.push(p.clone());
                }
            }
        }
        let mut asks: Vec<(usize, String, bool)> =
            round.iter().enumerate().map(|(i, e)| (i, e.person_id.clone(), true)).collect();
        // Persons this batch merges: an event of one may have been applied to another before.
        let identity = |p: &str| p.to_owned();
        let mut joined = fold::Joined::new(round.iter().copied(), &identity);
        let mut by_root: HashMap<String, Vec<String>> = HashMap::new();
        let mut named: Vec<String> = Vec::new();
        let mut named_seen: HashSet<String> = HashSet::new();
        for event in &round {
            for p in std::iter::once(&event.person_id).chain(event.absorbed.iter()) {
                if named_seen.insert(p.clone()) {
                    named.push(p.clone());
                }
            }
        }
        for p in &named {
            by_root.entry(joined.root(p, &identity)).or_default().push(p.clone());
        }
        let mut group_of: HashMap<&str, &Vec<String>> = HashMap::new();
        for group in by_root.values().filter(|g| g.len() > 1) {
            for p in group.iter() {
                group_of.insert(p.as_str(), group);
            }
        }
        for (i, e) in round.iter().enumerate() {
            if let Some(group) = group_of.get(e.person_id.as_str()) {
                for other in group.iter() {
                    if *other != e.person_id {
                        asks.push((i, other.clone(), false));
                    }
                }
            }
        }
        batch.asks = asks;
        batch.started = true;
    }
}

#[pymethods]
impl Folder {
    /// A fold for one key prefix, customer rule and lifecycle rules.
    #[new]
    #[pyo3(signature = (prefix, person_schema, dedupe_ttl, rule, remembered=20_000))]
    fn py_new(
        prefix: String,
        person_schema: Vec<u8>,
        dedupe_ttl: i64,
        rule: &str,
        remembered: usize,
    ) -> PyResult<Self> {
        let rule = match rule {
            "kept" => Rule::Kept,
            "placed" => Rule::Placed,
            other => return Err(PyValueError::new_err(format!("unknown customer rule {other:?}"))),
        };
        Ok(Folder {
            rule,
            prefix,
            person_schema,
            ttl: dedupe_ttl,
            remembered: Remembered::new(remembered),
        })
    }

    /// Begin a batch: its resolved events, their content digests and their event ids as
    /// keys hold them.
    fn begin(
        slf: &Bound<'_, Self>,
        events: &Bound<'_, PyList>,
        digests: Vec<String>,
        event_keys: Vec<String>,
    ) -> PyResult<Batch> {
        let events: Vec<Event> = events.iter().map(|e| event_from(&e)).collect::<PyResult<_>>()?;
        let n = events.len();
        if digests.len() != n || event_keys.len() != n {
            return Err(PyValueError::new_err("one digest and one event key per event"));
        }
        Ok(Batch {
            folder: slf.clone().unbind(),
            events,
            digests,
            event_keys,
            outcomes: vec![None; n],
            todo: (0..n).collect(),
            started: false,
            persons: HashMap::new(),
            found: HashMap::new(),
            wanted: Vec::new(),
            asks: Vec::new(),
            asked: (Vec::new(), Vec::new()),
            redirect_rounds: 0,
            folded: Vec::new(),
            sent: Vec::new(),
        })
    }

    /// Forget a person (merged away elsewhere, erased).
    fn forget(&mut self, person: &str) {
        self.remembered.forget(person);
    }
}

#[pymethods]
impl Batch {
    /// The next read of persons and markers the round needs, as (keys, args) of
    /// `persons_read`; None once the round has read everything.
    fn read(&mut self, py: Python<'_>) -> PyResult<Option<(Vec<String>, Vec<i64>)>> {
        if !self.started {
            self.start_round();
        }
        let names: Vec<String> =
            self.wanted.iter().filter(|p| !self.persons.contains_key(*p)).cloned().collect();
        if names.is_empty() && self.asks.is_empty() {
            return Ok(None);
        }
        self.redirect_rounds += 1;
        if self.redirect_rounds > MAX_REDIRECTS {
            return Err(PyRuntimeError::new_err(format!("redirect chain longer than {MAX_REDIRECTS}")));
        }
        let asks = std::mem::take(&mut self.asks);
        let folder = self.folder.borrow(py);
        let mut keys: Vec<String> = names.iter().map(|p| folder.person_key(p)).collect();
        for (i, person, _) in &asks {
            keys.push(folder.dedupe_key(person, &self.event_keys[self.todo[*i]]));
        }
        let mut args: Vec<i64> = Vec::with_capacity(names.len() + 1);
        args.push(names.len() as i64);
        args.extend(names.iter().map(|p| folder.remembered.version(p)));
        self.asked = (names, asks);
        Ok(Some((keys, args)))
    }

    /// Hand over what `persons_read` answered to the last read.
    fn feed(&mut self, py: Python<'_>, rows: &Bound<'_, PyList>, markers: &Bound<'_, PyList>) -> PyResult<()> {
        let (names, asks) = std::mem::take(&mut self.asked);
        if rows.len() != names.len() || markers.len() != asks.len() {
            return Err(PyValueError::new_err("a reply row per person and a marker per ask"));
        }
        let mut folder = self.folder.borrow_mut(py);
        let rule = folder.rule;
        for (person, row) in names.iter().zip(rows.iter()) {
            let row = row.downcast::<PyList>()?;
            let redirect = text_of(&row.get_item(0)?)?;
            let version: i64 = row.get_item(1)?.extract()?;
            let same: i64 = row.get_item(3)?.extract()?;
            if same != 0 {
                if let Some(loaded) = folder.remembered.get(person) {
                    self.persons.insert(person.clone(), loaded);
                    continue;
                }
            }
            let blob_obj = row.get_item(2)?;
            let blob: Option<&[u8]> = if let Ok(b) = blob_obj.downcast::<PyBytes>() {
                Some(b.as_bytes())
            } else {
                None
            };
            let mut state = load_state(person, blob, rule).map_err(PyValueError::new_err)?;
            state.version = version;
            let redirect = if redirect.is_empty() { None } else { Some(redirect) };
            if redirect.is_some() {
                folder.remembered.forget(person);
            }
            self.persons.insert(person.clone(), Loaded { redirect, state: Rc::new(state), summary: None });
        }
        drop(folder);
        for ((i, _, _), text) in asks.iter().zip(markers.iter()) {
            let text = text_of(&text)?;
            if !text.is_empty() && !self.found.contains_key(i) {
                self.found.insert(*i, text);
            }
        }
        // A person merged away since: read where it went, and the event's marker there.
        let followed: Vec<(usize, Loaded)> = asks
            .iter()
            .filter(|(_, _, follow)| *follow)
            .map(|(i, person, _)| (*i, self.persons[person].clone()))
            .collect();
        let mut wanted: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for (_, loaded) in &followed {
            if let Some(r) = &loaded.redirect {
                if seen.insert(r.clone()) {
                    wanted.push(r.clone());
                }
            }
        }
        let mut next: Vec<(usize, String, bool)> = followed
            .iter()
            .filter_map(|(i, l)| l.redirect.clone().map(|r| (*i, r, true)))
            .collect();
        for (i, loaded) in &followed {
            if loaded.redirect.is_none() && !self.found.contains_key(i) {
                for gone in &loaded.state.absorbed {
                    next.push((*i, gone.clone(), false));
                }
            }
        }
        self.wanted = wanted;
        self.asks = next;
        Ok(())
    }

    /// Fold the round's events; the `persons_write` calls to make, as (keys, args) each.
    /// With `describe` (the time of the batch and the lifecycle rules: repeat and loyal
    /// orders, at-risk and lapsed days), each applied event's profile changes are named.
    #[pyo3(signature = (describe=None))]
    fn fold<'py>(
        &mut self,
        py: Python<'py>,
        describe: Option<(i64, (i64, i64, i64, i64))>,
    ) -> PyResult<Vec<(Vec<String>, Bound<'py, PyList>)>> {
        let folder = self.folder.borrow(py);
        let rule = folder.rule;
        let describe = describe.map(|(now, r)| Describe {
            now,
            rules: LifecycleRules {
                repeat_min_orders: r.0,
                loyal_min_orders: r.1,
                at_risk_after_days: r.2,
                lapsed_after_days: r.3,
            },
        });
        {
            let round: Vec<&Event> = self.todo.iter().map(|&i| &self.events[i]).collect();
            let digests: Vec<&str> = self.todo.iter().map(|&i| self.digests[i].as_str()).collect();
            let new_person = |p: &str| PersonState::new(p, rule);
            self.folded = groups(&round, &self.persons)
                .iter()
                .map(|positions| {
                    fold_group(&round, positions, &digests, &self.persons, &self.found, describe.as_ref(), &new_person)
                })
                .collect();
        }
        let pending: Vec<usize> =
            self.folded.iter().enumerate().filter(|(_, (_, w))| !w.is_empty()).map(|(n, _)| n).collect();
        let mut calls = Vec::new();
        self.sent.clear();
        for chunk in pending.chunks(WRITE_CHUNK) {
            let writes: Vec<&GroupWrite> = chunk.iter().map(|&n| &self.folded[n].1).collect();
            calls.push(folder.write_call(py, self, &writes)?);
            self.sent.push(chunk.to_vec());
        }
        Ok(calls)
    }

    /// What the write calls answered (one 1 or 0 per group); True once the batch is done,
    /// False when groups another worker changed must be read and folded again.
    fn written(&mut self, py: Python<'_>, replies: Vec<Vec<i64>>) -> PyResult<bool> {
        if replies.len() != self.sent.len() {
            return Err(PyValueError::new_err("one reply per write call"));
        }
        let mut ok = vec![true; self.folded.len()];
        for (chunk, reply) in self.sent.iter().zip(&replies) {
            for (n, flag) in chunk.iter().zip(reply) {
                ok[*n] = *flag == 1;
            }
        }
        let mut folder = self.folder.borrow_mut(py);
        let mut retry: Vec<usize> = Vec::new();
        let folded = std::mem::take(&mut self.folded);
        for ((results, write), ok) in folded.into_iter().zip(ok) {
            if ok {
                for (state, summary) in write.states.iter().zip(write.summaries) {
                    folder.remembered.put(Loaded { redirect: None, state: Rc::clone(state), summary: Some(summary) });
                }
                for (gone, _) in &write.absorbed {
                    folder.remembered.forget(gone);
                }
            }
            for (position, outcome) in results {
                let index = self.todo[position];
                if ok {
                    self.outcomes[index] = Some(outcome);
                } else {
                    retry.push(index);
                }
            }
        }
        retry.sort_unstable();
        self.todo = retry;
        self.started = false;
        Ok(self.todo.is_empty())
    }

    /// Every event's outcome, in order: (status, person, changes as tuples).
    fn outcomes<'py>(&mut self, py: Python<'py>) -> PyResult<Vec<(&'static str, String, Bound<'py, PyTuple>)>> {
        let mut out = Vec::with_capacity(self.outcomes.len());
        for outcome in std::mem::take(&mut self.outcomes).into_iter().flatten() {
            let changes: Vec<Bound<'py, PyTuple>> =
                outcome.changes.iter().map(|c| change_tuple(py, c)).collect::<PyResult<_>>()?;
            out.push((outcome.status.name(), outcome.person_id, PyTuple::new(py, changes)?));
        }
        Ok(out)
    }
}

impl Folder {
    /// One `persons_write` call for a chunk of groups: its keys and arguments.
    fn write_call<'py>(&self, py: Python<'py>, batch: &Batch, writes: &[&GroupWrite]) -> PyResult<(Vec<String>, Bound<'py, PyList>)> {
        let mut keys: Vec<String> = Vec::new();
        let mut key_seen: HashSet<String> = HashSet::new();
        let mut add_key = |key: String, keys: &mut Vec<String>| {
            if key_seen.insert(key.clone()) {
                keys.push(key);
            }
        };
        let mut groups_json: Vec<Vec<u8>> = Vec::with_capacity(writes.len());
        let mut blobs: Vec<Vec<u8>> = Vec::new();
        let first_blob = 4 + writes.len();
        for write in writes {
            let mut states = Vec::new();
            for state in &write.states {
                states.push(serde_json::json!([state.person_id, state.version, first_blob + blobs.len()]));
                blobs.push(dump_state(state));
                add_key(self.person_key(&state.person_id), &mut keys);
            }
            let mut lookups = Vec::new();
            let mut values = Vec::new();
            for record in &write.publish {
                if !record.tokens.is_empty() {
                    let at = first_blob + blobs.len();
                    blobs.push(record.summary.packed().into_bytes());
                    lookups.push(serde_json::json!([record.version, i64::from(record.checked), at, record.tokens]));
                }
                for token in &record.tokens {
                    add_key(self.lookup_key(token), &mut keys);
                }
                if record.value_changed {
                    let s = &record.summary;
                    let cents = if s.existing_customer() { s.revenue_cents } else { -1 };
                    values.push(serde_json::json!([record.person_id, cents]));
                }
            }
            for (gone, _) in &write.absorbed {
                add_key(self.person_key(gone), &mut keys);
            }
            let mut markers = Vec::new();
            for (person, position, text) in &write.markers {
                let event = batch.todo[*position];
                let key = self.dedupe_key(person, &batch.event_keys[event]);
                add_key(key.clone(), &mut keys);
                markers.push(serde_json::json!([key, text]));
            }
            for token in &write.unlink {
                add_key(self.lookup_key(token), &mut keys);
            }
            let group = serde_json::json!({
                "guard": write.guard,
                "write": states,
                "absorbed": write.absorbed,
                "markers": markers,
                "lookups": lookups,
                "unlink": write.unlink,
                "values": values,
            });
            groups_json.push(serde_json::to_vec(&group).expect("a group serializes"));
        }
        let args = PyList::empty(py);
        args.append(PyBytes::new(py, &self.person_schema))?;
        args.append(self.ttl)?;
        args.append(writes.len())?;
        for group in &groups_json {
            args.append(PyBytes::new(py, group))?;
        }
        for blob in &blobs {
            args.append(PyBytes::new(py, blob))?;
        }
        Ok((keys, args))
    }
}

/// `dump_state(load_state(blob))`: the stored form as this module writes it (for tests).
#[pyfunction]
fn restore(py: Python<'_>, person_id: &str, blob: &[u8]) -> PyResult<Py<PyBytes>> {
    let state = load_state(person_id, Some(blob), Rule::Kept).map_err(PyValueError::new_err)?;
    Ok(PyBytes::new(py, &dump_state(&state)).unbind())
}

#[pymodule]
fn bestand_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Folder>()?;
    m.add_function(wrap_pyfunction!(restore, m)?)?;
    Ok(())
}
