"""Merges through junk identifiers, read from the explain logs of an evaluation run.

The goal is that no merge goes through an identifier that is junk: junk by pattern (a dummy
e-mail) at any time, or flagged by its cardinality before the merge. An identifier flagged
only later (a family laptop's cookie that stitched its first visitor into the buyer, and met
more persons afterwards) was not junk when it joined; such merges are counted apart, as the
ones to review. The order of a merge and a flag is taken from their events' times, which can
only make a merge look later than it was: the count of merges through junk is never too low.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class JunkAudit:
    """Junk flags and the merges that went through flagged identifiers."""

    flagged: int  # identifiers flagged as junk by their cardinality
    through_junk: int  # merges through an identifier that was junk at the time
    flagged_later: int  # merges through an identifier flagged only by a later event


def merged_through(logs: Mapping[str, Iterable[Mapping[str, Any]]]) -> set[str]:
    """Every identifier a merge in ``logs`` went through: the ones whose junk flag to read."""
    return {
        token
        for entries in logs.values()
        for entry in entries
        if entry["k"] == "merge"
        for token in entry["t"]
    }


def _flag_times(logs: Iterable[Iterable[Mapping[str, Any]]]) -> dict[str, int]:
    """When each identifier was first flagged by its cardinality (the flagging event's time)."""
    times: dict[str, int] = {}
    for entries in logs:
        for entry in entries:
            if entry["k"] == "junk" and not str(entry["r"]).startswith("ignored"):
                token = entry["t"][0]
                times[token] = min(times.get(token, entry["at"]), entry["at"])
    return times


def audit_junk(
    logs: Mapping[str, Iterable[Mapping[str, Any]]],
    pattern_junk: Collection[str],
    junk_now: Collection[str],
) -> JunkAudit:
    """Count merges through junk in explain ``logs`` (person -> entries).

    ``pattern_junk`` holds identifiers junk by pattern, ``junk_now`` those flagged by the end
    of the run. A flagged identifier whose flag is missing from the logs counts as junk at any
    merge.
    """
    flagged_at = _flag_times(logs.values())
    through = later = 0
    for entries in logs.values():
        for entry in entries:
            if entry["k"] != "merge":
                continue
            for token in entry["t"]:
                if token in pattern_junk:
                    through += 1
                elif token in junk_now:
                    if entry["at"] < flagged_at.get(token, entry["at"]):
                        later += 1
                    else:
                        through += 1
    return JunkAudit(flagged=len(flagged_at), through_junk=through, flagged_later=later)
