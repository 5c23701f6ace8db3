"""Ingest of two versions of bestand on the same stack, alternating: what a change is worth.

    python bench/compare.py BASE [--events 200000] [--rounds 3] [--workers 1]

``BASE`` is anything git names a commit by; the other version is the working tree as
installed (``make install`` builds its compiled core). The base is exported under
``.local/bench/compare/<commit>/`` and its compiled core built there (cargo, a target
directory of its own: a second comparison with the same commit builds nothing). Each round
runs ``bench/ingest.py`` once per version, the base first in odd rounds and second in even
ones, because this machine's speed drifts over minutes by more than most changes are worth:
the same code measured twice a few minutes apart differs by 10–15 %. Each run is also shown
as a share of the stack ceiling measured in that same run, and each round's two runs as a
ratio.

The base runs the working tree's ``bench/ingest.py`` with its own ``bestand`` and compiled
core first on the path, so a base far enough back for that benchmark's imports to differ
cannot be compared this way. Needs Kafka and Redis (``bestand stack up``) and cargo.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from machine import markdown_table

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent


def git(*args: str) -> str:
    """A git command's output in the repository."""
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def base_paths(ref: str) -> tuple[str, list[Path]]:
    """The base's commit and what goes first on its runs' path: its ``src`` and its compiled
    core, exported and built once per commit."""
    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    home = ROOT / ".local" / "bench" / "compare" / commit
    tree, native = home / "tree", home / "native"
    if not (tree / "src").is_dir():
        shutil.rmtree(tree, ignore_errors=True)
        tree.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", commit], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    module = native / f"bestand_native{sysconfig.get_config_var('EXT_SUFFIX')}"
    if not module.exists():
        print(f"building the compiled core of {commit[:10]} …", flush=True)
        subprocess.run(
            ["cargo", "build", "--release", "--quiet"],
            cwd=tree / "native",
            env={**os.environ, "CARGO_TARGET_DIR": str(home / "target")},
            check=True,
        )
        native.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(home / "target" / "release" / "libbestand_native.so", module)
    return commit, [tree / "src", native]


def ingest_run(path: list[Path], events: int, workers: int) -> dict[str, Any]:
    """One run of ``bench/ingest.py`` with ``path`` first on the Python path; its figures."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "figures.json"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [*(str(p) for p in path), str(BENCH), env.get("PYTHONPATH", "")]
        ).rstrip(os.pathsep)
        done = subprocess.run(
            [sys.executable, str(BENCH / "ingest.py"), "--events", str(events),
             "--workers", str(workers), "--faust-events", "0", "--json", str(out)],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0 or not out.exists():
            raise SystemExit(f"bench/ingest.py failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        figures: dict[str, Any] = json.loads(out.read_text())
    return figures


def row(name: str, round_number: int, figures: dict[str, Any]) -> list[Any]:
    ours = figures["bestand"]
    return [
        round_number,
        name,
        f"{ours['per_second_per_worker']:.0f}",
        f"{figures['ratio_to_stack_ceiling']:.1%}",
        f"{ours.get('worker_cpu_us_per_event') or 0:.0f}",
        f"{ours['redis_cpu_us_per_event']:.0f}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the commit to compare the working tree with")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", help="write every run's figures here")
    args = parser.parse_args(argv)
    commit, base_path = base_paths(args.base)
    versions = {f"base {commit[:10]}": base_path, "working tree": [ROOT / "src"]}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in versions}
    rows: list[list[Any]] = []
    for n in range(1, args.rounds + 1):
        order = list(versions) if n % 2 else list(reversed(versions))
        for name in order:
            print(f"round {n}: {name} …", flush=True)
            figures = ingest_run(versions[name], args.events, args.workers)
            runs[name].append(figures)
            rows.append(row(name, n, figures))
            print(f"  {figures['bestand']['per_second_per_worker']:.0f} events/s", flush=True)
    base, ours = (runs[name] for name in versions)
    rate = [r["bestand"]["per_second_per_worker"] for r in ours]
    base_rate = [r["bestand"]["per_second_per_worker"] for r in base]
    share = [r["ratio_to_stack_ceiling"] for r in ours]
    base_share = [r["ratio_to_stack_ceiling"] for r in base]
    paired = [a / b for a, b in zip(rate, base_rate, strict=True)]
    print()
    print(markdown_table(
        ["round", "version", "events/s", "of the ceiling", "worker CPU µs", "Redis CPU µs"], rows
    ))  # fmt: skip
    print()
    median = statistics.median
    print(f"median events/s: working tree {median(rate):.0f}, base {median(base_rate):.0f}")
    print(f"median share of the ceiling: {median(share):.1%} against {median(base_share):.1%}")
    print(f"working tree / base, round by round: {', '.join(f'{p:.3f}' for p in paired)} "
          f"(median {median(paired):.3f}, spread {min(paired):.3f}–{max(paired):.3f})")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"base": commit, "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
