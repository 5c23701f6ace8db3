//! bestand's person-state fold, compiled: what `bestand.store.profiles.ProfileStore` does
//! between its Redis round trips, for a whole batch.
//!
//! The Python modules (`bestand.profile.*`) stay the reference: the tests hold this fold to
//! their results, event by event and byte by byte. Python keeps the I/O: it sends the script
//! calls this module packs (`packed.rs`) and hands their replies back.

use std::collections::{BTreeSet, VecDeque};
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::rc::Rc;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::intern;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFrozenSet, PyInt, PyList, PyString, PyTuple};

pub mod decoder;
pub mod digest;
pub mod fold;
pub mod graph;
pub mod keyer;
pub mod keying;
pub mod overlay;
mod packed;
pub mod rules;
mod rules_py;
pub mod reducer;
pub mod state;
pub mod summary;

use packed::{Packed, PackedCall};
use digest::{content_digest, event_key, Json};
use fold::{fold_group, Status, groups, Describe, GroupWrite, Loaded, Outcome};
use rules::movable;
use reducer::{Event, Kind, OrderFacts, Status as OrderStatus};
use state::{dump_state, load_state, PersonState, Rule};
use summary::{Change, LifecycleRules};

/// The fold allocates many small strings and maps and frees them all when a batch is done;
/// mimalloc does that several times faster than the C library's allocator, whose heap it
/// would also share with Python's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Rounds of reading redirects before a chain is taken for a loop.
const MAX_REDIRECTS: usize = 32;
/// Groups one write script covers.
const WRITE_CHUNK: usize = 128;
/// Persons (and markers) one read script covers.
const READ_CHUNK: usize = 1024;

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

    /// The persons a remembered person absorbed (none when it is not remembered).
    fn absorbed(&self, person: &str) -> Option<&BTreeSet<String>> {
        self.persons.get(person).filter(|(l, _)| l.redirect.is_none()).map(|(l, _)| &l.state.absorbed)
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
        // Every touch queues the person again; stale entries are skipped when they come up,
        // and the queue is rebuilt from the live ones when they pile up.
        if self.order.len() > 4 * self.size.max(16) {
            let mut live: Vec<(String, u64)> =
                self.persons.iter().map(|(p, (_, tick))| (p.clone(), *tick)).collect();
            live.sort_unstable_by_key(|(_, tick)| *tick);
            self.order = live.into();
        }
        while self.persons.len() > self.size {
            let Some((person, tick)) = self.order.pop_front() else { break };
            if self.persons.get(&person).is_some_and(|(_, t)| *t == tick) {
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
    /// (event, absorbed person) whose marker the round asked for already
    absorbed_asked: HashSet<(usize, String)>,
    redirect_rounds: usize,
    folded: Vec<(Vec<(usize, Outcome)>, GroupWrite)>,
    sent: Vec<Vec<usize>>, // group indices of each write call
    /// Values the written groups sent to Redis: person states, lookup records, markers.
    writes: (i64, i64, i64),
}

#[pyclass(unsendable)]
struct Folder {
    rule: Rule,
    prefix: String,
    person_schema: Vec<u8>,
    ttl: i64,
    remembered: Remembered,
    /// `bestand.profile.fold.ApplyOutcome`, `bestand.profile.changes.Change` and
    /// `bestand.profile.markers.content_digest`
    outcome_class: Py<PyAny>,
    change_class: Py<PyAny>,
    python_digest: Py<PyAny>,
}

pub(crate) fn text_of(value: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(bytes) = value.downcast::<PyBytes>() {
        return Ok(String::from_utf8_lossy(bytes.as_bytes()).into_owned());
    }
    value.extract::<String>()
}

/// An attribute that is a string or None.
fn opt_string(obj: &Bound<'_, PyAny>, name: &Bound<'_, PyString>) -> PyResult<Option<String>> {
    let value = obj.getattr(name)?;
    if value.is_none() {
        Ok(None)
    } else {
        Ok(Some(value.extract()?))
    }
}

/// A plain value as the digest's JSON holds it; None for a value of another type.
fn plain(value: &Bound<'_, PyAny>) -> PyResult<Option<Json>> {
    Ok(Some(if value.is_none() {
        Json::Null
    } else if let Ok(b) = value.downcast::<PyBool>() {
        Json::Bool(b.is_true())
    } else if let Ok(t) = value.downcast::<PyString>() {
        Json::Text(t.to_str()?.to_owned())
    } else if value.is_instance_of::<PyInt>() {
        Json::Int(value.extract()?)
    } else {
        return Ok(None);
    }))
}

/// A resolved event, its content digest and its id as keys hold it.
/// What the compiled decoder knows of an event that does not depend on its person: the facts
/// the fold reads, the content digest of its dedupe marker and its event key. Carried by the
/// resolved event (`ResolvedEvent.compiled`), so the fold takes them as they are instead of
/// reading a dozen attributes and writing the digest's JSON again.
#[pyclass(module = "bestand_native", frozen)]
pub struct Facts {
    event: Event,
    digest: String,
    key: String,
}

impl Facts {
    /// `event` without its person, and the facts its content digest is taken of.
    pub fn new(event: Event, digest_facts: &Json) -> Facts {
        let key = event_key(&event.event_id);
        Facts { digest: content_digest(digest_facts), key, event }
    }
}

#[pymethods]
impl Facts {
    /// The content digest (`profile.markers.content_digest`), for the tests.
    #[getter]
    fn digest(&self) -> &str {
        &self.digest
    }
}

fn event_from(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    python_digest: &Bound<'_, PyAny>,
) -> PyResult<(Event, String, String)> {
    if let Ok(compiled) = obj.getattr(intern!(py, "compiled")) {
        if let Ok(facts) = compiled.downcast::<Facts>() {
            let facts = facts.get();
            let mut event = facts.event.clone();
            event.person_id = obj.getattr(intern!(py, "person_id"))?.extract()?;
            event.identifiers = obj.getattr(intern!(py, "identifiers"))?.extract()?;
            event.absorbed = obj.getattr(intern!(py, "absorbed"))?.extract()?;
            event.claimed = obj.getattr(intern!(py, "claimed"))?.extract()?;
            return Ok((event, facts.digest.clone(), facts.key.clone()));
        }
    }
    let kind_name: String = obj.getattr(intern!(py, "kind"))?.extract()?;
    let kind = Kind::parse(&kind_name)
        .ok_or_else(|| PyValueError::new_err(format!("unknown event kind {kind_name:?}")))?;
    let mut exotic = false; // a value the digest's JSON is not written for here
    let order_obj = obj.getattr(intern!(py, "order"))?;
    let (order, order_facts) = if order_obj.is_none() {
        (None, Json::Null)
    } else {
        let status_name: String = order_obj.getattr(intern!(py, "status"))?.extract()?;
        let status = match status_name.as_str() {
            "placed" => OrderStatus::Placed,
            "cancelled" => OrderStatus::Cancelled,
            "returned" => OrderStatus::Returned,
            "refunded" => OrderStatus::Refunded,
            other => return Err(PyValueError::new_err(format!("unknown order status {other:?}"))),
        };
        let attribution = order_obj.getattr(intern!(py, "attribution"))?;
        let (campaign, affiliate, attribution_facts) = if attribution.is_none() {
            (None, None, Json::Null)
        } else {
            let campaign = opt_string(&attribution, intern!(py, "campaign"))?.filter(|c| !c.is_empty());
            let campaign = match campaign {
                Some(c) => Some(c),
                None => opt_string(&attribution, intern!(py, "utm_campaign"))?,
            };
            let fields = attribution.getattr(intern!(py, "__dict__"))?;
            let fields = fields.downcast::<PyDict>()?;
            let mut object = Vec::with_capacity(fields.len());
            for (k, v) in fields.iter() {
                match plain(&v)? {
                    Some(value) => object.push((k.extract::<String>()?, value)),
                    None => exotic = true,
                }
            }
            (campaign, opt_string(&attribution, intern!(py, "affiliate_id"))?, Json::Object(object))
        };
        let facts = OrderFacts {
            order_id: order_obj.getattr(intern!(py, "order_id"))?.extract()?,
            status,
            total_cents: order_obj.getattr(intern!(py, "total_cents"))?.extract()?,
            returned_cents: order_obj.getattr(intern!(py, "returned_cents"))?.extract()?,
            currency: opt_string(&order_obj, intern!(py, "currency"))?,
            channel: opt_string(&order_obj, intern!(py, "channel"))?,
            campaign,
            affiliate,
            coupon: opt_string(&order_obj, intern!(py, "coupon"))?,
        };
        let guest: Option<bool> = order_obj.getattr(intern!(py, "guest"))?.extract()?;
        let mut order_facts = vec![
            Json::Text(facts.order_id.clone()),
            Json::Text(status_name),
            Json::opt_int(facts.total_cents),
            Json::opt_int(facts.returned_cents),
            Json::opt_text(facts.currency.as_deref()),
            Json::opt_text(facts.channel.as_deref()),
            guest.map_or(Json::Null, Json::Bool),
            attribution_facts,
        ];
        if let Some(coupon) = &facts.coupon {
            order_facts.push(Json::Text(coupon.clone())); // absent without one, as before
        }
        (Some(facts), Json::List(order_facts))
    };
    let consent_obj = obj.getattr(intern!(py, "consent"))?;
    let consent = if consent_obj.is_none() {
        None
    } else {
        let dict = consent_obj.downcast::<PyDict>()?;
        let mut pairs = Vec::with_capacity(dict.len());
        for (k, v) in dict.iter() {
            if !k.is_instance_of::<PyString>() {
                exotic = true;
            }
            pairs.push((k.str()?.extract::<String>()?, v.extract::<bool>()?));
        }
        Some(pairs)
    };
    let event = Event {
        event_id: obj.getattr(intern!(py, "event_id"))?.extract()?,
        at: obj.getattr(intern!(py, "at"))?.extract()?,
        kind,
        person_id: obj.getattr(intern!(py, "person_id"))?.extract()?,
        identifiers: obj.getattr(intern!(py, "identifiers"))?.extract()?,
        absorbed: obj.getattr(intern!(py, "absorbed"))?.extract()?,
        order,
        email_type: opt_string(obj, intern!(py, "email_type"))?,
        consent,
        contact_channel: opt_string(obj, intern!(py, "contact_channel"))?,
        category: opt_string(obj, intern!(py, "category"))?,
        claimed: obj.getattr(intern!(py, "claimed"))?.extract()?,
    };
    let digest = if exotic {
        python_digest.call1((obj,))?.extract()?
    } else {
        let time: String = obj.getattr(intern!(py, "event_time"))?.call_method0(intern!(py, "isoformat"))?.extract()?;
        let consent_facts = match &event.consent {
            None => Json::Null,
            Some(pairs) => {
                let mut sorted: Vec<&(String, bool)> = pairs.iter().collect();
                sorted.sort();
                Json::List(
                    sorted
                        .into_iter()
                        .map(|(p, g)| Json::List(vec![Json::Text(p.clone()), Json::Bool(*g)]))
                        .collect(),
                )
            }
        };
        let facts = Json::List(vec![
            Json::Text(event.event_id.clone()),
            Json::Text(time),
            Json::Text(kind_name),
            Json::opt_text(opt_string(obj, intern!(py, "type"))?.as_deref()),
            Json::opt_text(opt_string(obj, intern!(py, "topic"))?.as_deref()),
            order_facts,
            Json::opt_text(event.email_type.as_deref()),
            Json::opt_text(opt_string(obj, intern!(py, "campaign"))?.as_deref()),
            consent_facts,
            Json::opt_text(event.contact_channel.as_deref()),
            Json::opt_text(opt_string(obj, intern!(py, "product_id"))?.as_deref()),
            Json::opt_text(event.category.as_deref()),
        ]);
        content_digest(&facts)
    };
    let key = event_key(&event.event_id);
    Ok((event, digest, key))
}

fn change_object<'py>(change_class: &Bound<'py, PyAny>, c: &Change) -> PyResult<Bound<'py, PyAny>> {
    let py = change_class.py();
    change_class.call1((
        c.change.clone(),
        c.existing_customer,
        c.orders_count,
        c.stage_before.clone(),
        c.stage_after.clone(),
        PyTuple::new(py, &c.absorbed)?,
    ))
}

