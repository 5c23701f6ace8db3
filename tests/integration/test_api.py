"""The lookup API over real HTTP, on a real Redis filled by the real stream handlers."""

from __future__ import annotations

import http.client
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from redis.asyncio.cluster import RedisCluster
from support import Deployment, Process, make_deployment, run, wait_for

from bestand.access import SCOPES, Scope
from bestand.ops.metrics import WorkerMetrics
from bestand.store.router import Router, connect_store
from bestand.stream.messages import Incoming
from bestand.stream.worker import processor_for

pytestmark = pytest.mark.integration

EVENTS = [
    (
        "orders",
        {
            "type": "order_placed",
            "event_id": "a1",
            "event_time": "2026-10-01T10:00:00Z",
            "order_id": "api-o1",
            "total": "20.00",
            "currency": "EUR",
            "channel": "web",
            "customer": {"customer_id": "K-777", "email": "Anna.Api@gmail.com"},
        },
    ),
    (
        "orders",
        {
            "type": "order_placed",
            "event_id": "a2",
            "event_time": "2026-11-01T10:00:00Z",
            "order_id": "api-o2",
            "total": "30.00",
            "currency": "EUR",
            "channel": "store",
            "customer": {"guest": True, "phone": "0171 5556667", "email": "annaapi@gmail.com"},
        },
    ),
    (
        "customer",
        {
            "type": "consent_changed",
            "event_id": "a3",
            "event_time": "2026-11-02T10:00:00Z",
            "identifiers": {"customer_id": "K-777"},
            "consent": {"ads": True},
        },
    ),
    (
        "orders",
        {
            "type": "order_placed",
            "event_id": "b1",
            "event_time": "2026-09-01T10:00:00Z",
            "order_id": "api-b1",
            "total": "15.00",
            "currency": "EUR",
            "channel": "web",
            "attribution": {"campaign": "sem-brand", "affiliate_id": "aff-9"},
            "coupon": "FIRST10",
            "customer": {"customer_id": "K-888", "email": "bert.api@example.com"},
        },
    ),
    (
        "orders",
        {
            "type": "order_placed",
            "event_id": "b2",
            "event_time": "2026-10-15T10:00:00Z",
            "order_id": "api-b2",
            "total": "25.00",
            "currency": "EUR",
            "channel": "store",
            "customer": {"guest": True, "phone": "0160 9182 7364"},
        },
    ),
    (
        "customer",
        {
            "type": "identify",
            "event_id": "b3",
            "event_time": "2026-11-10T10:00:00Z",
            "identifiers": {"email": "bert.api@example.com", "phone": "+49 160 91827364"},
        },
    ),
    (
        "clickstream",
        {
            "type": "page_view",
            "event_id": "a4",
            "event_time": "2026-11-03T10:00:00Z",
            "anonymous_id": "ck-api-visitor",
        },
    ),
]


async def _seed(deployment: Deployment) -> None:
    settings = deployment.settings
    client = connect_store(settings.redis_url, settings.redis_cluster)
    router = None
    if settings.redis_cluster:
        router = Router(cast(RedisCluster, client), settings.redis_url)
        await router.start()
    processor = processor_for(settings, client, WorkerMetrics(), router=router)
    try:
        for offset, (kind, event) in enumerate(EVENTS):
            topic = deployment.topic(kind)
            out = await processor.process([Incoming(topic, 0, offset, None, orjson.dumps(event))])
            assert all(o.destination == "changes" for o in out)
    finally:
        await (client.aclose() if router is None else router.aclose())


@pytest.fixture(scope="module")
def api(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployment, int]]:
    deployment = make_deployment("127.0.0.1:1", redis_url, tmp_path_factory.mktemp("api"))
    yield from serve(deployment)


def serve(deployment: Deployment) -> Iterator[tuple[Deployment, int]]:
    """The seeded deployment with a running ``bestand api``, stopped afterwards."""
    run(_seed(deployment))
    port = deployment.settings.api_port
    process = Process(
        ["api", "--loglevel", "warning"], deployment.env, deployment.log_dir / "api.log"
    )
    try:
        wait_for(lambda: _ping(port), timeout=30, what="the API to answer /health")
        yield deployment, port
    finally:
        # uvicorn re-raises SIGTERM after its graceful shutdown, so -15 is a clean exit too.
        assert process.stop() in (0, -15), process.log_tail()


