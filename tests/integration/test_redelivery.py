"""A batch delivered again after a crash leaves the state a clean run leaves.

A worker can die anywhere in a batch before it committed it: after the identity graph
changed but before the persons were written, or after everything was written but before the
outputs reached Kafka. Kafka then delivers the same messages again, and the second try must
finish what the first one started and send what the first one would have sent.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from support import run

from bestand.settings import Settings
from bestand.simulate import simulate
from bestand.store.identity_graph import DECIDED
from bestand.stream.messages import Outgoing
from stages import clear, graph_only, raw_messages, redis_state, worker_pass

EVENTS: list[dict[str, Any]] = list(simulate(persons=150, seed=31).events)


def _settings(redis_url: str, prefix: str) -> Settings:
    return Settings(_env_file=None, redis_url=redis_url, redis_prefix=prefix)


def _differences(clean: dict[str, Any], other: dict[str, Any]) -> list[str]:
    keys = sorted(set(clean) | set(other))
    return [f"{key}: {str(other.get(key))[:300]} != {str(clean.get(key))[:300]}" for key in keys
            if clean.get(key) != other.get(key)]  # fmt: skip


@pytest.fixture
def clean(redis_url: str) -> Any:
    settings = _settings(redis_url, "redeliver-clean")
    run(clear(settings))
    run(worker_pass(settings, raw_messages(settings, EVENTS), 64))
    yield run(redis_state(settings))
    run(clear(settings))


@pytest.mark.parametrize("batch", [1, 64])
def test_lookup_records_lost_before_they_were_written_come_back(
    clean: dict[str, Any], redis_url: str, batch: int
) -> None:
    settings = _settings(redis_url, f"redeliver-profile-{batch}")
    run(clear(settings))
    try:
        messages = raw_messages(settings, EVENTS)
        sent = _changes(run(worker_pass(settings, messages, 64)))
        assert len(sent) > 100
        # The lookup records are gone (lost, or deleted by hand): a redelivery of the events
        # writes them again.
        assert run(clear(settings, "l:*")) > 400
        again = run(worker_pass(settings, messages, batch))  # Kafka delivers them again
        # Nothing was applied twice (the dedupe markers are the clean run's); only the
        # explain log and claims may gain entries, as the events are decided again.
        assert (
            _differences(_beyond_explain(clean), _beyond_explain(run(redis_state(settings)))) == []
        )
        assert _changes(again) == sent  # the changes go out again, the same ones
    finally:
        run(clear(settings))


def _changes(out: list[Outgoing]) -> list[tuple[Any, ...]]:
    """The profile changes among a stage's output, without the time they were sent and the
    person id (sent again, a change names the survivor of merges since)."""
    records = [orjson.loads(o.value) for o in out if o.destination == "changes"]
    assert len(records) == len(out), "a redelivery sends nothing but profile changes"
    return sorted(
        (r["event_id"], r["change"], r["existing_customer"], r["orders_count"],
         r["stage_before"], r["stage_after"], tuple(r["absorbed"]))
        for r in records
    )  # fmt: skip


def _beyond_explain(state: dict[str, Any]) -> dict[str, Any]:
    """Everything but the explain log and claims of identifiers."""
    return {k: v for k, v in state.items() if not k.startswith((":{g}:x:", ":{g}:y:", ":{g}:m:"))}


def _answers(state: dict[str, Any]) -> dict[str, Any]:
    """What lookups and reports rest on: persons, lookup records, values, who owns what.

    Left out: dedupe markers (a redelivered event may be marked at the survivor of a merge
    rather than at the person it first went to), receipts, and the explain log and claims,
    which may gain entries when an event is decided a second time.
    """
    skip = (":d:", ":{g}:e:", ":{g}:x:", ":{g}:y:", ":{g}:m:")
    return {key: value for key, value in state.items() if not key.startswith(skip)}


@pytest.mark.parametrize("batch", [1, 64])
def test_a_batch_that_died_after_the_graph_changed_is_finished_by_its_redelivery(
    clean: dict[str, Any], redis_url: str, batch: int
) -> None:
    settings = _settings(redis_url, f"redeliver-graph-{batch}")
    run(clear(settings))
    try:
        messages = raw_messages(settings, EVENTS)
        sent: list[Outgoing] = []
        merges = moves = 0
        for start in range(0, len(messages), batch):
            chunk = messages[start : start + batch]
            # Every first try changes the graph and dies before any person is written.
            lost = run(graph_only(settings, chunk))
            merges += sum(1 for answer in lost if answer[0] == DECIDED and answer[2])
            moves += sum(len(answer[7]) for answer in lost if answer[0] == DECIDED)
            sent += run(worker_pass(settings, chunk, batch))
        assert merges > 0, "the shop has no merge to lose"
        # Cookies that moved between family members: the clicks between two moves of one
        # cookie go to whom it answered for then, as in the clean run.
        assert moves > 0, "the shop has no cookie move to replay"
        # The merges the first tries made are made again: from their receipts.
        assert sum(1 for change in _changes(sent) if change[1] == "merged") == merges
        after = _answers(run(redis_state(settings)))
        assert len(after) > 1000
        assert _differences(_answers(clean), after) == []
    finally:
        run(clear(settings))


def test_a_batch_handled_twice_counts_once_and_sends_its_changes_again(
    clean: dict[str, Any], redis_url: str
) -> None:
    settings = _settings(redis_url, "redeliver-twice")
    run(clear(settings))
    try:
        messages = raw_messages(settings, EVENTS)
        first: list[Outgoing] = []
        second: list[Outgoing] = []
        for start in range(0, len(messages), 64):
            chunk = messages[start : start + 64]
            first += run(worker_pass(settings, chunk, 64))
            # Written, then killed before Kafka acknowledged the outputs: handled again.
            second += run(worker_pass(settings, chunk, 64))
        assert len(_changes(first)) > 100
        assert _changes(second) == _changes(first)
        assert _differences(_answers(clean), _answers(run(redis_state(settings)))) == []
    finally:
        run(clear(settings))
