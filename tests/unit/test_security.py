"""Kafka connection options from the settings: plain, TLS and SASL alike for every client."""

from __future__ import annotations

import ssl

import faust
import pytest
from pydantic import ValidationError

from bestand.settings import Settings
from bestand.stream.security import client_options, faust_credentials


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, kafka_bootstrap="b1:9093,b2:9093", **values)  # type: ignore[arg-type]


def test_a_plain_cluster_needs_only_the_brokers() -> None:
    settings = _settings()
    assert client_options(settings) == {
        "bootstrap_servers": "b1:9093,b2:9093",
        "security_protocol": "PLAINTEXT",
    }
    assert faust_credentials(settings) is None


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
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "bestand"
    assert credentials.ssl_context is not None


def test_tls_alone_gives_a_context_and_no_sasl() -> None:
    settings = _settings(kafka_security_protocol="SSL")
    options = client_options(settings)
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert "sasl_mechanism" not in options
    assert isinstance(faust_credentials(settings), faust.SSLCredentials)


def test_sasl_without_credentials_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="BESTAND_KAFKA_SASL_USERNAME"):
        _settings(kafka_security_protocol="SASL_PLAINTEXT")
