//! The worker's decoding of an input message, compiled for the messages it can vouch for:
//! what `bestand.events.decode.decode_timed`, `raw_identifiers` and `resolved_event` make of
//! them together, without a pydantic model per event.
//!
//! pydantic validates bestand's input contracts and stays the reference: this decoder takes
//! the plain shape of each event type (JSON strings where the contract has text, integers,
//! booleans, money as a decimal string of at most two places or an integer, times in the
//! RFC 3339 form) and answers `None` for anything else, a duplicate key, an unknown field,
//! a value pydantic would refuse or convert, an erasure. The worker then decodes that message
//! with pydantic, which accepts it or says why not. Whatever this decoder accepts, pydantic
//! accepts with the same values: the tests hold them to it on a shop's history, every rule's
//! edge and generated messages.

use std::fmt;

use foldhash::{HashMap, HashMapExt};
use pyo3::prelude::*;
use pyo3::types::{PyDateTime, PyDict, PyList, PyString, PyTuple, PyTzInfo};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::digest::Json;
use crate::reducer::{Event, Kind, OrderFacts, Status};
use crate::Facts;

/// A JSON value as far as the contracts need one; arrays and fractional numbers are kept
/// only as "there was one" (no field of a contract takes them in the plain shape).
enum J {
    Null,
    Bool(bool),
    Int(i64),
    Other,
    Str(String),
    Obj(Vec<(String, J)>),
}

impl<'de> Deserialize<'de> for J {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<J, D::Error> {
        deserializer.deserialize_any(JVisitor)
    }
}

struct JVisitor;

