"""What a deployment of a given size needs, from the per-unit costs the benchmarks measure.

    python bench/sizing.py                       # 100 million persons, 50,000 events/s, ...
    python bench/sizing.py --persons 10e6 --events 5000 --lookups 20000
    python bench/sizing.py --bytes-per-person 300 --bytes-per-identifier 120  # the goal

Every per-unit cost is an option whose default is the figure this machine measured (the
README's Performance section names the command of each). Prints the inputs, then the
processes and Redis masters the load needs, one row each with how it was reckoned, and the
limit of the identity graph: it lives under one hash tag, so one master carries all of it,
however many masters the cluster has.

Nothing here runs a server: it is arithmetic over the figures given. A figure measured on
this machine's two shared cores is a floor for a dedicated core, not a promise.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Load:
    """What the deployment must carry."""

    persons: float
    identifiers: float
    events: float  # events/s at peak
    lookups: float  # lookups/s at peak


@dataclass(frozen=True)
class Costs:
    """Per-unit costs, as measured."""

    bytes_per_person: float  # the fit's a: what a person costs besides its identifiers
    bytes_per_identifier: float  # the fit's b: what each identifier adds
    events_per_worker: float  # events/s one worker process carries
    lookups_per_api: float  # lookups/s one API process carries
    redis_event_us: float  # Redis main-thread µs per event, all scripts
    graph_share: float  # share of that the identity graph's scripts take
    redis_lookup_us: float  # Redis main-thread µs per lookup (one GET)
    master_memory_gb: float  # data one master should hold (headroom for forks left out)
    master_busy: float  # share of a master's thread to plan for (the rest is headroom)


@dataclass(frozen=True)
class Row:
    what: str
    need: str
    how: str


def plan(load: Load, costs: Costs) -> tuple[list[Row], list[str]]:
    """The processes and masters the load needs, and warnings where one part cannot scale."""
    rows: list[Row] = []
    notes: list[str] = []

    workers = math.ceil(load.events / costs.events_per_worker)
    rows.append(
        Row(
            "worker processes",
            f"{workers:,}",
            f"{load.events:,.0f} events/s / {costs.events_per_worker:,.0f} per process",
        )
    )
    partitions = max(workers, 1)
    rows.append(
        Row(
            "input partitions per topic",
            f"{partitions:,} or more",
            "a consumer group gives each partition to one worker: as many partitions as "
            "workers at least, more to leave room for adding workers",
        )
    )
    api = math.ceil(load.lookups / costs.lookups_per_api)
    rows.append(
        Row(
            "API processes",
            f"{api:,}",
            f"{load.lookups:,.0f} lookups/s / {costs.lookups_per_api:,.0f} per process",
        )
    )

    data = load.persons * costs.bytes_per_person + load.identifiers * costs.bytes_per_identifier
    by_memory = math.ceil(data / (costs.master_memory_gb * 1e9))
    rows.append(
        Row(
            "Redis data",
            f"{data / 1e9:,.0f} GB",
            f"{load.persons:,.0f} persons x {costs.bytes_per_person:,.0f} B + "
            f"{load.identifiers:,.0f} identifiers x {costs.bytes_per_identifier:,.0f} B",
        )
    )

    graph_us = costs.redis_event_us * costs.graph_share
    person_us = costs.redis_event_us - graph_us
    person_cores = load.events * person_us / 1e6 + load.lookups * costs.redis_lookup_us / 1e6
    graph_cores = load.events * graph_us / 1e6
    by_cpu = math.ceil(person_cores / costs.master_busy)
    rows.append(
        Row(
            "Redis masters for persons and lookups (CPU)",
            f"{by_cpu:,}",
            f"({load.events:,.0f} events/s x {person_us:.0f} µs + {load.lookups:,.0f} lookups/s "
            f"x {costs.redis_lookup_us:g} µs) = {person_cores:.2f} cores at "
            f"{costs.master_busy:.0%} busy each",
        )
    )
    rows.append(
        Row(
            "Redis masters for the data (memory)",
            f"{by_memory:,}",
            f"{data / 1e9:,.0f} GB / {costs.master_memory_gb:g} GB per master",
        )
    )
    graph_limit = costs.master_busy * 1e6 / graph_us
    graph_master = 1 if graph_cores > costs.master_busy / 2 else 0
    masters = max(by_memory, by_cpu + graph_master, 1)
    rows.append(
        Row(
            "Redis masters",
            f"{masters:,}",
            "the larger of the two"
            + (
                ", the CPU count with a master for the graph, whose thread it takes"
                if graph_master
                else ""
            )
            + "; a replica each besides",
        )
    )
    rows.append(
        Row(
            "identity graph master (one hash tag)",
            f"{graph_cores / costs.master_busy:.0%} of one master's thread",
            f"{load.events:,.0f} events/s x {graph_us:.0f} µs = {graph_cores:.2f} cores; one "
            f"master carries {graph_limit:,.0f} events/s of graph work",
        )
    )
    if graph_cores > costs.master_busy:
        notes.append(
            f"The identity graph cannot carry {load.events:,.0f} events/s on one master: it "
            f"needs {graph_cores:.2f} cores of one Redis thread, and one master carries about "
            f"{graph_limit:,.0f} events/s at {costs.master_busy:.0%} busy. Until the graph is "
            "spread over the cluster (its entries under more than one hash tag), this is the "
            "ceiling of one deployment, however many masters and workers it has."
        )
    return rows, notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--persons", type=float, default=100e6)
    add("--identifiers", type=float, default=300e6)
    add("--events", type=float, default=50_000, help="events/s at peak")
    add("--lookups", type=float, default=100_000, help="lookups/s at peak")
    # The measured figures (README, Performance), one option each.
    # bench/memory.py --persons 1000000 --private-redis: the fit of layout 12's store.
    add("--bytes-per-person", type=float, default=43, help="bench/memory.py's fit: a")
    add("--bytes-per-identifier", type=float, default=151, help="bench/memory.py's fit: b")
    add("--events-per-worker", type=float, default=12548, help="bench/ingest.py, 1,000,000")
    add("--lookups-per-api", type=float, default=1000, help="bench/lookup_load.py, held")
    add("--redis-event-us", type=float, default=42, help="bench/ingest.py, Redis µs per event")
    add("--graph-share", type=float, default=0.58, help="bench/script_costs.py --module")
    add("--redis-lookup-us", type=float, default=8.9, help="Redis CPU per GET, redis-benchmark")
    add("--master-memory-gb", type=float, default=64)
    add("--master-busy", type=float, default=0.7, help="share of a Redis thread to plan on")
    args = parser.parse_args()
    load = Load(args.persons, args.identifiers, args.events, args.lookups)
    costs = Costs(
        args.bytes_per_person,
        args.bytes_per_identifier,
        args.events_per_worker,
        args.lookups_per_api,
        args.redis_event_us,
        args.graph_share,
        args.redis_lookup_us,
        args.master_memory_gb,
        args.master_busy,
    )
    rows, notes = plan(load, costs)
    print(
        f"{load.persons:,.0f} persons, {load.identifiers:,.0f} identifiers, "
        f"{load.events:,.0f} events/s, {load.lookups:,.0f} lookups/s\n"
    )
    print("| what | needs | reckoned as |")
    print("|---|--:|---|")
    for row in rows:
        print(f"| {row.what} | {row.need} | {row.how} |")
    for note in notes:
        print(f"\n{note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
