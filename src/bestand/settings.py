"""One frozen settings object, loaded once at the edge (the CLI) and passed in.

Every value can be set by an environment variable with the prefix ``BESTAND_``
(``BESTAND_KAFKA_BOOTSTRAP``, ``BESTAND_REDIS_URL``, ``BESTAND_HMAC_SECRET`` ...) or in a
``.env`` file in the working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bestand.identity.junk import JunkRules
from bestand.identity.policy import IdentityPolicy
from bestand.profile.offers import LoyaltyOffer
from bestand.profile.state import CustomerRule

#: The secret that development uses when none is given. Refused outside development.
DEV_HMAC_SECRET = "bestand-development-secret-change-me"  # noqa: S105 - a marked placeholder
#: The API key that development accepts when none is given. Refused outside development.
DEV_API_KEY = "dev-key"

_PLACEHOLDERS = {DEV_HMAC_SECRET, "changeme", "change-me", "secret", "", DEV_API_KEY}


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Configuration of workers, API and CLI. Defaults run the local stack out of the box."""

    model_config = SettingsConfigDict(
        env_prefix="BESTAND_", env_file=".env", frozen=True, extra="ignore"
    )

    env: Literal["development", "test", "production"] = "development"

    # --- Kafka -------------------------------------------------------------------------------
    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma separated host:port."
    )
    app_id: str = Field("bestand", description="Consumer group id prefix of the workers.")
    topic_partitions: int = Field(4, ge=1, description="Partitions of the topics bestand creates.")
    topic_replication: int = Field(1, ge=1, description="Replication factor of created topics.")
    topic_clickstream: str = "bestand.clickstream"
    topic_orders: str = "bestand.orders"
    topic_email: str = "bestand.email"
    topic_customer: str = "bestand.customer"
    topic_resolved: str = "bestand.resolved"
    topic_dlq: str = "bestand.dlq"

    # --- Redis -------------------------------------------------------------------------------
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis connection URL.")
    redis_prefix: str = Field("b", description="Prefix of every Redis key bestand writes.")

    # --- Identity ----------------------------------------------------------------------------
    hmac_secret: SecretStr = Field(
        SecretStr(DEV_HMAC_SECRET),
        description="Key of the HMAC that every identifier is hashed with before storage.",
    )
    default_phone_region: str = Field(
        "DE", description="Region for phone numbers given without a country code (ISO 3166)."
    )
    default_country: str = Field(
        "DE", description="Country of postal addresses given without one (ISO 3166)."
    )
    identity_policy: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Overrides of the merge policy per identifier kind, as JSON, e.g. "
        '{"email": {"max_persons": 5}, "anonymous_id": {"link": "never"}}.',
    )
    junk_email_patterns: list[str] = Field(
        default_factory=list,
        description="Extra regular expressions (JSON list) of dummy e-mails that never link, "
        'e.g. ["filiale\\.[a-z]+@myshop\\.de"].',
    )

    # --- Profile and lifecycle ---------------------------------------------------------------
    customer_rule: CustomerRule = Field(
        "kept",
        description="Which orders make an existing customer: 'kept' (not cancelled, not "
        "returned or refunded in full) or 'placed' (any order not cancelled).",
    )
    repeat_min_orders: int = Field(2, ge=2, description="Orders from which a buyer is 'repeat'.")
    loyal_min_orders: int = Field(4, ge=2, description="Orders from which a buyer is 'loyal'.")
    at_risk_after_days: int = Field(
        180,
        ge=1,
        description="Days without an order after which a buyer is 'at_risk' (about twice the "
        "usual gap between a repeat buyer's orders).",
    )
    lapsed_after_days: int = Field(
        365, ge=1, description="Days without an order after which a buyer is 'lapsed'."
    )
    loyalty_offers: list[dict[str, Any]] = Field(
        default_factory=lambda: [
            {"name": "loyalty-thank-you", "min_orders": 2, "max_days_since_last_order": 365},
            {"name": "win-back", "min_orders": 1, "stages": ["lapsed"]},
        ],
        description="Loyalty offers (JSON list): name, min_orders, max_days_since_last_order, "
        "stages.",
    )
    dedupe_ttl_seconds: int = Field(
        14 * 24 * 3600, ge=60, description="How long an applied event id is remembered."
    )
    max_event_bytes: int = Field(65536, ge=1024, description="Larger events go to the DLQ.")

    # --- Lookup API --------------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=1, le=65535)
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=lambda: [SecretStr(DEV_API_KEY)],
        description="API keys accepted by the lookup API, comma separated.",
    )
    api_max_batch: int = Field(1000, ge=1, description="Most identifiers in one batch lookup.")

    # --- Worker ------------------------------------------------------------------------------
    worker_web_port: int = Field(6066, ge=1, le=65535, description="The worker's own web port.")

    # --- Local stack -------------------------------------------------------------------------
    stack_dir: Path = Field(
        Path(".local"), description="Where the local stack keeps binaries, data and logs."
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _api_keys_csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("default_phone_region", "default_country")
    @classmethod
    def _region_upper(cls, value: str) -> str:
        return value.strip().upper()

    @field_validator("identity_policy")
    @classmethod
    def _policy_valid(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        IdentityPolicy.with_overrides(value)  # raises with a message naming the bad entry
        return value

    @field_validator("junk_email_patterns")
    @classmethod
    def _patterns_valid(cls, value: list[str]) -> list[str]:
        JunkRules.default(value)  # raises with a message naming the bad pattern
        return value

    @field_validator("loyalty_offers")
    @classmethod
    def _offers_valid(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for offer in value:
            unknown = set(offer) - {"name", "min_orders", "max_days_since_last_order", "stages"}
            if "name" not in offer or unknown:
                raise ValueError(f"a loyalty offer needs a name and knows no {sorted(unknown)}")
        return value

    @property
    def offers(self) -> tuple[LoyaltyOffer, ...]:
        """The configured loyalty offers."""
        return tuple(
            LoyaltyOffer(
                name=str(o["name"]),
                min_orders=int(o.get("min_orders", 1)),
                max_days_since_last_order=o.get("max_days_since_last_order"),
                stages=tuple(o.get("stages", ())),
            )
            for o in self.loyalty_offers
        )

    @property
    def policy(self) -> IdentityPolicy:
        """The merge policy: defaults with this configuration's overrides."""
        return IdentityPolicy.with_overrides(self.identity_policy)

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> Settings:
        if self.at_risk_after_days >= self.lapsed_after_days:
            raise ValueError(
                "BESTAND_AT_RISK_AFTER_DAYS must be less than BESTAND_LAPSED_AFTER_DAYS"
            )
        if self.repeat_min_orders > self.loyal_min_orders:
            raise ValueError("BESTAND_REPEAT_MIN_ORDERS must not exceed BESTAND_LOYAL_MIN_ORDERS")
        return self

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.env == "development":
            return self
        if self.hmac_secret.get_secret_value() in _PLACEHOLDERS:
            raise ValueError(
                "BESTAND_HMAC_SECRET must be set to a real secret outside development "
                f"(BESTAND_ENV={self.env})"
            )
        if len(self.hmac_secret.get_secret_value()) < 16:
            raise ValueError("BESTAND_HMAC_SECRET must be at least 16 characters long")
        if any(key.get_secret_value() in _PLACEHOLDERS for key in self.api_keys):
            raise ValueError(
                f"BESTAND_API_KEYS holds a placeholder key; set real keys (BESTAND_ENV={self.env})"
            )
        return self

    @property
    def input_topics(self) -> tuple[str, str, str, str]:
        """Topics that producers write and the identity agent reads."""
        return (self.topic_clickstream, self.topic_orders, self.topic_email, self.topic_customer)

    @property
    def kafka_url(self) -> str:
        """Broker URL in the form faust expects."""
        return ";".join(f"kafka://{server.strip()}" for server in self.kafka_bootstrap.split(","))