def _ping(port: int) -> bool:
    try:
        return request(port, "GET", "/health")[0] == 200
    except OSError:
        return False


def request(
    port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        payload = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
        conn.request(method, path, body=payload, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, orjson.loads(data) if data else None
    finally:
        conn.close()


def auth(deployment: Deployment) -> dict[str, str]:
    return {"Authorization": f"Bearer {deployment.settings.api_key()}"}


def test_a_request_without_a_valid_key_gets_401(api: tuple[Deployment, int]) -> None:
    _, port = api
    status, body = request(port, "GET", "/v1/lookup?email=annaapi@gmail.com")
    assert (status, body["error"]) == (401, "unauthorized")
    status, _ = request(
        port, "GET", "/v1/lookup?email=x@y.de", headers={"Authorization": "Bearer wrong"}
    )
    assert status == 401


def test_lookup_by_every_identifier_answers_for_one_person(api: tuple[Deployment, int]) -> None:
    deployment, port = api
    answers = []
    for query in (
        "email=anna.api%40gmail.com",
        "email=ANNAAPI%2Bnews%40GMAIL.COM",
        "customer_id=K-777",
        "phone=%2B49%20171%205556667",
        "order_id=api-o2",
    ):
        status, answer = request(port, "GET", f"/v1/lookup?{query}", headers=auth(deployment))
        assert status == 200, answer
        answers.append(answer)
    assert len({a["person_id"] for a in answers}) == 1
    answer = answers[0]
    assert answer["known"] is True
    assert answer["existing_customer"] is True
    assert answer["orders_count"] == 2
    assert answer["first_order_at"] == "2026-10-01T10:00:00Z"
    assert answer["last_order_at"] == "2026-11-01T10:00:00Z"
    assert answer["lifecycle_stage"] == "repeat"
    # A loyal customer is not offered "10 % on your first order", but the thank-you.
    assert answer["new_customer_offer_eligible"] is False
    assert answer["loyalty_offers"] == ["loyalty-thank-you"]
    assert answer["preferred_channel"] == "store"  # the guest order was placed in a store
    assert answer["consent"] == {"ads": True}


def test_the_x_api_key_header_works_too(api: tuple[Deployment, int]) -> None:
    deployment, port = api
    key = deployment.settings.api_key()
    status, answer = request(
        port, "GET", "/v1/lookup?anonymous_id=ck-api-visitor", headers={"X-API-Key": key}
    )
    assert status == 200
    assert answer["known"] is True
    assert answer["existing_customer"] is False
    assert answer["lifecycle_stage"] == "prospect"


def test_an_unknown_identifier_is_not_an_error(api: tuple[Deployment, int]) -> None:
    deployment, port = api
    status, answer = request(
        port, "GET", "/v1/lookup?email=nobody%40example.org", headers=auth(deployment)
    )
    assert status == 200
    assert answer["known"] is False
    assert answer["person_id"] is None
    assert answer["new_customer_offer_eligible"] is True


def test_lookup_by_sha256_of_the_normalized_email(api: tuple[Deployment, int]) -> None:
    import hashlib

    deployment, port = api
    digest = hashlib.sha256(b"annaapi@gmail.com").hexdigest()
    status, answer = request(
        port, "GET", f"/v1/lookup?email_sha256={digest}", headers=auth(deployment)
    )
    assert status == 200
    assert answer["orders_count"] == 2


def test_lookup_by_sha256_of_the_e164_phone(api: tuple[Deployment, int]) -> None:
    """As UID2, Google and Meta exchange hashed phones: hex or Base64 of the SHA-256."""
    import base64
    import hashlib

    deployment, port = api
    digest = hashlib.sha256(b"+491715556667").digest()
    for value in (digest.hex(), base64.b64encode(digest).decode()):
        query = urllib.parse.urlencode({"phone_sha256": value})
        status, answer = request(port, "GET", f"/v1/lookup?{query}", headers=auth(deployment))
        assert status == 200
        assert answer["orders_count"] == 2


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("", "one_identifier"),
        ("email=a%40b.de&phone=0151", "one_identifier"),
        ("mail=a%40b.de", "unknown_parameter"),
        ("email=not-an-email", "invalid_identifier"),
        ("phone=12", "invalid_identifier"),
        ("email_sha256=xyz", "invalid_identifier"),
        ("phone_sha256=xyz", "invalid_identifier"),
    ],
)
def test_bad_lookups_get_400_with_a_reason(
    api: tuple[Deployment, int], query: str, error: str
) -> None:
    deployment, port = api
    status, body = request(port, "GET", f"/v1/lookup?{query}", headers=auth(deployment))
    assert status == 400
    assert body["error"] == error
    assert body["detail"]


