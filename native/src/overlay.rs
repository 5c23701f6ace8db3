//! The identity graph as a batch's decisions leave it, kept in memory between two round trips
//! (`bestand.identity.overlay`): each decision changes it exactly as `graph_apply.lua` will
//! change Redis, so a later event of the batch sees what an earlier one decided.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use crate::rules::{Decision, View};

/// Claims kept per cookie or device id that moved between persons (`MAX_CLAIMS`).
const MAX_CLAIMS: usize = 32;

/// What the rules need of one person: identifiers by kind, describing tokens, graph version.
#[derive(Clone, Debug, Default)]
pub struct PersonFacts {
    /// linking kinds only, by kind letter
    pub counts: HashMap<u8, i64>,
    /// names and households (owned by nobody)
    pub described: HashSet<String>,
    pub version: i64,
    /// movable token -> the time it was claimed
    pub claims: HashMap<String, i64>,
}

impl PersonFacts {
    /// Identifiers of the person's set by kind letter, describing ones included.
    pub fn kind_counts(&self) -> HashMap<u8, i64> {
        let mut counts: HashMap<u8, i64> =
            self.counts.iter().filter(|(_, n)| **n > 0).map(|(k, n)| (*k, *n)).collect();
        for token in &self.described {
            *counts.entry(token.as_bytes()[0]).or_insert(0) += 1;
        }
        counts
    }
}

/// What one decision was made on: Redis must still hold exactly this when it is applied.
pub struct Guard {
    /// token -> owner ("" for none), for tokens whose owner's version does not tell
    pub owners: Vec<(String, String)>,
    /// of those, the tokens that were not junk
    pub unflagged: Vec<String>,
    /// person -> graph version, every owner
    pub versions: Vec<(String, i64)>,
}

pub struct Overlay {
    owners: HashMap<String, String>,
    owned: HashMap<String, HashSet<String>>,
    junk: HashSet<String>,
    met: HashMap<String, HashSet<String>>,
    persons: HashMap<String, PersonFacts>,
    describing: Vec<u8>,
    redirects: HashMap<String, String>,
    /// holders by claim time of cookies and device ids that moved, oldest first
    claims: HashMap<String, Vec<(i64, String)>>,
}

impl Overlay {
    pub fn new(
        owners: HashMap<String, String>,
        junk: HashSet<String>,
        met: HashMap<String, HashSet<String>>,
        persons: HashMap<String, PersonFacts>,
        describing: &str,
        claims: HashMap<String, Vec<(i64, String)>>,
    ) -> Self {
        let mut owned: HashMap<String, HashSet<String>> = HashMap::new();
        for (token, owner) in &owners {
            owned.entry(owner.clone()).or_default().insert(token.clone());
        }
        Overlay {
            owners,
            owned,
            junk,
            met,
            persons,
            describing: describing.as_bytes().to_vec(),
            redirects: HashMap::new(),
            claims,
        }
    }

    fn live<'a>(&'a self, mut person: &'a str) -> &'a str {
        while let Some(next) = self.redirects.get(person) {
            person = next;
        }
        person
    }

    fn describes(&self, token: &str) -> bool {
        self.describing.contains(&token.as_bytes()[0])
    }

    /// Who held a cookie that moved between persons at time `at`, and its last claim's time,
    /// where that is another person than its holder now (and still there): `_holder_at`.
    fn holder_at(&self, token: &str, at: i64) -> Option<(String, i64)> {
        let held = self.claims.get(token)?;
        let last = held.last()?.0;
        if at >= last {
            return None;
        }
        let mut then = &held[0].1;
        for (time, person) in held {
            if *time > at {
                break;
            }
            then = person;
        }
        let then = self.live(then).to_owned();
        let version = self.persons.get(&then).map_or(0, |f| f.version);
        if self.owners.get(token) == Some(&then) || version < 1 {
            return None;
        }
        Some((then, last))
    }

    /// What the graph holds now about one event's identifiers (the rules' input); an event
    /// older than the last claim of a cookie that moved sees it with its holder then (`view`).
    pub fn view(&self, tokens: &[String], at: Option<i64>) -> View {
        let mut view = View::default();
        let mut held_then: Vec<(String, i64)> = Vec::new();
        for token in tokens {
            if let Some(owner) = self.owners.get(token) {
                let then = at.filter(|_| self.claims.contains_key(token)).and_then(|at| self.holder_at(token, at));
                match then {
                    Some((person, last)) => {
                        view.owners.insert(token.clone(), person);
                        held_then.push((token.clone(), last));
                    }
                    None => {
                        view.owners.insert(token.clone(), owner.clone());
                    }
                }
            }
            if self.junk.contains(token) {
                view.junk.insert(token.clone());
            }
            if let Some(found) = self.met.get(token) {
                if !found.is_empty() {
                    let now: HashSet<String> = found.iter().map(|p| self.live(p).to_owned()).collect();
                    view.met.insert(token.clone(), now);
                }
            }
        }
        let persons: HashSet<&String> = view.owners.values().collect();
        for person in persons {
            match self.persons.get(person) {
                None => {
                    view.kind_counts.insert(person.clone(), HashMap::new());
                    view.versions.insert(person.clone(), 0);
                    view.names.insert(person.clone(), HashSet::new());
                }
                Some(facts) => {
                    view.kind_counts.insert(person.clone(), facts.kind_counts());
                    view.versions.insert(person.clone(), facts.version);
                    let names = facts.described.iter().filter(|t| t.as_bytes()[0] == b'm').cloned().collect();
                    view.names.insert(person.clone(), names);
                    for (token, at) in &facts.claims {
                        if view.owners.get(token) == Some(person) {
                            view.claims.insert(token.clone(), *at);
                        }
                    }
                }
            }
        }
        view.claims.extend(held_then);
        view
    }

