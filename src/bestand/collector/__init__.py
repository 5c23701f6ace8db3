"""The collector: Segment's HTTP tracking API, so a shop feeds bestand from what it runs."""

from bestand.collector.app import Collector, create_collector
from bestand.collector.mapping import Mapped, Refused, Skipped
from bestand.collector.segment import from_segment

__all__ = ["Collector", "Mapped", "Refused", "Skipped", "create_collector", "from_segment"]
