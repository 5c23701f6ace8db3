"""Identity rules: which person an event belongs to, and which persons it joins.

A pure function over what the graph holds about the event's identifiers (read in one round
trip); the store applies the decision atomically, guarded so that a concurrent change makes it
read and decide again. Every link, merge, refusal and junk flag becomes an explain entry.

How an event is resolved:

1. Identifiers flagged as junk (by pattern, or because they joined too many persons) are
   ignored. So is an anchor whose person gave another name than the event (a family e-mail,
   a shop's dummy address): the meeting is counted towards its junk limit.
2. The strongest identifier anchors the event: its owner, or a new person when it is new.
   One that has met another person anchors only when no unshared one can, unless it is a
   customer id (the account an order was placed under).
   (So an order with a new customer id and a shared e-mail goes to the new customer, and the
   e-mail's owner is not joined to it when the policy allows one customer id per person.)
3. Every other identifier, strongest first: a new one is attached (within the per-person cap
   of its kind); one owned by another person joins that person when its kind links
   (``strong``; ``weak`` only when at most one side is known or both go by one name), no cap
   is exceeded, it has not joined too many persons already, and the two sides' names (where
   both gave one) agree; otherwise the refusal is recorded and the identifier stays where it
   is. Every person an identifier meets besides its owner is recorded; at ``max_persons`` it
   becomes junk.
4. The survivor of a merge is the smallest existing person id, so ids stay stable and the
   result does not depend on which partition saw which event first.
5. A cookie or device id answers for who uses it now. Where it would join two known persons
   or two persons of different names (which step 3 refuses), an event that names its person
   (a login, an order, a sign-up: a strong identifier other than an order id links it)
   takes it over instead: the identifier *moves* to the event's person, the former holder
   keeps the rest of its history, and both persons' explain logs record the move. Each such
   identifier carries the event time of its claim (the identifying event that attached,
   took over or moved it); an event older than the claim leaves it where it is, so late
   events do not move it back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from bestand.identity.kinds import KIND_NAMES, MOVABLE, STRENGTH, IdKind, kind_of
from bestand.identity.policy import IdentityPolicy

#: The id a new person would get: given, or made when asked (most events find their person,
#: and deriving an id costs a keyed hash).
NewPerson = str | Callable[[], str]


def _new_person(candidate: NewPerson) -> str:
    return candidate if isinstance(candidate, str) else candidate()


EntryKind = Literal["new", "link", "merge", "move", "refused", "junk"]


@dataclass(slots=True)  # built per event: frozen would double that
class GraphView:
    """What the graph holds about one event's identifiers."""

    owners: Mapping[str, str] = field(default_factory=dict)  # token -> person
    junk: frozenset[str] = frozenset()  # tokens flagged as junk
    met: Mapping[str, frozenset[str]] = field(default_factory=dict)  # token -> others it met
    kind_counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # person -> kinds
    versions: Mapping[str, int] = field(default_factory=dict)  # person -> graph version
    names: Mapping[str, frozenset[str]] = field(default_factory=dict)  # person -> name tokens
    claims: Mapping[str, int] = field(default_factory=dict)  # movable token -> claimed at


@dataclass(slots=True)  # built per event: frozen would double that
class LogEntry:
    """One explain entry: what happened to which identifiers, by which rule."""

    kind: EntryKind
    tokens: tuple[str, ...]
    rule: str
    via: str | None = None
    other: str | None = None

    def to_json(self, event_id: str, at: int) -> dict[str, Any]:
        """The stored form (compact keys; hashed identifiers only)."""
        data: dict[str, Any] = {
            "k": self.kind,
            "e": event_id,
            "at": at,
            "t": list(self.tokens),
            "r": self.rule,
        }
        if self.via is not None:
            data["via"] = self.via
        if self.other is not None:
            data["o"] = self.other
        return data


@dataclass(slots=True)  # built per event: frozen would double that
class Decision:
    """What resolving one event changes in the graph."""

    person: str
    absorbed: tuple[str, ...]
    attach: tuple[str, ...]
    describe: tuple[str, ...]  # names and households added to the person, owned by nobody
    met: tuple[tuple[str, str], ...]  # (token, person it met besides its owner)
    junk: tuple[tuple[str, str], ...]
    log: tuple[LogEntry, ...]
    identifiers: tuple[str, ...]  # the event's identifiers that belong to ``person`` now
    ignored: tuple[str, ...]  # the event's identifiers that do not (junk, refused, elsewhere)
    is_new: bool = False
    moved: tuple[tuple[str, str], ...] = ()  # (token, former holder): movable ones taken over
    claims: tuple[tuple[str, int], ...] = ()  # (movable token, claimed at) the person records


