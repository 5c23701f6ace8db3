//! `bestand.graph_read` and `bestand.graph_apply`: `graph_read.lua` and `graph_apply.lua`
//! compiled, with the same keys, arguments, effects and replies.

use crate::api::RString;
use crate::persons::{lua_number, number, Call};
use crate::store::{bad, Outcome, Reply, Store};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// The identity graph's key prefixes (`Keys.graph_schema`).
struct GraphSchema {
    identifier: Vec<u8>,
    facts: Vec<u8>,
    log: Vec<u8>,
    met: Vec<u8>,
    junk: Vec<u8>,
    redirect: Vec<u8>,
    absorbed: Vec<u8>,
    tombstone: Vec<u8>,
    receipt: Vec<u8>,
    batch_stop: Vec<u8>,
    claims: Vec<u8>,
    movable: Vec<u8>,
    max_claims: usize,
    bucket_chars: usize,
    log_bucket: Vec<u8>,
    log_inline: usize,
    /// What marks a person's field of its facts bucket as its short log, redirect or absorbed
    /// persons, and an identifier's field of its graph bucket as its meetings (`keys.py`).
    log_field: Vec<u8>,
    redirect_field: Vec<u8>,
    absorbed_field: Vec<u8>,
    met_field: Vec<u8>,
}

impl GraphSchema {
    fn read(bytes: &[u8]) -> Outcome<Self> {
        let k: Value = serde_json::from_slice(bytes).map_err(|e| bad(&format!("bad key schema: {e}")))?;
        let field = |name: &str| -> Outcome<Vec<u8>> {
            match k.get(name) {
                Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
                _ => Err(bad(&format!("key schema has no {name}"))),
            }
        };
        Ok(GraphSchema {
            identifier: field("identifier")?,
            facts: field("facts")?,
            log: field("log")?,
            met: field("met")?,
            junk: field("junk")?,
            redirect: field("redirect")?,
            absorbed: field("absorbed")?,
            tombstone: field("tombstone")?,
            receipt: field("receipt")?,
            batch_stop: field("batch_stop")?,
            claims: field("claims")?,
            movable: field("movable")?,
            max_claims: k.get("max_claims").and_then(value_number).unwrap_or(0.0) as usize,
            bucket_chars: bucket_chars(&k)?,
            log_bucket: field("log_bucket")?,
            log_inline: k.get("log_inline").and_then(value_number).ok_or_else(|| bad("key schema has no log_inline"))?
                as usize,
            log_field: field("log_field")?,
            redirect_field: field("redirect_field")?,
            absorbed_field: field("absorbed_field")?,
            met_field: field("met_field")?,
        })
    }
}

/// The schema's `bucket_chars`: how many characters of an identifier's hash name its bucket.
pub fn bucket_chars(k: &Value) -> Outcome<usize> {
    k.get("bucket_chars").and_then(value_number).map(|n| n as usize).ok_or_else(|| bad("key schema has no bucket_chars"))
}

/// An identifier's graph entry: the key of its bucket and its field there (`keys.py`; the
/// scripts' `bucket_of` and `field_of`).
pub fn entry(prefix: &[u8], chars: usize, token: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let start = 2.min(token.len());
    let end = (2 + chars).min(token.len());
    ([prefix, &token[start..end]].concat(), [&token[..start], &token[end..]].concat())
}

fn join(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    [prefix, rest].concat()
}

/// A letter of `set` starts the token (an empty token matches, as Lua's `string.find` does).
fn starts_with_one_of(set: &[u8], token: &[u8]) -> bool {
    token.first().is_none_or(|first| set.contains(first))
}

fn value_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => number(s.as_bytes()),
        _ => None,
    }
}

/// A JSON value as a script hands it to a command: strings as they are, numbers as Lua
/// writes them.
fn lua_text(value: &Value) -> Outcome<Vec<u8>> {
    match value {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Number(n) => Ok(lua_number(n.as_f64().unwrap_or(0.0))),
        _ => Err(bad("a plan holds a value that is neither text nor number")),
    }
}

fn texts(value: Option<&Value>) -> Outcome<Vec<Vec<u8>>> {
    match value {
        Some(Value::Array(items)) => items.iter().map(lua_text).collect(),
        _ => Ok(Vec::new()),
    }
}

