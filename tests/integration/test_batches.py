"""Batches change how often Redis is asked, never the answer.

The same shuffled stream, with a tenth of it delivered twice, goes through the worker's
processor once event by event and once in batches; the identity graph, person states and
lookup records must come out identical (version counters aside, which only guard concurrent
writers).
"""

from __future__ import annotations

import random
from typing import Any

from support import run

from bestand.settings import Settings
from bestand.simulate import simulate
from stages import clear, raw_messages, redis_state, worker_pass


def _stream() -> list[dict[str, Any]]:
    events = list(simulate(persons=120, seed=21).events)
    rng = random.Random(8)
    stream = events + rng.sample(events, k=len(events) // 10)
    rng.shuffle(stream)
    return stream


def test_batches_leave_the_same_state_as_single_events(redis_url: str) -> None:
    stream = _stream()
    single = Settings(_env_file=None, redis_url=redis_url, redis_prefix="batch-one")
    batched = Settings(_env_file=None, redis_url=redis_url, redis_prefix="batch-many")
    for settings in (single, batched):
        run(clear(settings))
    try:
        run(worker_pass(single, raw_messages(single, stream), batch=1))
        run(worker_pass(batched, raw_messages(batched, stream), batch=97))
        one, many = run(redis_state(single)), run(redis_state(batched))
        assert len(one) > 1000
        assert one.keys() == many.keys()
        different = [key for key in one if one[key] != many[key]]
        assert different == []
    finally:
        for settings in (single, batched):
            run(clear(settings))
