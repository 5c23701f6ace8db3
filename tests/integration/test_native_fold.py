"""The compiled fold writes what the Python fold writes, byte for byte.

The same stream (a simulated shop, a tenth of it delivered twice, shuffled so that orders
arrive before the visits that led to them and merges join persons late) goes through the
worker's processor once with the Python fold and once with the compiled one. Every key of
each prefix must hold the same bytes (person states, their versions, lookup records, dedupe
markers, lifetime values), and the profile changes sent must be the same messages.
"""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from support import run

from bestand.settings import Settings
from bestand.simulate import simulate
from stages import clear, raw_messages, redis_state, worker_pass

pytest.importorskip("bestand_native", reason="the compiled fold is built by make install")


def _changes(out: list[Any]) -> list[tuple[str, bytes | None, dict[str, Any]]]:
    """The messages sent, the time they were made aside."""
    messages = []
    for message in out:
        body = orjson.loads(message.value)
        body.pop("changed_at", None)
        messages.append((message.destination, message.key, body))
    return messages


def _stream(persons: int, seed: int) -> list[dict[str, Any]]:
    events = list(simulate(persons=persons, seed=seed).events)
    rng = random.Random(seed)
    stream = events + rng.sample(events, k=len(events) // 10)
    # Shuffled in blocks: late orders, late merges, redeliveries within and across batches.
    blocks = [stream[i : i + 40] for i in range(0, len(stream), 40)]
    rng.shuffle(blocks)
    return [event for block in blocks for event in block]


@pytest.mark.parametrize(("persons", "seed", "batch"), [(150, 5, 97), (60, 9, 1), (300, 13, 500)])
def test_the_compiled_fold_writes_what_the_python_fold_writes(
    redis_url: str, persons: int, seed: int, batch: int
) -> None:
    stream = _stream(persons, seed)
    common: dict[str, Any] = {"_env_file": None, "redis_url": redis_url, "resolve": "python"}
    python = Settings(**common, redis_prefix="fold-py", fold="python")
    native = Settings(**common, redis_prefix="fold-rs", fold="native")
    for settings in (python, native):
        run(clear(settings))
    try:
        sent_py = run(worker_pass(python, raw_messages(python, stream), batch=batch))
        sent_rs = run(worker_pass(native, raw_messages(native, stream), batch=batch))
        by_python = run(redis_state(python, exact=True))
        by_native = run(redis_state(native, exact=True))
        assert len(by_python) > 500
        assert sum(1 for name in by_python if name.startswith(":p:")) > persons // 2
        assert by_python.keys() == by_native.keys()
        different = [name for name in by_python if by_python[name] != by_native[name]]
        assert different == []
        assert _changes(sent_py) == _changes(sent_rs)
        assert any(m[0] == "changes" for m in _changes(sent_py))
    finally:
        for settings in (python, native):
            run(clear(settings))
