"""Settings: defaults run locally; production refuses placeholder secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bestand.settings import Settings


def test_defaults_point_at_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BESTAND_KAFKA_BOOTSTRAP", "BESTAND_REDIS_URL", "BESTAND_ENV"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.kafka_bootstrap == "127.0.0.1:9092"
    assert settings.redis_url.startswith("redis://127.0.0.1:6379")
    assert settings.kafka_session_timeout_ms == 6000
    assert settings.worker_instance_id is None


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BESTAND_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("BESTAND_REDIS_URL", "redis://cache:6380/2")
    monkeypatch.setenv("BESTAND_API_KEYS", "alpha-key-123:ads, beta:key-456:admin")
    settings = Settings(_env_file=None)
    assert settings.kafka_bootstrap == "k1:9092,k2:9092"
    assert settings.redis_url == "redis://cache:6380/2"
    assert settings.scoped_api_keys == [("alpha-key-123", "ads"), ("beta:key-456", "admin")]
    assert settings.api_key("ads") == "alpha-key-123"
    with pytest.raises(LookupError, match="affiliate"):
        settings.api_key("affiliate")


@pytest.mark.parametrize(
    ("keys", "problem"),
    [("no-scope-given", "needs a scope"), ("k1:ads,k2:root", "unknown API key scope 'root'")],
)
def test_every_api_key_has_a_known_scope(
    monkeypatch: pytest.MonkeyPatch, keys: str, problem: str
) -> None:
    monkeypatch.setenv("BESTAND_API_KEYS", keys)
    with pytest.raises(ValidationError, match=problem):
        Settings(_env_file=None)


def test_value_breakpoints_must_ascend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BESTAND_VALUE_RECENCY_DAYS", "[90, 30]")
    with pytest.raises(ValidationError, match="VALUE_RECENCY_DAYS"):
        Settings(_env_file=None)


def test_production_refuses_the_placeholder_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BESTAND_ENV", "production")
    monkeypatch.setenv("BESTAND_API_KEYS", "a-real-key-0123456789:admin")
    with pytest.raises(ValidationError, match="HMAC_SECRET"):
        Settings(_env_file=None)
    monkeypatch.setenv("BESTAND_HMAC_SECRET", "a-long-and-random-production-secret")
    assert Settings(_env_file=None).env == "production"


def test_production_refuses_the_development_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BESTAND_ENV", "production")
    monkeypatch.setenv("BESTAND_HMAC_SECRET", "a-long-and-random-production-secret")
    monkeypatch.delenv("BESTAND_API_KEYS", raising=False)
    with pytest.raises(ValidationError, match="API_KEYS"):
        Settings(_env_file=None)


def test_junk_patterns_come_from_the_environment_and_a_bad_one_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BESTAND_JUNK_PHONE_PATTERNS", r'["\\+4930123450\\d\\d"]')
    assert Settings(_env_file=None).junk_phone_patterns == [r"\+4930123450\d\d"]
    monkeypatch.setenv("BESTAND_JUNK_PHONE_PATTERNS", '["[0-"]')
    with pytest.raises(ValidationError, match=r"invalid junk phone pattern '\[0-'"):
        Settings(_env_file=None)


def test_an_empty_shopify_secret_leaves_the_webhooks_off(monkeypatch: pytest.MonkeyPatch) -> None:
    # compose passes an unset variable as "": an empty HMAC key would sign anything.
    monkeypatch.setenv("BESTAND_COLLECTOR_SHOPIFY_SECRET", "  ")
    assert Settings(_env_file=None).collector_shopify_secret is None
    monkeypatch.setenv("BESTAND_COLLECTOR_SHOPIFY_SECRET", "shpss_0123")
    secret = Settings(_env_file=None).collector_shopify_secret
    assert secret is not None
    assert secret.get_secret_value() == "shpss_0123"


def test_a_sendgrid_key_that_is_no_key_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BESTAND_COLLECTOR_SENDGRID_PUBLIC_KEY", "bm90IGEga2V5")
    with pytest.raises(ValidationError, match="collector_sendgrid_public_key"):
        Settings(_env_file=None)
    monkeypatch.setenv("BESTAND_COLLECTOR_SENDGRID_PUBLIC_KEY", "")
    assert Settings(_env_file=None).collector_sendgrid_public_key is None