impl Folder {
    /// The bucket of a person's state (`Keys.person`): its field there is the person id.
    fn person_key(&self, person: &str) -> String {
        let end = graph::BUCKET_CHARS.min(person.len());
        format!("{}:p:{{{}}}", self.prefix, person.get(..end).unwrap_or(person))
    }

    /// A dedupe marker (`Keys.dedupe`): under the person bucket's hash tag.
    fn dedupe_key(&self, person: &str, event_key: &str) -> String {
        let end = graph::BUCKET_CHARS.min(person.len());
        let tag = person.get(..end).unwrap_or(person);
        format!("{}:d:{{{}}}:{}:{}", self.prefix, tag, person, event_key)
    }

    fn lookup_key(&self, token: &str) -> String {
        format!("{}:l:{}", self.prefix, graph::bucket(token))
    }

    fn identifier_key(&self, token: &str) -> String {
        format!("{}:{{g}}:i:{}", self.prefix, graph::bucket(token))
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
        batch.absorbed_asked.clear();
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
        py: Python<'_>,
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
            outcome_class: py.import("bestand.profile.fold")?.getattr("ApplyOutcome")?.unbind(),
            change_class: py.import("bestand.profile.changes")?.getattr("Change")?.unbind(),
            python_digest: py.import("bestand.profile.markers")?.getattr("content_digest")?.unbind(),
        })
    }

    /// Begin a batch of resolved events.
    fn begin(slf: &Bound<'_, Self>, events: &Bound<'_, PyList>) -> PyResult<Batch> {
        let py = slf.py();
        let python_digest = slf.borrow().python_digest.clone_ref(py).into_bound(py);
        let n = events.len();
        let (mut parsed, mut digests, mut event_keys) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for obj in events.iter() {
            let (event, digest, key) = event_from(py, &obj, &python_digest)?;
            parsed.push(event);
            digests.push(digest);
            event_keys.push(key);
        }
        let events = parsed;
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
            absorbed_asked: HashSet::new(),
            redirect_rounds: 0,
            folded: Vec::new(),
            sent: Vec::new(),
            writes: (0, 0, 0),
        })
    }

    /// Forget a person (merged away elsewhere, erased).
    fn forget(&mut self, person: &str) {
        self.remembered.forget(person);
    }
}

