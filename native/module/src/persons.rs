//! `bestand.persons_read` and `bestand.persons_write`: `persons_read.lua` and
//! `persons_write.lua` compiled, with the same keys, arguments, effects and replies.

use crate::store::{bad, Failure, Outcome, Reply, Store};
use serde_json::Value;

/// Arguments after the keys, numbered from 1 as a script's `ARGV`.
pub struct Call<'a> {
    pub store: &'a Store,
    pub numkeys: usize,
}

impl<'a> Call<'a> {
    pub fn new(store: &'a Store) -> Outcome<Self> {
        if store.argc() < 2 {
            return Err(Failure("ERR wrong number of arguments".into()));
        }
        let numkeys = number(store.arg(1)).ok_or_else(|| bad("numkeys is not a number"))? as usize;
        if 2 + numkeys > store.argc() {
            return Err(bad("more keys than arguments"));
        }
        Ok(Call { store, numkeys })
    }
    /// `KEYS[i]` (1-based).
    pub fn key(&self, i: usize) -> *mut crate::api::RString {
        self.store.arg_string(1 + i)
    }
    /// `#ARGV`.
    pub fn argn(&self) -> usize {
        self.store.argc() - 2 - self.numkeys
    }
    /// `ARGV[j]` (1-based).
    pub fn argv(&self, j: usize) -> Outcome<&[u8]> {
        if j == 0 || j > self.argn() {
            return Err(bad("an argument is missing"));
        }
        Ok(self.store.arg(1 + self.numkeys + j))
    }
}

/// A number as Lua's `tonumber` reads one.
pub fn number(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    if text.is_empty() {
        return None;
    }
    text.parse::<f64>().ok()
}

/// A number as Lua writes it into a command's argument (`%.14g`).
pub fn lua_number(value: f64) -> Vec<u8> {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64).into_bytes()
    } else {
        format!("{value}").into_bytes()
    }
}

fn json(bytes: &[u8]) -> Outcome<Value> {
    serde_json::from_slice(bytes).map_err(|error| bad(&format!("bad JSON argument: {error}")))
}

fn text<'v>(value: &'v Value, what: &str) -> Outcome<&'v [u8]> {
    match value {
        Value::String(s) => Ok(s.as_bytes()),
        _ => Err(bad(&format!("{what} is not a string"))),
    }
}

fn num(value: &Value, what: &str) -> Outcome<f64> {
    match value {
        Value::Number(n) => n.as_f64().ok_or_else(|| bad(what)),
        Value::String(s) => number(s.as_bytes()).ok_or_else(|| bad(&format!("{what} is not a number"))),
        _ => Err(bad(&format!("{what} is not a number"))),
    }
}

fn list<'v>(value: &'v Value, field: &str) -> &'v [Value] {
    match value.get(field) {
        Some(Value::Array(items)) => items,
        _ => &[],
    }
}

fn item<'v>(value: &'v Value, i: usize, what: &str) -> Outcome<&'v Value> {
    value.get(i).ok_or_else(|| bad(&format!("{what} is missing")))
}

/// A person's field of its bucket: its version and state, or whom it went into.
enum Stored<'v> {
    State(f64, &'v [u8]),
    Redirect(&'v [u8]),
}

/// Read a person's field (`'v' version ':' state`, or `'r' person`; none: version 0).
fn stored(value: Option<&[u8]>) -> Outcome<Stored<'_>> {
    let Some(value) = value else { return Ok(Stored::State(0.0, b"")) };
    match value.first() {
        Some(b'r') => Ok(Stored::Redirect(&value[1..])),
        Some(b'v') => {
            let colon = value.iter().position(|&b| b == b':').ok_or_else(|| bad("a person's field has no version"))?;
            let version = number(&value[1..colon]).ok_or_else(|| bad("a person's version is not a number"))?;
            Ok(Stored::State(version, &value[colon + 1..]))
        }
        _ => Err(bad("a person's field is neither a state nor a redirect")),
    }
}

/// `persons_read.lua`.
pub fn persons_read(store: &Store) -> Outcome<Reply> {
    let call = Call::new(store)?;
    let n = number(call.argv(1)?).ok_or_else(|| bad("n is not a number"))? as usize;
    let mut persons = Vec::with_capacity(n);
    for i in 1..=n {
        let value = store.hget(call.key(i), call.argv(1 + n + i)?)?;
        let held = number(call.argv(1 + i)?);
        let row = match stored(value.as_deref())? {
            Stored::Redirect(to) => vec![Reply::Bulk(to.to_vec()), Reply::Int(0), Reply::Bulk(Vec::new()), Reply::Int(0)],
            Stored::State(version, _) if version > 0.0 && Some(version) == held => {
                vec![Reply::Bulk(Vec::new()), Reply::Int(version as i64), Reply::Bulk(Vec::new()), Reply::Int(1)]
            }
            Stored::State(version, state) => {
                vec![Reply::Bulk(Vec::new()), Reply::Int(version as i64), Reply::Bulk(state.to_vec()), Reply::Int(0)]
            }
        };
        persons.push(Reply::Array(row));
    }
    let mut markers = Vec::with_capacity(call.numkeys.saturating_sub(n));
    for j in n + 1..=call.numkeys {
        let key = call.key(j);
        // Markers exist only for events applied before: most are not there.
        let marker = if store.exists(key) { store.get(key)?.unwrap_or_default() } else { Vec::new() };
        markers.push(Reply::Bulk(marker));
    }
    Ok(Reply::Array(vec![Reply::Array(persons), Reply::Array(markers)]))
}

