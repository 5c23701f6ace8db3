//! The identity rules, compiled: `bestand.identity.rules.decide` for one event, over what the
//! graph holds about its identifiers. The Python module stays the reference; the tests hold
//! this one to its decisions, explain entries included, word for word.

use std::collections::{BTreeMap, BTreeSet};
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

/// Kind letters from strongest to weakest: the first of an event anchors it.
pub const STRENGTH: &str = "ceplonfdahm";

/// The name the API and the explain entries use for a kind letter.
pub fn kind_name(letter: u8) -> &'static str {
    match letter {
        b'c' => "customer_id",
        b'e' => "email",
        b'p' => "phone",
        b'l' => "loyalty_card",
        b'o' => "order_id",
        b'n' => "address_name",
        b'f' => "payment",
        b'd' => "device_id",
        b'a' => "anonymous_id",
        b'h' => "household",
        b'm' => "name",
        _ => "unknown",
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Link {
    Strong,
    Weak,
    Never,
}

impl Link {
    pub fn as_str(self) -> &'static str {
        match self {
            Link::Strong => "strong",
            Link::Weak => "weak",
            Link::Never => "never",
        }
    }
}

/// How one kind of identifier may link persons (`bestand.identity.policy.KindPolicy`).
#[derive(Clone, Debug)]
pub struct KindPolicy {
    pub link: Link,
    pub max_persons: i64,
    pub max_per_person: Option<i64>,
}

/// The policy of every kind, by kind letter (`bestand.identity.policy.IdentityPolicy`).
#[derive(Clone, Debug)]
pub struct Policy {
    pub kinds: HashMap<u8, KindPolicy>,
}

impl Policy {
    pub fn of(&self, letter: u8) -> &KindPolicy {
        &self.kinds[&letter]
    }

    /// Whether identifiers of this kind only describe a person (link `never`).
    pub fn describing(&self, letter: u8) -> bool {
        self.kinds.get(&letter).is_some_and(|p| p.link == Link::Never)
    }
}

/// What the graph holds about one event's identifiers (`GraphView`).
#[derive(Clone, Debug, Default)]
pub struct View {
    pub owners: HashMap<String, String>,
    pub junk: HashSet<String>,
    pub met: HashMap<String, HashSet<String>>,
    /// person -> identifiers of its set by kind letter (describing ones included)
    pub kind_counts: HashMap<String, HashMap<u8, i64>>,
    pub versions: HashMap<String, i64>,
    /// person -> its name tokens
    pub names: HashMap<String, HashSet<String>>,
    /// movable token -> the time its holder claimed it
    pub claims: HashMap<String, i64>,
}

/// Kinds that move to the person identified on them (`MOVABLE`): cookie and device id.
pub fn movable(token: &str) -> bool {
    matches!(letter(token), b'a' | b'd')
}

/// One explain entry (`LogEntry`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// "new", "link", "merge", "move", "refused" or "junk"
    pub kind: &'static str,
    pub tokens: Vec<String>,
    pub rule: String,
    pub via: Option<String>,
    pub other: Option<String>,
}

/// What resolving one event changes in the graph (`Decision`).
#[derive(Clone, Debug)]
pub struct Decision {
    pub person: String,
    pub absorbed: Vec<String>,
    pub attach: Vec<String>,
    pub describe: Vec<String>,
    pub met: Vec<(String, String)>,
    pub junk: Vec<(String, String)>,
    pub log: Vec<LogEntry>,
    pub identifiers: Vec<String>,
    pub ignored: Vec<String>,
    pub is_new: bool,
    /// (token, former holder): movable ones taken over
    pub moved: Vec<(String, String)>,
    /// (movable token, claimed at) the person records
    pub claims: Vec<(String, i64)>,
}

/// No identifier of the event can name a person; `junk` is flagged even so.
#[derive(Clone, Debug)]
pub struct Unattributable {
    pub message: String,
    pub junk: Vec<(String, String)>,
}