#[pymethods]
impl Batch {
    /// The next read of persons and markers the round needs, as packed (`Packed`) calls of
    /// `persons_read` (their replies' rows and markers go to `feed` joined, in order); None
    /// once the round has read everything.
    fn read<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Vec<PackedCall<'py>>>> {
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
        let folder = self.folder.borrow(py);
        if self.redirect_rounds == 1 {
            // An event's marker may be at a person its person absorbed (see `feed`): for a
            // person remembered, those are known before its state is read, and asked for
            // with this first read instead of a second one.
            let mut more = Vec::new();
            for (i, person, follow) in &self.asks {
                for gone in folder.remembered.absorbed(person).filter(|_| *follow).into_iter().flatten() {
                    if self.absorbed_asked.insert((*i, gone.clone())) {
                        more.push((*i, gone.clone(), false));
                    }
                }
            }
            self.asks.extend(more);
        }
        let asks = std::mem::take(&mut self.asks);
        // In calls of at most READ_CHUNK persons and markers each, in order: a large batch's
        // read would hold Redis (and every lookup behind it) for tens of milliseconds.
        let calls = names.len().max(asks.len()).div_ceil(READ_CHUNK).max(1);
        let mut packed = Vec::with_capacity(calls);
        for c in 0..calls {
            let part = |len: usize| (c * READ_CHUNK).min(len)..((c + 1) * READ_CHUNK).min(len);
            let (names, asks) = (&names[part(names.len())], &asks[part(asks.len())]);
            let mut call = Packed::new(names.len() + asks.len(), (names.len() + asks.len()) * 80 + 64);
            for p in names {
                call.arg(folder.person_key(p).as_bytes());
            }
            for (i, person, _) in asks {
                call.arg(folder.dedupe_key(person, &self.event_keys[self.todo[*i]]).as_bytes());
            }
            call.int(names.len() as i64);
            for p in names {
                call.int(folder.remembered.version(p));
            }
            for p in names {
                call.arg(p.as_bytes());
            }
            packed.push(call.into_py(py));
        }
        self.asked = (names, asks);
        Ok(Some(packed))
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
                    if self.absorbed_asked.insert((*i, gone.clone())) {
                        next.push((*i, gone.clone(), false));
                    }
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
    ) -> PyResult<Vec<PackedCall<'py>>> {
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
                self.writes.0 += write.states.len() as i64;
                self.writes.1 += write.publish.iter().map(|r| r.tokens.len() as i64).sum::<i64>();
                self.writes.2 += write.markers.len() as i64;
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

    /// What the groups written so far sent to Redis: (person states, lookup records,
    /// dedupe markers), in the order of `bestand.store.profiles.WRITE_KINDS`.
    fn writes(&self) -> (i64, i64, i64) {
        self.writes
    }

    /// Every event's outcome, in order (`ApplyOutcome`s).
    fn outcomes<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let folder = self.folder.borrow(py);
        let outcome_class = folder.outcome_class.bind(py);
        let change_class = folder.change_class.bind(py);
        let out = PyList::empty(py);
        for outcome in std::mem::take(&mut self.outcomes).into_iter().flatten() {
            let changes: Vec<Bound<'py, PyAny>> =
                outcome.changes.iter().map(|c| change_object(change_class, c)).collect::<PyResult<_>>()?;
            out.append(outcome_class.call1((
                match outcome.status {
                    Status::Applied => intern!(py, "applied"),
                    Status::Duplicate => intern!(py, "duplicate"),
                    Status::Conflict => intern!(py, "conflict"),
                },
                outcome.person_id,
                PyTuple::new(py, changes)?,
            ))?)?;
        }
        Ok(out)
    }
}

