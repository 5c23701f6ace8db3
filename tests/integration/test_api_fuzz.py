"""The HTTP API fuzzed against its own OpenAPI document (schemathesis): whatever a client
sends, the answer is never a 5xx, its status is one the document lists, and its body matches
the documented schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from schemathesis.specs.openapi.schemas import OpenApiSchema
from support import Process, make_deployment, run, wait_for
from test_api import _ping, _seed

pytestmark = pytest.mark.integration

AUTH: dict[str, str] = {}  # an admin key of the fuzzed deployment: every route is reachable


@pytest.fixture(scope="module")
def api_schema(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenApiSchema]:
    deployment = make_deployment("127.0.0.1:1", redis_url, tmp_path_factory.mktemp("fuzz"))
    run(_seed(deployment))
    port = deployment.settings.api_port
    process = Process(["api", "--loglevel", "warning"], deployment.env,
                      deployment.log_dir / "api.log")  # fmt: skip
    try:
        wait_for(lambda: _ping(port), timeout=30, what="the API to answer /health")
        keys = deployment.env["BESTAND_API_KEYS"].split(",")
        admin = next(k for k in keys if k.endswith(":admin")).rsplit(":", 1)[0]
        AUTH["Authorization"] = f"Bearer {admin}"
        yield schemathesis.openapi.from_url(f"http://127.0.0.1:{port}/openapi.json")
    finally:
        assert process.stop() in (0, -15), process.log_tail()


def test_no_request_gets_a_server_error(api_schema: OpenApiSchema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 8
    calls = [0]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=100, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def check(case: schemathesis.Case) -> None:
            calls[0] += 1
            # Not "schema-valid data is accepted": OpenAPI cannot say "exactly one of these
            # query parameters", so a lookup without one is valid to the document, and a 400.
            case.call_and_validate(headers=AUTH, excluded_checks=[positive_data_acceptance])

        check()
    print(f"\nAPI fuzzing: {calls[0]} requests over {len(operations)} operations, no failure")
    assert calls[0] >= 100
