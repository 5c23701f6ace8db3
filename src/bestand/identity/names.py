"""The name a person gave, as a key: evidence against joining two different people.

A name never links persons (many people share one), but two orders under different names are
rarely one person. The rules use it to refuse a join that only a shared identifier (a family
e-mail, a shop's dummy address, a family phone) would make.
"""

from __future__ import annotations

import re

from bestand.identity.address import normalize_person_name
from bestand.identity.junk import junk_value_reason

_DIGRAPHS = re.compile(r"ae|oe|ue")


def loose_name(value: str) -> str:
    """Fold a name so that 'Müller', 'Mueller' and 'Muller' agree.

    Used only as evidence *against* a join, so it errs on the side of calling names equal:
    umlauts, their 'e' spellings and the plain vowel all fold to the vowel.
    """
    folded = normalize_person_name(value)  # titles dropped; ä→ae, ß→ss, accents stripped
    return _DIGRAPHS.sub(lambda m: m.group(0)[0], folded)


def name_key(first_name: str | None, last_name: str | None) -> str | None:
    """``last|first`` loosely folded ('Müller'/'Mueller'/'Muller' alike), or ``None``.

    An initial ('H.') is not a first name: it would match 'Hans' and 'Heike' alike.
    """
    if not first_name or not last_name:
        return None
    if junk_value_reason(first_name) or junk_value_reason(last_name):
        return None
    first = loose_name(first_name)
    last = loose_name(last_name)
    if len(first) < 2 or not last:
        return None
    return f"{last}|{first}"