impl Folder {
    /// One `persons_write` call for a chunk of groups, packed (`Packed`).
    fn write_call<'py>(&self, py: Python<'py>, batch: &Batch, writes: &[&GroupWrite]) -> PyResult<PackedCall<'py>> {
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
            // {"guard":[[p,v]..],"write":[[p,v,i]..],"absorbed":[[gone,p]..],
            //  "markers":[[key,text]..],"lookups":[[v,checked,i,[tokens]]..],"unlink":[..]}
            let mut g = Vec::with_capacity(256);
            g.extend_from_slice(b"{\"guard\":[");
            for (n, (person, version)) in write.guard.iter().enumerate() {
                comma(&mut g, n);
                g.push(b'[');
                text(&mut g, person);
                g.push(b',');
                g.extend_from_slice(version.to_string().as_bytes());
                g.push(b']');
            }
            g.extend_from_slice(b"],\"write\":[");
            for (n, state) in write.states.iter().enumerate() {
                comma(&mut g, n);
                g.push(b'[');
                text(&mut g, &state.person_id);
                g.extend_from_slice(format!(",{},{}]", state.version, first_blob + blobs.len()).as_bytes());
                blobs.push(dump_state(state));
                add_key(self.person_key(&state.person_id), &mut keys);
            }
            g.extend_from_slice(b"],\"absorbed\":[");
            for (n, (gone, person)) in write.absorbed.iter().enumerate() {
                comma(&mut g, n);
                g.push(b'[');
                text(&mut g, gone);
                g.push(b',');
                text(&mut g, person);
                g.push(b']');
                add_key(self.person_key(gone), &mut keys);
            }
            g.extend_from_slice(b"],\"markers\":[");
            for (n, (person, position, marker)) in write.markers.iter().enumerate() {
                comma(&mut g, n);
                let key = self.dedupe_key(person, &batch.event_keys[batch.todo[*position]]);
                g.push(b'[');
                text(&mut g, &key);
                g.push(b',');
                text(&mut g, marker);
                g.push(b']');
                add_key(key, &mut keys);
            }
            g.extend_from_slice(b"],\"lookups\":[");
            let mut first = true;
            for record in &write.publish {
                for token in &record.tokens {
                    add_key(self.lookup_key(token), &mut keys);
                }
                for token in record.tokens.iter().filter(|t| movable(t)) {
                    add_key(self.identifier_key(token), &mut keys);
                }
                if record.tokens.is_empty() {
                    continue;
                }
                if !first {
                    g.push(b',');
                }
                first = false;
                let at = first_blob + blobs.len();
                blobs.push(record.summary.packed().into_bytes());
                g.extend_from_slice(format!("[{},{},{},[", record.version, i64::from(record.checked), at).as_bytes());
                for (n, token) in record.tokens.iter().enumerate() {
                    comma(&mut g, n);
                    text(&mut g, token);
                }
                g.extend_from_slice(b"]]");
            }
            g.extend_from_slice(b"],\"unlink\":[");
            for (n, token) in write.unlink.iter().enumerate() {
                comma(&mut g, n);
                text(&mut g, token);
                add_key(self.lookup_key(token), &mut keys);
            }
            g.extend_from_slice(b"]}");
            groups_json.push(g);
        }
        let size: usize = keys.iter().map(|k| k.len() + 16).sum::<usize>()
            + groups_json.iter().chain(&blobs).map(|b| b.len() + 16).sum::<usize>();
        let mut call = Packed::new(keys.len(), size + 256);
        for key in &keys {
            call.arg(key.as_bytes());
        }
        call.arg(&self.person_schema);
        call.int(self.ttl);
        call.int(writes.len() as i64);
        for blob in groups_json.iter().chain(&blobs) {
            call.arg(blob);
        }
        Ok(call.into_py(py))
    }
}

