"""A batch's events folded into the states of the persons they belong to: a pure function.

The store reads every person a batch names (following redirects of persons merged away) and
the dedupe markers of its events, in one round trip; :func:`fold_group` then applies the events
of one *group* (persons the batch joins by merges) in order: merges first, the reducer, the
summaries before and after each event and the changes they make. What it returns is plain
data: each event's outcome, and one all-or-nothing write the store makes under a
compare-and-set on every version it read. If another worker wrote one of the group's persons
in between, the write is refused and the group is read and folded again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from bestand.events import ResolvedEvent
from bestand.identity.kinds import looked_up
from bestand.profile.changes import Change
from bestand.profile.markers import marker, parse_marker, same_content
from bestand.profile.reducer import apply, merge
from bestand.profile.state import PersonState
from bestand.profile.summary import LookupSummary

#: What an applied event changed in whether a person is a customer and in its lifecycle stage:
#: the summary before (None: a new person) and after. Both rest on the person's orders alone,
#: so only an order event or a merge can change them, and only those are described.
Describe = Callable[[LookupSummary | None, LookupSummary, ResolvedEvent], Sequence[Change]]


@dataclass(slots=True)  # built per event: frozen would double that
class ApplyOutcome:
    """What applying one event did."""

    status: Literal["applied", "duplicate", "conflict"]
    person_id: str
    #: What the event changed: found now (applied), or recorded when it was applied (duplicate).
    changes: tuple[Change, ...] = ()


@dataclass(slots=True)  # built per event: frozen would double that
class Loaded:
    """A person as read: merged away (``redirect``), or its state with the version read (and
    the answer it gives, when known already)."""

    redirect: str | None
    state: PersonState
    summary: LookupSummary | None = None
    #: On a Redis Cluster, a person merged away whose survivor is not written yet keeps its
    #: last state beside its redirect (``store/cluster_profiles.py``).
    kept: PersonState | None = None


@dataclass(slots=True)  # built per event: frozen would double that
class Publish:
    """Lookup records to write for one person.

    Records of a person written under its compare-and-set only ever get newer; records
    written again without one (restoring what a dead try may have lost) are ``checked``:
    a record that holds a newer version stays.
    """

    state: PersonState
    tokens: tuple[str, ...]
    summary: LookupSummary
    checked: bool = False


@dataclass
class GroupWrite:
    """One group's write: all of it or nothing, under the versions it was folded from."""

    guard: list[tuple[str, int]] = field(default_factory=list)
    states: list[PersonState] = field(default_factory=list)
    summaries: list[LookupSummary] = field(default_factory=list)  # the answer of each state
    absorbed: list[tuple[str, str]] = field(default_factory=list)  # (person, survivor)
    markers: list[tuple[str, str, str]] = field(default_factory=list)  # (person, event, marker)
    publish: list[Publish] = field(default_factory=list)
    unlink: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing to write (every event was a duplicate whose records are in place)."""
        return not (self.states or self.absorbed or self.markers or self.publish or self.unlink)


def live_person(person_id: str, persons: Mapping[str, Loaded]) -> str:
    """The person ``person_id`` is now, following the redirects of persons merged away."""
    for _ in range(64):
        loaded = persons.get(person_id)
        if loaded is None or loaded.redirect is None:
            return person_id
        person_id = loaded.redirect
    return person_id


def joined(
    events: Sequence[ResolvedEvent], live: Callable[[str], str] = lambda person: person
) -> Callable[[str], str]:
    """Which person each person becomes once the events' merges joined them (one of each
    joined set stands for all of it); ``live`` maps a person id to whom it is now."""
    parent: dict[str, str] = {}

    def root(person: str) -> str:
        person = live(person)
        while parent.get(person, person) != person:
            parent[person] = parent.get(parent[person], parent[person])
            person = parent[person]
        return person

    for event in events:
        mine = root(event.person_id)
        for gone in event.absorbed:
            other = root(gone)
            if other != mine:
                parent[other] = mine
    return root


def groups(events: Sequence[ResolvedEvent], persons: Mapping[str, Loaded]) -> list[list[int]]:
    """Positions of the events, by group: events whose persons the batch's merges join."""
    root = joined(events, lambda person: live_person(person, persons))
    by_root: dict[str, list[int]] = {}
    for position, event in enumerate(events):
        by_root.setdefault(root(event.person_id), []).append(position)
    return list(by_root.values())


def _publish(
    initial: PersonState,
    old: LookupSummary | None,
    final: PersonState,
    summary: LookupSummary,
    *,
    force: bool,
    guarded: bool = True,
    claimed: frozenset[str] = frozenset(),
) -> Publish | None:
    """Records to write after ``initial`` (answering ``old``) became ``final`` (``summary``):
    every identifier's when the answer changed (or ``force``: after a merge, or to restore
    records a dead try did not write), else those of new identifiers and of the cookies and
    device ids the person took over (``claimed``)."""
    changed = force or not summary.same_answer(old)
    fresh = final.ids - initial.ids | (claimed & final.ids)
    tokens = tuple(sorted(t for t in (final.ids if changed else fresh) if looked_up(t)))
    if not tokens and not changed:
        return None
    return Publish(final, tokens, summary, checked=not guarded)


