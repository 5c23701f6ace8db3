"""The whole path on a real Kafka and Redis: events in, a worker process, lookups out."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import redis
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

from bestand.store.keys import Keys

pytestmark = pytest.mark.integration


def order(
    event_id: str,
    order_id: str,
    email: str,
    *,
    total: str = "49.90",
    at: str = "2026-11-20T10:00:00Z",
    **customer: Any,
) -> bytes:
    return orjson.dumps(
        {
            "type": "order_placed",
            "event_id": event_id,
            "event_time": at,
            "order_id": order_id,
            "total": total,
            "currency": "EUR",
            "channel": "web",
            "customer": {"guest": True, "email": email, **customer},
        }
    )


def send(deployment: Deployment, kind: str, *values: bytes) -> None:
    run(produce(deployment.settings.kafka_bootstrap, deployment.topic(kind), list(values)))


def test_an_order_makes_an_existing_customer(deployment: Deployment, worker: Process) -> None:
    assert lookup(deployment, email="first.buyer@example.com")["known"] is False
    send(deployment, "orders", order("it-1", "o-it-1", "First.Buyer@Example.com"))
    answer = wait_for(
        lambda: (
            lookup(deployment, email="first.buyer@example.com")["known"]
            and lookup(deployment, email="first.buyer@example.com")
        ),
        what="the order to reach the lookup record",
    )
    worker.assert_running()
    assert answer["existing_customer"] is True
    assert answer["orders_count"] == 1
    assert answer["lifecycle_stage"] in {"first_time", "lapsed"}
    by_order = lookup(deployment, order_id="o-it-1")
    assert by_order["person_id"] == answer["person_id"]


def test_the_same_order_delivered_twice_counts_once(
    deployment: Deployment, worker: Process
) -> None:
    twice = order("it-2", "o-it-2", "twice@example.com")
    send(deployment, "orders", twice, twice)
    # A later, different order of the same person proves both copies were processed before it.
    send(
        deployment,
        "orders",
        order("it-3", "o-it-3", "twice@example.com", at="2026-11-21T10:00:00Z"),
    )
    answer = wait_for(
        lambda: (a := lookup(deployment, email="twice@example.com"))["orders_count"] >= 2 and a,
        what="both orders of twice@example.com",
    )
    assert answer["orders_count"] == 2
    metrics = wait_for(lambda: _metrics(deployment), what="worker metrics")
    assert 'outcome="duplicate"' in metrics


def test_a_loyal_guest_with_two_spellings_is_one_customer(
    deployment: Deployment, worker: Process
) -> None:
    send(
        deployment,
        "orders",
        order("it-4", "o-it-4", "Maria.Meier@gmail.com", at="2026-06-01T10:00:00Z"),
        order(
            "it-5",
            "o-it-5",
            " MARIAMEIER+shop@GMAIL.com ",
            at="2026-11-01T10:00:00Z",
            phone="0151 99887766",
        ),
    )
    answer = wait_for(
        lambda: (a := lookup(deployment, email="maria.meier@gmail.com"))["orders_count"] == 2 and a,
        what="two orders of the loyal guest",
    )
    assert answer["existing_customer"] is True
    assert answer["first_order_at"] == "2026-06-01T10:00:00Z"
    assert answer["last_order_at"] == "2026-11-01T10:00:00Z"
    assert lookup(deployment, phone="+49 151 99887766")["person_id"] == answer["person_id"]


def test_identify_merges_a_visitor_into_the_buyer(deployment: Deployment, worker: Process) -> None:
    send(
        deployment,
        "clickstream",
        orjson.dumps(
            {
                "type": "page_view",
                "event_id": "it-6",
                "event_time": "2026-11-22T09:00:00Z",
                "anonymous_id": "cookie-it-6",
            }
        ),
    )
    send(deployment, "orders", order("it-7", "o-it-7", "visitor@example.com"))
    wait_for(
        lambda: (
            lookup(deployment, anonymous_id="cookie-it-6")["known"]
            and lookup(deployment, email="visitor@example.com")["known"]
        ),
        what="the visitor and the buyer",
    )
    assert (
        lookup(deployment, anonymous_id="cookie-it-6")["person_id"]
        != lookup(deployment, email="visitor@example.com")["person_id"]
    )
    send(
        deployment,
        "customer",
        orjson.dumps(
            {
                "type": "identify",
                "event_id": "it-8",
                "event_time": "2026-11-22T09:05:00Z",
                "identifiers": {"anonymous_id": "cookie-it-6", "email": "VISITOR@example.com"},
            }
        ),
    )
    merged = wait_for(
        lambda: (a := lookup(deployment, anonymous_id="cookie-it-6"))["existing_customer"] and a,
        what="the cookie to answer as the buyer",
    )
    assert merged["person_id"] == lookup(deployment, email="visitor@example.com")["person_id"]
    assert merged["orders_count"] == 1

    # Downstream systems heard of it: the buyer became a customer, then absorbed the visitor.
    def changes_so_far() -> dict[tuple[str, str], Any] | None:
        settings = deployment.settings
        seen = run(
            consume_all(
                settings.kafka_bootstrap, settings.topic_profile_changes, expect=10**9, within=2
            )
        )
        by_event = {(c["event_id"], c["change"]): c for c in seen}
        return by_event if ("it-8", "merged") in by_event else None

    by_event = wait_for(changes_so_far, what="the merge on the profile-changes topic")
    assert by_event[("it-7", "became_customer")]["orders_count"] == 1
    assert by_event[("it-7", "stage_changed")]["stage_after"] == "first_time"
    merged_change = by_event[("it-8", "merged")]
    assert merged_change["person_id"] == merged["person_id"]
    assert len(merged_change["absorbed"]) == 1
    assert merged_change["absorbed"][0] != merged["person_id"]

    # The explanation: the merge from Redis, both persons' beginnings from the explain topic
    # (the absorbed visitor's under its own id), by event time.
    shown = bestand_cli(deployment, "explain", "--anonymous-id", "cookie-it-6", "--json")
    assert shown.returncode == 0, shown.stderr
    explained = orjson.loads(shown.stdout)
    assert explained["history_complete"] is True
    steps = [(e["what"], e["event_id"]) for e in explained["history"]]
    assert steps == [("new", "it-7"), ("new", "it-6"), ("merge", "it-8")], steps
    assert explained["history"][2]["other_person"] == merged_change["absorbed"][0]
    # Redis keeps the merge alone: new persons and links are the topic's.
    log = _redis_log(deployment, merged["person_id"])
    assert [entry.split("\x1f")[0] for entry in log] == ["m"], log
    printed = bestand_cli(deployment, "explain", "--email", "visitor@example.com")
    assert printed.returncode == 0, printed.stderr
    assert "persons merged" in printed.stdout
    assert "new person" in printed.stdout


def _redis_log(deployment: Deployment, person: str) -> list[str]:
    """A person's explain entries as Redis holds them (its field of a log bucket)."""
    keys = Keys(deployment.settings.redis_prefix)
    client = redis.Redis.from_url(deployment.settings.redis_url)
    try:
        value = client.hget(*keys.log_entry(person))
    finally:
        client.close()
    return [] if value is None else value.decode().split("\x1e")


