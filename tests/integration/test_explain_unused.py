"""Explain says what an event's identifiers were not used for linking, and why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support import make_deployment, process_events, run

from bestand.store import IdentityGraph, connect
from bestand.store.keys import Keys

pytestmark = pytest.mark.integration


def _identify(event_id: str, **identifiers: str) -> dict[str, Any]:
    return {
        "type": "identify",
        "event_id": event_id,
        "event_time": "2026-11-02T10:00:00Z",
        "identifiers": identifiers,
    }


@pytest.mark.parametrize("resolve", ["native", "python"])
def test_refused_and_junk_identifiers_are_in_the_persons_explain_log(
    redis_url: str, tmp_path: Path, resolve: str
) -> None:
    deployment = make_deployment("127.0.0.1:1", redis_url, tmp_path)
    settings = deployment.settings.model_copy(update={"resolve": resolve})
    events = [
        _identify("x1", email="anna.koch@example.com", phone="12"),  # too short: refused
        _identify("x2", email="anna.koch@example.com", phone="0151 11111111"),  # nobody's
        _identify("x3", email="Anna.Koch @example.com", phone="0171 234567"),  # both used
    ]

    async def go() -> list[dict[str, Any]]:
        await process_events(settings, settings.topic_customer, events)
        client = connect(settings.redis_url)
        try:
            graph = IdentityGraph(client, Keys(settings.redis_prefix))
            persons = {
                person.decode()
                async for key in client.scan_iter(match=f"{settings.redis_prefix}:{{g}}:k:*")
                for person in await client.hkeys(key)
                if b":" not in person  # its facts, not its log (a marked field)
            }
            assert len(persons) == 1, persons
            explanation = await graph.explain(persons.pop())
            assert explanation is not None
            return list(explanation.history)
        finally:
            await client.aclose()

    history = run(go())
    unused = {(entry["e"], entry["r"]) for entry in history if entry["k"] == "junk"}
    assert unused == {
        (
            "x1",
            "ignored: refused as invalid: not a possible phone number for its region (its length)",
        ),
        ("x2", "ignored: all subscriber digits are equal"),
    }
    # The refused value is stored keyed, like every identifier: never as typed.
    assert all(token.partition(":")[2] != "12" for entry in history for token in entry["t"])
    linked = [entry for entry in history if entry["k"] in ("new", "link")]
    assert [entry["e"] for entry in linked] == ["x1", "x3"]
