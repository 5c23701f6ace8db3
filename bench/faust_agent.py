"""A faust-streaming agent that does nothing: how fast faust alone consumes the input topics.

    python bench/faust_agent.py BOOTSTRAP COUNT TOPIC [TOPIC ...]

Reads COUNT events from the start of the topics in a fresh group with ``stream.take(1000,
within=0.05)`` and prints one JSON line: events, seconds, per_second. ``bench/ingest.py`` runs
it beside the worker; bestand itself does not use faust (see the README's Performance).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from typing import Any

import faust
import orjson

bootstrap, total, topics = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
app = faust.App(
    "bench-faust-" + uuid.uuid4().hex[:8],
    broker="kafka://" + bootstrap,
    store="memory://",
    value_serializer="raw",
    key_serializer="raw",
    consumer_auto_offset_reset="earliest",
    web_enabled=False,
    datadir=tempfile.mkdtemp(),
    autodiscover=False,
)
state = {"n": 0, "t0": 0.0}


def done() -> None:
    seconds = time.perf_counter() - state["t0"]
    line = orjson.dumps(
        {"events": state["n"], "seconds": seconds, "per_second": state["n"] / seconds}
    )
    out = sys.__stdout__  # faust sends sys.stdout through its logging
    assert out is not None
    out.write(line.decode() + "\n")
    out.flush()
    os._exit(0)


@app.agent(app.topic(*topics))
async def count(stream: Any) -> None:
    async for batch in stream.take(1000, within=0.05):
        state["t0"] = state["t0"] or time.perf_counter()
        state["n"] += len(batch)
        if state["n"] >= total:
            done()


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "-l", "warn"]
    app.main()