/// Key prefixes of person state and lookup records (`Keys.person_schema`).
struct PersonSchema {
    person: Vec<u8>,
    person_end: Vec<u8>,
    lookup: Vec<u8>,
    identifier: Vec<u8>,
    bucket_chars: usize,
    movable: Vec<u8>,
}

impl PersonSchema {
    fn read(bytes: &[u8]) -> Outcome<Self> {
        let k = json(bytes)?;
        let field = |name: &str| -> Outcome<Vec<u8>> {
            Ok(text(k.get(name).unwrap_or(&Value::Null), name)?.to_vec())
        };
        Ok(PersonSchema {
            person: field("person")?,
            person_end: field("person_end")?,
            lookup: field("lookup")?,
            identifier: field("identifier")?,
            bucket_chars: crate::graph::bucket_chars(&k)?,
            movable: field("movable")?,
        })
    }
    /// The bucket of a person's state (`keys.py`).
    fn person_key(&self, id: &[u8]) -> Vec<u8> {
        [&self.person[..], &id[..self.bucket_chars.min(id.len())], &self.person_end[..]].concat()
    }
    fn movable(&self, token: &[u8]) -> bool {
        token.first().is_none_or(|first| self.movable.contains(first))
    }
}

/// The version a lookup record holds (its second field), -1 when there is none.
fn written_version(record: Option<&[u8]>) -> f64 {
    let Some(record) = record else { return -1.0 };
    let mut fields = record.split(|&b| b == 0x1e);
    fields.next();
    match fields.next() {
        Some(version) => number(version).unwrap_or(-1.0),
        None => -1.0,
    }
}

/// `persons_write.lua`.
pub fn persons_write(store: &Store) -> Outcome<Reply> {
    let call = Call::new(store)?;
    let k = PersonSchema::read(call.argv(1)?)?;
    let ttl = number(call.argv(2)?).ok_or_else(|| bad("ttl is not a number"))? as i64;
    let groups = number(call.argv(3)?).ok_or_else(|| bad("groups is not a number"))? as usize;
    let mut out = Vec::with_capacity(groups);
    for g in 4..4 + groups {
        let group = json(call.argv(g)?)?;
        let mut holds = true;
        for pair in list(&group, "guard") {
            let person = text(item(pair, 0, "person")?, "person")?;
            let value = store.hget(store.string(&k.person_key(person)), person)?;
            let version = match stored(value.as_deref())? {
                Stored::State(version, _) => Some(version),
                Stored::Redirect(_) => None,
            };
            if version != Some(num(item(pair, 1, "version")?, "version")?) {
                holds = false;
                break;
            }
        }
        if !holds {
            out.push(Reply::Int(0));
            continue;
        }
        for row in list(&group, "write") {
            let person = text(item(row, 0, "person")?, "person")?;
            let version = lua_number(num(item(row, 1, "version")?, "version")?);
            let state = call.argv(num(item(row, 2, "state index")?, "state index")? as usize)?;
            let value = [b"v", &version[..], b":", state].concat();
            store.hset_bytes(store.string(&k.person_key(person)), &[(person, &value)])?;
        }
        for pair in list(&group, "absorbed") {
            let person = text(item(pair, 0, "person")?, "person")?;
            let survivor = text(item(pair, 1, "survivor")?, "survivor")?;
            let redirect = [b"r", survivor].concat();
            store.hset_bytes(store.string(&k.person_key(person)), &[(person, &redirect)])?;
        }
        for pair in list(&group, "markers") {
            let key = store.string(text(item(pair, 0, "dedupe key")?, "dedupe key")?);
            store.set(key, text(item(pair, 1, "marker")?, "marker")?, Some(ttl))?;
        }
        for record in list(&group, "lookups") {
            let version = num(item(record, 0, "version")?, "version")?;
            let checked = matches!(item(record, 1, "checked")?, Value::Number(n) if n.as_f64() == Some(1.0));
            let packed = call.argv(num(item(record, 2, "record index")?, "record index")? as usize)?;
            let holder = packed.split(|&b| b == 0x1e).next().unwrap_or_default();
            let tokens: Vec<&[u8]> = match record.get(3) {
                Some(Value::Array(tokens)) => {
                    tokens.iter().map(|t| text(t, "token")).collect::<Outcome<_>>()?
                }
                _ => Vec::new(),
            };
            // Token by token, as the script: a field of the token's lookup bucket each.
            for token in tokens {
                let held = !k.movable(token) || {
                    let (bucket, field) = crate::graph::entry(&k.identifier, k.bucket_chars, token);
                    store.hget(store.string(&bucket), &field)?.as_deref() == Some(holder)
                };
                if !held {
                    continue;
                }
                let (bucket, field) = crate::graph::entry(&k.lookup, k.bucket_chars, token);
                let key = store.string(&bucket);
                if checked && written_version(store.hget(key, &field)?.as_deref()) >= version {
                    continue;
                }
                store.hset_bytes(key, &[(&field, packed)])?;
            }
        }
        for token in list(&group, "unlink") {
            let (bucket, field) = crate::graph::entry(&k.lookup, k.bucket_chars, text(token, "token")?);
            store.hdel_bytes(store.string(&bucket), &[&field])?;
        }
        out.push(Reply::Int(1));
    }
    Ok(Reply::Array(out))
}