fn comma(out: &mut Vec<u8>, n: usize) {
    if n > 0 {
        out.push(b',');
    }
}

/// A JSON string.
pub(crate) fn text(out: &mut Vec<u8>, value: &str) {
    serde_json::to_writer(&mut *out, value).expect("a string serializes");
}

/// An event's content digest and its id as keys hold it, as the fold makes them (for tests:
/// `bestand.profile.markers.content_digest` and `bestand.store.keys.event_key` give the same).
#[pyfunction]
fn digest_and_key(py: Python<'_>, event: &Bound<'_, PyAny>) -> PyResult<(String, String)> {
    let python_digest = py.import("bestand.profile.markers")?.getattr("content_digest")?;
    let (_, digest, key) = event_from(py, event, &python_digest)?;
    Ok((digest, key))
}

/// What the fold reads of a resolved event (`Debug` of its facts), its content digest and
/// key, for the tests: the same whether it carries the decoder's compiled facts or not.
#[pyfunction]
fn event_for_test(py: Python<'_>, event: &Bound<'_, PyAny>) -> PyResult<(String, String, String)> {
    let python_digest = py.import("bestand.profile.markers")?.getattr("content_digest")?;
    let (facts, digest, key) = event_from(py, event, &python_digest)?;
    Ok((format!("{facts:?}"), digest, key))
}

