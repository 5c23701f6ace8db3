"""Dedupe markers: what an event said (a digest) and what it changed, for redeliveries."""

from __future__ import annotations

from datetime import UTC, datetime

from bestand.events import ResolvedEvent
from bestand.profile.changes import Change
from bestand.store.profiles import _marker, _parse, _same, content_digest


def _event(**changes: object) -> ResolvedEvent:
    fields: dict[str, object] = {
        "event_id": "ev-1", "event_time": datetime(2026, 10, 1, 9, tzinfo=UTC), "kind": "order",
        "type": "order_placed", "topic": "bestand.orders", "person_id": "p-1",
        "identifiers": ["e:abc"], "order": {"order_id": "o-1", "status": "placed",
                                            "total_cents": 4000, "currency": "EUR"},
    }  # fmt: skip
    fields.update(changes)
    return ResolvedEvent.of(fields)


def test_the_digest_covers_what_an_event_says_not_where_it_went() -> None:
    first = content_digest(_event())
    assert content_digest(_event(person_id="p-2", absorbed=["p-9"], identifiers=[])) == first
    other = _event(order={"order_id": "o-1", "status": "placed", "total_cents": 400000})
    assert content_digest(other) != first
    assert content_digest(_event(event_time=datetime(2026, 10, 2, tzinfo=UTC))) != first


def test_a_marker_keeps_the_changes_for_a_redelivery() -> None:
    changes = (
        Change("became_customer", True, 1, "prospect", "first_time"),
        Change("merged", True, 3, "repeat", "repeat", ("p-2", "p-3")),
    )
    digest = content_digest(_event())
    marker = _marker(digest, changes)
    assert _parse(marker) == (digest, changes)
    assert _parse(_marker(digest, ())) == (digest, ())
    assert _same(marker, digest)
    assert not _same(marker, content_digest(_event(type="order_cancelled")))


def test_a_plain_marker_matches_any_content() -> None:
    assert _parse("1") == ("1", ())  # written before markers held digests, and by merges
    assert _same("1", content_digest(_event()))
