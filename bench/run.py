"""Every benchmark in one run, summed up in one table against the goals.

    python bench/run.py                  # the full run (about 40 minutes on 2 cores)
    python bench/run.py --quick          # smaller sizes, a few minutes, same table
    python bench/run.py --only lookup,memory --out bench/results/today

Starts the local stack (``bestand stack up``), then runs, each as its own process with its
own output streaming through:

- ``lookup``: ``bench/lookup_load.py``, open-loop lookups over HTTP (vegeta) and the direct
  client at fixed rates, with ``redis-benchmark`` on the same Redis as the ceiling;
- ``ingest``: ``bench/ingest.py``, worker events/s over a prepared topic, against the stack
  ceiling (a consumer that decodes and writes two keys per event in one Lua call per batch),
  a consumer that only decodes and a faust agent that does nothing; then ``bestand rebuild``
  of the same history, timed;
- ``freshness``: ``bench/freshness.py`` at the goal's rate and at a rate one worker keeps up
  with;
- ``memory``: ``bench/memory.py`` in a private Redis.

Each benchmark writes its own JSON and Markdown into ``--out`` (default
``bench/results/<UTC time>``); this script adds ``bench.json`` and ``bench.md`` with the machine,
the summary table, the goal of each figure and whether it was met. A benchmark that fails is
reported as failed and the others still run; the exit status is 1 then.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import machine, markdown_table, write_outputs

ROOT = Path(__file__).resolve().parents[1]
BENCHES = ("lookup", "ingest", "freshness", "memory")


@dataclass(frozen=True)
class Sizes:
    """How big each benchmark runs."""

    lookup: list[str]
    ingest_events: int
    freshness_rates: tuple[float, ...]
    freshness_seconds: float
    memory_persons: int


FULL = Sizes(
    lookup=[
        "--persons",
        "20000",
        "--rates",
        "1000,5000,10000,20000",
        "--seconds",
        "10",
        "--profile",
        "10",
    ],
    ingest_events=1_000_000,
    freshness_rates=(2000, 5000),
    freshness_seconds=30,
    memory_persons=1_000_000,
)
QUICK = Sizes(
    lookup=[
        "--persons",
        "5000",
        "--rates",
        "1000,5000",
        "--seconds",
        "5",
        "--targets",
        "20000",
        "--profile",
        "5",
    ],
    ingest_events=50_000,
    freshness_rates=(2000, 5000),
    freshness_seconds=10,
    memory_persons=100_000,
)


@dataclass(frozen=True)
class Goal:
    """One figure, where to find it in a benchmark's JSON, and the goal it is held against."""

    bench: str
    figure: str
    unit: str
    goal: str
    read: Callable[[dict[str, Any]], float | None]
    met: Callable[[float], bool]


def _row(rows: Sequence[dict[str, Any]], rate: int) -> dict[str, Any] | None:
    return next((r for r in rows if r["rate"] == rate), None)


def _field(rows: Sequence[dict[str, Any]], rate: int, name: str) -> float | None:
    row = _row(rows, rate)
    return None if row is None or not row["requests"] else float(row[name])


def _fresh(runs: dict[str, Any], rate: float, name: str) -> float | None:
    """A freshness figure; infinite when no probe was answered (the worker fell behind)."""
    run = runs.get(str(int(rate)))
    if run is None:
        return None
    value = run.get(name)
    return math.inf if value is None else float(value)


GOALS: tuple[Goal, ...] = (
    Goal(
        "lookup",
        "HTTP p99 at 5,000 lookups/s",
        "ms",
        "<= 1",
        lambda j: _field(j["http"], 5000, "p99_ms"),
        lambda v: v <= 1.0,
    ),
    Goal(
        "lookup",
        "HTTP lookups/s per API process, highest rate held",
        "/s",
        ">= 20,000 (p99 <= 5 ms)",
        lambda j: max(
            (r["done_per_s"] for r in j["http"] if r["held"] and r["p99_ms"] <= 5.0), default=0.0
        ),
        lambda v: v >= 20_000,
    ),
    Goal(
        "lookup",
        "direct client p99 at 1,000 lookups/s",
        "ms",
        "<= 0.3",
        lambda j: _field(j["direct"], 1000, "p99_ms"),
        lambda v: v <= 0.3,
    ),
    Goal(
        "lookup",
        "HTTP highest held rate / redis-benchmark GET (50 connections)",
        "ratio",
        "-",
        lambda j: j["ratios"]["http"]["held_vs_get_c50"],
        lambda v: True,
    ),
    Goal(
        "ingest",
        "events/s per worker process",
        "/s",
        ">= 10,000",
        lambda j: j["bestand"]["per_second_per_worker"],
        lambda v: v >= 10_000,
    ),
    Goal(
        "ingest",
        "per worker process / stack ceiling",
        "ratio",
        ">= 0.25",
        lambda j: j["ratio_to_stack_ceiling"],
        lambda v: v >= 0.25,
    ),
    Goal(
        "ingest",
        "per worker process / read + decode only",
        "ratio",
        "-",
        lambda j: j["ratio_to_ceiling"],
        lambda v: True,
    ),
    Goal(
        "ingest",
        "`bestand rebuild` of the history, command to caught up",
        "s",
        "<= 180",
        lambda j: j["rebuild"]["seconds"],
        lambda v: v <= 180,
    ),
    Goal(
        "freshness",
        "order to `existing_customer: true`, p99 at 2,000 events/s",
        "ms",
        "<= 100",
        lambda j: _fresh(j, 2000, "p99_ms"),
        lambda v: v <= 100,
    ),
    Goal(
        "freshness",
        "same, p99 at 5,000 events/s",
        "ms",
        "-",
        lambda j: _fresh(j, 5000, "p99_ms"),
        lambda v: True,
    ),
    Goal(
        "memory",
        "bytes per person (a)",
        "B",
        "<= 300",
        lambda j: j["baseline"]["model"]["least_squares"]["a_per_person"],
        lambda v: v <= 300,
    ),
    Goal(
        "memory",
        "bytes per identifier (b)",
        "B",
        "<= 120",
        lambda j: j["baseline"]["model"]["least_squares"]["b_per_identifier"],
        lambda v: v <= 120,
    ),
    Goal(
        "memory",
        "bytes per person, all told",
        "B",
        "-",
        lambda j: j["baseline"]["totals"]["bytes_per_person"],
        lambda v: True,
    ),
)


