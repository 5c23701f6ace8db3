"""Erasure through the running worker: every trace of the person goes, a tombstone stays, a
replay of the old events does not bring the person back, and ``erased`` is published."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import redis
from aiokafka import AIOKafkaConsumer
from redis.cluster import RedisCluster
from support import (
    Deployment,
    Process,
    bestand_cli,
    consume_all,
    lookup,
    produce,
    run,
    wait_for,
)

from bestand.kafka.explain_topic import read_history

pytestmark = pytest.mark.integration

EMAIL, PHONE, COOKIE = "erase.me@example.com", "+4915223847561", "ck-erase-me"


def _events() -> list[tuple[str, dict[str, Any]]]:
    base = {"customer": {"guest": True, "email": EMAIL, "phone": PHONE}, "currency": "EUR",
            "channel": "web", "anonymous_id": COOKIE}  # fmt: skip
    return [
        ("clickstream", {"type": "page_view", "event_id": "er-1", "anonymous_id": COOKIE,
                         "event_time": "2026-10-01T10:00:00Z"}),
        ("orders", {"type": "order_placed", "event_id": "er-2", "order_id": "er-o1",
                    "total": "50.00", "event_time": "2026-10-02T10:00:00Z", **base}),
        ("orders", {"type": "order_placed", "event_id": "er-3", "order_id": "er-o2",
                    "total": "70.00", "event_time": "2026-10-09T10:00:00Z", **base}),
    ]  # fmt: skip


def _send(deployment: Deployment, events: list[tuple[str, dict[str, Any]]]) -> None:
    for kind, event in events:
        run(produce(deployment.settings.kafka_bootstrap, deployment.topic(kind),
                    [orjson.dumps(event)], key=b"erase"))  # fmt: skip


def _answer(deployment: Deployment, name: str, value: str) -> dict[str, Any]:
    return lookup(deployment, **{name: value})


def _keys(deployment: Deployment) -> list[str]:
    """Every key of the deployment (on a cluster: of every master)."""
    url = deployment.settings.redis_url
    client = (
        RedisCluster.from_url(url)
        if deployment.settings.redis_cluster
        else redis.Redis.from_url(url)
    )
    try:
        pattern = f"{deployment.settings.redis_prefix}:*"
        return sorted(k.decode() for k in client.scan_iter(match=pattern, count=1000))
    finally:
        client.close()


async def _explain_topic(deployment: Deployment) -> dict[bytes, bytes | None]:
    """The last value of every key of the explain topic (what compaction keeps)."""
    consumer = AIOKafkaConsumer(
        deployment.settings.topic_explain,
        bootstrap_servers=deployment.settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    latest: dict[bytes, bytes | None] = {}
    try:
        while batch := await consumer.getmany(timeout_ms=2000):
            for records in batch.values():
                latest.update((r.key, r.value) for r in records if r.key is not None)
    finally:
        await consumer.stop()
    return latest


def test_erasure_leaves_only_tombstones_and_a_replay_does_not_undo_it(
    deployment: Deployment, worker: Process
) -> None:
    _send(deployment, _events())
    known = wait_for(lambda: (a := _answer(deployment, "email", EMAIL))["orders_count"] == 2 and a,
                     timeout=60, what="the person with two orders")  # fmt: skip
    person = known["person_id"]
    before = run(read_history(deployment.settings, [person]))
    assert [e.split("\x1f")[:3:2] for e in before.entries[person]] == [["n", "er-1"], ["l", "er-2"]]
    erasure = {"type": "erasure_requested", "event_id": "er-x",
               "event_time": "2026-10-20T10:00:00Z", "identifiers": {"phone": PHONE}}  # fmt: skip
    _send(deployment, [("customer", erasure)])
    wait_for(lambda: not _answer(deployment, "email", EMAIL)["known"], timeout=60,
             what="the erasure")  # fmt: skip
    for name, value in (("phone", PHONE), ("anonymous_id", COOKIE), ("order_id", "er-o1")):
        assert not _answer(deployment, name, value)["known"], name

    left = _keys(deployment)
    assert not [k for k in left if person in k and ":d:" not in k], left
    tombstones = [k for k in left if ":{g}:t:" in k]
    assert len(tombstones) >= 4  # e-mail, phone, cookie, both order ids
    others = [k for k in left if ":{g}:t:" not in k and ":d:" not in k and ":hb:" not in k]
    prefix = deployment.settings.redis_prefix
    # The store's layout mark (the worker's, no person's) and, maybe, the empty value set.
    allowed = ([f"{prefix}:layout"], [f"{prefix}:layout", f"{prefix}:values"])
    assert sorted(others) in allowed, others

    # The explain topic: hidden from readers at once, tombstones once explain-prune ran.
    assert run(read_history(deployment.settings, [person])).entries == {}
    pruned = bestand_cli(deployment, "explain-prune")
    assert pruned.returncode == 0, pruned.stderr
    assert "1 erased persons" in pruned.stdout, pruned.stdout
    latest = run(_explain_topic(deployment))
    assert latest[person.encode()] is None  # the marker
    assert [k for k, v in latest.items() if k.startswith(person.encode()) and v is not None] == []
    assert any(k.startswith(f"{person}/".encode()) for k in latest)  # a tombstone of an entry

    # The old events again (a replay, a producer retrying): the person stays erased.
    _send(deployment, _events())
    marker = {"type": "page_view", "event_id": "er-after", "anonymous_id": "ck-someone-else",
              "event_time": "2026-10-21T10:00:00Z"}  # fmt: skip
    _send(deployment, [("clickstream", marker)])
    wait_for(lambda: _answer(deployment, "anonymous_id", "ck-someone-else")["known"], timeout=60,
             what="the events after the replay")  # fmt: skip
    for name, value in (("email", EMAIL), ("phone", PHONE), ("order_id", "er-o2")):
        assert not _answer(deployment, name, value)["known"], name

    # A new order after the erasure is a new relationship: a new person, with one order.
    fresh = {**_events()[1][1], "event_id": "er-new", "order_id": "er-o3",
             "event_time": "2026-10-25T10:00:00Z"}  # fmt: skip
    _send(deployment, [("orders", fresh)])
    again = wait_for(lambda: (a := _answer(deployment, "email", EMAIL))["known"] and a,
                     timeout=60, what="the order after the erasure")  # fmt: skip
    assert again["orders_count"] == 1
    assert again["person_id"] != person

    changes = run(consume_all(deployment.settings.kafka_bootstrap,
                              deployment.settings.topic_profile_changes, expect=1))  # fmt: skip
    assert any(c["change"] == "erased" and c["person_id"] == person for c in changes)
    worker.assert_running()
