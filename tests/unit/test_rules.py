"""Identity rules: strong identifiers link, weak ones only stitch anonymous persons, junk never."""

from __future__ import annotations

import pytest

from bestand.identity.policy import IdentityPolicy, KindPolicy
from bestand.identity.rules import GraphView, decide

POLICY = IdentityPolicy.default()


def view(owners: dict[str, str], **kw: object) -> GraphView:
    counts: dict[str, dict[str, int]] = {}
    for token, person in owners.items():
        counts.setdefault(person, {}).setdefault(token[0], 0)
        counts[person][token[0]] += 1
    extra = kw.pop("kind_counts", {})
    assert isinstance(extra, dict)
    for person, kinds in extra.items():
        for kind, n in kinds.items():
            counts.setdefault(person, {})[kind] = counts.get(person, {}).get(kind, 0) + n
    return GraphView(owners=owners, kind_counts=counts, **kw)  # type: ignore[arg-type]


def test_unknown_identifiers_make_a_new_person() -> None:
    d = decide(["o:1", "e:x", "p:y"], GraphView(), POLICY, "NEW")
    assert (d.person, d.absorbed, d.is_new) == ("NEW", (), True)
    assert d.attach == ("e:x", "p:y", "o:1")  # strongest first
    assert [e.kind for e in d.log] == ["new"]


def test_a_known_identifier_attaches_the_new_ones() -> None:
    d = decide(["e:x", "p:new", "o:2"], view({"e:x": "P1"}), POLICY, "NEW")
    assert (d.person, d.attach, d.is_new) == ("P1", ("p:new", "o:2"), False)
    assert d.log[-1].kind == "link"
    assert d.log[-1].via == "e:x"


def test_the_explain_log_leaves_order_ids_out() -> None:
    """The person's state holds its orders: a link entry per order id would repeat them."""
    alone = decide(["e:x", "o:3"], view({"e:x": "P1"}), POLICY, "NEW")
    assert (alone.person, alone.attach) == ("P1", ("o:3",))
    assert alone.log == ()
    mixed = decide(["e:x", "p:new", "o:2"], view({"e:x": "P1"}), POLICY, "NEW")
    assert [(e.kind, e.tokens) for e in mixed.log] == [("link", ("p:new",))]
    new = decide(["e:y", "o:4"], GraphView(), POLICY, "NEW")
    assert [(e.kind, e.tokens) for e in new.log] == [("new", ("e:y",))]
    only = decide(["o:5"], GraphView(), POLICY, "NEW")  # an order is all the person began with
    assert [(e.kind, e.tokens) for e in only.log] == [("new", ("o:5",))]


def test_a_strong_identifier_merges_two_persons_into_the_smaller_id() -> None:
    d = decide(["e:x", "p:y"], view({"e:x": "P2", "p:y": "P1"}), POLICY, "NEW")
    assert (d.person, d.absorbed) == ("P1", ("P2",))
    merge = next(e for e in d.log if e.kind == "merge")
    assert (merge.tokens, merge.other, merge.rule) == (("p:y",), "P2", "strong phone")
    assert d.met == (("p:y", "P2"), ("e:x", "P1"))  # both identifiers record whom they met


def test_new_strongest_identifier_joined_to_an_existing_person_keeps_its_id() -> None:
    d = decide(["e:typo", "p:y"], view({"p:y": "P5"}), POLICY, "A-SMALLER-NEW-ID")
    assert (d.person, d.absorbed) == ("P5", ())
    assert d.attach == ("e:typo",)
    link = d.log[-1]
    assert (link.kind, link.tokens, link.via) == ("link", ("e:typo",), "p:y")


def test_two_registered_customers_sharing_an_email_stay_two() -> None:
    owners = {"c:C1": "P1", "e:family": "P1"}
    d = decide(["c:C2", "e:family", "o:9"], view(owners), POLICY, "NEW")
    assert d.person == "NEW"  # the order goes to the new customer
    assert d.absorbed == ()
    assert "e:family" in d.ignored
    refused = next(e for e in d.log if e.kind == "refused")
    assert "customer_id" in refused.rule
    assert refused.other == "P1"
    assert d.met == (("e:family", "NEW"),)  # the family e-mail has now met two persons