/// Resolve an event's identifier tokens (`kind:hash`) to one person: `decide` of
/// `bestand.identity.rules`. `candidate` gives the id of a new person (asked only when one is
/// made: it costs a keyed hash).
///
/// Every token and every kind letter of `view.kind_counts` must be a kind `policy` has (Python
/// raises `ValueError` for any other before deciding anything).
pub fn decide(
    tokens: &[String],
    view: &View,
    policy: &Policy,
    candidate: &mut dyn FnMut() -> String,
    pattern_junk: &[(String, String)],
    at: i64,
) -> Result<Decision, Unattributable> {
    if pattern_junk.is_empty() {
        if let Some(decision) = without_meetings(tokens, view, policy, candidate, at) {
            return Ok(decision);
        }
    }
    // Anchors resolved without on a later round: Python's `replace(view, junk=...)`.
    let mut set_aside: HashSet<String> = HashSet::new();
    let mut flagged: Vec<(String, String)> = Vec::new();
    let mut shared: Vec<(String, String)> = Vec::new(); // (anchor, its owner of another name)
    let decision = loop {
        match rules(tokens, view, &set_aside, policy, candidate, pattern_junk, at) {
            Ok(decision) => break decision,
            Err(Stop::Unattributable) => {
                // Identifiers set aside for a different name met one more person (nameless).
                for (token, owner) in &shared {
                    let mut persons = met_of(view, token);
                    persons.insert(owner);
                    let count = persons.len() as i64 + 1;
                    let cap = policy.of(letter(token)).max_persons;
                    if count > cap {
                        flagged.push((token.clone(), joined(token, count, cap)));
                    }
                }
                return Err(Unattributable { message: NO_PERSON.to_owned(), junk: flagged });
            }
            Err(Stop::AnchorIsJunk(token, why)) => {
                flagged.push((token.clone(), why));
                set_aside.insert(token);
            }
            Err(Stop::AnchorNamesDiffer(token, owner)) => {
                shared.push((token.clone(), owner));
                set_aside.insert(token);
            }
        }
    };
    if flagged.is_empty() && shared.is_empty() {
        return Ok(decision);
    }
    let mut entries: Vec<LogEntry> =
        flagged.iter().map(|(t, why)| entry("junk", vec![t.clone()], why.clone(), None, None)).collect();
    let mut met = decision.met.clone();
    for (token, owner) in &shared {
        entries.push(entry(
            "refused",
            vec![token.clone()],
            "names differ: shared with another person".to_owned(),
            None,
            Some(owner),
        ));
        met.push((token.clone(), decision.person.clone()));
        let mut persons = met_of(view, token);
        persons.insert(owner);
        persons.insert(&decision.person);
        let limit = policy.of(letter(token)).max_persons;
        if persons.len() as i64 > limit {
            let why = joined(token, persons.len() as i64, limit);
            flagged.push((token.clone(), why.clone()));
            entries.push(entry("junk", vec![token.clone()], why, None, Some(owner)));
        }
    }
    let ignored = decision
        .ignored
        .iter()
        .chain(flagged.iter().map(|(t, _)| t))
        .chain(shared.iter().map(|(t, _)| t))
        .cloned()
        .collect();
    let junk = flagged.into_iter().chain(decision.junk).collect();
    entries.extend(decision.log);
    Ok(Decision {
        met: unique(met),
        junk,
        log: entries,
        ignored: unique(ignored),
        ..decision
    })
}

const NO_PERSON: &str = "no identifier of the event can name a person";
const CUSTOMER: u8 = b'c';
const ORDER: u8 = b'o';
const NAME: u8 = b'm';

/// Why the rules gave up on a round: no person at all, or an anchor to resolve without.
enum Stop {
    Unattributable,
    AnchorIsJunk(String, String),
    AnchorNamesDiffer(String, String),
}

fn letter(token: &str) -> u8 {
    token.as_bytes().first().copied().unwrap_or(0)
}

/// A token's rank in `STRENGTH`; unknown kinds last (Python refuses them earlier).
fn strength(token: &str) -> usize {
    let first = letter(token);
    STRENGTH.bytes().position(|b| b == first).unwrap_or(STRENGTH.len())
}

pub(crate) fn name_of(token: &str) -> &'static str {
    kind_name(letter(token))
}

/// The event's tokens once each, strongest first; ties keep the event's order.
fn ordered(tokens: &[String]) -> Vec<&String> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(tokens.len());
    let mut out: Vec<&String> = tokens.iter().filter(|t| seen.insert(t.as_str())).collect();
    out.sort_by_key(|t| strength(t)); // stable, like Python's sorted
    out
}

/// Items once each, first occurrence kept (`dict.fromkeys`).
fn unique<T: Clone + Eq + std::hash::Hash>(items: Vec<T>) -> Vec<T> {
    let mut seen: HashSet<T> = HashSet::with_capacity(items.len());
    items.into_iter().filter(|item| seen.insert(item.clone())).collect()
}

