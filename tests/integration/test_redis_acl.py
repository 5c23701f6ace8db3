"""A Redis that requires an ACL user: the worker and the API work with credentials in the URL
(``BESTAND_REDIS_URL=redis://user:password@host:port/0``), and nothing works without them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis
from support import Process, make_deployment, produce, redis_with_user, run, wait_for

from bestand.api import create_api
from bestand.kafka.topics import ensure_topics
from bestand.stack import free_port

pytestmark = pytest.mark.integration

USER, PASSWORD = "bestand", "acl-test-password-1234"


@pytest.fixture
def acl_redis(tmp_path: Path) -> Iterator[int]:
    """redis-server with the default user off and one user with a password."""
    port = free_port()
    with redis_with_user(tmp_path, USER, PASSWORD, ["--port", str(port)], port=port):
        yield port


def test_worker_and_api_use_an_acl_user(
    acl_redis: int, kafka_bootstrap: str, tmp_path: Path
) -> None:
    anonymous = redis.Redis(port=acl_redis)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()  # the server really requires a user
    anonymous.close()

    url = f"redis://{USER}:{PASSWORD}@127.0.0.1:{acl_redis}/0"
    deployment = make_deployment(kafka_bootstrap, url, tmp_path)
    run(ensure_topics(deployment.settings))
    worker = Process(["worker"], deployment.env, tmp_path / "worker.log")
    try:
        order = {
            "type": "order_placed", "event_id": "acl-1", "event_time": "2026-11-20T10:00:00Z",
            "order_id": "acl-o1", "total": "25.00", "currency": "EUR", "channel": "web",
            "customer": {"guest": True, "email": "acl.user@example.com"},
        }  # fmt: skip
        run(produce(deployment.settings.kafka_bootstrap, deployment.topic("orders"),
                    [orjson.dumps(order)]))  # fmt: skip

        async def answer() -> dict[str, object]:
            api = create_api(deployment.settings)
            try:
                return await api.service.lookup("email", "acl.user@example.com")
            finally:
                await api.close()

        found = wait_for(lambda: (a := run(answer()))["known"] and a, timeout=90,
                         what="the order to reach Redis through the ACL user")  # fmt: skip
        assert found["existing_customer"] is True
        worker.assert_running()
    finally:
        assert worker.stop() == 0, worker.log_tail()
