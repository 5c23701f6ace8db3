//! `apply(state, event)`, `merge(a, b)` and order classification: `bestand.profile.reducer`
//! and `bestand.profile.classify`, the same results.

use std::collections::BTreeMap;

use crate::fold::looked_up;
use crate::state::{OrderRecord, PersonState, Rule, MAX_INTERESTS};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Click,
    Order,
    Email,
    Identify,
    Consent,
    Erasure,
    Contact,
    Detach,
    Release,
}

impl Kind {
    pub fn parse(name: &str) -> Option<Kind> {
        Some(match name {
            "click" => Kind::Click,
            "order" => Kind::Order,
            "email" => Kind::Email,
            "identify" => Kind::Identify,
            "consent" => Kind::Consent,
            "erasure" => Kind::Erasure,
            "contact" => Kind::Contact,
            "detach" => Kind::Detach,
            "release" => Kind::Release,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Placed,
    Cancelled,
    Returned,
    Refunded,
}

#[derive(Clone, Debug)]
pub struct OrderFacts {
    pub order_id: String,
    pub status: Status,
    pub total_cents: Option<i64>,
    pub returned_cents: Option<i64>,
    pub currency: Option<String>,
    pub channel: Option<String>,
    /// attribution.campaign or attribution.utm_campaign (None without attribution)
    pub campaign: Option<String>,
    pub affiliate: Option<String>,
    pub coupon: Option<String>,
}

/// A resolved event: what person state needs of it.
#[derive(Clone, Debug)]
pub struct Event {
    pub event_id: String,
    pub at: i64,
    pub kind: Kind,
    pub person_id: String,
    pub identifiers: Vec<String>,
    pub absorbed: Vec<String>,
    pub order: Option<OrderFacts>,
    pub email_type: Option<String>,
    /// purpose -> granted, in the event's order
    pub consent: Option<Vec<(String, bool)>>,
    pub contact_channel: Option<String>,
    pub category: Option<String>,
    /// cookies and device ids the event took over from another person
    pub claimed: Vec<String>,
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (None, b) => b,
        (a, None) => a,
        (Some(a), Some(b)) => Some(a.min(b)),
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (None, b) => b,
        (a, None) => a,
        (Some(a), Some(b)) => Some(a.max(b)),
    }
}

/// The later statement wins; at the same second a withdrawal wins over a grant.
fn newer_consent(current: Option<(bool, i64)>, granted: bool, at: i64) -> (bool, i64) {
    match current {
        Some(c) if !(at > c.1 || (at == c.1 && !granted)) => c,
        _ => (granted, at),
    }
}

fn with_consent(consent: &mut BTreeMap<String, (bool, i64)>, changes: &[(String, bool)], at: i64) {
    for (purpose, granted) in changes {
        let now = newer_consent(consent.get(purpose).copied(), *granted, at);
        consent.insert(purpose.clone(), now);
    }
}

fn email_counter(email_type: &str) -> Option<&'static str> {
    Some(match email_type {
        "email_sent" => "sent",
        "email_delivered" => "delivered",
        "email_opened" => "opened",
        "email_clicked" => "clicked",
        "email_bounced" => "bounced",
        "email_unsubscribed" => "unsubscribed",
        _ => return None,
    })
}

fn apply_order(order: Option<&OrderRecord>, facts: &OrderFacts, event_id: &str, at: i64) -> OrderRecord {
    let mut order = order.cloned().unwrap_or_default();
    match facts.status {
        Status::Placed => {
            order.total_cents = facts.total_cents;
            order.currency = facts.currency.clone();
            order.channel = facts.channel.clone();
            order.campaign = facts.campaign.clone();
            order.affiliate = facts.affiliate.clone();
            order.coupon = facts.coupon.clone();
            // The earliest placement time wins, so a redelivery cannot move the order.
            order.at = min_opt(order.at, Some(at));
        }
        Status::Cancelled => order.cancelled = true,
        Status::Returned | Status::Refunded => {
            order.returns.insert(event_id.to_owned(), facts.returned_cents.unwrap_or(-1));
        }
    }
    order
}

fn count_interest(interests: &mut BTreeMap<String, i64>, category: &str) {
    match interests.get_mut(category) {
        Some(count) => *count += 1,
        None => {
            interests.insert(category.to_owned(), 1);
        }
    }
    while interests.len() > MAX_INTERESTS {
        let least = interests
            .iter()
            .min_by(|a, b| a.1.cmp(b.1).then_with(|| a.0.cmp(b.0)))
            .map(|(c, _)| c.clone())
            .expect("not empty");
        interests.remove(&least);
    }
}

/// Apply one resolved event to a person's state.
pub fn apply(state: &PersonState, event: &Event) -> PersonState {
    let mut new = state.clone();
    apply_in_place(&mut new, event);
    new
}

/// Apply one resolved event to a person's state, in place.
pub fn apply_in_place(state: &mut PersonState, event: &Event) {
    if event.kind == Kind::Release {
        // A cookie or device id moved to another person: this one was not seen by it.
        for token in &event.identifiers {
            state.ids.remove(token);
        }
        return;
    }
    let at = event.at;
    if event.kind == Kind::Detach {
        for token in &event.identifiers {
            state.ids.remove(token);
        }
    } else {
        // Only identifiers with a lookup record (`reducer.py`): order ids, names and
        // fingerprints have none.
        for token in &event.identifiers {
            if looked_up(token) && !state.ids.contains(token) {
                state.ids.insert(token.clone());
            }
        }
    }
    state.first_seen = min_opt(state.first_seen, Some(at));
    state.last_seen = max_opt(state.last_seen, Some(at));
    let mut orders_changed = false;
    match event.kind {
        Kind::Order if event.order.is_some() => {
            let facts = event.order.as_ref().expect("checked");
            let order = apply_order(state.orders.get(&facts.order_id), facts, &event.event_id, at);
            state.orders.insert(facts.order_id.clone(), order);
            orders_changed = true;
            if let Some(channel) = facts.channel.as_ref().filter(|c| !c.is_empty()) {
                if !state.channels.contains(channel) {
                    state.channels.insert(channel.clone());
                }
            }
        }
        Kind::Email if event.email_type.is_some() => {
            let email_type = event.email_type.as_deref().expect("checked");
            if let Some(counter) = email_counter(email_type) {
                *state.email.entry(counter.to_owned()).or_insert(0) += 1;
            }
            if !state.channels.contains("email") {
                state.channels.insert("email".to_owned());
            }
            if email_type == "email_opened" || email_type == "email_clicked" {
                state.last_email_engagement = max_opt(state.last_email_engagement, Some(at));
            }
            if email_type == "email_unsubscribed" {
                with_consent(&mut state.consent, &[("email".to_owned(), false)], at);
            }
        }
        Kind::Consent if event.consent.as_ref().is_some_and(|c| !c.is_empty()) => {
            with_consent(&mut state.consent, event.consent.as_ref().expect("checked"), at);
        }
        Kind::Contact if event.contact_channel.as_ref().is_some_and(|c| !c.is_empty()) => {
            let channel = event.contact_channel.as_ref().expect("checked");
            *state.contacts.entry(channel.clone()).or_insert(0) += 1;
            if !state.channels.contains(channel) {
                state.channels.insert(channel.clone());
            }
        }
        Kind::Click => {
            if !state.channels.contains("web") {
                state.channels.insert("web".to_owned());
            }
            if let Some(category) = event.category.as_deref().filter(|c| !c.is_empty()) {
                count_interest(&mut state.interests, category);
            }
        }
        _ => {}
    }
    if orders_changed {
        reclassify_state(state, &event.event_id, at, "order events arrived late or changed");
    }
}

/// The classification of every placed order as of what is known now, in (at, id) order.
pub fn classify(orders: &BTreeMap<String, OrderRecord>, rule: Rule) -> Vec<(String, &'static str)> {
    let mut placed: Vec<(i64, &String)> =
        orders.iter().filter_map(|(oid, o)| o.at.map(|at| (at, oid))).collect();
    placed.sort();
    let mut out = Vec::with_capacity(placed.len());
    let mut kept_before = false;
    for (_, oid) in placed {
        out.push((oid.clone(), if kept_before { "existing" } else { "new" }));
        kept_before = kept_before || orders[oid].counts(rule);
    }
    out
}

/// Record first classifications and the changes against the current knowledge.
fn reclassify_state(state: &mut PersonState, event_id: &str, at: i64, reason: &str) {
    for (oid, now) in classify(&state.orders, state.rule) {
        let order = state.orders.get_mut(&oid).expect("classified orders exist");
        if order.cls.as_deref() == Some(now) {
            continue;
        }
        if let Some(before) = order.cls.take() {
            state.reclassified.push((
                oid.clone(),
                before,
                now.to_owned(),
                event_id.to_owned(),
                at,
                reason.to_owned(),
            ));
        }
        order.cls = Some(now.to_owned());
    }
}

fn merge_order(a: &OrderRecord, b: &OrderRecord) -> OrderRecord {
    fn either(a: &Option<String>, b: &Option<String>) -> Option<String> {
        if a.as_deref().is_some_and(|s| !s.is_empty()) {
            a.clone()
        } else {
            b.clone()
        }
    }
    let mut returns = b.returns.clone();
    returns.extend(a.returns.iter().map(|(k, v)| (k.clone(), *v)));
    OrderRecord {
        total_cents: a.total_cents.or(b.total_cents),
        currency: either(&a.currency, &b.currency),
        channel: either(&a.channel, &b.channel),
        at: min_opt(a.at, b.at),
        cancelled: a.cancelled || b.cancelled,
        returns,
        cls: either(&a.cls, &b.cls),
        campaign: either(&a.campaign, &b.campaign),
        affiliate: either(&a.affiliate, &b.affiliate),
        coupon: either(&a.coupon, &b.coupon),
    }
}

fn add_counts(a: &BTreeMap<String, i64>, b: &BTreeMap<String, i64>) -> BTreeMap<String, i64> {
    let mut out = a.clone();
    for (k, v) in b {
        *out.entry(k.clone()).or_insert(0) += v;
    }
    out
}

fn top(interests: BTreeMap<String, i64>) -> BTreeMap<String, i64> {
    let mut ranked: Vec<(String, i64)> = interests.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(MAX_INTERESTS);
    ranked.into_iter().collect()
}

/// Fold an absorbed person into the survivor; orders unite by order id, never twice.
pub fn merge(survivor: &PersonState, absorbed: &PersonState, event_id: &str, at: i64) -> PersonState {
    if survivor.absorbed.contains(&absorbed.person_id) || absorbed.person_id == survivor.person_id {
        return survivor.clone();
    }
    let mut orders = absorbed.orders.clone();
    for (oid, order) in &survivor.orders {
        let merged = match orders.get(oid) {
            Some(other) => merge_order(order, other),
            None => order.clone(),
        };
        orders.insert(oid.clone(), merged);
    }
    let mut consent = survivor.consent.clone();
    for (purpose, (granted, when)) in &absorbed.consent {
        let now = newer_consent(consent.get(purpose).copied(), *granted, *when);
        consent.insert(purpose.clone(), now);
    }
    let mut merged = survivor.clone();
    merged.version = survivor.version.max(absorbed.version);
    merged.ids.extend(absorbed.ids.iter().cloned());
    merged.orders = orders;
    merged.first_seen = min_opt(survivor.first_seen, absorbed.first_seen);
    merged.last_seen = max_opt(survivor.last_seen, absorbed.last_seen);
    merged.email = add_counts(&survivor.email, &absorbed.email);
    merged.last_email_engagement =
        max_opt(survivor.last_email_engagement, absorbed.last_email_engagement);
    merged.consent = consent;
    merged.contacts = add_counts(&survivor.contacts, &absorbed.contacts);
    merged.channels.extend(absorbed.channels.iter().cloned());
    merged.interests = top(add_counts(&survivor.interests, &absorbed.interests));
    merged.absorbed.extend(absorbed.absorbed.iter().cloned());
    merged.absorbed.insert(absorbed.person_id.clone());
    merged.reclassified.extend(absorbed.reclassified.iter().cloned());
    let reason = format!("merged with person {}", absorbed.person_id);
    reclassify_state(&mut merged, event_id, at, &reason);
    merged
}
