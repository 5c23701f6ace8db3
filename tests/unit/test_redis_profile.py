"""The Redis profile's summary: perf's samples by part of Redis, children apart."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import redis_profile
from redis_profile import CHILD, LUA_VM, Symbols, markdown, summarize

# Exported functions of a made-up binary: the Lua interpreter's static code lies between them.
SYMBOLS = Symbols(
    addresses=[0x1000, 0x2000, 0x3000, 0x4000],
    names=["dictFind", "lua_newstate", "lua_yield", "zslInsert"],
)

REPORT = """\
# Samples: 1K of event 'cpu-clock'
#
    20.00%    100:redis-server     redis-server       [.] 0x0000000000002800
    10.00%    100:redis-server     redis-server       [.] dictFind
     5.00%    100:redis-server     redis-server       [.] 0x0000000000001080
    15.00%    100:redis-server     libjemalloc.so.2   [.] malloc_usable_size
    10.00%    100:redis-server     redis-server       [.] lua_tolstring
     5.00%    100:redis-server     [kernel.kallsyms]  [k] tcp_sendmsg
    10.00%    100:redis-server     redis-server       [.] zslInsert
     5.00%    100:redis-server     redis-server       [.] serverCron
    20.00%    222:redis-server     redis-server       [.] lzf_compress
"""


def test_samples_are_summed_by_part_and_children_kept_apart() -> None:
    summary = summarize(REPORT, main_pid=100, symbols=SYMBOLS)
    assert summary["children"] == pytest.approx(0.20)
    main = summary["main"]
    # Shares of the main thread's 80 %: unnamed code after a lua_* export is the interpreter,
    # after a dict* export it is finding keys.
    assert main[LUA_VM] == pytest.approx(20 / 80)
    assert main[redis_profile._PARTS[1][0]] == pytest.approx(15 / 80)  # dictFind + its static
    assert main["the allocator (jemalloc)"] == pytest.approx(15 / 80)
    assert main["the scripts' Lua: its C API"] == pytest.approx(10 / 80)
    assert main["kernel (sockets, files)"] == pytest.approx(5 / 80)
    assert main["sorted sets"] == pytest.approx(10 / 80)
    assert main["the rest of Redis"] == pytest.approx(5 / 80)
    assert sum(main.values()) == pytest.approx(1.0)
    assert list(main) == sorted(main, key=main.__getitem__, reverse=True)


def test_code_before_the_first_symbol_is_not_guessed() -> None:
    report = "    100.00%    7:redis-server     redis-server       [.] 0x0000000000000010\n"
    summary = summarize(report, main_pid=7, symbols=SYMBOLS)
    assert summary["main"] == {"other code without a symbol": pytest.approx(1.0)}


def test_an_empty_report_gives_an_empty_summary_and_table() -> None:
    summary = summarize("# no samples\n", main_pid=1, symbols=SYMBOLS)
    assert summary == {"children": 0.0, "main": {}}
    assert "| Redis main thread | share of CPU |" in markdown(summary, "redis-server 1")


def test_the_table_names_the_children_share() -> None:
    table = markdown(summarize(REPORT, 100, SYMBOLS), "redis-server 100")
    assert table.startswith(f"redis-server 100: 20% of the Redis process's CPU in {CHILD}")
    assert f"| {LUA_VM} | 25.0% |" in table
