"""Where a running process spends its CPU: py-spy samples, summed up by library and function.

    python bench/cpu_profile.py --pid 1234 --seconds 20          # record and print
    python bench/cpu_profile.py --raw worker.txt                 # print a recorded profile

Used by ``bench/ingest.py --profile`` on the worker processes, so a missed goal comes with
the profile that explains it. py-spy samples the process from outside (no instrumentation,
no slowdown to speak of); idle time is left out, so shares are shares of CPU time.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Where a frame's file lies -> the part of the system it belongs to (first match wins).
AREAS: tuple[tuple[str, str], ...] = (
    ("/bestand/identity/", "bestand: identity rules and keying"),
    ("/bestand/store/", "bestand: Redis adapters"),
    ("/bestand/profile/", "bestand: person state and summaries"),
    ("/bestand/stream/", "bestand: worker loop and batch processor"),
    ("/bestand/events/", "bestand: event models"),
    ("/bestand/api/", "bestand: HTTP API"),
    ("/bestand/", "bestand: other"),
    ("/redis/", "redis-py"),
    ("/hiredis", "redis-py"),
    ("/aiokafka/", "aiokafka"),
    ("/kafka/", "aiokafka"),
    ("/faust/", "faust"),
    ("/mode/", "faust"),
    ("/pydantic", "pydantic"),
    ("/uvicorn/", "uvicorn and httptools"),
    ("/httptools/", "uvicorn and httptools"),
    ("/orjson", "orjson"),
    ("/phonenumbers/", "phonenumbers"),
    ("/asyncio/", "asyncio event loop"),
    ("/uvloop/", "asyncio event loop"),
    ("/selectors.py", "asyncio event loop"),
    ("/logging/", "logging"),
)


def _path(frame: str) -> str:
    """The file of a py-spy frame, with a leading slash: py-spy writes ``func (path:line)``
    with the path short (``bestand/api/app.py``) or long (``/usr/lib/...``)."""
    where = frame.rpartition(" (")[2].rsplit(":", 1)[0]
    return where if where.startswith("/") else "/" + where


#: Frames that only enter the event loop: as a leaf, the time is in uvloop's C code (epoll,
#: socket reads and writes, callbacks), which py-spy does not see into.
LOOP_ENTRIES = ("_start_thread", "run_until_complete", "run_forever")


def area_of(frame: str) -> str:
    """The part of the system a py-spy frame (``func (path:line)``) belongs to."""
    if "(<" in frame or " (" not in frame:
        return "interpreter and C extensions"
    path = _path(frame)
    function = frame.partition(" (")[0]
    if function in LOOP_ENTRIES or (
        function == "run" and path.endswith(("asyncio/runners.py", "uvloop/__init__.py"))
    ):
        return "event loop in C (uvloop: epoll, sockets, callbacks)"
    for marker, area in AREAS:
        if marker in path:
            return area
    if "/lib/python3" in path:
        return "Python standard library"
    if path.count("/") == 1:  # py-spy wrote the bare file name
        stem = path.strip("/").removesuffix(".py")
        if stem in sys.stdlib_module_names:
            return "Python standard library"
        if stem in {"loop", "processor", "prepare", "policy", "worker", "cli"}:
            return "bestand: worker loop and batch processor"
    return "other"


def _function(frame: str) -> str:
    """``func (path:line)`` without the line, the path shortened to the package."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for root in ("site-packages/", "/src/", "/lib/python3.11/"):
        if root in path:
            path = path.split(root, 1)[1]
            break
    return f"{name} ({path})"


def summarize(raw: str, top: int = 12) -> dict[str, Any]:
    """Self time per area and inclusive time per bestand function, as shares of all samples."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        self_time[area_of(frames[-1])] += count
        for function in {_function(f) for f in frames if "/bestand/" in _path(f)}:
            inclusive[function] += count
    if not total:
        return {"samples": 0, "self_by_area": [], "inclusive_bestand": []}
    return {
        "samples": total,
        "self_by_area": [{"area": area, "share": n / total} for area, n in self_time.most_common()],
        "inclusive_bestand": [
            {"function": f, "share": n / total} for f, n in inclusive.most_common(top)
        ],
    }


def markdown(summary: dict[str, Any], title: str) -> str:
    """The summary as two Markdown tables."""
    lines = [f"{title}: {summary['samples']:,} samples of CPU time (py-spy).", ""]
    lines += ["| where the CPU time is spent (self) | share |", "|---|--:|"]
    lines += [f"| {row['area']} | {row['share']:.1%} |" for row in summary["self_by_area"]]
    lines += ["", "| bestand function (inclusive) | share |", "|---|--:|"]
    lines += [
        f"| `{row['function']}` | {row['share']:.1%} |" for row in summary["inclusive_bestand"]
    ]
    return "\n".join(lines)


def py_spy() -> str:
    """The py-spy executable next to this interpreter, or on the PATH."""
    here = Path(sys.executable).parent / "py-spy"
    found = str(here) if here.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy is not installed: pip install -c constraints.txt -e '.[dev]'")
    return found


def record(
    pid: int, seconds: float, out: Path, rate: int = 97, subprocesses: bool = False
) -> subprocess.Popen[bytes]:
    """Start sampling ``pid`` (and its children with ``subprocesses``) for ``seconds`` into
    ``out`` (collapsed stacks); returns at once."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            py_spy(),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--pid", type=int)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--raw", type=Path, help="a recorded profile (collapsed stacks)")
    args = parser.parse_args(argv)
    if args.raw is None:
        if args.pid is None:
            parser.error("give --pid to record or --raw to read")
        args.raw = Path(f"profile-{args.pid}.txt")
        record(args.pid, args.seconds, args.raw).wait()
    print(markdown(summarize(args.raw.read_text()), str(args.raw)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
