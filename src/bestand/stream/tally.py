"""What one batch did, counted in plain counters and published to the metrics once.

Looking up a labelled Prometheus child costs more than the count itself; per event on the hot
path it would cost more than some of the work. A batch that fails is retried whole, and its
tally goes with it, so nothing is counted twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bestand.ops.metrics import WorkerMetrics


@dataclass
class Tally:
    """Counts of one batch, by the metric's labels."""

    events: Counter[tuple[str, str]] = field(default_factory=Counter)  # (topic, outcome)
    dead_letters: Counter[tuple[str, str]] = field(default_factory=Counter)  # (topic, reason)
    rejected: Counter[str] = field(default_factory=Counter)  # identifier kind
    junk: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, how)
    changes: Counter[str] = field(default_factory=Counter)
    writes: Counter[str] = field(default_factory=Counter)  # what person-state writes put
    merges: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # time by phase of the batch

    def copy(self) -> Tally:
        """An independent copy (a batch handled again starts from its decoding's counts)."""
        return Tally(
            Counter(self.events),
            Counter(self.dead_letters),
            Counter(self.rejected),
            Counter(self.junk),
            Counter(self.changes),
            Counter(self.writes),
            self.merges,
            dict(self.seconds),
        )

    def took(self, phase: str, seconds: float) -> None:
        """Add time spent in a phase of the batch."""
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    def publish(self, metrics: WorkerMetrics) -> None:
        """Add the counts to the worker's metrics."""
        for labels, count in self.events.items():
            metrics.events.labels(*labels).inc(count)
        for labels, count in self.dead_letters.items():
            metrics.dead_letters.labels(*labels).inc(count)
        for kind, count in self.rejected.items():
            metrics.rejected_identifiers.labels(kind).inc(count)
        for labels, count in self.junk.items():
            metrics.junk_identifiers.labels(*labels).inc(count)
        for change, count in self.changes.items():
            metrics.profile_changes.labels(change).inc(count)
        for kind, count in self.writes.items():
            metrics.store_writes.labels(kind).inc(count)
        if self.merges:
            metrics.merges.inc(self.merges)
        for phase, seconds in self.seconds.items():
            metrics.processing_seconds.labels(phase).observe(seconds)
