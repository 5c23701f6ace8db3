"""Folding a batch's events into persons: merges, duplicates, conflicts and the write that
makes it all true at once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bestand.events import ResolvedEvent
from bestand.profile.changes import Change
from bestand.profile.fold import Loaded, fold_group, groups
from bestand.profile.markers import content_digest, marker
from bestand.profile.state import OrderRecord, PersonState


def _order(event_id: str, person: str, order_id: str, *, absorbed: tuple[str, ...] = (),
           cents: int = 1000) -> ResolvedEvent:  # fmt: skip
    return ResolvedEvent.of(
        {
            "event_id": event_id,
            "event_time": datetime(2026, 10, 1, 12, tzinfo=UTC),
            "kind": "order",
            "type": "order_placed",
            "topic": "orders",
            "person_id": person,
            "absorbed": list(absorbed),
            "identifiers": [f"o:{order_id}"],
            "order": {"order_id": order_id, "status": "placed", "total_cents": cents},
        }
    )


def _person(person: str, version: int, ids: set[str], orders: dict[str, int]) -> Loaded:
    state = PersonState(
        person_id=person,
        version=version,
        ids=frozenset(ids),
        orders={oid: OrderRecord(total_cents=c, at=1_780_000_000) for oid, c in orders.items()},
    )
    return Loaded(None, state)


def _fold(events: list[ResolvedEvent], persons: dict[str, Loaded], found: dict[int, str],
          ) -> tuple[list[Any], Any]:  # fmt: skip
    digests = [content_digest(e) for e in events]
    return fold_group(events, range(len(events)), digests, persons, found)


def test_a_merge_folds_the_absorbed_person_in_and_writes_both_under_their_guards() -> None:
    persons = {
        "A": _person("A", 3, {"e:a", "o:1"}, {"1": 1000}),
        "B": _person("B", 7, {"p:b", "o:2"}, {"2": 2000}),
    }
    event = _order("ev-3", "A", "3", absorbed=("B",))
    (outcome,), write = _fold([event], persons, {})
    assert outcome[1].status == "applied"
    assert write.guard == [("A", 3), ("B", 7)]
    assert write.absorbed == [("B", "A")]
    (state,) = write.states
    assert (state.person_id, state.version) == ("A", 8)  # newer than either
    assert set(state.orders) == {"1", "2", "3"}
    assert state.absorbed == frozenset({"B"})
    (record,) = write.publish
    # After a merge every record of the survivor is written, and nothing else.
    assert record.tokens == ("e:a", "p:b")  # order ids have no records
    assert not record.checked
    assert write.markers == [("A", "ev-3", content_digest(event))]


def test_an_event_applied_before_is_a_duplicate_and_its_changes_go_out_again() -> None:
    persons = {"A": _person("A", 2, {"e:a", "o:1"}, {"1": 1000})}
    event = _order("ev-1", "A", "1")
    changes = (Change("became_customer", True, 1, "prospect", "first_time"),)
    (outcome,), write = _fold([event], persons, {0: marker(content_digest(event), changes)})
    assert (outcome[1].status, outcome[1].changes) == ("duplicate", changes)
    assert (write.states, write.markers, write.guard) == ([], [], [])
    # Its records are written again (a dead try may have lost them), not over newer ones.
    (record,) = write.publish
    assert record.checked
    assert record.tokens == ("e:a",)


def test_an_event_id_reused_with_other_content_is_a_conflict() -> None:
    persons = {"A": _person("A", 2, {"e:a"}, {})}
    first = _order("ev-1", "A", "1", cents=1000)
    again = _order("ev-1", "A", "1", cents=99000)
    (outcome,), write = _fold([again], persons, {0: content_digest(first)})
    assert outcome[1].status == "conflict"
    assert write.empty


def test_an_event_of_a_person_merged_away_later_in_the_batch_is_not_applied_twice() -> None:
    persons = {"A": _person("A", 1, {"e:a"}, {}), "B": _person("B", 1, {"p:b"}, {})}
    first = _order("ev-1", "B", "1")
    merge = _order("ev-2", "A", "2", absorbed=("B",))
    again = _order("ev-1", "A", "1")  # delivered twice; by now B is A
    outcomes, write = _fold([first, merge, again], persons, {})
    assert [o[1].status for o in outcomes] == ["applied", "applied", "duplicate"]
    assert outcomes[2][1].changes == ()  # its changes went out with its first delivery
    (state,) = write.states
    assert set(state.orders) == {"1", "2"}


def test_groups_join_the_persons_a_batch_merges() -> None:
    persons = {p: _person(p, 1, set(), {}) for p in "ABC"}
    events = [_order("e1", "A", "1"), _order("e2", "B", "2"), _order("e3", "C", "3"),
              _order("e4", "A", "4", absorbed=("C",))]  # fmt: skip
    assert sorted(groups(events, persons)) == [[0, 2, 3], [1]]


def test_records_are_written_for_the_kinds_a_lookup_can_ask_by_and_no_others() -> None:
    from bestand.api.service import PARAM_KINDS
    from bestand.identity.kinds import LOOKED_UP, IdKind

    # Order ids are answered through the identity graph and the person's state instead.
    assert set(PARAM_KINDS.values()) == LOOKED_UP | {IdKind.ORDER}
    persons = {"A": _person("A", 1, {"e:a", "n:address", "f:card", "h:home"}, {})}
    (_,), write = _fold([_order("ev-1", "A", "1")], persons, {})
    (record,) = write.publish
    assert record.tokens == ("e:a",)  # no record for an order, an address, a card, a household
