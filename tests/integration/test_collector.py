"""The collector over real HTTP, with Segment's own Python library, into real Kafka, through
the worker into Redis, and back out of the lookup API.

A shop that runs ``segment-analytics-python`` changes the host and the write key and nothing
else: its orders make existing customers that ``GET /v1/lookup`` confirms. Hostile requests
get their documented status and lose none of the good events beside them; with Kafka away
the collector answers 503 and acknowledges nothing.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import http.client
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from segment.analytics import Client
from support import (
    KAFKA_LIBS,
    PROJECT_DIR,
    Deployment,
    Process,
    consume_all,
    make_deployment,
    run,
    wait_for,
)

from bestand.kafka.topics import ensure_topics
from bestand.stack import LocalKafka, free_port, free_ports

pytestmark = pytest.mark.integration

SHOPIFY_SECRET = "shpss-test-0123456789abcdef"
#: SendGrid's signing key, made for this module: the collector gets its public half.
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(
    SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


def _request(
    port: int,
    path: str,
    body: bytes | dict[str, Any] | None = None,
    *,
    key: str | None = None,
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> tuple[int, dict[str, Any], dict[str, str]]:
    sent = dict(headers or {})
    if key is not None:
        sent["Authorization"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    data = orjson.dumps(body) if isinstance(body, dict) else body
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        raw = response.read()
        answer = orjson.loads(raw) if raw else {}
        return response.status, answer, {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


def _up(port: int) -> bool:
    try:
        return _request(port, "/health", method="GET")[0] == 200
    except OSError:
        return False


def _lookup(deployment: Deployment, key: str, **identifier: str) -> dict[str, Any]:
    return _get(deployment, key, f"/v1/lookup?{urllib.parse.urlencode(identifier)}")


def _get(deployment: Deployment, key: str, path: str) -> dict[str, Any]:
    """A GET of the lookup API that must answer 200."""
    connection = http.client.HTTPConnection("127.0.0.1", deployment.settings.api_port, timeout=10)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {key}"})
        response = connection.getresponse()
        assert response.status == 200, response.read()
        return dict(orjson.loads(response.read()))
    finally:
        connection.close()


@pytest.fixture(scope="module")
def shop(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployment, str]]:
    """A deployment with a collector, a worker and the lookup API running; its write key."""
    deployment = make_deployment(kafka_bootstrap, redis_url, tmp_path_factory.mktemp("collector"))
    write_key = f"wk-{uuid.uuid4().hex[:12]}"
    deployment.env |= {
        "BESTAND_COLLECTOR_WRITE_KEYS": f"other-key-0123,{write_key}",
        "BESTAND_COLLECTOR_PORT": str(free_port()),
        "BESTAND_COLLECTOR_SHOPIFY_SECRET": SHOPIFY_SECRET,
        "BESTAND_COLLECTOR_SENDGRID_PUBLIC_KEY": SENDGRID_PUBLIC,
    }
    run(ensure_topics(deployment.settings))
    logs = deployment.log_dir
    processes = [
        Process(["collector", "--loglevel", "warning"], deployment.env, logs / "collector.log"),
        Process(["worker"], deployment.env, logs / "worker.log"),
        Process(["api", "--loglevel", "warning"], deployment.env, logs / "api.log"),
    ]
    port = int(deployment.env["BESTAND_COLLECTOR_PORT"])
    try:
        wait_for(lambda: _up(port), timeout=30, what="the collector to answer /health")
        api_port = deployment.settings.api_port
        wait_for(lambda: _up(api_port), timeout=30, what="the lookup API to answer /health")
        yield deployment, write_key
    finally:
        # uvicorn ends on SIGTERM by raising the signal again once it has shut down (-15)
        codes = [process.stop() for process in processes]
        assert codes[0] in (0, -15), processes[0].log_tail()
        assert codes[1] == 0, processes[1].log_tail()
        assert codes[2] in (0, -15), processes[2].log_tail()


def _port(deployment: Deployment) -> int:
    return int(deployment.env["BESTAND_COLLECTOR_PORT"])


def _admin(deployment: Deployment) -> str:
    keys = deployment.env["BESTAND_API_KEYS"].split(",")
    return next(k for k in keys if k.endswith(":admin")).rsplit(":", 1)[0]


def test_segments_own_library_makes_an_existing_customer(shop: tuple[Deployment, str]) -> None:
    deployment, write_key = shop
    errors: list[str] = []
    client = Client(
        write_key,
        host=f"http://127.0.0.1:{_port(deployment)}",
        sync_mode=True,
        max_retries=2,
        on_error=lambda error, _: errors.append(str(error)),
    )
    campaign = {"name": "winter", "source": "newsletter", "medium": "email"}
    client.page(
        anonymous_id="seg-cookie-1",
        name="Home",
        properties={"url": "https://shop.example/?gclid=abc123"},
        context={"campaign": campaign},
    )
    client.identify(
        user_id="seg-user-1",
        anonymous_id="seg-cookie-1",
        traits={"email": "Segment.Kundin@Example.com", "phone": "+49 171 5550123"},
    )
    order = {
        "order_id": "seg-o1",
        "total": 59.9,
        "currency": "EUR",
        "coupon": "WELCOME10",
        "products": [{"product_id": "p1", "price": 29.95, "quantity": 2}],
    }
    for _ in range(2):  # a resend of one message: one order, not two
        client.track(
            user_id="seg-user-1",
            anonymous_id="seg-cookie-1",
            event="Order Completed",
            properties=order,
            message_id="seg-message-order-1",
        )
    client.track(user_id="seg-user-1", event="Checkout Step Viewed", properties={"step": 2})
    client.flush()
    assert errors == []

    key = _admin(deployment)
    answer = wait_for(
        lambda: (
            (a := _lookup(deployment, key, email="segment.kundin@example.com"))["existing_customer"]
            and a
        ),
        timeout=60,
        what="the order to make an existing customer",
    )
    assert answer["orders_count"] == 1
    assert answer["value"]["lifetime_value"] == pytest.approx(59.9)
    by_cookie = _lookup(deployment, key, anonymous_id="seg-cookie-1")
    assert by_cookie["existing_customer"] is True
    assert by_cookie["person_id"] == answer["person_id"]
    assert _lookup(deployment, key, customer_id="seg-user-1")["person_id"] == answer["person_id"]
    order_answer = _get(deployment, key, "/v1/orders/seg-o1/classification")
    assert (order_answer["classification"], order_answer["coupon"]) == ("new", "WELCOME10")


def test_a_batch_with_one_bad_call_loses_none_of_the_good_ones(
    shop: tuple[Deployment, str],
) -> None:
    deployment, write_key = shop
    good = {
        "type": "track",
        "event": "Product Viewed",
        "anonymousId": "seg-cookie-2",
        "messageId": "seg-batch-good-1",
        "timestamp": "2026-11-20T10:00:00Z",
        "properties": {"product_id": "p-7", "category": "shoes"},
    }
    bad = {**good, "messageId": "seg-batch-bad", "event": "Order Completed", "properties": {}}
    order = {
        "type": "track",
        "event": "Order Completed",
        "userId": "seg-user-2",
        "messageId": "seg-batch-good-2",
        "timestamp": "2026-11-20T10:05:00Z",
        "properties": {"order_id": "seg-o2", "revenue": "12.5"},
    }
    status, answer, _ = _request(
        _port(deployment), "/v1/batch", {"batch": [good, bad, order]}, key=write_key
    )
    assert status == 400
    assert answer["failed"] == [
        {"index": 1, "reason": "schema", "detail": "Order Completed needs a total (or revenue)"}
    ]
    assert answer["forwarded"] == 2
    clicks = run(consume_all(deployment.settings.kafka_bootstrap, deployment.topic("clickstream"),
                             expect=1))  # fmt: skip
    orders = run(consume_all(deployment.settings.kafka_bootstrap, deployment.topic("orders"),
                             expect=2))  # fmt: skip
    ids = {event["event_id"] for event in [*clicks, *orders]}
    assert {"seg-batch-good-1", "seg-batch-good-2"} <= ids
    assert "seg-batch-bad" not in ids


def _shopify(
    port: int, topic: str, webhook: str, payload: dict[str, Any], secret: str = SHOPIFY_SECRET
) -> tuple[int, dict[str, Any], dict[str, str]]:
    body = orjson.dumps(payload)
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": webhook,
        "X-Shopify-Hmac-Sha256": signature.decode(),
        "X-Shopify-Shop-Domain": "bestand-test.myshopify.com",
    }
    return _request(port, "/v1/webhooks/shopify", body, headers=headers)


def test_shopify_orders_make_existing_customers_once(shop: tuple[Deployment, str]) -> None:
    deployment, _ = shop
    port = _port(deployment)
    order = {
        "id": 450789469, "email": "Shopify.Kunde@Example.com", "currency": "EUR",
        "created_at": "2026-11-20T10:00:00+01:00", "total_price": "89.90", "source_name": "pos",
        "customer": {"id": 207119551, "first_name": "Bob", "last_name": "Norman"},
        "billing_address": {"first_name": "Bob", "last_name": "Norman",
                            "address1": "Chestnut Street 92", "city": "Louisville",
                            "zip": "40202", "country_code": "US"},
        "line_items": [{"id": 466157049, "quantity": 1, "price": "89.90"}],
    }  # fmt: skip
    for _ in range(2):  # Shopify sends a webhook again until it is acknowledged
        status, answer, _ = _shopify(port, "orders/create", "wh-order-1", order)
        assert (status, answer["forwarded"]) == (200, 1)
    assert _shopify(port, "orders/create", "wh-x", order, secret="wrong")[0] == 401
    status, answer, _ = _shopify(port, "orders/updated", "wh-u", order)
    assert (status, answer["skipped"]) == (200, 1)
    key = _admin(deployment)
    answer = wait_for(
        lambda: (
            (a := _lookup(deployment, key, email="shopify.kunde@example.com"))["existing_customer"]
            and a
        ),
        timeout=60,
        what="the Shopify order to make an existing customer",
    )
    assert answer["orders_count"] == 1
    assert _lookup(deployment, key, customer_id="207119551")["person_id"] == answer["person_id"]


def _sendgrid(
    port: int, events: list[dict[str, Any]], *, age: int = 0, body: bytes | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    data = orjson.dumps(events)
    stamp = str(int(time.time()) - age).encode()
    signature = base64.b64encode(SENDGRID_KEY.sign(stamp + data, ec.ECDSA(hashes.SHA256())))
    headers = {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": signature.decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp.decode(),
    }
    return _request(port, "/v1/webhooks/sendgrid", body or data, headers=headers)


def test_sendgrid_events_reach_the_email_topic(shop: tuple[Deployment, str]) -> None:
    deployment, _ = shop
    port = _port(deployment)
    at = int(time.time()) - 60
    events = [
        {"email": "news@example.com", "timestamp": at, "event": "delivered",
         "sg_event_id": "sg-1", "sg_message_id": "m-1", "category": "advent"},
        {"email": "news@example.com", "timestamp": at, "event": "click",
         "sg_event_id": "sg-2", "url": "https://shop.example/advent"},
        {"email": "news@example.com", "timestamp": at, "event": "deferred",
         "sg_event_id": "sg-3"},
        {"timestamp": at, "event": "open", "sg_event_id": "sg-4"},
    ]  # fmt: skip
    status, answer, _ = _sendgrid(port, events)
    assert (status, answer["forwarded"], answer["skipped"]) == (400, 2, 1)
    assert [f["index"] for f in answer["failed"]] == [3]
    assert _sendgrid(port, events[:1], age=3600)[0] == 401  # a replay, an hour later
    assert _sendgrid(port, events[:1], body=orjson.dumps(events[1:2]))[0] == 401
    sent = run(consume_all(deployment.settings.kafka_bootstrap, deployment.topic("email"),
                           expect=2))  # fmt: skip
    assert {(e["event_id"], e["type"]) for e in sent} >= {
        ("sendgrid-sg-1", "email_delivered"), ("sendgrid-sg-2", "email_clicked")
    }  # fmt: skip


def test_hostile_requests_get_their_status(shop: tuple[Deployment, str]) -> None:
    deployment, write_key = shop
    port = _port(deployment)
    call = {"type": "identify", "userId": "u-hostile", "traits": {"email": "h@example.com"}}
    assert _request(port, "/v1/identify", call)[0] == 401  # no key
    status, answer, _ = _request(port, "/v1/identify", call, key="not-a-key")
    assert (status, answer["error"]) == (401, "unauthorized")
    assert _request(port, "/v1/identify", {**call, "writeKey": write_key})[0] == 200
    assert _request(port, "/v1/identify", b"{not json", key=write_key)[0] == 400
    huge = {**call, "traits": {"note": "x" * 40_000}}
    status, answer, _ = _request(port, "/v1/identify", huge, key=write_key)
    assert (status, answer["error"]) == (413, "body_too_large")
    status, answer, _ = _request(port, "/v1/batch", {"batch": [huge]}, key=write_key)
    assert (status, answer["failed"][0]["reason"]) == (400, "too_large")
    packed = gzip.compress(orjson.dumps({"batch": [call]}))
    status, answer, _ = _request(
        port, "/v1/batch", packed, key=write_key, headers={"Content-Encoding": "gzip"}
    )
    assert (status, answer["forwarded"]) == (200, 1)
    status, answer, _ = _request(port, "/v1/track", {"event": "Order Completed"}, key=write_key)
    assert (status, answer["error"]) == (400, "no_identifier")


def test_a_stopped_broker_gets_503_and_nothing_unacknowledged_is_answered_200(
    redis_url: str, tmp_path: Path
) -> None:
    port, controller = free_ports(2)
    broker = LocalKafka(tmp_path / "broker", port=port, controller_port=controller,
                        libs_dir=KAFKA_LIBS, project_dir=PROJECT_DIR,
                        log=lambda _: None)  # fmt: skip
    broker.start()
    broker.wait_ready(120)
    deployment = make_deployment(broker.bootstrap, redis_url, tmp_path / "logs")
    run(ensure_topics(deployment.settings))
    collector_port = free_port()
    env = {**deployment.env, "BESTAND_COLLECTOR_WRITE_KEYS": "stop-key-0123",
           "BESTAND_COLLECTOR_PORT": str(collector_port),
           "BESTAND_COLLECTOR_KAFKA_TIMEOUT_SECONDS": "3"}  # fmt: skip
    process = Process(["collector", "--loglevel", "error"], env, tmp_path / "collector.log")

    def send(n: int) -> int:
        call = {"type": "identify", "userId": f"u-stop-{n}", "messageId": f"stop-{n}"}
        return _request(collector_port, "/v1/batch", {"batch": [call]}, key="stop-key-0123")[0]

    try:
        wait_for(lambda: _up(collector_port), timeout=30, what="the collector")
        answered = {n: send(n) for n in range(3)}
        broker.stop()
        answered |= {n: send(n) for n in range(3, 6)}
        assert [answered[n] for n in range(3, 6)] == [503, 503, 503], answered
        broker.start()
        broker.wait_ready(120)
        answered |= {n: wait_for(lambda n=n: send(n) == 200 and 200, timeout=60,
                                 what="the collector to take events again")
                     for n in range(6, 8)}  # fmt: skip
        topic = deployment.topic("customer")
        ok = [n for n, status in answered.items() if status == 200]
        assert ok == [0, 1, 2, 6, 7]
        found = run(consume_all(broker.bootstrap, topic, expect=len(ok)))
        ids = {event["event_id"] for event in found}
        assert {f"stop-{n}" for n in ok} <= ids  # every 200 is in Kafka
    finally:
        assert process.stop() in (0, -15), process.log_tail()
        broker.stop()


def test_with_kafka_away_nothing_is_acknowledged(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    deployment = make_deployment("127.0.0.1:1", redis_url, tmp_path_factory.mktemp("away"))
    port = free_port()
    env = {
        **deployment.env,
        "BESTAND_COLLECTOR_WRITE_KEYS": "away-key-0123",
        "BESTAND_COLLECTOR_PORT": str(port),
        "BESTAND_COLLECTOR_KAFKA_TIMEOUT_SECONDS": "2",
    }
    process = Process(["collector", "--loglevel", "error"], env, deployment.log_dir / "c.log")
    try:
        wait_for(lambda: _up(port), timeout=30, what="the collector to answer /health")
        call = {"type": "identify", "userId": "u-away", "messageId": "away-1"}
        body = {"batch": [call]}
        status, answer, headers = _request(port, "/v1/batch", body, key="away-key-0123")
        assert (status, answer["error"]) == (503, "unavailable")
        assert headers["retry-after"] == "5"
        assert _request(port, "/ready", method="GET")[0] == 503
    finally:
        assert process.stop() in (0, -15), process.log_tail()