def test_an_account_order_stays_with_its_account_when_the_family_has_met_it() -> None:
    # C1's e-mail is the family's, owned by C2's person P2; the card was signed up for with
    # that e-mail, so it is P2's too. An order under C1's account is still C1's.
    owners = {"c:C1": "P1", "c:C2": "P2", "e:family": "P2", "l:card": "P2"}
    met = {"c:C1": frozenset({"P2"}), "e:family": frozenset({"P1"})}
    d = decide(["c:C1", "l:card", "o:7"], view(owners, met=met), POLICY, "NEW")
    assert d.person == "P1"
    assert d.absorbed == ()
    assert "l:card" in d.ignored
    refused = next(e for e in d.log if e.kind == "refused")
    assert (refused.tokens, refused.other) == (("l:card",), "P2")


def test_a_cookie_stitches_an_anonymous_visitor_into_the_buyer() -> None:
    owners = {"a:ck": "ANON", "e:x": "BUYER"}
    d = decide(["e:x", "a:ck"], view(owners), POLICY, "NEW")
    assert (d.person, d.absorbed) == ("ANON", ("BUYER",)) or (d.person, d.absorbed) == (
        "BUYER",
        ("ANON",),
    )
    assert min("ANON", "BUYER") == d.person


def test_a_shared_cookie_never_joins_two_known_persons() -> None:
    owners = {"a:family-laptop": "MOTHER", "e:mother": "MOTHER", "e:son": "SON"}
    d = decide(["e:son", "a:family-laptop"], view(owners), POLICY, "NEW", at=100)
    assert (d.person, d.absorbed) == ("SON", ())
    # The son signed in on the laptop: its cookie answers for him now, nobody merges.
    assert d.moved == (("a:family-laptop", "MOTHER"),)
    assert d.identifiers == ("e:son", "a:family-laptop")
    assert d.claims == (("a:family-laptop", 100),)
    moved = next(e for e in d.log if e.kind == "move")
    assert (moved.tokens, moved.via, moved.other) == (("a:family-laptop",), "e:son", "MOTHER")
    assert moved.rule == "anonymous_id moves to the person identified on it"
    assert ("a:family-laptop", "MOTHER") in d.met  # the persons it joined still count


def test_a_cookie_claimed_later_stays_with_its_claimant() -> None:
    owners = {"a:family-laptop": "MOTHER", "e:mother": "MOTHER", "e:son": "SON"}
    claims = {"a:family-laptop": 200}
    late = decide(["e:son", "a:family-laptop"], view(owners, claims=claims), POLICY, "N", at=150)
    assert (late.person, late.moved) == ("SON", ())
    assert "a:family-laptop" in late.ignored
    refused = next(e for e in late.log if e.kind == "refused")
    assert refused.rule == "anonymous_id was claimed later by another person"
    assert refused.other == "MOTHER"
    same_second = decide(["e:son", "a:family-laptop"], view(owners, claims=claims), POLICY, "N",
                         at=200)  # fmt: skip
    assert same_second.moved == (("a:family-laptop", "MOTHER"),)


def test_a_cookie_moves_to_a_buyer_of_another_name() -> None:
    """A brother's guest order on his sister's laptop: his name is not hers, so nothing
    merges, and the laptop's cookie answers for him from now on."""
    owners = {"a:laptop": "SISTER", "e:sister": "SISTER", "m:koch|kerstin": "SISTER"}
    names = {"SISTER": frozenset({"m:koch|kerstin"})}
    tokens = ["e:brother", "o:7", "m:koch|piotr", "a:laptop"]
    d = decide(tokens, view(owners, names=names), POLICY, "NEW", at=50)
    assert (d.person, d.absorbed, d.is_new) == ("NEW", (), True)
    assert d.moved == (("a:laptop", "SISTER"),)
    assert "a:laptop" in d.identifiers