fn rows(value: Option<&Value>) -> &[Value] {
    match value {
        Some(Value::Array(items)) => items,
        _ => &[],
    }
}

fn object(value: Option<&Value>) -> Option<&Map<String, Value>> {
    match value {
        Some(Value::Object(map)) => Some(map),
        _ => None,
    }
}

fn at(row: &Value, i: usize) -> Outcome<Vec<u8>> {
    lua_text(row.get(i).ok_or_else(|| bad("a plan's row is short"))?)
}

struct Graph<'a> {
    store: &'a Store,
    k: GraphSchema,
}

impl Graph<'_> {
    fn key(&self, prefix: &[u8], rest: &[u8]) -> *mut RString {
        self.store.string(&join(prefix, rest))
    }

    /// The person an identifier belongs to (its field in its graph bucket).
    fn owner(&self, token: &[u8]) -> Outcome<Option<Vec<u8>>> {
        let (bucket, field) = entry(&self.k.identifier, self.k.bucket_chars, token);
        self.store.hget(self.store.string(&bucket), &field)
    }

    /// Give an identifier to a person.
    fn own(&self, token: &[u8], person: &[u8]) -> Outcome<()> {
        let (bucket, field) = entry(&self.k.identifier, self.k.bucket_chars, token);
        self.store.hset_bytes(self.store.string(&bucket), &[(&field, person)])
    }

    /// The log bucket of a person: its explain log is its field there while short (`keys.py`).
    fn log_bucket(&self, person: &[u8]) -> *mut RString {
        self.person_bucket(&self.k.log_bucket, person)
    }

    /// A person's field of its log bucket.
    fn log_field(&self, person: &[u8]) -> Vec<u8> {
        [&self.k.log_field[..], person].concat()
    }

    /// A person's field of its redirect bucket.
    fn redirect_field(&self, person: &[u8]) -> Vec<u8> {
        [&self.k.redirect_field[..], person].concat()
    }

    /// A person's field of its bucket of absorbed persons.
    fn absorbed_field(&self, person: &[u8]) -> Vec<u8> {
        [&self.k.absorbed_field[..], person].concat()
    }

    /// A person's explain entries (the last `last` of them, or all): its field of its log
    /// bucket split by \x1e, or its list.
    fn log_of(&self, person: &[u8], last: Option<usize>) -> Outcome<Vec<Vec<u8>>> {
        let Some(text) = self.store.hget(self.log_bucket(person), &self.log_field(person))? else {
            return self.store.lrange_last(self.key(&self.k.log, person), last);
        };
        let entries: Vec<Vec<u8>> = text.split(|&b| b == 0x1e).map(|e| e.to_vec()).collect();
        Ok(match last {
            Some(last) if entries.len() > last => entries[entries.len() - last..].to_vec(),
            _ => entries,
        })
    }

    /// Remove a person's explain log, in either form.
    fn drop_log(&self, person: &[u8]) -> Outcome<()> {
        self.store.hdel_bytes(self.log_bucket(person), &[&self.log_field(person)])?;
        self.store.del(self.key(&self.k.log, person));
        Ok(())
    }

    /// Append entries to a person's explain log, keeping the last `max_log`: a short log stays
    /// its bucket's field, a log that grows past `log_inline` bytes (or takes an entry holding
    /// \x1e) becomes a list, appended to in place from then on.
    fn append_log(&self, person: &[u8], entries: &[Vec<u8>], max_log: usize) -> Outcome<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let long = self.key(&self.k.log, person);
        let mut pushed: Vec<Vec<u8>> = entries.to_vec();
        if !self.store.exists(long) {
            let bucket = self.log_bucket(person);
            let field = self.log_field(person);
            let text = self.store.hget(bucket, &field)?;
            let added = entries.join(&0x1e);
            let joined = match &text {
                Some(text) => [&text[..], b"\x1e", &added[..]].concat(),
                None => added,
            };
            let plain = !entries.iter().any(|e| e.contains(&0x1e));
            if plain && joined.len() <= self.k.log_inline {
                let all: Vec<&[u8]> = joined.split(|&b| b == 0x1e).collect();
                let kept = if all.len() > max_log { all[all.len() - max_log..].join(&0x1e) } else { joined.clone() };
                return self.store.hset_bytes(bucket, &[(&field, &kept)]);
            }
            self.store.hdel_bytes(bucket, &[&field])?;
            let mut before: Vec<Vec<u8>> = match &text {
                Some(text) => text.split(|&b| b == 0x1e).map(|e| e.to_vec()).collect(),
                None => Vec::new(),
            };
            before.extend(pushed);
            pushed = before;
        }
        if self.store.rpush(long, &pushed.iter().map(|e| &e[..]).collect::<Vec<_>>())? > max_log {
            self.store.keep_last(long, max_log)?;
        }
        Ok(())
    }

    /// An identifier names nobody any more.
    fn disown(&self, token: &[u8]) -> Outcome<()> {
        let (bucket, field) = entry(&self.k.identifier, self.k.bucket_chars, token);
        self.store.hdel_bytes(self.store.string(&bucket), &[&field])
    }

    /// The bucket of a person's field under `prefix` (redirects, absorbed persons, logs).
    fn person_bucket(&self, prefix: &[u8], person: &[u8]) -> *mut RString {
        self.key(prefix, &person[..self.k.bucket_chars.min(person.len())])
    }

    /// The person a merged-away person went into.
    fn redirect_of(&self, person: &[u8]) -> Outcome<Option<Vec<u8>>> {
        self.store.hget(self.person_bucket(&self.k.redirect, person), &self.redirect_field(person))
    }

    /// The members of a set kept as a bucket's field (joined by ',').
    fn members(&self, key: *mut RString, field: &[u8]) -> Outcome<Vec<Vec<u8>>> {
        Ok(match self.store.hget(key, field)? {
            Some(value) => value.split(|&b| b == b',').filter(|m| !m.is_empty()).map(|m| m.to_vec()).collect(),
            None => Vec::new(),
        })
    }

    /// Add a member to a set kept as a bucket's field, unless it holds it already.
    fn add_member(&self, key: *mut RString, field: &[u8], member: &[u8]) -> Outcome<()> {
        let value = self.store.hget(key, field)?;
        if let Some(value) = &value {
            if value.split(|&b| b == b',').any(|held| held == member) {
                return Ok(());
            }
        }
        let joined = match value {
            Some(value) => [&value[..], b",", member].concat(),
            None => member.to_vec(),
        };
        self.store.hset_bytes(key, &[(field, &joined)])
    }

    /// The bucket and field of an identifier's meetings.
    fn met_entry(&self, token: &[u8]) -> (*mut RString, Vec<u8>) {
        let (bucket, field) = entry(&self.k.met, self.k.bucket_chars, token);
        (self.store.string(&bucket), [&self.k.met_field[..], &field[..]].concat())
    }

    /// Where a person lives now: redirects followed (at most 32).
    fn live(&self, mut person: Vec<u8>) -> Outcome<Vec<u8>> {
        for _ in 0..32 {
            match self.redirect_of(&person)? {
                Some(next) => person = next,
                None => return Ok(person),
            }
        }
        Ok(person)
    }

    /// Values of keys that seldom exist, `None` where a key is missing.
    fn seldom(&self, keys: &[*mut RString]) -> Outcome<Vec<Option<Vec<u8>>>> {
        keys.iter()
            .map(|&key| if self.store.exists(key) { self.store.get(key) } else { Ok(None) })
            .collect()
    }
}

