"""The compiled fold writes what the Python fold writes, byte for byte.

The same stream (a simulated shop, a tenth of it delivered twice, shuffled so that orders
arrive before the visits that led to them and merges join persons late) goes through the
worker's processor once with the Python fold and once with the compiled one. Every key of
each prefix must hold the same bytes (person states, their versions, lookup records, dedupe
markers, lifetime values), and the profile changes sent must be the same messages.
"""

from __future__ import annotations

from typing import Any

import pytest
from support import run

from bestand.settings import Settings
from stages import sent, shuffled_shop, two_passes

pytest.importorskip("bestand_native", reason="the compiled fold is built by make install")


# The last case puts the whole shop in one batch: its person read goes in several calls.
@pytest.mark.parametrize(
    ("persons", "seed", "batch"), [(150, 5, 97), (60, 9, 1), (300, 13, 500), (1300, 17, 20000)]
)
def test_the_compiled_fold_writes_what_the_python_fold_writes(
    redis_url: str, persons: int, seed: int, batch: int
) -> None:
    stream = shuffled_shop(persons, seed)
    common: dict[str, Any] = {"_env_file": None, "redis_url": redis_url, "resolve": "python"}
    python = Settings(**common, redis_prefix="fold-py", fold="python")
    native = Settings(**common, redis_prefix="fold-rs", fold="native")
    by_python, by_native, sent_py, sent_rs = run(two_passes(python, native, stream, batch))
    assert len(by_python) > 500
    assert sum(1 for name in by_python if name.startswith(":p:")) > persons // 2
    assert by_python.keys() == by_native.keys()
    different = [name for name in by_python if by_python[name] != by_native[name]]
    assert different == []
    assert sent(sent_py) == sent(sent_rs)
    assert any(m[0] == "changes" for m in sent(sent_py))
