"""The name a person gave, as a key: evidence against joining two different people.

A name never links persons (many people share one), but two orders under different names are
rarely one person. The rules use it to refuse a join that only a shared identifier (a family
e-mail, a shop's dummy address, a family phone) would make.
"""

from __future__ import annotations

from bestand.identity.address import normalize_person_name
from bestand.identity.junk import junk_value_reason


def name_key(first_name: str | None, last_name: str | None) -> str | None:
    """``last|first`` folded ('Müller'/'Mueller' alike), or ``None`` when too little is given.

    An initial ('H.') is not a first name: it would match 'Hans' and 'Heike' alike.
    """
    if not first_name or not last_name:
        return None
    if junk_value_reason(first_name) or junk_value_reason(last_name):
        return None
    first = normalize_person_name(first_name)
    last = normalize_person_name(last_name)
    if len(first) < 2 or not last:
        return None
    return f"{last}|{first}"
