"""Explain entries in readable form: why identifiers belong to one person.

The graph stores compact entries (hashed identifiers only); these functions turn them into
what the API returns and what ``bestand explain`` prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bestand.identity.kinds import KIND_NAMES, kind_of

_WHAT = {
    "new": "new person",
    "link": "identifiers linked",
    "merge": "persons merged",
    "move": "cookie moved",
    "refused": "link refused",
    "junk": "junk identifier",
}


def identifier(token: str) -> dict[str, str]:
    """A ``kind:hash`` token as ``{"kind": name, "hash": hash}``."""
    return {"kind": KIND_NAMES[kind_of(token)], "hash": token.partition(":")[2]}


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def history_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One stored entry as the API shows it."""
    return {
        "what": entry["k"],
        "event_id": entry["e"],
        "at": _iso(int(entry["at"])),
        "identifiers": [identifier(t) for t in entry.get("t", [])],
        "rule": entry.get("r", ""),
        "via": identifier(entry["via"]) if entry.get("via") else None,
        "other_person": entry.get("o"),
    }


def describe(entry: Mapping[str, Any]) -> str:
    """One stored entry as a sentence for the terminal."""
    what = _WHAT.get(entry["k"], entry["k"])
    ids = ", ".join(f"{KIND_NAMES[kind_of(t)]} {t.partition(':')[2][:10]}…" for t in entry["t"])
    via = entry.get("via")
    via_text = f" via {KIND_NAMES[kind_of(via)]} {via.partition(':')[2][:10]}…" if via else ""
    other = f" (person {entry['o']})" if entry.get("o") else ""
    return (
        f"{_iso(int(entry['at']))}  {what:18} {ids}{via_text}{other}: {entry.get('r', '')}"
        f"  [event {entry['e']}]"
    )


def text_lines(
    person_id: str, identifiers: Sequence[str], history: Sequence[Mapping[str, Any]]
) -> list[str]:
    """The whole explanation of a person for the terminal."""
    lines = [f"person {person_id}: {len(identifiers)} identifiers (keyed hashes)"]
    lines.extend(f"  {KIND_NAMES[kind_of(t)]:13} {t.partition(':')[2]}" for t in identifiers)
    lines.append(f"history ({len(history)} entries):")
    lines.extend(f"  {describe(entry)}" for entry in history)
    return lines