def test_only_an_event_that_names_its_person_moves_a_cookie() -> None:
    owners = {"a:laptop": "MOTHER", "e:mother": "MOTHER", "o:9": "SON", "e:son": "SON"}
    # An order id alone names no buyer (its return came first): the cookie is refused.
    d = decide(["o:9", "a:laptop"], view(owners), POLICY, "N", at=100)
    assert (d.person, d.moved) == ("SON", ())
    assert any(e.kind == "refused" for e in d.log)


def test_a_payment_card_does_not_move_between_known_persons() -> None:
    owners = {"f:card": "MOTHER", "e:mother": "MOTHER", "e:son": "SON"}
    d = decide(["e:son", "f:card"], view(owners), POLICY, "N", at=100)
    assert (d.person, d.moved) == ("SON", ())
    refused = next(e for e in d.log if e.kind == "refused")
    assert refused.rule == "weak payment joins two known persons only under one name"


def test_a_cookie_or_device_is_claimed_when_an_identified_event_attaches_it() -> None:
    d = decide(["e:x", "a:new", "d:phone", "f:card"], view({"e:x": "P1"}), POLICY, "N", at=7)
    assert d.attach == ("f:card", "d:phone", "a:new")
    assert d.claims == (("d:phone", 7), ("a:new", 7))  # a card is not claimed
    anonymous = decide(["a:other"], GraphView(), POLICY, "N", at=7)
    assert anonymous.claims == ()  # a stranger's click names nobody
    # A visitor signs up: the cookie of its anonymous person is claimed with the sign-up.
    signup = decide(["e:new", "a:visit"], view({"a:visit": "ANON"}), POLICY, "N", at=9)
    assert (signup.person, signup.claims) == ("ANON", (("a:visit", 9),))


def test_an_identifier_joining_too_many_persons_becomes_junk() -> None:
    owners = {"e:dummy": "P1", "p:2": "P2"}
    fine = decide(["e:dummy", "p:2"], view(owners), POLICY, "N")
    assert fine.absorbed  # second person: still allowed (limit 3)
    # The dummy e-mail anchors a stranger's order whose phone belongs to P3: the e-mail has
    # now met a fourth person, becomes junk, and the event is resolved without it.
    owners = {"e:dummy": "P1", "p:3": "P3"}
    met = {"e:dummy": frozenset({"P7", "P8"})}
    d = decide(["e:dummy", "p:3"], view(owners, met=met), POLICY, "N")
    assert (d.person, d.absorbed) == ("P3", ())
    assert d.junk == (("e:dummy", "email joined 4 persons (limit 3)"),)
    assert "e:dummy" in d.ignored
    assert d.log[0].kind == "junk"


def test_a_non_anchor_identifier_over_its_limit_is_flagged_and_not_followed() -> None:
    owners = {"e:mine": "P1", "a:kiosk": "P9"}
    met = {"a:kiosk": frozenset({"P2", "P3", "P4", "P5"})}
    d = decide(["e:mine", "a:kiosk"], view(owners, met=met), POLICY, "N")
    assert (d.person, d.absorbed, d.moved) == ("P1", (), ())
    assert d.junk == (("a:kiosk", "anonymous_id joined 6 persons (limit 5)"),)


def test_junk_identifiers_are_ignored() -> None:
    d = decide(
        ["e:dummy", "p:1"], view({"e:dummy": "P1"}, junk=frozenset({"e:dummy"})), POLICY, "NEW"
    )
    assert (d.person, d.attach) == ("NEW", ("p:1",))
    assert d.ignored == ("e:dummy",)


def test_pattern_junk_is_logged_and_never_linked() -> None:
    d = decide(["p:1"], GraphView(), POLICY, "NEW", pattern_junk=[("e:noemail", "dummy")])
    assert d.log[0].kind == "junk"
    assert d.log[0].tokens == ("e:noemail",)
    assert "e:noemail" not in d.attach


