"""Where Redis spends its CPU: ``perf`` samples of the redis-server process, by part of Redis.

py-spy shows the worker's side; Redis's side of an event (its Lua scripts, finding keys, its
allocator) needs a native profiler. This records the server with Linux ``perf`` for some
seconds and sums the samples up by what they are for: the scripts' Lua, dictionary look-ups,
the allocator, and forked children (an append-only-file rewrite or a snapshot) apart from the
main thread. Debian's ``redis-server`` exports no symbols for its Lua interpreter; a sample
in code between two exported ``lua_*`` functions is counted as Lua.

    python bench/redis_profile.py --seconds 30              # the local Redis, while it works
    python bench/redis_profile.py --report perf.data --pid 1234

Needs ``perf`` (Debian: ``apt-get install linux-perf``) and ``nm`` (binutils), and Redis on
this machine. ``bench/ingest.py --redis-profile S`` records while the worker ingests.
"""

from __future__ import annotations

import argparse
import bisect
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

#: A row of ``perf report --sort pid,dso,sym``: share, pid:command, object, [.] or [k], symbol.
_ROW = re.compile(r"^\s*([\d.]+)%\s+(\d+):\S+\s+(\S+)\s+\[(.)\]\s+(\S+)")

#: Symbol prefixes of each part of Redis's main thread, first match wins.
_PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("the scripts' Lua: its C API", ("lua", "luaL_", "freeLuaRedisArgv", "scriptCall")),
    (
        "finding keys (dictionaries: look-up, key comparison, hashing, rehashing)",
        ("dict", "siphash", "lookupKey"),
    ),
    ("sorted sets", ("zsl", "zset")),
    ("walking the keyspace (SCAN)", ("scan",)),
    ("the append-only file (feeding it)", ("catAppendOnly", "feedAppendOnly", "propagate")),
    (
        "Redis objects, hashes, sets, strings, lists",
        (
            "lp",
            "listpack",
            "ziplist",
            "hash",
            "set",
            "sds",
            "create",
            "decrRefCount",
            "incrRefCount",
            "getDecoded",
            "string",
            "quicklist",
            "list",
            "intset",
            "obj",
        ),
    ),
)
LUA_VM = "the scripts' Lua: the interpreter"
CHILD = "its other threads and forked children (an append-only-file rewrite, a snapshot)"


@dataclass(frozen=True)
class Symbols:
    """The exported functions of a binary by address, to name samples perf could not."""

    addresses: list[int]
    names: list[str]

    @classmethod
    def of(cls, binary: str) -> Symbols:
        """The dynamic symbols of ``binary`` (``nm -D``); empty when ``nm`` is missing."""
        if shutil.which("nm") is None:
            return cls([], [])
        out = subprocess.run(
            ["nm", "-D", "--defined-only", binary], capture_output=True, text=True, check=False
        ).stdout
        pairs = sorted(
            (int(parts[0], 16), parts[2])
            for parts in (line.split() for line in out.splitlines())
            if len(parts) == 3
        )
        return cls([a for a, _ in pairs], [n for _, n in pairs])

    def before(self, address: int) -> str | None:
        """The exported function at or before ``address``."""
        at = bisect.bisect_right(self.addresses, address) - 1
        return self.names[at] if at >= 0 else None


def part_of(dso: str, space: str, symbol: str, symbols: Symbols) -> str:
    """What one sample of Redis's main thread was doing."""
    if space == "k" or dso.startswith("[kernel"):
        return "kernel (sockets, files)"
    if "jemalloc" in dso:
        return "the allocator (jemalloc)"
    if dso.startswith("libc"):
        return "the C library (memcpy, malloc glue)"
    if symbol.startswith("0x"):
        # Code without a symbol of its own (static functions): it belongs with the exported
        # function before it in the same source file, as far as the linker kept files together.
        name = symbols.before(int(symbol, 16)) or ""
        if name.startswith("lua"):
            return LUA_VM
        return _named_part(name) or "other code without a symbol"
    return _named_part(symbol) or "the rest of Redis"


def _named_part(symbol: str) -> str | None:
    for part, prefixes in _PARTS:
        if symbol.startswith(prefixes):
            return part
    return None


def summarize(report: str, main_pid: int, symbols: Symbols) -> dict[str, Any]:
    """Shares of Redis's CPU by part, from ``perf report --sort pid,dso,sym`` output."""
    main: Counter[str] = Counter()
    children = 0.0
    for line in report.splitlines():
        row = _ROW.match(line)
        if row is None:
            continue
        share, pid, dso, space, symbol = row.groups()
        if int(pid) != main_pid:
            # Threads of the main process (background I/O) have their own pids too; a forked
            # child shows the server's name: both are not the main thread's work.
            children += float(share)
            continue
        main[part_of(dso, space, symbol, symbols)] += float(share)
    total = sum(main.values()) + children
    if total == 0:
        return {"children": 0.0, "main": {}}
    return {
        "children": children / total,
        "main": {part: share / sum(main.values()) for part, share in main.most_common()},
    }


def markdown(summary: dict[str, Any], title: str) -> str:
    """The summary as a table."""
    lines = [
        f"{title}: {summary['children']:.0%} of the Redis process's CPU in {CHILD}, the rest "
        "in its main thread:",
        "",
        "| Redis main thread | share of CPU |",
        "|---|--:|",
    ]
    lines += [f"| {part} | {share:.1%} |" for part, share in summary["main"].items()]
    return "\n".join(lines)


def perf() -> str:
    """The perf executable, or a clear exit."""
    found = shutil.which("perf")
    if not found:
        raise SystemExit("perf is not installed (Debian: apt-get install linux-perf)")
    return found


def record(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """Start sampling ``pid`` for ``seconds`` into ``out`` (perf.data); returns at once."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            perf(),
            "record",
            "-F",
            "999",
            "-p",
            str(pid),
            "-o",
            str(out),
            "--",
            "sleep",
            str(max(1, round(seconds))),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def report(data: Path) -> str:
    """``perf report`` of a recording, by thread, object and symbol."""
    return subprocess.run(
        [
            perf(),
            "report",
            "-i",
            str(data),
            "--no-children",
            "--sort",
            "pid,dso,sym",
            "--stdio",
            "-g",
            "none",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def server(url: str) -> tuple[int, str]:
    """The process id and binary of the Redis at ``url`` (it must run on this machine)."""
    client = redis.Redis.from_url(url)
    try:
        pid = int(client.info("server")["process_id"])
    finally:
        client.close()
    return pid, str(Path(f"/proc/{pid}/exe").resolve())


def profile(pid: int, binary: str, data: Path) -> dict[str, Any]:
    """Summarize a finished recording of the server ``pid``."""
    return summarize(report(data), pid, Symbols.of(binary))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--report", type=Path, help="a finished recording (perf.data)")
    parser.add_argument("--pid", type=int, help="the server's pid, with --report")
    args = parser.parse_args(argv)
    if args.report is not None:
        if args.pid is None:
            parser.error("--report needs the --pid of the server it recorded")
        pid, binary, data = args.pid, str(Path(f"/proc/{args.pid}/exe").resolve()), args.report
    else:
        pid, binary = server(args.url)
        data = Path(f"redis-perf-{pid}.data")
        print(f"recording redis-server {pid} for {args.seconds:.0f} s …", flush=True)
        record(pid, args.seconds, data).wait()
    print(markdown(profile(pid, binary, data), f"redis-server {pid}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
