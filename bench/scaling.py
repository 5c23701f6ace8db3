"""Scaling out on this machine: 1 against 2 worker processes, 1 Redis against 3 masters.

    python bench/scaling.py [--events 200000] [--rounds 2] [--requests 300000]

Workers: ``bench/ingest.py`` with one worker process and with two, alternating (the order
flips each round), on the local stack: events/s in all, per process, and the two's ratio.
Redis: ``redis-benchmark`` (SET and GET, 50 clients, 16 commands a round trip) against one
Redis and against a local cluster of three masters, both started for the run with the same
options (``bestand.stack``: append-only file, fsync every second) and stopped after, so the
benchmark's million ``key:*`` keys never land in the stack's Redis: requests/s and the
ratio. bestand on both: ``bench/ingest.py`` with one worker process on the stack's Redis and
on that cluster (``--cluster-url``), alternating: events/s and the ratio. All of it runs on the
same cores as everything else, so the ratios say what this machine allows, not what the
software would do with a core per process; the closing lines say so with the machine's core
count.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bestand.stack import free_port
from bestand.stack.cluster import LocalRedisCluster, free_cluster_ports
from bestand.stack.redis import LocalRedis
from machine import markdown_table

BENCH = Path(__file__).resolve().parent


def ingest(events: int, workers: int, cluster_url: str | None = None) -> dict[str, Any]:
    """One ``bench/ingest.py`` run's figures (on the Redis Cluster of ``cluster_url``)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "ingest.json"
        command = [sys.executable, str(BENCH / "ingest.py"), "--events", str(events),
                   "--workers", str(workers), "--faust-events", "0",
                   "--json", str(out)]  # fmt: skip
        if cluster_url:
            command += ["--cluster-url", cluster_url]
        subprocess.run(command, check=True, cwd=BENCH, stdout=subprocess.DEVNULL)
        figures: dict[str, Any] = json.loads(out.read_text())
    return figures


def redis_benchmark(port: int, requests: int, cluster: bool) -> dict[str, float]:
    """Requests/s of SET and GET from ``redis-benchmark`` against one port."""
    command = ["redis-benchmark", "-p", str(port), "-t", "set,get", "-n", str(requests),
               "-c", "50", "-P", "16", "-r", "1000000", "-q"]  # fmt: skip
    if cluster:
        command.append("--cluster")
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    rates: dict[str, float] = {}
    for line in done.stdout.replace("\r", "\n").splitlines():
        found = re.match(r"^(SET|GET): ([\d.]+) requests per second", line.strip())
        if found:
            rates[found.group(1)] = float(found.group(2))
    if set(rates) != {"SET", "GET"}:
        raise RuntimeError(f"redis-benchmark said nothing readable:\n{done.stdout}{done.stderr}")
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--requests", type=int, default=300_000)
    args = parser.parse_args()
    cores = os.cpu_count() or 1

    rows: list[list[Any]] = []
    ratios: list[float] = []
    for round_number in range(1, args.rounds + 1):
        order = (1, 2) if round_number % 2 else (2, 1)
        rates: dict[int, float] = {}
        for workers in order:
            print(f"round {round_number}: {workers} worker process(es) …", flush=True)
            figures = ingest(args.events, workers)
            rates[workers] = figures["bestand"]["per_second"]
            rows.append([round_number, f"{workers} worker process(es)",
                         f"{rates[workers]:,.0f}", f"{rates[workers] / workers:,.0f}",
                         figures["redis_scripts"]])  # fmt: skip
        ratios.append(rates[2] / rates[1])
    table = markdown_table(["round", "bestand", "events/s", "per process", "Redis ran"], rows)

    redis_rows: list[list[Any]] = []
    bestand_rows: list[list[Any]] = []
    on_masters: dict[str, list[float]] = {"1 Redis": [], "3 masters": []}
    with tempfile.TemporaryDirectory() as folder:
        cluster = LocalRedisCluster(Path(folder), ports=free_cluster_ports(3),
                                    project_dir=BENCH.parent, log=lambda _: None)  # fmt: skip
        one = LocalRedis(Path(folder) / "single", port=free_port(), log=lambda _: None)
        try:
            print("starting one Redis and a local Redis cluster of 3 masters …", flush=True)
            one.start()
            one.wait_ready(30)
            single = one.port
            cluster.start(timeout=60)
            for round_number in range(1, args.rounds + 1):
                for label, port, is_cluster in (("1 Redis", single, False),
                                                ("3 masters", cluster.ports[0], True)):  # fmt: skip
                    rates_r = redis_benchmark(port, args.requests, is_cluster)
                    redis_rows.append([round_number, label, f"{rates_r['SET']:,.0f}",
                                       f"{rates_r['GET']:,.0f}"])  # fmt: skip
            for round_number in range(1, args.rounds + 1):
                order_c = (None, cluster.url) if round_number % 2 else (cluster.url, None)
                for url in order_c:
                    label = "3 masters" if url else "1 Redis"
                    print(f"round {round_number}: bestand, 1 worker process, {label} …", flush=True)
                    ours = ingest(args.events, 1, url)["bestand"]
                    on_masters[label].append(ours["per_second"])
                    bestand_rows.append([round_number, label, f"{ours['per_second']:,.0f}",
                                         f"{ours['redis_cpu_us_per_event']:.0f}"])  # fmt: skip
        finally:
            cluster.stop()
            one.stop()
    table += "\n\n" + markdown_table(
        ["round", "Redis", "SET requests/s", "GET requests/s"], redis_rows
    )
    table += "\n\n" + markdown_table(
        ["round", "bestand, 1 worker process on", "events/s", "Redis CPU µs an event"],
        bestand_rows,
    )
    singles = [float(r[2].replace(",", "")) for r in redis_rows if r[1] == "1 Redis"]
    clustered = [float(r[2].replace(",", "")) for r in redis_rows if r[1] == "3 masters"]
    table += (
        "\n\n2 worker processes / 1, round by round: "
        + ", ".join(f"{r:.2f}" for r in ratios)
        + f". 3 masters / 1 Redis (SET): {sum(clustered) / sum(singles):.2f}."
        + " bestand on 3 masters / on 1 Redis, 1 worker process: "
        + f"{sum(on_masters['3 masters']) / sum(on_masters['1 Redis']):.2f}"
        + " (on a cluster the persons' writes run Lua and the Python fold: README, Redis Cluster)."
        + f"\nThis machine has {cores} cores for Kafka, Redis, the workers and the load "
        "generators together: a ratio near 1 says the cores are used up, not that the "
        "software does not scale; on machines with a core per process, measure again."
    )
    print()
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
