"""Prometheus metrics of workers and the API, in one registry per process."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: Latency buckets from 100 µs (a lookup) to 10 s (a batch behind a slow Redis).
_SECONDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
            1.0, 2.5, 10.0)  # fmt: skip
#: Event age buckets: from fresh (10 ms) to a day behind.
_AGE = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
        86400.0)  # fmt: skip


def observe_many(histogram: Histogram, amounts: Sequence[float]) -> None:
    """``histogram.observe`` of every amount, counted per bucket: the worker observes the age
    of every event, and one ``observe`` each (a lock and a scan of the buckets) cost more than
    the rest of the batch's bookkeeping. Labelled histograms: pass ``labels(...)``'s child."""
    if not amounts:
        return
    ordered = sorted(amounts)
    bounds = histogram._upper_bounds  # the client keeps one count per bucket, not cumulated
    below = 0
    for bucket, bound in zip(histogram._buckets, bounds, strict=True):
        upto = bisect_right(ordered, bound)  # observe() counts an amount <= bound here
        if upto > below:
            bucket.inc(upto - below)
            below = upto
        if below == len(ordered):
            break
    histogram._sum.inc(sum(ordered))


#: Where a batch's time goes: the phases of one batch, and the whole of it.
BATCH_PHASES = ("decode", "resolve", "apply", "produce", "commit", "batch")


@dataclass
class Metrics:
    """One process's registry, and its exposition for ``/metrics``."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)


@dataclass
class WorkerMetrics(Metrics):
    """Counters and timings of the worker's batch loop."""

    def __post_init__(self) -> None:
        self.events = Counter(
            "bestand_events",
            "Input events by topic and outcome (processed, duplicate, dead_lettered, erased).",
            ["topic", "outcome"],
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
        self.store_writes = Counter(
            "bestand_store_writes",
            "Values the person-state writes send to Redis, by what: person_state, lookup_record "
            "(one per identifier of a person whose answer changed), dedupe_marker.",
            ["what"],
            registry=self.registry,
        )
        self.retries = Counter(
            "bestand_store_retries",
            "Batches retried after a Redis or Kafka error (the batch is not committed before).",
            registry=self.registry,
        )
        self.rebalances = Counter(
            "bestand_rebalances",
            "Partition revocations this worker went through (the batch in hand finished first).",
            registry=self.registry,
        )
        self.redis_module = Gauge(
            "bestand_redis_module_scripts",
            "Scripts this worker runs as commands of bestand's Redis module (0: all as Lua).",
            registry=self.registry,
        )
        self.partitions = Gauge(
            "bestand_assigned_partitions",
            "Input partitions assigned to this worker.",
            registry=self.registry,
        )
        self.consumed = Counter(
            "bestand_events_consumed",
            "Messages read from Kafka, by topic.",
            ["topic"],
            registry=self.registry,
        )
        self.produced = Counter(
            "bestand_events_produced",
            "Messages written to Kafka (dead letters, profile changes), by topic.",
            ["topic"],
            registry=self.registry,
        )
        self.processing_seconds = Histogram(
            "bestand_batch_processing_seconds",
            "Time of one batch by phase: decode (validate, key), resolve (identity graph), "
            "apply (person state), produce (outputs acknowledged), commit, and the whole batch.",
            ["stage"],
            buckets=_SECONDS,
            registry=self.registry,
        )
        for phase in BATCH_PHASES:
            self.processing_seconds.labels(phase)
        self.batch_size = Histogram(
            "bestand_batch_messages",
            "Messages per batch.",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000),
            registry=self.registry,
        )
        self.event_age = Histogram(
            "bestand_event_age_seconds",
            "Now minus the message's Kafka timestamp when its batch is handled.",
            buckets=_AGE,
            registry=self.registry,
        )
        self.redis_seconds = Histogram(
            "bestand_redis_command_seconds",
            "Time of one Redis round trip (a command, script or pipeline), by operation.",
            ["operation"],
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.lag = Gauge(
            "bestand_consumer_lag_messages",
            "End offset minus the group's committed offset, by topic and partition.",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.lag_seconds = Gauge(
            "bestand_consumer_lag_seconds",
            "Age of the oldest message not yet committed (0 when caught up), by topic and "
            "partition.",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.heartbeat = Gauge(
            "bestand_worker_heartbeat_timestamp_seconds",
            "Unix time of the worker's last heartbeat (written to Redis with a TTL as well).",
            registry=self.registry,
        )
        self.persons = Gauge(
            "bestand_persons",
            "Persons in Redis (with at least one identifier), as of the last complete count.",
            registry=self.registry,
        )
        self.identifiers = Gauge(
            "bestand_identifiers",
            "Identifiers in the identity graph, as of the last complete count.",
            registry=self.registry,
        )
        self.graph_buckets = Gauge(
            "bestand_graph_buckets",
            "Bucket hashes the identity graph's entries are fields of, as of the last count.",
            registry=self.registry,
        )
        self.graph_bucket_entries_max = Gauge(
            "bestand_graph_bucket_entries_max",
            "Most entries one graph bucket holds, as of the last count (past Redis's "
            "hash-max-listpack-entries a bucket is a hash table).",
            registry=self.registry,
        )
        self.redis_memory = Gauge(
            "bestand_redis_used_memory_bytes",
            "Redis INFO used_memory of the state store.",
            registry=self.registry,
        )


@dataclass
class ApiMetrics(Metrics):
    """Request latency of the lookup API, by endpoint and status."""

    def __post_init__(self) -> None:
        self.requests = Histogram(
            "bestand_http_request_duration_seconds",
            "Time from request to response in the API process, by endpoint and status.",
            ["endpoint", "status"],
            buckets=_SECONDS,
            registry=self.registry,
        )


@dataclass
class CollectorMetrics(Metrics):
    """Requests of the collector, and what became of the calls they carried."""

    def __post_init__(self) -> None:
        self.requests = Histogram(
            "bestand_collector_request_duration_seconds",
            "Time from request to response in the collector (Kafka's acknowledgement "
            "included), by route and status.",
            ["route", "status"],
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.calls = Counter(
            "bestand_collector_calls",
            "Segment calls by type (track, identify, page, ...) and outcome: forwarded to "
            "Kafka, skipped (of no use to bestand), refused (with a 400).",
            ["call", "outcome"],
            registry=self.registry,
        )
