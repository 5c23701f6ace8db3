"""Which persons belong to an audience segment, judged from their lookup answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Segment name -> what it holds.
SEGMENTS: dict[str, str] = {
    "existing": "existing customers (for suppression in acquisition campaigns)",
    "prospects": "known persons without a kept order",
    "first_time": "customers with one order",
    "repeat": "repeat customers",
    "loyal": "loyal customers",
    "at_risk": "customers without an order for a while",
    "lapsed": "customers gone quiet for long",
    "reactivated": "customers back after a lapse",
    "top10": "the top 10 % of customers by lifetime value",
    "top30": "the top 30 % of customers by lifetime value",
}


def in_segment(answer: Mapping[str, Any], segment: str) -> bool:
    """True when the person behind a full (admin) lookup answer is in ``segment``."""
    if segment not in SEGMENTS:
        raise ValueError(f"unknown segment {segment!r}; use one of " + ", ".join(SEGMENTS))
    if not answer.get("known"):
        return False
    if segment == "existing":
        return bool(answer.get("existing_customer"))
    if segment == "prospects":
        return not answer.get("existing_customer")
    if segment in ("top10", "top30"):
        band = (answer.get("value") or {}).get("band")
        return band == "top10" or (segment == "top30" and band == "top30")
    return answer.get("lifecycle_stage") == segment


def consent_allows(answer: Mapping[str, Any], *, unstated: bool) -> bool:
    """Ads consent given (or, with ``unstated``, not withdrawn)."""
    consent = answer.get("consent") or {}
    if "ads" in consent:
        return bool(consent["ads"])
    return unstated
