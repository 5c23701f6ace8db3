"""JSON Schemas of every event and API payload, generated from the pydantic models.

``schemas/`` holds the generated files so producers and consumers in other languages can
validate against them; a test fails when a file drifts from its model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter

from bestand.api.models import (
    BatchClassificationRequest,
    BatchClassificationResponse,
    BatchLookupRequest,
    BatchLookupResponse,
    CampaignReport,
    ErrorResponse,
    LookupAnswer,
    OrderClassification,
    PersonExplanation,
)
from bestand.collector.models import CollectorAnswer, CollectorRefusal
from bestand.events import (
    ClickstreamEvent,
    CustomerEvent,
    DeadLetter,
    EmailTopicEvent,
    OrderEvent,
)
from bestand.events.changes import ProfileChange

_TOPICS: dict[str, tuple[str, Any]] = {
    "events/clickstream.json": ("Events of the clickstream topic", ClickstreamEvent),
    "events/orders.json": ("Events of the orders topic", OrderEvent),
    "events/email.json": ("Events of the email topic", EmailTopicEvent),
    "events/customer.json": ("Events of the customer topic", CustomerEvent),
}
_MODELS: dict[str, type[BaseModel]] = {
    "events/dead-letter.json": DeadLetter,
    "events/profile-changes.json": ProfileChange,
    "api/lookup-answer.json": LookupAnswer,
    "api/batch-lookup-request.json": BatchLookupRequest,
    "api/batch-lookup-response.json": BatchLookupResponse,
    "api/error.json": ErrorResponse,
    "api/person-explanation.json": PersonExplanation,
    "api/order-classification.json": OrderClassification,
    "api/batch-classification-request.json": BatchClassificationRequest,
    "api/batch-classification-response.json": BatchClassificationResponse,
    "api/campaign-report.json": CampaignReport,
    "collector/answer.json": CollectorAnswer,
    "collector/refusal.json": CollectorRefusal,
}


def all_schemas() -> dict[str, dict[str, Any]]:
    """Every schema by its path under ``schemas/``."""
    out: dict[str, dict[str, Any]] = {}
    for path, (title, annotation) in _TOPICS.items():
        schema = TypeAdapter(annotation).json_schema()
        out[path] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": title,
            **schema,
        }
    for path, model in _MODELS.items():
        out[path] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            **model.model_json_schema(),
        }
    return out


def _render(schema: dict[str, Any]) -> bytes:
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def write_schemas(directory: Path) -> list[str]:
    """Write every schema below ``directory``; return the relative paths written."""
    for name, schema in all_schemas().items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_render(schema))
    return sorted(all_schemas())


def check_schemas(directory: Path) -> list[str]:
    """Relative paths whose file is missing or differs from its model (empty when current)."""
    stale = []
    for name, schema in all_schemas().items():
        target = directory / name
        if not target.exists() or target.read_bytes() != _render(schema):
            stale.append(name)
    return sorted(stale)
