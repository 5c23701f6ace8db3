"""Hostile and broken input: each kind goes to the dead-letter topic with its reason and is
counted, and the stream goes on at once with the next good event."""

from __future__ import annotations

import time
import urllib.request
from collections import Counter
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import Deployment, Process, consume_all, lookup, produce, record_at, run, wait_for

pytestmark = pytest.mark.integration


def _order(event_id: str, **changes: Any) -> dict[str, Any]:
    event = {
        "type": "order_placed", "event_id": event_id, "event_time": "2026-11-20T10:00:00Z",
        "order_id": f"o-{event_id}", "total": "30.00", "currency": "EUR", "channel": "web",
        "customer": {"guest": True, "email": f"{event_id}@example.com"},
    }  # fmt: skip
    event.update(changes)
    return event


def _without(event: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != field}


HOSTILE: list[tuple[str, bytes, str]] = [
    ("not JSON", b"this is not json", "invalid_json"),
    ("truncated JSON", orjson.dumps(_order("h-trunc"))[:40], "invalid_json"),
    ("invalid UTF-8", b'{"type":"order_placed","event_id":"\xff\xfe"}', "invalid_json"),
    ("deeply nested", b'{"a":' * 3000 + b"1" + b"}" * 3000, "invalid_json"),
    ("empty value", b"", "empty"),
    ("huge payload", orjson.dumps(_order("h-huge", source="x" * 70_000)), "too_large"),
    ("wrong type", orjson.dumps(_order("h-type", total=["30"])), "schema"),
    ("missing field", orjson.dumps(_without(_order("h-miss"), "order_id")), "schema"),
    ("extra field", orjson.dumps(_order("h-extra", gift_wrap="yes")), "schema"),
    ("unknown event type", orjson.dumps(_order("h-kind", type="order_teleported")), "unknown_type"),
    ("time far in the past", orjson.dumps(_order("h-1970", event_time="1970-01-01T00:00:00Z")),
     "implausible_time"),
    ("time far in the future", orjson.dumps(_order("h-2099", event_time="2099-01-01T00:00:00Z")),
     "implausible_time"),
    ("JSON that is not an object", b"[1, 2, 3]", "schema"),
    ("null", b"null", "schema"),
    ("NUL byte in the event id", orjson.dumps(_order("h-nul\u0000id")), "schema"),
]  # fmt: skip


def _dead_letters(port: int) -> Counter[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    found: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "bestand_dead_letters_total":
                found[sample.labels["reason"]] += int(sample.value)
    return found


def test_every_kind_of_hostile_input_is_dead_lettered_and_the_stream_goes_on(
    deployment: Deployment, worker: Process
) -> None:
    settings = deployment.settings
    good_first = orjson.dumps(_order("h-good-1"))
    good_last = orjson.dumps(_order("h-good-2"))
    sent = time.monotonic()
    stream = [good_first, *(raw for _, raw, _ in HOSTILE), good_last]
    run(produce(settings.kafka_bootstrap, deployment.topic("orders"), stream, key=b"one"))
    answer = wait_for(
        lambda: (a := lookup(deployment, email="h-good-2@example.com"))["known"] and a,
        timeout=60, what="the good event after every hostile one",
    )  # fmt: skip
    assert answer["existing_customer"] is True
    assert lookup(deployment, email="h-good-1@example.com")["existing_customer"] is True
    # Not slowed: the whole run of hostile events took no time to speak of.
    assert time.monotonic() - sent < 30

    letters = run(consume_all(settings.kafka_bootstrap, settings.topic_dlq, expect=len(HOSTILE)))
    assert len(letters) == len(HOSTILE)
    expected = Counter(reason for _, _, reason in HOSTILE)
    assert Counter(letter["reason"] for letter in letters) == expected
    for letter in letters:
        assert letter["error"], letter  # a clear error, not just a code
        assert letter["topic"] == deployment.topic("orders")
    counted = _dead_letters(settings.worker_web_port)
    assert {reason: counted[reason] for reason in expected} == dict(expected)
    print(f"\nhostile inputs: {len(HOSTILE)} kinds sent, {len(letters)} dead-lettered")
    worker.assert_running()


def test_a_duplicate_event_id_with_other_content_is_dead_lettered(
    deployment: Deployment, worker: Process
) -> None:
    settings = deployment.settings
    first = _order("h-dup", total="40.00", order_id="o-h-dup")
    again = dict(first)  # delivered twice: no dead letter for that
    second = _order("h-dup", total="4000.00", order_id="o-h-dup")
    stream = [orjson.dumps(e) for e in (first, again, second)]
    run(produce(settings.kafka_bootstrap, deployment.topic("orders"), stream, key=b"dup"))
    letters = run(consume_all(settings.kafka_bootstrap, settings.topic_dlq,
                              expect=len(HOSTILE) + 1, within=60))  # fmt: skip
    conflicts = [letter for letter in letters if letter["reason"] == "duplicate_event_id"]
    assert len(conflicts) == 1, letters
    assert "'h-dup'" in conflicts[0]["error"]
    # The letter is the input as the shop sent it, and says where it is: the second, refused.
    assert '"total":"4000.00"' in conflicts[0]["payload"]
    assert conflicts[0]["topic"] == deployment.topic("orders")
    where = (conflicts[0]["topic"], conflicts[0]["partition"], conflicts[0]["offset"])
    assert run(record_at(settings.kafka_bootstrap, *where)) == stream[2]
    assert _dead_letters(settings.worker_web_port)["duplicate_event_id"] == 1
    answer = lookup(deployment, email="h-dup@example.com")
    assert answer["orders_count"] == 1
    assert answer["value"]["lifetime_value"] == 40.0  # the first statement stands
    worker.assert_running()
