"""Who may see what: the scopes of API keys and the lookup fields each scope sees.

An ad server needs the yes/no answer and nothing that helps it build a profile of its own;
an affiliate network also validates its orders; on-site personalization needs value band and
interests; the widget in the visitor's browser learns, for that visitor's own cookie only,
whether they are known and a customer, their stage, offers and interests; only an admin key
sees everything, including reports and explanations.

Keys are configured as ``KEY:SCOPE`` (``BESTAND_API_KEYS=k1:ads,k2:admin``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

Scope = Literal["ads", "affiliate", "personalization", "admin", "widget"]
SCOPES: tuple[Scope, ...] = get_args(Scope)

#: Lookup answer fields an ad-server key sees: yes/no-level, nothing to profile with.
_ADS_FIELDS = frozenset(
    {"known", "existing_customer", "lifecycle_stage", "new_customer_offer_eligible"}
)
_PERSONALIZATION_FIELDS = _ADS_FIELDS | {
    "person_id",
    "orders_count",
    "first_order_at",
    "last_order_at",
    "loyalty_offers",
    "preferred_channel",
    "consent",
    "interests",
    "value",
}
#: Parts of the ``value`` block that personalization sees (no money amounts).
_PERSONALIZATION_VALUE = frozenset({"band", "rfm", "expected_next_order_at"})

#: What the visitor's own browser may be told (a widget key is public: it is in the page).
_WIDGET_FIELDS = _ADS_FIELDS | {"loyalty_offers", "interests"}

LOOKUP_FIELDS: dict[Scope, frozenset[str] | None] = {
    "ads": _ADS_FIELDS,
    "affiliate": _ADS_FIELDS,
    "personalization": frozenset(_PERSONALIZATION_FIELDS),
    "admin": None,  # everything
    "widget": _WIDGET_FIELDS,
}

#: Routes beyond the lookup, and the scopes allowed on them.
ROUTE_SCOPES: dict[str, frozenset[Scope]] = {
    # A widget key is public: it answers only on /v1/widget, for the visitor's own cookie.
    "lookup": frozenset(SCOPES) - {"widget"},
    "widget": frozenset({"widget", "admin"}),
    "classification": frozenset({"affiliate", "admin"}),
    "report": frozenset({"admin"}),
    "explain": frozenset({"admin"}),
}


def split_api_key(entry: str) -> tuple[str, Scope]:
    """``KEY:SCOPE`` into key and scope; raises ``ValueError`` naming what is wrong."""
    key, sep, scope = entry.strip().rpartition(":")
    if not sep or not key:
        raise ValueError(
            "each API key needs a scope: KEY:SCOPE with SCOPE one of " + ", ".join(SCOPES)
        )
    for known in SCOPES:
        if scope == known:
            return key, known
    raise ValueError(f"unknown API key scope {scope!r}; use one of " + ", ".join(SCOPES))


def visible_answer(answer: Mapping[str, Any], scope: Scope) -> dict[str, Any]:
    """The part of a lookup answer that ``scope`` may see."""
    fields = LOOKUP_FIELDS[scope]
    if fields is None:
        return dict(answer)
    out = {name: value for name, value in answer.items() if name in fields}
    value = out.get("value")
    if scope == "personalization" and isinstance(value, Mapping):
        out["value"] = {k: v for k, v in value.items() if k in _PERSONALIZATION_VALUE}
    return out
