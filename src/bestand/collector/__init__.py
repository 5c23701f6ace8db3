"""The collector: Segment's HTTP tracking API, so a shop feeds bestand from what it runs."""

from bestand.collector.app import Collector, create_collector
from bestand.collector.segment import Mapped, Refused, Skipped, from_segment

__all__ = ["Collector", "Mapped", "Refused", "Skipped", "create_collector", "from_segment"]
