"""Write a simulated shop to files and read it back, for replays and offline evaluation.

``events.jsonl`` holds one event per line in time order (what a producer would send),
``truth.json`` who really is who, ``summary.json`` the counts. Reading gives back events and
truth exactly; personas come back reduced to what ``truth.json`` holds.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from bestand.simulate.people import Persona
from bestand.simulate.shop import SimulatedShop, scenario_counts

EVENTS_FILE = "events.jsonl"
TRUTH_FILE = "truth.json"
SUMMARY_FILE = "summary.json"


def write_shop(shop: SimulatedShop, out_dir: Path) -> list[Path]:
    """Write events.jsonl, truth.json and summary.json into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    events_path = out_dir / EVENTS_FILE
    with events_path.open("wb") as out:
        for event in shop.events:
            out.write(orjson.dumps(event) + b"\n")
    truth = {
        "events": shop.truth,
        "persons": {
            persona.key: {
                "kind": persona.kind,
                "household": persona.household,
                "traits": persona.traits,
            }
            for persona in shop.personas
        },
    }
    truth_path = out_dir / TRUTH_FILE
    truth_path.write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2))
    summary_path = out_dir / SUMMARY_FILE
    summary_path.write_bytes(orjson.dumps(shop.summary(), option=orjson.OPT_INDENT_2))
    return [events_path, truth_path, summary_path]


def read_shop(out_dir: Path) -> SimulatedShop:
    """Read what :func:`write_shop` wrote; personas carry key, kind, household and traits."""
    with (out_dir / EVENTS_FILE).open("rb") as lines:
        events: list[dict[str, Any]] = [orjson.loads(line) for line in lines if line.strip()]
    truth = orjson.loads((out_dir / TRUTH_FILE).read_bytes())
    personas = [
        Persona(
            key=key,
            first="",
            last="",
            email="",
            phone="",
            customer_id=None,
            kind=person["kind"],
            household=person["household"],
            traits=list(person.get("traits", [])),
        )
        for key, person in truth["persons"].items()
    ]
    households: dict[str, list[str]] = {}
    for persona in personas:
        households.setdefault(persona.household, []).append(persona.key)
    summary_path = out_dir / SUMMARY_FILE
    summary = orjson.loads(summary_path.read_bytes()) if summary_path.exists() else {}
    now = summary.get("now")
    return SimulatedShop(
        events=events,
        truth=dict(truth["events"]),
        personas=personas,
        scenario_counts=scenario_counts(personas),
        households=households,
        seed=summary.get("seed"),
        now=datetime.fromisoformat(now) if now else None,
        e_receipts=float(summary.get("e_receipts") or 0.0),
    )