impl<'de> Visitor<'de> for JVisitor {
    type Value = J;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E: de::Error>(self) -> Result<J, E> {
        Ok(J::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<J, E> {
        Ok(J::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<J, E> {
        Ok(J::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<J, E> {
        Ok(i64::try_from(v).map(J::Int).unwrap_or(J::Other))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<J, E> {
        Ok(J::Other)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<J, E> {
        Ok(J::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<J, E> {
        Ok(J::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<J, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(J::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<J, A::Error> {
        let mut out: Vec<(String, J)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.iter().any(|(k, _)| *k == key) {
                // Which of the two counts is pydantic's to say.
                return Err(de::Error::custom("duplicate key"));
            }
            let value = map.next_value::<J>()?;
            out.push((key, value));
        }
        Ok(J::Obj(out))
    }
}

/// The fields of an object by name, in the order of `names`; `None` (not vouched for) for
/// a key the contract does not know.
fn fields<'a, const N: usize>(obj: &'a J, names: [&str; N]) -> Option<[Option<&'a J>; N]> {
    let J::Obj(entries) = obj else { return None };
    let mut out = [None; N];
    for (key, value) in entries {
        let at = names.iter().position(|name| name == key)?;
        out[at] = Some(value);
    }
    Some(out)
}

/// `None`: not vouched for; `Some(None)`: absent or null; `Some(Some(v))`: the value.
type Maybe<T> = Option<Option<T>>;

fn chars(text: &str) -> usize {
    if text.is_ascii() {
        text.len()
    } else {
        text.chars().count()
    }
}

/// An optional text that pydantic strips and bounds (`ShortText`: 256, `RawIdentifier`: 320).
fn stripped(value: Option<&J>, max: usize) -> Maybe<&str> {
    match value {
        None | Some(J::Null) => Some(None),
        Some(J::Str(text)) => {
            // pydantic-core strips with Rust's `trim` (Unicode White_Space).
            let text = text.trim();
            (!text.is_empty() && chars(text) <= max).then_some(Some(text))
        }
        Some(_) => None,
    }
}

/// An optional text kept as it came, at most `max` characters (`url`, `referrer`).
fn plain(value: Option<&J>, max: usize) -> Maybe<&str> {
    match value {
        None | Some(J::Null) => Some(None),
        Some(J::Str(text)) => (chars(text) <= max).then_some(Some(text.as_str())),
        Some(_) => None,
    }
}

fn required<T>(value: Maybe<T>) -> Option<T> {
    value.flatten()
}

const SHORT: usize = 256;
const RAW_ID: usize = 320;
const URL: usize = 2048;

/// `EventId`: short text without control characters (`normalize._CONTROL`).
fn event_id(value: Option<&J>) -> Option<&str> {
    let id = required(stripped(value, SHORT))?;
    let control = |c: char| matches!(c, '\x00'..='\x08' | '\x0b' | '\x0c' | '\x0e'..='\x1f' | '\x7f'..='\u{9f}');
    (!id.chars().any(control)).then_some(id)
}

/// One of the values of a `Literal`, exactly.
fn literal<'a>(value: Option<&'a J>, allowed: &[String]) -> Maybe<&'a str> {
    match value {
        None | Some(J::Null) => Some(None),
        Some(J::Str(text)) => among(allowed, text).then_some(Some(text.as_str())),
        Some(_) => None,
    }
}

/// A text of exactly `len` capital letters (`Currency`, an address's country).
fn capitals(value: Option<&J>, len: usize) -> Maybe<&str> {
    match value {
        None | Some(J::Null) => Some(None),
        Some(J::Str(text)) => {
            (text.len() == len && text.bytes().all(|b| b.is_ascii_uppercase())).then_some(Some(text.as_str()))
        }
        Some(_) => None,
    }
}

/// `Sha256`: stripped, 64 hexadecimal digits or 43 base64 characters and `=`.
fn sha256(value: Option<&J>) -> Maybe<&str> {
    let Some(text) = stripped(value, usize::MAX)? else { return Some(None) };
    let bytes = text.as_bytes();
    let hex = bytes.len() == 64 && bytes.iter().all(u8::is_ascii_hexdigit);
    let base64 = bytes.len() == 44
        && bytes[43] == b'='
        && bytes[..43].iter().all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/');
    (hex || base64).then_some(Some(text))
}

/// An optional integer in `low..=high` (JSON integers only).
fn integer(value: Option<&J>, low: i64, high: i64) -> Maybe<i64> {
    match value {
        None | Some(J::Null) => Some(None),
        Some(J::Int(n)) => (low..=high).contains(n).then_some(Some(*n)),
        Some(_) => None,
    }
}

fn boolean(value: Option<&J>, default: bool) -> Option<bool> {
    match value {
        None => Some(default),
        Some(J::Bool(b)) => Some(*b),
        Some(_) => None,
    }
}

/// `Money` in cents: a decimal string of at most two places without a leading zero, or a
/// JSON integer; at most 100,000,000.
fn money(value: Option<&J>) -> Maybe<i64> {
    const MAX_CENTS: i64 = 10_000_000_000;
    let cents = match value {
        None | Some(J::Null) => return Some(None),
        Some(J::Int(n)) => n.checked_mul(100)?,
        Some(J::Str(text)) => {
            let (whole, part) = match text.split_once('.') {
                Some((whole, part)) => (whole, Some(part)),
                None => (text.as_str(), None),
            };
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            if !digits(whole) || whole.len() > 9 || (whole.len() > 1 && whole.starts_with('0')) {
                return None;
            }
            let mut cents: i64 = whole.parse::<i64>().ok()? * 100;
            if let Some(part) = part {
                if !digits(part) || part.len() > 2 {
                    return None;
                }
                let n: i64 = part.parse().ok()?;
                cents += if part.len() == 1 { n * 10 } else { n };
            }
            cents
        }
        Some(_) => return None,
    };
    (0..=MAX_CENTS).contains(&cents).then_some(Some(cents))
}

/// A time in the RFC 3339 form with an offset: its parts, its offset in seconds and its
/// epoch seconds.
struct Time {
    year: i32,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    micro: u32,
    offset: i32,
    epoch: i64,
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn time(value: Option<&J>) -> Option<Time> {
    let Some(J::Str(text)) = value else { return None };
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let part = b.get(from..from + len)?;
        part.iter().all(u8::is_ascii_digit).then(|| part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if year == 0 || day == 0 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut at = 19;
    let mut micro = 0;
    if b[at] == b'.' {
        let digits = b[at + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 6 {
            return None;
        }
        micro = num(at + 1, digits)? * 10u32.pow(6 - digits as u32);
        at += 1 + digits;
    }
    let offset = match &b[at..] {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (num(at + 1, 2)?, num(at + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let seconds = (h * 3600 + m * 60) as i32;
            if *sign == b'-' {
                -seconds
            } else {
                seconds
            }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), i64::from(month), i64::from(day));
    let epoch = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - i64::from(offset);
    Some(Time {
        year: year as i32,
        month: month as u8,
        day: day as u8,
        hour: hour as u8,
        minute: minute as u8,
        second: second as u8,
        micro,
        offset,
        epoch,
    })
}

/// The values of the contracts' `Literal`s, handed over from Python (`extract.compiled_decoder`)
/// so that the compiled decoder and pydantic read one list.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct Literals {
    click_types: Vec<String>,
    email_types: Vec<String>,
    channels: Vec<String>,
    contact_channels: Vec<String>,
    purposes: Vec<String>,
    bounce_types: Vec<String>,
}

fn among(allowed: &[String], text: &str) -> bool {
    allowed.iter().any(|a| a == text)
}

/// Identifier kinds, strongest first (`kinds.STRENGTH`).
const STRENGTH: [char; 11] = ['c', 'e', 'p', 'l', 'o', 'n', 'f', 'd', 'a', 'h', 'm'];
const ATTRIBUTION: [&str; 8] = [
    "campaign",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "affiliate_id",
    "click_id",
];

/// A raw identifier: its kind letter, its value as validated, whether it is a SHA-256.
type Raw = (char, String, bool);

/// What the decoder makes of a message before any Python object exists.
struct Decoded<'a> {
    event_id: &'a str,
    time: Time,
    kind: &'static str,
    event_type: &'a str,
    raw: Vec<Raw>,
    order: Option<Order<'a>>,
    email_type: Option<&'a str>,
    campaign: Option<&'a str>,
    consent: Option<Vec<(&'a str, bool)>>,
    contact_channel: Option<&'a str>,
    product_id: Option<&'a str>,
    category: Option<&'a str>,
    /// Address and name to fold into fingerprints (Python's `_fingerprints`, `_name_key`).
    person: Option<Person<'a>>,
}

struct Order<'a> {
    order_id: &'a str,
    status: &'static str,
    total_cents: Option<i64>,
    returned_cents: Option<i64>,
    currency: Option<&'a str>,
    channel: Option<&'a str>,
    guest: Option<bool>,
    attribution: Option<Vec<(&'static str, Option<&'a str>)>>,
    coupon: Option<&'a str>,
}

struct Person<'a> {
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    address: Option<[Option<&'a str>; 4]>, // street, house number, postcode, country
}

/// An `Attribution`: the fields given (null ones too, as pydantic keeps them set).
fn attribution(value: Option<&J>) -> Maybe<Vec<(&'static str, Option<&str>)>> {
    match value {
        None | Some(J::Null) => Some(None),
        Some(obj) => {
            let found = fields(obj, ATTRIBUTION)?;
            let mut out = Vec::new();
            for (name, value) in ATTRIBUTION.iter().zip(found) {
                if value.is_some() {
                    out.push((*name, stripped(value, SHORT)?));
                }
            }
            Some(Some(out))
        }
    }
}

/// A click's campaign: the attribution's campaign, else its UTM campaign.
fn campaign_of<'a>(attribution: &[(&str, Option<&'a str>)]) -> Option<&'a str> {
    let get = |name: &str| attribution.iter().find(|(n, _)| *n == name).and_then(|(_, v)| *v);
    get("campaign").or_else(|| get("utm_campaign"))
}

fn push(raw: &mut Vec<Raw>, kind: char, value: Option<&str>, sha: bool) {
    if let Some(value) = value {
        raw.push((kind, value.to_owned(), sha));
    }
}

/// An `IdentifierSet`'s identifiers (`extract._from_set`), or `None` without any.
fn identifier_set(value: Option<&J>) -> Option<Vec<Raw>> {
    let [customer_id, email, email_sha256, phone, phone_sha256, anonymous_id, device_id, loyalty_card] = fields(
        value?,
        ["customer_id", "email", "email_sha256", "phone", "phone_sha256", "anonymous_id", "device_id", "loyalty_card"],
    )?;
    let mut raw = Vec::new();
    push(&mut raw, 'c', stripped(customer_id, RAW_ID)?, false);
    push(&mut raw, 'e', stripped(email, RAW_ID)?, false);
    push(&mut raw, 'e', sha256(email_sha256)?, true);
    push(&mut raw, 'p', stripped(phone, RAW_ID)?, false);
    push(&mut raw, 'p', sha256(phone_sha256)?, true);
    push(&mut raw, 'l', stripped(loyalty_card, RAW_ID)?, false);
    push(&mut raw, 'd', stripped(device_id, RAW_ID)?, false);
    push(&mut raw, 'a', stripped(anonymous_id, RAW_ID)?, false);
    (!raw.is_empty()).then_some(raw)
}

fn base<'a>(kind: &'static str, event_type: &'a str, event_id: &'a str, time: Time) -> Decoded<'a> {
    Decoded {
        event_id,
        time,
        kind,
        event_type,
        raw: Vec::new(),
        order: None,
        email_type: None,
        campaign: None,
        consent: None,
        contact_channel: None,
        product_id: None,
        category: None,
        person: None,
    }
}

/// The message decoded as its topic's contract, or `None` where pydantic must say.
fn decode<'a>(topic_kind: &str, message: &'a J, lits: &Literals) -> Option<Decoded<'a>> {
    let J::Obj(entries) = message else { return None };
    let event_type = entries.iter().find(|(k, _)| k == "type").and_then(|(_, v)| match v {
        J::Str(t) => Some(t.as_str()),
        _ => None,
    })?;
    match topic_kind {
        "clickstream" if among(&lits.click_types, event_type) => click(message, event_type),
        "orders" => order(message, event_type, lits),
        "email" if among(&lits.email_types, event_type) => email(message, event_type, lits),
        "customer" => customer(message, event_type, lits),
        _ => None,
    }
}

fn click<'a>(message: &'a J, event_type: &'a str) -> Option<Decoded<'a>> {
    let [id, at, source, _, anonymous_id, customer_id, device_id, url, referrer, attributed, product_id, category, quantity, price] =
        fields(
            message,
            [
                "event_id", "event_time", "source", "type", "anonymous_id", "customer_id", "device_id", "url", "referrer",
                "attribution", "product_id", "category", "quantity", "price",
            ],
        )?;
    let id = event_id(id)?;
    let time = time(at)?;
    stripped(source, SHORT)?;
    plain(url, URL)?;
    plain(referrer, URL)?;
    let anonymous = required(stripped(anonymous_id, RAW_ID))?;
    let customer = stripped(customer_id, RAW_ID)?;
    let device = stripped(device_id, RAW_ID)?;
    let attributed = attribution(attributed)?;
    let mut decoded = base("click", event_type, id, time);
    match event_type {
        "page_view" => {
            if product_id.is_some() || category.is_some() || quantity.is_some() || price.is_some() {
                return None;
            }
        }
        "product_view" => {
            if quantity.is_some() || price.is_some() {
                return None;
            }
            decoded.product_id = Some(required(stripped(product_id, SHORT))?);
            decoded.category = stripped(category, SHORT)?;
        }
        _ => {
            if category.is_some() {
                return None;
            }
            decoded.product_id = Some(required(stripped(product_id, SHORT))?);
            // `quantity: int = 1`: given, it is an integer (null is refused).
            if let Some(quantity) = quantity {
                let J::Int(n) = quantity else { return None };
                if !(1..=10_000).contains(n) {
                    return None;
                }
            }
            money(price)?;
        }
    }
    if let Some(attributed) = &attributed {
        decoded.campaign = campaign_of(attributed);
    }
    push(&mut decoded.raw, 'c', customer, false);
    push(&mut decoded.raw, 'd', device, false);
    push(&mut decoded.raw, 'a', Some(anonymous), false);
    Some(decoded)
}

fn order<'a>(message: &'a J, event_type: &'a str, lits: &Literals) -> Option<Decoded<'a>> {
    let [id, at, source, _, order_id, total, currency, channel, customer, anonymous_id, device_id, payment, attributed, items, coupon, amount, reason] =
        fields(
            message,
            [
                "event_id", "event_time", "source", "type", "order_id", "total", "currency", "channel", "customer",
                "anonymous_id", "device_id", "payment_fingerprint", "attribution", "items", "coupon", "amount", "reason",
            ],
        )?;
    let id = event_id(id)?;
    let time = time(at)?;
    stripped(source, SHORT)?;
    let order_id = required(stripped(order_id, SHORT))?;
    let mut decoded = base("order", event_type, id, time);
    let placed_only = [total, channel, customer, anonymous_id, device_id, payment, attributed, items, coupon];
    let simple = |status: &'static str| Order {
        order_id,
        status,
        total_cents: None,
        returned_cents: None,
        currency: None,
        channel: None,
        guest: None,
        attribution: None,
        coupon: None,
    };
    match event_type {
        "order_placed" => {
            if amount.is_some() || reason.is_some() {
                return None;
            }
            let total = required(money(total))?;
            let currency = required(capitals(currency, 3))?;
            let channel = required(literal(channel, &lits.channels))?;
            integer(items, 0, 100_000)?;
            let coupon = stripped(coupon, SHORT)?;
            let attributed = attribution(attributed)?;
            let [customer_id, guest, email, email_sha256, phone, phone_sha256, first_name, last_name, address, loyalty_card] =
                fields(
                    customer?,
                    [
                        "customer_id", "guest", "email", "email_sha256", "phone", "phone_sha256", "first_name",
                        "last_name", "address", "loyalty_card",
                    ],
                )?;
            let customer_id = stripped(customer_id, RAW_ID)?;
            let guest = boolean(guest, false)?;
            if !guest && customer_id.is_none() {
                return None;
            }
            let address = match address {
                None | Some(J::Null) => None,
                Some(address) => {
                    let [street, house_number, postcode, city, country] =
                        fields(address, ["street", "house_number", "postcode", "city", "country"])?;
                    stripped(city, SHORT)?;
                    Some([
                        stripped(street, SHORT)?,
                        stripped(house_number, SHORT)?,
                        stripped(postcode, SHORT)?,
                        capitals(country, 2)?,
                    ])
                }
            };
            let raw = &mut decoded.raw;
            if !guest {
                push(raw, 'c', customer_id, false);
            }
            push(raw, 'e', stripped(email, RAW_ID)?, false);
            push(raw, 'e', sha256(email_sha256)?, true);
            push(raw, 'p', stripped(phone, RAW_ID)?, false);
            push(raw, 'p', sha256(phone_sha256)?, true);
            push(raw, 'l', stripped(loyalty_card, RAW_ID)?, false);
            // Address and name fingerprints go in between (`Decoder::decode`).
            push(raw, 'f', stripped(payment, RAW_ID)?, false);
            push(raw, 'd', stripped(device_id, RAW_ID)?, false);
            push(raw, 'a', stripped(anonymous_id, RAW_ID)?, false);
            push(raw, 'o', Some(order_id), false);
            decoded.person = Some(Person {
                first_name: stripped(first_name, SHORT)?,
                last_name: stripped(last_name, SHORT)?,
                address,
            });
            decoded.order = Some(Order {
                total_cents: Some(total),
                currency: Some(currency),
                channel: Some(channel),
                guest: Some(guest),
                attribution: attributed,
                coupon,
                ..simple("placed")
            });
            return Some(decoded);
        }
        "order_cancelled" => {
            if placed_only.iter().any(Option::is_some) || amount.is_some() || currency.is_some() {
                return None;
            }
            stripped(reason, SHORT)?;
            decoded.order = Some(simple("cancelled"));
        }
        "order_returned" | "order_refunded" => {
            if placed_only.iter().any(Option::is_some) || (event_type == "order_returned" && reason.is_some()) {
                return None;
            }
            stripped(reason, SHORT)?;
            let returned = money(amount)?;
            let currency = capitals(currency, 3)?;
            let status = if event_type == "order_returned" { "returned" } else { "refunded" };
            decoded.order = Some(Order { returned_cents: returned, currency, ..simple(status) });
        }
        _ => return None,
    }
    decoded.raw.push(('o', order_id.to_owned(), false));
    Some(decoded)
}

fn email<'a>(message: &'a J, event_type: &'a str, lits: &Literals) -> Option<Decoded<'a>> {
    let [id, at, source, _, address, campaign, message_id, url, bounce_type] = fields(
        message,
        ["event_id", "event_time", "source", "type", "email", "campaign", "message_id", "url", "bounce_type"],
    )?;
    let id = event_id(id)?;
    let time = time(at)?;
    stripped(source, SHORT)?;
    let address = required(stripped(address, RAW_ID))?;
    let campaign = stripped(campaign, SHORT)?;
    stripped(message_id, SHORT)?;
    plain(url, URL)?;
    literal(bounce_type, &lits.bounce_types)?;
    let mut decoded = base("email", event_type, id, time);
    decoded.email_type = Some(event_type);
    decoded.campaign = campaign;
    push(&mut decoded.raw, 'e', Some(address), false);
    Some(decoded)
}

fn customer<'a>(message: &'a J, event_type: &'a str, lits: &Literals) -> Option<Decoded<'a>> {
    let [id, at, source, _, identifiers, consent, channel, topic] = fields(
        message,
        ["event_id", "event_time", "source", "type", "identifiers", "consent", "channel", "topic"],
    )?;
    let id = event_id(id)?;
    let time = time(at)?;
    stripped(source, SHORT)?;
    let raw = identifier_set(identifiers)?;
    let kind = match event_type {
        "identify" => "identify",
        "consent_changed" => "consent",
        "contact" => "contact",
        _ => return None, // an erasure is decoded by pydantic: the graph needs its model
    };
    let mut decoded = base(kind, event_type, id, time);
    decoded.raw = raw;
    if event_type != "consent_changed" && consent.is_some() {
        return None;
    }
    if event_type != "contact" && (channel.is_some() || topic.is_some()) {
        return None;
    }
    if event_type == "consent_changed" {
        let Some(J::Obj(given)) = consent else { return None };
        let mut purposes = Vec::new();
        for (purpose, granted) in given {
            if !among(&lits.purposes, purpose) {
                return None;
            }
            let J::Bool(granted) = granted else { return None };
            purposes.push((purpose.as_str(), *granted));
        }
        if purposes.is_empty() {
            return None;
        }
        decoded.consent = Some(purposes);
    }
    if event_type == "contact" {
        decoded.contact_channel = Some(required(literal(channel, &lits.contact_channels))?);
        stripped(topic, SHORT)?;
    }
    Some(decoded)
}

/// `datetime.isoformat()` of the event time, as the content digest writes it.
fn isoformat(time: &Time) -> String {
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        time.year, time.month, time.day, time.hour, time.minute, time.second
    );
    if time.micro != 0 {
        out.push_str(&format!(".{:06}", time.micro));
    }
    let (sign, offset) = if time.offset < 0 { ('-', -time.offset) } else { ('+', time.offset) };
    out.push_str(&format!("{sign}{:02}:{:02}", offset / 3600, offset % 3600 / 60));
    out
}

/// The compiled facts of a decoded event (`Facts`): what `event_from` would read of its
/// resolved event, and the facts of its content digest (`profile.markers.content_digest`).
fn facts_of(decoded: &Decoded<'_>, topic: &str) -> Facts {
    let owned = |v: Option<&str>| v.map(str::to_owned);
    let order = decoded.order.as_ref();
    let attribution = order.and_then(|o| o.attribution.as_ref());
    let given = |name: &str| attribution.and_then(|a| a.iter().find(|(n, _)| *n == name)).and_then(|(_, v)| *v);
    let event = Event {
        event_id: decoded.event_id.to_owned(),
        at: decoded.time.epoch,
        kind: Kind::parse(decoded.kind).expect("the decoder's kinds are the fold's"),
        person_id: String::new(),
        identifiers: Vec::new(),
        absorbed: Vec::new(),
        order: order.map(|o| OrderFacts {
            order_id: o.order_id.to_owned(),
            status: match o.status {
                "placed" => Status::Placed,
                "cancelled" => Status::Cancelled,
                "returned" => Status::Returned,
                _ => Status::Refunded,
            },
            total_cents: o.total_cents,
            returned_cents: o.returned_cents,
            currency: owned(o.currency),
            channel: owned(o.channel),
            campaign: owned(given("campaign").filter(|c| !c.is_empty()).or_else(|| given("utm_campaign"))),
            affiliate: owned(given("affiliate_id")),
            coupon: owned(o.coupon),
        }),
        email_type: owned(decoded.email_type),
        consent: decoded
            .consent
            .as_ref()
            .map(|c| c.iter().map(|(p, g)| ((*p).to_owned(), *g)).collect()),
        contact_channel: owned(decoded.contact_channel),
        category: owned(decoded.category),
        claimed: Vec::new(),
    };
    let order_facts = match order {
        None => Json::Null,
        Some(o) => Json::List(
            [
            Json::Text(o.order_id.to_owned()),
            Json::Text(o.status.to_owned()),
            Json::opt_int(o.total_cents),
            Json::opt_int(o.returned_cents),
            Json::opt_text(o.currency),
            Json::opt_text(o.channel),
            o.guest.map_or(Json::Null, Json::Bool),
            match attribution {
                None => Json::Null,
                // The model's `__dict__`: every field in the order of the contract.
                Some(_) => Json::Object(
                    ATTRIBUTION.iter().map(|name| ((*name).to_owned(), Json::opt_text(given(name)))).collect(),
                ),
            },
            ]
            .into_iter()
            // The coupon is absent from the facts of an order without one, as before it existed.
            .chain(o.coupon.map(|c| Json::Text(c.to_owned())))
            .collect(),
        ),
    };
    let consent_facts = match &decoded.consent {
        None => Json::Null,
        Some(purposes) => {
            let mut sorted = purposes.clone();
            sorted.sort();
            Json::List(
                sorted
                    .into_iter()
                    .map(|(p, g)| Json::List(vec![Json::Text(p.to_owned()), Json::Bool(g)]))
                    .collect(),
            )
        }
    };
    let digest_facts = Json::List(vec![
        Json::Text(decoded.event_id.to_owned()),
        Json::Text(isoformat(&decoded.time)),
        Json::Text(decoded.kind.to_owned()),
        Json::Text(decoded.event_type.to_owned()),
        Json::Text(topic.to_owned()),
        order_facts,
        Json::opt_text(decoded.email_type),
        Json::opt_text(decoded.campaign),
        consent_facts,
        Json::opt_text(decoded.contact_channel),
        Json::opt_text(decoded.product_id),
        Json::opt_text(decoded.category),
    ]);
    Facts::new(event, &digest_facts)
}

/// The worker's compiled decoder (`bestand.stream.prepare.Preparer`).
#[pyclass(module = "bestand_native", unsendable)]
pub struct Decoder {
    resolved_event: PyObject,
    order_facts: PyObject,
    attribution: PyObject,
    tz_info: PyObject,
    fingerprints: PyObject,
    name_key: PyObject,
    default_country: Py<PyString>,
    /// The `IdKind` member of each kind letter.
    kinds: HashMap<char, PyObject>,
    zones: HashMap<i32, PyObject>,
    earliest: f64,
    literals: Literals,
}

#[pymethods]
impl Decoder {
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        resolved_event: PyObject,
        order_facts: PyObject,
        attribution: PyObject,
        tz_info: PyObject,
        fingerprints: PyObject,
        name_key: PyObject,
        default_country: &str,
        kinds: std::collections::HashMap<char, PyObject>,
        earliest: f64,
        literals: Literals,
    ) -> Self {
        Decoder {
            resolved_event,
            order_facts,
            attribution,
            tz_info,
            fingerprints,
            name_key,
            default_country: PyString::new(py, default_country).unbind(),
            kinds: kinds.into_iter().collect(),
            zones: HashMap::new(),
            earliest,
            literals,
        }
    }