def test_a_household_describes_but_never_links() -> None:
    # A sister at the same address shares the household key; nobody owns it.
    d = decide(["e:x", "h:house"], view({"h:house": "SISTER"}), POLICY, "NEW")
    assert (d.person, d.absorbed) == ("NEW", ())
    assert (d.attach, d.describe) == (("e:x",), ("h:house",))
    assert d.identifiers == ("e:x",)


def test_namesakes_each_keep_their_name() -> None:
    owners = {"e:other-thomas": "THOMAS-1"}
    names = {"THOMAS-1": frozenset({"m:muller|thomas"})}
    d = decide(["e:thomas-2", "m:muller|thomas"], view(owners, names=names), POLICY, "NEW")
    assert (d.person, d.describe) == ("NEW", ("m:muller|thomas",))


def test_address_with_full_name_links() -> None:
    d = decide(["e:new-mail", "n:addr-full"], view({"n:addr-full": "P7"}), POLICY, "NEW")
    assert d.person == "P7"
    assert d.attach == ("e:new-mail",)


def test_the_per_person_cap_limits_attaches() -> None:
    owners = {"e:x": "P1"}
    d = decide(["e:x", "c:C9"], view(owners, kind_counts={"P1": {"c": 1}}), POLICY, "NEW")
    assert "c:C9" not in d.attach or d.person == "NEW"


def test_policy_overrides_and_validation() -> None:
    policy = IdentityPolicy.with_overrides({"anonymous_id": {"link": "strong", "max_persons": 9}})
    assert policy.of(policy_kind("a")) == KindPolicy("strong", 9, None)
    with pytest.raises(ValueError, match="unknown identifier kind"):
        IdentityPolicy.with_overrides({"shoe_size": {"link": "strong"}})
    with pytest.raises(ValueError, match="link must be"):
        IdentityPolicy.with_overrides({"email": {"link": "sometimes"}})


def policy_kind(code: str):
    from bestand.identity.kinds import IdKind

    return IdKind(code)


def test_the_survivor_does_not_depend_on_which_identifier_came_first() -> None:
    owners = {"e:x": "P2", "p:y": "P1", "l:z": "P3"}
    results = {
        (d.person, d.absorbed)
        for tokens in (["e:x", "p:y", "l:z"], ["l:z", "p:y", "e:x"], ["p:y", "e:x", "l:z"])
        for d in [decide(tokens, view(owners), POLICY, "NEW")]
    }
    assert results == {("P1", ("P2", "P3"))}


def test_the_same_two_persons_meeting_again_count_once() -> None:
    owners = {"a:family-laptop": "MOTHER", "e:mother": "MOTHER", "e:son": "SON"}
    met = {"a:family-laptop": frozenset({"SON"}), "e:son": frozenset({"MOTHER"})}
    d = decide(["e:son", "a:family-laptop"], view(owners, met=met), POLICY, "NEW")
    assert d.junk == ()
    assert [e.kind for e in d.log] == ["move"]  # back and forth between two persons, no junk


def test_a_shared_email_under_another_name_is_not_followed() -> None:
    """A family e-mail: Franziska's person owns it; Olga orders with it under her own name."""
    owners = {"e:family": "FRANZISKA", "m:baumann|franziska": "FRANZISKA"}
    names = {"FRANZISKA": frozenset({"m:baumann|franziska"})}
    d = decide(
        ["e:family", "p:olga", "m:baumann|olga", "o:9"], view(owners, names=names), POLICY, "NEW"
    )
    assert d.person == "NEW"
    assert d.absorbed == ()
    assert "e:family" in d.ignored
    assert set(d.attach) == {"p:olga", "o:9"}
    assert d.describe == ("m:baumann|olga",)
    refused = next(e for e in d.log if e.kind == "refused")
    assert refused.rule == "names differ: shared with another person"
    assert d.met == (("e:family", "NEW"),)


