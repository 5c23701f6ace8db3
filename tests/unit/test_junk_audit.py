"""Merges through junk, told apart from merges through identifiers flagged only later."""

from __future__ import annotations

from typing import Any

from bestand.evaluation.junk import audit_junk, merged_through


def entry(kind: str, token: str, at: int, rule: str = "") -> dict[str, Any]:
    return {"k": kind, "e": f"ev-{at}", "at": at, "t": [token], "r": rule}


def test_a_merge_before_the_flag_is_apart_from_one_after_it() -> None:
    logs = {
        # The family laptop's cookie stitched the first visitor into the buyer at 100 ...
        "P1": [entry("merge", "a:laptop", 100, "weak anonymous_id")],
        # ... met its fourth person at 200 and was flagged; a merge through it at 300 is junk.
        "P2": [entry("junk", "a:laptop", 200, "anonymous_id joined 4 persons (limit 3)")],
        "P3": [entry("merge", "a:laptop", 300, "weak anonymous_id")],
    }
    audit = audit_junk(logs, pattern_junk=set(), junk_now={"a:laptop"})
    assert (audit.flagged, audit.through_junk, audit.flagged_later) == (1, 1, 1)


def test_pattern_junk_and_unexplained_flags_always_count() -> None:
    logs = {
        "P1": [
            entry("merge", "e:dummy", 50, "strong email"),  # junk by pattern, whenever
            entry("merge", "p:shared", 60, "strong phone"),  # flagged, but no flag entry left
            entry("merge", "p:own", 70, "strong phone"),  # never junk
            entry("junk", "e:kunde", 10, "ignored: dummy e-mail local part 'kunde'"),
        ]
    }
    audit = audit_junk(logs, pattern_junk={"e:dummy"}, junk_now={"p:shared"})
    assert (audit.flagged, audit.through_junk, audit.flagged_later) == (0, 2, 0)


def test_a_merge_at_the_flags_own_time_counts_as_through_junk() -> None:
    logs = {
        "P1": [entry("junk", "l:card", 200, "loyalty_card joined 3 persons (limit 2)")],
        "P2": [entry("merge", "l:card", 200, "strong loyalty_card")],
    }
    audit = audit_junk(logs, pattern_junk=(), junk_now={"l:card"})
    assert (audit.through_junk, audit.flagged_later) == (1, 0)


def test_the_identifiers_merges_went_through_are_the_ones_to_check() -> None:
    logs = {
        "P1": [entry("merge", "a:laptop", 100), entry("link", "o:1", 100)],
        "P2": [entry("merge", "p:own", 200), entry("junk", "l:card", 300)],
    }
    assert merged_through(logs) == {"a:laptop", "p:own"}