    /// `(resolved event without its person, raw identifiers strongest first, event time in
    /// epoch seconds)` of a message of `kind`'s topic, or None where pydantic must decode it
    /// (also a time before 2000 or more than `max_future` seconds after `now`).
    fn decode<'py>(
        &mut self,
        py: Python<'py>,
        kind: &str,
        value: &[u8],
        topic: &Bound<'py, PyString>,
        now: f64,
        max_future: f64,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let Ok(message) = serde_json::from_slice::<J>(value) else { return Ok(None) };
        let Some(mut decoded) = decode(kind, &message, &self.literals) else { return Ok(None) };
        let at = decoded.time.epoch;
        // As `decode_timed` compares it: the event time's float timestamp.
        let exact = (at * 1_000_000 + i64::from(decoded.time.micro)) as f64 / 1e6;
        if exact < self.earliest || exact > now + max_future {
            return Ok(None);
        }
        if let Some(person) = decoded.person.take() {
            let text = |v: Option<&str>| v.map(|s| PyString::new(py, s).into_any());
            let (first, last) = (text(person.first_name), text(person.last_name));
            let mut prints: Vec<Raw> = Vec::new();
            if let Some([street, house_number, postcode, country]) = person.address {
                let (full_name, household): (Option<String>, Option<String>) = self
                    .fingerprints
                    .call1(
                        py,
                        (
                            first.clone(),
                            last.clone(),
                            text(street),
                            text(house_number),
                            text(postcode),
                            text(country),
                            self.default_country.clone_ref(py),
                        ),
                    )?
                    .extract(py)?;
                push(&mut prints, 'n', full_name.as_deref().filter(|s| !s.is_empty()), false);
                push(&mut prints, 'h', household.as_deref().filter(|s| !s.is_empty()), false);
            }
            let name: Option<String> = self.name_key.call1(py, (first, last))?.extract(py)?;
            push(&mut prints, 'm', name.as_deref().filter(|s| !s.is_empty()), false);
            decoded.raw.extend(prints);
        }
        let rank = |kind: char| STRENGTH.iter().position(|k| *k == kind).unwrap_or(STRENGTH.len());
        decoded.raw.sort_by_key(|(kind, _, _)| rank(*kind));
        let raw = PyList::empty(py);
        for (kind, value, sha) in &decoded.raw {
            let member = self.kinds.get(kind).expect("every kind letter has its IdKind");
            raw.append((member.clone_ref(py), value.as_str(), *sha))?;
        }
        let time = &decoded.time;
        let zone = match self.zones.get(&time.offset) {
            Some(zone) => zone.clone_ref(py),
            None => {
                let zone = self.tz_info.call1(py, (time.offset,))?;
                self.zones.insert(time.offset, zone.clone_ref(py));
                zone
            }
        };
        let event_time = PyDateTime::new(
            py,
            time.year,
            time.month,
            time.day,
            time.hour,
            time.minute,
            time.second,
            time.micro,
            Some(zone.bind(py).downcast::<PyTzInfo>()?),
        )?;
        let order = match &decoded.order {
            None => py.None(),
            Some(order) => {
                let attribution = match &order.attribution {
                    None => py.None(),
                    Some(given) => {
                        let kwargs = PyDict::new(py);
                        for (name, value) in given {
                            kwargs.set_item(*name, *value)?;
                        }
                        self.attribution.call_method(py, "model_construct", (), Some(&kwargs))?
                    }
                };
                self.order_facts.call1(
                    py,
                    (
                        order.order_id,
                        order.status,
                        order.total_cents,
                        order.returned_cents,
                        order.currency,
                        order.channel,
                        order.guest,
                        attribution,
                        order.coupon,
                    ),
                )?
            }
        };
        let consent = match &decoded.consent {
            None => py.None(),
            Some(purposes) => {
                let given = PyDict::new(py);
                for (purpose, granted) in purposes {
                    given.set_item(*purpose, *granted)?;
                }
                given.into_any().unbind()
            }
        };
        let facts = Py::new(py, facts_of(&decoded, topic.to_str()?))?;
        let args = PyTuple::new(
            py,
            [
                PyString::new(py, decoded.event_id).into_any(),
                event_time.into_any(),
                at.into_pyobject(py)?.into_any(),
                PyString::new(py, decoded.kind).into_any(),
                PyString::new(py, decoded.event_type).into_any(),
                topic.clone().into_any(),
                PyString::new(py, "").into_any(),
                PyList::empty(py).into_any(),
                PyList::empty(py).into_any(),
                order.into_bound(py),
                decoded.email_type.into_pyobject(py)?.into_any(),
                decoded.campaign.into_pyobject(py)?.into_any(),
                consent.into_bound(py),
                decoded.contact_channel.into_pyobject(py)?.into_any(),
                decoded.product_id.into_pyobject(py)?.into_any(),
                decoded.category.into_pyobject(py)?.into_any(),
                PyTuple::empty(py).into_any(),
                facts.into_bound(py).into_any(),
            ],
        )?;
        let template = self.resolved_event.bind(py).call1(args)?;
        Ok(Some(PyTuple::new(py, [template, raw.into_any(), at.into_pyobject(py)?.into_any()])?))
    }
}
