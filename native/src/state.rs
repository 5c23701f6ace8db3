//! A person's state and its stored form: `bestand.profile.state`, byte for byte.
//!
//! The stored form is the packed one `dump_state` writes (`bestand.profile.stored`), so Redis
//! holds the same bytes whichever side wrote them.

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

/// Most product categories kept per person.
pub const MAX_INTERESTS: usize = 20;

/// Which orders make an existing customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    Kept,
    Placed,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderRecord {
    pub total_cents: Option<i64>,
    pub currency: Option<String>,
    pub channel: Option<String>,
    pub at: Option<i64>,
    pub cancelled: bool,
    /// return or refund event id -> cents (-1: the whole order)
    pub returns: BTreeMap<String, i64>,
    pub cls: Option<String>,
    pub campaign: Option<String>,
    pub affiliate: Option<String>,
    pub coupon: Option<String>,
}

impl OrderRecord {
    pub fn active(&self) -> bool {
        self.at.is_some() && !self.cancelled
    }

    pub fn returned_cents(&self) -> i64 {
        if self.returns.is_empty() {
            return 0;
        }
        let total = self.total_cents.unwrap_or(0);
        let refunded: i64 = self.returns.values().map(|&c| if c < 0 { total } else { c }).sum();
        refunded.min(total)
    }

    pub fn wholly_refunded(&self) -> bool {
        if self.returns.is_empty() {
            return false;
        }
        if self.returns.values().any(|&c| c < 0) {
            return true;
        }
        let total = self.total_cents.unwrap_or(0);
        total > 0 && self.returned_cents() >= total
    }

    pub fn kept(&self) -> bool {
        self.active() && !self.wholly_refunded()
    }

    pub fn counts(&self, rule: Rule) -> bool {
        match rule {
            Rule::Kept => self.kept(),
            Rule::Placed => self.active(),
        }
    }

    pub fn net_cents(&self) -> i64 {
        if !self.active() {
            return 0;
        }
        self.total_cents.unwrap_or(0) - self.returned_cents()
    }
}

pub type Reclassified = (String, String, String, String, i64, String);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonState {
    pub person_id: String,
    pub version: i64,
    pub ids: BTreeSet<String>,
    pub orders: BTreeMap<String, OrderRecord>,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub email: BTreeMap<String, i64>,
    pub last_email_engagement: Option<i64>,
    /// purpose -> (granted, at)
    pub consent: BTreeMap<String, (bool, i64)>,
    pub contacts: BTreeMap<String, i64>,
    pub channels: BTreeSet<String>,
    pub absorbed: BTreeSet<String>,
    pub interests: BTreeMap<String, i64>,
    pub reclassified: Vec<Reclassified>,
    pub rule: Rule,
}

impl PersonState {
    pub fn new(person_id: &str, rule: Rule) -> Self {
        PersonState {
            person_id: person_id.to_owned(),
            version: 0,
            ids: BTreeSet::new(),
            orders: BTreeMap::new(),
            first_seen: None,
            last_seen: None,
            email: BTreeMap::new(),
            last_email_engagement: None,
            consent: BTreeMap::new(),
            contacts: BTreeMap::new(),
            channels: BTreeSet::new(),
            absorbed: BTreeSet::new(),
            interests: BTreeMap::new(),
            reclassified: Vec::new(),
            rule,
        }
    }

    /// The three most viewed product categories, most viewed first.
    pub fn top_interests(&self) -> Vec<String> {
        let mut ranked: Vec<(&String, &i64)> = self.interests.iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        ranked.into_iter().take(3).map(|(c, _)| c.clone()).collect()
    }

    /// Current consent per purpose.
    pub fn consent_flags(&self) -> BTreeMap<String, bool> {
        self.consent.iter().map(|(p, (g, _))| (p.clone(), *g)).collect()
    }
}

// --- the stored form ------------------------------------------------------------------------
// Packed bytes, as `bestand.profile.stored` writes them (its docstring has the layout); a blob
// that starts with `{` is the JSON of earlier releases and is still read.

const PACKED: u8 = 3;
/// The first byte of a packed state whose currencies and channels are text (earlier releases).
const PACKED_TEXTS: u8 = 2;
/// The first byte of a packed state whose identifiers hold 16 bytes (earlier releases).
const PACKED_16: u8 = 1;
/// Currencies and channels kept as their place (from 1) in these tables (`stored.CURRENCIES`,
/// `stored.CHANNELS`); any other as 0 and the text.
const CURRENCIES: [&str; 9] = ["EUR", "USD", "GBP", "CHF", "PLN", "SEK", "DKK", "NOK", "CZK"];
const CHANNELS: [&str; 6] = ["web", "app", "store", "phone", "email", "chat"];

