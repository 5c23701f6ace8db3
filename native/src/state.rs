//! A person's state and its stored form: `bestand.profile.state`, byte for byte.
//!
//! The stored JSON is the one `dump_state` writes (short keys, empty parts left out, every
//! object's keys sorted), so Redis holds the same bytes whichever side wrote them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

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
// Fields are declared in sorted key order: serde writes them in declaration order, and
// `dump_state` sorts every object's keys.

fn is_false(value: &bool) -> bool {
    !*value
}

fn empty_text(value: &Option<String>) -> bool {
    value.as_deref().is_none_or(str::is_empty)
}

// The stored form as read: every part may be missing.

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
    #[serde(deserialize_with = "flag::deserialize")]
    x: bool,
}

/// `"x": 1` for a cancelled order (any truthy value reads as cancelled).
mod flag {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Only called for a cancelled order (false is skipped).
    pub fn serialize<S: Serializer>(_: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(1)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
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

/// A state as `dump_state` writes it, serialized from borrowed parts (nothing copied).
#[derive(Serialize)]
struct StoredRef<'a> {
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    ab: &'a BTreeSet<String>,
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    chn: &'a BTreeSet<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", serialize_with = "consent_out")]
    cs: &'a BTreeMap<String, (bool, i64)>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    ct: &'a BTreeMap<String, i64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    em: &'a BTreeMap<String, i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fs: Option<i64>,
    ids: &'a BTreeSet<String>,
    #[serde(rename = "in", skip_serializing_if = "BTreeMap::is_empty")]
    interests: &'a BTreeMap<String, i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    le: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ls: Option<i64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty", serialize_with = "orders_out")]
    o: &'a BTreeMap<String, OrderRecord>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rc: &'a Vec<Reclassified>,
    v: i64,
}

#[derive(Serialize)]
struct OrderRef<'a> {
    #[serde(skip_serializing_if = "empty_text")]
    af: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<i64>,
    #[serde(skip_serializing_if = "empty_text")]
    c: &'a Option<String>,
    #[serde(skip_serializing_if = "empty_text")]
    ch: &'a Option<String>,
    #[serde(skip_serializing_if = "empty_text")]
    co: &'a Option<String>,
    #[serde(skip_serializing_if = "empty_text")]
    cp: &'a Option<String>,
    #[serde(skip_serializing_if = "empty_text")]
    cu: &'a Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    r: &'a BTreeMap<String, i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    t: Option<i64>,
    #[serde(skip_serializing_if = "is_false", serialize_with = "flag::serialize")]
    x: bool,
}

fn consent_out<S: serde::Serializer>(
    consent: &&BTreeMap<String, (bool, i64)>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(consent.len()))?;
    for (purpose, (granted, at)) in consent.iter() {
        map.serialize_entry(purpose, &(i64::from(*granted), *at))?;
    }
    map.end()
}

fn orders_out<S: serde::Serializer>(
    orders: &&BTreeMap<String, OrderRecord>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(orders.len()))?;
    for (oid, o) in orders.iter() {
        let order = OrderRef {
            af: &o.affiliate,
            at: o.at,
            c: &o.cls,
            ch: &o.channel,
            co: &o.coupon,
            cp: &o.campaign,
            cu: &o.currency,
            r: &o.returns,
            t: o.total_cents,
            x: o.cancelled,
        };
        map.serialize_entry(oid, &order)?;
    }
    map.end()
}

/// The stored form of a state (`dump_state`).
pub fn dump_state(state: &PersonState) -> Vec<u8> {
    let stored = StoredRef {
        ab: &state.absorbed,
        chn: &state.channels,
        cs: &state.consent,
        ct: &state.contacts,
        em: &state.email,
        fs: state.first_seen,
        ids: &state.ids,
        interests: &state.interests,
        le: state.last_email_engagement,
        ls: state.last_seen,
        o: &state.orders,
        rc: &state.reclassified,
        v: state.version,
    };
    serde_json::to_vec(&stored).expect("a state always serializes")
}

/// Read a stored state (`load_state`); `None` or empty gives a new, empty person.
pub fn load_state(person_id: &str, blob: Option<&[u8]>, rule: Rule) -> Result<PersonState, String> {
    let blob = match blob {
        Some(b) if !b.is_empty() => b,
        _ => return Ok(PersonState::new(person_id, rule)),
    };
    let stored: Stored = serde_json::from_slice(blob).map_err(|e| e.to_string())?;
    let mut state = PersonState::new(person_id, rule);
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
