//! A batch's events folded into the states of their persons: `bestand.profile.fold`
//! (`fold_group`, `groups`, `joined`, `live_person`), the same results.

use std::collections::BTreeSet;
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::rc::Rc;

use crate::reducer::{apply_in_place, merge, Event, Kind};
use crate::state::PersonState;
use crate::summary::{marker, parse_marker, profile_changes, same_content, Change, LifecycleRules, Summary};

/// A person as read: merged away (`redirect`), or its state (and its answer, when known).
#[derive(Clone, Debug)]
pub struct Loaded {
    pub redirect: Option<String>,
    pub state: Rc<PersonState>,
    pub summary: Option<Summary>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Applied,
    Duplicate,
    Conflict,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Applied => "applied",
            Status::Duplicate => "duplicate",
            Status::Conflict => "conflict",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Outcome {
    pub status: Status,
    pub person_id: String,
    pub changes: Vec<Change>,
}

/// Lookup records to write for one person.
#[derive(Clone, Debug)]
pub struct Publish {
    pub person_id: String,
    pub version: i64,
    pub tokens: Vec<String>,
    pub summary: Summary,
    pub checked: bool,
}

/// One group's write: all of it or nothing, under the versions it was folded from.
#[derive(Clone, Debug, Default)]
pub struct GroupWrite {
    pub guard: Vec<(String, i64)>,
    pub states: Vec<Rc<PersonState>>,
    pub summaries: Vec<Summary>,
    pub absorbed: Vec<(String, String)>,
    /// (person, event position in the batch, marker)
    pub markers: Vec<(String, usize, String)>,
    pub publish: Vec<Publish>,
    pub unlink: Vec<String>,
}

impl GroupWrite {
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
            && self.absorbed.is_empty()
            && self.markers.is_empty()
            && self.publish.is_empty()
            && self.unlink.is_empty()
    }
}

/// Whether a `kind:hash` token has a lookup record (`bestand.identity.kinds.looked_up`).
pub fn looked_up(token: &str) -> bool {
    matches!(token.as_bytes().first(), Some(b'c' | b'e' | b'p' | b'l' | b'd' | b'a'))
}

/// The person `person_id` is now, following the redirects of persons merged away.
pub fn live_person(person_id: &str, persons: &HashMap<String, Loaded>) -> String {
    let mut person = person_id.to_owned();
    for _ in 0..64 {
        match persons.get(&person).and_then(|l| l.redirect.clone()) {
            Some(next) => person = next,
            None => return person,
        }
    }
    person
}

/// Union-find over the persons the events' merges join.
pub struct Joined {
    parent: HashMap<String, String>,
}

impl Joined {
    pub fn new<'a>(events: impl IntoIterator<Item = &'a Event>, live: &dyn Fn(&str) -> String) -> Joined {
        let mut joined = Joined { parent: HashMap::new() };
        for event in events {
            let mine = joined.root(&event.person_id, live);
            for gone in &event.absorbed {
                let other = joined.root(gone, live);
                if other != mine {
                    joined.parent.insert(other, mine.clone());
                }
            }
        }
        joined
    }

    pub fn root(&mut self, person: &str, live: &dyn Fn(&str) -> String) -> String {
        let mut person = live(person);
        loop {
            let Some(parent) = self.parent.get(&person).cloned() else { return person };
            if parent == person {
                return person;
            }
            let grand = self.parent.get(&parent).cloned().unwrap_or_else(|| parent.clone());
            self.parent.insert(person.clone(), grand.clone());
            person = grand;
        }
    }
}

/// Positions of the events, by group: events whose persons the batch's merges join.
pub fn groups(events: &[&Event], persons: &HashMap<String, Loaded>) -> Vec<Vec<usize>> {
    let live = |p: &str| live_person(p, persons);
    let mut joined = Joined::new(events.iter().copied(), &live);
    let mut order: Vec<String> = Vec::new();
    let mut by_root: HashMap<String, Vec<usize>> = HashMap::new();
    for (position, event) in events.iter().enumerate() {
        let root = joined.root(&event.person_id, &live);
        by_root
            .entry(root.clone())
            .or_insert_with(|| {
                order.push(root);
                Vec::new()
            })
            .push(position);
    }
    order.into_iter().map(|r| by_root.remove(&r).expect("grouped")).collect()
}