fn coded(out: &mut Vec<u8>, value: &str, table: &[&str]) {
    match table.iter().position(|known| *known == value) {
        Some(i) => out.push(i as u8 + 1),
        None => {
            out.push(0);
            text(out, value);
        }
    }
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7F) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn int(out: &mut Vec<u8>, value: i64) {
    varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

fn text(out: &mut Vec<u8>, value: &str) {
    varint(out, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
}

/// A keyed identifier (`k:` and 16 base64url characters of 12 bytes) as its letter and the
/// bytes; any other text as 0 and the text.
fn token(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    if bytes.len() == 18 && bytes[1] == b':' && bytes[0].is_ascii_lowercase() {
        if let Ok(raw) = URL_SAFE_NO_PAD.decode(&bytes[2..]) {
            if raw.len() == 12 && URL_SAFE_NO_PAD.encode(&raw).as_bytes() == &bytes[2..] {
                out.push(bytes[0]);
                out.extend_from_slice(&raw);
                return;
            }
        }
    }
    out.push(0);
    text(out, value);
}

fn counts(out: &mut Vec<u8>, values: &BTreeMap<String, i64>) {
    varint(out, values.len() as u64);
    for (key, value) in values {
        text(out, key);
        int(out, *value);
    }
}

fn texts(out: &mut Vec<u8>, values: &BTreeSet<String>) {
    varint(out, values.len() as u64);
    for value in values {
        text(out, value);
    }
}

fn some_text(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

fn bits(present: &[bool]) -> u64 {
    present.iter().enumerate().filter(|(_, there)| **there).map(|(bit, _)| 1u64 << bit).sum()
}

fn order(out: &mut Vec<u8>, o: &OrderRecord) {
    let (currency, channel, cls) = (some_text(&o.currency), some_text(&o.channel), some_text(&o.cls));
    let named = [some_text(&o.campaign), some_text(&o.affiliate), some_text(&o.coupon)];
    let present = [
        o.total_cents.is_some(),
        currency.is_some(),
        channel.is_some(),
        o.at.is_some(),
        o.cancelled,
        !o.returns.is_empty(),
        cls.is_some(),
        named[0].is_some(),
        named[1].is_some(),
        named[2].is_some(),
    ];
    varint(out, bits(&present));
    if let Some(total) = o.total_cents {
        int(out, total);
    }
    if let Some(value) = currency {
        coded(out, value, &CURRENCIES);
    }
    if let Some(value) = channel {
        coded(out, value, &CHANNELS);
    }
    if let Some(at) = o.at {
        int(out, at);
    }
    if present[5] {
        counts(out, &o.returns);
    }
    match cls {
        None => {}
        Some("new") => out.push(1),
        Some("existing") => out.push(2),
        Some(other) => {
            out.push(0);
            text(out, other);
        }
    }
    for value in named.into_iter().flatten() {
        text(out, value);
    }
}

/// The stored form of a state (`dump_state`).
pub fn dump_state(state: &PersonState) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + 25 * state.ids.len() + 40 * state.orders.len());
    out.push(PACKED);
    varint(&mut out, state.version as u64);
    let times = [state.first_seen, state.last_seen, state.last_email_engagement];
    let present = [
        !state.ids.is_empty(),
        !state.orders.is_empty(),
        times[0].is_some(),
        times[1].is_some(),
        times[2].is_some(),
        !state.email.is_empty(),
        !state.consent.is_empty(),
        !state.contacts.is_empty(),
        !state.channels.is_empty(),
        !state.absorbed.is_empty(),
        !state.interests.is_empty(),
        !state.reclassified.is_empty(),
    ];
    varint(&mut out, bits(&present));
    if present[0] {
        varint(&mut out, state.ids.len() as u64);
        for id in &state.ids {
            token(&mut out, id);
        }
    }
    if present[1] {
        varint(&mut out, state.orders.len() as u64);
        for (order_id, o) in &state.orders {
            text(&mut out, order_id);
            order(&mut out, o);
        }
    }
    for time in times.into_iter().flatten() {
        int(&mut out, time);
    }
    if present[5] {
        counts(&mut out, &state.email);
    }
    if present[6] {
        varint(&mut out, state.consent.len() as u64);
        for (purpose, (granted, at)) in &state.consent {
            text(&mut out, purpose);
            out.push(u8::from(*granted));
            int(&mut out, *at);
        }
    }
    if present[7] {
        counts(&mut out, &state.contacts);
    }
    if present[8] {
        varint(&mut out, state.channels.len() as u64);
        for channel in &state.channels {
            coded(&mut out, channel, &CHANNELS);
        }
    }
    if present[9] {
        texts(&mut out, &state.absorbed);
    }
    if present[10] {
        counts(&mut out, &state.interests);
    }
    if present[11] {
        varint(&mut out, state.reclassified.len() as u64);
        for (order_id, before, after, event_id, at, reason) in &state.reclassified {
            for value in [order_id, before, after, event_id] {
                text(&mut out, value);
            }
            int(&mut out, *at);
            text(&mut out, reason);
        }
    }
    out
}

/// Reads the parts of a packed state in order.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
    /// Bytes of a keyed identifier: 16 in a state of earlier releases, read cut to 12.
    width: usize,
    /// Currencies and channels as their tables' codes (not in earlier releases' states).
    coded: bool,
}

