"""Explain entries as the log stores them: about half the bytes of JSON, nothing lost, the
compiled resolver writing the same bytes."""

from __future__ import annotations

import orjson
import pytest

from bestand.identity.entries import SEP, parse_entry, stored_entry
from bestand.identity.rules import LogEntry

bestand_native = pytest.importorskip("bestand_native")

E, A, ORDER = "e:veTKDYEB7CDdHSYfsRzj7w", "a:o0uu0KqHzlbHtgFMoFVwCw", "o:HiIi8oFi9zHIxpuFuw__WQ"

ENTRIES = [
    LogEntry("new", (E, A), "new person from email"),
    LogEntry("new", (ORDER,), "new person from email"),  # not what its identifiers say
    LogEntry("link", (A,), "seen with email", via=E),
    LogEntry("link", (A, ORDER), "seen with anonymous_id", via=A),
    LogEntry("merge", (E,), "weak anonymous_id", via=A, other="P2"),
    LogEntry("move", (A,), "anonymous_id moves to the person identified on it", via=E, other="P3"),
    LogEntry("refused", (E,), "names differ: shared with another person", other="P4"),
    LogEntry("junk", (E,), "ignored: dummy e-mail local part 'test'"),
    LogEntry("junk", (), "no identifiers at all"),
    # Stored as JSON: fields the split form cannot hold.
    LogEntry("junk", (E,), f"ignored: junk e-mail pattern 'a{SEP}b'"),
    LogEntry("link", (A,), "", via=E),
    LogEntry("link", (A,), "seen with email", via=""),
    LogEntry("refused", (E,), "x", other=""),
]


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: f"{e.kind}:{e.rule[:20]}")
def test_a_stored_entry_reads_back_as_its_json(entry: LogEntry) -> None:
    text = stored_entry(entry, "ev-0132780", 1_792_333_925)
    assert parse_entry(text) == entry.to_json("ev-0132780", 1_792_333_925)
    assert parse_entry(text.encode()) == entry.to_json("ev-0132780", 1_792_333_925)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: f"{e.kind}:{e.rule[:20]}")
def test_the_compiled_resolver_stores_the_same_bytes(entry: LogEntry) -> None:
    native = bestand_native.stored_entry_for_test(
        entry.kind, list(entry.tokens), entry.rule, entry.via, entry.other, "ev-1", 1_792_333_925
    )
    assert native == stored_entry(entry, "ev-1", 1_792_333_925)


def test_what_the_rules_say_anyway_is_left_out_and_the_rest_is_kept() -> None:
    link = stored_entry(LogEntry("link", (A,), "seen with email", via=E), "ev-1", 7)
    assert link.split(SEP) == ["l", "7", "ev-1", "", E, "", A]
    other = stored_entry(LogEntry("new", (ORDER,), "new person from email"), "ev-1", 7)
    assert other.split(SEP)[3] == "new person from email"
    json_form = orjson.dumps(
        LogEntry("link", (A,), "seen with email", via=E).to_json("ev-1", 7)
    ).decode()
    assert len(link) < 0.6 * len(json_form)


def test_entries_an_earlier_release_wrote_as_json_are_read() -> None:
    old = (
        b'{"k":"new","e":"ev-1","at":7,"t":["o:HiIi8oFi9zHIxpuFuw__WQ"],'
        b'"r":"new person from order_id"}'
    )
    assert parse_entry(old) == {
        "k": "new",
        "e": "ev-1",
        "at": 7,
        "t": [ORDER],
        "r": "new person from order_id",
    }