def test_a_dummy_email_becomes_junk_once_it_met_too_many_names() -> None:
    owners = {"e:kasse3": "GEORGE"}
    names = {"GEORGE": frozenset({"m:smith|george"})}
    met = {"e:kasse3": frozenset({"EMMA", "SILKE"})}
    d = decide(
        ["e:kasse3", "m:bakker|ruben", "o:5"], view(owners, names=names, met=met), POLICY, "NEW"
    )
    assert d.person == "NEW"
    assert d.junk == (("e:kasse3", "email joined 4 persons (limit 3)"),)


def test_two_persons_with_different_names_are_not_merged() -> None:
    owners = {"e:a": "P1", "p:b": "P2"}
    names = {"P1": frozenset({"m:meyer|silke"}), "P2": frozenset({"m:smith|george"})}
    d = decide(["e:a", "p:b"], view(owners, names=names), POLICY, "NEW")
    assert (d.person, d.absorbed) == ("P1", ())
    assert next(e for e in d.log if e.kind == "refused").rule.startswith("names differ")


def test_the_same_name_spelt_alike_still_links() -> None:
    owners = {"e:a": "P1", "p:b": "P2"}
    names = {"P1": frozenset({"m:mueller|emma"}), "P2": frozenset({"m:mueller|emma"})}
    d = decide(["e:a", "p:b", "m:mueller|emma"], view(owners, names=names), POLICY, "NEW")
    assert (d.person, d.absorbed) == ("P1", ("P2",))


def test_an_event_with_only_junk_identifiers_is_unattributable() -> None:
    from bestand.identity.rules import Unattributable

    with pytest.raises(Unattributable):
        decide(["a:kiosk"], view({"a:kiosk": "P1"}, junk=frozenset({"a:kiosk"})), POLICY, "N")


def test_only_describing_identifiers_name_nobody() -> None:
    from bestand.identity.rules import Unattributable

    with pytest.raises(Unattributable):
        decide(["m:muller|emma", "h:house"], GraphView(), POLICY, "NEW")


def test_a_shared_anchor_under_another_name_leaves_nothing_to_name_the_person() -> None:
    # The family e-mail given alone under another name: nothing else names anyone.
    from bestand.identity.rules import Unattributable

    owners = {"e:family": "OLGA"}
    names = {"OLGA": frozenset({"m:baumann|olga"})}
    with pytest.raises(Unattributable):
        decide(["e:family", "m:baumann|carla"], view(owners, names=names), POLICY, "NEW")


def test_a_card_joins_two_known_persons_who_go_by_one_name() -> None:
    owners = {"e:new-address": "P1", "f:card": "P2"}
    names = {"P1": frozenset({"m:roth|soren"}), "P2": frozenset({"m:roth|soren"})}
    d = decide(["e:new-address", "f:card", "m:roth|soren"], view(owners, names=names), POLICY, "N")
    assert (d.person, d.absorbed) == ("P1", ("P2",))
    # A household's shared card, two names: no join.
    names = {"P1": frozenset({"m:roth|soren"}), "P2": frozenset({"m:roth|anna"})}
    d = decide(["e:new-address", "f:card", "m:roth|soren"], view(owners, names=names), POLICY, "N")
    assert d.absorbed == ()


def test_an_unattributable_event_still_flags_the_dummy_it_exposed() -> None:
    from bestand.identity.rules import Unattributable

    owners = {"e:kasse": "P1"}
    names = {"P1": frozenset({"m:smith|george"})}
    met = {"e:kasse": frozenset({"P2", "P3"})}
    with pytest.raises(Unattributable) as info:
        decide(["e:kasse", "m:meyer|silke"], view(owners, names=names, met=met), POLICY, "N")
    assert info.value.junk == (("e:kasse", "email joined 4 persons (limit 3)"),)