/// How changes are described: the time of the batch and the lifecycle rules.
#[derive(Clone, Copy, Debug)]
pub struct Describe {
    pub now: i64,
    pub rules: LifecycleRules,
}

fn publish(
    initial: &PersonState,
    old: Option<&Summary>,
    final_state: &PersonState,
    summary: &Summary,
    force: bool,
    guarded: bool,
    claimed: Option<&HashSet<String>>,
) -> Option<Publish> {
    let changed = force || !summary.same_answer(old);
    let tokens: Vec<String> = if changed {
        final_state.ids.iter().filter(|t| looked_up(t)).cloned().collect()
    } else {
        // New identifiers, and the cookies and device ids the person took over.
        final_state
            .ids
            .iter()
            .filter(|t| !initial.ids.contains(*t) || claimed.is_some_and(|c| c.contains(*t)))
            .filter(|t| looked_up(t))
            .cloned()
            .collect()
    };
    if tokens.is_empty() && !changed {
        return None;
    }
    Some(Publish {
        person_id: final_state.person_id.clone(),
        version: final_state.version,
        tokens,
        summary: summary.clone(),
        checked: !guarded,
    })
}

/// Apply one group's events (`positions` of `events`, in order) to its persons.
#[allow(clippy::too_many_arguments)]
pub fn fold_group(
    events: &[&Event],
    positions: &[usize],
    digests: &[&str],
    persons: &HashMap<String, Loaded>,
    found: &HashMap<usize, String>,
    describe: Option<&Describe>,
    new_person: &dyn Fn(&str) -> PersonState,
) -> (Vec<(usize, Outcome)>, GroupWrite) {
    let mut states: HashMap<String, Rc<PersonState>> = HashMap::new();
    let mut touched: Vec<String> = Vec::new(); // persons in the order first met
    let mut initial: HashMap<String, Rc<PersonState>> = HashMap::new();
    let mut redirects: HashMap<String, String> = HashMap::new();
    let mut summaries: HashMap<String, Option<Summary>> = HashMap::new();
    let mut stale: HashSet<String> = HashSet::new();
    let mut answered: HashMap<String, Option<Summary>> = HashMap::new();
    let mut merged: HashSet<String> = HashSet::new();
    let mut applied_here: HashMap<(String, String), String> = HashMap::new();
    let mut rewrite: BTreeSet<String> = BTreeSet::new();
    let mut claimed: HashMap<String, HashSet<String>> = HashMap::new();
    let mut write = GroupWrite::default();
    let mut outcomes: Vec<(usize, Outcome)> = Vec::new();

    let live = |person: &str, redirects: &HashMap<String, String>| -> String {
        let mut person = live_person(person, persons);
        while let Some(next) = redirects.get(&person) {
            person = next.clone();
        }
        person
    };

    macro_rules! state_of {
        ($person:expr) => {{
            let person: &String = $person;
            if !states.contains_key(person) {
                let loaded = persons.get(person);
                let state = match loaded {
                    Some(l) => Rc::clone(&l.state),
                    None => Rc::new(new_person(person)),
                };
                let summary = if state.version > 0 {
                    match loaded.and_then(|l| l.summary.clone()) {
                        Some(s) => Some(s),
                        None => Some(Summary::of(&state)),
                    }
                } else {
                    None
                };
                summaries.insert(person.clone(), summary.clone());
                answered.insert(person.clone(), summary);
                initial.insert(person.clone(), Rc::clone(&state));
                states.insert(person.clone(), state);
                touched.push(person.clone());
            }
            Rc::clone(&states[person])
        }};
    }

    for &position in positions {
        let event = events[position];
        let person = live(&event.person_id, &redirects);
        let mut state = state_of!(&person);
        let at = event.at;
        for gone_id in &event.absorbed {
            let gone = live(gone_id, &redirects);
            if gone == person || !persons.contains_key(&gone) {
                continue; // merged already (a redelivery), or never written
            }
            let other = state_of!(&gone);
            let unchanged = state.absorbed.contains(&other.person_id) || other.person_id == state.person_id;
            if !unchanged {
                state = Rc::new(merge(&state, &other, &event.event_id, at));
            }
            states.insert(person.clone(), Rc::clone(&state));
            summaries.insert(person.clone(), Some(Summary::of(&state)));
            redirects.insert(gone.clone(), person.clone());
            write.absorbed.push((gone.clone(), person.clone()));
            merged.insert(person.clone());
            let moved: Vec<(String, String)> = applied_here
                .iter()
                .filter(|((holder, _), _)| *holder == gone)
                .map(|((_, event_id), digest)| (event_id.clone(), digest.clone()))
                .collect();
            for (event_id, digest) in moved {
                applied_here.insert((person.clone(), event_id), digest);
            }
        }
        let digest = digests[position];
        let key = (person.clone(), event.event_id.clone());
        let seen: String = match found.get(&position).filter(|s| !s.is_empty()) {
            Some(text) => text.clone(),
            None => applied_here.get(&key).cloned().unwrap_or_default(),
        };
        if !seen.is_empty() && !same_content(&seen, digest) {
            outcomes.push((position, Outcome { status: Status::Conflict, person_id: person, changes: vec![] }));
            continue;
        }
        if !seen.is_empty() {
            let again = !applied_here.contains_key(&key);
            let recorded = if again { parse_marker(&seen).map(|(_, c)| c).unwrap_or_default() } else { vec![] };
            if again && state.version > 0 {
                rewrite.insert(person.clone());
            }
            outcomes.push((position, Outcome { status: Status::Duplicate, person_id: person, changes: recorded }));
            continue;
        }
        drop(state);
        // Copied on its first change in the batch (the state as read stays as read), then
        // changed in place.
        let entry = states.get_mut(&person).expect("met");
        let new = Rc::make_mut(entry);
        apply_in_place(new, event);
        let mut changes: Vec<Change> = Vec::new();
        if event.kind == Kind::Order || !event.absorbed.is_empty() {
            let after = Summary::of(new);
            if let Some(d) = describe {
                let before = summaries.get(&person).and_then(|s| s.as_ref());
                changes = profile_changes(before, &after, d.now, &d.rules, &event.absorbed);
            }
            summaries.insert(person.clone(), Some(after));
            stale.remove(&person);
        } else {
            stale.insert(person.clone());
        }
        if !event.claimed.is_empty() {
            claimed.entry(person.clone()).or_default().extend(event.claimed.iter().cloned());
        }
        write.markers.push((person.clone(), position, marker(digest, &changes)));
        outcomes.push((position, Outcome { status: Status::Applied, person_id: person.clone(), changes }));
        applied_here.insert(key, digest.to_owned());
        if event.kind == Kind::Detach {
            write.unlink.extend(event.identifiers.iter().cloned());
        }
    }
    // The group's new states under one new version, and the records they change.
    let changed: Vec<String> = touched
        .iter()
        .filter(|p| !redirects.contains_key(*p) && !Rc::ptr_eq(&states[*p], &initial[*p]))
        .cloned()
        .collect();
    let mut involved: Vec<&String> = changed.iter().collect();
    involved.extend(write.absorbed.iter().map(|(gone, _)| gone));
    let mut version = 0;
    if !involved.is_empty() {
        version = involved.iter().map(|p| initial[*p].version).max().expect("not empty") + 1;
        let unique: BTreeSet<&String> = involved.iter().copied().collect();
        write.guard = unique.into_iter().map(|p| (p.clone(), initial[p].version)).collect();
    }
    for person in &changed {
        let mut final_state = states.remove(person).expect("changed");
        Rc::make_mut(&mut final_state).version = version;
        let now = summaries[person].as_ref();
        let summary = match now {
            Some(s) if !stale.contains(person) => {
                let mut s = s.clone();
                s.version = version;
                s
            }
            _ => Summary::of(&final_state),
        };
        let force = merged.contains(person) || rewrite.contains(person);
        let record =
            publish(&initial[person], answered[person].as_ref(), &final_state, &summary, force, true, claimed.get(person));
        write.states.push(Rc::clone(&final_state));
        write.summaries.push(summary);
        if let Some(record) = record {
            write.publish.push(record);
        }
    }
    let changed_set: HashSet<&String> = changed.iter().collect();
    for person in &rewrite {
        if changed_set.contains(person) || redirects.contains_key(person) {
            continue;
        }
        let state = &states[person];
        if let Some(current) = summaries[person].as_ref() {
            if let Some(record) = publish(state, Some(current), state, current, true, false, None) {
                write.publish.push(record);
            }
        }
    }
    (outcomes, write)
}
