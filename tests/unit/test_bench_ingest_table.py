"""The ingest benchmark's table of where an event's time goes, and what it writes."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import ingest


def test_the_cost_table_gives_stages_and_writes_per_event() -> None:
    ours = {
        "worker_cpu_us_per_event": 120.0,
        "worker_busy": 0.75,
        "redis_cpu_us_per_event": 95.0,
        "stages": {
            "messages_sum": 4000.0,
            "messages_count": 2.0,
            "stage:apply": 0.5,
            "writes:person_state": 3000.0,
            "writes:lookup_record": 6800.0,
            "writes:dedupe_marker": 3900.0,
        },
    }
    table = ingest.cost_table(ours)
    assert "| stage `apply` (wall) | 125 |  |" in table
    assert "| person states | 0.75 |" in table
    assert "| lookup records | 1.70 |" in table
    assert "| dedupe markers | 0.97 |" in table


def test_the_cost_table_leaves_out_writes_a_worker_did_not_report() -> None:
    ours = {"redis_cpu_us_per_event": 95.0, "stages": {"messages_sum": 10.0, "stage:apply": 0.001}}
    table = ingest.cost_table(ours)
    assert "sent to Redis per event" not in table
    assert "| stage `apply` (wall) | 100 |  |" in table