_RANK: dict[str, int] = {kind.value: rank for rank, kind in enumerate(STRENGTH)}
_NAME = IdKind.NAME.value
_ORDER = IdKind.ORDER.value


def _strength(token: str) -> int:
    rank = _RANK.get(token[:1])
    return STRENGTH.index(kind_of(token)) if rank is None else rank  # kind_of names a bad one


def _logged(attach: Sequence[str]) -> tuple[str, ...]:
    """The identifiers an entry names: an order id joins the person whose order it is (the
    person's state holds its orders), so it is left out of the explain log, unless a new
    person began with nothing else; a third of a shop's link entries named order ids alone
    (README, Memory)."""
    return tuple(token for token in attach if token[0] != _ORDER)


def _name(kind: IdKind) -> str:
    return KIND_NAMES[kind]


class Unattributable(ValueError):
    """No identifier of the event can name a person (all are junk, or shared by others).

    ``junk`` holds identifiers this event found over their limit: they are flagged even so.
    """

    def __init__(self, message: str, junk: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.junk = tuple(junk)
        self.owners: dict[str, str] = {}  # owners of the junk identifiers, set by the store


class _AnchorIsJunk(Exception):
    def __init__(self, token: str, why: str) -> None:
        super().__init__(why)
        self.token = token
        self.why = why


class _AnchorNamesDiffer(Exception):
    def __init__(self, token: str, owner: str) -> None:
        super().__init__(token)
        self.token = token
        self.owner = owner


def decide(
    tokens: Sequence[str],
    view: GraphView,
    policy: IdentityPolicy,
    candidate: NewPerson,
    pattern_junk: Sequence[tuple[str, str]] = (),
    at: int = 0,
) -> Decision:
    """Resolve an event's identifier tokens (``kind:hash``) to one person; ``at`` is the
    event's time (epoch seconds), which orders the claims on cookies and device ids."""
    known = None if pattern_junk else _without_meetings(tokens, view, policy, candidate, at)
    if known is not None:
        return known
    flagged: list[tuple[str, str]] = []
    shared: list[tuple[str, str]] = []  # (anchor whose owner has another name, that owner)
    while True:
        try:
            decision = _decide(tokens, view, policy, candidate, pattern_junk, at)
        except Unattributable as exc:
            # Identifiers set aside for a different name met one more person (nameless here).
            for token, owner in shared:
                count = len({*view.met.get(token, frozenset()), owner}) + 1
                cap = policy.of(kind_of(token)).max_persons
                if count > cap:
                    flagged.append(
                        (token, f"{_name(kind_of(token))} joined {count} persons (limit {cap})")
                    )
            raise Unattributable(str(exc), flagged) from None
        except _AnchorIsJunk as exc:
            # The identifier that anchored the event has joined too many persons: flag it
            # and resolve the event again without it.
            flagged.append((exc.token, exc.why))
            view = replace(view, junk=view.junk | {exc.token})
            continue
        except _AnchorNamesDiffer as exc:
            # The anchor belongs to someone with another name (a family e-mail, a shop's
            # dummy address): resolve the event without it, and count the meeting.
            shared.append((exc.token, exc.owner))
            view = replace(view, junk=view.junk | {exc.token})
            continue
        break
    if not flagged and not shared:
        return decision
    entries = [LogEntry("junk", (t,), why) for t, why in flagged]
    met = list(decision.met)
    for token, owner in shared:
        entries.append(
            LogEntry("refused", (token,), "names differ: shared with another person", other=owner)
        )
        met.append((token, decision.person))
        persons = {*view.met.get(token, frozenset()), owner, decision.person}
        limit = policy.of(kind_of(token)).max_persons
        if len(persons) > limit:
            why = f"{_name(kind_of(token))} joined {len(persons)} persons (limit {limit})"
            flagged.append((token, why))
            entries.append(LogEntry("junk", (token,), why, other=owner))
    return replace(
        decision,
        met=tuple(dict.fromkeys(met)),
        junk=(*flagged, *decision.junk),
        log=(*entries, *decision.log),
        ignored=tuple(
            dict.fromkeys((*decision.ignored, *(t for t, _ in flagged), *(t for t, _ in shared)))
        ),
    )


def _identifying(tokens: Sequence[str], policy: IdentityPolicy) -> bool:
    """Do these identifiers of an event, linked to its person, name that person (a login, an
    order's buyer, a sign-up: a strong identifier other than an order id)? Only such an
    event claims a cookie or device id."""
    return any(t[0] != _ORDER and policy.of(kind_of(t)).link == "strong" for t in tokens)


def _without_meetings(
    tokens: Sequence[str],
    view: GraphView,
    policy: IdentityPolicy,
    candidate: NewPerson,
    at: int = 0,
) -> Decision | None:
    """The decision when the event meets no other person: none of its identifiers is junk or
    has met anyone, and the owned ones all belong to the person of the strongest (a known
    visitor's next click, a customer's next order, a stranger's first page). The rules below
    would decide exactly this, at a fraction of the cost; ``None`` when it does not apply
    (they decide then, caps and name checks included)."""
    junk, met, owners, never = view.junk, view.met, view.owners, policy.describing
    owner: str | None = None
    linking: list[str] = []
    describe: list[str] = []
    new = False
    for token in sorted(dict.fromkeys(tokens), key=_strength):
        if token in junk or met.get(token):
            return None
        if token[0] in never:
            describe.append(token)
            continue
        found = owners.get(token)
        if found is None:
            new = True
        elif owner is None:
            if linking:  # a new anchor meets someone's identifier
                return None
            owner = found
        elif found != owner:
            return None
        linking.append(token)
    if not linking:
        return None
    if owner is not None and describe:
        names = frozenset(t for t in describe if t[0] == _NAME)
        theirs = view.names.get(owner)
        if names and theirs and names.isdisjoint(theirs):
            return None
    attach: tuple[str, ...] = ()
    if new:
        counts = dict(view.kind_counts.get(owner, {})) if owner is not None else {}
        added: list[str] = []
        for position, token in enumerate(linking):
            if owner is not None and token in owners:
                continue
            letter = token[0]
            if position > 0:  # a new person's anchor is the first of its kind
                cap = policy.caps.get(letter)
                if cap is not None and counts.get(letter, 0) + 1 > cap:
                    return None
            added.append(token)
            counts[letter] = counts.get(letter, 0) + 1
        attach = tuple(added)
    anchor = linking[0]
    claims: tuple[tuple[str, int], ...] = ()
    if attach and _identifying(linking, policy):
        claims = tuple((t, at) for t in attach if t[0] in MOVABLE)
    log: tuple[LogEntry, ...] = ()
    if owner is None:
        began = _logged(attach) or attach
        log = (LogEntry("new", began, f"new person from {_name(kind_of(anchor))}"),)
    elif logged := _logged(attach):
        log = (LogEntry("link", logged, f"seen with {_name(kind_of(anchor))}", via=anchor),)
    return Decision(
        person=owner or _new_person(candidate),
        absorbed=(),
        attach=attach,
        describe=tuple(describe),
        met=(),
        junk=(),
        log=log,
        identifiers=tuple(linking),
        ignored=(),
        is_new=owner is None,
        claims=claims,
    )


def _decide(
    tokens: Sequence[str],
    view: GraphView,
    policy: IdentityPolicy,
    candidate: NewPerson,
    pattern_junk: Sequence[tuple[str, str]],
    at: int,
) -> Decision:
    ordered = sorted(dict.fromkeys(tokens), key=_strength)
    log: list[LogEntry] = [LogEntry("junk", (t,), f"ignored: {why}") for t, why in pattern_junk]
    ignored = [t for t, _ in pattern_junk]
    ignored += [t for t in ordered if t in view.junk]
    # An identifier that has already met another person (a family e-mail, a dummy that is not
    # on the junk list yet) anchors and joins only after every unshared one had its turn. A
    # customer id is the exception: the account an order was placed under names its buyer,
    # even when its e-mail is the family's (a shared account is junk at its limit instead).
    candidates = [t for t in ordered if t not in view.junk]
    # Names and households describe the person; many people share them, so nobody owns them.
    describe = [t for t in candidates if t[0] in policy.describing]
    usable = sorted(
        (t for t in candidates if t not in describe),
        key=lambda t: kind_of(t) is not IdKind.CUSTOMER and bool(view.met.get(t)),
    )
    if not usable:
        raise Unattributable("no identifier of the event can name a person")
    anchor = usable[0]

    def known(kinds: Mapping[str, int]) -> bool:
        """Does a person have an identifier that names someone (not just an order)?"""
        return any(
            n > 0 and k != _ORDER and policy.of(kind_of(k)).link == "strong"
            for k, n in kinds.items()
        )

    owner = view.owners.get(anchor)
    event_names = frozenset(t for t in describe if kind_of(t) is IdKind.NAME)
    if (
        owner
        and event_names
        and view.names.get(owner)
        and event_names.isdisjoint(view.names[owner])
    ):
        raise _AnchorNamesDiffer(anchor, owner)
    names = set(event_names) | set(view.names.get(owner, ())) if owner else set(event_names)
    group: set[str] = {owner} if owner else set()
    counts: Counter[str] = Counter(view.kind_counts.get(owner, {})) if owner else Counter()
    attach: list[str] = []
    if not owner:
        attach.append(anchor)
        counts[anchor[0]] += 1
    met: list[tuple[str, str]] = []
    junk: list[tuple[str, str]] = []
    joins: list[tuple[str, str, str]] = []  # (person the token belonged to, token, rule)
    refused_by_new: list[str] = []  # identifiers a person new in this event could not join
    moves: list[tuple[str, str]] = []  # (token, its holder): taken over by this event's person
    linked = [anchor]

    def refuse(token: str, rule: str, other: str | None = None) -> None:
        log.append(LogEntry("refused", (token,), rule, via=anchor, other=other))
        ignored.append(token)

    def over_limit(token: str, holder: str) -> bool:
        """Record whom the meeting identifiers met; flag one that met too many persons.

        Persons are counted as a set, so the same two persons meeting again (a family
        laptop, visit after visit) count once. The persons this one event joins become one,
        so the anchor counts them as one meeting: an order whose return came first (a person
        of its own) that joins its buyer's e-mail and cookie has met one person, not two.
        """
        meeting = [(token, holder, owner)] + ([(anchor, owner, holder)] if owner else [])
        for t, mine, other in meeting:
            if other is None:
                continue
            met.append((t, other))
            before = set(view.met.get(t, frozenset())) | {mine}
            now = {o for x, o in met if x == t} - before
            seen = len(before) + (1 if now and t == anchor else len(now))
            limit = policy.of(kind_of(t)).max_persons
            if seen > limit:
                why = f"{_name(kind_of(t))} joined {seen} persons (limit {limit})"
                if t == anchor:
                    raise _AnchorIsJunk(t, why)
                junk.append((t, why))
                log.append(LogEntry("junk", (t,), why, via=anchor, other=holder))
                return True
        return False

    def conflict(
        holder: str, theirs: Mapping[str, int], kind: IdKind, link: str
    ) -> tuple[str | None, bool]:
        """Why the anchor's side may not join ``holder``'s person (None: it may), and
        whether that reason still lets a cookie or device id move (two persons who share
        it, by their names or as two known persons)."""
        their_names = view.names.get(holder, frozenset())
        if names and their_names and their_names.isdisjoint(names):
            return f"names differ: {_name(kind)} shared by two people", True
        same_name = bool(names and their_names)  # both named, and (see above) alike
        if link == "weak" and known(counts) and known(theirs) and not same_name:
            return f"weak {_name(kind)} joins two known persons only under one name", True
        for k in sorted(set(counts) | set(theirs)):
            cap = policy.of(kind_of(k)).max_per_person
            total = counts[k] + theirs.get(k, 0)
            if cap is not None and total > cap:
                return f"one person would have {total} {_name(kind_of(k))} (limit {cap})", False
        return None, False

    for token in usable:
        if token == anchor:
            continue
        kind = kind_of(token)
        rules = policy.of(kind)
        holder = view.owners.get(token)
        if holder is None:
            cap = rules.max_per_person
            if cap is not None and counts[kind.value] + 1 > cap:
                refuse(token, f"person already has {cap} {_name(kind)}")
                continue
            attach.append(token)
            counts[kind.value] += 1
            linked.append(token)
            continue
        if holder in group:
            linked.append(token)
            continue
        # The identifier meets another person: both it and the anchor record the meeting, so
        # a dummy e-mail that keeps anchoring strangers' orders reaches its limit too.
        if over_limit(token, holder):
            ignored.append(token)
            continue
        theirs = view.kind_counts.get(holder, {})
        reason, shared_by_two = conflict(holder, theirs, kind, rules.link)
        if shared_by_two and token[0] in MOVABLE and _identifying(linked, policy):
            claimed = view.claims.get(token, 0)
            if at >= claimed:
                # Who signs in on a browser uses it now: the cookie moves, nobody merges.
                moves.append((token, holder))
                counts[kind.value] += 1
                linked.append(token)
                continue
            reason = f"{_name(kind)} was claimed later by another person"
        if reason is not None:
            refuse(token, reason, holder)
            if not owner:
                refused_by_new.append(token)
            continue
        group.add(holder)
        counts.update(theirs)
        names.update(view.names.get(holder, ()))
        linked.append(token)
        joins.append((holder, token, f"{rules.link} {_name(kind)}"))

    person = min(group) if group else _new_person(candidate)
    absorbed = tuple(sorted(group - {person}))
    moved: list[tuple[str, str]] = []
    for token, holder in moves:
        if not owner:
            # A person new in this event met the identifier: counted as for a refused link.
            limit = policy.of(kind_of(token)).max_persons
            persons_met = {*view.met.get(token, frozenset()), holder, person}
            if len(persons_met) > limit:
                why = f"{_name(kind_of(token))} joined {len(persons_met)} persons (limit {limit})"
                met.append((token, person))
                junk.append((token, why))
                log.append(LogEntry("junk", (token,), why, other=holder))
                linked.remove(token)
                ignored.append(token)
                continue
        moved.append((token, holder))
        met.append((token, holder))  # the persons it joined are counted as before
        rule = f"{_name(kind_of(token))} moves to the person identified on it"
        log.append(LogEntry("move", (token,), rule, via=anchor, other=holder))
    claims: list[tuple[str, int]] = []
    if _identifying(linked, policy):
        # The cookies and device ids this event attaches, joins (an anonymous visitor who
        # signs up) or moves are claimed at its time, unless claimed later already.
        claims += [(t, at) for t in attach if t[0] in MOVABLE]
        claims += [(t, at) for _, t, _ in joins if t[0] in MOVABLE and view.claims.get(t, -1) < at]
        claims += [(t, at) for t, _ in moved]
    for token in refused_by_new:
        met.append((token, person))
        limit = policy.of(kind_of(token)).max_persons
        persons_met = {*view.met.get(token, frozenset()), view.owners[token], person}
        if len(persons_met) > limit:
            why = f"{_name(kind_of(token))} joined {len(persons_met)} persons (limit {limit})"
            junk.append((token, why))
            log.append(LogEntry("junk", (token,), why, other=view.owners[token]))
    for holder, token, rule in joins:
        # The token's person survives when its id is the smallest: then the anchor's side
        # (its owner, or only new identifiers) is what joined it.
        gone = holder if holder != person else owner
        if gone is not None and gone != person:
            log.append(LogEntry("merge", (token,), rule, via=anchor, other=gone))
    if not group:
        began = _logged(attach) or tuple(attach)
        first = LogEntry("new", began, f"new person from {_name(kind_of(anchor))}")
        log.insert(len(pattern_junk), first)
    elif logged := _logged(attach):
        via = anchor if anchor not in attach else (joins[0][1] if joins else None)
        rule = f"seen with {_name(kind_of(via or anchor))}"
        log.append(LogEntry("link", logged, rule, via=via))
    return Decision(
        person=person,
        absorbed=absorbed,
        attach=tuple(attach),
        describe=tuple(describe),
        met=tuple(dict.fromkeys(met)),
        junk=tuple(junk),
        log=tuple(log),
        identifiers=tuple(linked),
        ignored=tuple(dict.fromkeys(ignored)),
        is_new=not group,
        moved=tuple(moved),
        claims=tuple(claims),
    )
