"""The compiled identity rules decide as the Python ones do: the same person, the same merges,
attaches, meetings and junk flags, and the same explain entries word for word, in the same
order; or the same refusal to name anyone.

The graphs are small and drawn from few identifiers and persons, so that owners, junk, past
meetings, names and caps collide: every rule, retry and refusal gets its turn.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import bestand_native as native
from hypothesis import given, settings
from hypothesis import strategies as st

from bestand.identity.kinds import KIND_NAMES, STRENGTH
from bestand.identity.policy import IdentityPolicy
from bestand.identity.rules import Decision, GraphView, Unattributable, decide

_LETTERS = "".join(kind.value for kind in STRENGTH)
#: Mostly kinds that link, so that events find and join persons; names and households too.
_TOKENS = st.builds(
    lambda letter, h: f"{letter}:{h}",
    st.sampled_from("ceeppoonfdaahmm"),
    st.sampled_from("123"),
)
_NAMES = st.sampled_from(["m:1", "m:2", "m:3"])
#: An empty id is no person to Python's tests for truth; "NEW" is the new person's id.
_PERSONS = ["P1", "P2", "P3", "P4", "P5", "P1", "P2", "NEW", ""]
# Strategies are built once: the graphs pick from the drawn pool and persons by index.
_POOL = st.lists(_TOKENS, min_size=2, max_size=9, unique=True)
_AT = st.integers(0, 8)
_EVENT = st.lists(_AT, min_size=1, max_size=7)
_GRAPH_PERSONS = st.lists(st.sampled_from(_PERSONS), min_size=1, max_size=4, unique=True)
_OWNERS = st.lists(st.tuples(_AT, _AT), min_size=1, max_size=9)
_JUNK: st.SearchStrategy[list[int]] = st.one_of(st.just([]), st.just([]), st.lists(_AT, max_size=2))
_MET = st.lists(st.tuples(_AT, st.lists(st.integers(0, 12), max_size=3)), max_size=4)
_COUNTS = st.tuples(
    st.booleans(),  # as the graph keeps them: one per owned identifier
    st.lists(st.tuples(_AT, st.sampled_from(_LETTERS), st.integers(0, 3)), max_size=6),
)
_PERSON_NAMES = st.lists(st.tuples(_AT, st.lists(_NAMES, max_size=2)), max_size=4)
#: Claims on some identifiers, and the event's time, both from a few seconds: ties too.
_CLAIMS = st.lists(st.tuples(_AT, st.integers(0, 4)), max_size=4)
_EVENT_AT = st.integers(0, 4)
_PATTERN_JUNK: st.SearchStrategy[list[tuple[str, str]]] = st.one_of(
    st.just([]),
    st.just([]),
    st.just([]),
    st.lists(st.tuples(_TOKENS, st.sampled_from(["dummy", "test address"])), max_size=2),
)
_OVERRIDES = st.lists(
    st.tuples(
        st.sampled_from(sorted(KIND_NAMES.values())),
        st.one_of(st.none(), st.sampled_from(["strong", "weak", "never"])),
        st.one_of(st.none(), st.integers(1, 4)),
        st.one_of(st.just("keep"), st.none(), st.integers(-1, 3)),
    ),
    max_size=4,
)


def _policy_of(policy: IdentityPolicy) -> dict[str, tuple[str, int, int | None]]:
    return {k.value: (p.link, p.max_persons, p.max_per_person) for k, p in policy.kinds.items()}


@st.composite
def _policies(draw: st.DrawFn) -> IdentityPolicy:
    if draw(st.booleans()):
        return IdentityPolicy.default()
    overrides: dict[str, dict[str, object]] = {}
    for name, link, max_persons, per_person in draw(_OVERRIDES):
        fields = overrides.setdefault(name, {})
        if link is not None:
            fields["link"] = link
        if max_persons is not None:
            fields["max_persons"] = max_persons
        if per_person != "keep":
            fields["max_per_person"] = per_person
    return IdentityPolicy.with_overrides(overrides)


@st.composite
def _cases(draw: st.DrawFn) -> tuple[list[str], GraphView, list[tuple[str, str]], int]:
    pool = draw(_POOL)
    persons = draw(_GRAPH_PERSONS)

    def token(i: int) -> str:
        return pool[i % len(pool)]

    def person(i: int) -> str:
        return persons[i % len(persons)]

    tokens = [token(i) for i in draw(_EVENT)]
    owners = {token(i): person(j) for i, j in draw(_OWNERS)}
    junk = frozenset(token(i) for i in draw(_JUNK))
    met = {  # mostly the graph's persons, some others
        token(i): frozenset(person(j) if j < 4 else _PERSONS[j - 4] for j in js)
        for i, js in draw(_MET)
    }
    counts: dict[str, dict[str, int]] = {}
    by_owner, extra = draw(_COUNTS)
    for t, owner in owners.items() if by_owner else ():
        kinds = counts.setdefault(owner, {})
        kinds[t[0]] = kinds.get(t[0], 0) + 1
    for j, letter, n in extra:
        kinds = counts.setdefault(person(j), {})
        kinds[letter] = kinds.get(letter, 0) + n
    names = {person(j): frozenset(ns) for j, ns in draw(_PERSON_NAMES)}
    versions = {p: n for n, p in enumerate(persons)}
    claims = {token(i): at for i, at in draw(_CLAIMS)}
    view = GraphView(
        owners=owners,
        junk=junk,
        met=met,
        kind_counts=counts,
        versions=versions,
        names=names,
        claims=claims,
    )
    return tokens, view, draw(_PATTERN_JUNK), draw(_EVENT_AT)


def _plain(view: GraphView) -> dict[str, Any]:
    """The view as the compiled rules' test entry takes it."""
    return {
        "owners": dict(view.owners),
        "junk": sorted(view.junk),
        "met": {t: set(persons) for t, persons in view.met.items()},
        "kind_counts": {p: dict(kinds) for p, kinds in view.kind_counts.items()},
        "versions": dict(view.versions),
        "names": {p: list(names) for p, names in view.names.items()},
        "claims": dict(view.claims),
    }