/// A person's facts as `graph_apply.lua` holds them while it runs: the fields of what was a
/// hash, in order (a removed one leaves a hole), read from the person's field of its facts
/// bucket once and written back once (`name \x1f value` joined by \x1e, the version first).
#[derive(Default)]
struct PersonFacts {
    names: Vec<Vec<u8>>,
    values: Vec<Option<Vec<u8>>>,
    at: HashMap<Vec<u8>, usize>,
    changed: bool,
}

/// Split a person's stored facts into (name, value) pairs, in order (an entry without its
/// \x1f is passed over, as the script's pattern does).
fn fact_pairs(text: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    text.split(|&b| b == 0x1e)
        .filter_map(|entry| entry.iter().position(|&b| b == 0x1f).map(|i| (&entry[..i], &entry[i + 1..])))
}

/// The facts of the persons one `graph_apply` call touched (the script's `facts_of`).
#[derive(Default)]
struct HeldFacts {
    persons: HashMap<Vec<u8>, PersonFacts>,
    order: Vec<Vec<u8>>,
}

impl HeldFacts {
    fn of(&mut self, graph: &Graph, person: &[u8]) -> Outcome<&mut PersonFacts> {
        if !self.persons.contains_key(person) {
            let mut facts = PersonFacts::default();
            if let Some(text) = graph.store.hget(graph.person_bucket(&graph.k.facts, person), person)? {
                for (name, value) in fact_pairs(&text) {
                    facts.at.insert(name.to_vec(), facts.names.len());
                    facts.names.push(name.to_vec());
                    facts.values.push(Some(value.to_vec()));
                }
            }
            self.persons.insert(person.to_vec(), facts);
            self.order.push(person.to_vec());
        }
        Ok(self.persons.get_mut(person).expect("held just now"))
    }