def test_an_order_whose_return_came_first_joins_its_buyer_in_one_meeting() -> None:
    # The return made a person of the order id alone; the placement brings the buyer's
    # address and a cookie of a second, anonymous person. The order id anchors and meets
    # both in this one event: they become one person, so it met one person, not two.
    owners = {"o:ord-1": "RETURN", "n:addr": "BUYER", "a:ck": "VISITOR"}
    counts = {"BUYER": {"e": 1, "o": 3}}
    d = decide(["o:ord-1", "n:addr", "a:ck"], view(owners, kind_counts=counts), POLICY, "N")
    assert d.junk == ()
    assert d.person == "BUYER"
    assert set(d.absorbed) == {"RETURN", "VISITOR"}
    # Across events the meetings still add up: the same order id, met before by two others,
    # is over its limit when it meets a third.
    met = {"o:ord-1": frozenset({"X1"})}
    d = decide(["o:ord-1", "n:addr"], view(owners, met=met), POLICY, "N")
    assert d.junk == (("o:ord-1", "order_id joined 3 persons (limit 2)"),)


def test_the_shortcut_for_events_that_meet_nobody_decides_what_the_rules_decide() -> None:
    """Thousands of small graphs: wherever the shortcut answers, the full rules answer the
    same; where it stands aside, there was something for the rules to weigh."""
    import random
    from collections import Counter

    from bestand.identity.rules import (
        Unattributable,
        _AnchorIsJunk,
        _AnchorNamesDiffer,
        _decide,
        _without_meetings,
    )

    rng = random.Random(14)
    kinds = "ceplondfahm"
    answered: Counter[str] = Counter()
    for _ in range(6000):
        pool = [f"{rng.choice(kinds)}:{i}" for i in range(rng.randint(1, 7))]
        persons = ["P1", "P2", "P3"][: rng.randint(1, 3)]
        owners = {t: rng.choice(persons) for t in pool if t[0] not in "hm" and rng.random() < 0.5}
        names = {
            p: frozenset(t for t in pool if t[0] == "m" and rng.random() < 0.4) for p in persons
        }
        seen = view(
            owners,
            junk=frozenset(t for t in pool if rng.random() < 0.05),
            met={t: frozenset({"P9"}) for t in pool if rng.random() < 0.05},
            names={p: n for p, n in names.items() if n},
            kind_counts={p: {k: rng.randint(0, 2) for k in "cepo"} for p in persons},
        )
        tokens = rng.sample(pool, rng.randint(1, len(pool)))
        at = rng.randint(0, 5)  # claims of cookies and devices are recorded at this time
        shortcut = _without_meetings(tokens, seen, POLICY, "NEW", at)
        try:
            full = _decide(tokens, seen, POLICY, "NEW", (), at)
        except (Unattributable, _AnchorIsJunk, _AnchorNamesDiffer):  # refused, or tried again
            refused = True
        else:
            refused = False
        if refused:
            assert shortcut is None, (tokens, seen)
            continue
        if shortcut is None:
            answered["rules"] += 1
            continue
        assert shortcut == full, (tokens, seen)
        answered["new" if shortcut.is_new else ("link" if shortcut.attach else "known")] += 1
    # Every shape of the shortcut was met, and the rules still had plenty to weigh.
    assert min(answered.values()) > 200, answered
    # Where the rules have more to say, the shortcut stands aside.
    owners = {"c:C1": "P1", "e:x": "P1", "a:ck": "P1"}
    other = view({**owners, "e:other": "P2"})
    assert _without_meetings(["a:ck", "e:other"], other, POLICY, "N") is None
    met = view(owners, met={"a:ck": frozenset({"P9"})})
    assert _without_meetings(["a:ck"], met, POLICY, "N") is None  # a shared cookie
    junk = view(owners, junk=frozenset({"e:x"}))
    assert _without_meetings(["e:x", "a:ck"], junk, POLICY, "N") is None
    assert _without_meetings(["e:new", "a:ck"], view(owners), POLICY, "N") is None  # new anchor
    assert _without_meetings(["c:C1", "c:C2"], view(owners), POLICY, "N") is None  # over the cap
    named = view(owners, names={"P1": frozenset({"m:anna"})})
    assert _without_meetings(["e:x", "m:bert"], named, POLICY, "N") is None  # another name