/// The parts of a stored person state as `bestand.profile.stored.unpack` gives them (absent
/// parts left out, orders as field mappings): the API reads states this way, about three
/// times as fast as Python unpacks them.
#[pyfunction]
fn unpack_state<'py>(py: Python<'py>, blob: &[u8]) -> PyResult<Bound<'py, PyDict>> {
    if !matches!(blob.first(), Some(1..=3)) {
        return Err(PyValueError::new_err("not a packed state"));
    }
    let state = load_state("", Some(blob), Rule::Kept).map_err(PyValueError::new_err)?;
    let out = PyDict::new(py);
    out.set_item(intern!(py, "version"), state.version)?;
    if !state.ids.is_empty() {
        out.set_item(intern!(py, "ids"), PyFrozenSet::new(py, &state.ids)?)?;
    }
    if !state.orders.is_empty() {
        let orders = PyDict::new(py);
        for (order_id, o) in &state.orders {
            let order = PyDict::new(py);
            if let Some(total) = o.total_cents {
                order.set_item(intern!(py, "total_cents"), total)?;
            }
            for (name, value) in [
                (intern!(py, "currency"), &o.currency),
                (intern!(py, "channel"), &o.channel),
            ] {
                if let Some(value) = value {
                    order.set_item(name, value)?;
                }
            }
            if let Some(at) = o.at {
                order.set_item(intern!(py, "at"), at)?;
            }
            if o.cancelled {
                order.set_item(intern!(py, "cancelled"), true)?;
            }
            if !o.returns.is_empty() {
                order.set_item(intern!(py, "returns"), &o.returns)?;
            }
            for (name, value) in [
                (intern!(py, "cls"), &o.cls),
                (intern!(py, "campaign"), &o.campaign),
                (intern!(py, "affiliate"), &o.affiliate),
                (intern!(py, "coupon"), &o.coupon),
            ] {
                if let Some(value) = value {
                    order.set_item(name, value)?;
                }
            }
            orders.set_item(order_id, order)?;
        }
        out.set_item(intern!(py, "orders"), orders)?;
    }
    for (name, value) in [
        (intern!(py, "first_seen"), state.first_seen),
        (intern!(py, "last_seen"), state.last_seen),
        (intern!(py, "last_email_engagement"), state.last_email_engagement),
    ] {
        if let Some(value) = value {
            out.set_item(name, value)?;
        }
    }
    for (name, value) in [
        (intern!(py, "email"), &state.email),
        (intern!(py, "contacts"), &state.contacts),
        (intern!(py, "interests"), &state.interests),
    ] {
        if !value.is_empty() {
            out.set_item(name, value)?;
        }
    }
    if !state.consent.is_empty() {
        out.set_item(intern!(py, "consent"), &state.consent)?;
    }
    for (name, value) in [(intern!(py, "channels"), &state.channels), (intern!(py, "absorbed"), &state.absorbed)] {
        if !value.is_empty() {
            out.set_item(name, PyFrozenSet::new(py, value)?)?;
        }
    }
    if !state.reclassified.is_empty() {
        let entries: Vec<Bound<'py, PyTuple>> =
            state.reclassified.iter().map(|entry| entry.clone().into_pyobject(py)).collect::<PyResult<_>>()?;
        out.set_item(intern!(py, "reclassified"), PyTuple::new(py, entries)?)?;
    }
    Ok(out)
}

