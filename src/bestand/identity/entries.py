"""Explain entries as a person's log in Redis holds them.

An entry is one string of fields split by ``\\x1f``: the kind's letter, the time (epoch
seconds), the event id, the rule, the identifier it went by, the other person, then the
identifiers. The rule is left empty where the entry's kind and identifiers say it already
(``new person from <kind of the first identifier>``, ``seen with <kind of the one it went
by>``). That is about half the bytes of the same entry as JSON (``LogEntry.to_json``), and
the explain log is the largest part of a person in Redis (``bench/memory.py``). An entry
whose fields cannot be split that way (a field holding ``\\x1f`` or ``\\x1e``, an empty
identifier it went by) is stored as its JSON, and so are the entries earlier releases
wrote: a reader takes both (:func:`parse_entry`). ``native/src/graph.rs`` writes the same
bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from bestand.identity.kinds import KIND_NAMES, kind_of
from bestand.identity.rules import LogEntry

SEP = "\x1f"
#: What splits the entries of a short log kept as one string (``store/keys.py``): no entry
#: holds it (JSON escapes it).
LOG_SEP = "\x1e"
_LETTERS = {"new": "n", "link": "l", "merge": "m", "move": "v", "refused": "r", "junk": "j"}
_KINDS = {letter: kind for kind, letter in _LETTERS.items()}


def _name_of(token: str) -> str:
    try:
        return KIND_NAMES[kind_of(token)]
    except ValueError:
        return "unknown"


def derived_rule(kind: str, tokens: Sequence[str], via: str | None) -> str | None:
    """The rule an entry of this kind and these identifiers has when the rules made it
    without anything else to say, or ``None``."""
    if kind == "new" and tokens:
        return f"new person from {_name_of(tokens[0])}"
    if kind == "link" and via:
        return f"seen with {_name_of(via)}"
    return None


def stored_entry(entry: LogEntry, event_id: str, at: int) -> str:
    """An explain entry as the log stores it."""
    letter = _LETTERS.get(entry.kind)
    derived = derived_rule(entry.kind, entry.tokens, entry.via)
    fields = (event_id, entry.rule, entry.via or "", entry.other or "", *entry.tokens)
    if (
        letter is None
        or entry.via == ""
        or entry.other == ""
        or (entry.rule == "" and derived is not None)
        or any(SEP in field or LOG_SEP in field for field in fields)
    ):
        return orjson.dumps(entry.to_json(event_id, at)).decode()
    rule = "" if entry.rule == derived else entry.rule
    return SEP.join((letter, str(at), event_id, rule, *fields[2:]))


def parse_entry(text: bytes | str) -> dict[str, Any]:
    """A stored explain entry as the fields of ``LogEntry.to_json``: ``k`` kind, ``e`` event
    id, ``at``, ``t`` identifiers, ``r`` rule, ``via`` and ``o`` where there are."""
    if isinstance(text, bytes):
        text = text.decode()
    if text.startswith("{"):
        data: dict[str, Any] = orjson.loads(text)
        return data
    letter, at, event_id, rule, via, other, *tokens = text.split(SEP)
    kind = _KINDS[letter]
    data = {
        "k": kind,
        "e": event_id,
        "at": int(at),
        "t": tokens,
        "r": rule or derived_rule(kind, tokens, via or None) or "",
    }
    if via:
        data["via"] = via
    if other:
        data["o"] = other
    return data