def test_batch_lookup_answers_in_order(api: tuple[Deployment, int]) -> None:
    deployment, port = api
    status, body = request(
        port,
        "POST",
        "/v1/lookup",
        headers=auth(deployment),
        body={
            "identifiers": [
                {"customer_id": "K-777"},
                {"email": "broken"},
                {"anonymous_id": "nope"},
            ],
        },
    )
    assert status == 200
    first, second, third = body["results"]
    assert first["answer"]["orders_count"] == 2
    assert second["answer"] is None
    assert "email" in second["error"]
    assert third["answer"]["known"] is False


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", 400, "invalid_body"),
        ({"identifiers": []}, 400, "invalid_body"),
        ({"identifiers": [{"email": "a@b.de", "phone": "1"}]}, 400, "one_identifier"),
        ({"identifiers": [{"shoe_size": "44"}]}, 400, "unknown_identifier"),
        ({"identifiers": [{"customer_id": str(n)} for n in range(1001)]}, 413, "batch_too_large"),
    ],
)
def test_bad_batches_get_4xx_with_a_reason(
    api: tuple[Deployment, int], body: Any, status: int, error: str
) -> None:
    deployment, port = api
    got, answer = request(port, "POST", "/v1/lookup", headers=auth(deployment), body=body)
    assert (got, answer["error"]) == (status, error)


def test_health_ready_openapi_and_unknown_routes(api: tuple[Deployment, int]) -> None:
    deployment, port = api
    assert request(port, "GET", "/health") == (200, {"status": "ok"})
    assert request(port, "GET", "/ready") == (200, {"status": "ready"})
    status, doc = request(port, "GET", "/openapi.json")
    assert status == 200
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]["/v1/lookup"]) == {"get", "post"}
    assert "LookupAnswer" in doc["components"]["schemas"]
    assert request(port, "GET", "/v2/nothing")[0] == 404
    assert request(port, "PUT", "/v1/lookup", headers=auth(deployment))[0] == 405


def test_explain_shows_why_identifiers_are_one_person(api: tuple[Deployment, int]) -> None:
    deployment, port = api
    _, answer = request(port, "GET", "/v1/lookup?customer_id=K-777", headers=auth(deployment))
    person = answer["person_id"]
    status, body = request(port, "GET", f"/v1/persons/{person}/explain", headers=auth(deployment))
    assert status == 200, body
    assert body["person_id"] == person
    kinds = sorted(i["kind"] for i in body["identifiers"])
    assert kinds == ["customer_id", "email", "order_id", "order_id", "phone"]
    whats = [entry["what"] for entry in body["history"]]
    assert whats[0] == "new"
    assert "link" in whats
    link = next(e for e in body["history"] if e["what"] == "link")
    assert link["event_id"] == "a2"
    assert link["via"]["kind"] == "email"  # the guest order joined through the e-mail
    text = orjson.dumps(body).decode().lower()
    for raw in ("anna", "k-777", "5556667", "gmail"):
        assert raw not in text


def test_explain_of_an_unknown_person_is_404(api: tuple[Deployment, int]) -> None:
    deployment, port = api
    status, body = request(port, "GET", "/v1/persons/nobody/explain", headers=auth(deployment))
    assert (status, body["error"]) == (404, "unknown_person")
    assert request(port, "GET", "/v1/persons/x/explain")[0] == 401


