"""The lookup API suite (``test_api.py``, the audience export among it) on a local Redis
Cluster of three masters: the same seeded events, the same answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import Deployment, make_deployment
from test_api import (  # noqa: F401 - collected here, run against the cluster
    serve,
    test_a_merge_reclassifies_the_guest_order_of_an_existing_customer,
    test_a_request_without_a_valid_key_gets_401,
    test_an_unknown_identifier_is_not_an_error,
    test_bad_batches_get_4xx_with_a_reason,
    test_bad_lookups_get_400_with_a_reason,
    test_batch_classification_for_commission_validation,
    test_batch_lookup_answers_in_order,
    test_bestand_explain_prints_the_history,
    test_campaign_report_recounts_the_seeded_orders,
    test_classification_of_an_unknown_order_is_404,
    test_classification_tells_affiliates_what_they_need,
    test_each_scope_sees_its_fields_and_routes,
    test_explain_of_an_unknown_person_is_404,
    test_explain_shows_why_identifiers_are_one_person,
    test_export_audience_writes_consenting_existing_customers,
    test_health_ready_openapi_and_unknown_routes,
    test_lookup_by_every_identifier_answers_for_one_person,
    test_lookup_by_sha256_of_the_e164_phone,
    test_lookup_by_sha256_of_the_normalized_email,
    test_the_x_api_key_header_works_too,
    test_value_band_and_scores_compare_with_the_customer_base,
)

from conftest import on_cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(
    redis_cluster_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployment, int]]:
    made = make_deployment("127.0.0.1:1", redis_cluster_url, tmp_path_factory.mktemp("api"))
    yield from serve(on_cluster(made))