/// The persons a token has met before this event besides its owner.
fn met_of<'a>(view: &'a View, token: &str) -> HashSet<&'a str> {
    view.met.get(token).map(|s| s.iter().map(String::as_str).collect()).unwrap_or_default()
}

fn has_met(view: &View, token: &str) -> bool {
    view.met.get(token).is_some_and(|s| !s.is_empty())
}

fn joined(token: &str, count: i64, limit: i64) -> String {
    format!("{} joined {count} persons (limit {limit})", name_of(token))
}

/// The identifiers an entry names: order ids left out (`rules.py` `_logged`): an order id
/// joins the person whose order it is, which the person's state holds.
fn logged(attach: &[String]) -> Vec<String> {
    attach.iter().filter(|t| !t.starts_with('o')).cloned().collect()
}

/// The identifiers a new person's entry names: order ids left out unless they are all it has.
fn began(attach: &[String]) -> Vec<String> {
    let logged = logged(attach);
    if logged.is_empty() { attach.to_vec() } else { logged }
}

fn entry(kind: &'static str, tokens: Vec<String>, rule: String, via: Option<&str>, other: Option<&str>) -> LogEntry {
    LogEntry { kind, tokens, rule, via: via.map(str::to_owned), other: other.map(str::to_owned) }
}

/// A non-empty set of names none of which is in `theirs` (empty or missing: no evidence).
fn names_differ(names: &HashSet<&str>, theirs: Option<&HashSet<String>>) -> bool {
    !names.is_empty()
        && theirs.is_some_and(|theirs| !theirs.is_empty() && !theirs.iter().any(|n| names.contains(n.as_str())))
}

/// The decision when the event meets no other person: `_without_meetings`. None when the
/// full rules must weigh something.
/// Do these identifiers of an event, linked to its person, name that person (`_identifying`)?
fn identifying<T: AsRef<str>>(tokens: &[T], policy: &Policy) -> bool {
    tokens.iter().any(|t| letter(t.as_ref()) != ORDER && policy.of(letter(t.as_ref())).link == Link::Strong)
}

fn without_meetings(
    tokens: &[String],
    view: &View,
    policy: &Policy,
    candidate: &mut dyn FnMut() -> String,
    at: i64,
) -> Option<Decision> {
    let mut owner: Option<&String> = None;
    let mut linking: Vec<&String> = Vec::new();
    let mut describe: Vec<&String> = Vec::new();
    let mut new = false;
    for token in ordered(tokens) {
        if view.junk.contains(token) || has_met(view, token) {
            return None;
        }
        if policy.describing(letter(token)) {
            describe.push(token);
            continue;
        }
        match (view.owners.get(token), owner) {
            (None, _) => new = true,
            (Some(found), None) => {
                if !linking.is_empty() {
                    return None; // a new anchor meets someone's identifier
                }
                owner = Some(found);
            }
            (Some(found), Some(mine)) if found != mine => return None,
            _ => {}
        }
        linking.push(token);
    }
    let anchor = *linking.first()?;
    if let Some(owner) = owner {
        let names: HashSet<&str> =
            describe.iter().filter(|t| letter(t) == NAME).map(|t| t.as_str()).collect();
        if names_differ(&names, view.names.get(owner)) {
            return None;
        }
    }
    let mut attach: Vec<String> = Vec::new();
    if new {
        let mut counts: HashMap<u8, i64> =
            owner.and_then(|o| view.kind_counts.get(o)).cloned().unwrap_or_default();
        for (position, token) in linking.iter().enumerate() {
            if owner.is_some() && view.owners.contains_key(*token) {
                continue;
            }
            let kind = letter(token);
            let count = counts.entry(kind).or_insert(0);
            if position > 0 {
                // a new person's anchor is the first of its kind
                let cap = policy.kinds.get(&kind).and_then(|p| p.max_per_person);
                if cap.is_some_and(|cap| *count + 1 > cap) {
                    return None;
                }
            }
            attach.push((*token).clone());
            *count += 1;
        }
    }
    let claims: Vec<(String, i64)> = if !attach.is_empty() && identifying(&linking, policy) {
        attach.iter().filter(|t| movable(t)).map(|t| (t.clone(), at)).collect()
    } else {
        Vec::new()
    };
    let logged = logged(&attach);
    let log = match owner {
        None => vec![entry("new", began(&attach), format!("new person from {}", name_of(anchor)), None, None)],
        Some(_) if !logged.is_empty() => {
            vec![entry("link", logged, format!("seen with {}", name_of(anchor)), Some(anchor), None)]
        }
        Some(_) => Vec::new(),
    };
    // An empty owner id is no person to Python's `or`: a new one is made.
    let person = match owner {
        Some(o) if !o.is_empty() => o.clone(),
        _ => candidate(),
    };
    Some(Decision {
        person,
        absorbed: Vec::new(),
        attach,
        describe: describe.into_iter().cloned().collect(),
        met: Vec::new(),
        junk: Vec::new(),
        log,
        identifiers: linking.into_iter().cloned().collect(),
        ignored: Vec::new(),
        is_new: owner.is_none(),
        moved: Vec::new(),
        claims,
    })
}