def test_bestand_explain_prints_the_history(api: tuple[Deployment, int]) -> None:
    import os
    import subprocess
    import sys

    deployment, _ = api
    result = subprocess.run(
        [sys.executable, "-m", "bestand", "explain", "--phone", "+49 171 5556667"],
        env={**os.environ, **deployment.env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "history (" in result.stdout
    assert "new person" in result.stdout
    assert "5556667" not in result.stdout


def test_a_merge_reclassifies_the_guest_order_of_an_existing_customer(
    api: tuple[Deployment, int],
) -> None:
    deployment, port = api
    status, body = request(
        port, "GET", "/v1/orders/api-b1/classification", headers=auth(deployment)
    )
    assert status == 200, body
    assert (body["classification"], body["reclassifications"]) == ("new", [])
    status, body = request(
        port, "GET", "/v1/orders/api-b2/classification", headers=auth(deployment)
    )
    assert status == 200, body
    # The store order looked like a new customer's until the identify event joined the two.
    assert body["classification"] == "existing"
    assert body["ordered_at"] == "2026-10-15T10:00:00Z"
    (change,) = body["reclassifications"]
    assert (change["before"], change["after"], change["event_id"]) == ("new", "existing", "b3")
    assert change["reason"].startswith("merged with person")
    _, b1 = request(port, "GET", "/v1/orders/api-b1/classification", headers=auth(deployment))
    assert b1["person_id"] == body["person_id"]


def test_classification_of_an_unknown_order_is_404(api: tuple[Deployment, int]) -> None:
    deployment, port = api
    status, body = request(port, "GET", "/v1/orders/nope/classification", headers=auth(deployment))
    assert (status, body["error"]) == (404, "unknown_order")


def test_classification_tells_affiliates_what_they_need(api: tuple[Deployment, int]) -> None:
    deployment, port = api
    _, first = request(port, "GET", "/v1/orders/api-b1/classification", headers=auth(deployment))
    assert (first["orders_before"], first["days_since_last_order"]) == (0, None)
    assert (first["channel"], first["campaign"], first["affiliate_id"], first["coupon"]) == (
        "web",
        "sem-brand",
        "aff-9",
        "FIRST10",
    )
    _, second = request(port, "GET", "/v1/orders/api-b2/classification", headers=auth(deployment))
    assert (second["orders_before"], second["days_since_last_order"]) == (1, 44)
    assert (second["channel"], second["coupon"]) == ("store", None)


def test_batch_classification_for_commission_validation(api: tuple[Deployment, int]) -> None:
    deployment, port = api
    status, body = request(
        port,
        "POST",
        "/v1/orders/classification",
        headers=auth(deployment),
        body={"order_ids": ["api-b2", "nope", "api-b1"]},
    )
    assert status == 200, body
    b2, nope, b1 = body["results"]
    assert b2["classification"]["classification"] == "existing"
    assert (nope["classification"], nope["error"]) == (None, "unknown order")
    assert b1["classification"]["classification"] == "new"
    status, body = request(
        port, "POST", "/v1/orders/classification", headers=auth(deployment), body={"order_ids": []}
    )
    assert (status, body["error"]) == (400, "invalid_body")
    assert request(port, "GET", "/v1/orders/classification", headers=auth(deployment))[0] == 405


def test_campaign_report_recounts_the_seeded_orders(api: tuple[Deployment, int]) -> None:
    deployment, port = api
    status, body = request(
        port, "GET", "/v1/reports/campaigns?from=2026-09-01&to=2026-11-30", headers=auth(deployment)
    )
    assert status == 200, body
    rows = {
        (r["day"], r["campaign"], r["affiliate"], r["channel"], r["coupon"]): r
        for r in body["rows"]
    }
    # Recount from the seeded events: b1 (new, campaign sem-brand), a1 (new), b2 (existing
    # after the merge), a2 (existing: the guest order joined K-777 by e-mail).
    assert rows[("2026-09-01", "sem-brand", "aff-9", "web", "FIRST10")]["new_orders"] == 1
    assert rows[("2026-09-01", "sem-brand", "aff-9", "web", "FIRST10")]["new_revenue_cents"] == 1500
    assert rows[("2026-10-01", None, None, "web", None)]["new_orders"] == 1
    assert rows[("2026-10-15", None, None, "store", None)]["existing_orders"] == 1
    assert rows[("2026-10-15", None, None, "store", None)]["existing_revenue_cents"] == 2500
    assert rows[("2026-11-01", None, None, "store", None)]["existing_orders"] == 1
    assert sum(r["new_orders"] + r["existing_orders"] for r in body["rows"]) == 4
    status, body = request(
        port, "GET", "/v1/reports/campaigns?from=2026-12-01&to=2026-01-01", headers=auth(deployment)
    )
    assert (status, body["error"]) == (400, "invalid_parameter")


def as_scope(deployment: Deployment, scope: Scope) -> dict[str, str]:
    return {"Authorization": f"Bearer {deployment.settings.api_key(scope)}"}


def test_value_band_and_scores_compare_with_the_customer_base(
    api: tuple[Deployment, int],
) -> None:
    deployment, port = api
    _, anna = request(port, "GET", "/v1/lookup?customer_id=K-777", headers=auth(deployment))
    _, bert = request(port, "GET", "/v1/lookup?customer_id=K-888", headers=auth(deployment))
    # Anna (50.00) is the more valuable of the two customers in this namespace.
    assert anna["value"]["band"] == "top10"
    assert anna["value"]["lifetime_value"] == 50.0
    assert anna["value"]["monetary"] == 5
    assert bert["value"]["band"] == "rest"
    assert bert["value"]["lifetime_value"] == 40.0
    assert bert["value"]["monetary"] < anna["value"]["monetary"]
    assert anna["value"]["predicted_value"] >= 0
    _, visitor = request(
        port, "GET", "/v1/lookup?anonymous_id=ck-api-visitor", headers=auth(deployment)
    )
    assert visitor["value"] is None


def test_each_scope_sees_its_fields_and_routes(api: tuple[Deployment, int]) -> None:
    deployment, port = api
    lookup = "/v1/lookup?customer_id=K-777"
    status, ads = request(port, "GET", lookup, headers=as_scope(deployment, "ads"))
    assert status == 200
    assert ads == {
        "known": True,
        "existing_customer": True,
        "lifecycle_stage": "repeat",
        "new_customer_offer_eligible": False,
    }
    status, batch = request(
        port,
        "POST",
        "/v1/lookup",
        body={"identifiers": [{"customer_id": "K-777"}]},
        headers=as_scope(deployment, "ads"),
    )
    assert status == 200
    assert batch["results"][0]["answer"] == ads
    _, personal = request(port, "GET", lookup, headers=as_scope(deployment, "personalization"))
    assert personal["person_id"] == ads_person(deployment, port)
    assert set(personal["value"]) == {"band", "rfm", "expected_next_order_at"}
    assert "lifetime_value" not in personal["value"]

    routes = {
        "/v1/reports/campaigns?from=2026-09-01&to=2026-11-30": {"admin"},
        "/v1/orders/api-o2/classification": {"affiliate", "admin"},
        f"/v1/persons/{personal['person_id']}/explain": {"admin"},
    }
    for path, allowed in routes.items():
        for scope in SCOPES:
            status, body = request(port, "GET", path, headers=as_scope(deployment, scope))
            if scope in allowed:
                assert status == 200, (path, scope, body)
            else:
                assert (status, body["error"]) == (403, "forbidden"), (path, scope)
                assert scope in body["detail"]


def ads_person(deployment: Deployment, port: int) -> str:
    _, answer = request(port, "GET", "/v1/lookup?customer_id=K-777", headers=auth(deployment))
    return str(answer["person_id"])


def test_export_audience_writes_consenting_existing_customers(
    api: tuple[Deployment, int], tmp_path: Path
) -> None:
    import hashlib
    import os
    import subprocess
    import sys

    deployment, _ = api
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(
        "email,phone\n"
        "Anna.API@gmail.com,\n"  # existing customer, gave ads consent
        "bert.api@example.com,+49 160 91827364\n"  # existing customer, never stated consent
        "nobody@example.com,\n"  # unknown
    )

    def export(*extra: str) -> tuple[list[str], str]:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "bestand",
                "export",
                "audience",
                "--format",
                "google",
                "--input",
                str(contacts),
                *extra,
            ],
            env={**os.environ, **deployment.env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines(), result.stderr

    rows, summary = export()
    anna = hashlib.sha256(b"annaapi@gmail.com").hexdigest()
    assert rows == ["Email,Phone", f"{anna},"]
    assert "contacts read:        3" in summary
    assert "no ads consent:     1" in summary
    bert_phone = hashlib.sha256(b"+4916091827364").hexdigest()
    bert_email = hashlib.sha256(b"bert.api@example.com").hexdigest()
    rows, _ = export("--include-unstated-consent")
    assert rows == ["Email,Phone", f"{anna},", f"{bert_email},{bert_phone}"]
    rows, _ = export("--segment", "prospects")
    assert rows == ["Email,Phone"]  # the visitor is known by cookie only, not in the list
    assert "annaapi" not in "".join(rows)