    fn get(&mut self, graph: &Graph, person: &[u8], name: &[u8]) -> Outcome<Option<Vec<u8>>> {
        let facts = self.of(graph, person)?;
        Ok(facts.at.get(name).and_then(|&i| facts.values[i].clone()))
    }

    fn set(&mut self, graph: &Graph, person: &[u8], name: &[u8], value: &[u8]) -> Outcome<()> {
        let facts = self.of(graph, person)?;
        let i = match facts.at.get(name) {
            Some(&i) => i,
            None => {
                facts.at.insert(name.to_vec(), facts.names.len());
                facts.names.push(name.to_vec());
                facts.values.push(None);
                facts.names.len() - 1
            }
        };
        facts.values[i] = Some(value.to_vec());
        facts.changed = true;
        Ok(())
    }

    /// The script's `add_fact`: the sum as Lua writes a number.
    fn add(&mut self, graph: &Graph, person: &[u8], name: &[u8], delta: f64) -> Outcome<()> {
        let now = self.get(graph, person, name)?;
        let now = number(now.as_deref().unwrap_or(b"0")).ok_or_else(|| bad("a fact to add to is not a number"))?;
        self.set(graph, person, name, &lua_number(now + delta))
    }

    fn remove(&mut self, graph: &Graph, person: &[u8], name: &[u8]) -> Outcome<()> {
        let facts = self.of(graph, person)?;
        if let Some(i) = facts.at.remove(name) {
            facts.values[i] = None;
            facts.changed = true;
        }
        Ok(())
    }

    fn list(&mut self, graph: &Graph, person: &[u8]) -> Outcome<Vec<(Vec<u8>, Vec<u8>)>> {
        let facts = self.of(graph, person)?;
        Ok(facts
            .names
            .iter()
            .zip(&facts.values)
            .filter_map(|(name, value)| value.as_ref().map(|value| (name.clone(), value.clone())))
            .collect())
    }

    fn clear(&mut self, graph: &Graph, person: &[u8]) -> Outcome<()> {
        let facts = self.of(graph, person)?;
        *facts = PersonFacts { changed: true, ..PersonFacts::default() };
        Ok(())
    }

    /// Write back the facts this call changed (the script's `store_facts`).
    fn store(&mut self, graph: &Graph) -> Outcome<()> {
        for person in &self.order {
            let facts = self.persons.get_mut(person).expect("held");
            if !facts.changed {
                continue;
            }
            let first = facts.at.get(&b"v"[..]).copied();
            let version = first.and_then(|i| facts.values[i].as_ref()).map(|v| [&b"v\x1f"[..], v].concat());
            let entries: Vec<Vec<u8>> = version
                .into_iter()
                .chain(facts.names.iter().zip(&facts.values).enumerate().filter_map(|(i, (name, value))| {
                    value.as_ref().filter(|_| Some(i) != first).map(|value| [&name[..], b"\x1f", &value[..]].concat())
                }))
                .collect();
            let bucket = graph.person_bucket(&graph.k.facts, person);
            if entries.is_empty() {
                graph.store.hdel_bytes(bucket, &[person])?;
            } else {
                graph.store.hset_bytes(bucket, &[(person, &entries.join(&0x1e))])?;
            }
            facts.changed = false;
        }
        Ok(())
    }
}

/// The graph version of a person's stored facts: the digits of the `v` they start with, as
/// the script's pattern finds it.
fn fact_version(text: &[u8]) -> Option<&[u8]> {
    let value = text.strip_prefix(b"v\x1f")?;
    let digits = value.iter().take_while(|b| b.is_ascii_digit()).count();
    (digits > 0).then(|| &value[..digits])
}