def _run(command: list[str], log: Path) -> bool:
    """Run one benchmark, its output going to the terminal and to ``log``."""
    print(f"\n$ {' '.join(command)}", flush=True)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.buffer.write(line)
            sys.stdout.flush()
            sink.write(line)
        return process.wait() == 0


def _python(script: str, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "bench" / script), *args]


def run_benches(only: Sequence[str], sizes: Sizes, out: Path) -> dict[str, Any]:
    """Run the chosen benchmarks; their figures by name, ``None`` for one that failed."""
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name in only:
        started = time.monotonic()
        if name == "freshness":
            runs: dict[str, Any] = {}
            for rate in sizes.freshness_rates:
                path = out / f"freshness-{int(rate)}.json"
                command = _python(
                    "freshness.py", "--rate", str(rate), "--seconds", str(sizes.freshness_seconds),
                    "--json", str(path), "--markdown", str(path.with_suffix(".md")),
                )  # fmt: skip
                if _run(command, path.with_suffix(".log")) and path.exists():
                    runs[str(int(rate))] = orjson.loads(path.read_bytes())
            results[name] = runs or None
        else:
            path = out / f"{name}.json"
            args = ["--json", str(path), "--markdown", str(path.with_suffix(".md"))]
            command = {
                "lookup": _python("lookup_load.py", *sizes.lookup, *args),
                "ingest": _python(
                    "ingest.py",
                    "--events",
                    str(sizes.ingest_events),
                    "--profile",
                    "30",
                    "--rebuild",
                    *args,
                ),
                "memory": _python(
                    "memory.py", "--persons", str(sizes.memory_persons), "--private-redis", *args
                ),
            }[name]
            ok = _run(command, path.with_suffix(".log"))
            results[name] = orjson.loads(path.read_bytes()) if ok and path.exists() else None
        seconds[name] = time.monotonic() - started
    results["_seconds"] = seconds
    return results


def summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per figure: the value measured, the goal and whether it was met."""
    rows = []
    for goal in GOALS:
        if goal.bench not in results:
            continue
        data = results[goal.bench]
        value: float | None = None
        if data is not None:
            try:
                value = goal.read(data)
            except (KeyError, TypeError, IndexError):
                value = None
        if value is None:
            verdict = "failed" if data is None else "not measured"
        elif goal.goal == "-":
            verdict = ""
        else:
            verdict = "met" if goal.met(value) else "missed"
        rows.append(
            {
                "benchmark": goal.bench,
                "figure": goal.figure,
                "value": value,
                "unit": goal.unit,
                "goal": goal.goal,
                "verdict": verdict,
            }
        )
    return rows


def _shown(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if value == math.inf:
        return "no probe answered within 60 s"
    if unit == "ratio":
        return f"{value:.1%}"
    if unit == "ms":
        return f"{value:,.3f} ms" if value < 10 else f"{value:,.0f} ms"
    return f"{value:,.0f} {unit}"


def render(rows: Sequence[dict[str, Any]], info: dict[str, Any], command: str) -> str:
    """The summary as Markdown: machine, command, one table."""
    table = markdown_table(
        ["benchmark", "figure", "measured", "goal", ""],
        [
            [r["benchmark"], r["figure"], _shown(r["value"], r["unit"]), r["goal"], r["verdict"]]
            for r in rows
        ],
    )
    return (
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB, "
        f"Python {info['python']}, {info['os']}.\n\nCommand: `{command}`\n\n{table}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes)")
    parser.add_argument("--only", default=",".join(BENCHES), help="comma separated subset")
    parser.add_argument("--out", type=Path, help="directory for every output")
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(only) - set(BENCHES))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or ROOT / "bench" / "results" / stamp
    out.mkdir(parents=True, exist_ok=True)
    if set(only) - {"memory"}:
        subprocess.run([sys.executable, "-m", "bestand", "stack", "up"], cwd=ROOT, check=True)
    results = run_benches(only, QUICK if args.quick else FULL, out)
    rows = summary(results)
    info = machine()
    command = "python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = render(rows, info, command.strip())
    print("\n" + text)
    figures = {
        "benchmark": "all",
        "machine": info,
        "command": command.strip(),
        "quick": args.quick,
        "seconds": results.pop("_seconds"),
        "summary": rows,
        "results": results,
    }
    write_outputs(figures, text, str(out / "bench.json"), str(out / "bench.md"))
    print(f"\nWritten: {out / 'bench.json'}, {out / 'bench.md'} (and each benchmark's own files)")
    return 1 if any(r["verdict"] == "failed" for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
