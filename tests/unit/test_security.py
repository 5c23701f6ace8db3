"""Kafka connection options from the settings: plain, TLS and SASL alike for every client."""

from __future__ import annotations

import asyncio
import ssl

import pytest
from aiokafka.abc import ConsumerRebalanceListener
from pydantic import ValidationError

from bestand.kafka.clients import worker_consumer, worker_producer
from bestand.kafka.options import client_options
from bestand.settings import Settings


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, kafka_bootstrap="b1:9093,b2:9093", **values)  # type: ignore[arg-type]


def test_a_plain_cluster_needs_only_the_brokers() -> None:
    settings = _settings()
    assert client_options(settings) == {
        "bootstrap_servers": "b1:9093,b2:9093",
        "security_protocol": "PLAINTEXT",
    }


def test_sasl_over_tls_carries_credentials_and_a_tls_context() -> None:
    settings = _settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="bestand",
        kafka_sasl_password="s3cret",
    )
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("bestand", "s3cret")
    assert isinstance(options["ssl_context"], ssl.SSLContext)


def test_tls_alone_gives_a_context_and_no_sasl() -> None:
    settings = _settings(kafka_security_protocol="SSL")
    options = client_options(settings)
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert "sasl_mechanism" not in options


def test_sasl_without_credentials_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="BESTAND_KAFKA_SASL_USERNAME"):
        _settings(kafka_security_protocol="SASL_PLAINTEXT")


def test_the_worker_clients_take_the_same_options() -> None:
    """The worker's consumer and producer connect as every other client does; the consumer
    commits by hand and joins the group as a static member when given an instance id."""
    settings = _settings(kafka_security_protocol="SSL", worker_instance_id="worker-0")

    class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
        def on_partitions_revoked(self, revoked: object) -> None: ...

        def on_partitions_assigned(self, assigned: object) -> None: ...

    async def build() -> None:
        consumer = worker_consumer(settings, Listener())
        producer = worker_producer(settings)
        try:
            assert consumer._client._bootstrap_servers == "b1:9093,b2:9093"
            assert consumer._client._security_protocol == "SSL"
            assert consumer._enable_auto_commit is False
            assert consumer._group_instance_id == "worker-0"
            assert consumer._session_timeout_ms == settings.kafka_session_timeout_ms
            assert consumer.subscription() == set(settings.input_topics)
            assert producer.client._security_protocol == "SSL"
        finally:
            await consumer.stop()
            await producer.stop()

    asyncio.run(build())