/// Whether a person's kinds include one that names someone (a strong kind, not an order).
fn known<'a>(policy: &Policy, kinds: impl IntoIterator<Item = (&'a u8, &'a i64)>) -> bool {
    kinds.into_iter().any(|(&k, &n)| n > 0 && k != ORDER && policy.of(k).link == Link::Strong)
}

/// One round of the rules (`_decide`), over the view with `set_aside` added to its junk.
fn rules(
    tokens: &[String],
    view: &View,
    set_aside: &HashSet<String>,
    policy: &Policy,
    candidate: &mut dyn FnMut() -> String,
    pattern_junk: &[(String, String)],
    at: i64,
) -> Result<Decision, Stop> {
    let is_junk = |t: &str| view.junk.contains(t) || set_aside.contains(t);
    let ordered = ordered(tokens);
    let mut round = Round {
        view,
        policy,
        anchor: "",
        owner: None,
        log: pattern_junk
            .iter()
            .map(|(t, why)| entry("junk", vec![t.clone()], format!("ignored: {why}"), None, None))
            .collect(),
        ignored: pattern_junk.iter().map(|(t, _)| t.clone()).collect(),
        met: Vec::new(),
        junk: Vec::new(),
    };
    round.ignored.extend(ordered.iter().filter(|t| is_junk(t)).map(|t| (*t).clone()));
    // An identifier that has already met another person anchors and joins only after every
    // unshared one had its turn; a customer id names its buyer even so.
    let candidates: Vec<&String> = ordered.into_iter().filter(|t| !is_junk(t)).collect();
    let (describe, mut usable): (Vec<&String>, Vec<&String>) =
        candidates.into_iter().partition(|t| policy.describing(letter(t)));
    usable.sort_by_key(|t| letter(t) != CUSTOMER && has_met(view, t));
    let Some(&anchor) = usable.first() else {
        return Err(Stop::Unattributable);
    };
    round.anchor = anchor;
    let owner: Option<&String> = view.owners.get(anchor);
    round.owner = owner.map(String::as_str);
    // Python tests the owner for truth here: an empty id is nobody.
    let owned = owner.filter(|o| !o.is_empty());
    let event_names: HashSet<&str> =
        describe.iter().filter(|t| letter(t) == NAME).map(|t| t.as_str()).collect();
    if let Some(o) = owned {
        if names_differ(&event_names, view.names.get(o)) {
            return Err(Stop::AnchorNamesDiffer(anchor.clone(), o.clone()));
        }
    }
    let mut names = event_names;
    let mut group: BTreeSet<&str> = BTreeSet::new();
    let mut counts: BTreeMap<u8, i64> = BTreeMap::new();
    let mut attach: Vec<String> = Vec::new();
    match owned {
        Some(o) => {
            names.extend(view.names.get(o).into_iter().flatten().map(String::as_str));
            group.insert(o);
            if let Some(theirs) = view.kind_counts.get(o) {
                counts.extend(theirs.iter().map(|(&k, &n)| (k, n)));
            }
        }
        None => {
            attach.push(anchor.clone());
            *counts.entry(letter(anchor)).or_insert(0) += 1;
        }
    }
    let mut joins: Vec<(&str, &String, String)> = Vec::new(); // (its person, token, rule)
    let mut refused_by_new: Vec<&String> = Vec::new(); // a person new here could not join them
    let mut moves: Vec<(String, String)> = Vec::new(); // (token, its holder): taken over
    let mut linked: Vec<String> = vec![anchor.clone()];
    for &token in &usable[1..] {
        let kind = letter(token);
        let kind_policy = policy.of(kind);
        let Some(holder) = view.owners.get(token) else {
            let count = counts.get(&kind).copied().unwrap_or(0);
            if let Some(cap) = kind_policy.max_per_person.filter(|&cap| count + 1 > cap) {
                round.refuse(token, format!("person already has {cap} {}", kind_name(kind)), None);
                continue;
            }
            attach.push(token.clone());
            *counts.entry(kind).or_insert(0) += 1;
            linked.push(token.clone());
            continue;
        };
        if group.contains(holder.as_str()) {
            linked.push(token.clone());
            continue;
        }
        // The identifier meets another person: both it and the anchor record the meeting.
        if round.over_limit(token, holder)? {
            round.ignored.push(token.clone());
            continue;
        }
        let empty = HashMap::new();
        let theirs = view.kind_counts.get(holder).unwrap_or(&empty);
        let (mut reason, shared_by_two) = round.conflict(&names, &counts, holder, theirs, kind, kind_policy.link);
        if shared_by_two && movable(token) && identifying(&linked, policy) {
            let claimed = view.claims.get(token.as_str()).copied().unwrap_or(0);
            if at >= claimed {
                moves.push((token.clone(), holder.clone()));
                *counts.entry(kind).or_insert(0) += 1;
                linked.push(token.clone());
                continue;
            }
            reason = Some(format!("{} was claimed later by another person", kind_name(kind)));
        }
        if let Some(reason) = reason {
            round.refuse(token, reason, Some(holder));
            if owned.is_none() {
                refused_by_new.push(token);
            }
            continue;
        }
        group.insert(holder);
        for (&k, &n) in theirs {
            *counts.entry(k).or_insert(0) += n;
        }
        names.extend(view.names.get(holder).into_iter().flatten().map(String::as_str));
        linked.push(token.clone());
        joins.push((holder, token, format!("{} {}", kind_policy.link.as_str(), kind_name(kind))));
    }
    let Round { mut log, mut ignored, mut met, mut junk, .. } = round;
    let person = match group.first() {
        Some(smallest) => (*smallest).to_owned(),
        None => candidate(),
    };
    let absorbed: Vec<String> =
        group.iter().filter(|p| **p != person).map(|p| (*p).to_owned()).collect();
    let mut moved: Vec<(String, String)> = Vec::new();
    for (token, holder) in moves {
        if owned.is_none() {
            // A person new in this event met the identifier: counted as for a refused link.
            let limit = policy.of(letter(&token)).max_persons;
            let mut persons = met_of(view, &token);
            persons.insert(holder.as_str());
            persons.insert(person.as_str());
            if persons.len() as i64 > limit {
                let why = joined(&token, persons.len() as i64, limit);
                met.push((token.clone(), person.clone()));
                junk.push((token.clone(), why.clone()));
                log.push(entry("junk", vec![token.clone()], why, None, Some(&holder)));
                linked.retain(|t| *t != token);
                ignored.push(token);
                continue;
            }
        }
        met.push((token.clone(), holder.clone()));
        let rule = format!("{} moves to the person identified on it", name_of(&token));
        log.push(entry("move", vec![token.clone()], rule, Some(anchor), Some(&holder)));
        moved.push((token, holder));
    }
    let mut claims: Vec<(String, i64)> = Vec::new();
    if identifying(&linked, policy) {
        claims.extend(attach.iter().filter(|t| movable(t)).map(|t| (t.clone(), at)));
        claims.extend(
            joins
                .iter()
                .filter(|(_, t, _)| movable(t) && view.claims.get(t.as_str()).copied().unwrap_or(-1) < at)
                .map(|(_, t, _)| ((*t).clone(), at)),
        );
        claims.extend(moved.iter().map(|(t, _)| (t.clone(), at)));
    }
    for token in refused_by_new {
        met.push((token.clone(), person.clone()));
        let limit = policy.of(letter(token)).max_persons;
        let holder = &view.owners[token];
        let mut persons = met_of(view, token);
        persons.insert(holder);
        persons.insert(&person);
        if persons.len() as i64 > limit {
            let why = joined(token, persons.len() as i64, limit);
            junk.push((token.clone(), why.clone()));
            log.push(entry("junk", vec![token.clone()], why, None, Some(holder)));
        }
    }
    for (holder, token, rule) in &joins {
        // The token's person survives when its id is the smallest: then the anchor's side
        // (its owner, or only new identifiers) is what joined it.
        let gone = if *holder != person { Some(*holder) } else { owner.map(String::as_str) };
        if let Some(gone) = gone.filter(|g| *g != person) {
            log.push(entry("merge", vec![(*token).clone()], rule.clone(), Some(anchor), Some(gone)));
        }
    }
    if group.is_empty() {
        let first = entry("new", began(&attach), format!("new person from {}", name_of(anchor)), None, None);
        log.insert(pattern_junk.len(), first);
    } else if !logged(&attach).is_empty() {
        let via: Option<&str> = if !attach.contains(anchor) {
            Some(anchor)
        } else {
            joins.first().map(|(_, token, _)| token.as_str())
        };
        let rule = format!("seen with {}", name_of(via.unwrap_or(anchor)));
        log.push(entry("link", logged(&attach), rule, via, None));
    }
    Ok(Decision {
        person,
        absorbed,
        attach,
        describe: describe.into_iter().cloned().collect(),
        met: unique(met),
        junk,
        log,
        identifiers: linked,
        ignored: unique(ignored),
        is_new: group.is_empty(),
        moved,
        claims,
    })
}

