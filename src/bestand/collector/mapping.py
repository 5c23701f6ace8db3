"""What the collector's mappings share: the outcome of mapping one call or webhook, the
validation of the event it makes, and the readers of loosely typed JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import ValidationError

from bestand.events.decode import ADAPTERS, TYPE_TOPIC_KIND, TopicKind, summarize

#: Click ids of ad networks, read from the page's query string.
CLICK_IDS = ("gclid", "msclkid", "fbclid", "dclid", "ttclid")


class Refused(ValueError):
    """A call that makes no valid event: a stable reason and a sentence on why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Mapped:
    """A call as a bestand event (validated against its contract), and its topic kind."""

    event: dict[str, Any]
    kind: TopicKind


@dataclass(frozen=True, slots=True)
class Skipped:
    """A valid call bestand has no use for; ``why`` labels it in the metrics."""

    why: str


def mapped(event: dict[str, Any]) -> Mapped:
    """The event, validated against its contract (a refusal says which field broke it)."""
    kind = TYPE_TOPIC_KIND[event["type"]]
    try:
        ADAPTERS[kind].validate_python(event)
    except ValidationError as exc:
        raise Refused(*summarize(exc)) from None
    return Mapped(event, kind)


def query_of(url: str | None) -> dict[str, str]:
    if not url:
        return {}
    try:
        return {k: v.strip() for k, v in parse_qsl(urlsplit(url).query) if v.strip()}
    except ValueError:
        return {}


def text_of(holder: Mapping[str, Any], field: str) -> str | None:
    """A field as text: strings stripped, numbers as Segment's libraries stringify ids."""
    value = holder.get(field)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def url_attribution(url: str | None) -> dict[str, str]:
    """The UTM parameters and the first ad click id in a page's query string."""
    query = query_of(url)
    out = {}
    for name in ("source", "medium", "campaign", "term", "content"):
        if value := query.get(f"utm_{name}"):
            out[f"utm_{name}"] = value
    for click in CLICK_IDS:
        if query.get(click):
            out["click_id"] = query[click]
            break
    return out


def parse_time(value: Any, field: str) -> datetime:
    """An ISO 8601 time with an offset (a ``Z`` read as UTC)."""
    if not isinstance(value, str):
        raise Refused("schema", f"{field} must be an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Refused("schema", f"{field} is not an ISO 8601 time: {value[:64]!r}") from None
    if parsed.tzinfo is None:
        raise Refused("schema", f"{field} has no time zone: {value[:64]!r}")
    return parsed


def quantity_of(item: Any) -> int:
    """An item's quantity (1 where it names none or no usable one)."""
    quantity = item.get("quantity", 1) if isinstance(item, Mapping) else 1
    if isinstance(quantity, bool) or not isinstance(quantity, (int, float)) or quantity < 0:
        return 1
    return int(quantity)
