"""The graph overlay: a batch's decisions change it as the apply script changes Redis, so each
event is decided on what the events before it in the batch left."""

from __future__ import annotations

from collections import Counter

from bestand.identity.overlay import GraphOverlay, PersonFacts
from bestand.identity.policy import IdentityPolicy
from bestand.identity.rules import Decision, decide

POLICY = IdentityPolicy.default()
DESCRIBING = "hm"  # households and names only describe, by default


def _decision(person: str, **changes: object) -> Decision:
    fields: dict[str, object] = {
        "person": person, "absorbed": (), "attach": (), "describe": (), "met": (), "junk": (),
        "log": (), "identifiers": (), "ignored": (),
    }  # fmt: skip
    fields.update(changes)
    return Decision(**fields)  # type: ignore[arg-type]


def test_an_event_sees_what_an_earlier_event_of_its_batch_decided() -> None:
    overlay = GraphOverlay({}, (), {}, {}, DESCRIBING)
    first = ["c:C1", "a:cookie"]
    registered = decide(first, overlay.view(first), POLICY, "P-NEW")
    overlay.apply(registered)
    assert registered.attach == ("c:C1", "a:cookie")

    second = ["c:C1", "e:anna"]  # the customer gives an e-mail, later in the batch
    seen = overlay.view(second)
    assert seen.owners == {"c:C1": "P-NEW"}
    assert seen.versions == {"P-NEW": 1}
    assert seen.kind_counts == {"P-NEW": {"c": 1, "a": 1}}
    signup = decide(second, seen, POLICY, "P-OTHER")
    assert (signup.person, signup.attach) == ("P-NEW", ("e:anna",))
    # What the apply script will check: the version this decision saw (which covers the
    # identifiers P-NEW owns) and that the new e-mail is still nobody's and not junk.
    guard = overlay.guard(second, seen)
    assert guard.owners == {"e:anna": ""}
    assert guard.unflagged == ("e:anna",)
    assert guard.versions == {"P-NEW": 1}
    overlay.apply(signup)
    assert overlay.view(["e:anna"]).owners == {"e:anna": "P-NEW"}
    assert overlay.view(["e:anna"]).versions == {"P-NEW": 2}


def test_a_merge_moves_identifiers_counts_and_claims_to_the_survivor() -> None:
    overlay = GraphOverlay(
        owners={"e:a": "A", "p:b": "B", "m:old": "B"},
        junk=(),
        met={"d:laptop": ["B"]},
        persons={
            "A": PersonFacts(Counter({"e": 1}), {"m:anna"}, version=2),
            "B": PersonFacts(Counter({"p": 1}), {"m:anna", "h:home"}, version=5),
        },
        describing=DESCRIBING,
    )
    overlay.apply(_decision("A", absorbed=("B",), log=()))
    seen = overlay.view(["e:a", "p:b", "d:laptop", "m:old"])
    assert seen.owners["p:b"] == "A"
    assert seen.kind_counts["A"] == {"e": 1, "p": 1, "m": 1, "h": 1}  # a shared name counts once
    assert seen.names["A"] == frozenset({"m:anna"})
    assert seen.versions["A"] == 3
    assert seen.met == {"d:laptop": frozenset({"A"})}  # claims name where the person went
    # A describing token is owned by nobody: a merge does not give it an owner either.
    assert seen.owners["m:old"] == "B"
    assert seen.versions["B"] == 0
    # B has no version left to tell a change by: its identifier is checked one by one.
    guard = overlay.guard(["e:a", "m:old"], seen)
    assert guard.owners == {"m:old": "B"}
    assert guard.unflagged == ("m:old",)


def test_a_flagged_identifier_leaves_its_owner_and_moves_the_owners_version() -> None:
    overlay = GraphOverlay(
        owners={"e:shared": "B", "e:mine": "A"},
        junk=(),
        met={},
        persons={
            "A": PersonFacts(Counter({"e": 1}), set(), version=1),
            "B": PersonFacts(Counter({"e": 2}), set(), version=4),
        },
        describing=DESCRIBING,
    )
    overlay.apply(_decision("A", junk=(("e:shared", "email joined 4 persons (limit 3)"),)))
    seen = overlay.view(["e:shared", "e:mine"])
    assert seen.junk == frozenset({"e:shared"})
    assert "e:shared" not in seen.owners
    assert overlay.view(["e:x"]).owners == {}
    assert overlay._persons["B"].counts["e"] == 1
    assert overlay._persons["B"].version == 5  # its identifier set changed
    assert seen.versions == {"A": 2}


def _known(person: str, version: int, **claims: int) -> PersonFacts:
    return PersonFacts(counts=Counter({"c": 1, "a": 1}), version=version,
                       claims={f"a:{t}": at for t, at in claims.items()})  # fmt: skip


def test_a_move_leaves_the_former_holder_and_lists_both_holders_by_claim_time() -> None:
    persons = {"MOTHER": _known("MOTHER", 3, laptop=100), "SON": _known("SON", 5)}
    owners = {"a:laptop": "MOTHER", "c:mother": "MOTHER", "c:son": "SON"}
    overlay = GraphOverlay(owners, (), {}, persons, DESCRIBING)
    tokens = ["c:son", "a:laptop"]
    seen = overlay.view(tokens, 200)
    assert seen.claims == {"a:laptop": 100}
    moved = decide(tokens, seen, POLICY, "N", at=200)
    assert moved.moved == (("a:laptop", "MOTHER"),)
    overlay.apply(moved)
    after = overlay.view(["a:laptop", "c:mother"], 300)
    assert after.owners == {"a:laptop": "SON", "c:mother": "MOTHER"}
    assert after.versions == {"SON": 6, "MOTHER": 4}  # the former holder's version moved too
    assert after.kind_counts["MOTHER"] == {"c": 1}
    assert after.claims == {"a:laptop": 200}
    # A click from before the son's sign-in is the mother's: she held the laptop then.
    then = overlay.view(["a:laptop"], 150)
    assert then.owners == {"a:laptop": "MOTHER"}
    assert then.claims == {"a:laptop": 200}  # claimed later: an event from then cannot move it
    click = decide(["a:laptop"], then, POLICY, "N", at=150)
    assert (click.person, click.moved) == ("MOTHER", ())


def test_a_cookies_holders_read_from_the_graph_give_each_click_its_holder_then() -> None:
    persons = {"A": _known("A", 2), "B": _known("B", 2), "C": _known("C", 2, laptop=300)}
    held = {"a:laptop": [(100, "A"), (200, "B"), (300, "C")]}
    overlay = GraphOverlay({"a:laptop": "C"}, (), {"a:laptop": {"A", "B"}}, persons, DESCRIBING,
                           held)  # fmt: skip
    # Each claimed it at its time: before the first claim the first holder, then each in turn.
    assert [overlay.view(["a:laptop"], at).owners["a:laptop"] for at in (50, 150, 250, 350)] == [
        "A",
        "A",
        "B",
        "C",
    ]
    # A holder that is gone (erased: no facts) leaves the click with the holder now.
    gone = GraphOverlay({"a:laptop": "C"}, (), {}, {"C": persons["C"]}, DESCRIBING, held)
    assert gone.view(["a:laptop"], 150).owners == {"a:laptop": "C"}