/// What one round of the rules records as it goes (the closures of `_decide`).
struct Round<'a> {
    view: &'a View,
    policy: &'a Policy,
    anchor: &'a str,
    /// The anchor's owner as found, an empty id included.
    owner: Option<&'a str>,
    log: Vec<LogEntry>,
    ignored: Vec<String>,
    met: Vec<(String, String)>,
    junk: Vec<(String, String)>,
}

impl Round<'_> {
    fn refuse(&mut self, token: &str, rule: String, other: Option<&str>) {
        self.log.push(entry("refused", vec![token.to_owned()], rule, Some(self.anchor), other));
        self.ignored.push(token.to_owned());
    }

    /// Record whom the meeting identifiers met; flag one that met too many persons. Persons
    /// are counted as a set, and the persons this event joins count as one meeting of the
    /// anchor.
    fn over_limit(&mut self, token: &str, holder: &str) -> Result<bool, Stop> {
        let mut meeting: Vec<(&str, &str, Option<&str>)> = vec![(token, holder, self.owner)];
        if let Some(owner) = self.owner.filter(|o| !o.is_empty()) {
            meeting.push((self.anchor, owner, Some(holder)));
        }
        for (t, mine, other) in meeting {
            let Some(other) = other else { continue };
            self.met.push((t.to_owned(), other.to_owned()));
            let mut before = met_of(self.view, t);
            before.insert(mine);
            let now: HashSet<&str> = self
                .met
                .iter()
                .filter(|(x, o)| x == t && !before.contains(o.as_str()))
                .map(|(_, o)| o.as_str())
                .collect();
            let seen = before.len() + if !now.is_empty() && t == self.anchor { 1 } else { now.len() };
            let limit = self.policy.of(letter(t)).max_persons;
            if seen as i64 > limit {
                let why = joined(t, seen as i64, limit);
                if t == self.anchor {
                    return Err(Stop::AnchorIsJunk(t.to_owned(), why));
                }
                self.junk.push((t.to_owned(), why.clone()));
                self.log.push(entry("junk", vec![t.to_owned()], why, Some(self.anchor), Some(holder)));
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Why the anchor's side may not join `holder`'s person (None when it may), and whether
    /// that reason still lets a cookie or device id move (two persons who share it, by their
    /// names or as two known persons).
    fn conflict(
        &self,
        names: &HashSet<&str>,
        counts: &BTreeMap<u8, i64>,
        holder: &str,
        theirs: &HashMap<u8, i64>,
        kind: u8,
        link: Link,
    ) -> (Option<String>, bool) {
        let their_names = self.view.names.get(holder);
        if names_differ(names, their_names) {
            return (Some(format!("names differ: {} shared by two people", kind_name(kind))), true);
        }
        let same_name = !names.is_empty() && their_names.is_some_and(|n| !n.is_empty());
        if link == Link::Weak && known(self.policy, counts) && known(self.policy, theirs) && !same_name {
            return (Some(format!("weak {} joins two known persons only under one name", kind_name(kind))), true);
        }
        let kinds: BTreeSet<u8> = counts.keys().chain(theirs.keys()).copied().collect();
        for k in kinds {
            let total = counts.get(&k).copied().unwrap_or(0) + theirs.get(&k).copied().unwrap_or(0);
            if let Some(cap) = self.policy.of(k).max_per_person.filter(|&cap| total > cap) {
                return (Some(format!("one person would have {total} {} (limit {cap})", kind_name(k))), false);
            }
        }
        (None, false)
    }
}
