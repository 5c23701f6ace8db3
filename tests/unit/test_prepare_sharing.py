"""Decoding a batch in slices: the same prepared batch, and the event loop turns meanwhile."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from bestand.ingest.producer import topic_for
from bestand.ops.metrics import WorkerMetrics
from bestand.settings import Settings
from bestand.simulate import simulate
from bestand.store import connect
from bestand.stream import processor as processor_module
from bestand.stream.messages import Incoming, Outgoing
from bestand.stream.prepare import Prepared
from bestand.stream.processor import PreparedBatch
from bestand.stream.worker import processor_for


def _messages(settings: Settings) -> list[Incoming]:
    events = list(simulate(persons=40, seed=3).events)
    messages = [
        Incoming(topic_for(event, settings), 0, offset, None, orjson.dumps(event))
        for offset, event in enumerate(events)
    ]
    # Bad input in the middle: a dead letter keeps its place among the prepared events.
    messages.insert(5, Incoming(settings.topic_orders, 0, 10_000, None, b"{not json"))
    return messages


def _view(batch: PreparedBatch) -> list[Any]:
    out: list[Any] = []
    for step in batch.steps:
        if isinstance(step, Outgoing):
            letter = orjson.loads(step.value)
            letter.pop("failed_at")  # the moment it was made
            out.append(("dead letter", step.destination, letter))
        else:
            assert isinstance(step, Prepared)
            resolution = step.resolution
            out.append(
                (
                    step.message.offset,
                    step.event,
                    step.erasure,
                    resolution.tokens,
                    resolution.pattern_junk,
                    resolution.at,
                    resolution.candidate(),
                )
            )
    return out


def test_sliced_decoding_prepares_the_batch_as_at_once() -> None:
    settings = Settings()
    processor = processor_for(settings, connect("redis://127.0.0.1:1/0"), WorkerMetrics())
    messages = _messages(settings)
    assert len(messages) > 3 * processor_module.SLICE

    at_once = processor.prepare(messages)
    sliced = asyncio.run(processor.prepare_sharing(messages))

    assert _view(sliced) == _view(at_once)
    assert sliced.tally.events == at_once.tally.events
    assert sliced.tally.dead_letters == at_once.tally.dead_letters
    assert sum(isinstance(step, Outgoing) for step in sliced.steps) >= 1


def test_the_event_loop_turns_between_slices() -> None:
    settings = Settings()
    processor = processor_for(settings, connect("redis://127.0.0.1:1/0"), WorkerMetrics())
    messages = _messages(settings)
    slices = -(-len(messages) // processor_module.SLICE)

    async def turns_during(decode: Any) -> int:
        turns = 0
        done = asyncio.Event()

        async def count() -> None:
            nonlocal turns
            while not done.is_set():
                turns += 1
                await asyncio.sleep(0)

        counter = asyncio.create_task(count())
        await asyncio.sleep(0)  # the counter runs once before decoding starts
        before = turns
        await decode()
        done.set()
        await counter
        return turns - before

    async def at_once() -> None:
        processor.prepare(messages)

    async def sliced() -> None:
        await processor.prepare_sharing(messages)

    assert asyncio.run(turns_during(at_once)) <= 1
    assert asyncio.run(turns_during(sliced)) >= slices - 1