/// `graph_read.lua`.
pub fn graph_read(store: &Store) -> Outcome<Reply> {
    let call = Call::new(store)?;
    let graph = Graph { store, k: GraphSchema::read(call.argv(1)?)? };
    let k = &graph.k;
    let n = number(call.argv(2)?).ok_or_else(|| bad("n is not a number"))? as usize;
    let held = number(call.argv(3 + n)?).ok_or_else(|| bad("k is not a number"))? as usize;
    let mut known: HashMap<&[u8], &[u8]> = HashMap::with_capacity(held);
    for j in 1..=held {
        known.insert(call.argv(2 + n + 2 * j)?, call.argv(3 + n + 2 * j)?);
    }
    let tokens: Vec<&[u8]> = (1..=n).map(|i| call.argv(2 + i)).collect::<Outcome<_>>()?;
    let owners = tokens.iter().map(|t| graph.owner(t)).collect::<Outcome<Vec<_>>>()?;
    let junk = graph.seldom(&tokens.iter().map(|t| graph.key(&k.junk, t)).collect::<Vec<_>>())?;
    let erased = graph.seldom(&tokens.iter().map(|t| graph.key(&k.tombstone, t)).collect::<Vec<_>>())?;

    let mut met_read: Vec<Vec<Vec<u8>>> = Vec::with_capacity(n);
    let mut members: Vec<Vec<u8>> = Vec::new();
    let mut member_seen: HashSet<Vec<u8>> = HashSet::new();
    for i in 0..n {
        let met = if owners[i].is_some() || junk[i].is_some() {
            let (bucket, field) = graph.met_entry(tokens[i]);
            graph.members(bucket, &field)?
        } else {
            Vec::new()
        };
        for person in &met {
            if member_seen.insert(person.clone()) {
                members.push(person.clone());
            }
        }
        met_read.push(met);
    }
    let mut went: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    for member in &members {
        if let Some(target) = graph.redirect_of(member)? {
            went.insert(member.clone(), graph.live(target)?);
        }
    }

    let mut claim_rows: Vec<Vec<Vec<u8>>> = Vec::new();
    for i in 0..n {
        let token = tokens[i];
        if owners[i].is_some() && !met_read[i].is_empty() && starts_with_one_of(&k.movable, token) {
            let entries = store.lrange_last(graph.key(&k.claims, token), None)?;
            if !entries.is_empty() {
                let mut row = vec![(i + 1).to_string().into_bytes()];
                for entry in entries {
                    let split = entry.iter().position(|&b| b == b':').ok_or_else(|| bad("a claim has no ':'"))?;
                    let person = graph.live(entry[split + 1..].to_vec())?;
                    row.push([&entry[..split], b":", &person[..]].concat());
                }
                claim_rows.push(row);
            }
        }
    }

    let mut token_rows: Vec<Vec<u8>> = Vec::new();
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut seen_list: Vec<Vec<u8>> = Vec::new();
    for i in 0..n {
        let met_now = &met_read[i];
        if owners[i].is_some() || junk[i].is_some() || erased[i].is_some() || !met_now.is_empty() {
            let mut row: Vec<Vec<u8>> = vec![
                (i + 1).to_string().into_bytes(),
                owners[i].clone().unwrap_or_default(),
                if junk[i].is_some() { b"1".to_vec() } else { Vec::new() },
                erased[i].clone().unwrap_or_default(),
            ];
            let mut met_seen: HashSet<&[u8]> = HashSet::new();
            for person in met_now {
                let now = went.get(person).unwrap_or(person);
                if met_seen.insert(now) {
                    row.push(now.clone());
                }
            }
            token_rows.push(row.join(&0x1f));
            if let Some(owner) = &owners[i] {
                if seen.insert(owner.clone()) {
                    seen_list.push(owner.clone());
                }
            }
        }
    }
    let mut claims: Vec<Vec<u8>> = Vec::with_capacity(claim_rows.len());
    for row in &claim_rows {
        for entry in &row[1..] {
            let split = entry.iter().position(|&b| b == b':').unwrap_or(0);
            let person = entry[split + 1..].to_vec();
            if seen.insert(person.clone()) {
                seen_list.push(person);
            }
        }
        claims.push(row.join(&0x1f));
    }
    let mut persons: Vec<Vec<u8>> = Vec::with_capacity(seen_list.len());
    for owner in &seen_list {
        let text = store.hget(graph.person_bucket(&k.facts, owner), owner)?;
        let same = match known.get(owner.as_slice()) {
            Some(version) => text.as_deref().and_then(fact_version) == Some(*version),
            None => false,
        };
        if same {
            persons.push([&owner[..], b"\x1f="].concat());
        } else if let Some(text) = text {
            // Every separator a \x1f, as the script's substitution leaves them.
            let mut row = owner.clone();
            row.push(0x1f);
            row.extend(text.iter().map(|&b| if b == 0x1e { 0x1f } else { b }));
            persons.push(row);
        } else {
            persons.push(owner.clone());
        }
    }
    let first_receipt = 4 + n + 2 * held;
    let receipt_keys: Vec<*mut RString> = (first_receipt..=call.argn())
        .map(|j| Ok(graph.key(&k.receipt, call.argv(j)?)))
        .collect::<Outcome<_>>()?;
    let mut receipts: Vec<Vec<u8>> = Vec::new();
    for (j, body) in graph.seldom(&receipt_keys)?.into_iter().enumerate() {
        if let Some(body) = body {
            receipts.push([(j + 1).to_string().as_bytes(), b"\x1f", &body[..]].concat());
        }
    }
    let out = [token_rows.join(&0x1e), persons.join(&0x1e), receipts.join(&0x1e), claims.join(&0x1e)].join(&0x1d);
    Ok(Reply::Bulk(out))
}

