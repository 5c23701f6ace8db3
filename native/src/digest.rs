//! What an event says, as a short digest (`bestand.profile.markers.content_digest`), and an
//! event id as keys hold it (`bestand.store.keys.event_key`): the same strings.
//!
//! The digest hashes the JSON that orjson writes for a tuple of the event's facts, so this
//! writes that JSON the same way: compact, strings escaped as orjson escapes them, objects
//! in the order their fields were given.

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine;
use blake2::digest::{Update, VariableOutput};
use blake2::Blake2bVar;

/// One value of the facts tuple.
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Text(String),
    List(Vec<Json>),
    /// An object whose keys keep the order they were given in.
    Object(Vec<(String, Json)>),
}

fn write_text(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Json {
    pub fn opt_text(value: Option<&str>) -> Json {
        value.map_or(Json::Null, |v| Json::Text(v.to_owned()))
    }

    pub fn opt_int(value: Option<i64>) -> Json {
        value.map_or(Json::Null, Json::Int)
    }

    pub fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(true) => out.push_str("true"),
            Json::Bool(false) => out.push_str("false"),
            Json::Int(n) => out.push_str(&n.to_string()),
            Json::Text(t) => write_text(out, t),
            Json::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_text(out, key);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// BLAKE2b of the facts' JSON, 6 bytes, URL-safe base64.
pub fn content_digest(facts: &Json) -> String {
    let mut json = String::with_capacity(256);
    facts.write(&mut json);
    let mut hasher = Blake2bVar::new(6).expect("6 is a valid BLAKE2b size");
    hasher.update(json.as_bytes());
    let mut digest = [0u8; 6];
    hasher.finalize_variable(&mut digest).expect("the size asked for");
    URL_SAFE.encode(digest)
}

/// An event id as part of a key: ids longer than 64 characters as a 16-byte BLAKE2b in hex.
pub fn event_key(event_id: &str) -> String {
    if event_id.chars().count() <= 64 {
        return event_id.to_owned();
    }
    let mut hasher = Blake2bVar::new(16).expect("16 is a valid BLAKE2b size");
    hasher.update(event_id.as_bytes());
    let mut digest = [0u8; 16];
    hasher.finalize_variable(&mut digest).expect("the size asked for");
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
