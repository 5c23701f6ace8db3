//! The lookup record of a person and the profile changes between two of them:
//! `bestand.profile.summary` (`of`, `packed`, `same_answer`), `channels`, `lifecycle`,
//! `changes` and `markers`, the same results.

use std::collections::BTreeMap;

use crate::state::{OrderRecord, PersonState, Rule};

const SEP: &str = "\x1f";
const RECORD_SEP: char = '\x1e';
const PREFERENCE: [&str; 4] = ["email", "phone", "store", "chat"];
const DAY: i64 = 86_400;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub person_id: String,
    pub version: i64,
    pub orders_count: i64,
    pub first_order_at: Option<i64>,
    pub last_order_at: Option<i64>,
    pub consent: BTreeMap<String, bool>,
    pub previous_order_at: Option<i64>,
    pub preferred_channel: Option<String>,
    pub revenue_cents: i64,
    pub interests: Vec<String>,
}

fn preferred_channel(
    state: &PersonState,
    kept: &[&OrderRecord],
    consent: &BTreeMap<String, bool>,
) -> Option<String> {
    let email = &state.email;
    let get = |key: &str| email.get(key).copied().unwrap_or(0);
    let mut score: BTreeMap<&str, i64> = BTreeMap::new();
    score.insert("email", get("opened") + 2 * get("clicked"));
    for (channel, count) in &state.contacts {
        *score.entry(channel.as_str()).or_insert(0) += 2 * count;
    }
    for order in kept {
        if let Some(channel) = order.channel.as_deref() {
            if channel == "phone" || channel == "store" {
                *score.entry(channel).or_insert(0) += 1;
            }
        }
    }
    if consent.get("email") == Some(&false) || get("bounced") > 0 {
        score.insert("email", 0);
    }
    if consent.get("phone") == Some(&false) {
        score.insert("phone", 0);
    }
    let mut best: Option<&str> = None;
    let mut points = 0;
    for channel in PREFERENCE {
        let value = score.get(channel).copied().unwrap_or(0);
        if value > points {
            best = Some(channel);
            points = value;
        }
    }
    best.map(str::to_owned)
}

fn purpose_code(purpose: &str) -> Option<char> {
    Some(match purpose {
        "email" => 'e',
        "sms" => 's',
        "phone" => 'p',
        "ads" => 'a',
        "personalization" => 'z',
        _ => return None,
    })
}

fn consent_code(consent: &BTreeMap<String, bool>) -> String {
    let mut out = String::with_capacity(consent.len() * 2);
    for (purpose, granted) in consent {
        // Purposes are validated upstream; an unknown one has no code (Python raises).
        if let Some(code) = purpose_code(purpose) {
            out.push(code);
            out.push(if *granted { '1' } else { '0' });
        }
    }
    out
}

/// An integer in base 36 (`summary.py` `_b36`).
fn b36(number: i64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if number < 0 {
        return format!("-{}", b36(number.checked_neg().unwrap_or(i64::MAX)));
    }
    let mut n = number as u64;
    let mut out = Vec::with_capacity(8);
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn opt_text(value: Option<i64>) -> String {
    value.map(b36).unwrap_or_default()
}

impl Summary {
    pub fn existing_customer(&self) -> bool {
        self.orders_count > 0
    }

    /// The summary of a person's state, in one pass over its orders.
    pub fn of(state: &PersonState) -> Summary {
        let mut kept: Vec<&OrderRecord> = Vec::new();
        let mut times: Vec<i64> = Vec::new();
        let mut revenue = 0;
        let placed_rule = state.rule == Rule::Placed;
        for order in state.orders.values() {
            let Some(at) = order.at else { continue };
            if order.cancelled {
                continue;
            }
            if !order.returns.is_empty() {
                revenue += order.net_cents();
                if !placed_rule && order.wholly_refunded() {
                    continue;
                }
            } else {
                revenue += order.total_cents.unwrap_or(0);
            }
            kept.push(order);
            times.push(at);
        }
        times.sort_unstable();
        let consent = state.consent_flags();
        let n = times.len();
        Summary {
            person_id: state.person_id.clone(),
            version: state.version,
            orders_count: n as i64,
            first_order_at: times.first().copied(),
            last_order_at: times.last().copied(),
            previous_order_at: if n >= 2 { Some(times[n - 2]) } else { None },
            preferred_channel: preferred_channel(state, &kept, &consent),
            consent,
            revenue_cents: revenue,
            interests: state.top_interests(),
        }
    }

    /// Both answer a lookup alike, the version aside.
    pub fn same_answer(&self, other: Option<&Summary>) -> bool {
        let Some(other) = other else { return false };
        let channel = |s: &Summary| s.preferred_channel.clone().filter(|c| !c.is_empty());
        self.orders_count == other.orders_count
            && self.last_order_at == other.last_order_at
            && self.person_id == other.person_id
            && self.first_order_at == other.first_order_at
            && self.previous_order_at == other.previous_order_at
            && channel(self) == channel(other)
            && self.revenue_cents == other.revenue_cents
            && self.interests == other.interests
            && self.consent == other.consent
    }

    /// The record as Redis keeps it (`LookupSummary.packed`).
    pub fn packed(&self) -> String {
        let values = [
            self.person_id.clone(),
            self.version.to_string(),
            format!("~{}", b36(self.orders_count)),
            opt_text(self.first_order_at),
            opt_text(self.last_order_at),
            opt_text(self.previous_order_at),
            self.preferred_channel.clone().unwrap_or_default(),
            if self.revenue_cents != 0 { b36(self.revenue_cents) } else { String::new() },
            self.interests.join(SEP),
            consent_code(&self.consent),
        ];
        let mut out = values.join("\x1e");
        let trimmed = out.trim_end_matches(RECORD_SEP).len();
        out.truncate(trimmed);
        out
    }
}

/// Thresholds of the lifecycle stages.
#[derive(Clone, Copy, Debug)]
pub struct LifecycleRules {
    pub repeat_min_orders: i64,
    pub loyal_min_orders: i64,
    pub at_risk_after_days: i64,
    pub lapsed_after_days: i64,
}

pub fn lifecycle_stage(
    orders_count: i64,
    last_order_at: Option<i64>,
    now: i64,
    rules: &LifecycleRules,
    previous_order_at: Option<i64>,
) -> &'static str {
    let Some(last) = last_order_at else { return "prospect" };
    if orders_count <= 0 {
        return "prospect";
    }
    let since = now - last;
    if since > rules.lapsed_after_days * DAY {
        return "lapsed";
    }
    if since > rules.at_risk_after_days * DAY {
        return "at_risk";
    }
    if let Some(previous) = previous_order_at {
        if last - previous > rules.lapsed_after_days * DAY {
            return "reactivated";
        }
    }
    if orders_count >= rules.loyal_min_orders {
        return "loyal";
    }
    if orders_count >= rules.repeat_min_orders {
        return "repeat";
    }
    "first_time"
}

