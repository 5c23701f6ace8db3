"""The benchmark runner's summary: each figure read from its benchmark and held to its goal."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from bestand.commands.ops import bench_runner

ROOT = Path(__file__).resolve().parents[2]


def _runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = module
    spec.loader.exec_module(module)
    return module


def _rate(path: str, rate: int, p99: float, done: float, held: bool) -> dict[str, Any]:
    return {"path": path, "rate": rate, "requests": rate * 5, "p99_ms": p99,
            "done_per_s": done, "held": held}  # fmt: skip


LOOKUP = {
    "http": [
        _rate("http", 1000, 0.7, 1000, True),
        _rate("http", 5000, 0.9, 4990, True),
        _rate("http", 20000, 40.0, 9000, False),
    ],
    "direct": [_rate("direct", 1000, 0.45, 1000, True)],
    "ratios": {"http": {"held_vs_get_c50": 0.071}},
}


def _rows(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["figure"]: row for row in _runner().summary(results)}


def test_figures_are_read_and_held_to_their_goals() -> None:
    ingest = {"bestand": {"per_second_per_worker": 5200.0}, "ratio_to_ceiling": 0.031,
              "ratio_to_stack_ceiling": 0.085, "rebuild": {"seconds": 170.0}}  # fmt: skip
    rows = _rows({"lookup": LOOKUP, "ingest": ingest})
    assert rows["HTTP p99 at 5,000 lookups/s"]["value"] == 0.9
    assert rows["HTTP p99 at 5,000 lookups/s"]["verdict"] == "met"
    held = rows["HTTP lookups/s per API process, highest rate held"]
    assert (held["value"], held["verdict"]) == (4990, "missed")
    assert rows["direct client p99 at 1,000 lookups/s"]["verdict"] == "missed"
    assert rows["events/s per worker process"]["verdict"] == "missed"
    assert rows["per worker process / stack ceiling"]["verdict"] == "missed"
    assert rows["per worker process / read + decode only"]["verdict"] == ""
    assert rows["`bestand rebuild` of the history, command to caught up"]["verdict"] == "met"
    ratio = rows["HTTP highest held rate / redis-benchmark GET (50 connections)"]
    assert (ratio["value"], ratio["verdict"]) == (0.071, "")
    assert not any(r["benchmark"] in ("memory", "freshness") for r in rows.values())


def test_a_failed_or_partial_benchmark_says_so() -> None:
    rows = _rows({"memory": None, "freshness": {"5000": {"p99_ms": 420.0}}})
    assert rows["bytes per person (a)"]["verdict"] == "failed"
    assert rows["order to `existing_customer: true`, p99 at 2,000 events/s"]["verdict"] == (
        "not measured"
    )
    assert rows["same, p99 at 5,000 events/s"]["value"] == 420.0


def test_a_worker_that_fell_behind_misses_the_freshness_goal() -> None:
    runner = _runner()
    rows = runner.summary({"freshness": {"2000": {"p99_ms": None, "probes": 100}}})
    row = rows[0]
    assert row["verdict"] == "missed"
    text = runner.render(
        rows, {"cpu": "c", "cores": 2, "memory_gb": 1, "python": "3", "os": "x"}, ""
    )
    assert "no probe answered within 60 s" in text


def test_the_table_names_the_machine_and_the_command() -> None:
    runner = _runner()
    rows = runner.summary({"lookup": LOOKUP})
    info = {"cpu": "Test CPU", "cores": 2, "memory_gb": 4.0, "python": "3.11", "os": "Linux"}
    text = runner.render(rows, info, "python bench/run.py --quick")
    assert "Test CPU, 2 cores" in text
    assert "`python bench/run.py --quick`" in text
    assert "| lookup | HTTP p99 at 5,000 lookups/s | 0.900 ms | <= 1 | met |" in text


def test_the_cli_finds_the_runner_of_this_checkout(tmp_path: Path) -> None:
    assert bench_runner(ROOT / "tests") == ROOT / "bench" / "run.py"
    assert bench_runner(tmp_path) in (None, ROOT / "bench" / "run.py")