    /// The guard of a decision made on `view` (see `GraphOverlay.guard`: a token owned by a
    /// person with a version is checked through that version).
    pub fn guard(&self, tokens: &[String], view: &View) -> Guard {
        let mut owners: Vec<(String, String)> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut unflagged = Vec::new();
        for token in tokens {
            let owner = view.owners.get(token).map_or("", |o| o.as_str());
            if view.versions.get(owner).copied().unwrap_or(0) >= 1 {
                continue;
            }
            if seen.insert(token.as_str()) {
                owners.push((token.clone(), owner.to_owned()));
            }
            if !view.junk.contains(token) {
                unflagged.push(token.clone());
            }
        }
        let versions = view.versions.iter().map(|(p, v)| (p.clone(), *v)).collect();
        Guard { owners, unflagged, versions }
    }

    /// The facts of every person the overlay holds and the owner of every identifier, as the
    /// graph holds them once every decision applied was written.
    pub fn into_facts(self) -> (HashMap<String, String>, HashMap<String, PersonFacts>) {
        (self.owners, self.persons)
    }

    /// Change the overlay as `graph_apply.lua` changes Redis for this decision.
    pub fn apply(&mut self, decision: &Decision) {
        let person = decision.person.clone();
        self.persons.entry(person.clone()).or_default();
        for gone in &decision.absorbed {
            if let Some(other) = self.persons.remove(gone) {
                let facts = self.persons.get_mut(&person).expect("just inserted");
                for (k, n) in other.counts {
                    *facts.counts.entry(k).or_insert(0) += n;
                }
                facts.described.extend(other.described);
                facts.claims.extend(other.claims);
            }
            let owned = self.owned.remove(gone).unwrap_or_default();
            // Describing tokens are owned by nobody: a merge leaves them where they were.
            let (kept, moved): (HashSet<String>, HashSet<String>) =
                owned.into_iter().partition(|t| self.describing.contains(&t.as_bytes()[0]));
            if !kept.is_empty() {
                self.owned.insert(gone.clone(), kept);
            }
            for token in &moved {
                self.owners.insert(token.clone(), person.clone());
            }
            self.owned.entry(person.clone()).or_default().extend(moved);
            self.redirects.insert(gone.clone(), person.clone());
        }
        for (token, former) in &decision.moved {
            // As graph_apply.lua moves it: out of the former holder's set, facts and claims,
            // and onto the cookie's list of holders by claim time.
            if let Some(set) = self.owned.get_mut(former) {
                set.remove(token);
            }
            let since = self.persons.get(former).and_then(|h| h.claims.get(token).copied()).unwrap_or(0);
            let at = decision.claims.iter().find(|(t, _)| t == token).map_or(0, |(_, at)| *at);
            let held = self.claims.entry(token.clone()).or_default();
            if held.is_empty() {
                held.push((since, former.clone()));
            }
            held.push((at, person.clone()));
            if held.len() > MAX_CLAIMS {
                held.drain(..held.len() - MAX_CLAIMS);
            }
            if let Some(holder) = self.persons.get_mut(former) {
                let count = holder.counts.entry(token.as_bytes()[0]).or_insert(0);
                if *count > 0 {
                    *count -= 1;
                }
                holder.claims.remove(token);
                holder.version += 1;
            }
            self.owners.insert(token.clone(), person.clone());
            self.owned.entry(person.clone()).or_default().insert(token.clone());
            let facts = self.persons.get_mut(&person).expect("inserted above");
            *facts.counts.entry(token.as_bytes()[0]).or_insert(0) += 1;
        }
        for token in &decision.attach {
            self.owners.insert(token.clone(), person.clone());
            self.owned.entry(person.clone()).or_default().insert(token.clone());
            let describes = self.describes(token);
            let facts = self.persons.get_mut(&person).expect("inserted above");
            if describes {
                facts.described.insert(token.clone());
            } else {
                *facts.counts.entry(token.as_bytes()[0]).or_insert(0) += 1;
            }
        }
        {
            let facts = self.persons.get_mut(&person).expect("inserted above");
            facts.described.extend(decision.describe.iter().cloned());
            facts.claims.extend(decision.claims.iter().cloned());
        }
        for (token, met) in &decision.met {
            self.met.entry(token.clone()).or_default().insert(met.clone());
        }
        for (token, _) in &decision.junk {
            self.junk.insert(token.clone());
            let Some(former) = self.owners.remove(token) else { continue };
            self.claims.remove(token);
            if let Some(set) = self.owned.get_mut(&former) {
                set.remove(token);
            }
            if let Some(holder) = self.persons.get_mut(&former) {
                if holder.described.contains(token) {
                    holder.described.remove(token);
                } else {
                    let count = holder.counts.entry(token.as_bytes()[0]).or_insert(0);
                    if *count > 0 {
                        *count -= 1;
                    }
                }
                holder.claims.remove(token);
                if former != person {
                    holder.version += 1;
                }
            }
        }
        self.persons.get_mut(&person).expect("inserted above").version += 1;
    }
}