def fold_group(
    events: Sequence[ResolvedEvent],
    positions: Sequence[int],
    digests: Sequence[str],
    persons: Mapping[str, Loaded],
    found: Mapping[int, str],
    describe: Describe | None = None,
) -> tuple[list[tuple[int, ApplyOutcome]], GroupWrite]:
    """Apply one group's events (``positions`` of ``events``, in order) to its persons.

    ``persons`` holds every person the events name, as read; ``found`` the dedupe marker of
    an event already applied (by position). Every result is the one applying the events one
    at a time in order would give.
    """
    states: dict[str, PersonState] = {}
    initial: dict[str, PersonState] = {}
    redirects: dict[str, str] = {}  # merged away in this batch
    summaries: dict[str, LookupSummary | None] = {}  # the answer now (its orders' part, if stale)
    stale: set[str] = set()  # persons whose summary lags behind events other than orders
    answered: dict[str, LookupSummary | None] = {}  # the answer as read
    merged: set[str] = set()
    applied_here: dict[tuple[str, str], str] = {}  # (person, event) -> digest
    rewrite: set[str] = set()  # applied before: records written again in case they were lost
    claimed: dict[str, set[str]] = {}  # person -> cookies and device ids it took over
    write = GroupWrite()
    outcomes: list[tuple[int, ApplyOutcome]] = []

    def live(person_id: str) -> str:
        person_id = live_person(person_id, persons)
        while person_id in redirects:
            person_id = redirects[person_id]
        return person_id

    def state_of(person_id: str) -> PersonState:
        if person_id not in states:
            loaded = persons.get(person_id)
            state = loaded.state if loaded else PersonState(person_id=person_id)
            states[person_id] = initial[person_id] = state
            summary = None
            if state.version > 0:
                summary = loaded.summary if loaded and loaded.summary else LookupSummary.of(state)
            summaries[person_id] = answered[person_id] = summary
        return states[person_id]

    for position in positions:
        event = events[position]
        person = live(event.person_id)
        state = state_of(person)
        at = event.at
        for gone_id in event.absorbed:
            gone = live(gone_id)
            if gone == person or persons.get(gone) is None:
                continue  # merged already (a redelivery), or never written
            other = state_of(gone)
            state = merge(state, other, event_id=event.event_id, at=at)
            states[person] = state
            summaries[person] = LookupSummary.of(state)
            redirects[gone] = person
            write.absorbed.append((gone, person))
            merged.add(person)
            for (holder, event_id), seen_digest in list(applied_here.items()):
                if holder == gone:  # its events are the survivor's now
                    applied_here[(person, event_id)] = seen_digest
        digest = digests[position]
        seen = found.get(position) or applied_here.get((person, event.event_id), "")
        if seen and not same_content(seen, digest):
            outcomes.append((position, ApplyOutcome("conflict", person)))
            continue
        if seen:
            # Found in Redis: applied by an earlier try, whose changes go out again (and whose
            # records are written again). Earlier in this batch: its changes go out with it.
            again = (person, event.event_id) not in applied_here
            recorded = parse_marker(seen)[1] if again else ()
            if again and state.version > 0:
                rewrite.add(person)
            outcomes.append((position, ApplyOutcome("duplicate", person, changes=recorded)))
            continue
        new = apply(state, event)
        changes: tuple[Change, ...] = ()
        if event.kind == "order" or event.absorbed:
            before, after = summaries[person], LookupSummary.of(new)
            changes = tuple(describe(before, after, event)) if describe else ()
            summaries[person] = after
            stale.discard(person)
        else:
            stale.add(person)  # a click moves no order: the summary is made again at the end
        outcomes.append((position, ApplyOutcome("applied", person, changes=changes)))
        if event.claimed:
            claimed.setdefault(person, set()).update(event.claimed)
        write.markers.append((person, event.event_id, marker(digest, changes)))
        applied_here[(person, event.event_id)] = digest
        states[person] = new
        if event.kind == "detach":
            write.unlink.extend(event.identifiers)
    # The group's new states under one new version, and the records they change.
    changed = [p for p in states if p not in redirects and states[p] is not initial[p]]
    involved = [*changed, *(gone for gone, _ in write.absorbed)]
    if involved:
        version = max(initial[p].version for p in involved) + 1
        write.guard = [(p, initial[p].version) for p in sorted(set(involved))]
    for person in changed:
        final = states[person].evolve(version=version)
        now = summaries[person]
        if now is None or person in stale:
            summary = LookupSummary.of(final)
        else:
            summary = replace(now, version=version)
        write.states.append(final)
        write.summaries.append(summary)
        force = person in merged or person in rewrite
        took = frozenset(claimed.get(person, ()))
        record = _publish(
            initial[person], answered[person], final, summary, force=force, claimed=took
        )
        if record is not None:
            write.publish.append(record)
    for person in sorted(rewrite - set(changed) - set(redirects)):
        state, current = states[person], summaries[person]  # unchanged: not stale
        if current is not None:
            record = _publish(state, current, state, current, force=True, guarded=False)
            if record is not None:
                write.publish.append(record)
    return outcomes, write