/// A stored person state read and written again by the compiled fold (for tests: the same
/// bytes as `bestand.profile.state.dump_state` of the state Python reads from `blob`).
#[pyfunction]
fn state_for_test<'py>(py: Python<'py>, blob: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let state = load_state("p", Some(blob), Rule::Kept).map_err(PyValueError::new_err)?;
    Ok(PyBytes::new(py, &dump_state(&state)))
}

#[pymodule]
fn bestand_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("BUCKET_CHARS", graph::BUCKET_CHARS)?;
    m.add_class::<Folder>()?;
    m.add_class::<graph::Resolver>()?;
    m.add_class::<graph::GraphBatch>()?;
    m.add_class::<keyer::Keyer>()?;
    m.add_class::<decoder::Decoder>()?;
    m.add_class::<Facts>()?;
    m.add_function(wrap_pyfunction!(digest_and_key, m)?)?;
    m.add_function(wrap_pyfunction!(event_for_test, m)?)?;
    m.add_function(wrap_pyfunction!(state_for_test, m)?)?;
    m.add_function(wrap_pyfunction!(unpack_state, m)?)?;
    m.add_function(wrap_pyfunction!(keying::keyed_hash_of, m)?)?;
    m.add_function(wrap_pyfunction!(rules_py::decide_for_test, m)?)?;
    m.add_function(wrap_pyfunction!(graph::stored_entry_for_test, m)?)?;
    Ok(())
}
