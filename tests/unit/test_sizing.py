"""The sizing model (``bench/sizing.py``): arithmetic over measured per-unit costs."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from sizing import Costs, Load, plan

COSTS = Costs(
    bytes_per_person=400,
    bytes_per_identifier=500,
    events_per_worker=5000,
    lookups_per_api=1000,
    redis_event_us=50,
    graph_share=0.6,
    redis_lookup_us=10,
    master_memory_gb=10,
    master_busy=0.5,
)


def _needs(load: Load) -> tuple[dict[str, str], list[str]]:
    rows, notes = plan(load, COSTS)
    return {row.what: row.need for row in rows}, notes


def test_processes_and_masters_follow_from_the_costs() -> None:
    needs, notes = _needs(Load(persons=10e6, identifiers=30e6, events=12_000, lookups=5_500))
    assert needs["worker processes"] == "3"  # 12,000 / 5,000 rounded up
    assert needs["API processes"] == "6"  # 5,500 / 1,000 rounded up
    assert needs["Redis data"] == "19 GB"  # 10e6 x 400 + 30e6 x 500 bytes
    assert needs["Redis masters for the data (memory)"] == "2"
    # persons: 12,000 x 20 µs + lookups 5,500 x 10 µs = 0.295 cores, 0.5 each: 1 master
    assert needs["Redis masters for persons and lookups (CPU)"] == "1"
    # the graph: 12,000 x 30 µs = 0.36 cores, more than half a master: a master of its own
    assert needs["Redis masters"] == "2"
    assert needs["identity graph master (one hash tag)"] == "72% of one master's thread"
    assert notes == []


def test_a_graph_beyond_one_master_is_named_as_the_ceiling() -> None:
    needs, notes = _needs(Load(persons=1e6, identifiers=3e6, events=20_000, lookups=0))
    # 20,000 x 30 µs = 0.6 cores > 0.5: one master carries 0.5 / 30 µs = 16,667 events/s
    assert needs["identity graph master (one hash tag)"] == "120% of one master's thread"
    assert len(notes) == 1
    assert "16,667 events/s" in notes[0]
