"""One frozen settings object, loaded once at the edge (the CLI) and passed in.

Every value can be set by an environment variable with the prefix ``BESTAND_``
(``BESTAND_KAFKA_BOOTSTRAP``, ``BESTAND_REDIS_URL``, ``BESTAND_HMAC_SECRET`` ...) or in a
``.env`` file in the working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, StringConstraints, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bestand.access import Scope, split_api_key
from bestand.identity.junk import JunkRules
from bestand.identity.policy import IdentityPolicy
from bestand.profile.lifecycle import LifecycleRules
from bestand.profile.offers import LoyaltyOffer
from bestand.profile.state import CustomerRule
from bestand.profile.value import ValueRules

#: The secret that development uses when none is given. Refused outside development.
DEV_HMAC_SECRET = "bestand-development-secret-change-me"  # noqa: S105 - a marked placeholder
#: The API key that development accepts when none is given. Refused outside development.
DEV_API_KEY = "dev-key"
DEV_WRITE_KEY = "dev-write-key"

_PLACEHOLDERS = {DEV_HMAC_SECRET, "changeme", "change-me", "secret", "", DEV_API_KEY, DEV_WRITE_KEY}


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
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How clients connect to the brokers."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(
        None, description="CA bundle for the brokers' certificates (default: the system's)."
    )
    app_id: str = Field("bestand", description="Consumer group id of the workers.")
    kafka_session_timeout_ms: int = Field(
        6000,
        ge=1000,
        le=300000,
        description="How long the group waits for a worker that stopped heartbeating (killed, "
        "hung) before giving its partitions to the others; the broker allows 6000 by default "
        "at the least.",
    )
    worker_instance_id: str | None = Field(
        None,
        description="Static group membership (Kafka's group.instance.id): a worker restarted "
        "with the same id (a StatefulSet pod name) gets its partitions back at once, without "
        "a rebalance; unique per worker. A worker with an id does not leave the group when it "
        "stops, so its partitions wait for it up to the session timeout.",
    )
    topic_partitions: int = Field(4, ge=1, description="Partitions of the topics bestand creates.")
    topic_replication: int = Field(1, ge=1, description="Replication factor of created topics.")
    topic_clickstream: str = "bestand.clickstream"
    topic_orders: str = "bestand.orders"
    topic_email: str = "bestand.email"
    topic_customer: str = "bestand.customer"
    topic_dlq: str = "bestand.dlq"
    topic_profile_changes: str = Field(
        "bestand.profile-changes",
        description="Output topic: became customer, stage changed, merged, erased.",
    )
    topic_explain: str = Field(
        "bestand.explain",
        description="Compacted topic of the explain log's links and new persons, keyed "
        "'<person>/<event>' (BESTAND_EXPLAIN_LINKS=topic).",
    )
    explain_links: Literal["topic", "graph"] = Field(
        "topic",
        description="Where the explain log's links and new persons go: 'topic' (a compacted "
        "Kafka topic, read back by the explain API and CLI) or 'graph' (Redis, beside merges "
        "and refusals: about 190 bytes a person more at a million persons).",
    )
    explain_read_seconds: float = Field(
        10.0,
        gt=0,
        description="How long the explain API and CLI read the explain topic for one person "
        "before answering with what Redis holds alone.",
    )

    # --- Redis -------------------------------------------------------------------------------
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis connection URL.")
    redis_prefix: str = Field("b", description="Prefix of every Redis key bestand writes.")
    redis_cluster: bool = Field(
        False,
        description=(
            "The URL names a node of a Redis Cluster: bestand finds the others from it and "
            "writes each key where the cluster keeps it (README, Redis Cluster)."
        ),
    )

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
    junk_phone_patterns: list[str] = Field(
        default_factory=list,
        description="Regular expressions (JSON list) of the shop's own placeholder phone "
        "numbers, matched against the E.164 form; they never link, "
        'e.g. ["\\+49301234500\\d"].',
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
    value_recency_days: list[int] = Field(
        default_factory=lambda: [30, 90, 180, 365],
        description="RFM recency: days since the last order from which the score drops from 5 "
        "to 4, 3, 2, 1 (JSON list, ascending).",
    )
    value_frequency_orders: list[int] = Field(
        default_factory=lambda: [2, 3, 5, 8],
        description="RFM frequency: order counts from which the score rises from 1 to 2, 3, 4, 5 "
        "(JSON list, ascending).",
    )
    first_repurchase_days: int = Field(
        90,
        ge=1,
        description="Expected days to a first-time buyer's second order (for the predicted "
        "value and next-order date; repeat buyers use their own average gap).",
    )
    first_repeat_rate: float = Field(
        0.3,
        gt=0,
        le=1,
        description="Share of first-time buyers expected to order again (e-commerce repeat "
        "rates are typically 20-40 %).",
    )
    value_horizon_days: int = Field(
        365, ge=1, description="Horizon of the predicted value, in days."
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
        3 * 24 * 3600,
        ge=60,
        description="How long an applied event id is remembered: longer than any source "
        "delivers an event again (webhooks retry for up to a day, a stopped worker is "
        "redelivered its last batch when it starts again).",
    )
    fold: Literal["auto", "native", "python"] = Field(
        "auto",
        description="Which fold applies a batch's events to person state: 'native' (compiled, "
        "the bestand-native package), 'python' (the reference in bestand.profile), or 'auto' "
        "(native where it is installed).",
    )
    resolve: Literal["auto", "native", "python"] = Field(
        "auto",
        description="Which code decides a batch's events against the identity graph: 'native' "
        "(compiled, the bestand-native package), 'python' (the reference in bestand.identity), "
        "or 'auto' (native where it is installed).",
    )
    redis_module: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Whether the worker runs its Redis scripts as the commands of bestand's "
        "Redis module (native/module, loaded with redis-server --loadmodule): 'auto' (where "
        "Redis has it), 'on' (the worker refuses to start without it), 'off' (Lua scripts).",
    )
    max_event_bytes: int = Field(65536, ge=1024, description="Larger events go to the DLQ.")
    max_event_future_seconds: int = Field(
        86400,
        ge=0,
        description="Events timed further ahead of the clock (or before 2000) go to the DLQ "
        "as implausible_time.",
    )

    # --- Lookup API --------------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=1, le=65535)
    api_redis_timeout_ms: int = Field(
        250,
        ge=1,
        le=60000,
        description="A lookup that Redis has not answered in this time gets a 503 at once.",
    )
    api_max_waiting_lookups: int = Field(
        2000,
        ge=1,
        description="Lookups beyond this many waiting for Redis get a 503 at once (overload).",
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=lambda: [SecretStr(f"{DEV_API_KEY}:admin")],
        description="API keys with their scope (KEY:SCOPE, scope ads, affiliate, "
        "personalization or admin), comma separated.",
    )
    api_max_batch: int = Field(1000, ge=1, description="Most identifiers in one batch lookup.")
    widget_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="The shop's origins (https://shop.example) whose pages may ask /v1/widget "
        "from the browser, comma separated; other browser origins get a 403.",
    )
    widget_rate_per_minute: int = Field(
        60, ge=1, description="Widget lookups a client address may make a minute (429 beyond)."
    )

    # --- Collector (Segment's tracking API) --------------------------------------------------
    collector_host: str = "127.0.0.1"
    collector_port: int = Field(8090, ge=1, le=65535)
    collector_write_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Write keys the collector accepts (a Segment library's write key, sent "
        "as the HTTP Basic user name or as writeKey in the body), comma separated; "
        f"{DEV_WRITE_KEY!r} in development when none is set.",
    )
    collector_default_currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = Field(
        "EUR", description="Currency of an order or refund whose properties name none."
    )
    collector_max_event_bytes: int = Field(
        32 * 1024, ge=1024, description="Largest call, alone or in a batch (Segment: 32 KB)."
    )
    collector_max_batch_bytes: int = Field(
        500 * 1024, ge=1024, description="Largest request body of /v1/batch (Segment: 500 KB)."
    )
    collector_shopify_secret: SecretStr | None = Field(
        None,
        description="The Shopify app's client secret: webhooks to /v1/webhooks/shopify are "
        "taken only with its HMAC (X-Shopify-Hmac-Sha256); unset, the route answers 404.",
    )
    collector_sendgrid_public_key: str | None = Field(
        None,
        description="The verification key of SendGrid's signed Event Webhook (Base64 DER as "
        "SendGrid shows it, or PEM): /v1/webhooks/sendgrid takes only events signed with it; "
        "unset, the route answers 404.",
    )
    collector_sendgrid_max_age_seconds: float = Field(
        600, gt=0, description="A SendGrid post signed longer ago than this is refused (replay)."
    )
    collector_kafka_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=120,
        description="A request whose events Kafka has not acknowledged in this time gets a "
        "503 (the client sends it again; the events' ids make the resend a redelivery).",
    )

    # --- Worker ------------------------------------------------------------------------------
    batch_max_events: int = Field(
        8000, ge=1, le=100000, description="Most events a worker handles in one batch."
    )
    batch_wait_ms: int = Field(
        20,
        ge=1,
        le=10000,
        description="How long a worker waits for events when none are there; a batch is "
        "handled as soon as events are.",
    )
    worker_web_host: str = Field(
        "127.0.0.1",
        description="Bind address of the worker's /metrics and /health (0.0.0.0 in containers).",
    )
    worker_web_port: int = Field(6066, ge=1, le=65535, description="The worker's own web port.")
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Log lines as text, or as JSON with topic, partition, offset and person id "
        "of the work in hand.",
    )
    ops_interval_seconds: float = Field(
        5.0,
        gt=0,
        le=300,
        description="How often a worker beats, reads its group's lag and Redis figures for "
        "/metrics; its heartbeat expires after three intervals.",
    )
    ready_max_lag: int = Field(
        1000,
        ge=0,
        description="A worker is ready once its partitions are assigned and its group's lag is "
        "at most this many messages.",
    )

    # --- Local stack -------------------------------------------------------------------------
    stack_dir: Path = Field(
        Path(".local"), description="Where the local stack keeps binaries, data and logs."
    )

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"BESTAND_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "BESTAND_KAFKA_SASL_USERNAME and BESTAND_KAFKA_SASL_PASSWORD"
            )
        return self

    @field_validator("api_keys", "collector_write_keys", "widget_origins", mode="before")
    @classmethod
    def _keys_csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("api_keys")
    @classmethod
    def _api_keys_scoped(cls, value: list[SecretStr]) -> list[SecretStr]:
        for position, entry in enumerate(value, start=1):
            try:
                split_api_key(entry.get_secret_value())
            except ValueError as exc:
                raise ValueError(f"key {position}: {exc}") from None
        return value

    @field_validator("collector_shopify_secret", "collector_sendgrid_public_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # An empty secret would make any body's HMAC computable: empty means off.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("collector_sendgrid_public_key")
    @classmethod
    def _sendgrid_key_valid(cls, value: str | None) -> str | None:
        if value is not None:
            from bestand.collector.sendgrid import public_key

            public_key(value)  # raises with what is wrong with it
        return value

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

    @field_validator("junk_phone_patterns")
    @classmethod
    def _phone_patterns_valid(cls, value: list[str]) -> list[str]:
        JunkRules.default((), value)  # raises with a message naming the bad pattern
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
        for name in ("value_recency_days", "value_frequency_orders"):
            values = getattr(self, name)
            if values != sorted(set(values)) or any(v < 1 for v in values):
                raise ValueError(f"BESTAND_{name.upper()} must be ascending positive numbers")
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
        if any(key in _PLACEHOLDERS for key, _ in self.scoped_api_keys):
            raise ValueError(
                f"BESTAND_API_KEYS holds a placeholder key; set real keys (BESTAND_ENV={self.env})"
            )
        if any(key.get_secret_value() in _PLACEHOLDERS for key in self.collector_write_keys):
            raise ValueError(
                "BESTAND_COLLECTOR_WRITE_KEYS holds a placeholder key; set real keys "
                f"(BESTAND_ENV={self.env})"
            )
        return self

    @property
    def lifecycle_rules(self) -> LifecycleRules:
        """Thresholds of the lifecycle stages."""
        return LifecycleRules(
            repeat_min_orders=self.repeat_min_orders,
            loyal_min_orders=self.loyal_min_orders,
            at_risk_after_days=self.at_risk_after_days,
            lapsed_after_days=self.lapsed_after_days,
        )

    @property
    def value_rules(self) -> ValueRules:
        """RFM breakpoints and prediction assumptions."""
        return ValueRules(
            recency_days=tuple(self.value_recency_days),
            frequency_orders=tuple(self.value_frequency_orders),
            first_repurchase_days=self.first_repurchase_days,
            first_repeat_rate=self.first_repeat_rate,
            horizon_days=self.value_horizon_days,
        )

    @property
    def write_keys(self) -> list[str]:
        """The collector's write keys (the development key in development when none is set)."""
        keys = [key.get_secret_value() for key in self.collector_write_keys]
        if not keys and self.env == "development":
            return [DEV_WRITE_KEY]
        return keys

    @property
    def scoped_api_keys(self) -> list[tuple[str, Scope]]:
        """Every API key with its scope."""
        return [split_api_key(entry.get_secret_value()) for entry in self.api_keys]

    def api_key(self, scope: Scope = "admin") -> str:
        """The first configured key of ``scope`` (for the demo, benchmarks and tests)."""
        for key, key_scope in self.scoped_api_keys:
            if key_scope == scope:
                return key
        raise LookupError(f"no API key with scope {scope!r} in BESTAND_API_KEYS")

    @property
    def input_topics(self) -> tuple[str, str, str, str]:
        """Topics that producers write and the workers read."""
        return (self.topic_clickstream, self.topic_orders, self.topic_email, self.topic_customer)