def _python(
    tokens: list[str],
    view: GraphView,
    policy: IdentityPolicy,
    pattern_junk: list[tuple[str, str]],
    at: int,
) -> dict[str, Any]:
    """Python's answer in the compiled entry's form."""
    try:
        d: Decision = decide(tokens, view, policy, "NEW", pattern_junk, at)
    except Unattributable as exc:
        return {"unattributable": str(exc), "junk": [list(j) for j in exc.junk]}
    return {
        "person": d.person,
        "absorbed": list(d.absorbed),
        "attach": list(d.attach),
        "describe": list(d.describe),
        "met": [list(m) for m in d.met],
        "junk": [list(j) for j in d.junk],
        "log": [
            {
                "kind": e.kind,
                "tokens": list(e.tokens),
                "rule": e.rule,
                "via": e.via,
                "other": e.other,
            }
            for e in d.log
        ],
        "identifiers": list(d.identifiers),
        "ignored": list(d.ignored),
        "is_new": d.is_new,
        "moved": [list(m) for m in d.moved],
        "claims": [tuple(c) for c in d.claims],
    }


def _asked(
    tokens: list[str],
    view: GraphView,
    policy: IdentityPolicy,
    pattern_junk: list[tuple[str, str]],
    at: int,
) -> int:
    """How often Python asks for the new person's id."""
    calls: list[int] = []

    def candidate() -> str:
        calls.append(1)
        return "NEW"

    with contextlib.suppress(Unattributable):
        decide(tokens, view, policy, candidate, pattern_junk, at)
    return len(calls)


def _same(
    tokens: list[str],
    view: GraphView,
    policy: IdentityPolicy,
    pattern_junk: Sequence[tuple[str, str]] = (),
    at: int = 0,
) -> dict[str, Any]:
    expected = _python(tokens, view, policy, list(pattern_junk), at)
    got = native.decide_for_test(
        tokens, _plain(view), _policy_of(policy), "NEW", list(pattern_junk), at
    )
    asked = got.pop("candidate_asked")
    context = (tokens, view, pattern_junk, policy)
    assert set(got) == set(expected), (got, expected, context)
    for key in expected:
        if key == "log":
            assert len(got["log"]) == len(expected["log"]), (got, expected, context)
            for mine, theirs in zip(got["log"], expected["log"], strict=True):
                assert mine == theirs, (got, expected, context)
        else:
            assert got[key] == expected[key], (key, got, expected, context)
    assert asked == _asked(tokens, view, policy, list(pattern_junk), at), context
    return got


@settings(max_examples=800, deadline=None)
@given(case=_cases(), policy=_policies())
def test_compiled_rules_decide_as_the_python_rules(
    case: tuple[list[str], GraphView, list[tuple[str, str]], int], policy: IdentityPolicy
) -> None:
    tokens, view, pattern_junk, at = case
    _same(tokens, view, policy, pattern_junk, at)


POLICY = IdentityPolicy.default()


def _view(owners: dict[str, str], **kw: Any) -> GraphView:
    """Owners with their kind counts (as tests/unit/test_rules.py builds them)."""
    counts: dict[str, dict[str, int]] = {}
    for token, person in owners.items():
        counts.setdefault(person, {}).setdefault(token[0], 0)
        counts[person][token[0]] += 1
    for person, kinds in kw.pop("kind_counts", {}).items():
        for kind, n in kinds.items():
            counts.setdefault(person, {})[kind] = counts.get(person, {}).get(kind, 0) + n
    return GraphView(owners=owners, kind_counts=counts, **kw)