const SHORT: &str = "a packed state ends early";

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let byte = *self.data.get(self.at).ok_or(SHORT)?;
        self.at += 1;
        Ok(byte)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let (mut value, mut shift) = (0u64, 0u32);
        loop {
            let byte = self.byte()?;
            if shift > 63 {
                return Err("a packed state has a number too long".into());
            }
            value |= u64::from(byte & 0x7F) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    fn int(&mut self) -> Result<i64, String> {
        let value = self.varint()?;
        Ok(((value >> 1) as i64) ^ -((value & 1) as i64))
    }

    fn bytes(&mut self, length: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(length).filter(|end| *end <= self.data.len()).ok_or(SHORT)?;
        let slice = &self.data[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn text(&mut self) -> Result<String, String> {
        let length = self.varint()? as usize;
        let bytes = self.bytes(length)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())
    }

    fn token(&mut self) -> Result<String, String> {
        match self.byte()? {
            0 => self.text(),
            kind => {
                let raw = self.bytes(self.width)?;
                Ok(format!("{}:{}", kind as char, URL_SAFE_NO_PAD.encode(&raw[..12])))
            }
        }
    }

    fn counts(&mut self) -> Result<BTreeMap<String, i64>, String> {
        let mut out = BTreeMap::new();
        for _ in 0..self.varint()? {
            let key = self.text()?;
            out.insert(key, self.int()?);
        }
        Ok(out)
    }

    /// A value kept as its place in `table` (or 0 and the text); text in earlier forms.
    fn coded_text(&mut self, table: &[&str]) -> Result<String, String> {
        if !self.coded {
            return self.text();
        }
        match self.byte()? as usize {
            0 => self.text(),
            code if code <= table.len() => Ok(table[code - 1].to_owned()),
            _ => Err("a packed state has an unknown code".into()),
        }
    }

    fn texts(&mut self) -> Result<BTreeSet<String>, String> {
        let mut out = BTreeSet::new();
        for _ in 0..self.varint()? {
            out.insert(self.text()?);
        }
        Ok(out)
    }

    fn order(&mut self) -> Result<OrderRecord, String> {
        let fields = self.varint()?;
        let has = |bit: u32| fields & (1 << bit) != 0;
        let mut o = OrderRecord::default();
        if has(0) {
            o.total_cents = Some(self.int()?);
        }
        if has(1) {
            o.currency = Some(self.coded_text(&CURRENCIES)?);
        }
        if has(2) {
            o.channel = Some(self.coded_text(&CHANNELS)?);
        }
        if has(3) {
            o.at = Some(self.int()?);
        }
        o.cancelled = has(4);
        if has(5) {
            o.returns = self.counts()?;
        }
        if has(6) {
            o.cls = Some(match self.byte()? {
                1 => "new".to_owned(),
                2 => "existing".to_owned(),
                _ => self.text()?,
            });
        }
        if has(7) {
            o.campaign = Some(self.text()?);
        }
        if has(8) {
            o.affiliate = Some(self.text()?);
        }
        if has(9) {
            o.coupon = Some(self.text()?);
        }
        Ok(o)
    }
}

fn unpack(state: &mut PersonState, data: &[u8]) -> Result<(), String> {
    let width = if data[0] == PACKED_16 { 16 } else { 12 };
    let mut r = Reader { data, at: 1, width, coded: data[0] == PACKED };
    state.version = r.varint()? as i64;
    let parts = r.varint()?;
    let has = |bit: u32| parts & (1 << bit) != 0;
    if has(0) {
        for _ in 0..r.varint()? {
            state.ids.insert(r.token()?);
        }
    }
    if has(1) {
        for _ in 0..r.varint()? {
            let order_id = r.text()?;
            let o = r.order()?;
            state.orders.insert(order_id, o);
        }
    }
    if has(2) {
        state.first_seen = Some(r.int()?);
    }
    if has(3) {
        state.last_seen = Some(r.int()?);
    }
    if has(4) {
        state.last_email_engagement = Some(r.int()?);
    }
    if has(5) {
        state.email = r.counts()?;
    }
    if has(6) {
        for _ in 0..r.varint()? {
            let purpose = r.text()?;
            let granted = r.byte()? != 0;
            state.consent.insert(purpose, (granted, r.int()?));
        }
    }
    if has(7) {
        state.contacts = r.counts()?;
    }
    if has(8) {
        for _ in 0..r.varint()? {
            state.channels.insert(r.coded_text(&CHANNELS)?);
        }
    }
    if has(9) {
        state.absorbed = r.texts()?;
    }
    if has(10) {
        state.interests = r.counts()?;
    }
    if has(11) {
        for _ in 0..r.varint()? {
            let (order_id, before, after, event_id) = (r.text()?, r.text()?, r.text()?, r.text()?);
            let at = r.int()?;
            state.reclassified.push((order_id, before, after, event_id, at, r.text()?));
        }
    }
    if r.at != data.len() {
        return Err("a packed state has bytes after its last part".into());
    }
    Ok(())
}

// The JSON of earlier releases, as read: every part may be missing.

#[derive(Deserialize, Default)]
#[serde(default)]
struct StoredOrder {
    af: Option<String>,
    at: Option<i64>,
    c: Option<String>,
    ch: Option<String>,
    co: Option<String>,
    cp: Option<String>,
    cu: Option<String>,
    r: BTreeMap<String, i64>,
    t: Option<i64>,
    #[serde(deserialize_with = "truthy")]
    x: bool,
}

/// `"x": 1` for a cancelled order (any truthy value reads as cancelled).
fn truthy<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(match value {
        serde_json::Value::Null => false,
        serde_json::Value::Bool(b) => b,
        serde_json::Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        serde_json::Value::String(s) => !s.is_empty(),
        serde_json::Value::Array(a) => !a.is_empty(),
        serde_json::Value::Object(o) => !o.is_empty(),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Stored {
    ab: Vec<String>,
    chn: Vec<String>,
    cs: BTreeMap<String, (i64, i64)>,
    ct: BTreeMap<String, i64>,
    em: BTreeMap<String, i64>,
    fs: Option<i64>,
    ids: Vec<String>,
    #[serde(rename = "in")]
    interests: BTreeMap<String, i64>,
    le: Option<i64>,
    ls: Option<i64>,
    o: BTreeMap<String, StoredOrder>,
    rc: Vec<Reclassified>,
    v: i64,
}

/// Read a stored state (`load_state`); `None` or empty gives a new, empty person.
pub fn load_state(person_id: &str, blob: Option<&[u8]>, rule: Rule) -> Result<PersonState, String> {
    let blob = match blob {
        Some(b) if !b.is_empty() => b,
        _ => return Ok(PersonState::new(person_id, rule)),
    };
    let mut state = PersonState::new(person_id, rule);
    if blob[0] != b'{' {
        if ![PACKED, PACKED_TEXTS, PACKED_16].contains(&blob[0]) {
            return Err("not a packed state".into());
        }
        unpack(&mut state, blob)?;
        return Ok(state);
    }
    let stored: Stored = serde_json::from_slice(blob).map_err(|e| e.to_string())?;
    state.version = stored.v;
    state.ids = stored.ids.into_iter().collect();
    state.orders = stored
        .o
        .into_iter()
        .map(|(oid, o)| {
            let record = OrderRecord {
                total_cents: o.t,
                currency: o.cu,
                channel: o.ch,
                at: o.at,
                cancelled: o.x,
                returns: o.r,
                cls: o.c,
                campaign: o.cp,
                affiliate: o.af,
                coupon: o.co,
            };
            (oid, record)
        })
        .collect();
    state.first_seen = stored.fs;
    state.last_seen = stored.ls;
    state.email = stored.em;
    state.last_email_engagement = stored.le;
    state.consent = stored.cs.into_iter().map(|(p, (g, at))| (p, (g != 0, at))).collect();
    state.contacts = stored.ct;
    state.channels = stored.chn.into_iter().collect();
    state.absorbed = stored.ab.into_iter().collect();
    state.interests = stored.interests;
    state.reclassified = stored.rc;
    Ok(state)
}