/// One change of a person's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub change: String,
    pub existing_customer: Option<bool>,
    pub orders_count: Option<i64>,
    pub stage_before: Option<String>,
    pub stage_after: Option<String>,
    pub absorbed: Vec<String>,
}

fn stage(summary: Option<&Summary>, now: i64, rules: &LifecycleRules) -> &'static str {
    match summary {
        None => "prospect",
        Some(s) => {
            lifecycle_stage(s.orders_count, s.last_order_at, now, rules, s.previous_order_at)
        }
    }
}

/// Changes between the answer before and after an event (`profile_changes`).
pub fn profile_changes(
    before: Option<&Summary>,
    after: &Summary,
    now: i64,
    rules: &LifecycleRules,
    absorbed: &[String],
) -> Vec<Change> {
    if absorbed.is_empty() {
        if let Some(b) = before {
            if b.orders_count == after.orders_count
                && b.last_order_at == after.last_order_at
                && b.previous_order_at == after.previous_order_at
            {
                return Vec::new();
            }
        }
    }
    let was = before.is_some_and(Summary::existing_customer);
    let is = after.existing_customer();
    let (stage_before, stage_after) = (stage(before, now, rules), stage(Some(after), now, rules));
    let mut kinds: Vec<&str> = Vec::new();
    if !absorbed.is_empty() {
        kinds.push("merged");
    }
    if is && !was {
        kinds.push("became_customer");
    } else if was && !is {
        kinds.push("no_longer_customer");
    }
    if stage_before != stage_after {
        kinds.push("stage_changed");
    }
    kinds
        .into_iter()
        .map(|kind| Change {
            change: kind.to_owned(),
            existing_customer: Some(is),
            orders_count: Some(after.orders_count),
            stage_before: Some(stage_before.to_owned()),
            stage_after: Some(stage_after.to_owned()),
            absorbed: if kind == "merged" { absorbed.to_vec() } else { Vec::new() },
        })
        .collect()
}

type MarkerRow = (String, Option<bool>, Option<i64>, Option<String>, Option<String>, Vec<String>);

/// A dedupe marker: the content digest, then the changes the event caused (if any).
pub fn marker(digest: &str, changes: &[Change]) -> String {
    if changes.is_empty() {
        return digest.to_owned();
    }
    let rows: Vec<MarkerRow> = changes
        .iter()
        .map(|c| {
            (
                c.change.clone(),
                c.existing_customer,
                c.orders_count,
                c.stage_before.clone(),
                c.stage_after.clone(),
                c.absorbed.clone(),
            )
        })
        .collect();
    let json = serde_json::to_string(&rows).expect("rows serialize");
    format!("{digest} {json}")
}

/// The digest and the changes of a dedupe marker.
pub fn parse_marker(text: &str) -> Result<(String, Vec<Change>), String> {
    let (digest, rows) = match text.split_once(' ') {
        Some((d, r)) => (d, r),
        None => (text, ""),
    };
    if rows.is_empty() {
        return Ok((digest.to_owned(), Vec::new()));
    }
    let rows: Vec<MarkerRow> = serde_json::from_str(rows).map_err(|e| e.to_string())?;
    let changes = rows
        .into_iter()
        .map(|(change, existing_customer, orders_count, stage_before, stage_after, absorbed)| {
            Change { change, existing_customer, orders_count, stage_before, stage_after, absorbed }
        })
        .collect();
    Ok((digest.to_owned(), changes))
}

/// True when a dedupe marker matches the digest ('1': a marker written without one).
pub fn same_content(text: &str, digest: &str) -> bool {
    let head = text.split_once(' ').map_or(text, |(d, _)| d);
    head == "1" || head == digest
}