def test_the_rules_scenarios_decide_alike() -> None:
    family = {"e:family": "FRANZISKA", "m:baumann|franziska": "FRANZISKA"}
    franziska = {"FRANZISKA": frozenset({"m:baumann|franziska"})}
    buyer = {"o:ord-1": "RETURN", "n:addr": "BUYER", "a:ck": "VISITOR"}
    kasse = _view(
        {"e:kasse": "P1"},
        names={"P1": frozenset({"m:smith|george"})},
        met={"e:kasse": frozenset({"P2", "P3"})},
    )
    cases: list[tuple[list[str], GraphView]] = [
        (["o:1", "e:x", "p:y"], GraphView()),
        (["e:x", "p:new", "o:2"], _view({"e:x": "P1"})),
        (["e:x", "p:y"], _view({"e:x": "P2", "p:y": "P1"})),
        (["e:typo", "p:y"], _view({"p:y": "P5"})),
        (["c:C2", "e:family", "o:9"], _view({"c:C1": "P1", "e:family": "P1"})),
        (
            ["c:C1", "l:card", "o:7"],
            _view(
                {"c:C1": "P1", "c:C2": "P2", "e:family": "P2", "l:card": "P2"},
                met={"c:C1": frozenset({"P2"}), "e:family": frozenset({"P1"})},
            ),
        ),
        (["e:x", "a:ck"], _view({"a:ck": "ANON", "e:x": "BUYER"})),
        (
            ["e:son", "a:family-laptop"],
            _view({"a:family-laptop": "MOTHER", "e:mother": "MOTHER", "e:son": "SON"}),
        ),
        (
            ["e:son", "a:family-laptop"],
            _view(
                {"a:family-laptop": "MOTHER", "e:mother": "MOTHER", "e:son": "SON"},
                met={"a:family-laptop": frozenset({"SON"}), "e:son": frozenset({"MOTHER"})},
            ),
        ),
        (
            ["e:dummy", "p:3"],
            _view({"e:dummy": "P1", "p:3": "P3"}, met={"e:dummy": frozenset({"P7", "P8"})}),
        ),
        (
            ["e:mine", "a:kiosk"],
            _view({"e:mine": "P1", "a:kiosk": "P9"}, met={"a:kiosk": frozenset({"P2", "P3"})}),
        ),
        (["e:dummy", "p:1"], _view({"e:dummy": "P1"}, junk=frozenset({"e:dummy"}))),
        (["e:x", "h:house"], _view({"h:house": "SISTER"})),
        (
            ["e:thomas-2", "m:muller|thomas"],
            _view(
                {"e:other-thomas": "THOMAS-1"},
                names={"THOMAS-1": frozenset({"m:muller|thomas"})},
            ),
        ),
        (["e:x", "c:C9"], _view({"e:x": "P1"}, kind_counts={"P1": {"c": 1}})),
        (["e:family", "p:olga", "m:baumann|olga", "o:9"], _view(family, names=franziska)),
        (
            ["e:kasse3", "m:bakker|ruben", "o:5"],
            _view(
                {"e:kasse3": "GEORGE"},
                names={"GEORGE": frozenset({"m:smith|george"})},
                met={"e:kasse3": frozenset({"EMMA", "SILKE"})},
            ),
        ),
        (
            ["e:a", "p:b", "m:mueller|emma"],
            _view(
                {"e:a": "P1", "p:b": "P2"},
                names={"P1": frozenset({"m:mueller|emma"}), "P2": frozenset({"m:mueller|emma"})},
            ),
        ),
        (["a:kiosk"], _view({"a:kiosk": "P1"}, junk=frozenset({"a:kiosk"}))),
        (["m:muller|emma", "h:house"], GraphView()),
        (
            ["e:family", "m:baumann|carla"],
            _view({"e:family": "OLGA"}, names={"OLGA": frozenset({"m:baumann|olga"})}),
        ),
        (
            ["e:new-address", "f:card", "m:roth|soren"],
            _view(
                {"e:new-address": "P1", "f:card": "P2"},
                names={"P1": frozenset({"m:roth|soren"}), "P2": frozenset({"m:roth|anna"})},
            ),
        ),
        (
            ["e:new-address", "f:card", "m:roth|soren"],
            _view(
                {"e:new-address": "P1", "f:card": "P2"},
                names={"P1": frozenset({"m:roth|soren"}), "P2": frozenset({"m:roth|soren"})},
            ),
        ),
        (["e:kasse", "m:meyer|silke"], kasse),
        (
            ["o:ord-1", "n:addr", "a:ck"],
            _view(buyer, kind_counts={"BUYER": {"e": 1, "o": 3}}),
        ),
        (["o:ord-1", "n:addr"], _view(buyer, met={"o:ord-1": frozenset({"X1"})})),
    ]
    survivor = _view({"e:x": "P2", "p:y": "P1", "l:z": "P3"})
    orders = (["e:x", "p:y", "l:z"], ["l:z", "p:y", "e:x"], ["p:y", "e:x", "l:z"])
    cases.extend((tokens, survivor) for tokens in orders)
    for tokens, view in cases:
        _same(tokens, view, POLICY)
    _same(["p:1"], GraphView(), POLICY, [("e:noemail", "dummy")])
    unattributable = _same(["e:kasse", "m:meyer|silke"], kasse, POLICY)
    assert unattributable["junk"] == [["e:kasse", "email joined 4 persons (limit 3)"]]
    weak = IdentityPolicy.with_overrides({"email": {"link": "weak", "max_per_person": 1}})
    for tokens, view in cases:
        _same(tokens, view, weak)
