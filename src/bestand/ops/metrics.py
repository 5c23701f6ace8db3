"""Prometheus metrics of workers and the API, in one registry per process."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


@dataclass
class WorkerMetrics:
    """Counters and timings of the stream stages."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.events = Counter(
            "bestand_events",
            "Input events by stage, topic and outcome (processed, dead_lettered, duplicate).",
            ["stage", "topic", "outcome"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "bestand_dead_letters",
            "Events sent to the dead-letter topic, by reason.",
            ["topic", "reason"],
            registry=self.registry,
        )
        self.rejected_identifiers = Counter(
            "bestand_rejected_identifiers",
            "Identifiers dropped because they could not be normalized, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.junk_identifiers = Counter(
            "bestand_junk_identifiers",
            "Identifiers recognised as junk, by kind and how (pattern, cardinality).",
            ["kind", "how"],
            registry=self.registry,
        )
        self.merges = Counter(
            "bestand_identity_merges",
            "Persons merged into another because an event linked them.",
            registry=self.registry,
        )
        self.profile_changes = Counter(
            "bestand_profile_changes",
            "Profile changes published for downstream systems, by change.",
            ["change"],
            registry=self.registry,
        )
        self.retries = Counter(
            "bestand_store_retries",
            "Redis operations retried after a connection error or timeout.",
            ["stage"],
            registry=self.registry,
        )
        self.processing_seconds = Histogram(
            "bestand_event_processing_seconds",
            "Time to process one event, by stage.",
            ["stage"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)