def test_bad_events_go_to_the_dead_letter_topic_and_the_stream_goes_on(
    deployment: Deployment, worker: Process
) -> None:
    send(
        deployment,
        "orders",
        b"this is not json",
        b'{"type": "order_placed", "event_id": "x"}',
        b'{"type": "unknown_thing", "event_id": "y"}',
        order("it-9", "o-it-9", "after.bad.input@example.com"),
    )
    answer = wait_for(
        lambda: (a := lookup(deployment, email="after.bad.input@example.com"))["known"] and a,
        what="the good event after three bad ones",
    )
    assert answer["existing_customer"] is True
    letters = run(
        consume_all(deployment.settings.kafka_bootstrap, deployment.settings.topic_dlq, expect=3)
    )
    reasons = sorted(letter["reason"] for letter in letters)
    assert reasons == ["invalid_json", "schema", "unknown_type"]
    first = next(letter for letter in letters if letter["reason"] == "invalid_json")
    assert first["payload"] == "this is not json"
    assert first["topic"] == deployment.topic("orders")
    assert first["offset"] >= 0
    assert "bestand_dead_letters_total" in _metrics(deployment)
    worker.assert_running()


def _metrics(deployment: Deployment) -> str:
    import urllib.request

    url = f"http://127.0.0.1:{deployment.settings.worker_web_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())