/// `graph_apply.lua`.
pub fn graph_apply(store: &Store) -> Outcome<Reply> {
    let call = Call::new(store)?;
    let graph = Graph { store, k: GraphSchema::read(call.argv(1)?)? };
    let k = &graph.k;
    let stop = graph.key(&k.batch_stop, call.argv(2)?);
    let max_log = number(call.argv(3)?).ok_or_else(|| bad("max log is not a number"))? as usize;
    let describing = call.argv(4)?;
    if store.exists(stop) {
        return Ok(Reply::Int(0));
    }
    let mut applied = 0;
    let mut held = HeldFacts::default();
    for i in 5..=call.argn() {
        let plan: Value =
            serde_json::from_slice(call.argv(i)?).map_err(|e| bad(&format!("bad plan: {e}")))?;
        if !guard_holds(&graph, &mut held, &plan)? {
            store.set(stop, b"1", Some(60))?;
            held.store(&graph)?;
            return Ok(Reply::Int(applied));
        }
        apply(&graph, &mut held, &plan, max_log, describing)?;
        applied += 1;
    }
    held.store(&graph)?;
    Ok(Reply::Int(applied))
}

/// What the decision was made on must still hold.
fn guard_holds(graph: &Graph, held: &mut HeldFacts, plan: &Value) -> Outcome<bool> {
    let (store, k) = (graph.store, &graph.k);
    if let Some(owners) = object(plan.get("owners")) {
        for (token, expected) in owners {
            let now = graph.owner(token.as_bytes())?.unwrap_or_default();
            if now != lua_text(expected)? {
                return Ok(false);
            }
        }
    }
    if let Some(junk) = object(plan.get("junk")) {
        for (token, expected) in junk {
            let now = store.get(graph.key(&k.junk, token.as_bytes()))?.unwrap_or_default();
            if now != lua_text(expected)? {
                return Ok(false);
            }
        }
    }
    if let Some(versions) = object(plan.get("versions")) {
        for (person, version) in versions {
            let now = held.get(graph, person.as_bytes(), b"v")?;
            let now = number(now.as_deref().unwrap_or(b"0"));
            if now.is_none() || now != value_number(version) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn apply(graph: &Graph, held: &mut HeldFacts, plan: &Value, max_log: usize, describing: &[u8]) -> Outcome<()> {
    let (store, k) = (graph.store, &graph.k);
    let describes = |token: &[u8]| starts_with_one_of(describing, token);
    let person = lua_text(plan.get("person").ok_or_else(|| bad("a plan names no person"))?)?;
    for gone in texts(plan.get("absorbed"))? {
        let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for (field, value) in held.list(graph, &gone)? {
            if field.len() > 1 {
                if field[0] != b'@' && !describes(&field) {
                    graph.own(&field, &person)?;
                }
                fields.push((field, value));
            }
        }
        for (field, value) in &fields {
            held.set(graph, &person, field, value)?;
        }
        graph.append_log(&person, &graph.log_of(&gone, None)?, max_log)?;
        graph.drop_log(&gone)?;
        held.clear(graph, &gone)?;
        let absorbed = graph.person_bucket(&k.absorbed, &person);
        let absorbed_field = graph.absorbed_field(&person);
        store.hset_bytes(graph.person_bucket(&k.redirect, &gone), &[(&graph.redirect_field(&gone), &person)])?;
        graph.add_member(absorbed, &absorbed_field, &gone)?;
        let gone_absorbed = graph.person_bucket(&k.absorbed, &gone);
        let gone_field = graph.absorbed_field(&gone);
        for older in graph.members(gone_absorbed, &gone_field)? {
            store.hset_bytes(graph.person_bucket(&k.redirect, &older), &[(&graph.redirect_field(&older), &person)])?;
            graph.add_member(absorbed, &absorbed_field, &older)?;
        }
        store.hdel_bytes(gone_absorbed, &[&gone_field])?;
    }
    for row in rows(plan.get("move")) {
        let (token, former, entry, time) = (at(row, 0)?, at(row, 1)?, at(row, 2)?, at(row, 3)?);
        let claims = graph.key(&k.claims, &token);
        let claim_field = join(b"@", &token);
        if !store.exists(claims) {
            let since = held.get(graph, &former, &claim_field)?.unwrap_or_else(|| b"0".to_vec());
            store.rpush(claims, &[&[&since[..], b":", &former[..]].concat()])?;
        }
        if store.rpush(claims, &[&[&time[..], b":", &person[..]].concat()])? > k.max_claims {
            store.keep_last(claims, k.max_claims)?;
        }
        held.remove(graph, &former, &token)?;
        held.remove(graph, &former, &claim_field)?;
        held.add(graph, &former, b"v", 1.0)?;
        graph.append_log(&former, &[entry], max_log)?;
        graph.own(&token, &person)?;
        held.set(graph, &person, &token, b"")?;
    }
    let claim = texts(plan.get("claim"))?;
    for pair in claim.chunks(2) {
        held.set(graph, &person, &pair[0], pair.get(1).map_or(&b""[..], |v| &v[..]))?;
    }
    let attach = texts(plan.get("attach"))?;
    for token in &attach {
        graph.own(token, &person)?;
    }
    for token in &attach {
        held.set(graph, &person, token, b"")?;
    }
    for token in texts(plan.get("describe"))? {
        held.set(graph, &person, &token, b"1")?;
    }
    for pair in rows(plan.get("met")) {
        let (bucket, field) = graph.met_entry(&at(pair, 0)?);
        graph.add_member(bucket, &field, &at(pair, 1)?)?;
    }
    for pair in rows(plan.get("flag")) {
        let token = at(pair, 0)?;
        store.set(graph.key(&k.junk, &token), &at(pair, 1)?, None)?;
        if let Some(owner) = graph.owner(&token)? {
            graph.disown(&token)?;
            store.del(graph.key(&k.claims, &token));
            if describes(&token) {
                held.remove(graph, &owner, &token)?;
            } else {
                held.remove(graph, &owner, &token)?;
                held.remove(graph, &owner, &join(b"@", &token))?;
            }
            if owner != person {
                held.add(graph, &owner, b"v", 1.0)?;
            }
        }
    }
    let entries = texts(plan.get("log"))?;
    let repeats = !matches!(plan.get("repeats"), None | Some(Value::Null) | Some(Value::Bool(false)));
    if repeats {
        let recent: HashSet<Vec<u8>> = graph.log_of(&person, Some(50))?.into_iter().collect();
        let fresh: Vec<Vec<u8>> = entries.into_iter().filter(|e| !recent.contains(e)).collect();
        graph.append_log(&person, &fresh, max_log)?;
    } else {
        graph.append_log(&person, &entries, max_log)?;
    }
    if let Some(receipt) = object(plan.get("receipt")) {
        let event = lua_text(receipt.get("event").unwrap_or(&Value::Null))?;
        let body = lua_text(receipt.get("body").unwrap_or(&Value::Null))?;
        let ttl = receipt.get("ttl").and_then(value_number).ok_or_else(|| bad("a receipt has no ttl"))?;
        store.set(graph.key(&k.receipt, &event), &body, Some(ttl as i64))?;
    }
    held.add(graph, &person, b"v", 1.0)?;
    Ok(())
}
